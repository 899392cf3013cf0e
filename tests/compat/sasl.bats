#!/usr/bin/env bats
# SASL DIGEST-MD5 for clients, configured as ZooKeeper users do: a JAAS file whose Server section
# lists user_NAME="password" entries, named by -Djava.security.auth.login.config in SERVER_JVMFLAGS
# (as zkServer.sh users set it), and authProvider.1=...SASLAuthenticationProvider for sasl: ACLs.
# Real clients (kazoo with sasl_options, and a raw prober speaking the SASL packet) against a
# 3-member ensemble (or a standalone server with ZN_ENSEMBLE=1) of the server under test (ZN_TARGET=zookeeper proves both sides): a sasl: ACL
# admits exactly its user, also for writes a follower forwards to the leader; a wrong password or
# an unknown user gets AUTHFAILED and the connection closed; malformed SASL packets close only
# their own connection.

bats_require_minimum_version 1.5.0

load ../integration/helpers
load sasl_helpers

setup_file() {
  # a 3-member ensemble unless run-all.sh's standalone pass asks for one member
  export MEMBERS="${ZN_ENSEMBLE:-3}"
  sasl_digest_start "$MEMBERS" "alice=alice-secret bob=bob-secret carol=carol-secret" "superUser=carol"
  LEADER=1 FOLLOWER=1
  if [ "$MEMBERS" -gt 1 ]; then
    LEADER="$(leader_of $(seq 1 "$MEMBERS"))"
    [ "$LEADER" != 1 ] || FOLLOWER=2
  fi
  export LEADER FOLLOWER
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  BASE="/sasl-$BATS_TEST_NUMBER"
}

@test "kazoo authenticates with DIGEST-MD5 and a sasl ACL admits exactly that user" {
  run kazoo_sasl 1 alice alice-secret create "$BASE" for-alice sasl:alice get "$BASE" acl "$BASE"
  assert_success
  assert_output "$BASE
for-alice
sasl:alice:31"
  run kazoo_sasl 1 bob bob-secret get "$BASE" set "$BASE" by-bob
  assert_success
  assert_output "ERR NoAuthError
ERR NoAuthError"
  run kazoo_sasl 1 - - get "$BASE"
  assert_success
  assert_output "ERR NoAuthError"
}

@test "the SASL superUser passes every ACL, on the member it is connected to and through the leader" {
  run kazoo_sasl 1 alice alice-secret create "$BASE" alices sasl:alice
  assert_output "$BASE"
  run kazoo_sasl "$FOLLOWER" carol carol-secret get "$BASE" set "$BASE" by-carol get "$BASE"
  assert_success
  assert_output "alices
set
by-carol"
}

@test "the auth ACL scheme gives a node to the session's SASL identity" {
  run kazoo_sasl 1 bob bob-secret create "$BASE" mine auth acl "$BASE" get "$BASE"
  assert_success
  assert_output "$BASE
sasl:bob:31
mine"
}

@test "a sasl ACL with a malformed Kerberos name is refused as INVALIDACL" {
  run kazoo_sasl 1 alice alice-secret create "$BASE" x "sasl:a@b@c" create "$BASE-ok" x "sasl:zookeeper/host@EXAMPLE.COM"
  assert_success
  assert_output "ERR InvalidACLError
$BASE-ok"
}

@test "writes a follower forwards to the leader are judged with the client's SASL identity" {
  [ "$MEMBERS" -gt 1 ] || skip "a standalone server forwards nothing"
  run kazoo_sasl "$FOLLOWER" alice alice-secret create "$BASE" v1 sasl:alice set "$BASE" v2 \
    create "$BASE/child" c sasl:alice get "$BASE"
  assert_success
  assert_output "$BASE
set
$BASE/child
v2"
  run kazoo_sasl "$FOLLOWER" bob bob-secret set "$BASE" by-bob create "$BASE/other" x open
  assert_success
  assert_output "ERR NoAuthError
ERR NoAuthError"
  # and the leader's own copy says the same
  run kazoo_sasl "$LEADER" alice alice-secret get "$BASE"
  assert_output "v2"
}

@test "a wrong password or an unknown user gets AUTHFAILED and the connection is closed" {
  local m
  for m in 1 "$FOLLOWER"; do
    run zkwire "$(member_addr "$m")" "$(member_port "$m")" sasl bob not-bobs-password
    assert_success
    assert_output "sasl 1: err 0 zxid 0
sasl 2: err -115 zxid 0
exists: closed
connection: closed"
    run zkwire "$(member_addr "$m")" "$(member_port "$m")" sasl mallory alice-secret
    assert_success
    assert_output "sasl 1: err 0 zxid 0
sasl 2: err -115 zxid 0
exists: closed
connection: closed"
  done
  run zkwire "$(member_addr 1)" "$(member_port 1)" sasl alice alice-secret
  assert_output "sasl 1: err 0 zxid 0
sasl 2: err 0 zxid 0
sasl: complete
exists: ok
connection: open"
}

@test "kazoo with a wrong password ends its session with AuthFailedError" {
  run kazoo_sasl 1 alice wrong get /
  # start() or the get reports it, as kazoo's threads race (tests/lib/kazoo_start_race.py):
  # exit 1 or 0, the same one line
  [ "$status" -le 1 ]
  assert_output "ERR AuthFailedError"
}

@test "malformed SASL packets close only their own connection and the server serves on" {
  local kind expected
  while IFS='|' read -r kind expected; do
    run zkwire "$(member_addr 1)" "$(member_port 1)" sasl-malformed "$kind"
    assert_success
    assert_output "offender: $expected
bystander: ok"
  done <<'CASES'
token-past-frame|closed
negative-token|closed
huge-token|closed after error -115
garbage-response|closed after error -115
before-handshake|closed
CASES
  run kazoo_sasl 1 alice alice-secret get /
  assert_output ""
}

# zkcli JAAS CMD...: one zkCli.sh command against member 1 with a JAAS Client section (the Java
# client's SASL), its output without the JVM's logging and the connection banner.
zkcli() {
  local jaas="$1" out rc; shift
  out="$(CLIENT_JVMFLAGS="-Djava.security.auth.login.config=$jaas" \
    "$ZN_ZKCLI" -server "$(member_connect 1)" "$@" 2>&1 < /dev/null)" && rc=0 || rc=$?
  grep -v -E '^(SLF4J:|Connecting to |WATCHER::|WatchedEvent state:(SyncConnected|SaslAuthenticated)|$)' <<< "$out" || true
  return "$rc"
}

@test "zkCli.sh with a JAAS Client section authenticates as its user" {
  local jaas="$BATS_TEST_TMPDIR/client.jaas"
  printf '%s\n' 'Client {' '  org.apache.zookeeper.server.auth.DigestLoginModule required' \
    '  username="bob" password="bob-secret";' '};' > "$jaas"
  run zkcli "$jaas" whoami
  assert_success
  # ZooKeeper keeps a connection's ids in a hash set: their order is not part of the contract
  assert_line --index 0 "Auth scheme: User"
  assert_line "ip: 127.0.0.1"
  assert_line "sasl: bob"
  assert_equal "${#lines[@]}" 3
  run zkcli "$jaas" create "$BASE" by-zkcli sasl:bob:cdrwa
  assert_output "Created $BASE"
  run kazoo_sasl 1 bob bob-secret get "$BASE"
  assert_output "by-zkcli"
  run kazoo_sasl 1 alice alice-secret get "$BASE"
  assert_output "ERR NoAuthError"
}
