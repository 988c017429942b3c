#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Golden-output tests of dextctl.  One CASE runs a few dextctl commands
# against a dext -- an in-process core (--inproc), or a private dextd on a
# socket in a fresh temporary directory -- writes a transcript of what
# each printed and returned, normalises what changes from run to run
# (pids, temporary paths, times), and compares it with the committed
# golden file golden/CASE-TRANSPORT.txt, else golden/CASE.txt.
#
#   golden.sh --transport inproc|unix|none CASE
#
# Environment (meson sets it): DEXTCTL and DEXTD (the programs),
# HOST_TREE (test-host-sysfs, which builds a fake sysfs tree), GOLDEN_DIR.
# DEXTCTL_UPDATE_GOLDEN=1 writes the golden file instead of comparing.
set -u

transport=
while [ $# -gt 1 ]; do
    case $1 in
    --transport) transport=$2; shift 2 ;;
    *) break ;;
    esac
done
case_name=${1:?usage: golden.sh --transport inproc|unix|none CASE}
: "${DEXTCTL:?DEXTCTL is not set}"
: "${GOLDEN_DIR:?GOLDEN_DIR is not set}"

# Names from the fixture database, the same on every machine.
export DEXTCTL_PCI_IDS="$GOLDEN_DIR/../fixture.ids"
export LC_ALL=C
unset DEXT_TARGET DEXT_SOCKET DEXT_DEBUG

# The golden files show names from the fixture: they need libpci.
if ! "$DEXTCTL" --version | grep -q '^PCI names: libpci'; then
    echo "golden: dextctl was built without libpci (no PCI names): skipped"
    exit 77
fi

tmp=$(mktemp -d /tmp/dextctl-golden.XXXXXX) || exit 1
out="$tmp/transcript"
daemon_pid=
bg_pid=
: >"$out"

cleanup() {
    [ -n "$bg_pid" ] && kill "$bg_pid" 2>/dev/null
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "golden: $*" >&2
    exit 1
}

# Start dextd with the given arguments on a private socket.
start_dextd() {
    : "${DEXTD:?DEXTD is not set}"
    sock="$tmp/dextd.sock"
    "$DEXTD" --socket "$sock" --log-level warning "$@" \
        2>"$tmp/dextd.log" &
    daemon_pid=$!
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 200 ]; do
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            cat "$tmp/dextd.log" >&2
            fail "dextd exited at start"
        fi
        sleep 0.025
        i=$((i + 1))
    done
    [ -S "$sock" ] || fail "dextd did not start listening"
    target_args="--socket $sock"
    target_name="unix:$sock"
}

# A clean stop is part of every test that starts dextd.
stop_dextd() {
    [ -n "$daemon_pid" ] || return 0
    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    status=$?
    daemon_pid=
    if [ $status -ne 0 ]; then
        cat "$tmp/dextd.log" >&2
        fail "dextd exited with status $status"
    fi
}

# Serve DEVICES (dextd's --device specs, or --inproc's joined with '+').
serve() {
    case $transport in
    inproc)
        spec=$(printf '%s' "$*" | tr ' ' '+')
        target_args="--inproc $spec"
        target_name="inproc:$spec"
        ;;
    unix)
        set -- $(for d in "$@"; do printf -- '--device %s ' "$d"; done)
        start_dextd "$@"
        ;;
    none)
        target_args=
        target_name=
        ;;
    esac
}

# Record one command: what was typed, stdout, stderr ("! "), exit status.
record() {
    shown=$1
    shift
    printf '$ dextctl%s%s\n' "${shown:+ }" "$shown" >>"$out"
    "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    status=$?
    cat "$tmp/stdout" >>"$out"
    sed 's/^/! /' "$tmp/stderr" >>"$out"
    printf '[exit %d]\n\n' "$status" >>"$out"
}

# dextctl against the case's dext.
run() {
    # shellcheck disable=SC2086 # target_args is split on purpose
    record "$*" "$DEXTCTL" $target_args "$@"
}

# dextctl with exactly these arguments.
run_raw() {
    record "$*" "$DEXTCTL" "$@"
}

