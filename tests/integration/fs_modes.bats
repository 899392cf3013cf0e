#!/usr/bin/env bats
# znodefs: what `ls -l` says a node allows (filesystem.md "Mapping": mode bits reflect the node's
# ACL for the mounting user), the per-mount child_mode setting (fs/README.md documents it: the
# contract leaves where it lives open), poll/select on an open file ("Waiting for change":
# poll/select report a change too), and the read path's node cache staying right (a write on one
# mount reaches a cat on another; the mount's own write is read back at once).
# A 3-member ensemble; mount a on member 1, mount b on member 3, mount c on member 2 with digest
# credentials.

load fs_helpers

setup_file() {
  fs_start_ensemble
  mount_fs a "$(member_connect 1)"
  mount_fs b "$(member_connect "${ZN_FS_MEMBERS:-3}")"
  mount_fs c "$(member_connect 1)" "session_timeout=6000,auth=alice:secret"
  export A="$(fs_root)/a" B="$(fs_root)/b" C="$(fs_root)/c"
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
}

teardown() {
  fs_teardown_jobs
}

mode_of() { stat -c %A "$1"; }

@test "an open ACL shows rw for the owner on files and rwx on directories" {
  echo x > "$A/$T/f"
  mkdir "$A/$T/d"
  [ "$(mode_of "$A/$T/f")" = "-rw-r--r--" ]
  [ "$(mode_of "$A/$T/d")" = "drwxr-xr-x" ]
  wait_until 10 "mount b to see $T/f" test -e "$B/$T/f"
  [ "$(mode_of "$B/$T/f")" = "-rw-r--r--" ]
}

@test "world:anyone read-only shows r--r--r--, on the mount that set it and on another" {
  echo x > "$A/$T/f"
  mkdir "$A/$T/d"
  setfattr -n user.zk.acl -v "world:anyone:r" "$A/$T/f"
  setfattr -n user.zk.acl -v "world:anyone:r" "$A/$T/d"
  wait_until 10 "mount a to show $T/f read-only" bash -c "[ \"\$(stat -c %A '$A/$T/f')\" = -r--r--r-- ]"
  wait_until 10 "mount a to show $T/d read-only" bash -c "[ \"\$(stat -c %A '$A/$T/d')\" = dr-xr-xr-x ]"
  wait_until 10 "mount b to see $T/f" test -e "$B/$T/f"
  [ "$(mode_of "$B/$T/f")" = "-r--r--r--" ]
  [ "$(mode_of "$B/$T/d")" = "dr-xr-xr-x" ]
  # and the bits say what the server does: the write is refused
  run bash -c "echo y > '$B/$T/f'"
  assert_failure
  assert_output --partial "Permission denied"
}

@test "a node the mount may not read shows no r, and reading it fails with EACCES" {
  echo secret > "$A/$T/f"
  setfattr -n user.zk.acl -v "world:anyone:w" "$A/$T/f"
  wait_until 10 "mount b to see $T/f" test -e "$B/$T/f"
  run stat -c %A "$B/$T/f"
  assert_success
  refute_output --partial "r"
  run cat "$B/$T/f"
  assert_failure
  assert_output --partial "Permission denied"
}

@test "a digest ACL gives its rights to the mount with those credentials only" {
  local hash
  hash="$(printf %s alice:secret | openssl sha1 -binary | base64)"
  echo x > "$C/$T/f"
  setfattr -n user.zk.acl -v "$(printf 'digest:alice:%s:rw\nworld:anyone:r' "$hash")" "$C/$T/f"
  wait_until 10 "mount c to show $T/f as its own" bash -c "[ \"\$(stat -c %A '$C/$T/f')\" = -rw-r--r-- ]"
  wait_until 10 "mount b to see $T/f" test -e "$B/$T/f"
  [ "$(mode_of "$B/$T/f")" = "-r--r--r--" ]
  echo mine > "$C/$T/f"
  run bash -c "echo theirs > '$B/$T/f'"
  assert_failure
  assert_output --partial "Permission denied"
}

