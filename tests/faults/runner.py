#!/usr/bin/python3
"""The fault-injection workload runner (issue 6): clients perform operations against a running
5-member ensemble while a nemesis injects faults on a seeded random schedule; at the end it heals
everything, checks the recorded histories with checker.py, and writes a report.

This file owns the workloads, the nemesis and the report. tests/faults/run.sh starts the ensemble
(tests/integration/helpers.bash) and calls it:

  runner.py run --state-dir DIR --members 5 --seconds N --seed S --out DIR --report FILE
                [--nemeses kill,pause,partition,disk,truncate] [--disk-member M]
                [--expect-anomaly] [--window-bounds KIND=S,...]

Workloads (each client is a kazoo session, one operation at a time, every operation recorded with
its invocation and completion times and outcome ok / fail / unknown):
  register  5 clients; setData without a version, setData with a version (compare-and-set), and
            getData after sync, on registers that rotate (a fresh znode after REGISTER_OPS_MAX
            operations or REGISTER_UNKNOWN_MAX unknown outcomes, which keeps each history small
            enough for an exhaustive linearizability search)
  set       2 clients; sequential creates under /set, and sync + getChildren reads
  session   ephemeral owners in child processes, ended by close or by kill -9, or kept to the end
Nemeses: kill -9 + restart (the leader more often), SIGSTOP/SIGCONT for longer than the session
timeout and syncLimit, iptables partitions (isolate one, isolate the leader, majority/minority,
bridge), a full disk (the member's data on a small tmpfs, filled), a truncated store tail on a
stopped member (which must refuse to start with one line naming the file; the runner then does
what that line says, wipes the member's data and restarts it, and the member must rejoin). Every
fault is healed at the end (rules removed by tag, processes continued, members restarted, filler
removed). A member that exits other than by fatal() on the full disk or by that refusal died on
its own: a failed check.
Availability: every fault is recorded with the time it was injected and healed, and gets its
write-unavailability window (checker.unavailability_windows: the longest time no write of any
client succeeded, from the first failed or stalled write to the first success after it, plus each
client's own last-success-to-next-success gap). The report shows their distribution per fault
kind; a window longer than its kind's bound (WINDOW_BOUNDS, --window-bounds) fails a check, and
every window is in OUT/windows.jsonl.
Prints one TAP line per check; exit status 0 when every check passed.
"""
import argparse
import gc
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

from kazoo.client import KazooClient, KazooState  # noqa: E402
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError  # noqa: E402
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HELPERS = os.path.join(REPO, "tests", "integration", "helpers.bash")
PYTHON = "/usr/bin/python3"

SESSION_TIMEOUT_S = 4.0       # clients' session timeout (tickTime=500: allowed 1..10 s)
OP_TIMEOUT_S = 5.0            # an operation with no reply by then is recorded unknown
PAUSE_S = (6.0, 9.0)          # SIGSTOP length: above the session timeout and syncLimit x tickTime
FAULT_HOLD_S = (4.0, 10.0)    # how long a kill, partition or full disk lasts
FAULT_GAP_S = (1.0, 4.0)      # quiet time between faults
SETTLE_S = 45.0               # after healing, how long a leader may take to serve again
# The most seconds a fault may stop every write (checker.unavailability_windows: from the first
# failed or stalled write to the first success after it, across the write clients), by kind.
# The ensemble runs with tickTime=500 and syncLimit=4: a silent leader is given up after
# syncLimit x tickTime = 2 s; clients' session timeout is 4 s. A bound is what the design
# promises with margin on a loaded 2-core machine, not what a quiet machine shows.
# Override with --window-bounds / ZN_FAULTS_WINDOW_BOUNDS ("kind=S,kind=off,*=S"). Every kind
# here is bounded: faults come one at a time and a quorum (3 of 5) with a leader can always
# form, and every client knows every member (partitions cut peer ports only), so no fault this
# harness injects may stop all writes for long. Per-client windows ("client:KIND=S") are
# reported but not bounded by default: they add the client library's own reconnection timing
# (kazoo waits 2/3 of the session timeout for a silent member before it tries another).
WINDOW_BOUNDS = {
    # The leader's process is gone: its links close and the followers elect at once (issue 13).
    # Below syncLimit x tickTime on purpose: a window of 2 s or more means the followers waited
    # out the silence timeout although the closed link told them the truth (code that did so
    # showed 2.10-2.79 s in 8 of 8 such faults). Issue 13's target for a failover is at most
    # 1 s; 1.8 s leaves that 80% for a loaded machine.
    "kill-leader": 1.8,
    "disk-full-leader": 1.8,      # a leader that fatal()s on ENOSPC is a killed leader
    # The leader is silent, not gone (stopped, or its packets dropped): syncLimit x tickTime
    # (2 s) before it is given up, then an election in round trips.
    "pause-leader": 5.0,
    "partition-isolate-leader": 5.0,
    "partition-split-leader-minority": 5.0,
    # the leader keeps a quorum: writes go on; the fault's member rejoins after the heal
    "kill-follower": 3.0,
    "disk-full-follower": 3.0,
    "pause-follower": 3.0,
    "partition-isolate-follower": 3.0,
    "partition-split-leader-majority": 3.0,
    "partition-bridge": 3.0,      # the leader's side with the bridge is a quorum (3 of 5)
    "truncate": 3.0,              # a follower killed, restarted on a cut store, maybe wiped
    # Each client on its own, after every kind of fault: the longest it went from one acknowledged
    # write to its next. A client of the member at fault notices by its ping timeout (the session
    # timeout is 4 s) and reconnects; 3 session timeouts cannot flake. Before the session fixes
    # of issue 13 (a new leader expiring sessions by stale deadlines, closing marks outliving
    # their leadership) 30-minute runs had clients stuck for 20-58 s; after them, at most 5.4 s.
    "client:*": 12.0,
}
CONVERGE_S = 120.0            # how long members may take to agree after the final heal
REGISTER_CLIENTS = 5
REGISTER_SLOTS = 2            # registers in use at once
REGISTER_OPS_MAX = 250
REGISTER_UNKNOWN_MAX = 6
REGISTER_CREATE_S = 10.0      # how long rotation tries to create a fresh register
LINEARIZABILITY_BUDGET_S = 900.0  # all register searches together; the rest are undecided
SET_CLIENTS = 2
# Every Nth set operation reads all children: each read holds the whole set (100k names after a
# long run), so reading often costs gigabytes of history.
SET_READ_EVERY = 100
SESSIONS_LIVE_MAX = 3
RULE_TAG_PREFIX = "znodefs-faults-"
# What znoded logs when it stops on purpose: its fatal() on a log write with no space left, its
# refusal of a damaged store (replication/store_format.c), its note that a short store file
# lacks only pages no commit uses.
DISK_FULL_EXIT = "no space left on device"
STORE_REFUSAL = "data.mdb is damaged: "
STORE_UNUSED_PAGES = "every page in use is there"


def now_ns():
    return time.monotonic_ns()


