#!/usr/bin/env bats
# zoo.cfg as a user brings it: server lines in a dynamicConfigFile (ZooKeeper 3.5+) form an
# ensemble, and every key is acted on or refused at start with one line naming it (exit status 2);
# only keys that tune ZooKeeper's JVM or files are ignored, and --check-config lists them.

bats_require_minimum_version 1.5.0

load helpers

setup() {
  zn_load_bats_libs
}

teardown() {
  stop_all
}

# only_znoded: the behaviour under test is znoded's own (ZooKeeper passes unknown keys on as
# system properties, and has the features znoded refuses).
only_znoded() {
  [ "$ZN_TARGET" = znoded ] || skip "znoded's own refusals (ZN_TARGET=$ZN_TARGET)"
}

# start_znoded CONFIG: run znoded on CONFIG as a user would (not --check-config); a znoded that
# starts when it must refuse is stopped after 20 s, and the test sees status 124, not 2.
start_znoded() {
  run timeout 20 "$ZN_ZNODED" "$1"
}

# standalone_config [key=value...]: a standalone zoo.cfg in the test's directory; prints its path.
standalone_config() {
  local cfg="$BATS_TEST_TMPDIR/zoo.cfg" line
  {
    echo "tickTime=1000"
    echo "dataDir=$BATS_TEST_TMPDIR/data"
    echo "clientPort=$(free_port)"
    echo "admin.enableServer=false"
    for line in "$@"; do echo "$line"; done
  } > "$cfg"
  echo "$cfg"
}

# move_servers_to_dynamic_file N: take member N's server.N lines (with each member's client
# address appended) and its clientPort lines out of zoo.cfg, into a dynamic file it names.
move_servers_to_dynamic_file() {
  local n="$1" dir m dyn
  dir="$(member_dir "$n")"
  dyn="$dir/zoo.cfg.dynamic.100000000"
  for m in 1 2 3; do
    echo "server.$m=$(member_addr "$m"):$(cat "$(member_dir "$m")/peer_port"):$(cat "$(member_dir "$m")/election_port"):participant;$(member_addr "$m"):$(member_port "$m")"
  done > "$dyn"
  grep -v -E '^(server\.|clientPort=|clientPortAddress=)' "$dir/zoo.cfg" > "$dir/zoo.cfg.tmp"
  echo "dynamicConfigFile=$dyn" >> "$dir/zoo.cfg.tmp"
  mv "$dir/zoo.cfg.tmp" "$dir/zoo.cfg"
}

# read_on N PATH: the data of PATH as member N serves it, after a sync.
read_on() {
  "$ZN_PYTHON" - "$(member_connect "$1")" "$2" <<'PY'
import logging, sys
from kazoo.client import KazooClient
logging.disable(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=30)
zk.sync(sys.argv[2])
print(zk.get(sys.argv[2])[0].decode())
zk.stop()
PY
}

@test "a 3-member ensemble whose server lines are in dynamicConfigFile forms and replicates" {
  zn_check_target
  prepare_members 3
  local n modes
  for n in 1 2 3; do
    write_member_config "$n" 3
    move_servers_to_dynamic_file "$n"
  done
  run grep -c '^server\.' "$(member_dir 1)/zoo.cfg"
  assert_output 0
  if [ "$ZN_TARGET" = znoded ]; then
    run "$ZN_ZNODED" --check-config "$(member_dir 2)/zoo.cfg"
    assert_success
    assert_line "config ok: clientPort=$(member_port 2) dataDir=$(member_dir 2)/data dataLogDir=$(member_dir 2)/datalog tickTime=1000 servers=3 myid=2"
  fi
  for n in 1 2 3; do launch_member "$n"; done
  for n in 1 2 3; do wait_ruok "$n"; done
  # one leader and two followers: not three members that each believe they are alone
  modes="$(for n in 1 2 3; do fourlw srvr "$n" | sed -n 's/^Mode: //p'; done | sort | tr '\n' ' ')"
  assert_equal "$modes" "follower follower leader "
  zk_tool create "$(member_connect 1)" /from-dynamic replicated-value
  for n in 2 3; do
    run read_on "$n" /from-dynamic
    assert_success
    assert_output "replicated-value"
  done
}

