# Shared helpers for the integration and compatibility tests: start, stop, kill and restart
# servers (one standalone server or an N-member ensemble) of the target under test, and talk to
# them with four-letter words. The target is chosen by ZN_TARGET:
#   znoded     (default) our daemon, $ZN_ZNODED or <repo>/${ZN_BUILD_DIR:-build}/daemon/znoded
#   zookeeper  Debian's Apache ZooKeeper 3.8 (/usr/share/zookeeper/bin/zkServer.sh)
# Both get the same zoo.cfg, so a test that passes against ZooKeeper and fails against znoded
# shows a bug in znoded.
#
# Member N listens on 127.0.0.N (its own loopback address) with ports chosen free at run time,
# keeps its config, data and log under $ZN_STATE_DIR/mN, and its PID in $ZN_STATE_DIR/mN/pid.
# Every process started here is stopped by PID in stop_all (call it from teardown; it is safe
# after failures and when nothing was started). Waits poll with a deadline and, on timeout,
# print what they observed. Usable from bats (load helpers) and from plain bash (source it).

ZN_REPO_ROOT="${ZN_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
ZN_TARGET="${ZN_TARGET:-znoded}"
ZN_ZNODED="${ZN_ZNODED:-$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/daemon/znoded}"
ZN_ZKSERVER="${ZN_ZKSERVER:-/usr/share/zookeeper/bin/zkServer.sh}"
ZN_ZKCLI="${ZN_ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}"
ZN_PYTHON="${ZN_PYTHON:-/usr/bin/python3}"
# Debian's ZooKeeper with the Netty jars its manifest leaves out (for TLS: zkServer.sh, zkCli.sh).
ZN_ZK_NETTY_CLASSPATH="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar"
ZN_LIB_DIR="$ZN_REPO_ROOT/tests/lib"
# How long a server may take to answer ruok after start (a JVM takes a few seconds on 2 cores).
ZN_START_TIMEOUT_S="${ZN_START_TIMEOUT_S:-60}"
ZN_STOP_TIMEOUT_S="${ZN_STOP_TIMEOUT_S:-15}"
# Ports are drawn below the kernel's ephemeral range so outgoing connections cannot take them.
ZN_PORT_MIN="${ZN_PORT_MIN:-20000}"
ZN_PORT_MAX="${ZN_PORT_MAX:-32000}"

# zn_state_init: choose where members keep their files (each bats test gets its own). Must run
# in the test's own shell, not in $(...), so the choice sticks; start_ensemble calls it.
zn_state_init() {
  if [ -z "${ZN_STATE_DIR:-}" ]; then
    if [ -n "${BATS_TEST_TMPDIR:-}" ]; then
      ZN_STATE_DIR="$BATS_TEST_TMPDIR/zn"
    elif [ -n "${BATS_FILE_TMPDIR:-}" ]; then
      ZN_STATE_DIR="$BATS_FILE_TMPDIR/zn"
    else
      ZN_STATE_DIR="$(mktemp -d /tmp/zn-test.XXXXXX)"
    fi
  fi
  mkdir -p "$ZN_STATE_DIR"
}

zn_state_dir() {
  [ -n "${ZN_STATE_DIR:-}" ] || zn_state_init
  echo "$ZN_STATE_DIR"
}

zn_fail() {
  echo "helpers: $*" >&2
  return 1
}

