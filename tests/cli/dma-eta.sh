#!/bin/sh
# SPDX-License-Identifier: MIT
#
# dma-test on a size that takes minutes: a warning saying how long, then
# progress lines with an ETA, within a few seconds (the run is stopped
# there).  Environment (meson sets it): DEXTCTL.
set -u
: "${DEXTCTL:?DEXTCTL is not set}"
unset DEXT_TARGET DEXT_SOCKET
err=$(mktemp /tmp/dextctl-eta.XXXXXX) || exit 1
trap 'rm -f "$err"' EXIT
# 16 GiB through edu's 4 KiB buffer takes minutes anywhere.
timeout 4 "$DEXTCTL" --inproc edu dma-test 00:03.0 --size 16G \
    >/dev/null 2>"$err"
rc=$?
cat "$err"
[ $rc -eq 124 ] || { echo "FAIL: dma-test ended with $rc, not stopped"; exit 1; }
grep -q 'dma-test: warning: 16384.0 MiB at .* takes about .* min' "$err" ||
    { echo "FAIL: no warning that the run takes minutes"; exit 1; }
grep -q 'MiB/s, ETA [0-9]' "$err" ||
    { echo "FAIL: no progress line with an ETA"; exit 1; }
echo "dma-eta: warned and showed an ETA"
