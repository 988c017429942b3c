#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Hidden visibility keeps libdext.so's internals private, but a static
# link sees every global symbol of libdext.a.  A program that links it
# statically (QEMU, say) must not collide with our internals, so every
# global symbol defined in the archive carries our prefix: apple_dext_
# for the API, dext_ for everything else.  (AddressSanitizer adds an
# __odr_asan.NAME indicator per global; NAME is what counts.)
import re
import subprocess
import sys

archive = sys.argv[1]
out = subprocess.run(['nm', '-g', '--defined-only', archive],
                     capture_output=True, text=True, check=True).stdout
names = {re.sub(r'^__odr_asan\.', '', line.split()[2])
         for line in out.splitlines() if len(line.split()) == 3}
bad = sorted(n for n in names if not re.match(r'(apple_dext_|dext_)', n))
for name in bad:
    print(f'unprefixed global symbol in {archive}: {name}')
print(f'{len(names)} global symbols, {len(bad)} without the apple_dext_/dext_ '
      'prefix')
sys.exit(1 if bad else 0)
