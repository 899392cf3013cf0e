/*
 * The write pipeline: prep (validated against the tree as it will be) ->
 * txn with the next zxid -> the log (group commit: the store batches what
 * queued meanwhile under one fsync) -> durable -> applied to the tree in
 * zxid order (watches fire) -> answered in each connection's order.
 *
 * Failure of the log (a full disk, an I/O error): every write not yet
 * durable fails with an error the client sees (ZN_SYSTEMERROR, logged with
 * the reason), the log is truncated back to what was applied, and the
 * pipeline restarts with zxids beyond any it handed out, so a late callback
 * for a truncated entry can never be mistaken for a new one.  Nothing that
 * was answered as failed is ever applied, before or after a restart.
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/random.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "acl.h"
#include "assert.h"
#include "check.h"
#include "ensemble.h"
#include "snapshot.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "txn.h"

/* ---- the write pipeline ---- */

static void pipeline_append_staged(struct server *srv);

static void pending_push(struct server *srv, struct request *r)
{
    r->in_pipeline = true;
    if (srv->pending_tail)
        srv->pending_tail->next_pending = r;
    else
        srv->pending_head = r;
    srv->pending_tail = r;
    if (!srv->staged)
        srv->staged = r;
}

static struct request *pending_pop(struct server *srv)
{
    struct request *r = srv->pending_head;
    srv->pending_head = r->next_pending;
    if (!srv->pending_head)
        srv->pending_tail = NULL;
    if (srv->staged == r)
        srv->staged = r->next_pending;
    r->next_pending = NULL;
    r->in_pipeline = false;
    return r;
}

/* Fails every prepared request from the head on (the log could not take
 * them), truncates the log back to the tree, and restarts prep. */
static void pipeline_fail_all(struct server *srv, int status)
{
    ZN_ERROR("the log could not be written (%s): failing every write not yet durable; "
             "they were not applied", zn_strerror(status));
    int64_t applied = tree_last_zxid(srv->tree);
    int rc = store_truncate_after(srv->store, (uint64_t)applied);
    if (rc != 0)
        ZN_ERROR("could not truncate the log after zxid=0x%" PRIx64 ": %s", (uint64_t)applied,
                 zn_strerror(rc));
    prep_reset(srv->prep);
    while (srv->pending_head) {
        struct request *r = pending_pop(srv);
        if (r->hdr.type == ZN_OP_CREATESESSION || r->hdr.type == REQUEST_CONNECT) {
            if (r->conn)
                r->conn->close_after_flush = true;
        }
        if (r->hdr.type == ZN_OP_CLOSESESSION && !r->conn) {
            struct session *s = session_find(srv, r->session_id);
            if (s)
                s->closing = false; /* expiry will try again */
        }
        r->err = ZN_SYSTEMERROR;
        r->zxid = 0;
        request_finish(srv, r);
    }
}

static void release_malloced(void *blob, size_t len)
{
    (void)len;
    free(blob);
}

/* A snapshot serialised by a child (snapshot.c) is ready: store it. */
static void on_snapshot_ready(struct server *srv, int64_t zxid, uint8_t *blob, size_t len,
                              void (*release)(void *blob, size_t len))
{
    if (!blob || !srv->store) {
        if (blob)
            release(blob, len); /* the server is stopping */
        return;
    }
    struct store_stats st;
    store_stats(srv->store, &st);
    if ((uint64_t)zxid <= st.snapshot_zxid || (uint64_t)zxid <= st.snapshot_zxid_queued) {
        /* A newer snapshot was stored, or handed to the store, meanwhile: the
         * leader's, installed while this one was being serialised (a fault
         * run's member died on the store's assertion when only stored ones
         * were compared). */
        release(blob, len);
        return;
    }
    int rc = store_snapshot_release(srv->store, (uint64_t)zxid, blob, len, release);
    if (rc != 0) {
        release(blob, len);
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed: %s", (uint64_t)zxid, zn_strerror(rc));
        return;
    }
    srv->snapshot_stored_zxid = zxid;
    srv->snapshot_stored_s = (int64_t)time(NULL);
    if (srv->ens)
        ensemble_snapshot_stored(srv, zxid);
}

/*
 * How many txns until the next snapshot: in an ensemble, as ZooKeeper does, a
 * number drawn anew after every snapshot from [snapCount/2 + 1, snapCount],
 * so that the members, which apply the same txns, do not all take their
 * snapshots at the same zxid (standalone: snapCount).  A snapshot costs its member a fork and the
 * writing of the blob; when every member paid that at once, a write waited
 * for the slowest of a quorum, and that was the ensemble's write p99 at a
 * moderate rate (bench/PROFILE.md item 6).
 */
