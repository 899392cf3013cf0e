#!/usr/bin/env bats
# Limits in an ensemble: a write whose request fits in a packet but whose txn (data, path, ACL,
# header) does not fit in a log entry is refused with BADARGUMENTS, answered at once through the
# member the client is on (a forwarded one used to be dropped, and its client waited for its own
# timeout), and the ensemble goes on.

load helpers

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "znoded's log entry limit"
}

teardown() {
  stop_all
}

@test "a create whose txn is over the log entry limit is refused with BADARGUMENTS through a follower, and the next write works" {
  start_ensemble 3 tickTime=500
  follower=""
  for n in 1 2 3; do
    if fourlw srvr "$n" | grep -q -x 'Mode: follower'; then follower="$n"; fi
  done
  [ -n "$follower" ]
  run "$ZN_PYTHON" - "$(member_connect "$follower")" <<'PY'
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError
k = KazooClient(hosts=sys.argv[1], timeout=10)
k.start()
# 1048515 bytes of data: the request is under jute.maxbuffer (1048575), the txn is not under
# the log entry limit (1 MiB) once its header, path and ACL are added.
try:
    k.create("/big", b"x" * 1048515)
    print("created")
except BadArgumentsError:
    print("BADARGUMENTS")
k.create("/small", b"y")
print("next write: %s" % k.get("/small")[0].decode())
k.stop()
PY
  assert_success
  assert_line "BADARGUMENTS"
  assert_line "next write: y"
  run grep -h "write refused" "$(member_dir 1)/server.log" "$(member_dir 2)/server.log" "$(member_dir 3)/server.log"
  assert_output --partial "over 1048576"
}
