#!/usr/bin/env bats
# Backup and restore as an operator does them: `znode backup` takes a consistent backup of a
# member that is being written to (the AdminServer's snapshot command copies the store off the
# event loop while writers go on) and prints the zxid it holds; `znoded --restore` writes it
# into an empty data directory, and a server started there holds exactly the writes
# acknowledged up to that zxid, as the writer's own log of acknowledged zxids says.

load helpers
bats_require_minimum_version 1.5.0  # run --separate-stderr

ZNODE="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode"

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "znoded's backup and restore"
  zn_state_init
  ORIGINAL="$ZN_STATE_DIR"
  ADMIN_PORT="$(free_port 127.0.0.1)"
  # snapCount=200: snapshots (files of their own in dataDir) are taken while backups are
  start_server admin.enableServer=true "admin.serverPort=$ADMIN_PORT" admin.serverAddress=127.0.0.1 \
    snapCount=200
}

teardown() {
  ZN_STATE_DIR="$ORIGINAL" stop_all
  if [ -n "${RESTORED:-}" ]; then ZN_STATE_DIR="$RESTORED" stop_all; fi
}

# fresh_config DIR: from here on the helpers' member 1 is a new standalone server kept in DIR,
# whose data directories are empty; its zoo.cfg is $CFG.
fresh_config() {
  ZN_STATE_DIR="$1"
  zn_state_init
  mkdir -p "$(member_dir 1)"
  free_port "$(member_addr 1)" > "$(member_dir 1)/port"
  write_member_config 1 1
  CFG="$(member_dir 1)/zoo.cfg"
}

acked() { grep -c . "$BATS_TEST_TMPDIR/acked" 2> /dev/null || echo 0; }

@test "a backup taken under a write load, restored, holds exactly the writes acknowledged up to its zxid" {
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" zxid-writer "$(member_connect 1)" /load/n 100000 \
    "$BATS_TEST_TMPDIR/acked" > "$BATS_TEST_TMPDIR/writer.log" 2>&1 3>&- &
  local writer=$!
  zn_track_pid "$writer"
  wait_until 60 "the writer's first 300 acknowledged writes" bash -c "[ \$(grep -c . '$BATS_TEST_TMPDIR/acked' 2>/dev/null || echo 0) -ge 300 ]"
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  assert_output --regexp "^backup of 127\\.0\\.0\\.1:$ADMIN_PORT at zxid=0x[0-9a-f]+ written to $BATS_TEST_TMPDIR/backup \\([0-9]+ bytes\\)\$"
  local zxid before
  zxid="$(sed -n 's/.* at zxid=\(0x[0-9a-f]*\) .*/\1/p' <<< "$output")"
  before="$(acked)"
  # the writer went on while the copy was made, and goes on after it
  wait_until 60 "300 more acknowledged writes after the backup" bash -c "[ \$(grep -c . '$BATS_TEST_TMPDIR/acked') -ge $((before + 300)) ]"
  kill "$writer"
  wait "$writer" 2> /dev/null || true

  RESTORED="$BATS_TEST_TMPDIR/restored"
  fresh_config "$RESTORED"
  run "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$CFG"
  assert_success
  assert_output --regexp "^znoded: restored $BATS_TEST_TMPDIR/backup into $(member_dir 1)/datalog: zxid=$zxid \\([0-9]+ snapshots?, [0-9]+ log records\\)\$"
  launch_member 1
  wait_ruok 1
  run fourlw mntr 1
  assert_line "zk_last_zxid	$zxid"
  run zk_tool check-backup "$(member_connect 1)" "$BATS_TEST_TMPDIR/acked" "$zxid"
  assert_success
  assert_output --regexp '^acked_before=[0-9]+ acked_after=[0-9]+ present=[0-9]+ problems=0$'
  # both sides of the zxid were exercised: writes before it, and writes after it left out
  [ "$(sed -n 's/^acked_before=\([0-9]*\) .*/\1/p' <<< "$output")" -ge 300 ]
  [ "$(sed -n 's/.* acked_after=\([0-9]*\) .*/\1/p' <<< "$output")" -ge 300 ]
}

