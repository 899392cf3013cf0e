#!/usr/bin/env bats
# znodefs under the tools people move trees with (filesystem.md "Mapping": chmod/chown to what
# the node shows succeed, any other mode fails with EPERM; times: fs_times.bats), each result
# read back on a second mount on another member. The option sets that work are the ones
# docs/filesystem.md gives users; the plain forms that cannot work are checked to fail with
# EPERM and to leave the data right.

load fs_helpers

setup_file() {
  command -v rsync >/dev/null || { echo "rsync missing (tools/install-deps.sh)" >&2; return 1; }
  command -v git >/dev/null || { echo "git missing (tools/install-deps.sh)" >&2; return 1; }
  fs_setup_file_two_mounts
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
  SRC="$BATS_TEST_TMPDIR/src"
  make_src_tree "$SRC"
}

# same_tree DIR: DIR on mount b holds exactly $SRC (names, kinds, data), once replicated.
same_tree() {
  wait_until 20 "mount b has $1 like $SRC" diff -r "$SRC" "$B/$1"
}

@test "tar -xf -m as root extracts a tree without an error (the owner it chowns to is the one shown)" {
  tar -cf "$BATS_TEST_TMPDIR/src.tar" -C "$SRC" .
  run tar -xf "$BATS_TEST_TMPDIR/src.tar" -m -C "$A/$T"
  assert_success
  assert_output ""
  same_tree "$T"
}

@test "tar -xf as a user (uid 65534, on an allow_other mount) extracts a tree without an error" {
  command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
  mount_fs u "$(member_connect 1)" "session_timeout=6000,allow_other"
  # ZooKeeper has no setDataTime: there the user keeps no times (fs_times.bats)
  [ "${ZN_TARGET:-znoded}" = znoded ] || keep="-m"
  tar --format=posix -cf "$BATS_TEST_TMPDIR/src.tar" -C "$SRC" .
  # The user gets the directory and the archive from root's shell (bats' temporary directories
  # are root's alone); tar itself runs as the user: no chown, modes under its umask.
  run bash -c "cd '$(fs_root)/u/$T' && umask 022 && setpriv --reuid=65534 --regid=65534 --clear-groups \
    tar -xf - ${keep:-} < '$BATS_TEST_TMPDIR/src.tar'"
  assert_success
  assert_output ""
  same_tree "$T"
  [ "${ZN_TARGET:-znoded}" = znoded ] || return 0
  [ "$(stat -c %Y "$B/$T/sub/b")" = "$(stat -c %Y "$SRC/sub/b")" ]
  fusermount3 -u "$(fs_root)/u"
}

@test "cp -r copies a tree without a word" {
  run cp -r "$SRC" "$A/$T/r"
  assert_success
  assert_output ""
  same_tree "$T/r"
}

@test "cp -a from the mount to the mount copies no read-only user.zk xattr error" {
  cp -r "$SRC" "$A/$T/from"
  # ZooKeeper has no setDataTime: there only the times cannot be kept (fs_times.bats)
  [ "${ZN_TARGET:-znoded}" = znoded ] || keep="--no-preserve=timestamps"
  run cp -a ${keep:-} "$A/$T/from" "$A/$T/to"
  assert_success
  assert_output ""
  same_tree "$T/to"
}

@test "rsync -rc --chmod=F644,D755 copies a tree and a second run transfers nothing" {
  run rsync -rc --chmod=F644,D755 "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
  same_tree "$T"
  run rsync -rc --chmod=F644,D755 -i "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
  echo changed > "$SRC/sub/b"
  run rsync -rc --chmod=F644,D755 -i "$SRC/" "$A/$T/"
  assert_success
  assert_output --partial "sub/b"
  same_tree "$T"
}

@test "rsync -a fails with EPERM on the mode of its temporary file (the mode is the node's ACL); --no-perms works" {
  run rsync -a "$SRC/" "$A/$T/"
  assert_failure 23
  assert_output --partial "mkstemp"
  assert_output --partial "Operation not permitted"
  [ "${ZN_TARGET:-znoded}" = znoded ] || return 0 # the times need znoded's setDataTime
  run rsync -a --no-perms "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
  same_tree "$T"
  run rsync -a --no-perms -i "$SRC/" "$A/$T/"
  assert_success
  assert_output ""
}

@test "git init, add and commit work on the mount, and the commit is readable on mount b" {
  cd "$A/$T"
  git init -q .
  echo hello > x
  git add x
  git -c user.email=t@example.com -c user.name=t commit -qm one
  id="$(git rev-parse HEAD)"
  wait_until 20 "mount b sees the commit" git -C "$B/$T" cat-file -e "$id"
  [ "$(git -C "$B/$T" show HEAD:x)" = hello ]
}

@test "an editor's save (vim: temp file, fsync, rename over the target) keeps the data" {
  command -v vim >/dev/null || skip "vim not installed"
  printf 'line1\n' > "$A/$T/ed.txt"
  run vim -u NONE -i NONE -es -c 'set writebackup nobackup backupcopy=no' -c '$put =\"line2\"' -c wq "$A/$T/ed.txt"
  assert_success
  wait_value "$B/$T/ed.txt" "$(printf 'line1\nline2')"
}

@test "mv of a tree with children moves it in one rename, without a word" {
  cp -r "$SRC" "$A/$T/src"
  mkdir "$A/$T/dst"
  run mv "$A/$T/src" "$A/$T/dst/"
  assert_success
  assert_output ""
  [ ! -e "$A/$T/src" ]
  same_tree "$T/dst/src"
}
