/*
 * The ensemble driver, between a member and its leader: a member forwards
 * its clients' writes and syncs ('F', 'S' frames) and the sessions that
 * showed activity ('T'); the leader answers syncs ('O') and sends its
 * digests ('D'); and the frames that arrive from peers are dispatched here.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "assert.h"
#include "check.h"
#include "ensemble_internal.h"
#include "log.h"
#include "prep.h"
#include "request.h"
#include "saslauth.h"
#include "snapshot.h"
#include "store.h"
#include "tls.h"
#include "transport.h"
#include "tree.h"
#include "txn.h"

/* ---- driver messages ---- */

static int read_forward(struct ensemble *e, uint32_t from, struct jute_reader *rd)
{
    int32_t kind, cxid, type, timeout;
    int64_t sid;
    struct jute_buf body;
    jute_read_int(rd, &kind);
    jute_read_long(rd, &sid);
    jute_read_int(rd, &cxid);
    jute_read_int(rd, &type);
    jute_read_int(rd, &timeout);
    jute_read_buffer(rd, &body);
    if (rd->error || body.len < 0)
        return ZN_MARSHALLINGERROR;
    /* A follower serves only once its leader is established (zab_ready.
     * serving, ZooKeeper's UPTODATE), so forwards reach an established
     * leader.  It used to serve from its own ACKNEWLEADER, before its leader
     * had a quorum of those acks; a leader still establishing (sync) keeps
     * what is forwarded to it anyway, in its backlog, proposed once it is
     * established (ens_drain_backlog), freed if it is not.  Dropped, the
     * member timed it out (forward_timeout_ms, 2 x syncLimit x tickTime)
     * and its clients' writes waited that long after a leader's death. */
    bool establishing = e->role == ZAB_LEADING && e->phase == ZAB_PHASE_SYNC;
    if (!ensemble_is_leader(e->srv) && !establishing)
        return 0; /* the member will time the request out and move its client */
    struct request *r = request_new(e->srv, NULL);
    if (!r)
        return ZN_NOMEMORY;
    r->origin = from;
    r->session_id = sid;
    r->hdr.xid = cxid;
    r->hdr.type = kind == FORWARD_CONNECT ? REQUEST_CONNECT
                  : kind == FORWARD_CLOSE ? ZN_OP_CLOSESESSION
                                          : type;
    r->timeout_ms = timeout;
    r->is_write = true;
    r->packet = malloc(body.len ? (size_t)body.len : 1);
    if (!r->packet) {
        request_free(e->srv, r);
        return ZN_NOMEMORY;
    }
    memcpy(r->packet, body.data, (size_t)body.len);
    r->packet_len = (size_t)body.len;
    int32_t n_ids = 0;
    if (jute_remaining(rd) >= 4 && jute_read_int(rd, &n_ids) == 0 && n_ids > 0 &&
        n_ids <= (int32_t)ACL_MAX_HELD_IDS) {
        r->ids = zn_arena_alloc(&r->arena, sizeof *r->ids * (size_t)n_ids);
        if (!r->ids) {
            request_free(e->srv, r);
            return ZN_NOMEMORY;
        }
        /* strings go to the reader's arena: copy them into the request's */
        struct zn_arena *saved = rd->arena;
        rd->arena = &r->arena;
        for (int32_t i = 0; i < n_ids; i++) {
            jute_read_string(rd, &r->ids[i].scheme);
            jute_read_string(rd, &r->ids[i].id);
        }
        rd->arena = saved;
        if (rd->error) {
            request_free(e->srv, r);
            return ZN_MARSHALLINGERROR;
        }
        r->id_count = (size_t)n_ids;
    }
    r->has_ids = true;
    if (kind == FORWARD_REQUEST) {
        struct jute_reader br;
        jute_reader_init(&br, r->packet, r->packet_len, &r->arena);
        if (jute_read_request(&br, type, &r->req) != 0) {
            request_free(e->srv, r);
            return ZN_MARSHALLINGERROR;
        }
    }
    ens_leader_submit(e, r);
    return 0;
}

static void touch_sessions(struct ensemble *e, struct jute_reader *rd)
{
    int32_t n;
    if (jute_read_int(rd, &n) != 0 || n < 0 || n > TOUCH_MAX_SESSIONS)
        return;
    uint64_t now = server_now_ms();
    for (int32_t i = 0; i < n; i++) {
        int64_t sid;
        if (jute_read_long(rd, &sid) != 0)
            return;
        struct session *s = session_find(e->srv, sid);
        if (s && !s->closing)
            s->expires_at_ms = now + (uint64_t)s->timeout_ms;
    }
}

