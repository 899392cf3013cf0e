#!/usr/bin/env bats
# Sessions and their ephemeral nodes, as another client sees them: an ephemeral node lives exactly
# as long as its owner's session, which survives a server restart within its timeout, ends at once
# on close, and ends by expiry when the owner goes silent.

load helpers

setup() {
  zn_load_bats_libs
  start_server
  HOSTS="$(member_connect 1)"
  STATUS="$BATS_TEST_TMPDIR/owner.status"
}

teardown() {
  stop_all
}

# start_owner PATH TIMEOUT_S: a client process that creates ephemeral PATH and keeps its session.
start_owner() {
  # Run python directly (not through a function) so $! is the client process itself.
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" owner "$HOSTS" "$1" "$2" "$STATUS" > "$BATS_TEST_TMPDIR/owner.out" 2>&1 3>&- &
  OWNER_PID=$!
  zn_track_pid "$OWNER_PID"
  wait_until 60 "the owner to create $1" grep -q -x ready "$STATUS" || {
    cat "$BATS_TEST_TMPDIR/owner.out" >&2; return 1; }
  SESSION="$(sed -n 's/^session=//p' "$STATUS")"
}

node_absent() {
  ! zk_tool exists "$HOSTS" "$1"
}

# last_state: the owner's most recent connection state.
last_state() {
  sed -n 's/^state=//p' "$STATUS" | tail -1
}

owner_reconnected() {
  grep -q -x state=SUSPENDED "$STATUS" && [ "$(last_state)" = CONNECTED ] || { cat "$STATUS"; return 1; }
}

@test "an ephemeral node is visible to other clients and owned by its creator's session" {
  start_owner /eph/visible 10
  run zk_tool owner-of "$HOSTS" /eph/visible
  assert_success
  assert_output "$SESSION"
}

@test "an ephemeral node disappears as soon as its owner closes the session" {
  # A long timeout, so only the close (not expiry) can remove the node within the deadline.
  start_owner /eph/closed 20
  run zk_tool exists "$HOSTS" /eph/closed
  assert_success
  kill -TERM "$OWNER_PID"
  wait_until 10 "/eph/closed to vanish after close" node_absent /eph/closed
  wait_until 10 "the owner to report it closed" grep -q -x closed "$STATUS"
}

@test "an ephemeral node disappears when its frozen owner's session expires" {
  start_owner /eph/expired 4
  run zk_tool exists "$HOSTS" /eph/expired
  assert_success
  kill -STOP "$OWNER_PID"
  wait_until 60 "/eph/expired to vanish after the session timeout" node_absent /eph/expired
  kill -CONT "$OWNER_PID"
  # The owner, woken up, learns that its session is gone.
  wait_until 60 "the owner to see its session LOST" grep -q -x state=LOST "$STATUS"
}

@test "an ephemeral node stays while its owner is alive for several session timeouts" {
  start_owner /eph/kept 2
  local until=$((SECONDS + 7))
  while [ "$SECONDS" -lt "$until" ]; do
    run zk_tool exists "$HOSTS" /eph/kept
    assert_success
  done
  refute grep -q -x state=LOST "$STATUS"
}

@test "an ephemeral node survives kill -9 and restart of the server within the session timeout" {
  start_owner /eph/survivor 15
  kill9_member 1
  restart_member 1
  wait_until 60 "the owner to reconnect with its session" owner_reconnected
  run zk_tool owner-of "$HOSTS" /eph/survivor
  assert_success
  assert_output "$SESSION"
  refute grep -q -x state=LOST "$STATUS"
}
