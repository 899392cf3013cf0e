/*
 * libznode's requests: the two queues (`unsent`, submitted while not
 * connected; `inflight`, written and waiting for their reply), submission
 * (encoding, limits, the queue deadline), the dispatch of each frame after
 * the handshake (notifications, pings, auth, SetWatches, SASL and replies),
 * and add_auth's credentials and their waits.
 *
 * Invariants:
 *  1. Requests are written in submission order and replies are matched to
 *     the head of `inflight` (ZooKeeper answers each connection in FIFO
 *     order); a reply with another xid is a protocol error.
 *  2. Every request's callback is called exactly once: with its reply
 *     (client_complete, client_ops.c) or with the error that failed its
 *     queue (client_fail_queue).
 *  3. Credentials are re-sent in the order they were added, and replies to
 *     xid -4 answer the auth waits in that order.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "assert.h"

/* ---- the queues ---- */

void client_queue_push(struct client_queue *q, struct client_request *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->count++;
}

struct client_request *client_queue_pop(struct client_queue *q)
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

/* ---- submission ---- */

/* Frames header (xid, req->type) + req and queues it on the connection: 0, or the
 * encoder's / client_conn_write's error. */
int client_write_request(struct zn_client *c, int32_t xid, const struct zn_request *req)
{
    struct zn_request_header hdr = {xid, req->type};
    struct jute_writer w;
    jute_writer_init(&w);
    size_t f = jute_frame_begin(&w);
    jute_write_request_header(&w, &hdr);
    jute_write_request(&w, req);
    jute_frame_end(&w, f);
    int rc = w.error ? w.error : client_conn_write(c, w.data, w.len);
    jute_writer_free(&w);
    return rc;
}

/* Writes a request and moves it to inflight. */
static int send_request(struct zn_client *c, struct client_request *r)
{
    int rc = client_conn_write(c, r->frame, r->frame_len);
    free(r->frame);
    r->frame = NULL;
    client_queue_push(&c->inflight, r);
    return rc;
}

void client_flush_unsent(struct zn_client *c)
{
    struct client_request *r;
    while (c->state == CLIENT_CONNECTED && (r = client_queue_pop(&c->unsent)) != NULL) {
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
        client_queue_push(&c->unsent, r);
        client_arm_timer(c);
    }
    return 0;
}

/* ---- failing and answering ---- */

void client_fail_queue(struct zn_client *c, struct client_queue *q, int rc)
{
    struct client_request *r;
    while ((r = client_queue_pop(q)) != NULL)
        client_fail_request(c, r, rc);
}

void client_fail_auth_waits(struct zn_client *c, int rc)
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
bool client_handle_frame(struct zn_client *c, const uint8_t *body, size_t len)
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
                client_handle_sasl_reply(c, &hdr, &r);
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
        client_queue_pop(&c->inflight);
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
        if (client_write_request(c, ZN_XID_AUTH, &req) != 0)
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
