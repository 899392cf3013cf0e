#!/usr/bin/env bats
# SASL DIGEST-MD5 in this project's clients: the znode CLI (--sasl-user/--sasl-password-file, or a
# JAAS file's Client section with --jaas as zkCli.sh reads it) and the mount (-o sasl=...), against
# the server under test configured with a JAAS Server section (ZN_TARGET=zookeeper proves the
# same clients against Apache ZooKeeper). A sasl: ACL admits exactly the authenticated user; a
# wrong password or an unknown user fails with AUTHFAILED and the CLI says so and exits 3; the
# client authenticates again on every new connection of its session.

bats_require_minimum_version 1.5.0

load ../integration/helpers
load sasl_helpers

setup_file() {
  sasl_digest_start "${ZN_ENSEMBLE:-1}" "alice=alice-secret bob=bob-secret"
  export ZNODE="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode"
  export SERVER="$(member_connect 1)"
  printf 'alice-secret\n' > "$BATS_FILE_TMPDIR/alice.pw"
  printf 'bob-secret\n' > "$BATS_FILE_TMPDIR/bob.pw"
  printf 'not-alices\n' > "$BATS_FILE_TMPDIR/wrong.pw"
}

teardown_file() {
  [ -z "${SASL_MOUNT:-}" ] || ! mountpoint -q "$SASL_MOUNT" || fusermount3 -u -z "$SASL_MOUNT" || true
  stop_all
}

setup() {
  zn_load_bats_libs
  BASE="/sasl-cli-$BATS_TEST_NUMBER"
}

# as USER CMD...: the znode CLI against member 1, authenticated as USER with its password file.
as() {
  local user="$1"; shift
  "$ZNODE" --server "$SERVER" --timeout 5000 --sasl-user "$user" --sasl-password-file "$BATS_FILE_TMPDIR/$user.pw" "$@"
}

@test "the CLI authenticates with DIGEST-MD5: a sasl ACL node reads for its user only" {
  run kazoo_sasl 1 alice alice-secret create "$BASE" for-alice sasl:alice
  assert_output "$BASE"
  run --separate-stderr as alice get "$BASE"
  assert_success
  assert_output "for-alice"
  run --separate-stderr as alice set "$BASE" by-cli
  assert_success
  run --separate-stderr as bob get "$BASE"
  assert_failure 1
  assert_equal "$stderr" "znode: get $BASE: not authenticated"
  run --separate-stderr "$ZNODE" --server "$SERVER" --timeout 5000 get "$BASE"
  assert_failure 1
  assert_equal "$stderr" "znode: get $BASE: not authenticated"
  run kazoo_sasl 1 alice alice-secret get "$BASE"
  assert_output "by-cli"
}

@test "a wrong password or an unknown user: AUTHFAILED, exit 3 and a line that says so" {
  run --separate-stderr "$ZNODE" --server "$SERVER" --timeout 5000 --sasl-user alice \
    --sasl-password-file "$BATS_FILE_TMPDIR/wrong.pw" get /
  assert_failure 3
  assert_output ""
  assert_equal "$stderr" "znode: authentication failed: $SERVER: SASL DIGEST-MD5 as alice: rejected by the server (AUTHFAILED)"
  # (a password no user has: ZooKeeper 3.8 checks an unknown user against the password of the
  # last user any connection named, so mallory with alice-secret gets in there after alice)
  run --separate-stderr "$ZNODE" --server "$SERVER" --timeout 5000 --sasl-user mallory \
    --sasl-password-file "$BATS_FILE_TMPDIR/wrong.pw" get /
  assert_failure 3
  assert_equal "$stderr" "znode: authentication failed: $SERVER: SASL DIGEST-MD5 as mallory: rejected by the server (AUTHFAILED)"
}

@test "the CLI's SASL flags are checked before connecting" {
  run "$ZNODE" --server "$SERVER" --sasl-user alice get /
  assert_failure 2
  assert_line --index 0 "znode: SASL DIGEST-MD5 needs --sasl-user and --sasl-password-file"
  run "$ZNODE" --server "$SERVER" --sasl-mech PLAIN --sasl-user alice --sasl-password-file "$BATS_FILE_TMPDIR/alice.pw" get /
  assert_failure 2
  assert_line --index 0 "znode: --sasl-mech is DIGEST-MD5 or GSSAPI"
  run "$ZNODE" --server "$SERVER" --sasl-user alice --sasl-password-file "$BATS_FILE_TMPDIR/none.pw" get /
  assert_failure 2
  assert_output "znode: --sasl-password-file $BATS_FILE_TMPDIR/none.pw: No such file or directory"
  : > "$BATS_TEST_TMPDIR/empty.pw"
  run "$ZNODE" --server "$SERVER" --sasl-user alice --sasl-password-file "$BATS_TEST_TMPDIR/empty.pw" get /
  assert_failure 2
  assert_output "znode: --sasl-password-file $BATS_TEST_TMPDIR/empty.pw: no password on its first line (or over 1022 bytes)"
}

