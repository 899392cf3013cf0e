#!/usr/bin/env bats
# znodefs, the contract's kind rule (filesystem.md "Mapping"): a node made with mkdir is a
# directory and a node made as a file is a file, on every mount and after a remount, because
# znoded stores the kind with the node (the kind extension); a node made by a ZooKeeper client
# follows the children rule. Against ZooKeeper (ZN_TARGET=zookeeper) the mount falls back to the
# children rule: the stored-kind tests are skipped there and the fallback test runs.
# A 3-member ensemble against znoded (the leader preps the kind into the txn, every member
# stores it); mounts a and b on different members.

load fs_helpers

setup_file() { fs_setup_file_two_mounts; }

teardown_file() { fs_teardown; }

setup() { fs_setup_test_dir; }

needs_extension() {
  [ "${ZN_TARGET:-znoded}" = znoded ] || skip "ZooKeeper stores no node kinds"
}

# kazoo ARGS: a small kazoo program on member 1 (stdin), with the connect string as argv[1].
kazoo() {
  "$ZN_PYTHON" - "$(member_connect 1)" "$@"
}

@test "an empty directory made with mkdir on one mount is an empty directory on another" {
  needs_extension
  mkdir "$A/$T/empty"
  wait_until 20 "mount b to see $T/empty" test -e "$B/$T/empty"
  [ "$(stat -c %F "$B/$T/empty")" = directory ]
  run ls -A "$B/$T/empty"
  assert_success
  assert_output ""
  # and it stays one while a file comes and goes
  echo x > "$B/$T/empty/f"
  rm "$B/$T/empty/f"
  [ -d "$A/$T/empty" ]
  [ -d "$B/$T/empty" ]
}

@test "an empty file stays a file on another mount, made by open(O_CREAT) or touch" {
  needs_extension
  : > "$A/$T/created"
  touch "$A/$T/touched"
  for f in created touched; do
    wait_until 20 "mount b to see $T/$f" test -e "$B/$T/$f"
    [ "$(stat -c %F "$B/$T/$f")" = "regular empty file" ]
  done
}

@test "a node made by kazoo (kind unknown) is a file without children and a directory with some" {
  kazoo "/$T" <<'PY'
import sys
from kazoo.client import KazooClient
k = KazooClient(hosts=sys.argv[1], timeout=10); k.start(timeout=20)
k.create(sys.argv[2] + "/kz", b"data")
k.stop()
PY
  wait_until 20 "mount b to see $T/kz" test -e "$B/$T/kz"
  [ "$(stat -c %F "$B/$T/kz")" = "regular file" ]
  kazoo "/$T" <<'PY'
import sys
from kazoo.client import KazooClient
k = KazooClient(hosts=sys.argv[1], timeout=10); k.start(timeout=20)
k.create(sys.argv[2] + "/kz/child", b"c")
k.stop()
PY
  wait_until 20 "$T/kz to turn into a directory on mount b" test -d "$B/$T/kz"
  [ "$(cat "$B/$T/kz/.data")" = data ]
}

@test "a ZooKeeper client sees a mkdir'd node and a file made by the mount as plain znodes" {
  mkdir "$A/$T/dir"
  : > "$A/$T/file"
  run kazoo "/$T" <<'PY'
import sys
from kazoo.client import KazooClient
k = KazooClient(hosts=sys.argv[1], timeout=10); k.start(timeout=20)
for name in ("dir", "file"):
    data, st = k.get(sys.argv[2] + "/" + name)
    print(name, repr(data), st.version, st.numChildren, st.ephemeralOwner, st.dataLength,
          k.get_children(sys.argv[2] + "/" + name))
k.stop()
PY
  assert_success
  assert_line "dir b'' 0 0 0 0 []"
  assert_line "file b'' 0 0 0 0 []"
}

@test "against any server, mkdir makes a directory and echo a file on the mount that made them" {
  mkdir "$A/$T/d"
  echo hi > "$A/$T/f"
  [ -d "$A/$T/d" ]
  [ -f "$A/$T/f" ]
  [ "$(cat "$A/$T/f")" = hi ]
  echo inner > "$A/$T/d/g"
  wait_until 20 "mount b to see $T/d as a directory" test -d "$B/$T/d"
  [ "$(cat "$B/$T/d/g")" = inner ]
  rm "$A/$T/d/g"
  rmdir "$A/$T/d"
  [ ! -e "$A/$T/d" ]
}

@test "mv of an empty directory keeps it a directory, on the mount that moved it and on another" {
  needs_extension
  mkdir "$A/$T/before"
  mv "$A/$T/before" "$A/$T/after"
  [ ! -e "$A/$T/before" ]
  [ "$(stat -c %F "$A/$T/after")" = directory ]
  wait_until 20 "mount b to see $T/after" test -e "$B/$T/after"
  [ "$(stat -c %F "$B/$T/after")" = directory ]
  # and an empty file moved stays a file
  : > "$A/$T/plain"
  mv "$A/$T/plain" "$A/$T/moved"
  wait_until 20 "mount b to see $T/moved" test -e "$B/$T/moved"
  [ "$(stat -c %F "$B/$T/moved")" = "regular empty file" ]
  # the moved directory still works as one
  echo inside > "$A/$T/after/f"
  [ "$(cat "$B/$T/after/f")" = inside ]
}

@test "kinds survive a remount and a restart of every member (the txn log and snapshot keep them)" {
  needs_extension
  mkdir "$A/$T/keepdir"
  : > "$A/$T/keepfile"
  unmount_all
  local n
  for n in 1 2 3; do stop_member "$n"; done
  for n in 1 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  wait_until 30 "the ensemble to serve" member_is_serving 2
  mount_fs a2 "$(member_connect 2)"
  local M2
  M2="$(fs_root)/a2"
  wait_until 20 "mount a2 to see $T/keepdir" test -e "$M2/$T/keepdir"
  [ "$(stat -c %F "$M2/$T/keepdir")" = directory ]
  [ "$(stat -c %F "$M2/$T/keepfile")" = "regular empty file" ]
}
