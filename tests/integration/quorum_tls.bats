#!/usr/bin/env bats
# TLS between ensemble members (sslQuorum=true, ssl.quorum.*): a 3-member ensemble whose members
# each have their own certificate (naming their own address, signed by one CA) forms, replicates a
# write to every member and fails over within a bound; its quorum port speaks only TLS and asks
# for a member's certificate; a replacement member with a certificate from a CA the others do not
# trust cannot join, and both its log and the others' say why. A rolling change from plain to TLS
# goes through portUnification=true as ZooKeeper documents it. The keys are made here with
# openssl, per run, never committed.

bats_require_minimum_version 1.5.0

load helpers
load quorum_helpers

# Writes unavailable after the leader's kill -9, bounded (tickTime=1000 here: a follower that
# waited out syncLimit would take 5 s and more).
FAILOVER_BOUND_MS=5000
# The longest wait between two acknowledged writes across one member's restart in the rolling
# change to TLS (a stopped leader costs an election, a stopped follower the writer's reconnect:
# 20-340 ms seen on a loaded 2-core machine), below the 5 s of a member that waits out syncLimit.
ROLL_GAP_BOUND_MS=3000


# make_keys DIR: a CA and one certificate per member (m1..m3, each naming 127.0.0.N); a rogue CA
# and a certificate from it for member 3's address; a good certificate naming another address.
make_keys() {
  local d="$1" n
  mkdir -p "$d"
  tls_ca "$d" ca "/CN=znodefs quorum CA"
  tls_ca "$d" rogue-ca "/CN=untrusted CA"
  for n in 1 2 3; do
    printf 'subjectAltName=IP:127.0.0.%s\n' "$n" > "$d/san$n.ext"
    tls_sign "$d" "m$n" "/CN=member $n" ca -extfile "$d/san$n.ext"
  done
  tls_sign "$d" rogue3 "/CN=member 3" rogue-ca -extfile "$d/san3.ext"
  printf 'subjectAltName=IP:127.0.0.9\n' > "$d/san9.ext"
  tls_sign "$d" elsewhere3 "/CN=member 3" ca -extfile "$d/san9.ext"
}

setup_file() {
  export KEYS="$BATS_FILE_TMPDIR/keys"
  make_keys "$KEYS"
}

# quorum_keys N [CERT]: member N's ssl.quorum.* lines, with key store CERT (default mN).
quorum_keys() {
  echo "sslQuorum=true"
  echo "ssl.quorum.keyStore.location=$KEYS/${2:-m$1}.pem"
  echo "ssl.quorum.trustStore.location=$KEYS/ca.pem"
}

# start_tls_ensemble [key=value...]: 3 members, each with its own certificate.
start_tls_ensemble() {
  local n
  prepare_members 3
  for n in 1 2 3; do
    mapfile -t keys < <(quorum_keys "$n")
    write_member_config "$n" 3 "${keys[@]}" "$@"
  done
  launch_three
}


