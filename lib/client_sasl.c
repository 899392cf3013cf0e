/*
 * libznode's SASL client (Cyrus SASL's client API): DIGEST-MD5 with a user
 * and password, GSSAPI with the Kerberos credentials of the environment, as
 * ZooKeeper's own clients speak them (ZooKeeperSaslClient, kazoo):
 *   DIGEST-MD5  service "zookeeper", server name "zk-sasl-md5" (the digest-uri
 *               every ZooKeeper server expects), authorization id = user;
 *   GSSAPI      the server principal SERVICE/HOST (service "zookeeper" unless
 *               options.sasl_service, host the connect string's unless
 *               options.sasl_host).
 * Quality of protection "auth" only: ZooKeeper's servers offer nothing else.
 * The exchange itself (opcode 102 packets, when it runs) is client_session.c's.
 */
#include "client_sasl.h"

#include <pthread.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl_directives.h"
#include "znode/errors.h"

#define CLIENT_SASL_DIGEST_SERVICE "zookeeper"
#define CLIENT_SASL_DIGEST_HOST "zk-sasl-md5"
#define CLIENT_SASL_DEFAULT_SERVICE "zookeeper"

struct client_sasl {
    bool gssapi;
    char *user;
    char *password;
    char *service; /* GSSAPI */
    char *host;    /* GSSAPI; NULL: the connect string's host */
    sasl_secret_t *secret;
    sasl_callback_t callbacks[5];
    sasl_conn_t *conn; /* the exchange in progress, or NULL */
};

static pthread_once_t client_sasl_once = PTHREAD_ONCE_INIT;
static int client_sasl_init_rc = SASL_FAIL;

/* Cyrus's own log lines would go to syslog: the caller reports failures with sasl_errdetail. */
static int quiet_log(void *context, int level, const char *message)
{
    (void)context;
    (void)level;
    (void)message;
    return SASL_OK;
}

/* Cyrus takes every callback as int (*)(void); void (*)(void) in between says the cast is meant. */
#define CLIENT_SASL_CALLBACK(fn) ((int (*)(void))(void (*)(void))(fn))

static void client_sasl_global_init(void)
{
    static const sasl_callback_t global[] = {
        {SASL_CB_LOG, CLIENT_SASL_CALLBACK(quiet_log), NULL},
        {SASL_CB_LIST_END, NULL, NULL},
    };
    client_sasl_init_rc = sasl_client_init(global);
}

static int get_simple(void *context, int id, const char **result, unsigned *len)
{
    struct client_sasl *s = context;
    if (id != SASL_CB_AUTHNAME && id != SASL_CB_USER)
        return SASL_BADPARAM;
    *result = s->user; /* the authorization id is the user, as ZooKeeper's Java client sends it */
    if (len)
        *len = (unsigned)strlen(s->user);
    return SASL_OK;
}

static int get_secret(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
    (void)conn;
    struct client_sasl *s = context;
    if (id != SASL_CB_PASS)
        return SASL_BADPARAM;
    *psecret = s->secret;
    return SASL_OK;
}

/* The server's realm (ZooKeeper's is zk-sasl-md5): the first it offers. */
static int get_realm(void *context, int id, const char **availrealms, const char **result)
{
    (void)context;
    if (id != SASL_CB_GETREALM)
        return SASL_BADPARAM;
    *result = availrealms && availrealms[0] ? availrealms[0] : "";
    return SASL_OK;
}

void client_sasl_free(struct client_sasl *s)
{
    if (!s)
        return;
    client_sasl_end(s);
    free(s->user);
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    free(s->password);
    if (s->secret)
        memset(s->secret, 0, sizeof *s->secret + s->secret->len);
    free(s->secret);
    free(s->service);
    free(s->host);
    free(s);
}

int client_sasl_new(const char *mechanism, const char *user, const char *password, const char *service,
                    const char *host, struct client_sasl **out)
{
    *out = NULL;
    if (!mechanism)
        return (user || password || service || host) ? ZN_BADARGUMENTS : 0;
    bool gssapi = strcmp(mechanism, "GSSAPI") == 0;
    if (!gssapi && strcmp(mechanism, "DIGEST-MD5") != 0)
        return ZN_BADARGUMENTS;
    /* DIGEST-MD5 needs both; GSSAPI takes its identity from Kerberos, not from these */
    if (gssapi ? (user || password) : (!user || !user[0] || !password || service || host))
        return ZN_BADARGUMENTS;
    struct client_sasl *s = calloc(1, sizeof *s);
    if (!s)
        return ZN_NOMEMORY;
    s->gssapi = gssapi;
    bool ok = true;
    if (gssapi) {
        ok = (s->service = strdup(service ? service : CLIENT_SASL_DEFAULT_SERVICE)) != NULL;
        if (ok && host)
            ok = (s->host = strdup(host)) != NULL;
    } else {
        size_t plen = strlen(password);
        ok = (s->user = strdup(user)) != NULL && (s->password = strdup(password)) != NULL &&
             (s->secret = malloc(sizeof *s->secret + plen + 1)) != NULL;
        if (ok) {
            s->secret->len = plen;
            memcpy(s->secret->data, password, plen + 1);
        }
    }
    if (!ok) {
        client_sasl_free(s);
        return ZN_NOMEMORY;
    }
    int i = 0;
    if (!gssapi) {
        s->callbacks[i++] = (sasl_callback_t){SASL_CB_AUTHNAME, CLIENT_SASL_CALLBACK(get_simple), s};
        s->callbacks[i++] = (sasl_callback_t){SASL_CB_USER, CLIENT_SASL_CALLBACK(get_simple), s};
        s->callbacks[i++] = (sasl_callback_t){SASL_CB_PASS, CLIENT_SASL_CALLBACK(get_secret), s};
        s->callbacks[i++] = (sasl_callback_t){SASL_CB_GETREALM, CLIENT_SASL_CALLBACK(get_realm), s};
    }
    s->callbacks[i] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    *out = s;
    return 0;
}

