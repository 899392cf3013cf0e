#!/usr/bin/env bats
# The AdminServer (admin.* in zoo.cfg) as an operator's probe, dashboard or exporter sees it:
# curl gets ZooKeeper 3.8's JSON for every command. Apache ZooKeeper (Debian's package) is asked
# the same commands with the same state (a session holding an ephemeral node and data, child and
# existence watches), and the key paths of the two answers must be equal but for the rows of
# docs/admin-api.md, each of which must still be a difference.
# One standalone server of each for the whole file; the reference is stopped once it answered.

load helpers

DOC="$ZN_REPO_ROOT/docs/admin-api.md"
SCHEMA="$ZN_REPO_ROOT/tests/lib/json_schema.jq"
# Every primary name znoded serves, and each alias with its primary name.
PRIMARY="configuration connection_stat_reset connections dirs dump environment hash initial_configuration is_read_only
  last_snapshot leader monitor observers ruok server_stats stat_reset stats voting_view watch_summary watches
  watches_by_path zabstate"
ALIASES="conf=configuration config=configuration crst=connection_stat_reset cons=connections
  env=environment envi=environment icfg=initial_configuration isro=is_read_only lsnp=last_snapshot lead=leader mntr=monitor obsr=observers srvr=server_stats
  srst=stat_reset stat=stats wchs=watch_summary wchc=watches wchp=watches_by_path"

# fetch_answers PORT DIR: every command's answer (the resets last, so they reset nothing another
# answer reports) and the command list, into DIR.
fetch_answers() {
  local port="$1" dir="$2" cmd
  mkdir -p "$dir"
  curl -sf "http://127.0.0.1:$port/commands" > "$dir/list.html" || return 1
  for cmd in $PRIMARY; do
    case "$cmd" in *reset) continue ;; esac
    curl -sf "http://127.0.0.1:$port/commands/$cmd" > "$dir/$cmd.json" || return 1
  done
  for cmd in connection_stat_reset stat_reset; do
    curl -sf "http://127.0.0.1:$port/commands/$cmd" > "$dir/$cmd.json" || return 1
  done
}

# start_with_state NAME: start the target with its AdminServer on a free port, a client session
# holding state, and record the answers in $BATS_FILE_TMPDIR/NAME.
start_with_state() {
  local name="$1" port status
  port="$(free_port 127.0.0.1)" || return 1
  start_server admin.enableServer=true "admin.serverPort=$port" admin.serverAddress=127.0.0.1 ||
    return 1
  echo "$port" > "$ZN_STATE_DIR/admin_port"
  status="$ZN_STATE_DIR/holder.status"
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" hold-state "$(member_connect 1)" /admin-test "$status" \
    > "$ZN_STATE_DIR/holder.log" 2>&1 3>&- &
  zn_track_pid $!
  wait_until 60 "the session holding state on $name" grep -qx ready "$status" || return 1
  sed -n 's/^session=//p' "$status" > "$BATS_FILE_TMPDIR/$name.session"
  wait_until 30 "the AdminServer of $name" curl -sf -o /dev/null "http://127.0.0.1:$port/commands/ruok" ||
    return 1
  fetch_answers "$port" "$BATS_FILE_TMPDIR/$name"
}

reference_available() {
  [ "$ZN_TARGET" = znoded ] && [ -x "$ZN_ZKSERVER" ] && [ -f /usr/share/java/servlet-api.jar ]
}

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  start_with_state target || return 1
  if reference_available; then
    local ours="$ZN_STATE_DIR"
    ZN_STATE_DIR="$BATS_FILE_TMPDIR/zk"
    ZN_TARGET=zookeeper start_with_state zookeeper
    local rc=$?
    stop_all
    ZN_STATE_DIR="$ours"
    return $rc
  fi
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  ADMIN="http://127.0.0.1:$(cat "$ZN_STATE_DIR/admin_port")"
  OURS="$BATS_FILE_TMPDIR/target"
  REF="$BATS_FILE_TMPDIR/zookeeper"
}

