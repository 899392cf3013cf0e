#!/usr/bin/env bats
# znodefs, the contract's Mounting, Mapping, Reading, Writing, Errors and limits sections, as a
# user types them (ls, cat, echo, mkdir, rm, mv, stat, getfattr, setfattr, set -C), against a
# 3-member ensemble (ZN_FS_MEMBERS=1: standalone). One ensemble and one mount for the file; each test works in its own directory.

load fs_helpers

setup_file() {
  fs_start_ensemble
  mount_fs a
  export M="$(fs_root)/a"
}

teardown_file() { fs_teardown; }

setup() {
  zn_load_bats_libs
  T="$M/t$BATS_TEST_NUMBER"
  mkdir "$T"
}

@test "the mount root is the znode / and lists its children" {
  znode_cli create /from_cli "x"
  run ls "$M"
  assert_success
  assert_line from_cli
  assert_line zookeeper
}

@test "echo creates a file, cat reads it back, and st_size is the exact data length" {
  echo hello > "$T/f"
  run cat "$T/f"
  assert_output hello
  [ "$(stat -c %s "$T/f")" = 6 ]
  [ "$(stat -c %F "$T/f")" = "regular file" ]
  [ "$(znode_cli get "/t$BATS_TEST_NUMBER/f")" = hello ]
}

@test "echo > replaces the whole data, one write is one version, and >> appends" {
  printf 'a long first value' > "$T/f"
  [ "$(ver "$T/f")" = 1 ]
  echo short > "$T/f"
  [ "$(cat "$T/f")" = short ]
  [ "$(ver "$T/f")" = 2 ]
  echo more >> "$T/f"
  [ "$(cat "$T/f")" = "$(printf 'short\nmore')" ]
  [ "$(wc -c < "$T/f")" = 11 ]
}

@test "O_TRUNC alone empties the file at close, never publishing an empty value before data" {
  echo one > "$T/f"
  : > "$T/f"
  [ "$(stat -c %s "$T/f")" = 0 ]
  echo two > "$T/f"
  # created (v0), one, truncate, two: the truncate followed by data is one update
  [ "$(ver "$T/f")" = 3 ]
}

@test "mkdir makes a directory, even while empty; files inside it; ls -l shows their stat" {
  mkdir "$T/d"
  [ -d "$T/d" ]
  echo x > "$T/d/a"
  echo yy > "$T/d/b"
  run ls -l "$T/d"
  assert_success
  assert_line --regexp '^-rw-r--r-- 1 .* 2 .* a$'
  assert_line --regexp '^-rw-r--r-- 1 .* 3 .* b$'
}

@test "a node of unknown kind with children is a directory, without children a file" {
  znode_cli create "/t$BATS_TEST_NUMBER/p" "pdata"
  znode_cli create "/t$BATS_TEST_NUMBER/p/c" "cdata"
  znode_cli create "/t$BATS_TEST_NUMBER/leaf" "leafdata"
  [ -d "$T/p" ]
  [ -f "$T/leaf" ]
  [ "$(cat "$T/p/c")" = cdata ]
  [ "$(cat "$T/p/.data")" = pdata ]
  run ls -A "$T/p"
  assert_output "$(printf 'c\n.data')" || assert_output "$(printf '.data\nc')"
}

@test "a directory's data is DIR/.data, reachable by name and listed only when non-empty" {
  mkdir "$T/d"
  [ -z "$(ls -A "$T/d")" ]
  [ "$(cat "$T/d/.data")" = "" ]
  echo config > "$T/d/.data"
  [ "$(znode_cli get "/t$BATS_TEST_NUMBER/d")" = config ]
  run ls -A "$T/d"
  assert_output .data
}

@test "st_ino names the znode: delete and recreate gives a new inode number" {
  echo a > "$T/f"
  i1="$(stat -c %i "$T/f")"
  rm "$T/f"
  echo b > "$T/f"
  i2="$(stat -c %i "$T/f")"
  [ "$i1" != "$i2" ]
}

@test "touch on an existing node keeps its data and makes its mtime now (one write); touch creates a missing one" {
  echo keep > "$T/f"
  v="$(ver "$T/f")"
  touch "$T/f"
  [ "$(ver "$T/f")" = "$((v + 1))" ]
  [ "$(cat "$T/f")" = keep ]
  touch "$T/new"
  [ -f "$T/new" ]
  [ "$(stat -c %s "$T/new")" = 0 ]
}

@test "chmod and chown to anything but what the node shows, symlinks and hard links fail with EPERM" {
  echo a > "$T/f"
  run chmod 600 "$T/f"
  assert_failure
  assert_output --partial "Operation not permitted"
  run chown 1:1 "$T/f"
  assert_failure
  assert_output --partial "Operation not permitted"
  run ln -s f "$T/l"
  assert_failure
  assert_output --partial "Operation not permitted"
  run ln "$T/f" "$T/h"
  assert_failure
  assert_output --partial "Operation not permitted"
}

