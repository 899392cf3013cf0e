/*
 * The ensemble driver, applying: every committed txn is applied to the tree
 * in zxid order on every member (invariant 1 of ensemble.c), and the member
 * holding the client's connection answers it (find_waiting); syncs finish
 * once the tree reaches their zxid; the tree's digests after each applied
 * entry, compared with the leader's; a snapshot from the leader replaces
 * the tree.
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

/* ---- applying committed entries ---- */

/* A txn applied to the tree fired a watch event. */
void ens_tree_event(void *ctx, int32_t event_type, const char *path)
{
    struct server *srv = ctx;
    watch_trigger(srv->watches, event_type, path);
}

/*
 * The session side of an applied txn, on every member: a createSession adds
 * the session (attached to r's connection when r is the local request that
 * asked for it), a closeSession removes it (answering r first when the client
 * asked).  r may be NULL: the txn came from elsewhere.
 */
static void after_apply(struct server *srv, const struct txn *t, struct request *r)
{
    int64_t sid = t->hdr.session_id;
    if (t->hdr.type == ZN_OP_CREATESESSION) {
        struct session *s = session_add(srv, sid, t->op.timeout_ms);
        if (!s) {
            if (r)
                r->expired_connect = true;
        } else if (r && r->conn) {
            s->conn = r->conn;
            r->conn->session = s;
            r->conn->state = CONN_READY;
            ZN_INFO("session created sid=0x%" PRIx64 " timeout_ms=%d peer=%s", (uint64_t)s->id,
                    s->timeout_ms, r->conn->peer);
        }
    } else if (t->hdr.type == ZN_OP_CLOSESESSION) {
        struct session *s = session_find(srv, sid);
        if (s && r && r->conn && s->conn == r->conn) {
            /* The client asked: answer it, then close. */
            s->conn = NULL;
            r->conn->session = NULL;
        }
        ZN_INFO("session closed sid=0x%" PRIx64 " by=%s", (uint64_t)sid,
                r && r->conn ? "client" : "expiry");
        session_remove(srv, sid);
    }
}


/* The local request a committed txn (its header) answers, if this member
 * holds it. */
static struct request *find_waiting(struct server *srv, const struct txn_header *h)
{
    if (h->type == ZN_OP_CREATESESSION) {
        for (struct conn *c = srv->conns; c; c = c->next)
            if (c->state == CONN_OPENING && c->queue_head &&
                c->queue_head->hdr.type == REQUEST_CONNECT &&
                c->queue_head->session_id == h->session_id && !c->queue_head->done)
                return c->queue_head;
        return NULL;
    }
    struct session *s = session_find(srv, h->session_id);
    if (!s || !s->conn)
        return NULL;
    for (struct request *r = s->conn->queue_head; r; r = r->next)
        if (r->is_write && !r->done && r->hdr.type != ZN_OP_SYNC && r->hdr.xid == h->cxid)
            return r;
    return NULL;
}

/* Hands the heap's free pages back to the system after a rare, large free
 * (a tree replaced by a SNAP, a tree serialised for one): glibc keeps them
 * otherwise, and a member's RSS stayed at its high-water mark, tens of MB
 * above its tree.  malloc_trim releases free pages
 * inside the heap too, not only at its top; it walks the whole heap (5-19 ms
 * of the loop at 700k nodes), so not after every snapshot. */
void ens_release_heap(const char *what)
{
    uint64_t t0 = uv_hrtime();
    malloc_trim(0);
    ZN_DEBUG("malloc_trim after freeing %s: %llu us", what,
             (unsigned long long)((uv_hrtime() - t0) / 1000));
}

void ens_finish_syncs(struct ensemble *e)
{
    struct server *srv = e->srv;
    uint64_t applied = (uint64_t)tree_last_zxid(srv->tree);
    if (e->config_applied_zxid > applied)
        applied = e->config_applied_zxid; /* a CONFIG entry is applied, not in the tree */
    struct request **link = &e->syncs;
    while (*link) {
        struct request *r = *link;
        if (r->sync_target != UINT64_MAX && r->sync_target <= applied) {
            *link = r->next_pending;
            r->next_pending = NULL;
            r->in_pipeline = false;
            r->resp.type = ZN_OP_SYNC;
            r->resp.path = r->req.path;
            request_finish(srv, r);
        } else {
            link = &r->next_pending;
        }
    }
}

void ensemble_turn_done(struct server *srv)
{
    struct ensemble *e = ens_of(srv);
    if (!e)
        return;
    if (e->ready_later)
        ens_process_ready(e); /* the turn's requests (ens_ready_later) */
    /* Standalone compacts after every batch (process_ready): all of those
     * buffers now, or they would pile up faster than a few per turn. */
    zab_collect(e->zab, e->standalone ? SIZE_MAX : ENSEMBLE_COLLECT_PER_TURN);
    if (e->unpark_pending) {
        /* Here, not in on_role_change: a ConnectRequest goes through
         * submit(), which must not run inside ens_process_ready. */
        e->unpark_pending = false;
        if (e->serving)
            conn_unpark_all(srv);
    }
}

