/*
 * saslauth: DIGEST-MD5 through Cyrus SASL (see saslauth.h).  Owns Cyrus's
 * process-wide setup (options through a GETOPT callback, so no file in
 * /etc/sasl2 changes what znoded does), the auxiliary property plugin that
 * hands Cyrus a JAAS user's password, and each connection's sasl_conn_t.
 */
#include "saslauth.h"

#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "config.h"
#include "log.h"
#include "sasl_directives.h"

/* ZooKeeper's names: SaslServer for DIGEST-MD5 is made with protocol
 * "zookeeper" and server name "zk-sasl-md5" (kazoo and the Java client use
 * the same digest-uri). */
#define SASLAUTH_SERVICE "zookeeper"
#define SASLAUTH_SERVER_NAME "zk-sasl-md5"
#define SASLAUTH_PLUGIN_NAME "znoded-jaas"
/* Between members, ZooKeeper's names (QuorumAuth: protocol "zookeeper-quorum",
 * server name "zk-quorum-sasl-md5"). */
#define SASLAUTH_QUORUM_SERVICE "zookeeper-quorum"
#define SASLAUTH_QUORUM_SERVER_NAME "zk-quorum-sasl-md5"

struct saslauth_session {
    sasl_conn_t *conn;
    bool started;
    bool finished;  /* completed or failed: the next token starts over (or fails) */
    bool failed;
};

static const struct config_sasl *saslauth_users; /* borrowed from the server's config */
static bool saslauth_started;
/* The one mechanism served, as in ZooKeeper: GSSAPI when the JAAS Server
 * section is Krb5LoginModule's, with the service and host of its principal
 * (SERVICE/HOST@REALM); else DIGEST-MD5 with ZooKeeper's fixed names. */
static const char *saslauth_mechanism = "DIGEST-MD5";
static char saslauth_service[CONFIG_SASL_NAME_BYTES] = SASLAUTH_SERVICE;
static char saslauth_host[CONFIG_SASL_NAME_BYTES] = SASLAUTH_SERVER_NAME;
static char saslauth_realm[CONFIG_SASL_NAME_BYTES];

/* A user of the JAAS Server section, or (quorum) of the quorum server section. */
static const struct config_sasl_user *find_user(const char *name, size_t len, bool quorum)
{
    if (!saslauth_users)
        return NULL;
    int count = quorum ? saslauth_users->quorum_user_count : saslauth_users->user_count;
    for (int i = 0; i < count; i++) {
        const struct config_sasl_user *u = quorum ? &saslauth_users->quorum_users[i] : &saslauth_users->users[i];
        if (strlen(u->name) == len && memcmp(u->name, name, len) == 0)
            return u;
    }
    return NULL;
}

/* Cyrus asks for the properties its mechanism needs (DIGEST-MD5:
 * userPassword) of the authentication id; a JAAS user has exactly that. */
static int jaas_lookup(void *glob, sasl_server_params_t *sparams, unsigned flags, const char *user,
                       unsigned ulen)
{
    (void)glob;
    if (flags & SASL_AUXPROP_AUTHZID)
        return SASL_OK; /* nothing is kept about authorization ids */
    bool quorum = sparams->service && strcmp(sparams->service, SASLAUTH_QUORUM_SERVICE) == 0;
    const struct config_sasl_user *u = find_user(user, ulen, quorum);
    if (!u)
        return SASL_NOUSER;
    const struct propval *wanted = sparams->utils->prop_get(sparams->propctx);
    if (!wanted)
        return SASL_OK;
    for (const struct propval *p = wanted; p->name; p++) {
        const char *name = p->name[0] == '*' ? p->name + 1 : p->name;
        if (strcmp(name, "userPassword") != 0)
            continue;
        if (p->values) {
            if (!(flags & SASL_AUXPROP_OVERRIDE))
                continue;
            sparams->utils->prop_erase(sparams->propctx, p->name);
        }
        sparams->utils->prop_set(sparams->propctx, p->name, u->password, (int)strlen(u->password));
    }
    return SASL_OK;
}