# pid_alive PID: true while PID is a running (not zombie) process.
pid_alive() {
  local pid="$1" state
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# pid_start_time PID: the process's start time in clock ticks since boot (field 22 of
# /proc/PID/stat, counted after the command name, which may hold spaces), or nothing.
pid_start_time() {
  [ -n "$1" ] && sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'
}

# zn_record_pid PID: remember PID, with its start time, for stop_all. A pid alone is not
# enough: over a long run a dead member's pid is reused by some other process on the machine,
# and stop_all must never signal that one.
zn_record_pid() {
  echo "$1 $(pid_start_time "$1")" >> "$(zn_state_dir)/all_pids"
}

# pid_is_ours PID START: PID is alive and still the process that started at START.
pid_is_ours() {
  [ -n "$2" ] && pid_alive "$1" && [ "$(pid_start_time "$1")" = "$2" ]
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD until it succeeds; on timeout print the
# description and CMD's last output, and fail.
wait_until() {
  local timeout_s="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout_s)) out=""
  while :; do
    if out="$("$@" 2>&1)"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out after ${timeout_s}s waiting for: $what" >&2
      echo "last observed: ${out:-<nothing>}" >&2
      return 1
    fi
    sleep 0.1
  done
}

# port_is_free ADDR PORT: nothing listens on ADDR:PORT and we can bind it.
port_is_free() {
  "$ZN_PYTHON" - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}

# port_free_on_member_addresses ADDR PORT: PORT is free on ADDR and on every address an
# ensemble member may use (127.0.0.1-5): loopback only.
port_free_on_member_addresses() {
  local n
  port_is_free "$1" "$2" || return 1
  for n in 1 2 3 4 5; do
    port_is_free "127.0.0.$n" "$2" || return 1
  done
}

# free_port [ADDR]: print a TCP port free on ADDR (default 127.0.0.1), never one already handed
# out in this test (a server may not have bound it yet). The ports given are kept in a file, not
# a variable: `port="$(free_port)"` runs in a subshell, whose variables die with it, and a
# variable let one test hand the same port out twice (CI: admin_ensemble's AdminServer port
# was member 1's client port, and member 1 could not start).
zn_ports_given_file() { echo "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/zn-ports-given"; }
free_port() {
  local addr="${1:-127.0.0.1}" port tries=0 given
  given="$(zn_ports_given_file)"
  while [ $tries -lt 200 ]; do
    tries=$((tries + 1))
    port=$((ZN_PORT_MIN + (RANDOM * 32768 + RANDOM) % (ZN_PORT_MAX - ZN_PORT_MIN)))
    if [ -f "$given" ] && grep -qx "$port" "$given"; then continue; fi
    # Ports of ensemble members on the other member addresses must not collide either.
    if port_free_on_member_addresses "$addr" "$port"; then
      echo "$port" >> "$given"
      echo "$port"
      return 0
    fi
  done
  zn_fail "no free port found on $addr"
}

member_dir()  { echo "$(zn_state_dir)/m$1"; }
member_addr() { echo "127.0.0.$1"; }
member_port() { cat "$(member_dir "$1")/port"; }
# member_secure_port N: member N's secureClientPort (ZN_TLS=1 when it was started).
member_secure_port() { cat "$(member_dir "$1")/secure_port"; }
member_pid()  { cat "$(member_dir "$1")/pid" 2>/dev/null; }
# member_connect N: host:port a client uses for member N (default 1).
member_connect() { local n="${1:-1}"; echo "$(member_addr "$n"):$(member_port "$n")"; }
# ensemble_connect: the connect string naming every member.
ensemble_connect() {
  local n out="" count
  count="$(cat "$(zn_state_dir)/members")"
  for n in $(seq 1 "$count"); do out="${out:+$out,}$(member_connect "$n")"; done
  echo "$out"
}

# zn_check_target: fail with a clear message when the target cannot be run here.
zn_check_target() {
  case "$ZN_TARGET" in
    znoded) [ -x "$ZN_ZNODED" ] || zn_fail "ZN_TARGET=znoded but $ZN_ZNODED is not built" ;;
    zookeeper) [ -x "$ZN_ZKSERVER" ] || zn_fail "ZN_TARGET=zookeeper but $ZN_ZKSERVER is missing (apt-get install zookeeper)" ;;
    *) zn_fail "ZN_TARGET must be znoded or zookeeper, not '$ZN_TARGET'" ;;
  esac
}

