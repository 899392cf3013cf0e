#!/usr/bin/env bats
# znoded --import-zookeeper against the data directory of a real Apache ZooKeeper 3.8 (Debian's):
# ZooKeeper gets a tree through kazoo (tests/compat/zk_import.py: ACLs, sequentials, sets,
# deletes, multis, containers, TTL nodes, ephemerals of a session left open) with a small snapCount
# (several snapshots and logs), is stopped, its data directory is imported, znoded starts on the
# store, and every node's data, ACL and stat read through kazoo equals what ZooKeeper served.
# Each test takes 10-60 s (ZooKeeper starts, takes the workload through kazoo, stops).

load ../integration/helpers

ZK_IMPORT="$ZN_REPO_ROOT/tests/compat/zk_import.py"

setup() {
  zn_load_bats_libs
  # ZooKeeper writes the data, znoded imports and serves it, whatever the tier's target; the
  # 3-member case is a test of its own, so the tier's ensemble pass (ZN_ENSEMBLE=3) skips.
  if [ "${ZN_ENSEMBLE:-1}" -gt 1 ]; then
    skip "runs once per tier: its own last test seeds a 3-member ensemble"
  fi
  ZN_TARGET=znoded
  zn_state_init
}

teardown() {
  stop_all
}

# zk_run_workload [zoo.cfg lines...]: a standalone ZooKeeper with those lines gets the workload
# and is stopped while the workload's held session is open. Leaves $ZK_DATA, $ZK_DATALOG and
# $EXPECTED (what ZooKeeper served). With KEEP_WORKLOAD=1 the workload's clients stay alive,
# retrying ZooKeeper's address (its pid in $WORKLOAD_PID); otherwise they are killed.
zk_run_workload() {
  local pid n
  ZN_TARGET=zookeeper start_ensemble "${ZK_MEMBERS:-1}" snapCount=200 extendedTypesEnabled=true \
    znode.container.checkIntervalMs=3600000 maxSessionTimeout=60000 "$@"
  ZK_DATA="$(member_dir 1)/data"
  ZK_DATALOG="$(member_dir 1)/datalog"
  EXPECTED="$(zn_state_dir)/expected.json"
  "$ZN_PYTHON" "$ZK_IMPORT" workload "$(ensemble_connect)" "$EXPECTED" "$(zn_state_dir)/ready" \
    "${ZK_IMPORT_NODES:-2000}" > "$(zn_state_dir)/workload.log" 2>&1 &
  pid=$!
  zn_track_pid "$pid"
  wait_until 300 "the workload to finish" \
    bash -c "test -s '$(zn_state_dir)/ready' || ! kill -0 $pid 2>/dev/null"
  test -s "$(zn_state_dir)/ready" || { cat "$(zn_state_dir)/workload.log"; return 1; }
  # ZooKeeper first, so the held session is still open in its data when it stops.
  for n in $(seq "${ZK_MEMBERS:-1}" -1 1); do stop_member "$n"; done
  WORKLOAD_PID="$pid"
  if [ "${KEEP_WORKLOAD:-0}" != 1 ]; then kill_workload; fi
}

kill_workload() {
  kill -9 "$WORKLOAD_PID"
  wait "$WORKLOAD_PID" 2>/dev/null || true
}

# znoded_config [COUNT]: ZooKeeper's member 1 moved aside, and COUNT (1) znoded members'
# configs with fresh directories; member 1 on ZooKeeper's own address with KEEP_WORKLOAD=1, so
# the workload's clients find it there.
znoded_config() {
  local dir count="${1:-1}" n
  dir="$(member_dir 1)"
  mv "$dir" "$dir.zookeeper"
  ZK_DATA="$dir.zookeeper/data"
  ZK_DATALOG="$dir.zookeeper/datalog"
  prepare_members "$count"
  if [ "${KEEP_WORKLOAD:-0}" = 1 ]; then cp "$dir.zookeeper/port" "$dir/port"; fi
  for n in $(seq 1 "$count"); do
    write_member_config "$n" "$count" maxSessionTimeout=60000 znode.container.checkIntervalMs=200
  done
}

