#!/usr/bin/python3
"""Write load for fault tests: create PREFIX-0, PREFIX-1, ... one at a time through kazoo, riding
over connection losses, and append each name to ACKFILE only once the server acknowledged it.

  zk_load.py HOSTS PREFIX ACKFILE [--count N] [--until FILE] [--timeout S] [--times FILE]

Stops after N acknowledged writes, or once FILE exists. A write whose outcome is unknown (the
connection was lost before the reply) is not recorded and not retried under the same name, so
ACKFILE lists exactly the writes a client saw succeed. Prints `acked=A failed=F` at the end.
--times FILE appends `INVOKED_NS ACKED_NS` (time.time_ns(), the clock of `date +%s%N`) for each
acknowledged write, so a test can tell when the first write invoked after a fault was acknowledged.
"""
import argparse
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hosts")
    ap.add_argument("prefix")
    ap.add_argument("ackfile")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--until", default="")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--times", default="")
    a = ap.parse_args()
    zk = KazooClient(hosts=a.hosts, timeout=a.timeout,
                     connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    try:
        zk.start(timeout=max(30.0, 3 * a.timeout) if not a.until else 3 * a.timeout)
    except KazooTimeoutError:
        print("acked=0 failed=0 (never connected)")
        return 1
    parent = a.prefix.rsplit("/", 1)[0]
    if parent:
        while True:
            try:
                zk.ensure_path(parent)
                break
            except (KazooException, KazooTimeoutError):
                time.sleep(0.2)
    acked = failed = 0
    number = 0
    times = open(a.times, "a") if a.times else None
    with open(a.ackfile, "a") as ack:
        while True:
            if a.count and acked >= a.count:
                break
            if a.until and os.path.exists(a.until):
                break
            name = "%s-%d" % (a.prefix, number)
            number += 1
            invoked = time.time_ns()
            try:
                zk.create(name, name.encode())
            except NodeExistsError:
                failed += 1  # an earlier attempt of ours must have landed: unknown, not acked
                continue
            except (KazooException, KazooTimeoutError):
                failed += 1
                time.sleep(0.05)
                continue
            ack.write(name + "\n")
            ack.flush()
            if times:
                times.write("%d %d\n" % (invoked, time.time_ns()))
                times.flush()
            acked += 1
    print("acked=%d failed=%d" % (acked, failed))
    zk.stop()
    zk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
