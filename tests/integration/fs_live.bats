#!/usr/bin/env bats
# znodefs ephemeral files, sequential children, @wait, remote-change visibility and inotify,
# across two mounts (a, b) of one server.

load fs_helpers

setup_file() {
  fs_start_ensemble
  fs_mount_ab
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
}

teardown() {
  fs_teardown_jobs
}

@test "child_mode=ephemeral: a file lives as long as the fd that created it (close)" {
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T"
  [ "$(getfattr --only-values -n user.zk.child_mode "$A/$T")" = ephemeral ]
  exec 9> "$A/$T/member1"
  echo here >&9
  wait_until 10 "member1 visible on mount b" test -e "$B/$T/member1"
  [ "$(cat "$B/$T/member1")" = here ]
  [ "$(getfattr --only-values -n user.zk.ephemeral_owner "$B/$T/member1")" != 0 ]
  exec 9>&-
  wait_until 10 "member1 gone from mount b" test ! -e "$B/$T/member1"
}

@test "child_mode=ephemeral: the file vanishes when its process is killed" {
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T"
  bash -c "exec 9> '$A/$T/worker'; echo up >&9; exec sleep 1000" 3>&- &
  BG="$!"
  wait_until 10 "worker registered" test -e "$B/$T/worker"
  kill -9 "$BG"
  wait "$BG" 2>/dev/null || true
  wait_until 10 "worker gone from mount b" test ! -e "$B/$T/worker"
}

@test "a sequential child is created through .clone and its name learned in plain bash" {
  exec 6<> "$A/$T/.clone"
  printf 'job-\n%s' payload >&6
  read -r name <&6
  exec 6>&-
  [[ "$name" =~ ^job-[0-9]{10}$ ]]
  [ "$(cat "$B/$T/$name")" = payload ]
  exec 6<> "$A/$T/.clone"
  printf 'job-\nsecond' >&6
  read -r name2 <&6
  exec 6>&-
  [ "${name2#job-}" -gt "${name#job-}" ]
}

@test "an ephemeral sequential child through .clone lives while the .clone fd is open" {
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T"
  exec 6<> "$A/$T/.clone"
  printf 'n_\n%s' me >&6
  read -r name <&6
  wait_until 10 "$name on mount b" test -e "$B/$T/$name"
  [ "$(getfattr --only-values -n user.zk.ephemeral_owner "$B/$T/$name")" != 0 ]
  exec 6>&-
  wait_until 10 "$name gone" test ! -e "$B/$T/$name"
}

@test "cat f@wait=V blocks until another mount writes f, then prints the new data" {
  echo v0 > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  cat "$A/$T/f@wait=$v" > "$BATS_TEST_TMPDIR/out" &
  BG="$!"
  wait_blocked_reading "$BG" "$A/$T/f@wait=$v" "$A/$T/f"  # waiting: nothing changed yet
  echo v1 > "$B/$T/f"
  wait_exit "$BG"
  BG=""
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = v1 ]
  # already past: returns at once
  [ "$(cat "$A/$T/f@wait=$v")" = v1 ]
}

@test "f@wait fails with ENOENT when f is deleted, and is interruptible" {
  echo x > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  cat "$A/$T/f@wait=$v" 2> "$BATS_TEST_TMPDIR/err" &
  BG="$!"
  wait_blocked_reading "$BG" "$A/$T/f@wait=$v" "$A/$T/f"
  rm "$B/$T/f"
  rc=0
  wait_exit "$BG" || rc=$?
  BG=""
  [ "$rc" = 1 ]
  run cat "$BATS_TEST_TMPDIR/err"
  assert_output --partial "No such file or directory"
  echo y > "$A/$T/g"
  run timeout -s INT 1 cat "$A/$T/g@wait=$(ver "$A/$T/g")"
  assert_failure 124  # still waiting when interrupted, and the interrupt ended the wait
}

