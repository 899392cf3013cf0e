#!/bin/bash
# Install the Debian packages znodefs needs to build, run and test. Skips apt entirely when
# every package is already installed, so repeated runs cost a second. Runs apt-get update once
# (only when something is missing). Non-interactive; needs root (uses sudo when not root).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang libuv1-dev liblmdb-dev lmdb-utils libfuse3-dev
  libcmocka-dev libssl-dev
  # SASL for clients: Cyrus SASL to build against, and its DIGEST-MD5 and GSSAPI plugins to run
  libsasl2-dev libsasl2-modules libsasl2-modules-gssapi-mit
  # tests/compat/sasl_gssapi.bats: a Kerberos KDC on loopback (tests/lib/kdc.sh), kinit, and
  # kazoo's GSSAPI client
  krb5-kdc krb5-admin-server krb5-user python3-kerberos
  # znoded --import-zookeeper reads ZooKeeper's gzip and snappy snapshots
  zlib1g-dev libsnappy-dev
  # tests/integration/package.bats builds the .deb packages (debian/) with dpkg-buildpackage
  debhelper dpkg-dev
  # tests/compat/tls.bats makes its keys and certificates with the openssl command
  openssl
  # run (FUSE mount)
  fuse3 attr
  # test runners and helpers
  bats bats-assert bats-support bats-file inotify-tools iptables procps netcat-openbsd
  util-linux iproute2 python3 coreutils
  # fs_tools.bats: the tools people move trees with
  rsync git tar
  # fs_programs.bats: Go's usual file idioms (tests/fs/goidioms.go, built offline with Go 1.19)
  golang-go
  # metrics.bats (curl, and an independent parser of the Prometheus text format) and
  # install.bats (man -l renders the man pages)
  curl man-db python3-prometheus-client
  # real ZooKeeper and its clients, for compatibility tests and comparison runs
  zookeeper zookeeper-bin libzookeeper-mt-dev python3-kazoo default-jre-headless
  # kazoo's own test suite (tests/compat/run-kazoo-suite.sh) runs under pytest; its SASL client;
  # mock and objgraph for the suite's other files
  python3-pytest python3-pure-sasl python3-mock python3-objgraph
  # admin.bats: jq reads the AdminServer's JSON; ZooKeeper's own AdminServer needs the servlet
  # API (Jetty's jars come with libzookeeper-java, the servlet API only as their dependency)
  jq libservlet-api-java
)

missing=()
for package in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  if [ "$status" != "install ok installed" ]; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || { echo "install-deps: must run as root (no sudo found)" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" < /dev/null
