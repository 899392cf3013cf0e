#!/usr/bin/python3
"""Watch fan-out over the wire, for tests/integration/watch_fanout.bats: many sessions watch one
node and every write must reach each of them exactly once, with the exact bytes ZooKeeper sends
(the server encodes one event frame per trigger and copies it to every watcher: bench/PROFILE.md
13).  Raw sockets (tests/lib/zkwire.py), so every frame a watcher receives is seen.

  watchfan.py HOST PORT fanout N ROUNDS
      N sessions each getData(/fan, watch); ROUNDS times: one setData of /fan; each watcher must
      read exactly the NodeDataChanged event of /fan, then (re-arming) the getData reply with the
      new value.  Then each watcher also watches /fan2 (exists) and one multi sets both: each
      must read the event of /fan, then that of /fan2, then the reply of a ping.
  watchfan.py HOST PORT slow N SETS
      N sessions watch /fan with addWatch PERSISTENT; registered among them (not last), one that
      never reads (its output over the server's soft limit, reading paused) and one that resets
      its connection.  SETS setData of /fan: each of the N must read exactly SETS events, then the
      reply of a ping.

Prints one `name: key=value ...` line per command, for the test to assert on.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkwire import Closed, connect, frame, jute_string, recv_frame  # noqa: E402

OP_CREATE, OP_EXISTS, OP_GETDATA, OP_SETDATA, OP_PING, OP_MULTI, OP_ADDWATCH = 1, 3, 4, 5, 11, 14, 106
EVENT_CHANGED = 3
STATE_CONNECTED = 3
XID_PING = -2
ERR_NODEEXISTS = -110
OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_string("world") + jute_string("anyone")


def event_frame(event_type, path):
    """The body of a WatcherEvent notification as ZooKeeper encodes it."""
    return struct.pack(">iqiii", -1, -1, 0, event_type, STATE_CONNECTED) + jute_string(path)


def buf(data):
    return struct.pack(">i", len(data)) + data


def call(sock, xid, op, body):
    """Send one request and return (err, rest of the reply); fails on any other frame first."""
    sock.sendall(frame(struct.pack(">ii", xid, op) + body))
    reply = recv_frame(sock)
    rxid, _zxid, err = struct.unpack(">iqi", reply[:16])
    if rxid != xid:
        raise AssertionError("expected the reply to xid %d, got a frame with xid %d" % (xid, rxid))
    return err, reply[16:]


def create(sock, xid, path, data=b""):
    err, _ = call(sock, xid, OP_CREATE, jute_string(path) + buf(data) + OPEN_ACL + struct.pack(">i", 0))
    if err not in (0, ERR_NODEEXISTS):
        raise AssertionError("create %s: error %d" % (path, err))


def set_data(sock, xid, path, data):
    err, _ = call(sock, xid, OP_SETDATA, jute_string(path) + buf(data) + struct.pack(">i", -1))
    if err != 0:
        raise AssertionError("setData %s: error %d" % (path, err))


def multi_set(sock, xid, paths, data):
    body = b""
    for p in paths:
        body += struct.pack(">i?i", OP_SETDATA, False, -1) + jute_string(p) + buf(data) + struct.pack(">i", -1)
    body += struct.pack(">i?i", -1, True, -1)
    err, _ = call(sock, xid, OP_MULTI, body)
    if err != 0:
        raise AssertionError("multi: error %d" % err)


def get_data_watch(sock, xid, path):
    """getData with a watch; returns the value read."""
    err, rest = call(sock, xid, OP_GETDATA, jute_string(path) + b"\1")
    if err != 0:
        raise AssertionError("getData %s: error %d" % (path, err))
    (length,) = struct.unpack(">i", rest[:4])
    return rest[4:4 + length]


def expect_event(sock, path, why):
    got = recv_frame(sock)
    want = event_frame(EVENT_CHANGED, path)
    if got != want:
        raise AssertionError("%s: expected the event %r, got %r" % (why, want, got[:64]))


def expect_ping_reply(sock, why):
    """The next frame must be the ping's reply: nothing (no second event) before it."""
    sock.sendall(frame(struct.pack(">ii", XID_PING, OP_PING)))
    got = recv_frame(sock)
    (xid,) = struct.unpack(">i", got[:4])
    if xid != XID_PING:
        raise AssertionError("%s: expected the ping reply, got a frame with xid %d: %r" % (why, xid, got[:64]))