# write_member_config N COUNT [key=value...]: zoo.cfg for member N of COUNT; extra lines
# override the defaults (a later key wins in both ZooKeeper and znoded, but we also drop the
# default line so the file stays unambiguous).
write_member_config() {
  local n="$1" count="$2"; shift 2
  local dir cfg line key m
  dir="$(member_dir "$n")"
  cfg="$dir/zoo.cfg"
  mkdir -p "$dir/data" "$dir/datalog"
  {
    echo "tickTime=1000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "dataLogDir=$dir/datalog"
    echo "clientPort=$(cat "$dir/port")"
    echo "clientPortAddress=$(member_addr "$n")"
    echo "maxClientCnxns=60"
    echo "4lw.commands.whitelist=*"
    echo "admin.enableServer=false"
    # ZN_TLS=1: a TLS client port too, on the member's own address (the ssl.* keys come as
    # extra lines, the same for every member).
    if [ -f "$dir/secure_port" ]; then
      echo "secureClientPort=$(cat "$dir/secure_port")"
      echo "secureClientPortAddress=$(member_addr "$n")"
    fi
    if [ "$count" -gt 1 ]; then
      for m in $(seq 1 "$count"); do
        # ZN_OBSERVERS="3 4": those members are observers (non-voting).
        echo "server.$m=$(member_addr "$m"):$(cat "$(member_dir "$m")/peer_port"):$(cat "$(member_dir "$m")/election_port")$(case " ${ZN_OBSERVERS:-} " in *" $m "*) echo ":observer" ;; esac)"
      done
    fi
  } > "$cfg.defaults"
  for line in "$@"; do
    key="${line%%=*}"
    awk -v k="$key=" 'index($0, k) != 1' "$cfg.defaults" > "$cfg.tmp"
    mv "$cfg.tmp" "$cfg.defaults"
    echo "$line" >> "$cfg.defaults"
  done
  mv "$cfg.defaults" "$cfg"
  if [ "$count" -gt 1 ]; then echo "$n" > "$dir/data/myid"; fi
}

# launch_member N: start member N's process from its config and record its PID (no wait).
launch_member() {
  local n="$1" dir pid jute jvm
  dir="$(member_dir "$n")"
  zn_check_target || return 1
  if pid_alive "$(member_pid "$n")"; then
    zn_fail "member $n is already running as pid $(member_pid "$n")"; return 1
  fi
  echo "=== start $(date +%T) ===" >> "$dir/server.log"
  case "$ZN_TARGET" in
    znoded)
      # ZN_SERVER_JVMFLAGS: what a zkServer.sh user puts in SERVER_JVMFLAGS (znoded reads its
      # -Djava.security.auth.login.config); nothing else of the caller's environment leaks in.
      SERVER_JVMFLAGS="${ZN_SERVER_JVMFLAGS:-}" "$ZN_ZNODED" "$dir/zoo.cfg" >> "$dir/server.log" 2>&1 < /dev/null 3>&- &
      pid=$!
      ;;
    zookeeper)
      # A heap dump on OutOfMemoryError (zkServer.sh asks for one) goes to the member's directory,
      # not into the working directory (two 250 MB dumps were once committed from tests/).
      jvm="-Xmx256m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:HeapDumpPath=$dir -Dzookeeper.root.logger=INFO,CONSOLE -Dzookeeper.log.dir=$dir"
      # zoo.cfg's jute.maxbuffer only reaches the JVM as a system property.
      jute="$(sed -n 's/^jute\.maxbuffer=//p' "$dir/zoo.cfg" | tail -1)"
      if [ -n "$jute" ]; then jvm="$jvm -Djute.maxbuffer=$jute"; fi
      # ContainerManager reads znode.container.* as system properties without the "zookeeper."
      # prefix a zoo.cfg key gets, so those keys reach the JVM as -D flags.
      while IFS= read -r line; do jvm="$jvm -D$line"; done < <(grep '^znode\.container\.' "$dir/zoo.cfg")
      # Debian's ZooKeeper leaves javax.servlet off its class path, so its AdminServer does not
      # start (it falls back to none, silently): the servlet API jar makes admin.* keys work.
      if [ -f /usr/share/java/servlet-api.jar ]; then jvm="$jvm -Xbootclasspath/a:/usr/share/java/servlet-api.jar"; fi
      jvm="$jvm ${ZN_SERVER_JVMFLAGS:-}"
      # Netty (serverCnxnFactory=...NettyServerCnxnFactory, which TLS needs): Debian's
      # zookeeper.jar names netty-handler in its manifest but not netty-codec and netty-resolver,
      # which its SslHandler needs; a later -cp wins over zkServer.sh's own.
      if grep -q '^serverCnxnFactory=.*Netty' "$dir/zoo.cfg"; then
        jvm="$jvm -cp $ZN_ZK_NETTY_CLASSPATH"
      fi
      # zkServer.sh execs java, so $! is the JVM's PID.
      JMXDISABLE=true ZOOCFGDIR="$dir" ZOO_LOG_DIR="$dir" SERVER_JVMFLAGS="$jvm" \
        "$ZN_ZKSERVER" start-foreground "$dir/zoo.cfg" >> "$dir/server.log" 2>&1 < /dev/null 3>&- &
      pid=$!
      ;;
  esac
  echo "$pid" > "$dir/pid"
  zn_record_pid "$pid"
}

