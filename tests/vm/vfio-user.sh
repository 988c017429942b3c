#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm-vfio-user (on the host): dext-vfio-user serves our emulated edu to a
# stock QEMU 11.1 -- once from an in-process dext, once through a dextd --
# as vfio-user-pci devices, each behind a PCIe root port (so the guest can
# reset it).  In the guest, under its vIOMMU, the devices are bound to
# vfio-pci and driven by the project's own programs (guest/vfio-user.sh).
# Afterwards the servers must be clean: QEMU has gone, every claim and
# DMA mapping is released, and the next client is served.
#
#   vfio-user.sh SERVER DEXTD DEXTCTL RUN-GUEST -- RUN-GUEST-ARGS...

set -u
server=$1 dextd=$2 dextctl=$3 run_guest=$4
shift 4
[ "${1:-}" = -- ] && shift

dir=$(mktemp -d /tmp/libdext-vfu.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
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
wait_sock "$dir/inproc.sock"
wait_sock "$dir/dextd-vfu.sock"

dev() {     # root port chassis, socket
    echo "-device"
    echo "pcie-root-port,id=vrp$1,chassis=$1,slot=$1"
    echo "-device"
    echo "{\"driver\":\"vfio-user-pci\",\"bus\":\"vrp$1\",\"socket\":{\"type\":\"unix\",\"path\":\"$2\"}}"
}
qargs=()
while read -r a; do qargs+=(--qemu-arg "$a"); done < <(dev 8 "$dir/inproc.sock"; dev 9 "$dir/dextd-vfu.sock")

"$run_guest" "${qargs[@]}" "$@"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || fail "the guest's tests failed (exit $rc)"

# QEMU is gone: nothing may be held for it any more.
for s in inproc dextd; do
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
