#!/usr/bin/env bats
# A member too far behind for a DIFF (the leader has taken a snapshot since it left, and its log
# in memory starts there) comes back by SNAP: the leader's newest snapshot file, pulled in chunks
# (daemon/ensemble/snapxfer.c), then the entries after it.
#
# The SNAP used to carry the tree in one core message, at most 64 MB: about 250,000 znodes of 100
# bytes. With a larger tree the leader logged "cannot offer a snapshot: over the size limit" every
# few seconds (after serialising the whole tree in its loop each time, 100 ms and more) and the
# member never came back: seen red with 400,000 znodes, the member still LOOKING after 30 s. A new
# member could not join such an ensemble at all.
#
# The test also bounds what a user of the ensemble feels meanwhile: a writer on the leader keeps
# writing, and the longest wait for one of its writes is bounded.

load helpers

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "the transfer of a snapshot file is znoded's"
  ZN_BENCH="$ZN_BUILD_DIR/bench/zn_bench"
  [ -x "$ZN_BENCH" ] || fail "$ZN_BENCH is not built"
}

teardown() {
  [ -z "${STOP:-}" ] || touch "$STOP"
  stop_all
}

# creates HOSTS PREFIX COUNT: COUNT znodes of 100 bytes under PREFIX, by zn_bench (64 in flight
# on each of 8 sessions); fails unless every one was created.
creates() {
  local out
  out="$("$ZN_BENCH" -s "$1" -w create -c 8 -o 64 -n "$3" -v 100 -p "$2" 2>&1)" || { echo "$out"; return 1; }
  grep -q '"errors":0,' <<< "$out" || { echo "$out"; return 1; }
}

# A writer on HOSTS: setData of /w in a loop until $STOP exists; records the longest wait for an
# answer (ms) and every error in $BATS_TEST_TMPDIR/writer.
start_writer() {
  STOP="$BATS_TEST_TMPDIR/stop"
  "$ZN_PYTHON" - "$1" "$STOP" "$BATS_TEST_TMPDIR/writer" 3>&- <<'PY' &
import os, sys, time
from kazoo.client import KazooClient
hosts, stop, out = sys.argv[1:4]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)
zk.ensure_path("/w")
longest, n, errors, last = 0.0, 0, [], time.monotonic()
while not os.path.exists(stop):
    try:
        zk.set("/w", b"%d" % n)
        n += 1
    except Exception as e:
        errors.append(repr(e))
    now = time.monotonic()
    longest = max(longest, now - last)
    last = now
    with open(out + ".tmp", "w") as f:
        f.write("writes=%d longest_ms=%d errors=%d %s\n" % (n, longest * 1000, len(errors), errors[:3]))
    os.replace(out + ".tmp", out)
zk.stop()
zk.close()
PY
  WRITER=$!
  zn_track_pid "$WRITER"
}

# zxid_of N: the zxid member N last applied (srvr's Zxid, as a number).
zxid_of() { printf '%d' "$(fourlw srvr "$1" | sed -n 's/^Zxid: //p')"; }

# snapshotted_past N ZXID: member N's newest snapshot is beyond ZXID, so its log in memory no
# longer reaches back to it and a member stopped at ZXID must come back by SNAP.
snapshotted_past() {
  local at
  at="$(fourlw mntr "$1" | sed -n 's/^zk_snapshot_zxid\t//p')"
  [ -n "$at" ] && [ "$(printf '%d' "$at")" -gt "$2" ] || { echo "member $1's newest snapshot: ${at:-none}"; return 1; }
}

# member_behind SNAPCOUNT MORE: 3 members with snapCount=SNAPCOUNT and 400,000 znodes; a
# follower (VICTIM) killed, MORE creates on the LEADER, which has then snapshotted past the
# point the follower stopped at, so that only a SNAP can bring it back.
member_behind() {
  start_ensemble 3 "snapCount=$1"
  wait_until 60 "a leader" leader_of 1 2 3
  LEADER="$(leader_of 1 2 3)"
  VICTIM=1; [ "$LEADER" = 1 ] && VICTIM=2
  creates "$(ensemble_connect)" /big 400000
  kill9_member "$VICTIM"
  local stopped_at
  stopped_at="$(zxid_of "$LEADER")"
  creates "$(member_connect "$LEADER")" /more "$2"
  wait_until 60 "the leader to snapshot past the stopped member" snapshotted_past "$LEADER" "$stopped_at"
}

writer_wrote() { [ -f "$BATS_TEST_TMPDIR/writer" ] && ! grep -q '^writes=0 ' "$BATS_TEST_TMPDIR/writer"; }

