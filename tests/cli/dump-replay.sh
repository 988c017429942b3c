#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Record and replay: the dump backend serves back what lspci's hex dump
# format recorded, byte for byte.
#
#   dump-replay.sh hand   the hand-written dumps under dumps/: replayed
#                         through dextd (--device dump,file=...) and an
#                         in-process core, BAR sizes from Region lines and
#                         options, writes refused, pick=, malformed dumps
#                         refused
#   dump-replay.sh real   every real PCI function of this machine recorded
#                         with "lspci -xxxx" and replayed, compared with
#                         the recording (skipped, 77, without lspci or
#                         without PCI functions)
#
# Environment (meson sets it): DEXTCTL, DEXTD, DUMP_DIR.
set -u
: "${DEXTCTL:?DEXTCTL is not set}"
: "${DEXTD:?DEXTD is not set}"
: "${DUMP_DIR:?DUMP_DIR is not set}"
mode=${1:?usage: dump-replay.sh hand|real}
export LC_ALL=C
unset DEXT_TARGET DEXT_SOCKET DEXTCTL_PCI_IDS

tmp=$(mktemp -d /tmp/dextctl-dump.XXXXXX) || exit 1
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failed=0
checks=0
ok() { echo "ok   $*"; checks=$((checks + 1)); }
bad() { echo "FAIL $*"; checks=$((checks + 1)); failed=$((failed + 1)); }

# start_dextd SPEC...: a private dextd serving --device SPEC each.
start_dextd() {
    sock="$tmp/dextd.sock"
    args=
    for spec in "$@"; do
        args="$args --device $spec"
    done
    # shellcheck disable=SC2086
    "$DEXTD" --socket "$sock" $args --log-level warning \
        2>"$tmp/dextd.log" &
    daemon_pid=$!
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 200 ] &&
        kill -0 "$daemon_pid" 2>/dev/null; do
        sleep 0.025
        i=$((i + 1))
    done
    if [ ! -S "$sock" ]; then
        cat "$tmp/dextd.log" >&2
        echo "dump-replay: dextd did not start" >&2
        exit 1
    fi
}

stop_dextd() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || bad "dextd exited with $?: $(cat "$tmp/dextd.log")"
    daemon_pid=
}

# The hex lines of a dump (device line and -v text dropped), and those
# of dextctl's replay: equal byte for byte, gaps in the recording aside.
hex_only() { grep -E '^[0-9a-f]{2,3}: ' "$1"; }

# replay LABEL BDF LEVEL EXPECTED TARGET-ARGS...: dextctl's dump of BDF
# (-n, --raw) equals EXPECTED, device line included.
replay() {
    label=$1 bdf=$2 level=$3 expected=$4
    shift 4
    if ! "$DEXTCTL" -n "$@" config "$bdf" "-$level" --raw \
        >"$tmp/out" 2>"$tmp/err"; then
        bad "$label: dextctl failed: $(cat "$tmp/err")"
    elif cmp -s "$tmp/out" "$expected"; then
        ok "$label: $(($(wc -l <"$expected") - 2)) lines equal"
    else
        bad "$label: replay differs from the recording:"
        diff -u "$expected" "$tmp/out"
    fi
}

