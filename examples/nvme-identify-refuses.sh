#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvme-identify against a target that serves no NVMe controller (edu at
# 00:03.0, the default target; with-dextd.sh or DEXT_TARGET sets it):
#
#   nvme-identify-refuses.sh NVME_IDENTIFY
#
# Each case must fail with status 1 and say why, and leave nothing held.
set -u
prog=$1
out=$(mktemp)
status=0
trap 'rm -f "$out"' EXIT

# expect ARGS... -- MESSAGE: exit status 1, MESSAGE on stderr
expect() {
    msg=
    args=
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then
            msg=$2
            break
        fi
        args="$args $1"
        shift
    done
    # shellcheck disable=SC2086
    "$prog" $args >/dev/null 2>"$out"
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q "$msg" "$out"; then
        echo "FAIL: nvme-identify$args: status $rc, want 1 and '$msg':" >&2
        cat "$out" >&2
        status=1
    else
        echo "ok: nvme-identify$args: $(cat "$out")"
    fi
}

expect -- "serves no NVMe controller"
expect 00:03.0 -- "00:03.0 is not an NVMe controller (class code 0x00ff00"
expect 00:1f.7 -- "cannot connect to 00:1f.7.*kIOReturnNotFound"
exit $status