static void answer_sync(struct ensemble *e, uint32_t from, struct jute_reader *rd)
{
    int64_t sid;
    int32_t cxid;
    jute_read_long(rd, &sid);
    jute_read_int(rd, &cxid);
    if (rd->error || !ensemble_is_leader(e->srv))
        return;
    struct zab_status st;
    zab_status(e->zab, &st);
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_SYNC_OK;
    jute_write_raw(&e->out, &channel, 1);
    jute_write_long(&e->out, sid);
    jute_write_int(&e->out, cxid);
    jute_write_long(&e->out, (int64_t)st.last_zxid);
    ens_send_bytes(e, from, e->out.data, e->out.len);
}

static void sync_answered(struct ensemble *e, struct jute_reader *rd)
{
    int64_t sid, zxid;
    int32_t cxid;
    jute_read_long(rd, &sid);
    jute_read_int(rd, &cxid);
    jute_read_long(rd, &zxid);
    if (rd->error)
        return;
    for (struct request *r = e->syncs; r; r = r->next_pending)
        if (r->session_id == sid && r->hdr.xid == cxid && r->sync_target == UINT64_MAX) {
            r->sync_target = (uint64_t)zxid;
            break;
        }
    ens_finish_syncs(e);
}

void ens_on_peer_frame(void *ctx, uint32_t from, const uint8_t *frame, size_t len)
{
    struct ensemble *e = ctx;
    if (len < 1)
        return;
    if (frame[0] == CHANNEL_ZAB) {
        if (ens_snapxfer_hold(e, from, frame, len))
            return; /* a snapshot file is coming from this leader first */
        /* to the core, unless it is a SYNC naming a snapshot file to fetch
         * first (snapxfer.c) */
        (void)ens_snapxfer_step(e, from, frame, len);
        return;
    }
    zn_arena_reset(&e->scratch);
    struct jute_reader rd;
    jute_reader_init(&rd, frame + 1, len - 1, &e->scratch);
    switch (frame[0]) {
    case CHANNEL_SNAP_REQ:
        ens_snapxfer_serve(e, from, &rd);
        return;
    case CHANNEL_SNAP_DATA:
        ens_snapxfer_receive(e, from, &rd);
        return;
    case CHANNEL_FORWARD:
        if (read_forward(e, from, &rd) != 0)
            ZN_WARN("malformed forwarded request from=%u", from);
        break;
    case CHANNEL_TOUCH:
        touch_sessions(e, &rd);
        break;
    case CHANNEL_SYNC:
        answer_sync(e, from, &rd);
        break;
    case CHANNEL_SYNC_OK:
        sync_answered(e, &rd);
        break;
    case CHANNEL_DIGEST:
        ens_check_digest(e, from, &rd);
        break;
    default:
        ZN_WARN("unknown peer frame channel=%d from=%u", frame[0], from);
        return;
    }
    ens_process_ready(e);
}

/* Our link to a peer came up or closed; the core hears both.  Up: a
 * LOOKING core sends its vote at once rather than at its next resend (1-2 s),
 * which made every start of an ensemble, whose first votes go out before any
 * link is up, take that long.  Closed (the peer died: its kernel closed the
 * socket; or the connection broke): a follower whose leader's link closed
 * looks at once, as ZooKeeper's does, instead of waiting out syncLimit of
 * silence (10 s with tickTime=2000, syncLimit=5: a leader's death stopped
 * writes that long). */
void ens_on_peer_link(void *ctx, uint32_t peer, bool connected)
{
    struct ensemble *e = ctx;
    if (!e->zab)
        return;
    if (connected) {
        zab_peer_connected(e->zab, peer);
    } else {
        if (e->xfer.active && e->xfer.from == peer)
            ens_snapxfer_abandon(e, "the link to the leader closed");
        zab_peer_disconnected(e->zab, peer);
    }
    ens_process_ready(e);
}

/* ---- member: forwarding ---- */

static void forward(struct ensemble *e, struct request *r, enum forward_kind kind)
{
    const uint8_t *body = NULL;
    size_t body_len = 0;
    if (kind == FORWARD_REQUEST && r->packet && r->packet_len >= 8) {
        body = r->packet + 8; /* after the RequestHeader */
        body_len = r->packet_len - 8;
    }
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_FORWARD;
    jute_write_raw(&e->out, &channel, 1);
    jute_write_int(&e->out, kind);
    jute_write_long(&e->out, r->session_id);
    jute_write_int(&e->out, r->hdr.xid);
    jute_write_int(&e->out, r->hdr.type);
    jute_write_int(&e->out, r->timeout_ms);
    jute_write_buffer(&e->out, body, (int32_t)body_len);
    /* The client's identities, for the leader's ACL checks. */
    struct zn_id ids[ACL_MAX_HELD_IDS];
    size_t n_ids = r->conn ? acl_held_ids(e->srv, r->conn, &r->arena, ids) : 0;
    jute_write_int(&e->out, (int32_t)n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        jute_write_string(&e->out, ids[i].scheme);
        jute_write_string(&e->out, ids[i].id);
    }
    int rc = transport_send(e->tp, e->leader_id, e->out.data, e->out.len);
    if (rc != 0) {
        if (r->conn)
            conn_close(r->conn, "cannot reach the leader; reconnect to another member");
        return;
    }
    r->forwarded_ms = server_now_ms();
}

