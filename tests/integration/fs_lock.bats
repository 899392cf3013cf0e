#!/usr/bin/env bats
# znodefs flock: a distributed lock in kazoo's layout, across two mounts (a, b) of one server
# and a kazoo program: exclusion, -n, passing on at exit and at SIGKILL, shared locks.

load fs_helpers

setup_file() {
  fs_start_ensemble
  fs_mount_ab
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
  echo data > "$A/$T/lock"
  READY="$BATS_TEST_TMPDIR/ready"
}

teardown() {
  fs_teardown_jobs
}

# contenders_are N: the lock node has N contender children (holder and waiters), on the server.
contenders_are() { [ "$(znode_cli ls "/$T/lock" | wc -l)" = "$1" ]; }

# hold MOUNT [flock args]: hold the lock on MOUNT/$T/lock in the background until killed.
hold() {
  local mnt="$1"; shift
  flock "$@" "$mnt/$T/lock" -c "touch '$READY'; exec sleep 1000" 3>&- &
  BG="$BG $!"
  wait_until 10 "the holder to get the lock" test -e "$READY"
}

@test "flock -n fails while a process on another mount holds the lock" {
  hold "$A"
  run flock -E "$FLOCK_BUSY" -n "$B/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
  run flock -E "$FLOCK_BUSY" -n "$A/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
}

@test "the lock passes on when the holder exits" {
  release="$BATS_TEST_TMPDIR/release"
  flock "$A/$T/lock" -c "touch '$READY'; until [ -e '$release' ]; do sleep 0.05; done" &
  BG="$!"
  wait_until 10 "holder" test -e "$READY"
  run flock -E "$FLOCK_BUSY" -n "$B/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
  flock -w 20 "$B/$T/lock" -c "echo got > '$BATS_TEST_TMPDIR/got'" &
  waiter=$!
  # Queued behind the holder: only the holder's exit can wake it.
  wait_until 20 "the waiter's contender" contenders_are 2
  [ ! -e "$BATS_TEST_TMPDIR/got" ]
  touch "$release"
  wait "$waiter"
  [ "$(cat "$BATS_TEST_TMPDIR/got")" = got ]
}

@test "the lock passes on when the holder is killed with SIGKILL" {
  hold "$A"
  holder="$(pgrep -P "${BG# }" sleep || echo "${BG# }")"
  flock -w 30 "$B/$T/lock" -c "echo got > '$BATS_TEST_TMPDIR/got'" &
  waiter=$!
  # Queued behind the holder (its contender node exists): only the holder's death can wake it.
  wait_until 20 "the waiter's contender" contenders_are 2
  [ ! -e "$BATS_TEST_TMPDIR/got" ]
  kill -9 ${BG} "$holder" 2>/dev/null || true
  wait "$waiter"
  [ "$(cat "$BATS_TEST_TMPDIR/got")" = got ]
}

@test "a blocking flock honours -w and is interruptible" {
  hold "$A"
  run flock -E "$FLOCK_BUSY" -w 1 "$B/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
  run timeout -s INT 1 flock "$B/$T/lock" -c true
  assert_failure 124  # still waiting when interrupted, and the interrupt ended the wait
  # the abandoned contenders are gone: only the holder remains
  [ "$(znode_cli ls "/$T/lock" | wc -l)" = 1 ]
}

@test "shared locks share with each other and exclude exclusive ones" {
  hold "$A" -s
  flock -s -n "$B/$T/lock" -c true
  run flock -E "$FLOCK_BUSY" -x -n "$B/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
}

@test "contenders never turn the locked file into a directory" {
  hold "$A"
  [ -f "$B/$T/lock" ]
  [ "$(cat "$B/$T/lock")" = data ]
  [ -z "$(ls "$B/$T" | grep -v '^lock$')" ]
  znode_cli ls "/$T/lock" | grep -Eq '^[0-9a-f]{32}__lock__[0-9]{10}$'
}

@test "a kazoo Lock and a flock on the same path exclude each other" {
  kz="$BATS_TEST_TMPDIR/kz.py"
  cat > "$kz" <<'PY'
import sys, time
from kazoo.client import KazooClient
hosts, path, mode, status = sys.argv[1:5]
k = KazooClient(hosts=hosts, timeout=10)
k.start(timeout=20)
lock = k.Lock(path)
if mode == "try":
    got = lock.acquire(blocking=False)
    print("got" if got else "busy")
    if got:
        lock.release()
else:
    lock.acquire()
    open(status, "w").write("held\n")
    time.sleep(1000)
k.stop()
PY
  # kazoo holds: flock -n fails on both mounts
  "$ZN_PYTHON" "$kz" "$(member_connect 1)" "/$T/lock" hold "$READY" &
  BG="$!"
  wait_until 20 "kazoo to hold the lock" test -e "$READY"
  run flock -E "$FLOCK_BUSY" -n "$A/$T/lock" -c true
  assert_failure "$FLOCK_BUSY"
  kill "$BG"; wait "$BG" 2>/dev/null || true
  BG=""
  wait_until 20 "kazoo's session to end" bash -c "flock -n '$A/$T/lock' -c true"
  # flock holds: kazoo's non-blocking acquire fails
  rm -f "$READY"
  hold "$B"
  run "$ZN_PYTHON" "$kz" "$(member_connect 1)" "/$T/lock" try -
  assert_output busy
}
