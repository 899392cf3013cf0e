#!/bin/bash
# Command-line front end to tests/integration/helpers.bash for test programs that are not bats
# (kazoo's unittest, the C client runner): start, kill -9, restart and stop a standalone server
# of the target under test (ZN_TARGET), or an ensemble of ZN_ENSEMBLE members (member 1 is the
# one killed and restarted), its state kept in STATE_DIR between calls.
#   zn-server.sh start STATE_DIR [key=value...]   start; print HOST:PORT when it serves
#   zn-server.sh kill9 STATE_DIR                  SIGKILL it and wait until it is gone
#   zn-server.sh restart STATE_DIR                start it again on the same port and data
#   zn-server.sh stop STATE_DIR                   stop every process started in STATE_DIR
set -u
command="${1:-}"
ZN_STATE_DIR="${2:-}"
if [ -z "$command" ] || [ -z "$ZN_STATE_DIR" ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
shift 2
mkdir -p "$ZN_STATE_DIR"
export ZN_STATE_DIR
# shellcheck source=../integration/helpers.bash
source "$(dirname "$0")/../integration/helpers.bash"
case "$command" in
  start)   start_ensemble "${ZN_ENSEMBLE:-1}" "$@" && ensemble_connect ;;
  kill9)   kill9_member 1 ;;
  restart) restart_member 1 && ensemble_connect ;;
  stop)    stop_all ;;
  *) echo "zn-server.sh: unknown command $command" >&2; exit 2 ;;
esac