static void submit(struct ensemble *e, struct request *r, enum forward_kind kind)
{
    if (!e->serving) {
        if (r->conn)
            conn_close(r->conn, "this member is not serving: no leader");
        return;
    }
    if (e->role == ZAB_LEADING)
        ens_leader_submit(e, r);
    else
        forward(e, r, kind);
    ens_ready_later(e); /* once for the loop turn's requests */
}

void ensemble_submit_write(struct server *srv, struct request *r)
{
    struct session *s = session_of(srv, r->conn, r->session_id);
    if (!s || s->closing) {
        r->err = ZN_SESSIONEXPIRED;
        r->done = true;
        return;
    }
    submit(ens_of(srv), r, r->hdr.type == ZN_OP_CLOSESESSION ? FORWARD_CLOSE : FORWARD_REQUEST);
}

void ensemble_submit_connect(struct server *srv, struct request *r)
{
    submit(ens_of(srv), r, FORWARD_CONNECT);
}

void ensemble_submit_sync(struct server *srv, struct request *r)
{
    struct ensemble *e = ens_of(srv);
    if (!e->serving) {
        if (r->conn)
            conn_close(r->conn, "this member is not serving: no leader");
        return;
    }
    r->in_pipeline = true;
    r->next_pending = e->syncs;
    e->syncs = r;
    if (e->role == ZAB_LEADING) {
        struct zab_status st;
        zab_status(e->zab, &st);
        r->sync_target = st.last_zxid;
        ens_finish_syncs(e);
        return;
    }
    /* TEST ONLY: planted bug for tests/faults (issue 6): a follower answers
     * sync from its own tree without asking the leader, so a read after sync
     * may be stale. tests/faults/run.sh --planted-bug stale-sync expects the
     * linearizability checker to catch it. */
    if (srv->cfg.planted_bug == CONFIG_PLANTED_BUG_STALE_SYNC) {
        r->sync_target = 0;
        ens_finish_syncs(e);
        return;
    }
    /* end TEST ONLY */
    r->sync_target = UINT64_MAX;
    r->forwarded_ms = server_now_ms();
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_SYNC;
    jute_write_raw(&e->out, &channel, 1);
    jute_write_long(&e->out, r->session_id);
    jute_write_int(&e->out, r->hdr.xid);
    if (transport_send(e->tp, e->leader_id, e->out.data, e->out.len) != 0 && r->conn)
        conn_close(r->conn, "cannot reach the leader; reconnect to another member");
}


void ens_send_touches(struct ensemble *e)
{
    struct server *srv = e->srv;
    uint64_t since = e->last_touch_ms;
    e->last_touch_ms = server_now_ms();
    if ((e->role != ZAB_FOLLOWING && e->role != ZAB_OBSERVING) || !e->serving)
        return;
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_TOUCH;
    jute_write_raw(&e->out, &channel, 1);
    size_t count_at = e->out.len;
    jute_write_int(&e->out, 0);
    int32_t n = 0;
    for (struct conn *c = srv->conns; c && n < TOUCH_MAX_SESSIONS; c = c->next)
        if (c->session && c->session->last_activity_ms >= since) {
            jute_write_long(&e->out, c->session->id);
            n++;
        }
    if (n == 0 || e->out.error)
        return;
    uint32_t be = htonl((uint32_t)n);
    memcpy(e->out.data + count_at, &be, 4);
    ens_send_bytes(e, e->leader_id, e->out.data, e->out.len);
}

/* Requests forwarded long ago without an answer: their forward (or its
 * commit) was lost; the client gets to retry elsewhere. */
void ens_expire_forwards(struct ensemble *e)
{
    uint64_t now = server_now_ms();
    struct conn *c = e->srv->conns;
    while (c) {
        struct conn *next = c->next;
        for (struct request *r = c->queue_head; r; r = r->next)
            if (r->is_write && !r->done && r->forwarded_ms &&
                now - r->forwarded_ms > e->forward_timeout_ms) {
                conn_close(c, "no answer from the leader in time; reconnect to another member");
                break;
            }
        c = next;
    }
}