@test "rm deletes a leaf, rmdir an empty directory, ENOTEMPTY otherwise, rm -r a tree" {
  echo a > "$T/f"
  rm "$T/f"
  [ ! -e "$T/f" ]
  mkdir "$T/d"
  echo x > "$T/d/x"
  run rmdir "$T/d"
  assert_failure
  assert_output --partial "Directory not empty"
  mkdir -p "$T/d/e/f"
  echo y > "$T/d/e/f/g"
  echo dirdata > "$T/d/.data"
  rm -r "$T/d"
  [ ! -e "$T/d" ]
  run znode_cli stat "/t$BATS_TEST_NUMBER/d"
  assert_failure 1
  assert_output --partial "no node"
}

@test "mv of a leaf file and of a directory with children is one rename, and keeps the kinds" {
  echo payload > "$T/f"
  mv "$T/f" "$T/g"
  [ ! -e "$T/f" ]
  [ "$(cat "$T/g")" = payload ]
  echo other > "$T/h"
  mv "$T/g" "$T/h"
  [ "$(cat "$T/h")" = payload ]
  mkdir -p "$T/d/empty"
  echo c > "$T/d/c"
  run mv "$T/d" "$T/e"
  assert_success
  assert_output ""
  [ ! -e "$T/d" ]
  [ "$(cat "$T/e/c")" = c ]
  [ -d "$T/e/empty" ]
  run znode_cli ls "/t$BATS_TEST_NUMBER/e"
  assert_output "$(printf 'c\nempty')"
}

@test "set -C and mkdir fail with EEXIST when the node exists (exclusive create)" {
  echo first > "$T/lockfile"
  run bash -c "set -C; echo second > '$T/lockfile'"
  assert_failure
  assert_output --partial "cannot overwrite existing file"
  [ "$(cat "$T/lockfile")" = first ]
  # bash's noclobber checks with stat first; O_EXCL itself is the mount's: EEXIST.
  run /usr/bin/python3 -c 'import os, sys
try: os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
except FileExistsError: print("EEXIST")' "$T/lockfile"
  assert_output EEXIST
  mkdir "$T/d"
  run mkdir "$T/d"
  assert_failure
  assert_output --partial "File exists"
}

@test "reserved names cannot be created: .data, .clone and the @v= / @wait= forms" {
  run mkdir "$T/x@v=3"
  assert_failure
  assert_output --partial "Invalid argument"
  run mkdir "$T/.clone"
  assert_failure
  assert_output --partial "File exists"
  # "f@wait=N" and "f@v=N" of a missing f: there is no f to wait on or to write at N.
  run bash -c "echo a > '$T/y@wait=1'"
  assert_failure
  assert_output --partial "No such file or directory"
  run touch "$T/z@v=1"
  assert_failure
  assert_output --partial "No such file or directory"
  [ -z "$(znode_cli ls "/t$BATS_TEST_NUMBER")" ]
}

@test "missing nodes are ENOENT" {
  run cat "$T/nope"
  assert_failure
  assert_output --partial "No such file or directory"
  run ls "$T/nope"
  assert_failure
  assert_output --partial "No such file or directory"
}

@test "data up to 1000000 bytes is accepted; past ZooKeeper's limit write(2) fails with EFBIG" {
  head -c 1000000 /dev/urandom > "$BATS_TEST_TMPDIR/big"
  cp "$BATS_TEST_TMPDIR/big" "$T/big"
  cmp "$BATS_TEST_TMPDIR/big" "$T/big"
  [ "$(stat -c %s "$T/big")" = 1000000 ]
  run bash -c "head -c 1048576 /dev/zero > '$T/huge'"
  assert_failure
  assert_output --partial "File too large"
  run bash -c "printf '%*s' 1048576 '' > '$T/huge2'"
  assert_failure
  assert_output --partial "File too large"
}

@test "getfattr -d shows every stat field, user.zk.stat and the ACL; they are read-only" {
  echo v > "$T/f"
  run getfattr -d -m - "$T/f"
  assert_success
  for field in czxid mzxid pzxid ctime mtime version cversion aversion ephemeral_owner data_length num_children stat acl; do
    assert_output --partial "user.zk.$field="
  done
  [ "$(getfattr --only-values -n user.zk.data_length "$T/f")" = 2 ]
  [ "$(getfattr --only-values -n user.zk.ephemeral_owner "$T/f")" = 0 ]
  [ "$(getfattr --only-values -n user.zk.acl "$T/f")" = "world:anyone:cdrwa" ]
  getfattr --only-values -n user.zk.stat "$T/f" | grep -qx 'version=1'
  # Read-only: ENOTSUP, which cp -a and mv skip quietly when they copy xattrs.
  run setfattr -n user.zk.version -v 7 "$T/f"
  assert_failure
  assert_output --partial "Operation not supported"
}

