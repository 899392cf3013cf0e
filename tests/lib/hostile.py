#!/usr/bin/python3
"""Hostile clients for tests/integration/hostile.bats (issue 6): each command misbehaves against
one server on purpose while a well-behaved kazoo client keeps working, and samples the server's
resident memory (VmRSS of SERVER_PID) throughout.

  hostile.py HOST PORT SERVER_PID COMMAND [ARGS]
    flood N         N connections from 127.0.0.9 (past maxClientCnxns), held open
    halfpacket N    N connections that send half a connect request and stall
    noread N        N sessions that pipeline getData of a large node and never read a reply
    paths           oversized paths (past jute.maxbuffer and long), deeply nested paths
    children N      N children under one node, listed back by getChildren
    watchstorm N    N sessions each watching one node, then one write fires them all
    pipeline N      one session sends N creates at once, then reads the N replies
    idle N C        N idle sessions held (RssAnon per session), then C rounds of N opened and
                    closed (RssAnon growth from the first round's end to the last's)
    bigreply N      N sessions each read a 100 KiB node, then stay idle: RssAnon the replies
                    left, and what is left of it once half went (or after 5 s)

Prints `name: value` observations for the test to assert on, always including
`bystander: ok|failed ...` (a kazoo client on the side), `server: alive|dead` and
`rss_kb: before=B peak=P after=A`. Exit status 0 when the probe ran (the verdict is in the output).
"""
import os
import selectors
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkwire import Closed, connect, frame, jute_string, recv_frame  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

OP_GETDATA = 4
OP_GETCHILDREN = 8
RSS_SAMPLE_S = 0.1
CHILDREN_IN_FLIGHT = 500


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


