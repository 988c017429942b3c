#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--socket-group and --socket-mode, with real second users.

As root, dextd runs with --socket-group GID (a gid no one else uses, so
nothing in /etc is touched); clients run dextctl as an unprivileged uid
from a forked child (setgroups, setgid, setuid):

  - in the group as a supplementary group: served
  - in the group as the primary group: served
  - outside the group, socket 0660: the filesystem says EACCES
  - outside the group, socket 0666: dextd's peer check refuses it
  - the per-user cap (3/4 of the channels) holds for group members

Exit 77 (skip) when not root.
"""

import os
import socket
import stat
import sys
import tempfile
import time

from dextdtest import Dextd, dextctl_list, fail

GID = 61234          # the socket's group
UID = 61235          # the second user
OTHER_GID = 61236    # a group that is not the socket's


def as_user(gid, groups, fn):
    """Run fn() in a child as UID with primary @gid and @groups."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(UID)
            out = fn()
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode()


def check_served(out, who):
    print("# %s: %s" % (who, out.strip().replace("\n", " | ")))
    if not out.startswith("rc=0") or "00:03.0" not in out:
        fail(who + " was not served")


def check_refused(out, who, why):
    print("# %s: %s" % (who, out.strip().replace("\n", " | ")))
    if out.startswith("rc=0"):
        fail(who + " was served")
    if why not in out:
        fail("%s: expected %r in dextctl's message" % (who, why))


def group_members(tmp):
    d = Dextd(tmp, ["--socket-group", str(GID)])
    st = os.stat(d.path)
    if st.st_gid != GID or stat.S_IMODE(st.st_mode) != 0o660:
        fail("socket is gid %d mode %o, not %d 0660" %
             (st.st_gid, stat.S_IMODE(st.st_mode), GID))
    check_served(as_user(OTHER_GID, [GID], lambda: dextctl_list(d.path)),
                 "uid %d, supplementary group %d" % (UID, GID))
    check_served(as_user(GID, [], lambda: dextctl_list(d.path)),
                 "uid %d, primary group %d" % (UID, GID))
    out = as_user(OTHER_GID, [], lambda: dextctl_list(d.path))
    print("# outside the group, 0660: " + out.strip().replace("\n", " | "))
    if out.startswith("rc=0"):
        fail("a user outside the group was served")
    d.stop()


def peer_check(tmp):
    # The filesystem lets everyone connect: dextd itself must refuse.
    d = Dextd(tmp, ["--socket-group", str(GID), "--socket-mode", "0666"])
    check_served(as_user(OTHER_GID, [GID], lambda: dextctl_list(d.path)),
                 "in the group, 0666")
    out = as_user(OTHER_GID, [OTHER_GID], lambda: dextctl_list(d.path))
    check_refused(out, "outside the group, 0666", "")
    log = d.stop()
    print(log)
    if "nor in the socket's group" not in log:
        fail("dextd did not log the refusal")


def uid_cap(tmp):
    # A small fd budget: a user's 3/4 of the channels is a dozen or so.
    d = Dextd(tmp, ["--socket-group", str(GID), "-l", "debug",
                   "--handshake-timeout", "60"], nofile=256)

    def hold():
        socks = []
        for _ in range(15):         # below the 16 pending per process
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(d.path)
            socks.append(s)
        time.sleep(1)
        held = refused = 0
        for s in socks:
            try:
                s.recv(4096, socket.MSG_DONTWAIT)   # an ERROR: refused
                refused += 1
            except BlockingIOError:
                held += 1
        for s in socks:
            s.close()
        return "%d %d" % (held, refused)

    held, refused = map(int, as_user(OTHER_GID, [GID], hold).split())
    print("# group member: %d channels held, %d refused" % (held, refused))
    log = d.stop()
    if refused == 0 or held == 0:
        print(log)
        fail("the per-user cap did not apply to a group member")
    if "its user holds 3/4 of the channels" not in log:
        print(log)
        fail("no per-user cap refusal in the log")


def main():
    if os.geteuid() != 0:
        print("SKIP: not root")
        return 77
    for case in (group_members, peer_check, uid_cap):
        with tempfile.TemporaryDirectory(prefix="dextd-access-") as tmp:
            os.chmod(tmp, 0o755)    # the second user must reach the socket
            print("## " + case.__name__)
            case(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
