# bench/mount-lib.bash: what bench/mount-bench.sh and bench/mount-ls.sh share, sourced after
# tests/integration/helpers.bash (its servers, wait_until, zn_track_pid, stop_all).
#   bench_mount_init NAME           ZN_STATE_DIR (a mktemp -d in /var/tmp), MNT, and an EXIT trap
#                                   that unmounts, stops every server and removes the directory
#   bench_mount ZNODEFS LOG [OPT]   mounts member 1 at $MNT (-o session_timeout=10000, and -d
#                                   with OPT=-d), stderr to LOG; MOUNT_PID; waits for the mount
#   bench_unmount                   unmounts $MNT (lazily if busy) and reaps the mount
#   bench_need NAME BIN...          fails naming the first BIN that is not built
#   bench_builds NAME BUILD...      BUILDS: the BUILD directories, absolute, each with its
#                                   fs/znodefs built (else fails naming it)

bench_need() {
  local name="$1" bin
  shift
  for bin in "$@"; do
    [ -x "$bin" ] || { echo "$name: $bin not built" >&2; return 1; }
  done
}

bench_builds() {
  local name="$1" b
  shift
  BUILDS=()
  for b in "$@"; do BUILDS+=("$(cd "$b" && pwd)") || return 1; done
  for b in "${BUILDS[@]}"; do bench_need "$name" "$b/fs/znodefs" || return 1; done
}

bench_mount_init() {
  ZN_STATE_DIR="$(mktemp -d "/var/tmp/zn-$1.XXXXXX")"
  export ZN_STATE_DIR
  MNT="$ZN_STATE_DIR/mnt"
  MOUNT_PID=""
  mkdir -p "$MNT"
  trap bench_mount_cleanup EXIT
}

bench_mount() {
  local mode="${3:--f}"
  "$1" "$mode" -o session_timeout=10000 "$(member_connect 1)" "$MNT" 2>> "$2" &
  MOUNT_PID=$!
  zn_track_pid "$MOUNT_PID"
  wait_until 20 "the mount at $MNT" mountpoint -q "$MNT"
}

bench_unmount() {
  if mountpoint -q "$MNT" 2> /dev/null; then fusermount3 -u "$MNT" 2> /dev/null || fusermount3 -u -z "$MNT"; fi
  [ -n "$MOUNT_PID" ] && wait "$MOUNT_PID" 2> /dev/null
  MOUNT_PID=""
}

bench_mount_cleanup() {
  bench_unmount
  stop_all
  rm -rf "$ZN_STATE_DIR"
}
