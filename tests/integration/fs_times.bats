#!/usr/bin/env bats
# znodefs, the contract's times (docs/filesystem.md "Times"): an explicit mtime (touch -d,
# cp -a, tar -x, rsync -t) is stored with the node through znoded's setDataTime extension, so
# stat shows it on this mount and on a second mount on another member; touch makes it now; a
# directory's mtime moves when entries are made, removed or renamed in it. Issue 14: explicit
# times failed with EPERM, so cp -a, tar -x and rsync -a exited non-zero. Against ZooKeeper
# (ZN_TARGET=zookeeper), which has no such extension, an explicit time fails with EPERM and
# touch still works (a setData of the data the node has).

load fs_helpers

setup_file() { fs_setup_file_two_mounts; }

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
  SRC="$BATS_TEST_TMPDIR/src"
  make_src_tree "$SRC"
  # Distinct past times, with milliseconds, files before their directories (as tar and cp set
  # them, a directory's last).
  touch -d "2001-02-03 04:05:06.789" "$SRC/a"
  touch -d "2002-03-04 05:06:07.123" "$SRC/sub/b"
  touch -d "2003-04-05 06:07:08.456" "$SRC/sub/deep/blob"
  touch -d "2004-05-06 07:08:09" "$SRC/sub/empty"
  touch -d "2005-06-07 08:09:10.5" "$SRC/sub/deep"
  touch -d "2006-07-08 09:10:11" "$SRC/sub"
}

teardown() { fs_teardown_jobs; }

needs_extension() {
  [ "${ZN_TARGET:-znoded}" = znoded ] || skip "ZooKeeper has no setDataTime"
}

# mtimes DIR: "path mtime-in-ms" for everything under DIR, sorted (the root excluded).
mtimes() {
  (cd "$1" && find . -mindepth 1 -printf '%P %T@\n' |
    awk '{ split($2, t, "."); printf "%s %s%s\n", $1, t[1], substr(t[2] "000", 1, 3) }' | sort)
}

ms() { stat -c '%.3Y' "$1" | tr -d .; }

# mtime_is FILE FORMAT TEST VALUE: stat -c FORMAT of FILE compared with test(1)'s TEST, read
# anew at each call (for wait_until).
mtime_is() { test "$(stat -c "$2" "$1")" "$3" "$4"; }

# mtimes_are DIR WANT: mtimes DIR prints WANT.
mtimes_are() { test "$(mtimes "$1")" = "$2"; }

# same_times DIR: the tree on mount a and on mount b has $SRC's data and mtimes (ms).
same_times() {
  run mtimes "$SRC"
  local want="$output"
  wait_until 20 "mount b has $1 like $SRC" diff -r "$SRC" "$B/$1"
  run mtimes "$A/$1"
  assert_output "$want"
  wait_until 20 "mount b shows $SRC's mtimes under $1" mtimes_are "$B/$1" "$want"
}

@test "touch -d sets the mtime stat shows, to the millisecond, here and on mount b" {
  needs_extension
  echo data > "$A/$T/f"
  run touch -d "2001-02-03 04:05:06.789" "$A/$T/f"
  assert_success
  assert_output ""
  [ "$(stat -c %y "$A/$T/f")" = "2001-02-03 04:05:06.789000000 +0000" ] || stat "$A/$T/f"
  [ "$(stat -c %y "$A/$T/f")" = "2001-02-03 04:05:06.789000000 +0000" ]
  wait_until 20 "mount b to show the mtime" mtime_is "$B/$T/f" %y = "2001-02-03 04:05:06.789000000 +0000"
  [ "$(cat "$B/$T/f")" = data ]
  # the atime is the mtime on this mount
  [ "$(stat -c %X "$A/$T/f")" = "$(stat -c %Y "$A/$T/f")" ]
}

