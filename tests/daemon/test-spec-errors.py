#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dextd's start-up errors about devices: a bad option is named, two
devices at one address come with a free address to move the emulated one
to, IOReturn codes are shown by name.  Where this machine has a real
function at 00:03.0, `-d edu -H 00:03.0` (the issue's `-d edu -H all`)
is tried too."""

import os
import re
import subprocess
import sys
import tempfile

from dextdtest import DEXTD, fail


def start_fails(tmp, *args):
    r = subprocess.run([DEXTD, "-s", os.path.join(tmp, "dextd.sock")] +
                       list(args), capture_output=True, text=True,
                       timeout=30)
    print("$ dextd %s  -> %d\n%s" % (" ".join(args), r.returncode, r.stderr))
    if r.returncode != 1:
        fail("dextd %s: exit status %d, not 1" % (" ".join(args),
                                                   r.returncode))
    if re.search(r"\(0x[0-9a-f]{8}\)", r.stderr):
        fail("an IOReturn shown as a number")
    return r.stderr


def expect(text, pattern):
    if not re.search(pattern, text):
        fail("no %r in dextd's errors" % pattern)


def main():
    with tempfile.TemporaryDirectory(prefix="dextd-spec-") as tmp:
        err = start_fails(tmp, "-d", "ivshmem,size=3M")
        expect(err, r"bad option 'size=3M'")
        expect(err, r"kIOReturnBadArgument")
        err = start_fails(tmp, "-d", "edu,foo=1")
        expect(err, r"bad option 'foo=1'")
        err = start_fails(tmp, "-d", "edu,dma_mask=0xffffffff,bar64")
        expect(err, r"bad option 'bar64'")
        err = start_fails(tmp, "-d", "nope")
        expect(err, r"kIOReturnNotFound")
        # Two emulated devices at one address: move the later one.
        err = start_fails(tmp, "-d", "ivshmem,bdf=00:03.0", "-d", "edu")
        expect(err, r"00:03\.0 is served already, by device "
                    r"'ivshmem,bdf=00:03\.0'")
        expect(err, r"--device edu,bdf=00:[0-9a-f]{2}\.0")
        if os.path.exists("/sys/bus/pci/devices/0000:00:03.0"):
            # A real function there: the emulated one has to move.
            err = start_fails(tmp, "-d", "edu", "-H", "00:03.0")
            expect(err, r"by device 'edu'.*--device edu,bdf=00:[0-9a-f]{2}"
                        r"\.0")
        else:
            print("# no real function at 00:03.0: that case not tried")
    return 0


if __name__ == "__main__":
    sys.exit(main())
