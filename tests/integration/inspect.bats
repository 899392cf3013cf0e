#!/usr/bin/env bats
# `znoded --dump`: a store's records read offline, as an operator reads them after an incident:
# every log record with its zxid, time, session, type, path and size, the snapshots with their
# node counts, filters by zxid range and path, and every checksum checked, so that a damaged
# copy names its damaged record (and exits 1) while the store it was copied from reads clean.

load helpers
bats_require_minimum_version 1.5.0  # run --separate-stderr

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  [ "$ZN_TARGET" = znoded ] || return 0
  # snapCount high: no snapshot holds the data the damage test flips, only the log does
  start_server snapCount=100000 || return 1
  local z="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode --server $(member_connect 1)"
  $z create /inspect > /dev/null &&
    $z create /inspect/a DAMAGE-THIS-RECORD > /dev/null &&
    $z set /inspect/a v2 > /dev/null &&
    $z create /other x > /dev/null || return 1
  $z stat /inspect/a | sed -n 's/^cZxid = //p' > "$ZN_STATE_DIR/a.czxid"
  $z stat /inspect/a | sed -n 's/^mZxid = //p' > "$ZN_STATE_DIR/a.mzxid"
  $z stat /other | sed -n 's/^cZxid = //p' > "$ZN_STATE_DIR/other.czxid"
  stop_member 1
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "znoded's own store"
  CFG="$(member_dir 1)/zoo.cfg"
  STORE="$(member_dir 1)/datalog"
  A_CREATED="$(cat "$ZN_STATE_DIR/a.czxid")"
  A_SET="$(cat "$ZN_STATE_DIR/a.mzxid")"
  OTHER="$(cat "$ZN_STATE_DIR/other.czxid")"
}

teardown() {
  if [ -n "${TEST_STATE:-}" ]; then ZN_STATE_DIR="$TEST_STATE" stop_all; fi
}

@test "every log record is printed with its zxid, time, session, type, path and size" {
  run "$ZN_ZNODED" --dump "$CFG"
  assert_success
  assert_line --regexp "^log zxid=$A_CREATED time=20[0-9-]+T[0-9:.]+Z session=0x[0-9a-f]+ type=create path=/inspect/a size=[0-9]+\$"
  assert_line --regexp "^log zxid=$A_SET time=[^ ]+ session=0x[0-9a-f]+ type=setData path=/inspect/a size=[0-9]+\$"
  assert_line --regexp "^log zxid=$OTHER time=[^ ]+ session=0x[0-9a-f]+ type=create path=/other size=[0-9]+\$"
  # a fresh standalone server leads at epoch 1: its first txn is 0x100000001
  assert_line --regexp "^log zxid=0x100000001 time=[^ ]+ session=0x[0-9a-f]+ type=createSession path=- size=[0-9]+\$"
  refute_output --partial CORRUPT
}

@test "the store's directory may be named instead of its zoo.cfg" {
  run "$ZN_ZNODED" --dump "$STORE"
  assert_success
  assert_equal "$output" "$("$ZN_ZNODED" --dump "$CFG")"
}

@test "--path keeps the records that touch a node or its descendants" {
  run "$ZN_ZNODED" --dump --path /inspect "$CFG"
  assert_success
  assert_equal "$(grep -c . <<< "$output")" 3
  assert_line --partial "zxid=$A_CREATED "
  assert_line --partial "zxid=$A_SET "
  run "$ZN_ZNODED" --dump --path /inspect/a "$CFG"
  assert_equal "$(grep -c . <<< "$output")" 2
  run "$ZN_ZNODED" --dump --path /insp "$CFG"
  assert_success
  assert_output ""
}

@test "--zxid keeps the records in a range, either side open" {
  run "$ZN_ZNODED" --dump --zxid "$A_CREATED:$A_SET" "$CFG"
  assert_success
  assert_equal "$(head -1 <<< "$output" | cut -d' ' -f2)" "zxid=$A_CREATED"
  assert_equal "$(tail -1 <<< "$output" | cut -d' ' -f2)" "zxid=$A_SET"
  assert_equal "$(grep -c . <<< "$output")" "$((A_SET - A_CREATED + 1))"
  run "$ZN_ZNODED" --dump --zxid "$OTHER:" "$CFG"
  assert_equal "$(head -1 <<< "$output" | cut -d' ' -f2)" "zxid=$OTHER"
  run "$ZN_ZNODED" --dump --zxid "5:3" "$CFG"
  assert_failure 2
  assert_output "znoded: --zxid takes FROM:TO (0x hex or decimal, FROM <= TO), not '5:3'"
}