class Members:
    """The ensemble under test, as helpers.bash laid it out in the state directory."""

    def __init__(self, state_dir, count):
        self.state_dir = state_dir
        self.count = count
        self.ids = list(range(1, count + 1))

    def dir(self, n):
        return os.path.join(self.state_dir, "m%d" % n)

    def read(self, n, name):
        with open(os.path.join(self.dir(n), name)) as f:
            return f.read().strip()

    def addr(self, n):
        return "127.0.0.%d" % n

    def port(self, n):
        return int(self.read(n, "port"))

    def pid(self, n):
        try:
            return int(self.read(n, "pid"))
        except (OSError, ValueError):
            return None

    def hosts(self, first=None):
        order = list(self.ids)
        if first is not None:
            i = order.index(first)
            order = order[i:] + order[:i]
        return ",".join("%s:%d" % (self.addr(n), self.port(n)) for n in order)

    def alive(self, n):
        pid = self.pid(n)
        if not pid:
            return False
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def fourlw(self, n, word, timeout=3.0):
        try:
            with socket.create_connection((self.addr(n), self.port(n)), timeout=timeout) as s:
                s.sendall(word.encode())
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                return out.decode(errors="replace")
        except OSError:
            return ""

    def mode(self, n):
        m = re.search(r"^Mode: (\w+)", self.fourlw(n, "srvr"), re.M)
        return m.group(1) if m else None

    def leader(self):
        """The member that leads, or None. When two say so (one that was paused or cut off
        still believes it leads until it notices), the one at the higher zxid: its epoch is
        the newer."""
        best, best_zxid = None, -1
        for n in self.ids:
            if not self.alive(n):
                continue
            out = self.fourlw(n, "srvr")
            if not re.search(r"^Mode: leader\b", out, re.M):
                continue
            m = re.search(r"^Zxid: (0x[0-9a-fA-F]+)", out, re.M)
            zxid = int(m.group(1), 16) if m else 0
            if zxid > best_zxid:
                best, best_zxid = n, zxid
        return best

    def helper(self, command):
        """Run a helpers.bash function for this state directory; returns (rc, output)."""
        env = dict(os.environ, ZN_STATE_DIR=self.state_dir)
        p = subprocess.run(["bash", "-c", "source %s && %s" % (HELPERS, command)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=180)
        return p.returncode, p.stdout.decode(errors="replace")

    def kill9(self, n):
        pid = self.pid(n)
        if pid and self.alive(n):
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while self.alive(n) and time.time() < deadline:
            time.sleep(0.05)

    def restart(self, n):
        if self.alive(n):
            return True, "already running"
        rc, out = self.helper("restart_member %d" % n)
        return rc == 0, out

    def signal(self, n, sig):
        pid = self.pid(n)
        if pid and self.alive(n):
            os.kill(pid, sig)

    def peer_ports(self):
        ports = []
        for n in self.ids:
            ports += [self.read(n, "peer_port"), self.read(n, "election_port")]
        return ",".join(ports)


class History:
    """Every operation of every client, appended under a lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self.lock:
            self.ops.append(op)
        return op


class Stop:
    def __init__(self):
        self.event = threading.Event()

    def __bool__(self):
        return self.event.is_set()


def new_client(hosts, first_member_hosts=True):
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, randomize_hosts=not first_member_hosts,
                     connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
    return zk


def start_client(zk, stop):
    while not stop:
        try:
            zk.start(timeout=15)
            return True
        except (KazooTimeoutError, KazooException):
            try:
                zk.stop()
            except Exception:
                pass
            time.sleep(0.5)
    return False


def session_of(zk):
    try:
        return zk.client_id[0] if zk.client_id else 0
    except Exception:
        return 0


def member_of(zk):
    try:
        return zk._connection._socket.getpeername()[0]
    except Exception:
        return "?"


def outcome_of(exc):
    """How an exception ends a write: 'fail' when it surely did not apply, else 'unknown'."""
    if isinstance(exc, (BadVersionError, NoNodeError, NodeExistsError)):
        return "fail"
    return "unknown"


class RegisterKeys:
    """Registers in use; each slot moves to a fresh znode after enough operations or unknown
    outcomes, so each history stays small enough to search exhaustively."""

    def __init__(self, zk, rng):
        self.lock = threading.Lock()
        self.zk = zk
        self.rng = rng
        self.next_index = 0
        self.slots = []
        self.created = []
        for _ in range(REGISTER_SLOTS):
            self.slots.append(self._fresh())

    def _fresh(self, must=True):
        """A new register, or None when it could not be created within REGISTER_CREATE_S
        (no quorum): the slot then keeps its register a while longer."""
        path = "/reg/k%05d" % self.next_index
        self.next_index += 1
        deadline = time.time() + REGISTER_CREATE_S
        while True:
            try:
                self.zk.create_async(path, b"", makepath=True).get(timeout=OP_TIMEOUT_S)
                break
            except NodeExistsError:
                break
            except (KazooException, KazooTimeoutError):
                if not must and time.time() > deadline:
                    return None
                time.sleep(0.2)
        self.created.append(path)
        return {"path": path, "ops": 0, "unknown": 0}

    def pick(self):
        """A register to operate on, or (None, None) while every slot has had its share of
        unknown outcomes and waits for a fresh register (without a quorum none can be made:
        piling more unknowns on one register would make its history unsearchable)."""
        with self.lock:
            open_slots = [i for i, s in enumerate(self.slots) if s["unknown"] < REGISTER_UNKNOWN_MAX]
            if not open_slots:
                return None, None
            slot = self.rng.choice(open_slots)
            s = self.slots[slot]
            s["ops"] += 1
            return slot, s["path"]

    def note_unknown(self, slot, path):
        with self.lock:
            s = self.slots[slot]
            if s["path"] == path:
                s["unknown"] += 1

    def rotate_if_due(self):
        with self.lock:
            due = [i for i, s in enumerate(self.slots)
                   if s["ops"] >= REGISTER_OPS_MAX or s["unknown"] >= REGISTER_UNKNOWN_MAX]
        for i in due:
            fresh = self._fresh(must=False)
            if fresh is None:
                return
            with self.lock:
                self.slots[i] = fresh


def register_worker(cid, members, keys, history, stop, seed, reader=False):
    """A client on the registers. A reader (--readers) only reads, back to back: a planted
    stale-read bug shows only in the moments a member lags, and a client that also writes
    spends those moments blocked on its write."""
    rng = random.Random(seed)
    process = ("rd%d" if reader else "reg%d") % cid
    # Client i prefers member i+1 (hosts not shuffled), so every member has clients.
    zk = new_client(members.hosts(first=members.ids[cid % members.count]))
    if not start_client(zk, stop):
        return
    counter = 0
    try:
        while not stop:
            slot, path = keys.pick()
            if path is None:
                time.sleep(0.2)
                continue
            kind = "read" if reader else rng.choices(["read", "write", "cas"], [0.45, 0.3, 0.25])[0]
            counter += 1
            value = "%s-%d" % (process, counter)
            op = {"workload": "register", "key": path, "process": process, "f": kind,
                  "value": None, "session": session_of(zk), "start": now_ns()}
            try:
                if kind == "read":
                    zk.sync_async(path).get(timeout=OP_TIMEOUT_S)
                    data, stat = zk.get_async(path).get(timeout=OP_TIMEOUT_S)
                    op.update(status="ok", result=[data.decode(), stat.version])
                elif kind == "write":
                    op["value"] = value
                    zk.set_async(path, value.encode()).get(timeout=OP_TIMEOUT_S)
                    op["status"] = "ok"
                else:
                    # Read the version first (not part of the op), so many cas ops succeed.
                    _, stat = zk.get_async(path).get(timeout=OP_TIMEOUT_S)
                    expected = stat.version
                    op["start"] = now_ns()
                    op["value"] = [expected, value]
                    zk.set_async(path, value.encode(), version=expected).get(timeout=OP_TIMEOUT_S)
                    op["status"] = "ok"
            except BadVersionError:
                op.update(status="fail", result="badversion")
            except (KazooException, KazooTimeoutError, OSError) as exc:
                if kind == "cas" and op["value"] is None:
                    continue  # the preliminary version read failed: nothing was attempted
                op["status"] = "fail" if kind == "read" else outcome_of(exc)
                op["error"] = type(exc).__name__
            op["end"] = now_ns()
            if op["status"] == "ok":
                op["zxid"] = zk.last_zxid
                op["member"] = member_of(zk)
            if op["status"] == "unknown":
                keys.note_unknown(slot, path)
            history.add(op)
            time.sleep(rng.uniform(0, 0.01 if reader else 0.04))  # a moderate load: the machine is shared
    finally:
        close_quietly(zk)


def set_worker(cid, members, history, stop, seed):
    rng = random.Random(seed)
    process = "set%d" % cid
    zk = new_client(members.hosts(first=members.ids[(cid + 2) % members.count]))
    if not start_client(zk, stop):
        return
    counter = 0
    try:
        while not stop:
            if counter % SET_READ_EVERY == SET_READ_EVERY - 1:
                op = {"workload": "set", "process": process, "f": "read", "session": session_of(zk),
                      "start": now_ns()}
                try:
                    zk.sync_async("/set").get(timeout=OP_TIMEOUT_S)
                    children = zk.get_children_async("/set").get(timeout=OP_TIMEOUT_S)
                    # A tuple of interned names: a long run holds a thousand reads of up to
                    # 100k names, and as lists of fresh strings they took gigabytes and made
                    # each full garbage collection walk all of them, stopping every client
                    # thread for seconds (finding 8). CPython stops tracking a tuple of strings.
                    op.update(status="ok",
                              result=tuple(sorted(sys.intern(strip_sequence(c)) for c in children)))
                except (KazooException, KazooTimeoutError, OSError) as exc:
                    op.update(status="fail", error=type(exc).__name__)
            else:
                name = "e-%d-%d-" % (cid, counter)
                op = {"workload": "set", "process": process, "f": "create", "name": name,
                      "session": session_of(zk), "start": now_ns()}
                try:
                    zk.create_async("/set/" + name, b"x", sequence=True).get(timeout=OP_TIMEOUT_S)
                    op["status"] = "ok"
                except (KazooException, KazooTimeoutError, OSError) as exc:
                    op.update(status=outcome_of(exc), error=type(exc).__name__)
            counter += 1
            op["end"] = now_ns()
            if op["status"] == "ok":
                op["zxid"] = zk.last_zxid
                op["member"] = member_of(zk)
            history.add(op)
            time.sleep(rng.uniform(0, 0.05))
    finally:
        close_quietly(zk)


def strip_sequence(child):
    return child[:-10] if len(child) > 10 and child[-10:].isdigit() else child


def close_quietly(zk, timeout_s=5.0):
    """Stop a client without waiting on it for long: kazoo's stop can block while its
    connection retries against members that are down."""
    def stop():
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    t = threading.Thread(target=stop, daemon=True)
    t.start()
    t.join(timeout_s)


# ---- session / ephemeral workload ----

def ephemeral_client(hosts, prefix, state_file):
    """Child process: open a session, create two ephemerals, report, then live until told to
    close (a line on stdin) or killed. Writes its session id, created paths and state changes."""
    log = open(state_file, "a", buffering=1)
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S,
                     connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
    # Each state change, with the session the client holds then: after a LOST session kazoo
    # opens a new one on its own, and what is created later belongs to that one.
    zk.add_listener(lambda state: log.write("state %s %d\n" % (
        state, zk.client_id[0] if state == KazooState.CONNECTED and zk.client_id else 0)))
    try:
        zk.start(timeout=20)
    except Exception:
        log.write("never-connected\n")
        return 1
    sid = zk.client_id[0]
    log.write("session %d\n" % sid)
    log.write("state CONNECTED %d\n" % sid)
    for i in range(2):
        path = "%s-s%x-%d" % (prefix, sid, i)
        log.write("attempt %s\n" % path)
        try:
            zk.create(path, b"e", ephemeral=True, makepath=True)
        except Exception as exc:
            log.write("unknown %s %s\n" % (path, type(exc).__name__))
            continue
        # The node's owner, read back: the session it lives and dies with (0: not known).
        owner = 0
        try:
            stat = zk.exists(path)
            owner = stat.ephemeralOwner if stat else 0
        except Exception:
            pass
        log.write("created %s %d\n" % (path, owner))
    log.write("ready\n")
    sys.stdin.readline()
    try:
        zk.stop()
        zk.close()
        log.write("closed\n")
    except Exception as exc:
        log.write("close-failed %s\n" % type(exc).__name__)
    return 0


def session_worker(members, out_dir, sessions, stop, seed):
    rng = random.Random(seed)
    live = []
    n = 0
    while not stop:
        n += 1
        state_file = os.path.join(out_dir, "eph-%d.log" % n)
        p = subprocess.Popen([PYTHON, os.path.abspath(__file__), "ephemeral-client",
                              members.hosts(), "/eph/c%d" % n, state_file],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        rec = {"n": n, "proc": p, "state_file": state_file, "end": "kept"}
        sessions.append(rec)
        live.append(rec)
        deadline = time.time() + 30
        while time.time() < deadline and not stop and "ready" not in read_lines(state_file):
            time.sleep(0.1)
        if len(live) > SESSIONS_LIVE_MAX:
            victim = live.pop(rng.randrange(len(live)))
            if rng.random() < 0.5:
                victim["end"] = "closed"
                try:
                    victim["proc"].stdin.write(b"close\n")
                    victim["proc"].stdin.flush()
                except OSError:
                    pass
                try:
                    victim["proc"].wait(timeout=20)
                except subprocess.TimeoutExpired:
                    victim["end"] = "killed"
                    victim["proc"].kill()
                    victim["proc"].wait()
            else:
                victim["end"] = "killed"
                victim["proc"].kill()
                victim["proc"].wait()
        stop.event.wait(rng.uniform(1.0, 4.0))


def read_lines(path):
    try:
        with open(path) as f:
            return [line.strip() for line in f]
    except OSError:
        return []


# ---- nemesis ----

class Nemesis:
    """Injects faults on a seeded random schedule and heals them; counts faults by kind."""

    def __init__(self, members, rng, kinds, disk_member, log, tag):
        self.m = members
        self.rng = rng
        self.kinds = kinds
        self.disk_member = disk_member
        self.log = log
        self.tag = tag
        self.counts = {}
        self.events = []
        self.paused = set()
        self.filler = None
        self.crashes = []  # (member, last words): members that died with no fault on them
        self.expected_exits = []  # (member, why): stopped by a fault on purpose, with its message
        self.store_damage = {"cuts": 0, "refused": 0, "unused-pages": 0, "rejoined": 0}
        self.store_anomalies = []  # a cut store started on, a crash on it, a wiped member stuck
        # Every fault injected, in order: {'kind', 'detail', 'member', 'start', 'heal', 'served'}
        # (monotonic ns: when it was injected, when it was removed, when the member it hit served
        # again), for the write-unavailability windows (checker.unavailability_windows).
        self.faults = []
        self.forced_leader = False  # the first round aims kill and pause at the leader

    def begin(self, kind, member, detail=""):
        """Record a fault as injected now; returns its record (heal and served are set later)."""
        rec = {"kind": kind, "member": member, "detail": detail, "start": now_ns(),
               "heal": None, "served": None, "clock": time.strftime("%H:%M:%S")}
        self.faults.append(rec)
        return rec

    def note(self, kind, detail):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        line = "%s %s: %s" % (time.strftime("%H:%M:%S"), kind, detail)
        self.events.append(line)
        self.log(line)

    def pick_member(self, leader_weight=0.6):
        leader = self.m.leader()
        if self.forced_leader:
            leader_weight = 1.0
        if leader is not None and self.rng.random() < leader_weight:
            return leader, True
        n = self.rng.choice(self.m.ids)
        return n, n == leader

    # partitions
    def drop(self, a, b):
        ports = self.m.peer_ports()
        for src, dst in ((a, b), (b, a)):
            subprocess.run(["iptables", "-I", "INPUT", "-s", self.m.addr(src), "-d", self.m.addr(dst),
                            "-p", "tcp", "-m", "multiport", "--ports", ports,
                            "-m", "comment", "--comment", self.tag, "-j", "DROP"], check=True)

    def cut(self, side_a, side_b):
        for a in side_a:
            for b in side_b:
                self.drop(a, b)

    def heal_partitions(self):
        while True:
            out = subprocess.run(["iptables", "-S", "INPUT"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL).stdout.decode()
            rules = [line for line in out.splitlines() if "--comment %s" % self.tag in line
                     or '--comment "%s"' % self.tag in line]
            if not rules:
                return
            spec = rules[0].split()
            spec[0] = "-D"
            if subprocess.run(["iptables"] + spec).returncode != 0:
                return

    def partition(self):
        ids = list(self.m.ids)
        self.rng.shuffle(ids)
        leader = self.m.leader()
        variant = self.rng.choice(["isolate-one", "isolate-leader", "majority-minority", "bridge"])
        if variant == "isolate-leader" and leader is None:
            variant = "isolate-one"
        # The fault's kind for the windows says where the leader was: that decides the outage.
        if variant in ("isolate-one", "isolate-leader"):
            alone = leader if variant == "isolate-leader" else ids[0]
            kind = "partition-isolate-" + ("leader" if alone == leader else "follower")
        elif variant == "majority-minority":
            kind = "partition-split-leader-" + ("minority" if leader in ids[:2] else "majority")
        else:
            kind = "partition-bridge"
        rec = self.begin(kind, None)
        if variant == "isolate-one":
            alone = ids[0]
            self.cut([alone], [n for n in ids if n != alone])
            detail = "isolate member %d" % alone
        elif variant == "isolate-leader":
            self.cut([leader], [n for n in ids if n != leader])
            detail = "isolate the leader, member %d" % leader
        elif variant == "majority-minority":
            minority, majority = ids[:2], ids[2:]
            self.cut(minority, majority)
            detail = "split %s | %s" % (sorted(minority), sorted(majority))
        else:
            a, bridge, b = ids[:2], ids[2], ids[3:]
            self.cut(a, b)
            detail = "bridge %s - %d - %s" % (sorted(a), bridge, sorted(b))
        self.note("partition", "%s (%s)" % (variant, detail))
        rec["detail"] = "%s (%s)" % (variant, detail)
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        self.heal_partitions()

    def partition_follower(self):
        """Isolate one follower: the case where a member that lost its leader may still answer
        from a stale tree until it notices (syncLimit x tickTime)."""
        leader = self.m.leader()
        followers = [n for n in self.m.ids if n != leader]
        alone = self.rng.choice(followers)
        rec = self.begin("partition-isolate-follower", alone)
        self.cut([alone], [n for n in self.m.ids if n != alone])
        self.note("partition", "isolate-follower (isolate member %d; leader %s)" % (alone, leader))
        rec["detail"] = "isolate member %d (leader %s)" % (alone, leader)
        # Short: what matters is the moment before the member notices, and many such moments.
        time.sleep(self.rng.uniform(2.5, 4.0))
        rec["heal"] = now_ns()
        self.heal_partitions()

    def kill(self):
        n, was_leader = self.pick_member()
        if not self.m.alive(n):
            return
        rec = self.begin("kill-leader" if was_leader else "kill-follower", n,
                         "kill -9 member %d%s" % (n, " (leader)" if was_leader else ""))
        self.m.kill9(n)
        self.note("kill", "kill -9 member %d%s" % (n, " (leader)" if was_leader else ""))
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        ok, out = self.m.restart(n)
        if ok:
            rec["served"] = now_ns()
        else:
            self.log("restart of member %d failed: %s" % (n, out[-500:]))

    def pause(self):
        leader = self.m.leader()
        n = leader if leader is not None and (self.forced_leader or self.rng.random() < 0.6) \
            else self.rng.choice(self.m.ids)
        if not self.m.alive(n):
            return
        length = self.rng.uniform(*PAUSE_S)
        rec = self.begin("pause-leader" if n == leader else "pause-follower", n,
                         "SIGSTOP member %d%s for %.1fs" % (n, " (leader)" if n == leader else "", length))
        self.m.signal(n, signal.SIGSTOP)
        self.paused.add(n)
        self.note("pause", "SIGSTOP member %d%s for %.1fs" % (n, " (leader)" if n == leader else "", length))
        time.sleep(length)
        rec["heal"] = now_ns()
        self.m.signal(n, signal.SIGCONT)
        self.paused.discard(n)

    def disk(self):
        n = self.disk_member
        if n is None:
            return
        data = os.path.join(self.m.dir(n), "data")
        was_leader = self.m.leader() == n
        self.filler = os.path.join(data, "filler")
        written = 0
        try:
            with open(self.filler, "wb") as f:
                block = b"\0" * (1 << 20)
                while True:
                    f.write(block)
                    f.flush()
                    written += 1
        except OSError:
            pass
        filled_at = time.strftime("%H:%M:%S")
        rec = self.begin("disk-full-" + ("leader" if was_leader else "follower"), n)
        time.sleep(self.rng.uniform(*FAULT_HOLD_S))
        rec["heal"] = now_ns()
        self.heal_disk()
        outcome = "kept running"
        if not self.m.alive(n):
            words = last_log_error(self.m, n)
            if DISK_FULL_EXIT in words:
                # znoded's fatal() on a log write that found no space: the expected way out.
                self.expected_exits.append((n, "disk full"))
            else:
                self.crashes.append((n, "during a full disk, without its no-space message: " + words))
            outcome = "exited (%s); filler removed and restarted" % words
            ok, out = self.m.restart(n)
            if ok:
                rec["served"] = now_ns()
            else:
                self.log("restart of member %d failed: %s" % (n, out[-500:]))
        self.note("disk-full", "member %d's data tmpfs filled at %s (%d MiB of filler); %s"
                  % (n, filled_at, written, outcome))
        rec["detail"] = "member %d%s: %s" % (n, " (leader)" if was_leader else "", outcome)

    def heal_disk(self):
        if self.filler and os.path.exists(self.filler):
            os.unlink(self.filler)
        self.filler = None

    def truncate(self):
        """Cut a stopped follower's store file. znoded must refuse to start on it with one line
        naming the file (or, when only pages no commit uses were cut, start and say so); then do
        what that line tells an operator: move the data away (here: wipe it) and start the member
        again, which rejoins empty and gets a snapshot from the leader."""
        leader = self.m.leader()
        candidates = [n for n in self.m.ids if n != leader and self.m.alive(n)]
        if not candidates:
            return
        n = self.rng.choice(candidates)
        rec = self.begin("truncate", n)
        self.m.kill9(n)
        files = []
        for root, _, names in os.walk(self.m.dir(n), followlinks=True):  # the disk member's are symlinks
            files += [os.path.join(root, f) for f in names if f.endswith(".mdb")]
        files = [f for f in files if not f.endswith("lock.mdb")]
        if not files:
            self.log("truncate: member %d has no store file" % n)
            self.m.restart(n)
            return
        target = max(files, key=os.path.getsize)
        size = os.path.getsize(target)
        cut = min(size // 2, self.rng.choice([1, 100, 4096, 3 * 4096 + 17]))
        os.truncate(target, size - cut)
        self.store_damage["cuts"] += 1
        ok, out = self.m.restart(n)
        since = log_since_start(self.m, n)
        refusal = [line for line in since if STORE_REFUSAL in line]
        if ok:
            if any(STORE_UNUSED_PAGES in line for line in since):
                self.store_damage["unused-pages"] += 1
                outcome = "started: the cut took only pages no commit uses (the store checked and said so)"
            else:
                outcome = "STARTED ON A CUT STORE without a word"
                self.store_anomalies.append("member %d started on a store cut by %d bytes without "
                                            "refusing or saying why it may" % (n, cut))
        else:
            if refusal:
                self.store_damage["refused"] += 1
                what = refusal[-1].split(STORE_REFUSAL, 1)[1].split("; refusing", 1)[0]
                outcome = "refused to start as expected (data.mdb is damaged: %s)" % what[:240]
                self.expected_exits.append((n, "refused a cut store"))
            else:
                outcome = "did not start and did not refuse cleanly (%s)" % last_log_error(self.m, n)
                self.store_anomalies.append("member %d, store cut by %d bytes: %s"
                                            % (n, cut, last_log_error(self.m, n)))
            # What the refusal tells the operator: move the data aside, start again.
            self.m.kill9(n)
            wipe_member_data(self.m, n)
            ok, out = self.m.restart(n)
            if ok:
                # restart waits until the member serves: it has synced with a leader.
                self.store_damage["rejoined"] += 1
                outcome += "; data wiped as an operator would, restarted, rejoined (%s)" % (
                    self.m.mode(n) or "mode unknown")
            else:
                outcome += "; data wiped, but it did not rejoin"
                self.store_anomalies.append("wiped member %d did not rejoin: %s" % (n, last_line(out)))
        rec["heal"] = rec["served"] = now_ns()  # it serves again (or gave up) by now
        rec["detail"] = "member %d: %s" % (n, outcome[:120])
        self.note("truncate", "member %d: cut %d bytes off %s (%d bytes); %s"
                  % (n, cut, os.path.relpath(target, self.m.dir(n)), size, outcome))

    def revive_crashed(self):
        """Between faults every member should be running: one that is not died on its own.
        Record it (a bug to report) and restart it so the run goes on with a quorum."""
        for n in self.m.ids:
            if not self.m.alive(n):
                words = last_log_error(self.m, n)
                self.crashes.append((n, words))
                line = "%s crash: member %d died on its own (%s); restarting it" % (
                    time.strftime("%H:%M:%S"), n, words)
                self.events.append(line)
                self.log(line)
                ok, out = self.m.restart(n)
                if not ok:
                    self.log("restart of crashed member %d failed: %s" % (n, out[-300:]))

    def settle(self):
        deadline = time.time() + SETTLE_S
        while time.time() < deadline and self.m.leader() is None:
            time.sleep(0.2)

    def run(self, stop, until):
        actions = {"kill": self.kill, "pause": self.pause, "partition": self.partition,
                   "disk": self.disk, "truncate": self.truncate,
                   "partition-follower": self.partition_follower}
        weights = {"kill": 3, "pause": 2, "partition": 3, "disk": 1, "truncate": 1,
                   "partition-follower": 1}
        kinds = [k for k in self.kinds if k in actions]
        # The first round injects each kind once (in random order), so even a short run covers
        # every kind; after that the schedule is random.
        first = list(kinds)
        self.rng.shuffle(first)
        while not stop and time.time() < until:
            stop.event.wait(self.rng.uniform(*FAULT_GAP_S))
            if stop or time.time() >= until:
                break
            # The first round aims its kill and pause at the leader: even a short run then
            # measures the failover windows users notice most.
            self.forced_leader = bool(first)
            kind = first.pop(0) if first else self.rng.choices(kinds, [weights[k] for k in kinds])[0]
            try:
                actions[kind]()
            except Exception as exc:  # a nemesis bug must not leave a fault in place
                self.log("nemesis %s raised %r" % (kind, exc))
            self.forced_leader = False
            self.heal_all(restart=False)
            self.settle()
            self.revive_crashed()

    def heal_all(self, restart=True):
        self.heal_partitions()
        for n in list(self.m.ids):
            if self.m.alive(n):
                self.m.signal(n, signal.SIGCONT)
        self.paused.clear()
        self.heal_disk()
        if restart:
            self.revive_crashed()
            for n in self.m.ids:
                if not self.m.alive(n):
                    ok, out = self.m.restart(n)
                    if not ok:
                        self.log("final restart of member %d failed: %s" % (n, out[-500:]))


def log_since_start(members, n):
    """The member's log lines since its last start."""
    lines = read_lines(os.path.join(members.dir(n), "server.log"))
    starts = [i for i, line in enumerate(lines) if line.startswith("=== start")]
    return lines[starts[-1]:] if starts else lines


def last_log_error(members, n):
    """The last WARN/ERROR line the member logged since its last start, or a note that it
    died without one (killed by a signal)."""
    since = log_since_start(members, n)
    # "Assertion" too: assert(3) and liblmdb's own message spell it so (znoded routes LMDB's
    # through an ERROR line, but a library's assert() would still print it).
    marks = [i for i, line in enumerate(since)
             if " ERROR " in line or " WARN " in line or "assertion" in line.lower()]
    if marks:
        words = "last words: " + since[marks[-1]][:300]
        # What it logged after them (INFO lines, a backtrace): where a death is unexplained,
        # the report is all CI shows of it.
        after = [line.strip()[:160] for line in since[marks[-1] + 1:] if line.strip()]
        if after:
            words += " | then: " + " | ".join(after[:4])
        return words
    return "no error logged: it died by a signal"


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def wipe_member_data(members, n):
    for sub in ("data", "datalog"):
        d = os.path.join(members.dir(n), sub)
        for root, dirs, names in os.walk(d, topdown=False):
            for name in names:
                if not (root == os.path.join(members.dir(n), "data") and name == "myid"):
                    os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))