@test "a restored server serves writes, and its store reads clean" {
  "$ZNODE" --server "$(member_connect 1)" create /kept "before the backup" > /dev/null
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_load.py" "$(member_connect 1)" /s/n "$BATS_TEST_TMPDIR/acked" --count 250
  wait_until 30 "a snapshot in the store" snapshot_taken
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  RESTORED="$BATS_TEST_TMPDIR/restored"
  fresh_config "$RESTORED"
  run "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$CFG"
  assert_success
  assert_output --regexp " \\([1-9][0-9]* snapshots?, [0-9]+ log records\\)\$"
  # the snapshot files travelled in the backup and are in dataDir, the LMDB store in dataLogDir
  run compgen -G "$(member_dir 1)/data/snapshot.*"
  assert_success
  run ! compgen -G "$(member_dir 1)/datalog/snapshot.*"
  launch_member 1
  wait_ruok 1
  run "$ZNODE" --server "$(member_connect 1)" get /kept
  assert_output "before the backup"
  run "$ZNODE" --server "$(member_connect 1)" create /after "written after the restore"
  assert_success
  stop_member 1
  run "$ZN_ZNODED" --dump "$CFG"
  assert_success
  assert_line --partial "type=create path=/after "
  assert_line --regexp "^snapshot zxid=0x[0-9a-f]+ bytes=[0-9]+ file=$(member_dir 1)/data/snapshot\\.[0-9a-f]+ nodes=[0-9]+ "
}

@test "one backup restored into every member of a 3-member ensemble: each serves it, and the ensemble takes writes" {
  "$ZNODE" --server "$(member_connect 1)" create /kept "before the backup" > /dev/null
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  local zxid n
  zxid="$(sed -n 's/.* at zxid=\(0x[0-9a-f]*\) .*/\1/p' <<< "$output")"
  RESTORED="$BATS_TEST_TMPDIR/restored"
  ZN_STATE_DIR="$RESTORED"
  prepare_members 3
  for n in 1 2 3; do
    write_member_config "$n" 3
    run "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$(member_dir "$n")/zoo.cfg"
    assert_success
    assert_output --regexp "^znoded: restored .* zxid=$zxid "
  done
  for n in 1 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  wait_until 60 "a leader" leader_of 1 2 3
  for n in 1 2 3; do
    run "$ZNODE" --server "$(member_connect "$n")" get /kept
    assert_output "before the backup"
  done
  run "$ZNODE" --server "$(member_connect 2)" create /after "written to the restored ensemble"
  assert_success
  for n in 1 2 3; do
    # a follower applies the commit when it hears of it: poll, do not race
    wait_until 30 "member $n to serve /after" bash -c \
      "[ \"\$('$ZNODE' --server $(member_connect "$n") get /after 2>/dev/null)\" = 'written to the restored ensemble' ]"
  done
}

@test "HEAD of the snapshot command answers its headers and no body" {
  # a raw client: curl stops reading after the headers of a HEAD, whatever follows them
  run "$ZN_PYTHON" - "$ADMIN_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"HEAD /commands/snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
answer = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    answer += chunk
head, _, body = answer.partition(b"\r\n\r\n")
lines = head.decode().split("\r\n")
print(lines[0])
print([l for l in lines if l.startswith("last_zxid: 0x")] != [], "length" if any(l.startswith("Content-Length: ") and l != "Content-Length: 0" for l in lines) else "no length")
print("body bytes:", len(body))
PY
  assert_success
  assert_output "HTTP/1.1 200 OK
True length
body bytes: 0"
}

@test "restore refuses a data directory that is not empty, and leaves it as it was" {
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  local datalog
  datalog="$(member_dir 1)/datalog"
  stop_member 1
  local before
  before="$(ls -l "$datalog" | md5sum)"
  run --separate-stderr "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$(member_dir 1)/zoo.cfg"
  assert_failure 1
  assert_output ""
  assert_regex "$stderr" "^znoded: --restore: $datalog is not empty \(it holds (data\.mdb|lock\.mdb|log\.[0-9a-f]{16}|log\.spare)\); a backup is restored only into an empty data directory\$"
  assert_equal "$(ls -l "$datalog" | md5sum)" "$before"
}

