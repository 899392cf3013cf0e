#!/usr/bin/python3
"""Compatibility tests of dynamic reconfiguration through kazoo's reconfig, against a 3-member
ensemble of the target (ZN_TARGET) started with reconfigEnabled=true and a super digest: the
incremental (leaving) and bulk (new_members) forms, the reply (the new config and the stat of
/zookeeper/config), the config watch, and the refusals ZooKeeper 3.8 gives (NoAuth for a client
that is not the super user, BadVersion for a stale from_config, BadArguments for malformed
server strings or a membership of one voter).

Each test starts its own ensemble (tests/lib/zn-server.sh, ZN_ENSEMBLE=3 whatever the caller
set), since reconfig changes it.  The member removed is a follower: when a reconfig removes
ZooKeeper's leader, the ensemble elects again and clients may see ConnectionLoss (the integration
tests cover removing znoded's leader). Adding a member (starting a fourth server) is covered by
tests/integration/reconfig.bats.

Run: /usr/bin/python3 tests/compat/test_kazoo_reconfig.py [--tap] [unittest args]
"""
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NewConfigNoQuorumError,
                              NoAuthError)
from kazoo.security import make_digest_acl_credential

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from exchange import exchange  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ZN_SERVER = os.path.join(HERE, "..", "lib", "zn-server.sh")
WAIT_S = 30.0
RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5}
SUPER_PASSWORD = "reconfig-secret"


def server_cmd(state, *args):
    env = dict(os.environ, ZN_ENSEMBLE="3")
    return subprocess.run([ZN_SERVER, args[0], state] + list(args[1:]), capture_output=True,
                          text=True, check=False, env=env)


def parse_config(text):
    """server id -> its server string, and the version (hex text)."""
    servers, version = {}, None
    for line in text.splitlines():
        m = re.match(r"server\.(\d+)=(.*)$", line)
        if m:
            servers[int(m.group(1))] = m.group(2)
        elif line.startswith("version="):
            version = line[len("version="):]
    return servers, version


def mode_of(host):
    """The Mode line of srvr at host:port ('leader', 'follower', ...), or None."""
    addr, port = host.rsplit(":", 1)
    reply = exchange((addr, int(port)), b"srvr", timeout_s=5)
    m = re.search(rb"^Mode: (\w+)", reply, re.M)
    return m.group(1).decode() if m else None