@test "a member behind a 400,000-znode tree (over 64 MB) comes back from the leader's snapshot file within 10 s, writes going on" {
  member_behind 20000 50000
  leader="$LEADER" victim="$VICTIM"
  start_writer "$(member_connect "$leader")"
  wait_until 30 "the writer to write" writer_wrote
  started_ns="$(date +%s%N)"
  restart_member "$victim"
  wait_until 60 "member $victim to serve" member_is_serving "$victim"
  back_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  dir="$(member_dir "$victim")"
  grep "snapshot transfer: received\|installed the leader's snapshot" "$dir/server.log" | sed 's/^/# /' >&3
  echo "# member $victim serving ${back_ms} ms after its start" >&3
  grep -q "installed the leader's snapshot .* (its file)" "$dir/server.log" ||
    fail "member $victim did not come back from the leader's snapshot file: $(tail -5 "$dir/server.log")"
  [ "$back_ms" -le 10000 ] || fail "member $victim served ${back_ms} ms after its start (bound 10,000)"
  touch "$STOP"
  wait "$WRITER"
  cat "$BATS_TEST_TMPDIR/writer" | sed 's/^/# writer on the leader: /' >&3
  grep -q ' errors=0 ' "$BATS_TEST_TMPDIR/writer" || fail "the writer saw errors: $(cat "$BATS_TEST_TMPDIR/writer")"
  longest="$(sed -n 's/.* longest_ms=\([0-9]*\) .*/\1/p' "$BATS_TEST_TMPDIR/writer")"
  [ "$longest" -le 2000 ] || fail "a write on the leader waited ${longest} ms during the transfer (bound 2,000)"
  wait_until 60 "every member to agree" same_digest 1 2 3
}

@test "a new member joins an ensemble holding a 400,000-znode tree: it starts empty and is sent the snapshot file" {
  start_ensemble 3 "snapCount=20000"
  wait_until 60 "a leader" leader_of 1 2 3
  leader="$(leader_of 1 2 3)"
  victim=1; [ "$leader" = 1 ] && victim=2
  creates "$(ensemble_connect)" /big 400000
  kill9_member "$victim"
  dir="$(member_dir "$victim")"
  rm -rf "$dir/datalog" && mkdir -p "$dir/datalog"
  find "$dir/data" -mindepth 1 ! -name myid -exec rm -rf {} +
  restart_member "$victim"
  wait_until 60 "member $victim to serve" member_is_serving "$victim"
  grep -q "installed the leader's snapshot .* (its file)" "$dir/server.log" ||
    fail "member $victim did not start from the leader's snapshot file: $(tail -5 "$dir/server.log")"
  wait_until 60 "every member to agree" same_digest 1 2 3
  # and it restarts from what it was sent (the file became its own snapshot)
  kill9_member "$victim"
  restart_member "$victim"
  wait_until 60 "member $victim to serve again" member_is_serving "$victim"
  wait_until 60 "every member to agree after its restart" same_digest 1 2 3
}

@test "a member fetching the snapshot file while the leader snapshots again and again under writes still comes back" {
  # snapCount=2000 and a writer at full speed: the leader takes a new snapshot (and drops its
  # log up to it) several times during one transfer. A member sent the older file would find the
  # entries after it gone and be sent a SNAP again, and with a transfer longer than the time
  # between two snapshots, for as long as the writes went on; so the leader keeps its log from a
  # snapshot a member is fetching (ens_snapxfer_compact_bound). A member named a newer file
  # while it replays what it held fetches that one (CI once saw it stop on such a SYNC instead).
  # Not seen red: here a transfer (about 0.5 s) is shorter than a snapshot, and without either
  # change the member came back at its second transfer. It bounds the time to come back.
  member_behind 2000 20000
  leader="$LEADER" victim="$VICTIM"
  "$ZN_BENCH" -s "$(member_connect "$leader")" -w set -c 4 -o 8 -d 30 --warmup 0 -p /hot \
    > "$BATS_TEST_TMPDIR/load.json" 2>&1 3>&- &
  zn_track_pid "$!"
  started_ns="$(date +%s%N)"
  restart_member "$victim"
  wait_until 60 "member $victim to serve" member_is_serving "$victim"
  back_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  dir="$(member_dir "$victim")"
  echo "# member $victim serving ${back_ms} ms after its start; $(grep -c 'snapshot transfer: receiving' "$dir/server.log") transfer(s) started, leader's snapshots meanwhile: $(grep -c 'snapshot written' "$(member_dir "$leader")/server.log")" >&3
  grep -q "installed the leader's snapshot .* (its file)" "$dir/server.log" ||
    fail "member $victim did not come back from the leader's snapshot file: $(tail -5 "$dir/server.log")"
  [ "$back_ms" -le 20000 ] || fail "member $victim served ${back_ms} ms after its start (bound 20,000)"
}
