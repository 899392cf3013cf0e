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

static const struct config_sasl_user *find_user(const char *name, size_t len)
{
    if (!saslauth_users)
        return NULL;
    for (int i = 0; i < saslauth_users->user_count; i++) {
        const struct config_sasl_user *u = &saslauth_users->users[i];
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
    const struct config_sasl_user *u = find_user(user, ulen);
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
        *result = saslauth_mechanism;
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
    ZN_ASSERT(cfg != NULL && cfg->enabled);
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
    if (rc != SASL_OK) {
        ZN_ERROR("sasl: cannot start Cyrus SASL: %s", sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    const char **mechs = sasl_global_listmech();
    bool found = false;
    for (int i = 0; mechs && mechs[i]; i++)
        found |= strcmp(mechs[i], saslauth_mechanism) == 0;
    if (!found) {
        ZN_ERROR("sasl: Cyrus SASL has no %s plugin (Debian: install %s)", saslauth_mechanism,
                 cfg->gssapi ? "libsasl2-modules-gssapi-mit" : "libsasl2-modules");
        sasl_server_done();
        return -1;
    }
    saslauth_started = true;
    if (cfg->gssapi)
        ZN_INFO("sasl: GSSAPI for clients, principal=%s keytab=%s", cfg->principal, cfg->keytab);
    else
        ZN_INFO("sasl: DIGEST-MD5 for clients, users=%d", cfg->user_count);
    return 0;
}

void saslauth_shutdown(void)
{
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
    if (!saslauth_started) {
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
    if (!saslauth_users->gssapi && sasl_directive_repeated(token, len, NULL)) {
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
