/*
 * libznode's client object: zn_client_new (options and their defaults, the
 * connect string's host list and chroot, the TLS context, the SASL
 * settings), the chroot path helpers every call uses, the accessors, and the
 * client's memory.
 *
 * The rest of the client, around client_internal.h:
 *   client_conn.c     one connection: connecting to the next host, the
 *                     ConnectRequest, buffered writes, reads and framing
 *   client_session.c  the session state machine: handshake, SASL, timers,
 *                     connection loss, expiry and the close sequence
 *   client_request.c  the request queues, submission, matching each reply
 *                     to its request, add_auth
 *   client_ops.c, client_ext.c, client_watch.c, client_sync.c  the calls,
 *                     the watch table, the blocking layer
 *
 * Invariant: the client is freed only after every libuv handle and request
 * it started has called back (open_handles == 0 and live_conns == 0):
 * client_release counts them down.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "assert.h"
#include "client_sasl.h"
#include "tls_stream.h"

#define CLIENT_DEFAULT_PORT "2181"

const struct zn_acl_entry zn_acl_open_unsafe[1] = {{ZN_PERM_ALL, "world", "anyone"}};
const struct zn_acl_entry zn_acl_read_unsafe[1] = {{ZN_PERM_READ, "world", "anyone"}};

const char *zn_session_event_name(int event)
{
    switch (event) {
    case ZN_SESSION_CONNECTED: return "CONNECTED";
    case ZN_SESSION_CONNECTED_READ_ONLY: return "CONNECTED_READ_ONLY";
    case ZN_SESSION_DISCONNECTED: return "DISCONNECTED";
    case ZN_SESSION_EXPIRED: return "EXPIRED";
    case ZN_SESSION_AUTH_FAILED: return "AUTH_FAILED";
    case ZN_SESSION_CLOSED: return "CLOSED";
    }
    return "UNKNOWN";
}

void zn_client_options_init(struct zn_client_options *options)
{
    memset(options, 0, sizeof *options);
    options->log_level = -1;
}

int32_t client_max_data(const struct zn_client *c) { return c->options.max_data_bytes; }

int client_usable(const struct zn_client *c)
{
    if (c->close_requested)
        return ZN_CLOSING;
    if (c->state == CLIENT_ENDED) {
        if (c->last_event == ZN_SESSION_AUTH_FAILED)
            return ZN_AUTHFAILED;
        if (c->last_event == ZN_SESSION_EXPIRED)
            return ZN_SESSIONEXPIRED;
        return ZN_CLOSING;
    }
    return 0;
}

int client_check_path(const struct zn_client *c, const char *path)
{
    if (!path || path[0] != '/')
        return ZN_BADARGUMENTS;
    size_t len = strlen(path);
    if (len + c->chroot_len >= ZN_CLIENT_MAX_PATH_BYTES)
        return ZN_BADARGUMENTS;
    if (len > 1 && path[len - 1] == '/')
        return ZN_BADARGUMENTS;
    if (strstr(path, "//"))
        return ZN_BADARGUMENTS;
    return 0;
}

char *client_server_path(const struct zn_client *c, const char *path)
{
    if (!c->chroot)
        return strdup(path);
    if (strcmp(path, "/") == 0)
        return strdup(c->chroot);
    size_t len = strlen(path);
    char *full = malloc(c->chroot_len + len + 1);
    if (!full)
        return NULL;
    memcpy(full, c->chroot, c->chroot_len);
    memcpy(full + c->chroot_len, path, len + 1);
    return full;
}

const char *client_strip_chroot(const struct zn_client *c, const char *server_path)
{
    if (!c->chroot || !server_path)
        return server_path;
    if (strncmp(server_path, c->chroot, c->chroot_len) != 0)
        return server_path; /* not under the chroot: leave it visible as is */
    const char *rest = server_path + c->chroot_len;
    if (rest[0] == '\0')
        return "/";
    if (rest[0] != '/')
        return server_path; /* "/ab" under chroot "/a" is not inside it */
    return rest;
}

/* ---- connect string ---- */