class ReconfigTest(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="zn-kazoo-reconfig.")
        started = server_cmd(self.state, "start", "reconfigEnabled=true",
                             "DigestAuthenticationProvider.superDigest=%s"
                             % make_digest_acl_credential("super", SUPER_PASSWORD))
        if started.returncode != 0:
            server_cmd(self.state, "stop")
            raise RuntimeError("ensemble did not start: %s" % started.stderr[-2000:])
        self.hosts = started.stdout.strip().splitlines()[-1].split(",")
        self.clients = []
        # member N is hosts[N-1]; the one a test removes is a follower
        deadline = time.monotonic() + WAIT_S
        modes = {}
        while time.monotonic() < deadline:
            modes = {i + 1: mode_of(h) for i, h in enumerate(self.hosts)}
            if list(modes.values()).count("leader") == 1:
                break
            time.sleep(0.1)
        self.assertEqual(list(modes.values()).count("leader"), 1, "modes: %r" % modes)
        self.victim = max(i for i, m in modes.items() if m != "leader")
        self.stay = [i for i in (1, 2, 3) if i != self.victim]

    def tearDown(self):
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass
        server_cmd(self.state, "stop")
        shutil.rmtree(self.state, ignore_errors=True)

    def client(self, host=None, super_user=False):
        auth = [("digest", "super:" + SUPER_PASSWORD)] if super_user else None
        zk = KazooClient(hosts=host or ",".join(self.hosts), auth_data=auth,
                         connection_retry=RETRY, command_retry=RETRY, timeout=10)
        zk.start(timeout=WAIT_S)
        self.clients.append(zk)
        return zk

    def config_at(self, host):
        zk = self.client(host)
        zk.sync("/zookeeper/config")
        return zk.get("/zookeeper/config")

    def reconfig(self, zk, **kwargs):
        args = {"joining": None, "leaving": None, "new_members": None, "from_config": -1}
        args.update(kwargs)
        return zk.reconfig_async(**args).get(timeout=WAIT_S)

    def test_removing_a_member_returns_the_new_config_and_every_member_shows_it(self):
        zk = self.client(self.hosts[self.stay[0] - 1], super_user=True)
        before, _ = parse_config(zk.get("/zookeeper/config")[0].decode())
        self.assertEqual(sorted(before), [1, 2, 3])
        data, stat = self.reconfig(zk, leaving=str(self.victim))
        servers, version = parse_config(data.decode())
        self.assertEqual(sorted(servers), self.stay)
        self.assertEqual(servers[self.stay[0]], before[self.stay[0]])
        # the version is the zxid that committed it, and the node's mzxid
        self.assertEqual(int(version, 16), stat.mzxid)
        for host in (self.hosts[i - 1] for i in self.stay):
            got, got_stat = self.config_at(host)
            self.assertEqual(got, data, "member %s" % host)
            self.assertEqual(got_stat.mzxid, stat.mzxid)
        # the two that remain are the ensemble: writes commit
        zk.create("/after-remove", b"x")
        other = self.client(self.hosts[self.stay[1] - 1])
        other.sync("/after-remove")
        self.assertEqual(other.get("/after-remove")[0], b"x")

    def test_a_bulk_reconfig_names_the_whole_new_membership(self):
        zk = self.client(self.hosts[self.stay[1] - 1], super_user=True)
        before, _ = parse_config(zk.get("/zookeeper/config")[0].decode())
        members = ",".join("server.%d=%s" % (i, before[i]) for i in self.stay)
        data, _ = self.reconfig(zk, new_members=members)
        servers, _ = parse_config(data.decode())
        self.assertEqual(sorted(servers), self.stay)

    def test_a_config_watch_fires_with_the_new_membership(self):
        watcher = self.client(self.hosts[self.stay[0] - 1])
        seen = []
        changed = threading.Event()

        def on_config(data, stat):
            seen.append(data)
            if len(seen) > 1:
                changed.set()
        watcher.DataWatch("/zookeeper/config", on_config)
        self.reconfig(self.client(self.hosts[self.stay[1] - 1], super_user=True),
                      leaving=str(self.victim))
        self.assertTrue(changed.wait(WAIT_S), "no watch event for /zookeeper/config")
        self.assertNotIn(self.victim, parse_config(seen[-1].decode())[0])

    def test_from_config_must_name_the_current_version(self):
        zk = self.client(self.hosts[self.stay[0] - 1], super_user=True)
        zk.sync("/zookeeper/config")
        _, version = parse_config(zk.get("/zookeeper/config")[0].decode())
        with self.assertRaises(BadVersionError):
            self.reconfig(zk, leaving=str(self.victim), from_config=int(version, 16) + 12345)
        data, _ = self.reconfig(zk, leaving=str(self.victim), from_config=int(version, 16))
        self.assertNotIn(self.victim, parse_config(data.decode())[0])

    def test_only_the_super_user_may_reconfig(self):
        with self.assertRaises(NoAuthError):
            self.reconfig(self.client(self.hosts[0]), leaving="3")
        servers, _ = parse_config(self.config_at(self.hosts[2])[0].decode())
        self.assertEqual(sorted(servers), [1, 2, 3])

    def test_no_super_auth_as_kazoo_tests_it(self):
        # kazoo's TestReconfig.test_no_super_auth, word for word: the joiner's id is above 255
        with self.assertRaises(NoAuthError):
            self.client(self.hosts[0]).reconfig(
                joining="server.999=127.0.0.9:1234:2345:observer;3456", leaving=None,
                new_members=None)

    def test_malformed_or_too_small_configs_are_bad_arguments(self):
        zk = self.client(self.hosts[0], super_user=True)
        with self.assertRaises(BadArgumentsError):
            self.reconfig(zk, joining="server.9=no-ports-here")
        with self.assertRaises(BadArgumentsError):
            # a joiner without its client port (ZooKeeper demands all three ports)
            self.reconfig(zk, joining="server.9=127.0.0.9:2888:3888:participant")
        with self.assertRaises(BadArgumentsError):
            self.reconfig(zk, leaving="2,3")  # one voter left
        servers, _ = parse_config(zk.get("/zookeeper/config")[0].decode())
        self.assertEqual(sorted(servers), [1, 2, 3])


    def test_a_config_whose_quorum_is_not_synced_is_refused_with_new_config_no_quorum(self):
        # three joiners that were never started: six voters need four synced, three are
        zk = self.client(self.hosts[0], super_user=True)
        joiners = ",".join("server.%d=127.0.0.%d:%d:%d:participant;127.0.0.%d:%d"
                           % (i, i, 1000 + i, 2000 + i, i, 3000 + i) for i in (7, 8, 9))
        with self.assertRaises(NewConfigNoQuorumError):
            self.reconfig(zk, joining=joiners)
        zk.sync("/zookeeper/config")
        servers, _ = parse_config(zk.get("/zookeeper/config")[0].decode())
        self.assertEqual(sorted(servers), [1, 2, 3])


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
        self._line("not ok", self._exc_info_to_string(err, test))

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
