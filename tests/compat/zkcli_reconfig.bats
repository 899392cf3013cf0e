#!/usr/bin/env bats
# zkCli.sh's reconfig against a 3-member ensemble of the server under test (ZN_TARGET) started
# with reconfigEnabled=true and a super digest, whatever ZN_ENSEMBLE says (reconfig needs an
# ensemble; a standalone server refuses it, see zkcli_features.bats). Expected outputs are what
# ZooKeeper 3.8's zkCli prints. Each test starts its own ensemble: reconfig changes it. The member
# removed is a follower (VICTIM): removing ZooKeeper's leader makes the ensemble elect again and
# zkCli may see a connection loss instead of the reply. S1 and S2 are the members that stay.

load ../integration/helpers

SUPER_PASSWORD="zkcli-reconfig-secret"

# leader_count: how many members report Mode: leader.
leader_count() {
  local n count=0
  for n in 1 2 3; do
    if fourlw srvr "$n" | grep -q '^Mode: leader'; then count=$((count + 1)); fi
  done
  echo "$count"
}

setup() {
  zn_load_bats_libs
  local digest n deadline
  digest="$("$ZN_PYTHON" -c 'import sys; from kazoo.security import make_digest_acl_credential as d; print(d("super", sys.argv[1]))' "$SUPER_PASSWORD")"
  start_ensemble 3 reconfigEnabled=true "DigestAuthenticationProvider.superDigest=$digest"
  deadline=$((SECONDS + 30))
  while [ "$(leader_count)" != 1 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  VICTIM=""
  for n in 3 2 1; do
    if fourlw srvr "$n" | grep -q '^Mode: follower'; then VICTIM="$n"; break; fi
  done
  [ -n "$VICTIM" ] || { echo "no follower found" >&2; return 1; }
  read -r S1 S2 <<< "$(for n in 1 2 3; do [ "$n" = "$VICTIM" ] || printf '%s ' "$n"; done)"
  ZKCLI_SERVER="$(member_connect "$S1")"
}

teardown() {
  stop_all
}

# zkcli_session [SERVER]: the commands on stdin in one zkCli.sh session, without the JVM's noise.
zkcli_session() {
  "$ZN_ZKCLI" -server "${1:-$ZKCLI_SERVER}" 2>&1 | grep -v -E '^(SLF4J:|Connecting to |WATCHER::|WatchedEvent state:|$)' || true
}

@test "reconfig -remove as the super user commits the new configuration and config shows it everywhere" {
  run zkcli_session <<ZKCLI
addauth digest super:$SUPER_PASSWORD
reconfig -remove $VICTIM
quit
ZKCLI
  assert_line "Committed new configuration:"
  assert_line --regexp "^server\.$S1=127\.0\.0\.$S1:[0-9]+:[0-9]+:participant"
  assert_line --regexp "^server\.$S2=127\.0\.0\.$S2:[0-9]+:[0-9]+:participant"
  refute_line --regexp "^server\.$VICTIM="
  version="$(grep -o '^version=[0-9a-f]*' <<< "$output")"
  [ -n "$version" ]
  run zkcli_session "$(member_connect "$S2")" <<ZKCLI
sync /zookeeper/config
config
quit
ZKCLI
  refute_line --regexp "^server\.$VICTIM="
  assert_line "$version"
}

@test "reconfig by a session without the super user's digest is refused" {
  run zkcli_session <<ZKCLI
reconfig -remove $VICTIM
config
quit
ZKCLI
  assert_output --partial "Insufficient permission"
  refute_line "Committed new configuration:"
  assert_line --regexp "^server\.$VICTIM="
}

@test "reconfig -v with a stale version is refused and -members replaces the membership" {
  m1="$(member_addr "$S1"):$(cat "$(member_dir "$S1")/peer_port"):$(cat "$(member_dir "$S1")/election_port"):participant;$(member_connect "$S1")"
  m2="$(member_addr "$S2"):$(cat "$(member_dir "$S2")/peer_port"):$(cat "$(member_dir "$S2")/election_port"):participant;$(member_connect "$S2")"
  run zkcli_session <<ZKCLI
addauth digest super:$SUPER_PASSWORD
reconfig -v 7777777 -remove $VICTIM
reconfig -members server.$S1=$m1,server.$S2=$m2
quit
ZKCLI
  assert_output --partial "version No is not valid"
  assert_line "Committed new configuration:"
  assert_line "server.$S1=$m1"
  assert_line "server.$S2=$m2"
  refute_line --regexp "^server\.$VICTIM="
}
