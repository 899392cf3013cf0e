/*
 * transport: the TCP mesh between ensemble members (see transport.h for the
 * contract and the wire format; transport_secure.c runs TLS and SASL on a
 * connection, transport_internal.h holds the objects both files share).
 * This file owns every socket and timer of the mesh, the per-peer send
 * queues, the frame parser, the hello check and the reconnect loop.  It
 * knows nothing of what the frames mean.
 *
 * Objects:
 *   struct transport        the member: listener, sweep timer, links, all conns
 *   struct transport_link   one configured peer: its reconnect timer, its
 *                           outgoing conn (send side) and its identified
 *                           incoming conn (receive side), its counters
 *   struct transport_conn   one TCP connection, either direction
 *
 * Invariants (checked by transport_check_link in assertions):
 *   1. link->out, when set, is an outgoing conn whose link is this link; at
 *      most one outgoing conn per link exists (a new one is created only
 *      after the old one's close callback ran).
 *   2. link->in, when set, is an identified incoming conn of this link.
 *   3. conn->queued_bytes is the sum over conn's queued and in-flight frames
 *      (hello excluded) of 4 + payload length.
 *   4. t->handles_open counts the uv handles initialised and not yet closed;
 *      t is freed when it reaches 0 after stopping, never earlier.
 *
 * Outgoing link states: IDLE (reconnect timer armed with the backoff) ->
 * CONNECTING (connect timer armed) -> UP (hello queued, sends accepted) ->
 * closing -> IDLE.  Every way down goes through tp_conn_close; the conn's close
 * callback reports "down" and arms the reconnect, so callbacks never run
 * from inside transport_send.
 */
#include "transport_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "tls_stream.h"
#include <znode/errors.h>

static void link_connect(struct transport_link *link);
static void kick_stalled_links(struct transport *t, const struct transport_link *except);