# irq-watch in the background; then wait_output for what it printed.
run_bg() {
    printf '$ dextctl %s &\n' "$*" >>"$out"
    # shellcheck disable=SC2086
    "$DEXTCTL" $target_args "$@" >"$tmp/bg.out" 2>"$tmp/bg.err" &
    bg_pid=$!
}

# Wait (5 s at most) until the background command printed PATTERN.
wait_output() {
    i=0
    while ! grep -q "$1" "$tmp/bg.out" && [ $i -lt 200 ]; do
        sleep 0.025
        i=$((i + 1))
    done
    grep -q "$1" "$tmp/bg.out" || fail "background command never printed '$1'"
}

finish_bg() {
    wait "$bg_pid"
    status=$?
    bg_pid=
    printf '(output of the background command)\n' >>"$out"
    cat "$tmp/bg.out" >>"$out"
    sed 's/^/! /' "$tmp/bg.err" >>"$out"
    printf '[exit %d]\n\n' "$status" >>"$out"
}

edu=00:03.0

# ---------------------------------------------------------------------
# Cases

case_usage() {
    run --help
    run help bar
    run dma-test --help
    run
    run frobnicate
    run help frobnicate
    run info
    run info 0:3
    run info 0001:00:03.0
    run info $edu extra
    run info $edu --bogus
    run bar $edu 7 read 0
    run bar $edu 0 peek 0
    run bar $edu 0 read 0 3
    run bar $edu 0 write 0 4 100000000
    run config $edu 3.w
    run config $edu 4
    run config $edu COMMAND=10000
    run config $edu -x COMMAND
    run config $edu FROB
    run dma-test $edu --size 0
    run irq-watch $edu --count x
    run --socket a --inproc b list
    run --socket
}

case_errors() {
    run_raw --socket "$tmp/nowhere.sock" list
    run_raw --socket "$tmp/nowhere.sock" status
    run_raw --socket "$tmp/nowhere.sock" info $edu
    run_raw --inproc nosuch list
    run_raw --inproc nosuch info $edu
    run_raw --inproc edu info 00:09.0
    run_raw --inproc edu config $edu 100.l
    run_raw --inproc edu config $edu CAP_MSIX.w
    run_raw --inproc edu bar $edu 1 read 0
    run_raw --inproc edu bar $edu 0 read 100000
    run_raw --inproc edu --json status
    run_raw --target bogus:x list
}

case_list() {
    serve edu
    run list
    run -n list
    run --json list
}

# lspci's habits: -s, -d, -t and -k, over a recorded bus with bridges
# (dumps/tree.txt through the dump backend) and an emulated edu.
case_list_lspci() {
    tree="$GOLDEN_DIR/../dumps/tree.txt"
    specs=
    for b in 00:00.0 00:1c.0 00:1c.1 01:00.0 02:00.0 02:00.1; do
        specs="$specs dump,file=$tree,pick=$b"
    done
    # shellcheck disable=SC2086
    serve $specs edu
    run list -t
    run -n list
    run -n list -s 1c
    run -n list -s 02:00
    run -n list -s .1
    run -n list -s '0000:*:00.*'
    run -n list -s 1:
    run -n list -d 8086:
    run -n list -d ::0604
    run -n list -d :1030:0200:00
    run -n list -d 1234:11e8 -s 00:03.0
    run list -s zz
    run list -d 1234
    run list -d 1:2:3:4:5
    run list -t --json
    # -k: drivers from a sysfs of our own; the IDs must match the served
    # function's (00:03.0 is edu here, 00:1c.0 something else there).
    mkdir -p "$tmp/sys/0000:00:03.0" "$tmp/sys/0000:00:1c.0" \
        "$tmp/drivers/edu-test" "$tmp/drivers/pcieport"
    echo 0x1234 >"$tmp/sys/0000:00:03.0/vendor"
    echo 0x11e8 >"$tmp/sys/0000:00:03.0/device"
    ln -s ../../drivers/edu-test "$tmp/sys/0000:00:03.0/driver"
    echo 0x8086 >"$tmp/sys/0000:00:1c.0/vendor"
    echo 0x9999 >"$tmp/sys/0000:00:1c.0/device"
    ln -s ../../drivers/pcieport "$tmp/sys/0000:00:1c.0/driver"
    export DEXTCTL_SYSFS="$tmp/sys"
    run -n list -k
    run list -k -s 03.0
    run --json list -k -s 03.0
    DEXTCTL_SYSFS="$tmp/nosys"
    run -n list -k -s 03.0
    unset DEXTCTL_SYSFS
}

