#!/usr/bin/python3
"""Compatibility tests through kazoo (Debian's python3-kazoo), the client Python applications use.

The module starts one standalone server of the target under test (ZN_TARGET=znoded|zookeeper,
through tests/lib/zn-server.sh) and runs the operations applications rely on against it: CRUD,
error codes, sequential and ephemeral nodes, stat fields, raw watches and kazoo's DataWatch /
ChildrenWatch recipes, transactions, and the life of a session's ephemerals across a server
kill -9 and restart, a resumed session, an expired session and a closed one.

Run: /usr/bin/python3 tests/compat/test_kazoo.py [--tap] [unittest args]
With --tap it prints TAP (one line per test) for tests/run-all.sh.
"""
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NoChildrenForEphemeralsError,
                              NodeExistsError, NoNodeError, NotEmptyError, SessionExpiredError)
from kazoo.protocol.states import EventType

HERE = os.path.dirname(os.path.abspath(__file__))
ZN_SERVER = os.path.join(HERE, "..", "lib", "zn-server.sh")
ZK_TOOL = os.path.join(HERE, "..", "lib", "zk_tool.py")
WAIT_S = 30.0  # deadline for any awaited state; a timeout fails with what was observed
FAST_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5}

SERVER = {}


def server_cmd(*args):
    return subprocess.run([ZN_SERVER, args[0], SERVER["state"]] + list(args[1:]),
                          capture_output=True, text=True, check=False)


def setUpModule():
    SERVER["state"] = tempfile.mkdtemp(prefix="zn-kazoo.")
    started = server_cmd("start")
    if started.returncode != 0:
        raise RuntimeError("server did not start: %s" % started.stderr[-2000:])
    SERVER["hosts"] = started.stdout.strip().splitlines()[-1]


def tearDownModule():
    if "state" in SERVER:
        server_cmd("stop")
        shutil.rmtree(SERVER["state"], ignore_errors=True)