/* ---- small helpers ---- */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void addr_format(const struct sockaddr_in *sa, char out[TRANSPORT_ADDR_TEXT_MAX])
{
    char ip[INET_ADDRSTRLEN] = "?";
    uv_ip4_name(sa, ip, sizeof ip);
    snprintf(out, TRANSPORT_ADDR_TEXT_MAX, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* Resolves an IPv4 literal, or else a name through the system resolver
 * (blocking: called only from transport_start, see transport.h). */
static int resolve_ipv4(const char *host, int port, struct sockaddr_in *out)
{
    if (uv_ip4_addr(host, port, out) == 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return ZN_CONFIG;
    memcpy(out, res->ai_addr, sizeof *out);
    out->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static struct transport_link *link_find(const struct transport *t, uint32_t id)
{
    for (size_t i = 0; i < t->n_links; i++)
        if (t->links[i].cfg.id == id && !t->links[i].removed)
            return &t->links[i];
    return NULL;
}

static void transport_check_link(const struct transport_link *link)
{
    if (link->out) {
        ZN_ASSERT(link->out->kind == CONN_OUTGOING);
        ZN_ASSERT(link->out->link == link);
    }
    if (link->in) {
        ZN_ASSERT(link->in->kind == CONN_INCOMING);
        ZN_ASSERT(link->in->identified && link->in->link == link);
    }
    ZN_ASSERT(link->state != LINK_UP || (link->out && link->out->up));
}

static void frame_list_free(struct transport_frame *f, struct transport_link *link)
{
    while (f) {
        struct transport_frame *next = f->next;
        if (link && !f->hello)
            link->stats.drops++;
        free(f);
        f = next;
    }
}

/* Options of every identified connection: no Nagle delay (Zab messages are
 * small and latency-bound), keepalive, and the user timeout (see
 * ZN_TRANSPORT_USER_TIMEOUT_MS).  Failures only cost detection speed, so
 * they are logged, not fatal. */
static void conn_set_options(struct transport_conn *conn)
{
    uv_tcp_nodelay(&conn->tcp, 1);
    uv_tcp_keepalive(&conn->tcp, 1, ZN_TRANSPORT_KEEPALIVE_DELAY_S);
    uv_os_fd_t fd;
    unsigned timeout_ms = ZN_TRANSPORT_USER_TIMEOUT_MS;
    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms) != 0)
        ZN_WARN("transport: cannot set TCP_USER_TIMEOUT addr=%s", conn->addr);
}

/* ---- teardown ---- */

static void transport_maybe_free(struct transport *t)
{
    if (!t->stopping || t->handles_open > 0)
        return;
    ZN_ASSERT(t->conns == NULL);
    void (*on_freed)(void *) = t->on_freed;
    void *arg = t->on_freed_arg;
    free(t->links);
    free(t);
    if (on_freed)
        on_freed(arg);
}

static void handle_closed(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

/* Close callback of a connection accepted only to be dropped (no memory). */
static void dropped_closed(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    free(handle);
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

static void link_timer_closed(uv_handle_t *handle)
{
    struct transport_link *link = handle->data;
    struct transport *t = link->t;
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

static void link_timer_fired(uv_timer_t *timer);

static void link_arm(struct transport_link *link, uint64_t delay_ms)
{
    int rc = uv_timer_start(&link->timer, link_timer_fired, delay_ms, 0);
    ZN_ASSERT(rc == 0);
}

static void conn_closed(uv_handle_t *handle)
{
    struct transport_conn *conn = handle->data;
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;

    ZN_ASSERT(conn->writing == NULL); /* write callbacks run before the close callback */
    frame_list_free(conn->queue_head, conn->kind == CONN_OUTGOING ? link : NULL);
    free(conn->payload);
    free(conn->read_buf);
    tls_stream_free(conn->tls);
    if (conn->auth_session)
        t->auth.session_free(t->auth.arg, conn->auth_session);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        t->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;

    if (conn->kind == CONN_INCOMING) {
        if (!conn->identified)
            t->pending_incoming--;
        else if (link->in == conn)
            link->in = NULL;
    } else {
        ZN_ASSERT(link->out == conn);
        link->out = NULL;
        if (!t->stopping && link->removed) {
            link->state = LINK_IDLE;
            if (conn->up && t->on_peer)
                t->on_peer(t->ctx, link->cfg.id, false);
        } else if (!t->stopping) {
            bool was_up = conn->up;
            if (was_up && uv_now(t->loop) - link->up_since_ms >= ZN_TRANSPORT_BACKOFF_MAX_MS)
                link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
            link->state = LINK_IDLE;
            link_arm(link, link->backoff_ms);
            link->backoff_ms *= 2;
            if (link->backoff_ms > ZN_TRANSPORT_BACKOFF_MAX_MS)
                link->backoff_ms = ZN_TRANSPORT_BACKOFF_MAX_MS;
            if (was_up && t->on_peer)
                t->on_peer(t->ctx, link->cfg.id, false);
        }
    }
    free(conn);
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

/* Closes conn once; every failure of a connection ends here.  reason is a
 * short key=value-friendly word or phrase for the log. */
void tp_conn_close(struct transport_conn *conn, int level, const char *reason)
{
    if (conn->closing)
        return;
    conn->closing = true;
    struct transport *t = conn->t;
    if (!t->stopping) {
        if (conn->kind == CONN_OUTGOING) {
            if (conn->up)
                ZN_LOG(level, "transport: link down peer=%u addr=%s reason=\"%s\"",
                       conn->link->cfg.id, conn->addr, reason);
        } else if (conn->identified) {
            ZN_LOG(level, "transport: incoming connection closed peer=%u addr=%s reason=\"%s\"",
                   conn->link->cfg.id, conn->addr, reason);
        } else {
            ZN_LOG(level, "transport: incoming connection rejected addr=%s reason=\"%s\"",
                   conn->addr, reason);
        }
    }
    if (conn->kind == CONN_OUTGOING && conn->link->state != LINK_IDLE) {
        conn->link->state = LINK_IDLE;
        if (!t->stopping) /* when stopping, the timer is closing already */
            uv_timer_stop(&conn->link->timer);
    }
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
}

static void reject(struct transport_conn *conn, const char *reason)
{
    conn->t->stats.rejected++;
    tp_conn_close(conn, ZN_LOG_WARN, reason);
}

static struct transport_conn *conn_new(struct transport *t, enum transport_conn_kind kind)
{
    struct transport_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->read_cap = kind == CONN_INCOMING || t->has_tls ? TRANSPORT_READ_CHUNK_BYTES : 64;
    conn->read_buf = malloc(conn->read_cap);
    if (!conn->read_buf) {
        free(conn);
        return NULL;
    }
    int rc = uv_tcp_init(t->loop, &conn->tcp);
    ZN_ASSERT(rc == 0); /* uv_tcp_init without flags cannot fail */
    t->handles_open++;
    conn->t = t;
    conn->kind = kind;
    conn->tcp.data = conn;
    conn->opened_ms = uv_now(t->loop);
    conn->next = t->conns;
    if (t->conns)
        t->conns->prev = conn;
    t->conns = conn;
    return conn;
}

/* ---- sending ---- */


static void write_done(uv_write_t *req, int status)
{
    struct transport_write *w = req->data;
    struct transport_conn *conn = w->conn;
    struct transport_link *link = conn->link;
    ZN_ASSERT(conn->writing == w);
    conn->writing = NULL;
    for (unsigned i = 0; i < w->n_frames; i++) {
        struct transport_frame *f = w->frames[i];
        if (!f->hello) {
            ZN_ASSERT(conn->queued_bytes >= TRANSPORT_PREFIX_BYTES + f->len);
            conn->queued_bytes -= TRANSPORT_PREFIX_BYTES + f->len;
            if (status == 0) {
                link->stats.frames_sent++;
                link->stats.bytes_sent += f->len;
            } else {
                link->stats.drops++;
            }
        }
        free(f);
    }
    jute_writer_free(&w->wire);
    free(w);
    if (status < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror(status));
        return;
    }
    tp_conn_flush(conn);
}

/* Hands every queued frame (up to a batch) to one uv_write, if none is in
 * flight: frames queued while a write is in flight go out together next. */
void tp_conn_flush(struct transport_conn *conn)
{
    if (conn->writing || conn->closing || !conn->queue_head)
        return;
    struct transport_write *w = malloc(sizeof *w);
    if (!w) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return;
    }
    uv_buf_t bufs[ZN_TRANSPORT_BATCH_MAX_FRAMES];
    unsigned n_bufs;
    w->conn = conn;
    w->n_frames = 0;
    w->req.data = w;
    jute_writer_init(&w->wire);
    while (conn->queue_head && w->n_frames < ZN_TRANSPORT_BATCH_MAX_FRAMES) {
        struct transport_frame *f = conn->queue_head;
        conn->queue_head = f->next;
        f->next = NULL;
        bufs[w->n_frames] = uv_buf_init((char *)f->bytes, TRANSPORT_PREFIX_BYTES + f->len);
        w->frames[w->n_frames++] = f;
    }
    if (!conn->queue_head)
        conn->queue_tail = NULL;
    n_bufs = w->n_frames;
    const char *why = NULL;
    int rc = 0;
    if (conn->tls) {
        /* sealed in order, then handed over with any handshake bytes still due */
        for (unsigned i = 0; i < w->n_frames && rc == 0; i++)
            if (tls_stream_write(conn->tls, w->frames[i]->bytes, TRANSPORT_PREFIX_BYTES + w->frames[i]->len,
                                 &why) != 0)
                rc = UV_EPROTO;
        if (rc == 0) {
            tls_stream_drain(conn->tls, &w->wire);
            rc = w->wire.error ? UV_ENOMEM : 0;
        }
        bufs[0] = uv_buf_init((char *)w->wire.data, (unsigned)w->wire.len);
        n_bufs = 1;
    }
    if (rc == 0)
        rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, bufs, n_bufs, write_done);
    if (rc < 0) {
        /* The callback will not run: put the frames back so the close
         * callback counts and frees them with the rest of the queue. */
        for (unsigned i = w->n_frames; i-- > 0;) {
            w->frames[i]->next = conn->queue_head;
            conn->queue_head = w->frames[i];
            if (!conn->queue_tail)
                conn->queue_tail = w->frames[i];
        }
        jute_writer_free(&w->wire);
        free(w);
        tp_conn_close(conn, ZN_LOG_INFO, why ? why : uv_strerror(rc));
        return;
    }
    conn->writing = w;
}

struct transport_frame *tp_frame_new(const uint8_t *payload, uint32_t len, bool hello)
{
    struct transport_frame *f = malloc(sizeof *f + TRANSPORT_PREFIX_BYTES + (size_t)len);
    if (!f)
        return NULL;
    f->next = NULL;
    f->len = len;
    f->hello = hello;
    put_be32(f->bytes, len);
    memcpy(f->bytes + TRANSPORT_PREFIX_BYTES, payload, len);
    return f;
}

void tp_conn_enqueue(struct transport_conn *conn, struct transport_frame *f)
{
    if (conn->queue_tail)
        conn->queue_tail->next = f;
    else
        conn->queue_head = f;
    conn->queue_tail = f;
    if (!f->hello)
        conn->queued_bytes += TRANSPORT_PREFIX_BYTES + f->len;
}

int transport_send(struct transport *t, uint32_t to_id, const uint8_t *frame, size_t len)
{
    ZN_ASSERT(t != NULL && !t->stopping);
    ZN_ASSERT(frame != NULL || len == 0);
    struct transport_link *link = link_find(t, to_id);
    if (!link || len == 0)
        return ZN_BADARGUMENTS;
    if (len > ZN_TRANSPORT_FRAME_MAX_BYTES)
        return ZN_TOOBIG;
    struct transport_conn *conn = link->out;
    if (link->state != LINK_UP || !conn || conn->closing) {
        link->stats.drops++;
        return ZN_CONNECTIONLOSS;
    }
    size_t need = TRANSPORT_PREFIX_BYTES + len;
    if (conn->queued_bytes > 0 && conn->queued_bytes + need > ZN_TRANSPORT_QUEUE_MAX_BYTES) {
        link->stats.drops++;
        return ZN_THROTTLEDOP;
    }
    struct transport_frame *f = tp_frame_new(frame, (uint32_t)len, false);
    if (!f) {
        link->stats.drops++;
        return ZN_NOMEMORY;
    }
    tp_conn_enqueue(conn, f);
    tp_conn_flush(conn);
    return 0;
}

/* ---- outgoing connections ---- */

static void out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct transport_conn *conn = handle->data;
    *buf = uv_buf_init((char *)conn->read_buf, (unsigned)conn->read_cap);
}


static void out_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct transport_conn *conn = stream->data;
    if (nread == 0 || conn->closing)
        return;
    if (nread == UV_EOF && conn->handshaking) {
        tp_tls_failed(conn, "the peer closed the connection during the TLS handshake");
    } else if (nread == UV_EOF && conn->authenticating) {
        tp_out_auth_failed(conn, "the peer closed the connection during the SASL exchange");
    } else if (nread == UV_EOF) {
        tp_conn_close(conn, ZN_LOG_INFO, "closed by peer");
    } else if (nread < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror((int)nread));
    } else if (conn->tls) {
        if (tls_stream_feed(conn->tls, (const uint8_t *)buf->base, (size_t)nread) != 0)
            tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        else
            tp_out_tls_pump(conn);
    } else if (conn->authenticating) {
        tp_in_consume(conn, (const uint8_t *)buf->base, (size_t)nread);
    } else {
        conn->t->stats.protocol_errors++;
        tp_conn_close(conn, ZN_LOG_WARN, "peer sent bytes on a send-only connection");
    }
}

