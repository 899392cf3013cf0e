#!/usr/bin/env bats
# client.portUnification=true: the client port takes TLS and plain clients at once, told apart by
# their first byte as ZooKeeper's DualModeSslHandler does (no secureClientPort). Real clients on
# the one port: kazoo plain and with use_ssl and a client certificate, the znode CLI plain and with
# --tls-ca; the TLS client's certificate gives its x509 identity there too; a four-letter word
# still works plain; garbage that starts like a TLS record closes only its own connection.
# ZN_TARGET=zookeeper runs the same against ZooKeeper 3.8 (Netty's connection layer, which is
# where ZooKeeper has port unification). The keys are made here with openssl, per run.

bats_require_minimum_version 1.5.0

load ../integration/helpers
load tls_helpers

setup_file() {
  tls_keys_init
  tls_ca "$KEYS" ca "/CN=znodefs test ca"
  printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:localhost\n' > "$KEYS/san.ext"
  tls_sign "$KEYS" server "/CN=127.0.0.1" ca -extfile "$KEYS/san.ext"
  tls_sign "$KEYS" client "/O=znodefs/CN=client" ca
  # ssl.clientAuth=need binds the TLS clients only: plain ones have no certificate to show
  start_ensemble "${ZN_ENSEMBLE:-1}" \
    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" \
    "client.portUnification=true" "ssl.clientAuth=need" \
    "ssl.keyStore.location=$KEYS/server.pem" "ssl.trustStore.location=$KEYS/ca.pem" \
    "authProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider"
  export TLS_SERVER="$(member_connect 1)"
  export ZNODE="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  BASE="/unified-$BATS_TEST_NUMBER"
}

@test "kazoo plain and kazoo with use_ssl share the client port" {
  run kazoo_tls plain create "$BASE" from-plain
  assert_success
  assert_output "$BASE"
  run kazoo_tls client get "$BASE" create "$BASE/tls" from-tls
  assert_success
  assert_output "from-plain
$BASE/tls"
  run kazoo_tls plain get "$BASE/tls"
  assert_output "from-tls"
}

@test "the znode CLI plain and with --tls-ca share the client port" {
  run --separate-stderr "$ZNODE" --server "$TLS_SERVER" --timeout 5000 create "$BASE" plain-cli
  assert_success
  assert_output "$BASE"
  run --separate-stderr "$ZNODE" --server "$TLS_SERVER" --timeout 5000 --tls-ca "$KEYS/ca.pem" \
    --tls-cert "$KEYS/client.pem" get "$BASE"
  assert_success
  assert_output "plain-cli"
  # a TLS client the server's CA does not vouch for is still refused there
  run --separate-stderr "$ZNODE" --server "$TLS_SERVER" --timeout 3000 --tls-ca "$KEYS/ca.pem" get "$BASE"
  assert_failure 3
  [[ "$stderr" == "znode: cannot connect to $TLS_SERVER: timed out (last: $TLS_SERVER: "* ]]
}

@test "a TLS client on the shared port holds its certificate's x509 identity; a plain one does not" {
  run kazoo_tls client create "$BASE" cert-only "CN=client,O=znodefs" get "$BASE"
  assert_success
  assert_output "$BASE
cert-only"
  run kazoo_tls plain get "$BASE"
  assert_success
  assert_output "ERR NoAuthError"
}

@test "a plain four-letter word is answered on the shared port" {
  run fourlw_at "$(member_addr 1)" "$(member_port 1)" ruok
  assert_output "imok"
}

@test "bytes that open like a TLS record but are not one close only their connection" {
  run "$ZN_PYTHON" - "$(member_addr 1)" "$(member_port 1)" "$ZN_LIB_DIR" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[3])
from exchange import exchange
addr = (sys.argv[1], int(sys.argv[2]))
def closed(reply):  # nothing, or a TLS alert record: never a ZooKeeper reply
    return "closed" if reply[:1] in (b"", b"\x15") else "answered %r" % reply[:16]
print("bad handshake:", closed(exchange(addr, b"\x16\x03\x01\x00\x05hello")))
print("garbage:", closed(exchange(addr, b"\x16" + os.urandom(4095))))
PY
  assert_success
  assert_output "bad handshake: closed
garbage: closed"
  run kazoo_tls plain get /
  assert_success
  run kazoo_tls client get /
  assert_success
}
