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

# fs_start_ensemble: a setup_file's start: state directory, prerequisites, an ensemble of
# ZN_FS_MEMBERS members (default 3).
fs_start_ensemble() {
  zn_state_init
  export ZN_STATE_DIR
  fs_require
  start_ensemble "${ZN_FS_MEMBERS:-3}"
}

# fs_mount_ab: for setup_file, mounts a and b of the whole ensemble, as $A and $B.
fs_mount_ab() {
  mount_fs a
  mount_fs b
  export A="$(fs_root)/a" B="$(fs_root)/b"
}

# fs_setup_file_two_mounts: for tests that check on a second member what one mount did: a
# 3-member znoded ensemble, mount a on member 1 and mount b on member 3 (against ZooKeeper,
# ZN_TARGET=zookeeper: one server with both mounts on it).
fs_setup_file_two_mounts() {
  zn_state_init
  export ZN_STATE_DIR
  fs_require
  local other=1
  if [ "${ZN_TARGET:-znoded}" = znoded ]; then
    start_ensemble 3
    other=3
  else
    start_server
  fi
  mount_fs a "$(member_connect 1)"
  mount_fs b "$(member_connect "$other")"
}

# fs_setup_test_dir: per test, A and B (the two mounts), T (this test's directory, made on A)
# and BG (background jobs, stopped by fs_teardown_jobs).
fs_setup_test_dir() {
  zn_load_bats_libs
  A="$(fs_root)/a"
  B="$(fs_root)/b"
  T="t$BATS_TEST_NUMBER"
  mkdir "$A/$T"
  BG=""
}

# make_src_tree DIR: a local tree to copy onto the mount, with the modes a node shows (files
# 644, directories 755): DIR/a, DIR/sub/b, DIR/sub/deep/blob (300 KB), DIR/sub/empty.
make_src_tree() {
  mkdir -p "$1/sub/deep"
  echo one > "$1/a"
  printf 'two\nlines\n' > "$1/sub/b"
  head -c 300000 /dev/urandom > "$1/sub/deep/blob"
  : > "$1/sub/empty"
  chmod 644 "$1/a" "$1/sub/b" "$1/sub/deep/blob" "$1/sub/empty"
  chmod 755 "$1" "$1/sub" "$1/sub/deep"
}

fs_teardown_jobs() {
  local p
  for p in $BG; do kill_job "$p"; done
}

fs_teardown() {
  unmount_all
  stop_all
}

# flock(1)'s exit status for "held by another" (-n) and "timed out" (-w), as set with -E: tells
# EWOULDBLOCK apart from any other failure (EIO, ENOENT), which exits 1.
FLOCK_BUSY=75

# in_read_of PID FILE: PID is inside read(2) on FILE (/proc/PID/syscall: read is syscall 0).
in_read_of() {
  local syscall fd rest
  read -r syscall fd rest < "/proc/$1/syscall" 2> /dev/null || return 1
  [ "$syscall" = 0 ] && [ "$(readlink "/proc/$1/fd/$((fd))")" = "$2" ]
}

# wait_blocked_reading PID FILE NODE: PID waits inside read(2) on FILE (an @wait name), and the
# mount has since answered a request that went to the server on the same session (NODE's
# version), so the wait's own request, sent while handling the READ that came first, is
# registered before anything the test does next. A readiness signal, not a sleep.
wait_blocked_reading() {
  wait_until 20 "pid $1 to block reading $2" in_read_of "$1" "$2"
  getfattr --only-values -n user.zk.version "$3" > /dev/null
  pid_alive "$1"
}

# exited PID: PID has ended (a child not yet reaped is a zombie, which kill -0 still finds).
exited() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null)"
  [ -z "$state" ] || [ "$state" = Z ]
}

# wait_exit PID: waits (bounded) for the background child PID to end; returns its status.
wait_exit() {
  wait_until 20 "pid $1 to end" exited "$1" || return 124
  wait "$1"
}

# Conditions for wait_until (each evaluated afresh on every try):
# size_is PATH N: PATH's st_size is N.  entries_are DIR N: ls DIR lists N names.
# nlink_is PATH N: PATH's st_nlink is N.
size_is() { [ "$(stat -c %s "$1" 2> /dev/null)" = "$2" ]; }
nlink_is() { [ "$(stat -c %h "$1" 2> /dev/null)" = "$2" ]; }
entries_are() { [ "$(ls "$1" 2> /dev/null | wc -l)" = "$2" ]; }
# value_is PATH VALUE: PATH reads VALUE (cat, as $(...) strips trailing newlines).
value_is() { [ "$(cat "$1" 2> /dev/null)" = "$2" ]; }

# wait_value PATH VALUE: PATH (on another mount: replication is asynchronous to it) reads VALUE.
wait_value() { wait_until 20 "$1 reads $2" value_is "$1" "$2"; }

# ver PATH: the node's version through the mount.
ver() { getfattr --only-values -n user.zk.version "$1"; }

# znode_cli ARGS...: the znode CLI against member 1 (a plain ZooKeeper client, not the mount).
znode_cli() { "$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}/tools/znode" --server "$(member_connect 1)" "$@"; }
