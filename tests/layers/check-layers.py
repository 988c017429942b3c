#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The architecture, checked: no file includes a file of a layer above it.

Layers, bottom to top (README, "Architecture"):

    include  support  protocol  backends  core  transport  client  daemon/cli

A file may include its own folder's headers and those of any layer below.
dextctl, the servers (dext-vfio-user) and the examples keep to the public
API (include/) and the support layer, which is freestanding (no libdext
state) and compiled into them where used.  With
includes only ever going down, there can be no include circle between
folders.  Usage: check-layers.py SOURCE_ROOT; prints every violation and
exits 1 if there is one.
"""

import os
import re
import sys

# folder -> rank; a file may include folders of lower or equal rank only
# (equal: its own folder).
RANKS = {
    'include': 0,
    'support': 1,
    'protocol': 2,
    'backends': 3,
    'core': 4,
    'transport': 5,
    'client': 6,
    'daemon': 7,
}
# Public-API-only programs: their own folder, include/ and support/.
PUBLIC_ONLY = ('cli', 'examples', 'servers')
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(root, path):
    """The layer folder a quoted include names, or None (system header)."""
    head = path.split('/', 1)[0]
    if head in RANKS:
        return head
    if os.path.exists(os.path.join(root, 'include', path)):
        return 'include'
    return None


def check(root):
    bad = []
    checked = 0
    for top in list(RANKS) + list(PUBLIC_ONLY):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith(('.c', '.h')):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding='utf-8') as f:
                    text = f.read()
                checked += 1
                for inc in INCLUDE_RE.findall(text):
                    if '/' not in inc and os.path.exists(
                            os.path.join(dirpath, inc)):
                        continue    # a neighbour in the same folder
                    target = folder_of(root, inc)
                    if target is None or target == top:
                        continue
                    if top in PUBLIC_ONLY:
                        if target not in ('include', 'support'):
                            bad.append(f'{rel}: includes "{inc}": {top}/ '
                                       'keeps to the public API and support/')
                    elif RANKS[target] > RANKS[top]:
                        bad.append(f'{rel}: includes "{inc}" from {target}/, '
                                   f'a layer above {top}/')
    return checked, bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    checked, bad = check(root)
    for line in bad:
        print('FAIL ' + line)
    print(f'{checked} files checked, {len(bad)} includes up the layers')
    return 1 if bad or checked == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
