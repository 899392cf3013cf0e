#!/usr/bin/python3
"""The two sides of tests/compat/import_zookeeper.bats, through kazoo.

  workload HOSTS OUT_JSON READY_FILE NODES
      Against a real ZooKeeper: a tree of NODES nodes and more (ACLs of every scheme, sequentials,
      sets, set ACLs, deletes, multis, containers, TTL nodes, and ephemerals of a session that stays
      open), then every node as ZooKeeper serves it (data, ACL, the whole stat) into OUT_JSON, then
      READY_FILE, and then it waits to be killed, so the ephemerals' session is open when
      ZooKeeper stops.
  compare HOSTS EXPECTED_JSON
      Against the server that imported ZooKeeper's data: every node of EXPECTED_JSON, field by
      field, and no node more; then the next sequential child's number, and that its zxid is past
      every zxid ZooKeeper served.  Prints one line per
      difference and a count; exit 1 when anything differs.
  kinds HOSTS TIMEOUT_S
      The containers /box, /box-late and the TTL nodes /ttl, /ttl-late kept their kinds: once
      their children are deleted, the server reaps them; exit 1 on timeout.
  ephemerals-gone HOSTS EXPECTED_JSON TIMEOUT_S
      Waits until the ephemerals of the held session are gone (the session expired on the new
      server); exit 1 on timeout, naming those still there.
"""
import base64
import json
import os
import sys
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.protocol.serialization import int_struct, long_struct, write_buffer, write_string
from kazoo.retry import KazooRetry
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl

AUTH = [("digest", "importer:secret")]
FAST_RETRY = KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0)
SEQ_PARENT = "/seq"


def _acl_bytes(acl):
    b = bytearray(int_struct.pack(len(acl)))
    for a in acl:
        b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id))
    return b


class CreateContainer(namedtuple("CreateContainer", "path data acl")):
    type = 19

    def serialize(self):
        return write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl) + int_struct.pack(4)

    @classmethod
    def deserialize(cls, buf, offset):
        return None


class CreateTTL(namedtuple("CreateTTL", "path data acl ttl")):
    type = 21

    def serialize(self):
        # CreateMode.PERSISTENT_WITH_TTL = 5
        return (write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl)
                + int_struct.pack(5) + long_struct.pack(self.ttl))

    @classmethod
    def deserialize(cls, buf, offset):
        return None


KIND_NODES = ("/box", "/ttl", "/box-late", "/ttl-late")


def kind_nodes(zk, suffix, acl):
    """A container and a TTL node, each with a child (so neither is reaped yet)."""
    raw_call(zk, CreateContainer("/box" + suffix, b"container", acl))
    zk.create("/box%s/item" % suffix, b"in the box")
    # A TTL of 1 s: the child keeps it (a TTL node goes only when it has none).
    raw_call(zk, CreateTTL("/ttl" + suffix, b"ttl node", OPEN_ACL_UNSAFE, 1000))
    zk.create("/ttl%s/child" % suffix, b"")


def client(hosts, timeout_s=15.0):
    zk = KazooClient(hosts=hosts, timeout=timeout_s, connection_retry=FAST_RETRY,
                     command_retry=FAST_RETRY, auth_data=AUTH)
    zk.start(timeout=60)
    return zk


def raw_call(zk, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=30)


def acls():
    world_read = ACL(1, Id("world", "anyone"))
    digest_all = make_digest_acl("importer", "secret", all=True)
    other_rw = make_digest_acl("other", "pw", read=True, write=True)
    ip_read = ACL(1, Id("ip", "127.0.0.1"))
    return [
        None,                                # OPEN_ACL_UNSAFE
        [digest_all],
        [world_read, digest_all],
        [digest_all, other_rw, ip_read],
    ]


def workload(hosts, out_json, ready_file, nodes):
    zk = client(hosts)
    holder = client(hosts, timeout_s=20.0)  # the session left open: its ephemerals travel
    acl_choices = acls()
    zk.create("/app", b"root of the app")
    zk.create(SEQ_PARENT, b"")
    zk.create("/big", b"x" * 300000)
    kind_nodes(zk, "", acl_choices[2])  # early: in the snapshots
    # Many nodes, spread over several parents, with each ACL, some with null data.
    pending = []
    for i in range(nodes):
        acl = acl_choices[i % len(acl_choices)]
        parent = "/app/d%d" % (i % 20)
        if i < 20:
            zk.create(parent, b"dir %d" % i, acl=acl_choices[0])
        pending.append(zk.create_async("%s/n%05d" % (parent, i), b"value %d" % i if i % 7 else b"",
                                       acl=acl))
        if len(pending) >= 200:
            [p.get(timeout=60) for p in pending]
            pending = []
    [p.get(timeout=60) for p in pending]
    # Sets (versions, mtimes), ACL changes (aversion), deletes (pzxid, cversion).
    for i in range(0, nodes, 3):
        zk.set("/app/d%d/n%05d" % (i % 20, i), b"set once %d" % i)
    for i in range(0, nodes, 9):
        zk.set("/app/d%d/n%05d" % (i % 20, i), b"set twice %d" % i)
    for i in range(1, nodes, 11):
        zk.set_acls("/app/d%d/n%05d" % (i % 20, i), acl_choices[2])
    for i in range(2, nodes, 13):
        zk.delete("/app/d%d/n%05d" % (i % 20, i))
    # Sequentials, some deleted: the next number comes from the parent's cversion.
    seq_creates = 0
    for i in range(50):
        zk.create(SEQ_PARENT + "/job-", b"job %d" % i, sequence=True)
        seq_creates += 1
    for name in sorted(zk.get_children(SEQ_PARENT))[:17]:
        zk.delete(SEQ_PARENT + "/" + name)
    # A multi that commits and one that fails (ErrorTxn records).
    t = zk.transaction()
    t.create("/app/multi-a", b"a")
    t.create("/app/multi-b", b"b", sequence=True)
    t.set_data("/app", b"root of the app, changed in a multi")
    t.commit()
    t = zk.transaction()
    t.create("/app/multi-never", b"x")
    t.check("/app", version=12345)
    t.commit()
    kind_nodes(zk, "-late", acl_choices[2])  # in the logs after the last snapshot
    # Ephemerals of the held session, one sequential.
    holder.create("/app/eph-a", b"held", ephemeral=True)
    holder.create("/app/d3/eph-b", b"held too", ephemeral=True, acl=acl_choices[3])
    holder.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
    # An ephemeral of a session that closes: gone before the end.
    gone = client(hosts)
    gone.create("/app/eph-closed", b"", ephemeral=True)
    gone.stop()
    gone.close()
    zk.sync("/")  # against an ensemble: the other sessions' writes are on zk's member too
    expected = {
        "nodes": dump_tree(zk),
        "held_session": holder.client_id[0],
        "seq_next": seq_creates,
    }
    with open(out_json + ".tmp", "w") as f:
        json.dump(expected, f, sort_keys=True)
    os.rename(out_json + ".tmp", out_json)
    with open(ready_file, "w") as f:
        f.write("%d\n" % len(expected["nodes"]))
    while True:  # killed by the test once ZooKeeper is stopped
        time.sleep(3600)


