#!/bin/bash
# The fault-injection run (issue 6): start a 5-member znoded ensemble on 127.0.0.1-5, run the
# workloads of tests/faults/runner.py against it while nemeses inject faults (kill -9, pauses,
# iptables partitions, a full disk, a truncated store), heal, check every history, write the
# report and print one TAP line per check.
#
#   tests/faults/run.sh [--seconds N] [--seed S] [--report FILE] [--nemeses LIST]
#                       [--planted-bug stale-sync] [--window-bounds KIND=S,...]
#
#   --seconds N     how long the workload and nemeses run (default 120; the long run: 1800)
#   --seed S        the schedule's seed (default: random, printed so a run can be repeated)
#   --report FILE   where the report goes (default <build>/test-logs/faults-report.md)
#   --planted-bug B builds in the test-only bug B (zoo.cfg znodefs.testOnly.plantedBug) and
#                   passes only if the checker catches it (with 5 extra clients that only read)
#   --window-bounds B  the most seconds a fault of each kind may stop every write, over the
#                   defaults in runner.py's WINDOW_BOUNDS: "kill-leader=4,pause-follower=off"
#                   (off: reported, not bounded; "*=S": every kind). Also $ZN_FAULTS_WINDOW_BOUNDS.
#                   Each fault's window (first failed or stalled write to the first success
#                   after it, across the write clients) is in the report with its distribution
#                   per kind; one TAP line per kind injected fails when a window exceeds its bound.
# Needs root for iptables and the tmpfs (without root, those nemeses are left out). The server is
# $ZN_ZNODED or <repo>/${ZN_BUILD_DIR:-build}/daemon/znoded. Everything started is stopped by
# PID, every iptables rule tagged by this run is removed, the tmpfs is unmounted, on any exit.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECONDS_RUN=120
SEED=""
REPORT=""
NEMESES="kill,pause,partition,disk,truncate"
PLANTED=""
WINDOW_BOUNDS="${ZN_FAULTS_WINDOW_BOUNDS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_RUN="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --report) REPORT="$2"; shift 2 ;;
    --nemeses) NEMESES="$2"; shift 2 ;;
    --planted-bug) PLANTED="$2"; shift 2 ;;
    --window-bounds) WINDOW_BOUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$SECONDS_RUN" in ''|*[!0-9]*) echo "run.sh: --seconds wants a number" >&2; exit 2 ;; esac
[ -n "$SEED" ] || SEED=$(( (RANDOM << 15) | RANDOM ))

# shellcheck source=../integration/helpers.bash
source "$ROOT/tests/integration/helpers.bash"
BUILD_DIR="$ROOT/${ZN_BUILD_DIR:-build}"
LOG_DIR="$BUILD_DIR/test-logs"
OUT="$LOG_DIR/faults${PLANTED:+-planted-$PLANTED}"
[ -n "$REPORT" ] || REPORT="$LOG_DIR/faults-report${PLANTED:+-planted-$PLANTED}.md"
rm -rf "$OUT"
mkdir -p "$OUT"
TAG="znodefs-faults-$$"
ZN_STATE_DIR="$(mktemp -d /tmp/zn-faults.XXXXXX)"
export ZN_STATE_DIR
TMPFS=""
DISK_MEMBER=5

