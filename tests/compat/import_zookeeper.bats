#!/usr/bin/env bats
# znoded --import-zookeeper against the data directory of a real Apache ZooKeeper 3.8 (Debian's):
# ZooKeeper gets a tree through kazoo (tests/compat/zk_import.py: ACLs, sequentials, sets,
# deletes, multis, containers, TTL nodes, ephemerals of a session left open) with a small snapCount
# (several snapshots and logs), is stopped, its data directory is imported, znoded starts on the
# store, and every node's data, ACL and stat read through kazoo equals what ZooKeeper served.

load ../integration/helpers

ZK_IMPORT="$ZN_REPO_ROOT/tests/compat/zk_import.py"

setup() {
  zn_load_bats_libs
  zn_state_init
}

teardown() {
  stop_all
}

# zk_run_workload [zoo.cfg lines...]: a standalone ZooKeeper with those lines gets the workload
# and is stopped while the workload's held session is open. Leaves $ZK_DATA, $ZK_DATALOG and
# $EXPECTED (what ZooKeeper served).
zk_run_workload() {
  local pid
  ZN_TARGET=zookeeper start_server snapCount=200 extendedTypesEnabled=true \
    znode.container.checkIntervalMs=3600000 maxSessionTimeout=60000 "$@"
  ZK_DATA="$(member_dir 1)/data"
  ZK_DATALOG="$(member_dir 1)/datalog"
  EXPECTED="$(zn_state_dir)/expected.json"
  "$ZN_PYTHON" "$ZK_IMPORT" workload "$(member_connect 1)" "$EXPECTED" "$(zn_state_dir)/ready" \
    "${ZK_IMPORT_NODES:-2000}" > "$(zn_state_dir)/workload.log" 2>&1 &
  pid=$!
  zn_track_pid "$pid"
  wait_until 300 "the workload to finish" \
    bash -c "test -s '$(zn_state_dir)/ready' || ! kill -0 $pid 2>/dev/null"
  test -s "$(zn_state_dir)/ready" || { cat "$(zn_state_dir)/workload.log"; return 1; }
  # ZooKeeper first, so the held session is still open in its data when it stops.
  stop_member 1
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
}

# znoded_member_from_import: member 1's config rewritten for znoded, with fresh directories.
znoded_config() {
  local dir
  dir="$(member_dir 1)"
  mv "$dir" "$dir.zookeeper"
  ZK_DATA="$dir.zookeeper/data"
  ZK_DATALOG="$dir.zookeeper/datalog"
  prepare_members 1
  write_member_config 1 1 maxSessionTimeout=60000
}

@test "a ZooKeeper 3.8 tree imports with every node's data, ACL and stat as ZooKeeper served it" {
  zk_run_workload
  ls "$ZK_DATA/version-2" "$ZK_DATALOG/version-2"
  local snapshots logs
  snapshots="$(ls "$ZK_DATA/version-2" | grep -c '^snapshot\.')"
  logs="$(ls "$ZK_DATALOG/version-2" | grep -c '^log\.')"
  [ "$snapshots" -ge 3 ] || { echo "only $snapshots snapshots"; false; }
  [ "$logs" -ge 3 ] || { echo "only $logs logs"; false; }
  znoded_config
  run "$ZN_ZNODED" --import-zookeeper "$ZK_DATA:$ZK_DATALOG" "$(member_dir 1)/zoo.cfg"
  echo "$output"
  assert_success
  assert_line --regexp "^znoded: imported .* zxid=0x[0-9a-f]+ epoch=[0-9]+ nodes=[0-9]+ sessions=[0-9]+ ephemerals=3$"
  launch_member 1
  wait_ruok 1
  run "$ZN_PYTHON" "$ZK_IMPORT" compare "$(member_connect 1)" "$EXPECTED"
  echo "$output"
  assert_success
  assert_line --regexp "^nodes=[0-9]+ compared, 0 differences, held ephemerals=3$"
  run "$ZN_PYTHON" "$ZK_IMPORT" ephemerals-gone "$(member_connect 1)" "$EXPECTED" 90
  echo "$output"
  assert_success
}
