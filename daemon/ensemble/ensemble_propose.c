/*
 * The ensemble driver, on the leader: every write (its own clients', those
 * forwarded by the members, the server's own cleanup and expiries) is
 * prepared against the tree as it will be and proposed, in the order it
 * arrived; a refusal is proposed too, as ZooKeeper's error txn, so it is
 * answered in order.  Writes wait in the backlog while the core's window of
 * uncommitted proposals is full.
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

/* ---- leader: prepare and propose ---- */

static void backlog_push(struct ensemble *e, struct request *r)
{
    r->next_pending = NULL;
    r->in_pipeline = true;
    if (e->backlog_tail)
        e->backlog_tail->next_pending = r;
    else
        e->backlog_head = r;
    e->backlog_tail = r;
    e->backlog_count++;
}

/* Room for one more proposal: the core's window of uncommitted ones, and
 * the store's queue (nothing held back from it). */
static bool window_full(struct ensemble *e)
{
    return e->held_head != NULL || zab_uncommitted(e->zab) >= ZAB_INFLIGHT_MAX - 1;
}

/* Gives up on a request the leader could not propose. */
static void drop_request(struct ensemble *e, struct request *r, const char *why)
{
    ZN_WARN("write not proposed sid=0x%" PRIx64 " xid=%d: %s", (uint64_t)r->session_id,
            r->hdr.xid, why);
    r->in_pipeline = false;
    if (r->conn) {
        conn_close(r->conn, why); /* the client retries through another member */
        return;
    }
    request_free(e->srv, r);
}

/* r's txn header names its client's request and the time (not the zxid). */
static void set_txn_origin(struct request *r, int64_t now_ms)
{
    r->txn.hdr.session_id = r->session_id;
    r->txn.hdr.cxid = r->hdr.xid;
    r->txn.hdr.time_ms = now_ms;
}

/* r's txn becomes ZooKeeper's ERROR txn carrying err (the zxid is the
 * caller's to set). */
static void set_error_txn(struct request *r, int err, int64_t now_ms)
{
    memset(&r->txn, 0, sizeof r->txn);
    r->txn.op.type = ZN_OP_ERROR;
    r->txn.op.err = err;
    r->txn.hdr.type = ZN_OP_ERROR;
    set_txn_origin(r, now_ms);
}

/* Prepares r against the tree as it will be and proposes its txn.  r is a
 * local request (kept in its FIFO) or a forwarded one (freed here). */
