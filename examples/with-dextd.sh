#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run a libdext client against a private dextd:
#
#   with-dextd.sh DEXTD PROGRAM [ARG...]
#
# Starts DEXTD serving one emulated edu on a socket in a fresh temporary
# directory, runs PROGRAM with DEXT_TARGET pointing at it, then stops
# dextd with SIGTERM.  Succeeds only if PROGRAM succeeds and dextd exits
# cleanly (status 0) within 5 s.
set -u
dextd=$1
shift
dir=$(mktemp -d)
sock="$dir/dextd.sock"
pid=

cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$dextd" --socket "$sock" --device edu 2>"$dir/dextd.log" &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
if [ ! -S "$sock" ]; then
    echo "with-dextd: dextd did not start" >&2
    cat "$dir/dextd.log" >&2
    exit 1
fi

DEXT_TARGET="unix:$sock" "$@"
status=$?

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    echo "with-dextd: dextd did not stop within 5 s" >&2
    dstatus=1
else
    wait "$pid"
    dstatus=$?
fi
pid=
if [ "$dstatus" -ne 0 ]; then
    echo "with-dextd: dextd exited with status $dstatus" >&2
    cat "$dir/dextd.log" >&2
fi
[ "$status" -eq 0 ] && [ "$dstatus" -eq 0 ]