@test "child_mode is the setting of the mount that set it: other mounts create persistent files" {
  mkdir "$A/$T/d"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/d"
  [ "$(getfattr --only-values -n user.zk.child_mode "$A/$T/d")" = ephemeral ]
  wait_until 10 "mount b to see $T/d" test -d "$B/$T/d"
  [ "$(getfattr --only-values -n user.zk.child_mode "$B/$T/d")" = persistent ]
  echo kept > "$B/$T/d/from-b"
  exec 9> "$A/$T/d/from-a"
  wait_until 10 "mount b to see from-a" test -e "$B/$T/d/from-a"
  [ "$(getfattr --only-values -n user.zk.ephemeral_owner "$B/$T/d/from-a")" != 0 ]
  [ "$(getfattr --only-values -n user.zk.ephemeral_owner "$A/$T/d/from-b")" = 0 ]
  exec 9>&-
  wait_until 10 "from-a to go with its fd" test ! -e "$B/$T/d/from-a"
  [ "$(cat "$A/$T/d/from-b")" = kept ]
  # a ZooKeeper client sees no trace of the setting
  run znode_cli get "/$T/d"
  assert_success
  refute_output --partial ephemeral
}

# poll_change FILE TIMEOUT_S: opens FILE, reads it, polls for POLLPRI; prints "changed" and the
# new data after lseek(0) when poll reports a change, "timeout" otherwise. Writes "polling" to
# $BATS_TEST_TMPDIR/polling once its first poll has returned (the change watch is armed).
poll_change() {
  "$ZN_PYTHON" - "$1" "$2" "$BATS_TEST_TMPDIR/polling" <<'PY'
import os, select, sys
path, timeout_s, flag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_RDONLY)
os.read(fd, 65536)
p = select.poll()
p.register(fd, select.POLLPRI)
first = p.poll(0)
assert all(ev & select.POLLPRI == 0 for _, ev in first), "POLLPRI before any change: %r" % first
open(flag, "w").write("polling")
events = p.poll(timeout_s * 1000)
if any(ev & select.POLLPRI for _, ev in events):
    os.lseek(fd, 0, os.SEEK_SET)
    print("changed", os.read(fd, 65536).decode().strip())
else:
    print("timeout")
PY
}

@test "poll on an open file reports POLLPRI when another mount writes it, and not before" {
  echo one > "$A/$T/f"
  wait_until 10 "mount b to see $T/f" test -e "$B/$T/f"
  poll_change "$A/$T/f" 30 > "$BATS_TEST_TMPDIR/out" 2>&1 &
  BG="$!"
  wait_until 10 "the poller to be armed" test -s "$BATS_TEST_TMPDIR/polling"
  echo two > "$B/$T/f"
  wait_until 30 "the poller to report" test -s "$BATS_TEST_TMPDIR/out"
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = "changed two" ]
}

@test "poll without a change times out: a regular file stays readable (POLLIN) but no POLLPRI" {
  echo one > "$A/$T/f"
  run poll_change "$A/$T/f" 1
  assert_success
  assert_output timeout
  run "$ZN_PYTHON" -c "
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
p = select.poll(); p.register(fd, select.POLLIN)
print(bool(p.poll(5000)))" "$A/$T/f"
  assert_output True
}

@test "the read cache never hides a write: own writes read back at once, remote ones soon" {
  local i
  for i in 1 2 3 4 5; do
    echo "v$i" > "$A/$T/f"
    [ "$(cat "$A/$T/f")" = "v$i" ]
    [ "$(stat -c %s "$A/$T/f")" = 3 ]
    wait_until 10 "mount b to read v$i" bash -c "[ \"\$(cat '$B/$T/f')\" = v$i ]"
  done
  : > "$A/$T/f"
  [ "$(stat -c %s "$A/$T/f")" = 0 ]
  [ "$(cat "$A/$T/f")" = "" ]
  setfattr -n "user.zk.data@-1" -v "via-xattr" "$A/$T/f"
  [ "$(cat "$A/$T/f")" = via-xattr ]
  rm "$A/$T/f"
  [ ! -e "$A/$T/f" ]
  run cat "$A/$T/f"
  assert_failure
  assert_output --partial "No such file or directory"
}
