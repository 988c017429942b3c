#!/bin/sh
# SPDX-License-Identifier: MIT
#
# dextctl selftest over one transport: every check passes (or is skipped
# only for the reset it was not asked for), in text and JSON, with and
# without --reset, each check naming its rule.  Over the IOKit model also
# against the contract-only dext (what the real one offers), and against
# a dext that breaks ProbeDMARegion's rule (the model's "stale-dma"),
# where exactly the two DMA checks must fail and the run exit 1.
#
#   DEXTCTL=... DEXTD=... MODEL_LIBDIR=... sh selftest.sh inproc|unix|iokit

set -u
: "${DEXTCTL:?}"
transport=${1:?usage: selftest.sh inproc|unix|iokit}
tmp=$(mktemp -d)
daemon_pid=
trap 'kill -KILL $daemon_pid 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL ($transport): $*" >&2
    for f in out err; do
        [ -f "$tmp/$f" ] && { echo "--- $f" >&2; cat "$tmp/$f" >&2; }
    done
    exit 1
}

case $transport in
inproc)
    target="--inproc edu"
    ;;
unix)
    : "${DEXTD:?}"
    "$DEXTD" --socket "$tmp/s" --log-level warning --device edu \
        2>"$tmp/dextd.log" &
    daemon_pid=$!
    i=0
    while [ ! -S "$tmp/s" ] && [ $i -lt 400 ]; do
        sleep 0.025
        i=$((i + 1))
    done
    [ -S "$tmp/s" ] || fail "dextd did not start"
    target="--socket $tmp/s"
    ;;
iokit)
    : "${MODEL_LIBDIR:?}"
    LD_LIBRARY_PATH="$MODEL_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    target="--target iokit"
    ;;
*)
    fail "unknown transport"
    ;;
esac

# selftest ARGS...: run it; $status is its exit status.
selftest() {
    # shellcheck disable=SC2086 # target is split on purpose
    "$DEXTCTL" $target "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}

count() {
    grep -c -- "$1" "$tmp/out"
}

# A run where every check but those named in $1 (a grep -E pattern of
# check names, or '^$') passes; $2 the expected number of failures.
check_run() {
    fails=$1
    nfail=$2
    selftest selftest 00:03.0 $3
    want=0
    [ "$nfail" -eq 0 ] || want=1
    [ "$status" -eq "$want" ] || fail "text: exit $status, not $want"
    grep -q "^selftest of 00:03.0 through " "$tmp/out" ||
        fail "text: no heading"
    grep -q "[0-9]* passed, $nfail failed, " "$tmp/out" ||
        fail "text: not $nfail failed"
    n=$(grep -cE '^  (pass|FAIL|skip) ' "$tmp/out")
    [ "$n" -ge 18 ] || fail "text: only $n checks"
    [ "$(count ' rule: ')" -eq "$n" ] || fail "text: a check without a rule"
    if [ "$nfail" -gt 0 ]; then
        got=$(grep '^  FAIL ' "$tmp/out" | awk '{print $2}' | tr '\n' ' ')
        for c in $got; do
            printf '%s\n' "$c" | grep -qE "$fails" ||
                fail "text: $c failed"
        done
    fi
    [ -s "$tmp/err" ] && fail "text: something on stderr"

    selftest --json selftest 00:03.0 $3
    [ "$status" -eq "$want" ] || fail "json: exit $status, not $want"
    grep -q "\"failed\": $nfail," "$tmp/out" || fail "json: not $nfail failed"
    [ "$(count '"rule": ')" -eq "$n" ] || fail "json: $n checks, not all with rules"
    [ "$(count '"result": "fail"')" -eq "$nfail" ] ||
        fail "json: not $nfail results 'fail'"
}

check_run '^$' 0 ""
# Without --reset the reset is the one check skipped.
selftest selftest 00:03.0
grep -q "^  skip  reset " "$tmp/out" || fail "no --reset, no reset skipped"
check_run '^$' 0 --reset
grep -q '"check": "reset",' "$tmp/out" || fail "json: no reset check"
grep -A1 '"check": "reset",' "$tmp/out" | grep -q '"pass"' ||
    fail "--reset: the reset did not pass"

if [ "$transport" = iokit ]; then
    IOKIT_MODEL_DEVICES=edu+contract-only
    export IOKIT_MODEL_DEVICES
    check_run '^$' 0 --reset
    IOKIT_MODEL_DEVICES=edu+stale-dma
    check_run '^dma-(private|shared-file)$' 2 ""
    grep -q 'written after registering' "$tmp/out" ||
        fail "stale-dma: the failure does not say what the dext read"
fi

if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || fail "dextd exited with status $?"
    daemon_pid=
fi
exit 0