static int64_t snapshot_threshold(struct server *srv)
{
    int64_t count = srv->cfg.snap_count;
    /* Standalone there are no members to keep apart, and a smaller draw would
     * only mean more snapshots: every snapCount txns, the top of the range. */
    if (count < 2 || !srv->ens)
        return count;
    if (srv->snapshot_rng == 0) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
            seed = uv_hrtime();
        srv->snapshot_rng = seed ^ ((uint64_t)srv->cfg.my_id << 32) ^ 0x9e3779b97f4a7c15ull;
        if (srv->snapshot_rng == 0)
            srv->snapshot_rng = 1;
    }
    /* xorshift64 */
    uint64_t x = srv->snapshot_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    srv->snapshot_rng = x;
    int64_t half = count / 2;
    return half + 1 + (int64_t)(x % (uint64_t)(count - half));
}

/*
 * Every snapshot_threshold txns, a snapshot; serialised by a forked child so
 * the loop never stalls for it, or on the loop if no child can be started.
 */
void pipeline_maybe_snapshot(struct server *srv)
{
    if (srv->snapshot_threshold == 0)
        srv->snapshot_threshold = snapshot_threshold(srv);
    if (srv->txns_since_snapshot < srv->snapshot_threshold || snapshot_in_progress(srv))
        return;
    srv->txns_since_snapshot = 0;
    srv->snapshot_threshold = snapshot_threshold(srv);
    if (snapshot_start(srv, on_snapshot_ready) == 0)
        return;
    struct jute_writer w;
    jute_writer_init(&w);
    uint64_t start = server_now_ms();
    if (tree_serialize(srv->tree, &w) != 0 || w.error) {
        ZN_ERROR("snapshot: cannot serialise the tree");
        jute_writer_free(&w);
        return;
    }
    size_t len;
    uint8_t *blob = jute_writer_take(&w, &len);
    jute_writer_free(&w);
    ZN_INFO("snapshot serialised on the loop zxid=0x%" PRIx64 " bytes=%zu ms=%" PRIu64,
            (uint64_t)tree_last_zxid(srv->tree), len, server_now_ms() - start);
    on_snapshot_ready(srv, tree_last_zxid(srv->tree), blob, len, release_malloced);
}

void pipeline_tree_event(void *ctx, int32_t event_type, const char *path)
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
void pipeline_after_apply(struct server *srv, const struct txn *t, struct request *r)
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

static void apply_request(struct server *srv, struct request *r)
{
    if (!r->has_txn) {
        request_finish(srv, r); /* prep's error, now in its place in the order */
        return;
    }
    memset(&r->resp, 0, sizeof r->resp);
    int rc = tree_apply(srv->tree, &r->txn, pipeline_tree_event, srv, &r->arena, &r->resp);
    prep_applied(srv->prep, r->zxid);
    srv->txns_since_snapshot++;
    if (rc != 0) {
        /* A txn prep produced always applies; this is a bug, loudly. */
        ZN_ERROR("cannot apply zxid=0x%" PRIx64 " op=%s: %s", (uint64_t)r->zxid,
                 zn_op_name(r->txn.hdr.type), zn_strerror(rc));
        r->err = ZN_SYSTEMERROR;
    } else {
        r->err = r->resp.err;
        pipeline_after_apply(srv, &r->txn, r);
    }
    check_after_apply(srv, r->zxid);
    request_finish(srv, r);
}

void pipeline_durable(void *ctx, uint64_t last_zxid, int status)
{
    struct server *srv = ctx;
    if (srv->ens) {
        ensemble_durable(srv, last_zxid, status);
        return;
    }
    if (status != 0) {
        if (srv->pending_head && srv->pending_head->appended &&
            (uint64_t)srv->pending_head->zxid <= last_zxid)
            pipeline_fail_all(srv, status);
        server_flush(srv);
        return;
    }
    while (srv->pending_head && srv->pending_head->appended &&
           (uint64_t)srv->pending_head->zxid <= last_zxid)
        apply_request(srv, pending_pop(srv));
    pipeline_append_staged(srv);
    pipeline_maybe_snapshot(srv);
    server_flush(srv);
}

