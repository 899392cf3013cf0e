#!/bin/bash
# A counter incremented with compare-and-write: read the version, compute, and write only if
# nobody wrote in between (setfattr user.zk.data@VERSION fails with ECANCELED otherwise): retry.
# usage: fs_counter.sh MOUNT/path/counter [TIMES]
set -eu
f="$1"
times="${2:-1}"
[ -e "$f" ] || { set -C; echo 0 > "$f" 2>/dev/null || true; set +C; }
for _ in $(seq "$times"); do
  until v=$(getfattr --only-values -n user.zk.version "$f") &&
        n=$(cat "$f") &&
        setfattr --raw -n "user.zk.data@$v" -v "$((n + 1))" "$f" 2>/dev/null; do :; done
done
cat "$f"
