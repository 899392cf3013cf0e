#!/usr/bin/python3
"""Compatibility tests through kazoo for the rest of ZooKeeper: ACLs (digest, auth, ip, world, the
super digest), getACL/setACL with aversion, transactions with per-op results, kazoo's recipes, container
and TTL nodes and their cleanup, persistent and recursive watches (addWatch), removeWatches /
checkWatches, and the /zookeeper subtree.

Every test must pass against ZN_TARGET=zookeeper (Apache ZooKeeper 3.8) and ZN_TARGET=znoded alike.
The module starts one standalone server of the target (tests/lib/zn-server.sh) with a super digest,
extendedTypesEnabled=true and a short container check interval.

Requests kazoo 2.8 has no call for (createContainer, createTTL, addWatch, removeWatches,
checkWatches) are sent through kazoo's own connection as raw records built here.

Run: /usr/bin/python3 tests/compat/test_kazoo_features.py [--tap] [unittest args]
"""
import logging
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import namedtuple

from kazoo.client import KazooClient
import kazoo.exceptions
from kazoo.exceptions import (BadVersionError, InvalidACLError, NoAuthError, NotEmptyError,
                              RolledBackError, RuntimeInconsistency)
from kazoo.protocol.serialization import (Watch, int_struct, long_struct, read_string, stat_struct,
                                          write_buffer, write_string)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id, make_acl, make_digest_acl, make_digest_acl_credential

HERE = os.path.dirname(os.path.abspath(__file__))
ZN_SERVER = os.path.join(HERE, "..", "lib", "zn-server.sh")
WAIT_S = 30.0
FAST_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5}
CHECK_INTERVAL_MS = 300
SUPER_PASSWORD = "super-secret"
SERVER = {}

EVENT_CREATED, EVENT_DELETED, EVENT_CHANGED, EVENT_CHILD = 1, 2, 3, 4


def server_cmd(*args):
    return subprocess.run([ZN_SERVER, args[0], SERVER["state"]] + list(args[1:]),
                          capture_output=True, text=True, check=False)


def setUpModule():
    SERVER["state"] = tempfile.mkdtemp(prefix="zn-kazoo-features.")
    super_digest = make_digest_acl_credential("super", SUPER_PASSWORD)
    started = server_cmd("start",
                         "DigestAuthenticationProvider.superDigest=%s" % super_digest,
                         "extendedTypesEnabled=true",
                         "znode.container.checkIntervalMs=%d" % CHECK_INTERVAL_MS)
    if started.returncode != 0:
        raise RuntimeError("server did not start: %s" % started.stderr[-2000:])
    SERVER["hosts"] = started.stdout.strip().splitlines()[-1]


def tearDownModule():
    if "state" in SERVER:
        server_cmd("stop")
        shutil.rmtree(SERVER["state"], ignore_errors=True)


def wait_for(predicate, what, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last is True:
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s (last observed: %r)"
                         % (timeout_s, what, last))


# ---- raw records for requests kazoo 2.8 cannot send ----

def _acl_bytes(acl):
    b = bytearray(int_struct.pack(len(acl)))
    for a in acl:
        b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id))
    return b


def _read_create2(buf, offset):
    path, offset = read_string(buf, offset)
    return path, ZnodeStat._make(stat_struct.unpack_from(buf, offset))


class CreateContainer(namedtuple("CreateContainer", "path data acl")):
    type = 19

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl)
                + int_struct.pack(4))  # CreateMode.CONTAINER

    @classmethod
    def deserialize(cls, buf, offset):
        return _read_create2(buf, offset)


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl)
                + int_struct.pack(self.flags) + long_struct.pack(self.ttl))

    @classmethod
    def deserialize(cls, buf, offset):
        return _read_create2(buf, offset)


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, buf, offset):
        return int_struct.unpack_from(buf, offset)[0]  # ErrorResponse(0)


class RemoveWatches(namedtuple("RemoveWatches", "path watcher_type")):
    type = 18

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, buf, offset):
        return True  # no body


class CheckWatches(RemoveWatches):
    type = 17


class NoWatcherError(kazoo.exceptions.ZookeeperError):
    """ZooKeeper's NOWATCHER (-121), which kazoo 2.8 does not know: registered so its reader
    raises this instead of failing the connection."""
    code = -121


