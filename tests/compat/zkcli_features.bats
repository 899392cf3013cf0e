#!/usr/bin/env bats
# zkCli.sh's less common commands against the server under test (ZN_TARGET, standalone or
# ZN_ENSEMBLE members): quotas (setquota, listquota, delquota, with enforceQuota on as
# ZooKeeper 3.7+ has it), config, addWatch, getAcl/setAcl/addauth, containers and TTL nodes.
# Expected outputs are what ZooKeeper 3.8 prints. One server for the whole file, started with
# enforceQuota and extendedTypesEnabled; each test works under its own path.

load ../integration/helpers

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  start_ensemble "${ZN_ENSEMBLE:-1}" enforceQuota=true extendedTypesEnabled=true
  export ZKCLI_SERVER="$(member_connect 1)"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  BASE="/zkcli-features-$BATS_TEST_NUMBER"
}

# zkcli CMD...: one zkCli.sh command; its output without the JVM's noise and the banner.
zkcli() {
  local out rc
  out="$("$ZN_ZKCLI" -server "$ZKCLI_SERVER" "$@" 2>&1 < /dev/null)" && rc=0 || rc=$?
  grep -v -E '^(SLF4J:|Connecting to |WATCHER::|WatchedEvent state:|$)' <<< "$out" || true
  return "$rc"
}

# zkcli_session: the commands on stdin run in one session (addauth and watches need that);
# prints everything, watch events included.
zkcli_session() {
  "$ZN_ZKCLI" -server "$ZKCLI_SERVER" 2>&1 | grep -v -E '^(SLF4J:|Connecting to |$)' || true
}

@test "setquota -n writes ZooKeeper's limit record and listquota shows the subtree's stats" {
  zkcli create "$BASE" abc
  run zkcli setquota -n 5 "$BASE"
  assert_success
  run zkcli listquota "$BASE"
  assert_success
  assert_line "absolute path is /zookeeper/quota$BASE/zookeeper_limits"
  assert_line "Output quota for $BASE count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
  assert_line "Output stat for $BASE count=1,bytes=3"
  run zkcli ls "/zookeeper/quota$BASE"
  assert_output "[zookeeper_limits, zookeeper_stats]"
}

@test "quota stats follow creates, setData and deletes under the path, nested ones included" {
  zkcli create "$BASE" ""
  zkcli setquota -b 1000 "$BASE"
  zkcli create "$BASE/a" 12345
  zkcli create "$BASE/a/b" xy
  run zkcli get "/zookeeper/quota$BASE/zookeeper_stats"
  assert_output "count=3,bytes=7"
  zkcli set "$BASE/a" 1
  run zkcli get "/zookeeper/quota$BASE/zookeeper_stats"
  assert_output "count=3,bytes=3"
  zkcli delete "$BASE/a/b"
  run zkcli get "/zookeeper/quota$BASE/zookeeper_stats"
  assert_output "count=2,bytes=1"
  # The stats node changes without a new version: ZooKeeper writes it behind the client's back.
  run zkcli stat "/zookeeper/quota$BASE/zookeeper_stats"
  assert_line "dataVersion = 0"
}

@test "setquota on a path with an existing quota updates it, and delquota -n or -b clears one limit" {
  zkcli create "$BASE" ""
  zkcli setquota -n 4 "$BASE"
  zkcli setquota -b 100 "$BASE"
  run zkcli listquota "$BASE"
  assert_line "Output quota for $BASE count=4,bytes=100=;byteHardLimit=-1;countHardLimit=-1"
  zkcli delquota -n "$BASE"
  run zkcli listquota "$BASE"
  assert_line "Output quota for $BASE count=-1,bytes=100=;byteHardLimit=-1;countHardLimit=-1"
}

@test "delquota removes the quota nodes and listquota then says the quota does not exist" {
  zkcli create "$BASE" ""
  zkcli setquota -n 4 "$BASE"
  run zkcli delquota "$BASE"
  assert_success
  run zkcli listquota "$BASE"
  assert_line "quota for $BASE does not exist."
  run zkcli ls "/zookeeper/quota$BASE"
  assert_output --partial "Node does not exist: /zookeeper/quota$BASE"
  # With the quota gone, writes under the path no longer touch any stats.
  zkcli create "$BASE/after" x
  run zkcli listquota "$BASE"
  assert_line "quota for $BASE does not exist."
}

@test "setquota refuses a missing path and a parent of a path that has a quota" {
  run zkcli setquota -n 2 "$BASE/missing"
  assert_failure
  assert_output --partial "$BASE/missing does not exist."
  zkcli create "$BASE" ""
  zkcli create "$BASE/kid" ""
  zkcli setquota -n 2 "$BASE/kid"
  run zkcli setquota -n 2 "$BASE"
  assert_failure
  assert_output --partial "$BASE has a child $BASE/kid which has a quota"
}

