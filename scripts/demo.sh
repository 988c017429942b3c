#!/bin/sh
# Run the demo: a private dextd serving edu, the demo client, clean stop.
set -u
build=${1:-build}
dir=$(mktemp -d)
sock="$dir/dextd.sock"
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM

"$build/daemon/dextd" --socket "$sock" --device edu --log-level info \
    2>"$dir/dextd.log" &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if [ ! -S "$sock" ]; then
    echo "demo: dextd did not start:" >&2
    cat "$dir/dextd.log" >&2
    exit 1
fi

DEXT_TARGET="unix:$sock" "$build/examples/dext-demo"
status=$?

kill -TERM $pid
wait $pid
dstatus=$?
echo
echo "dextd log:"
sed 's/^/    /' "$dir/dextd.log"
echo "dextd exited with status $dstatus"
[ $status -eq 0 ] && [ $dstatus -eq 0 ]