@test "waiting on a directory's children returns once its cversion passes V" {
  # made by a ZooKeeper client with a first child, so both mounts see a directory
  znode_cli create "/$T/d" ""
  znode_cli create "/$T/d/first" ""
  cv="$(getfattr --only-values -n user.zk.cversion "$A/$T/d")"
  cat "$A/$T/d@wait=$cv" > "$BATS_TEST_TMPDIR/out" &
  BG="$!"
  wait_blocked_reading "$BG" "$A/$T/d@wait=$cv" "$A/$T/d"
  echo new > "$B/$T/d/child"
  wait_exit "$BG"
  BG=""
  grep -qx child "$BATS_TEST_TMPDIR/out"
  grep -qx first "$BATS_TEST_TMPDIR/out"
}

@test "a remote write is visible to cat on another mount without remounting" {
  # Mount b may be on another member, which applies the write a moment after a's returns:
  # promptly, not at once (the contract's read-your-writes is per mount).
  echo one > "$A/$T/f"
  wait_value "$B/$T/f" one
  echo two-longer > "$A/$T/f"
  wait_value "$B/$T/f" two-longer
  wait_until 5 "mount b to show the new size" size_is "$B/$T/f" 11
  znode_cli set "/$T/f" "from-cli"
  wait_until 5 "mount b sees the CLI's write" bash -c "[ \"\$(cat '$B/$T/f')\" = from-cli ]"
  echo x > "$A/$T/new"
  wait_until 5 "ls on mount b shows the new file" bash -c "ls '$B/$T' | grep -qx new"
}

# listed_is DIR NAMES: ls -A DIR prints exactly NAMES (one per line, bytewise order).
listed_is() { [ "$(LC_ALL=C ls -A "$1" 2> /dev/null)" = "$2" ]; }

# kz OP PATH [DATA]: kazoo, a ZooKeeper client that is no mount, creates, deletes or sets PATH
# (through member 1).
kz() {
  /usr/bin/python3 - "$(member_connect 1)" "$@" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=10)
op, path = sys.argv[2], sys.argv[3]
if op == "create":
    zk.create(path, b"")
elif op == "delete":
    zk.delete(path)
else:
    zk.set(path, sys.argv[4].encode())
zk.stop()
zk.close()
PY
}

@test "a listing mount b keeps shows mount a's and kazoo's creates, renames, deletes and directory data once the watch fires" {
  /usr/bin/python3 -c "import kazoo" 2> /dev/null || skip "kazoo not installed (python3-kazoo)"
  touch "$A/$T/a"
  wait_until 10 "mount b to list a" listed_is "$B/$T" a
  # b keeps that listing now (answered from its cache while the watches stand): every change
  # below reaches it only through a watch event.
  listed_is "$B/$T" a
  touch "$A/$T/b"
  wait_until 10 "mount b to list mount a's create" listed_is "$B/$T" "$(printf 'a\nb')"
  mv "$A/$T/a" "$A/$T/c"
  wait_until 10 "mount b to list mount a's rename" listed_is "$B/$T" "$(printf 'b\nc')"
  rm "$A/$T/b"
  wait_until 10 "mount b to list mount a's delete" listed_is "$B/$T" c
  kz create "/$T/k"
  wait_until 10 "mount b to list kazoo's create" listed_is "$B/$T" "$(printf 'c\nk')"
  kz delete "/$T/c"
  wait_until 10 "mount b to list kazoo's delete" listed_is "$B/$T" k
  # the directory's data: .data is listed once it has some (a data watch, not a child watch)
  kz set "/$T" "data of the directory"
  wait_until 10 "mount b to list .data" listed_is "$B/$T" "$(printf '.data\nk')"
  [ "$(cat "$B/$T/.data")" = "data of the directory" ]
}

@test "a remote delete fires inotify IN_DELETE_SELF" {
  command -v inotifywait >/dev/null || skip "inotify-tools not installed"
  echo x > "$A/$T/f"
  cat "$B/$T/f" > /dev/null
  inotifywait -e delete_self -t 20 "$B/$T/f" > "$BATS_TEST_TMPDIR/ev" 2>&1 &
  BG="$!"
  wait_until 10 "inotifywait to watch" grep -q "Watches established" "$BATS_TEST_TMPDIR/ev"
  rm "$A/$T/f"
  wait "$BG"
  BG=""
  grep -q DELETE_SELF "$BATS_TEST_TMPDIR/ev"
}
