#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run every libFuzzer target of BUILD for SECONDS each, starting from the
# committed seeds (new inputs go to a scratch directory, never into
# fuzz/corpus/).  A crash, leak or timeout is a failure; the reproducer
# is kept in BUILD/fuzz-artifacts/.  Ends with meson-style "Ok:" and
# "Fail:" lines so .ci/run can count the targets.
#
#   scripts/fuzz.sh [BUILD [SECONDS]]
set -u
build=${1:-build-fuzz}
secs=${2:-30}
src=$(cd "$(dirname "$0")/.." && pwd)
ok=0
fail=0
mkdir -p "$build/fuzz-artifacts"
for t in wire-request wire-reply core sock dextd dump vfio-user; do
    bin="$build/fuzz/fuzz-$t"
    # dext-vfio-user is built only with json-c.
    [ "$t" = vfio-user ] && [ ! -x "$bin" ] && continue
    work=$(mktemp -d)
    echo "--- fuzz-$t for ${secs}s"
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
            -print_final_stats=1 \
            -artifact_prefix="$build/fuzz-artifacts/$t-" \
            "$work" "$src/fuzz/corpus/$t" >"$build/fuzz-$t.log" 2>&1; then
        ok=$((ok + 1))
    else
        fail=$((fail + 1))
        tail -40 "$build/fuzz-$t.log"
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ *DONE' \
        "$build/fuzz-$t.log"
    rm -rf "$work"
done
echo "Ok:                 $ok"
echo "Fail:               $fail"
[ "$fail" -eq 0 ]