def node_record(zk, path):
    data, stat = zk.get(path)
    acl, _ = zk.get_acls(path)
    return {
        "data": base64.b64encode(data or b"").decode() if data is not None else None,
        "acl": sorted([a.perms, a.id.scheme, a.id.id] for a in acl),
        "stat": {f: getattr(stat, f) for f in stat._fields},
    }


def dump_tree(zk):
    out = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        if path == "/zookeeper/config":
            continue  # each member's own, from its zoo.cfg
        out[path] = node_record(zk, path)
        for child in zk.get_children(path):
            stack.append(("" if path == "/" else path) + "/" + child)
    return out


def compare(hosts, expected_json):
    with open(expected_json) as f:
        expected = json.load(f)
    zk = client(hosts)
    got = dump_tree(zk)
    diffs = 0
    for path in sorted(set(expected["nodes"]) | set(got)):
        e, g = expected["nodes"].get(path), got.get(path)
        if e is None or g is None:
            print("%s: %s" % (path, "not in ZooKeeper's tree" if e is None else "missing"))
            diffs += 1
            continue
        for field in ("data", "acl"):
            if e[field] != g[field]:
                print("%s: %s is %r, ZooKeeper served %r" % (path, field, g[field], e[field]))
                diffs += 1
        for field in sorted(e["stat"]):
            if e["stat"][field] != g["stat"].get(field):
                print("%s: stat.%s is %r, ZooKeeper served %r"
                      % (path, field, g["stat"].get(field), e["stat"][field]))
                diffs += 1
    held = [p for p, n in got.items() if n["stat"]["ephemeralOwner"] == expected["held_session"]]
    print("nodes=%d compared, %d differences, held ephemerals=%d" % (len(expected["nodes"]), diffs,
                                                                      len(held)))
    created = zk.create(SEQ_PARENT + "/job-", b"after the import", sequence=True)
    want = "%s/job-%010d" % (SEQ_PARENT, expected["seq_next"])
    if created != want:
        print("next sequential child is %s, ZooKeeper would have made %s" % (created, want))
        diffs += 1
    else:
        print("next sequential child %s" % created)
    # The import continues from ZooKeeper's zxid: the new node's is past every one it served.
    last = max(max(n["stat"]["czxid"], n["stat"]["mzxid"], n["stat"]["pzxid"])
               for n in expected["nodes"].values())
    czxid = zk.exists(created).czxid
    if czxid <= last:
        print("the write after the import has zxid 0x%x, not past ZooKeeper's 0x%x" % (czxid, last))
        diffs += 1
    zk.stop()
    return 1 if diffs or not held else 0


def ephemerals_gone(hosts, expected_json, timeout_s):
    with open(expected_json) as f:
        expected = json.load(f)
    held = [p for p, n in expected["nodes"].items()
            if n["stat"]["ephemeralOwner"] == expected["held_session"]]
    zk = client(hosts)
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in held if zk.exists(p)]
        if not left:
            print("the %d ephemerals of session 0x%x are gone" % (len(held), expected["held_session"]))
            return 0
        if time.monotonic() > deadline:
            print("after %ss still there: %s" % (timeout_s, " ".join(sorted(left))))
            return 1
        time.sleep(0.2)


def kinds(hosts, timeout_s):
    zk = client(hosts)
    for path in KIND_NODES:
        for child in zk.get_children(path):
            zk.delete(path + "/" + child)
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in KIND_NODES if zk.exists(p)]
        if not left:
            break
        if time.monotonic() > deadline:
            print("after %ss still there: %s" % (timeout_s, " ".join(left)))
            return 1
        time.sleep(0.2)
    if not zk.exists("/app"):
        print("/app is gone too")
        return 1
    print("the containers and the TTL nodes were reaped once empty")
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "workload":
        try:
            workload(argv[2], argv[3], argv[4], int(argv[5]))
        finally:
            os._exit(1)  # an exception: end now, not with kazoo's threads still running
    elif len(argv) == 4 and argv[1] == "compare":
        return compare(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "kinds":
        return kinds(argv[2], float(argv[3]))
    elif len(argv) == 5 and argv[1] == "ephemerals-gone":
        return ephemerals_gone(argv[2], argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
