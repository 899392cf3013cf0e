#!/usr/bin/env bats
# Dynamic reconfiguration (ZooKeeper 3.5+'s reconfig) against 3-member ensembles: a member added
# by reconfig serves and votes, a removed member stops, every member keeps /zookeeper/config and
# its dynamic config file current, and the checks ZooKeeper makes before a reconfig (reconfigEnabled,
# the super user, a stale version) refuse what they must. Clients are kazoo (tests/lib via python).

load helpers

SUPER_PASSWORD="reconfig-secret"

setup() {
  zn_load_bats_libs
  SUPER_DIGEST="$("$ZN_PYTHON" -c 'import sys; from kazoo.security import make_digest_acl_credential as d; print(d("super", sys.argv[1]))' "$SUPER_PASSWORD")"
}

teardown() {
  stop_all
}

# reconfig_as WHO HOSTS [joining=..] [leaving=..] [new_members=..] [from_config=..]: runs kazoo's
# reconfig as WHO (super, or anyone) and prints the new config, or "ERR <exception class>".
reconfig_as() {
  local who="$1" hosts="$2"; shift 2
  "$ZN_PYTHON" - "$who" "$hosts" "$SUPER_PASSWORD" "$@" <<'PY'
import logging, sys
from kazoo.client import KazooClient
logging.disable(logging.CRITICAL)
who, hosts, password = sys.argv[1:4]
args = {"joining": None, "leaving": None, "new_members": None, "from_config": -1}
for a in sys.argv[4:]:
    k, v = a.split("=", 1)
    args[k] = int(v) if k == "from_config" else v
auth = [("digest", "super:" + password)] if who == "super" else []
zk = KazooClient(hosts=hosts, auth_data=auth, timeout=10)
zk.start(timeout=30)
try:
    data, stat = zk.reconfig_async(**args).get(timeout=30)
    print(data.decode())
    print("mzxid=%x" % stat.mzxid)
except Exception as e:
    print("ERR %s" % type(e).__name__)
finally:
    zk.stop()
PY
}

# raw_reconfig_error N LEAVING: the error code of a reconfig (leaving LEAVING) sent on a raw
# connection to member N (kazoo 2.8 has no class for ZooKeeper 3.8's -123 and hangs on it).
raw_reconfig_error() {
  "$ZN_PYTHON" - "$(member_addr "$1")" "$(member_port "$1")" "$2" <<'PY'
import socket, struct, sys
host, port, leaving = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def frame(b): return struct.pack(">i", len(b)) + b
def string(t):
    if t is None: return struct.pack(">i", -1)
    return struct.pack(">i", len(t)) + t.encode()
def recv(s, n):
    d = b""
    while len(d) < n:
        c = s.recv(n - len(d))
        if not c: raise SystemExit("closed")
        d += c
    return d
def reply(s): return recv(s, struct.unpack(">i", recv(s, 4))[0])
s = socket.create_connection((host, port), timeout=20)
s.sendall(frame(struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16))
reply(s)
body = struct.pack(">ii", 1, 16) + string(None) + string(leaving) + string(None) + struct.pack(">q", -1)
s.sendall(frame(body))
xid, zxid, err = struct.unpack(">iqi", reply(s)[:16])
print("xid=%d err=%d" % (xid, err))
PY
}