/* The store has the snapshot at zxid: the core may drop its log up to it
 * (laggards are then caught up by SNAP). */
void ensemble_snapshot_stored(struct server *srv, int64_t zxid)
{
    struct ensemble *e = ens_of(srv);
    if (e) {
        /* No malloc_trim here: it took 5-19 ms of the loop with a tree of
         * 700k nodes, and the freed entries' memory is what the next ones
         * reuse. */
        zab_compact(e->zab, ens_snapxfer_compact_bound(e, (uint64_t)zxid));
    }
}

/* The txn a committed entry carries.  On the leader, the local request it
 * answers still holds the txn prep made of it, which is what the entry was
 * encoded from (leader_propose stamps it with the entry's zxid): that one is
 * applied, and the entry is not decoded a second time.
 * Everyone else, and the leader for the writes of other members' clients,
 * decodes the entry into e->scratch.  Checked builds (ZN_CHECK_INVARIANTS)
 * encode the prepared txn again and stop unless it is the entry, byte for
 * byte. */
static const struct txn *committed_txn(struct ensemble *e, const struct zab_entry *entry,
                                       struct txn *decoded, struct request **waiting)
{
    struct jute_reader rd;
    jute_reader_init(&rd, entry->data, entry->size, &e->scratch);
    struct txn_header h;
    int rc = txn_decode_header(&rd, &h);
    if (rc != 0)
        ens_fatal("a committed entry does not decode", rc);
    struct request *r = find_waiting(e->srv, &h);
    *waiting = r;
    if (r && r->txn.hdr.zxid == (int64_t)entry->zxid && r->txn.hdr.type == h.type &&
        r->txn.hdr.session_id == h.session_id && r->txn.hdr.cxid == h.cxid) {
#ifdef ZN_CHECK_INVARIANTS
        jute_writer_reset(&e->out);
        if (txn_encode(&e->out, &r->txn) != 0 || e->out.error || e->out.len != entry->size ||
            memcmp(e->out.data, entry->data, entry->size) != 0)
            ens_fatal("the prepared txn of a local request is not its committed entry",
                      ZN_SYSTEMERROR);
#endif
        return &r->txn;
    }
    rc = txn_decode_body(&rd, &h, decoded);
    if (rc != 0)
        ens_fatal("a committed entry does not decode", rc);
    return decoded;
}

void ens_apply_committed(struct ensemble *e, const struct zab_entry *entry)
{
    struct server *srv = e->srv;
    zn_arena_reset(&e->scratch);
    struct txn decoded;
    struct request *r;
    const struct txn *t = committed_txn(e, entry, &decoded, &r);
    struct zn_response scratch_resp;
    struct zn_response *resp = r ? &r->resp : &scratch_resp;
    memset(resp, 0, sizeof *resp);
    int rc = tree_apply(srv->tree, t, ens_tree_event, srv, r ? &r->arena : &e->scratch, resp);
    prep_applied(srv->prep, (int64_t)entry->zxid);
    srv->snapshots.txns_since++;
    srv->snapshots.bytes_since += (int64_t)entry->size;
    if (rc != 0) {
        ZN_ERROR("cannot apply zxid=0x%" PRIx64 " op=%s: %s", entry->zxid,
                 zn_op_name(t->hdr.type), zn_strerror(rc));
        if (r) {
            r->err = ZN_SYSTEMERROR;
            request_finish(srv, r);
        }
        return;
    }
    after_apply(srv, t, r);
    check_after_apply(srv, (int64_t)entry->zxid);
    if (r) {
        r->zxid = (int64_t)entry->zxid;
        r->err = resp->err;
        if (t->hdr.type == ZN_OP_MULTI && resp->result_count > 0)
            r->err = ZN_OK; /* per-op results carry the errors */
        request_finish(srv, r);
    }
}

/* The tree's digest after applying zxid.  TEST ONLY: the planted bug
 * "diverged-digest" makes this member's digests differ from everyone's, as a
 * tree that lost a node would, so that a test proves the check bites. */
void ens_digest_record(struct ensemble *e, uint64_t zxid)
{
    uint64_t digest = tree_digest(e->srv->tree);
    if (e->srv->cfg.planted_bug == CONFIG_PLANTED_BUG_DIVERGED_DIGEST)
        digest ^= 1;
    e->digests[e->digest_next % DIGEST_RING] = (struct digest_mark){.zxid = zxid, .digest = digest};
    e->digest_next++;
    e->last_applied_zxid = zxid;
}