@test "the CLI reads a JAAS Client section as zkCli.sh does, and refuses what it would not honour" {
  local jaas="$BATS_TEST_TMPDIR/client.jaas"
  run kazoo_sasl 1 bob bob-secret create "$BASE" for-bob sasl:bob
  assert_output "$BASE"
  printf '%s\n' 'Client {' '  org.apache.zookeeper.server.auth.DigestLoginModule required' \
    '  username="bob" password="bob-secret";' '};' > "$jaas"
  run --separate-stderr "$ZNODE" --server "$SERVER" --timeout 5000 --jaas "$jaas" get "$BASE"
  assert_success
  assert_output "for-bob"
  # the same file with alice's name and bob's password is refused by the server
  sed -i 's/username="bob"/username="alice"/' "$jaas"
  run --separate-stderr "$ZNODE" --server "$SERVER" --timeout 5000 --jaas "$jaas" get "$BASE"
  assert_failure 3
  assert_equal "$stderr" "znode: authentication failed: $SERVER: SASL DIGEST-MD5 as alice: rejected by the server (AUTHFAILED)"
  printf '%s\n' 'Client {' '  com.sun.security.auth.module.Krb5LoginModule required' \
    '  useKeyTab=true keyTab="/etc/client.keytab" principal="client@ZNODE.TEST";' '};' > "$jaas"
  run "$ZNODE" --server "$SERVER" --jaas "$jaas" get /
  assert_failure 2
  assert_output "znode: --jaas $jaas: section Client: Krb5LoginModule option useKeyTab=true is not supported (useTicketCache=true: the ticket cache of the environment, after kinit)"
  printf '%s\n' 'Server {' '  org.apache.zookeeper.server.auth.DigestLoginModule required user_a="b";' '};' > "$jaas"
  run "$ZNODE" --server "$SERVER" --jaas "$jaas" get /
  assert_failure 2
  assert_output "znode: --jaas $jaas: no Client section (the client's login module entry)"
  run "$ZNODE" --server "$SERVER" --jaas "$jaas" --sasl-user bob get /
  assert_failure 2
  assert_line --index 0 "znode: --jaas takes the place of --sasl-user, --sasl-password-file and --sasl-mech"
}

# A TCP relay in front of member 1 whose connections are cut on SIGUSR1 (the listener stays):
# a client of it loses its connection and comes back on the same session. Prints its port.
start_relay() {
  "$ZN_PYTHON" -u - "$(member_addr 1)" "$(member_port 1)" > "$BATS_TEST_TMPDIR/relay.out" 2>&1 <<'PY' &
import selectors, signal, socket, sys
target = (sys.argv[1], int(sys.argv[2]))
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(8)
sel = selectors.DefaultSelector()
sel.register(lsock, selectors.EVENT_READ)
pairs = {}
cut = False
def on_usr1(*_):
    global cut
    cut = True
signal.signal(signal.SIGUSR1, on_usr1)
print("port", lsock.getsockname()[1], flush=True)
accepted = 0
while True:
    if cut:
        for s in list(pairs):
            sel.unregister(s)
            s.close()
        pairs.clear()
        cut = False
        print("cut", flush=True)
    try:
        events = sel.select(timeout=0.1)
    except InterruptedError:
        continue
    for key, _ in events:
        s = key.fileobj
        if s is lsock:
            c, _ = lsock.accept()
            u = socket.create_connection(target)
            pairs[c], pairs[u] = u, c
            sel.register(c, selectors.EVENT_READ)
            sel.register(u, selectors.EVENT_READ)
            accepted += 1
            print("accepted", accepted, flush=True)
            continue
        if s not in pairs:
            continue
        data = s.recv(65536)
        if data:
            pairs[s].sendall(data)
        else:
            other = pairs.pop(s)
            pairs.pop(other, None)
            for x in (s, other):
                sel.unregister(x)
                x.close()
PY
  RELAY_PID=$!
  zn_track_pid "$RELAY_PID"
  wait_until 10 "the relay to listen" grep -q '^port ' "$BATS_TEST_TMPDIR/relay.out"
  RELAY_PORT="$(sed -n 's/^port //p' "$BATS_TEST_TMPDIR/relay.out")"
}

# set_until_printed N: kazoo (alice) sets $BASE until the watching CLI has printed N events.
set_until_printed() {
  kazoo_sasl 1 alice alice-secret set "$BASE" "v$RANDOM" > /dev/null
  [ "$(grep -c NodeDataChanged "$BATS_TEST_TMPDIR/watch.out")" -ge "$1" ]
}

