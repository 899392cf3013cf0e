#!/usr/bin/env bats
# znodefs, paths deeper than PATH_MAX (docs/filesystem.md "Limits"): Linux's PATH_MAX (4096)
# bounds the path one syscall takes, not how deep a tree goes, so a shell that cd's one
# directory at a time, or a program that uses openat, works at any depth the mount allows
# (FS_MAX_PATH_BYTES, 32 KiB from the mount's root); past it, ENAMETOOLONG. Issue 14: mkdir
# and cd of 250-byte names failed at depth 17, where the whole path passed libznode's 4096.

load fs_helpers

setup_file() { fs_setup_file_two_mounts; }

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
  NAME="$(printf 'n%.0s' $(seq 250))"
}

# deep_walk ROOT DEPTH: cd through DEPTH directories named $NAME under ROOT (a subshell).
@test "mkdir and cd of 250-byte names go 60 deep (15 KB of path), and a file there is read on mount b" {
  run bash -c "cd '$A/$T' && for i in \$(seq 60); do mkdir '$NAME' && cd '$NAME' || exit 1; done &&
               echo deep > f && cat f && pwd | wc -c"
  assert_success
  assert_line --index 0 deep
  [ "${lines[1]}" -gt 15000 ]
  run bash -c "cd '$B/$T' && for i in \$(seq 60); do cd '$NAME' || exit 1; done && cat f && ls -A"
  assert_success
  assert_output "$(printf 'deep\nf')"
}

@test "a path past the mount's 32 KiB is ENAMETOOLONG; a shorter one next to it works" {
  # 130 levels of 251 bytes pass 32768 at level 131 (with /$T in front)
  run /usr/bin/python3 - "$A/$T" "$NAME" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
name = sys.argv[2]
depth = 0
try:
    while True:
        try:
            os.mkdir(name, dir_fd=fd)
        except OSError as e:
            print("mkdir at depth %d: %s" % (depth + 1, errno.errorcode[e.errno]))
            break
        nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
        depth += 1
    os.mkdir("short", dir_fd=fd)
    print("short at depth %d: %s" % (depth + 1, os.path.isdir("/proc/self/fd/%d/short" % fd)))
finally:
    os.close(fd)
PY
  assert_success
  assert_output "$(printf 'mkdir at depth 131: ENAMETOOLONG\nshort at depth 131: True')"
}