static void out_connected(uv_connect_t *req, int status)
{
    struct transport_conn *conn = req->data;
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    if (conn->closing) /* timed out, or stopping: the close callback handles it */
        return;
    if (status < 0) {
        link->stats.connect_failures++;
        tp_conn_close(conn, link->failure_logged ? ZN_LOG_DEBUG : ZN_LOG_INFO, uv_strerror(status));
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"%s\" retry_ms=%llu",
                    link->cfg.id, link->addr_text, uv_strerror(status),
                    (unsigned long long)link->backoff_ms);
        link->failure_logged = true;
        return;
    }
    uv_timer_stop(&link->timer);
    conn_set_options(conn);
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, out_alloc, out_read);
    if (rc < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror(rc));
        return;
    }
    if (!t->has_tls || !t->tls.connect_tls) {
        tp_out_link_up(conn);
        return;
    }
    if (!tp_tls_begin(conn))
        return;
    conn->handshaking = true;
    link_arm(link, t->tls.handshake_timeout_ms); /* still CONNECTING: the timer abandons it */
    tp_out_tls_pump(conn); /* the ClientHello */
}

/* The connection is usable (TCP connected; TLS done and accepted): the
 * hello goes first, then the link is reported up. */
void tp_out_link_up(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    uv_timer_stop(&link->timer);
    bool learner = t->has_auth && t->auth.learner;
    uint8_t hello[ZN_TRANSPORT_HELLO_BYTES];
    put_be32(hello, learner ? ZN_TRANSPORT_MAGIC_AUTH : ZN_TRANSPORT_MAGIC);
    put_be32(hello + 4, ZN_TRANSPORT_VERSION);
    put_be32(hello + 8, t->my_id);
    struct transport_frame *f = tp_frame_new(hello, sizeof hello, true);
    if (!f) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return;
    }
    tp_conn_enqueue(conn, f);
    if (learner) {
        conn->authenticating = true;
        link_arm(link, ZN_TRANSPORT_HELLO_TIMEOUT_MS); /* still CONNECTING: the timer abandons it */
        tp_out_auth_step(conn, NULL, 0);
        return;
    }
    tp_out_authenticated(conn);
}

