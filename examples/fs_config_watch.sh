#!/bin/bash
# A configuration watcher: prints MOUNT/app/config, then blocks on "config@wait=VERSION" and
# prints (reloads) each new version as soon as someone writes it. No polling.
# usage: fs_config_watch.sh MOUNT [COUNT]   (stops after COUNT reloads; default forever)
set -eu
f="$1/app/config"
count="${2:--1}"
v=$(getfattr --only-values -n user.zk.version "$f")
echo "config v$v: $(cat "$f")"
while [ "$count" != 0 ]; do
  new=$(cat "$f@wait=$v")
  v=$(getfattr --only-values -n user.zk.version "$f")
  echo "config v$v: $new"
  count=$((count - 1))
done
