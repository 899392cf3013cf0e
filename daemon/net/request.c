/*
 * Requests as a connection sees them: decoding a client's packets, the
 * per-connection FIFO that keeps each client's replies in the order of its
 * requests, and encoding the replies and watch events.  Reads are executed
 * by read.c and writes travel through the ensemble's write path (ensemble.c); the invariants they keep
 * together are listed in server.h.
 *
 * Every packet becomes a struct request queued on its connection.  A read
 * is executed when it reaches the head of the queue, so it sees every
 * earlier write of the same client; a write is handed to the write path at
 * once and answered when it is both finished and at the head.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "acl.h"
#include "assert.h"
#include "ensemble.h"
#include "metrics.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "txn.h"

int64_t server_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/*
 * Finished requests are kept for reuse, with their arena's first block, so a
 * request costs no allocation in the steady state.  The pool belongs to the
 * loop thread, which alone creates and frees requests; its size bounds the memory it holds
 * (REQUEST_POOL_MAX structs of a few hundred bytes plus a 4 KiB arena
 * block).  Under AddressSanitizer nothing is pooled, so a use after free
 * is still caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#define REQUEST_POOL_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQUEST_POOL_MAX 0
#endif
#endif
#ifndef REQUEST_POOL_MAX
#define REQUEST_POOL_MAX 256
#endif
struct request *request_new(struct server *srv, struct conn *c)
{
    struct request *r = srv->request_pool;
    if (r) {
        srv->request_pool = r->next;
        srv->request_pool_count--;
        struct zn_arena arena = r->arena;
        memset(r, 0, sizeof *r);
        r->arena = arena;
    } else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        zn_arena_init(&r->arena);
    }
    r->conn = c;
    /* A client's request: stamped with the loop turn's clock (no clock read
     * per request).  Conn-less ones (forwarded, system) record no latency. */
    if (c) {
        r->received_us = server_clock_us(c->server);
        r->received_ms = r->received_us / 1000;
    }
    return r;
}

void request_free(struct server *srv, struct request *r)
{
    if (!r->packet_in_arena)
        free(r->packet);
    free(r->txn_bytes);
    if (srv->request_pool_count + 1 > REQUEST_POOL_MAX) { /* (not ">=": REQUEST_POOL_MAX may be 0) */
        zn_arena_free(&r->arena);
        free(r);
        return;
    }
    zn_arena_trim(&r->arena);
    r->packet = NULL;
    r->txn_bytes = NULL;
    r->next = srv->request_pool;
    srv->request_pool = r;
    srv->request_pool_count++;
}

static void fifo_push(struct conn *c, struct request *r)
{
    if (c->queue_tail)
        c->queue_tail->next = r;
    else
        c->queue_head = r;
    c->queue_tail = r;
    c->queued++;
    c->server->outstanding++;
}

static struct request *fifo_pop(struct conn *c)
{
    struct request *r = c->queue_head;
    c->queue_head = r->next;
    if (!c->queue_head)
        c->queue_tail = NULL;
    r->next = NULL;
    c->queued--;
    c->server->outstanding--;
    return r;
}
/* ---- replies ---- */

static void record_latency(struct conn *c, struct request *r)
{
    uint64_t now = server_clock_ms(c->server);
    uint64_t lat = now - r->received_ms;
    struct server_stats *s = &c->server->stats;
    if (s->latency_count == 0 || lat < s->latency_min_ms)
        s->latency_min_ms = lat;
    if (lat > s->latency_max_ms)
        s->latency_max_ms = lat;
    s->latency_total_ms += lat;
    s->latency_count++;
    struct conn_stats *cs = &c->stats;
    if (cs->latency_count == 0 || lat < cs->latency_min_ms)
        cs->latency_min_ms = lat;
    if (lat > cs->latency_max_ms)
        cs->latency_max_ms = lat;
    cs->latency_total_ms += lat;
    cs->latency_count++;
    cs->last_latency_ms = lat;
    cs->last_response_ms = now;
    cs->last_op = r->hdr.type;
    cs->last_cxid = r->hdr.xid;
}