# ms_until_write HOSTS START_NS: retries a write through HOSTS until one is acknowledged; prints
# the milliseconds from START_NS (date +%s%N) to that acknowledgement.
ms_until_write() {
  "$ZN_PYTHON" - "$1" "$2" <<'PY'
import sys, time
from kazoo.client import KazooClient
hosts, start_ns = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
while True:
    zk = KazooClient(hosts=hosts, timeout=2.0)
    try:
        zk.start(timeout=2)
        zk.set("/q", b"after-failover")
        print((time.time_ns() - start_ns) // 1000000)
        break
    except Exception as e:
        if time.time() > deadline:
            print("no write acknowledged within 60 s: %r" % e, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
    finally:
        zk.stop()
        zk.close()
PY
}

@test "a 3-member ensemble with sslQuorum=true forms, replicates to every member and fails over within ${FAILOVER_BOUND_MS} ms" {
  start_tls_ensemble
  for n in 1 2 3; do
    grep -q 'transport: listening .* tls=yes' "$(member_dir "$n")/server.log"
    grep -q 'transport: link up peer=.* tls=yes' "$(member_dir "$n")/server.log"
  done
  zk_tool create "$(member_connect 1)" /q replicated
  for n in 1 2 3; do
    run get_synced "$n" /q
    [ "$status" -eq 0 ]
    [ "$output" = replicated ]
  done

  leader="$(leader_of 1 2 3)"
  hosts=""
  for n in 1 2 3; do
    [ "$n" = "$leader" ] || hosts="$hosts${hosts:+,}$(member_connect "$n")"
  done
  start_ns="$(date +%s%N)"
  kill9_member "$leader"
  run ms_until_write "$hosts" "$start_ns"
  [ "$status" -eq 0 ]
  echo "writes unavailable for ${output} ms after the leader (member $leader) was killed" >&3
  [ "$output" -lt "$FAILOVER_BOUND_MS" ]
  for n in 1 2 3; do
    [ "$n" = "$leader" ] && continue
    run get_synced "$n" /q
    [ "$output" = after-failover ]
  done
  # the old leader comes back over TLS and catches up
  restart_member "$leader"
  run get_synced "$leader" /q
  [ "$output" = after-failover ]
}

@test "the quorum port speaks TLS only: a plain member hello is refused, openssl needs a trusted certificate" {
  start_tls_ensemble
  peer="$(member_addr 1):$(cat "$(member_dir 1)/peer_port")"
  # our plain hello (length 12, magic ZNTP, version 1, id 2) from member 2's address
  run "$ZN_PYTHON" - "$(member_addr 1)" "$(cat "$(member_dir 1)/peer_port")" <<'PY'
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), source_address=("127.0.0.2", 0), timeout=10)
s.sendall(struct.pack(">IIII", 12, 0x5A4E5450, 1, 2))
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(len(data))
PY
  # closed with nothing sent back (OpenSSL sends no alert to what is no TLS record at all)
  [ "$status" -eq 0 ]
  [ "$output" = 0 ]
  wait_until 10 "member 1 logs the plain connection" \
    grep -q 'incoming connection rejected addr=127.0.0.2:[0-9]* reason="TLS handshake failed' "$(member_dir 1)/server.log"

  # a TLS client with a trusted certificate completes the handshake (verifying the member's)
  run bash -c "timeout 20 openssl s_client -connect '$peer' -CAfile '$KEYS/ca.pem' -verify_ip 127.0.0.1 \
    -cert '$KEYS/m2.crt' -key '$KEYS/m2.key' -verify_return_error < /dev/null 2>&1"
  [[ "$output" == *"Verify return code: 0 (ok)"* ]]
  [[ "$output" == *"subject=CN = member 1"* ]]
  # without a certificate the member ends the handshake (ssl.quorum.clientAuth defaults to need)
  run bash -c "timeout 20 openssl s_client -connect '$peer' -CAfile '$KEYS/ca.pem' -tls1_2 < /dev/null 2>&1"
  [ "$status" -ne 0 ]
  [[ "$output" == *"alert"* ]]
}

@test "a quorum TLS handshake that stalls is dropped after ssl.quorum.handshakeDetectionTimeoutMillis, and the ensemble serves meanwhile" {
  start_tls_ensemble ssl.quorum.handshakeDetectionTimeoutMillis=1500
  # the start of a ClientHello record, then nothing, from member 2's address
  "$ZN_PYTHON" - "$(member_addr 1)" "$(cat "$(member_dir 1)/peer_port")" "$BATS_TEST_TMPDIR/stalled" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), source_address=("127.0.0.2", 0), timeout=30)
s.sendall(bytes([0x16, 0x03, 0x01, 0x00, 0x80, 0x01]))
start = time.time()
open(sys.argv[3] + ".sent", "w").close()
data = s.recv(4096)  # the member's close (or an alert) ends the wait
with open(sys.argv[3], "w") as f:
    f.write("%d %d\n" % (int((time.time() - start) * 1000), len(data)))