/* The outgoing connection is usable (and authenticated, when SASL is on):
 * the link is up. */
void tp_out_authenticated(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    uv_timer_stop(&link->timer);
    conn->up = true;
    link->state = LINK_UP;
    link->up_since_ms = uv_now(t->loop);
    link->failure_logged = false;
    link->tls_failure_logged = false;
    link->stats.connects++;
    if (link->stats.connects > 1)
        link->stats.reconnects++;
    ZN_INFO("transport: link up peer=%u addr=%s connects=%llu%s%s", link->cfg.id, link->addr_text,
            (unsigned long long)link->stats.connects, conn->tls ? " tls=yes" : "",
            t->has_auth && t->auth.learner ? " sasl=yes" : "");
    tp_conn_flush(conn);
    transport_check_link(link);
    kick_stalled_links(t, link);
    if (!conn->closing && t->on_peer)
        t->on_peer(t->ctx, link->cfg.id, true);
}

/* A link came up: the network between us and that peer works, perhaps
 * again after a partition.  Our other outgoing connections that a partition
 * left with data unacknowledged for ZN_TRANSPORT_STALLED_MS sit in TCP's
 * retransmission backoff (200 ms, 400, 800, ... between tries), so after
 * the heal their frames (a vote, an answer) arrive a second or more late:
 * a healed member of 5 waited 1.2 s for the answers it needed to rejoin.
 * Those are closed and reconnected now; a healthy connection has its data
 * acknowledged within milliseconds and is left alone. */
static void kick_stalled_links(struct transport *t, const struct transport_link *except)
{
    for (size_t i = 0; i < t->n_links; i++) {
        struct transport_link *link = &t->links[i];
        if (link == except || link->removed || link->state != LINK_UP || !link->out || link->out->closing)
            continue;
        uv_os_fd_t fd;
        struct tcp_info info;
        socklen_t len = sizeof info;
        if (uv_fileno((uv_handle_t *)&link->out->tcp, &fd) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
            continue;
        if (info.tcpi_unacked > 0 && info.tcpi_last_ack_recv >= ZN_TRANSPORT_STALLED_MS)
            tp_conn_close(link->out, ZN_LOG_INFO, "stalled while another link came up: reconnecting");
    }
}

/* Starts one connection attempt; any failure lands in conn_closed, which
 * arms the next attempt. */
static void link_connect(struct transport_link *link)
{
    struct transport *t = link->t;
    ZN_ASSERT(link->out == NULL && !t->stopping);
    struct transport_conn *conn = conn_new(t, CONN_OUTGOING);
    if (!conn) {
        ZN_ERROR("transport: connect failed peer=%u addr=%s reason=\"out of memory\"",
                 link->cfg.id, link->addr_text);
        link_arm(link, ZN_TRANSPORT_BACKOFF_MAX_MS);
        return;
    }
    conn->link = link;
    link->out = conn;
    memcpy(conn->addr, link->addr_text, sizeof conn->addr);
    link->state = LINK_CONNECTING;
    conn->connect_req.data = conn;
    struct sockaddr_in local = t->my_addr;
    local.sin_port = 0;
    int rc = uv_tcp_bind(&conn->tcp, (const struct sockaddr *)&local, 0);
    if (rc == 0)
        rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (const struct sockaddr *)&link->addr,
                            out_connected);
    if (rc < 0) {
        link->stats.connect_failures++;
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"%s\"", link->cfg.id,
                    link->addr_text, uv_strerror(rc));
        link->failure_logged = true;
        tp_conn_close(conn, ZN_LOG_DEBUG, uv_strerror(rc));
        return;
    }
    link_arm(link, ZN_TRANSPORT_CONNECT_TIMEOUT_MS);
}

static void link_timer_fired(uv_timer_t *timer)
{
    struct transport_link *link = timer->data;
    if (link->t->stopping || link->removed)
        return;
    if (link->state == LINK_CONNECTING && link->out && link->out->authenticating) {
        tp_out_auth_failed(link->out, "SASL exchange not done in time");
    } else if (link->state == LINK_CONNECTING && link->out && link->out->handshaking) {
        char why[96];
        snprintf(why, sizeof why, "TLS handshake not done within %u ms", link->t->tls.handshake_timeout_ms);
        tp_tls_failed(link->out, why);
    } else if (link->state == LINK_CONNECTING) {
        link->stats.connect_failures++;
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"timeout\" timeout_ms=%u",
                    link->cfg.id, link->addr_text, ZN_TRANSPORT_CONNECT_TIMEOUT_MS);
        link->failure_logged = true;
        tp_conn_close(link->out, ZN_LOG_DEBUG, "connect timeout");
    } else if (link->state == LINK_IDLE && link->out == NULL) {
        link_connect(link);
    }
}