def cmd_fanout(host, port, count, rounds):
    writer = connect(host, port)
    create(writer, 1, "/fan", b"v0")
    create(writer, 2, "/fan2", b"w0")
    watchers = [connect(host, port) for _ in range(count)]
    for w in watchers:
        get_data_watch(w, 1, "/fan")
    ok = wrong = 0
    for r in range(1, rounds + 1):
        value = b"v%d" % r
        set_data(writer, 10 + r, "/fan", value)
        for i, w in enumerate(watchers):
            try:
                expect_event(w, "/fan", "watcher %d round %d" % (i, r))
                got = get_data_watch(w, 1 + r, "/fan")  # re-arms
                if got != value:
                    raise AssertionError("watcher %d round %d read %r after the event, not %r" % (i, r, got, value))
                ok += 1
            except (AssertionError, Closed, OSError) as exc:
                wrong += 1
                print("# %s" % exc)
    for w in watchers:
        err, _ = call(w, 100, OP_EXISTS, jute_string("/fan2") + b"\1")
        if err != 0:
            raise AssertionError("exists /fan2: error %d" % err)
    multi_set(writer, 200, ["/fan", "/fan2"], b"both")
    multi_ok = 0
    for i, w in enumerate(watchers):
        try:
            expect_event(w, "/fan", "watcher %d multi, first op" % i)
            expect_event(w, "/fan2", "watcher %d multi, second op" % i)
            expect_ping_reply(w, "watcher %d after the multi" % i)
            multi_ok += 1
        except (AssertionError, Closed, OSError) as exc:
            print("# %s" % exc)
    print("fanout: watchers=%d rounds=%d events_ok=%d wrong=%d multi_ok=%d"
          % (count, rounds, ok, wrong, multi_ok))
    for s in watchers + [writer]:
        s.close()


def add_persistent_watch(sock, xid, path):
    err, _ = call(sock, xid, OP_ADDWATCH, jute_string(path) + struct.pack(">i", 0))
    if err != 0:
        raise AssertionError("addWatch %s: error %d" % (path, err))


def make_slow(host, port, sock):
    """Pipeline getData of a 512 KiB node on sock and never read, until the server stops reading
    it (its unsent replies past the soft limit).  Returns how many were sent."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    request = frame(struct.pack(">ii", 7, OP_GETDATA) + jute_string("/big") + b"\0")
    sent = 0
    pending = b""
    # 64 replies (32 MiB) is past the 4 MiB soft limit and under the 64 MiB hard one.
    while sent < 64:
        pending += request
        sent += 1
    try:
        while pending:
            n = sock.send(pending)
            pending = pending[n:]
    except BlockingIOError:
        pass  # the server stopped reading us: what we wanted
    return sent


def cmd_slow(host, port, count, sets):
    writer = connect(host, port)
    create(writer, 1, "/fan", b"v0")
    create(writer, 2, "/big", b"x" * (512 * 1024))
    half = count // 2
    watchers = []
    for _ in range(half):
        watchers.append(connect(host, port))
        add_persistent_watch(watchers[-1], 1, "/fan")
    slow = connect(host, port, session_timeout_ms=30000)
    add_persistent_watch(slow, 1, "/fan")
    reset = connect(host, port)
    add_persistent_watch(reset, 1, "/fan")
    for _ in range(count - half):
        watchers.append(connect(host, port))
        add_persistent_watch(watchers[-1], 1, "/fan")
    make_slow(host, port, slow)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()  # a reset, not a FIN: the server's next write to it fails
    for k in range(sets):
        set_data(writer, 10 + k, "/fan", b"s%d" % k)
    ok = wrong = 0
    for i, w in enumerate(watchers):
        try:
            for k in range(sets):
                expect_event(w, "/fan", "watcher %d set %d" % (i, k))
            expect_ping_reply(w, "watcher %d after %d sets" % (i, sets))
            ok += 1
        except (AssertionError, Closed, OSError) as exc:
            wrong += 1
            print("# %s" % exc)
    print("slowfan: watchers=%d sets=%d all_events=%d wrong=%d" % (count, sets, ok, wrong))
    slow.close()
    for s in watchers + [writer]:
        s.close()


def main(argv):
    if len(argv) != 6 or argv[3] not in ("fanout", "slow"):
        print(__doc__)
        return 2
    host, port, command, n, k = argv[1], int(argv[2]), argv[3], int(argv[4]), int(argv[5])
    (cmd_fanout if command == "fanout" else cmd_slow)(host, port, n, k)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
