"""The fault-injection runner's workloads (runner.py says what each does): kazoo clients that
perform operations one at a time and record each with its invocation and completion times and
outcome (ok / fail / unknown). register: setData, compare-and-set and synced getData on registers
that rotate; set: sequential creates and synced getChildren; session: ephemeral owners in child
processes (runner.py ephemeral-client), ended by close or kill -9, or kept to the end.
Called by runner.py; uses members.py.
"""
import os
import random
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from members import now_ns, read_lines

PYTHON = "/usr/bin/python3"
# The ephemeral owners run as `runner.py ephemeral-client` child processes.
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")

SESSION_TIMEOUT_S = 4.0       # clients' session timeout (tickTime=500: allowed 1..10 s)
OP_TIMEOUT_S = 5.0            # an operation with no reply by then is recorded unknown
REGISTER_SLOTS = 2            # registers in use at once
REGISTER_OPS_MAX = 250
REGISTER_UNKNOWN_MAX = 6
REGISTER_CREATE_S = 10.0      # how long rotation tries to create a fresh register
# Every Nth set operation reads all children: each read holds the whole set (100k names after a
# long run), so reading often costs gigabytes of history.
SET_READ_EVERY = 100
SESSIONS_LIVE_MAX = 3


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
        p = subprocess.Popen([PYTHON, RUNNER, "ephemeral-client",
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
