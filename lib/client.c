/*
 * libznode's client core: the session and its connection.
 *
 * Owns the connection state machine (resolve -> connect -> handshake ->
 * connected -> lost -> next host), the framing of bytes on the socket, the
 * request queues, timers (connect timeout, dead-server detection, pings,
 * queue deadlines, reconnect delay), session events and the close sequence.
 * Operations are encoded in client_ops.c, watches kept in client_watch.c.
 *
 * Invariants:
 *  1. Requests are written in submission order and replies are matched to
 *     the head of `inflight` (ZooKeeper answers each connection in FIFO
 *     order); a reply with another xid is a protocol error.
 *  2. `unsent` is non-empty only while not CONNECTED (on connection every
 *     queued request is written at once).
 *  3. In CLIENT_ENDED both queues are empty and no new request is accepted.
 *  4. The client is freed only after every libuv handle and request it
 *     started has called back (open_handles == 0 and live_conns == 0).
 * Timing as ZooKeeper's Java client: connect timeout = session timeout /
 * hosts; once connected, a ping after a third of the negotiated timeout of
 * silence on our side, and the server is declared dead after two thirds of
 * it without a byte from it.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "assert.h"
#include "client_sasl.h"
#include "tls_stream.h"

#define CLIENT_DEFAULT_PORT "2181"

static void client_connect_next(struct zn_client *c);
static void client_connection_lost(struct zn_client *c, const char *why);
static void client_arm_timer(struct zn_client *c);
static void client_finish_close(struct zn_client *c);
static void client_end_session(struct zn_client *c, int event, int rc);
static void client_session_ready(struct zn_client *c);
static void client_sasl_begin(struct zn_client *c);

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

/* ---- small helpers ---- */

static void queue_push(struct client_queue *q, struct client_request *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->count++;
}

static struct client_request *queue_pop(struct client_queue *q)
{
    struct client_request *r = q->head;
    if (!r)
        return NULL;
    q->head = r->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    r->next = NULL;
    return r;
}

static void session_event(struct zn_client *c, int event)
{
    c->last_event = event;
    CLIENT_LOG(c, ZN_LOG_INFO, "session event=%s sid=0x%" PRIx64 " server=%s",
               zn_session_event_name(event), (uint64_t)c->session_id, c->current_server);
    if (c->options.session_cb)
        c->options.session_cb(c, event, c->options.session_arg);
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

/* ---- writing ---- */

struct client_write {
    uv_write_t req;
    size_t len;
    uint8_t bytes[];
};

static void on_write(uv_write_t *req, int status)
{
    struct client_write *w = (struct client_write *)req;
    struct client_conn *conn = req->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED && !conn->closing) {
        struct zn_client *c = conn->client;
        if (c->conn == conn)
            client_connection_lost(c, uv_strerror(status));
    }
}

/* TLS: seals the pending plaintext once the handshake is done, and collects
 * every ciphertext byte due in conn->wire.  Returns 0 or ZN_CONNECTIONLOSS
 * (logged) / ZN_NOMEMORY. */
static int conn_seal(struct zn_client *c, struct client_conn *conn)
{
    const char *why = NULL;
    if (conn->out_len > 0 && tls_stream_established(conn->tls)) {
        if (tls_stream_write(conn->tls, conn->out, conn->out_len, &why) != 0) {
            CLIENT_LOG(c, ZN_LOG_WARN, "tls: %s server=%s", why, c->current_server);
            return ZN_CONNECTIONLOSS;
        }
        conn->out_len = 0;
    }
    tls_stream_drain(conn->tls, &conn->wire);
    return conn->wire.error ? ZN_NOMEMORY : 0;
}

/* Hands the connection's pending output to one uv_write. */
static int conn_flush(struct zn_client *c)
{
    struct client_conn *conn = c->conn;
    if (!conn || conn->closing)
        return 0;
    if (conn->tls) {
        int rc = conn_seal(c, conn);
        if (rc)
            return rc;
    }
    const uint8_t *bytes = conn->tls ? conn->wire.data : conn->out;
    size_t len = conn->tls ? conn->wire.len : conn->out_len;
    if (len == 0)
        return 0;
    struct client_write *w = malloc(sizeof *w + len);
    if (!w)
        return ZN_NOMEMORY;
    memcpy(w->bytes, bytes, len);
    w->len = len;
    w->req.data = conn;
    if (conn->tls)
        conn->wire.len = 0;
    else
        conn->out_len = 0;
    uv_buf_t buf = uv_buf_init((char *)w->bytes, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_write);
    if (rc < 0) {
        free(w);
        return ZN_CONNECTIONLOSS;
    }
    return 0;
}

/* Prepare phase: the loop is about to wait for I/O, so what was written this turn goes now. */
static void on_flush_prepare(uv_prepare_t *h)
{
    struct zn_client *c = h->data;
    uv_prepare_stop(h);
    int rc = conn_flush(c);
    if (rc != 0 && c->conn)
        client_connection_lost(c, rc == ZN_NOMEMORY ? "out of memory" : "write failed");
}