static int parse_connect_string(struct zn_client *c, const char *connect_string)
{
    if (!connect_string || !connect_string[0] ||
        strlen(connect_string) >= ZN_CLIENT_MAX_CONNECT_STRING_BYTES)
        return ZN_BADARGUMENTS;
    char *copy = strdup(connect_string);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = 0;
    char *slash = strchr(copy, '/');
    if (slash) {
        size_t len = strlen(slash);
        if (len > 1) {
            if (slash[len - 1] == '/' || strstr(slash, "//")) {
                rc = ZN_BADARGUMENTS;
                goto out;
            }
            c->chroot = strdup(slash);
            if (!c->chroot) {
                rc = ZN_NOMEMORY;
                goto out;
            }
            c->chroot_len = len;
        }
        *slash = '\0';
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (c->host_count == ZN_CLIENT_MAX_HOSTS) {
            rc = ZN_BADARGUMENTS;
            goto out;
        }
        struct client_host *h = &c->hosts[c->host_count];
        char *colon = strrchr(tok, ':');
        const char *port = CLIENT_DEFAULT_PORT;
        if (colon) {
            *colon = '\0';
            port = colon + 1;
            char *end;
            long p = strtol(port, &end, 10);
            if (*port == '\0' || *end != '\0' || p <= 0 || p > 65535) {
                rc = ZN_BADARGUMENTS;
                goto out;
            }
        }
        if (!*tok) {
            rc = ZN_BADARGUMENTS;
            goto out;
        }
        h->name = strdup(tok);
        if (!h->name) {
            rc = ZN_NOMEMORY;
            goto out;
        }
        snprintf(h->port, sizeof h->port, "%s", port);
        c->host_count++;
    }
    if (c->host_count == 0)
        rc = ZN_BADARGUMENTS;
out:
    free(copy);
    return rc;
}

static void shuffle_hosts(struct zn_client *c)
{
    for (int i = c->host_count - 1; i > 0; i--) {
        int j = (int)(rand_r(&c->random_state) % (unsigned)(i + 1));
        struct client_host t = c->hosts[i];
        c->hosts[i] = c->hosts[j];
        c->hosts[j] = t;
    }
}

static void free_client_memory(struct zn_client *c)
{
    for (int i = 0; i < c->host_count; i++)
        free(c->hosts[i].name);
    free(c->chroot);
    SSL_CTX_free(c->tls_ctx);
    client_sasl_free(c->sasl);
    client_watch_table_free(&c->watches);
    while (c->auths) {
        struct client_auth *a = c->auths;
        c->auths = a->next;
        free(a->scheme);
        free(a->cert);
        free(a);
    }
    free(c);
}

/* options.tls_*: the context every connection's TLS stream is made on.
 * Returns 0 or ZN_BADARGUMENTS (logged: the file and OpenSSL's reason). */
static int client_tls_context(struct zn_client *c, const struct zn_client_options *o)
{
    if (!o->tls_ca_file)
        return (o->tls_cert_file || o->tls_key_file) ? ZN_BADARGUMENTS : 0;
    char reason[256];
    const char *what = NULL, *file = NULL;
    c->tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!c->tls_ctx)
        return ZN_NOMEMORY;
    SSL_CTX_set_min_proto_version(c->tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->tls_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_file(c->tls_ctx, o->tls_ca_file) != 1)
        what = "no CA certificate in", file = o->tls_ca_file;
    else if (o->tls_cert_file && SSL_CTX_use_certificate_chain_file(c->tls_ctx, o->tls_cert_file) != 1)
        what = "no certificate in", file = o->tls_cert_file;
    else if (o->tls_cert_file &&
             SSL_CTX_use_PrivateKey_file(c->tls_ctx, o->tls_key_file ? o->tls_key_file : o->tls_cert_file,
                                         SSL_FILETYPE_PEM) != 1)
        what = "no (unencrypted) private key in", file = o->tls_key_file ? o->tls_key_file : o->tls_cert_file;
    else if (o->tls_cert_file && SSL_CTX_check_private_key(c->tls_ctx) != 1)
        what = "the key does not match the certificate", file = o->tls_cert_file;
    else if (!o->tls_cert_file && o->tls_key_file)
        what = "a key without its certificate:", file = o->tls_key_file;
    if (!what)
        return 0;
    CLIENT_LOG(c, ZN_LOG_ERROR, "tls: %s %s: %s", what, file,
               tls_openssl_reason(reason, sizeof reason, "unusable"));
    return ZN_BADARGUMENTS;
}

