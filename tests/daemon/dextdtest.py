# SPDX-License-Identifier: MIT
"""What the tests of tests/daemon share: failing, probing a socket,
a dextd of the test's, running dextctl against it."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time

DEXTD = os.environ["DEXTD"]
DEXTCTL = os.environ["DEXTCTL"]
SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def accepts(path):
    """Does a connection to @path succeed?"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def dextctl_list(path):
    """dextctl list through the socket at @path: "rc=N", then output."""
    env = dict(os.environ, DEXT_SOCKET=path)
    env.pop("DEXT_TARGET", None)
    r = subprocess.run([DEXTCTL, "list"], env=env, capture_output=True,
                       text=True, timeout=20)
    return "rc=%d\n%s%s" % (r.returncode, r.stdout, r.stderr)


class Dextd:
    """dextd serving edu on TMP/dextd.sock, its stderr in TMP/dextd.log."""

    def __init__(self, tmp, args, nofile=None):
        self.path = os.path.join(tmp, "dextd.sock")
        self.log = open(os.path.join(tmp, "dextd.log"), "w+")

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.p = subprocess.Popen([DEXTD, "-s", self.path, "-d", "edu"] +
                                  args, stderr=self.log, preexec_fn=limit)
        deadline = time.time() + 20
        while not accepts(self.path):
            if time.time() > deadline or self.p.poll() is not None:
                fail("dextd did not start")
            time.sleep(0.05)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        if self.p.wait(timeout=20) != 0:
            fail("dextd exit status %d" % self.p.returncode)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text
