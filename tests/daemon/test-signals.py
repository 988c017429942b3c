#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dextd's signals: SIGHUP is logged and changes nothing (dextd keeps
serving, its socket stays, a client's session survives it); SIGTERM
then ends it cleanly, removing the socket."""

import os
import signal
import socket
import sys
import tempfile
import time

from dextdtest import Dextd, accepts, dextctl_list, fail


def main():
    with tempfile.TemporaryDirectory(prefix="dextd-signals-") as tmp:
        d = Dextd(tmp, [])
        # A connection open across the SIGHUP must not be dropped.
        held = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        held.connect(d.path)
        for _ in range(3):      # apart: pending signals merge
            d.p.send_signal(signal.SIGHUP)
            time.sleep(0.2)
        if d.p.poll() is not None:
            fail("dextd died of SIGHUP (status %d)" % d.p.returncode)
        if not accepts(d.path):
            fail("the socket does not accept after SIGHUP")
        out = dextctl_list(d.path)
        if not out.startswith("rc=0"):
            fail("dextctl list after SIGHUP: " + out)
        held.setblocking(False)
        try:
            if held.recv(4096) == b"":
                fail("SIGHUP closed a client's connection")
        except BlockingIOError:
            pass
        held.close()
        log = d.stop()
        print(log)
        if log.count("SIGHUP: nothing to reload") != 3:
            fail("SIGHUP not logged three times")
        if os.path.exists(d.path):
            fail("SIGTERM left the socket behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