static void send_connect_response(struct conn *c, struct request *r)
{
    struct zn_connect_response resp = {0};
    uint8_t passwd[ZN_PASSWD_BYTES] = {0};
    if (!r->expired_connect && c->session) {
        resp.timeout_ms = c->session->timeout_ms;
        resp.session_id = c->session->id;
        session_password(c->session->id, passwd);
    }
    resp.passwd.data = passwd;
    resp.passwd.len = ZN_PASSWD_BYTES;
    resp.has_read_only = true;
    resp.read_only = c->read_only;
    size_t start;
    struct jute_writer *w = conn_frame_begin(c, &start);
    if (w) {
        jute_write_connect_response(w, &resp);
        conn_frame_end(c, start);
    }
    if (r->expired_connect) {
        c->close_after_flush = true;
        ZN_INFO("refused reconnect peer=%s: session expired or unknown", c->peer);
    }
}

static void send_reply(struct conn *c, struct request *r)
{
    if (r->hdr.type == REQUEST_CONNECT) {
        send_connect_response(c, r);
        return;
    }
    record_latency(c, r);
    metrics_observe_request(c->server, r->hdr.type, r->err,
                            server_clock_us(c->server) - r->received_us);
    struct zn_reply_header h = {
        .xid = r->hdr.xid,
        /* ZooKeeper answers SASL tokens and refusals of unauthenticated
         * clients outside its pipeline, with zxid 0. */
        .zxid = r->hdr.type == ZN_OP_SASL || r->close_after_reply ? 0
                : r->is_write && r->zxid                         ? r->zxid
                                                                 : tree_last_zxid(c->server->tree),
        .err = r->err,
    };
    c->stats.last_zxid = h.zxid;
    /* Encoded straight into the connection's output: no scratch copy. */
    size_t start;
    struct jute_writer *w = conn_frame_begin(c, &start);
    if (w) {
        jute_write_reply_header(w, &h);
        /* A multi carries its per-op results even when it failed. */
        if (r->err == ZN_OK || r->hdr.type == ZN_OP_MULTI || r->hdr.type == ZN_OP_MULTIREAD) {
            r->resp.type = r->hdr.type;
            if (r->err != ZN_OK && r->resp.result_count == 0) {
                /* no per-op results: nothing but the header, as for any error */
            } else if (jute_write_response(w, &r->resp) != 0 && w->error != ZN_NOMEMORY) {
                ZN_ERROR("cannot encode reply op=%s sid=0x%" PRIx64, zn_op_name(r->hdr.type),
                         (uint64_t)r->session_id);
                /* Back to just after the length: the header alone, with the error. */
                w->len = start + 4;
                w->error = 0;
                h.err = ZN_MARSHALLINGERROR;
                jute_write_reply_header(w, &h);
            }
        }
        conn_frame_end(c, start);
    }
    if (r->hdr.type == ZN_OP_CLOSESESSION || r->close_after_reply)
        c->close_after_flush = true;
}

/*
 * enforce.auth.enabled (AuthenticationHelper.enforceAuthentication, ZooKeeper
 * 3.8): every request but auth and sasl needs an identity of one of
 * enforce.auth.schemes, else it is answered SESSIONCLOSEDREQUIRESASLAUTH and
 * the connection closed.  An addAuth still queued ahead counts (ZooKeeper
 * would have handled it already, on arrival).
 */
static bool refused_unauthenticated(const struct server *srv, const struct conn *c, struct request *r)
{
    const struct config_sasl *sasl = &srv->cfg.sasl;
    if (!sasl->enforce_auth || r->hdr.type == ZN_OP_AUTH || r->hdr.type == ZN_OP_SASL)
        return false;
    struct zn_id ids[ACL_MAX_HELD_IDS];
    size_t n = acl_held_ids(srv, c, &r->arena, ids);
    static const struct {
        const char *name;
        unsigned bit;
    } schemes[] = {{"ip", CONFIG_SCHEME_IP}, {"digest", CONFIG_SCHEME_DIGEST},
                   {"x509", CONFIG_SCHEME_X509}, {"sasl", CONFIG_SCHEME_SASL}};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++)
            if ((sasl->enforce_schemes & schemes[k].bit) && strcmp(ids[i].scheme, schemes[k].name) == 0)
                return false;
    return true;
}
/*
 * A watch event: reply header (xid -1, zxid -1) and WatcherEvent, the same
 * bytes for every watcher one trigger tells, so the frame is encoded once
 * per trigger (ev->id) into srv->event_frame and copied to each connection.
 * An event with id 0 (setWatches' own) is encoded for its call alone.
 */
