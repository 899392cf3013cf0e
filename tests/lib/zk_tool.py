#!/usr/bin/python3
"""A small kazoo-based client for the integration tests, one subcommand per role a test needs.

  exists HOSTS PATH                  exit 0 and print the stat when PATH exists, 1 when not
  owner-of HOSTS PATH                print the node's ephemeralOwner as 0x... after sync (exit 1 if absent)
  get HOSTS PATH                     print the node's data
  create HOSTS PATH [DATA]           create a persistent node (parents too)
  owner HOSTS PATH TIMEOUT_S STATUS  create ephemeral PATH and keep the session open; STATUS gets
                                     `session=0x..`, `passwd=HEX`, `ready`, then one `state=...`
                                     line per connection state change; SIGTERM closes the session
                                     cleanly
  resume HOSTS SESSION PASSWD        reconnect to the session (0x.. id, hex password) through HOSTS
                                     and print its id; exit without closing it (1: it is expired)
  hold-watch HOSTS PATH STATUS       set a data watch on PATH, write `ready`, wait for SIGTERM
  hold-state HOSTS PATH STATUS       create PATH and the ephemeral PATH/e, watch PATH's data and
                                     children and PATH/absent's creation (a session with every
                                     kind of state a server reports), write `ready`, wait for
                                     SIGTERM
  writer HOSTS PREFIX COUNT ACKFILE  create PREFIX-0..COUNT-1 one at a time; append each name to
                                     ACKFILE only after the server acknowledged it; exit at the
                                     first error
  check-acked HOSTS ACKFILE...       every name listed exists with its data; print a summary
  zxid-writer HOSTS PREFIX COUNT ACKFILE  as writer, each line `NAME CZXID` (czxid in hex)
  check-backup HOSTS ACKFILE ZXID    a server restored from a backup at ZXID holds exactly
                                     the acknowledged creates with czxid <= ZXID, and no node
                                     under their parent with a higher czxid; print a summary

Connection problems are reported on stderr with the hosts tried, never swallowed.
"""
import os
import signal
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

CONNECT_TIMEOUT_S = 30
# Reconnect quickly after a server restart, so a session comes back well within its timeout.
FAST_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5}


