#!/bin/bash
# The test command (README, .ci/run): install dependencies, build from scratch, run every tier,
# count every individual test, and end with one line `N passed, N failed[, N skipped]`.
#
#   tests/run-all.sh [--quick] [TIER...]      TIER: unit integration compat fuzz faults (default: all)
#     --quick   no ASan build (unit tests run once, in the normal build), no fuzzing, no fault
#               runs (those two count as skipped)
#
# Tiers:
#   unit         cmocka unit tests (case by case) in the ASan+UBSan build and the release build;
#                the rest of ctest (fuzz corpus replay, simulator) in the ASan build
#   integration  tests/integration/*.bats against the server under test
#   compat       real clients against it: tests/compat/*.bats (zkCli.sh), the C client
#                (c_client_compat), kazoo (tests/compat/test_kazoo.py)
#   fuzz         tests/fuzz/run.sh, a bounded libFuzzer run (only when that script exists)
#   faults       tests/faults/run.sh: a short fault-injection run of a 5-member ensemble
#                (ZN_FAULTS_SECONDS, default 100) with its checks, and the planted-bug run that
#                must be caught
# Every cmocka case counts (each executable runs with TAP output; a skip() is a skip), in the
# ASan build and again in the release build, where the signal-handling cases ASan keeps for
# itself run. A tier or piece that cannot run (not built, --quick) prints `skipped: REASON` and
# counts as skipped: its bats tests one by one, anything else as one.
#
# Environment: ZN_TARGET=znoded|zookeeper (server under test, default znoded), ZN_BUILD_DIR
# (default build), ZN_ASAN_BUILD_DIR (default build-asan), ZN_JOBS (make -j, default 2),
# ZN_SKIP_DEPS=1 (do not run tools/install-deps.sh), ZN_TIER_TIMEOUT_S (per test file, 1200).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1

export ZN_TARGET="${ZN_TARGET:-znoded}"
export ZN_BUILD_DIR="${ZN_BUILD_DIR:-build}"
ASAN_DIR="${ZN_ASAN_BUILD_DIR:-build-asan}"
JOBS="${ZN_JOBS:-2}"
FILE_TIMEOUT_S="${ZN_TIER_TIMEOUT_S:-1200}"
BUILD_DIR="$ROOT/$ZN_BUILD_DIR"
LOG_DIR="$BUILD_DIR/test-logs"
PYTHON=/usr/bin/python3

QUICK=0
TIERS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    unit|integration|compat|fuzz|faults) TIERS+=("$arg") ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run-all: unknown argument '$arg' (tiers: unit integration compat fuzz faults; --quick)" >&2; exit 2 ;;
  esac
done
[ "${#TIERS[@]}" -gt 0 ] || TIERS=(unit integration compat fuzz faults)
want_tier() { local t; for t in "${TIERS[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

PASSED=0
FAILED=0
SKIPPED=0
START_SECONDS=$SECONDS

count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); SKIPPED=$((SKIPPED + $3)); }

# show_failure NAME LOG: print the tail of a failed step's log.
show_failure() {
  echo "---- $1 failed; last lines of $2 ----"
  tail -n 60 "$2"
  echo "---- end of $2 ----"
}

