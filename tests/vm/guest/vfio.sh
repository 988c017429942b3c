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
# Every byte of config space (256, or 4096 for PCIe) of dextctl config
# -xxxx against the guest's sysfs "config" file, but for what differs by
# design, each with its reason:
#   0x04     command: dextd keeps the device closed (memory decoding and
#            bus mastering off) until a claim, vfio-pci had decoding on;
#   0x10-27  BARs: the dext shows type bits only, never addresses;
#   PM+4     power state: vfio-pci puts an idle device in D3hot, and a
#            device dextd holds open is in D0.
compare_cfg() {   # target seen-bdf host-bdf
    DEXT_TARGET=$1 dextctl config -xxxx "$2" |
        sed -n 's/^\([0-9a-f]*\): /\1 /p' >/tmp/cfg.ours ||
        fail "dextctl config -xxxx $2 on $1"
    od -Ax -v -tx1 -w16 "/sys/bus/pci/devices/$3/config" |
        sed -n 's/^0*\([0-9a-f][0-9a-f]*\) /\1 /p' >/tmp/cfg.sysfs
    pm=$(DEXT_TARGET=$1 dextctl info "$2" |
         sed -n 's/^ *0x\([0-9a-f]*\) *Power Management.*/\1/p')
    pm=$((0x${pm:-0} + 4))
    n=$(wc -l </tmp/cfg.ours)
    [ "$n" -ge 16 ] && [ "$n" = "$(wc -l </tmp/cfg.sysfs)" ] ||
        fail "$2: dextctl gives $n lines of config, sysfs $(wc -l </tmp/cfg.sysfs)"
    paste -d'|' /tmp/cfg.ours /tmp/cfg.sysfs | awk -F'|' -v pm="$pm" '
        function hex(h,    v, k) {
            v = 0
            for (k = 1; k <= length(h); k++)
                v = v * 16 + index("0123456789abcdef", substr(h, k, 1)) - 1
            return v
        }
        { split($1, x, " "); split($2, y, " ");
          if (hex(x[1]) != hex(y[1])) { print "offsets differ: " $0; bad = 1 }
          for (i = 2; i <= 17; i++) {
              off = hex(x[1]) + i - 2
              if (off == 4 || (off >= 16 && off < 40) || (pm > 4 && off == pm))
                  continue
              if (x[i] != y[i]) {
                  printf "byte 0x%03x: dextctl %s, sysfs %s\n", off, x[i], y[i]
                  bad = 1
              }
          } }
        END { exit bad }' || fail "$2: config space differs from sysfs"
    echo "$2: $((n * 16)) config bytes agree with sysfs"
}

DEXT_TARGET=$INPROC dextctl list | tee /tmp/list
grep -q '^00:03.0 *1234:11e8 *00ff00' /tmp/list || fail "list: edu"
grep -q '^00:04.0 *1b36:0010 *010802' /tmp/list || fail "list: nvme"
DEXT_TARGET=$INPROC dextctl info 00:04.0 | tee /tmp/info
grep -q 'MSI-X' /tmp/info || fail "info: nvme without MSI-X"
compare_cfg "$INPROC" 00:03.0 "$EDU"
compare_cfg "$INPROC" 00:04.0 "$NVME"
pass "dextctl list/info/config -xxxx in process: config space agrees with sysfs"

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
compare_cfg "$U" 00:03.0 "$EDU"
compare_cfg "$U" 00:04.0 "$NVME"
pass "dextctl config -xxxx through dextd: config space agrees with sysfs"

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
# edu has neither FLR nor PM reset: the kernel resets it with its bus
# (it is alone behind a root port), which the dext reports as hot;
# nvme has FLR.
DEXT_TARGET=$U dextctl reset 00:03.0 | tee /tmp/reset
grep -q 'hot' /tmp/reset || fail "edu: not reported as a hot reset"
DEXT_TARGET=$U dextctl reset 00:04.0 | tee /tmp/reset
grep -q 'function-level' /tmp/reset || fail "nvme: not a function-level reset"
pass "reset of edu (hot, by its bus) and nvme (function-level)"

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