PY
  zn_track_pid $!
  wait_until 10 "the stalled handshake started" test -e "$BATS_TEST_TMPDIR/stalled.sent"
  # the loop is not held up: a write goes through the ensemble while the handshake stalls
  zk_tool create "$(member_connect 1)" /during-stall ok
  [ ! -e "$BATS_TEST_TMPDIR/stalled" ]
  wait_until 10 "member 1 drops the stalled handshake" test -s "$BATS_TEST_TMPDIR/stalled"
  read -r ms bytes < "$BATS_TEST_TMPDIR/stalled"
  echo "stalled handshake dropped after ${ms} ms (bound 1500 ms, checked once a second)" >&3
  [ "$ms" -ge 1400 ]
  [ "$ms" -lt 4000 ]
  grep -q 'incoming connection rejected addr=127.0.0.2:[0-9]* reason="TLS handshake not done within 1500 ms"' "$(member_dir 1)/server.log"
}

@test "a replacement member whose certificate the others do not trust cannot join; both logs say why" {
  start_tls_ensemble
  stop_member 3
  mapfile -t keys < <(quorum_keys 3 rogue3)
  write_member_config 3 3 "${keys[@]}"
  launch_member 3
  # its peers refuse it, once per address in the log, with OpenSSL's reason
  wait_until 20 "member 1 refuses member 3's certificate" \
    grep -q 'incoming connection rejected addr=127.0.0.3:[0-9]* reason="TLS handshake failed: .*certificate verify failed (certificate: unable to get local issuer certificate)' "$(member_dir 1)/server.log"
  wait_until 20 "member 2 does not trust member 3's certificate" \
    grep -q 'transport: TLS with peer=3 addr=127.0.0.3:[0-9]* failed reason="TLS handshake failed: .*certificate verify failed' "$(member_dir 2)/server.log"
  # and it says the others ended its handshakes
  wait_until 20 "member 3 logs its refusal" \
    grep -q 'transport: TLS with peer=1 addr=127.0.0.1:[0-9]* failed reason=".*alert unknown ca.*(the peer ended the handshake: its log says why)' "$(member_dir 3)/server.log"
  # it never joins: no link comes up, it serves nothing, while the other two go on
  never_joins 3
  zk_tool create "$(member_connect 1)" /without-3 ok
  run get_synced 2 /without-3
  [ "$output" = ok ]
}

@test "sslQuorumReloadCertFiles: a CA added to the members' trust stores lets its member in without a restart" {
  local n
  prepare_members 3
  for n in 1 2 3; do
    cp "$KEYS/ca.pem" "$BATS_TEST_TMPDIR/trust$n.pem"
    write_member_config "$n" 3 sslQuorum=true sslQuorumReloadCertFiles=true \
      "ssl.quorum.keyStore.location=$KEYS/m$n.pem" "ssl.quorum.trustStore.location=$BATS_TEST_TMPDIR/trust$n.pem"
  done
  # member 3's certificate comes from another CA, which 1 and 2 do not trust yet
  write_member_config 3 3 sslQuorum=true sslQuorumReloadCertFiles=true \
    "ssl.quorum.keyStore.location=$KEYS/rogue3.pem" "ssl.quorum.trustStore.location=$BATS_TEST_TMPDIR/trust3.pem"
  launch_three 1 2
  wait_until 20 "member 1 refuses member 3's certificate" \
    grep -q 'incoming connection rejected addr=127.0.0.3:[0-9]* reason="TLS handshake failed' "$(member_dir 1)/server.log"
  run member_is_serving 3
  [ "$status" -eq 1 ]
  # the new CA joins 1's and 2's trust stores: they reload them, and 3 joins
  for n in 1 2; do
    cat "$KEYS/ca.pem" "$KEYS/rogue-ca.pem" > "$BATS_TEST_TMPDIR/trust$n.new"
    mv "$BATS_TEST_TMPDIR/trust$n.new" "$BATS_TEST_TMPDIR/trust$n.pem"
  done
  wait_ruok 3 30
  for n in 1 2; do
    grep -q "tls: $BATS_TEST_TMPDIR/trust$n.pem changed: new connections get the reloaded key and trust stores" \
      "$(member_dir "$n")/server.log"
  done
  zk_tool create "$(member_connect 1)" /rotated yes
  run get_synced 3 /rotated
  [ "$output" = yes ]
}