# parse_tap LOG: print "passed failed skipped" for a TAP stream; results the plan promised but
# never came (a crash) count as failed. cmocka 1.1 writes a skip() as `not ok N # SKIP name`.
parse_tap() {
  awk '
    /^1\.\.[0-9]+/ { split($0, p, "."); plan += p[3] }
    /^ok / { if (tolower($0) ~ /# skip/) s++; else ok++ }
    /^not ok / { if (tolower($0) ~ /# (todo|skip)/) s++; else f++ }
    END { missing = plan - ok - f - s; if (missing > 0) f += missing; printf "%d %d %d\n", ok, f, s }
  ' "$1"
}

# run_tap NAME LOG CMD...: run a TAP-producing command, count its results, show failures.
run_tap() {
  local name="$1" log="$2" rc p f s; shift 2
  timeout --kill-after=30 "$FILE_TIMEOUT_S" "$@" > "$log" 2>&1 < /dev/null
  rc=$?
  read -r p f s < <(parse_tap "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1  # the runner failed without reporting a failed test (crash, timeout, bad setup)
    echo "$name: exited with status $rc"
  fi
  count "$p" "$f" "$s"
  echo "$name: $p passed, $f failed, $s skipped"
  [ "$f" -eq 0 ] || show_failure "$name" "$log"
}

# build DIR LOG CMAKE_ARGS...: configure and build from scratch.
build() {
  local dir="$1" log="$2"; shift 2
  rm -rf "$dir"
  mkdir -p "$LOG_DIR"
  { cmake -S "$ROOT" -B "$dir" "$@" && make -C "$dir" -j"$JOBS"; } > "$log" 2>&1
}

finish() {
  echo "test run took $((SECONDS - START_SECONDS))s; logs in $LOG_DIR"
  if [ "$SKIPPED" -gt 0 ]; then
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
  else
    echo "$PASSED passed, $FAILED failed"
  fi
  [ "$FAILED" -eq 0 ]
  exit $?
}

# ---- dependencies and builds ----
if [ "${ZN_SKIP_DEPS:-0}" != 1 ]; then
  if ! "$ROOT/tools/install-deps.sh" > /tmp/zn-install-deps.$$.log 2>&1; then
    tail -n 40 /tmp/zn-install-deps.$$.log
    echo "install-deps failed"
    count 0 1 0
    rm -f /tmp/zn-install-deps.$$.log
    finish
  fi
  tail -n 1 /tmp/zn-install-deps.$$.log
  rm -f /tmp/zn-install-deps.$$.log
fi

rm -rf "$BUILD_DIR"
mkdir -p "$LOG_DIR"
if ! build "$BUILD_DIR" "$LOG_DIR/build.log.tmp" -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  mkdir -p "$LOG_DIR"; mv "$LOG_DIR/build.log.tmp" "$LOG_DIR/build.log" 2>/dev/null
  show_failure "build ($ZN_BUILD_DIR)" "$LOG_DIR/build.log"
  count 0 1 0
  finish
fi
mv "$LOG_DIR/build.log.tmp" "$LOG_DIR/build.log"
echo "built $ZN_BUILD_DIR (RelWithDebInfo)"

UNIT_DIR="$BUILD_DIR"
if want_tier unit && [ "$QUICK" -eq 0 ]; then
  if build "$ROOT/$ASAN_DIR" "$LOG_DIR/build-asan.log" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZN_SANITIZE=ON; then
    echo "built $ASAN_DIR (ASan+UBSan)"
    UNIT_DIR="$ROOT/$ASAN_DIR"
  else
    show_failure "build ($ASAN_DIR)" "$LOG_DIR/build-asan.log"
    count 0 1 0
    UNIT_DIR=""
  fi
fi

# ---- unit: every cmocka case, in both builds; the rest of ctest in the ASan build ----
# run_cmocka LABEL DIR: runs every cmocka executable DIR's build lists (tests/cmocka-tests.txt)
# with TAP output, JOBS at a time, and counts each case: a skip() shows as skipped, a case the
# plan promised but never reported (a crash) as failed.
run_cmocka() {
  local label="$1" dir="$2" list="$2/tests/cmocka-tests.txt" exe name log rc p f s
  local tp=0 tf=0 ts=0 t0=$SECONDS
  if [ ! -s "$list" ]; then
    echo "skipped: unit cmocka ($label: $list missing, ZN_TESTS off?)"
    count 0 0 1
    return
  fi
  mapfile -t exes < "$list"
  for exe in "${exes[@]}"; do
    name="$(basename "$exe")"
    log="$LOG_DIR/unit-$label-$name.log"
    ( cd "$dir/tests" && CMOCKA_MESSAGE_OUTPUT=TAP timeout --kill-after=30 300 "$exe" > "$log" 2>&1 < /dev/null
      echo $? > "$log.rc" ) &
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  done
  wait
  for exe in "${exes[@]}"; do
    name="$(basename "$exe")"
    log="$LOG_DIR/unit-$label-$name.log"
    rc="$(cat "$log.rc" 2>/dev/null || echo 125)"
    rm -f "$log.rc"
    read -r p f s < <(parse_tap "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1; echo "unit/$name ($label): exited with status $rc"
    fi
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
    [ "$s" -eq 0 ] || grep -i -E '^(not )?ok .*# skip' "$log" | sed "s|^|unit/$name ($label) skipped: |"
    [ "$f" -eq 0 ] || show_failure "unit/$name ($label)" "$log"
  done
  count "$tp" "$tf" "$ts"
  echo "unit cmocka ($label, ${#exes[@]} executables, $((SECONDS - t0))s): $tp passed, $tf failed, $ts skipped"
}

if want_tier unit; then
  [ -n "$UNIT_DIR" ] && run_cmocka "${UNIT_DIR#$ROOT/}" "$UNIT_DIR"
  # The ASan build keeps some signals for itself (the crash handler's SIGSEGV case skips there):
  # the release build runs every case too.
  [ "$UNIT_DIR" != "$BUILD_DIR" ] && run_cmocka "$ZN_BUILD_DIR" "$BUILD_DIR"
fi
if want_tier unit && [ -n "$UNIT_DIR" ]; then
  log="$LOG_DIR/unit.log"
  t0=$SECONDS
  (cd "$UNIT_DIR" && timeout --kill-after=30 3600 ctest -LE cmocka --output-on-failure -j"$JOBS") > "$log" 2>&1 < /dev/null
  rc=$?
  p=$(grep -c -E 'Test +#[0-9]+: .* Passed' "$log")
  f=$(grep -c -E 'Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)' "$log")
  s=$(grep -c -E 'Test +#[0-9]+: .*\*\*\*Skipped' "$log")
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ] && grep -q 'No tests were found' "$log"; then
    echo "skipped: unit ctest (no tests but the cmocka ones defined)"
    count 0 0 1
  else
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "unit: ctest exited with status $rc"; fi
    count "$p" "$f" "$s"
    echo "unit ctest -LE cmocka (${UNIT_DIR#$ROOT/}, $((SECONDS - t0))s): $p passed, $f failed, $s skipped"
    [ "$f" -eq 0 ] || show_failure unit "$log"
  fi
fi

# server_available: the server under test can be run here.
server_available() {
  case "$ZN_TARGET" in
    znoded) [ -x "$BUILD_DIR/daemon/znoded" ] ;;
    zookeeper) [ -x /usr/share/zookeeper/bin/zkServer.sh ] ;;
    *) return 1 ;;
  esac
}

# skip_bats REASON FILES...: report a skipped bats tier and count its tests as skipped.
skip_bats() {
  local reason="$1" n; shift
  n=$(bats --count "$@" 2>/dev/null || echo 0)
  echo "skipped: $reason ($n tests)"
  count 0 0 "$n"
}

# ---- integration: bats ----
if want_tier integration; then
  shopt -s nullglob
  files=(tests/integration/*.bats)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "skipped: integration (no tests/integration/*.bats)"
    count 0 0 1
  elif ! server_available; then
    skip_bats "integration (ZN_TARGET=$ZN_TARGET: $ZN_BUILD_DIR/daemon/znoded not built yet)" "${files[@]}"
  else
    for file in "${files[@]}"; do
      name="$(basename "$file" .bats)"
      run_tap "integration/$name" "$LOG_DIR/integration-$name.log" bats --tap "$file"
    done
  fi
fi

# ---- compat: real clients ----
if want_tier compat; then
  shopt -s nullglob
  files=(tests/compat/*.bats)
  if ! server_available; then
    skip_bats "compat bats (ZN_TARGET=$ZN_TARGET: server not built yet)" "${files[@]}"
    echo "skipped: compat C client and kazoo (server not built yet)"
    count 0 0 1
  else
    # Every compatibility test runs against a standalone server and a 3-member ensemble.
    for members in 1 3; do
    export ZN_ENSEMBLE=$members
    sfx=""; [ "$members" -gt 1 ] && sfx="-ensemble$members"
    for file in "${files[@]}"; do
      name="$(basename "$file" .bats)"
      run_tap "compat/$name$sfx" "$LOG_DIR/compat-$name$sfx.log" bats --tap "$file"
    done
    if [ -x "$BUILD_DIR/tests/compat/c_client_compat" ]; then
      run_tap "compat/c-client$sfx" "$LOG_DIR/compat-c-client$sfx.log" \
        tests/compat/run-c-client.sh "$BUILD_DIR/tests/compat/c_client_compat"
    else
      echo "skipped: compat/c-client (c_client_compat not built: libzookeeper-mt-dev missing?)"
      count 0 0 1
    fi
    if [ -x "$BUILD_DIR/tests/compat/c_client_features" ]; then
      run_tap "compat/c-client-features$sfx" "$LOG_DIR/compat-c-client-features$sfx.log" \
        tests/compat/run-c-client.sh "$BUILD_DIR/tests/compat/c_client_features"
    else
      echo "skipped: compat/c-client-features (c_client_features not built: libzookeeper-mt-dev missing?)"
      count 0 0 1
    fi
    if [ -f tests/compat/test_kazoo.py ]; then
      run_tap "compat/kazoo$sfx" "$LOG_DIR/compat-kazoo$sfx.log" "$PYTHON" tests/compat/test_kazoo.py --tap
      if [ -f tests/compat/test_kazoo_features.py ]; then
        run_tap "compat/kazoo-features$sfx" "$LOG_DIR/compat-kazoo-features$sfx.log" \
          "$PYTHON" tests/compat/test_kazoo_features.py --tap
      fi
      # kazoo's own SASL tests start their own 3-member ensemble (run-kazoo-suite.sh): once
      if [ "$members" -gt 1 ] && /usr/bin/python3 -c 'import pytest' 2> /dev/null; then
        run_tap "compat/kazoo-suite-sasl" "$LOG_DIR/compat-kazoo-suite-sasl.log" \
          tests/compat/run-kazoo-suite.sh --tap test_sasl.py
      fi
      # reconfig starts its own 3-member ensembles: once, in the ensemble pass
      if [ -f tests/compat/test_kazoo_reconfig.py ] && [ "$members" -gt 1 ]; then
        run_tap "compat/kazoo-reconfig" "$LOG_DIR/compat-kazoo-reconfig.log" \
          "$PYTHON" tests/compat/test_kazoo_reconfig.py --tap
      fi
    else
      echo "skipped: compat/kazoo (tests/compat/test_kazoo.py not written yet)"
      count 0 0 1
    fi
    done
    unset ZN_ENSEMBLE
  fi
fi

# ---- fuzz: bounded run ----
if want_tier fuzz; then
  if [ "$QUICK" -eq 1 ]; then
    echo "skipped: fuzz (--quick)"
    count 0 0 1
  elif [ ! -x tests/fuzz/run.sh ]; then
    echo "skipped: fuzz (tests/fuzz/run.sh not written yet)"
    count 0 0 1
  else
    log="$LOG_DIR/fuzz.log"
    if timeout --kill-after=30 1800 tests/fuzz/run.sh > "$log" 2>&1 < /dev/null; then
      count 1 0 0; echo "fuzz: bounded run passed"
    else
      count 0 1 0; show_failure fuzz "$log"
    fi
  fi
fi

# ---- faults: a short fault-injection run and the planted-bug run ----
if want_tier faults; then
  if [ "$QUICK" -eq 1 ]; then
    echo "skipped: faults (--quick)"
    count 0 0 1
  elif [ "$ZN_TARGET" != znoded ] || ! server_available; then
    echo "skipped: faults (needs a built znoded)"
    count 0 0 1
  else
    run_tap "faults/run" "$LOG_DIR/faults.log" tests/faults/run.sh --seconds "${ZN_FAULTS_SECONDS:-100}"
    run_tap "faults/planted-bug" "$LOG_DIR/faults-planted.log" \
      tests/faults/run.sh --seconds 45 --planted-bug stale-sync --nemeses partition-follower
    [ -f "$LOG_DIR/faults-report.md" ] && sed -n '/^## Faults injected/,/^<details>/p;/^| fault kind /,/^Before the first fault/p;/^## Checks/,$p' "$LOG_DIR/faults-report.md" | grep -v '^<details>'
  fi
fi

finish
