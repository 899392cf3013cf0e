#!/usr/bin/env bats
# Limits in an ensemble: a write whose request fits in jute.maxbuffer is replicated whole, whatever
# its txn adds (header, path, ACL), through a follower as through the leader, as in ZooKeeper (a log
# entry holds up to 32 MiB; jute.maxbuffer is refused above what one entry can carry, config.bats).

load helpers

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "znoded's log entry limit"
}

teardown() {
  stop_all
}

@test "a create near jute.maxbuffer through a follower is replicated whole to every member" {
  start_ensemble 3 tickTime=500
  follower=""
  for n in 1 2 3; do
    if fourlw srvr "$n" | grep -q -x 'Mode: follower'; then follower="$n"; fi
  done
  [ -n "$follower" ]
  run "$ZN_PYTHON" - "$(member_connect "$follower")" "$(member_connect 1),$(member_connect 2),$(member_connect 3)" <<'PY'
import sys
from kazoo.client import KazooClient
# 1048515 bytes of data: the request is under jute.maxbuffer (1048575); the txn, with its
# header, path and ACL, is over 1 MiB (the log entry limit this project used to have).
k = KazooClient(hosts=sys.argv[1], timeout=10)
k.start()
k.create("/big", b"x" * 1048515)
k.create("/small", b"y")
print("next write: %s" % k.get("/small")[0].decode())
k.stop()
for hp in sys.argv[2].split(","):
    m = KazooClient(hosts=hp, timeout=10)
    m.start()
    m.sync("/big")
    print("%s: %d" % (hp.split(":")[0], len(m.get("/big")[0])))
    m.stop()
PY
  assert_success
  assert_line "next write: y"
  assert_equal "$(grep -c ': 1048515$' <<< "$output")" 3
}
