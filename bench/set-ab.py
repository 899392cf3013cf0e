#!/usr/bin/env python3
"""Sustained standalone sets, builds A/B (bench/PROFILE.md section 20: recycled log segments).

For each round, for each build (interleaved, the first build alternating round by round): a
fresh standalone znoded (forceSync=yes, preAllocSize, snapCount and autopurge at their defaults
(old snapshots and log dropped after every snapshot) unless given, dataDir and dataLogDir apart, as bench/scale-writes.py writes them), 3 s of mixed
warmup, then `zn_bench -w set -c 8 -o 16 -v 100` for SECONDS.  Each line: ops/s, p99, p999,
max, the bytes the server wrote to the disk per set (/proc/PID/io write_bytes over the
measured run), the log segments it started and how many of them were compacted ones reused
(its `log segment ... started` lines), and the 1-minute load average when it ended.

  bench/set-ab.py --builds main=/path/znoded,recycle=/path/znoded [--seconds 30]
                  [--rounds 3] [--port-base 44100] [--out FILE] [--set KEY=VALUE ...]

Scratch under $TMPDIR (default /var/tmp), removed; every server started is stopped by PID.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("scale_writes", os.path.join(HERE, "scale-writes.py"))
sw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sw)


def run_one(label, znoded, args, port, out):
    root = tempfile.mkdtemp(prefix=f"set-ab-{label}-")
    try:
        cfg = sw.write_config(root, port, args.set)
        logpath = os.path.join(root, "server.log")
        log = open(logpath, "wb")
        proc = subprocess.Popen([znoded, cfg], stdout=log, stderr=subprocess.STDOUT)
        try:
            if not sw.wait_serving(port):
                raise RuntimeError(f"{label}: znoded did not serve on {port}")
            server = f"127.0.0.1:{port}"
            sw.bench(server, "mixed", "-c", 8, "-o", 16, "-r", 0.5, "-d", 3, "--warmup", 1)
            with open(logpath, "rb") as f:
                mark = len(f.read())
            before = sw.write_bytes(proc.pid)
            r = sw.bench(server, "set", "-c", 8, "-o", 16, "-d", args.seconds, "--warmup", 1,
                         "-v", 100, "-p", "/b-set")
            written = sw.write_bytes(proc.pid) - before
            with open(logpath, "rb") as f:
                lines = f.read()[mark:].decode(errors="replace").splitlines()
            started = [l for l in lines if "store: log segment log." in l and " started " in l]
            reused = [l for l in started if "the prepared spare" in l and "recycled" in l]
            row = {"build": label, "workload": "set", "seconds": args.seconds,
                   "ops_per_s": r.get("ops_per_s"), "p99_us": r.get("p99_us"),
                   "p999_us": r.get("p999_us"), "max_us": r.get("max_us"),
                   "errors": r.get("errors"), "ops": r.get("ops"),
                   "bytes_written_per_op": round(written / max(1, r.get("ops") or 1)),
                   "segments_started": len(started), "segments_recycled": len(reused),
                   "loadavg_1m": round(os.getloadavg()[0], 2)}
            print(json.dumps(row), file=out, flush=True)
            print(f"{label:>9} set: {row['ops_per_s']:>9} ops/s p99 {row['p99_us']:>8} us p999 "
                  f"{row['p999_us']:>8} us max {row['max_us']:>9} us {row['bytes_written_per_op']:>6} "
                  f"B/op segments {len(started)} (recycled {len(reused)}) load {row['loadavg_1m']}",
                  file=sys.stderr, flush=True)
        finally:
            sw.stop(proc, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builds", required=True, help="label=znoded,label=znoded")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=44100)
    ap.add_argument("--out", default="-")
    ap.add_argument("--set", action="append", default=[], help="an extra zoo.cfg line KEY=VALUE")
    args = ap.parse_args()
    builds = [b.split("=", 1) for b in args.builds.split(",")]
    out = sys.stdout if args.out == "-" else open(args.out, "a")
    port = args.port_base
    for rnd in range(args.rounds):
        order = builds if rnd % 2 == 0 else builds[::-1]
        for label, znoded in order:
            run_one(label, znoded, args, port, out)
            port += 1


if __name__ == "__main__":
    main()