/* ---- incoming connections ---- */

static void in_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct transport_conn *conn = handle->data;
    *buf = uv_buf_init((char *)conn->read_buf, TRANSPORT_READ_CHUNK_BYTES);
}

static void in_hello(struct transport_conn *conn, const uint8_t *p)
{
    struct transport *t = conn->t;
    uint32_t magic = get_be32(p), version = get_be32(p + 4), id = get_be32(p + 8);
    char reason[160];
    if (magic != ZN_TRANSPORT_MAGIC && magic != ZN_TRANSPORT_MAGIC_AUTH) {
        reject(conn, "bad hello magic");
        return;
    }
    if (version != ZN_TRANSPORT_VERSION) {
        snprintf(reason, sizeof reason, "protocol version %u, expected %u", version,
                 ZN_TRANSPORT_VERSION);
        reject(conn, reason);
        return;
    }
    struct transport_link *link = link_find(t, id);
    if (!link) {
        snprintf(reason, sizeof reason, "unknown member id %u", id);
        reject(conn, reason);
        return;
    }
    struct sockaddr_in from;
    int from_len = sizeof from;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&from, &from_len) != 0 ||
        from.sin_family != AF_INET || from.sin_addr.s_addr != link->addr.sin_addr.s_addr) {
        snprintf(reason, sizeof reason, "member id %u connects from the wrong address, expected %s",
                 id, link->addr_text);
        reject(conn, reason);
        return;
    }
    bool sasl = magic == ZN_TRANSPORT_MAGIC_AUTH;
    if (sasl && !(t->has_auth && t->auth.server_enabled)) {
        snprintf(reason, sizeof reason, "member id %u authenticates with SASL, but quorum.auth.enableSasl is "
                 "false on this member", id);
        reject(conn, reason);
        return;
    }
    if (!sasl && t->has_auth && t->auth.server_require) {
        snprintf(reason, sizeof reason, "member id %u did not authenticate with SASL "
                 "(quorum.auth.serverRequireSasl=true)", id);
        reject(conn, reason);
        return;
    }
    conn->auth_running = sasl;
    conn->identified = true;
    conn->link = link;
    t->pending_incoming--;
    t->stats.accepted++;
    struct transport_conn *older = link->in;
    link->in = conn;
    if (older)
        tp_conn_close(older, ZN_LOG_INFO, "replaced by a newer connection");
    conn_set_options(conn);
    ZN_INFO("transport: incoming connection accepted peer=%u addr=%s", id, conn->addr);
    if (link->state == LINK_IDLE && link->out == NULL && !link->removed) {
        /* The peer is up again (it restarted): reconnect now rather than at
         * the end of a backoff that grew while it was down (up to
         * ZN_TRANSPORT_BACKOFF_MAX_MS), which delayed every answer it waits
         * for to rejoin the ensemble. */
        link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
        link_connect(link);
    }
    transport_check_link(link);
}

static void in_deliver(struct transport_conn *conn, const uint8_t *p, uint32_t len)
{
    if (conn->kind == CONN_OUTGOING) {
        tp_out_auth_reply(conn, p, len);
        return;
    }
    if (!conn->identified) {
        in_hello(conn, p);
        return;
    }
    if (conn->auth_running) {
        tp_in_auth_token(conn, p + 1, len - 1);
        return;
    }
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    link->stats.frames_received++;
    link->stats.bytes_received += len;
    t->on_recv(t->ctx, link->cfg.id, p, len);
}

/* Checks a frame length just read; closes the conn and returns false if it
 * is not acceptable. */
static bool in_length_ok(struct transport_conn *conn, uint32_t len)
{
    char reason[96];
    if (conn->kind == CONN_OUTGOING || conn->auth_running) {
        if (len == 0 || len > ZN_TRANSPORT_AUTH_MAX_BYTES) {
            conn->t->stats.protocol_errors++;
            snprintf(reason, sizeof reason, "SASL frame length %u outside 1..%u", len, ZN_TRANSPORT_AUTH_MAX_BYTES);
            tp_conn_close(conn, ZN_LOG_WARN, reason);
            return false;
        }
        return true;
    }
    if (!conn->identified) {
        if (len != ZN_TRANSPORT_HELLO_BYTES) {
            snprintf(reason, sizeof reason, "first frame of %u bytes is not a hello", len);
            reject(conn, reason);
            return false;
        }
        return true;
    }
    if (len == 0 || len > ZN_TRANSPORT_FRAME_MAX_BYTES) {
        conn->t->stats.protocol_errors++;
        snprintf(reason, sizeof reason, "frame length %u outside 1..%u", len,
                 ZN_TRANSPORT_FRAME_MAX_BYTES);
        tp_conn_close(conn, ZN_LOG_WARN, reason);
        return false;
    }
    return true;
}

/* Makes room for `need` payload bytes, growing by doubling so a peer that
 * announces a large frame and sends little costs little. */