# ---- final checks ----

def member_client(members, n):
    zk = KazooClient(hosts="%s:%d" % (members.addr(n), members.port(n)), timeout=10.0,
                     connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    zk.start(timeout=30)
    return zk


def converge(members):
    deadline = time.time() + CONVERGE_S
    last = {}
    while time.time() < deadline:
        last = {n: members.fourlw(n, "hash").strip() for n in members.ids}
        values = set(last.values())
        if len(values) == 1 and "" not in values:
            return True, last
        time.sleep(0.5)
    return False, last


def final_set_reads(members):
    reads = {}
    for n in members.ids:
        zk = member_client(members, n)
        try:
            zk.sync("/set")
            reads[n] = sorted(strip_sequence(c) for c in zk.get_children("/set"))
        finally:
            close_quietly(zk)
    return reads


def session_expectations(rec):
    """What one ephemeral client's log says must hold at the end: (must_be_gone, must_exist),
    must_be_gone as (path, owner allowed to hold it or None). A client that was closed or
    killed has no session left: every path it attempted must be gone. A client still running
    (kept) holds one session, the last it connected with; kazoo replaces a LOST session with a
    new one on its own, so a path it created in an earlier session must be gone (or, if its
    create's outcome is unknown, may exist only as the current session's), and a path created
    in the current session must exist."""
    lines = read_lines(rec["state_file"])
    attempted = [line.split()[1] for line in lines if line.startswith("attempt ")]
    created = {}
    for line in lines:
        if line.startswith("created "):
            parts = line.split()
            created[parts[1]] = int(parts[2]) if len(parts) > 2 else 0
    connected = [int(line.split()[2]) for line in lines
                 if line.startswith("state CONNECTED ") and len(line.split()) > 2]
    current = connected[-1] if connected else 0
    lost = any(line.startswith("state LOST") for line in lines)
    if rec["end"] in ("closed", "killed") or not current:
        return [(path, None) for path in attempted], []
    gone, exist = [], []
    for path in attempted:
        owner = created.get(path)
        if owner is not None and (owner == current or (owner == 0 and not lost)):
            exist.append(path)
        else:
            gone.append((path, current))
    return gone, exist


def check_sessions(members, sessions):
    """Ended sessions' ephemerals are gone on every member (after the session timeout); the
    sessions of clients still running own theirs on every member (session_expectations)."""
    anomalies = []
    must_be_gone, must_exist = [], []
    for rec in sessions:
        gone, exist = session_expectations(rec)
        must_be_gone += gone
        must_exist += exist
    # Kept sessions end now, after their ephemerals were checked present.
    clients = {n: member_client(members, n) for n in members.ids}
    deadline = time.time() + 3 * SESSION_TIMEOUT_S + 30
    try:
        for n, zk in clients.items():
            zk.sync("/")
            for path in must_exist:
                if zk.exists(path) is None:
                    anomalies.append("member %d lost ephemeral %s of a live session" % (n, path))
        remaining = list(must_be_gone)
        while True:
            still = []
            for path, allowed in remaining:
                for n, zk in clients.items():
                    zk.sync("/")
                    stat = zk.exists(path)
                    if stat is not None and stat.ephemeralOwner != allowed:
                        still.append((n, path, allowed, stat.ephemeralOwner))
                        break
            if not still or time.time() > deadline:
                break
            remaining = [(p, allowed) for _, p, allowed, _ in still]
            time.sleep(1.0)
        for n, path, allowed, owner in still:
            anomalies.append("ephemeral %s of an ended session (owner 0x%x%s) still exists on member %d"
                             % (path, owner, "" if allowed is None else
                                "; the client's live session is 0x%x" % allowed, n))
    finally:
        for zk in clients.values():
            close_quietly(zk)
    return anomalies, len(must_be_gone), len(must_exist)


def end_sessions(sessions):
    for rec in sessions:
        p = rec["proc"]
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- the run ----

RUNNER_STALL_S = 1.0


def watch_own_stalls(stop, log):
    """Logs when this process itself was not scheduled for a while (a 0.1 s sleep that took more
    than RUNNER_STALL_S), and every garbage collection that held all threads for longer: a write
    outage the clients saw then may be the runner's, not the ensemble's."""
    gc_start = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_start[0] = time.monotonic()
        elif time.monotonic() - gc_start[0] > RUNNER_STALL_S / 4:
            log("runner garbage collection (generation %d) held every thread for %.2f s"
                % (info["generation"], time.monotonic() - gc_start[0]))
    gc.callbacks.append(on_gc)
    last = time.monotonic()
    frozen_at = last
    while not stop:
        time.sleep(0.1)
        t = time.monotonic()
        if t - frozen_at > 10.0:
            # The history only grows: what is alive now stays alive, so the collector need not
            # walk it again (full collections of 400k operations took 0.3-0.5 s in a
            # 30-minute run). A cycle frozen with it is kept until the run ends.
            gc.freeze()
            frozen_at = t
        if t - last > RUNNER_STALL_S:
            log("runner stalled: a 0.1 s sleep took %.2f s" % (t - last))
        last = t


def run(a):
    rng = random.Random(a.seed)
    members = Members(a.state_dir, a.members)
    os.makedirs(a.out, exist_ok=True)
    logf = open(os.path.join(a.out, "runner.log"), "a", buffering=1)
    # kazoo narrates every reconnection; keep that in the run's log, not on the TAP stream
    # (INFO: which member each client connects to, one line per connection)
    logging.basicConfig(stream=logf, level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(name)s %(message)s")

    def log(line):
        logf.write(line + "\n")
        print("# " + line, flush=True)

    kinds = [k for k in a.nemeses.split(",") if k]
    nemesis = Nemesis(members, random.Random(rng.random()), kinds, a.disk_member, log,
                      a.tag or RULE_TAG_PREFIX + str(os.getpid()))
    history = History()
    sessions = []
    stop = Stop()
    setup = new_client(members.hosts())
    if not start_client(setup, Stop()):
        print("not ok 1 - the runner could not connect to the ensemble")
        return 1
    for path in ("/set", "/eph"):
        try:
            setup.ensure_path(path)
        except NodeExistsError:
            pass
    keys = RegisterKeys(setup, random.Random(rng.random()))
    started = time.time()
    log("run: seed=%d seconds=%d nemeses=%s members=%d" % (a.seed, a.seconds, ",".join(kinds), a.members))
    threads = []
    for i in range(REGISTER_CLIENTS):
        threads.append(threading.Thread(target=register_worker,
                                        args=(i, members, keys, history, stop, rng.random())))
    for i in range(a.readers):
        threads.append(threading.Thread(target=register_worker,
                                        args=(i, members, keys, history, stop, rng.random(), True)))
    for i in range(SET_CLIENTS):
        threads.append(threading.Thread(target=set_worker, args=(i, members, history, stop, rng.random())))
    threads.append(threading.Thread(target=session_worker,
                                    args=(members, a.out, sessions, stop, rng.random())))
    threads.append(threading.Thread(target=watch_own_stalls, args=(stop, log), name="stall-watch"))
    for t in threads:
        t.daemon = True
        t.start()
    # The nemesis stops injecting a little before the end so the last fault heals under load.
    nemesis_until = started + max(0, a.seconds - 10)
    nem = threading.Thread(target=nemesis.run, args=(stop, nemesis_until))
    nem.daemon = True
    nem.start()
    while time.time() < started + a.seconds:
        keys.rotate_if_due()
        time.sleep(0.2)
    stop.event.set()
    run_end_ns = now_ns()
    nem.join(timeout=120)
    for t in threads:
        t.join(timeout=60)
    nemesis.heal_all(restart=True)
    close_quietly(setup)
    log("healed: every rule removed, every member continued and running")
    elapsed = time.time() - started
    with open(os.path.join(a.out, "history.jsonl"), "w") as f:
        for op in history.ops:
            if op.get("workload") == "set" and op.get("f") == "read" and "result" in op:
                op = dict(op, result=len(op["result"]))  # the count: the names are in memory
            f.write(json.dumps(op) + "\n")
    log("checking %d operations" % len(history.ops))

    checks = []  # (ok, description)
    # members converged
    same, digests = converge(members)
    checks.append((same, "all %d members end with the same tree digest (%s)"
                   % (members.count, "; ".join("m%d %s" % (n, d or "no answer") for n, d in sorted(digests.items())))))
    # linearizability, per register
    reg_ops = [op for op in history.ops if op["workload"] == "register"]
    by_key = {}
    for op in reg_ops:
        by_key.setdefault(op["key"], []).append(op)
    lin_bad, lin_undecided = [], []
    lin_deadline = time.time() + LINEARIZABILITY_BUDGET_S
    for key in sorted(by_key):
        if time.time() > lin_deadline:
            lin_undecided.append((key, {"reason": "the run's search budget of %.0f s was spent"
                                               % LINEARIZABILITY_BUDGET_S}))
            continue
        res = checker.check_register(by_key[key], ("", 0), max_steps=1_000_000)
        if res["valid"] is False:
            lin_bad.append((key, res))
        elif res["valid"] is None:
            lin_undecided.append((key, res))
    checks.append((not lin_bad and not lin_undecided,
                   "%d register histories (%d ops) linearizable%s" % (
                       len(by_key), len(reg_ops),
                       "" if not (lin_bad or lin_undecided) else
                       ": %d not linearizable, %d undecided" % (len(lin_bad), len(lin_undecided)))))
    # set
    set_ops = [op for op in history.ops if op["workload"] == "set"]
    creates = [op for op in set_ops if op["f"] == "create"]
    try:
        finals = final_set_reads(members)
    except Exception as exc:
        finals = {}
        log("final set reads failed: %r" % exc)
    set_anomalies = checker.check_set(creates, [op for op in set_ops if op["f"] == "read"], finals)
    if len(finals) != members.count:
        set_anomalies.append("could read /set from only %d members" % len(finals))
    acked = sum(1 for c in creates if c["status"] == "ok")
    checks.append((not set_anomalies, "no acknowledged create lost (%d acknowledged, %d unknown, read back from %d members)"
                   % (acked, sum(1 for c in creates if c["status"] == "unknown"), len(finals))))
    # monotonic zxids
    mono = checker.check_monotonic(reg_ops + set_ops)
    checks.append((not mono, "each session's replies never go back in zxid (%d replies)"
                   % sum(1 for op in reg_ops + set_ops if op["status"] == "ok")))
    # sessions
    try:
        eph_anomalies, gone, kept = check_sessions(members, sessions)
    except Exception as exc:
        eph_anomalies, gone, kept = ["session check failed: %r" % exc], 0, 0
    end_sessions(sessions)
    checks.append((not eph_anomalies, "ephemerals of ended sessions gone (%d) and of live ones present (%d) on every member"
                   % (gone, kept)))
    # faults
    kinds_hit = sorted(nemesis.counts)
    checks.append((len(kinds_hit) >= a.min_fault_kinds, "%d kinds of fault injected (%s), at least %d wanted"
                   % (len(kinds_hit), ", ".join("%s x%d" % (k, nemesis.counts[k]) for k in kinds_hit),
                      a.min_fault_kinds)))

    # write unavailability per fault (its checks go last, after the safety checks)
    window_checks = []
    try:
        bounds = checker.parse_bounds(a.window_bounds, WINDOW_BOUNDS)
    except ValueError as exc:
        bounds = dict(WINDOW_BOUNDS)
        window_checks.append((False, "--window-bounds: %s" % exc))
    windows = fault_windows(history, nemesis.faults, run_end_ns, bounds)
    with open(os.path.join(a.out, "windows.jsonl"), "w") as f:
        for w in windows["faults"]:
            f.write(json.dumps(w) + "\n")
    for kind in sorted(windows["kinds"]):
        k = windows["kinds"][kind]
        bound = k["bound"]
        dist = "%d faults, window p50 %.2f s, p90 %.2f s, max %.2f s%s" % (
            k["count"], k["p50"], k["p90"], k["max"],
            "" if not k["over"] else "; over the bound: " + "; ".join(
                "%s %.2f s (%s)" % (w["clock"], w["window_s"], w["detail"][:80]) for w in k["over"][:3]))
        if bound is None:
            log("write unavailability after %s (not bounded): %s" % (kind, dist))
        else:
            window_checks.append((not k["over"], "write unavailability after %s within %.1f s: %s"
                                  % (kind, bound, dist)))
        if k["client_bound"] is not None:
            window_checks.append((not k["client_over"], "every client writes again after %s within %.1f s: "
                           "worst client p50 %.2f s, max %.2f s" % (kind, k["client_bound"],
                                                                   k["client_p50"], k["client_max"])))

    log("checked; writing the report")
    # Members that died with no fault meant to stop them: bugs. Expected exits are a member on
    # the full disk leaving through fatal() with its no-space message, and a member refusing
    # its cut store.
    expected = {}
    for _, why in nemesis.expected_exits:
        expected[why] = expected.get(why, 0) + 1
    checks.append((not nemesis.crashes, "no member died on its own (%d did; expected exits: %s)" % (
        len(nemesis.crashes), ", ".join("%s x%d" % kv for kv in sorted(expected.items())) or "none")
        + ("" if not nemesis.crashes else ": " + "; ".join(
            "m%d %s" % (n, w[:120]) for n, w in nemesis.crashes[:3]))))
    if nemesis.store_damage["cuts"]:
        d = nemesis.store_damage
        checks.append((not nemesis.store_anomalies,
                       "every cut store refused with its one-line error or held every page in use, "
                       "and every wiped member rejoined (%d cuts: %d refused, %d only unused pages, "
                       "%d wiped members rejoined)" % (d["cuts"], d["refused"], d["unused-pages"], d["rejoined"])))
    checks += window_checks

    anomalies = ([("linearizability", "%s: %s" % (k, r["reason"])) for k, r in lin_bad]
                 + [("linearizability", "%s: undecided: %s" % (k, r["reason"])) for k, r in lin_undecided]
                 + [("set", x) for x in set_anomalies] + [("monotonic", x) for x in mono]
                 + [("ephemeral", x) for x in eph_anomalies]
                 + [("crash", "member %d: %s" % (n, w)) for n, w in nemesis.crashes]
                 + [("store", x) for x in nemesis.store_anomalies])
    if not same:
        anomalies.append(("convergence", "members disagree: %s" % digests))
    write_report(a, elapsed, history, nemesis, checks, anomalies, by_key, windows)

    tap = []
    if a.expect_anomaly:
        # The planted-bug run: the harness passes only when the checker catches the bug.
        tap.append((bool(lin_bad), "planted bug %s caught by the linearizability checker (%d of %d histories not linearizable)"
                    % (a.planted_bug or "?", len(lin_bad), len(by_key))))
        if lin_bad:
            tap.append((True, "example: %s" % lin_bad[0][1]["reason"][:300].replace("\n", " ")))
    else:
        tap = checks
    print("1..%d" % len(tap))
    for i, (ok, desc) in enumerate(tap, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, desc))
    for kind, text in anomalies[:20]:
        print("# anomaly (%s): %s" % (kind, text[:500]))
    # A TODO check (a known bug, documented) is reported but does not fail the run.
    return 0 if all(ok or "# TODO" in desc for ok, desc in tap) else 1


def write_report(a, elapsed, history, nemesis, checks, anomalies, by_key, windows):
    ops = history.ops
    def count(pred):
        return sum(1 for op in ops if pred(op))
    lines = ["# Fault-injection run report", "",
             "- command: `tests/faults/run.sh --seconds %d --seed %d%s`" % (
                 a.seconds, a.seed, " --planted-bug %s" % a.planted_bug if a.planted_bug else ""),
             "- date: %s; duration %.0f s; %d members on 127.0.0.1-%d" % (
                 time.strftime("%Y-%m-%d %H:%M:%S"), elapsed, a.members, a.members),
             "", "## Operations", "", "| workload | ok | fail | unknown |", "|---|---|---|---|"]
    for wl in ("register", "set"):
        lines.append("| %s | %d | %d | %d |" % (wl, count(lambda o: o["workload"] == wl and o["status"] == "ok"),
                                                count(lambda o: o["workload"] == wl and o["status"] == "fail"),
                                                count(lambda o: o["workload"] == wl and o["status"] == "unknown")))
    lines += ["", "Total operations: %d. Register histories checked: %d." % (len(ops), len(by_key)), "",
              "## Faults injected", "", "| kind | count |", "|---|---|"]
    for k in sorted(nemesis.counts):
        lines.append("| %s | %d |" % (k, nemesis.counts[k]))
    lines += ["", "<details><summary>schedule</summary>", "", "```"] + nemesis.events + ["```", "</details>",
              ""] + windows_report(windows) + ["", "## Checks", ""]
    for ok, desc in checks:
        lines.append("- %s %s" % ("PASS" if ok else "FAIL", desc))
    lines += ["", "## Anomalies", ""]
    if not anomalies:
        lines.append("None.")
    for kind, text in anomalies[:50]:
        lines.append("- %s: %s" % (kind, text[:800]))
    os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
    with open(a.report, "w") as f:
        f.write("\n".join(lines) + "\n")


def is_write(op):
    return (op["workload"] == "register" and op["f"] in ("write", "cas")) or \
        (op["workload"] == "set" and op["f"] == "create")


def fault_windows(history, faults, run_end_ns, bounds):
    """Each fault's write-unavailability window (checker.unavailability_windows) as data for
    the report, windows.jsonl and the checks: {'faults': [...], 'kinds': {kind: distribution,
    bound, over}, 'baseline': ...}."""
    ops = [op for op in history.ops if is_write(op) and "end" in op]
    per_fault, baseline = checker.unavailability_windows(ops, faults, run_end_ns)
    rows = []
    for f, w in zip(faults, per_fault):
        def rel(t):
            return None if t is None else round((t - f["start"]) / 1e9, 3)
        bound = checker.bound_for(bounds, f["kind"])
        client_bound = bounds.get("client:" + f["kind"], bounds.get("client:*"))
        rows.append({"kind": f["kind"], "detail": f["detail"], "member": f["member"], "clock": f["clock"],
                     "window_s": round(w["window"] / 1e9, 3), "gap_s": round(w["gap"] / 1e9, 3),
                     "window_from_injection_s": rel(w["start"]), "window_end_from_injection_s": rel(w["end"]),
                     "heal_from_injection_s": rel(f["heal"]), "served_from_injection_s": rel(f["served"]),
                     "open": w["open"], "worst_client": w["worst_client"],
                     "worst_client_gap_s": round(w["worst_client_gap"] / 1e9, 3),
                     "bound_s": bound, "over": bound is not None and w["window"] > bound * 1e9,
                     "client_bound_s": client_bound,
                     "client_over": client_bound is not None and w["worst_client_gap"] > client_bound * 1e9})
    kinds = {}
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        d = checker.distribution([r["window_s"] for r in sel])
        c = checker.distribution([r["worst_client_gap_s"] for r in sel])
        kinds[kind] = dict(d, bound=checker.bound_for(bounds, kind), over=[r for r in sel if r["over"]],
                           client_p50=c["p50"], client_max=c["max"],
                           client_bound=sel[0]["client_bound_s"],
                           client_over=[r for r in sel if r["client_over"]])
    base = {"window_s": round(baseline["window"] / 1e9, 3), "gap_s": round(baseline["gap"] / 1e9, 3),
            "worst_client_gap_s": round(baseline["worst_client_gap"] / 1e9, 3)}
    return {"faults": rows, "kinds": kinds, "baseline": base}


def windows_report(windows):
    def s(v):
        return "-" if v is None else "%.2f" % v
    lines = ["## Write unavailability per fault", "",
             "For each fault: the longest time in which no write (setData, compare-and-set, create) "
             "of any client succeeded, from the first failed or stalled write to the first success "
             "after it; it belongs to the fault injected inside it, or else to the last fault "
             "injected before it began (so an outage when a killed member restarts counts for its "
             "kill). Worst client: the longest time one client went from a successful write to its "
             "next (the last success before to the first after, per client). Seconds.", "",
             "| fault kind | faults | p50 | p90 | max | bound | over the bound | worst client p50 | worst client max |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for kind, k in sorted(windows["kinds"].items()):
        lines.append("| %s | %d | %s | %s | %s | %s | %d | %s | %s |" % (
            kind, k["count"], s(k["p50"]), s(k["p90"]), s(k["max"]),
            "not bounded" if k["bound"] is None else s(k["bound"]), len(k["over"]),
            s(k["client_p50"]), s(k["client_max"])))
    b = windows["baseline"]
    lines += ["", "Before the first fault: longest window %.2f s, worst client %.2f s." % (
        b["window_s"], b["worst_client_gap_s"]), "",
        "<details><summary>every fault's window</summary>", "",
        "| time | kind | what | window | gap (last success to first) | began (s after injection) "
        "| healed at | worst client |", "|---|---|---|--:|--:|--:|--:|---|"]
    for r in windows["faults"]:
        lines.append("| %s | %s | %s | %s%s%s | %s | %s | %s | %s %s |" % (
            r["clock"], r["kind"], r["detail"][:100].replace("|", "/"), s(r["window_s"]),
            " (open: no write succeeded until the end)" if r["open"] and r["window_s"] > 0 else "",
            " **over %s**" % s(r["bound_s"]) if r["over"] else "", s(r["gap_s"]),
            s(r["window_from_injection_s"]), s(r["heal_from_injection_s"]),
            r["worst_client"] or "-", s(r["worst_client_gap_s"])))
    lines += ["", "</details>"]
    return lines


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "ephemeral-client":
        return ephemeral_client(*sys.argv[2:5])
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--nemeses", default="kill,pause,partition,disk,truncate")
    ap.add_argument("--disk-member", type=int, default=None)
    ap.add_argument("--min-fault-kinds", type=int, default=5)
    ap.add_argument("--expect-anomaly", action="store_true")
    ap.add_argument("--planted-bug", default="")
    ap.add_argument("--readers", type=int, default=0,
                    help="extra clients that only read the registers, one per member in turn")
    ap.add_argument("--tag", default="", help="comment tagging this run's iptables rules")
    ap.add_argument("--window-bounds", default=os.environ.get("ZN_FAULTS_WINDOW_BOUNDS", ""),
                    help="write-unavailability bounds over WINDOW_BOUNDS: kind=seconds or kind=off, "
                         "comma-separated; *=S for every kind (default $ZN_FAULTS_WINDOW_BOUNDS)")
    a = ap.parse_args()
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