@test "restore refuses a file that is not a whole backup, and leaves the directory empty" {
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  local size
  size="$(stat -c %s "$BATS_TEST_TMPDIR/backup")"
  head -c $((size - 1000)) "$BATS_TEST_TMPDIR/backup" > "$BATS_TEST_TMPDIR/cut"
  RESTORED="$BATS_TEST_TMPDIR/restored"
  fresh_config "$RESTORED"
  run --separate-stderr "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/cut" "$CFG"
  assert_failure 1
  assert_equal "$stderr" "znoded: --restore: $BATS_TEST_TMPDIR/cut is $((size - 1000)) bytes, its header says $size: the backup is cut short or has bytes added"
  run --separate-stderr "$ZN_ZNODED" --restore "$CFG" "$CFG"
  assert_failure 1
  assert_equal "$stderr" "znoded: --restore: $CFG is not a znodefs backup (no backup header)"
  run ls -A "$(member_dir 1)/datalog"
  assert_output ""
}

@test "restore refuses a backup with a damaged byte, names the file it is in, and leaves the directory empty" {
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_success
  # The payload's first file header is at byte 32; its name, data.mdb, at 56; its data at 64.
  assert_equal "$(dd if="$BATS_TEST_TMPDIR/backup" bs=1 skip=56 count=8 status=none)" "data.mdb"
  cp "$BATS_TEST_TMPDIR/backup" "$BATS_TEST_TMPDIR/damaged"
  local size offset byte
  size="$(stat -c %s "$BATS_TEST_TMPDIR/backup")"
  offset=$((64 + (size - 64) / 2))
  byte="$(od -An -tu1 -j "$offset" -N1 "$BATS_TEST_TMPDIR/backup" | tr -d ' ')"
  printf "\\$(printf %03o $(((byte + 1) % 256)))" |
    dd of="$BATS_TEST_TMPDIR/damaged" bs=1 seek="$offset" conv=notrunc status=none
  run cmp -s "$BATS_TEST_TMPDIR/backup" "$BATS_TEST_TMPDIR/damaged"
  assert_failure 1
  RESTORED="$BATS_TEST_TMPDIR/restored"
  fresh_config "$RESTORED"
  run --separate-stderr "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/damaged" "$CFG"
  assert_failure 1
  assert_equal "$stderr" "znoded: --restore: $BATS_TEST_TMPDIR/damaged cannot be restored: data.mdb does not match its checksum: the backup is damaged"
  run ls -A "$(member_dir 1)/datalog"
  assert_output ""
  run --separate-stderr "$ZN_ZNODED" --restore "$BATS_TEST_TMPDIR/backup" "$CFG"
  assert_success
}

@test "backup says which servers it could not reach, and exits 3" {
  local port
  port="$(free_port 127.0.0.1)"
  run --separate-stderr "$ZNODE" --server "127.0.0.1:1,127.0.0.2:2" backup "$BATS_TEST_TMPDIR/none" --admin-port "$port"
  assert_failure 3
  assert_equal "$stderr" "znode: backup: cannot reach the AdminServer at 127.0.0.1:$port
znode: backup: cannot reach the AdminServer at 127.0.0.2:$port"
  run ls "$BATS_TEST_TMPDIR/none" "$BATS_TEST_TMPDIR/none.tmp"
  assert_failure
}

@test "a snapshot needs ALL permission on /: refused with 403 without it, taken with the digest that has it" {
  # the root's ACL: only the digest identity ops:secret, as an operator locks a tree down
  "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import sys
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=30)
zk.add_auth("digest", "ops:secret")
zk.set_acls("/", [make_digest_acl("ops", "secret", all=True)])
zk.stop()
PY
  local url="http://127.0.0.1:$ADMIN_PORT/commands/snapshot"
  run curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$url"
  assert_output 403
  run jq -c . "$BATS_TEST_TMPDIR/body"
  assert_output '{"command":"snapshot","error":"not authorized: a snapshot needs ALL permission on / (send '"'"'Authorization: digest user:password'"'"')"}'
  run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: digest ops:wrong' "$url"
  assert_output 403
  run curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H 'Authorization: Basic b3BzOnNlY3JldA==' "$url"
  assert_output 403
  run jq -r .error "$BATS_TEST_TMPDIR/body"
  assert_output "the Authorization header must be 'digest user:password'"
  run --separate-stderr "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT"
  assert_failure 1
  assert_regex "$stderr" "^znode: backup: 127\\.0\\.0\\.1:$ADMIN_PORT answered 403: .*not authorized"
  run ls "$BATS_TEST_TMPDIR/backup"
  assert_failure
  run "$ZNODE" --server "$(member_connect 1)" backup "$BATS_TEST_TMPDIR/backup" --admin-port "$ADMIN_PORT" --auth ops:secret
  assert_success
  assert_output --partial "written to $BATS_TEST_TMPDIR/backup"
}
