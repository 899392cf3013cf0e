#!/usr/bin/env bats
# znodefs compare-and-write: `setfattr -n user.zk.data@V` and writes to "f@v=V" are atomic
# against every other writer and fail with ECANCELED when the version moved. Two mounts of the
# same server, 8 concurrent shell workers, no update lost.

load fs_helpers

setup_file() {
  fs_start_ensemble
  fs_mount_ab
}

teardown_file() { fs_teardown; }

setup() {
  fs_setup_test_dir
}

@test "setfattr user.zk.data@V writes only at version V; a stale V fails with ECANCELED" {
  echo 1 > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  setfattr --raw -n "user.zk.data@$v" -v two "$A/$T/f"
  [ "$(cat "$B/$T/f")" = two ]
  run setfattr --raw -n "user.zk.data@$v" -v three "$B/$T/f"
  assert_failure
  assert_output --partial "Operation canceled"
  [ "$(cat "$A/$T/f")" = two ]
  setfattr --raw -n "user.zk.data@-1" -v any "$B/$T/f"
  [ "$(cat "$A/$T/f")" = any ]
}

@test "writing \"f@v=V\" writes f only at version V; the loser's echo reports ECANCELED" {
  echo 1 > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  echo won > "$A/$T/f@v=$v"
  run bash -c "echo lost > '$B/$T/f@v=$v'"
  assert_failure
  assert_output --partial "Operation canceled"
  [ "$(cat "$B/$T/f")" = won ]
}

@test "each further write(2) on an open \"f@v=V\" is conditional on the version the last produced" {
  echo 0 > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  exec 7> "$A/$T/f@v=$v"
  printf one >&7
  printf two >&7
  [ "$(cat "$B/$T/f")" = onetwo ]
  echo intruder > "$B/$T/f"
  run bash -c "printf three >&7"
  exec 7>&-
  assert_failure
  assert_output --partial "Operation canceled"
  [ "$(cat "$A/$T/f")" = intruder ]
}

@test "rm \"f@v=V\" deletes f only at version V" {
  echo a > "$A/$T/f"
  v="$(ver "$A/$T/f")"
  echo b > "$A/$T/f"
  run rm "$A/$T/f@v=$v"
  assert_failure
  assert_output --partial "Operation canceled"
  [ -e "$A/$T/f" ]
  rm "$A/$T/f@v=$((v + 1))"
  [ ! -e "$B/$T/f" ]
}

# worker MOUNTDIR FORM: 50 increments of the counter with a read-modify-write retry loop.
worker() {
  local f="$1/$T/counter" form="$2" i v n
  for i in $(seq 50); do
    if [ "$form" = xattr ]; then
      until v=$(getfattr --only-values -n user.zk.version "$f") &&
            n=$(cat "$f") &&
            setfattr --raw -n "user.zk.data@$v" -v "$((n + 1))" "$f" 2>/dev/null; do :; done
    else
      until v=$(getfattr --only-values -n user.zk.version "$f") &&
            n=$(cat "$f") &&
            { echo "$((n + 1))" > "$f@v=$v"; } 2>/dev/null; do :; done
    fi
  done
}

run_counter() {
  local form="$1" pids="" k
  echo 0 > "$A/$T/counter"
  for k in 1 2 3 4 5 6 7 8; do
    if [ $((k % 2)) = 0 ]; then worker "$A" "$form" & else worker "$B" "$form" & fi
    pids="$pids $!"
  done
  for k in $pids; do wait "$k"; done
  [ "$(cat "$A/$T/counter")" = 400 ] || { echo "counter: $(cat "$A/$T/counter")"; return 1; }
  [ "$(ver "$A/$T/counter")" = 401 ]
}

@test "8 workers x 50 increments through setfattr user.zk.data@V end at exactly 400" {
  run_counter xattr
}

@test "8 workers x 50 increments through \"f@v=V\" writes end at exactly 400" {
  run_counter name
}