# A test that starts a server of its own keeps it in $TEST_STATE; it is stopped here, after
# failures too.
teardown() {
  if [ -n "${TEST_STATE:-}" ]; then ZN_STATE_DIR="$TEST_STATE" stop_all; fi
}

need_reference() {
  [ "$ZN_TARGET" = znoded ] || skip "ZN_TARGET=$ZN_TARGET is the reference itself"
  reference_available || skip "no reference: Debian's zookeeper package (and servlet-api.jar) is not installed"
}

keys_of() { jq -r -f "$SCHEMA" "$1" | sort; }

# documented COMMAND absent|own: the key patterns docs/admin-api.md lists for COMMAND.
documented() {
  awk -F' [|] ' -v cmd="$1" -v kind="$2" '
    /^<!-- The test reads the rows/ { on = 1; next }
    on && /^[|] / { sub(/^[|] /, ""); if ($1 == cmd && $3 == kind) { gsub(/`/, "", $2); print $2 } }
  ' "$DOC"
}

# differences_documented COMMAND: ZooKeeper's and znoded's keys for COMMAND differ exactly by
# the documented rows; prints every unexplained difference and every stale row.
differences_documented() {
  local cmd="$1" key pattern kind found problems="" set
  local -A diff
  diff[absent]="$(comm -23 <(keys_of "$REF/$cmd.json") <(keys_of "$OURS/$cmd.json"))"
  diff[own]="$(comm -13 <(keys_of "$REF/$cmd.json") <(keys_of "$OURS/$cmd.json"))"
  for kind in absent own; do
    mapfile -t patterns < <(documented "$cmd" "$kind")
    for key in ${diff[$kind]}; do
      found=0
      for pattern in "${patterns[@]}"; do
        # shellcheck disable=SC2053 # the pattern is a glob on purpose
        if [[ "$key" == $pattern ]]; then found=1; break; fi
      done
      [ "$found" = 1 ] || problems+="$cmd: key '$key' is $kind in znoded's answer and docs/admin-api.md does not say why"$'\n'
    done
    for pattern in "${patterns[@]}"; do
      found=0
      for key in ${diff[$kind]}; do
        # shellcheck disable=SC2053
        if [[ "$key" == $pattern ]]; then found=1; break; fi
      done
      [ "$found" = 1 ] || problems+="$cmd: docs/admin-api.md lists '$pattern' as $kind, but it is no longer a difference"$'\n'
    done
  done
  if [ -n "$problems" ]; then
    printf '%s' "$problems"
    return 1
  fi
}

@test "the command list has ZooKeeper's commands, less the documented ones" {
  need_reference
  local ref ours name problems=""
  ref="$(grep -o 'commands/[a-z_]*' "$REF/list.html" | cut -d/ -f2 | sort)"
  ours="$(grep -o 'commands/[a-z_]*' "$OURS/list.html" | cut -d/ -f2 | sort)"
  [ "$(echo "$ours" | tr '\n' ' ')" = "$(echo $PRIMARY snapshot | tr ' ' '\n' | sort | tr '\n' ' ')" ]
  for name in $(comm -23 <(echo "$ref") <(echo "$ours")); do
    documented "$name" absent | grep -qx '(command)' ||
      problems+="ZooKeeper serves '$name', znoded does not, and docs/admin-api.md does not say why"$'\n'
  done
  for name in $(comm -13 <(echo "$ref") <(echo "$ours")); do
    documented "$name" own | grep -qx '(command)' ||
      problems+="znoded serves '$name', which ZooKeeper 3.8 does not, and docs/admin-api.md does not say why"$'\n'
  done
  run printf '%s' "$problems"
  assert_output ""
}

@test "configuration answers with ZooKeeper's keys" {
  need_reference
  run differences_documented configuration
  assert_success
}

@test "connection_stat_reset answers with ZooKeeper's keys" {
  need_reference
  run differences_documented connection_stat_reset
  assert_success
}

@test "connections answers with ZooKeeper's keys" {
  need_reference
  run differences_documented connections
  assert_success
}

@test "dirs answers with ZooKeeper's keys" {
  need_reference
  run differences_documented dirs
  assert_success
}

@test "dump answers with ZooKeeper's keys, and lists the session's ephemeral node as ZooKeeper does" {
  need_reference
  run differences_documented dump
  assert_success
  local sid
  sid="$(printf '%d' "$(cat "$BATS_FILE_TMPDIR/target.session")")"
  run jq -c --arg sid "$sid" '.session_id_to_ephemeral_paths[$sid]' "$OURS/dump.json"
  assert_output '["/admin-test/e"]'
  run jq -c '[.session_id_to_ephemeral_paths[]]' "$REF/dump.json"
  assert_output '[["/admin-test/e"]]'
  # (session ids are past 2^53: jq reads them as doubles, so they are counted, not compared)
  run jq -c '[.expiry_time_to_session_ids[][]] | length' "$OURS/dump.json"
  assert_output 1
}

@test "environment answers with ZooKeeper's keys, less the JVM's" {
  need_reference
  run differences_documented environment
  assert_success
}

@test "hash answers with ZooKeeper's keys" {
  need_reference
  run differences_documented hash
  assert_success
}

@test "initial_configuration answers with zoo.cfg's text, as ZooKeeper does" {
  need_reference
  run differences_documented initial_configuration
  assert_success
  run jq -r .initial_configuration "$OURS/initial_configuration.json"
  assert_output "$(cat "$ZN_STATE_DIR/m1/zoo.cfg")"
}

@test "is_read_only answers with ZooKeeper's keys" {
  need_reference
  run differences_documented is_read_only
  assert_success
  run jq -c '.read_only' "$OURS/is_read_only.json"
  assert_output false
}

@test "last_snapshot answers with ZooKeeper's keys: the zxid in hex and the time in seconds" {
  need_reference
  run differences_documented last_snapshot
  assert_success
  # a fresh server's first snapshot is of its empty tree, taken at start (zxid 0 is none)
  run jq -r '.zxid' "$OURS/last_snapshot.json"
  assert_output --regexp '^([0-9a-f]+)$'
  run jq -r '.timestamp' "$OURS/last_snapshot.json"
  if [ "$(jq -r .zxid "$OURS/last_snapshot.json")" = ffffffffffffffff ]; then
    assert_output -- -1
  else
    [ "$output" -gt $(( $(date +%s) - 3600 )) ] && [ "$output" -le "$(date +%s)" ]
  fi
}

@test "observers answers a standalone server with ZooKeeper's keys: none synced" {
  need_reference
  run differences_documented observers
  assert_success
  run jq -c '[.synced_observers, .observers]' "$OURS/observers.json"
  assert_output '[0,[]]'
}

@test "restore is refused with the way to restore a member, whatever the method" {
  local method
  for method in GET POST; do
    run curl -s -X "$method" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' --data-binary @/dev/null \
      "$ADMIN/commands/restore"
    assert_output 501
    run jq -c . "$BATS_TEST_TMPDIR/body"
    assert_output '{"command":"restore","error":"restore is not served by a running member: stop it, then run '"'"'znoded --restore FILE CONFIG'"'"' into an empty data directory and start it again"}'
  done
}

@test "leader answers a standalone server as ZooKeeper does" {
  need_reference
  run differences_documented leader
  assert_success
  run jq -c '.error' "$OURS/leader.json"
  assert_output '"server is not initialized"'
}

@test "monitor answers with ZooKeeper's keys, less and more only the documented ones" {
  need_reference
  run differences_documented monitor
  assert_success
}

@test "ruok answers with ZooKeeper's keys" {
  need_reference
  run differences_documented ruok
  assert_success
}

@test "server_stats answers with ZooKeeper's keys" {
  need_reference
  run differences_documented server_stats
  assert_success
}

@test "stat_reset answers with ZooKeeper's keys" {
  need_reference
  run differences_documented stat_reset
  assert_success
}

@test "stats answers with ZooKeeper's keys" {
  need_reference
  run differences_documented stats
  assert_success
}

@test "voting_view answers a standalone server with ZooKeeper's keys" {
  need_reference
  run differences_documented voting_view
  assert_success
}

@test "watch_summary answers with ZooKeeper's keys and counts" {
  need_reference
  run differences_documented watch_summary
  assert_success
  run jq -c '[.num_connections, .num_paths]' "$OURS/watch_summary.json"
  assert_output "$(jq -c '[.num_connections, .num_paths]' "$REF/watch_summary.json")"
}

@test "watches and watches_by_path answer with ZooKeeper's keys and the same paths" {
  need_reference
  run differences_documented watches
  assert_success
  run differences_documented watches_by_path
  assert_success
  run jq -c '[.session_id_to_watched_paths[]]' "$OURS/watches.json"
  assert_output "$(jq -c '[.session_id_to_watched_paths[]]' "$REF/watches.json")"
  run jq -c '.path_to_session_ids | keys' "$OURS/watches_by_path.json"
  assert_output "$(jq -c '.path_to_session_ids | keys' "$REF/watches_by_path.json")"
}

@test "zabstate answers a standalone server as ZooKeeper does" {
  need_reference
  run differences_documented zabstate
  assert_success
  run jq -c '[.voting, .zabstate]' "$OURS/zabstate.json"
  assert_output "$(jq -c '[.voting, .zabstate]' "$REF/zabstate.json")"
}

@test "each alias answers as its command, with the command's primary name" {
  local pair alias primary
  for pair in $ALIASES; do
    alias="${pair%%=*}" primary="${pair#*=}"
    run curl -sf "$ADMIN/commands/$alias"
    assert_success
    assert_equal "$(jq -r .command <<< "$output")" "$primary"
    assert_equal "$(jq -r .error <<< "$output")" "$(curl -sf "$ADMIN/commands/$primary" | jq -r .error)"
  done
}

@test "monitor reports the figures of the mntr four-letter word" {
  [ "$ZN_TARGET" = znoded ] || skip "ZooKeeper's mntr lists fewer figures than its monitor; znoded's are one set"
  local text json
  curl -sf "$ADMIN/commands/monitor" > "$BATS_TEST_TMPDIR/monitor.json"
  text="$(fourlw mntr | sed -n 's/^zk_\([a-z_]*\)\t.*/\1/p' | sort)"
  json="$(jq -r 'del(.command, .error) | keys[]' "$BATS_TEST_TMPDIR/monitor.json" | sort)"
  assert_equal "$json" "$text"
  # figures the state fixes, not the clock
  assert_equal "$(jq .znode_count "$BATS_TEST_TMPDIR/monitor.json")" "$(fourlw mntr | sed -n 's/^zk_znode_count\t//p')"
  assert_equal "$(jq .ephemerals_count "$BATS_TEST_TMPDIR/monitor.json")" 1
  assert_equal "$(jq .watch_count "$BATS_TEST_TMPDIR/monitor.json")" 3
}

@test "an unknown command is answered as ZooKeeper answers it" {
  run curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code} %{content_type}' "$ADMIN/commands/no_such_thing"
  assert_output "200 application/json"
  run jq -c . "$BATS_TEST_TMPDIR/body"
  assert_output '{"command":"no_such_thing","error":"Unknown command: no_such_thing"}'
}

@test "other methods get 405, other paths 404, and a malformed request 400; the server serves on" {
  [ "$ZN_TARGET" = znoded ] || skip "Jetty's answers to malformed requests are its own"
  run curl -s -o /dev/null -w '%{http_code}' -X POST "$ADMIN/commands/ruok"
  assert_output 405
  run curl -s -o /dev/null -w '%{http_code}' "$ADMIN/metrics"
  assert_output 404
  run curl -s -o /dev/null -w '%{http_code}' "$ADMIN/commandsruok"
  assert_output 404
  run bash -c "printf 'NOT HTTP\r\n\r\n' | timeout 10 nc -N 127.0.0.1 ${ADMIN##*:} | head -1"
  assert_output $'HTTP/1.1 400 Bad Request\r'
  run bash -c "head -c 20000 /dev/zero | tr '\\0' x | timeout 10 nc -N 127.0.0.1 ${ADMIN##*:} | head -1"
  assert_output $'HTTP/1.1 431 Request Header Fields Too Large\r'
  run curl -sf "$ADMIN/commands/ruok"
  assert_success
  run fourlw ruok
  assert_output imok
}

@test "admin.commandURL moves the commands" {
  local port
  TEST_STATE="$BATS_TEST_TMPDIR/moved" ZN_STATE_DIR="$BATS_TEST_TMPDIR/moved"
  port="$(free_port 127.0.0.1)"
  start_server admin.enableServer=true "admin.serverPort=$port" admin.serverAddress=127.0.0.1 \
    admin.commandURL=/admin
  run curl -s "http://127.0.0.1:$port/admin/ruok"
  assert_equal "$(jq -r .command <<< "$output")" ruok
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/commands/ruok"
  assert_output 404
  run curl -s "http://127.0.0.1:$port/admin"
  assert_output --partial '<a href="/admin/monitor">monitor</a>'
}

@test "admin.enableServer=false serves nothing on admin.serverPort" {
  [ "$ZN_TARGET" = znoded ] || skip "znoded's start-up lines"
  local port
  TEST_STATE="$BATS_TEST_TMPDIR/off" ZN_STATE_DIR="$BATS_TEST_TMPDIR/off"
  port="$(free_port 127.0.0.1)"
  start_server admin.enableServer=false "admin.serverPort=$port" admin.serverAddress=127.0.0.1
  run port_is_free 127.0.0.1 "$port"
  assert_success
  run grep -c "AdminServer on" "$(member_dir 1)/server.log"
  assert_output 0
}

@test "a port asked for in zoo.cfg that cannot be bound stops the start, with a line saying why" {
  [ "$ZN_TARGET" = znoded ] || skip "znoded's start-up lines"
  local port taken
  ZN_STATE_DIR="$BATS_TEST_TMPDIR/taken"
  zn_state_init
  mkdir -p "$(member_dir 1)"
  free_port 127.0.0.1 > "$(member_dir 1)/port"
  taken="${ADMIN##*:}" # the AdminServer of the file's server holds it
  write_member_config 1 1 admin.enableServer=true "admin.serverPort=$taken" admin.serverAddress=127.0.0.1
  run timeout 20 "$ZN_ZNODED" "$(member_dir 1)/zoo.cfg"
  assert_failure 1
  assert_line --partial "ERROR znoded: admin http: cannot listen on 127.0.0.1:$taken: address already in use"
  assert_line "znoded: could not start; see the log above"
}

@test "a bad admin.* value is refused at start with a line naming the key" {
  [ "$ZN_TARGET" = znoded ] || skip "znoded's configuration errors"
  local cfg="$BATS_TEST_TMPDIR/zoo.cfg"
  printf 'dataDir=%s\nclientPort=2181\nadmin.enableServer=yes\n' "$BATS_TEST_TMPDIR/d" > "$cfg"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_failure 2
  assert_output "znoded: $cfg:3: admin.enableServer: expected true or false, got 'yes'"
  printf 'dataDir=%s\nclientPort=2181\nadmin.forceHttps=true\n' "$BATS_TEST_TMPDIR/d" > "$cfg"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_failure 2
  assert_output "znoded: $cfg:3: admin.forceHttps=true: the AdminServer of znoded speaks plain HTTP only"
  printf 'dataDir=%s\nclientPort=2181\nadmin.serverPort=80800\n' "$BATS_TEST_TMPDIR/d" > "$cfg"
  run "$ZN_ZNODED" --check-config "$cfg"
  assert_failure 2
  assert_output "znoded: $cfg:3: admin.serverPort: '80800' is not an integer in [1, 65535]"
}