static void leader_propose(struct ensemble *e, struct request *r)
{
    struct server *srv = e->srv;
    uint64_t zxid = zab_next_zxid(e->zab);
    if (zxid == 0) {
        drop_request(e, r, "this member is no longer an established leader");
        return;
    }
    r->zxid = (int64_t)zxid;
    int64_t now = server_wall_ms();
    int rc;
    struct session *s = session_of(srv, r->conn, r->session_id);
    memset(&r->txn, 0, sizeof r->txn);
    if (r->hdr.type == REQUEST_CONNECT) {
        rc = prep_create_session(srv->prep, r->session_id, r->timeout_ms, r->zxid, now,
                                 &r->arena, &r->txn);
        if (rc != 0) {
            drop_request(e, r, "createSession refused");
            return;
        }
    } else if (r->hdr.type == ZN_OP_CLOSESESSION) {
        if (s)
            s->closing = true;
        rc = prep_close_session(srv->prep, r->session_id, r->zxid, now, &r->arena, &r->txn);
        r->txn.hdr.cxid = r->hdr.xid; /* the client's closeSession is answered by this txn */
        if (rc != 0) {
            r->in_pipeline = false;
            if (r->conn) {
                r->err = ZN_OK; /* already closed: nothing left to do */
                request_finish(srv, r);
            } else {
                request_free(e->srv, r);
            }
            return;
        }
    } else if (r->session_id != 0 && (!s || s->closing)) {
        rc = ZN_SESSIONEXPIRED; /* session 0: the server's own cleanup writes */
    } else if (r->hdr.type == ZN_OP_RECONFIG && !e->standalone) {
        /* (standalone: prep answers it as ZooKeeper's standalone server does) */
        rc = ens_leader_reconfig(e, r, zxid);
        if (rc == 0) {
            /* proposed; the commit answers it (ens_config_entry_applied) */
            r->in_pipeline = false;
            if (!r->conn)
                request_free(e->srv, r);
            else
                r->forwarded_ms = server_now_ms();
            return;
        }
    } else {
        struct prep_caller who;
        acl_caller(srv, r, &who);
        rc = prep_request(srv->prep, &who, &r->req, r->zxid, now, &r->arena, &r->txn, &r->resp);
    }
    if (rc != 0 && r->hdr.type != REQUEST_CONNECT && r->hdr.type != ZN_OP_CLOSESESSION) {
        /* Refused: proposed as an error txn so it is answered in order. */
        if (r->txn.hdr.type != ZN_OP_ERROR && r->txn.hdr.type != ZN_OP_MULTI)
            set_error_txn(r, rc, now);
        else
            set_txn_origin(r, now);
    }
    r->txn.hdr.zxid = r->zxid;
    jute_writer_reset(&e->out);
    if (txn_encode(&e->out, &r->txn) != 0 || e->out.error) {
        prep_reset(srv->prep);
        drop_request(e, r, "cannot encode the txn");
        return;
    }
    if (e->out.len > ZAB_ENTRY_BYTES_MAX) {
        /* Its data fit in a packet, but the txn (data, path, ACL, header)
         * does not fit in a log entry.  Refused as an error txn, so the
         * member holding the client answers BADARGUMENTS in order: dropped,
         * a forwarded write got no answer until its client timed out. */
        ZN_WARN("write refused sid=0x%" PRIx64 " xid=%d: its txn is %zu bytes, over %u",
                (uint64_t)r->session_id, r->hdr.xid, e->out.len, ZAB_ENTRY_BYTES_MAX);
        prep_reset(srv->prep); /* the overlay holds the refused txn */
        set_error_txn(r, ZN_BADARGUMENTS, now);
        r->txn.hdr.zxid = r->zxid;
        jute_writer_reset(&e->out);
        if (txn_encode(&e->out, &r->txn) != 0 || e->out.error) {
            drop_request(e, r, "cannot encode the txn");
            return;
        }
    }
    int64_t got = zab_propose(e->zab, e->out.data, (uint32_t)e->out.len);
    if (got < 0) {
        prep_reset(srv->prep); /* the overlay holds a txn that will never apply */
        drop_request(e, r, zab_strerror((int)got));
        return;
    }
    ZN_ASSERT((uint64_t)got == zxid);
    r->in_pipeline = false;
    if (!r->conn)
        request_free(e->srv, r); /* forwarded, or a session expiry: the commit answers */
    else
        r->forwarded_ms = server_now_ms();
}

void ens_leader_submit(struct ensemble *e, struct request *r)
{
    /* not yet established (a forward read_forward keeps): backlog too */
    if (e->backlog_head || window_full(e) || !ensemble_is_leader(e->srv)) {
        if (e->backlog_count >= ENSEMBLE_BACKLOG_MAX) {
            drop_request(e, r, "the leader's backlog is full");
            return;
        }
        backlog_push(e, r);
        return;
    }
    leader_propose(e, r);
}

void ens_drain_backlog(struct ensemble *e)
{
    while (e->backlog_head && ensemble_is_leader(e->srv) && !window_full(e)) {
        struct request *r = e->backlog_head;
        e->backlog_head = r->next_pending;
        if (!e->backlog_head)
            e->backlog_tail = NULL;
        e->backlog_count--;
        r->next_pending = NULL;
        leader_propose(e, r);
    }
}

int ensemble_submit_system(struct server *srv, const struct zn_request *req)
{
    struct ensemble *e = ens_of(srv);
    if (!ensemble_is_leader(srv))
        return ZN_NOTREADONLY; /* only the leader cleans up */
    if (window_full(e))
        return ZN_THROTTLEDOP;
    struct request *r = request_new(srv, NULL);
    if (!r)
        return ZN_NOMEMORY;
    r->hdr.type = req->type;
    r->req = *req; /* borrowed: leader_propose preps it before returning */
    r->is_write = true;
    leader_propose(e, r);
    ens_process_ready(e);
    return 0;
}

void ensemble_expire_session(struct server *srv, struct session *s)
{
    struct ensemble *e = ens_of(srv);
    if (!ensemble_is_leader(srv))
        return;
    struct request *r = request_new(srv, NULL);
    if (!r)
        return;
    s->closing = true;
    r->session_id = s->id;
    r->hdr.type = ZN_OP_CLOSESESSION;
    r->is_write = true;
    ens_leader_submit(e, r);
    ens_process_ready(e);
}
