# SPDX-License-Identifier: MIT
#
# vm-api (in the guest): the API test programs named as arguments, each
# in process and through dextd, on QEMU's own edus behind VFIO.  The
# harness turns every emulated "edu" device of a test into
# "vfio,host=<next real edu>" ($HARNESS_EDU_HOSTS); a test that needs a
# device only the emulation has skips.  Every test must pass or skip for
# a reason it prints; any failure fails the run.

set +e
# Huge pages for test-dma-abuse's hugetlbfs region, pinned through VFIO
# from inside a huge page.
echo 8 > /proc/sys/vm/nr_hugepages
export HARNESS_EDU_HOSTS="$VM_EDU_BDFS"
export DEXTD
DEXTD=$(command -v dextd)
[ -n "$HARNESS_EDU_HOSTS" ] || { echo "FAIL: no edus"; exit 1; }
echo "# real edus: $HARNESS_EDU_HOSTS"
pass=0 fail=0 skip=0 failed=""
for t in "$@"; do
    for tr in inproc unix; do
        "test-api-$t" --transport "$tr" >/tmp/api.log 2>&1
        rc=$?
        case $rc in
        0) pass=$((pass + 1)); r=ok ;;
        77) skip=$((skip + 1)); r="skip: $(grep -m1 SKIP /tmp/api.log)" ;;
        *) fail=$((fail + 1)); r="FAIL (exit $rc)"; failed="$failed $t-$tr" ;;
        esac
        echo "$t ($tr): $r; $(grep -E '^[0-9]+ passed' /tmp/api.log | tail -1)"
        [ $rc = 0 ] || [ $rc = 77 ] || grep -E "FAIL|Killed|signal" /tmp/api.log | head -20
    done
done
echo "vm-api: $pass passed, $fail failed, $skip skipped${failed:+ (failed:$failed)}"
[ $fail = 0 ]
