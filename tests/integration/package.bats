#!/usr/bin/env bats
# The Debian packages as an operator gets them: `dpkg-buildpackage -b` builds znoded, znode and
# znodefs from a copy of this tree (debian/), `dpkg -i` installs them on this machine for real
# (the znodefs user, /etc/znodefs/zoo.cfg, /var/lib/znodefs, the systemd unit, man pages), the
# installed znoded serves from the installed config as the znodefs user, and an fstab line of
# type fuse.znodefs mounts the tree with `mount -a`. Everything installed or created is purged
# in teardown_file, unless it was there before. Needs root, debhelper and /dev/fuse (skipped,
# saying which, without them). The package build takes about a minute on 2 cores.

load helpers

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-buildpackage > /dev/null ||
     ! command -v dh > /dev/null; then
    return 0
  fi
  # Nothing of ours may be there already: the test installs and purges for real.
  local p
  for p in znoded znode znodefs; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
      echo "package $p is already installed on this machine; not touching it" > "$BATS_FILE_TMPDIR/refused"
      return 0
    fi
  done
  getent passwd znodefs > /dev/null || touch "$BATS_FILE_TMPDIR/user_is_ours"
  [ -e /var/lib/znodefs ] || touch "$BATS_FILE_TMPDIR/datadir_is_ours"
  [ -e /etc/znodefs ] || touch "$BATS_FILE_TMPDIR/etc_is_ours"
  mkdir -p "$BATS_FILE_TMPDIR/build/src"
  (cd "$ZN_REPO_ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$BATS_FILE_TMPDIR/build/src")
  (cd "$BATS_FILE_TMPDIR/build/src" && dpkg-buildpackage -us -uc -b -j2) > "$BATS_FILE_TMPDIR/build.log" 2>&1
  echo $? > "$BATS_FILE_TMPDIR/build.rc"
}

teardown_file() {
  stop_all
  [ -f "$BATS_FILE_TMPDIR/build.rc" ] || return 0
  if findmnt -n "$BATS_FILE_TMPDIR/mnt" > /dev/null 2>&1; then
    umount "$BATS_FILE_TMPDIR/mnt" || fusermount3 -u "$BATS_FILE_TMPDIR/mnt" || true
  fi
  dpkg --purge znodefs znode znoded > /dev/null 2>&1 || true
  if [ -f "$BATS_FILE_TMPDIR/user_is_ours" ] && getent passwd znodefs > /dev/null; then
    userdel znodefs 2>/dev/null || true
    getent group znodefs > /dev/null && groupdel znodefs 2>/dev/null || true
  fi
  if [ -f "$BATS_FILE_TMPDIR/datadir_is_ours" ]; then rm -rf /var/lib/znodefs; fi
  if [ -f "$BATS_FILE_TMPDIR/etc_is_ours" ]; then rm -rf /etc/znodefs; fi
}

setup() {
  zn_load_bats_libs
  [ "$(id -u)" -eq 0 ] || skip "installs packages for real: needs root"
  command -v dh > /dev/null || skip "debhelper is not installed (tools/install-deps.sh installs it)"
  [ ! -f "$BATS_FILE_TMPDIR/refused" ] || skip "$(cat "$BATS_FILE_TMPDIR/refused")"
  DEBS="$BATS_FILE_TMPDIR/build"
}

@test "dpkg-buildpackage -b builds the znoded, znode and znodefs packages with their files" {
  run cat "$BATS_FILE_TMPDIR/build.rc"
  [ "$output" = 0 ] || { tail -40 "$BATS_FILE_TMPDIR/build.log"; false; }
  run bash -c "dpkg-deb -c '$DEBS/znoded_0.1.0_$(dpkg --print-architecture).deb' | awk '{print \$6}' | grep -v '/\$' | sort"
  assert_output "./etc/znodefs/zoo.cfg
./usr/bin/znoded
./usr/lib/systemd/system/znoded.service
./usr/lib/sysusers.d/znodefs.conf
./usr/share/doc/znoded/changelog.gz
./usr/share/doc/znoded/copyright
./usr/share/doc/znodefs/zoo.cfg.example
./usr/share/man/man8/znoded.8.gz"
  run bash -c "dpkg-deb -c '$DEBS/znode_0.1.0_$(dpkg --print-architecture).deb' | awk '{print \$6}' | grep -v '/\$' | grep -E 'bin/|man/'"
  assert_output "./usr/bin/znode
./usr/share/man/man1/znode.1.gz"
  run bash -c "dpkg-deb -c '$DEBS/znodefs_0.1.0_$(dpkg --print-architecture).deb' | awk '{print \$6}' | grep -v '/\$' | grep -E 'bin/|man/'"
  assert_output "./usr/bin/znodefs
./usr/share/man/man8/znodefs.8.gz"
  run dpkg-deb -f "$DEBS/znodefs_0.1.0_$(dpkg --print-architecture).deb" Depends
  assert_output --regexp "(^|, )fuse3(,|$)"
}

