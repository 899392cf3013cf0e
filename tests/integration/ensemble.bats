#!/usr/bin/env bats
# A 3-member ensemble (each member on its own 127.0.0.N): writes replicate to every member, and
# the service survives kill -9 of a member, which catches up when it comes back. Runs against
# ZooKeeper and znoded alike.

load helpers

setup() {
  zn_load_bats_libs
  start_ensemble 3
}

teardown() {
  stop_all
}

# reads_value MEMBER PATH VALUE: member MEMBER serves PATH with VALUE.
reads_value() {
  local got
  got="$(zk_tool get "$(member_connect "$1")" "$2" 2>&1)" || { echo "$got"; return 1; }
  [ "$got" = "$3" ] || { echo "member $1 has '$got'"; return 1; }
}

leader_count() {
  local n count=0
  for n in 1 2 3; do
    fourlw srvr "$n" | grep -q -x 'Mode: leader' && count=$((count + 1))
  done
  [ "$count" -eq 1 ] || { echo "$count leaders"; return 1; }
}

@test "exactly one member of a fresh ensemble is the leader" {
  wait_until 60 "one leader" leader_count
}

@test "a write through one member is read from every member" {
  zk_tool create "$(member_connect 1)" /replicated value-1
  for n in 1 2 3; do
    wait_until 30 "member $n to serve /replicated" reads_value "$n" /replicated value-1
  done
}

@test "the ensemble keeps taking writes with one member killed, and the member catches up" {
  kill9_member 3
  zk_tool create "$(ensemble_connect)" /while-down written
  restart_member 3
  wait_until 60 "member 3 to catch up" reads_value 3 /while-down written
}