# fourlw WORD [N]: send a four-letter word to member N (default 1) and print the reply.
fourlw() {
  local word="$1" n="${2:-1}"
  fourlw_at "$(member_addr "$n")" "$(member_port "$n")" "$word"
}

# fourlw_at HOST PORT WORD: same, to any address.
fourlw_at() {
  # -N: half-close after sending, so the reply ends when the server closes; -w bounds a silent server.
  printf '%s' "$3" | timeout 10 nc -N -w 5 "$1" "$2" 2>/dev/null
}

member_log_tail() {
  local dir; dir="$(member_dir "$1")"
  echo "--- last lines of member $1's log ($dir/server.log) ---" >&2
  tail -n "${2:-30}" "$dir/server.log" >&2 2>/dev/null || true
}

# member_answers_ruok N: true when member N answers imok; else prints what it saw.
member_answers_ruok() {
  local n="$1" pid reply
  pid="$(member_pid "$n")"
  if ! pid_alive "$pid"; then
    echo "member $n (pid $pid) is not running"
    return 2
  fi
  reply="$(fourlw ruok "$n")"
  [ "$reply" = imok ] && return 0
  echo "member $n answered ruok with: '${reply}'"
  return 1
}

# leader_of N...: print the member among N... whose srvr says Mode: leader; fails, saying so,
# when none does.
leader_of() {
  local n
  for n in "$@"; do
    if fourlw srvr "$n" | grep -q -x 'Mode: leader'; then echo "$n"; return 0; fi
  done
  echo "no leader among members $*"
  return 1
}

# same_digest N...: every member named reports the same tree digest at the same zxid.
same_digest() {
  local n first="" line
  for n in "$@"; do
    line="$(fourlw hash "$n")"
    [ -n "$line" ] || { echo "member $n does not answer hash"; return 1; }
    if [ -z "$first" ]; then first="$line"; elif [ "$line" != "$first" ]; then
      echo "member $n has '$line', another has '$first'"; return 1
    fi
  done
}

# member_is_serving N: true when srvr reports a Mode (standalone, leader or follower).
member_is_serving() {
  local n="$1" reply
  pid_alive "$(member_pid "$n")" || { echo "member $n is not running"; return 2; }
  reply="$(fourlw srvr "$n")"
  if grep -q -E '^Mode: (standalone|leader|follower|observer)' <<< "$reply"; then return 0; fi
  echo "member $n answered srvr with: '${reply}'"
  return 1
}

# wait_ruok N [TIMEOUT_S]: wait until member N answers ruok with imok and serves requests.
# Fails at once when the process exited, showing its log.
wait_ruok() {
  local n="$1" timeout_s="${2:-$ZN_START_TIMEOUT_S}" deadline out rc
  deadline=$((SECONDS + timeout_s))
  for check in member_answers_ruok member_is_serving; do
    while :; do
      # Written so bats' errexit cannot fire on the expected failures while polling.
      if out="$($check "$n" 2>&1)"; then break; else rc=$?; fi
      if [ $rc -eq 2 ] || [ "$SECONDS" -ge "$deadline" ]; then
        echo "member $n did not become ready within ${timeout_s}s ($check)" >&2
        echo "last observed: $out" >&2
        member_log_tail "$n"
        return 1
      fi
      sleep 0.1
    done
  done
}

