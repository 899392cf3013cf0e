#!/usr/bin/env bats
# The server's storage as an operator sees it: snapshots keep the log bounded and a restart
# recovers from them; a full disk fails the writes it could not log, loudly, and loses
# nothing that was acknowledged.

load helpers
bats_require_minimum_version 1.5.0  # run --separate-stderr

setup() {
  zn_load_bats_libs
  TMPFS=""
}

teardown() {
  stop_all
  if [ -n "$TMPFS" ] && mountpoint -q "$TMPFS"; then
    umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS"
  fi
}

# mntr_value KEY: one value from mntr of member 1.
mntr_value() {
  fourlw mntr | sed -n "s/^$1\t//p"
}

# snapshot_files: the snapshot files (snapshot.<zxid>, not a temporary one) in member 1's dataDir.
snapshot_files() {
  find "$(member_dir 1)/data" -maxdepth 1 -name 'snapshot.*' ! -name 'snapshot.*.*' | wc -l
}

# write_600: /snap and 600 children on member 1.
write_600() {
  "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
zk.ensure_path("/snap")
for i in range(600):
    zk.create("/snap/n%04d" % i, b"v%d" % i)
zk.stop()
PY
}

# snapshots_settle MIN_ZXID FILES: true once member 1's newest snapshot is at MIN_ZXID or above
# (so every snapshot of the writes before was taken) and FILES snapshot files are left.
snapshots_settle() {
  local zxid
  zxid="$(mntr_value zk_snapshot_zxid)"
  [ $((zxid)) -ge $(($1)) ] && [ "$(snapshot_files)" -eq "$2" ]
}

@test "snapshots keep the log bounded, segments are recycled, and a restart recovers every node" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  # 16 KB log segments: compaction drops whole segments below the older snapshot kept
  start_server "snapCount=50" "preAllocSize=16"
  write_600
  entries="$(mntr_value zk_log_entries)"
  snap="$(mntr_value zk_snapshot_zxid)"
  [ "$snap" != 0x0 ] || fail "no snapshot was taken after 600 writes with snapCount=50"
  [ "$entries" -lt 300 ] || fail "the log still holds $entries entries after 600 writes with snapCount=50"
  segments="$(mntr_value zk_log_segments)"
  [ "$segments" -ge 1 ] && [ "$segments" -lt 20 ] || fail "the log is in $segments segment files"
  kill9_member 1
  restart_member 1
  run zk_tool exists "$(member_connect 1)" /snap/n0599
  assert_success
  run "$ZN_PYTHON" -c "
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts='$(member_connect 1)'); zk.start(timeout=30)
kids = zk.get_children('/snap')
bad = [k for k in kids if zk.get('/snap/' + k)[0] != ('v%d' % int(k[1:])).encode()]
print(len(kids), len(bad))"
  assert_output "600 0"
  # compacted segments became later ones (no zeros written), their old records still in them
  # after the new ones: neither replayed (above), nor called damage or a torn tail offline
  run grep -c "started (the prepared spare, recycled" "$(member_dir 1)/server.log"
  assert_success
  stop_all
  run --separate-stderr "$ZN_ZNODED" --dump "$(member_dir 1)/zoo.cfg"
  assert_success
  refute_output --partial CORRUPT
  refute_output --partial INCOMPLETE
}


@test "autopurge.snapRetainCount=5 keeps the newest 5 snapshots and the log from the oldest of them" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  start_server "snapCount=50" "preAllocSize=16" "autopurge.snapRetainCount=5"
  write_600
  # 600 writes with snapCount=50: about 12 snapshots, the last at or above zxid 550
  wait_until 60 "5 snapshot files, the newest at or above zxid 550" snapshots_settle 550 5
  entries="$(mntr_value zk_log_entries)"
  [ "$entries" -ge 200 ] && [ "$entries" -lt 360 ] ||
    fail "the log holds $entries entries: 5 snapshots 50 apart keep about 250"
  kill9_member 1
  restart_member 1
  run zk_tool exists "$(member_connect 1)" /snap/n0599
  assert_success
}