@test "server.N lines in zoo.cfg beside dynamicConfigFile refuse start, as in ZooKeeper" {
  only_znoded
  local dyn="$BATS_TEST_TMPDIR/zoo.cfg.dynamic" cfg
  echo "server.1=127.0.0.1:2888:3888" > "$dyn"
  cfg="$(standalone_config "dynamicConfigFile=$dyn" "server.2=127.0.0.2:2888:3888")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg: server.N lines must be in the dynamic configuration file $dyn, not in zoo.cfg, as in ZooKeeper"
}

@test "an unknown key refuses start with exit status 2 and one line naming it" {
  only_znoded
  local cfg
  cfg="$(standalone_config "snapCont=1000")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg:5: snapCont: unknown key (ZooKeeper would pass it on as a system property; znoded acts on every key it accepts)"
}

@test "a jute.maxbuffer larger than one log entry can carry refuses start, naming the key" {
  only_znoded
  local cfg
  cfg="$(standalone_config "jute.maxbuffer=40000000")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output --partial "jute.maxbuffer: '40000000' is not a size in [1024, 33488896] (a txn carrying that much data must fit in one log entry)"
  cfg="$(standalone_config "jute.maxbuffer=33488896")"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_success
}

@test "a snapCount larger than a leader can keep in memory refuses start, naming the key" {
  # It used to be taken: with snapCount=100000000 an ensemble refused every write (and every new
  # session) once 1,048,576 transactions since its last snapshot were in the leader's memory.
  only_znoded
  local cfg
  cfg="$(standalone_config "snapCount=8388609")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output --partial "snapCount: '8388609' is not an integer from 2 to 8388608 (a leader keeps the transactions since its last snapshot in memory"
  cfg="$(standalone_config "snapCount=8388608")"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_success
}

@test "each TLS and SASL key znoded does not support, or cannot honour as given, refuses start, naming the key" {
  only_znoded
  local cfg line expected cases=0
  # each case: the line added to a standalone zoo.cfg (line 5) | the one line znoded prints
  while IFS='|' read -r line expected; do
    cfg="$(standalone_config "$line")"
    start_znoded "$cfg"
    assert_equal "$status" 2
    assert_output "znoded: ${expected//CFG/$cfg}"
    cases=$((cases + 1))
  done <<'CASES'
ssl.quorum.keyStore.location=/etc/zk/q.pem|CFG: ssl.quorum.* keys are set but neither sslQuorum=true nor portUnification=true: they would have no effect
ssl.quorum.clientAuth=need|CFG: ssl.quorum.* keys are set but neither sslQuorum=true nor portUnification=true: they would have no effect
sslQuorum=true|CFG: sslQuorum=true: there are no server.N lines (a standalone server has no members to talk to)
portUnification=true|CFG: portUnification=true: there are no server.N lines (a standalone server has no members to talk to)
ssl.quorum.context.supplier.class=x|CFG:5: ssl.quorum.context.supplier.class: not supported (between members znoded reads ssl.quorum.keyStore.*, ssl.quorum.trustStore.*, ssl.quorum.clientAuth, ssl.quorum.protocol, ssl.quorum.enabledProtocols, ssl.quorum.ciphersuites, ssl.quorum.hostnameVerification, ssl.quorum.handshakeDetectionTimeoutMillis)
client.portUnification=true|CFG: client.portUnification=true needs ssl.keyStore.location (the server's key and certificate, for the TLS clients of clientPort)
ssl.crl=true|CFG:5: ssl.crl=true: certificate revocation lists are not supported yet (only ssl.crl=false is accepted)
ssl.keyStore.location=/etc/zk/keystore.pem|CFG: ssl.* keys are set but neither secureClientPort nor client.portUnification=true is: they would have no effect (between members, the keys are ssl.quorum.*)
quorum.auth.enableSasl=true|CFG: quorum.auth.enableSasl=true: there are no server.N lines (a standalone server has no members to authenticate)
quorum.auth.kerberos.servicePrincipal=zookeeper/_HOST|CFG:5: quorum.auth.kerberos.servicePrincipal: Kerberos between members is not supported (members authenticate with DIGEST-MD5 from the JAAS file's quorum sections)
java.security.auth.login.config=/nonexistent/jaas.conf|CFG: java.security.auth.login.config=/nonexistent/jaas.conf: No such file or directory
kerberos.removeHostFromPrincipal=true|CFG: kerberos.removeHostFromPrincipal=true acts on Kerberos principals: without a Krb5LoginModule in the JAAS Server section it would have no effect
kerberos.canonicalizeHostNames=true|CFG:5: kerberos.canonicalizeHostNames: not supported (of Kerberos, znoded reads kerberos.removeHostFromPrincipal and kerberos.removeRealmFromPrincipal)
sasl.serverconfig=OtherServer|CFG:5: sasl.serverconfig: not supported (znoded's SASL reads the JAAS file's Server section)
enforce.auth.enabled=true|CFG: enforce.auth.enabled=true needs enforce.auth.schemes (the schemes a client must have authenticated with)
enforce.auth.schemes=sasl|CFG: enforce.auth.schemes is set but enforce.auth.enabled is not true: it would have no effect
CASES
  assert_equal "$cases" 16
}

@test "a JAAS Kerberos entry whose key table cannot be read refuses start, from zoo.cfg or SERVER_JVMFLAGS" {
  only_znoded
  local cfg jaas="$BATS_TEST_TMPDIR/jaas.conf"
  printf '%s\n' 'Server {' '  com.sun.security.auth.module.Krb5LoginModule required' \
    '  useKeyTab=true keyTab="/etc/zk/zk.keytab" storeKey=true principal="zookeeper/host@EXAMPLE.COM";' \
    '};' > "$jaas"
  cfg="$(standalone_config "java.security.auth.login.config=$jaas")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg: java.security.auth.login.config=$jaas: keyTab /etc/zk/zk.keytab: No such file or directory"
  cfg="$(standalone_config)"
  SERVER_JVMFLAGS="-Xmx512m -Djava.security.auth.login.config=$jaas" start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg: java.security.auth.login.config=$jaas: keyTab /etc/zk/zk.keytab: No such file or directory"
}

@test "a JKS key store refuses start with the keytool line that converts it" {
  only_znoded
  local cfg
  cfg="$(standalone_config "secureClientPort=$(free_port)" "ssl.keyStore.location=/etc/zk/keystore.jks")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg: ssl.keyStore.location: /etc/zk/keystore.jks is a Java key store (JKS or BCFKS), which znoded cannot read; convert it to PKCS12 with: keytool -importkeystore -srckeystore /etc/zk/keystore.jks -destkeystore /etc/zk/keystore.jks.p12 -deststoretype PKCS12, and name the .p12 file (or use PEM files)"
  cfg="$(standalone_config "secureClientPort=$(free_port)" "ssl.keyStore.location=/etc/zk/keystore" "ssl.keyStore.type=JKS")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output --partial "ssl.keyStore.type: /etc/zk/keystore is a Java key store (JKS or BCFKS)"
}

@test "secureClientPort without a key store refuses start" {
  only_znoded
  local cfg port
  port="$(free_port)"
  cfg="$(standalone_config "secureClientPort=$port")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg: secureClientPort=$port needs ssl.keyStore.location (the server's key and certificate)"
}

@test "a key store that cannot be opened stops the start with a line naming it" {
  only_znoded
  local cfg
  cfg="$(standalone_config "secureClientPort=$(free_port)" "ssl.keyStore.location=$BATS_TEST_TMPDIR/missing.p12" "ssl.keyStore.password=x")"
  start_znoded "$cfg"
  assert_equal "$status" 1
  assert_output --partial "ERROR znoded: tls: ssl.keyStore.location=$BATS_TEST_TMPDIR/missing.p12: No such file or directory"
}

@test "--check-config opens the TLS key store, so a wrong password fails the check" {
  only_znoded
  local cfg keys="$BATS_TEST_TMPDIR/keys"
  mkdir -p "$keys"
  tls_ca "$keys" server "/CN=127.0.0.1"
  openssl pkcs12 -export -in "$keys/server.pem" -inkey "$keys/server.key" -passout pass:right \
    -out "$keys/server.p12" 2> /dev/null
  cfg="$(standalone_config "secureClientPort=$(free_port)" "ssl.keyStore.location=$keys/server.p12" "ssl.keyStore.password=right")"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_success
  cfg="$(standalone_config "secureClientPort=$(free_port)" "ssl.keyStore.location=$keys/server.p12" "ssl.keyStore.password=wrong")"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_equal "$status" 2
  assert_line --index 0 --regexp "ERROR znoded: tls: ssl.keyStore.location=$keys/server.p12: cannot open it \\(wrong ssl.\\*.password\\?\\): "
  assert_line --index 1 "znoded: $cfg: the TLS key or trust store cannot be used (the line above says why)"
}

@test "a key accepted only at what znoded does: forceSync=yes starts, forceSync=no refuses" {
  only_znoded
  local cfg
  cfg="$(standalone_config "forceSync=no")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg:5: forceSync=no: znoded always fsyncs the log before it acknowledges a write (only forceSync=yes is accepted)"
  cfg="$(standalone_config "forceSync=yes" "sslQuorum=false")"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_success
}

@test "--check-config prints the keys it ignores, and only those" {
  only_znoded
  local cfg
  cfg="$(standalone_config "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" \
    "autopurge.purgeInterval=1" "autopurge.snapRetainCount=5" "jvm.pause.monitor=true" "maxCnxns=100")"
  run --separate-stderr "$ZN_ZNODED" --check-config "$cfg"
  assert_success
  assert_equal "${#lines[@]}" 3
  assert_line --index 1 "ignored: serverCnxnFactory (a Java class; znoded has one connection layer)"
  assert_line --index 2 "ignored: jvm.pause.monitor (the JVM pause monitor)"
}

@test "autopurge.* are acted on: a retain count above what znoded keeps, or a bad interval, refuses to start" {
  only_znoded
  local cfg
  cfg="$(standalone_config "autopurge.snapRetainCount=65")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg:5: autopurge.snapRetainCount: '65' is not an integer <= 64 (the most snapshots znoded keeps)"
  cfg="$(standalone_config "autopurge.purgeInterval=-1")"
  start_znoded "$cfg"
  assert_equal "$status" 2
  assert_output "znoded: $cfg:5: autopurge.purgeInterval: '-1' is not a number of hours in [0, 1000000] (0: never purge)"
  # below ZooKeeper's minimum of 3: as ZooKeeper, a warning and 3
  cfg="$(standalone_config "autopurge.snapRetainCount=1" "autopurge.purgeInterval=0")"
  run --separate-stderr "$ZN_ZNODED" --check-config "$cfg"
  assert_success
  assert_equal "${#lines[@]}" 1
  [[ "$stderr" == *"config: autopurge.snapRetainCount=1 is below 3; keeping 3 snapshots, as ZooKeeper does"* ]] ||
    fail "no warning in: $stderr"
}

@test "maxCnxns bounds the client connections of the whole server" {
  start_server maxCnxns=2 maxClientCnxns=0
  run "$ZN_PYTHON" - "$(member_addr 1)" "$(member_port 1)" "$ZN_LIB_DIR" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[3])
from exchange import exchange
addr = (sys.argv[1], int(sys.argv[2]))
def ruok():
    return exchange(addr, b"ruok").decode() or "closed"
# two sessions, established (so the server has surely counted both connections)
import logging
from kazoo.client import KazooClient
logging.disable(logging.CRITICAL)
held = []
for _ in range(2):
    zk = KazooClient(hosts="%s:%d" % addr, timeout=10, connection_retry={"max_tries": 0})
    zk.start(timeout=15)
    held.append(zk)
print("third while two are open:", ruok())
held.pop().stop()
deadline = time.time() + 20
while (reply := ruok()) != "imok" and time.time() < deadline:
    time.sleep(0.1)
print("after one closed:", reply)
PY
  assert_success
  assert_output "third while two are open: closed
after one closed: imok"
}