# stop_all (helpers.bash) stops only processes still this run's: all_pids holds each pid with
# its start time, since over a long run with a hundred restarts some old pids are reused by
# unrelated processes (the first 30-minute run after the store fix SIGKILLed one).
cleanup() {
  stop_all
  if command -v iptables >/dev/null 2>&1; then
    local spec
    while spec="$(iptables -S INPUT 2>/dev/null | grep -F -- "$TAG" | head -1)" && [ -n "$spec" ]; do
      # shellcheck disable=SC2086
      iptables ${spec/-A INPUT/-D INPUT} || break
    done
  fi
  # keep the members' logs next to the report
  for d in "$ZN_STATE_DIR"/m*; do
    [ -f "$d/server.log" ] && cp "$d/server.log" "$OUT/$(basename "$d")-server.log"
  done
  if [ -n "$TMPFS" ]; then umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null; fi
  rm -rf "$ZN_STATE_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# faults: seed=$SEED seconds=$SECONDS_RUN state=$ZN_STATE_DIR report=$REPORT${PLANTED:+ planted-bug=$PLANTED}"
zn_check_target || { echo "1..1"; echo "not ok 1 - znoded is not built ($ZN_ZNODED)"; exit 1; }
if [ "$(id -u)" = 0 ] && iptables -S INPUT >/dev/null 2>&1; then :; else
  echo "# not root or no iptables: partitions left out"
  NEMESES="${NEMESES//partition/}"
fi
# The disk-full nemesis fills a small tmpfs that holds one member's dataDir and dataLogDir
# (256 MiB: a 30-minute run's store grows past 64 MiB, and a smaller one stays full for good).
# Only those two: the member's server.log stays on the state directory's disk, so the line it
# writes on its way out of a full disk is whole (with the log on the tmpfs too, a FATAL line
# was cut short and the checker could not tell the expected exit from a crash).
if [ "$(id -u)" = 0 ] && mkdir -p "$ZN_STATE_DIR/m$DISK_MEMBER" "$ZN_STATE_DIR/disk$DISK_MEMBER" &&
   mount -t tmpfs -o size=256m tmpfs "$ZN_STATE_DIR/disk$DISK_MEMBER" 2>/dev/null; then
  TMPFS="$ZN_STATE_DIR/disk$DISK_MEMBER"
  mkdir -p "$TMPFS/data" "$TMPFS/datalog"
  ln -s "$TMPFS/data" "$ZN_STATE_DIR/m$DISK_MEMBER/data"
  ln -s "$TMPFS/datalog" "$ZN_STATE_DIR/m$DISK_MEMBER/datalog"
  DISK_ARGS=(--disk-member "$DISK_MEMBER")
else
  echo "# cannot mount a tmpfs: the disk-full nemesis is left out"
  NEMESES="${NEMESES//disk/}"
  DISK_ARGS=()
fi
EXTRA=()
[ -n "$PLANTED" ] && EXTRA+=("znodefs.testOnly.plantedBug=$PLANTED")
# preAllocSize=64 (KB): log segments of about 400 of the workload's records, so that segments
# start, are compacted and are recycled (store_wal.h) hundreds of times a run, under the faults,
# not once or never as with the default 64 MB.
if ! start_ensemble 5 tickTime=500 initLimit=10 syncLimit=4 snapCount=5000 preAllocSize=64 \
       minSessionTimeout=1000 maxSessionTimeout=10000 "${EXTRA[@]}"; then
  echo "1..1"; echo "not ok 1 - the 5-member ensemble did not start"; exit 1
fi
wait_until 60 "a leader" bash -c 'for n in 1 2 3 4 5; do
  printf srvr | timeout 5 nc -N -w 3 127.0.0.$n "$(cat "$ZN_STATE_DIR/m$n/port")" | grep -q "^Mode: leader" && exit 0; done; exit 1' ||
  { echo "1..1"; echo "not ok 1 - no leader was elected"; exit 1; }

RUNNER_ARGS=(run --state-dir "$ZN_STATE_DIR" --members 5 --seconds "$SECONDS_RUN" --seed "$SEED"
             --out "$OUT" --report "$REPORT" --nemeses "$NEMESES" --tag "$TAG" "${DISK_ARGS[@]}"
             --window-bounds "$WINDOW_BOUNDS")
if [ -n "$PLANTED" ]; then
  RUNNER_ARGS+=(--expect-anomaly --planted-bug "$PLANTED" --min-fault-kinds 0 --readers 5)
fi
"$ZN_PYTHON" "$ROOT/tests/faults/runner.py" "${RUNNER_ARGS[@]}"
rc=$?
echo "# report: $REPORT (seed $SEED; repeat with: tests/faults/run.sh --seconds $SECONDS_RUN --seed $SEED${PLANTED:+ --planted-bug $PLANTED})"
exit $rc