kazoo.exceptions.EXCEPTIONS[NoWatcherError.code] = NoWatcherError

OPEN_ACL = [make_acl("world", "anyone", all=True)]
PERSISTENT, PERSISTENT_RECURSIVE = 0, 1
WATCHER_CHILDREN, WATCHER_DATA, WATCHER_ANY = 1, 2, 3


class FeatureCase(unittest.TestCase):
    def setUp(self):
        self.clients = []
        self.zk = self.new_client()
        self.base = "/kf-%d-%s" % (os.getpid(), self._testMethodName)
        self.zk.ensure_path(self.base)

    def tearDown(self):
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass

    def new_client(self, auth=None):
        zk = KazooClient(hosts=SERVER["hosts"], timeout=10.0, connection_retry=FAST_RETRY,
                         auth_data=auth)
        zk.start(timeout=WAIT_S)
        self.clients.append(zk)
        return zk

    def p(self, name):
        return "%s/%s" % (self.base, name)

    def call(self, zk, request):
        result = zk.handler.async_result()
        zk._call(request, result)
        return result.get(timeout=WAIT_S)

    def spy_events(self, zk):
        """Every watch event the connection receives, as (type, path), in order."""
        events = queue.Queue()
        conn = zk._connection
        original = conn._read_watch_event

        def spy(buf, offset):
            watch, _ = Watch.deserialize(buf, offset)
            events.put((watch.type, watch.path))
            return original(buf, offset)
        conn._read_watch_event = spy
        return events

    def assert_no_event(self, events, within_s=0.5):
        try:
            got = events.get(timeout=within_s)
        except queue.Empty:
            return
        self.fail("unexpected watch event %r" % (got,))