@test "autopurge.purgeInterval=0 drops nothing; purgeInterval=1 purges at the next start" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  start_server "snapCount=50" "preAllocSize=16" "autopurge.purgeInterval=0"
  write_600
  wait_until 60 "the newest snapshot at or above zxid 550" snapshots_settle 550 "$(snapshot_files)"
  files="$(snapshot_files)"
  [ "$files" -ge 11 ] || fail "only $files snapshot files after 600 writes with snapCount=50 and no purge"
  entries="$(mntr_value zk_log_entries)"
  [ "$entries" -ge 600 ] || fail "the log holds $entries entries of 600 writes: something was purged"
  # ZooKeeper's first purge runs at the start; here too, keeping snapRetainCount (3)
  stop_member 1
  sed -i 's/^autopurge.purgeInterval=0$/autopurge.purgeInterval=1/' "$(member_dir 1)/zoo.cfg"
  restart_member 1
  wait_until 30 "3 snapshot files after the purge at the start" snapshots_settle 550 3
  entries="$(mntr_value zk_log_entries)"
  [ "$entries" -lt 250 ] || fail "the log still holds $entries entries after the purge"
  run zk_tool exists "$(member_connect 1)" /snap/n0599
  assert_success
}


# write_100_kb: 100 creates of 1 KB on member 1 (about 100 KB of log), then a sync.
write_100_kb() {
  "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
for i in range(100):
    zk.create("/big%03d" % i, b"x" * 1024)
zk.sync("/")
zk.stop()
PY
}

snapshot_taken() { [ "$(mntr_value zk_snapshot_zxid)" != 0x0 ]; }

@test "snapSizeLimitInKb takes a snapshot once the log since the last one holds that many KB, whatever snapCount" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  start_server "snapCount=1000000" "snapSizeLimitInKb=32"
  write_100_kb
  run grep -c "snapshot: the log since the last one holds" "$(member_dir 1)/server.log"
  assert_success
  wait_until 20 "a snapshot after 100 KB of log with snapSizeLimitInKb=32" snapshot_taken
}

@test "snapSizeLimitInKb <= 0 takes no snapshot by size" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  start_server "snapCount=1000000" "snapSizeLimitInKb=-1"
  write_100_kb
  # the line is logged when the snapshot starts, before the sync above is answered
  run grep -c "snapshot: the log since the last one holds" "$(member_dir 1)/server.log"
  assert_failure 1
  assert_output 0
  assert_equal "$(mntr_value zk_snapshot_zxid)" 0x0
}
@test "txnLogSizeLimitInKb caps each log segment below preAllocSize; off, one segment holds it all" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's own mntr keys"
  start_server "snapCount=1000000" "snapSizeLimitInKb=-1" "txnLogSizeLimitInKb=16"
  write_100_kb
  local capped
  capped="$(mntr_value zk_log_segments)"
  # about 110 KB of records in 16 KB segments
  [ "$capped" -ge 6 ] || fail "100 KB of log in $capped segments with txnLogSizeLimitInKb=16"
  local dir
  dir="$(member_dir 1)"
  run bash -c "find '$dir' -name 'log.[0-9a-f]*' -size +16k | wc -l"
  assert_output 0
  stop_all
  rm -rf "$dir/data" "$dir/datalog"
  start_server "snapCount=1000000" "snapSizeLimitInKb=-1" "txnLogSizeLimitInKb=-1"
  write_100_kb
  assert_equal "$(mntr_value zk_log_segments)" 1
}