# A recorded function (dumps/hand.txt) through the dump backend: its
# extended capabilities by setpci's names, its decoding, writes refused.
case_dump() {
    serve "dump,file=$GOLDEN_DIR/../dumps/hand.txt"
    run -n list
    run config 00:07.0 ECAP_AER.l ECAP_AER+4.l ECAP_DSN+4.l ecap_dsn+8.l
    run config 00:07.0 ECAP0003.w CAP_EXP+2.w
    run config 00:07.0 ECAP_SRIOV.l
    run config 00:07.0 ECAP_FOO.l
    run config 00:07.0 COMMAND=0x6
    run info 00:07.0
    run info -v 00:07.0
    run info 00:07.0 -vv
    run -n list -v
    run -n list --verbose
}

case_status() {
    serve edu
    run status
    run --json status
}

case_info() {
    serve edu
    run info $edu
    run -n info $edu
    run info $edu --raw
    run --json info $edu
}

case_config() {
    serve edu
    run config $edu -x
    run config $edu
    run config $edu -xxxx
    run config $edu -x --raw -D
    run -n config $edu -x
    run --json config $edu -x --raw
}

case_config_reg() {
    serve edu
    run config $edu VENDOR_ID DEVICE_ID 0.l 8.b CLASS_DEVICE header_type
    run config $edu BASE_ADDRESS_0=fea00000 BASE_ADDRESS_0
    run config $edu --raw BASE_ADDRESS_0=fea00000 BASE_ADDRESS_0 10.w 12.w
    run config $edu CAP_MSI.b CAP_MSI+2.w CAP_MSI+1.b
    run config $edu COMMAND=0:ffff COMMAND=2:2 COMMAND
    run --json config $edu COMMAND=0006 COMMAND 10.l
    run config $edu 100.l
}

case_bar() {
    serve edu
    run bar $edu 0 read 0
    run bar $edu 0 read 0 4
    run bar $edu 0 read 0x80 8
    run bar $edu 0 read 0 2
    run bar $edu 0 write 8 4 5
    run bar $edu 0 read 0 --mmio
    run --json bar $edu 0 read 0
    run --json bar $edu 0 write 4 4 0
    run bar $edu 1 read 0
    run bar $edu 0 read 100000
}

case_dma_test() {
    serve edu ivshmem,size=64K
    run dma-test $edu --size 16k
    run dma-test $edu --size 100
    run dma-test $edu --dma-buffer --size 8k
    run --json dma-test $edu --size 4096
    # ivshmem's DMA engine: chunks as large as BAR2.
    run dma-test 00:04.0 --size 200k
    run dma-test 00:04.0 --dma-buffer --size 64k
}

case_irq_watch() {
    serve edu
    if [ "$transport" = unix ]; then
        # Two interrupts raised by another client through edu's register.
        run_bg irq-watch $edu --count 2 --timeout 10
        wait_output watching
        run bar $edu 0 write 60 4 1
        wait_output 'vector 0'
        run bar $edu 0 write 60 4 1
        finish_bg
        run_bg --json irq-watch $edu --count 1 --timeout 10
        wait_output setup
        run bar $edu 0 write 60 4 1
        finish_bg
    else
        # Nothing else can reach an in-process dext: a quiet watch.
        run irq-watch $edu --timeout 0.2
        run --json irq-watch $edu --timeout 0.1
    fi
}

case_reset() {
    serve edu
    run reset $edu
    run --json reset $edu
    run reset 00:09.0
}

case_state() {
    # dextd keeps device state between clients: what one command leaves,
    # the next one sees.
    serve edu
    run bar $edu 0 write 8 4 5
    run bar $edu 0 read 8
    run bar $edu 0 write 4 4 12345678
    run bar $edu 0 read 4
    run config $edu --raw BASE_ADDRESS_0=fea00000
    run config $edu -x --raw
    run config $edu -x
    run reset $edu
    run bar $edu 0 read 4
    run status
}

