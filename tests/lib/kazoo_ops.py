"""One kazoo session running a list of ops, for the bats helpers that drive kazoo from the
command line (kazoo_tls in tests/compat/tls_helpers.bash, kazoo_sasl in sasl_helpers.bash).

session(hosts, tries, **kw) starts a KazooClient (session timeout 5 s, up to `tries` connection
attempts, 10 s to start) or prints "ERR <exception>" and exits 1. each_op(ops, arity, do) walks
ops: arity(op, rest) says how many arguments op takes from the words after it (None: an unknown
op, which ends the run), do(op, args) runs it; an op that raises prints "ERR <exception>" and the
walk goes on.
"""
import logging
import sys

from kazoo.client import KazooClient

import kazoo_start_race  # noqa: F401  start() reports a quick auth failure as AuthFailedError


def session(hosts, tries, **kw):
    logging.disable(logging.CRITICAL)
    zk = KazooClient(hosts=hosts, timeout=5, connection_retry={"max_tries": tries, "delay": 0.2}, **kw)
    try:
        zk.start(timeout=10)
    except Exception as e:
        print("ERR", type(e).__name__)
        sys.exit(1)
    return zk


def each_op(ops, arity, do):
    i = 0
    while i < len(ops):
        op = ops[i]
        n = arity(op, ops[i + 1:])
        if n is None:
            raise SystemExit("unknown op " + op)
        args = ops[i + 1:i + 1 + n]
        i += 1 + n
        try:
            do(op, args)
        except Exception as e:
            print("ERR", type(e).__name__)