class Acls(FeatureCase):
    def test_digest_acl_lets_its_user_in_and_keeps_others_out(self):
        owner = self.new_client(auth=[("digest", "alice:pw")])
        owner.create(self.p("secret"), b"s", acl=[make_digest_acl("alice", "pw", all=True)])
        self.assertEqual(owner.get(self.p("secret"))[0], b"s")
        with self.assertRaises(NoAuthError):
            self.zk.get(self.p("secret"))
        with self.assertRaises(NoAuthError):
            self.zk.set(self.p("secret"), b"x")
        with self.assertRaises(NoAuthError):
            self.zk.get_children(self.p("secret"))
        with self.assertRaises(NoAuthError):
            self.zk.create(self.p("secret/child"), b"")
        # exists needs no permission in ZooKeeper 3.8
        self.assertIsNotNone(self.zk.exists(self.p("secret")))

    def test_add_auth_later_grants_access(self):
        self.zk.create(self.p("late"), b"v", acl=[make_digest_acl("bob", "pw", read=True)])
        other = self.new_client()
        with self.assertRaises(NoAuthError):
            other.get(self.p("late"))
        other.add_auth("digest", "bob:pw")
        self.assertEqual(other.get(self.p("late"))[0], b"v")

    def test_wrong_password_is_not_the_user(self):
        self.zk.create(self.p("n"), b"v", acl=[make_digest_acl("carol", "right", all=True)])
        other = self.new_client(auth=[("digest", "carol:wrong")])
        with self.assertRaises(NoAuthError):
            other.get(self.p("n"))

    def test_auth_scheme_expands_to_the_sessions_digest_ids(self):
        owner = self.new_client(auth=[("digest", "dave:pw")])
        owner.create(self.p("mine"), b"", acl=[ACL(31, Id("auth", ""))])
        acl, _ = owner.get_acls(self.p("mine"))
        self.assertEqual([(a.perms, a.id.scheme, a.id.id) for a in acl],
                         [(31, "digest", make_digest_acl_credential("dave", "pw"))])

    def test_auth_scheme_without_identity_is_invalid_acl(self):
        with self.assertRaises(InvalidACLError):
            self.zk.create(self.p("x"), b"", acl=[ACL(31, Id("auth", ""))])

    def test_unknown_scheme_and_malformed_ids_are_invalid_acl(self):
        for acl in ([ACL(31, Id("nosuch", "x"))], [ACL(31, Id("ip", "300.1.1.1"))],
                    [ACL(31, Id("digest", "nocolon"))]):
            with self.assertRaises(InvalidACLError, msg=repr(acl)):
                self.zk.create(self.p("bad"), b"", acl=acl)

    def test_create_and_delete_need_permission_on_the_parent(self):
        self.zk.create(self.p("ro"), b"", acl=[make_acl("world", "anyone", read=True, admin=True)])
        with self.assertRaises(NoAuthError):
            self.zk.create(self.p("ro/child"), b"")
        self.zk.set_acls(self.p("ro"), [make_acl("world", "anyone", read=True, create=True,
                                                 admin=True)])
        self.zk.create(self.p("ro/child"), b"")
        with self.assertRaises(NoAuthError):
            self.zk.delete(self.p("ro/child"))
        self.zk.set_acls(self.p("ro"), OPEN_ACL)
        self.zk.delete(self.p("ro/child"))

    def test_set_acl_needs_admin_and_checks_the_aversion(self):
        self.zk.create(self.p("a"), b"")
        stat = self.zk.set_acls(self.p("a"), OPEN_ACL, version=0)
        self.assertEqual(stat.aversion, 1)
        with self.assertRaises(BadVersionError):
            self.zk.set_acls(self.p("a"), OPEN_ACL, version=0)
        self.zk.set_acls(self.p("a"), [make_acl("world", "anyone", read=True, write=True)])
        with self.assertRaises(NoAuthError):
            self.zk.set_acls(self.p("a"), OPEN_ACL)

    def test_get_acl_hides_digests_from_a_client_without_admin(self):
        full = make_digest_acl("erin", "pw", all=True)
        self.zk.create(self.p("h"), b"", acl=[make_acl("world", "anyone", read=True), full])
        acl, _ = self.zk.get_acls(self.p("h"))
        self.assertIn("erin:x", [a.id.id for a in acl])
        admin = self.new_client(auth=[("digest", "erin:pw")])
        acl, _ = admin.get_acls(self.p("h"))
        self.assertIn(full.id.id, [a.id.id for a in acl])

    def test_get_acl_needs_read_or_admin(self):
        self.zk.create(self.p("w"), b"", acl=[make_acl("world", "anyone", write=True)])
        with self.assertRaises(NoAuthError):
            self.zk.get_acls(self.p("w"))

    def test_ip_acl_matches_the_client_address_and_mask(self):
        self.zk.create(self.p("ip"), b"v", acl=[make_acl("ip", "127.0.0.0/8", all=True)])
        self.assertEqual(self.zk.get(self.p("ip"))[0], b"v")
        self.zk.create(self.p("far"), b"v", acl=[make_acl("ip", "10.1.2.3", all=True)])
        with self.assertRaises(NoAuthError):
            self.zk.get(self.p("far"))

    def test_super_digest_user_may_do_anything(self):
        self.zk.create(self.p("locked"), b"v", acl=[make_digest_acl("nobody", "pw", read=True)])
        root = self.new_client(auth=[("digest", "super:" + SUPER_PASSWORD)])
        self.assertEqual(root.get(self.p("locked"))[0], b"v")
        root.set(self.p("locked"), b"w")
        root.delete(self.p("locked"))

    def test_zookeeper_config_is_readable(self):
        data, stat = self.zk.get("/zookeeper/config")
        self.assertIsNotNone(stat)
        self.assertIn("quota", self.zk.get_children("/zookeeper"))


class Transactions(FeatureCase):
    def test_failed_transaction_reports_each_operation(self):
        self.zk.create(self.p("t"), b"0")
        tx = self.zk.transaction()
        tx.create(self.p("t1"), b"x")
        tx.check(self.p("t"), 5)
        tx.set_data(self.p("t"), b"1")
        results = tx.commit()
        self.assertEqual([type(r) for r in results],
                         [RolledBackError, BadVersionError, RuntimeInconsistency])
        self.assertIsNone(self.zk.exists(self.p("t1")))

    def test_transaction_refused_by_an_acl_applies_nothing(self):
        self.zk.create(self.p("ro"), b"", acl=[make_acl("world", "anyone", read=True)])
        tx = self.zk.transaction()
        tx.create(self.p("ok"), b"")
        tx.create(self.p("ro/no"), b"")
        results = tx.commit()
        self.assertEqual([type(r) for r in results], [RolledBackError, NoAuthError])
        self.assertIsNone(self.zk.exists(self.p("ok")))

    def test_transaction_results_carry_paths_and_deletes(self):
        self.zk.create(self.p("d"), b"")  # the base's second child create: next sequence is 1
        tx = self.zk.transaction()
        tx.create(self.p("s-"), b"", sequence=True)
        tx.delete(self.p("d"))
        tx.check(self.p("s-0000000001"), 0)
        results = tx.commit()
        self.assertEqual(results, [self.p("s-0000000001"), True, True])


