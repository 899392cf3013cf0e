#!/usr/bin/env bats
# The client port's TLS options acted on, on the wire (tls.bats covers ssl.clientAuth=need, x509
# ACLs, the key store's reload and PKCS12 key store): ssl.clientAuth=want and none,
# ssl.enabledProtocols, ssl.ciphersuites, a PKCS12 trust store, and a trust store replaced while
# the server runs. Member 1 (standalone) is restarted with each configuration; ZN_TARGET=zookeeper
# runs the same against ZooKeeper 3.8 (all but the PKCS12 trust store made by openssl and the
# reload, which it does not do). The keys are made here with openssl, per run.

bats_require_minimum_version 1.5.0

load ../integration/helpers
load tls_helpers

setup_file() {
  tls_keys_init
  tls_ca "$KEYS" ca "/CN=znodefs test ca"
  tls_ca "$KEYS" ca2 "/CN=znodefs test ca2"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$KEYS/san.ext"
  tls_sign "$KEYS" server "/CN=127.0.0.1" ca -extfile "$KEYS/san.ext"
  tls_sign "$KEYS" client "/O=znodefs/CN=client" ca
  tls_sign "$KEYS" client2 "/O=znodefs/CN=client2" ca2
  # the CA alone in a PKCS12 file, as a trust store
  openssl pkcs12 -export -nokeys -in "$KEYS/ca.pem" -passout pass:trustpass \
    -out "$KEYS/ca.p12" 2> /dev/null
  cp "$KEYS/ca.pem" "$KEYS/trust.pem"
  export ZN_TLS=1
  start_ensemble 1 \
    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" \
    "ssl.keyStore.location=$KEYS/server.pem" "ssl.trustStore.location=$KEYS/trust.pem"
  export TLS_SERVER="$(member_addr 1):$(member_secure_port 1)"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
}

# serve_with KEY=VALUE...: member 1 restarted with the base TLS keys and these.
serve_with() {
  stop_member 1
  write_member_config 1 1 \
    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" \
    "ssl.keyStore.location=$KEYS/server.pem" "ssl.trustStore.location=$KEYS/trust.pem" "$@"
  restart_member 1
}

# probe CERT MAXVERSION CIPHERS: one TLS connection to member 1 (CERT: none or a key name;
# MAXVERSION: any or 1.2; CIPHERS: any or an OpenSSL TLS 1.2 cipher list) that sends ruok.
# Prints "imok VERSION CIPHER", or "refused" when the handshake or the exchange fails.
probe() {
  "$ZN_PYTHON" - "$TLS_SERVER" "$KEYS" "$@" <<'PY'
import socket, ssl, sys
server, keys, cert, maxv, ciphers = sys.argv[1:6]
host, port = server.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=keys + "/ca.pem")
if cert != "none":
    ctx.load_cert_chain(keys + "/%s.crt" % cert, keys + "/%s.key" % cert)
if maxv == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if ciphers != "any":
    ctx.set_ciphers(ciphers)
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(b"ruok")
            reply = b""
            while True:
                chunk = tls.recv(64)
                if not chunk:
                    break
                reply += chunk
            # TLS 1.3: the client's handshake ends before the server has judged its certificate,
            # so a refusal can come as a close after it
            print(" ".join([reply.decode(), tls.version(), tls.cipher()[0]]) if reply else "refused")
except (ssl.SSLError, OSError):
    print("refused")
PY
}

@test "ssl.clientAuth=want serves a client without a certificate, and a certificate still gives its x509 identity" {
  serve_with "ssl.clientAuth=want"
  run probe none any any
  assert_output --regexp '^imok '
  run kazoo_tls client create /want mine "CN=client,O=znodefs"
  assert_output /want
  run kazoo_tls none get /want
  assert_output "ERR NoAuthError"
  run kazoo_tls client get /want
  assert_output mine
}

@test "ssl.clientAuth=none serves a client without a certificate" {
  serve_with "ssl.clientAuth=none"
  run probe none any any
  assert_output --regexp '^imok '
}

@test "ssl.clientAuth=need (the default) refuses a client without a certificate" {
  serve_with
  run probe none any any
  assert_output refused
  run probe client any any
  assert_output --regexp '^imok '
}

@test "ssl.enabledProtocols=TLSv1.3 refuses a client that speaks at most TLS 1.2" {
  # ssl.ciphersuites names TLS 1.3 suites and the TLS 1.2 ones the client offers, so that only
  # the protocol refuses it: ZooKeeper 3.8's default suites are TLS 1.2 ones alone, and a
  # TLSv1.3-only port of ZooKeeper's with them serves nobody
  serve_with "ssl.enabledProtocols=TLSv1.3" \
    "ssl.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
  run probe client 1.2 any
  assert_output refused
  run probe client any any
  assert_output --regexp '^imok TLSv1.3 '
}

@test "ssl.ciphersuites limits the suites: only the one named is negotiated" {
  serve_with "ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
  run probe client any any
  assert_output "imok TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384"
  run probe client 1.2 ECDHE-RSA-AES128-GCM-SHA256
  assert_output refused
}

@test "a PKCS12 trust store admits the clients its CA signed" {
  # openssl's PKCS12 has no Java trusted-certificate attribute: checked on znoded only
  [ "$ZN_TARGET" = znoded ] || skip "ZooKeeper reads only keytool's trusted-certificate entries"
  serve_with "ssl.trustStore.location=$KEYS/ca.p12" "ssl.trustStore.password=trustpass"
  run probe client any any
  assert_output --regexp '^imok '
  run probe client2 any any
  assert_output refused
}

client2_served() {
  local out
  out="$(probe client2 any any)"
  [[ "$out" == imok* ]] || { echo "client2: $out"; return 1; }
}

@test "a trust store replaced while the server runs admits the new CA's clients without a restart" {
  [ "$ZN_TARGET" = znoded ] || skip "ZooKeeper 3.8 does not reload the client port's certificates"
  serve_with
  run probe client2 any any
  assert_output refused
  cat "$KEYS/ca.pem" "$KEYS/ca2.pem" > "$KEYS/trust.pem.new"
  mv "$KEYS/trust.pem.new" "$KEYS/trust.pem"
  wait_until 30 "member 1 to trust the second CA" client2_served
  run probe client any any
  assert_output --regexp '^imok '
}
