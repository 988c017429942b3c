#!/bin/sh
# SPDX-License-Identifier: MIT
#
# /init of the VM rig's guest (busybox).  Mounts, loads the vfio modules,
# binds QEMU's edu and nvme functions to vfio-pci, runs the test script
# that run-guest.sh packed into /opt/libdext/run, and reports on the
# serial console between markers that run-guest.sh looks for:
#   ==== LIBDEXT-VM START ====
#   ==== LIBDEXT-VM END status=N ====

/bin/busybox --install -s /bin
export PATH=/opt/libdext/bin:/bin:/sbin HOME=/tmp

mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts

vm_log() { echo "vm-init: $*"; }

# Files are named N-name.ko so that the glob gives the load order.
for m in /lib/modules/vfio/*.ko; do
    insmod "$m" || vm_log "insmod $m failed"
done

# Hand one PCI function to vfio-pci.  Debian's kernel has no nvme driver
# in here, so nvme is normally unbound; unbind anyway in case.
vm_bind() {
    dev=/sys/bus/pci/devices/$1
    echo vfio-pci >"$dev/driver_override"
    if [ -e "$dev/driver" ]; then
        echo "$1" >"$dev/driver/unbind"
    fi
    echo "$1" >/sys/bus/pci/drivers_probe
    group=$(basename "$(readlink "$dev/iommu_group")")
    # devtmpfs makes the node; give it a moment to appear.
    i=0
    while [ ! -e "/dev/vfio/$group" ] && [ $i -lt 50 ]; do
        usleep 100000
        i=$((i + 1))
    done
    [ -e "/dev/vfio/$group" ] || vm_log "no /dev/vfio/$group for $1"
    echo "$group"
}

VM_EDU_BDF="" VM_EDU_GROUP="" VM_NVME_BDF="" VM_NVME_GROUP=""
VM_EDU_BDFS=""
for dev in /sys/bus/pci/devices/*; do
    bdf=${dev##*/}
    id="$(cat "$dev/vendor"):$(cat "$dev/device")"
    class=$(cat "$dev/class")
    if [ "$id" = "0x1234:0x11e8" ]; then
        group=$(vm_bind "$bdf")
        VM_EDU_BDFS="${VM_EDU_BDFS:+$VM_EDU_BDFS }$bdf"
        if [ -z "$VM_EDU_BDF" ]; then
            VM_EDU_BDF=$bdf
            VM_EDU_GROUP=$group
        fi
    elif [ "$class" = "0x010802" ] && [ -z "$VM_NVME_BDF" ]; then
        VM_NVME_BDF=$bdf
        VM_NVME_GROUP=$(vm_bind "$bdf")
    fi
done
export VM_EDU_BDF VM_EDU_GROUP VM_EDU_BDFS VM_NVME_BDF VM_NVME_GROUP

# From run-guest.sh: VM_SCRIPT_TIMEOUT, exports of --env, the arguments.
VM_SCRIPT_TIMEOUT=60
set --
. /opt/libdext/run/config
export VM_SCRIPT_TIMEOUT

# A line of its own: the firmware leaves escape sequences on the last one.
echo
echo "==== LIBDEXT-VM START ===="
cd /tmp
timeout -s KILL "$VM_SCRIPT_TIMEOUT" sh -e /opt/libdext/run/script "$@"
status=$?
# 137: killed by the time limit.
[ $status -eq 137 ] && vm_log "script killed after $VM_SCRIPT_TIMEOUT s"
echo "==== LIBDEXT-VM END status=$status ===="
sync
poweroff -f
