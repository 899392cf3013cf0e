#!/usr/bin/env bats
# SASL between ensemble members (quorum.auth.*), DIGEST-MD5 from the JAAS file's QuorumServer
# (user_NAME="password": the members this one accepts) and QuorumLearner (username, password: how
# this one authenticates) sections, with ZooKeeper's three keys: enableSasl (answer members that
# authenticate), learnerRequireSasl (authenticate to every member, drop it if that fails),
# serverRequireSasl (refuse a member that does not authenticate, or fails).

bats_require_minimum_version 1.5.0

load helpers
load quorum_helpers

# jaas FILE LEARNER_PASSWORD: the quorum sections, the member user "zkpeer" with password "s3cret".
jaas() {
  quorum_jaas "$1" zkpeer s3cret "$2"
}

# configure N [key=value...]: member N of 3 with its own JAAS file (right password) and the lines.
configure() {
  local n="$1"; shift
  jaas "$BATS_TEST_TMPDIR/jaas$n.conf" s3cret
  write_member_config "$n" 3 "java.security.auth.login.config=$BATS_TEST_TMPDIR/jaas$n.conf" "$@"
}

REQUIRED=(quorum.auth.enableSasl=true quorum.auth.learnerRequireSasl=true quorum.auth.serverRequireSasl=true)

@test "an ensemble whose members require quorum SASL forms, each member authenticated, and replicates" {
  local n
  prepare_members 3
  for n in 1 2 3; do configure "$n" "${REQUIRED[@]}"; done
  launch_three
  for n in 1 2 3; do
    grep -q 'sasl: DIGEST-MD5 between members, users=1, this member authenticates as zkpeer' "$(member_dir "$n")/server.log"
    grep -q 'transport: member id [0-9] authenticated with SASL as zkpeer' "$(member_dir "$n")/server.log"
    grep -q 'transport: link up peer=[0-9] .* sasl=yes' "$(member_dir "$n")/server.log"
  done
  zk_tool create "$(member_connect 1)" /s replicated
  for n in 1 2 3; do
    run get_synced "$n" /s
    [ "$output" = replicated ]
  done
}

@test "a member with a wrong quorum password cannot join when SASL is required; both logs say why" {
  local n
  prepare_members 3
  for n in 1 2 3; do configure "$n" "${REQUIRED[@]}"; done
  jaas "$BATS_TEST_TMPDIR/jaas3.conf" wrong
  launch_three 1 2
  wait_until 20 "member 1 refuses member 3" \
    grep -q 'incoming connection closed peer=3 addr=127.0.0.3:[0-9]* reason="SASL authentication of member id 3 failed: ' "$(member_dir 1)/server.log"
  wait_until 20 "member 3 says member 1 refused it" \
    grep -q 'transport: SASL with peer=1 addr=127.0.0.1:[0-9]* failed reason="the member refused this one: SASL authentication of member id 3 failed: ' "$(member_dir 3)/server.log"
  never_joins 3
  # with the right password it joins
  stop_member 3
  jaas "$BATS_TEST_TMPDIR/jaas3.conf" s3cret
  restart_member 3
  run get_synced 3 /zookeeper
  [ "$status" -eq 0 ]
}

@test "serverRequireSasl=false lets a member whose authentication fails in, with a warning; true refuses one that does not authenticate" {
  local n
  prepare_members 3
  for n in 1 2 3; do configure "$n" quorum.auth.enableSasl=true quorum.auth.learnerRequireSasl=true; done
  jaas "$BATS_TEST_TMPDIR/jaas3.conf" wrong
  launch_three
  grep -q 'SASL authentication of member id 3 failed (.*): let in all the same, as quorum.auth.serverRequireSasl is false' "$(member_dir 1)/server.log"
  # a member that does not authenticate at all, against members that require it
  for n in 1 2 3; do stop_member "$n"; done
  for n in 1 2; do configure "$n" "${REQUIRED[@]}"; done
  write_member_config 3 3
  launch_three 1 2
  wait_until 20 "member 1 refuses member 3" \
    grep -q 'incoming connection rejected addr=127.0.0.3:[0-9]* reason="member id 3 did not authenticate with SASL (quorum.auth.serverRequireSasl=true)"' "$(member_dir 1)/server.log"
  run member_is_serving 3
  [ "$status" -eq 1 ]
}

@test "quorum SASL configuration: ZooKeeper's contradictions, a missing section and Kerberos are refused, naming the key" {
  prepare_members 3
  configure 1 quorum.auth.learnerRequireSasl=true
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl"* ]]
  configure 1 quorum.auth.enableSasl=true quorum.auth.serverRequireSasl=true
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"* ]]
  configure 1 "${REQUIRED[@]}" quorum.auth.learner.saslLoginContext=Elsewhere
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum.auth.learnerRequireSasl=true but the file has no Elsewhere section with a username"* ]]
  configure 1 "${REQUIRED[@]}" quorum.auth.kerberos.servicePrincipal=zkquorum/localhost
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum.auth.kerberos.servicePrincipal: "*"Kerberos"* ]]
  configure 1 "${REQUIRED[@]}"
  run -0 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum sasl: DIGEST-MD5, users=1 (QuorumServer), learner zkpeer (QuorumLearner), serverRequireSasl=true"* ]]
}