static void pipeline_append_staged(struct server *srv)
{
    while (srv->staged) {
        struct request *r = srv->staged;
        if (!r->has_txn) {
            srv->staged = r->next_pending;
            continue;
        }
        int rc = store_append(srv->store, (uint64_t)r->zxid, r->txn_bytes, r->txn_len);
        if (rc == ZN_THROTTLEDOP)
            return; /* the store's queue is full: retried after the next batch */
        if (rc != 0) {
            pipeline_fail_all(srv, rc);
            return;
        }
        r->appended = true;
        free(r->txn_bytes); /* the store copied it */
        r->txn_bytes = NULL;
        srv->staged = r->next_pending;
    }
}

/* r waits before the store: it keeps its own copy of the txn encoded in
 * srv->log_scratch (the buffer every txn is encoded into, which the store
 * copies when it takes the txn at once). */
static int keep_txn_bytes(const struct jute_writer *scratch, struct request *r)
{
    ZN_ASSERT(r->txn_bytes == NULL && scratch->len > 0);
    r->txn_bytes = malloc(scratch->len);
    if (!r->txn_bytes)
        return ZN_NOMEMORY;
    memcpy(r->txn_bytes, scratch->data, scratch->len);
    r->txn_len = scratch->len;
    return 0;
}

/*
 * Puts a prepared write in the pipeline, or finishes it with prep's error.
 * A write that failed validation is still queued behind every write prepared
 * before it (with nothing to log): it was judged against the tree as those
 * will leave it, so its answer must not overtake them, or a client could be
 * told "node exists" and then read that it does not.
 */
static void pipeline_submit(struct server *srv, struct request *r, int prep_rc)
{
    /* prep saw this zxid even when it refused: never hand it out again
     * (ZooKeeper too spends a zxid on every refused write). */
    srv->next_zxid++;
    if (prep_rc != 0) {
        if (r->hdr.type == ZN_OP_MULTI && r->resp.result_count > 0)
            r->err = ZN_OK; /* ZooKeeper: the per-op results carry the errors */
        else
            r->err = prep_rc;
        r->zxid = 0;
        if (!srv->pending_head) {
            r->done = true;
            return;
        }
        r->zxid = srv->pending_tail->zxid;
        r->appended = true; /* nothing to log */
        pending_push(srv, r);
        if (srv->staged == r)
            srv->staged = NULL;
        return;
    }
    r->has_txn = true;
    r->txn.hdr.zxid = r->zxid;
    jute_writer_reset(&srv->log_scratch);
    /* Nothing ahead of it waits for the store: the store copies the txn
     * straight from the scratch buffer, and the request keeps no copy. */
    bool store_takes_now = srv->staged == NULL;
    if (txn_encode(&srv->log_scratch, &r->txn) != 0 || srv->log_scratch.error ||
        (!store_takes_now && keep_txn_bytes(&srv->log_scratch, r) != 0)) {
        ZN_ERROR("cannot encode txn zxid=0x%" PRIx64, (uint64_t)r->zxid);
        prep_reset(srv->prep); /* the overlay holds a txn that will never apply */
        r->err = ZN_SYSTEMERROR;
        r->done = true;
        return;
    }
    pending_push(srv, r);
    if (!store_takes_now) {
        pipeline_append_staged(srv);
        return;
    }
    ZN_ASSERT(srv->staged == r);
    int rc = store_append(srv->store, (uint64_t)r->zxid, srv->log_scratch.data, srv->log_scratch.len);
    if (rc == 0) {
        r->appended = true;
        srv->staged = r->next_pending;
    } else if (rc == ZN_THROTTLEDOP) {
        /* The store's queue is full: r waits, so it needs its own copy. */
        if (keep_txn_bytes(&srv->log_scratch, r) != 0)
            pipeline_fail_all(srv, ZN_NOMEMORY);
    } else {
        pipeline_fail_all(srv, rc);
    }
}

void pipeline_submit_write(struct server *srv, struct request *r)
{
    struct session *s = session_find(srv, r->session_id);
    if (!s || s->closing) {
        r->err = ZN_SESSIONEXPIRED;
        r->done = true;
        return;
    }
    if (srv->ens) {
        ensemble_submit_write(srv, r);
        return;
    }
    r->zxid = srv->next_zxid;
    int rc;
    if (r->hdr.type == ZN_OP_CLOSESESSION) {
        s->closing = true;
        rc = prep_close_session(srv->prep, r->session_id, r->zxid, server_wall_ms(), &r->arena, &r->txn);
    } else {
        struct prep_caller who;
        acl_caller(srv, r, &who);
        rc = prep_request(srv->prep, &who, &r->req, r->zxid, server_wall_ms(), &r->arena, &r->txn, &r->resp);
    }
    pipeline_submit(srv, r, rc);
}