class Recipes(FeatureCase):
    def test_lock_is_exclusive(self):
        other = self.new_client()
        a = self.zk.Lock(self.p("lock"), "a")
        b = other.Lock(self.p("lock"), "b")
        self.assertTrue(a.acquire(timeout=WAIT_S))
        self.assertFalse(b.acquire(blocking=False))
        self.assertEqual(a.contenders(), ["a"])
        a.release()
        self.assertTrue(b.acquire(timeout=WAIT_S))
        b.release()

    def test_election_runs_the_winner(self):
        won = threading.Event()
        election = self.zk.Election(self.p("election"), "me")
        t = threading.Thread(target=election.run, args=(won.set,))
        t.start()
        t.join(WAIT_S)
        self.assertTrue(won.is_set())

    def test_barrier_blocks_until_removed(self):
        barrier = self.zk.Barrier(self.p("barrier"))
        barrier.create()
        self.assertFalse(barrier.wait(timeout=0.3))
        self.new_client().Barrier(self.p("barrier")).remove()
        self.assertTrue(barrier.wait(timeout=WAIT_S))

    def test_counter_counts_across_clients(self):
        a = self.zk.Counter(self.p("counter"))
        b = self.new_client().Counter(self.p("counter"))
        a += 2
        b += 3
        a -= 1
        self.assertEqual(self.zk.Counter(self.p("counter")).value, 4)

    def test_queue_is_fifo(self):
        q = self.zk.Queue(self.p("queue"))
        for item in (b"1", b"2", b"3"):
            q.put(item)
        self.assertEqual([q.get(), q.get(), q.get(), q.get()], [b"1", b"2", b"3", None])

    def test_party_lists_its_members(self):
        a = self.zk.Party(self.p("party"), "a")
        b = self.new_client().Party(self.p("party"), "b")
        a.join()
        b.join()
        self.assertEqual(sorted(a), ["a", "b"])
        b.leave()
        self.assertEqual(list(a), ["a"])

    def test_lease_goes_to_one_holder(self):
        from datetime import timedelta
        first = self.zk.NonBlockingLease(self.p("lease"), timedelta(seconds=30), identifier="a")
        second = self.new_client().NonBlockingLease(self.p("lease"), timedelta(seconds=30),
                                                    identifier="b")
        self.assertTrue(first)
        self.assertFalse(second)

    def test_data_and_children_watch_follow_changes(self):
        data_seen, children_seen = queue.Queue(), queue.Queue()
        self.zk.create(self.p("w"), b"0")
        self.zk.DataWatch(self.p("w"), lambda data, stat: data_seen.put(data))
        self.zk.ChildrenWatch(self.p("w"), lambda children: children_seen.put(sorted(children)))
        self.assertEqual(data_seen.get(timeout=WAIT_S), b"0")
        self.assertEqual(children_seen.get(timeout=WAIT_S), [])
        self.zk.set(self.p("w"), b"1")
        self.zk.create(self.p("w/c"), b"")
        self.assertEqual(data_seen.get(timeout=WAIT_S), b"1")
        self.assertEqual(children_seen.get(timeout=WAIT_S), ["c"])