@test "touch makes a past mtime now, and keeps the data" {
  echo data > "$A/$T/f"
  [ "${ZN_TARGET:-znoded}" != znoded ] || touch -d "2001-02-03" "$A/$T/f"
  before="$(date +%s)"
  run touch "$A/$T/f"
  assert_success
  [ "$(stat -c %Y "$A/$T/f")" -ge "$before" ]
  [ "$(cat "$A/$T/f")" = data ]
  wait_until 20 "mount b to show the new mtime" mtime_is "$B/$T/f" %Y -ge "$before"
}

@test "an explicit time is a write: a compare-and-write at the version read before it fails with ECANCELED, the read-modify-write loop then stores its value" {
  needs_extension
  f="$A/$T/conf"
  echo replicas=3 > "$f"
  v="$(ver "$f")"
  touch -d "2001-02-03 04:05:06" "$f"
  [ "$(ver "$f")" = $((v + 1)) ]
  run setfattr --raw -n "user.zk.data@$v" -v replicas=5 "$f"
  assert_failure 1
  assert_output --partial "Operation canceled"
  [ "$(cat "$f")" = replicas=3 ]
  # docs/filesystem.md's loop, bounded: it reads the version again and succeeds
  tries=0
  until v="$(ver "$f")" && setfattr --raw -n "user.zk.data@$v" -v replicas=5 "$f" 2> /dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 5 ] || { echo "the loop did not store its value"; return 1; }
  done
  [ "$tries" = 0 ]
  wait_value "$B/$T/conf" replicas=5
}

@test "an atime alone cannot be kept: touch -a -d fails with EPERM and changes nothing" {
  echo data > "$A/$T/f"
  v="$(getfattr --only-values -n user.zk.version "$A/$T/f")"
  run touch -a -d "2001-02-03" "$A/$T/f"
  assert_failure 1
  assert_output --partial "Operation not permitted"
  [ "$(getfattr --only-values -n user.zk.version "$A/$T/f")" = "$v" ]
}

@test "an explicit mtime on a read-only mount fails with EROFS" {
  echo data > "$A/$T/f"
  mount_fs ro "$(member_connect 1)" "ro,session_timeout=6000"
  run touch -d "2001-02-03" "$(fs_root)/ro/$T/f"
  assert_failure 1
  assert_output --partial "Read-only file system"
  fusermount3 -u "$(fs_root)/ro"
}

@test "cp -a copies a tree with its mtimes, without a word" {
  needs_extension
  run cp -a "$SRC/." "$A/$T/"
  assert_success
  assert_output ""
  same_times "$T"
}

@test "cp -p keeps a file's mtime" {
  needs_extension
  run cp -p "$SRC/a" "$A/$T/a"
  assert_success
  assert_output ""
  [ "$(ms "$A/$T/a")" = "$(ms "$SRC/a")" ]
}

@test "tar -xf (as root, keeping times) extracts a tree with its mtimes, without a word" {
  needs_extension
  # the POSIX format keeps sub-second times (GNU's keeps seconds)
  tar --format=posix -cf "$BATS_TEST_TMPDIR/src.tar" -C "$SRC" .
  run tar -xf "$BATS_TEST_TMPDIR/src.tar" -C "$A/$T"
  assert_success
  assert_output ""
  same_times "$T"
}

@test "rsync -rlt copies a tree with its mtimes, and a second run transfers nothing" {
  needs_extension
  run rsync -rlt "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
  same_times "$T"
  run rsync -rlt -i "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
  echo changed > "$SRC/sub/b"
  run rsync -rlt -i "$SRC/" "$A/$T/"
  assert_success
  assert_output --partial "sub/b"
  wait_until 20 "mount b has the change" diff -r "$SRC" "$B/$T"
}

@test "mv of a file and of a tree keeps every mtime, here and on mount b" {
  needs_extension
  cp -a "$SRC/." "$A/$T/"
  mkdir "$A/$T/to"
  run mv "$A/$T/sub" "$A/$T/a" "$A/$T/to/"
  assert_success
  assert_output ""
  run mtimes "$SRC"
  want="$output"
  run mtimes "$A/$T/to"
  assert_output "$want"
  wait_until 20 "mount b shows the moved mtimes" mtimes_are "$B/$T/to" "$want"
}

