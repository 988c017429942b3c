# SPDX-License-Identifier: MIT
#
# vm-vfio (in the guest): the VFIO backend end to end on QEMU's own edu
# and nvme -- in process and through a dextd in the guest:
#   dextctl list/info/config -xxxx, config bytes against sysfs;
#   dext-demo and qemu-backend on edu; nvme-identify on nvme (MSI-X);
#   dextctl dma-test both ways, its memory shared with dextd;
#   reset (edu: secondary bus reset behind its root port; nvme: FLR);
#   a client killed with DMA live: nothing left pinned in dextd;
#   Terminate hands the device back; setup mistakes explained.

set -e
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

EDU=$VM_EDU_BDF NVME=$VM_NVME_BDF
[ -n "$EDU" ] && [ -n "$NVME" ] || fail "no edu or nvme"
INPROC="inproc:vfio,host=$EDU,bdf=00:03.0,dma_mask=0xfffffff+vfio,host=$NVME,bdf=00:04.0"

# --- Config space: what clients see against the guest's sysfs ---------
# Bytes a client sees differently, and why: BAR registers 0x10-0x27
# show type bits only (the dext hides the addresses it assigned); vfio-pci
# virtualises the command register (we close the device between claims)
# and its MSI/MSI-X capability state.
hexdump_cfg() {
    od -An -v -tx1 -w16 "/sys/bus/pci/devices/$1/config" | head -n "$2"
}
compare_cfg() {   # target bdf-seen host-bdf lines
    DEXT_TARGET=$1 dextctl config -xxx "$2" >/tmp/cfg.dextctl ||
        fail "dextctl config -xxx $2 on $1"
    sed -n 's/^[0-9a-f]*: //p' /tmp/cfg.dextctl | head -n "$4" >/tmp/cfg.ours
    hexdump_cfg "$3" "$4" | sed 's/^ //' >/tmp/cfg.sysfs
    [ "$(wc -l </tmp/cfg.ours)" = "$4" ] || fail "dextctl config: short dump"
    # Compare bytes 0x00-0x03 (IDs), 0x08-0x0f, 0x28-0x3f: identity,
    # class, header, subsystem, interrupt pin.
    i=0
    while read -r ours && read -r theirs <&3; do
        for b in $(seq 0 15); do
            off=$((i * 16 + b))
            o=$(echo "$ours" | cut -d' ' -f$((b + 1)))
            t=$(echo "$theirs" | cut -d' ' -f$((b + 1)))
            case $off in
            4|5|6|7) continue ;;                    # command, status
            1[6-9]|2[0-9]|3[0-9]) [ $off -lt 40 ] && continue ;;  # BARs
            60) continue ;;                         # interrupt line
            esac
            [ $off -ge 64 ] && continue
            [ "$o" = "$t" ] || fail "$2 config byte 0x$(printf %02x $off): \
dextctl $o, sysfs $t"
        done
        i=$((i + 1))
    done </tmp/cfg.ours 3</tmp/cfg.sysfs
}

DEXT_TARGET=$INPROC dextctl list | tee /tmp/list
grep -q '^00:03.0 *1234:11e8 *00ff00' /tmp/list || fail "list: edu"
grep -q '^00:04.0 *1b36:0010 *010802' /tmp/list || fail "list: nvme"
DEXT_TARGET=$INPROC dextctl info 00:04.0 | tee /tmp/info
grep -q 'MSI-X' /tmp/info || fail "info: nvme without MSI-X"
compare_cfg "$INPROC" 00:03.0 "$EDU" 4
compare_cfg "$INPROC" 00:04.0 "$NVME" 4
pass "dextctl list/info/config in process: the header agrees with sysfs"

# --- In process (the group is ours only while no dextd holds it) -----
DEXT_TARGET=$INPROC nvme-identify --expect-serial LIBDEXTVM01 00:04.0 |
    tee /tmp/nvme