@test "the CLI authenticates again after its connection is lost, on the same session" {
  run kazoo_sasl 1 alice alice-secret create "$BASE" v0 sasl:alice
  assert_output "$BASE"
  start_relay
  # each re-arm of the watch reads the node's children, which its sasl ACL allows only to alice
  ZNODE_LOG_LEVEL=info "$ZNODE" --server "127.0.0.1:$RELAY_PORT" --timeout 20000 --sasl-user alice \
    --sasl-password-file "$BATS_FILE_TMPDIR/alice.pw" watch "$BASE" --count 3 \
    > "$BATS_TEST_TMPDIR/watch.out" 2> "$BATS_TEST_TMPDIR/watch.err" &
  local watcher=$!
  zn_track_pid "$watcher"
  wait_until 20 "the first event" set_until_printed 1
  local cut_at=$SECONDS
  kill -USR1 "$RELAY_PID"
  wait_until 20 "the CLI's second connection" grep -q '^accepted 2$' "$BATS_TEST_TMPDIR/relay.out"
  wait_until 20 "the session resumed" grep -q 'reconnect=1' "$BATS_TEST_TMPDIR/watch.err"
  # the client was without a connection only as long as it takes to reconnect
  [ $((SECONDS - cut_at)) -le 10 ]
  wait_until 20 "the second event" set_until_printed 2
  wait_until 20 "the third event" set_until_printed 3
  run wait "$watcher"
  assert_success
  run grep -c 'session established' "$BATS_TEST_TMPDIR/watch.err"
  assert_output 2
}

# the mount (znodefs), when this machine can mount
znodefs_require() {
  ZNODEFS="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/fs/znodefs"
  [ -e /dev/fuse ] && command -v fusermount3 > /dev/null || skip "no /dev/fuse or fusermount3 here"
}

@test "the mount with -o sasl=DIGEST-MD5 reads and writes a node only its user may, and shows it" {
  znodefs_require
  run kazoo_sasl 1 alice alice-secret create "$BASE" "" sasl:alice
  assert_output "$BASE"
  export SASL_MOUNT="$BATS_FILE_TMPDIR/mnt"
  mkdir -p "$SASL_MOUNT"
  "$ZNODEFS" -f -o "sasl=DIGEST-MD5,sasl_user=alice,sasl_password_file=$BATS_FILE_TMPDIR/alice.pw" \
    "$SERVER" "$SASL_MOUNT" 2>> "$BATS_FILE_TMPDIR/mnt.log" &
  zn_track_pid $!
  wait_until 20 "znodefs mounted at $SASL_MOUNT" mountpoint -q "$SASL_MOUNT" || { cat "$BATS_FILE_TMPDIR/mnt.log"; false; }
  echo via-mount > "$SASL_MOUNT$BASE"
  run cat "$SASL_MOUNT$BASE"
  assert_output via-mount
  # the mode bits are the ACL as the mount's sasl identity sees it
  run stat -c %A "$SASL_MOUNT$BASE"
  assert_output -- "-rw-r--r--"
  run kazoo_sasl 1 bob bob-secret get "$BASE"
  assert_output "ERR NoAuthError"
  run kazoo_sasl 1 alice alice-secret get "$BASE"
  assert_output via-mount
  fusermount3 -u "$SASL_MOUNT"
}

@test "the mount refuses a wrong password with AUTHFAILED, and incomplete sasl options" {
  znodefs_require
  run timeout 60 "$ZNODEFS" -f -o "sasl=DIGEST-MD5,sasl_user=alice,sasl_password_file=$BATS_FILE_TMPDIR/wrong.pw" \
    "$SERVER" "$BATS_TEST_TMPDIR"
  assert_failure 1
  # the line that says why (libznode's log lines come before it)
  assert_line "znodefs: authentication failed: $SERVER: SASL DIGEST-MD5 as alice: rejected by the server (AUTHFAILED)"
  run mountpoint -q "$BATS_TEST_TMPDIR"
  assert_failure
  run "$ZNODEFS" -f -o "sasl=DIGEST-MD5,sasl_user=alice" "$SERVER" "$BATS_TEST_TMPDIR"
  assert_failure 2
  assert_output "znodefs: -o sasl=DIGEST-MD5 needs sasl_user=NAME and sasl_password_file=FILE"
  run "$ZNODEFS" -f -o "sasl_user=alice" "$SERVER" "$BATS_TEST_TMPDIR"
  assert_failure 2
  assert_output "znodefs: sasl_user= and sasl_password_file= need -o sasl=DIGEST-MD5"
  run "$ZNODEFS" -f -o "sasl=PLAIN" "$SERVER" "$BATS_TEST_TMPDIR"
  assert_failure 2
  assert_output "znodefs: -o sasl= is DIGEST-MD5 or GSSAPI"
}