@test "a hard count quota refuses the create past it with Quota has exceeded" {
  zkcli create "$BASE" ""
  zkcli setquota -N 2 "$BASE"
  run zkcli create "$BASE/one" x
  assert_success
  run zkcli create "$BASE/two" x
  assert_failure
  assert_output --partial "Quota has exceeded : $BASE/two"
  run zkcli listquota "$BASE"
  assert_line "Output stat for $BASE count=2,bytes=1"
  run zkcli ls "$BASE"
  assert_output "[one]"
}

@test "a hard byte quota refuses the setData past it and keeps the old data" {
  zkcli create "$BASE" ab
  zkcli setquota -B 8 "$BASE"
  run zkcli set "$BASE" 123456789
  assert_failure
  assert_output --partial "Quota has exceeded : $BASE"
  run zkcli get "$BASE"
  assert_output "ab"
  run zkcli set "$BASE" 12345678
  assert_success
  run zkcli listquota "$BASE"
  assert_line "Output stat for $BASE count=1,bytes=8"
}

@test "a soft quota only warns: writes past it succeed" {
  zkcli create "$BASE" ""
  zkcli setquota -n 1 "$BASE"
  run zkcli create "$BASE/a" x
  assert_success
  run zkcli create "$BASE/b" x
  assert_success
  run zkcli listquota "$BASE"
  assert_line "Output stat for $BASE count=3,bytes=2"
}

@test "config prints ZooKeeper's dynamic membership in an ensemble and nothing standalone" {
  run zkcli config
  assert_success
  local count n expected=""
  count="$(cat "$(zn_state_dir)/members")"
  if [ "$count" -gt 1 ]; then
    for n in $(seq 1 "$count"); do
      expected+="server.$n=$(member_addr "$n"):$(cat "$(member_dir "$n")/peer_port"):$(cat "$(member_dir "$n")/election_port"):participant"$'\n'
    done
    expected+="version=0"
  fi
  assert_output "$expected"
  run zkcli stat /zookeeper/config
  if [ "$count" -gt 1 ]; then assert_line "dataVersion = -1"; else assert_line "dataVersion = 0"; fi
  assert_line "aclVersion = -1"
}

@test "every member shows the same config" {
  local count n first
  count="$(cat "$(zn_state_dir)/members")"
  first="$(zkcli config)"
  for n in $(seq 2 "$count"); do
    ZKCLI_SERVER="$(member_connect "$n")"
    run zkcli config
    assert_output "$first"
  done
}

@test "the config node is read-only for clients" {
  run zkcli set /zookeeper/config x
  assert_failure
  assert_output --partial "Insufficient permission : /zookeeper/config"
}

@test "addWatch -m persistent_recursive reports creates and changes below the path" {
  zkcli create "$BASE" ""
  run zkcli_session <<EOF
addWatch -m persistent_recursive $BASE
create $BASE/w 1
set $BASE/w 2
delete $BASE/w
quit
EOF
  assert_line "WatchedEvent state:SyncConnected type:NodeCreated path:$BASE/w"
  assert_line "WatchedEvent state:SyncConnected type:NodeDataChanged path:$BASE/w"
  assert_line "WatchedEvent state:SyncConnected type:NodeDeleted path:$BASE/w"
}

@test "setAcl with a digest id locks out other sessions until addauth" {
  zkcli create "$BASE" secret
  # digest of alice:pw: base64(sha1("alice:pw"))
  local hash
  hash="$(printf 'alice:pw' | openssl dgst -binary -sha1 | base64)"
  run zkcli setAcl "$BASE" "digest:alice:$hash:cdrwa"
  assert_success
  # getAcl needs READ or ADMIN (ZooKeeper 3.8), so a session without the digest is refused.
  run zkcli getAcl "$BASE"
  assert_failure
  assert_output --partial "Insufficient permission : $BASE"
  run zkcli get "$BASE"
  assert_failure
  assert_output --partial "Insufficient permission : $BASE"
  run zkcli_session <<EOF
addauth digest alice:pw
get $BASE
getAcl $BASE
quit
EOF
  assert_line "secret"
  assert_line "'digest,'alice:$hash"
  assert_line ": cdrwa"
}

@test "create -c makes a container and create -t a TTL node when extended types are on" {
  run zkcli create -c "$BASE-c" x
  assert_success
  assert_output "Created $BASE-c"
  run zkcli create -t 60000 "$BASE-t" y
  assert_success
  assert_output "Created $BASE-t"
  run zkcli stat "$BASE-t"
  assert_line "ephemeralOwner = 0x0"
  run zkcli get "$BASE-t"
  assert_output "y"
}

@test "reconfig without reconfigEnabled fails with ZooKeeper's ReconfigDisabled and changes nothing" {
  before="$(zkcli config)"
  run zkcli reconfig -remove 3
  assert_output --partial "Reconfig is disabled"
  run zkcli config
  assert_output "$before"
}