# reconfig_then_move FROM TO LEAVING: as the super user on member FROM, reconfig (leaving
# LEAVING) and, with that session still open (no other write), open a session on member TO as a
# client that has seen the reconfig's zxid. Prints "session" once TO opens it, "refused" if it
# never does (ZooKeeper refuses a client that has seen a zxid ahead of the server's).
reconfig_then_move() {
  "$ZN_PYTHON" - "$(member_connect "$1")" "$(member_addr "$2")" "$(member_port "$2")" "$3" "$SUPER_PASSWORD" <<'PY'
import logging, socket, struct, sys, time
from kazoo.client import KazooClient
logging.disable(logging.CRITICAL)
hosts, addr, port, leaving, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
zk = KazooClient(hosts=hosts, auth_data=[("digest", "super:" + password)], timeout=10)
zk.start(timeout=30)
data, stat = zk.reconfig_async(joining=None, leaving=leaving, new_members=None, from_config=-1).get(timeout=30)
def opens_session(seen):
    s = socket.create_connection((addr, port), timeout=10)
    s.sendall(struct.pack(">i", 44) + struct.pack(">iqiq", 0, seen, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16)
    try:
        return len(s.recv(4)) == 4
    except OSError:
        return False
    finally:
        s.close()
result = "refused"
for _ in range(50):
    if opens_session(stat.mzxid):
        result = "session"
        break
    time.sleep(0.1)
print(result)
zk.stop()
PY
}

# config_of N: /zookeeper/config as member N serves it (after a sync).
config_of() {
  "$ZN_PYTHON" - "$(member_connect "$1")" <<'PY'
import logging, sys
from kazoo.client import KazooClient
RETRY = {"max_tries": -1, "delay": 0.2, "max_delay": 1.0}
logging.disable(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=10, connection_retry=RETRY)
zk.start(timeout=30)
zk.sync("/")
print(zk.get("/zookeeper/config")[0].decode())
zk.stop()
PY
}

# write_at N PATH DATA: create PATH with DATA through member N (one attempt, 20 s).
write_at() {
  "$ZN_PYTHON" - "$(member_connect "$1")" "$2" "$3" <<'PY'
import logging, sys
from kazoo.client import KazooClient
RETRY = {"max_tries": -1, "delay": 0.2, "max_delay": 1.0}
logging.disable(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=10, connection_retry=RETRY)
zk.start(timeout=30)
zk.create(sys.argv[2], sys.argv[3].encode())
zk.stop()
print("written")
PY
}

read_at() {
  "$ZN_PYTHON" - "$(member_connect "$1")" "$2" <<'PY'
import logging, sys
from kazoo.client import KazooClient
RETRY = {"max_tries": -1, "delay": 0.2, "max_delay": 1.0}
logging.disable(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=10, connection_retry=RETRY)
zk.start(timeout=30)
zk.sync(sys.argv[2])
print(zk.get(sys.argv[2])[0].decode())
zk.stop()
PY
}

# prepare_member N: ports and a config for a new member N joining members 1..N-1.
prepare_member() {
  local n="$1" dir
  dir="$(member_dir "$n")"
  mkdir -p "$dir"
  free_port "$(member_addr "$n")" > "$dir/port"
  free_port "$(member_addr "$n")" > "$dir/peer_port"
  free_port "$(member_addr "$n")" > "$dir/election_port"
  write_member_config "$n" "$n" reconfigEnabled=true "DigestAuthenticationProvider.superDigest=$SUPER_DIGEST" joinEnsemble=true
}

# server_string N [ROLE]: ZooKeeper's server string of member N, client port included.
server_string() {
  local n="$1" role="${2:-participant}"
  echo "server.$n=$(member_addr "$n"):$(cat "$(member_dir "$n")/peer_port"):$(cat "$(member_dir "$n")/election_port"):$role;$(member_addr "$n"):$(member_port "$n")"
}

start_reconfigurable_ensemble() {
  start_ensemble 3 reconfigEnabled=true "DigestAuthenticationProvider.superDigest=$SUPER_DIGEST" "$@"
}

@test "reconfig is refused with ZooKeeper's RECONFIGDISABLED when reconfigEnabled is not set" {
  start_ensemble 3 "DigestAuthenticationProvider.superDigest=$SUPER_DIGEST"
  run raw_reconfig_error 1 3
  assert_output "xid=1 err=-123"
  [ "$ZN_TARGET" != znoded ] || grep -q "reconfig feature is disabled" "$(member_dir 1)/server.log" "$(member_dir 2)/server.log" "$(member_dir 3)/server.log"
  run config_of 2
  assert_output --partial "server.3="
}

@test "a standalone server answers reconfig as ZooKeeper's: RECONFIGDISABLED, or UNIMPLEMENTED when enabled" {
  start_server
  run raw_reconfig_error 1 3
  assert_output "xid=1 err=-123"
  stop_all
  start_server reconfigEnabled=true
  run raw_reconfig_error 1 3
  assert_output "xid=1 err=-6"
}

@test "reconfig is refused with NOAUTH for a client that is not the super user" {
  start_reconfigurable_ensemble
  run reconfig_as anyone "$(member_connect 2)" leaving=3
  assert_output "ERR NoAuthError"
  # kazoo's own TestReconfig.test_no_super_auth: a joiner with an id above 255
  run reconfig_as anyone "$(member_connect 2)" "joining=server.999=127.0.0.9:1234:2345:observer;3456"
  assert_output "ERR NoAuthError"
  run config_of 1
  assert_output --partial "server.3="
}

@test "reconfig from a stale config version fails with BADVERSION and changes nothing" {
  start_reconfigurable_ensemble
  run reconfig_as super "$(member_connect 1)" leaving=3 from_config=12345
  assert_output "ERR BadVersionError"
  run reconfig_as super "$(member_connect 1)" leaving=1,2
  assert_output "ERR BadArgumentsError"
  run config_of 3
  assert_output --partial "server.3="
  assert_output --partial "version=0"
}

@test "a member added by reconfig syncs, serves and votes, and every member keeps the new config" {
  start_reconfigurable_ensemble
  run write_at 1 /before "written before the reconfig"
  assert_output "written"
  echo 4 > "$(zn_state_dir)/members"
  prepare_member 4
  launch_member 4
  run reconfig_as super "$(member_connect 2)" "joining=$(server_string 4)"
  assert_output --partial "server.4=127.0.0.4:"
  assert_output --partial "participant;127.0.0.4:$(member_port 4)"
  version="$(sed -n 's/^version=//p' <<< "$output")"
  [ -n "$version" ] && [ "$version" != 0 ]
  wait_ruok 4 60
  # it serves: what was written before it joined, and a write through it
  run read_at 4 /before
  assert_output "written before the reconfig"
  run write_at 4 /through4 "via member 4"
  assert_output "written"
  for n in 1 2 3 4; do
    run config_of "$n"
    assert_output --partial "server.4="
    assert_output --partial "version=$version"
    assert_file_exists "$(member_dir "$n")/data/zoo.cfg.dynamic.$version"
  done
  # it votes: with 4 voters a quorum is 3; with member 1 down, a write needs 2, 3 and 4
  stop_member 1
  wait_until 30 "members 2-4 to serve" bash -c "source '$BATS_TEST_DIRNAME/helpers.bash'; ZN_STATE_DIR='$ZN_STATE_DIR'; member_is_serving 2 && member_is_serving 3 && member_is_serving 4"
  run write_at 3 /after "committed by 2, 3 and 4"
  assert_output "written"
  # and with 4 down as well, the remaining two are no quorum of four
  stop_member 4
  run timeout 30 bash -c "source '$BATS_TEST_DIRNAME/helpers.bash'; ZN_STATE_DIR='$ZN_STATE_DIR'; write_at() { :; }; for i in \$(seq 1 40); do member_is_serving 2 >/dev/null || exit 0; sleep 0.25; done; exit 1"
  assert_success
  # member 4 restarts from its dynamic config file and serves again
  restart_member 1
  restart_member 4
  run read_at 4 /after
  assert_output "committed by 2, 3 and 4"
  grep -q "membership from .*zoo.cfg.dynamic.$version" "$(member_dir 4)/server.log"
}

@test "a member started after the reconfig that added it joins, serves, and shows the same config" {
  start_reconfigurable_ensemble
  echo 4 > "$(zn_state_dir)/members"
  prepare_member 4
  # a quorum of {1,2,3,4} is three synced members: 1-3 suffice while 4 is down
  run reconfig_as super "$(member_connect 1)" "joining=$(server_string 4)"
  assert_output --partial "server.4=127.0.0.4:"
  expected="$(sed -n '/^server\./p; /^version=/p' <<< "$output")"
  run write_at 2 /before4 "written while 4 was down"
  assert_output "written"
  launch_member 4
  wait_ruok 4 60
  run read_at 4 /before4
  assert_output "written while 4 was down"
  run config_of 4
  assert_output "$expected"
}

@test "a member removed by reconfig stops serving and the others go on without it" {
  start_reconfigurable_ensemble
  run reconfig_as super "$(member_connect 1)" leaving=3
  refute_output --partial "server.3="
  assert_output --partial "server.1="
  assert_output --partial "server.2="
  wait_until 30 "member 3 to log its removal" grep -q "was removed from the ensemble" "$(member_dir 3)/server.log"
  run member_is_serving 3
  assert_failure
  run write_at 1 /without3 "two voters"
  assert_output "written"
  run read_at 2 /without3
  assert_output "two voters"
  run config_of 2
  refute_output --partial "server.3="
  # restarted, it still knows it was removed
  stop_member 3
  launch_member 3
  wait_until 30 "member 3 to restart removed" bash -c "grep -c 'was removed from the ensemble' '$(member_dir 3)/server.log' | grep -q 2"
  run member_is_serving 3
  assert_failure
}

@test "a client that saw a reconfig's zxid can move to another member that applied it" {
  start_reconfigurable_ensemble
  run reconfig_then_move 1 2 3
  assert_output "session"
}

@test "a bulk reconfig (newMembers) replaces the membership" {
  start_reconfigurable_ensemble
  run reconfig_as super "$(member_connect 3)" "new_members=$(server_string 1),$(server_string 2)"
  assert_output --partial "server.1="
  refute_output --partial "server.3="
  wait_until 30 "member 3 to log its removal" grep -q "was removed from the ensemble" "$(member_dir 3)/server.log"
  run write_at 2 /bulk "after the bulk change"
  assert_output "written"
}