int zn_client_new(struct uv_loop_s *loop, const char *connect_string,
                  const struct zn_client_options *options, struct zn_client **out)
{
    ZN_ASSERT(loop && out);
    struct zn_client_options defaults;
    if (!options) {
        zn_client_options_init(&defaults);
        options = &defaults;
    }
    if (options->session_timeout_ms < 0 || options->queue_timeout_ms < 0 ||
        options->sync_timeout_ms < 0 || options->max_packet_bytes < 0 ||
        options->max_data_bytes < 0 || options->max_pending < 0 || options->log_level > ZN_LOG_OFF)
        return ZN_BADARGUMENTS;
    struct zn_client *c = calloc(1, sizeof *c);
    if (!c)
        return ZN_NOMEMORY;
    c->loop = loop;
    c->options = *options;
    struct zn_client_options *o = &c->options;
    if (!o->session_timeout_ms)
        o->session_timeout_ms = ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS;
    if (!o->queue_timeout_ms)
        o->queue_timeout_ms = o->session_timeout_ms;
    if (!o->sync_timeout_ms)
        o->sync_timeout_ms = o->session_timeout_ms;
    if (!o->max_packet_bytes)
        o->max_packet_bytes = ZN_CLIENT_DEFAULT_MAX_PACKET_BYTES;
    if (!o->max_data_bytes)
        o->max_data_bytes = ZN_CLIENT_DEFAULT_MAX_DATA_BYTES;
    if (!o->max_pending)
        o->max_pending = ZN_CLIENT_DEFAULT_MAX_PENDING;
    c->log_level = o->log_level;
    c->random_state = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)c;
    int rc = parse_connect_string(c, connect_string);
    if (rc == 0)
        rc = client_tls_context(c, o);
    if (rc == 0)
        rc = client_sasl_new(o->sasl_mechanism, o->sasl_user, o->sasl_password, o->sasl_service,
                             o->sasl_host, &c->sasl);
    o->tls_ca_file = o->tls_cert_file = o->tls_key_file = NULL; /* read; not kept */
    o->sasl_mechanism = o->sasl_user = o->sasl_password = o->sasl_service = o->sasl_host = NULL; /* copied */
    if (rc) {
        free_client_memory(c);
        return rc;
    }
    if (!o->keep_host_order)
        shuffle_hosts(c);
    if (o->session_id) {
        c->session_id = o->session_id;
        memcpy(c->passwd, o->session_passwd, ZN_PASSWD_BYTES);
    }
    c->next_xid = 1;
    c->close_xid = 0;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->sync_timer);
    uv_prepare_init(loop, &c->flush_prepare);
    c->timer.data = c;
    c->sync_timer.data = c;
    c->flush_prepare.data = c;
    c->open_handles = 3;
    c->host_cursor = -1;
    client_connect_next(c);
    *out = c;
    return 0;
}

/* One handle or request called back; frees the client after the last one once closing. */
void client_release(struct zn_client *c)
{
    ZN_ASSERT(c->open_handles > 0);
    c->open_handles--;
    if (c->finishing && c->open_handles == 0) {
        ZN_ASSERT(c->live_conns == 0 && !c->gai_active);
        zn_close_cb cb = c->close_cb;
        void *arg = c->close_arg;
        free_client_memory(c);
        if (cb)
            cb(arg);
    }
}

/* ---- accessors ---- */

int64_t zn_client_session_id(const struct zn_client *c) { return c->session_id; }
void zn_client_session_passwd(const struct zn_client *c, uint8_t passwd[ZN_PASSWD_BYTES])
{
    memcpy(passwd, c->passwd, ZN_PASSWD_BYTES);
}
int32_t zn_client_negotiated_timeout_ms(const struct zn_client *c) { return c->negotiated_timeout_ms; }
bool zn_client_is_connected(const struct zn_client *c)
{
    return c->state == CLIENT_CONNECTED || c->state == CLIENT_CLOSING;
}
int zn_client_state(const struct zn_client *c) { return c->last_event; }
int64_t zn_client_last_zxid(const struct zn_client *c) { return c->last_zxid; }
int32_t zn_client_outstanding(const struct zn_client *c) { return c->unsent.count + c->inflight.count; }
const char *zn_client_current_server(const struct zn_client *c) { return c->current_server; }
const char *zn_client_last_failure(const struct zn_client *c) { return c->last_failure; }
