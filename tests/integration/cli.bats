#!/usr/bin/env bats
# The znode CLI against a server (ZN_TARGET=znoded or zookeeper): what a user types and what
# they see: exact bytes out of get, messages on stderr, and the exit codes scripts rely on
# (0 ok, 1 ZooKeeper error, 2 usage, 3 connection failure/timeout).
# One server for the whole file; every test works under its own path.

load helpers

ZNODE="${ZN_ZNODE:-$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode}"

setup_file() {
  [ -x "$ZNODE" ] || { echo "znode CLI not built: $ZNODE" >&2; return 1; }
  zn_state_init
  export ZN_STATE_DIR
  start_server
  export ZNODE_SERVER="$(member_connect 1)"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  WATCH_PID=""
}

teardown() {
  if [ -n "$WATCH_PID" ] && pid_alive "$WATCH_PID"; then
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
}

znode() { "$ZNODE" "$@"; }

# server_watches PATH: true when the server reports a watch on PATH (wchp four-letter word).
server_watches() {
  fourlw wchp 1 | grep -q -x -- "$1" || { fourlw wchp 1; return 1; }
}

# start_watch OUT ARGS...: run `znode watch ARGS` in the background, output to OUT.
start_watch() {
  local out="$1"; shift
  "$ZNODE" watch "$@" > "$out" 2> "$out.err" 3>&- &
  WATCH_PID=$!
  zn_track_pid "$WATCH_PID"
}

# lines_in FILE N: FILE has at least N lines.
lines_in() {
  [ "$(wc -l < "$1")" -ge "$2" ] || { cat "$1"; return 1; }
}

# wait_exit PID: wait (bounded) for a background znode to exit and leave its status in $status.
wait_exit() {
  wait_until 30 "znode watch to exit" bash -c "! kill -0 $1 2>/dev/null"
  wait "$1"
  status=$?
}

@test "create prints the created path and get returns exactly the bytes stored" {
  run znode create /cli-get hello
  assert_success
  assert_output /cli-get
  run znode get /cli-get
  assert_success
  assert_output hello
  # binary data through stdin, NUL bytes and no trailing newline included
  printf 'a\0b\nc' | znode set /cli-get -
  znode get /cli-get > "$BATS_TEST_TMPDIR/out"
  printf 'a\0b\nc' > "$BATS_TEST_TMPDIR/want"
  cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/out"
}

@test "create of an existing node fails with exit 1 and says node exists" {
  znode create /cli-exists
  run znode create /cli-exists
  assert_failure 1
  assert_output "znode: create /cli-exists: node exists"
}

@test "get of a missing node fails with exit 1 and says no node" {
  run znode get /cli-missing
  assert_failure 1
  assert_output "znode: get /cli-missing: no node"
}

@test "set with a stale version fails with bad version and leaves the data" {
  znode create /cli-ver one
  run znode set /cli-ver two --version 0
  assert_success
  run znode set /cli-ver three --version 0
  assert_failure 1
  assert_output "znode: set /cli-ver: bad version"
  run znode get /cli-ver
  assert_output two
}

@test "ls lists children sorted, one per line" {
  znode create /cli-ls
  znode create /cli-ls/b
  znode create /cli-ls/a
  znode create /cli-ls/c
  run znode ls /cli-ls
  assert_success
  assert_output "$(printf 'a\nb\nc')"
}

@test "create -s appends a ten-digit sequence number" {
  znode create /cli-seq
  run znode create -s /cli-seq/n- data
  assert_success
  assert_output --regexp '^/cli-seq/n-[0-9]{10}$'
  first="$output"
  run znode create -s /cli-seq/n-
  assert_success
  [ "$output" \> "$first" ]
}

@test "an ephemeral node created by the CLI is gone when the CLI exits" {
  run znode create -e /cli-eph
  assert_success
  run znode get /cli-eph
  assert_failure 1
}

@test "rm refuses a node with children; rm -r removes the whole subtree" {
  znode create /cli-rm
  znode create /cli-rm/x
  znode create /cli-rm/x/y
  run znode rm /cli-rm
  assert_failure 1
  assert_output "znode: rm /cli-rm: not empty"
  run znode rm -r /cli-rm
  assert_success
  run znode stat /cli-rm
  assert_failure 1
}

