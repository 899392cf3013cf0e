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
  "$ZN_PYTHON" - "$ZN_LIB_DIR" "$TLS_SERVER" "$KEYS" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from kazoo.security import make_acl
from kazoo_ops import session, each_op
server, keys, cert = sys.argv[2:5]
kw = {}
if cert != "plain":
    kw = {"use_ssl": True, "ca": keys + "/ca.pem"}
if cert not in ("plain", "none"):
    kw.update(certfile="%s/%s.crt" % (keys, cert), keyfile="%s/%s.key" % (keys, cert))
zk = session(server, 2, **kw)
def arity(op, rest):
    if op == "create":
        return 3 if len(rest) > 2 and rest[2].startswith("CN=") else 2
    return 1 if op == "get" else None
def do(op, args):
    if op == "create":
        acl = [make_acl("x509", args[2], all=True)] if len(args) > 2 else None
        print(zk.create(args[0], args[1].encode(), acl=acl))
    else:
        print(zk.get(args[0])[0].decode())
each_op(sys.argv[5:], arity, do)
zk.stop()
PY
}
