# Helpers of the tests between ensemble members (quorum_tls.bats, quorum_sasl.bats): load after
# helpers. They give each test its bats libraries and stop what it started (setup, teardown), and
# start 3 members written with write_member_config. Ports come from helpers.bash (ZN_PORT_MIN,
# ZN_PORT_MAX from the environment).

setup() {
  zn_load_bats_libs
}

teardown() {
  stop_all
}

# launch_three [N...]: launch members 1, 2 and 3 (configured already), and wait until members
# N... (default all three) serve.
launch_three() {
  local n wait=("$@")
  [ "$#" -gt 0 ] || wait=(1 2 3)
  for n in 1 2 3; do launch_member "$n"; done
  for n in "${wait[@]}"; do wait_ruok "$n"; done
}

# never_joins N: member N never links to a peer and serves nothing, after 3 s of trying.
never_joins() {
  sleep 3 # (no readiness signal exists for "never joins": give it 3 s to try)
  run ! grep -q 'link up' <(last_run_log "$1")
  run member_is_serving "$1"
  [ "$status" -eq 1 ]
}

# quorum_jaas FILE USER PASSWORD [LEARNER_PASSWORD]: a JAAS file whose QuorumServer section
# accepts member user USER with PASSWORD and whose QuorumLearner section authenticates as USER with
# LEARNER_PASSWORD (default PASSWORD).
quorum_jaas() {
  cat > "$1" <<JAAS
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_$2="$3";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="$2"
    password="${4:-$3}";
};
JAAS
}