@test "mv of a tree too big for one rename (450 nodes: EXDEV, so mv copies) keeps the mtimes, without a word" {
  needs_extension
  mkdir -p "$BATS_TEST_TMPDIR/big/d"
  for i in $(seq 450); do echo "$i" > "$BATS_TEST_TMPDIR/big/d/f$i"; done
  touch -d "2001-02-03 04:05:06.007" "$BATS_TEST_TMPDIR/big/d/f"*
  touch -d "2002-02-03 04:05:06" "$BATS_TEST_TMPDIR/big/d"
  cp -a "$BATS_TEST_TMPDIR/big/d" "$A/$T/d"
  mkdir "$A/$T/to"
  run mv "$A/$T/d" "$A/$T/to/"
  assert_success
  assert_output ""
  [ ! -e "$A/$T/d" ]
  run mtimes "$BATS_TEST_TMPDIR/big"
  want="$output"
  run mtimes "$A/$T/to"
  assert_output "$want"
}

@test "a directory's mtime and ctime move when entries are made, removed or renamed in it, also on mount b" {
  needs_extension
  mkdir -p "$A/$T/d" "$A/$T/e"
  # each step, and the directories whose entries it changes
  local steps=("d:echo x > $A/$T/d/f" "d:mkdir $A/$T/d/sub" "d e:mv $A/$T/d/f $A/$T/e/f"
               "d:rmdir $A/$T/d/sub" "e:rm $A/$T/e/f")
  for step in "${steps[@]}"; do
    dirs="${step%%:*}" cmd="${step#*:}"
    for dir in $dirs; do touch -d "2001-02-03 04:05:06" "$A/$T/$dir"; done
    for dir in $dirs; do
      [ "$(stat -c %Y "$A/$T/$dir")" = 981173106 ]
      wait_until 20 "mount b to show $dir's past mtime" mtime_is "$B/$T/$dir" %Y = 981173106
    done
    before="$(date +%s)"
    eval "$cmd"
    for dir in $dirs; do
      m="$(stat -c %Y "$A/$T/$dir")"
      [ "$m" -ge "$before" ] || { echo "after $cmd: $dir mtime $m < $before"; false; }
      [ "$(stat -c %Z "$A/$T/$dir")" -ge "$m" ]
      wait_until 20 "mount b to show $dir's mtime after $cmd" mtime_is "$B/$T/$dir" %Y -ge "$before"
    done
  done
  # a change made by a ZooKeeper client
  touch -d "2001-02-03 04:05:06" "$A/$T/d"
  wait_until 20 "mount b to show d's past mtime" mtime_is "$B/$T/d" %Y = 981173106
  before="$(date +%s)"
  znode_cli create "/$T/d/by-cli" x
  wait_until 20 "mount b to show d's mtime after a create by a ZooKeeper client" \
    mtime_is "$B/$T/d" %Y -ge "$before"
}

@test "a program sees a directory's mtime move at once after each entry change, 20 rounds (tests/fs/inprocess.py)" {
  needs_extension
  run /usr/bin/python3 "$ZN_REPO_ROOT/tests/fs/inprocess.py" dir-times "$A/$T" 20
  assert_success
  assert_output "dir-times: 180 checks, 0 failures"
}

@test "against a server without setDataTime an explicit mtime fails with EPERM and changes nothing" {
  [ "${ZN_TARGET:-znoded}" != znoded ] || skip "znoded has setDataTime (the other tests)"
  echo data > "$A/$T/f"
  m="$(stat -c %Y "$A/$T/f")"
  run touch -d "2001-02-03" "$A/$T/f"
  assert_failure 1
  assert_output --partial "Operation not permitted"
  [ "$(stat -c %Y "$A/$T/f")" = "$m" ]
}

@test "setting mtimes while another mount writes never undoes a write (tests/fs/times.py)" {
  needs_extension
  run /usr/bin/python3 "$ZN_REPO_ROOT/tests/fs/times.py" "$A/$T/f" "$B/$T/f" 300
  assert_success
  assert_output "times: 300 writes, 0 lost"
}
