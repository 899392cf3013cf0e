"""The scale phase of bench/compare (--only scale): how each server keeps its write speed,
its memory and its restart time as the tree grows.

For each size N (--scale-sizes), topology and server, on a fresh server: the throughput
phase's unrecorded warmup; set and create on the empty tree (the throughput phase's load:
8 sessions x 16 outstanding, 100-byte values); N znodes of 100 bytes (compare's populate());
RSS (ZooKeeper's after a full GC) and the bytes each populated znode costs beyond its path
and data; set and create again with the N znodes; the bytes of a watch (K exists watches on
populated znodes, one session) and of a session (K sessions held open), as RSS deltas;
then the restart time to the first getData.  ZooKeeper runs with compare's JVM flags: a size
its heap (-Xmx) cannot hold, estimated from its heap per znode at a smaller size of the same
run, is recorded as skipped; an OutOfMemoryError or a failed populate is recorded as failed.

The driver (bench/compare, a script) passes itself as `drv`: its Ensemble, zn_bench, populate,
zk_full_gc, rss_kib and the wire framing are used as they are."""
import os
import re
import socket
import struct
import subprocess
import time

from compare_report import TARGETS, ZK_JVM_FLAGS, log

# What the scale workloads are: the throughput phase's set and create.
SCALE_WORKLOADS = ("set", "create")
POP_PREFIX = "/pop"  # populate()'s prefix: /pop/c/<run>-s<i>/n<seq>, and /pop/w
VALUE_BYTES = 100
# Watches and sessions held while RSS is read: at most these many (fewer for a small tree).
WATCHES = 100000
SESSIONS = 2000
SESSIONS_PER_SOURCE = 400  # under maxClientCnxns=1000 per client address
SESSION_TIMEOUT_MS = 40000  # ZooKeeper's upper bound with tickTime=2000 (20 ticks)


def xmx_kib(flags=ZK_JVM_FLAGS):
    m = re.search(r"-Xmx(\d+)([kKmMgG]?)", flags)
    if not m:
        return None
    scale = {"": 1 / 1024, "k": 1, "m": 1024, "g": 1024 * 1024}[m.group(2).lower()]
    return int(int(m.group(1)) * scale)


# ---- sessions and watches held over the wire (the driver's framing) ----

def _connect_frame():
    # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (16 bytes), readOnly
    return struct.pack(">iqiqi", 0, 0, SESSION_TIMEOUT_MS, 0, 16) + b"\0" * 16 + b"\0"


