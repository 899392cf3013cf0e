#!/bin/bash
# Smoke test of the load generator (a CTest): start a standalone znoded on a free loopback
# port, run zn_bench's get workload for 1 s against it, and require a successful run with a
# non-zero count of operations.  It checks that the benchmark works, never how fast it is.
#   bench/smoke.sh ZN_BENCH ZNODED
set -u
ZN_BENCH_EXE="$1"
export ZN_ZNODED="$2"
export ZN_TARGET=znoded
source "$(dirname "$0")/../tests/integration/helpers.bash"
ZN_STATE_DIR="$(mktemp -d /tmp/zn-bench-smoke.XXXXXX)"
cleanup() { stop_all; rm -rf "$ZN_STATE_DIR"; }
trap cleanup EXIT

start_server || { echo "FAIL: znoded did not start"; exit 1; }
out="$(timeout 60 "$ZN_BENCH_EXE" -s "$(member_connect 1)" -w get -d 1 --warmup 0 -c 2 -o 4 2>&1)"
rc=$?
echo "$out"
ops="$(sed -n 's/.*"ops":\([0-9]*\),.*/\1/p' <<< "$out")"
if [ "$rc" -ne 0 ] || [ -z "$ops" ] || [ "$ops" -eq 0 ] || ! grep -q '"ok":true' <<< "$out"; then
  echo "FAIL: zn_bench exited $rc with ops='${ops}'"
  exit 1
fi
echo "PASS: zn_bench get ran $ops operations in 1 s"
