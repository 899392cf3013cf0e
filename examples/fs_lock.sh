#!/bin/bash
# A critical section guarded by a distributed lock: flock(1) on a file of a znodefs mount.
# usage: fs_lock.sh LOCKFILE COMMAND...   (runs COMMAND while holding LOCKFILE, created if missing)
# Any process on any mount of the ensemble, or a kazoo Lock on the same znode, waits its turn.
set -eu
lock="$1"; shift
[ -e "$lock" ] || touch "$lock"
exec flock "$lock" "$@"