void server_watch_notify(void *ctx, struct watch_owner *owner, const struct watch_event *ev)
{
    struct server *srv = ctx;
    struct conn *c = (struct conn *)((char *)owner - offsetof(struct conn, watches));
    struct jute_writer *f = &srv->event_frame;
    if (ev->id == 0 || ev->id != srv->event_frame_id) {
        struct zn_reply_header h = {.xid = ZN_XID_NOTIFICATION, .zxid = -1, .err = 0};
        struct zn_watcher_event e = {.type = ev->type, .state = ZN_STATE_SYNC_CONNECTED,
                                     .path = (char *)ev->path};
        jute_writer_reset(f);
        size_t start = jute_frame_begin(f);
        jute_write_reply_header(f, &h);
        jute_write_watcher_event(f, &e);
        if (jute_frame_end(f, start) != 0) {
            /* The event cannot be told: c is closed at the flush (not here,
             * under the manager's walk), and the client's setWatches on
             * reconnecting replays what it missed. */
            srv->event_frame_id = 0;
            c->out.error = ZN_NOMEMORY;
            conn_mark_dirty(c);
            return;
        }
        srv->event_frame_id = ev->id;
    }
    conn_send_frame(c, f->data, f->len);
}
/* Answers everything at the head of c's FIFO that can be answered now. */
void request_drain(struct conn *c)
{
    struct server *srv = c->server;
    while (c->queue_head && c->state != CONN_CLOSING) {
        struct request *r = c->queue_head;
        if (r->is_write && !r->done)
            break;
        if (!r->is_write && !r->done)
            read_execute(srv, c, r);
        fifo_pop(c);
        send_reply(c, r);
        request_free(srv, r);
        if (c->close_after_flush)
            break;
    }
}

void request_conn_closed(struct conn *c)
{
    while (c->queue_head) {
        struct request *r = fifo_pop(c);
        if (r->in_pipeline) {
            r->conn = NULL; /* the write path frees it once finished */
            continue;
        }
        request_free(c->server, r);
    }
}
/* A request finished (applied or failed): answer it or drop it. */
void request_finish(struct server *srv, struct request *r)
{
    r->done = true;
    if (r->conn)
        request_drain(r->conn);
    else
        request_free(srv, r);
}

/* ---- packets ---- */

static bool session_password_ok(int64_t id, const struct jute_buf *passwd)
{
    uint8_t expected[ZN_PASSWD_BYTES];
    session_password(id, expected);
    return passwd->len == ZN_PASSWD_BYTES && memcmp(passwd->data, expected, ZN_PASSWD_BYTES) == 0;
}

