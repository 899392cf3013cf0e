#!/usr/bin/python3
"""bench/server_mem.py: where a standalone znoded's resident memory goes (issue 18), from counts
that do not depend on the machine's load: RssAnon (the memory it allocated, without the store's
mapped file pages) and glibc's own accounting (malloc_stats, called in the server through gdb).

  sessions  K sessions held open (bench/compare's scale-phase framing: a ConnectRequest each,
            100 at a time, then a ping each whose reply is not read), after 100 opened and
            closed as a warm-up: RssAnon per session once settled; then the K closed and
            --cycles more rounds of K opened and closed, RssAnon after each round (a leak per
            session grows it by K times the leak a round).
  znodes    N znodes of 100 bytes created as bench/compare's populate does (zn_bench create,
            8 sessions x 64 outstanding, under /pop): RssAnon and glibc's heap (in use, and
            held but free) before and after, per znode beyond its path and data.

Each LABEL=BUILD_DIR is measured --rounds times, the builds interleaved, each round on a fresh
server.  A figure, not a test: nothing passes or fails here.

usage: bench/server_mem.py sessions|znodes [--count N] [--cycles N] [--rounds R] LABEL=BUILD_DIR...
environment: ZN_PORT_MIN, ZN_PORT_MAX (as bench/compare), ZN_BENCH_DIR (scratch, /var/tmp)
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
VALUE_BYTES = 100


def load_compare():
    loader = importlib.machinery.SourceFileLoader("compare", os.path.join(HERE, "compare"))
    spec = importlib.util.spec_from_loader("compare", loader)
    drv = importlib.util.module_from_spec(spec)
    loader.exec_module(drv)
    return drv


def malloc_stats(pid, log_path):
    """glibc's malloc_stats() in the server (gdb attaches for the call): its total system
    and in-use bytes (mmapped chunks included), as it prints them on the server's stderr."""
    size = os.path.getsize(log_path)
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "call (void) malloc_stats()"],
                   capture_output=True, timeout=120, check=True)
    for _ in range(50):
        with open(log_path, "rb") as f:
            f.seek(size)
            text = f.read().decode(errors="replace")
        m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", text)
        if m:
            arenas = len(re.findall(r"^Arena \d+:", text, re.M))
            return {"system": int(m.group(1)), "in_use": int(m.group(2)), "arenas": arenas}
        time.sleep(0.1)
    raise RuntimeError("no malloc_stats output in " + log_path)


def status_kib(pid, keys=("VmRSS", "RssAnon", "RssFile", "RssShmem")):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in keys:
                out[k] = int(line.split()[1])
    return out


def round_sessions(drv, ens, args):
    scale = drv.compare_scale
    m = ens.members[0]
    k = args.count
    scale.close_sessions(drv, scale.open_sessions(drv, m["addr"], m["port"], 100))
    base = scale.settled_anon(ens)[0]
    socks = scale.open_sessions(drv, m["addr"], m["port"], k)
    try:
        scale.ping_all(drv, socks)
        held = scale.settled_anon(ens)[0]
    finally:
        scale.close_sessions(drv, socks)
    after = [scale.settled_anon(ens)[0]]
    for _ in range(args.cycles):
        scale.close_sessions(drv, scale.open_sessions(drv, m["addr"], m["port"], k))
        after.append(scale.settled_anon(ens)[0])
    summary = (f"{(held - base) * 1024 / k:.0f} bytes per session (RssAnon {base} -> {held} KiB "
               f"with {k}), after each round closed: {after} KiB")
    return {"sessions": k, "anon_base_kib": base, "anon_held_kib": held,
            "bytes_per_session": (held - base) * 1024 / k, "anon_after_rounds_kib": after}, summary


def round_znodes(drv, ens, args):
    scale = drv.compare_scale
    m = ens.members[0]
    pid = ens.pids()[0]
    log_path = os.path.join(m["dir"], "server.log")
    n = args.count
    count_before = ens.znode_count()
    anon_before = scale.settled_anon(ens)[0]
    heap_before = malloc_stats(pid, log_path)
    pr = drv.populate(ens.connect_string(), n)
    if not pr.get("ok"):
        raise RuntimeError(f"populate failed: {pr.get('first_error')}")
    added = ens.znode_count() - count_before
    anon_after = scale.settled_anon(ens)[0]
    heap_after = malloc_stats(pid, log_path)
    status_after = status_kib(pid)
    path_bytes = scale.mean_path_bytes(scale.pop_dirs(drv, ens), n)
    own = path_bytes + VALUE_BYTES

    def per(delta_bytes):
        return (delta_bytes - added * own) / added

    r = {"znodes": added, "path_bytes_mean": round(path_bytes, 1),
         "anon_before_kib": anon_before, "anon_after_kib": anon_after,
         "anon_bytes_per_znode": per((anon_after - anon_before) * 1024),
         "heap_before": heap_before, "heap_after": heap_after, "status_after_kib": status_after,
         "heap_in_use_bytes_per_znode": per(heap_after["in_use"] - heap_before["in_use"]),
         "heap_free_bytes_per_znode": ((heap_after["system"] - heap_after["in_use"])
                                       - (heap_before["system"] - heap_before["in_use"])) / added}
    summary = (f"{added} znodes: RssAnon {r['anon_bytes_per_znode']:.1f} bytes per znode beyond "
               f"path and data; heap in use {r['heap_in_use_bytes_per_znode']:.1f}, held free "
               f"{r['heap_free_bytes_per_znode']:.1f} ({heap_after['arenas']} arenas); after: "
               + ", ".join(f"{k} {v} KiB" for k, v in status_after.items()))
    return r, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=("sessions", "znodes"))
    ap.add_argument("--count", type=int, help="sessions (default 2000) or znodes (default 1000000)")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("builds", nargs="+", metavar="LABEL=BUILD_DIR")
    args = ap.parse_args()
    if args.count is None:
        args.count = 2000 if args.mode == "sessions" else 1000000
    drv = load_compare()
    builds = []
    for b in args.builds:
        label, _, d = b.partition("=")
        d = os.path.abspath(d)
        if not os.access(os.path.join(d, "daemon", "znoded"), os.X_OK):
            sys.exit(f"server_mem: no {d}/daemon/znoded")
        builds.append((label, d))
    measure = round_sessions if args.mode == "sessions" else round_znodes
    scratch = tempfile.mkdtemp(prefix="server-mem-", dir=os.environ.get("ZN_BENCH_DIR", "/var/tmp"))
    try:
        for _ in range(args.rounds):
            for label, d in builds:
                drv.ZNODED = os.path.join(d, "daemon", "znoded")
                drv.ZN_BENCH = os.path.join(d, "bench", "zn_bench")
                cli = os.path.join(d, "tools", "znode")  # else this checkout's build's
                if os.access(cli, os.X_OK):
                    drv.ZNODE_CLI = cli
                root = tempfile.mkdtemp(prefix=f"{label}-", dir=scratch)
                ens = drv.Ensemble("znoded", 1, root)
                ens.start()
                try:
                    r, summary = measure(drv, ens, args)
                finally:
                    ens.stop()
                    drv.shutil.rmtree(root, ignore_errors=True)
                r.update(label=label, build=d, mode=args.mode, load1=os.getloadavg()[0])
                print(json.dumps(r), flush=True)
                print(f"# {label}: {summary}; load {r['load1']:.1f}", file=sys.stderr, flush=True)
    finally:
        drv.shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
