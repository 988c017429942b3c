#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dextd under systemd.

  units SERVICE SOCKET  systemd-analyze verify accepts both units
  sd-notify             with $NOTIFY_SOCKET, READY=1 arrives only once the
                        socket accepts; STOPPING=1 at SIGTERM
  journal               with stderr the journal ($JOURNAL_STREAM), lines
                        carry <N> priorities and no timestamp
  activation            systemd-socket-activate hands dextd its socket:
                        dextctl list works through it, and the socket
                        file stays when dextd exits

Exit 77 (skip) when the systemd tool a case needs is missing.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from dextdtest import DEXTD, SKIP, accepts, dextctl_list, fail


def list_ok(path):
    out = dextctl_list(path)
    if not out.startswith("rc=0") or "00:03.0" not in out:
        fail("dextctl list through %s: %s" % (path, out))


def units(service, sock):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("SKIP: no systemd-analyze")
        return SKIP
    r = subprocess.run([tool, "verify", "--man=no", service, sock],
                       capture_output=True, text=True, timeout=60)
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        fail("systemd-analyze verify: rc %d" % r.returncode)
    return 0


def sd_notify(tmp):
    path = os.path.join(tmp, "dextd.sock")
    nsock = os.path.join(tmp, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(nsock)
    ns.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=nsock)
    p = subprocess.Popen([DEXTD, "-s", path, "-d", "edu"], env=env)
    try:
        msg = ns.recv(4096).decode()
        if "READY=1" not in msg.split("\n"):
            fail("first notification is not READY=1: %r" % msg)
        # Readiness means the socket accepts now, not soon.
        if not accepts(path):
            fail("READY=1 before %s accepts" % path)
        if "STATUS=serving 1 device(s)" not in msg:
            fail("no STATUS line: %r" % msg)
        list_ok(path)
        p.send_signal(signal.SIGTERM)
        msg = ns.recv(4096).decode()
        if "STOPPING=1" not in msg:
            fail("no STOPPING=1 at SIGTERM: %r" % msg)
        if p.wait(timeout=20) != 0:
            fail("dextd exit status %d" % p.returncode)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return 0


def journal(tmp):
    path = os.path.join(tmp, "dextd.sock")
    with open(os.path.join(tmp, "log"), "w+") as log:
        st = os.fstat(log.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev,
                                                         st.st_ino))
        p = subprocess.Popen([DEXTD, "-s", path, "-d", "edu"], env=env,
                             stderr=log)
        deadline = time.time() + 20
        while not accepts(path):
            if time.time() > deadline or p.poll() is not None:
                fail("dextd did not start")
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        log.seek(0)
        lines = log.read().splitlines()
    print("\n".join(lines))
    if len(lines) < 3:
        fail("too few lines")
    for line in lines:
        if not (line.startswith("<6>") or line.startswith("<4>")):
            fail("no syslog priority: %r" % line)
        if line[3:7].isdigit():
            fail("a timestamp under the journal: %r" % line)
    return 0


def activation(tmp):
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        print("SKIP: no systemd-socket-activate")
        return SKIP
    path = os.path.join(tmp, "dextd.sock")
    p = subprocess.Popen([tool, "--seqpacket", "-l", path, DEXTD,
                          "-d", "edu"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while not os.path.exists(path):
            if time.time() > deadline or p.poll() is not None:
                fail("systemd-socket-activate did not listen on " + path)
            time.sleep(0.05)
        # The first connection starts dextd on the socket it was handed.
        list_ok(path)
        list_ok(path)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        print(err)
        if "(socket activated)" not in err:
            fail("dextd did not say it was socket activated")
        if p.returncode != 0:
            fail("dextd exit status %d" % p.returncode)
        # The socket is systemd's: dextd must not remove it.
        if not os.path.exists(path):
            fail("dextd removed the activated socket")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return 0


def main():
    case = sys.argv[1]
    if case == "units":
        return units(sys.argv[2], sys.argv[3])
    with tempfile.TemporaryDirectory(prefix="dextd-systemd-") as tmp:
        return {"sd-notify": sd_notify, "journal": journal,
            "activation": activation}[case](tmp)


if __name__ == "__main__":
    sys.exit(main())