def wait_for(predicate, what, timeout_s=WAIT_S):
    """Poll predicate until true; fail with the last observed value on timeout."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last is True:
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s (last observed: %r)"
                         % (timeout_s, what, last))


class KazooCase(unittest.TestCase):
    """Each test gets a connected client and its own base path."""

    def setUp(self):
        self.clients = []
        self.zk = self.new_client()
        self.base = "/kazoo-%d-%s" % (os.getpid(), self._testMethodName)
        self.zk.ensure_path(self.base)

    def tearDown(self):
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass

    def new_client(self, timeout_s=10.0, **kwargs):
        zk = KazooClient(hosts=SERVER["hosts"], timeout=timeout_s, connection_retry=FAST_RETRY,
                         **kwargs)
        zk.start(timeout=WAIT_S)
        self.clients.append(zk)
        return zk

    def p(self, name):
        return "%s/%s" % (self.base, name)


class Crud(KazooCase):
    def test_create_get_set_delete_round_trip(self):
        path = self.zk.create(self.p("node"), b"one")
        self.assertEqual(path, self.p("node"))
        data, stat = self.zk.get(path)
        self.assertEqual(data, b"one")
        self.assertEqual(stat.version, 0)
        stat = self.zk.set(path, b"two")
        self.assertEqual(stat.version, 1)
        self.assertEqual(self.zk.get(path)[0], b"two")
        self.zk.delete(path)
        self.assertIsNone(self.zk.exists(path))

    def test_exists_returns_none_for_a_missing_node(self):
        self.assertIsNone(self.zk.exists(self.p("missing")))

    def test_children_are_listed_and_counted(self):
        for name in ("a", "b", "c"):
            self.zk.create(self.p(name), b"")
        self.assertEqual(sorted(self.zk.get_children(self.base)), ["a", "b", "c"])
        children, stat = self.zk.get_children(self.base, include_data=True)
        self.assertEqual(stat.numChildren, 3)
        self.assertEqual(stat.cversion, 3)

    def test_makepath_creates_missing_parents(self):
        self.zk.create(self.p("x/y/z"), b"deep", makepath=True)
        self.assertEqual(self.zk.get(self.p("x/y/z"))[0], b"deep")

    def test_stat_fields_follow_writes(self):
        before = time.time()
        self.zk.create(self.p("s"), b"abc")
        _, stat = self.zk.get(self.p("s"))
        self.assertEqual((stat.version, stat.cversion, stat.aversion), (0, 0, 0))
        self.assertEqual(stat.czxid, stat.mzxid)
        self.assertEqual(stat.dataLength, 3)
        self.assertEqual(stat.ephemeralOwner, 0)
        self.assertLess(abs(stat.ctime / 1000.0 - before), 300)
        self.zk.set(self.p("s"), b"abcdef")
        _, after = self.zk.get(self.p("s"))
        self.assertGreater(after.mzxid, stat.mzxid)
        self.assertEqual(after.czxid, stat.czxid)
        self.assertEqual(after.dataLength, 6)
        self.assertGreaterEqual(after.mtime, stat.mtime)

    def test_large_value_round_trips(self):
        value = bytes((i * 13) % 256 for i in range(900 * 1024))
        self.zk.create(self.p("big"), value)
        self.assertEqual(self.zk.get(self.p("big"))[0], value)

    def test_default_acl_is_world_anyone_all(self):
        acls, _ = self.zk.get_acls(self.zk.create(self.p("acl"), b""))
        self.assertEqual(len(acls), 1)
        self.assertEqual((acls[0].id.scheme, acls[0].id.id, acls[0].perms), ("world", "anyone", 31))

    def test_sync_returns_the_path(self):
        self.zk.create(self.p("synced"), b"")
        self.assertEqual(self.zk.sync(self.p("synced")), self.p("synced"))

    def test_another_client_sees_a_write_after_sync(self):
        other = self.new_client()
        self.zk.create(self.p("seen"), b"v")
        other.sync(self.p("seen"))
        self.assertEqual(other.get(self.p("seen"))[0], b"v")


class Errors(KazooCase):
    def test_create_twice_raises_node_exists(self):
        self.zk.create(self.p("dup"), b"")
        with self.assertRaises(NodeExistsError):
            self.zk.create(self.p("dup"), b"")

    def test_create_under_a_missing_parent_raises_no_node(self):
        with self.assertRaises(NoNodeError):
            self.zk.create(self.p("nope/child"), b"")

    def test_get_set_delete_of_a_missing_node_raise_no_node(self):
        with self.assertRaises(NoNodeError):
            self.zk.get(self.p("missing"))
        with self.assertRaises(NoNodeError):
            self.zk.set(self.p("missing"), b"")
        with self.assertRaises(NoNodeError):
            self.zk.delete(self.p("missing"))

    def test_stale_version_raises_bad_version(self):
        self.zk.create(self.p("v"), b"")
        self.zk.set(self.p("v"), b"1", version=0)
        with self.assertRaises(BadVersionError):
            self.zk.set(self.p("v"), b"2", version=0)
        with self.assertRaises(BadVersionError):
            self.zk.delete(self.p("v"), version=0)
        self.zk.delete(self.p("v"), version=1)

    def test_deleting_a_parent_with_children_raises_not_empty(self):
        self.zk.create(self.p("parent/kid"), b"", makepath=True)
        with self.assertRaises(NotEmptyError):
            self.zk.delete(self.p("parent"))
        self.zk.delete(self.p("parent"), recursive=True)
        self.assertIsNone(self.zk.exists(self.p("parent")))

    def test_children_of_an_ephemeral_raise_no_children_for_ephemerals(self):
        self.zk.create(self.p("eph"), b"", ephemeral=True)
        with self.assertRaises(NoChildrenForEphemeralsError):
            self.zk.create(self.p("eph/kid"), b"")


class SequentialAndEphemeral(KazooCase):
    def test_sequential_nodes_get_increasing_ten_digit_suffixes(self):
        first = self.zk.create(self.p("job-"), b"", sequence=True)
        second = self.zk.create(self.p("job-"), b"", sequence=True)
        self.assertEqual(first, self.p("job-0000000000"))
        self.assertEqual(second, self.p("job-0000000001"))

    def test_sequence_counts_every_child_created_under_the_parent(self):
        self.zk.create(self.p("plain"), b"")
        self.assertEqual(self.zk.create(self.p("q-"), b"", sequence=True), self.p("q-0000000001"))

    def test_ephemeral_sequential_node_is_owned_by_the_session(self):
        path = self.zk.create(self.p("lock-"), b"", ephemeral=True, sequence=True)
        self.assertEqual(path, self.p("lock-0000000000"))
        self.assertEqual(self.zk.exists(path).ephemeralOwner, self.zk.client_id[0])

    def test_ephemeral_vanishes_when_its_session_closes(self):
        owner = self.new_client()
        owner.create(self.p("eph"), b"", ephemeral=True)
        self.assertEqual(self.zk.exists(self.p("eph")).ephemeralOwner, owner.client_id[0])
        owner.stop()
        owner.close()
        self.assertIsNone(self.zk.exists(self.p("eph")))

    def test_resumed_session_keeps_its_ephemerals(self):
        owner = self.new_client(timeout_s=15.0)
        owner.create(self.p("eph"), b"", ephemeral=True)
        session_id, password = owner.client_id
        # A second connection presenting the session's id and password takes the session over,
        # as a client does when it reconnects after losing its socket.
        resumed = self.new_client(timeout_s=15.0, client_id=(session_id, password))
        self.assertEqual(resumed.client_id[0], session_id)
        self.assertEqual(self.zk.exists(self.p("eph")).ephemeralOwner, session_id)
        resumed.delete(self.p("eph"))  # the resumed connection acts for the session
        resumed.create(self.p("eph2"), b"", ephemeral=True)
        resumed.stop()
        resumed.close()
        self.assertIsNone(self.zk.exists(self.p("eph2")))

    def test_resuming_with_a_wrong_password_does_not_get_the_session(self):
        owner = self.new_client(timeout_s=15.0)
        owner.create(self.p("eph"), b"", ephemeral=True)
        session_id = owner.client_id[0]
        # The server refuses the session (timeout 0); kazoo then opens a fresh one of its own.
        intruder = self.new_client(timeout_s=15.0, client_id=(session_id, b"\x01" * 16))
        self.assertNotEqual(intruder.client_id[0], session_id)
        self.assertEqual(self.zk.exists(self.p("eph")).ephemeralOwner, session_id)
        self.assertEqual(owner.get(self.p("eph"))[0], b"")

    def test_ephemeral_vanishes_after_a_frozen_owner_session_expires(self):
        status = os.path.join(SERVER["state"], "owner-%s.status" % self._testMethodName)
        owner = subprocess.Popen([sys.executable, ZK_TOOL, "owner", SERVER["hosts"], self.p("eph"),
                                  "4", status], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(status) and "ready" in open(status).read().split(),
                     "the owner process to create its node")
            self.assertIsNotNone(self.zk.exists(self.p("eph")))
            owner.send_signal(signal.SIGSTOP)
            wait_for(lambda: self.zk.exists(self.p("eph")) is None or "still there",
                     "the frozen owner's ephemeral to vanish")
        finally:
            owner.send_signal(signal.SIGCONT)
            owner.terminate()
            owner.wait(timeout=WAIT_S)

    def test_ephemeral_survives_kill_9_and_restart_of_the_server(self):
        states = []
        # Connected to the member that is killed (the first host: zn-server.sh kills member 1),
        # so that against an ensemble too the owner must reconnect elsewhere.
        owner = self.new_client(timeout_s=15.0, randomize_hosts=False)
        owner.add_listener(states.append)
        owner.create(self.p("eph"), b"", ephemeral=True)
        session_id = owner.client_id[0]
        killed = server_cmd("kill9")
        self.assertEqual(killed.returncode, 0, killed.stderr)
        restarted = server_cmd("restart")
        self.assertEqual(restarted.returncode, 0, restarted.stderr)
        wait_for(lambda: (KazooState.SUSPENDED in states and owner.state == KazooState.CONNECTED)
                 or states, "the owner to reconnect")
        self.assertNotIn(KazooState.LOST, states)
        self.assertEqual(owner.client_id[0], session_id)
        checker = self.new_client()
        self.assertEqual(checker.exists(self.p("eph")).ephemeralOwner, session_id)
        self.assertEqual(owner.get(self.p("eph"))[0], b"")


class Watches(KazooCase):
    def test_data_watch_fires_changed_then_deleted(self):
        events = queue.Queue()
        self.zk.create(self.p("w"), b"0")
        self.zk.get(self.p("w"), watch=events.put)
        self.zk.set(self.p("w"), b"1")
        event = events.get(timeout=WAIT_S)
        self.assertEqual((event.type, event.path), (EventType.CHANGED, self.p("w")))
        self.zk.get(self.p("w"), watch=events.put)
        self.zk.delete(self.p("w"))
        self.assertEqual(events.get(timeout=WAIT_S).type, EventType.DELETED)

    def test_exists_watch_fires_created(self):
        events = queue.Queue()
        self.assertIsNone(self.zk.exists(self.p("later"), watch=events.put))
        self.zk.create(self.p("later"), b"")
        event = events.get(timeout=WAIT_S)
        self.assertEqual((event.type, event.path), (EventType.CREATED, self.p("later")))

    def test_child_watch_fires_child(self):
        events = queue.Queue()
        self.zk.get_children(self.base, watch=events.put)
        self.zk.create(self.p("kid"), b"")
        event = events.get(timeout=WAIT_S)
        self.assertEqual((event.type, event.path), (EventType.CHILD, self.base))

    def test_watch_fires_for_a_change_made_by_another_client(self):
        events = queue.Queue()
        other = self.new_client()
        self.zk.create(self.p("shared"), b"0")
        self.zk.get(self.p("shared"), watch=events.put)
        other.set(self.p("shared"), b"1")
        self.assertEqual(events.get(timeout=WAIT_S).type, EventType.CHANGED)
        # The watcher sees the new data once notified.
        self.assertEqual(self.zk.get(self.p("shared"))[0], b"1")

    def test_data_watch_recipe_follows_every_value(self):
        seen = queue.Queue()
        self.zk.create(self.p("dw"), b"a")
        self.zk.DataWatch(self.p("dw"), lambda data, stat: seen.put(data))
        self.assertEqual(seen.get(timeout=WAIT_S), b"a")
        self.zk.set(self.p("dw"), b"b")
        self.assertEqual(seen.get(timeout=WAIT_S), b"b")
        self.zk.delete(self.p("dw"))
        self.assertIsNone(seen.get(timeout=WAIT_S))

    def test_children_watch_recipe_follows_membership(self):
        seen = queue.Queue()
        self.zk.ChildrenWatch(self.base, lambda children: seen.put(sorted(children)))
        self.assertEqual(seen.get(timeout=WAIT_S), [])
        self.zk.create(self.p("m1"), b"")
        self.assertEqual(seen.get(timeout=WAIT_S), ["m1"])
        self.zk.create(self.p("m2"), b"", ephemeral=True)
        self.assertEqual(seen.get(timeout=WAIT_S), ["m1", "m2"])
        self.zk.delete(self.p("m1"))
        self.assertEqual(seen.get(timeout=WAIT_S), ["m2"])


class Transactions(KazooCase):
    def test_transaction_applies_all_operations(self):
        self.zk.create(self.p("t"), b"0")
        tx = self.zk.transaction()
        tx.check(self.p("t"), 0)
        tx.create(self.p("t1"), b"x")
        tx.set_data(self.p("t"), b"1")
        results = tx.commit()
        self.assertEqual(results[1], self.p("t1"))
        self.assertEqual(self.zk.get(self.p("t"))[0], b"1")

    def test_failed_transaction_applies_nothing(self):
        self.zk.create(self.p("t"), b"0")
        tx = self.zk.transaction()
        tx.create(self.p("t1"), b"x")
        tx.check(self.p("t"), 5)
        results = tx.commit()
        self.assertTrue(any(isinstance(r, BadVersionError) for r in results), results)
        self.assertIsNone(self.zk.exists(self.p("t1")))


class TapResult(unittest.TestResult):
    """Prints one TAP line per test as it finishes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = 0

    def _line(self, text, detail=None):
        self.number += 1
        print("%s %d %s" % (text, self.number, self.current))
        if detail:
            for line in detail.rstrip().splitlines():
                print("# " + line)
        sys.stdout.flush()

    def startTest(self, test):
        super().startTest(test)
        self.current = "%s.%s" % (type(test).__name__, test._testMethodName)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line("ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line("not ok", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._line("not ok", self._exc_info_to_string(err, test))
        else:  # setUpModule and friends: reported against no test; the plan shows the gap
            print("# error in %s:\n# %s" % (test, self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.number += 1
        print("ok %d %s # skip %s" % (self.number, self.current, reason))


def main():
    logging.basicConfig(level=logging.CRITICAL)
    if "--tap" in sys.argv:
        suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
        print("1..%d" % suite.countTestCases())
        result = TapResult()
        suite.run(result)
        return 0 if result.wasSuccessful() else 1
    unittest.main(verbosity=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
