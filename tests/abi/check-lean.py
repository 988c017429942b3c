#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# The lean libdext, as QEMU would build it (meson test 'lean-build'):
#
#   check-lean.py SRCROOT MESON FULL_LIBDEXT_A FULL_LIBDEXT_SO
#                 CHECK_EXPORTS HEADER MAP ABI_TEST_SOURCE
#
# Configures this source tree in a temporary directory with
# -Dinproc=disabled -Dtests=false -Dlibpci=disabled (warning_level=3,
# warnings as errors), builds all of it (libdext, dextd, dextctl, the
# examples) and checks that
#
#  * its libdext.so and libdext.a define no symbol of the dext core
#    (core/), the backends (backends/) or the in-process transport: the
#    names are the globals that build's own libdextcore.a (dextd's core)
#    defines in core/ and backends/ objects, and those of the full
#    build's transport/inproc.c;
#  * the full build's libdext.so does define those names, so the check
#    looks for names that are there to find;
#  * libdext.so still exports exactly the public functions
#    (check-exports.py);
#  * the lean dextd serves, and the lean libdext reaches it: the QEMU
#    backend example runs against it (examples/with-dextd.sh).
#
# Everything happens in a temporary directory removed at the end.

import os
import re
import subprocess
import sys
import tempfile

from checks import Checks


def run(cmd, **kw):
    """Run @cmd; its output is shown only if it fails."""
    print('+ ' + ' '.join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if p.returncode != 0:
        print(p.stdout)
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return p.stdout


def defined(path, *opts):
    """The names of the symbols @path defines, by archive member (the
    member's file name; None for a shared object)."""
    out = run(['nm', '--defined-only', '--print-file-name'] + list(opts) +
              [path])
    names = {}
    for line in out.splitlines():
        # "PATH:MEMBER:ADDRESS T NAME" or "PATH:ADDRESS t NAME"
        parts = line.split()
        if len(parts) < 3 or not parts[0].startswith(path + ':'):
            continue
        where = parts[0][len(path) + 1:].rpartition(':')[0]
        member = os.path.basename(where) if where else None
        # AddressSanitizer's per-global indicators name the global.
        name = re.sub(r'^__odr_asan\.', '', parts[2])
        names.setdefault(member, set()).add(name)
    return names


def main():
    (src, meson, full_a, full_so, check_exports, header, vmap,
     abi_source) = map(os.path.abspath, sys.argv[1:9])
    check = Checks()

    with tempfile.TemporaryDirectory(prefix='libdext-lean-') as tmp:
        build = os.path.join(tmp, 'build')
        try:
            run([meson, 'setup', build, src, '-Dinproc=disabled',
                 '-Dtests=false', '-Dlibpci=disabled', '-Dwarning_level=3',
                 '-Dwerror=true'])
            run(['ninja', '-C', build])
        except subprocess.CalledProcessError as e:
            check(False, 'the lean configuration builds', str(e))
            return check.finish()
        check(True, 'the lean configuration builds (warning_level=3, '
              'werror)')

        lean_so = os.path.join(build, 'libdext.so')
        lean_a = os.path.join(build, 'libdext.a')

        # The core's and the backends' names, from dextd's core.
        core = defined(os.path.join(build, 'libdextcore.a'), '-g')
        below = set()
        for member, names in core.items():
            if member.startswith(('core_', 'backends_')):
                below |= names
        # The in-process transport's, from the full library.
        for member, names in defined(full_a, '-g').items():
            if member.startswith('transport_inproc'):
                below |= names
        check(len(below) > 20 and 'dext_transport_inproc' in below,
              'the core, backend and inproc names are known (%d)'
              % len(below))

        full = set().union(*defined(full_so).values())
        check(below <= full, 'the full libdext.so defines them all',
              ', '.join(sorted(below - full)))

        lean = set().union(*defined(lean_so).values())
        check(len(lean) > 0, 'the lean libdext.so has a symbol table')
        check(not lean & below, 'the lean libdext.so defines none of them',
              ', '.join(sorted(lean & below)))
        lean_static = set().union(*defined(lean_a, '-g').values())
        check(not lean_static & below,
              'the lean libdext.a defines none of them',
              ', '.join(sorted(lean_static & below)))

        p = subprocess.run([sys.executable, check_exports, header, vmap,
                            lean_so, abi_source],
                           capture_output=True, text=True)
        print(p.stdout, end='')
        check(p.returncode == 0,
              'the lean libdext.so exports exactly the public functions')

        # Only the lean build's libraries: not this build's (meson test
        # may point LD_LIBRARY_PATH at it, with its sanitizers).
        env = dict(os.environ)
        for var in ('LD_LIBRARY_PATH', 'LD_PRELOAD'):
            env.pop(var, None)
        try:
            run(['sh', os.path.join(src, 'examples', 'with-dextd.sh'),
                 os.path.join(build, 'daemon', 'dextd'),
                 os.path.join(build, 'examples', 'qemu-backend')], env=env)
            ok = True
        except subprocess.CalledProcessError:
            ok = False
        check(ok, 'the lean libdext drives the lean dextd (qemu-backend)')

        print('# libdext.so: lean %d bytes, this build %d bytes'
              % (os.path.getsize(os.path.realpath(lean_so)),
                 os.path.getsize(os.path.realpath(full_so))))

    return check.finish()


if __name__ == '__main__':
    sys.exit(main())