class ContainersAndTtl(FeatureCase):
    """The cleaner runs every CHECK_INTERVAL_MS; 'kept' is checked over several intervals."""

    def keep_for(self, path, intervals=5):
        time.sleep(intervals * CHECK_INTERVAL_MS / 1000.0)
        self.assertIsNotNone(self.zk.exists(path), "%s was deleted" % path)

    def test_container_goes_once_its_last_child_is_deleted(self):
        path, stat = self.call(self.zk, CreateContainer(self.p("box"), b"", OPEN_ACL))
        self.assertEqual(path, self.p("box"))
        self.assertEqual(stat.ephemeralOwner, 0)
        self.zk.create(self.p("box/a"), b"")
        self.zk.create(self.p("box/b"), b"")
        self.zk.delete(self.p("box/a"))
        self.keep_for(self.p("box"))
        self.zk.delete(self.p("box/b"))
        wait_for(lambda: self.zk.exists(self.p("box")) is None, "the empty container to go")

    def test_container_that_never_had_a_child_is_kept(self):
        self.call(self.zk, CreateContainer(self.p("new"), b"", OPEN_ACL))
        self.keep_for(self.p("new"))

    def test_ttl_node_expires_when_unchanged_and_childless(self):
        path, stat = self.call(self.zk, CreateTTL(self.p("ttl"), b"", OPEN_ACL, 5, 500))
        self.assertEqual(stat.ephemeralOwner, 0)
        wait_for(lambda: self.zk.exists(self.p("ttl")) is None, "the TTL node to expire")

    def test_ttl_node_with_a_child_is_kept(self):
        self.call(self.zk, CreateTTL(self.p("ttlp"), b"", OPEN_ACL, 5, 200))
        self.zk.create(self.p("ttlp/c"), b"")
        self.keep_for(self.p("ttlp"))
        self.zk.delete(self.p("ttlp/c"))
        wait_for(lambda: self.zk.exists(self.p("ttlp")) is None, "the childless TTL node to go")

    def test_sequential_ttl_node_gets_a_sequence_suffix(self):
        path, _ = self.call(self.zk, CreateTTL(self.p("seq-"), b"", OPEN_ACL, 6, 60000))
        self.assertEqual(path, self.p("seq-0000000000"))

    def test_ttl_out_of_range_is_bad_arguments(self):
        from kazoo.exceptions import BadArgumentsError
        with self.assertRaises(BadArgumentsError):
            self.call(self.zk, CreateTTL(self.p("z"), b"", OPEN_ACL, 5, 0))

    def test_container_with_children_cannot_be_deleted_by_a_client(self):
        self.call(self.zk, CreateContainer(self.p("c"), b"", OPEN_ACL))
        self.zk.create(self.p("c/x"), b"")
        with self.assertRaises(NotEmptyError):
            self.zk.delete(self.p("c"))


class PersistentWatches(FeatureCase):
    def test_persistent_watch_fires_on_every_change_of_its_node(self):
        events = self.spy_events(self.zk)
        self.assertEqual(self.call(self.zk, AddWatch(self.p("n"), PERSISTENT)), 0)
        self.zk.create(self.p("n"), b"")
        self.zk.set(self.p("n"), b"1")
        self.zk.set(self.p("n"), b"2")
        self.zk.create(self.p("n/c"), b"")
        self.zk.create(self.p("n/c/deeper"), b"")  # not a child of n: no event
        self.zk.delete(self.p("n/c/deeper"))
        self.zk.delete(self.p("n/c"))
        self.zk.delete(self.p("n"))
        got = [events.get(timeout=WAIT_S) for _ in range(6)]
        n = self.p("n")
        self.assertEqual(got, [(EVENT_CREATED, n), (EVENT_CHANGED, n), (EVENT_CHANGED, n),
                               (EVENT_CHILD, n), (EVENT_CHILD, n), (EVENT_DELETED, n)])
        self.assert_no_event(events)

    def test_recursive_watch_sees_the_whole_subtree_but_not_child_lists(self):
        events = self.spy_events(self.zk)
        self.call(self.zk, AddWatch(self.p("r"), PERSISTENT_RECURSIVE))
        self.zk.create(self.p("r"), b"")
        self.zk.create(self.p("r/a"), b"")
        self.zk.create(self.p("r/a/b"), b"")
        self.zk.set(self.p("r/a/b"), b"x")
        self.zk.delete(self.p("r/a/b"))
        self.zk.create(self.p("other"), b"")
        got = [events.get(timeout=WAIT_S) for _ in range(5)]
        self.assertEqual(got, [(EVENT_CREATED, self.p("r")), (EVENT_CREATED, self.p("r/a")),
                               (EVENT_CREATED, self.p("r/a/b")), (EVENT_CHANGED, self.p("r/a/b")),
                               (EVENT_DELETED, self.p("r/a/b"))])
        self.assert_no_event(events)

    def test_remove_watches_stops_a_persistent_watch(self):
        events = self.spy_events(self.zk)
        self.zk.create(self.p("n"), b"")
        self.call(self.zk, AddWatch(self.p("n"), PERSISTENT))
        self.assertTrue(self.call(self.zk, CheckWatches(self.p("n"), WATCHER_DATA)))
        self.call(self.zk, RemoveWatches(self.p("n"), WATCHER_ANY))
        with self.assertRaises(NoWatcherError):
            self.call(self.zk, CheckWatches(self.p("n"), WATCHER_ANY))
        self.zk.set(self.p("n"), b"1")
        self.assert_no_event(events)

    def test_remove_watches_without_a_watch_is_nowatcher(self):
        self.zk.create(self.p("n"), b"")
        with self.assertRaises(NoWatcherError):
            self.call(self.zk, RemoveWatches(self.p("n"), WATCHER_DATA))
        self.zk.exists(self.p("n"), watch=lambda e: None)
        with self.assertRaises(NoWatcherError):
            self.call(self.zk, RemoveWatches(self.p("n"), WATCHER_CHILDREN))
        self.call(self.zk, RemoveWatches(self.p("n"), WATCHER_DATA))

    def test_one_event_per_client_when_watches_overlap(self):
        events = self.spy_events(self.zk)
        self.zk.create(self.p("o"), b"")
        self.call(self.zk, AddWatch(self.p("o"), PERSISTENT))
        self.call(self.zk, AddWatch(self.base, PERSISTENT_RECURSIVE))
        self.zk.get(self.p("o"), watch=lambda e: None)
        self.zk.set(self.p("o"), b"1")
        self.assertEqual(events.get(timeout=WAIT_S), (EVENT_CHANGED, self.p("o")))
        self.assert_no_event(events)