class RssSampler:
    """Samples the server's VmRSS in the background; peak is the largest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.before = rss_kb(pid)
        self.peak = self.before
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(RSS_SAMPLE_S):
            self.peak = max(self.peak, rss_kb(self.pid))

    def report(self):
        self.stop.set()
        self.thread.join()
        after = rss_kb(self.pid)
        self.peak = max(self.peak, after)
        print("rss_kb: before=%d peak=%d after=%d" % (self.before, self.peak, after))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def bystander(host, port, label="bystander"):
    """A well-behaved client: connect, write, read back, within a deadline."""
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=10.0)
    try:
        zk.start(timeout=20)
        path = "/bystander-%d" % os.getpid()
        if zk.exists(path) is None:
            zk.create(path, b"")
        zk.set(path, b"still-serving")
        value, _ = zk.get(path)
        print("%s: %s" % (label, "ok" if value == b"still-serving" else "wrong value %r" % value))
    except Exception as exc:
        print("%s: failed (%s)" % (label, type(exc).__name__))
    finally:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass


def cmd_flood(host, port, count):
    socks, refused, accepted = [], 0, 0
    for _ in range(count):
        try:
            socks.append(connect(host, port, source="127.0.0.9"))
            accepted += 1
        except (Closed, OSError):
            refused += 1
    print("flood: accepted=%d refused=%d" % (accepted, refused))
    bystander(host, port)
    for s in socks:
        s.close()


def cmd_halfpacket(host, port, count):
    socks = []
    request = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
    whole = frame(request)
    for _ in range(count):
        try:
            s = socket.create_connection((host, port), timeout=5, source_address=("127.0.0.10", 0))
            s.sendall(whole[:len(whole) // 2])
            socks.append(s)
        except OSError:
            pass
    print("halfpacket: stalled=%d" % len(socks))
    bystander(host, port)
    # the stalled connections are still there or were closed by the server: either is fine
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print("halfpacket: closed_by_server=%d" % closed)


def cmd_noread(host, port, count):
    """Sessions that pipeline getData of a 512 KiB node and never read: the server must bound
    what it queues for them (and drop them), not buffer every reply."""
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=10.0)
    zk.start(timeout=20)
    if zk.exists("/big") is None:
        zk.create("/big", b"x" * (512 * 1024))
    zk.stop()
    zk.close()
    request = struct.pack(">ii", 1, OP_GETDATA) + jute_string("/big") + b"\0"
    per_session_bytes = 0
    dropped = 0
    socks = []
    for i in range(count):
        s = connect(host, port, source="127.0.0.11")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        socks.append(s)
    # Pipeline up to 2000 requests each (a 1 GiB reply backlog per session if all were queued).
    deadline = time.monotonic() + 30
    sent = [0] * len(socks)
    done = [False] * len(socks)
    while time.monotonic() < deadline and not all(done):
        for i, s in enumerate(socks):
            if done[i]:
                continue
            try:
                s.send(frame(request))
                sent[i] += 1
                if sent[i] >= 2000:
                    done[i] = True
            except BlockingIOError:
                pass  # our send buffer is full: the server stopped reading us
            except OSError:
                done[i] = True
                dropped += 1
        time.sleep(0.001)
    per_session_bytes = max(sent) * 512 * 1024
    # Give the server time to notice and drop them; a dropped socket reads EOF or a reset
    # once whatever was in flight is drained.
    time.sleep(5)
    for i, s in enumerate(socks):
        try:
            while True:
                data = s.recv(1 << 20)
                if not data:
                    dropped += 1
                    break
        except BlockingIOError:
            pass
        except OSError:
            dropped += 1
        s.close()
    print("noread: sessions=%d requests_sent=%d replies_asked_bytes=%d dropped=%d"
          % (count, sum(sent), per_session_bytes * count, min(dropped, count)))
    bystander(host, port)


def cmd_paths(host, port):
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=10.0)
    zk.start(timeout=20)
    results = []
    # A path bigger than the default jute.maxbuffer: the server closes that connection.
    try:
        zk.create("/" + "a" * (2 * 1024 * 1024), b"")
        results.append("huge=created")
    except Exception as exc:
        results.append("huge=%s" % type(exc).__name__)
    zk.stop()
    zk.close()
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=10.0)
    zk.start(timeout=20)
    # A long (100 KiB) single component and a 10000-level path whose parents do not exist.
    for name, path in (("long", "/" + "b" * (100 * 1024)), ("nested-missing", "/n" * 10000)):
        try:
            zk.create(path, b"")
            results.append("%s=created" % name)
        except Exception as exc:
            results.append("%s=%s" % (name, type(exc).__name__))
    # A real 1000-level chain, then reads and a delete at its bottom.
    try:
        path = ""
        for i in range(1000):
            path += "/d"
            zk.create(path, b"")
        ok = zk.exists(path) is not None and len(zk.get_children(path)) == 0
        zk.delete(path)
        results.append("deep-1000=%s" % ("ok" if ok else "wrong"))
    except Exception as exc:
        results.append("deep-1000=%s" % type(exc).__name__)
    zk.stop()
    zk.close()
    print("paths: " + " ".join(results))
    bystander(host, port)


def cmd_children(host, port, count):
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=30.0)
    zk.start(timeout=20)
    zk.ensure_path("/wide")
    started = time.monotonic()
    pending = []
    for i in range(count):
        pending.append(zk.create_async("/wide/%d" % i, b""))
        # At most CHILDREN_IN_FLIGHT creates outstanding, below globalOutstandingLimit (1000):
        # a well-behaved async client (see the pipelining test in hostile.bats for what
        # happens past that limit).
        if len(pending) >= CHILDREN_IN_FLIGHT:
            for p in pending:
                p.get(timeout=60)
            pending = []
    for p in pending:
        p.get(timeout=60)
    created_s = time.monotonic() - started
    children = zk.get_children("/wide")
    _, stat = zk.get("/wide")
    print("children: listed=%d numChildren=%d created_in_s=%.1f" % (len(children), stat.numChildren, created_s))
    zk.stop()
    zk.close()
    bystander(host, port)


def cmd_watchstorm(host, port, count):
    """count sessions (raw sockets from several source addresses), each with a data watch on
    /storm; one setData fires them all; every session must get its event."""
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=30.0)
    zk.start(timeout=20)
    zk.ensure_path("/storm")
    socks = []
    failed = 0
    for i in range(count):
        try:
            # Raw sessions send no pings: their timeout must outlast opening all of them.
            s = connect(host, port, source="127.0.1.%d" % (1 + i // 2000), session_timeout_ms=120000)
            s.sendall(frame(struct.pack(">ii", 1, OP_GETDATA) + jute_string("/storm") + b"\1"))
            socks.append(s)
        except (Closed, OSError):
            failed += 1
    # read each getData reply, then count events
    for s in socks:
        s.settimeout(10)
        try:
            recv_frame(s)
        except (Closed, OSError):
            failed += 1
    zk.set("/storm", b"fire")
    started = time.monotonic()
    sel = selectors.DefaultSelector()
    got = 0
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    buffers = {}
    while got < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                continue
            buf = buffers.get(s, b"") + data
            if len(buf) >= 8:
                (xid,) = struct.unpack(">i", buf[4:8])
                if xid == -1:
                    got += 1
                    sel.unregister(s)
                    continue
            buffers[s] = buf
    print("watchstorm: sessions=%d connect_failed=%d events=%d in_s=%.1f"
          % (len(socks), failed, got, time.monotonic() - started))
    for s in socks:
        s.close()
    zk.stop()
    zk.close()
    bystander(host, port)


def cmd_pipeline(host, port, count):
    """One session sends count creates in one burst, then reads the replies: every reply must
    come (the server may stop reading while it works through them, but must resume)."""
    s = connect(host, port, session_timeout_ms=30000)
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_string("world") + jute_string("anyone")

    def create(path, xid):
        return frame(struct.pack(">ii", xid, 1) + jute_string(path) + struct.pack(">i", 0) + acl
                     + struct.pack(">i", 0))
    s.sendall(create("/pipelined", 1))
    recv_frame(s)
    s.sendall(b"".join(create("/pipelined/%d" % i, 2 + i) for i in range(count)))
    got = 0
    s.settimeout(15)
    try:
        while got < count:
            recv_frame(s)
            got += 1
    except (Closed, OSError) as exc:
        print("pipeline: stalled after %d of %d replies (%s)" % (got, count, type(exc).__name__))
    print("pipeline: replies=%d of %d" % (got, count))
    s.close()
    bystander(host, port)


def rss_anon_kb(pid):
    """RssAnon: what the server allocated, without the file pages its store maps."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def settled_anon_kb(pid):
    """RssAnon once two samples 0.2 s apart are within 64 KiB (at most 5 s)."""
    last = rss_anon_kb(pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = rss_anon_kb(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def open_idle_sessions(host, port, count):
    """count sessions, connected 200 at a time, each answered one exists: then idle."""
    connect_req = frame(struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16
                        + b"\0")
    exists_req = frame(struct.pack(">ii", 1, 3) + jute_string("/") + b"\0")
    socks = []
    while len(socks) < count:
        batch = []
        for _ in range(min(200, count - len(socks))):
            i = len(socks) + len(batch)
            s = socket.create_connection((host, port), timeout=30,
                                         source_address=("127.0.3.%d" % (1 + i // 2000), 0))
            s.sendall(connect_req)
            batch.append(s)
        for s in batch:
            recv_frame(s)
            s.sendall(exists_req)
        for s in batch:
            recv_frame(s)
        socks += batch
    return socks


def close_idle_sessions(socks):
    """closeSession on each, 200 at a time, its reply read (the server has closed the session),
    then close."""
    for start in range(0, len(socks), 200):
        batch = socks[start:start + 200]
        for s in batch:
            s.sendall(frame(struct.pack(">ii", 2, -11)))
        for s in batch:
            try:
                recv_frame(s)
            except (Closed, OSError):
                pass
            s.close()


def cmd_idle(host, port, count, cycles):
    """count idle sessions held open: the server's RssAnon per session; then cycles rounds of
    count sessions opened and closed: what RssAnon grew by from the end of the first round to
    the end of the last (a leak per session would show as count times it per round)."""
    pid = SERVER["pid"]
    base = settled_anon_kb(pid)
    socks = open_idle_sessions(host, port, count)
    held = settled_anon_kb(pid)
    print("idle: sessions=%d bytes_per_session=%d" % (count, (held - base) * 1024 // count))
    close_idle_sessions(socks)
    first = settled_anon_kb(pid)
    for _ in range(cycles - 1):
        close_idle_sessions(open_idle_sessions(host, port, count))
    last = settled_anon_kb(pid)
    print("idle: cycles=%d growth_kb=%d" % (cycles, last - first))
    bystander(host, port)


def cmd_bigreply(host, port, count):
    """count sessions each read a 100 KiB node once (the reply grows the connection's output
    buffer to 128 KiB), then stay open and idle: the server must let those buffers go. Prints
    the RssAnon the replies left (KiB) and what is left of it once half of it went, or after
    5 s (the server frees idle connections' buffers on its session timer)."""
    pid = SERVER["pid"]
    zk = KazooClient(hosts="%s:%d" % (host, port), timeout=10.0)
    zk.start(timeout=20)
    zk.create("/bigreply", b"r" * (100 * 1024))
    zk.stop()
    zk.close()
    base = settled_anon_kb(pid)
    socks = [connect(host, port, session_timeout_ms=30000) for _ in range(count)]
    request = frame(struct.pack(">ii", 1, OP_GETDATA) + jute_string("/bigreply") + b"\0")
    for s in socks:
        s.sendall(request)
    for s in socks:
        if len(recv_frame(s)) < 100 * 1024:
            print("bigreply: short reply")
    held = rss_anon_kb(pid) - base
    # The sweep runs every tickTime/2 (at most 500 ms) and sends no signal: poll until half of
    # it is gone, for at most 5 s.
    deadline = time.monotonic() + 5
    left = held
    while left >= held // 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        left = rss_anon_kb(pid) - base
    print("bigreply: sessions=%d held_kb=%d left_kb=%d" % (count, held, left))
    for s in socks:
        s.close()
    bystander(host, port)


SERVER = {}


def main(argv):
    if len(argv) < 5:
        print(__doc__)
        return 2
    host, port, pid, command = argv[1], int(argv[2]), int(argv[3]), argv[4]
    SERVER["pid"] = pid
    args = [int(x) for x in argv[5:]]
    commands = {"flood": cmd_flood, "halfpacket": cmd_halfpacket, "noread": cmd_noread,
                "paths": cmd_paths, "children": cmd_children, "watchstorm": cmd_watchstorm,
                "pipeline": cmd_pipeline, "idle": cmd_idle, "bigreply": cmd_bigreply}
    if command not in commands:
        print(__doc__)
        return 2
    sampler = RssSampler(pid)
    try:
        commands[command](host, port, *args)
    finally:
        sampler.report()
        print("server: %s" % ("alive" if alive(pid) else "dead"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