grep -q 'signalled by interrupt' /tmp/nvme || fail "nvme: no MSI-X seen"
DEXT_TARGET=$INPROC dext-demo 00:03.0 >/tmp/demo 2>&1 || { cat /tmp/demo; fail "dext-demo in process"; }
DEXT_TARGET=$INPROC qemu-backend >/tmp/qb 2>&1 || { cat /tmp/qb; fail "qemu-backend in process"; }
DEXT_TARGET=$INPROC dextctl dma-test 00:03.0 --size 16k || fail "dma-test"
pass "in process: nvme-identify by MSI-X, dext-demo, qemu-backend, dma-test"

# --- Through dextd ----------------------------------------------------
dextd --socket /tmp/d.sock --device "vfio,host=$EDU,bdf=00:03.0,dma_mask=0xfffffff" \
      --device "vfio,host=$NVME,bdf=00:04.0" 2>/tmp/dextd.log &
DPID=$!
i=0
until [ -S /tmp/d.sock ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat /tmp/dextd.log; fail "no dextd"; }
    usleep 100000
done
U=unix:/tmp/d.sock
compare_cfg "$U" 00:03.0 "$EDU" 4
compare_cfg "$U" 00:04.0 "$NVME" 4
pass "dextctl config through dextd: the header agrees with sysfs"

# --- Examples and DMA through dextd -----------------------------------
DEXT_TARGET=$U nvme-identify --expect-serial LIBDEXTVM01 00:04.0 | tee /tmp/nvme
grep -q 'signalled by interrupt' /tmp/nvme || fail "nvme via dextd: no MSI-X"
DEXT_TARGET=$U dext-demo 00:03.0 >/tmp/demo 2>&1 || { cat /tmp/demo; fail "dext-demo"; }
tail -n 3 /tmp/demo
DEXT_TARGET=$U qemu-backend >/tmp/qb 2>&1 || { cat /tmp/qb; fail "qemu-backend"; }
DEXT_TARGET=$U dextctl dma-test 00:03.0 --size 16k || fail "dma-test via dextd"
DEXT_TARGET=$U dextctl dma-test 00:03.0 --size 16k --dma-buffer ||
    fail "dma-test, DMA buffer, via dextd"
pass "via dextd: nvme-identify by MSI-X, dext-demo, qemu-backend, dma-test both ways (memfd and DMA buffer)"

# --- Reset ------------------------------------------------------------
DEXT_TARGET=$U dextctl reset 00:03.0 | tee /tmp/reset
DEXT_TARGET=$U dextctl reset 00:04.0 | tee -a /tmp/reset
pass "reset of edu and nvme"

# --- A client killed with DMA live ------------------------------------
# vfio's type1 IOMMU charges pinned pages to the process's locked memory.
locked() { awk '/^VmLck:/ { print $2 }' "/proc/$DPID/status"; }
[ "$(locked)" = 0 ] || fail "dextd has $(locked) kB pinned before the test"
DEXT_TARGET=$U dextctl dma-test 00:03.0 --size 64M >/dev/null 2>&1 &
CPID=$!
i=0
while [ "$(locked)" = 0 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the client never had memory pinned"
    usleep 100000
done
echo "pinned while the client runs: $(locked) kB"
kill -KILL $CPID; wait $CPID || true
i=0
while [ "$(locked)" != 0 ]; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "$(locked) kB still pinned after the client died"
    usleep 100000
done
DEXT_TARGET=$U dextctl status | tee /tmp/status
pass "client killed with DMA live: dextd unpinned everything (VmLck 0)"

kill -TERM $DPID
wait $DPID || fail "dextd exit status $?"
grep -E 'warning|error' /tmp/dextd.log | grep -v 'SO_PEERPIDFD' | head -20 || true
pass "dextd stopped cleanly"

# --- Setup mistakes are explained --------------------------------------
echo "$EDU" >"/sys/bus/pci/devices/$EDU/driver/unbind"
if dextd --socket /tmp/e.sock --device "vfio,host=$EDU" 2>/tmp/err; then
    fail "dextd served an unbound device"
fi
cat /tmp/err
grep -q 'driver_override' /tmp/err || fail "no binding commands in the error"
echo "$EDU" >/sys/bus/pci/drivers_probe
pass "an unbound function is refused with the commands to bind it"
