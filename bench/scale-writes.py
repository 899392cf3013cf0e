#!/usr/bin/env python3
"""Writes with a big tree, builds A/B (bench/PROFILE.md's section on snapshot files): a lighter
cousin of `bench/compare --only scale` for znoded alone.

For each round, for each build (interleaved: A, B, A, B, ...): a fresh standalone znoded
(forceSync=yes, snapCount as given, dataDir and dataLogDir apart, as bench/compare writes
them), a warmup, set and create on the empty tree, N znodes of 100 bytes created under /pop,
then set and create again (zn_bench -c 8 -o 16, 100-byte values), then a restart timed to its
first answer.  Each workload's line: ops/s,
p99, p999 and max (the longest a request waited: the stall), the bytes the server wrote per
write (/proc/PID/io write_bytes, which counts the snapshot children it reaped), and the
1-minute load average when it ended.  Then the snapshot lines of the server's log (the child's
`snapshot serialised ... ms=` and the store's `store: snapshot written ...`).

  bench/scale-writes.py --builds main=/path/znoded,snapfile=/path/znoded [--size 1000000]
                        [--seconds 10] [--rounds 2] [--port-base 43800] [--out FILE]
                        [--attach 'strace -f -c -p {pid} -o {out}' --attach-out PREFIX]

Scratch under $TMPDIR (default /var/tmp), removed; every server started is stopped by PID.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZN_BENCH = os.environ.get("ZN_BENCH", os.path.join(ROOT, "build", "bench", "zn_bench"))


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def bench(server, workload, *args, timeout_s=3600):
    cmd = [ZN_BENCH, "-s", server, "-w", workload] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    out = p.stdout.strip().splitlines()
    return json.loads(out[-1]) if out else {"ok": False, "stderr": p.stderr[-300:]}


def wait_serving(port, deadline_s=120):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"ruok")
                if s.recv(4) == b"imok":
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def write_config(root, port, extra):
    """root/zoo.cfg of a standalone server in root/data and root/datalog; returns its path."""
    for d in ("data", "datalog"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    cfg = os.path.join(root, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write("\n".join([
            "tickTime=2000", f"dataDir={root}/data", f"dataLogDir={root}/datalog",
            f"clientPort={port}", "clientPortAddress=127.0.0.1", "maxClientCnxns=1000",
            "forceSync=yes", "4lw.commands.whitelist=*", "admin.enableServer=false"]
            + list(extra)) + "\n")
    return cfg


def stop(proc, log):
    """Stops the server started (by its PID) and closes its log."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def run_one(label, znoded, args, port, out):
    root = tempfile.mkdtemp(prefix=f"scale-{label}-")
    try:
        # autopurge.* at its default: purge (and compaction, which recycling needs) at each snapshot
        cfg = write_config(root, port, [f"snapCount={args.snap_count}"])
        log = open(os.path.join(root, "server.log"), "wb")
        proc = subprocess.Popen([znoded, cfg], stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_serving(port):
                raise RuntimeError(f"{label}: znoded did not serve on {port}")
            server = f"127.0.0.1:{port}"
            bench(server, "mixed", "-c", 8, "-o", 16, "-r", 0.5, "-d", 3, "--warmup", 1)

            def measure(tree, workload):
                attached = None
                if args.attach and tree != "empty" and workload == "set":
                    out_file = f"{args.attach_out}.{label}"
                    attached = subprocess.Popen(
                        args.attach.format(pid=proc.pid, out=out_file).split(),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                before = write_bytes(proc.pid)
                r = bench(server, workload, "-c", 8, "-o", 16, "-d", args.seconds, "--warmup", 1,
                          "-v", 100, "-p", f"/b-{workload}")
                written = write_bytes(proc.pid) - before
                if attached:
                    attached.send_signal(signal.SIGINT)
                    attached.wait(timeout=300)
                row = {"build": label, "tree": tree, "workload": workload,
                       "ops_per_s": r.get("ops_per_s"), "p99_us": r.get("p99_us"),
                       "p999_us": r.get("p999_us"), "max_us": r.get("max_us"),
                       "errors": r.get("errors"), "ops": r.get("ops"),
                       "bytes_written_per_op": round(written / max(1, r.get("ops") or 1)),
                       "loadavg_1m": round(os.getloadavg()[0], 2)}
                print(json.dumps(row), file=out, flush=True)
                print(f"{label:>9} {tree:>5} {workload:>6}: {row['ops_per_s']:>9} ops/s p99 "
                      f"{row['p99_us']:>8} us p999 {row['p999_us']:>8} us max {row['max_us']:>9} us "
                      f"{row['bytes_written_per_op']:>6} B/op load {row['loadavg_1m']}",
                      file=sys.stderr, flush=True)

            for w in ("set", "create"):
                measure("empty", w)
            t0 = time.time()
            pr = bench(server, "create", "-c", 8, "-o", 64, "-n", args.size, "-v", 100, "-p", "/pop")
            print(f"{label:>9} populated {args.size} in {time.time() - t0:.0f} s "
                  f"({pr.get('ops_per_s')} ops/s)", file=sys.stderr, flush=True)
            with open(os.path.join(root, "server.log"), "rb") as f:
                mark = len(f.read())
            for w in ("set", "create"):
                measure(f"{args.size // 1000}k", w)
            with open(os.path.join(root, "server.log"), "rb") as f:
                lines = f.read()[mark:].decode(errors="replace").splitlines()
            for line in lines:
                if re.search(r"snapshot serialised|store: snapshot written|snapshot at zxid|loop: |stall", line):
                    print(json.dumps({"build": label, "log": line}), file=out, flush=True)
                    print(f"{label:>9} log: {line[line.find('snapshot') - 7:][:260]}",
                          file=sys.stderr, flush=True)
            # the restart: stopped, started again, timed to its first answer (the newest
            # snapshot checked and loaded, the log after it replayed)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            t0 = time.time()
            proc = subprocess.Popen([znoded, cfg], stdout=log, stderr=subprocess.STDOUT)
            if not wait_serving(port, 300):
                raise RuntimeError(f"{label}: znoded did not serve again on {port}")
            row = {"build": label, "tree": f"{args.size // 1000}k", "restart_s": round(time.time() - t0, 2),
                   "loadavg_1m": round(os.getloadavg()[0], 2)}
            print(json.dumps(row), file=out, flush=True)
            print(f"{label:>9} restart to serving: {row['restart_s']} s load {row['loadavg_1m']}",
                  file=sys.stderr, flush=True)
        finally:
            stop(proc, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builds", required=True, help="label=znoded,label=znoded")
    ap.add_argument("--size", type=int, default=1000000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--snap-count", type=int, default=100000)
    ap.add_argument("--port-base", type=int, default=43800)
    ap.add_argument("--out", default="-")
    ap.add_argument("--attach", help="a command run during the big tree's set, {pid} and {out} "
                    "filled in: 'strace -f -c -p {pid} -o {out}', 'perf record -g -p {pid} -o {out}'")
    ap.add_argument("--attach-out", default="/var/tmp/scale-attach",
                    help="{out} of --attach, the build's label appended")
    args = ap.parse_args()
    builds = [b.split("=", 1) for b in args.builds.split(",")]
    out = sys.stdout if args.out == "-" else open(args.out, "a")
    for rnd in range(args.rounds):
        for i, (label, znoded) in enumerate(builds):
            run_one(label, znoded, args, args.port_base + 2 * rnd * len(builds) + i, out)


if __name__ == "__main__":
    main()
