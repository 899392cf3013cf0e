#!/usr/bin/env bash
# The README's run command: installs what is missing (Debian packages), builds, and starts a
# local 3-member znoded ensemble on loopback (members on 127.0.0.1, 127.0.0.2, 127.0.0.3), in the
# background, with data under ./run/; then mounts it with znodefs when the mount is built.
#   tools/run-local.sh [up]     start (or report what is already running)
#   tools/run-local.sh down     unmount and stop everything it started
#   tools/run-local.sh status   what is running
# Environment: ZN_PORT (client port of every member, default 2181), ZN_RUN_DIR (default ./run),
# ZN_MEMBERS (3 or 5, default 3), ZN_MOUNT (mount point, default ./run/zk).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${ZN_RUN_DIR:-$ROOT/run}"
PORT="${ZN_PORT:-2181}"
MEMBERS="${ZN_MEMBERS:-3}"
MOUNT="${ZN_MOUNT:-$RUN_DIR/zk}"
CMD="${1:-up}"
PEER_BASE=2888
ELECTION_BASE=3888

member_dir() { echo "$RUN_DIR/member$1"; }
member_pid() {
    local f; f="$(member_dir "$1")/znoded.pid"
    [[ -f "$f" ]] || return 1
    local pid; pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}
hosts() {
    local out="" n
    for n in $(seq 1 "$MEMBERS"); do out="${out:+$out,}127.0.0.$n:$PORT"; done
    echo "$out"
}

fourlw() { # host port word
    exec 3<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
    printf '%s' "$3" >&3
    timeout 2 cat <&3 || true
    exec 3>&-
}

stop_all() {
    if mountpoint -q "$MOUNT" 2>/dev/null; then
        fusermount3 -u "$MOUNT" 2>/dev/null || umount -l "$MOUNT"
        echo "unmounted $MOUNT"
    fi
    local f pid
    if [[ -f "$RUN_DIR/znodefs.pid" ]]; then
        pid="$(cat "$RUN_DIR/znodefs.pid")"
        kill "$pid" 2>/dev/null || true
        rm -f "$RUN_DIR/znodefs.pid"
    fi
    for n in $(seq 1 5); do
        f="$(member_dir "$n")/znoded.pid"
        [[ -f "$f" ]] || continue
        if pid="$(member_pid "$n")"; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            echo "stopped member $n (pid $pid)"
        fi
        rm -f "$f"
    done
}

case "$CMD" in
down) stop_all; exit 0 ;;
status)
    any=1
    for n in $(seq 1 "$MEMBERS"); do
        if pid="$(member_pid "$n")"; then
            mode="$(fourlw "127.0.0.$n" "$PORT" srvr | sed -n 's/^Mode: //p')"
            echo "member $n: pid $pid on 127.0.0.$n:$PORT, ${mode:-not serving}"
            any=0
        else
            echo "member $n: not running"
        fi
    done
    mountpoint -q "$MOUNT" 2>/dev/null && echo "mounted on $MOUNT"
    exit $any
    ;;
up) ;;
*) echo "usage: tools/run-local.sh [up|down|status]" >&2; exit 2 ;;
esac

[[ "$MEMBERS" == 3 || "$MEMBERS" == 5 ]] || { echo "ZN_MEMBERS must be 3 or 5" >&2; exit 2; }
"$ROOT/tools/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$ROOT/build" -j"$(nproc)" --no-print-directory >/dev/null

for n in $(seq 1 "$MEMBERS"); do
    if pid="$(member_pid "$n")"; then
        echo "member $n is already running (pid $pid)"
        continue
    fi
    dir="$(member_dir "$n")"
    mkdir -p "$dir/data"
    echo "$n" >"$dir/data/myid"
    {
        echo "tickTime=2000"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$dir/data"
        echo "clientPort=$PORT"
        echo "clientPortAddress=127.0.0.$n"
        echo "maxClientCnxns=60"
        echo "4lw.commands.whitelist=*"
        # the AdminServer of each member on its own address: 127.0.0.N:8080
        echo "admin.serverAddress=127.0.0.$n"
        for m in $(seq 1 "$MEMBERS"); do
            echo "server.$m=127.0.0.$m:$((PEER_BASE + m)):$((ELECTION_BASE + m))"
        done
    } >"$dir/zoo.cfg"
    nohup "$ROOT/build/daemon/znoded" "$dir/zoo.cfg" >>"$dir/znoded.log" 2>&1 </dev/null &
    echo $! >"$dir/znoded.pid"
done

# Wait until one member leads and every member serves.
for _ in $(seq 300); do
    serving=0 leaders=0
    for n in $(seq 1 "$MEMBERS"); do
        mode="$(fourlw "127.0.0.$n" "$PORT" srvr | sed -n 's/^Mode: //p')"
        [[ "$mode" == leader || "$mode" == follower ]] && serving=$((serving + 1))
        [[ "$mode" == leader ]] && leaders=$((leaders + 1))
        if ! member_pid "$n" >/dev/null; then
            echo "member $n failed to start; its log:" >&2
            tail -20 "$(member_dir "$n")/znoded.log" >&2
            exit 1
        fi
    done
    [[ $serving -eq $MEMBERS && $leaders -eq 1 ]] && break
    sleep 0.1
done
if [[ $serving -ne $MEMBERS || $leaders -ne 1 ]]; then
    echo "the ensemble did not form within 30 s; logs are in $RUN_DIR/member*/znoded.log" >&2
    exit 1
fi
for n in $(seq 1 "$MEMBERS"); do
    echo "member $n: 127.0.0.$n:$PORT $(fourlw "127.0.0.$n" "$PORT" srvr | sed -n 's/^Mode: //p')"
done

MOUNTED=0
if [[ -x "$ROOT/build/fs/znodefs" ]]; then
    mkdir -p "$MOUNT"
    if mountpoint -q "$MOUNT"; then
        MOUNTED=1
    elif "$ROOT/build/fs/znodefs" "$(hosts)" "$MOUNT" >>"$RUN_DIR/znodefs.log" 2>&1; then
        MOUNTED=1
    else
        echo "znodefs could not mount $MOUNT (see $RUN_DIR/znodefs.log); the ensemble is up" >&2
    fi
fi

cat <<TXT

The ensemble is serving on $(hosts)
Try it:
  build/tools/znode --server $(hosts) create /hello world
  build/tools/znode --server 127.0.0.2:$PORT get /hello
  /usr/share/zookeeper/bin/zkCli.sh -server $(hosts) ls /
  echo srvr | nc 127.0.0.1 $PORT
TXT
if [[ $MOUNTED -eq 1 ]]; then
    cat <<TXT
The tree is mounted on $MOUNT:
  ls $MOUNT
  echo hello > $MOUNT/greeting && cat $MOUNT/greeting
  getfattr -d -m - $MOUNT/greeting
TXT
fi
echo "Stop it:  tools/run-local.sh down"