@test "ssl.quorum.hostnameVerification: a trusted certificate that names another address is refused" {
  start_tls_ensemble
  stop_member 3
  mapfile -t keys < <(quorum_keys 3 elsewhere3)
  write_member_config 3 3 "${keys[@]}"
  launch_member 3
  wait_until 20 "member 1 refuses the certificate for its address" \
    grep -q 'addr=127.0.0.3:[0-9]* reason="the member.s certificate does not name its address 127.0.0.3 (ssl.quorum.hostnameVerification)"' "$(member_dir 1)/server.log"
  wait_until 20 "member 2 checks member 3's certificate against its address" \
    grep -q 'TLS with peer=3 .*IP address mismatch' "$(member_dir 2)/server.log"
  run member_is_serving 3
  [ "$status" -eq 1 ]
}

# ack_after NS: the writer (times) has had a write invoked at or after NS (date +%s%N)
# acknowledged.
ack_after() {
  awk -v t="$1" '$1 >= t { found = 1 } END { exit !found }' "$BATS_TEST_TMPDIR/times"
}

# longest_gap START_NS END_NS: the longest time in ms between two consecutive acknowledgements of
# the writer (times) around START_NS..END_NS: from the last one before START_NS to the first
# after END_NS, every wait between two counts (writes that failed and writes that blocked alike).
longest_gap() {
  awk '{ print $2 }' "$BATS_TEST_TMPDIR/times" | sort -n |
    awk -v s="$1" -v e="$2" 'prev != "" && $1 >= s && prev <= e && $1 - prev > max { max = $1 - prev }
      { prev = $1 } END { printf "%d\n", max / 1000000 }'
}

