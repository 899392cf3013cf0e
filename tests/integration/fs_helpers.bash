# Helpers for the znodefs (FUSE mount) tests: mount the server(s) started by helpers.bash,
# track each mount's PID, and unmount everything in teardown (lazily if busy).
# mount_fs NAME [CONNECT] [OPTS]: mounts at $FS_ROOT/NAME and prints nothing; the mount point is
# "$FS_ROOT/NAME". The mount runs in the foreground as a tracked child (stopped by PID).

load helpers

ZNODEFS="${ZN_ZNODEFS:-$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/fs/znodefs}"

fs_require() {
  [ -x "$ZNODEFS" ] || { echo "znodefs not built: $ZNODEFS" >&2; return 1; }
  [ -e /dev/fuse ] || skip "no /dev/fuse on this machine"
  command -v fusermount3 >/dev/null || { echo "fusermount3 missing (apt-get install fuse3)" >&2; return 1; }
}

fs_root() {
  if [ -z "${FS_ROOT:-}" ]; then
    FS_ROOT="$(zn_state_dir)/mnt"
    mkdir -p "$FS_ROOT"
  fi
  echo "$FS_ROOT"
}

mount_fs() {
  local name="$1" connect="${2:-$(ensemble_connect)}" opts="${3:-session_timeout=6000}"
  local dir
  dir="$(fs_root)/$name"
  mkdir -p "$dir"
  "$ZNODEFS" -f -o "$opts" "$connect" "$dir" 2>> "$(fs_root)/$name.log" &
  local pid=$!
  zn_track_pid "$pid"
  echo "$dir" >> "$(zn_state_dir)/mounts"
  echo "$pid" > "$(fs_root)/$name.pid"
  wait_until 20 "znodefs mounted at $dir" mountpoint -q "$dir" || { cat "$(fs_root)/$name.log" >&2; return 1; }
}

mount_pid() { cat "$(fs_root)/$1.pid"; }

# unmount_all: every mount made by mount_fs (lazy unmount when busy); safe to call twice.
unmount_all() {
  local list dir
  list="$(zn_state_dir)/mounts"
  [ -f "$list" ] || return 0
  for dir in $(sort -u "$list"); do
    if mountpoint -q "$dir"; then
      fusermount3 -u "$dir" 2>/dev/null || fusermount3 -u -z "$dir" 2>/dev/null || true
    fi
  done
  : > "$list"
}

# kill_job PID: stop a background job and the processes it started (flock -c runs its command
# as a child, which would otherwise outlive it), by PID; then reap it.
kill_job() {
  local pid="$1" child
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    kill_job "$child"
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

fs_teardown() {
  unmount_all
  stop_all
}

# wait_value PATH VALUE: PATH (on another mount: replication is asynchronous to it) reads VALUE.
wait_value() { wait_until 20 "$1 reads $2" test "$(cat "$1" 2>/dev/null)" = "$2"; }

# value_of PATH: the data, exactly (cat).
# ver PATH: the node's version through the mount.
ver() { getfattr --only-values -n user.zk.version "$1"; }

# znode_cli ARGS...: the znode CLI against member 1 (a plain ZooKeeper client, not the mount).
znode_cli() { "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect 1)" "$@"; }
