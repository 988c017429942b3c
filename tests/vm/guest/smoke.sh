# SPDX-License-Identifier: MIT
#
# vm-smoke (runs in the guest under sh -e): the rig's promises to every
# VM test -- edu and nvme behind vfio-pci with their groups, sysfs config
# readable, the mounts, and the project's dynamically linked programs
# running (dextctl in process, and through a dextd in the guest).

fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

for name in EDU NVME; do
    eval bdf=\$VM_${name}_BDF group=\$VM_${name}_GROUP
    [ -n "$bdf" ] || fail "no $name function found (VM_${name}_BDF empty)"
    [ -n "$group" ] || fail "$name $bdf: no iommu group"
    [ -c "/dev/vfio/$group" ] || fail "$name $bdf: no /dev/vfio/$group"
    drv=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")
    [ "$drv" = vfio-pci ] || fail "$name $bdf: driver '$drv', not vfio-pci"
    pass "$name $bdf, group $group, /dev/vfio/$group, vfio-pci"
done

# Vendor and device IDs through sysfs config (little-endian words).
ids=$(od -An -tx2 -N4 "/sys/bus/pci/devices/$VM_EDU_BDF/config" | tr -s ' ')
[ "$ids" = " 1234 11e8" ] || fail "edu config reads '$ids'"
ids=$(od -An -tx2 -N4 "/sys/bus/pci/devices/$VM_NVME_BDF/config" | tr -s ' ')
[ "$ids" = " 1b36 0010" ] || fail "nvme config reads '$ids'"
pass "config space of both reads 1234:11e8 and 1b36:0010"

for m in /proc /sys /dev /tmp /dev/shm; do
    grep -q " $m " /proc/mounts || fail "$m not mounted"
done
pass "/proc /sys /dev /tmp /dev/shm mounted"

dextctl --version
out=$(DEXT_TARGET=inproc:edu dextctl list)
echo "$out"
echo "$out" | grep -q '1234:11e8' || fail "dextctl list (inproc:edu) shows no edu"
pass "dextctl list in process"

dextd --socket /tmp/dextd.sock --device edu,bdf=00:05.0 &
dpid=$!
i=0
until [ -S /tmp/dextd.sock ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "dextd made no socket in 10 s"
    usleep 100000
done
out=$(DEXT_TARGET=unix:/tmp/dextd.sock dextctl list)
echo "$out"
echo "$out" | grep -q '^00:05.0 *1234:11e8' || fail "dextctl list via dextd"
kill -TERM $dpid
wait $dpid || fail "dextd exited $? on SIGTERM"
pass "dextctl list through dextd, dextd stopped cleanly"
