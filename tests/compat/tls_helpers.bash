# Helpers of the TLS compatibility tests (tls.bats, tls_options.bats, tls_unified.bats): load
# after ../integration/helpers (tls_ca, tls_sign). The keys are made with openssl in $KEYS, per
# run.

# tls_keys_init: the state directory for setup_file and an empty $KEYS
# ($BATS_FILE_TMPDIR/keys), exported for the tests.
tls_keys_init() {
  zn_state_init
  export ZN_STATE_DIR
  export KEYS="$BATS_FILE_TMPDIR/keys"
  mkdir -p "$KEYS"
}

# kazoo_tls CERT OP...: one kazoo session with $TLS_SERVER, running ops in order and printing one
# line per op. CERT: plain (no TLS), none (TLS without a client certificate), or the name of a
# client certificate in $KEYS (TLS with $KEYS/CERT.crt and .key); TLS trusts $KEYS/ca.pem.
#   create PATH DATA [DN]   create PATH (with the ACL x509:DN, all permissions, when DN is given)
#   get PATH                print the data
# An op that fails prints "ERR <exception>"; a session that cannot start prints
# "ERR <exception>" and exits 1.
kazoo_tls() {
  "$ZN_PYTHON" - "$TLS_SERVER" "$KEYS" "$@" <<'PY'
import logging, sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
logging.disable(logging.CRITICAL)
server, keys, cert = sys.argv[1:4]
ops = sys.argv[4:]
kw = {}
if cert != "plain":
    kw = {"use_ssl": True, "ca": keys + "/ca.pem"}
if cert not in ("plain", "none"):
    kw.update(certfile="%s/%s.crt" % (keys, cert), keyfile="%s/%s.key" % (keys, cert))
zk = KazooClient(hosts=server, timeout=5, connection_retry={"max_tries": 2, "delay": 0.2}, **kw)
try:
    zk.start(timeout=10)
except Exception as e:
    print("ERR", type(e).__name__)
    sys.exit(1)
i = 0
while i < len(ops):
    op = ops[i]
    try:
        if op == "create":
            dn = ops[i + 3] if i + 3 < len(ops) and ops[i + 3].startswith("CN=") else None
            step = 4 if dn else 3
            acl = [make_acl("x509", dn, all=True)] if dn else None
            print(zk.create(ops[i + 1], ops[i + 2].encode(), acl=acl))
        elif op == "get":
            step = 2
            print(zk.get(ops[i + 1])[0].decode())
        else:
            raise SystemExit("unknown op " + op)
    except SystemExit:
        raise
    except Exception as e:
        print("ERR", type(e).__name__)
    i += step
zk.stop()
PY
}
