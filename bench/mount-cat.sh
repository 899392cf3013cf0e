#!/bin/bash
# bench/mount-cat.sh: a cached read of a small file through the znodefs mount beside a getData
# through libznode (issue 18: at most 1.3x), for one or more builds of the mount interleaved
# round by round on one standalone znoded (A/B: same server, same load). Data, never a test.
#
#   bench/mount-cat.sh [-r ROUNDS] [-n N] [-s VALUE_BYTES] BUILD [BUILD...]
#
# Per round and build: mount with BUILD's znodefs, then N times each
#   python   open(f, "rb").read() and close, as bench/compare's mount phase times it
#   os calls open, fstat, ioctl(TCGETS), read, read at EOF, close (the syscalls Python's open and
#            read make), each timed apart: the p50 of each column, and of the whole
# and once per round zn_bench's getData (1 session, 1 outstanding, N times). Once per build,
# the FUSE requests per Python read from a debug (-d) mount's log: counts, load-independent.
# p50 in us; the 1-minute load average is printed with each row.
# Environment: ZN_BUILD_DIR (default build: its znoded, zn_bench), ZN_PORT_MIN/MAX.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=3
N=3000
VALUE_BYTES=100
while getopts "r:n:s:" opt; do
  case "$opt" in
    r) ROUNDS="$OPTARG" ;;
    n) N="$OPTARG" ;;
    s) VALUE_BYTES="$OPTARG" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,16p' "$0"; exit 2; }
export ZN_BUILD_DIR="${ZN_BUILD_DIR:-build}"
# shellcheck source=../tests/integration/helpers.bash
source "$ROOT/tests/integration/helpers.bash"
BUILD="$ROOT/$ZN_BUILD_DIR"
ZN_BENCH="$BUILD/bench/zn_bench"
# shellcheck source=mount-lib.bash
source "$ROOT/bench/mount-lib.bash"
bench_need mount-cat "$ZN_BENCH" "$ZN_ZNODED" || exit 1
bench_builds mount-cat "$@" || exit 1
bench_mount_init mount-cat

start_server || exit 1
SERVER="$(member_connect 1)"
"$BUILD/tools/znode" --server "$SERVER" create /small "$(head -c "$VALUE_BYTES" /dev/zero | tr '\0' x)" > /dev/null || exit 1
FILE="$MNT/small"
load() { cut -d' ' -f1 /proc/loadavg; }

# The Python reader, then the same syscalls one by one (os calls and fcntl.ioctl, each timed).
read_loops() {
  /usr/bin/python3 - "$FILE" "$N" <<'PY'
import fcntl, os, sys, termios, time
path, n = sys.argv[1], int(sys.argv[2])
p50 = lambda s: sorted(s)[len(s) // 2] / 1000
py = []
for _ in range(n):
    t = time.perf_counter_ns()
    with open(path, "rb") as f:
        f.read()
    py.append(time.perf_counter_ns() - t)
cols = [[] for _ in range(7)]
for _ in range(n):
    t = [time.perf_counter_ns()]
    fd = os.open(path, os.O_RDONLY); t.append(time.perf_counter_ns())
    size = os.fstat(fd).st_size; t.append(time.perf_counter_ns())
    try:
        fcntl.ioctl(fd, termios.TCGETS, bytes(64))
    except OSError:
        pass
    t.append(time.perf_counter_ns())
    os.read(fd, size + 1); t.append(time.perf_counter_ns())
    os.read(fd, 1); t.append(time.perf_counter_ns())
    os.close(fd); t.append(time.perf_counter_ns())
    for i in range(6):
        cols[i].append(t[i + 1] - t[i])
    cols[6].append(t[6] - t[0])
print("%.1f %s" % (p50(py), " ".join("%.1f" % p50(c) for c in cols)))
PY
}

echo "FUSE requests per Python open+read+close (debug mount, 100 reads):"
for b in "${BUILDS[@]}"; do
  : > "$ZN_STATE_DIR/debug.log"
  bench_mount "$b/fs/znodefs" "$ZN_STATE_DIR/debug.log" -d || exit 1
  cat "$FILE" > /dev/null
  : > "$ZN_STATE_DIR/debug.log"
  /usr/bin/python3 -c '
import sys
for _ in range(100):
    with open(sys.argv[1], "rb") as f:
        f.read()' "$FILE"
  bench_unmount
  echo "  $b: $(grep -o 'opcode: [A-Z_]*' "$ZN_STATE_DIR/debug.log" | sort | uniq -c | awk '{printf "%s %.2f  ", $3, $1 / 100}')"
done
echo
echo "| round | build | Python p50 | getData p50 | Python/getData | os.open | fstat | ioctl | read | read EOF | close | os calls whole | load 1m |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for r in $(seq 1 "$ROUNDS"); do
  gd="$("$ZN_BENCH" -s "$SERVER" -w get -c 1 -o 1 -P /small -n "$N" 2> /dev/null |
    /usr/bin/python3 -c 'import json, sys; print("%.1f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["p50_us"])')"
  for b in "${BUILDS[@]}"; do
    bench_mount "$b/fs/znodefs" "$ZN_STATE_DIR/mount.log" || exit 1
    cat "$FILE" > /dev/null
    read -r py o st io rd eof cl whole <<< "$(read_loops)"
    echo "| $r | $b | $py | $gd | $(echo "scale=2; $py / $gd" | bc) | $o | $st | $io | $rd | $eof | $cl | $whole | $(load) |"
    bench_unmount
  done
done
