#!/usr/bin/env bats
# Durability: a write the server acknowledged survives kill -9 of the server. Four client
# processes each create their own nodes as fast as they can and record a node's name only after
# the server acknowledged its create; the server is killed mid-burst and restarted from the same
# data directory, and every recorded name must be there with its data.

load helpers

WRITERS=4
# Writes each client must have acknowledged before the kill, so the kill lands mid-burst.
ACKED_BEFORE_KILL=150

setup() {
  zn_load_bats_libs
  start_server
  HOSTS="$(member_connect 1)"
  WRITER_PIDS=()
}

teardown() {
  stop_all
}

# start_writers ROUND: start the writer processes for one round.
start_writers() {
  local round="$1" w
  WRITER_PIDS=()
  for w in $(seq 1 "$WRITERS"); do
    : > "$BATS_TEST_TMPDIR/acked.$round.$w"
    "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" writer "$HOSTS" "/durable/r$round/w$w" 1000000 \
      "$BATS_TEST_TMPDIR/acked.$round.$w" > "$BATS_TEST_TMPDIR/writer.$round.$w.log" 2>&1 3>&- &
    WRITER_PIDS+=($!)
    zn_track_pid $!
  done
}

# writers_have_acked ROUND N: every writer of ROUND has at least N acknowledged writes.
writers_have_acked() {
  local round="$1" want="$2" w count
  for w in $(seq 1 "$WRITERS"); do
    count=$(wc -l < "$BATS_TEST_TMPDIR/acked.$round.$w")
    if [ "$count" -lt "$want" ]; then
      echo "writer $w has $count acknowledged writes"
      cat "$BATS_TEST_TMPDIR/writer.$round.$w.log"
      return 1
    fi
  done
}

# stop_writers: end the writer processes (they may be blocked reconnecting to a dead server).
stop_writers() {
  local pid
  for pid in "${WRITER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${WRITER_PIDS[@]}"; do
    wait_until 30 "writer $pid to exit" bash -c "! kill -0 $pid 2>/dev/null || grep -q ' Z ' /proc/$pid/stat"
    wait "$pid" 2>/dev/null || true
  done
}

# crash_mid_burst ROUND: run the writers until each has acknowledged enough, then kill -9 the
# server while they are still writing.
crash_mid_burst() {
  local round="$1" pid
  start_writers "$round"
  wait_until 180 "every writer to have $ACKED_BEFORE_KILL acknowledged writes" \
    writers_have_acked "$round" "$ACKED_BEFORE_KILL"
  for pid in "${WRITER_PIDS[@]}"; do
    pid_alive "$pid" || fail "writer $pid finished before the kill: not a mid-burst crash"
  done
  kill9_member 1
  stop_writers
}

@test "every write acknowledged before kill -9 of the server is there after restart" {
  crash_mid_burst 1
  restart_member 1
  run zk_tool check-acked "$HOSTS" "$BATS_TEST_TMPDIR"/acked.1.*
  assert_success
  assert_output --partial "missing=0 wrong=0"
}

@test "writes acknowledged across two crashes in a row all survive" {
  crash_mid_burst 1
  restart_member 1
  # The second burst appends to a log recovered from the first crash.
  crash_mid_burst 2
  restart_member 1
  run zk_tool check-acked "$HOSTS" "$BATS_TEST_TMPDIR"/acked.1.* "$BATS_TEST_TMPDIR"/acked.2.*
  assert_success
  assert_output --partial "missing=0 wrong=0"
}

@test "acknowledged writes survive a clean stop and restart" {
  start_writers 1
  wait_until 180 "every writer to have 50 acknowledged writes" writers_have_acked 1 50
  stop_writers
  stop_member 1
  restart_member 1
  run zk_tool check-acked "$HOSTS" "$BATS_TEST_TMPDIR"/acked.1.*
  assert_success
  assert_output --partial "missing=0 wrong=0"
}
