#!/usr/bin/env bats
# Read-only mode (readonlymode.enabled=true): a member that has lost its quorum keeps serving
# reads to clients that asked for read-only sessions, refuses their writes with NOTREADONLY,
# refuses clients that did not ask, and ends read-only sessions when the quorum is back.

load helpers

setup() {
  zn_load_bats_libs
  start_ensemble 3 "readonlymode.enabled=true" "tickTime=500" "syncLimit=4"
}

teardown() {
  stop_all
}

isro_is() { [ "$(fourlw isro 3)" = "$1" ] || { echo "isro says '$(fourlw isro 3)'"; return 1; }; }

@test "a member without a quorum serves reads to read-only clients and refuses their writes" {
  zk_tool create "$(ensemble_connect)" /ro/config "stable"
  wait_until 30 "member 3 to have the data" bash -c "[ \"\$($ZN_PYTHON $ZN_LIB_DIR/zk_tool.py get $(member_connect 3) /ro/config)\" = stable ]"
  kill9_member 1
  kill9_member 2
  wait_until 60 "member 3 to go read-only" isro_is ro
  run "$ZN_PYTHON" -c "
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
zk = KazooClient(hosts='$(member_connect 3)', read_only=True); zk.start(timeout=30)
print(zk.get('/ro/config')[0].decode())
try:
    zk.create('/ro/new', b'x'); print('write accepted')
except NotReadOnlyCallError:
    print('write refused: not read-only call')
zk.stop()"
  assert_success
  assert_line "stable"
  assert_line "write refused: not read-only call"
  # A client that did not ask for read-only is not served.
  run timeout 20 "$ZN_PYTHON" -c "
from kazoo.client import KazooClient
zk = KazooClient(hosts='$(member_connect 3)'); zk.start(timeout=5)"
  assert_failure
  restart_member 1
  restart_member 2
  wait_until 60 "member 3 to serve read-write again" isro_is rw
  zk_tool create "$(member_connect 3)" /ro/after back
  run zk_tool get "$(member_connect 1)" /ro/after
  assert_output back
}
