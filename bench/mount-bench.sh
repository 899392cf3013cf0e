#!/bin/bash
# bench/mount-bench.sh: how much slower reading a small file through the znodefs mount is than a
# getData through libznode, on a local 3-member znoded ensemble. Writes
# bench/results/mount-latest.md (data, never a test assertion).
#
#   bench/mount-bench.sh [-n N] [-s VALUE_BYTES] [-o OUTPUT.md]
#
# Like with like: one read of one small value over an already open session, from a process
# that was already running. Measured:
#   mount-read   a python loop of open/read/close on the mounted file (no process spawn)
#   getData      zn_bench --workload get, 1 session, 1 outstanding (a closed loop on libznode)
#   cat          N runs of `cat FILE` (includes fork+exec), next to N runs of `cat` on a tmpfs
#                file, so the spawn cost can be subtracted
# plus, per mount read, the FUSE requests the kernel sent and the ZooKeeper requests the mount
# made (from the mount's debug log), to show where round trips go.
# Environment: ZN_BUILD_DIR (default build), as the tests use it.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N=2000
VALUE_BYTES=64
OUT="$ROOT/bench/results/mount-latest.md"
while getopts "n:s:o:" opt; do
  case "$opt" in
    n) N="$OPTARG" ;;
    s) VALUE_BYTES="$OPTARG" ;;
    o) OUT="$OPTARG" ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
export ZN_BUILD_DIR="${ZN_BUILD_DIR:-build}"
# shellcheck source=../tests/integration/helpers.bash
source "$ROOT/tests/integration/helpers.bash"
BUILD="$ROOT/$ZN_BUILD_DIR"
ZNODEFS="$BUILD/fs/znodefs"
ZN_BENCH="$BUILD/bench/zn_bench"
for bin in "$ZNODEFS" "$ZN_BENCH" "$ZN_ZNODED"; do
  [ -x "$bin" ] || { echo "mount-bench: $bin not built" >&2; exit 1; }
done

# shellcheck source=mount-lib.bash
source "$ROOT/bench/mount-lib.bash"
bench_mount_init mount-bench

start_ensemble 3 || exit 1
wait_until 30 "the ensemble to serve" member_is_serving 1 || exit 1
bench_mount "$ZNODEFS" "$ZN_STATE_DIR/mount.log" || exit 1

FILE="$MNT/bench-value"
head -c "$VALUE_BYTES" /dev/zero | tr '\0' x > "$FILE"
LOCAL="$ZN_STATE_DIR/local-value"
cp "$FILE" "$LOCAL"

# us_per_op START_NS END_NS COUNT
us_per_op() { echo "scale=1; ($2 - $1) / 1000 / $3" | bc; }

# mount-read: open/read/close in one process, with os.open/os.read (no isatty ioctl, no fstat:
# the syscalls a reader needs, as zn_bench needs one getData). Prints "mean p50" in us.
read_loop() {
  /usr/bin/python3 - "$1" "$N" <<'PY'
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
def once():
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, 65536)
    os.close(fd)
for _ in range(50):
    once()
lat = []
for _ in range(n):
    t = time.monotonic_ns()
    once()
    lat.append(time.monotonic_ns() - t)
lat.sort()
print("%.1f %.1f" % (sum(lat) / n / 1000, lat[n // 2] / 1000))
PY
}
read -r mount_read_mean mount_read_p50 <<< "$(read_loop "$FILE")"
read -r local_read_mean local_read_p50 <<< "$(read_loop "$LOCAL")"

cat_loop() {
  local i t0 t1
  for i in $(seq 1 50); do cat "$1" > /dev/null; done
  t0=$(date +%s%N)
  for i in $(seq 1 "$N"); do cat "$1" > /dev/null; done
  t1=$(date +%s%N)
  us_per_op "$t0" "$t1" "$N"
}
mount_cat_us="$(cat_loop "$FILE")"
local_cat_us="$(cat_loop "$LOCAL")"

get_json="$("$ZN_BENCH" --server "$(member_connect 1)" --workload get --sessions 1 --outstanding 1 \
  --ops "$N" --warmup 0.5 --path /bench-value 2>/dev/null)"
read -r get_mean_us get_p50_us <<< "$(echo "$get_json" | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
print(d["mean_us"], d["p50_us"])')"

# Round trips of one cat, from a fresh debug mount (the cat above ran on a warm one).
# debug: the mount logs every FUSE request and ZooKeeper request it makes, counted below.
bench_unmount
bench_mount "$ZNODEFS" "$ZN_STATE_DIR/debug.log" -d || exit 1
cat "$FILE" > /dev/null # first cat: lookup, caches warm up
sleep 0.2
mark=$(wc -l < "$ZN_STATE_DIR/debug.log")
received() { fourlw srvr 1 | awk '/^Received:/ {print $2}'; }
recv0="$(received)"
ROUNDS=20
for i in $(seq 1 "$ROUNDS"); do cat "$FILE" > /dev/null; done
recv1="$(received)"
sleep 0.2
tail -n +"$((mark + 1))" "$ZN_STATE_DIR/debug.log" > "$ZN_STATE_DIR/debug-window.log"
fuse_ops="$(grep -oE 'unique: [0-9]+, opcode: [A-Z_]+' "$ZN_STATE_DIR/debug-window.log" | awk '{print $4}' | sort | uniq -c | awk -v r="$ROUNDS" '{printf "%s %.2f, ", $2, $1 / r}')"
# Packets member 1 received during the cats (the mount is its only client; the srvr
# connection itself and any ping count too, so this is an upper bound).
zk_reqs=$((recv1 - recv0))

ratio_p50="$(echo "scale=2; $mount_read_p50 / $get_p50_us" | bc 2>/dev/null || echo '?')"
ratio_mean="$(echo "scale=2; $mount_read_mean / $get_mean_us" | bc 2>/dev/null || echo '?')"
cat_net="$(echo "scale=1; $mount_cat_us - $local_cat_us" | bc)"
mkdir -p "$(dirname "$OUT")"
{
  echo "# znodefs mount read latency vs libznode getData"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, 3-member znoded ensemble on loopback,"
  echo "mount and clients on member 1, value $VALUE_BYTES bytes, N=$N. Command: \`bench/mount-bench.sh -n $N -s $VALUE_BYTES\`."
  echo "Means in microseconds per operation. Data, not a test: timings vary with load on the machine."
  echo
  echo "| what | mean us/op | p50 us/op |"
  echo "|---|---|---|"
  echo "| libznode getData (zn_bench get, 1 session, 1 outstanding) | $get_mean_us | $get_p50_us |"
  echo "| mount: open+read+close in one process | $mount_read_mean | $mount_read_p50 |"
  echo "| local tmpfs: open+read+close in one process (baseline) | $local_read_mean | $local_read_p50 |"
  echo "| mount: \`cat FILE\` (includes fork+exec) | $mount_cat_us | |"
  echo "| local tmpfs: \`cat FILE\` (fork+exec baseline) | $local_cat_us | |"
  echo "| mount \`cat\` less the spawn baseline | $cat_net | |"
  echo
  echo "Mount read / getData: **${ratio_p50}x** at the median, ${ratio_mean}x on means (target: within 2x)."
  echo
  echo "Per warm \`cat\` ($ROUNDS rounds, debug mount): FUSE requests per cat: ${fuse_ops%, }; ZooKeeper"
  echo "packets per cat (server-side Received count, an upper bound): $(echo "scale=2; $zk_reqs / $ROUNDS" | bc)."
} > "$OUT"
cat "$OUT"