# import_and_compare [SUFFIX]: import $ZK_DATA:$ZK_DATALOG into a fresh znoded member 1, start it, and
# compare every node with what ZooKeeper served; then the held session's ephemerals must expire.
import_and_compare() {
  znoded_config
  run "$ZN_ZNODED" --import-zookeeper "$ZK_DATA:$ZK_DATALOG" "$(member_dir 1)/zoo.cfg"
  echo "$output"
  assert_success
  assert_line --regexp "^znoded: imported .* zxid=0x[0-9a-f]+ epoch=${IMPORT_EPOCH:-[0-9]+} nodes=[0-9]+ sessions=[0-9]+ ephemerals=3$"
  assert_line --regexp "^znoded: --import-zookeeper: read snapshot\.[0-9a-f]+${1:-} and [0-9]+ logs?: "
  launch_member 1
  wait_ruok 1
  run "$ZN_PYTHON" "$ZK_IMPORT" compare "$(member_connect 1)" "$EXPECTED"
  echo "$output"
  assert_success
  assert_line --regexp "^nodes=[0-9]+ compared, 0 differences, held ephemerals=3$"
  assert_line --regexp "^next sequential child /seq/job-0000000050$"
  run "$ZN_PYTHON" "$ZK_IMPORT" kinds "$(member_connect 1)" 30
  echo "$output"
  assert_success
  if [ "${KEEP_WORKLOAD:-0}" = 1 ]; then
    # The held session, made by ZooKeeper, is resumed on znoded by the client that made it:
    # znoded checks ZooKeeper's own session password. Then the client goes.
    local sid
    # (not jq: a session id is past the 53 bits a double holds)
    sid="$("$ZN_PYTHON" -c 'import json, sys; print("%x" % json.load(open(sys.argv[1]))["held_session"])' "$EXPECTED")"
    wait_until 60 "the held session 0x$sid to reconnect" \
      bash -c "printf cons | timeout 5 nc -N -w 2 $(member_addr 1) $(member_port 1) | grep -q 'sid=0x$sid,'"
    kill_workload
  fi
  run "$ZN_PYTHON" "$ZK_IMPORT" ephemerals-gone "$(member_connect 1)" "$EXPECTED" 90
  echo "$output"
  assert_success
}

# count_files DIR REGEX: how many names in DIR match.
count_files() {
  ls "$1" | grep -cE "$2" || true
}

@test "a ZooKeeper 3.8 tree imports with every node's data, ACL and stat as ZooKeeper served it, and its clients resume their sessions" {
  KEEP_WORKLOAD=1
  zk_run_workload
  local snapshots logs
  snapshots="$(count_files "$ZK_DATA/version-2" '^snapshot\.[0-9a-f]+$')"
  logs="$(count_files "$ZK_DATALOG/version-2" '^log\.')"
  [ "$snapshots" -ge 3 ] || { echo "only $snapshots snapshots"; false; }
  [ "$logs" -ge 3 ] || { echo "only $logs logs"; false; }
  import_and_compare
}

# compressed_import METHOD: ZooKeeper writes its snapshots compressed with METHOD (gz, snappy),
# named snapshot.<zxid>.METHOD, and they import as the plain ones do.
compressed_import() {
  ZK_IMPORT_NODES=400 zk_run_workload "snapshot.compression.method=$1"
  local snapshots
  snapshots="$(count_files "$ZK_DATA/version-2" "^snapshot\.[0-9a-f]+\.$1\$")"
  [ "$snapshots" -ge 2 ] || { ls "$ZK_DATA/version-2"; false; }
  import_and_compare "\\.$1"
}

@test "gzip-compressed ZooKeeper snapshots import the same way" {
  compressed_import gz
}

@test "snappy-compressed ZooKeeper snapshots import the same way" {
  compressed_import snappy
}

# zk_copy NAME: a copy of the ZooKeeper data directory to damage; prints its dataDir:dataLogDir.
zk_copy() {
  local to="$(zn_state_dir)/$1"
  mkdir -p "$to"
  cp -a "$ZK_DATA" "$to/data"
  cp -a "$ZK_DATALOG" "$to/datalog"
  echo "$to/data:$to/datalog"
}

