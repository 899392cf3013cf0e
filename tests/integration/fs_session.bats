#!/usr/bin/env bats
# znodefs and session expiry (filesystem.md "Failures"): when the mount's session expires (here:
# the mount process is SIGSTOPped past its session timeout), its ephemeral files and locks are
# gone, the open files that depended on them fail with EIO, the loss is logged, and the mount
# carries on with a new session: reads, writes, new ephemeral files, watches and waiting reads
# all work again without remounting. A 3-member ensemble; mount a (short session timeout) on
# member 1, mount b on member 3 as the observer.

load fs_helpers

setup_file() {
  fs_start_ensemble
  mount_fs a "$(member_connect 1)" session_timeout=4000
  mount_fs b "$(member_connect "${ZN_FS_MEMBERS:-3}")"
  export A="$(fs_root)/a" B="$(fs_root)/b"
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
}

teardown() {
  # a failed test may leave mount a stopped: it must answer for the unmount
  kill -CONT "$(mount_pid a)" 2>/dev/null || true
  fs_teardown_jobs
}

# While mount a is stopped, every close(2) of a file on it blocks in FLUSH, so a process that
# holds a file of mount a open must fork nothing then (a child's exit closes its copy).
# hold NAME PATH: such a process: it opens PATH for writing through its fd 9 and writes "alive";
# on a line poked into its first fifo it writes again and records the outcome in NAME.result
# (ok or failed, the error in NAME.err); on a line into its second fifo it exits. (One fifo per
# step: a reader reopening a fifo whose last writer has not closed yet would read EOF.)
hold() {
  local name="$1" path="$2" dir="$BATS_TEST_TMPDIR"
  mkfifo "$dir/$name.fifo1" "$dir/$name.fifo2"
  bash -c 'exec 9> "$1" || exit 1
           echo alive >&9
           echo ready > "$2.ready"
           read -r _ < "$2.fifo1"
           if echo again >&9 2> "$2.err"; then echo ok > "$2.result"; else echo failed > "$2.result"; fi
           read -r _ < "$2.fifo2"' _ "$path" "$dir/$name" &
  BG="$BG $!"
  wait_until 10 "$name to hold $path open" test -e "$dir/$name.ready"
}

# poke NAME STEP: step 1 or 2 of holder NAME (bounded: the holder may have died).
poke() { timeout 10 bash -c 'echo go > "$1"' _ "$BATS_TEST_TMPDIR/$1.fifo$2"; }

# expire_mount_a MARKER: SIGSTOP mount a until the ensemble has expired its session (the
# ephemeral file MARKER, created through a, is gone as seen from b), then SIGCONT it.
expire_mount_a() {
  local marker="$1" pid
  pid="$(mount_pid a)"
  kill -STOP "$pid"
  wait_until 40 "the ensemble to expire mount a's session ($marker gone on b)" test ! -e "$B/$marker"
  kill -CONT "$pid"
}

@test "after its session expires the mount opens a new one: ephemeral files are gone, their fds get EIO, the rest works" {
  echo before > "$A/$T/plain"
  mkdir "$A/$T/members"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/members"
  hold me "$A/$T/members/me"
  wait_until 10 "members/me visible on mount b" test -e "$B/$T/members/me"
  expire_mount_a "$T/members/me"
  # a change made while a was stopped, so its first reads must come from the new session
  echo changed > "$B/$T/plain"
  wait_until 30 "mount a to read the new value through its new session" \
    bash -c "[ \"\$(cat '$A/$T/plain')\" = changed ]"
  # the fd whose ephemeral file died with the old session fails, as write(2) reports it
  poke me 1
  wait_until 10 "the holder's second write to end" test -s "$BATS_TEST_TMPDIR/me.result"
  [ "$(cat "$BATS_TEST_TMPDIR/me.result")" = failed ]
  grep -q "Input/output error" "$BATS_TEST_TMPDIR/me.err"
  poke me 2
  [ ! -e "$B/$T/members/me" ]
  # the loss is logged, and a new session was opened
  grep -q "session expired" "$(fs_root)/a.log"
  grep -q "new session" "$(fs_root)/a.log"
  # writes, and new ephemeral files of the new session, work
  echo after > "$A/$T/plain"
  wait_until 10 "mount b to read what a wrote" bash -c "[ \"\$(cat '$B/$T/plain')\" = after ]"
  exec 8> "$A/$T/members/me2"
  wait_until 10 "members/me2 visible on mount b" test -e "$B/$T/members/me2"
  exec 8>&-
  wait_until 10 "members/me2 gone when its fd closed" test ! -e "$B/$T/members/me2"
}