/* Queues bytes (copied) on the current connection; they are written before
 * the loop next waits for I/O.  Returns 0 or ZN_NOMEMORY / ZN_CONNECTIONLOSS. */
static int conn_write(struct zn_client *c, const uint8_t *bytes, size_t len)
{
    ZN_ASSERT(c->conn && !c->conn->closing);
    struct client_conn *conn = c->conn;
    if (conn->out_len + len > conn->out_cap) {
        size_t cap = conn->out_cap ? conn->out_cap : 4096;
        while (cap < conn->out_len + len)
            cap *= 2;
        uint8_t *out = realloc(conn->out, cap);
        if (!out)
            return ZN_NOMEMORY;
        conn->out = out;
        conn->out_cap = cap;
    }
    memcpy(conn->out + conn->out_len, bytes, len);
    conn->out_len += len;
    c->last_send_ms = uv_now(c->loop);
    if (conn->out_len >= CLIENT_OUT_FLUSH_BYTES)
        return conn_flush(c);
    uv_prepare_start(&c->flush_prepare, on_flush_prepare);
    return 0;
}

/* Frames header (xid, req->type) + req and queues it on the connection: 0, or the
 * encoder's / conn_write's error. */
static int write_request(struct zn_client *c, int32_t xid, const struct zn_request *req)
{
    struct zn_request_header hdr = {xid, req->type};
    struct jute_writer w;
    jute_writer_init(&w);
    size_t f = jute_frame_begin(&w);
    jute_write_request_header(&w, &hdr);
    jute_write_request(&w, req);
    jute_frame_end(&w, f);
    int rc = w.error ? w.error : conn_write(c, w.data, w.len);
    jute_writer_free(&w);
    return rc;
}

/* Writes a request and moves it to inflight. */
static int send_request(struct zn_client *c, struct client_request *r)
{
    int rc = conn_write(c, r->frame, r->frame_len);
    free(r->frame);
    r->frame = NULL;
    queue_push(&c->inflight, r);
    return rc;
}

static void flush_unsent(struct zn_client *c)
{
    struct client_request *r;
    while (c->state == CLIENT_CONNECTED && (r = queue_pop(&c->unsent)) != NULL) {
        if (send_request(c, r) != 0) {
            client_connection_lost(c, "write failed");
            return;
        }
    }
}

/* A write failed inside a public call: declare the connection lost from the
 * timer, so no callback runs inside the call that was given it. */
static void client_defer_loss(struct zn_client *c)
{
    c->write_failed = true;
    client_arm_timer(c);
}

int client_submit(struct zn_client *c, const struct zn_request *req, zn_result_cb cb, void *arg,
                  zn_watch_cb watch_cb, void *watch_arg, char *watch_path)
{
    int rc = client_usable(c);
    if (rc)
        return rc;
    if (c->unsent.count + c->inflight.count >= c->options.max_pending)
        return ZN_APIERROR;
    struct client_request *r = calloc(1, sizeof *r);
    if (!r)
        return ZN_NOMEMORY;
    int32_t xid = c->next_xid;
    struct zn_request_header hdr = {xid, req->type};
    struct jute_writer w;
    jute_writer_init(&w);
    size_t frame = jute_frame_begin(&w);
    jute_write_request_header(&w, &hdr);
    jute_write_request(&w, req);
    jute_frame_end(&w, frame);
    if (w.error) {
        rc = w.error;
        jute_writer_free(&w);
        free(r);
        return rc;
    }
    if (w.len - 4 > (size_t)c->options.max_packet_bytes) {
        jute_writer_free(&w);
        free(r);
        return ZN_TOOBIG;
    }
    r->frame = jute_writer_take(&w, &r->frame_len);
    jute_writer_free(&w);
    c->next_xid = xid == INT32_MAX ? 1 : xid + 1;
    r->xid = xid;
    r->type = req->type;
    r->cb = cb;
    r->arg = arg;
    r->watch_cb = watch_cb;
    r->watch_arg = watch_arg;
    r->watch_path = watch_path;
    if (c->state == CLIENT_CONNECTED) {
        if (send_request(c, r) != 0)
            client_defer_loss(c); /* r fails with CONNECTIONLOSS from the loop, not from here */
    } else {
        r->deadline_ms = uv_now(c->loop) + (uint64_t)c->options.queue_timeout_ms;
        queue_push(&c->unsent, r);
        client_arm_timer(c);
    }
    return 0;
}

/* ---- connection lifecycle ---- */

/* One handle or request called back; frees the client after the last one once closing. */
static void client_release(struct zn_client *c)
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

static void on_conn_closed(uv_handle_t *h)
{
    struct client_conn *conn = h->data;
    struct zn_client *c = conn->client;
    free(conn->in);
    free(conn->out);
    tls_stream_free(conn->tls);
    jute_writer_free(&conn->wire);
    free(conn);
    c->live_conns--;
    client_release(c);
}

