#!/usr/bin/env bats
# Reading Apache ZooKeeper's data directory (the first step of importing it): `znoded --dump`
# on a real ZooKeeper 3.8's dataDir lists each snapshot and log with every transaction, checks
# their Adler32 checksums, reads a torn tail of the newest log as ZooKeeper does, and names the
# file and entry of any damage. One ZooKeeper (Debian's) for the whole file, stopped before
# its files are read.

load helpers
bats_require_minimum_version 1.5.0  # run --separate-stderr

setup_file() {
  [ -x "$ZN_ZKSERVER" ] || return 0
  ZN_STATE_DIR="$BATS_FILE_TMPDIR/zk"
  export ZN_STATE_DIR
  # a small snapCount: several snapshots and logs
  ZN_TARGET=zookeeper start_server snapCount=10 || return 1
  "$ZN_PYTHON" - "$(member_connect 1)" "$BATS_FILE_TMPDIR" <<'PY' || return 1
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=60)
zk.create("/app", b"app")
for i in range(60):
    zk.create("/app/n%d" % i, b"data%d" % i)
_, stat = zk.create("/app/marked", b"MARKED-DATA", include_data=True)
open(sys.argv[2] + "/marked.czxid", "w").write("0x%x\n" % stat.czxid)
for i in range(60):
    zk.set("/app/n%d" % i, b"v2")
zk.stop()
PY
  stop_all
}

setup() {
  zn_load_bats_libs
  [ -x "$ZN_ZKSERVER" ] || skip "Debian's zookeeper package is not installed"
  [ "$ZN_TARGET" = znoded ] || skip "znoded reads ZooKeeper's files; the target runs none"
  DATA="$(member_dir 1)/data"
  LOGS="$(member_dir 1)/datalog"
  MARKED="$(cat "$BATS_FILE_TMPDIR/marked.czxid")"
}

@test "every snapshot and log of ZooKeeper's data directory is read, every transaction listed" {
  local snapshots logs
  snapshots="$(ls "$DATA/version-2" | grep -c '^snapshot\.')"
  logs="$(ls "$LOGS/version-2" | grep -c '^log\.')"
  [ "$snapshots" -ge 2 ] && [ "$logs" -ge 2 ] # snapCount=10 made several of each
  run "$ZN_ZNODED" --dump "$LOGS"
  assert_success
  assert_equal "$(grep -c '^zookeeper log file=log\.' <<< "$output")" "$logs"
  assert_line --regexp "^log zxid=$MARKED time=20[0-9-]+T[0-9:.]+Z session=0x[0-9a-f]+ type=create2 path=/app/marked size=[0-9]+\$"
  assert_equal "$(grep -c ' type=setData path=/app/n' <<< "$output")" 60
  run "$ZN_ZNODED" --dump "$DATA"
  assert_success
  assert_equal "$(grep -c '^zookeeper snapshot file=snapshot\.' <<< "$output")" "$snapshots"
  # the newest snapshot holds the 62 nodes written and ZooKeeper's own four
  assert_regex "$(grep '^zookeeper snapshot' <<< "$output" | tail -1)" ' nodes=6[0-6]$'
}

