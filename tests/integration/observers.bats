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
