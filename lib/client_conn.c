/*
 * libznode's connection: one TCP (or TLS) connection to one server at a time.
 *
 * Owns connecting to the next host of the (shuffled) list (resolve, connect,
 * the ConnectRequest), the output buffer written once per loop turn (or at
 * once past CLIENT_OUT_FLUSH_BYTES), TLS sealing and opening, and the framing
 * of what the server sends: each whole frame goes to the session
 * (client_handle_connect_response during the handshake, client_handle_frame
 * after).  Called by the session (client_session.c) and the request queues
 * (client_request.c); losses are reported to client_connection_lost.
 *
 * Invariants:
 *  1. c->conn is the only connection whose callbacks act: a callback of a
 *     connection that is closing or was replaced returns at once.
 *  2. A connection is freed only in its close callback (on_conn_closed),
 *     which releases it from the client (live_conns, open_handles).
 *  3. A frame longer than max_packet_bytes plus ZN_CLIENT_REPLY_SLACK_BYTES
 *     loses the connection before any of it is buffered past that.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "tls_stream.h"

/* The host of the server being tried, as the connect string names it (no port). */
void client_current_host(const struct zn_client *c, char *host, size_t len)
{
    snprintf(host, len, "%s", c->current_server);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
}

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
int client_conn_write(struct zn_client *c, const uint8_t *bytes, size_t len)
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

/* ---- closing ---- */

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

void client_conn_close(struct zn_client *c)
{
    struct client_conn *conn = c->conn;
    if (!conn)
        return;
    c->conn = NULL;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

/* ---- reading and framing ---- */

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
            client_handle_connect_response(c, p + 4, (size_t)flen);
        } else if (!client_handle_frame(c, p + 4, (size_t)flen)) {
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

/* ---- connecting ---- */

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
        client_current_host(c, host, sizeof host);
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
    rc = w.error ? w.error : client_conn_write(c, w.data, w.len);
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
void client_connect_next(struct zn_client *c)
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