/*
 * A write made by the server itself (deleting an empty container or an
 * expired TTL node), as session 0.  req and everything it points to are
 * borrowed for the call (prep copies what the txn keeps into the request's
 * arena).  Returns 0 when prepared, or prep's error (the node changed
 * meanwhile: nothing to do).
 */
int pipeline_submit_system(struct server *srv, const struct zn_request *req)
{
    if (srv->ens)
        return ensemble_submit_system(srv, req);
    struct request *r = request_new(srv, NULL);
    if (!r)
        return ZN_NOMEMORY;
    r->hdr.type = req->type;
    r->is_write = true;
    r->zxid = srv->next_zxid;
    static const struct prep_caller server_itself = {0};
    int rc = prep_request(srv->prep, &server_itself, req, r->zxid, server_wall_ms(), &r->arena, &r->txn,
                          &r->resp);
    pipeline_submit(srv, r, rc);
    if (r->done) {
        /* refused at once (nothing pending): nothing to answer */
        request_free(srv, r);
    }
    return rc;
}

/* A new session: its createSession txn goes through the log like any write. */
void pipeline_submit_connect(struct server *srv, struct request *r)
{
    if (srv->ens) {
        ensemble_submit_connect(srv, r);
        return;
    }
    r->zxid = srv->next_zxid;
    int rc = prep_create_session(srv->prep, r->session_id, r->timeout_ms, r->zxid,
                                 server_wall_ms(), &r->arena, &r->txn);
    pipeline_submit(srv, r, rc);
}

void pipeline_expire_session(struct server *srv, struct session *s)
{
    if (srv->ens) {
        ensemble_expire_session(srv, s);
        return;
    }
    struct request *r = request_new(srv, NULL);
    if (!r)
        return; /* tried again on the next tick */
    s->closing = true;
    r->session_id = s->id;
    r->hdr.type = ZN_OP_CLOSESESSION;
    r->hdr.xid = 0;
    r->is_write = true;
    r->zxid = srv->next_zxid;
    int rc = prep_close_session(srv->prep, s->id, r->zxid, server_wall_ms(), &r->arena, &r->txn);
    pipeline_submit(srv, r, rc);
    if (r->done) {
        s->closing = false;
        request_free(srv, r);
    }
}

/* ---- recovery and start ---- */

static int recover_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct server *srv = ctx;
    int rc = tree_deserialize(srv->tree, data, len);
    int32_t format = tree_snapshot_format(data, len);
    if (rc != 0 && format >= 0 && (format < TREE_SNAPSHOT_OLDEST_VERSION || format > TREE_SNAPSHOT_VERSION))
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " in %s is in format %d, written by another "
                 "version of znoded; this one reads formats 2 to %d. Run the version that wrote it; in an "
                 "ensemble, this member may instead start with an empty data directory and "
                 "fetch a snapshot from the others", zxid, srv->cfg.data_dir, (int)format, TREE_SNAPSHOT_VERSION);
    else if (rc != 0)
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " cannot be loaded: %s", zxid, zn_strerror(rc));
    return rc;
}

static int recover_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct server *srv = ctx;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader rd;
    jute_reader_init(&rd, data, len, &arena);
    struct txn t;
    int rc = txn_decode(&rd, &t);
    if (rc == 0)
        rc = tree_apply(srv->tree, &t, NULL, NULL, NULL, NULL);
    zn_arena_free(&arena);
    if (rc != 0)
        ZN_ERROR("log entry zxid=0x%" PRIx64 " cannot be applied: %s", zxid, zn_strerror(rc));
    srv->txns_since_snapshot++;
    return rc;
}


int pipeline_recover(struct server *srv)
{
    uint64_t start = server_now_ms();
    int rc = store_recover(srv->store, recover_snapshot, recover_entry, srv);
    if (rc != 0)
        return rc;
    rc = tree_for_each_session(srv->tree, session_add_recovered, srv);
    if (rc != 0)
        return rc;
    int64_t last = tree_last_zxid(srv->tree);
    if ((int64_t)store_last_zxid(srv->store) > last)
        last = (int64_t)store_last_zxid(srv->store);
    srv->next_zxid = last + 1;
    ZN_INFO("recovered zxid=0x%" PRIx64 " nodes=%zu sessions=%zu ms=%" PRIu64,
            (uint64_t)tree_last_zxid(srv->tree), tree_node_count(srv->tree), zn_htable_count(&srv->sessions),
            server_now_ms() - start);
    return 0;
}