void request_handle_connect(struct conn *c, const uint8_t *data, size_t len)
{
    struct server *srv = c->server;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader rd;
    jute_reader_init(&rd, data, len, &arena);
    struct zn_connect_request cr;
    if (jute_read_connect_request(&rd, &cr) != 0) {
        zn_arena_free(&arena);
        srv->stats.malformed_packets++;
        conn_close(c, "malformed ConnectRequest");
        return;
    }
    bool read_only = srv->ens && !ensemble_serving(srv);
    if (read_only && ensemble_removed(srv)) {
        zn_arena_free(&arena);
        conn_close(c, "this member was removed from the ensemble: it serves no more");
        return;
    }
    if (read_only && !(srv->cfg.read_only_mode && cr.read_only)) {
        /* No leader yet (an election is under way): the client waits for
         * one here, up to its session timeout, rather than being closed and
         * coming back in a loop; its connect timeout sends it to another
         * member first if that is shorter. */
        zn_arena_free(&arena);
        int32_t wait_ms = cr.timeout_ms;
        if (wait_ms < srv->cfg.min_session_timeout_ms)
            wait_ms = srv->cfg.min_session_timeout_ms;
        if (wait_ms > srv->cfg.max_session_timeout_ms)
            wait_ms = srv->cfg.max_session_timeout_ms;
        if (!c->parked)
            ZN_INFO("parking connection peer=%s until this member has a leader", c->peer);
        c->parked = true;
        c->parked_until_ms = server_now_ms() + (uint64_t)wait_ms;
        return;
    }
    if (cr.last_zxid_seen > tree_last_zxid(srv->tree)) {
        zn_arena_free(&arena);
        char why[160];
        snprintf(why, sizeof why,
                 "refusing session: client has seen zxid 0x%" PRIx64 ", our last is 0x%" PRIx64,
                 (uint64_t)cr.last_zxid_seen, (uint64_t)tree_last_zxid(srv->tree));
        conn_close(c, why);
        return;
    }
    int32_t timeout = cr.timeout_ms;
    if (timeout < srv->cfg.min_session_timeout_ms)
        timeout = srv->cfg.min_session_timeout_ms;
    if (timeout > srv->cfg.max_session_timeout_ms)
        timeout = srv->cfg.max_session_timeout_ms;

    struct request *r = request_new(srv, c);
    if (!r) {
        zn_arena_free(&arena);
        conn_close(c, "out of memory");
        return;
    }
    r->hdr.type = REQUEST_CONNECT;
    r->timeout_ms = timeout;
    c->timeout_ms = timeout;
    if (read_only) {
        /* ZooKeeper's read-only mode: without a quorum, a client that allows
         * it gets a session of this member alone, served from its copy of the
         * tree; every write is refused with NOTREADONLY. */
        struct session *s = cr.session_id ? session_find(srv, cr.session_id) : NULL;
        if (!s || s->closing || !session_password_ok(cr.session_id, &cr.passwd)) {
            s = session_add(srv, session_new_id(srv), timeout);
            if (s)
                s->local_read_only = true;
        } else if (s->conn && s->conn != c) {
            conn_close(s->conn, "session reconnected on another connection");
        }
        if (!s) {
            request_free(srv, r);
            zn_arena_free(&arena);
            conn_close(c, "out of memory");
            return;
        }
        s->conn = c;
        c->session = s;
        c->read_only = true;
        c->timeout_ms = s->timeout_ms;
        c->state = CONN_READY;
        r->session_id = s->id;
        r->done = true;
        ZN_INFO("read-only session sid=0x%" PRIx64 " peer=%s", (uint64_t)s->id, c->peer);
        fifo_push(c, r);
        request_drain(c);
        zn_arena_free(&arena);
        return;
    }
    if (cr.session_id != 0) {
        struct session *s = session_find(srv, cr.session_id);
        r->session_id = cr.session_id;
        if (!s || s->closing || !session_password_ok(cr.session_id, &cr.passwd)) {
            r->expired_connect = true;
        } else {
            if (s->conn && s->conn != c)
                conn_close(s->conn, "session reconnected on another connection");
            s->conn = c;
            c->session = s;
            c->timeout_ms = s->timeout_ms;
            session_touch(srv, s);
            ZN_INFO("session reconnected sid=0x%" PRIx64 " peer=%s", (uint64_t)s->id, c->peer);
        }
        c->state = r->expired_connect ? CONN_OPENING : CONN_READY;
        r->done = true;
        fifo_push(c, r);
        request_drain(c);
    } else {
        r->session_id = session_new_id(srv);
        r->is_write = true;
        c->state = CONN_OPENING;
        fifo_push(c, r);
        ensemble_submit_connect(srv, r);
        if (r->done) {
            r->expired_connect = true;
            request_drain(c);
        }
    }
    zn_arena_free(&arena);
}