def _open_session(drv, addr, port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(30)
    s.bind((source, 0))
    s.connect((addr, port))
    s.sendall(drv._frame(_connect_frame()))
    return s


def _check_connected(drv, s):
    reply = drv._read_frame(s)
    _proto, timeout, session_id = struct.unpack(">iiq", reply[:16])
    if timeout <= 0 or session_id == 0:
        raise RuntimeError("session refused")


def open_sessions(drv, addr, port, count):
    """COUNT sessions to addr:port, from 127.0.1.x source addresses (at most
    SESSIONS_PER_SOURCE each), connected 100 at a time."""
    socks = []
    try:
        while len(socks) < count:
            batch = []
            for _ in range(min(100, count - len(socks))):
                i = len(socks) + len(batch)
                batch.append(_open_session(drv, addr, port,
                                           f"127.0.1.{1 + i // SESSIONS_PER_SOURCE}"))
            for s in batch:
                _check_connected(drv, s)
            socks += batch
    except BaseException:
        close_sessions(drv, socks)
        raise
    return socks


def ping_all(drv, socks):
    """A ping on each session, so none expires while RSS is read (the replies are not read)."""
    for s in socks:
        s.sendall(drv._frame(struct.pack(">ii", -2, 11)))


def close_sessions(drv, socks):
    for s in socks:
        try:
            s.sendall(drv._frame(struct.pack(">ii", 1 << 30, -11)))
        except OSError:
            pass
    for s in socks:
        s.close()


def set_watches(drv, sock, paths):
    """exists(path, watch) for each path, pipelined 1000 at a time on one session.
    Returns how many of the paths existed (a watch is left on each path either way)."""
    found = 0
    for start in range(0, len(paths), 1000):
        chunk = paths[start:start + 1000]
        out = b""
        for i, path in enumerate(chunk):
            p = path.encode()
            out += drv._frame(struct.pack(">iii", start + i + 1, 3, len(p)) + p + b"\1")
        sock.sendall(out)
        for _ in chunk:
            _xid, _zxid, err = struct.unpack(">iqi", drv._read_frame(sock)[:16])
            if err == 0:
                found += 1
            elif err != -101:  # NONODE: the watch is set all the same
                raise RuntimeError(f"exists: error {err}")
    return found


# ---- measurements ----

def member_rss(drv, ens):
    """RSS (KiB) of each member; ZooKeeper's after a full GC (with its heap used after it)."""
    heaps = []
    if ens.target == "zookeeper":
        heaps = [drv.zk_full_gc(p) for p in ens.pids()]
    return [drv.rss_kib(p) for p in ens.pids()], heaps


def anon_kib(pid):
    """RssAnon (KiB): the resident memory the process allocated, without the file pages it
    maps (znoded's store maps its files; those pages come and go with the page cache)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def settled_anon(ens, settle_s=10.0):
    """RssAnon of each member once it stopped moving (two samples 0.5 s apart within
    128 KiB, up to settle_s): what the workload before freed has left the RSS by then."""
    last = [anon_kib(p) for p in ens.pids()]
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = [anon_kib(p) for p in ens.pids()]
        if max(abs(a - b) for a, b in zip(now, last)) < 128:
            return now
        last = now
    return last


def pop_dirs(drv, ens):
    """The session directories populate() made under /pop/c (any member; right after a
    large populate a busy member may take a while to answer, hence the retries)."""
    err = ""
    for _ in range(5):
        out = subprocess.run([drv.ZNODE_CLI, "--server", ens.connect_string(), "--timeout",
                              "30000", "ls", f"{POP_PREFIX}/c"], capture_output=True, text=True,
                             timeout=120)
        if out.returncode == 0:
            return out.stdout.split()
        err = out.stderr.strip()
        time.sleep(2)
    raise RuntimeError(f"znode ls {POP_PREFIX}/c: {err}")


def mean_path_bytes(dirs, count):
    """Mean path length of COUNT populated znodes spread evenly over DIRS
    (/pop/c/DIR/nSEQ, SEQ from 0 in each)."""
    per = max(1, count // len(dirs))
    digits, width, lo = 0, 1, 0
    while lo < per:  # the total number of digits of 0..per-1
        hi = min(per, 10 ** width)
        digits += (hi - lo) * width
        lo, width = hi, width + 1
    dir_mean = sum(len(d) for d in dirs) / len(dirs)
    return len(f"{POP_PREFIX}/c/") + dir_mean + len("/n") + digits / per


def zk_oom(ens):
    for m in ens.members:
        try:
            with open(os.path.join(m["dir"], "server.log"), "rb") as f:
                if b"OutOfMemoryError" in f.read():
                    return True
        except OSError:
            pass
    return False


def workloads(drv, args, rec, ens, base, tree):
    server = ens.connect_string()
    for name in SCALE_WORKLOADS:
        r = drv.zn_bench(server, name, "-c", 8, "-o", 16, "-d", args.duration, "--warmup",
                         args.warmup, "-v", VALUE_BYTES, "-t", 1, "-p", f"/b-{name}")
        rec.add(**base, kind="throughput", tree=tree, **r)
        log(f"  {tree} {name}: {r.get('ops_per_s', 0):.0f} ops/s p99 {r.get('p99_us', 0):.0f} us")


def held_cost(drv, rec, ens, base, kind, count, hold):
    """Resident memory per item of KIND while hold() (which returns (item count, sockets))
    holds them open: the largest member's RssAnon delta, each side read once it settled
    (ZooKeeper's after a full GC); its VmRSS delta is recorded too."""
    before, heap_before = member_rss(drv, ens)
    anon_before = settled_anon(ens)
    held, socks = hold()
    try:
        ping_all(drv, socks)
        after, heap_after = member_rss(drv, ens)
        ping_all(drv, socks)
        anon_after = settled_anon(ens)
        ping_all(drv, socks)
    finally:
        close_sessions(drv, socks)
    deltas = [a - b for a, b in zip(anon_after, anon_before)]
    per = max(deltas) * 1024 / count
    rss_per = max(a - b for a, b in zip(after, before)) * 1024 / count
    heap = [a - b for a, b in zip(heap_after, heap_before) if a is not None and b is not None]
    heap_per = max(heap) * 1024 / count if heap else None
    rec.add(**base, kind=kind, count=count, existing=held, rss_before_kib_members=before,
            rss_kib_members=after, anon_before_kib_members=anon_before,
            anon_kib_members=anon_after, rss_bytes_per_item=rss_per, heap_before_kib_members=heap_before,
            heap_after_kib_members=heap_after, bytes_per_item=per, heap_bytes_per_item=heap_per)
    log(f"  {kind}: {count} held, {per:.0f} bytes each (RssAnon delta {max(deltas)} KiB, "
        f"VmRSS {rss_per:.0f} bytes each)")


def scale_one(drv, args, rec, scratch, size, topo, count, target, held_at):
    base = {"phase": "scale", "topology": topo, "target": target, "znodes": size}
    root = drv.tempfile.mkdtemp(prefix=f"scale-{target}-{topo}-", dir=scratch)
    ens = drv.Ensemble(target, count, root)
    log(f"scale {size} {topo} {target}: starting")
    ens.start()
    try:
        server = ens.connect_string()
        drv.zn_bench(server, "mixed", "-c", 8, "-o", 16, "-r", 0.5, "-d", args.server_warmup,
                     "--warmup", 0, "-p", "/warm")
        empty, _ = member_rss(drv, ens)
        workloads(drv, args, rec, ens, base, "empty")
        before, heap_before = member_rss(drv, ens)
        anon_before = settled_anon(ens)
        count_before = ens.znode_count()
        log(f"  populating {size} znodes")
        pr = drv.populate(server, size)
        dead = any(m["proc"].poll() is not None for m in ens.members)
        oom = target == "zookeeper" and zk_oom(ens)
        if oom or dead or not pr.get("ok"):
            why = ("OutOfMemoryError in its log" if oom else "a member exited" if dead
                   else f"populate failed: {pr.get('first_error') or 'see the log'}")
            rec.add(**base, kind="failed", reason=f"did not hold {size:,} znodes: {why}",
                    xmx_kib=xmx_kib() if target == "zookeeper" else None)
            log(f"  {target} did not hold {size} znodes: {why}")
            return
        time.sleep(2)
        full, heap_full = member_rss(drv, ens)
        anon_full = settled_anon(ens)
        count_full = ens.znode_count()
        added = (count_full or 0) - (count_before or 0)
        path_bytes = mean_path_bytes(pop_dirs(drv, ens), size)
        per_member = [((f - b) * 1024 - added * (path_bytes + VALUE_BYTES)) / added
                      for f, b in zip(full, before)] if added > 0 else [None]
        anon_per = max(((f - b) * 1024 - added * (path_bytes + VALUE_BYTES)) / added
                       for f, b in zip(anon_full, anon_before)) if added > 0 else None
        hb = max((h for h in heap_before if h is not None), default=None)
        hf = max((h for h in heap_full if h is not None), default=None)
        # ZooKeeper's RSS follows the heap the JVM committed, not what it uses: its heap used
        # after a full GC says what the znodes themselves cost
        heap_per = (((hf - hb) * 1024 - added * (path_bytes + VALUE_BYTES)) / added
                    if hb is not None and hf is not None and added > 0 else None)
        rec.add(**base, kind="memory", value_bytes=VALUE_BYTES, rss_empty_kib=max(empty),
                heap_bytes_per_znode=heap_per, anon_bytes_per_znode=anon_per,
                anon_before_kib_members=anon_before, anon_kib_members=anon_full,
                rss_before_kib=max(before), rss_kib=max(full), rss_kib_members=full,
                heap_before_kib=hb, heap_used_after_gc_kib=hf, znode_count=count_full,
                znodes_added=added, path_bytes_mean=round(path_bytes, 1),
                bytes_per_znode=max(per_member), populate_ops_per_s=pr.get("ops_per_s"))
        log(f"  RSS {max(full)} KiB with {count_full} znodes (before {max(before)} KiB): "
            f"{max(per_member):.0f} bytes per znode beyond path and data")
        if target == "zookeeper" and hb is not None and hf is not None and added > 0:
            held_at[topo] = (size, hb, (hf - hb) / added)
        workloads(drv, args, rec, ens, base, "full")
        m = ens.members[0]
        dirs = pop_dirs(drv, ens)
        k = min(WATCHES, size // 4)
        paths = [f"{POP_PREFIX}/c/{d}/n{i}" for i in range(k // len(dirs)) for d in dirs]

        def hold_watches():
            socks = open_sessions(drv, m["addr"], m["port"], 1)
            return set_watches(drv, socks[0], paths), socks

        held_cost(drv, rec, ens, base, "watch", len(paths), hold_watches)
        held_cost(drv, rec, ens, base, "session", SESSIONS,
                  lambda: (SESSIONS, open_sessions(drv, m["addr"], m["port"], SESSIONS)))
        times = [ens.time_to_first_get(f"{POP_PREFIX}/w") for _ in range(args.restart_repeats)]
        seen = ens.znode_count()
        rec.add(**base, kind="restart", seconds=times, median_s=drv.statistics.median(times),
                znode_count=seen)
        log(f"  restart: {['%.3f' % t for t in times]} s (znode_count {seen})")
    finally:
        ens.stop()
        drv.shutil.rmtree(root, ignore_errors=True)


def phase_scale(drv, args, rec, scratch):
    held_at = {}  # topology -> (size, heap before KiB, heap KiB per znode) of ZooKeeper
    limit = xmx_kib()
    for size in args.scale_sizes:
        for topo in args.scale_topologies:
            count = 3 if topo == "ensemble3" else 1
            for target in TARGETS:
                if target == "zookeeper" and topo in held_at and limit:
                    at, heap0, per = held_at[topo]
                    need = heap0 + per * size
                    if need > limit:
                        reason = (f"not run: its heap per znode at {at:,} znodes "
                                  f"({per * 1024:.0f} bytes) puts {size:,} znodes at "
                                  f"{need / 1048576:.1f} GiB, over -Xmx {limit / 1048576:.1f} GiB")
                        rec.add(phase="scale", topology=topo, target=target, znodes=size,
                                kind="skipped", reason=reason, xmx_kib=limit)
                        log(f"scale {size} {topo} zookeeper: {reason}")
                        continue
                scale_one(drv, args, rec, scratch, size, topo, count, target, held_at)
