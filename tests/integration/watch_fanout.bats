#!/usr/bin/env bats
# Watch fan-out (issue 18): many sessions watching one node. The server encodes one event frame
# per trigger and copies it to every watcher (bench/PROFILE.md 16); these check, over raw
# sockets (tests/lib/watchfan.py), that each watcher still reads exactly its events, byte for
# byte as ZooKeeper sends them, before the data of its next read, in zxid order, and that a
# watcher that stops reading or resets its connection takes nothing from the others.

load helpers

setup() {
  zn_load_bats_libs
}

teardown() {
  stop_all
}

watchfan() { # MEMBER COMMAND ARGS...
  local m="$1"; shift
  run "$ZN_PYTHON" "$ZN_LIB_DIR/watchfan.py" "$(member_addr "$m")" "$(member_port "$m")" "$@"
}

@test "50 watchers of one node each read exactly one event per set, then the new value; a multi's two changes arrive in order" {
  start_server
  watchfan 1 fanout 50 3
  assert_success
  assert_output "fanout: watchers=50 rounds=3 events_ok=150 wrong=0 multi_ok=50"
}

@test "watchers on a follower of 3 members each read exactly one event per set" {
  start_ensemble 3
  wait_until 60 "a leader" leader_of 1 2 3
  local leader follower
  leader="$(leader_of 1 2 3)"
  follower=$(( leader == 1 ? 2 : 1 ))
  watchfan "$follower" fanout 20 2
  assert_success
  assert_output "fanout: watchers=20 rounds=2 events_ok=40 wrong=0 multi_ok=20"
}

@test "a watcher that never reads and one that resets its connection take no event from the others" {
  start_server
  watchfan 1 slow 20 3
  assert_success
  assert_output "slowfan: watchers=20 sets=3 all_events=20 wrong=0"
  run fourlw ruok
  assert_output imok
}
