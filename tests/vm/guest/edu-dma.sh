# SPDX-License-Identifier: MIT
#
# vm-edu-dma (in the guest, sh -e): QEMU 7.2's edu aborts the whole VM
# ("EDU: DMA range ... out of bounds") on a DMA of exactly its 4096-byte
# buffer.  Ask this QEMU's edu for that, both ways, through its registers
# (devmem on BAR0).  The RAM side is left to the IOMMU: the function sits
# in vfio-pci's group with no container, so nothing reaches guest RAM;
# edu checks its own buffer's range before it touches the bus.  Passing
# means the guest lived to say so; an abort loses the end marker.

fail() { echo "FAIL: $*"; exit 1; }
dev=/sys/bus/pci/devices/$VM_EDU_BDF
[ -n "$VM_EDU_BDF" ] || fail "no edu"

# Memory decoding and bus mastering on (command register bits 1, 2).
cmd=$(od -An -tu1 -j4 -N1 "$dev/config" | tr -d ' ')
printf "\\$(printf %o $((cmd | 6)))" |
    dd of="$dev/config" bs=1 seek=4 count=1 conv=notrunc 2>/dev/null

bar=$(( $(head -n 1 "$dev/resource" | cut -d' ' -f1) ))
reg() { printf '0x%x' $((bar + $1)); }

id=$(devmem "$(reg 0x00)" 32)
[ "$id" = 0x010000ED ] || fail "edu id reads $id"
devmem "$(reg 0x04)" 32 0x12345678
live=$(devmem "$(reg 0x04)" 32)
[ "$live" = 0xEDCBA987 ] || fail "edu liveness reads $live"
echo "ok: edu at BAR0 $(reg 0), id $id, liveness inverts"

# One transfer: source, destination, count, then start (bit 0) with the
# direction (bit 1: edu to RAM); edu clears bit 0 when done.
dma() {
    devmem "$(reg 0x80)" 32 "$1"
    devmem "$(reg 0x88)" 32 "$2"
    devmem "$(reg 0x90)" 32 "$3"
    devmem "$(reg 0x98)" 32 "$4"
    i=0
    while [ $(( $(devmem "$(reg 0x98)" 32) & 1 )) -ne 0 ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "DMA $*: still running after 10 s"
        usleep 50000
    done
}
dma 0x100000 0x40000 4096 1
echo "ok: 4096-byte DMA RAM -> edu buffer [0x40000, 0x41000) done"
dma 0x40000 0x100000 4096 3
echo "ok: 4096-byte DMA edu buffer -> RAM done"
dma 0x100000 0x40800 2048 1
echo "ok: 2048-byte DMA to the buffer's upper half done"