static void conn_close(struct zn_client *c)
{
    struct client_conn *conn = c->conn;
    if (!conn)
        return;
    c->conn = NULL;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void fail_queue(struct zn_client *c, struct client_queue *q, int rc)
{
    struct client_request *r;
    while ((r = queue_pop(q)) != NULL)
        client_fail_request(c, r, rc);
}

static void fail_auth_waits(struct zn_client *c, int rc)
{
    while (c->auth_waits) {
        struct client_auth_wait *a = c->auth_waits;
        c->auth_waits = a->next;
        if (a->cb) {
            struct zn_result res = {.rc = rc, .data_len = -1};
            a->cb(c, &res, a->arg);
        }
        free(a);
    }
}

/* The current connection failed or timed out: fail what was sent, try the next host. */
static void client_connection_lost(struct zn_client *c, const char *why)
{
    snprintf(c->last_failure, sizeof c->last_failure, "%s: %s", c->current_server, why);
    if (c->state == CLIENT_ENDED || c->finishing)
        return;
    CLIENT_LOG(c, ZN_LOG_WARN, "connection lost server=%s state=%d reason=%s", c->current_server,
               (int)c->state, why);
    bool was_connected = c->state == CLIENT_CONNECTED || c->state == CLIENT_CLOSING;
    conn_close(c);
    if (c->close_requested) {
        client_finish_close(c);
        return;
    }
    c->state = CLIENT_WAITING;
    if (was_connected) {
        session_event(c, ZN_SESSION_DISCONNECTED);
    } else {
        c->failed_attempts++;
    }
    fail_queue(c, &c->inflight, ZN_CONNECTIONLOSS);
    /* auth waits stay: every credential is re-sent after the reconnect and answered then. */
    if (c->state != CLIENT_WAITING) /* a callback closed the client */
        return;
    if (c->failed_attempts >= c->host_count) {
        /* Every host failed in a row: pause before the next round, as ZooKeeper's clients do. */
        c->failed_attempts = 0;
        c->reconnect_at_ms = uv_now(c->loop) + CLIENT_RECONNECT_DELAY_MS;
        client_arm_timer(c);
        return;
    }
    client_connect_next(c);
}

/* Room for CLIENT_READ_CHUNK_BYTES more in conn->in; false when out of memory. */
static bool reserve_input(struct client_conn *conn)
{
    if (conn->in_cap - conn->in_len < CLIENT_READ_CHUNK_BYTES) {
        size_t cap = conn->in_cap ? conn->in_cap * 2 : CLIENT_READ_CHUNK_BYTES * 2;
        while (cap - conn->in_len < CLIENT_READ_CHUNK_BYTES)
            cap *= 2;
        uint8_t *in = realloc(conn->in, cap);
        if (!in)
            return false;
        conn->in = in;
        conn->in_cap = cap;
    }
    return true;
}

/* TLS: ciphertext lands here and is fed to the stream at once in on_read
 * (libuv calls it right after on_alloc, on the loop's thread). */
static uint8_t tls_read_buffer[CLIENT_READ_CHUNK_BYTES];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client_conn *conn = h->data;
    if (conn->tls)
        *buf = uv_buf_init((char *)tls_read_buffer, sizeof tls_read_buffer);
    else if (!reserve_input(conn))
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    else
        *buf = uv_buf_init((char *)conn->in + conn->in_len, (unsigned)(conn->in_cap - conn->in_len));
}

static void handle_connect_response(struct zn_client *c, const uint8_t *body, size_t len)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, body, len, &arena);
    struct zn_connect_response resp;
    memset(&resp, 0, sizeof resp);
    if (jute_read_connect_response(&r, &resp) != 0) {
        zn_arena_free(&arena);
        client_connection_lost(c, "bad ConnectResponse");
        return;
    }
    if (resp.timeout_ms <= 0) {
        zn_arena_free(&arena);
        CLIENT_LOG(c, ZN_LOG_WARN, "session expired sid=0x%" PRIx64, (uint64_t)c->session_id);
        client_end_session(c, ZN_SESSION_EXPIRED, ZN_SESSIONEXPIRED);
        return;
    }
    c->session_id = resp.session_id;
    memset(c->passwd, 0, ZN_PASSWD_BYTES);
    if (resp.passwd.len > 0)
        memcpy(c->passwd, resp.passwd.data,
               resp.passwd.len < ZN_PASSWD_BYTES ? (size_t)resp.passwd.len : ZN_PASSWD_BYTES);
    c->negotiated_timeout_ms = resp.timeout_ms;
    c->read_only_server = resp.has_read_only && resp.read_only;
    zn_arena_free(&arena);
    if (c->sasl) {
        client_sasl_begin(c);
        return;
    }
    client_session_ready(c);
}

/* The session is established (and authenticated when SASL is configured):
 * re-registers watches and credentials, reports it, sends what is queued. */