@test "the packages install with dpkg -i: the user, the config, the data directory, the unit" {
  run dpkg -i "$DEBS/znoded_0.1.0_"*.deb "$DEBS/znode_0.1.0_"*.deb "$DEBS/znodefs_0.1.0_"*.deb
  echo "$output"
  assert_success
  run getent passwd znodefs
  assert_output --regexp "^znodefs:x:[0-9]+:[0-9]+:znodefs coordination server.*:/var/lib/znodefs:/usr/sbin/nologin$"
  run stat -c '%U:%G %a' /var/lib/znodefs
  assert_output "znodefs:znodefs 750"
  run dpkg-query -W -f='${Conffiles}' znoded
  assert_output --regexp "^ /etc/znodefs/zoo.cfg [0-9a-f]{32}$"
  run grep -x 'dataDir=/var/lib/znodefs' /etc/znodefs/zoo.cfg
  assert_success
  run grep -x 'ExecStart=/usr/bin/znoded /etc/znodefs/zoo.cfg' /usr/lib/systemd/system/znoded.service
  assert_success
  run /usr/bin/znoded --version
  assert_output "znoded 0.1.0"
  run man -l /usr/share/man/man8/znodefs.8.gz
  assert_success
}

@test "the installed znoded serves from the installed config as the znodefs user" {
  local port pid
  port="$(free_port 127.0.0.1)"
  # Loopback and a free port for the test; everything else as installed.
  setpriv --reuid=znodefs --regid=znodefs --init-groups /usr/bin/znoded \
    --set "clientPort=$port" --set clientPortAddress=127.0.0.1 --set admin.enableServer=false \
    --set metricsProvider.httpHost=127.0.0.1 --set "metricsProvider.httpPort=$(free_port 127.0.0.1)" \
    /etc/znodefs/zoo.cfg > "$BATS_FILE_TMPDIR/znoded.log" 2>&1 &
  pid=$!
  zn_track_pid "$pid"
  echo "$port" > "$BATS_FILE_TMPDIR/port"
  wait_until 30 "the installed znoded to answer ruok" bash -c "[ \"\$(printf ruok | timeout 5 nc -N -w 2 127.0.0.1 $port)\" = imok ]" ||
    { cat "$BATS_FILE_TMPDIR/znoded.log"; false; }
  run /usr/bin/znode --server "127.0.0.1:$port" create /from-the-package "served"
  assert_success
  run /usr/bin/znode --server "127.0.0.1:$port" get /from-the-package
  assert_output "served"
  run stat -c %U /var/lib/znodefs/data.mdb
  assert_output znodefs
}

@test "an fstab line of type fuse.znodefs mounts the tree with mount -a" {
  [ -e /dev/fuse ] || skip "no /dev/fuse"
  [ -f "$BATS_FILE_TMPDIR/port" ] || skip "needs the server the test before started"
  local mnt="$BATS_FILE_TMPDIR/mnt" fstab="$BATS_FILE_TMPDIR/fstab"
  mkdir -p "$mnt"
  echo "127.0.0.1:$(cat "$BATS_FILE_TMPDIR/port") $mnt fuse.znodefs defaults,_netdev 0 0" > "$fstab"
  run mount -a -T "$fstab"
  echo "$output"
  assert_success
  run findmnt -n -o FSTYPE,SOURCE "$mnt"
  assert_output --regexp "^fuse\.znodefs +127\.0\.0\.1:$(cat "$BATS_FILE_TMPDIR/port")\$"
  run cat "$mnt/from-the-package"
  assert_output "served"
  run umount "$mnt"
  assert_success
}