@test "a snapshot compressed as ZooKeeper compresses it (.gz, .snappy) reads as the plain one" {
  local copy plain name
  copy="$BATS_TEST_TMPDIR/data"
  cp -a "$DATA" "$copy"
  name="$(ls "$copy/version-2" | grep '^snapshot\.[0-9a-f]*$' | sort | tail -1)"
  run "$ZN_ZNODED" --dump "$copy"
  assert_success
  plain="$(grep "^zookeeper snapshot file=$name " <<< "$output")"
  [ -n "$plain" ]
  # ZooKeeper's .gz is a gzip stream of the plain file (its Adler32 is over the plain bytes)
  gzip "$copy/version-2/$name"
  run "$ZN_ZNODED" --dump "$copy"
  assert_success
  assert_line "${plain/file=$name /file=$name.gz }"
  # snappy-java's framing, as ZooKeeper's SnappyOutputStream writes it: its header, then blocks
  # of raw snappy (here each one literal, which any snappy decoder reads)
  gunzip "$copy/version-2/$name.gz"
  "$ZN_PYTHON" - "$copy/version-2/$name" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
out = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
for at in range(0, len(raw), 32768):
    chunk = raw[at:at + 32768]
    n, varint = len(chunk), bytearray()
    while True:
        varint.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
        n >>= 7
        if not n:
            break
    block = bytes(varint) + bytes([61 << 2]) + (len(chunk) - 1).to_bytes(2, "little") + chunk
    out += struct.pack(">i", len(block)) + block
open(sys.argv[1] + ".snappy", "wb").write(out)
PY
  rm "$copy/version-2/$name"
  run "$ZN_ZNODED" --dump "$copy"
  assert_success
  assert_line "${plain/file=$name /file=$name.snappy }"
}

@test "--path lists a snapshot's nodes under a path with their stat" {
  run "$ZN_ZNODED" --dump --path /app/marked "$DATA"
  assert_success
  assert_line --regexp "^node path=/app/marked czxid=$MARKED mzxid=$MARKED version=0 cversion=0 aversion=0 ephemeralOwner=0x0 size=11\$"
}

@test "a damaged snapshot is named with its checksum, and nothing of it is read" {
  local copy="$BATS_TEST_TMPDIR/copy" damaged
  cp -r "$DATA" "$copy"
  # flip one bit of a snapshot that holds /app/marked's data
  damaged="$("$ZN_PYTHON" - "$copy/version-2" <<'PY'
import os, sys
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    data = bytearray(open(path, "rb").read())
    at = data.find(b"MARKED-DATA")
    if name.startswith("snapshot.") and at >= 0:
        data[at] ^= 0x20
        open(path, "wb").write(data)
        print(name)
        break
PY
)"
  [ -n "$damaged" ]
  run --separate-stderr "$ZN_ZNODED" --dump "$copy"
  assert_failure 1
  assert_line --regexp "^zookeeper $damaged CORRUPT: $copy/version-2/$damaged fails its checksum \\(stored [0-9]+, computed [0-9]+\\): it is damaged or cut short\$"
  assert_regex "$stderr" "^znoded: --dump: $copy/version-2: 1 damaged file of [0-9]+; the first: $copy/version-2/$damaged fails its checksum"
}

@test "a torn tail of the newest log is its end, as in ZooKeeper; a damaged older log is refused" {
  local copy="$BATS_TEST_TMPDIR/copy" newest oldest
  cp -r "$LOGS" "$copy"
  # log names end in hex zxids: order them by value
  newest="$(cd "$copy/version-2" && for f in log.*; do printf '%d %s\n' "0x${f#log.}" "$f"; done | sort -n | tail -1 | cut -d' ' -f2)"
  oldest="$(cd "$copy/version-2" && for f in log.*; do printf '%d %s\n' "0x${f#log.}" "$f"; done | sort -n | head -1 | cut -d' ' -f2)"
  cut_last_entry "$copy/version-2/$newest"
  run "$ZN_ZNODED" --dump "$copy"
  assert_success
  assert_line --regexp "^zookeeper log file=$newest entries=[0-9]+ first=0x[0-9a-f]+ last=0x[0-9a-f]+ \\(its last entry is cut short: read as the end, as ZooKeeper does\\)\$"
  # the same damage in an older log is not a torn write
  cut_last_entry "$copy/version-2/$oldest"
  run --separate-stderr "$ZN_ZNODED" --dump "$copy"
  assert_failure 1
  assert_line --regexp "^zookeeper $oldest CORRUPT: $copy/version-2/$oldest: entry [0-9]+ at byte [0-9]+ is cut short, and this is not the newest log\$"
}