static bool in_reserve(struct transport_conn *conn, uint32_t need)
{
    if (need <= conn->payload_cap)
        return true;
    uint64_t cap = conn->payload_cap ? conn->payload_cap : TRANSPORT_READ_CHUNK_BYTES;
    while (cap < need)
        cap *= 2;
    if (cap > conn->payload_len)
        cap = conn->payload_len;
    uint8_t *p = realloc(conn->payload, cap);
    if (!p)
        return false;
    conn->payload = p;
    conn->payload_cap = (uint32_t)cap;
    return true;
}

static void in_frame_done(struct transport_conn *conn)
{
    conn->prefix_have = 0;
    conn->payload_have = 0;
    conn->payload_len = 0;
    if (conn->payload_cap > TRANSPORT_PAYLOAD_KEEP_BYTES) {
        free(conn->payload);
        conn->payload = NULL;
        conn->payload_cap = 0;
    }
}

void tp_in_consume(struct transport_conn *conn, const uint8_t *p, size_t n)
{
    struct transport *t = conn->t;
    while (n > 0 && !conn->closing && !t->stopping) {
        if (conn->prefix_have < TRANSPORT_PREFIX_BYTES) {
            size_t take = TRANSPORT_PREFIX_BYTES - conn->prefix_have;
            if (take > n)
                take = n;
            memcpy(conn->prefix + conn->prefix_have, p, take);
            conn->prefix_have += (unsigned)take;
            p += take;
            n -= take;
            if (conn->prefix_have < TRANSPORT_PREFIX_BYTES)
                return;
            uint32_t len = get_be32(conn->prefix);
            if (!in_length_ok(conn, len))
                return;
            conn->payload_len = len;
            conn->payload_have = 0;
            if (n >= len) { /* whole frame in this chunk: no copy */
                const uint8_t *frame = p;
                p += len;
                n -= len;
                in_frame_done(conn);
                in_deliver(conn, frame, len);
            }
            continue;
        }
        size_t take = conn->payload_len - conn->payload_have;
        if (take > n)
            take = n;
        if (!in_reserve(conn, conn->payload_have + (uint32_t)take)) {
            tp_conn_close(conn, ZN_LOG_ERROR, "out of memory for a frame");
            return;
        }
        memcpy(conn->payload + conn->payload_have, p, take);
        conn->payload_have += (uint32_t)take;
        p += take;
        n -= take;
        if (conn->payload_have == conn->payload_len) {
            uint8_t *frame = conn->payload;
            uint32_t len = conn->payload_len;
            /* Deliver before resetting: in_frame_done may free the buffer. */
            in_deliver(conn, frame, len);
            in_frame_done(conn);
        }
    }
}

static void in_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct transport_conn *conn = stream->data;
    if (nread == 0 || conn->closing)
        return;
    if (nread == UV_EOF && conn->tls && !tls_stream_established(conn->tls)) {
        tp_tls_failed(conn, "the member closed the connection during the TLS handshake");
        return;
    }
    if (nread == UV_EOF) {
        tp_conn_close(conn, conn->identified ? ZN_LOG_INFO : ZN_LOG_WARN,
                   conn->identified ? "closed by peer" : "closed before hello");
        return;
    }
    if (nread < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror((int)nread));
        return;
    }
    if (conn->detect) {
        conn->detect = false;
        if ((uint8_t)buf->base[0] == TRANSPORT_TLS_RECORD_HANDSHAKE && !tp_tls_begin(conn))
            return;
    }
    if (!conn->tls) {
        tp_in_consume(conn, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (tls_stream_feed(conn->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return;
    }
    tp_in_tls_pump(conn);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct transport *t = server->data;
    if (status < 0) {
        ZN_WARN("transport: accept failed addr=%s reason=\"%s\"", t->my_addr_text,
                uv_strerror(status));
        return;
    }
    struct transport_conn *conn = conn_new(t, CONN_INCOMING);
    if (!conn) {
        /* Accept and drop, or the listener would report it again at once. */
        ZN_ERROR("transport: incoming connection dropped reason=\"out of memory\"");
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp && uv_tcp_init(t->loop, tmp) == 0) {
            tmp->data = t;
            t->handles_open++;
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, dropped_closed);
        } else {
            free(tmp);
        }
        return;
    }
    t->pending_incoming++;
    snprintf(conn->addr, sizeof conn->addr, "?");
    int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc < 0) {
        reject(conn, uv_strerror(rc));
        return;
    }
    int from_len = sizeof conn->from;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->from, &from_len) == 0 &&
        conn->from.sin_family == AF_INET)
        addr_format(&conn->from, conn->addr);
    if (t->pending_incoming > ZN_TRANSPORT_PENDING_MAX) {
        reject(conn, "too many connections waiting for their hello");
        return;
    }
    if (t->has_tls && t->tls.accept_tls) {
        if (t->tls.accept_plain)
            conn->detect = true;
        else if (!tp_tls_begin(conn))
            return;
    }
    rc = uv_read_start((uv_stream_t *)&conn->tcp, in_alloc, in_read);
    if (rc < 0)
        reject(conn, uv_strerror(rc));
}

/* Closes accepted connections that sent no hello in time, so a stray client
 * cannot hold a slot forever. */
static void sweep_fired(uv_timer_t *timer)
{
    struct transport *t = timer->data;
    uint64_t now = uv_now(t->loop);
    for (struct transport_conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (c->kind == CONN_INCOMING && c->auth_running && !c->closing &&
            now - c->opened_ms >= 2 * ZN_TRANSPORT_HELLO_TIMEOUT_MS) {
            reject(c, "SASL exchange not done in time");
            continue;
        }
        if (c->kind != CONN_INCOMING || c->identified || c->closing)
            continue;
        if (c->tls && !tls_stream_established(c->tls) && now - c->opened_ms >= t->tls.handshake_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "TLS handshake not done within %u ms", t->tls.handshake_timeout_ms);
            tp_tls_failed(c, why);
        } else if (now - c->opened_ms >= ZN_TRANSPORT_HELLO_TIMEOUT_MS) {
            reject(c, "no hello in time");
        }
    }
}