# newest FILE_DIR PREFIX: the path of the file with the highest zxid of that prefix.
newest() {
  "$ZN_PYTHON" -c 'import os,sys; d,p=sys.argv[1:]; fs=[f for f in os.listdir(d) if f.startswith(p+".")]; print(os.path.join(d, max(fs, key=lambda f: int(f.split(".")[1], 16))))' "$1" "$2"
}

# flip FILE OFFSET: invert one byte in place.
flip() {
  "$ZN_PYTHON" -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1); f.seek(o); f.write(bytes([b[0]^0xff]))' "$1" "$2"
}

@test "an import refuses a target with a store and damaged files, naming the file; a torn log tail is read as ZooKeeper reads it" {
  ZK_IMPORT_NODES=300 zk_run_workload
  znoded_config
  local cfg dirs snap first_log
  cfg="$(member_dir 1)/zoo.cfg"
  run "$ZN_ZNODED" --import-zookeeper "$ZK_DATA:$ZK_DATALOG" "$cfg"
  assert_success
  local imported
  imported="$(sed -n 's/^znoded: imported .* into .*: //p' <<< "$output")"
  [ -n "$imported" ]
  # a second import into the same dataDir: the snapshot file the first wrote there is named
  run "$ZN_ZNODED" --import-zookeeper "$ZK_DATA:$ZK_DATALOG" "$cfg"
  assert_failure 1
  assert_output --regexp "^znoded: --import-zookeeper: $(member_dir 1)/data is not empty \(it holds snapshot\.[0-9a-f]+\); a ZooKeeper data directory is imported only into an empty data directory$"
  rm -rf "$(member_dir 1)/data" "$(member_dir 1)/datalog"

  # a directory that holds no ZooKeeper data
  mkdir -p "$(zn_state_dir)/no-data/version-2"
  run "$ZN_ZNODED" --import-zookeeper "$(zn_state_dir)/no-data" "$cfg"
  assert_failure 1
  assert_output "znoded: --import-zookeeper: $(zn_state_dir)/no-data/version-2 holds no ZooKeeper snapshot and $(zn_state_dir)/no-data/version-2 no log: nothing to import"
  [ ! -e "$(member_dir 1)/datalog/data.mdb" ]

  # the newest snapshot with one byte changed
  dirs="$(zk_copy bad-snapshot)"
  snap="$(newest "${dirs%%:*}/version-2" snapshot)"
  flip "$snap" $(( $(stat -c %s "$snap") / 2 ))
  run "$ZN_ZNODED" --import-zookeeper "$dirs" "$cfg"
  assert_failure 1
  assert_output --regexp "^znoded: --import-zookeeper: $snap fails its checksum \(stored [0-9]+, computed [0-9]+\): it is damaged or cut short$"
  [ ! -e "$(member_dir 1)/datalog/data.mdb" ]

  # the first entry of the oldest log (not the newest) with one byte changed
  dirs="$(zk_copy bad-log)"
  first_log="$("$ZN_PYTHON" -c 'import os,sys; d=sys.argv[1]; fs=[f for f in os.listdir(d) if f.startswith("log.")]; print(os.path.join(d, min(fs, key=lambda f: int(f.split(".")[1], 16))))' "${dirs##*:}/version-2")"
  rm "${dirs%%:*}"/version-2/snapshot.*  # so the import replays from the first log
  flip "$first_log" 30
  run "$ZN_ZNODED" --import-zookeeper "$dirs" "$cfg"
  assert_failure 1
  assert_output "znoded: --import-zookeeper: $first_log: entry 0 at byte 16 fails its checksum"

  # a log removed from the middle: the zxids jump where it was, and the next log is named
  dirs="$(zk_copy missing-log)"
  rm "${dirs%%:*}"/version-2/snapshot.*  # so the import replays every log
  local logs
  mapfile -t logs < <("$ZN_PYTHON" -c 'import os,sys; d=sys.argv[1]; fs=[f for f in os.listdir(d) if f.startswith("log.")]; [print(os.path.join(d, f)) for f in sorted(fs, key=lambda f: int(f.split(".")[1], 16))]' "${dirs##*:}/version-2")
  [ "${#logs[@]}" -ge 3 ] || { echo "only ${#logs[@]} logs"; false; }
  rm "${logs[1]}"
  run "$ZN_ZNODED" --import-zookeeper "$dirs" "$cfg"
  assert_failure 1
  assert_output "znoded: --import-zookeeper: ${logs[2]}: the transactions from zxid=0x${logs[1]##*.} to zxid=0x$(printf %x $(( 0x${logs[2]##*.} - 1 ))) are missing (a log file was removed?)"
  [ ! -e "$(member_dir 1)/datalog/data.mdb" ]

  # the newest snapshot cut short: skipped, as ZooKeeper skips it; the older one and the logs
  # give the same tree
  dirs="$(zk_copy cut-snapshot)"
  snap="$(newest "${dirs%%:*}/version-2" snapshot)"
  truncate -s $(( $(stat -c %s "$snap") - 3 )) "$snap"
  run "$ZN_ZNODED" --import-zookeeper "$dirs" "$cfg"
  echo "$output"
  assert_success
  assert_line "znoded: --import-zookeeper: skipping $(basename "$snap"): $snap is cut short: it does not end with the path \"/\" a complete snapshot ends with (as ZooKeeper skips it)"
  launch_member 1
  wait_ruok 1
  run "$ZN_PYTHON" "$ZK_IMPORT" compare "$(member_connect 1)" "$EXPECTED"
  echo "$output"
  assert_success
  stop_member 1
  rm -rf "$(member_dir 1)/data" "$(member_dir 1)/datalog"

  # the newest log's last entry cut short: read as the end, as ZooKeeper reads it
  dirs="$(zk_copy torn-log)"
  cut_last_entry "$(newest "${dirs##*:}/version-2" log)"
  run "$ZN_ZNODED" --import-zookeeper "$dirs" "$cfg"
  echo "$output"
  assert_success
  assert_line --regexp "; the newest log's last entry is cut short and read as its end, as ZooKeeper reads it$"
  rm -rf "$(member_dir 1)/data" "$(member_dir 1)/datalog"

  # a dataDir that holds the logs too (ZooKeeper without dataLogDir), named alone: the same store
  dirs="$(zk_copy one-dir)"
  mv "${dirs##*:}"/version-2/log.* "${dirs%%:*}/version-2/"
  run "$ZN_ZNODED" --import-zookeeper "${dirs%%:*}" "$cfg"
  echo "$output"
  assert_success
  assert_line "znoded: imported ${dirs%%:*} into $(member_dir 1)/datalog: $imported"
}

@test "a member of a 3-member ZooKeeper ensemble imports with its epoch, and znoded's writes go on past its zxids" {
  ZK_MEMBERS=3 ZK_IMPORT_NODES=300 zk_run_workload
  # member 1's own files: a quorum member's, with its epoch files
  [ -s "$ZK_DATA/version-2/currentEpoch" ] && [ -s "$ZK_DATA/version-2/acceptedEpoch" ]
  local epoch
  epoch="$(cat "$ZK_DATA/version-2/currentEpoch")"
  [ "$epoch" -ge 1 ]
  IMPORT_EPOCH="$epoch" import_and_compare
}

@test "every member of a 3-member ensemble seeded from the same import serves the tree and takes writes" {
  ZK_IMPORT_NODES=300 zk_run_workload
  znoded_config 3
  local n
  for n in 1 2 3; do
    run "$ZN_ZNODED" --import-zookeeper "$ZK_DATA:$ZK_DATALOG" "$(member_dir "$n")/zoo.cfg"
    assert_success
  done
  for n in 1 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  wait_until 60 "a leader" leader_of 1 2 3
  # a follower serves what ZooKeeper served, and takes a sequential create
  n="$(leader_of 1 2 3)"
  n=$(( n % 3 + 1 ))
  run "$ZN_PYTHON" "$ZK_IMPORT" compare "$(member_connect "$n")" "$EXPECTED"
  echo "$output"
  assert_success
  assert_line "next sequential child /seq/job-0000000050"
  run zk_tool create "$(member_connect $(( n % 3 + 1 )))" /after-import "written to the ensemble"
  assert_success
  for n in 1 2 3; do
    run zk_tool get "$(member_connect "$n")" /after-import
    assert_output "written to the ensemble"
  done
  run "$ZN_PYTHON" "$ZK_IMPORT" ephemerals-gone "$(ensemble_connect 3)" "$EXPECTED" 90
  echo "$output"
  assert_success
}