/* Leader: tell every peer the digest of the tree at its last applied zxid. */
void ens_send_digest(struct ensemble *e)
{
    if (e->role != ZAB_LEADING || !e->serving || e->digest_next == 0 || !e->tp)
        return;
    const struct digest_mark *d = &e->digests[(e->digest_next - 1) % DIGEST_RING];
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_DIGEST;
    jute_write_raw(&e->out, &channel, 1);
    jute_write_int(&e->out, (int32_t)e->epoch);
    jute_write_long(&e->out, (int64_t)d->zxid);
    jute_write_long(&e->out, (int64_t)d->digest);
    if (e->out.error)
        return;
    ZN_DEBUG("digest sent zxid=0x%" PRIx64 " digest=0x%016" PRIx64, d->zxid, d->digest);
    for (size_t i = 0; i < transport_peer_count(e->tp); i++) {
        struct transport_peer_stats ps;
        if (transport_peer_stats(e->tp, i, &ps) == 0 && ps.connected)
            ens_send_bytes(e, ps.id, e->out.data, e->out.len);
    }
}

/* A member: the leader's digest at zxid against ours, if we applied zxid
 * recently; a difference means our tree is not the ensemble's. */
void ens_check_digest(struct ensemble *e, uint32_t from, struct jute_reader *rd)
{
    int32_t epoch;
    int64_t zxid, digest;
    jute_read_int(rd, &epoch);
    jute_read_long(rd, &zxid);
    jute_read_long(rd, &digest);
    /* Only our leadership's frames (one queued on a link during a partition
     * may arrive long after), and never zxid 0: before the first txn a tree
     * holds only what each member set up for itself at start. */
    if (rd->error || from != e->leader_id || (uint32_t)epoch != e->epoch || zxid == 0 ||
        e->role == ZAB_LEADING || !e->serving)
        return;
    size_t n = e->digest_next < DIGEST_RING ? e->digest_next : DIGEST_RING;
    for (size_t k = 1; k <= n; k++) {
        const struct digest_mark *d = &e->digests[(e->digest_next - k) % DIGEST_RING];
        if (d->zxid < (uint64_t)zxid)
            return; /* older than what we remember, or we never applied it */
        if (d->zxid != (uint64_t)zxid)
            continue;
        if (d->digest == (uint64_t)digest)
            return;
        zn_log_exit(1,
                    "FATAL: this member's tree differs from the leader's at zxid=0x%" PRIx64
                    " (digest 0x%016" PRIx64 " here, 0x%016" PRIx64 " on leader %u): it refuses to "
                    "follow and must be rebuilt: stop it, move its dataDir's store away (keep myid) "
                    "and start it again to load the leader's snapshot",
                    (uint64_t)zxid, d->digest, (uint64_t)digest, from);
    }
}

void ens_install_snapshot(struct ensemble *e, uint64_t zxid, const uint8_t *data, uint32_t size)
{
    struct server *srv = e->srv;
    struct snapxfer_ref ref;
    bool from_file = ens_snapxfer_parse_ref(data, size, &ref);
    struct tree *fresh = from_file ? ens_snapxfer_take_tree(e, zxid) : tree_new();
    if (!fresh && from_file)
        ens_fatal("the leader's snapshot file was not received before its SYNC", ZN_SYSTEMERROR);
    if (!fresh)
        ens_fatal("out of memory installing a snapshot", ZN_NOMEMORY);
    int rc = from_file ? 0 : tree_deserialize(fresh, data, size);
    if (rc != 0)
        ens_fatal("the leader's snapshot does not load", rc);
    ens_close_all_clients(srv, "this member is installing a snapshot");
    rc = store_truncate_after(srv->store, zxid);
    if (rc != 0)
        ens_fatal("cannot truncate the log for a snapshot", rc);
    if (from_file) {
        /* received whole as snapshot.<zxid>.tmp and checked (snapxfer.c) */
        rc = store_install_snapshot_file(srv->store, zxid);
        if (rc != 0)
            ens_fatal("cannot store the leader's snapshot", rc);
    } else {
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy)
            ens_fatal("out of memory installing a snapshot", ZN_NOMEMORY);
        memcpy(copy, data, size);
        rc = store_snapshot(srv->store, zxid, copy, size);
        if (rc != 0) {
            free(copy);
            ens_fatal("cannot store the leader's snapshot", rc);
        }
    }
    ens_appended_truncate(e, 0);
    /* Replace the tree, the prep built on it, and the session table. */
    prep_free(srv->prep);
    tree_free(srv->tree);
    srv->tree = fresh;
    srv->prep = prep_new(srv->tree);
    if (!srv->prep)
        ens_fatal("out of memory installing a snapshot", ZN_NOMEMORY);
    acl_install(srv);
    session_clear_all(srv);
    tree_for_each_session(srv->tree, session_add_recovered, srv);
    srv->snapshots.txns_since = 0;
    srv->snapshots.bytes_since = 0;
    ZN_INFO("installed the leader's snapshot zxid=0x%" PRIx64 " bytes=%" PRIu64 " nodes=%zu%s", zxid,
            from_file ? ref.len : (uint64_t)size, tree_node_count(srv->tree),
            from_file ? " (its file)" : "");
}
