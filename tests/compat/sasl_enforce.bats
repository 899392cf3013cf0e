#!/usr/bin/env bats
# enforce.auth.enabled=true with enforce.auth.schemes (ZooKeeper 3.8's AuthenticationHelper): a
# client that has not authenticated with one of the schemes gets SESSIONCLOSEDREQUIRESASLAUTH
# (-124) for its first request and its connection closed; one that has, is served. The JAAS file
# comes from the zoo.cfg key this time. ZN_TARGET=zookeeper runs the same against ZooKeeper.

bats_require_minimum_version 1.5.0

load ../integration/helpers

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  local jaas="$BATS_FILE_TMPDIR/jaas.conf"
  write_jaas_server "$jaas" bob=bob-secret
  local jaas_key="java.security.auth.login.config=$jaas"
  # ZooKeeper reads the JAAS file only as a JVM system property (a zoo.cfg key becomes
  # zookeeper.java.security..., which JAAS does not read)
  if [ "$ZN_TARGET" = zookeeper ]; then
    export ZN_SERVER_JVMFLAGS="-D$jaas_key"
    jaas_key="4lw.commands.whitelist=*"
  fi
  start_server "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider" \
    "$jaas_key" "enforce.auth.enabled=true" "enforce.auth.schemes=sasl,digest"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
}

@test "a client that has not authenticated gets SESSIONCLOSEDREQUIRESASLAUTH and is closed" {
  run zkwire "$(member_addr 1)" "$(member_port 1)" sasl - -
  assert_success
  assert_output "exists: error -124
connection: closed"
}

@test "a client authenticated with SASL is served" {
  run zkwire "$(member_addr 1)" "$(member_port 1)" sasl bob bob-secret
  assert_success
  assert_output "sasl 1: err 0 zxid 0
sasl 2: err 0 zxid 0
sasl: complete
exists: ok
connection: open"
}

@test "a wrong password, where sasl is enforced, gets SESSIONCLOSEDREQUIRESASLAUTH" {
  run zkwire "$(member_addr 1)" "$(member_port 1)" sasl bob wrong
  assert_success
  assert_output "sasl 1: err 0 zxid 0
sasl 2: err -124 zxid 0
exists: closed
connection: closed"
}

@test "a client authenticated with another enforced scheme (digest) is served" {
  run "$ZN_PYTHON" - "$(member_connect 1)" <<'PY'
import logging, sys
from kazoo.client import KazooClient
logging.disable(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=5, auth_data=[("digest", "carol:pw")],
                 connection_retry={"max_tries": 1})
zk.start(timeout=10)
print(zk.exists("/") is not None)
zk.stop()
PY
  assert_success
  assert_output "True"
}
