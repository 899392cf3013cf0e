#!/usr/bin/env bats
# The AdminServer and backup/restore in a 3-member ensemble: each member answers leader,
# voting_view and zabstate about the ensemble as ZooKeeper's Commands.java lays them out; a
# backup taken from a follower under a write load and restored into every member of a new
# ensemble (each seeded from the same file) holds exactly the writes acknowledged up to its
# zxid, and the new ensemble elects a leader and serves writes; a backup restored into one
# member only, started before the two empty others, reaches both of them.

load helpers

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "znoded's ensemble, backup and restore"
  zn_state_init
  ORIGINAL="$ZN_STATE_DIR"
  ADMIN_PORT="$(free_port 127.0.0.1)"
}

teardown() {
  ZN_STATE_DIR="$ORIGINAL" stop_all
  if [ -n "${RESTORED:-}" ]; then ZN_STATE_DIR="$RESTORED" stop_all; fi
}

# configure_members COUNT: the configs of COUNT members in $ZN_STATE_DIR, each with its
# AdminServer on its own address (127.0.0.N) at $ADMIN_PORT; nothing is started.
configure_members() {
  local count="$1" n
  prepare_members "$count"
  for n in $(seq 1 "$count"); do
    write_member_config "$n" "$count" admin.enableServer=true "admin.serverPort=$ADMIN_PORT" \
      "admin.serverAddress=$(member_addr "$n")"
  done
}

launch_members() {
  local n count
  count="$(cat "$(zn_state_dir)/members")"
  for n in $(seq 1 "$count"); do launch_member "$n" || return 1; done
  for n in $(seq 1 "$count"); do wait_ruok "$n" || return 1; done
}

admin() { curl -sf "http://$(member_addr "$1"):$ADMIN_PORT/commands/$2"; }

# a_follower: the number of a member that reports Mode: follower.
a_follower() {
  local n
  for n in 1 2 3; do
    if fourlw srvr "$n" | grep -qx "Mode: follower"; then echo "$n"; return 0; fi
  done
  return 1
}

# A 3-member ensemble and a writer recording each acknowledged write with its zxid in
# $BATS_TEST_TMPDIR/acked; returns once 200 are acknowledged, the writer's PID in WRITER.
start_ensemble_under_load() {
  configure_members 3
  launch_members
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" zxid-writer "$(ensemble_connect)" /load/n 100000 \
    "$BATS_TEST_TMPDIR/acked" > "$BATS_TEST_TMPDIR/writer.log" 2>&1 3>&- &
  WRITER=$!
  zn_track_pid "$WRITER"
  wait_until 60 "the writer's first 200 acknowledged writes" bash -c "[ \$(grep -c . '$BATS_TEST_TMPDIR/acked' 2>/dev/null || echo 0) -ge 200 ]"
}

@test "each member answers leader, voting_view and zabstate about the ensemble" {
  configure_members 3
  launch_members
  local n leaders=0 leader_id
  for n in 1 2 3; do
    run admin "$n" leader
    assert_success
    assert_equal "$(jq -c 'keys' <<< "$output")" '["command","error","is_leader","leader_id","leader_ip"]'
    leader_id="$(jq .leader_id <<< "$output")"
    assert_equal "$(jq -r .leader_ip <<< "$output")" "127.0.0.$leader_id"
    [ "$(jq .is_leader <<< "$output")" = true ] && leaders=$((leaders + 1))
    run admin "$n" voting_view
    assert_equal "$(jq -c '.current_config | keys' <<< "$output")" '["1","2","3"]'
    assert_equal "$(jq -r '.current_config."2"' <<< "$output")" \
      "127.0.0.2:$(cat "$(member_dir 2)/peer_port"):$(cat "$(member_dir 2)/election_port"):participant"
    run admin "$n" zabstate
    assert_equal "$(jq -c '[.voting, .zabstate]' <<< "$output")" '[true,"broadcast"]'
  done
  assert_equal "$leaders" 1
}

@test "a follower's backup under load, restored into every member of a new ensemble, holds exactly the acknowledged writes" {
  start_ensemble_under_load
  local writer=$WRITER
  local follower zxid before
  follower="$(a_follower)"
  run "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect "$follower")" \
    backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  zxid="$(sed -n 's/.* at zxid=\(0x[0-9a-f]*\) .*/\1/p' <<< "$output")"
  before="$(grep -c . "$BATS_TEST_TMPDIR/acked")"
  wait_until 60 "200 more acknowledged writes after the backup" bash -c "[ \$(grep -c . '$BATS_TEST_TMPDIR/acked') -ge $((before + 200)) ]"
  kill "$writer"
  wait "$writer" 2> /dev/null || true
  stop_all

  RESTORED="$BATS_TEST_TMPDIR/restored"
  ZN_STATE_DIR="$RESTORED"
  configure_members 3
  local n
  for n in 1 2 3; do
    run "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$(member_dir "$n")/zoo.cfg"
    assert_success
    assert_output --partial ": zxid=$zxid ("
  done
  launch_members
  run zk_tool check-backup "$(ensemble_connect)" "$BATS_TEST_TMPDIR/acked" "$zxid"
  assert_success
  assert_output --regexp '^acked_before=[0-9]+ acked_after=[0-9]+ present=[0-9]+ problems=0$'
  [ "$(sed -n 's/.* acked_after=\([0-9]*\) .*/\1/p' <<< "$output")" -ge 200 ]
  run "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(ensemble_connect)" create /after-restore x
  assert_success
  # a member answers reads from its own copy: each has it once it applied the write
  for n in 1 2 3; do
    wait_until 30 "member $n to have /after-restore" \
      "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect "$n")" get /after-restore
  done
}

@test "a backup restored into one member of a new ensemble: the members started empty after it take its tree" {
  start_ensemble_under_load
  local writer=$WRITER
  local zxid
  run "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect 1)" \
    backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  zxid="$(sed -n 's/.* at zxid=\(0x[0-9a-f]*\) .*/\1/p' <<< "$output")"
  kill "$writer"
  wait "$writer" 2> /dev/null || true
  stop_all

  RESTORED="$BATS_TEST_TMPDIR/restored"
  ZN_STATE_DIR="$RESTORED"
  configure_members 3
  run "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$(member_dir 1)/zoo.cfg"
  assert_success
  # the restored member first: two empty members started without it would be a quorum
  local n
  launch_member 1
  wait_until 30 "member 1 to answer, looking for its peers" fourlw srvr 1
  for n in 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  wait_until 60 "a leader" leader_of 1 2 3
  run "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(ensemble_connect)" create /after-restore x
  assert_success
  for n in 1 2 3; do
    wait_until 30 "member $n to have /after-restore" \
      "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect "$n")" get /after-restore
    # each member's own copy holds exactly the writes acknowledged up to the backup's zxid
    run zk_tool check-backup "$(member_connect "$n")" "$BATS_TEST_TMPDIR/acked" "$zxid"
    assert_success
    assert_output --regexp '^acked_before=[0-9]+ acked_after=[0-9]+ present=[0-9]+ problems=0$'
  done
}