@test "a full disk fails writes with an error, keeps serving, and loses no acknowledged write" {
  [ "$ZN_TARGET" = znoded ] || skip "ZooKeeper exits on a full disk"
  TMPFS="$BATS_TEST_TMPDIR/small-disk"
  mkdir -p "$TMPFS"
  mount -t tmpfs -o size=3m tmpfs "$TMPFS" || skip "cannot mount a tmpfs here"
  start_server "dataLogDir=$TMPFS/log"
  acked="$BATS_TEST_TMPDIR/acked"
  run "$ZN_PYTHON" - "$(member_connect 1)" "$acked" <<'PY'
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import SystemZookeeperError
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
ok, failed = [], 0
for i in range(400):
    try:
        zk.create("/full-%d" % i, b"x" * 20000)
        ok.append("/full-%d" % i)
    except SystemZookeeperError:
        failed += 1
open(sys.argv[2], "w").write("\n".join(ok) + "\n")
# Reads keep working on the full disk.
print("acked=%d failed=%d listed=%d" % (len(ok), failed,
      len([c for c in zk.get_children("/") if c.startswith("full-")])))
zk.stop()
PY
  assert_success
  echo "$output"
  [[ "$output" =~ acked=([0-9]+)\ failed=([0-9]+)\ listed=([0-9]+) ]] || fail "unexpected: $output"
  [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "no write succeeded before the disk filled"
  [ "${BASH_REMATCH[2]}" -gt 0 ] || fail "the disk never filled: no write failed"
  [ "${BASH_REMATCH[1]}" -eq "${BASH_REMATCH[3]}" ] || fail "acknowledged and listed differ: $output"
  run fourlw ruok
  assert_output imok
  grep -q "could not be written" "$(member_dir 1)/server.log" || fail "the log does not say why writes failed"
  # Make room, restart from the same log, and count again.
  kill9_member 1
  mount -o remount,size=32m "$TMPFS"
  restart_member 1
  run "$ZN_PYTHON" - "$(member_connect 1)" "$acked" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
acked = set(l.strip() for l in open(sys.argv[2]) if l.strip())
present = set("/" + c for c in zk.get_children("/") if c.startswith("full-"))
print("missing=%d extra=%d" % (len(acked - present), len(present - acked)))
zk.stop()
PY
  assert_success
  assert_output "missing=0 extra=0"
}

@test "a burst of large writes waits for the disk's queue and loses none" {
  [ "$ZN_TARGET" = znoded ] || skip "reads znoded's log"
  # A store queue of 4 MB (test only): a burst of 1 MB writes fills it without a slow disk.
  start_server "znodefs.testOnly.storeQueueMaxBytes=4194304"
  run "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
zk.ensure_path("/burst")
value = b"b" * 1000000
# 160 MB in flight at once: more than the store's queue holds.
results = [zk.create_async("/burst/n%03d" % i, value) for i in range(160)]
ok = sum(1 for r in results if r.get(timeout=120))
kids = zk.get_children("/burst")
same = sum(1 for k in kids if zk.get("/burst/" + k)[0] == value)
print("ok=%d listed=%d same=%d" % (ok, len(kids), same))
zk.stop()
PY
  assert_success
  assert_output "ok=160 listed=160 same=160"
  run fourlw ruok
  assert_output imok
  grep -q "the store's queue is full: holding log entries" "$(member_dir 1)/server.log" ||
    fail "the burst never filled the store's queue: this test did not test the hold"
}

@test "a stop does not wait for a snapshot's child: it is killed, its file removed, nothing lost" {
  [ "$ZN_TARGET" = znoded ] || skip "znoded's snapshot child"
  start_server "snapCount=20"
  local pid; pid="$(member_pid 1)"
  # Writes until a snapshot's child exists, then stops that child (SIGSTOP), so the snapshot is
  # in progress for as long as the test wants: a server that waited for it would never exit.
  run "$ZN_PYTHON" - "$(member_connect 1)" "$pid" <<'PY'
import glob, os, signal, sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
server = int(sys.argv[2])
def children():
    out = []
    for f in glob.glob("/proc/%d/task/*/children" % server):
        try:
            out += [int(p) for p in open(f).read().split()]
        except OSError:
            pass
    return out
zk.ensure_path("/s")
for i in range(300):
    zk.create("/s/n%03d" % i, b"x" * 20000)   # a 6 MB tree: the child lives for a while
caught = None
deadline = time.monotonic() + 60
n = 0
while caught is None and time.monotonic() < deadline:
    zk.set_async("/s/n%03d" % (n % 300), b"y" * 20000)
    n += 1
    for c in children():
        try:
            os.kill(c, signal.SIGSTOP)
            caught = c
        except ProcessLookupError:
            pass
if caught is None:
    print("no snapshot child seen"); sys.exit(1)
zk.set("/s/last", b"z") if zk.exists("/s/last") else zk.create("/s/last", b"z")
zk.stop()
print(caught)
PY
  assert_success
  local child="$output"
  [ -e "/proc/$child" ] || fail "the stopped child $child is gone before the stop"
  kill -TERM "$pid"
  wait_member_exit 1 20 || fail "znoded did not exit within 20 s of SIGTERM while its snapshot's child was stopped"
  [ ! -e "/proc/$child" ] || [ "$(awk '{print $3}' "/proc/$child/stat" 2>/dev/null)" = Z ] ||
    fail "the snapshot's child $child outlived the server"
  grep -q "abandoned: the server is stopping" "$(member_dir 1)/server.log" ||
    fail "the log does not say the snapshot was abandoned"
  run find "$(member_dir 1)/data" -name 'snapshot.*.tmp'
  assert_output ""
  restart_member 1
  run "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)
kids = zk.get_children("/s")
print(len(kids), zk.get("/s/last")[0].decode())
zk.stop()
PY
  assert_success
  assert_output "301 z"
}