# prepare_members COUNT: the state directory and each member's directory and free ports (client;
# peer and election in an ensemble; a secure client port with ZN_TLS=1), nothing written or
# started yet. Must run in the test's own shell (it calls zn_state_init).
prepare_members() {
  local count="$1" n dir
  zn_state_init
  echo "$count" > "$(zn_state_dir)/members"
  for n in $(seq 1 "$count"); do
    dir="$(member_dir "$n")"
    mkdir -p "$dir"
    free_port "$(member_addr "$n")" > "$dir/port" || return 1
    if [ "${ZN_TLS:-0}" = 1 ]; then
      free_port "$(member_addr "$n")" > "$dir/secure_port" || return 1
    fi
    if [ "$count" -gt 1 ]; then
      free_port "$(member_addr "$n")" > "$dir/peer_port" || return 1
      free_port "$(member_addr "$n")" > "$dir/election_port" || return 1
    fi
  done
}

# start_ensemble COUNT [key=value...]: start COUNT members (1 = standalone, no server.N lines)
# with extra zoo.cfg lines, and wait until each serves.
start_ensemble() {
  local count="$1"; shift
  local n
  zn_check_target || return 1
  prepare_members "$count" || return 1
  for n in $(seq 1 "$count"); do
    write_member_config "$n" "$count" "$@" || return 1
  done
  for n in $(seq 1 "$count"); do launch_member "$n" || return 1; done
  for n in $(seq 1 "$count"); do wait_ruok "$n" || return 1; done
}

# start_server [key=value...]: one standalone server; its address is $(member_connect 1).
start_server() {
  start_ensemble 1 "$@"
}

# wait_member_exit N TIMEOUT_S: wait until member N's process is gone (reaping our child).
wait_member_exit() {
  local n="$1" pid
  pid="$(member_pid "$n")"
  wait_until "$2" "member $n (pid $pid) to exit" bash -c "! { [ -e /proc/$pid ] && [ \"\$(awk '{print \$3}' /proc/$pid/stat 2>/dev/null)\" != Z ]; }" || return 1
  wait "$pid" 2>/dev/null || true
}

# kill9_member N: SIGKILL member N and wait until it is gone.
kill9_member() {
  local n="$1" pid
  pid="$(member_pid "$n")"
  [ -n "$pid" ] || { zn_fail "member $n has no pid"; return 1; }
  kill -9 "$pid" 2>/dev/null || true
  wait_member_exit "$n" 10
}

# stop_member N: SIGTERM member N, SIGKILL if it has not exited within ZN_STOP_TIMEOUT_S.
stop_member() {
  local n="$1" pid
  pid="$(member_pid "$n")"
  [ -n "$pid" ] || return 0
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_member_exit "$n" "$ZN_STOP_TIMEOUT_S" 2>/dev/null; then
    echo "member $n ignored SIGTERM for ${ZN_STOP_TIMEOUT_S}s; killing it" >&2
    kill9_member "$n"
  fi
}

# restart_member N: start member N again from its config and data, and wait until it serves.
restart_member() {
  local n="$1"
  launch_member "$n" && wait_ruok "$n"
}

# zn_track_pid PID: stop this process too in stop_all (client processes a test starts).
zn_track_pid() {
  zn_state_init
  zn_record_pid "$1"
}

