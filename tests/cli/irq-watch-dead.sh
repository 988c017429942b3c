#!/bin/sh
# SPDX-License-Identifier: MIT
#
# dextctl irq-watch must not report success from a dextd that is gone:
# killed (SIGKILL) during a watch with and without --timeout, and stopped
# (SIGSTOP) through a --timeout watch.  Each must exit 1 with the reason
# and never print the "N interrupt(s)" summary.
#
#   DEXTCTL=... DEXTD=... sh irq-watch-dead.sh

set -u
: "${DEXTCTL:?}" "${DEXTD:?}"
tmp=$(mktemp -d)
daemon_pid=
watch_pid=
trap 'kill -CONT $daemon_pid 2>/dev/null; kill -KILL $daemon_pid $watch_pid 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "irq-watch's stdout:" >&2
    cat "$tmp/out" >&2
    echo "irq-watch's stderr:" >&2
    cat "$tmp/err" >&2
    exit 1
}

start_dextd() {
    rm -f "$tmp/s"
    "$DEXTD" --socket "$tmp/s" --log-level warning --device edu \
        2>>"$tmp/dextd.log" &
    daemon_pid=$!
    i=0
    while [ ! -S "$tmp/s" ] && [ $i -lt 800 ]; do
        sleep 0.025
        i=$((i + 1))
    done
    [ -S "$tmp/s" ] || fail "dextd did not start"
}

# Start a watch with ARGS; wait until it is watching.
start_watch() {
    # Not truncated by the background redirection: that may come late,
    # and the last watch's "watching" must not be taken for this one's.
    rm -f "$tmp/out" "$tmp/err"
    "$DEXTCTL" --socket "$tmp/s" irq-watch 00:03.0 "$@" \
        >"$tmp/out" 2>"$tmp/err" &
    watch_pid=$!
    i=0
    while ! grep -q watching "$tmp/out" 2>/dev/null && [ $i -lt 800 ]; do
        sleep 0.025
        i=$((i + 1))
    done
    grep -q watching "$tmp/out" || fail "irq-watch did not start"
}

# The watch must end within 20 s, exit 1, give a reason, print no summary.
check_failed() {
    what=$1
    i=0
    while kill -0 "$watch_pid" 2>/dev/null && [ $i -lt 800 ]; do
        sleep 0.025
        i=$((i + 1))
    done
    kill -0 "$watch_pid" 2>/dev/null && fail "$what: irq-watch still waits"
    wait "$watch_pid"
    status=$?
    watch_pid=
    [ $status -eq 1 ] || fail "$what: exit $status, not 1"
    grep -q "interrupt(s) in" "$tmp/out" && fail "$what: printed a summary"
    grep -q "not responding\|timeout" "$tmp/err" ||
        fail "$what: no reason given"
    echo "ok: $what: $(head -1 "$tmp/err")"
}

start_dextd
start_watch --timeout 5
kill -KILL $daemon_pid
check_failed "killed, --timeout 5"

start_dextd
start_watch
kill -KILL $daemon_pid
check_failed "killed, no --timeout"

start_dextd
DEXT_TIMEOUT_MS=300 start_watch --timeout 1
kill -STOP $daemon_pid
check_failed "stopped, --timeout 1"
kill -CONT $daemon_pid
kill -TERM $daemon_pid
wait $daemon_pid
exit 0