if [ "$mode" = hand ]; then
    hand="$DUMP_DIR/hand.txt"
    two="$DUMP_DIR/two.txt"

    # What a full replay must print: the recording with its gaps as zeros.
    {
        echo "00:07.0 0108: 1144:5678 (rev 02)"
        o=0
        while [ $o -lt 4096 ]; do
            off=$(printf '%02x' $o)
            line=$(grep "^$off: " "$hand")
            if [ -n "$line" ]; then
                echo "$line"
            else
                echo "$off: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
            fi
            o=$((o + 16))
        done
        echo
    } >"$tmp/hand.expected"
    if ! grep -q '^140: 03 00 01 00' "$tmp/hand.expected"; then
        echo "dump-replay: cannot build the expected replay" >&2
        exit 1
    fi

    replay "inproc hand.txt -xxxx" 00:07.0 xxxx "$tmp/hand.expected" \
        --inproc "dump,file=$hand"
    start_dextd "dump,file=$hand" "dump,file=$two,pick=00:02.0"
    replay "dextd hand.txt -xxxx" 00:07.0 xxxx "$tmp/hand.expected" \
        --socket "$sock"
    head -n 17 "$tmp/hand.expected" >"$tmp/hand.xxx"
    echo >>"$tmp/hand.xxx"
    replay "dextd hand.txt -xxx" 00:07.0 xxx "$tmp/hand.xxx" \
        --socket "$sock"
    { echo "00:02.0 ff00: 1234:0002"; hex_only "$two" | tail -n 4; echo; } \
        >"$tmp/two.expected"
    replay "dextd two.txt,pick=00:02.0 -x" 00:02.0 x "$tmp/two.expected" \
        --socket "$sock"

    # BAR sizes from the Region lines; identity from the bytes.
    "$DEXTCTL" -n --socket "$sock" info 00:07.0 >"$tmp/info" 2>&1
    if grep -q '^  0  .*memory  0x4000 (16 KiB)' "$tmp/info" &&
        grep -q '^  4  .*io      0x20 (32 bytes)' "$tmp/info" &&
        grep -q '^  vendor        1144' "$tmp/info"; then
        ok "BAR sizes and identity from the dump"
    else
        bad "info does not show the dump's BARs and identity:"
        cat "$tmp/info"
    fi
    # Writes are refused, the recording unchanged.
    if "$DEXTCTL" --socket "$sock" config 00:07.0 COMMAND=0x6 \
        >"$tmp/w" 2>&1; then
        bad "a config write to a dump succeeded"
    elif grep -q kIOReturnNotPermitted "$tmp/w"; then
        ok "config write refused (kIOReturnNotPermitted)"
    else
        bad "config write refused with the wrong error: $(cat "$tmp/w")"
    fi
    stop_dextd

    # Options: a BAR size and an address of one's own.
    "$DEXTCTL" -n --inproc "dump,file=$hand,bar0=1M,bdf=00:1f.7" \
        info 00:1f.7 >"$tmp/info" 2>&1
    if grep -q '^  0  .*memory  0x100000 (1 MiB)' "$tmp/info"; then
        ok "bar0=1M and bdf=00:1f.7"
    else
        bad "bar0=1M,bdf=00:1f.7 not honoured:"
        cat "$tmp/info"
    fi

    # Refused: several devices without pick=, a missing device, a missing
    # file, malformed dumps.
    printf '00:01.0 x\n00: zz 11\n' >"$tmp/nonhex.txt"
    printf '00:01.0 x\n1000: 00 11\n' >"$tmp/range.txt"
    printf '00:01.0 x\n08: 00 11\n' >"$tmp/unaligned.txt"
    printf '00:01.0 x\n00: %s\n' "$(printf '00 %.0s' $(seq 17))" \
        >"$tmp/long.txt"
    printf '00:01.0 x\n00:%0600d\n' 0 >"$tmp/huge-line.txt"
    printf 'hello\n' >"$tmp/junk.txt"
    printf '00:01.0 x\n00: 86 80\n' >"$tmp/short.txt"
    for spec in "$two" "$two,pick=00:05.0" "$tmp/absent.txt" \
        "$tmp/nonhex.txt" "$tmp/range.txt" "$tmp/unaligned.txt" \
        "$tmp/long.txt" "$tmp/huge-line.txt" "$tmp/junk.txt" \
        "$tmp/short.txt" "$hand,bar6=4K" "$hand,bar0=0"; do
        if "$DEXTCTL" --inproc "dump,file=$spec" list >/dev/null 2>&1; then
            bad "dump,file=${spec#"$tmp/"} accepted"
        else
            ok "dump,file=${spec#"$tmp/"} refused"
        fi
    done
    # lspci -F reads the same recording of a bus with bridges: its tree
    # and dextctl's replay of it agree.
    if command -v lspci >/dev/null 2>&1; then
        tree="$DUMP_DIR/tree.txt"
        specs=
        for b in $(grep -E '^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] ' "$tree" | cut -d' ' -f1); do
            specs="$specs${specs:++}dump,file=$tree,pick=$b"
        done
        lspci -F "$tree" -t >"$tmp/lspci.tree" 2>/dev/null
        if "$DEXTCTL" --inproc "$specs" list -t >"$tmp/dextctl.tree" 2>&1 &&
            cmp -s "$tmp/lspci.tree" "$tmp/dextctl.tree"; then
            ok "list -t of tree.txt equals lspci -F tree.txt -t"
        else
            bad "list -t of tree.txt differs from lspci -F -t:"
            diff -u "$tmp/lspci.tree" "$tmp/dextctl.tree"
        fi
    fi
else
    if ! command -v lspci >/dev/null 2>&1; then
        echo "dump-replay: no lspci (Debian: apt-get install pciutils):" \
            "skipped"
        exit 77
    fi
    lspci -n -xxxx >"$tmp/all.txt" 2>/dev/null
    bdfs=$(grep -E '^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] ' "$tmp/all.txt" |
        cut -d' ' -f1)
    if [ -z "$bdfs" ]; then
        echo "dump-replay: lspci shows no PCI function: skipped"
        exit 77
    fi
    specs=
    for bdf in $bdfs; do
        f="$tmp/$(echo "$bdf" | tr ':.' '--').txt"
        lspci -n -xxxx -s "$bdf" >"$f" 2>/dev/null
        # A function reading as all ones cannot be served: skipped.
        if grep -q '^00: ff ff ff ff' "$f"; then
            echo "skip $bdf: reads as all ones"
            continue
        fi
        replay "inproc $bdf" "$bdf" xxxx "$f" --inproc "dump,file=$f"
        specs="$specs dump,file=$f"
    done
    # All at once through one dextd (at most 64 devices per core), and
    # the whole multi-device recording through pick=.
    # shellcheck disable=SC2086
    set -- $specs
    if [ $# -le 64 ]; then
        start_dextd "$@"
        for bdf in $bdfs; do
            f="$tmp/$(echo "$bdf" | tr ':.' '--').txt"
            grep -q '^00: ff ff ff ff' "$f" ||
                replay "dextd $bdf" "$bdf" xxxx "$f" --socket "$sock"
        done
        stop_dextd
    fi
    # The bus tree of this machine as dextctl draws it from the host
    # functions' bridge registers, and the one lspci draws.
    if [ -z "$(lspci -D 2>/dev/null | grep -v '^0000:')" ]; then
        lspci -t >"$tmp/lspci.tree" 2>/dev/null
        if "$DEXTCTL" --inproc host list -t >"$tmp/dextctl.tree" 2>&1 &&
            cmp -s "$tmp/lspci.tree" "$tmp/dextctl.tree"; then
            ok "list -t draws lspci -t's tree"
        else
            bad "list -t differs from lspci -t:"
            diff -u "$tmp/lspci.tree" "$tmp/dextctl.tree"
        fi
    fi
    bdf=$(echo "$bdfs" | head -n 1)
    f="$tmp/$(echo "$bdf" | tr ':.' '--').txt"
    replay "inproc all.txt,pick=$bdf" "$bdf" xxxx "$f" \
        --inproc "dump,file=$tmp/all.txt,pick=$bdf"
fi

echo "dump-replay $mode: $checks checks, $failed failed"
[ $failed -eq 0 ]
