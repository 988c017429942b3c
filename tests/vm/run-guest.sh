#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot one guest of the VM rig and run a test script in it
# (tests/vm/README.md):
#
#   run-guest.sh [--bin HOSTPATH]... [--file HOSTPATH:GUESTPATH]...
#                [--env NAME=VALUE]... [--qemu-arg ARG]... [--append ARG]...
#                [--timeout SEC] [--mem MB] [--hugetlb] [--keep]
#                GUEST_SCRIPT [ARG]...
#
# The script runs under `sh -e` (busybox) with the ARGs; what it prints
# comes out on standard output, and its exit status is this one's.
# Exit 1 with a reason when the guest did not report (crash, time-out),
# 77 when the rig cannot be built here, or --hugetlb finds too few free
# huge pages (failures, both, under LIBDEXT_VM_REQUIRED).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${LIBDEXT_VM_CACHE:-/var/cache/libdext-vm}

die() { echo "run-guest: $*" >&2; exit 1; }
usage() {
    sed -n '/^#   run-guest.sh/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

bins=() files=() envs=() qemu_args=() appends=()
timeout=300
mem=512
hugetlb=""
keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --bin) bins+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --qemu-arg) qemu_args+=("$2"); shift 2 ;;
    --append) appends+=("$2"); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --hugetlb) hugetlb=",hugetlb=on"; shift ;;
    --keep) keep=1; shift ;;
    --help|-h) usage ;;
    --) shift; break ;;
    -*) echo "run-guest: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || usage
script=$1
shift
[ -f "$script" ] || die "no guest script $script"

# The rig: built or checked (seconds when it is up to date).
rc=0
"$here/build-rig.sh" "$cache" || rc=$?
if [ $rc -eq 77 ] && [ -n "${LIBDEXT_VM_REQUIRED:-}" ]; then
    # CI: root and Debian's archive are there, so this is a broken rig.
    die "the VM rig cannot be built, and LIBDEXT_VM_REQUIRED is set"
fi
if [ $rc -eq 77 ]; then
    echo "run-guest: SKIP: the VM rig cannot be built here" >&2
    exit 77
fi
[ $rc -eq 0 ] || die "build-rig.sh failed (exit $rc)"
. "$cache/rig.env"

# --hugetlb: guest RAM on the host's huge pages, which must be free.
if [ -n "$hugetlb" ]; then
    free_kb=$(awk '/^HugePages_Free:/ {f = $2} /^Hugepagesize:/ {s = $2}
                   END {print f * s}' /proc/meminfo)
    if [ "$free_kb" -lt $((mem * 1024)) ]; then
        why="${mem} MiB of free huge pages wanted, $((free_kb / 1024)) MiB free (vm.nr_hugepages)"
        [ -z "${LIBDEXT_VM_REQUIRED:-}" ] || die "$why, and LIBDEXT_VM_REQUIRED is set"
        echo "run-guest: SKIP: $why" >&2
        exit 77
    fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/libdext-vm.XXXXXX")
log=$work/serial.log
ov=$work/overlay
mkdir -p "$ov/opt/libdext/run" "$ov/opt/libdext/bin"

# Copy a host file to the same path in the guest, links followed.
put() {
    mkdir -p "$ov$(dirname "$2")"
    cp -L "$1" "$ov$2"
}

# Programs go to /opt/libdext/bin (on the guest's PATH), every shared
# library ldd names to /opt/libdext/lib (on LD_LIBRARY_PATH: the build
# tree's $ORIGIN-relative RUNPATHs lead nowhere there, and a tree under
# /tmp would be hidden by the guest's tmpfs), the loader to its own path
# (the programs name it).
libdirs=/opt/libdext/lib
mkdir -p "$ov/opt/libdext/lib"
put_lib() {
    case $(basename "$1") in
    ld-linux*) [ -e "$ov$1" ] || put "$1" "$1" ;;
    *) [ -e "$ov/opt/libdext/lib/$(basename "$1")" ] ||
        put "$1" "/opt/libdext/lib/$(basename "$1")" ;;
    esac
}
for b in ${bins[@]+"${bins[@]}"}; do
    [ -x "$b" ] || die "--bin $b: not an executable"
    put "$b" "/opt/libdext/bin/$(basename "$b")"
    if deps=$(ldd "$b" 2>/dev/null); then
        for lib in $(echo "$deps" | awk '{
                for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
            put_lib "$(realpath -s "$lib")"
        done
    fi
done
# glibc dlopens libgcc_s for pthread_cancel and thread exit unwinding;
# ldd cannot name it.
if [ -e "$ov/opt/libdext/lib/libc.so.6" ]; then
    gcc_s=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ { print $NF; exit }')
    [ -z "$gcc_s" ] || put_lib "$gcc_s"
fi
for f in ${files[@]+"${files[@]}"}; do
    src=${f%%:*}
    dst=${f#*:}
    [ "$src" != "$f" ] && [ -n "$dst" ] || die "--file $f: want HOSTPATH:GUESTPATH"
    [ -e "$src" ] || die "--file $f: no $src"
    mkdir -p "$ov$(dirname "$dst")"
    cp -rL "$src" "$ov$dst"
done
cp "$script" "$ov/opt/libdext/run/script"

# The script's time limit inside the guest stays under ours, so that a
# slow script is reported by the guest rather than killed with QEMU.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
    echo "VM_SCRIPT_TIMEOUT=$((timeout * 3 / 4))"
    [ -z "$libdirs" ] || echo "export LD_LIBRARY_PATH=$(quote "$libdirs")"
    for e in ${envs[@]+"${envs[@]}"}; do
        case $e in
        [A-Za-z_]*=*) echo "export ${e%%=*}=$(quote "${e#*=}")" ;;
        *) die "--env $e: want NAME=VALUE" ;;
        esac
    done
    printf 'set --'
    for a in "$@"; do
        printf ' %s' "$(quote "$a")"
    done
    echo
} >"$ov/opt/libdext/run/config"

