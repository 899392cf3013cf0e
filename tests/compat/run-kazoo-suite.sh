#!/bin/bash
# Runs kazoo's own test suite (Debian's python3-kazoo, /usr/lib/python3/dist-packages/kazoo/tests)
# against znoded or, with ZN_TARGET=zookeeper, against Apache ZooKeeper 3.8.
#   tests/compat/run-kazoo-suite.sh [--tap] [TEST_FILE...] [-- PYTEST_ARGS...]
# Default: test_sasl.py (SASL: DIGEST-MD5, GSSAPI). Name other files of kazoo/tests, or "all". --tap
# prints TAP (one line per test, from pytest's summary) after pytest's own output, for
# tests/run-all.sh.
#
# kazoo's harness starts its servers itself, as "java -cp ... QuorumPeerMain zoo.cfg" with the
# JAAS file as -Djava.security.auth.login.config (a 3-member ensemble on localhost). For znoded,
# a "java" found first on PATH turns that command line into znoded's: the zoo.cfg unchanged, the
# JAAS flag passed on in SERVER_JVMFLAGS as zkServer.sh users pass it, -Dreadonlymode.enabled
# and -Dzookeeper.KEY=VALUE (the super digest of the reconfig tests) as --set KEY=VALUE. The
# harness writes an empty JAAS file for its tests without SASL; ZooKeeper then serves
# no SASL while znoded refuses a JAAS file without a Server section, so the shim passes the file
# on only when it has content, and -Djava.security.krb5.conf as KRB5_CONFIG. The harness stops
# each server with SIGTERM (by its PID). With krb5kdc installed, a KDC on loopback
# (tests/lib/kdc.sh) lets the suite's GSSAPI tests run too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${ZN_TARGET:-znoded}"
znoded="${ZN_ZNODED:-$repo/${ZN_BUILD_DIR:-build}/daemon/znoded}"
suite=/usr/lib/python3/dist-packages/kazoo/tests

tap=0
if [ "${1:-}" = --tap ]; then tap=1; shift; fi
files=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  if [ "$1" = all ]; then files+=("$suite"); else files+=("$suite/$1"); fi
  shift
done
[ "${1:-}" != -- ] || shift
[ "${#files[@]}" -gt 0 ] || files=("$suite/test_sasl.py")

# The harness's servers take ZOOKEEPER_PORT_OFFSET..+29 on localhost: a block found free now,
# below the kernel's ephemeral range, so that two runs on one machine do not collide.
if [ -z "${ZOOKEEPER_PORT_OFFSET:-}" ]; then
  ZOOKEEPER_PORT_OFFSET="$(/usr/bin/python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
for _ in range(200):
    base = random.randrange(20000, 31900, 50)
    if all(free(p) for p in range(base, base + 30)):
        print(base)
        break
PY
)"
  [ -n "$ZOOKEEPER_PORT_OFFSET" ] || { echo "run-kazoo-suite: no free block of 30 ports" >&2; exit 2; }
fi
export ZOOKEEPER_PORT_OFFSET
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ZOOKEEPER_PATH=/usr/share/zookeeper ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-3.8.0}"
# Debian's CLASSPATH (/etc/zookeeper/conf/environment): zookeeper.jar's manifest names the rest.
export ZOOKEEPER_CLASSPATH="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
if [ "$target" = znoded ]; then
  [ -x "$znoded" ] || { echo "run-kazoo-suite: $znoded is not built" >&2; exit 2; }
  mkdir -p "$work/bin"
  cat > "$work/bin/java" <<EOF
#!/bin/bash
# kazoo's "java ... QuorumPeerMain zoo.cfg" as znoded (see tests/compat/run-kazoo-suite.sh)
jaas="" overrides=()
for arg in "\$@"; do
  case "\$arg" in
    -Djava.security.auth.login.config=*) jaas="\${arg#-Djava.security.auth.login.config=}" ;;
    -Djava.security.krb5.conf=*) export KRB5_CONFIG="\${arg#-Djava.security.krb5.conf=}" ;;
    -Dreadonlymode.enabled=*) overrides+=(--set "readonlymode.enabled=\${arg#-Dreadonlymode.enabled=}") ;;
    # log4j's settings are the JVM's; the other ZooKeeper properties are zoo.cfg keys
    -Dzookeeper.log.dir=*|-Dzookeeper.root.logger=*) ;;
    -Dzookeeper.*) overrides+=(--set "\${arg#-Dzookeeper.}") ;;
  esac
done
cfg="\${!#}"
flags=""
if [ -n "\$jaas" ] && [ -s "\$jaas" ]; then flags="-Djava.security.auth.login.config=\$jaas"; fi
SERVER_JVMFLAGS="\$flags" exec "$znoded" "\${overrides[@]}" "\$cfg"
EOF
  chmod +x "$work/bin/java"
  export PATH="$work/bin:$PATH"
fi
# The GSSAPI tests of test_sasl.py want a KDC (KRB5_TEST_ENV: its keytabs, KRB5_CONFIG): realm
# KAZOOTEST.ORG, server principal zookeeper/127.0.0.1, as the harness's JAAS file names them.
if [ -z "${KRB5_TEST_ENV:-}" ] && command -v krb5kdc > /dev/null; then
  export KRB5_CONFIG
  KRB5_CONFIG="$("$repo/tests/lib/kdc.sh" start "$work/kdc" KAZOOTEST.ORG zookeeper/127.0.0.1)"
  trap '"$repo/tests/lib/kdc.sh" stop "$work/kdc"; rm -rf "$work"' EXIT
  export KRB5_TEST_ENV="$work/kdc" KRB5CCNAME="FILE:$work/kdc/client.cc"
fi
cd "$work"
rc=0
# kazoo_start_race (tests/lib): kazoo's start() reports an auth failure that lands before its own
# check as a time-out; the plugin makes it the AuthFailedError the suite's invalid-auth tests
# expect, and changes nothing else (its header says why, and why that cannot hide a server fault).
PYTHONPATH="$repo/tests/lib${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 -m pytest -p no:cacheprovider -p kazoo_start_race -q -rA "$@" "${files[@]}" \
  > "$work/pytest.out" 2>&1 || rc=$?
cat "$work/pytest.out"
if [ "$tap" = 1 ]; then
  # pytest's -rA summary: "PASSED file::Class::test", "FAILED ...", "SKIPPED [n] file:line: why",
  # read only after its header: captured log lines above it may start with "ERROR " too
  awk '/^=+ short test summary info =+$/ { summary = 1; next }
       summary && /^(PASSED|FAILED|ERROR|SKIPPED) / { n++; line[n] = $0 }
       END { print "1.." n
             for (i = 1; i <= n; i++) {
               split(line[i], w, " ")
               rest = substr(line[i], length(w[1]) + 2)
               if (w[1] == "PASSED") print "ok " i " " rest
               else if (w[1] == "SKIPPED") print "ok " i " # skip " rest
               else print "not ok " i " " rest } }' "$work/pytest.out"
fi
exit "$rc"