static void client_session_ready(struct zn_client *c)
{
    c->state = CLIENT_CONNECTED;
    c->failed_attempts = 0;
    bool reconnect = c->ever_connected;
    c->ever_connected = true;

    /* Re-register watches and credentials before any queued request, so a
     * request sent now cannot miss an event its watch would have reported. */
    struct jute_writer w;
    jute_writer_init(&w);
    int packets = client_watch_encode_set_watches(c, &w);
    for (struct client_auth *a = c->auths; a; a = a->next) {
        struct zn_request_header hdr = {ZN_XID_AUTH, ZN_OP_AUTH};
        struct zn_request req;
        memset(&req, 0, sizeof req);
        req.type = ZN_OP_AUTH;
        req.scheme = a->scheme;
        req.auth.data = a->cert;
        req.auth.len = a->cert_len;
        size_t f = jute_frame_begin(&w);
        jute_write_request_header(&w, &hdr);
        jute_write_request(&w, &req);
        jute_frame_end(&w, f);
    }
    int rc = packets < 0 ? packets : w.error;
    if (rc == 0 && w.len > 0)
        rc = conn_write(c, w.data, w.len);
    jute_writer_free(&w);
    if (rc) {
        client_connection_lost(c, "cannot write SetWatches/auth");
        return;
    }
    CLIENT_LOG(c, ZN_LOG_INFO,
               "session established sid=0x%" PRIx64 " timeout_ms=%d server=%s reconnect=%d "
               "set_watches_packets=%d",
               (uint64_t)c->session_id, c->negotiated_timeout_ms, c->current_server, reconnect,
               packets);
    session_event(c, c->read_only_server ? ZN_SESSION_CONNECTED_READ_ONLY : ZN_SESSION_CONNECTED);
    if (c->state != CLIENT_CONNECTED)
        return;
    flush_unsent(c);
    client_arm_timer(c);
}

/* ---- SASL (options.sasl_*): the exchange after the ConnectResponse ---- */

/* The host of the server being tried, as the connect string names it (no port). */
static void current_host(const struct zn_client *c, char *host, size_t len)
{
    snprintf(host, len, "%s", c->current_server);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
}

/* Local failure or rejection: terminal, as in ZooKeeper's clients. */
static void client_sasl_failed(struct zn_client *c, const char *why)
{
    char host[sizeof c->current_server], what[160];
    current_host(c, host, sizeof host);
    client_sasl_describe(c->sasl, host, what, sizeof what);
    snprintf(c->last_failure, sizeof c->last_failure, "%.60s: %s: %.170s", c->current_server, what, why);
    CLIENT_LOG(c, ZN_LOG_ERROR, "sasl: %s server=%s: %s", what, c->current_server, why);
    client_sasl_end(c->sasl);
    client_end_session(c, ZN_SESSION_AUTH_FAILED, ZN_AUTHFAILED);
}

/* Acts on client_sasl_start/step's verdict: sends the token, or the session is ready. */
static void client_sasl_next(struct zn_client *c, int verdict, const uint8_t *token, unsigned token_len,
                             const char *why)
{
    if (verdict == CLIENT_SASL_FAILED) {
        client_sasl_failed(c, why);
        return;
    }
    if (verdict == CLIENT_SASL_DONE) {
        client_sasl_end(c->sasl);
        CLIENT_LOG(c, ZN_LOG_DEBUG, "sasl: authenticated server=%s", c->current_server);
        client_session_ready(c);
        return;
    }
    int32_t xid = c->next_xid;
    c->next_xid = xid == INT32_MAX ? 1 : xid + 1;
    struct zn_request req;
    memset(&req, 0, sizeof req);
    req.type = ZN_OP_SASL;
    req.auth.data = (uint8_t *)token;
    req.auth.len = (int32_t)token_len;
    if (write_request(c, xid, &req) != 0) {
        client_connection_lost(c, "cannot write the SASL packet");
        return;
    }
    c->sasl_xid = xid;
    c->sasl_last_sent = verdict == CLIENT_SASL_SEND_LAST;
}

static void client_sasl_begin(struct zn_client *c)
{
    c->state = CLIENT_AUTHENTICATING;
    char host[sizeof c->current_server];
    current_host(c, host, sizeof host);
    const uint8_t *token = NULL;
    unsigned len = 0;
    char why[256] = "";
    int verdict = client_sasl_start(c->sasl, host, &token, &len, why, sizeof why);
    client_sasl_next(c, verdict, token, len, why);
}

