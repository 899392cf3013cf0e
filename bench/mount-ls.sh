#!/bin/bash
# bench/mount-ls.sh: a listing of a directory with many children through the znodefs mount,
# beside a getChildren through libznode (issue 18: at most 2x), for one or more builds of the
# mount interleaved round by round on one standalone znoded (A/B: same server, same load).
# Data, never a test assertion.
#
#   bench/mount-ls.sh [-r ROUNDS] [-n N] [-c CHILDREN] BUILD [BUILD...]
#
# Per round and build: mount with BUILD's znodefs, then
#   C        bench/dir_bench (opendir/readdir/closedir, N times; this checkout's build)
#   Python   os.listdir, N times
#   reqs     packets the server received per C listing (srvr "Received:"; the mount is its only
#            client, pings and the srvr connection count too: an upper bound, load-independent)
# and once per round zn_bench's getChildren (1 session, 1 outstanding, N times).
# p50 and p99 in us; the 1-minute load average is printed with each row.
# Environment: ZN_BUILD_DIR (default build: its znoded, zn_bench, dir_bench), ZN_PORT_MIN/MAX.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=3
N=200
CHILDREN=10000
while getopts "r:n:c:" opt; do
  case "$opt" in
    r) ROUNDS="$OPTARG" ;;
    n) N="$OPTARG" ;;
    c) CHILDREN="$OPTARG" ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,17p' "$0"; exit 2; }
export ZN_BUILD_DIR="${ZN_BUILD_DIR:-build}"
# shellcheck source=../tests/integration/helpers.bash
source "$ROOT/tests/integration/helpers.bash"
BUILD="$ROOT/$ZN_BUILD_DIR"
ZN_BENCH="$BUILD/bench/zn_bench"
DIR_BENCH="$BUILD/bench/dir_bench"
# shellcheck source=mount-lib.bash
source "$ROOT/bench/mount-lib.bash"
bench_need mount-ls "$ZN_BENCH" "$DIR_BENCH" "$ZN_ZNODED" || exit 1
bench_builds mount-ls "$@" || exit 1
bench_mount_init mount-ls

start_server || exit 1
SERVER="$(member_connect 1)"
# CHILDREN children: the create workload's one session directory.
"$ZN_BENCH" -s "$SERVER" -w create -c 1 -o 64 -n "$CHILDREN" -v 10 -p /m > /dev/null 2>&1 || exit 1
SUB="$("$BUILD/tools/znode" --server "$SERVER" ls /m/c | head -n 1)"
BIG="/m/c/$SUB"

received() { fourlw srvr 1 | awk '/^Received:/ {print $2}'; }
field() { /usr/bin/python3 -c 'import json, sys; d = json.loads(sys.stdin.read().strip().splitlines()[-1]); print("%.0f %.0f" % (d["p50_us"], d["p99_us"]))'; }
load() { cut -d' ' -f1 /proc/loadavg; }

echo "| round | build | C p50 | C p99 | Python p50 | Python p99 | getChildren p50 | getChildren p99 | C/getChildren p50 | server packets per C listing | load 1m |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for r in $(seq 1 "$ROUNDS"); do
  read -r gc50 gc99 <<< "$("$ZN_BENCH" -s "$SERVER" -w ls -c 1 -o 1 -P "$BIG" -n "$N" 2> /dev/null | field)"
  for b in "${BUILDS[@]}"; do
    bench_mount "$b/fs/znodefs" "$ZN_STATE_DIR/mount.log" || exit 1
    recv0="$(received)"
    c_json="$("$DIR_BENCH" -n "$N" "$MNT$BIG")" || exit 1
    recv1="$(received)"
    read -r c50 c99 <<< "$(field <<< "$c_json")"
    read -r p50 p99 <<< "$(/usr/bin/python3 - "$MNT$BIG" "$N" <<'PY'
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
s = []
for _ in range(n):
    t = time.perf_counter_ns()
    os.listdir(path)
    s.append(time.perf_counter_ns() - t)
s.sort()
print("%.0f %.0f" % (s[n // 2] / 1000, s[min(n - 1, int(n * 0.99))] / 1000))
PY
)"
    ratio="$(echo "scale=2; $c50 / $gc50" | bc)"
    per="$(echo "scale=2; ($recv1 - $recv0) / $N" | bc)"
    echo "| $r | $b | $c50 | $c99 | $p50 | $p99 | $gc50 | $gc99 | $ratio | $per | $(load) |"
    bench_unmount
  done
done