@test "a damaged copy names its damaged record and exits 1; the original reads clean" {
  local copy="$BATS_TEST_TMPDIR/copy"
  cp -r "$STORE" "$copy"
  # Flip one bit of the node's data in the log's segment file: the record that holds it no
  # longer matches its checksum, and later group commits follow it.
  run "$ZN_PYTHON" - "$copy" <<'PY'
import glob, sys
flipped = 0
for name in glob.glob(sys.argv[1] + "/log.*"):
    data = bytearray(open(name, "rb").read())
    at = data.find(b"DAMAGE-THIS-RECORD")
    while at >= 0:
        data[at] ^= 0x20
        flipped += 1
        at = data.find(b"DAMAGE-THIS-RECORD", at + 1)
    open(name, "wb").write(data)
print(flipped)
PY
  assert_output 1
  run --separate-stderr "$ZN_ZNODED" --dump "$copy"
  assert_failure 1
  local where="log\\.[0-9a-f]{16} at offset [0-9]+, after zxid=0x[0-9a-f]+: a record fails its check, and records of a later group commit follow it \\(recovery refuses the store\\)"
  assert_line --regexp "^log zxid=$A_CREATED CORRUPT: $where \\(size=0\\)\$"
  # the records around it are still read and printed
  assert_line --partial "zxid=$A_SET "
  assert_line --partial "zxid=$OTHER "
  local total
  total="$(grep -c . <<< "$output")"
  [[ "$stderr" =~ ^"znoded: --dump: $copy: 1 damaged record of $total checked; the first: the log record at zxid=$A_CREATED "$where$ ]]
  # a filter never hides damage
  run "$ZN_ZNODED" --dump --path /other "$copy"
  assert_failure 1
  assert_line --partial "zxid=$A_CREATED CORRUPT"
  run "$ZN_ZNODED" --dump "$CFG"
  assert_success
}

@test "a torn tail after the last log record is shown as INCOMPLETE, not as damage" {
  local copy="$BATS_TEST_TMPDIR/torn" seg
  cp -r "$STORE" "$copy"
  seg="$(ls "$copy"/log.* | tail -1)"
  # garbage after the last record, as a crash in the middle of a group commit leaves
  local end
  end="$("$ZN_ZNODED" --dump "$copy" | grep -c '^log ')"
  run "$ZN_PYTHON" - "$seg" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
end = len(data.rstrip(b"\0"))
end += (-end) % 8
data[end:end + 40] = b"\xa5" * 40
open(sys.argv[1], "wb").write(data)
print(end)
PY
  local at="$output"
  run --separate-stderr "$ZN_ZNODED" --dump "$copy"
  assert_success
  assert_line --regexp "^log zxid=0x[0-9a-f]+ INCOMPLETE: $(basename "$seg") at offset $at, after zxid=0x[0-9a-f]+: a record cut short or failing its check, nothing valid after it \\(a torn tail: recovery drops it\\)\$"
  assert_equal "$(grep -c '^log .*type=' <<< "$output")" "$end"
}

@test "a directory without a store, or no directory, exits 2 with the reason" {
  mkdir -p "$BATS_TEST_TMPDIR/empty"
  run "$ZN_ZNODED" --dump "$BATS_TEST_TMPDIR/empty"
  assert_failure 2
  assert_output "znoded: --dump: $BATS_TEST_TMPDIR/empty holds no store (no data.mdb)"
  run "$ZN_ZNODED" --dump "$BATS_TEST_TMPDIR/none"
  assert_failure 2
  assert_output "znoded: --dump: $BATS_TEST_TMPDIR/none: No such file or directory"
}

@test "snapshots are summarised with their zxid, size, file and node count; a damaged file is named" {
  TEST_STATE="$BATS_TEST_TMPDIR/snap" ZN_STATE_DIR="$BATS_TEST_TMPDIR/snap"
  start_server snapCount=10
  local n z="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode --server $(member_connect 1)"
  for n in $(seq 1 30); do $z create "/n$n" "data$n" > /dev/null; done
  wait_until 30 "a snapshot in the store" snapshot_taken
  stop_member 1
  # the snapshot files are in dataDir, the LMDB store (log, records) in dataLogDir
  local data="$(member_dir 1)/data" file
  run "$ZN_ZNODED" --dump "$(member_dir 1)/zoo.cfg"
  assert_success
  assert_line --regexp "^snapshot zxid=0x[0-9a-f]+ bytes=[0-9]+ file=$data/snapshot\.[0-9a-f]+ nodes=[0-9]+ data_bytes=[0-9]+\$"
  file="$(grep -o "file=$data/snapshot\.[0-9a-f]*" <<< "$output" | tail -1 | cut -d= -f2)"
  [ -f "$file" ]
  run ! compgen -G "$(member_dir 1)/datalog/snapshot.*"
  # one byte of the newest snapshot's blob flipped: named, with its offset
  printf '\x5a' | dd of="$file" bs=1 seek=100 conv=notrunc status=none
  run --separate-stderr "$ZN_ZNODED" --dump "$(member_dir 1)/zoo.cfg"
  assert_failure 1
  assert_line --regexp "^snapshot zxid=0x[0-9a-f]+ CORRUPT: its file $file is damaged at offset 40: its [0-9]+ bytes from offset 40 on fail their checksum\$"
  assert_equal "${stderr%%; the first:*}" "znoded: --dump: $(member_dir 1)/datalog: 1 damaged record of $(grep -c . <<< "$output") checked"
}
