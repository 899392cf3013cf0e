#!/usr/bin/env bats
# A member without a leader (an election under way, or no quorum) does not turn clients away:
# their ConnectRequest waits until the member serves, then they get their session there, instead
# of being closed at once and retrying in a loop. A client whose wait passes its session timeout
# is closed with a line saying why.

load helpers

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "ZooKeeper closes such connections (ZooKeeperServer not running)"
}

teardown() {
  stop_all
}

@test "a client of a member without a quorum waits on its one connection and gets its session when the quorum is back" {
  start_ensemble 3 tickTime=500
  stop_member 2
  stop_member 3
  wait_until 20 "member 1 to look for a leader" bash -c "printf srvr | timeout 5 nc -N -w 3 127.0.0.1 $(member_port 1) | grep -q '^Mode: looking'"
  status_file="$BATS_TEST_TMPDIR/client.status"
  # One kazoo client, one server, a 20 s session timeout (its connect timeout is then 20 s too).
  "$ZN_PYTHON" - "$(member_connect 1)" "$status_file" <<'PY' 3>&- &
import sys, time
from kazoo.client import KazooClient
hosts, status = sys.argv[1], sys.argv[2]
def note(line):
    with open(status, "a") as f:
        f.write(line + "\n")
k = KazooClient(hosts=hosts, timeout=20, connection_retry={"max_tries": 0})
k.add_listener(lambda state: note("state=%s" % state))
note("connecting")
try:
    k.start(timeout=30)
    k.create("/waited", b"yes")
    note("session=0x%x" % k.client_id[0])
except Exception as e:
    note("error=%r" % e)
k.stop()
PY
  client=$!
  zn_track_pid "$client"
  wait_until 10 "the client to start connecting" grep -q connecting "$status_file"
  # Its connection is open and waiting: the member has not closed it.
  sleep 2 # what is checked is that nothing happens during these 2 s
  run grep -c "closing connection" "$(member_dir 1)/server.log"
  assert_output 0
  restart_member 2
  wait "$client"
  run cat "$status_file"
  assert_output --partial "session=0x"
  refute_output --partial "error="
  # One connection: the client was never dropped (SUSPENDED) before its session came; LOST
  # comes only from its own stop().
  run grep -c "state=SUSPENDED" "$status_file"
  assert_output 0
}

@test "a waiting client is closed, with the reason in the log, when its session timeout passes without a leader" {
  start_ensemble 3 tickTime=500 minSessionTimeout=1000
  stop_member 2
  stop_member 3
  wait_until 20 "member 1 to look for a leader" bash -c "printf srvr | timeout 5 nc -N -w 3 127.0.0.1 $(member_port 1) | grep -q '^Mode: looking'"
  "$ZN_PYTHON" - "$(member_addr 1)" "$(member_port 1)" <<'PY'
import socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port))
# ConnectRequest: protocolVersion, lastZxidSeen, timeOut=1000 ms, sessionId, passwd(16), readOnly
body = struct.pack(">iqiq", 0, 0, 1000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
s.sendall(struct.pack(">i", len(body)) + body)
s.settimeout(10)
start = time.monotonic()
data = s.recv(100)
assert data == b"", "expected the server to close the connection, got %r" % data
print("closed after %.1f s" % (time.monotonic() - start))
PY
  run grep -F "no leader within the session timeout" "$(member_dir 1)/server.log"
  assert_success
}