/* ---- start / stop ---- */

static int transport_validate(uint32_t my_id, const char *my_host, int listen_port,
                              const struct transport_peer *peers, size_t n_peers)
{
    if (my_id == 0 || !my_host || listen_port < 0 || listen_port > 65535)
        return ZN_CONFIG;
    if (n_peers + 1 > ZN_TRANSPORT_PEERS_MAX || (n_peers > 0 && !peers))
        return ZN_CONFIG;
    for (size_t i = 0; i < n_peers; i++) {
        if (peers[i].id == 0 || peers[i].id == my_id || peers[i].port < 1 ||
            peers[i].port > 65535 || strnlen(peers[i].host, ZN_TRANSPORT_HOST_MAX) == ZN_TRANSPORT_HOST_MAX)
            return ZN_CONFIG;
        for (size_t j = 0; j < i; j++)
            if (peers[j].id == peers[i].id)
                return ZN_CONFIG;
    }
    return 0;
}

static void transport_close_all(struct transport *t)
{
    t->stopping = true;
    if (t->listener_open && !uv_is_closing((uv_handle_t *)&t->listener))
        uv_close((uv_handle_t *)&t->listener, handle_closed);
    if (t->sweep_open && !uv_is_closing((uv_handle_t *)&t->sweep))
        uv_close((uv_handle_t *)&t->sweep, handle_closed);
    for (size_t i = 0; i < t->n_links; i++) {
        uv_handle_t *h = (uv_handle_t *)&t->links[i].timer;
        if (t->links[i].t && !uv_is_closing(h))
            uv_close(h, link_timer_closed);
    }
    for (struct transport_conn *c = t->conns; c; c = c->next)
        tp_conn_close(c, ZN_LOG_DEBUG, "stopping");
}

int transport_start(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                    int listen_port, const struct transport_peer *peers, size_t n_peers,
                    transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx)
{
    return transport_start_tls(out, loop, my_id, my_host, listen_port, peers, n_peers, on_recv, on_peer,
                               ctx, NULL, NULL);
}

int transport_start_tls(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                        int listen_port, const struct transport_peer *peers, size_t n_peers,
                        transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx,
                        const struct transport_tls *tls, const struct transport_auth *auth)
{
    ZN_ASSERT(out != NULL && loop != NULL && on_recv != NULL);
    *out = NULL;
    int rc = transport_validate(my_id, my_host, listen_port, peers, n_peers);
    if (rc < 0) {
        ZN_ERROR("transport: bad configuration my_id=%u peers=%zu", my_id, n_peers);
        return rc;
    }
    struct transport *t = calloc(1, sizeof *t);
    if (!t)
        return ZN_NOMEMORY;
    /* Room for every peer the mesh may ever hold: connections and timers
     * point into this array, so it never moves (transport_add_peer). */
    t->links = calloc(ZN_TRANSPORT_PEERS_MAX, sizeof *t->links);
    if (!t->links) {
        free(t);
        return ZN_NOMEMORY;
    }
    t->loop = loop;
    t->my_id = my_id;
    t->on_recv = on_recv;
    t->on_peer = on_peer;
    t->ctx = ctx;
    if (tls) {
        ZN_ASSERT(tls->context != NULL && (tls->accept_tls || tls->accept_plain));
        t->has_tls = true;
        t->tls = *tls;
    }
    if (auth) {
        ZN_ASSERT(auth->step != NULL && auth->session_free != NULL);
        t->has_auth = true;
        t->auth = *auth;
    }
    if (resolve_ipv4(my_host, listen_port, &t->my_addr) < 0) {
        ZN_ERROR("transport: cannot resolve my address host=%s", my_host);
        free(t->links);
        free(t);
        return ZN_CONFIG;
    }
    for (size_t i = 0; i < n_peers; i++) {
        struct transport_link *link = &t->links[i];
        link->cfg = peers[i];
        if (resolve_ipv4(peers[i].host, peers[i].port, &link->addr) < 0) {
            ZN_ERROR("transport: cannot resolve peer address peer=%u host=%s", peers[i].id,
                     peers[i].host);
            free(t->links);
            free(t);
            return ZN_CONFIG;
        }
        addr_format(&link->addr, link->addr_text);
        link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
        link->stats.id = peers[i].id;
    }
    t->n_links = n_peers;

    uv_tcp_init(loop, &t->listener);
    t->listener.data = t;
    t->listener_open = true;
    t->handles_open++;
    rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&t->my_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, (int)ZN_TRANSPORT_PEERS_MAX, on_connection);
    if (rc < 0) {
        addr_format(&t->my_addr, t->my_addr_text);
        ZN_ERROR("transport: cannot listen addr=%s reason=\"%s\"", t->my_addr_text, uv_strerror(rc));
        transport_close_all(t);
        return ZN_IO;
    }
    struct sockaddr_in bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &bound_len);
    t->my_addr.sin_port = bound.sin_port;
    t->listen_port = ntohs(bound.sin_port);
    addr_format(&t->my_addr, t->my_addr_text);

    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->sweep_open = true;
    t->handles_open++;
    uv_timer_start(&t->sweep, sweep_fired, TRANSPORT_SWEEP_INTERVAL_MS, TRANSPORT_SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)&t->sweep); /* never the reason the loop stays alive */

    for (size_t i = 0; i < n_peers; i++) {
        struct transport_link *link = &t->links[i];
        link->t = t;
        uv_timer_init(loop, &link->timer);
        link->timer.data = link;
        t->handles_open++;
    }
    ZN_INFO("transport: listening my_id=%u addr=%s peers=%zu tls=%s", my_id, t->my_addr_text, n_peers,
            !t->has_tls ? "no" : t->tls.accept_plain ? (t->tls.connect_tls ? "connect, accept also plain"
                                                                           : "accept also, connect plain")
                                                     : "yes");
    for (size_t i = 0; i < n_peers; i++)
        link_connect(&t->links[i]);
    *out = t;
    return 0;
}

