#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# The consumer tests (suite 'package'): a separate project builds against
# libdext and runs against inproc:edu.
#
#   run.py pkgconfig SRCROOT BUILDROOT VERSION SANITIZE MESON
#       `meson install --destdir` this build into a temporary directory,
#       then build tests/consumer/pkgconfig (make + pkg-config) against
#       it, shared and static, and run both.
#   run.py subproject SRCROOT BUILDROOT VERSION SANITIZE MESON
#       copy tests/consumer/subproject to a temporary directory with this
#       source tree (less .git and build directories) as
#       subprojects/libdext, configure it forcing the fallback, build and
#       run it.
#
# SANITIZE is this build's b_sanitize: the consumer must be built with
# the same sanitizers as the libdext it links.  Everything happens in a
# temporary directory removed at the end.

import os
import shutil
import subprocess
import sys
import tempfile


def run(cmd, quiet=False, **kw):
    """Run @cmd, failing on a non-zero status; @quiet: show its output
    only then."""
    print('+ ' + ' '.join(cmd), flush=True)
    if not quiet:
        return subprocess.run(cmd, check=True, **kw)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if p.returncode != 0:
        print(p.stdout)
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return p


def consumer_env(sanitize):
    env = dict(os.environ)
    env['DEXT_TARGET'] = 'inproc:edu'
    flags = '-O2 -g -Wall -Wextra -Werror'
    if sanitize not in ('', 'none'):
        flags += ' -fsanitize=' + sanitize
        env['LDFLAGS'] = '-fsanitize=' + sanitize
    env['CFLAGS'] = flags
    return env


def is_build_dir(path):
    return (os.path.exists(os.path.join(path, 'meson-private')) or
            os.path.exists(os.path.join(path, 'build.ninja')))


def copy_tree(src, dst):
    """Copy a source tree, leaving out .git and meson build directories."""
    def ignore(d, names):
        return [n for n in names
                if n in ('.git', 'subprojects') or
                is_build_dir(os.path.join(d, n))]
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)


def test_pkgconfig(src, build, version, sanitize, meson, tmp):
    dest = os.path.join(tmp, 'dest')
    run([meson, 'install', '-C', build, '--no-rebuild', '--destdir', dest],
        quiet=True)
    pcdirs = [root for root, _, files in os.walk(dest)
              if 'libdext.pc' in files]
    if len(pcdirs) != 1:
        print('libdext.pc installed %d times' % len(pcdirs))
        return 1
    proj = os.path.join(tmp, 'proj')
    shutil.copytree(os.path.join(src, 'tests', 'consumer', 'pkgconfig'),
                    proj)
    shutil.copy(os.path.join(src, 'tests', 'consumer', 'consumer.c'), proj)

    env = consumer_env(sanitize)
    env['PKG_CONFIG_PATH'] = pcdirs[0]
    env['PKG_CONFIG_LIBDIR'] = pcdirs[0]   # never a system libdext
    env['PKG_CONFIG_SYSROOT_DIR'] = dest
    libdir = subprocess.run(['pkg-config', '--libs-only-L', 'libdext'],
                            env=env, capture_output=True, text=True,
                            check=True).stdout.split()[0][2:]
    if not libdir.startswith(dest):
        print('pkg-config points outside the install: ' + libdir)
        return 1
    run(['make', '-C', proj], env=env)

    env['LD_LIBRARY_PATH'] = libdir
    ldd = subprocess.run(['ldd', os.path.join(proj, 'consumer')], env=env,
                         capture_output=True, text=True).stdout
    if os.path.join(libdir, 'libdext.so') not in ldd:
        print('consumer does not use the installed libdext.so:\n' + ldd)
        return 1
    ldd = subprocess.run(['ldd', os.path.join(proj, 'consumer-static')],
                         env=env, capture_output=True, text=True).stdout
    if 'libdext.so' in ldd:
        print('consumer-static needs libdext.so:\n' + ldd)
        return 1
    run([os.path.join(proj, 'consumer'), version], env=env)
    run([os.path.join(proj, 'consumer-static'), version], env=env)
    return 0


def test_subproject(src, build, version, sanitize, meson, tmp):
    proj = os.path.join(tmp, 'proj')
    shutil.copytree(os.path.join(src, 'tests', 'consumer', 'subproject'),
                    proj)
    shutil.copy(os.path.join(src, 'tests', 'consumer', 'consumer.c'), proj)
    os.mkdir(os.path.join(proj, 'subprojects'))
    copy_tree(src, os.path.join(proj, 'subprojects', 'libdext'))

    env = consumer_env(sanitize)
    for var in ('CFLAGS', 'LDFLAGS'):
        env.pop(var, None)
    bdir = os.path.join(tmp, 'build')
    opts = ['--force-fallback-for=libdext', '-Db_sanitize=' + sanitize]
    if sanitize not in ('', 'none'):
        opts.append('-Db_lundef=false')
    run([meson, 'setup', bdir, proj] + opts, env=env, quiet=True)
    run(['ninja', '-C', bdir, 'consumer'], env=env, quiet=True)
    sub = os.path.join(bdir, 'subprojects', 'libdext')
    if not any(n.startswith('libdext.so') for n in os.listdir(sub)):
        print('libdext was not built as a subproject')
        return 1
    run([os.path.join(bdir, 'consumer'), version], env=env)
    return 0


def main():
    mode, src, build, version, sanitize, meson = sys.argv[1:7]
    tests = {'pkgconfig': test_pkgconfig, 'subproject': test_subproject}
    with tempfile.TemporaryDirectory(prefix='libdext-consumer-') as tmp:
        try:
            rc = tests[mode](src, build, version, sanitize, meson, tmp)
        except subprocess.CalledProcessError as e:
            print('failed: %s' % e)
            rc = 1
    print('%d passed, %d failed' % (1 - min(rc, 1), min(rc, 1)))
    return rc


if __name__ == '__main__':
    sys.exit(main())