@test "watches are armed again in the new session: a remote write and a remote delete reach mount a" {
  mkdir "$A/$T/m"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/m"
  hold marker "$A/$T/m/marker"
  wait_until 10 "marker visible on mount b" test -e "$B/$T/m/marker"
  echo one > "$B/$T/f"
  [ "$(cat "$A/$T/f")" = one ]
  expire_mount_a "$T/m/marker"
  wait_until 30 "mount a to serve again" cat "$A/$T/f"
  [ "$(cat "$A/$T/f")" = one ]
  # a second write from b: a sees it without remounting (its cache follows the new watches)
  echo two > "$B/$T/f"
  wait_until 10 "mount a to see the remote write" bash -c "[ \"\$(cat '$A/$T/f')\" = two ]"
  rm "$B/$T/f"
  wait_until 10 "mount a to see the remote delete" test ! -e "$A/$T/f"
}

@test "a cat f@wait=V waiting when the session expired still returns the next write" {
  echo v1 > "$A/$T/f"
  local v
  v="$(ver "$A/$T/f")"
  mkdir "$A/$T/m"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/m"
  hold marker "$A/$T/m/marker"
  wait_until 10 "marker visible on mount b" test -e "$B/$T/m/marker"
  cat "$A/$T/f@wait=$v" > "$BATS_TEST_TMPDIR/out" 2> "$BATS_TEST_TMPDIR/err" &
  local waiter="$!"
  BG="$BG $waiter"
  expire_mount_a "$T/m/marker"
  wait_until 30 "mount a to serve again" cat "$A/$T/f"
  pid_alive "$waiter" || { cat "$BATS_TEST_TMPDIR/err"; false; }
  echo v2 > "$B/$T/f"
  wait_until 20 "the waiting cat to finish" bash -c "! kill -0 $waiter 2>/dev/null"
  wait "$waiter"
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = v2 ]
}

@test "a flock held when the session expired is released with it; the mount can lock again" {
  echo x > "$A/$T/lockfile"
  mkdir "$A/$T/m"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/m"
  hold marker "$A/$T/m/marker"
  wait_until 10 "marker visible on mount b" test -e "$B/$T/m/marker"
  flock -x "$A/$T/lockfile" -c "echo held > '$BATS_TEST_TMPDIR/held'; exec sleep 600" &
  local locker="$!"
  BG="$BG $locker"
  wait_until 10 "the lock to be held" test -s "$BATS_TEST_TMPDIR/held"
  run flock -E "$FLOCK_BUSY" -n "$B/$T/lockfile" -c true
  assert_failure "$FLOCK_BUSY"
  expire_mount_a "$T/m/marker"
  # the holder's lock went with the session: b can take it
  wait_until 20 "b to take the lock the expired session held" flock -n "$B/$T/lockfile" -c true
  kill_job "$locker"
  # and mount a, in its new session, can lock and exclude b again
  flock -x "$A/$T/lockfile" -c "echo again > '$BATS_TEST_TMPDIR/held2'; exec sleep 600" &
  BG="$BG $!"
  wait_until 20 "mount a to hold the lock again" test -s "$BATS_TEST_TMPDIR/held2"
  run flock -E "$FLOCK_BUSY" -n "$B/$T/lockfile" -c true
  assert_failure "$FLOCK_BUSY"
}

@test "inotify set before the expiry still hears a remote delete: the new session arms the watches again" {
  command -v inotifywait >/dev/null || skip "inotify-tools not installed"
  echo x > "$A/$T/f"
  mkdir "$A/$T/m"
  setfattr -n user.zk.child_mode -v ephemeral "$A/$T/m"
  hold marker "$A/$T/m/marker"
  wait_until 10 "marker visible on mount b" test -e "$B/$T/m/marker"
  [ "$(cat "$A/$T/f")" = x ]
  inotifywait -e delete_self -t 60 "$A/$T/f" > "$BATS_TEST_TMPDIR/ev" 2>&1 &
  local watcher="$!"
  BG="$BG $watcher"
  wait_until 10 "inotifywait to watch" grep -q "Watches established" "$BATS_TEST_TMPDIR/ev"
  expire_mount_a "$T/m/marker"
  wait_until 30 "mount a to log its watches re-armed" grep -q "watches re-armed" "$(fs_root)/a.log"
  # nothing on mount a touches f again: only a re-armed watch can tell the kernel
  rm "$B/$T/f"
  wait_until 20 "inotifywait to report the delete" grep -q DELETE_SELF "$BATS_TEST_TMPDIR/ev"
}