# stop_all: stop every process started through these helpers (members and tracked clients),
# SIGCONT first in case a test stopped one. Safe to call more than once.
stop_all() {
  local dir pid start entry deadline ours=()
  dir="${ZN_STATE_DIR:-}"
  [ -n "$dir" ] && [ -f "$dir/all_pids" ] || return 0
  while read -r pid start; do
    if pid_is_ours "$pid" "$start"; then
      ours+=("$pid $start")
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done < <(sort -u "$dir/all_pids")
  deadline=$((SECONDS + ZN_STOP_TIMEOUT_S))
  for entry in "${ours[@]}"; do
    read -r pid start <<< "$entry"
    while pid_is_ours "$pid" "$start" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if pid_is_ours "$pid" "$start"; then
      echo "pid $pid ignored SIGTERM; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  : > "$dir/all_pids"
}

# cut_last_entry LOG: truncates a ZooKeeper log inside its last entry (and drops the zeros
# ZooKeeper preallocates after it), as a crash in the middle of a write leaves it.
cut_last_entry() {
  local end
  end="$("$ZN_PYTHON" - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos, last = 16, None
while pos + 12 <= len(data):
    crc, length = struct.unpack(">qi", data[pos:pos + 12])
    if crc == 0 and length == 0:
        break
    last = pos
    pos += 12 + length + 1
print(last + 20)
PY
)"
  truncate -s "$end" "$1"
}

# zk_tool ARGS...: the kazoo-based helper client (tests/lib/zk_tool.py).
zk_tool() {
  "$ZN_PYTHON" "$ZN_LIB_DIR/zk_tool.py" "$@"
}

# zkwire ARGS...: the raw wire-protocol prober (tests/lib/zkwire.py).
zkwire() {
  "$ZN_PYTHON" "$ZN_LIB_DIR/zkwire.py" "$@"
}

# tls_ca DIR NAME SUBJECT: with openssl, a self-signed CA certificate DIR/NAME.pem and its key
# DIR/NAME.key (for tls_sign), for the TLS tests' keys.
tls_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "$3" -keyout "$1/$2.key" \
    -out "$1/$2.pem" 2> /dev/null
}

# tls_sign DIR NAME SUBJECT CA [x509 args]: with openssl, NAME.key, NAME.crt signed by the CA
# DIR/CA.pem (key DIR/CA.key), and NAME.pem (certificate + key), for the TLS tests' keys.
tls_sign() {
  local d="$1" name="$2" subject="$3" ca="$4"; shift 4
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$d/$name.key" \
    -out "$d/$name.csr" 2> /dev/null
  openssl x509 -req -days 2 -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
    -CAcreateserial -out "$d/$name.crt" "$@" 2> /dev/null
  cat "$d/$name.crt" "$d/$name.key" > "$d/$name.pem"
}

# get_synced N PATH: PATH's data as member N sees it after a sync (kazoo).
get_synced() {
  "$ZN_PYTHON" - "$(member_connect "$1")" "$2" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10.0)
zk.start(timeout=10)
try:
    zk.sync(sys.argv[2])
    print(zk.get(sys.argv[2])[0].decode())
finally:
    zk.stop()
    zk.close()
PY
}

# last_run_log N: member N's log since its last start.
last_run_log() {
  sed -n '/=== start/h; /=== start/!H; ${x;p}' "$(member_dir "$1")/server.log"
}

# zn_load_bats_libs: bats-support, bats-assert and bats-file from Debian's packages.
# write_jaas_server FILE NAME=PASSWORD...: a JAAS file whose Server section lists those SASL
# DIGEST-MD5 users (user_NAME="PASSWORD"), as ZooKeeper's documentation writes it.
write_jaas_server() {
  local file="$1" user; shift
  {
    echo 'Server {'
    echo '    org.apache.zookeeper.server.auth.DigestLoginModule required'
    for user in "$@"; do printf '    user_%s="%s"\n' "${user%%=*}" "${user#*=}"; done
    echo '    ;'
    echo '};'
  } > "$file"
}

zn_load_bats_libs() {
  local base=/usr/lib/bats
  load "$base/bats-support/load"
  load "$base/bats-assert/load"
  load "$base/bats-file/load"
}

# snapshot_taken: member 1 reports a snapshot in its store.
snapshot_taken() {
  fourlw mntr 1 | grep -E $'^zk_snapshot_zxid\t0x[1-9a-f]'
}
