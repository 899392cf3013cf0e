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