/* The server's answer to a SASL packet: SetSASLResponse, or an error (AUTHFAILED). */
static void handle_sasl_reply(struct zn_client *c, const struct zn_reply_header *hdr, struct jute_reader *r)
{
    if (hdr->err != 0) {
        char why[128];
        snprintf(why, sizeof why, "rejected by the server (%s)", zn_errname(hdr->err));
        client_sasl_failed(c, why);
        return;
    }
    struct zn_response resp;
    memset(&resp, 0, sizeof resp);
    if (jute_read_response(r, ZN_OP_SASL, &resp) != 0) {
        client_connection_lost(c, "bad SASL response");
        return;
    }
    if (c->sasl_last_sent) {
        client_sasl_next(c, CLIENT_SASL_DONE, NULL, 0, NULL);
        return;
    }
    const uint8_t *token = NULL;
    unsigned len = 0;
    char why[256] = "";
    int verdict = client_sasl_step(c->sasl, resp.data.data, resp.data.len > 0 ? (size_t)resp.data.len : 0,
                                   &token, &len, why, sizeof why);
    client_sasl_next(c, verdict, token, len, why);
}

static void handle_auth_reply(struct zn_client *c, const struct zn_reply_header *hdr)
{
    struct client_auth_wait *a = c->auth_waits;
    if (a) {
        c->auth_waits = a->next;
        if (a->cb) {
            struct zn_result res = {.rc = hdr->err, .data_len = -1};
            a->cb(c, &res, a->arg);
        }
        free(a);
    }
    if (hdr->err == ZN_AUTHFAILED && c->state != CLIENT_ENDED && !c->finishing)
        client_end_session(c, ZN_SESSION_AUTH_FAILED, ZN_AUTHFAILED);
}

/* Handles one frame after the handshake.  Returns false if the connection went away. */
static bool handle_frame(struct zn_client *c, const uint8_t *body, size_t len)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, body, len, &arena);
    struct zn_reply_header hdr;
    if (jute_read_reply_header(&r, &hdr) != 0) {
        zn_arena_free(&arena);
        client_connection_lost(c, "short reply header");
        return false;
    }
    if (hdr.zxid > 0 && hdr.zxid > c->last_zxid)
        c->last_zxid = hdr.zxid;
    bool ok = true;
    switch (hdr.xid) {
    case ZN_XID_NOTIFICATION: {
        struct zn_watcher_event ev;
        if (jute_read_watcher_event(&r, &ev) != 0) {
            client_connection_lost(c, "bad WatcherEvent");
            ok = false;
            break;
        }
        client_watch_deliver(c, ev.type, ev.state, client_strip_chroot(c, ev.path));
        break;
    }
    case ZN_XID_PING:
        break;
    case ZN_XID_AUTH:
        handle_auth_reply(c, &hdr);
        break;
    case ZN_XID_SETWATCHES:
        if (hdr.err)
            CLIENT_LOG(c, ZN_LOG_WARN, "SetWatches failed err=%s", zn_errname(hdr.err));
        break;
    default: {
        if (c->state == CLIENT_AUTHENTICATING) {
            if (hdr.xid == c->sasl_xid) {
                handle_sasl_reply(c, &hdr, &r);
                ok = c->state == CLIENT_AUTHENTICATING || c->state == CLIENT_CONNECTED;
            } else {
                CLIENT_LOG(c, ZN_LOG_ERROR, "reply xid=%d during SASL (expected %d)", hdr.xid, c->sasl_xid);
                client_connection_lost(c, "xid out of order");
                ok = false;
            }
            break;
        }
        struct client_request *req = c->inflight.head;
        if (!req || req->xid != hdr.xid) {
            CLIENT_LOG(c, ZN_LOG_ERROR, "reply out of order xid=%d expected=%d", hdr.xid,
                       req ? req->xid : 0);
            client_connection_lost(c, "xid out of order");
            ok = false;
            break;
        }
        queue_pop(&c->inflight);
        if (req->type == ZN_OP_CLOSESESSION) {
            free(req);
            zn_arena_free(&arena);
            client_finish_close(c);
            return false;
        }
        client_complete(c, req, &hdr, &r);
        break;
    }
    }
    zn_arena_free(&arena);
    return ok;
}

static void process_input(struct zn_client *c, struct client_conn *conn);

/* TLS: feeds ciphertext to the stream and decrypts what it can into
 * conn->in; once the handshake is done, the ConnectRequest waiting in
 * conn->out goes out sealed.  Returns false when the connection was lost. */
static bool tls_input(struct zn_client *c, struct client_conn *conn, const uint8_t *data, size_t len)
{
    const char *why = "out of memory";
    ssize_t n = tls_stream_feed(conn->tls, data, len) == 0 ? 1 : -1;
    while (n > 0) {
        if (!reserve_input(conn)) {
            n = -1;
            break;
        }
        n = tls_stream_read(conn->tls, conn->in + conn->in_len, conn->in_cap - conn->in_len, &why);
        if (n > 0)
            conn->in_len += (size_t)n;
    }
    if (n < 0) {
        CLIENT_LOG(c, ZN_LOG_WARN, "tls: %s server=%s", why, c->current_server);
        client_connection_lost(c, why);
        return false;
    }
    if (tls_stream_just_established(conn->tls))
        CLIENT_LOG(c, ZN_LOG_DEBUG, "tls: handshake done server=%s", c->current_server);
    int rc = conn_flush(c); /* handshake records, and the ConnectRequest once established */
    if (rc != 0) {
        client_connection_lost(c, "TLS write failed");
        return false;
    }
    return true;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client_conn *conn = stream->data;
    struct zn_client *c = conn->client;
    if (conn->closing || c->conn != conn)
        return;
    if (nread == 0)
        return;
    if (nread < 0) {
        client_connection_lost(c, nread == UV_EOF ? "server closed the connection"
                                                  : uv_strerror((int)nread));
        return;
    }
    c->last_recv_ms = uv_now(c->loop);
    if (conn->tls) {
        if (!tls_input(c, conn, (const uint8_t *)buf->base, (size_t)nread))
            return;
    } else {
        conn->in_len += (size_t)nread;
    }
    process_input(c, conn);
}

