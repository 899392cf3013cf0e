/*
 * transport_frame: the framing of the member mesh (see transport.h, "Wire
 * format").  Sending: transport_send checks a frame against the link's state
 * and the queue bound, queues it on the link's outgoing conn, and
 * tp_conn_flush hands everything queued (up to a batch) to one uv_write,
 * sealed first on a TLS connection.  Receiving: tp_in_consume cuts the bytes
 * read (plain, or opened by transport_secure.c) into frames, checks each
 * length against what the connection may carry at that point (a hello, a
 * SASL token, a frame), and delivers each one: to the hello check, to the
 * SASL exchange, or to on_recv.
 *
 * Invariants: 3 of transport.c (queued_bytes counts the queued and in-flight
 * frames but the hello); at most one write is in flight per conn
 * (conn->writing), so frames leave in the order they were queued; a frame
 * whose write failed is counted in drops, never resent.
 *
 * Called by: the daemon (transport_send); transport_connect.c and
 * transport_secure.c (tp_frame_new, tp_conn_enqueue, tp_conn_flush); the
 * read callbacks of both sides and transport_secure.c (tp_in_consume).
 */
#include "transport_internal.h"

#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "tls_stream.h"
#include <znode/errors.h>

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
    tp_put_be32(f->bytes, len);
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
    struct transport_link *link = tp_link_find(t, to_id);
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

/* ---- receiving ---- */

static void in_deliver(struct transport_conn *conn, const uint8_t *p, uint32_t len)
{
    if (conn->kind == CONN_OUTGOING) {
        tp_out_auth_reply(conn, p, len);
        return;
    }
    if (!conn->identified) {
        tp_in_hello(conn, p);
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
            tp_reject(conn, reason);
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
            uint32_t len = tp_get_be32(conn->prefix);
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