case_host() {
    : "${HOST_TREE:?HOST_TREE is not set}"
    "$HOST_TREE" --make-tree "$tmp/sys" || fail "cannot build the fake tree"
    if [ "$transport" = unix ]; then
        start_dextd --device "host,sysfs=$tmp/sys" --allow-writes 00:0a.0
        run list
        run bar 00:05.0 0 read 0
        run bar 00:0a.0 3 write 10 4 deadbeef
        run --json bar 00:0a.0 3 read 10
        run bar 00:0a.0 0 read 100 8
        run --json bar 00:0a.0 2 read 0
        run config 00:0a.0 INTERRUPT_LINE=0b INTERRUPT_LINE
        run config 00:05.0 INTERRUPT_LINE=0b
        run reset 00:0a.0
        run reset 00:05.0
        run irq-watch 00:0a.0
        run info 00:0a.0 --raw
    else
        target_args="--inproc host,sysfs=$tmp/sys"
        target_name="inproc:host,sysfs=$tmp/sys"
        run list
        run info 00:05.0
        run --json info 00:05.0 --raw
        run config 00:05.0
        run config 00:05.0 --raw
        run config 00:06.0 -xxx --raw
        run config 00:09.0 -xxxx
        run info 00:09.0
        run bar 00:05.0 0 read 0
        run config 00:05.0 COMMAND=0
        run reset 00:05.0
        run irq-watch 00:05.0
        run dma-test 00:05.0
    fi
}

# ---------------------------------------------------------------------

fn=case_$(printf '%s' "$case_name" | tr '-' '_')
command -v "$fn" >/dev/null 2>&1 || fail "no case '$case_name'"
target_args=
target_name=
[ "$transport" = none ] || [ "$transport" = inproc ] ||
    [ "$transport" = unix ] || fail "bad transport '$transport'"
"$fn"
stop_dextd

# What differs between runs and machines, replaced by fixed words (bus
# addresses are the IOMMU allocator's business, not dextctl's).
norm="$tmp/normalised"
target_expr='s/^$//'
[ -n "$target_name" ] && target_expr="s|$target_name|TARGET|g"
sed -e "$target_expr" \
    -e "s|$tmp|TMP|g" \
    -e 's/pid [0-9][0-9]*/pid PID/g' \
    -e 's/"server_pid": [0-9][0-9]*/"server_pid": PID/' \
    -e 's/^\(  time  *\).*/\1TIME/' \
    -e 's/"seconds":\( *\)[0-9.][0-9.]*/"seconds":\1TIME/' \
    -e 's/"time":\( *\)[0-9.][0-9.]*/"time":\1TIME/' \
    -e 's/^\[ *[0-9.]*\] /[TIME] /' \
    -e 's/interrupt(s) in [0-9.]* s/interrupt(s) in TIME s/' \
    -e 's/\(source\|destination\) 0x[0-9a-f]*/\1 BUS/g' \
    -e 's/_bus_address": [0-9]*/_bus_address": BUS/' \
    "$out" >"$norm"

# A case whose transcript is the same over every transport has one file.
golden="$GOLDEN_DIR/$case_name-$transport.txt"
[ -f "$golden" ] || golden="$GOLDEN_DIR/$case_name.txt"
if [ "${DEXTCTL_UPDATE_GOLDEN:-}" = 1 ]; then
    [ -f "$golden" ] || golden="$GOLDEN_DIR/$case_name-$transport.txt"
    cp "$norm" "$golden"
    echo "golden: wrote $golden"
    exit 0
fi
[ -f "$golden" ] || fail "no golden file for '$case_name' ($golden)"
if ! diff -u "$golden" "$norm"; then
    echo "golden: $case_name ($transport) differs from $golden" >&2
    echo "golden: (DEXTCTL_UPDATE_GOLDEN=1 rewrites it after a deliberate" \
        "change)" >&2
    exit 1
fi
echo "golden: $case_name ($transport): $(grep -c '^\$ dextctl' "$norm")" \
    "commands as expected"