/* Handles every whole frame in conn->in. */
static void process_input(struct zn_client *c, struct client_conn *conn)
{
    size_t pos = 0;
    while (!conn->closing && conn->in_len - pos >= 4) {
        const uint8_t *p = conn->in + pos;
        int32_t flen = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                                 ((uint32_t)p[2] << 8) | (uint32_t)p[3]);
        /* A reply carries up to the largest data the server takes plus
         * its header and stat: without the slack a node written near the
         * limit could never be read, and reading it cost the connection. */
        if (flen < 0 || flen > c->options.max_packet_bytes + ZN_CLIENT_REPLY_SLACK_BYTES) {
            CLIENT_LOG(c, ZN_LOG_ERROR, "frame length out of range len=%d", flen);
            client_connection_lost(c, "frame too large");
            return;
        }
        if (conn->in_len - pos - 4 < (size_t)flen)
            break;
        pos += 4 + (size_t)flen;
        if (c->state == CLIENT_HANDSHAKE) {
            handle_connect_response(c, p + 4, (size_t)flen);
        } else if (!handle_frame(c, p + 4, (size_t)flen)) {
            break;
        }
    }
    /* conn may have been closed by a callback, but it is freed only in its close callback. */
    if (pos > 0 && pos <= conn->in_len) {
        memmove(conn->in, conn->in + pos, conn->in_len - pos);
        conn->in_len -= pos;
    }
    if (c->conn == conn)
        client_arm_timer(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client_conn *conn = req->data;
    struct zn_client *c = conn->client;
    if (conn->closing || c->conn != conn)
        return;
    if (status < 0) {
        client_connection_lost(c, uv_strerror(status));
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc < 0) {
        client_connection_lost(c, uv_strerror(rc));
        return;
    }
    if (c->tls_ctx) {
        /* the server's certificate must name the host as the connect string does */
        char host[sizeof c->current_server];
        current_host(c, host, sizeof host);
        conn->tls = tls_stream_new(c->tls_ctx, false, host);
        const char *why = NULL;
        if (!conn->tls || tls_stream_read(conn->tls, (uint8_t[1]){0}, 1, &why) < 0) {
            client_connection_lost(c, why ? why : "out of memory starting TLS");
            return;
        }
    }
    struct zn_connect_request creq = {
        .protocol_version = ZN_PROTOCOL_VERSION,
        .last_zxid_seen = c->last_zxid,
        .timeout_ms = c->options.session_timeout_ms,
        .session_id = c->session_id,
        .passwd = {c->passwd, ZN_PASSWD_BYTES},
        .read_only = c->options.read_only,
        .has_read_only = true,
    };
    struct jute_writer w;
    jute_writer_init(&w);
    size_t f = jute_frame_begin(&w);
    jute_write_connect_request(&w, &creq);
    jute_frame_end(&w, f);
    rc = w.error ? w.error : conn_write(c, w.data, w.len);
    jute_writer_free(&w);
    if (rc) {
        client_connection_lost(c, "cannot write ConnectRequest");
        return;
    }
    c->state = CLIENT_HANDSHAKE;
    c->last_recv_ms = uv_now(c->loop);
    CLIENT_LOG(c, ZN_LOG_DEBUG, "handshake server=%s sid=0x%" PRIx64, c->current_server,
               (uint64_t)c->session_id);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct zn_client *c = req->data;
    c->gai_active = false;
    if (c->finishing) {
        if (res)
            uv_freeaddrinfo(res);
        client_release(c);
        return;
    }
    c->open_handles--;
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        client_connection_lost(c, uv_strerror(status));
        return;
    }
    struct client_conn *conn = calloc(1, sizeof *conn);
    if (!conn) {
        uv_freeaddrinfo(res);
        client_connection_lost(c, "out of memory");
        return;
    }
    conn->client = c;
    jute_writer_init(&conn->wire);
    uv_tcp_init(c->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->connect_req.data = conn;
    c->conn = conn;
    c->live_conns++;
    c->open_handles++;
    uv_tcp_nodelay(&conn->tcp, 1);
    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        client_connection_lost(c, uv_strerror(rc));
        return;
    }
    c->state = CLIENT_CONNECTING;
}