void request_handle_packet(struct conn *c, const uint8_t *data, size_t len)
{
    struct server *srv = c->server;
    struct request *r = request_new(srv, c);
    if (!r) {
        conn_close(c, "out of memory");
        return;
    }
    struct jute_reader rd;
    jute_reader_init(&rd, data, len, &r->arena);
    if (jute_read_request_header(&rd, &r->hdr) != 0) {
        request_free(srv, r);
        srv->stats.malformed_packets++;
        conn_close(c, "malformed request header");
        return;
    }
    /* A read with nothing ahead of it in the FIFO is answered before this
     * call returns, so it decodes straight from the connection's input
     * (data stays put until process_frames has handled every frame).  A
     * write, a sync that waits, or a read queued behind a write outlives
     * the input buffer: it gets its own copy of the packet (writes also
     * forward it to the leader). */
    bool answered_now = c->queue_head == NULL && !zn_op_is_write(r->hdr.type) &&
                        r->hdr.type != ZN_OP_SYNC;
    if (!answered_now) {
        /* In the request's (pooled) arena: no allocation for a packet that
         * fits its first block, and nothing to free separately. */
        r->packet = zn_arena_alloc(&r->arena, len ? len : 1);
        r->packet_in_arena = true;
        if (!r->packet) {
            request_free(srv, r);
            conn_close(c, "out of memory");
            return;
        }
        memcpy(r->packet, data, len);
        r->packet_len = len;
        size_t header_end = rd.pos;
        jute_reader_init(&rd, r->packet, len, &r->arena);
        rd.pos = header_end;
    }
    int rc = jute_read_request(&rd, r->hdr.type, &r->req);
    if (rc == 0 && rd.strings_with_nul > 0) {
        /* ZooKeeper: "null character not allowed" in a path */
        r->err = ZN_BADARGUMENTS;
        r->done = true;
    } else if (rc == ZN_UNIMPLEMENTED) {
        r->err = ZN_UNIMPLEMENTED;
        r->done = true;
    } else if (rc != 0) {
        char why[96];
        snprintf(why, sizeof why, "malformed %s request (xid=%d, %zu bytes)",
                 zn_op_name(r->hdr.type), r->hdr.xid, len);
        request_free(srv, r);
        srv->stats.malformed_packets++;
        conn_close(c, why);
        return;
    }
    r->session_id = c->session ? c->session->id
                    : c->queue_head && c->queue_head->hdr.type == REQUEST_CONNECT
                        ? c->queue_head->session_id
                        : 0;
    if (c->session)
        session_touch(srv, c->session);
    ZN_DEBUG("request peer=%s sid=0x%" PRIx64 " xid=%d op=%s path=%s", c->peer,
             (uint64_t)r->session_id, r->hdr.xid, zn_op_name(r->hdr.type),
             r->req.path ? r->req.path : "-");
    if (!r->done && refused_unauthenticated(srv, c, r)) {
        ZN_WARN("refusing request op=%s peer=%s sid=0x%" PRIx64 ": not authenticated with any of "
                "enforce.auth.schemes; closing the session's connection",
                zn_op_name(r->hdr.type), c->peer, (uint64_t)r->session_id);
        r->err = ZN_SESSIONCLOSEDREQUIRESASLAUTH;
        r->done = true;
        r->close_after_reply = true;
    }
    r->is_write = !r->done && zn_op_is_write(r->hdr.type);
    /* In an ensemble, sync waits (like a write) until this member has
     * applied everything the leader had proposed when it asked. */
    if (c->read_only && !r->done && (r->is_write || r->hdr.type == ZN_OP_SYNC)) {
        if (r->hdr.type == ZN_OP_CLOSESESSION) {
            c->close_after_flush = true; /* a local session: nothing to replicate */
        } else {
            r->err = ZN_NOTREADONLY;
        }
        r->done = true;
        r->is_write = false;
    }
    bool ensemble_sync = !r->done && r->hdr.type == ZN_OP_SYNC;
    if (ensemble_sync)
        r->is_write = true;
    fifo_push(c, r);
    if (ensemble_sync)
        ensemble_submit_sync(srv, r);
    else if (r->is_write)
        ensemble_submit_write(srv, r);
    if (c->state != CONN_CLOSING)
        request_drain(c);
    /* Nothing that borrows the input buffer may stay queued. */
    ZN_ASSERT(!answered_now || c->queue_head == NULL || c->state == CONN_CLOSING);
}