@test "portUnification: a plain ensemble turns to TLS one member at a time, writes pausing at most ${ROLL_GAP_BOUND_MS} ms a restart" {
  local n step stop_ns up_ns gap longest=0 gaps=()
  prepare_members 3
  # step 1: plain connections, the quorum port also accepts TLS
  for n in 1 2 3; do
    write_member_config "$n" 3 portUnification=true "ssl.quorum.keyStore.location=$KEYS/m$n.pem" \
      "ssl.quorum.trustStore.location=$KEYS/ca.pem"
  done
  launch_three
  zk_tool create "$(member_connect 1)" /roll step1
  # one writer over every member, one write at a time, logging when each acknowledged write was
  # invoked and acknowledged (python itself in the background: $! is its pid for stop_all)
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_load.py" "$(ensemble_connect)" /roll/load/w "$BATS_TEST_TMPDIR/acked" \
    --until "$BATS_TEST_TMPDIR/stop" --times "$BATS_TEST_TMPDIR/times" > "$BATS_TEST_TMPDIR/writer.out" 2>&1 3>&- &
  writer=$!
  zn_track_pid "$writer"
  wait_until 30 "the writer's first acknowledged write" test -s "$BATS_TEST_TMPDIR/times"
  # step 2: each member restarted with sslQuorum=true, still accepting plain; step 3: TLS only
  for step in 2 3; do
    for n in 1 2 3; do
      stop_ns="$(date +%s%N)"
      stop_member "$n"
      mapfile -t keys < <(quorum_keys "$n")
      if [ "$step" = 2 ]; then keys+=(portUnification=true); fi
      write_member_config "$n" 3 "${keys[@]}"
      restart_member "$n"
      zk_tool create "$(member_connect "$n")" "/roll/s$step-m$n" x
      up_ns="$(date +%s%N)"
      wait_until 30 "a write acknowledged after member $n's restart (step $step)" ack_after "$up_ns"
      gap="$(longest_gap "$stop_ns" "$up_ns")"
      gaps+=("step $step member $n: $gap ms")
      [ "$gap" -le "$longest" ] || longest="$gap"
    done
  done
  touch "$BATS_TEST_TMPDIR/stop"
  wait "$writer"
  echo "# longest wait between two acknowledged writes across each restart: $(printf "%s; " "${gaps[@]}") (bound ${ROLL_GAP_BOUND_MS} ms; writer: $(tail -n 1 "$BATS_TEST_TMPDIR/writer.out"))" >&3
  [ "$longest" -le "$ROLL_GAP_BOUND_MS" ] ||
    fail "writes paused ${longest} ms across a restart (bound ${ROLL_GAP_BOUND_MS} ms): ${gaps[*]}"
  # nothing the writer saw acknowledged was lost on the way
  run zk_tool check-acked "$(member_connect 1)" "$BATS_TEST_TMPDIR/acked"
  assert_success
  assert_line --partial "missing=0 wrong=0"
  for n in 1 2 3; do
    run get_synced "$n" /roll/s3-m3
    [ "$output" = x ]
    # after step 3 every link is TLS
    [ "$(last_run_log "$n" | grep -c 'link up .*tls=yes')" -ge 1 ]
    run ! grep -q 'link up peer=[0-9]* addr=[0-9.:]* connects=[0-9]*$' <(last_run_log "$n")
  done
}

@test "quorum SASL runs inside quorum TLS: an ensemble with both forms, every link TLS and authenticated" {
  local n
  quorum_jaas "$BATS_TEST_TMPDIR/jaas.conf" peer pw
  start_tls_ensemble "java.security.auth.login.config=$BATS_TEST_TMPDIR/jaas.conf" quorum.auth.enableSasl=true \
    quorum.auth.learnerRequireSasl=true quorum.auth.serverRequireSasl=true
  for n in 1 2 3; do
    [ "$(grep -c 'transport: link up peer=[0-9] .* tls=yes sasl=yes' "$(member_dir "$n")/server.log")" -ge 2 ]
    grep -q 'transport: member id [0-9] authenticated with SASL as peer' "$(member_dir "$n")/server.log"
  done
  zk_tool create "$(member_connect 2)" /both ok
  run get_synced 3 /both
  [ "$output" = ok ]
}

@test "quorum TLS configuration: what is missing or has no effect is refused, naming the key" {
  prepare_members 3
  write_member_config 1 3 sslQuorum=true
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"sslQuorum=true needs ssl.quorum.keyStore.location"* ]]
  write_member_config 1 3 "ssl.quorum.keyStore.location=$KEYS/m1.pem"
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"ssl.quorum.* keys are set but neither sslQuorum=true nor portUnification=true"* ]]
  write_member_config 1 3 sslQuorum=true "ssl.quorum.keyStore.location=$KEYS/m1.pem" ssl.quorum.context.supplier.class=x
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"ssl.quorum.context.supplier.class: not supported (between members znoded reads"* ]]
  write_member_config 1 3 sslQuorum=true "ssl.quorum.keyStore.location=$KEYS/ca.pem"
  run -2 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"ssl.quorum.keyStore.location=$KEYS/ca.pem: no private key"* ]]
  mapfile -t keys < <(quorum_keys 1)
  write_member_config 1 3 "${keys[@]}" sslQuorumReloadCertFiles=true
  run -0 "$ZN_ZNODED" --check-config "$(member_dir 1)/zoo.cfg"
  [[ "$output" == *"quorum tls: members connect and accept TLS only, hostnameVerification=true, key and trust stores reloaded when they change"* ]]
}