const char *client_sasl_mechanism(const struct client_sasl *s) { return s->gssapi ? "GSSAPI" : "DIGEST-MD5"; }

void client_sasl_describe(const struct client_sasl *s, const char *host, char *buf, size_t len)
{
    if (s->gssapi)
        snprintf(buf, len, "SASL GSSAPI to %s/%s", s->service, s->host ? s->host : host);
    else
        snprintf(buf, len, "SASL DIGEST-MD5 as %s", s->user);
}

void client_sasl_end(struct client_sasl *s)
{
    if (s && s->conn)
        sasl_dispose(&s->conn);
}

/* Cyrus's reason, with the connection's detail when it has one. */
static void reason(struct client_sasl *s, int rc, char *why, size_t whylen)
{
    const char *detail = s->conn ? sasl_errdetail(s->conn) : NULL;
    snprintf(why, whylen, "%s", detail && detail[0] ? detail : sasl_errstring(rc, NULL, NULL));
}

static int result_of(struct client_sasl *s, int rc, const char *out, unsigned outlen, const uint8_t **token,
                     unsigned *token_len, char *why, size_t whylen)
{
    if (rc != SASL_OK && rc != SASL_CONTINUE) {
        reason(s, rc, why, whylen);
        if (rc == SASL_INTERACT)
            snprintf(why, whylen, "the mechanism asks for something not given (user, password, realm)");
        return CLIENT_SASL_FAILED;
    }
    *token = (const uint8_t *)out;
    *token_len = out ? outlen : 0;
    if (rc == SASL_CONTINUE)
        return CLIENT_SASL_SEND;
    return out && outlen > 0 ? CLIENT_SASL_SEND_LAST : CLIENT_SASL_DONE;
}

int client_sasl_start(struct client_sasl *s, const char *host, const uint8_t **token, unsigned *token_len,
                      char *why, size_t whylen)
{
    client_sasl_end(s);
    pthread_once(&client_sasl_once, client_sasl_global_init);
    if (client_sasl_init_rc != SASL_OK) {
        snprintf(why, whylen, "cannot start Cyrus SASL: %s", sasl_errstring(client_sasl_init_rc, NULL, NULL));
        return CLIENT_SASL_FAILED;
    }
    const char *service = s->gssapi ? s->service : CLIENT_SASL_DIGEST_SERVICE;
    const char *server = s->gssapi ? (s->host ? s->host : host) : CLIENT_SASL_DIGEST_HOST;
    int rc = sasl_client_new(service, server, NULL, NULL, s->callbacks, 0, &s->conn);
    if (rc == SASL_OK) {
        /* authentication only (qop auth), as ZooKeeper's servers offer */
        sasl_security_properties_t props = {.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0};
        rc = sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
    }
    if (rc != SASL_OK) {
        reason(s, rc, why, whylen);
        return CLIENT_SASL_FAILED;
    }
    const char *out = NULL, *chosen = NULL;
    unsigned outlen = 0;
    rc = sasl_client_start(s->conn, client_sasl_mechanism(s), NULL, &out, &outlen, &chosen);
    if (rc == SASL_NOMECH) {
        snprintf(why, whylen, "Cyrus SASL has no %s plugin (Debian: install %s)", client_sasl_mechanism(s),
                 s->gssapi ? "libsasl2-modules-gssapi-mit" : "libsasl2-modules");
        return CLIENT_SASL_FAILED;
    }
    int r = result_of(s, rc, out, outlen, token, token_len, why, whylen);
    /* a mechanism without an initial response (DIGEST-MD5) opens with an empty token, as
     * ZooKeeper's clients do: the server answers it with its challenge */
    return r == CLIENT_SASL_DONE ? CLIENT_SASL_SEND : r;
}

int client_sasl_step(struct client_sasl *s, const uint8_t *in, size_t in_len, const uint8_t **token,
                     unsigned *token_len, char *why, size_t whylen)
{
    if (!s->conn || in_len > UINT32_MAX) {
        snprintf(why, whylen, "no exchange in progress");
        return CLIENT_SASL_FAILED;
    }
    if (!s->gssapi && sasl_directive_repeated(in, in_len, "realm", sasl_challenge_directives)) {
        snprintf(why, whylen, "the server's DIGEST-MD5 token repeats a directive, or has more than %d",
                 SASL_MAX_DIRECTIVES);
        return CLIENT_SASL_FAILED;
    }
    const char *out = NULL;
    unsigned outlen = 0;
    int rc = sasl_client_step(s->conn, (const char *)in, (unsigned)in_len, NULL, &out, &outlen);
    return result_of(s, rc, out, outlen, token, token_len, why, whylen);
}
