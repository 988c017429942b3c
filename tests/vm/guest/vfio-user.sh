# SPDX-License-Identifier: MIT
#
# vm-vfio-user (in the guest): the vfio-user-pci devices -- our emulated
# edu served by dext-vfio-user on the host, in process and through
# dextd, and our ivshmem in process -- bound to vfio-pci under the
# guest's vIOMMU and driven by the project's programs through the vfio
# backend, as the QEMU edus are in vm-api.  The guest kernel's own view
# is checked too.

set -e
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

# A dextd in the guest serving DEVICE on SOCK, its log in LOG; $g is its
# pid once SOCK is there.
start_dextd() {     # SOCK DEVICE LOG
    dextd --socket "$1" --device "$2" 2>"$3" &
    g=$!
    i=0
    until [ -S "$1" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "no dextd in the guest ($2)"
        usleep 100000
    done
}

# The rig's own edus sit on buses 01-03 (their root ports come first on
# QEMU's command line); the vfio-user ones on the buses after.
VFU=""
for b in $VM_EDU_BDFS; do
    case $b in 0000:0[0-3]:*) ;; *) VFU="${VFU:+$VFU }$b" ;; esac
done
[ "$(echo $VFU | wc -w)" = 2 ] || fail "want two vfio-user edus, found '$VFU'"
export DEXTD
DEXTD=$(command -v dextd)

for b in $VFU; do
    d=/sys/bus/pci/devices/$b
    # The guest kernel's view: identity, class, BAR0 sized and assigned.
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x1234:0x11e8 ] || fail "$b id"
    [ "$(cat $d/class)" = 0x00ff00 ] || fail "$b class $(cat $d/class)"
    size=$(head -n 1 $d/resource | awk '{ print $2 - $1 + 1 }')
    [ "$size" = 1048576 ] || fail "$b BAR0 of $size bytes"
    pass "$b: 1234:11e8 class 00ff00, BAR0 1 MiB, bound to vfio-pci"

    T="inproc:vfio,host=$b,bdf=00:03.0,dma_mask=0xfffffff"
    DEXT_TARGET=$T dextctl dma-test 00:03.0 --size 16k ||
        fail "$b: dma-test"
    # An MSI from the device all the way to a client of a dextd in the
    # guest: edu's raise register, QEMU, the guest's vfio-pci, our vfio
    # backend; the guest kernel counts it in /proc/interrupts.
    start_dextd /tmp/g.sock "vfio,host=$b,bdf=00:03.0" /tmp/gdextd.log
    DEXT_TARGET=unix:/tmp/g.sock dextctl irq-watch 00:03.0 --count 1 \
        --timeout 30 >/tmp/watch &
    w=$!
    sleep 3
    DEXT_TARGET=unix:/tmp/g.sock dextctl bar 00:03.0 0 write 60 4 1 ||
        fail "$b: raise"
    wait $w || { cat /tmp/watch; fail "$b: no interrupt reached irq-watch"; }
    cat /tmp/watch
    grep vfio-msi /proc/interrupts || true
    kill -TERM $g
    wait $g || fail "dextd in the guest: exit $?"
    pass "$b: MSI through vfio-user, the guest's VFIO and dextd"

    # The API programs that drive edu, both ways, on this device.
    EDU_DIFF_NO_INTX=1 VM_EDU_BDFS=$b sh /opt/libdext/run/api.sh "$@" ||
        fail "$b: API tests"
done
pass "both vfio-user edus pass"

