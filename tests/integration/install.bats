#!/usr/bin/env bats
# `cmake --install` as a packager or an operator runs it: the three programs, a man page for
# each that man renders cleanly, an example zoo.cfg that znoded accepts, and a systemd unit that
# systemd accepts and that runs the installed znoded on /etc/znodefs/zoo.cfg.

load helpers

BUILD="$ZN_REPO_ROOT/${ZN_BUILD_DIR:-build}"

setup_file() {
  export PREFIX="$BATS_FILE_TMPDIR/prefix"
  [ -f "$BUILD/cmake_install.cmake" ] || { echo "not configured: $BUILD" >&2; return 1; }
  cmake --install "$BUILD" --prefix "$PREFIX" > "$BATS_FILE_TMPDIR/install.log" 2>&1 ||
    { cat "$BATS_FILE_TMPDIR/install.log" >&2; return 1; }
}

setup() {
  zn_load_bats_libs
}

@test "the three programs are installed in bin and run" {
  for prog in znoded znode znodefs; do
    assert_file_executable "$PREFIX/bin/$prog"
  done
  run "$PREFIX/bin/znoded" --help
  assert_success
  assert_output --partial "usage: znoded"
  run "$PREFIX/bin/znode" --help
  assert_output --partial "usage: znode"
  run "$PREFIX/bin/znodefs" --help
  assert_success
  assert_output --partial "usage: znodefs"
}

@test "each program has a man page that man renders without warnings" {
  local page section name
  for page in man8/znoded.8 man1/znode.1 man8/znodefs.8; do
    assert_file_exists "$PREFIX/share/man/$page"
    name="$(basename "$page")"; section="${name##*.}"; name="${name%.*}"
    MANWIDTH=80 man -l "$PREFIX/share/man/$page" > "$BATS_TEST_TMPDIR/out" 2> "$BATS_TEST_TMPDIR/err"
    if [ -s "$BATS_TEST_TMPDIR/err" ]; then cat "$BATS_TEST_TMPDIR/err"; false; fi
    run cat "$BATS_TEST_TMPDIR/out"
    assert_line --regexp "^NAME"
    assert_line --regexp "^SYNOPSIS"
    assert_output --partial "$name -"
    # man finds it by name under the prefix, in the right section
    run env MANPATH="$PREFIX/share/man" man -w "$section" "$name"
    assert_success
    assert_output "$PREFIX/share/man/$page"
  done
  run env MANWIDTH=80 man -l "$PREFIX/share/man/man8/znoded.8"
  assert_output --partial "metricsProvider.httpPort"
  assert_output --partial "LOGGING"
  run env MANWIDTH=80 man -l "$PREFIX/share/man/man8/znodefs.8"
  assert_output --partial "mount -t fuse.znodefs"
}

@test "the example zoo.cfg passes znoded --check-config once dataDir is adjusted" {
  local example="$PREFIX/share/doc/znodefs/zoo.cfg.example" cfg="$BATS_TEST_TMPDIR/zoo.cfg"
  assert_file_exists "$example"
  sed "s|^dataDir=.*|dataDir=$BATS_TEST_TMPDIR/data|" "$example" > "$cfg"
  run "$PREFIX/bin/znoded" --check-config "$cfg"
  assert_success
  assert_output --partial "config ok"
  assert_output --partial "dataDir=$BATS_TEST_TMPDIR/data"
  assert_output --partial "clientPort=2181"
  # nothing in it is ignored (an unknown key would have refused it)
  refute_output --partial "ignored:"
  # the example turns the Prometheus page on
  run grep -x "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider" "$example"
  assert_success
}

@test "the systemd unit runs the installed znoded on /etc/znodefs/zoo.cfg as its own user" {
  local unit="$PREFIX/lib/systemd/system/znoded.service"
  assert_file_exists "$unit"
  run grep -x "ExecStart=$PREFIX/bin/znoded /etc/znodefs/zoo.cfg" "$unit"
  assert_success
  run grep -x "Restart=on-failure" "$unit"
  assert_success
  run grep -E "^User=[a-z_][a-z0-9_-]*$" "$unit"
  assert_success
  run grep -E "^LimitNOFILE=[0-9]+$" "$unit"
  assert_success
  run grep -x "StateDirectory=znodefs" "$unit"
  assert_success
  # the user it runs as is declared for systemd-sysusers
  run grep -E "^u znodefs " "$PREFIX/lib/sysusers.d/znodefs.conf"
  assert_success
  if command -v systemd-analyze > /dev/null; then
    # Documentation=man:znoded(8) is checked too: man must find it under the prefix
    run env MANPATH="$PREFIX/share/man" systemd-analyze verify "$unit"
    assert_success
    refute_output --partial "Unknown key"
  else
    # a syntax check: sections, and every other line key=value or a comment
    run awk '/^\[(Unit|Service|Install)\]$/ || /^#/ || /^$/ || /^[A-Za-z]+=/ { next } { print "bad line: " $0; bad = 1 } END { exit bad }' "$unit"
    assert_success
    for section in Unit Service Install; do grep -qx "\[$section\]" "$unit"; done
  fi
}

@test "a DESTDIR install stages under DESTDIR and names the real prefix in the unit" {
  local stage="$BATS_TEST_TMPDIR/stage" prefix
  prefix="$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")"
  run env DESTDIR="$stage" cmake --install "$BUILD"
  assert_success
  assert_file_executable "$stage$prefix/bin/znoded"
  run grep -x "ExecStart=$prefix/bin/znoded /etc/znodefs/zoo.cfg" "$stage$prefix/lib/systemd/system/znoded.service"
  assert_success
  # nothing escaped the stage into the real prefix
  if [ "$prefix" != /usr ] && [ "$prefix" != /usr/local ]; then
    assert_not_exists "$prefix/bin/znoded"
  fi
}
