#!/bin/sh
# Bounded fuzzing of every decoder - the jute codec (fuzz_request, fuzz_response), peer
# messages (fuzz_peer), disk records and snapshots (fuzz_records), zoo.cfg (fuzz_config), HTTP
# request heads (fuzz_http), SASL tokens and the JAAS reader (fuzz_sasl), ZooKeeper's snapshot
# and log files (fuzz_zkdata), the TLS client port's records and handshake (fuzz_tls), a server's
# SASL tokens to libznode's client and the JAAS Client section (fuzz_sasl_client): configures a clang build in build-fuzz
# with ZN_FUZZ=ON, builds the libFuzzer targets, and runs each for SECONDS
# (default 30) over a scratch copy of its seed corpus (the committed corpus is
# never modified).  Exits non-zero if a target crashes, printing the path of
# the crashing input; reproduce it with build-fuzz/tests/fuzz/<target> <path>,
# and add it to tests/fuzz/corpus/<target>/ once fixed.
#
# Usage: tests/fuzz/run.sh [SECONDS]
# Extra libFuzzer flags can be passed in ZN_FUZZ_ARGS (e.g. "-jobs=2").
set -eu

seconds=${1:-30}
case $seconds in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${ZN_FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${CC:-}
if [ -z "$cc" ]; then
    for candidate in clang clang-14; do
        if command -v "$candidate" >/dev/null 2>&1; then cc=$candidate; break; fi
    done
fi
if [ -z "$cc" ]; then
    echo "run.sh: clang not found (apt-get install clang)" >&2
    exit 2
fi

CC=$cc cmake -S "$root" -B "$build" -DZN_FUZZ=ON -DZN_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets="fuzz_request fuzz_response fuzz_peer fuzz_records fuzz_config fuzz_http fuzz_sasl fuzz_zkdata fuzz_tls fuzz_sasl_client"
# shellcheck disable=SC2086 # the list of make targets
make -C "$build" -j2 $targets >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/znode-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

status=0
for target in $targets; do
    corpus=$work/$target/corpus
    artifacts=$build/artifacts/$target # holds the failing inputs of the last run only
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    cp "$root/tests/fuzz/corpus/$target/"* "$corpus/"
    echo "run.sh: $target for ${seconds}s over $(ls "$corpus" | wc -l) seeds"
    # shellcheck disable=SC2086 # ZN_FUZZ_ARGS: extra libFuzzer flags, word-split on purpose
    if "$build/tests/fuzz/$target" -max_total_time="$seconds" -max_len=65536 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 ${ZN_FUZZ_ARGS:-} "$corpus" \
        >"$work/$target.log" 2>&1; then
        tail -n 3 "$work/$target.log"
    else
        status=1
        tail -n 40 "$work/$target.log"
        for crash in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/oom-* "$artifacts"/timeout-*; do
            if [ -e "$crash" ]; then echo "run.sh: $target failed on input: $crash"; fi
        done
    fi
done
exit $status
