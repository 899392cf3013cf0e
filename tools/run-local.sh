#!/usr/bin/env bash
# The README's run command: installs what is missing (Debian packages),
# builds, and starts a local znoded on loopback, in the background, with its
# data under ./run/.  `tools/run-local.sh down` stops it; `status` shows it.
#
# Environment: ZN_PORT (client port, default 2181), ZN_RUN_DIR (default ./run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${ZN_RUN_DIR:-$ROOT/run}"
PORT="${ZN_PORT:-2181}"
CMD="${1:-up}"

pidfile() { echo "$RUN_DIR/server1/znoded.pid"; }

running_pid() {
    local f; f="$(pidfile)"
    [[ -f "$f" ]] || return 1
    local pid; pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

ruok() { # host port
    exec 3<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
    printf ruok >&3
    local answer; answer="$(timeout 2 cat <&3 || true)"
    exec 3>&-
    [[ "$answer" == imok ]]
}

case "$CMD" in
down)
    if pid="$(running_pid)"; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "stopped znoded (pid $pid)"
    else
        echo "no local znoded is running"
    fi
    rm -f "$(pidfile)"
    exit 0
    ;;
status)
    if pid="$(running_pid)"; then
        echo "znoded running (pid $pid) on 127.0.0.1:$PORT"
        exit 0
    fi
    echo "no local znoded is running"
    exit 1
    ;;
up) ;;
*)
    echo "usage: tools/run-local.sh [up|down|status]" >&2
    exit 2
    ;;
esac

"$ROOT/tools/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$ROOT/build" -j"$(nproc)" --no-print-directory znoded znode_cli >/dev/null

if pid="$(running_pid)"; then
    echo "znoded is already running (pid $pid) on 127.0.0.1:$PORT"
else
    mkdir -p "$RUN_DIR/server1/data"
    cat >"$RUN_DIR/server1/zoo.cfg" <<CFG
tickTime=2000
dataDir=$RUN_DIR/server1/data
clientPort=$PORT
clientPortAddress=127.0.0.1
maxClientCnxns=60
4lw.commands.whitelist=*
CFG
    nohup "$ROOT/build/daemon/znoded" "$RUN_DIR/server1/zoo.cfg" \
        >>"$RUN_DIR/server1/znoded.log" 2>&1 &
    echo $! >"$(pidfile)"
    for _ in $(seq 100); do
        ruok 127.0.0.1 "$PORT" && break
        if ! kill -0 "$(cat "$(pidfile)")" 2>/dev/null; then
            echo "znoded failed to start; its log:" >&2
            tail -20 "$RUN_DIR/server1/znoded.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    ruok 127.0.0.1 "$PORT" || { echo "znoded does not answer on 127.0.0.1:$PORT" >&2; exit 1; }
    echo "znoded is serving on 127.0.0.1:$PORT (pid $(cat "$(pidfile)"), log $RUN_DIR/server1/znoded.log)"
fi
cat <<TXT

Try it:
  build/tools/znode --server 127.0.0.1:$PORT create /hello world
  build/tools/znode --server 127.0.0.1:$PORT get /hello
  /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:$PORT ls /
Stop it:  tools/run-local.sh down
TXT
