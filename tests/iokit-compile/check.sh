#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The IOKit transport compile check (meson test suite 'iokit').
#
#   check.sh SRCROOT BUILDINC
#
# There is no Mac in CI, so transport/iokit.c is compiled here against
# the declaration-only stand-ins of Apple's headers in include/ beside
# this script, with -Wall -Wextra -Werror, by gcc and by clang (the
# compiler of macOS) when present.  The client library (client/*.c) and
# the transport registry are compiled the same way, since on a Mac they
# see Apple's typedefs instead of libdext's own, and with __linux__
# undefined and every Linux-only function renamed (linux-only.h): the
# transport-independent code must call none.  Then:
#
#  * every probe in probes/ must compile as is and must fail with
#    -DPROBE_BAD, which shows the stand-ins really hold Apple's
#    signatures (a wrong argument count, type or name is an error);
#  * the Apple functions the object calls must be exactly the list
#    below, which docs/transports.md tabulates.
#
# Nothing is linked or run: what passes here has been compile-checked,
# no more.
set -u

src=$1
buildinc=$2
here="$src/tests/iokit-compile"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0
pass=0

ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }

flags="-std=gnu11 -DLIBDEXT_HAVE_IOKIT=1 -Wall -Wextra -Werror \
    -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
    -Wno-unused-parameter -Wno-missing-field-initializers \
    -I$here/include -I$src/include -I$buildinc -I$src"

# Apple functions and data the transport uses (sorted).
expected="CFGetTypeID
CFRelease
CFStringCompare
CFStringGetTypeID
IOConnectCallAsyncMethod
IOConnectCallMethod
IOConnectMapMemory64
IOConnectUnmapMemory64
IOIteratorNext
IONotificationPortCreate
IONotificationPortDestroy
IONotificationPortGetMachPort
IONotificationPortSetDispatchQueue
IOObjectRelease
IORegistryEntryCreateCFProperty
IORegistryEntryGetRegistryEntryID
IORegistryEntryIDMatching
IOServiceAddInterestNotification
IOServiceClose
IOServiceGetMatchingService
IOServiceGetMatchingServices
IOServiceMatching
IOServiceOpen
__CFStringMakeConstantString
dispatch_queue_create
dispatch_release
dispatch_sync_f
kCFAllocatorDefault
kIOMainPortDefault
mach_task_self_"

compilers=""
for c in "${CC:-cc}" clang; do
    if command -v "$c" >/dev/null 2>&1; then
        case " $compilers " in
            *" $c "*) ;;
            *) compilers="$compilers $c" ;;
        esac
    fi
done

for cc in $compilers; do
    # shellcheck disable=SC2086
    if $cc $flags -c "$src/transport/iokit.c" -o "$tmp/iokit-$cc.o" \
        2>"$tmp/err"; then
        ok "$cc: transport/iokit.c compiles"
    else
        cat "$tmp/err"
        bad "$cc: transport/iokit.c compiles"
        continue
    fi
    for f in client/api.c client/connection.c client/notify.c \
             client/errors.c transport/registry.c; do
        o="$tmp/$(basename "$f" .c)-$cc.o"
        # Not Linux: __linux__ off, Linux-only calls renamed (linux-only.h).
        # shellcheck disable=SC2086
        if $cc $flags -U__linux__ -U__linux -Ulinux \
            -include "$here/linux-only.h" -c "$src/$f" -o "$o" \
            2>"$tmp/err"; then
            ok "$cc: $f compiles with Apple's types"
        else
            cat "$tmp/err"
            bad "$cc: $f compiles with Apple's types"
            continue
        fi
        if nm -u "$o" | grep 'linux_only_'; then
            bad "$cc: $f calls no Linux-only function"
        else
            ok "$cc: $f calls no Linux-only function"
        fi
    done
    for p in "$here"/probes/*.c; do
        name=$(basename "$p" .c)
        # shellcheck disable=SC2086
        if ! $cc $flags -fsyntax-only "$p" 2>"$tmp/err"; then
            cat "$tmp/err"
            bad "$cc: probe $name compiles when right"
        # shellcheck disable=SC2086
        elif $cc $flags -DPROBE_BAD -fsyntax-only "$p" 2>/dev/null; then
            bad "$cc: probe $name fails when wrong"
        else
            ok "$cc: probe $name: right compiles, wrong fails"
        fi
    done
    # Apple names start with a capital, '__CF', 'dispatch_', 'mach_' or
    # 'kCF'/'kIO'; libc's are left out.
    nm -u "$tmp/iokit-$cc.o" | awk '{print $2}' |
        grep -E '^(IO|CF|__CF|dispatch_|mach_|kCF|kIO)' | sort >"$tmp/used"
    if printf '%s\n' "$expected" | diff -u - "$tmp/used" >"$tmp/diff"; then
        ok "$cc: the object calls exactly the documented Apple functions"
    else
        cat "$tmp/diff"
        bad "$cc: the object calls exactly the documented Apple functions"
    fi
done

if [ -z "$compilers" ]; then
    echo "no C compiler found"
    exit 77
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
