#!/bin/bash
# A service registry with ephemeral files: register this instance under MOUNT/services/NAME for
# as long as COMMAND runs (the file vanishes when we exit, are killed, or our mount's session ends).
# usage: fs_registry.sh MOUNT NAME ADDRESS COMMAND...
#        fs_registry.sh MOUNT --list       (prints NAME ADDRESS for every live instance)
set -eu
mnt="$1"
dir="$mnt/services"
mkdir -p "$dir" 2>/dev/null || true
setfattr -n user.zk.child_mode -v ephemeral "$dir"
if [ "$2" = --list ]; then
  for f in "$dir"/*; do [ -e "$f" ] && echo "$(basename "$f") $(cat "$f")"; done
  exit 0
fi
name="$2" addr="$3"; shift 3
exec 9> "$dir/$name"        # the registration: lives as long as fd 9
echo "$addr" >&9
exec "$@"                   # COMMAND inherits fd 9: registered until it exits or is killed