@test "rm with a stale version fails and keeps the node" {
  znode create /cli-rmv
  znode set /cli-rmv x
  run znode rm /cli-rmv --version 0
  assert_failure 1
  assert_output "znode: rm /cli-rmv: bad version"
  run znode rm /cli-rmv --version 1
  assert_success
}

@test "stat prints ZooKeeper's stat fields one per line" {
  znode create /cli-stat abc
  znode create /cli-stat/kid
  znode set /cli-stat abcd
  run znode stat /cli-stat
  assert_success
  assert_equal "$(echo "$output" | cut -d' ' -f1 | tr '\n' ' ')" \
    "cZxid ctime mZxid mtime pZxid cversion dataVersion aclVersion ephemeralOwner dataLength numChildren "
  assert_line "dataVersion = 1"
  assert_line "dataLength = 4"
  assert_line "numChildren = 1"
  assert_line "cversion = 1"
  assert_line "ephemeralOwner = 0x0"
  assert_line --regexp '^cZxid = 0x[0-9a-f]+$'
}

@test "a chroot in the server string maps every path" {
  znode create /cli-chroot
  run znode --server "$ZNODE_SERVER/cli-chroot" create /inside 1
  assert_success
  assert_output /inside
  run znode ls /cli-chroot
  assert_output inside
  run znode --server "$ZNODE_SERVER/cli-chroot" get /inside
  assert_output 1
}

@test "watch prints data changes and re-arms until the count is reached" {
  znode create /cli-watch v0
  out="$BATS_TEST_TMPDIR/watch.out"
  start_watch "$out" /cli-watch --count 2
  wait_until 30 "the watch to be set" server_watches /cli-watch
  # A set made while the CLI re-arms is not reported: keep changing until two were seen.
  i=0
  while pid_alive "$WATCH_PID" && [ $i -lt 100 ]; do
    znode set /cli-watch "v$i" >/dev/null
    i=$((i + 1))
    sleep 0.1
  done
  wait_exit "$WATCH_PID"
  assert_equal "$status" 0
  run cat "$out"
  assert_output "$(printf 'NodeDataChanged /cli-watch\nNodeDataChanged /cli-watch')"
}

@test "watch reports a new child and ends when the node is deleted" {
  znode create /cli-watch2
  out="$BATS_TEST_TMPDIR/watch.out"
  start_watch "$out" /cli-watch2
  wait_until 30 "the watch to be set" server_watches /cli-watch2
  znode create /cli-watch2/kid
  wait_until 30 "the child event" lines_in "$out" 1
  # The CLI re-arms both watches after each event; wait for that before deleting.
  wait_until 30 "the watch to be re-set" server_watches /cli-watch2
  znode rm -r /cli-watch2
  wait_exit "$WATCH_PID"
  assert_equal "$status" 0
  run cat "$out"
  assert_line --index 0 "NodeChildrenChanged /cli-watch2"
  assert_line --partial "NodeDeleted /cli-watch2"
}

@test "watch of a missing node reports its creation" {
  out="$BATS_TEST_TMPDIR/watch.out"
  start_watch "$out" /cli-watch3 --count 1
  wait_until 30 "the watch to be set" server_watches /cli-watch3
  znode create /cli-watch3
  wait_exit "$WATCH_PID"
  assert_equal "$status" 0
  run cat "$out"
  assert_output "NodeCreated /cli-watch3"
}

@test "an unreachable server exits 3 with a connection message" {
  port="$(free_port)"
  run znode --server "127.0.0.1:$port" --timeout 1000 ls /
  assert_failure 3
  assert_output --partial "cannot connect to 127.0.0.1:$port"
}

@test "usage errors exit 2 and --help documents every command" {
  run znode
  assert_failure 2
  run znode frobnicate /x
  assert_failure 2
  assert_output --partial "unknown command frobnicate"
  run znode get
  assert_failure 2
  run znode get relative
  assert_failure 2
  run znode --help
  assert_success
  for cmd in ls get set create rm stat watch; do
    assert_output --partial "  $cmd "
  done
}