static sasl_auxprop_plug_t jaas_plugin = {
    .auxprop_lookup = jaas_lookup,
    .name = SASLAUTH_PLUGIN_NAME,
};

static int jaas_plugin_init(const sasl_utils_t *utils, int max_version, int *out_version,
                            sasl_auxprop_plug_t **plug, const char *plugname)
{
    (void)utils;
    (void)plugname;
    if (max_version < SASL_AUXPROP_PLUG_VERSION)
        return SASL_BADVERS;
    *out_version = SASL_AUXPROP_PLUG_VERSION;
    *plug = &jaas_plugin;
    return SASL_OK;
}

static int get_option(void *context, const char *plugin, const char *option, const char **result,
                      unsigned *len)
{
    (void)context;
    (void)plugin;
    *result = NULL;
    if (strcmp(option, "auxprop_plugin") == 0)
        *result = SASLAUTH_PLUGIN_NAME;
    else if (strcmp(option, "mech_list") == 0)
        /* between members DIGEST-MD5 is always the mechanism */
        *result = saslauth_users && saslauth_users->quorum_enable && strcmp(saslauth_mechanism, "GSSAPI") == 0
                      ? "GSSAPI DIGEST-MD5"
                      : saslauth_mechanism;
    else if (strcmp(option, "pwcheck_method") == 0)
        *result = "auxprop";
    else if (strcmp(option, "log_level") == 0)
        *result = "3"; /* SASL_LOG_WARN: failures are logged by the caller, with the peer */
    if (*result && len)
        *len = (unsigned)strlen(*result);
    return *result ? SASL_OK : SASL_FAIL;
}

static int log_message(void *context, int level, const char *message)
{
    (void)context;
    if (level <= SASL_LOG_ERR)
        ZN_WARN("sasl: %s", message);
    else
        ZN_DEBUG("sasl: %s", message);
    return SASL_OK;
}

/* ZooKeeper's SaslServerCallbackHandler authorizes the authentication id
 * whatever authorization id the client asked for; identity() then reads the
 * authentication id, so the asked-for one is never used. */
static int authorize_any(sasl_conn_t *conn, void *context, const char *requested_user,
                         unsigned rlen, const char *auth_identity, unsigned alen,
                         const char *def_realm, unsigned urlen, struct propctx *propctx)
{
    return SASL_OK;
}

/* Cyrus takes every callback as int (*)(void); void (*)(void) in between
 * says the cast is meant. */