@test "chmod, chown and explicit times to what the node already shows succeed and change nothing" {
  echo a > "$T/f"
  mkdir "$T/d"
  v="$(ver "$T/f")"
  chmod "$(stat -c %a "$T/f")" "$T/f"
  chmod "$(stat -c %a "$T/d")" "$T/d"
  chown "$(stat -c %u:%g "$T/f")" "$T/f"
  chown "$(stat -c %u:%g "$T/d")" "$T/d"
  touch -d "@$(stat -c %.9Y "$T/f")" "$T/f"
  [ "$(ver "$T/f")" = "$v" ]
  [ "$(cat "$T/f")" = a ]
}

@test "setfattr user.zk.acl sets the ACL in ZooKeeper's text form" {
  echo v > "$T/f"
  setfattr -n user.zk.acl -v "world:anyone:r" "$T/f"
  [ "$(getfattr --only-values -n user.zk.acl "$T/f")" = "world:anyone:r" ]
  run setfattr -n user.zk.acl -v "nonsense" "$T/f"
  assert_failure
  assert_output --partial "Invalid argument"
}

@test "fusermount3 -u unmounts cleanly and the session ends" {
  mount_fs extra
  [ -d "$(fs_root)/extra/zookeeper" ]
  pid="$(mount_pid extra)"
  fusermount3 -u "$(fs_root)/extra"
  wait_until 10 "znodefs $pid to exit" bash -c "! kill -0 $pid 2>/dev/null"
  run mountpoint -q "$(fs_root)/extra"
  assert_failure
}

@test "mount -t fuse.znodefs works and --help documents every option" {
  # mount(8) runs helpers with a sanitized PATH, so the program must be where sh finds it:
  # /usr/local/bin, as `make install` puts it. Link our build there unless one is installed.
  link=/usr/local/bin/znodefs
  made_link=""
  if [ ! -e "$link" ]; then
    ln -s "$ZNODEFS" "$link"
    made_link=1
  fi
  dir="$(fs_root)/viamount"
  mkdir -p "$dir"
  echo "$dir" >> "$(zn_state_dir)/mounts"
  run mount -t fuse.znodefs -o session_timeout=5000 "$(member_connect 1)" "$dir"
  [ -z "$made_link" ] || rm -f "$link"
  assert_success
  mountpoint -q "$dir"
  [ -d "$dir/zookeeper" ]
  fusermount3 -u "$dir"
  run "$ZNODEFS" --help
  assert_success
  for opt in session_timeout auth tls cafile certfile keyfile entry_timeout attr_timeout spin_us ro foreground debug; do
    assert_output --partial "$opt"
  done
}

@test "-o spin_us=0 and a spinning mount both serve reads, writes and remote changes; a bad value fails the mount" {
  mount_fs nospin "$(ensemble_connect)" "session_timeout=6000,spin_us=0"
  N="$(fs_root)/nospin"
  mount_fs spin "$(ensemble_connect)" "session_timeout=6000,spin_us=5000"
  S="$(fs_root)/spin"
  echo one > "$T/f"
  for m in "$N" "$S"; do
    [ "$(cat "$m/t$BATS_TEST_NUMBER/f")" = one ]
  done
  # a write through one mount is seen by the other's next read, spinning or not
  echo two > "$N/t$BATS_TEST_NUMBER/f"
  wait_until 10 "the spinning mount sees the change" \
    bash -c "[ \"\$(cat '$S/t$BATS_TEST_NUMBER/f')\" = two ]"
  echo three > "$S/t$BATS_TEST_NUMBER/f"
  wait_until 10 "the other mount sees the change" \
    bash -c "[ \"\$(cat '$N/t$BATS_TEST_NUMBER/f')\" = three ]"
  # back-to-back cached reads while spinning give the current value every time
  for i in $(seq 50); do [ "$(cat "$S/t$BATS_TEST_NUMBER/f")" = three ]; done
  fusermount3 -u "$N"
  fusermount3 -u "$S"
  dir="$(fs_root)/badspin"
  mkdir -p "$dir"
  run timeout 30 "$ZNODEFS" -o spin_us=lots "$(ensemble_connect)" "$dir"
  assert_failure
  assert_output --partial "spin_us=lots"
  run mountpoint -q "$dir"
  assert_failure
}

@test "a bad HOSTS fails the mount command itself" {
  dir="$(fs_root)/bad"
  mkdir -p "$dir"
  port="$(free_port)"
  run timeout 60 "$ZNODEFS" -o session_timeout=2000 "127.0.0.1:$port" "$dir"
  assert_failure 1
  assert_output --partial "cannot reach 127.0.0.1:$port"
  run mountpoint -q "$dir"
  assert_failure
}

@test "a read-only mount refuses writes with EROFS and still reads" {
  echo ro > "$T/f"
  mount_fs ro "$(member_connect 1)" "ro,session_timeout=5000"
  R="$(fs_root)/ro/t$BATS_TEST_NUMBER"
  [ "$(cat "$R/f")" = ro ]
  run bash -c "echo no > '$R/f'"
  assert_failure
  assert_output --partial "Read-only file system"
}
