#!/usr/bin/env bats
# The runnable examples of examples/fs_*.sh, run against two mounts (a, b) of one server: each
# does what its header says.

load fs_helpers

EX="$ZN_REPO_ROOT/examples"

setup_file() {
  fs_start_ensemble
  fs_mount_ab
}

teardown_file() { fs_teardown; }

setup() {
  zn_load_bats_libs
  BG=""
}

teardown() {
  fs_teardown_jobs
}

@test "fs_lock.sh: critical sections on two mounts never overlap" {
  log="$BATS_TEST_TMPDIR/log"
  for i in 1 2 3 4; do
    m="$A"; [ $((i % 2)) = 0 ] && m="$B"
    "$EX/fs_lock.sh" "$m/job.lock" bash -c "echo start >> '$log'; sleep 0.2; echo end >> '$log'" &
    BG="$BG $!"
  done
  for p in $BG; do wait "$p"; done
  BG=""
  [ "$(wc -l < "$log")" = 8 ]
  # strictly alternating: no start follows a start (nor an end an end)
  run uniq -d "$log"
  assert_output ""
  [ "$(sort "$log" | uniq -c | awk '{print $1}' | sort -u)" = 4 ]
}

# child_waits PID PREFIX: a child of PID is inside read(2) on a file whose path starts PREFIX.
child_waits() {
  local c syscall fd rest
  for c in $(pgrep -P "$1"); do
    read -r syscall fd rest < "/proc/$c/syscall" 2> /dev/null || continue
    [ "$syscall" = 0 ] && [[ "$(readlink "/proc/$c/fd/$((fd))")" == "$2"* ]] && return 0
  done
  return 1
}

@test "fs_leader.sh: one leader at a time; the next takes over when it exits" {
  out="$BATS_TEST_TMPDIR/out"
  release="$BATS_TEST_TMPDIR/release"
  "$EX/fs_leader.sh" "$A" first bash -c \
    "echo first >> '$out'; until [ -e '$release' ]; do sleep 0.05; done; echo first-done >> '$out'" 3>&- &
  BG="$!"
  wait_until 10 "first to lead" grep -q first "$out"
  "$EX/fs_leader.sh" "$B" second bash -c "echo second >> '$out'" 3>&- &
  second="$!"
  BG="$BG $second"
  # second is a candidate blocked on the election's @wait: only first's exit can make it lead
  wait_until 20 "second to wait for the election to change" child_waits "$second" "$B/election@wait="
  [ "$(cat "$out")" = first ]
  touch "$release"
  for p in $BG; do wait_exit "$p"; done
  BG=""
  [ "$(cat "$out")" = "$(printf 'first\nfirst-done\nsecond')" ]
}

@test "fs_registry.sh: an instance is listed while it runs and gone when it is killed" {
  "$EX/fs_registry.sh" "$A" web1 10.0.0.1:80 sleep 1000 3>&- &
  BG="$!"
  wait_until 10 "web1 listed on mount b" bash -c "'$EX/fs_registry.sh' '$B' --list | grep -qx 'web1 10.0.0.1:80'"
  kill -9 "$BG"
  wait "$BG" 2>/dev/null || true
  BG=""
  wait_until 10 "web1 gone" bash -c "! '$EX/fs_registry.sh' '$B' --list | grep -q web1"
}

@test "fs_config_watch.sh: blocks on @wait and prints each new version" {
  mkdir -p "$A/app"
  echo replicas=3 > "$A/app/config"
  out="$BATS_TEST_TMPDIR/out"
  "$EX/fs_config_watch.sh" "$B" 2 > "$out" &
  BG="$!"
  wait_until 10 "the first print" grep -q "replicas=3" "$out"
  echo replicas=5 > "$A/app/config"
  wait_until 10 "the reload" grep -q "replicas=5" "$out"
  echo replicas=7 > "$A/app/config"
  wait "$BG"
  BG=""
  grep -q "v3: replicas=7" "$out"
}

@test "fs_counter.sh: concurrent increments from two mounts lose nothing" {
  mkdir -p "$A/ctr"
  "$EX/fs_counter.sh" "$A/ctr/n" 30 > /dev/null &
  BG="$!"
  "$EX/fs_counter.sh" "$B/ctr/n" 30 > /dev/null &
  BG="$BG $!"
  for p in $BG; do wait "$p"; done
  BG=""
  [ "$(cat "$A/ctr/n")" = 60 ]
}
