#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The raw config view through the whole stack equals lspci, byte for
# byte, for every real PCI function of this machine: the output of
# "dextctl config BDF -x|-xxx|-xxxx --raw -D" and of
# "lspci -D -s 0000:BDF -x|-xxx|-xxxx", device line included.
#
# Each function is read twice: through a dextd serving "--host all" (the
# whole stack: socket, daemon, core, host backend), and through an
# in-process core (--inproc host,bdf=BDF).  Skipped (exit 77) where sysfs
# shows no PCI function or lspci is missing.  Functions dextd does not
# serve -- outside domain 0000, multimedia (class 04), reading as all
# ones -- are listed as skipped.
#
# Environment (meson sets it): DEXTCTL, DEXTD.
set -u
: "${DEXTCTL:?DEXTCTL is not set}"
: "${DEXTD:?DEXTD is not set}"
SYSFS=/sys/bus/pci/devices
export LC_ALL=C
unset DEXT_TARGET DEXT_SOCKET DEXTCTL_PCI_IDS

if ! command -v lspci >/dev/null 2>&1; then
    echo "lspci-compare: no lspci (Debian: apt-get install pciutils): skipped"
    exit 77
fi
if ! ls "$SYSFS" 2>/dev/null | grep -q .; then
    echo "lspci-compare: $SYSFS shows no PCI function: skipped"
    exit 77
fi
# Names too where dextctl has libpci; numeric IDs (-n) always.
if "$DEXTCTL" --version | grep -q '^PCI names: libpci'; then
    name_modes="names numeric"
else
    echo "note: dextctl was built without libpci: device lines compared" \
        "with numeric IDs only"
    name_modes="numeric"
fi

tmp=$(mktemp -d /tmp/dextctl-lspci.XXXXXX) || exit 1
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The functions dextd serves, in lspci's order.
functions=
for dir in "$SYSFS"/*; do
    name=${dir##*/}
    case $name in
    0000:??:??.?) ;;
    *) echo "skip $name: only domain 0000 is served"; continue ;;
    esac
    class=$(cat "$dir/class" 2>/dev/null)
    vendor=$(cat "$dir/vendor" 2>/dev/null)
    case $class in
    0x04*) echo "skip $name: multimedia function, not served"; continue ;;
    esac
    if [ "$vendor" = 0xffff ]; then
        echo "skip $name: reads as all ones"
        continue
    fi
    functions="$functions ${name#0000:}"
done
if [ -z "$functions" ]; then
    echo "lspci-compare: nothing to compare: skipped"
    exit 77
fi

# The dext core serves at most 64 devices; past that only --inproc.
count=$(printf '%s\n' $functions | wc -l)
if [ "$count" -gt 64 ]; then
    echo "note: $count functions, more than one dext core serves: each is" \
        "compared through an in-process core only"
fi

sock="$tmp/dextd.sock"
if [ "$count" -le 64 ]; then
    "$DEXTD" --socket "$sock" --host all --log-level warning \
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
        echo "lspci-compare: dextd --host all did not start" >&2
        exit 1
    fi
fi

failed=0
compared=0
id=$(id -u)

compare() {
    label=$1
    bdf=$2
    level=$3
    names=$4
    shift 4
    n=
    [ "$names" = numeric ] && n=-n
    label="$label${n:+, -n}"
    "$DEXTCTL" $n "$@" config "$bdf" "-$level" --raw -D \
        >"$tmp/dextctl.out" 2>"$tmp/dextctl.err"
    rc=$?
    lspci $n -D -s "0000:$bdf" "-$level" >"$tmp/lspci.out" \
        2>"$tmp/lspci.err"
    if [ $rc -ne 0 ]; then
        echo "FAIL $bdf -$level ($label): dextctl exited with $rc:"
        cat "$tmp/dextctl.err"
        failed=$((failed + 1))
    elif ! cmp -s "$tmp/dextctl.out" "$tmp/lspci.out"; then
        echo "FAIL $bdf -$level ($label): differs from lspci:"
        diff -u "$tmp/lspci.out" "$tmp/dextctl.out"
        failed=$((failed + 1))
    else
        echo "ok   $bdf -$level ($label): $(($(wc -l <"$tmp/lspci.out") - 2))" \
            "lines equal to lspci's"
    fi
    compared=$((compared + 1))
}

for bdf in $functions; do
    for level in x xxx xxxx; do
        for names in $name_modes; do
            if [ -n "$daemon_pid" ]; then
                compare dextd "$bdf" "$level" "$names" --socket "$sock"
            fi
            compare inproc "$bdf" "$level" "$names" --inproc "host,bdf=$bdf"
        done
    done
done

if [ -n "$daemon_pid" ]; then
    # dextd must list exactly those functions.
    "$DEXTCTL" --socket "$sock" -n list | awk 'NR > 1 { print $1 }' \
        >"$tmp/listed"
    printf '%s\n' $functions >"$tmp/expected"
    if ! cmp -s "$tmp/listed" "$tmp/expected"; then
        echo "FAIL dextctl list does not show exactly the functions of sysfs:"
        diff -u "$tmp/expected" "$tmp/listed"
        failed=$((failed + 1))
    fi

    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    dstatus=$?
    daemon_pid=
    if [ $dstatus -ne 0 ]; then
        echo "FAIL dextd exited with status $dstatus:"
        cat "$tmp/dextd.log"
        failed=$((failed + 1))
    fi
fi

[ "$id" = 0 ] || echo "note: not root: lspci and dextd both see the" \
    "64-byte header only"
echo "lspci-compare: $compared comparisons, $failed failed"
[ $failed -eq 0 ]