/* Starts an attempt on the next host of the (shuffled) list. */
static void client_connect_next(struct zn_client *c)
{
    ZN_ASSERT(!c->conn && !c->gai_active);
    c->host_cursor = (c->host_cursor + 1) % c->host_count;
    struct client_host *h = &c->hosts[c->host_cursor];
    snprintf(c->current_server, sizeof c->current_server, "%s:%s", h->name, h->port);
    c->state = CLIENT_RESOLVING;
    c->attempt_started_ms = uv_now(c->loop);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    c->gai_req.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai_req, on_resolved, h->name, h->port, &hints);
    if (rc < 0) {
        /* Cannot even start a lookup: count it as a failed attempt and let the timer retry. */
        CLIENT_LOG(c, ZN_LOG_WARN, "cannot resolve server=%s err=%s", c->current_server,
                   uv_strerror(rc));
        c->state = CLIENT_WAITING;
        c->reconnect_at_ms = uv_now(c->loop) + CLIENT_RECONNECT_DELAY_MS;
    } else {
        c->gai_active = true;
        c->open_handles++;
    }
    client_arm_timer(c);
}

/* ---- timers ---- */

static int32_t connect_timeout_ms(const struct zn_client *c)
{
    int32_t t = c->options.session_timeout_ms / c->host_count;
    return t > 0 ? t : 1;
}

static int32_t read_timeout_ms(const struct zn_client *c)
{
    return c->negotiated_timeout_ms * 2 / 3;
}

static uint64_t min_deadline(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void on_timer(uv_timer_t *t);

static void client_arm_timer(struct zn_client *c)
{
    if (c->finishing)
        return;
    uint64_t next = UINT64_MAX;
    switch (c->state) {
    case CLIENT_RESOLVING:
    case CLIENT_CONNECTING:
    case CLIENT_HANDSHAKE:
    case CLIENT_AUTHENTICATING:
        next = c->attempt_started_ms + (uint64_t)connect_timeout_ms(c);
        break;
    case CLIENT_CONNECTED:
        next = min_deadline(c->last_recv_ms + (uint64_t)read_timeout_ms(c),
                            c->last_send_ms + (uint64_t)(c->negotiated_timeout_ms / 3));
        break;
    case CLIENT_WAITING:
        next = c->reconnect_at_ms;
        break;
    case CLIENT_CLOSING:
        next = c->close_deadline_ms;
        break;
    case CLIENT_ENDED:
        break;
    }
    if (c->unsent.head)
        next = min_deadline(next, c->unsent.head->deadline_ms);
    if (c->write_failed)
        next = 0;
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct zn_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->write_failed) {
        c->write_failed = false;
        if (c->state == CLIENT_CONNECTED || c->state == CLIENT_CLOSING) {
            client_connection_lost(c, "write failed");
            return;
        }
    }
    /* Queued requests that waited too long for a connection. */
    while (c->unsent.head && c->unsent.head->deadline_ms <= now && c->state != CLIENT_CONNECTED) {
        struct client_request *r = queue_pop(&c->unsent);
        client_fail_request(c, r, ZN_CONNECTIONLOSS);
        if (c->finishing)
            return;
    }
    switch (c->state) {
    case CLIENT_RESOLVING:
    case CLIENT_CONNECTING:
    case CLIENT_HANDSHAKE:
    case CLIENT_AUTHENTICATING:
        if (now >= c->attempt_started_ms + (uint64_t)connect_timeout_ms(c)) {
            if (c->gai_active) {
                /* The lookup cannot be abandoned safely; cancel it and wait for its callback. */
                uv_cancel((uv_req_t *)&c->gai_req);
                c->attempt_started_ms = now; /* re-check after another period */
                break;
            }
            client_connection_lost(c, "connect timeout");
            return;
        }
        break;
    case CLIENT_CONNECTED:
        if (now >= c->last_recv_ms + (uint64_t)read_timeout_ms(c)) {
            client_connection_lost(c, "no bytes from the server for 2/3 of the session timeout");
            return;
        }
        if (now >= c->last_send_ms + (uint64_t)(c->negotiated_timeout_ms / 3)) {
            uint8_t ping[12] = {0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, ZN_OP_PING};
            if (conn_write(c, ping, sizeof ping) != 0) {
                client_connection_lost(c, "cannot write ping");
                return;
            }
        }
        break;
    case CLIENT_WAITING:
        if (now >= c->reconnect_at_ms && !c->close_requested) {
            client_connect_next(c);
            return;
        }
        break;
    case CLIENT_CLOSING:
        if (now >= c->close_deadline_ms) {
            client_finish_close(c);
            return;
        }
        break;
    case CLIENT_ENDED:
        break;
    }
    client_arm_timer(c);
}

/* ---- ending ---- */

