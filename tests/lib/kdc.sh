#!/bin/bash
# A throw-away MIT Kerberos KDC on loopback (Debian's krb5-kdc), for the GSSAPI tests.
#   kdc.sh start DIR REALM SERVICE_PRINCIPAL   a realm in DIR, its KDC on 127.0.0.1 at a free
#        port; DIR/server.keytab holds SERVICE_PRINCIPAL's key, DIR/client.keytab client@REALM's;
#        DIR/krb5.conf is the configuration clients and servers use (KRB5_CONFIG). Waits until
#        the KDC issues a ticket; prints DIR/krb5.conf.
#   kdc.sh stop DIR                            stops the KDC started in DIR, by its PID
# Nothing outside DIR is read or written (KRB5_CONFIG, KRB5_KDC_PROFILE point into it).
set -euo pipefail
command="${1:-}" dir="${2:-}"
if [ -z "$command" ] || [ -z "$dir" ]; then sed -n '2,8p' "$0" >&2; exit 2; fi
dir="$(mkdir -p "$dir" && cd "$dir" && pwd)"

case "$command" in
  start)
    realm="$3" service="$4"
    command -v krb5kdc > /dev/null || { echo "kdc.sh: krb5kdc missing (apt-get install krb5-kdc krb5-admin-server krb5-user)" >&2; exit 2; }
    port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat > "$dir/krb5.conf" <<EOF
[libdefaults]
  default_realm = $realm
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  $realm = {
    kdc = 127.0.0.1:$port
  }
EOF
    cat > "$dir/kdc.conf" <<EOF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$port
  kdc_tcp_listen = 127.0.0.1:$port
[realms]
  $realm = {
    database_name = $dir/principal
    key_stash_file = $dir/stash
    acl_file = $dir/kadm5.acl
  }
[logging]
  kdc = FILE:$dir/kdc.log
EOF
    export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
    kdb5_util create -s -r "$realm" -P "kdc-master-$$" > "$dir/setup.log" 2>&1
    for principal in "$service@$realm" "client@$realm"; do
      kadmin.local -q "addprinc -randkey $principal" >> "$dir/setup.log" 2>&1
    done
    kadmin.local -q "ktadd -k $dir/server.keytab $service@$realm" >> "$dir/setup.log" 2>&1
    kadmin.local -q "ktadd -k $dir/client.keytab client@$realm" >> "$dir/setup.log" 2>&1
    krb5kdc -n -P "$dir/kdc.pidfile" >> "$dir/kdc.out" 2>&1 < /dev/null &
    echo $! > "$dir/kdc.pid"
    deadline=$((SECONDS + 20))
    until KRB5CCNAME="FILE:$dir/probe.cc" kinit -kt "$dir/client.keytab" "client@$realm" 2> /dev/null; do
      if ! kill -0 "$(cat "$dir/kdc.pid")" 2> /dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        echo "kdc.sh: the KDC did not issue a ticket within 20 s; its log:" >&2
        cat "$dir/kdc.out" "$dir/kdc.log" >&2 2> /dev/null || true
        exit 1
      fi
      sleep 0.1
    done
    rm -f "$dir/probe.cc"
    echo "$dir/krb5.conf"
    ;;
  stop)
    if [ -f "$dir/kdc.pid" ]; then
      pid="$(cat "$dir/kdc.pid")"
      kill "$pid" 2> /dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.05; done
      rm -f "$dir/kdc.pid"
    fi
    ;;
  *) echo "kdc.sh: unknown command $command" >&2; exit 2 ;;
esac
