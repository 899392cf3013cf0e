#!/usr/bin/env bats
# znodefs as a mount daemon (filesystem.md "Mounting"): mount, df and findmnt name the ensemble
# and the filesystem type; in the background it logs to -o log=FILE (or syslog), each event
# once, and nothing reaches the terminal it was started from.

load fs_helpers

setup_file() {
  fs_start_ensemble
}

teardown_file() { fs_teardown; }

setup() { zn_load_bats_libs; }

@test "findmnt and df show the connect string as the source and fuse.znodefs as the type" {
  mount_fs a "$(ensemble_connect)"
  run findmnt -n -o SOURCE,FSTYPE "$(fs_root)/a"
  assert_success
  assert_output "$(ensemble_connect) fuse.znodefs"
  run df --output=source "$(fs_root)/a"
  assert_line "$(ensemble_connect)"
}

@test "a background mount prints nothing to the terminal and logs each event once to -o log=FILE" {
  dir="$(fs_root)/bg"
  log="$(fs_root)/bg.events"
  mkdir -p "$dir"
  echo "$dir" >> "$(zn_state_dir)/mounts"  # unmounted in teardown; the daemon exits with it
  run "$ZNODEFS" -o "log=$log" "$(ensemble_connect)" "$dir"
  assert_success
  assert_output ""
  mountpoint -q "$dir"
  echo x > "$dir/f$BATS_TEST_NUMBER"
  fusermount3 -u "$dir"
  wait_until 20 "the daemon logged its unmount" grep -q "unmounted mountpoint=$dir" "$log"
  [ "$(grep -c "mounted hosts=$(ensemble_connect) mountpoint=$dir sid=0x" "$log")" = 1 ]
  [ "$(grep -c "session event=CLOSED" "$log")" = 1 ]
  # Each event once: no line repeats once its timestamp is set aside.
  run bash -c "cut -d' ' -f2- '$log' | sort | uniq -d"
  assert_output ""
}

@test "a background mount without -o log= logs each event once to syslog (daemon facility), nothing to the terminal" {
  command -v unshare >/dev/null || skip "unshare (util-linux) not installed"
  dir="$(fs_root)/sl"
  out="$(fs_root)/sl.syslog"
  mkdir -p "$dir"
  # A private mount namespace with its own /dev/log (tests/fs/syslog_mount.sh): the machine's
  # syslog is neither needed nor touched. The script unmounts before it returns.
  run unshare -m --propagation private "$ZN_REPO_ROOT/tests/fs/syslog_mount.sh" \
    "$ZNODEFS" "$(ensemble_connect)" "$dir" "$out"
  assert_success
  assert_output ""
  # Shown only if a check below fails: every message the listener received.
  echo "--- syslog messages received ---"
  cat "$out"
  # <30> is LOG_DAEMON | LOG_INFO; syslog adds the time and the program's name and PID.
  run grep -c "^<30>.* znodefs\[[0-9]*\]: mounted hosts=$(ensemble_connect) mountpoint=$dir sid=0x" "$out"
  assert_output 1
  run grep -c "session event=CLOSED" "$out"
  assert_output 1
  run grep -c "unmounted mountpoint=$dir" "$out"
  assert_output 1
  # Each event once: no message repeats once syslog's timestamp is set aside.
  run bash -c "sed -E 's/^<[0-9]+>[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} //' '$out' | sort | uniq -d"
  assert_output ""
}