/* The session is over for good (expired or auth failed): report, fail everything, stop. */
static void client_end_session(struct zn_client *c, int event, int rc)
{
    conn_close(c);
    c->state = CLIENT_ENDED;
    uv_timer_stop(&c->timer);
    session_event(c, event);
    client_watch_end_all(c, event == ZN_SESSION_EXPIRED ? ZN_STATE_EXPIRED : ZN_STATE_AUTH_FAILED);
    fail_queue(c, &c->inflight, rc);
    fail_queue(c, &c->unsent, rc);
    fail_auth_waits(c, rc);
}

static void on_handle_closed(uv_handle_t *h) { client_release(h->data); }

/* Fails what is left, releases every handle; the client is freed once they all called back. */
static void client_finish_close(struct zn_client *c)
{
    if (c->finishing)
        return;
    c->finishing = true;
    bool session_was_live = c->state != CLIENT_ENDED;
    conn_close(c);
    c->state = CLIENT_ENDED;
    if (session_was_live) {
        session_event(c, ZN_SESSION_CLOSED);
        client_watch_end_all(c, ZN_STATE_CLOSED);
    }
    fail_queue(c, &c->inflight, ZN_CLOSING);
    fail_queue(c, &c->unsent, ZN_CLOSING);
    fail_auth_waits(c, ZN_CLOSING);
    if (c->gai_active)
        uv_cancel((uv_req_t *)&c->gai_req);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->sync_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->flush_prepare, on_handle_closed);
}

void zn_client_close(struct zn_client *c, zn_close_cb close_cb, void *arg)
{
    ZN_ASSERT(c && !c->close_requested);
    c->close_requested = true;
    c->close_cb = close_cb;
    c->close_arg = arg;
    if (c->state != CLIENT_CONNECTED) {
        client_finish_close(c);
        return;
    }
    fail_queue(c, &c->unsent, ZN_CLOSING);
    uint8_t frame[12];
    int32_t xid = c->next_xid;
    c->next_xid = xid == INT32_MAX ? 1 : xid + 1;
    frame[0] = 0, frame[1] = 0, frame[2] = 0, frame[3] = 8;
    frame[4] = (uint8_t)((uint32_t)xid >> 24), frame[5] = (uint8_t)((uint32_t)xid >> 16);
    frame[6] = (uint8_t)((uint32_t)xid >> 8), frame[7] = (uint8_t)xid;
    uint32_t op = (uint32_t)ZN_OP_CLOSESESSION;
    frame[8] = (uint8_t)(op >> 24), frame[9] = (uint8_t)(op >> 16);
    frame[10] = (uint8_t)(op >> 8), frame[11] = (uint8_t)op;
    struct client_request *r = calloc(1, sizeof *r);
    if (!r || conn_write(c, frame, sizeof frame) != 0) {
        free(r);
        client_finish_close(c);
        return;
    }
    r->xid = xid;
    r->type = ZN_OP_CLOSESESSION;
    queue_push(&c->inflight, r);
    c->close_xid = xid;
    c->state = CLIENT_CLOSING;
    int32_t wait = read_timeout_ms(c);
    c->close_deadline_ms =
        uv_now(c->loop) + (uint64_t)(wait < CLIENT_CLOSE_WAIT_MS ? wait : CLIENT_CLOSE_WAIT_MS);
    client_arm_timer(c);
}

/* ---- auth ---- */

int zn_add_auth(struct zn_client *c, const char *scheme, const void *cert, int32_t cert_len,
                zn_result_cb cb, void *arg)
{
    int rc = client_usable(c);
    if (rc)
        return rc;
    if (!scheme || !scheme[0] || cert_len < 0 || (cert_len > 0 && !cert) ||
        cert_len > c->options.max_data_bytes)
        return ZN_BADARGUMENTS;
    struct client_auth *a = calloc(1, sizeof *a);
    struct client_auth_wait *wait = calloc(1, sizeof *wait);
    if (!a || !wait || !(a->scheme = strdup(scheme)) ||
        !(a->cert = malloc(cert_len > 0 ? (size_t)cert_len : 1))) {
        if (a)
            free(a->scheme);
        free(a);
        free(wait);
        return ZN_NOMEMORY;
    }
    if (cert_len > 0)
        memcpy(a->cert, cert, (size_t)cert_len);
    a->cert_len = cert_len;
    /* Appended: credentials are re-sent in the order they were added. */
    struct client_auth **tail = &c->auths;
    while (*tail)
        tail = &(*tail)->next;
    *tail = a;
    wait->cb = cb;
    wait->arg = arg;
    if (c->state == CLIENT_CONNECTED) {
        struct zn_request req;
        memset(&req, 0, sizeof req);
        req.type = ZN_OP_AUTH;
        req.scheme = a->scheme;
        req.auth.data = a->cert;
        req.auth.len = a->cert_len;
        if (write_request(c, ZN_XID_AUTH, &req) != 0)
            client_defer_loss(c);
    }
    /* If not connected, the credentials go out with the handshake; the wait
     * is answered by that reply (or fails with the connection). */
    struct client_auth_wait **wtail = &c->auth_waits;
    while (*wtail)
        wtail = &(*wtail)->next;
    *wtail = wait;
    return 0;
}
