#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# The public ABI in one list, checked four ways (meson test 'exports'):
#
#   check-exports.py HEADER MAP LIBDEXT_SO ABI_TEST_SOURCE
#
# The functions declared in HEADER (apple-dext-client.h) must all be
# marked APPLE_DEXT_EXPORT, must be exactly the "global:" names of the
# version script MAP (libdext.map), exactly the dynamic symbols LIBDEXT_SO
# defines (nm -D), and must all be called by ABI_TEST_SOURCE.

import re
import subprocess
import sys

from checks import Checks


def strip_comments(text):
    return re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)


def main():
    header, vmap, lib, source = sys.argv[1:5]
    check = Checks()

    code = strip_comments(open(header).read())
    exported = set(re.findall(
        r'^APPLE_DEXT_EXPORT\b[^;]*?\b(apple_dext_\w+)\s*\(', code, re.M))
    declared = set(re.findall(r'\b(apple_dext_\w+)\s*\(', code))
    check(len(exported) > 0, 'the header declares exported functions')
    check(declared == exported, 'every function in the header is exported',
          ', '.join(sorted(declared - exported)))

    mtext = strip_comments(open(vmap).read())
    glob = re.search(r'global:(.*?)local:', mtext, re.S)
    mapped = set(re.findall(r'(\w+)\s*;', glob.group(1))) if glob else set()
    check(mapped == exported, 'libdext.map lists exactly the header',
          'missing %s, extra %s' % (sorted(exported - mapped),
                                    sorted(mapped - exported)))

    out = subprocess.run(['nm', '-D', '--defined-only', lib],
                         capture_output=True, text=True, check=True).stdout
    dynamic = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in 'TtWiDdBbRrVv':
            dynamic.add(parts[2].split('@')[0])
    check(dynamic == exported, 'libdext.so exports exactly the header (%d)'
          % len(exported),
          'missing %s, extra %s' % (sorted(exported - dynamic),
                                    sorted(dynamic - exported)))

    called = set(re.findall(r'\b(apple_dext_\w+)\s*\(',
                            strip_comments(open(source).read())))
    check(exported <= called, 'the ABI test calls every function',
          ', '.join(sorted(exported - called)))

    return check.finish()


if __name__ == '__main__':
    sys.exit(main())