class Quotas(FeatureCase):
    """ZooKeeper's quotas through raw nodes, as zkCli's setquota writes them (kazoo has no quota
    API): the server keeps /zookeeper/quota/<path>/zookeeper_stats current."""

    def set_quota(self, zk, path, limits):
        quota_dir = "/zookeeper/quota" + path
        zk.ensure_path(quota_dir)
        zk.create(quota_dir + "/zookeeper_limits", limits.encode())
        zk.create(quota_dir + "/zookeeper_stats", b"count=0,bytes=0")
        return quota_dir + "/zookeeper_stats"

    def stats(self, zk, stats_path):
        return zk.get(stats_path)[0].decode()

    def test_stats_start_from_the_subtree_and_follow_every_write(self):
        self.zk.create(self.p("a"), b"12345")
        stats = self.set_quota(self.zk, self.base, "count=10,bytes=-1")
        # The server replaces the client's count=0,bytes=0 with what the subtree holds.
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=5")
        self.zk.create(self.p("a/b"), b"xy")
        self.zk.set(self.p("a"), b"1")
        self.assertEqual(self.stats(self.zk, stats), "count=3,bytes=3")
        self.zk.delete(self.p("a/b"))
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=1")
        # The stats node changes without a new version.
        self.assertEqual(self.zk.get(stats)[1].version, 0)

    def test_a_transaction_counts_each_of_its_ops(self):
        stats = self.set_quota(self.zk, self.base, "count=10,bytes=-1")
        tx = self.zk.transaction()
        tx.create(self.p("t1"), b"abc")
        tx.create(self.p("t2"), b"de")
        tx.delete(self.p("t1"))
        self.assertEqual(tx.commit(), [self.p("t1"), self.p("t2"), True])
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=2")

    def test_a_failed_transaction_leaves_the_stats_alone(self):
        stats = self.set_quota(self.zk, self.base, "count=10,bytes=-1")
        tx = self.zk.transaction()
        tx.create(self.p("f1"), b"abc")
        tx.check(self.base, 42)
        results = tx.commit()
        self.assertIsInstance(results[1], kazoo.exceptions.BadVersionError)
        self.assertEqual(self.stats(self.zk, stats), "count=1,bytes=0")

    def test_writing_the_stats_fires_no_watch_and_removing_the_limits_stops_counting(self):
        stats = self.set_quota(self.zk, self.base, "count=10,bytes=-1")
        fired = []
        self.zk.get(stats, watch=fired.append)
        self.zk.create(self.p("w"), b"x")
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=1")
        self.zk.delete("/zookeeper/quota" + self.base + "/zookeeper_limits")
        self.zk.create(self.p("after"), b"yyy")
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=1")
        self.zk.set(stats, b"count=0,bytes=0")  # a client write does fire it
        wait_for(lambda: len(fired) == 1, "the data watch on the stats node")
        self.assertEqual(fired[0].type, "CHANGED")

    def test_every_member_keeps_the_same_stats(self):
        stats = self.set_quota(self.zk, self.base, "count=10,bytes=-1")
        self.zk.create(self.p("m"), b"abcd")
        for host in SERVER["hosts"].split(","):
            zk = KazooClient(hosts=host, timeout=10.0, connection_retry=FAST_RETRY)
            zk.start(timeout=WAIT_S)
            self.clients.append(zk)
            zk.sync(stats)
            self.assertEqual(self.stats(zk, stats), "count=2,bytes=4", host)


