#!/bin/bash
# Leader election with ephemeral sequential nodes: each candidate creates one through
# ELECTION/.clone (ephemeral while this script runs), and the lowest sequence leads. A candidate
# waits for the children of ELECTION to change (@wait) and looks again; no polling.
# usage: fs_leader.sh MOUNT NAME COMMAND...   (runs COMMAND once NAME leads; exits with it)
set -eu
mnt="$1" me="$2"; shift 2
dir="$mnt/election"
mkdir -p "$dir" 2>/dev/null || true
setfattr -n user.zk.child_mode -v ephemeral "$dir"
exec 7<> "$dir/.clone"                 # kept open: our candidacy lives as long as we do
printf 'n_\n%s' "$me" >&7
read -r mine <&7
while :; do
  cv=$(getfattr --only-values -n user.zk.cversion "$dir")
  first=$(ls "$dir" | grep '^n_' | sort | head -n 1)
  if [ "$first" = "$mine" ]; then
    "$@"
    exit $?
  fi
  cat "$dir@wait=$cv" > /dev/null       # blocks until a candidate comes or goes
done
