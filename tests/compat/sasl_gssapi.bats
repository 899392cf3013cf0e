#!/usr/bin/env bats
# SASL GSSAPI (Kerberos) for clients, configured as ZooKeeper users do: the JAAS Server section's
# Krb5LoginModule entry names the server's principal and key table. A KDC of its own runs on
# loopback for the file (tests/lib/kdc.sh, Debian's krb5-kdc); kazoo authenticates with a ticket
# of client@ZNODE.TEST, which becomes the ACL identity sasl:client@ZNODE.TEST, as in ZooKeeper
# (ZN_TARGET=zookeeper runs the same against it). A client whose ticket the server cannot accept
# gets AUTHFAILED.

bats_require_minimum_version 1.5.0

load ../integration/helpers
load sasl_helpers

setup_file() {
  command -v krb5kdc > /dev/null || skip "krb5-kdc is not installed (tools/install-deps.sh installs it)"
  zn_state_init
  export ZN_STATE_DIR
  export KDC_DIR="$BATS_FILE_TMPDIR/kdc"
  export KRB5_CONFIG
  KRB5_CONFIG="$("$ZN_LIB_DIR/kdc.sh" start "$KDC_DIR" ZNODE.TEST zookeeper/localhost)"
  export KRB5CCNAME="FILE:$KDC_DIR/client.cc"
  local jaas="$BATS_FILE_TMPDIR/jaas.conf"
  printf '%s\n' 'Server {' '  com.sun.security.auth.module.Krb5LoginModule required' \
    "  useKeyTab=true keyTab=\"$KDC_DIR/server.keytab\" storeKey=true useTicketCache=false" \
    '  principal="zookeeper/localhost@ZNODE.TEST";' '};' > "$jaas"
  # the JVM's Kerberos reads its configuration from this property, MIT's from KRB5_CONFIG
  export ZN_SERVER_JVMFLAGS="-Djava.security.auth.login.config=$jaas -Djava.security.krb5.conf=$KRB5_CONFIG"
  start_ensemble "${ZN_ENSEMBLE:-1}" "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
}

teardown_file() {
  [ -z "${GSSAPI_MOUNT:-}" ] || ! mountpoint -q "$GSSAPI_MOUNT" || fusermount3 -u -z "$GSSAPI_MOUNT" || true
  stop_all
  "$ZN_LIB_DIR/kdc.sh" stop "$KDC_DIR"
}

setup() {
  zn_load_bats_libs
  BASE="/gssapi-$BATS_TEST_NUMBER"
  rm -f "$KDC_DIR/client.cc"
}

@test "kazoo authenticates with a Kerberos ticket and holds sasl:client@ZNODE.TEST" {
  kinit -kt "$KDC_DIR/client.keytab" client@ZNODE.TEST
  run kazoo_sasl 1 GSSAPI - create "$BASE" kerberized sasl:client@ZNODE.TEST get "$BASE" acl "$BASE" \
    create "$BASE-auth" x auth acl "$BASE-auth"
  assert_success
  assert_output "$BASE
kerberized
sasl:client@ZNODE.TEST:31
$BASE-auth
sasl:client@ZNODE.TEST:31"
  run kazoo_sasl 1 - - get "$BASE"
  assert_output "ERR NoAuthError"
}

@test "a ticket the server cannot accept yet (postdated) gets AuthFailedError" {
  kinit -kt "$KDC_DIR/client.keytab" -s 30min client@ZNODE.TEST
  run kazoo_sasl 1 GSSAPI - get /
  assert_output "ERR AuthFailedError"
}

@test "the znode CLI with --sasl-mech GSSAPI reads a node only client@ZNODE.TEST may, and fails without a ticket" {
  local znode="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode"
  local server="localhost:$(member_port 1)"
  kinit -kt "$KDC_DIR/client.keytab" client@ZNODE.TEST
  run kazoo_sasl 1 GSSAPI - create "$BASE" kerberized sasl:client@ZNODE.TEST
  assert_output "$BASE"
  run --separate-stderr "$znode" --server "$server" --timeout 10000 --sasl-mech GSSAPI get "$BASE"
  assert_success
  assert_output "kerberized"
  # a JAAS Client section with the ticket cache says the same
  printf '%s\n' 'Client {' '  com.sun.security.auth.module.Krb5LoginModule required' \
    '  useTicketCache=true;' '};' > "$BATS_TEST_TMPDIR/client.jaas"
  run --separate-stderr "$znode" --server "$server" --timeout 10000 --jaas "$BATS_TEST_TMPDIR/client.jaas" get "$BASE"
  assert_success
  assert_output "kerberized"
  run --separate-stderr "$znode" --server "$server" --timeout 10000 get "$BASE"
  assert_failure 1
  assert_equal "$stderr" "znode: get $BASE: not authenticated"
  # the service of the server's principal is the one given: nosuch/localhost is unknown to the KDC
  run --separate-stderr "$znode" --server "$server" --timeout 10000 --sasl-mech GSSAPI --sasl-service nosuch get "$BASE"
  assert_failure 3
  [[ "$stderr" == "znode: authentication failed: $server: SASL GSSAPI to nosuch/localhost: "* ]] || { echo "stderr: $stderr"; false; }
  # no ticket: the client cannot start the exchange, and says why
  kdestroy
  run --separate-stderr "$znode" --server "$server" --timeout 10000 --sasl-mech GSSAPI get "$BASE"
  assert_failure 3
  [[ "$stderr" == "znode: authentication failed: $server: SASL GSSAPI to zookeeper/localhost: "* ]] || { echo "stderr: $stderr"; false; }
}

@test "the mount with -o sasl=GSSAPI is client@ZNODE.TEST: it reads a node only that principal may" {
  local znodefs="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/fs/znodefs"
  [ -e /dev/fuse ] && command -v fusermount3 > /dev/null || skip "no /dev/fuse or fusermount3 here"
  kinit -kt "$KDC_DIR/client.keytab" client@ZNODE.TEST
  run kazoo_sasl 1 GSSAPI - create "$BASE" kerberized-mount sasl:client@ZNODE.TEST
  assert_output "$BASE"
  export GSSAPI_MOUNT="$BATS_FILE_TMPDIR/mnt"
  mkdir -p "$GSSAPI_MOUNT"
  "$znodefs" -f -o sasl=GSSAPI "localhost:$(member_port 1)" "$GSSAPI_MOUNT" 2>> "$BATS_FILE_TMPDIR/mnt.log" &
  zn_track_pid $!
  wait_until 20 "znodefs mounted at $GSSAPI_MOUNT" mountpoint -q "$GSSAPI_MOUNT" || { cat "$BATS_FILE_TMPDIR/mnt.log"; false; }
  run cat "$GSSAPI_MOUNT$BASE"
  assert_success
  assert_output "kerberized-mount"
  fusermount3 -u "$GSSAPI_MOUNT"
}