class QuotaExceededError(kazoo.exceptions.ZookeeperError):
    """ZooKeeper's QUOTAEXCEEDED (-125, 3.7+), which kazoo 2.8 does not know: registered (by
    EnforcedQuotas) so its reader raises this instead of failing the connection."""
    code = -125


class EnforcedQuotas(Quotas):
    """The same with enforceQuota=true on a server of its own: hard limits refuse the write
    with QUOTAEXCEEDED, soft ones only warn."""

    @classmethod
    def setUpClass(cls):
        kazoo.exceptions.EXCEPTIONS[QuotaExceededError.code] = QuotaExceededError
        cls.state = tempfile.mkdtemp(prefix="zn-kazoo-quota.")
        started = subprocess.run([ZN_SERVER, "start", cls.state, "enforceQuota=true"],
                                 capture_output=True, text=True, check=False)
        if started.returncode != 0:
            shutil.rmtree(cls.state, ignore_errors=True)
            raise RuntimeError("server did not start: %s" % started.stderr[-2000:])
        cls.hosts = started.stdout.strip().splitlines()[-1]

    @classmethod
    def tearDownClass(cls):
        subprocess.run([ZN_SERVER, "stop", cls.state], capture_output=True, check=False)
        shutil.rmtree(cls.state, ignore_errors=True)

    def new_client(self, auth=None):
        zk = KazooClient(hosts=self.hosts, timeout=10.0, connection_retry=FAST_RETRY, auth_data=auth)
        zk.start(timeout=WAIT_S)
        self.clients.append(zk)
        return zk

    def test_every_member_keeps_the_same_stats(self):
        saved = SERVER["hosts"]
        SERVER["hosts"] = self.hosts
        try:
            super().test_every_member_keeps_the_same_stats()
        finally:
            SERVER["hosts"] = saved

    def assert_quota_exceeded(self, call):
        self.assertRaises(QuotaExceededError, call)

    def test_a_create_past_a_hard_count_limit_is_refused(self):
        stats = self.set_quota(self.zk, self.base, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
        self.zk.create(self.p("one"))
        self.assert_quota_exceeded(lambda: self.zk.create(self.p("two")))
        self.assertFalse(self.zk.exists(self.p("two")))
        self.assertEqual(self.stats(self.zk, stats), "count=2,bytes=0")

    def test_a_set_past_a_hard_byte_limit_is_refused_and_a_smaller_one_passes(self):
        self.zk.set(self.base, b"ab")
        self.set_quota(self.zk, self.base, "count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=-1")
        self.assert_quota_exceeded(lambda: self.zk.set(self.base, b"abcde"))
        self.zk.set(self.base, b"abcd")
        self.assertEqual(self.zk.get(self.base)[0], b"abcd")

    def test_a_transaction_with_an_op_past_a_hard_limit_fails_whole(self):
        self.set_quota(self.zk, self.base, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1")
        tx = self.zk.transaction()
        tx.create(self.base + "-free")
        tx.create(self.p("over"))
        results = tx.commit()
        self.assertIsInstance(results[1], QuotaExceededError)
        self.assertFalse(self.zk.exists(self.base + "-free"))

    def test_a_soft_limit_lets_the_write_through(self):
        self.set_quota(self.zk, self.base, "count=1,bytes=1")
        self.zk.create(self.p("s1"), b"xyz")
        self.assertTrue(self.zk.exists(self.p("s1")))


class TapResult(unittest.TestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = 0
        self.current = "?"

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
        else:
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
