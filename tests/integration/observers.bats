#!/usr/bin/env bats
# Observers (server.N=...:observer): non-voting members that receive every committed write and
# serve reads, and never count toward a quorum.

load helpers

setup() {
  zn_load_bats_libs
}

teardown() {
  stop_all
}

mode_of() { fourlw srvr "$1" | sed -n 's/^Mode: //p'; }
mode_is() { [ "$(mode_of "$1")" = "$2" ] || { echo "member $1 is '$(mode_of "$1")'"; return 1; }; }
not_leading() { ! mode_is "$1" leader >/dev/null; }
some_leader() { mode_is 1 leader >/dev/null || mode_is 2 leader; }
observer_reads() { [ "$(zk_tool get "$(member_connect 3)" "$1" 2>&1)" = "$2" ]; }

@test "an observer serves the ensemble's writes and forwards its own" {
  ZN_OBSERVERS="3" start_ensemble 3
  wait_until 60 "member 3 to observe" mode_is 3 observer
  zk_tool create "$(member_connect 1)" /obs/from-voter one
  wait_until 30 "the observer to serve the voter's write" observer_reads /obs/from-voter one
  zk_tool create "$(member_connect 3)" /obs/from-observer two
  run zk_tool get "$(member_connect 1)" /obs/from-observer
  assert_output two
}

@test "2 voters and an observer cannot commit with one voter down" {
  ZN_OBSERVERS="3" start_ensemble 3 "tickTime=500" "syncLimit=4"
  wait_until 60 "member 3 to observe" mode_is 3 observer
  leader=1; mode_is 2 leader >/dev/null && leader=2
  other=$((3 - leader))
  kill9_member "$other"
  # The leader alone (one of two voters) is no quorum, observer or not.
  wait_until 60 "the lone voter to stop leading" not_leading "$leader"
  run timeout 30 "$ZN_PYTHON" -c "
from kazoo.client import KazooClient
zk = KazooClient(hosts='$(member_connect "$leader"),$(member_connect 3)', timeout=4)
try:
    zk.start(timeout=8)
    zk.create('/obs/without-quorum', b'x')
    print('committed')
except Exception as e:
    print('refused: %s' % type(e).__name__)"
  refute_output committed
  restart_member "$other"
  wait_until 60 "a leader again" some_leader
  run zk_tool exists "$(ensemble_connect)" /obs/without-quorum
  assert_failure
}

@test "the leader's AdminServer lists the observer it syncs; a follower lists none" {
  local port n leader follower
  port="$(free_port 127.0.0.1)"
  export ZN_OBSERVERS="3"
  prepare_members 3
  for n in 1 2 3; do
    # each member's AdminServer on its own address, at the same port
    write_member_config "$n" 3 admin.enableServer=true "admin.serverPort=$port" \
      "admin.serverAddress=$(member_addr "$n")"
  done
  for n in 1 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  wait_until 60 "member 3 to observe" mode_is 3 observer
  wait_until 60 "a leader" some_leader
  leader=1; mode_is 2 leader >/dev/null && leader=2
  follower=$((3 - leader))
  wait_until 30 "the leader to list its observer" bash -c \
    "curl -sf http://$(member_addr "$leader"):$port/commands/observers | jq -e '.synced_observers == 1'"
  run bash -c "curl -sf http://$(member_addr "$leader"):$port/commands/observers | jq -c '[.synced_observers, [.observers[].sid], .error]'"
  assert_output '[1,[3],null]'
  run bash -c "curl -sf http://$(member_addr "$follower"):$port/commands/obsr | jq -c '[.command, .synced_observers, .observers]'"
  assert_output '["observers",0,[]]'
}
