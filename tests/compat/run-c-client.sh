#!/bin/bash
# Run the C client compatibility program (TAP on stdout) against a fresh standalone server of the
# target under test (ZN_TARGET), stopping the server afterwards whatever happened.
# Usage: tests/compat/run-c-client.sh PATH/TO/c_client_compat [CASE_FILTER]
set -u
binary="${1:?usage: run-c-client.sh PATH/TO/c_client_compat [CASE_FILTER]}"
shift
lib="$(cd "$(dirname "$0")/../lib" && pwd)"
state="$(mktemp -d /tmp/zn-compat-c.XXXXXX)"
trap '"$lib/zn-server.sh" stop "$state"; rm -rf "$state"' EXIT
if ! hostport="$("$lib/zn-server.sh" start "$state")"; then
  echo "1..1"
  echo "not ok 1 server under test (ZN_TARGET=${ZN_TARGET:-znoded}) started"
  exit 1
fi
"$binary" "$hostport" "$@"
