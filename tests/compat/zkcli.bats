#!/usr/bin/env bats
# zkCli.sh, ZooKeeper's own shell (Debian's zookeeper package), against the server under test:
# the commands an operator types and the output they read. One server for the whole file; each
# test works under its own path.

load ../integration/helpers

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  start_ensemble "${ZN_ENSEMBLE:-1}"
  export ZKCLI_SERVER="$(member_connect 1)"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  BASE="/zkcli-$BATS_TEST_NUMBER"
}

# zkcli CMD...: run one zkCli.sh command; output (stdout and stderr) without the JVM's logging
# noise and the connection banner.
zkcli() {
  local out rc
  out="$("$ZN_ZKCLI" -server "$ZKCLI_SERVER" "$@" 2>&1 < /dev/null)" && rc=0 || rc=$?
  grep -v -E '^(SLF4J:|Connecting to |WATCHER::|WatchedEvent state:|$)' <<< "$out" || true
  return "$rc"
}

@test "zkCli create reports the created path and get prints the data" {
  run zkcli create "$BASE" hello
  assert_success
  assert_output "Created $BASE"
  run zkcli get "$BASE"
  assert_success
  assert_output "hello"
}

@test "zkCli set changes the data and stat shows the new version" {
  zkcli create "$BASE" one
  run zkcli set "$BASE" two
  assert_success
  run zkcli get "$BASE"
  assert_output "two"
  run zkcli stat "$BASE"
  assert_success
  assert_line "dataVersion = 1"
  assert_line "dataLength = 3"
  assert_line "numChildren = 0"
  assert_line "ephemeralOwner = 0x0"
  assert_line --regexp '^cZxid = 0x[0-9a-f]+$'
}

@test "zkCli ls lists the children of a node" {
  zkcli create "$BASE" ""
  zkcli create "$BASE/a" x
  zkcli create "$BASE/b" y
  run zkcli ls "$BASE"
  assert_success
  assert_output "[a, b]"
}

@test "zkCli create -s makes sequential nodes with ten-digit suffixes" {
  zkcli create "$BASE" ""
  run zkcli create -s "$BASE/n-" x
  assert_output "Created $BASE/n-0000000000"
  run zkcli create -s "$BASE/n-" x
  assert_output "Created $BASE/n-0000000001"
}

@test "zkCli delete removes a node and a second delete says it does not exist" {
  zkcli create "$BASE" x
  run zkcli delete "$BASE"
  assert_success
  run zkcli delete "$BASE"
  assert_output --partial "Node does not exist: $BASE"
}

@test "zkCli get of a missing node says Node does not exist and fails" {
  run zkcli get "$BASE/missing"
  assert_failure
  assert_output --partial "Node does not exist: $BASE/missing"
}

@test "zkCli delete of a node with children says it is not empty" {
  zkcli create "$BASE" ""
  zkcli create "$BASE/kid" ""
  run zkcli delete "$BASE"
  assert_output --partial "Node not empty: $BASE"
  run zkcli ls "$BASE"
  assert_output "[kid]"
}

@test "zkCli deleteall removes a whole subtree" {
  zkcli create "$BASE" ""
  zkcli create "$BASE/a" ""
  zkcli create "$BASE/a/b" ""
  run zkcli deleteall "$BASE"
  assert_success
  run zkcli ls "$BASE"
  assert_output --partial "Node does not exist: $BASE"
}

@test "zkCli create of an existing node says it already exists" {
  zkcli create "$BASE" x
  run zkcli create "$BASE" y
  assert_output --partial "Node already exists: $BASE"
  run zkcli get "$BASE"
  assert_output "x"
}

@test "zkCli set with a stale version is refused" {
  zkcli create "$BASE" x
  zkcli set "$BASE" y
  run zkcli set -v 0 "$BASE" z
  assert_output --partial "version No is not valid : $BASE"
  run zkcli get "$BASE"
  assert_output "y"
}