def client(hosts, timeout_s=10.0):
    zk = KazooClient(hosts=hosts, timeout=timeout_s, connection_retry=FAST_RETRY)
    try:
        zk.start(timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:
        sys.stderr.write("zk_tool: cannot connect to %s: %s\n" % (hosts, exc))
        sys.exit(3)
    return zk


def append_line(path, line):
    with open(path, "a") as out:
        out.write(line + "\n")
        out.flush()


def wait_for_sigterm():
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(0.5):
        pass


def stop_bounded(zk, timeout_s=15.0):
    """zk.stop(), given up after timeout_s: kazoo's stop() can hang for good in its own join of its
    connection thread (python-zk/kazoo issue 582, open; seen once in CI, in the owner whose
    session had expired while it was SIGSTOPped). Returns whether it stopped; if not, the caller
    exits anyway (kazoo's threads are daemons) and the server ends the session when it expires."""
    stopper = threading.Thread(target=zk.stop, daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        sys.stderr.write("zk_tool: kazoo's stop() did not return in %.0f s; leaving without it\n"
                         % timeout_s)
        return False
    return True


def cmd_exists(hosts, path):
    zk = client(hosts)
    stat = zk.exists(path)
    zk.stop()
    if stat is None:
        print("%s does not exist" % path)
        return 1
    print("%s exists: %s" % (path, stat))
    return 0


def cmd_owner_of(hosts, path):
    zk = client(hosts)
    zk.sync(path)  # what the leader has committed, not a lagging member's view
    stat = zk.exists(path)
    zk.stop()
    if stat is None:
        print("%s does not exist" % path)
        return 1
    print("0x%x" % stat.ephemeralOwner)
    return 0


def cmd_get(hosts, path):
    zk = client(hosts)
    data, _ = zk.get(path)
    zk.stop()
    sys.stdout.write(data.decode(errors="replace"))
    return 0


def cmd_create(hosts, path, data=""):
    zk = client(hosts)
    zk.create(path, data.encode(), makepath=True)
    zk.stop()
    return 0


def cmd_owner(hosts, path, timeout_s, status):
    zk = KazooClient(hosts=hosts, timeout=float(timeout_s), connection_retry=FAST_RETRY)
    zk.add_listener(lambda state: append_line(status, "state=%s" % state))
    zk.start(timeout=CONNECT_TIMEOUT_S)
    zk.create(path, b"owned", ephemeral=True, makepath=True)
    append_line(status, "session=0x%x" % zk.client_id[0])
    append_line(status, "passwd=%s" % zk.client_id[1].hex())
    append_line(status, "ready")
    wait_for_sigterm()
    if not stop_bounded(zk):
        append_line(status, "stop-hung")
        return 0
    zk.close()
    append_line(status, "closed")
    return 0


def cmd_resume(hosts, session, passwd):
    zk = KazooClient(hosts=hosts, timeout=10.0, client_id=(int(session, 16), bytes.fromhex(passwd)),
                     connection_retry={"max_tries": 0})
    lost = threading.Event()
    zk.add_listener(lambda state: lost.set() if state == "LOST" else None)
    try:
        zk.start(timeout=CONNECT_TIMEOUT_S)
        zk.exists("/")
    except Exception as exc:
        sys.stderr.write("zk_tool: resume of %s through %s: %s%s\n"
                         % (session, hosts, type(exc).__name__, " (expired)" if lost.is_set() else ""))
        os._exit(1)
    print("0x%x" % zk.client_id[0], flush=True)
    # Leave without closeSession (kazoo's stop sends one): the session must live on.
    os._exit(0 if not lost.is_set() else 1)


def cmd_hold_watch(hosts, path, status):
    zk = client(hosts)
    zk.get(path, watch=lambda event: append_line(status, "event=%s" % event.type))
    append_line(status, "ready")
    wait_for_sigterm()
    stop_bounded(zk)
    return 0


def cmd_hold_state(hosts, path, status):
    zk = client(hosts)
    zk.ensure_path(path)
    zk.create(path + "/e", b"ephemeral", ephemeral=True)
    zk.get(path, watch=lambda event: None)
    zk.get_children(path, watch=lambda event: None)
    zk.exists(path + "/absent", watch=lambda event: None)
    append_line(status, "session=0x%x" % zk.client_id[0])
    append_line(status, "ready")
    wait_for_sigterm()
    stop_bounded(zk)
    return 0


def write_nodes(hosts, prefix, count, ackfile, with_zxid):
    """Creates PREFIX-0..COUNT-1 one at a time, logging each after its acknowledgement."""
    zk = client(hosts)
    parent = prefix.rsplit("/", 1)[0]
    if parent:
        zk.ensure_path(parent)
    for number in range(int(count)):
        name = "%s-%d" % (prefix, number)
        try:
            # create2 (include_data) answers with the stat, whose czxid is the write's zxid
            created = zk.create(name, name.encode(), include_data=with_zxid)
        except Exception as exc:
            sys.stderr.write("writer %s stopped at %s: %r\n" % (prefix, name, exc))
            return 1
        append_line(ackfile, "%s 0x%x" % (name, created[1].czxid) if with_zxid else name)
    zk.stop()
    return 0


def cmd_writer(hosts, prefix, count, ackfile):
    return write_nodes(hosts, prefix, count, ackfile, False)


def cmd_zxid_writer(hosts, prefix, count, ackfile):
    return write_nodes(hosts, prefix, count, ackfile, True)


def cmd_check_backup(hosts, ackfile, zxid):
    limit = int(zxid, 16)
    acked = [line.split() for line in open(ackfile) if line.strip()]
    zk = client(hosts)
    parent = acked[0][0].rsplit("/", 1)[0]
    present = set()
    problems = []
    for child in zk.get_children(parent):
        path = parent + "/" + child
        data, stat = zk.get(path)
        present.add(path)
        if stat.czxid > limit:
            problems.append("%s has czxid 0x%x, above the backup's zxid" % (path, stat.czxid))
        elif data != path.encode():
            problems.append("%s holds %r" % (path, data))
    before = [name for name, czxid in acked if int(czxid, 16) <= limit]
    after = [name for name, czxid in acked if int(czxid, 16) > limit]
    problems += ["%s was acknowledged at or below the backup's zxid and is missing" % name
                 for name in before if name not in present]
    problems += ["%s was acknowledged above the backup's zxid and is present" % name
                 for name in after if name in present]
    zk.stop()
    print("acked_before=%d acked_after=%d present=%d problems=%d" % (
        len(before), len(after), len(present), len(problems)))
    for problem in problems[:10]:
        print(problem)
    return 0 if not problems else 1


def cmd_check_acked(hosts, ackfiles):
    zk = client(hosts)
    checked = missing = wrong = 0
    for ackfile in ackfiles:
        with open(ackfile) as names:
            for name in names:
                name = name.strip()
                if not name:
                    continue
                checked += 1
                try:
                    data, _ = zk.get(name)
                except NoNodeError:
                    missing += 1
                    print("missing: %s" % name)
                    continue
                if data != name.encode():
                    wrong += 1
                    print("wrong data at %s: %r" % (name, data))
    zk.stop()
    print("checked=%d missing=%d wrong=%d" % (checked, missing, wrong))
    return 0 if missing == 0 and wrong == 0 and checked > 0 else 1


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    command, args = argv[1], argv[2:]
    commands = {
        "exists": cmd_exists,
        "owner-of": cmd_owner_of,
        "get": cmd_get,
        "create": cmd_create,
        "owner": cmd_owner,
        "resume": cmd_resume,
        "hold-watch": cmd_hold_watch,
        "hold-state": cmd_hold_state,
        "writer": cmd_writer,
        "zxid-writer": cmd_zxid_writer,
        "check-backup": cmd_check_backup,
    }
    if command == "check-acked":
        return cmd_check_acked(args[0], args[1:])
    if command not in commands:
        sys.stderr.write("zk_tool: unknown command %s\n" % command)
        return 2
    return commands[command](*args)


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.ERROR)
    sys.exit(main(sys.argv))