# The kernel takes concatenated cpio archives: the per-run overlay lands
# on top of the cached base.
(cd "$ov" && find . | "$cache/busybox" cpio -o -H newc 2>/dev/null) |
    gzip -1 >"$work/overlay.cpio.gz"
cat "$cache/base.cpio.gz" "$work/overlay.cpio.gz" >"$work/initrd.gz"
truncate -s 16M "$work/nvme.img"

chroot_dir=$RIG_CHROOT
qemu=(
    "$RIG_LOADER" --library-path "$chroot_dir/usr/lib/x86_64-linux-gnu"
    "$chroot_dir/usr/bin/qemu-system-x86_64"
    -L "$chroot_dir/usr/share/qemu" -L "$chroot_dir/usr/share/seabios"
    -machine q35,memory-backend=mem -accel tcg
    -m "${mem}M"
    -object "memory-backend-memfd,id=mem,size=${mem}M,share=on$hugetlb"
    -nographic -no-reboot -nic none
    # The IOMMU first: devices plugged before it would bypass it.
    -device intel-iommu,intremap=on,caching-mode=on
    # Three edus, each alone behind a root port: a function alone on its
    # bus can be reset (a secondary bus reset), which edu, with no FLR,
    # cannot be on the root bus.  Three: the API tests use up to three.
    -device pcie-root-port,id=rp1,chassis=1,slot=1 -device edu,bus=rp1
    -device pcie-root-port,id=rp2,chassis=2,slot=2 -device edu,bus=rp2
    -device pcie-root-port,id=rp3,chassis=3,slot=3 -device edu,bus=rp3
    -drive "if=none,id=nv0,format=raw,file=$work/nvme.img"
    -device nvme,serial=LIBDEXTVM01,drive=nv0
    -kernel "$cache/vmlinuz" -initrd "$work/initrd.gz"
    # no_timer_check: on a loaded host TCG is too slow for the IO-APIC
    # timer check, and the kernel panics ("timer doesn't work through
    # Interrupt-remapped IO-APIC").
    -append "console=ttyS0 panic=-1 quiet intel_iommu=on no_timer_check ${appends[*]+${appends[*]}}"
)
qemu+=(${qemu_args[@]+"${qemu_args[@]}"})

start=$(date +%s.%N)
qrc=0
QEMU_MODULE_DIR=$chroot_dir/usr/lib/x86_64-linux-gnu/qemu \
    timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$log" 2>&1 || qrc=$?
secs=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')

# What the script printed: the lines between the markers.
tr -d '\r' <"$log" >"$log.txt"
awk '/^==== LIBDEXT-VM END status=[0-9]+ ====$/ { exit }
     on { print }
     /==== LIBDEXT-VM START ====$/ { on = 1 }' "$log.txt"
status=$(sed -n 's/^==== LIBDEXT-VM END status=\([0-9]*\) ====$/\1/p' "$log.txt")

fail() {
    echo "run-guest: FAIL: $*" >&2
    echo "run-guest: serial log $log; its last lines:" >&2
    tail -n 30 "$log.txt" | sed 's/^/  | /' >&2
    exit 1
}
if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
    fail "no power-off within $timeout s: QEMU killed"
fi
grep -q '==== LIBDEXT-VM START ====$' "$log.txt" ||
    fail "the guest never started the script (QEMU exit $qrc)"
[ -n "$status" ] || fail "the guest did not report the end of the script (QEMU exit $qrc)"
echo "run-guest: guest script exit $status; boot to power-off ${secs} s" \
    "($RIG_QEMU_BANNER)" >&2
if [ "$status" -ne 0 ]; then
    echo "run-guest: serial log kept: $log" >&2
elif [ $keep -eq 0 ]; then
    rm -rf "$work"
fi
exit "$status"
