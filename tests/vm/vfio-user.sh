#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm-vfio-user (on the host): dext-vfio-user serves our emulated edu to a
# stock QEMU 11.1 -- once from an in-process dext, once through a dextd --
# and our emulated ivshmem from an in-process dext, as vfio-user-pci
# devices, each behind a PCIe root port (so the guest can reset it).  In
# the guest, under its vIOMMU, the devices are bound to vfio-pci and
# driven by the project's own programs (guest/vfio-user.sh).  ivshmem's
# shared memory BAR is offered with a sparse-mmap capability: QEMU must
# map the server's memfd, and a value the guest writes to BAR2 must be
# in the server's memfd.  Afterwards the servers must be clean: QEMU has
# gone, every claim and DMA mapping is released, and the next client is
# served.
#
#   vfio-user.sh SERVER DEXTD DEXTCTL RUN-GUEST -- RUN-GUEST-ARGS...

set -u
server=$1 dextd=$2 dextctl=$3 run_guest=$4
shift 4
[ "${1:-}" = -- ] && shift

dir=$(mktemp -d /tmp/libdext-vfu.XXXXXX)
pids=()
watcher=""
cleanup() {
    for p in "${pids[@]}" $watcher; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
wait_sock() {
    for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
    fail "no socket $1"
}

# The in-process dext, and a dextd whose edu the second server reaches.
"$server" --socket "$dir/inproc.sock" --target inproc:edu 00:03.0 \
    >"$dir/server-inproc.log" 2>&1 &
pids+=($!)
"$dextd" --socket "$dir/dextd.sock" --device edu >"$dir/dextd.log" 2>&1 &
pids+=($!)
wait_sock "$dir/dextd.sock"
"$server" --socket "$dir/dextd-vfu.sock" --target "unix:$dir/dextd.sock" \
    00:03.0 >"$dir/server-dextd.log" 2>&1 &
pids+=($!)
"$server" --socket "$dir/ivshmem.sock" --target inproc:ivshmem 00:04.0 \
    >"$dir/server-ivshmem.log" 2>&1 &
ivpid=$!
pids+=($ivpid)
wait_sock "$dir/inproc.sock"
wait_sock "$dir/dextd-vfu.sock"
wait_sock "$dir/ivshmem.sock"

# ivshmem's shared memory as the server holds it: its memfd.
shm_of() {      # pid
    local f
    for f in /proc/"$1"/fd/*; do
        case $(readlink "$f" 2>/dev/null) in
        *memfd:dext-ivshmem*) echo "$f"; return 0 ;;
        esac
    done
    return 1
}
# While the guest runs: some process other than the server (QEMU) maps
# that memfd, i.e. QEMU took the sparse-mmap area and its fd.
(
    while :; do
        for m in /proc/[0-9]*/maps; do
            p=${m#/proc/}; p=${p%/maps}
            [ "$p" = "$ivpid" ] && continue
            grep -q 'memfd:dext-ivshmem' "$m" 2>/dev/null &&
                { echo "$p" >"$dir/qemu-mapped"; exit 0; }
        done
        sleep 1
    done
) &
watcher=$!
mark=$(printf '%08x' $(( (RANDOM << 16 | RANDOM) | 0x10000000 )))

dev() {     # root port chassis, socket
    echo "-device"
    echo "pcie-root-port,id=vrp$1,chassis=$1,slot=$1"
    echo "-device"
    echo "{\"driver\":\"vfio-user-pci\",\"bus\":\"vrp$1\",\"socket\":{\"type\":\"unix\",\"path\":\"$2\"}}"
}
qargs=()
while read -r a; do qargs+=(--qemu-arg "$a"); done < <(dev 8 "$dir/inproc.sock"; dev 9 "$dir/dextd-vfu.sock"
                dev 10 "$dir/ivshmem.sock")
qargs+=(--env "VFU_IVSHMEM_MARK=$mark")

"$run_guest" "${qargs[@]}" "$@"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || fail "the guest's tests failed (exit $rc)"

# ivshmem: QEMU mapped BAR2 itself, and what the guest wrote there is in
# the server's memfd (the guest wrote the mark at 0x1000, 32 bits).
kill "$watcher" 2>/dev/null
[ -s "$dir/qemu-mapped" ] ||
    fail "no process but the server mapped ivshmem's memfd: BAR2 not mmapped"
echo "ok: QEMU (pid $(cat "$dir/qemu-mapped")) mapped ivshmem's BAR2 memfd"
shm=$(shm_of "$ivpid") || fail "the ivshmem server holds no memfd"
got=$(dd if="$shm" bs=4 skip=1024 count=1 status=none | od -An -tx4 |
      tr -d ' \n')
[ "$got" = "$mark" ] ||
    fail "BAR2 at 0x1000 in the server's memfd: $got, the guest wrote $mark"
echo "ok: the guest's BAR2 write ($mark) is in the server's memfd"

# QEMU is gone: nothing may be held for it any more.
for s in inproc dextd ivshmem; do
    grep -q 'client connected\|connected' "$dir/server-$s.log" ||
        fail "server ($s): QEMU never connected"
done
# dextd's own view: the server closed its connection to dextd with the
# client that went.
for _ in $(seq 50); do
    out=$(DEXT_TARGET="unix:$dir/dextd.sock" "$dextctl" status 2>&1) ||
        fail "dextctl status: $out"
    echo "$out" | grep -q 'clients *0 open, 0 holding a claim' &&
        echo "$out" | grep -q 'dma *0 region(s) of 0 bytes, 0 DMA buffer' &&
        break
    sleep 0.1
done
echo "$out"
echo "$out" | grep -q 'clients *0 open, 0 holding a claim' ||
    fail "dextd still has clients after QEMU went away"
echo "$out" | grep -q 'dma *0 region(s) of 0 bytes, 0 DMA buffer' ||
    fail "DMA left registered after QEMU went away"
for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || fail "a server or dextd died (pid $p)"
done
echo "ok: servers alive and clean after QEMU went away"