void transport_stop_notify(struct transport *t, void (*on_freed)(void *arg), void *arg)
{
    ZN_ASSERT(t != NULL && !t->stopping);
    t->on_freed = on_freed;
    t->on_freed_arg = arg;
    ZN_INFO("transport: stopping my_id=%u addr=%s", t->my_id, t->my_addr_text);
    transport_close_all(t);
}

void transport_stop(struct transport *t) { transport_stop_notify(t, NULL, NULL); }

int transport_reset_peer(struct transport *t, uint32_t peer_id, const char *reason)
{
    ZN_ASSERT(t != NULL && !t->stopping && reason != NULL);
    struct transport_link *link = link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    char why[160];
    snprintf(why, sizeof why, "reset: %s", reason);
    link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
    if (link->out)
        tp_conn_close(link->out, ZN_LOG_INFO, why);
    else
        link_arm(link, ZN_TRANSPORT_BACKOFF_MIN_MS); /* cut a long backoff short */
    if (link->in)
        tp_conn_close(link->in, ZN_LOG_INFO, why);
    return 0;
}

int transport_add_peer(struct transport *t, const struct transport_peer *peer)
{
    ZN_ASSERT(t != NULL && peer != NULL && !t->stopping);
    if (peer->id == 0 || peer->id == t->my_id || peer->port < 1 || peer->port > 65535 ||
        strnlen(peer->host, ZN_TRANSPORT_HOST_MAX) == ZN_TRANSPORT_HOST_MAX)
        return ZN_CONFIG;
    struct sockaddr_in addr;
    if (resolve_ipv4(peer->host, peer->port, &addr) < 0) {
        ZN_ERROR("transport: cannot resolve peer address peer=%u host=%s", peer->id, peer->host);
        return ZN_CONFIG;
    }
    struct transport_link *link = link_find(t, peer->id);
    if (link) {
        if (link->addr.sin_addr.s_addr == addr.sin_addr.s_addr && link->addr.sin_port == addr.sin_port)
            return 0;
        return ZN_CONFIG; /* an id keeps its address: remove it first */
    }
    for (size_t i = 0; i < t->n_links && !link; i++)
        if (t->links[i].removed && t->links[i].cfg.id == peer->id)
            link = &t->links[i]; /* back again: its slot, timer and counters */
    bool fresh = link == NULL;
    if (fresh) {
        if (t->n_links + 1 >= ZN_TRANSPORT_PEERS_MAX)
            return ZN_CONFIG;
        link = &t->links[t->n_links];
        memset(link, 0, sizeof *link);
    }
    if (link->out || link->in)
        return ZN_THROTTLEDOP; /* its old connections are still closing: try again later */
    link->cfg = *peer;
    link->addr = addr;
    addr_format(&link->addr, link->addr_text);
    link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
    link->removed = false;
    link->failure_logged = false;
    link->tls_failure_logged = false;
    link->state = LINK_IDLE;
    link->stats.id = peer->id;
    if (fresh) {
        link->t = t;
        uv_timer_init(t->loop, &link->timer);
        link->timer.data = link;
        t->handles_open++;
        t->n_links++;
    }
    ZN_INFO("transport: peer added peer=%u addr=%s", peer->id, link->addr_text);
    link_connect(link);
    return 0;
}

int transport_remove_peer(struct transport *t, uint32_t peer_id)
{
    ZN_ASSERT(t != NULL && !t->stopping);
    struct transport_link *link = link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    link->removed = true;
    uv_timer_stop(&link->timer);
    ZN_INFO("transport: peer removed peer=%u addr=%s", peer_id, link->addr_text);
    if (link->out)
        tp_conn_close(link->out, ZN_LOG_INFO, "peer removed from the ensemble");
    link->state = LINK_IDLE;
    if (link->in)
        tp_conn_close(link->in, ZN_LOG_INFO, "peer removed from the ensemble");
    return 0;
}

int transport_listen_port(const struct transport *t) { return t->listen_port; }

size_t transport_peer_count(const struct transport *t) { return t->n_links; }

static void link_stats(const struct transport_link *link, struct transport_peer_stats *out)
{
    *out = link->stats;
    out->connected = link->state == LINK_UP;
    out->incoming = link->in != NULL;
    out->queued_bytes = link->out ? link->out->queued_bytes : 0;
}

int transport_peer_stats(const struct transport *t, size_t index, struct transport_peer_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    if (index >= t->n_links)
        return ZN_BADARGUMENTS;
    link_stats(&t->links[index], out);
    return 0;
}

int transport_peer_stats_by_id(const struct transport *t, uint32_t peer_id,
                               struct transport_peer_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    const struct transport_link *link = link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    link_stats(link, out);
    return 0;
}

void transport_stats(const struct transport *t, struct transport_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    *out = t->stats;
}
