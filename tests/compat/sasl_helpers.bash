# Helpers of the SASL compatibility tests (sasl.bats, sasl_clients.bats, sasl_gssapi.bats): load
# after ../integration/helpers.

# sasl_digest_start MEMBERS USERS [key=value...]: for setup_file, MEMBERS members of the server
# under test with SASLAuthenticationProvider and the lines, whose JAAS file $JAAS (named by
# -Djava.security.auth.login.config in ZN_SERVER_JVMFLAGS, as zkServer.sh users set it) lists the
# DIGEST-MD5 users USERS (space-separated NAME=PASSWORD).
sasl_digest_start() {
  local members="$1" users="$2"; shift 2
  zn_state_init
  export ZN_STATE_DIR
  export JAAS="$BATS_FILE_TMPDIR/jaas.conf"
  # (USERS split into words on purpose)
  # shellcheck disable=SC2086
  write_jaas_server "$JAAS" $users
  export ZN_SERVER_JVMFLAGS="-Djava.security.auth.login.config=$JAAS"
  start_ensemble "$members" "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider" "$@"
}

# kazoo_sasl MEMBER USER PASSWORD OP...: one kazoo session with member MEMBER, authenticated with
# DIGEST-MD5 as USER (USER "-": no SASL; USER "GSSAPI": Kerberos, with the ticket cache of the
# environment, connecting to "localhost" so that the service principal is zookeeper/localhost),
# running ops in order, one line each:
#   create PATH DATA ACL   ACL: sasl:NAME (all permissions), auth (the session's ids), open
#   get PATH | set PATH DATA | acl PATH (scheme:id:perms ...)
# An op that fails prints "ERR <exception>"; a session that cannot start prints "ERR <exception>".
kazoo_sasl() {
  local member="$1"; shift
  "$ZN_PYTHON" - "$ZN_LIB_DIR" "$(member_connect "$member")" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from kazoo.security import make_acl, OPEN_ACL_UNSAFE
from kazoo_ops import session, each_op
server, user, password = sys.argv[2:5]
kw = {} if user == "-" else {"sasl_options": {"mechanism": "DIGEST-MD5", "username": user, "password": password}}
if user == "GSSAPI":
    kw = {"sasl_options": {"mechanism": "GSSAPI"}}
    server = "localhost:" + server.rsplit(":", 1)[1]
zk = session(server, 1, **kw)
def acl_of(spec):
    if spec == "open":
        return OPEN_ACL_UNSAFE
    if spec == "auth":
        return [make_acl("auth", "", all=True)]
    scheme, ident = spec.split(":", 1)
    return [make_acl(scheme, ident, all=True)]
def do(op, args):
    if op == "create":
        print(zk.create(args[0], args[1].encode(), acl=acl_of(args[2])))
    elif op == "get":
        print(zk.get(args[0])[0].decode())
    elif op == "set":
        zk.set(args[0], args[1].encode())
        print("set")
    elif op == "acl":
        print(" ".join("%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in zk.get_acls(args[0])[0]))
each_op(sys.argv[5:], lambda op, rest: {"create": 3, "get": 1, "set": 2, "acl": 1}.get(op), do)
zk.stop()
PY
}