# ivshmem served in process on the host: bound to vfio-pci here.
IV=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x1af4:0x1110 ] && IV=${d##*/}
done
[ -n "$IV" ] || fail "no vfio-user ivshmem"
d=/sys/bus/pci/devices/$IV
echo vfio-pci >$d/driver_override
[ -e $d/driver ] && echo $IV >$d/driver/unbind
echo $IV >/sys/bus/pci/drivers_probe
group=$(basename "$(readlink $d/iommu_group)")
i=0
until [ -e /dev/vfio/$group ]; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "$IV: no /dev/vfio/$group"
    usleep 100000
done
[ "$(cat $d/class)" = 0x050000 ] || fail "$IV class $(cat $d/class)"
size=$(sed -n 3p $d/resource | awk '{ print $2 - $1 + 1 }')
[ "$size" = 4194304 ] || fail "$IV BAR2 of $size bytes"
pass "$IV: 1af4:1110 class 050000, BAR2 4 MiB, bound to vfio-pci"

T="inproc:vfio,host=$IV,bdf=00:04.0"
DEXT_TARGET=$T dextctl info 00:04.0 >/tmp/ivinfo || fail "$IV: info"
cat /tmp/ivinfo
grep -q '256 vector(s) (MSI-X)' /tmp/ivinfo || fail "$IV: not 256 MSI-X"
grep -q 'MSI-X: table size 256' /tmp/ivinfo || fail "$IV: MSI-X table"
pass "$IV: 256 MSI-X vectors"

# BAR2 is QEMU's mapping of the server's memfd: what we write through
# our MMIO calls is there for the host to check, and the device model
# (its DMA engine, in the server) reaches the same memory.
DEXT_TARGET=$T dextctl bar 00:04.0 2 write 1000 4 0x$VFU_IVSHMEM_MARK ||
    fail "$IV: BAR2 write"
got=$(DEXT_TARGET=$T dextctl bar 00:04.0 2 read 1000 4)
[ "$got" = "$VFU_IVSHMEM_MARK" ] || fail "$IV: BAR2 reads $got"
DEXT_TARGET=$T dextctl dma-test 00:04.0 --size 64k || fail "$IV: dma-test"
pass "$IV: BAR2 written ($VFU_IVSHMEM_MARK); DMA through the device model"
DEXT_TARGET=$T dextctl bar 00:04.0 2 write 1000 4 0x$VFU_IVSHMEM_MARK ||
    fail "$IV: BAR2 write"

# An MSI-X vector from ivshmem to a client of a dextd in the guest: the
# Doorbell register (peer 0, vector 5), the server's device model, QEMU's
# MSI-X emulation, the guest's vfio-pci, our vfio backend.  The guest
# has one CPU, so its kernel cannot reserve all 256 vectors (ENOSPC): the
# backend takes fewer, as a driver would.
start_dextd /tmp/iv.sock "vfio,host=$IV,bdf=00:04.0" /tmp/ivdextd.log
# Two rings: the guest kernel's count is read between them, while the
# watcher holds the vectors (they are freed when it goes).
DEXT_TARGET=unix:/tmp/iv.sock dextctl irq-watch 00:04.0 --count 2 \
    --timeout 30 >/tmp/ivwatch &
w=$!
sleep 3
DEXT_TARGET=unix:/tmp/iv.sock dextctl bar 00:04.0 0 write c 4 5 ||
    fail "$IV: doorbell"
i=0
until grep -q 'vector 5$' /tmp/ivwatch; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat /tmp/ivwatch /tmp/ivdextd.log
                        fail "$IV: no MSI-X vector reached irq-watch"; }
    usleep 100000
done
msix=$(grep "vfio-msix\[5\]($IV)" /proc/interrupts) ||
    { grep vfio /proc/interrupts
      fail "$IV: no vfio-msix[5] in /proc/interrupts"; }
echo "$msix"
[ "$(echo $msix | awk '{ print $2 }')" -ge 1 ] ||
    fail "$IV: the guest kernel counted no interrupt on vfio-msix[5]"
DEXT_TARGET=unix:/tmp/iv.sock dextctl bar 00:04.0 0 write c 4 5 ||
    fail "$IV: doorbell"
wait $w || { cat /tmp/ivwatch; fail "$IV: the second ring was lost"; }
cat /tmp/ivwatch
kill -TERM $g
wait $g || fail "dextd for ivshmem in the guest: exit $?"
pass "$IV: MSI-X vector 5 through vfio-user, the guest's VFIO and dextd"
pass "ivshmem through vfio-user"