#define SASLAUTH_CALLBACK(fn) ((int (*)(void))(void (*)(void))(fn))
static const sasl_callback_t saslauth_callbacks[] = {
    {SASL_CB_GETOPT, SASLAUTH_CALLBACK(get_option), NULL},
    {SASL_CB_LOG, SASLAUTH_CALLBACK(log_message), NULL},
    {SASL_CB_PROXY_POLICY, SASLAUTH_CALLBACK(authorize_any), NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

int saslauth_init(const struct config_sasl *cfg)
{
    ZN_ASSERT(cfg != NULL && (cfg->enabled || cfg->quorum_enable));
    saslauth_users = cfg;
    if (saslauth_started)
        return 0;
    if (cfg->gssapi) {
        /* SERVICE/HOST@REALM, checked by config_sasl.c */
        const char *slash = strchr(cfg->principal, '/'), *at = strchr(cfg->principal, '@');
        snprintf(saslauth_service, sizeof saslauth_service, "%.*s", (int)(slash - cfg->principal),
                 cfg->principal);
        snprintf(saslauth_host, sizeof saslauth_host, "%.*s", (int)(at - slash - 1), slash + 1);
        snprintf(saslauth_realm, sizeof saslauth_realm, "%s", at + 1);
        saslauth_mechanism = "GSSAPI";
        /* MIT's GSS-API acceptor reads its key table from here */
        setenv("KRB5_KTNAME", cfg->keytab, 1);
    }
    int rc = sasl_auxprop_add_plugin(SASLAUTH_PLUGIN_NAME, jaas_plugin_init);
    if (rc == SASL_OK)
        rc = sasl_server_init(saslauth_callbacks, "znoded");
    if (rc == SASL_OK && cfg->quorum_learner_require)
        rc = sasl_client_init(NULL);
    if (rc != SASL_OK) {
        ZN_ERROR("sasl: cannot start Cyrus SASL: %s", sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    const char **mechs = sasl_global_listmech();
    bool found = false;
    bool digest = !cfg->quorum_enable;
    for (int i = 0; mechs && mechs[i]; i++) {
        found |= strcmp(mechs[i], saslauth_mechanism) == 0;
        digest |= strcmp(mechs[i], "DIGEST-MD5") == 0;
    }
    if (!digest) {
        ZN_ERROR("sasl: Cyrus SASL has no DIGEST-MD5 plugin, which members authenticate with (Debian: "
                 "install libsasl2-modules)");
        sasl_server_done();
        return -1;
    }
    if (!found && cfg->enabled) {
        ZN_ERROR("sasl: Cyrus SASL has no %s plugin (Debian: install %s)", saslauth_mechanism,
                 cfg->gssapi ? "libsasl2-modules-gssapi-mit" : "libsasl2-modules");
        sasl_server_done();
        return -1;
    }
    saslauth_started = true;
    if (cfg->quorum_enable)
        ZN_INFO("sasl: DIGEST-MD5 between members, users=%d%s%s", cfg->quorum_user_count,
                cfg->quorum_learner_require ? ", this member authenticates as " : "",
                cfg->quorum_learner_require ? cfg->quorum_learner.name : "");
    if (!cfg->enabled)
        return 0;
    if (cfg->gssapi)
        ZN_INFO("sasl: GSSAPI for clients, principal=%s keytab=%s", cfg->principal, cfg->keytab);
    else
        ZN_INFO("sasl: DIGEST-MD5 for clients, users=%d", cfg->user_count);
    return 0;
}

void saslauth_shutdown(void)
{
    if (saslauth_started && saslauth_users->quorum_learner_require)
        sasl_client_done();
    if (saslauth_started)
        sasl_server_done();
    saslauth_started = false;
    saslauth_users = NULL;
}

void saslauth_session_free(struct saslauth_session *s)
{
    if (!s)
        return;
    if (s->conn)
        sasl_dispose(&s->conn);
    free(s);
}

static struct saslauth_session *session_new(char *why, size_t whylen)
{
    struct saslauth_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    int rc = sasl_server_new(saslauth_service, saslauth_host, NULL, NULL, NULL, NULL, SASL_SUCCESS_DATA,
                             &s->conn);
    if (rc == SASL_OK) {
        /* quality of protection "auth" only, as ZooKeeper's server offers */
        sasl_security_properties_t props = {.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0};
        rc = sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
    }
    if (rc != SASL_OK) {
        snprintf(why, whylen, "%s", sasl_errstring(rc, NULL, NULL));
        saslauth_session_free(s);
        return NULL;
    }
    return s;
}

int saslauth_principal_id(const char *name, const char *default_realm, bool remove_host, bool remove_realm,
                          char *user, size_t userlen)
{
    const char *at = strchr(name, '@');
    const char *realm = at ? at + 1 : default_realm;
    size_t name_len = at ? (size_t)(at - name) : strlen(name);
    const char *slash = memchr(name, '/', name_len);
    size_t short_len = slash ? (size_t)(slash - name) : name_len;
    int n = snprintf(user, userlen, "%.*s", (int)short_len, name);
    if (n < (int)userlen && slash && !remove_host)
        n += snprintf(user + n, userlen - (size_t)n, "/%.*s", (int)(name_len - short_len - 1), slash + 1);
    if (n < (int)userlen && realm[0] && !remove_realm)
        n += snprintf(user + n, userlen - (size_t)n, "@%s", realm);
    return n < (int)userlen ? 0 : -1;
}

/* The authentication id of a finished exchange. */
static int identity(struct saslauth_session *s, char *user, size_t userlen)
{
    const void *name = NULL;
    if (sasl_getprop(s->conn, SASL_AUTHUSER, &name) != SASL_OK || name == NULL || ((const char *)name)[0] == '\0')
        return -1;
    if (saslauth_users->gssapi)
        return saslauth_principal_id(name, saslauth_realm, saslauth_users->remove_host_from_principal,
                                     saslauth_users->remove_realm_from_principal, user, userlen);
    return snprintf(user, userlen, "%s", (const char *)name) < (int)userlen ? 0 : -1;
}

enum saslauth_result saslauth_step(struct saslauth_session **session, const uint8_t *token,
                                   size_t len, const char **out, unsigned *outlen, char *user,
                                   size_t userlen, char *why, size_t whylen)
{
    ZN_ASSERT(session != NULL && out != NULL && outlen != NULL && user != NULL);
    *out = NULL;
    *outlen = 0;
    if (!saslauth_started || !saslauth_users->enabled) {
        snprintf(why, whylen, "SASL is not configured (no JAAS Server section)");
        return SASLAUTH_FAILED;
    }
    if (*session && (*session)->failed) {
        snprintf(why, whylen, "an earlier token of this exchange failed");
        return SASLAUTH_FAILED;
    }
    if (*session && (*session)->finished) { /* a new exchange on the same connection */
        saslauth_session_free(*session);
        *session = NULL;
    }
    if (len > SASLAUTH_MAX_TOKEN_BYTES) {
        snprintf(why, whylen, "token of %zu bytes (at most %d)", len, SASLAUTH_MAX_TOKEN_BYTES);
        return SASLAUTH_FAILED;
    }
    if (!*session && !(*session = session_new(why, whylen)))
        return SASLAUTH_FAILED;
    struct saslauth_session *s = *session;
    if (!saslauth_users->gssapi && sasl_directive_repeated(token, len, NULL, NULL)) {
        s->finished = s->failed = true;
        snprintf(why, whylen, "a DIGEST-MD5 directive repeated, or more than %d of them", SASL_MAX_DIRECTIVES);
        return SASLAUTH_FAILED;
    }
    int rc;
    if (!s->started) {
        s->started = true;
        rc = sasl_server_start(s->conn, saslauth_mechanism, len ? (const char *)token : NULL,
                               (unsigned)len, out, outlen);
    } else {
        rc = sasl_server_step(s->conn, (const char *)token, (unsigned)len, out, outlen);
    }
    if (rc == SASL_CONTINUE)
        return SASLAUTH_CONTINUE;
    s->finished = true;
    if (rc == SASL_OK && identity(s, user, userlen) == 0)
        return SASLAUTH_DONE;
    s->failed = true;
    *out = NULL;
    *outlen = 0;
    const char *detail = sasl_errdetail(s->conn);
    snprintf(why, whylen, "%s", detail && detail[0] ? detail : sasl_errstring(rc, NULL, NULL));
    return SASLAUTH_FAILED;
}

/* ---- between members ---- */

struct saslauth_quorum {
    sasl_conn_t *conn;
    bool server;
    bool started;
};

/* The learner's name (authentication id; no authorization id). */
static int quorum_simple(void *context, int id, const char **result, unsigned *len)
{
    (void)context;
    *result = id == SASL_CB_AUTHNAME ? saslauth_users->quorum_learner.name : "";
    if (len)
        *len = (unsigned)strlen(*result);
    return id == SASL_CB_AUTHNAME || id == SASL_CB_USER ? SASL_OK : SASL_FAIL;
}

static int quorum_secret(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
    (void)conn;
    (void)id;
    struct saslauth_quorum *q = context;
    static union {
        sasl_secret_t secret;
        unsigned char bytes[sizeof(sasl_secret_t) + CONFIG_SASL_PASSWORD_BYTES];
    } holder;
    (void)q;
    const char *pw = saslauth_users->quorum_learner.password;
    holder.secret.len = strlen(pw);
    memcpy(holder.secret.data, pw, holder.secret.len + 1);
    *psecret = &holder.secret;
    return SASL_OK;
}

static const sasl_callback_t quorum_client_callbacks[] = {
    {SASL_CB_AUTHNAME, SASLAUTH_CALLBACK(quorum_simple), NULL},
    {SASL_CB_USER, SASLAUTH_CALLBACK(quorum_simple), NULL},
    {SASL_CB_PASS, SASLAUTH_CALLBACK(quorum_secret), NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

void saslauth_quorum_free(void *arg, void *session)
{
    (void)arg;
    struct saslauth_quorum *q = session;
    if (!q)
        return;
    if (q->conn)
        sasl_dispose(&q->conn);
    free(q);
}

static struct saslauth_quorum *quorum_new(bool server, char *why, size_t whylen)
{
    struct saslauth_quorum *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    q->server = server;
    int rc = server ? sasl_server_new(SASLAUTH_QUORUM_SERVICE, SASLAUTH_QUORUM_SERVER_NAME, NULL, NULL, NULL, NULL,
                                      SASL_SUCCESS_DATA, &q->conn)
                    : sasl_client_new(SASLAUTH_QUORUM_SERVICE, SASLAUTH_QUORUM_SERVER_NAME, NULL, NULL,
                                      quorum_client_callbacks, SASL_SUCCESS_DATA, &q->conn);
    if (rc == SASL_OK) {
        sasl_security_properties_t props = {.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0};
        rc = sasl_setprop(q->conn, SASL_SEC_PROPS, &props);
    }
    if (rc != SASL_OK) {
        snprintf(why, whylen, "%s", sasl_errstring(rc, NULL, NULL));
        saslauth_quorum_free(NULL, q);
        return NULL;
    }
    return q;
}

int saslauth_quorum_step(void *arg, bool server, void **session, const uint8_t *in, size_t inlen,
                         const uint8_t **out, size_t *outlen, char *who, size_t wholen, char *why, size_t whylen)
{
    (void)arg;
    *out = NULL;
    *outlen = 0;
    if (!saslauth_started) {
        snprintf(why, whylen, "SASL is not started");
        return -1;
    }
    if (inlen > SASLAUTH_MAX_TOKEN_BYTES) {
        snprintf(why, whylen, "token of %zu bytes (at most %d)", inlen, SASLAUTH_MAX_TOKEN_BYTES);
        return -1;
    }
    if (!*session && !(*session = quorum_new(server, why, whylen)))
        return -1;
    struct saslauth_quorum *q = *session;
    /* both sides: Cyrus's DIGEST-MD5 client leaks a repeated directive of a challenge as its server
     * does of a response (found by tests/fuzz/fuzz_sasl) */
    if (sasl_directive_repeated(in, inlen, NULL, server ? NULL : sasl_challenge_directives)) {
        snprintf(why, whylen, "a DIGEST-MD5 directive repeated or unknown, or more than %d of them",
                 SASL_MAX_DIRECTIVES);
        return -1;
    }
    const char *o = NULL;
    unsigned olen = 0;
    int rc;
    bool first = !q->started;
    q->started = true;
    if (server && first)
        rc = sasl_server_start(q->conn, "DIGEST-MD5", inlen ? (const char *)in : NULL, (unsigned)inlen, &o, &olen);
    else if (server)
        rc = sasl_server_step(q->conn, (const char *)in, (unsigned)inlen, &o, &olen);
    else if (first) {
        const char *mech = NULL;
        rc = sasl_client_start(q->conn, "DIGEST-MD5", NULL, &o, &olen, &mech);
    } else {
        rc = sasl_client_step(q->conn, (const char *)in, (unsigned)inlen, NULL, &o, &olen);
    }
    *out = (const uint8_t *)o;
    *outlen = olen;
    if (rc == SASL_CONTINUE)
        return 0;
    if (rc == SASL_OK) {
        const void *name = NULL;
        if (server && (sasl_getprop(q->conn, SASL_AUTHUSER, &name) != SASL_OK || !name))
            name = "?";
        if (server)
            snprintf(who, wholen, "%s", (const char *)name);
        return 1;
    }
    const char *detail = sasl_errdetail(q->conn);
    snprintf(why, whylen, "%s", detail && detail[0] ? detail : sasl_errstring(rc, NULL, NULL));
    return -1;
}
