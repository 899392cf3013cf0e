/*
 * The ensemble driver: carries out what the replication core asks for and
 * feeds it what happens, and turns the core's committed entries into applied
 * transactions and client replies.
 *
 * Design notes.
 *
 * One member or many.  A standalone server (no server.N lines) is an
 * ensemble of one: a single voter with no transport, which leads at once (a
 * new epoch at every start, as every new leadership has) and commits each
 * proposal in the ready batch that reports it durable, so its writes take
 * the ensemble's path with no tick and no round trip between its fsync and
 * its reply (tests/sim/scenarios/single_voter.txt).  What differs for users
 * follows the configuration (config_standalone), not the path: srvr and
 * mntr say "standalone", reconfig is answered as ZooKeeper's standalone
 * server answers it (prep.c), the AdminServer's leader command says the
 * server is not initialized.
 *
 * Writes.  Every write (create, delete, setData, setACL, multi, session
 * create and close) is prepared on the leader only, against the tree as it
 * will be (prep's overlay), stamped with the zxid the core will give it
 * (zab_next_zxid), and proposed.  A follower forwards its clients' writes to
 * the leader as raw request bodies ('F' frames); the leader prepares them
 * exactly as its own.  A write prep refuses is proposed too, as ZooKeeper's
 * ERROR txn: it then reaches the member holding the client's connection
 * through the same ordered commit stream as every other write, so a client's
 * replies never overtake each other and a refusal never overtakes a write it
 * was judged against.
 *
 * Replies.  Every member applies every committed txn in zxid order.  The
 * member holding the session's connection finds the request the txn answers
 * by (session id, cxid): per session, txns commit in the order the leader
 * received them, which is the order the member forwarded them, so the match
 * is the first unanswered write of that connection with that cxid.
 *
 * Sessions are global: created and closed by txns.  Members tell the leader
 * which sessions showed activity ('T' frames, every half tickTime); the
 * leader alone expires sessions (session.c's timer runs only on the leader),
 * and a new leader gives every session a full timeout.
 *
 * sync: the leader answers a member's 'S' frame with its last proposed zxid
 * ('O'); the member answers the client once it has applied that zxid.
 *
 * Serving.  A member serves clients only while it follows or leads an
 * established leader.  When that ends, it closes every client connection
 * (their clients reconnect to a member that can serve, keeping their
 * sessions), as ZooKeeper does; requests in flight then get no reply rather
 * than a false one.  A forwarded request that gets no commit within twice
 * syncLimit x tickTime also closes its connection.
 *
 * Durability.  Entries the core hands out are appended to the store; their
 * durability is reported back with zab_persisted, in order.  Because the
 * store's batch reports may cover entries the core has since truncated, the
 * driver keeps the zxids it appended and reports the highest one still valid
 * (invariant 2 below).  A failed log write: see persist_failed.
 *
 * Reconfiguration (ZooKeeper 3.5's reconfig).  The leader turns a reconfig
 * request into the new server list (incremental: joining and leaving;
 * bulk: newMembers), checks it as PrepRequestProcessor does, and proposes it
 * with zab_propose_config_attached: the core replicates the ids, the
 * attachment carries the client (session, cxid) and the server lines.  In
 * the store a CONFIG entry is kept behind CONFIG_ENTRY_MAGIC so recovery
 * hands it back to the core with its kind.  Every member adds the servers
 * of a CONFIG entry to its transport as soon as the entry is in its log (a
 * joiner must be reachable to sync and ack before the entry commits); when
 * it commits (ready.config_changed) the member writes the dynamic config
 * file, replaces its server list, updates /zookeeper/config, drops the
 * peers that left, and the member holding the client's connection answers
 * with the new config and its stat.  A member the new config leaves out
 * stops serving (it closes its clients and refuses new ones) and says so
 * in its log; it stays up until stopped, answering election messages for
 * ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS syncLimits, then leaves the peer mesh.
 *
 * Digests.  Sync decides DIFF/TRUNC/SNAP on zxids alone, so two members at
 * one zxid with different trees (a store that lost data, a bug) would stay
 * diverged through every election.  Every member keeps the digest of its
 * tree after each of its last DIGEST_RING applied entries; the leader sends
 * its digest at its last applied zxid ('D' frames, every half tickTime, so
 * right after a sync too), and a member that applied that zxid with another
 * digest refuses to follow: it stops with one line saying it must be
 * rebuilt from the leader's snapshot, rather than serve a diverged tree.
 *
 * Invariants.
 *   1. Nothing is applied to the tree before the core reports it committed;
 *      committed entries are applied once each, in zxid order.
 *   2. zab_persisted(z) is called only for z appended since the last
 *      truncation and covered by a successful store batch.
 *   3. Epochs are durable (store_meta_put) before any message of the ready
 *      batch that required them is sent.
 *   4. A write answered as failed is never applied: the entries of a log
 *      write that failed are withdrawn from the core and the store before
 *      their writes are answered (persist_failed), or the member stops.
 *
 * Files: ensemble.c (the ready loop, sending, the tick), ensemble_propose.c
 * (the leader's prepare and propose), ensemble_forward.c (member and leader
 * frames), ensemble_apply.c (commits, syncs, digests, snapshots from the
 * leader), ensemble_reconfig.c, ensemble_start.c, around
 * ensemble_internal.h.
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

bool ensemble_serving(const struct server *srv) { return srv->ens && srv->ens->serving; }
bool ensemble_removed(const struct server *srv) { return srv->ens && srv->ens->removed; }

bool ensemble_is_leader(const struct server *srv)
{
    return srv->ens && srv->ens->role == ZAB_LEADING && srv->ens->phase == ZAB_PHASE_BROADCAST;
}

const char *ensemble_role_name(const struct server *srv)
{
    const struct ensemble *e = ens_of(srv);
    if (!e || !e->serving)
        return "looking";
    return e->role == ZAB_LEADING ? "leader" : e->role == ZAB_OBSERVING ? "observer" : "follower";
}

uint32_t ensemble_epoch(const struct server *srv) { return srv->ens ? srv->ens->epoch : 0; }
uint32_t ensemble_leader_id(const struct server *srv) { return srv->ens ? srv->ens->leader_id : 0; }

/* On the leader: the peers whose link is up (only the observers when
 * only_observers), the ids of the first cap of them in ids; how many. */
static size_t connected_peers(const struct server *srv, bool only_observers, uint32_t *ids,
                              size_t cap)
{
    const struct ensemble *e = ens_of(srv);
    if (!e || e->role != ZAB_LEADING || !e->tp)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < transport_peer_count(e->tp); i++) {
        struct transport_peer_stats ps;
        if (transport_peer_stats(e->tp, i, &ps) != 0 || !ps.connected)
            continue;
        bool observer = false;
        for (int k = 0; k < srv->cfg.server_count; k++)
            observer |= srv->cfg.servers[k].id == (int)ps.id && srv->cfg.servers[k].observer;
        if (only_observers && !observer)
            continue;
        if (n < cap)
            ids[n] = ps.id;
        n++;
    }
    return n;
}

int ensemble_synced_followers(const struct server *srv)
{
    return (int)connected_peers(srv, false, NULL, 0);
}

size_t ensemble_synced_observers(const struct server *srv, uint32_t *ids, size_t cap)
{
    return connected_peers(srv, true, ids, cap);
}

/* The member stops at once; the line is its last (zn_log_exit), so an
 * operator, or the fault harness, reads why. */
void ens_fatal(const char *what, int rc)
{
    zn_log_exit(1, "FATAL: %s: %s; this member stops (the ensemble keeps every acknowledged write)",
                what, zn_strerror(rc));
}

/* ---- sending ---- */

void ens_send_bytes(struct ensemble *e, uint32_t to, const uint8_t *data, size_t len)
{
    if (!e->tp)
        return; /* standalone: no one to send to */
    int rc = transport_send(e->tp, to, data, len);
    if (rc != 0 && rc != ZN_CONNECTIONLOSS)
        ZN_DEBUG("peer send to=%u failed: %s", to, zn_strerror(rc));
}

/* The encoding buffer keeps at most this much room between messages. */
#define ENSEMBLE_MSG_BUF_KEEP_BYTES (1u << 20)

static void send_zab(struct ensemble *e, const struct zab_message *m)
{
    /* Encoded in place in a buffer kept across messages: no allocation or
     * extra copy per message (the transport copies the frame once). */
    size_t need = 1 + zab_message_encoded_size(m);
    if (need > e->msg_cap) {
        uint8_t *p = realloc(e->msg_buf, need);
        if (!p)
            return; /* dropped: the protocol resends */
        e->msg_buf = p;
        e->msg_cap = need;
    }
    e->msg_buf[0] = CHANNEL_ZAB;
    int64_t n = zab_message_encode(m, e->msg_buf + 1, need - 1);
    if (n < 0) {
        ZN_ERROR("cannot encode %s: %s", zab_message_type_name(m->type), zab_strerror((int)n));
        return;
    }
    ens_send_bytes(e, m->to, e->msg_buf, 1 + (size_t)n);
    if (e->msg_cap > ENSEMBLE_MSG_BUF_KEEP_BYTES) {
        /* a SNAP (the whole tree): not worth keeping its room for PINGs */
        free(e->msg_buf);
        e->msg_buf = NULL;
        e->msg_cap = 0;
    }
}

/* ---- the ready loop ---- */

static void appended_push(struct ensemble *e, uint64_t zxid)
{
    if (e->appended_count == e->appended_cap) {
        size_t cap = e->appended_cap ? e->appended_cap * 2 : 1024;
        uint64_t *a = malloc(cap * sizeof *a);
        if (!a)
            ens_fatal("out of memory for the append queue", ZN_NOMEMORY);
        for (size_t i = 0; i < e->appended_count; i++)
            a[i] = e->appended[(e->appended_head + i) % e->appended_cap];
        free(e->appended);
        e->appended = a;
        e->appended_head = 0;
        e->appended_cap = cap;
    }
    e->appended[(e->appended_head + e->appended_count) % e->appended_cap] = zxid;
    e->appended_count++;
}

/* Forgets appended zxids above `keep` (they were truncated). */
void ens_appended_truncate(struct ensemble *e, uint64_t keep)
{
    while (e->appended_count > 0 &&
           e->appended[(e->appended_head + e->appended_count - 1) % e->appended_cap] > keep)
        e->appended_count--;
    /* Held entries are in zxid order: the ones above keep are a suffix. */
    struct held_entry **link = &e->held_head;
    struct held_entry *last_kept = NULL;
    while (*link && (*link)->zxid <= keep) {
        last_kept = *link;
        link = &(*link)->next;
    }
    struct held_entry *drop = *link;
    *link = NULL;
    e->held_tail = last_kept;
    while (drop) {
        struct held_entry *next = drop->next;
        free(drop);
        e->held_count--;
        drop = next;
    }
}

/* Appends one entry to the store, or holds it while the store's queue is
 * full or older entries are held (order is kept). */
static void log_append(struct ensemble *e, uint64_t zxid, const uint8_t *data, size_t len)
{
    int rc = e->held_head ? ZN_THROTTLEDOP : store_append(e->srv->store, zxid, data, len);
    if (rc == 0) {
        appended_push(e, zxid);
        return;
    }
    if (rc != ZN_THROTTLEDOP)
        ens_fatal("cannot queue a log entry", rc);
    if (!e->held_head)
        ZN_INFO("the store's queue is full: holding log entries from zxid=0x%" PRIx64
                " until it has room", zxid);
    struct held_entry *h = malloc(sizeof *h + len);
    if (!h)
        ens_fatal("out of memory holding a log entry", ZN_NOMEMORY);
    h->next = NULL;
    h->zxid = zxid;
    h->len = len;
    memcpy(h->data, data, len);
    if (e->held_tail)
        e->held_tail->next = h;
    else
        e->held_head = h;
    e->held_tail = h;
    e->held_count++;
}

/* After a batch: the store's queue has room again for what was held. */
static void log_retry_held(struct ensemble *e)
{
    while (e->held_head) {
        struct held_entry *h = e->held_head;
        int rc = store_append(e->srv->store, h->zxid, h->data, h->len);
        if (rc == ZN_THROTTLEDOP)
            return;
        if (rc != 0)
            ens_fatal("cannot queue a log entry", rc);
        appended_push(e, h->zxid);
        e->held_head = h->next;
        if (!e->held_head)
            e->held_tail = NULL;
        e->held_count--;
        free(h);
    }
}

void ens_close_all_clients(struct server *srv, const char *why)
{
    server_flush(srv); /* replies already answered (a reconfig's, say) go out first */
    while (srv->conns)
        conn_close(srv->conns, why);
}

/* Session state that belongs to one leadership.  An expiry or close the
 * leader proposed may never commit (the leadership ended first), so no
 * session stays marked closing past the leadership that marked it (else this
 * member would later refuse its reconnects and, leading again, answer its
 * every write SESSIONEXPIRED while never expiring it).  And a new leader
 * gives every session a full timeout, as ZooKeeper does: what it knows of
 * when sessions were last heard from is as old as its last leadership (only
 * the leader hears the members' touches), and expiring on that would end
 * every session of a client that was not connected to it. */
static void sessions_new_term(struct server *srv, bool full_timeout)
{
    uint64_t now = server_now_ms();
    struct zn_hiter it;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;) {
        s->closing = false;
        if (full_timeout)
            s->expires_at_ms = now + (uint64_t)s->timeout_ms;
    }
}

static void on_role_change(struct ensemble *e, const struct zab_ready *rd)
{
    struct server *srv = e->srv;
    bool was_serving = e->serving;
    uint32_t old_epoch = e->epoch, old_leader = e->leader_id;
    e->role = rd->role;
    e->phase = rd->phase;
    e->leader_id = rd->leader_id;
    e->epoch = rd->epoch;
    /* A learner serves once its leader is established (zab_ready.serving),
     * as ZooKeeper's do after UPTODATE: not from its own ACKNEWLEADER, when
     * its leader may still wait for other members and could take no write. */
    e->serving = rd->serving;
    if (e->xfer.active && ((e->role != ZAB_FOLLOWING && e->role != ZAB_OBSERVING) || e->leader_id != e->xfer.from))
        ens_snapxfer_abandon(e, "this member no longer follows that leader");
    ZN_INFO("role=%s phase=%s leader=%u epoch=%u serving=%s", zab_role_name(rd->role),
            zab_phase_name(rd->phase), rd->leader_id, rd->epoch, e->serving ? "yes" : "no");
    bool new_leadership = old_epoch != e->epoch || old_leader != e->leader_id;
    if (was_serving && (!e->serving || new_leadership))
        ens_close_all_clients(srv, "this member lost its leader; reconnect to another member");
    if (!was_serving && e->serving) {
        e->unpark_pending = true;
        /* Read-only sessions end when the quorum is back: their clients
         * reconnect and get read-write sessions, as in ZooKeeper. */
        for (struct conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            if (c->read_only)
                conn_close(c, "the quorum is back: read-only session ends");
        }
    }
    if (new_leadership || !e->serving) {
        prep_reset(srv->prep);
        while (e->backlog_head) {
            struct request *r = e->backlog_head;
            e->backlog_head = r->next_pending;
            r->next_pending = NULL;
            r->in_pipeline = false;
            if (r->conn)
                conn_close(r->conn, "leadership changed");
            else
                request_free(e->srv, r);
        }
        e->backlog_tail = NULL;
        e->backlog_count = 0;
        while (e->syncs) {
            struct request *r = e->syncs;
            e->syncs = r->next_pending;
            r->next_pending = NULL;
            r->in_pipeline = false;
            if (!r->conn)
                request_free(e->srv, r);
        }
    }
    /* The core reports discovery, sync and broadcast as three role changes
     * with the same leader and epoch, so "new leadership" is only true at the
     * first of them: a leadership begins when a leader starts serving. */
    bool lead_started = e->role == ZAB_LEADING && e->serving &&
                        !(was_serving && old_leader == e->leader_id && old_epoch == e->epoch);
    if (new_leadership || !e->serving || lead_started)
        sessions_new_term(srv, lead_started);
}

/*
 * A client's request submitted (ensemble_forward.c submit): its proposal,
 * or its forward, waits in the core for the loop turn's ready batch, so the
 * requests of one turn (every packet the poll returned) are appended to the
 * store together, with one wake-up of its writer, and the ready loop, the
 * syncs, the backlog and the flush run once, not once per request.  The
 * batch is processed by ensemble_turn_done, right after the poll's
 * callbacks; the idle handle keeps the loop from
 * blocking in poll meanwhile (a submit from a timer or a write callback,
 * before the poll), and runs the batch itself then.  Any ens_process_ready
 * before then takes the batch.
 */
static void on_ready_idle(uv_idle_t *h) { ens_process_ready(h->data); }

void ens_ready_later(struct ensemble *e)
{
    if (e->ready_later)
        return;
    e->ready_later = true;
    uv_idle_start(&e->ready_idle, on_ready_idle);
}

void ens_process_ready(struct ensemble *e)
{
    struct server *srv = e->srv;
    if (e->ready_later) {
        e->ready_later = false;
        uv_idle_stop(&e->ready_idle);
    }
    while (zab_has_ready(e->zab)) {
        struct zab_ready rd;
        zab_ready(e->zab, &rd);
        if (rd.truncate) {
            int rc = store_truncate_after(srv->store, rd.truncate_to);
            if (rc != 0)
                ens_fatal("cannot truncate the log", rc);
            ens_appended_truncate(e, rd.truncate_to);
            ZN_INFO("log truncated after zxid=0x%" PRIx64, rd.truncate_to);
        }
        if (rd.install_snapshot) {
            ens_install_snapshot(e, rd.snapshot_zxid, rd.snapshot_data, rd.snapshot_size);
            ens_digest_record(e, rd.snapshot_zxid);
        }
        for (size_t i = 0; i < rd.n_entries; i++) {
            const struct zab_entry *en = &rd.entries[i];
            if (en->kind == ZAB_ENTRY_CONFIG) {
                uint8_t *stored = malloc(sizeof CONFIG_ENTRY_MAGIC + en->size);
                if (!stored)
                    ens_fatal("out of memory for a configuration entry", ZN_NOMEMORY);
                memcpy(stored, CONFIG_ENTRY_MAGIC, sizeof CONFIG_ENTRY_MAGIC);
                memcpy(stored + sizeof CONFIG_ENTRY_MAGIC, en->data, en->size);
                log_append(e, en->zxid, stored, sizeof CONFIG_ENTRY_MAGIC + en->size);
                free(stored);
                ens_config_entry_seen(e, en);
            } else {
                log_append(e, en->zxid, en->data, en->size);
            }
        }
        if (rd.write_epochs) {
            int rc = store_meta_put(srv->store, "acceptedEpoch", rd.accepted_epoch);
            if (rc == 0)
                rc = store_meta_put(srv->store, "acceptedLeader", rd.accepted_leader);
            if (rc == 0)
                rc = store_meta_put(srv->store, "currentEpoch", rd.current_epoch);
            if (rc != 0)
                ens_fatal("cannot write the epochs", rc);
        }
        if (rd.config_changed)
            ens_config_activate(e, rd.config, rd.removed);
        for (size_t i = 0; i < rd.n_messages; i++)
            send_zab(e, &rd.messages[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            if (rd.committed[i].kind == ZAB_ENTRY_CONFIG)
                ens_config_entry_applied(e, &rd.committed[i]);
            else
                ens_apply_committed(e, &rd.committed[i]);
            ens_digest_record(e, rd.committed[i].zxid);
        }
        if (rd.role_changed)
            on_role_change(e, &rd);
        if (e->removed && (e->serving || e->srv->conns)) {
            e->serving = false;
            ens_close_all_clients(srv, "this member was removed from the ensemble");
        }
        bool want_snapshot = rd.snapshot_wanted;
        bool installed = rd.install_snapshot;
        uint64_t applied_to = rd.n_committed ? rd.committed[rd.n_committed - 1].zxid : 0;
        zab_advance(e->zab);
        if (e->standalone && applied_to) {
            /* The core keeps its log to sync laggards; a member with no peers
             * has none, so it keeps no window: each entry leaves the core's
             * memory once applied (the store has it), and its buffer is
             * freed at the end of the loop's turn (ensemble_turn_done). */
            zab_compact(e->zab, applied_to);
        }
        if (installed)
            ens_release_heap("the tree a snapshot replaced");
        if (want_snapshot && !ens_snapxfer_offer(e)) {
            /* No snapshot file to name (none taken yet): the tree itself,
             * in one message, within ZAB_SNAPSHOT_BYTES_MAX. */
            struct jute_writer w;
            jute_writer_init(&w);
            if (tree_serialize(srv->tree, &w) == 0 && !w.error) {
                int rc = zab_snapshot_offer(e->zab, (uint64_t)tree_last_zxid(srv->tree), w.data,
                                            (uint32_t)w.len);
                if (rc != 0)
                    ZN_ERROR("cannot offer a snapshot: %s", zab_strerror(rc));
            }
            jute_writer_free(&w);
            ens_release_heap("a snapshot's serialisation");
        }
    }
    ens_finish_syncs(e);
    snapshot_maybe_take(srv);
    ens_drain_backlog(e);
    server_flush(srv);
}

/*
 * The log could not take a batch (a full disk, an I/O error).  One policy for
 * one member and for many: the entries no other member can hold are withdrawn
 * (zab_persist_failed; a single voter ships nothing before it commits), the
 * store is truncated back to the durable point, and the writes they carried
 * fail with ZN_SYSTEMERROR; the member goes on serving and writes again once
 * the disk takes them.  Entries another member may hold cannot be taken back:
 * the member stops, and the ensemble keeps them.  Nothing answered as failed
 * is ever applied, and nothing acknowledged is lost.
 */
static void persist_failed(struct ensemble *e, uint64_t batch_last, int status)
{
    struct server *srv = e->srv;
    if (e->appended_count == 0 || e->appended[e->appended_head] > batch_last)
        return; /* a batch of entries already withdrawn: nothing of it is outstanding */
    int rc = zab_persist_failed(e->zab);
    if (rc != 0) {
        ZN_ERROR("the log could not be written: %s", zab_strerror(rc));
        ens_fatal("the log could not be written", status);
    }
    struct zab_status st;
    zab_status(e->zab, &st);
    uint64_t kept = st.persisted_zxid;
    ZN_ERROR("the log could not be written (%s): failing every write after zxid=0x%" PRIx64
             "; they were not applied", zn_strerror(status), kept);
    rc = store_truncate_after(srv->store, kept);
    if (rc != 0)
        ens_fatal("cannot truncate the log after a failed write", rc);
    ens_appended_truncate(e, kept);
    prep_reset(srv->prep); /* its overlay holds the withdrawn txns */
    for (struct conn *c = srv->conns; c; c = c->next)
        for (struct request *r = c->queue_head; r; r = r->next) {
            if (!r->is_write || r->done || r->in_pipeline || r->zxid <= (int64_t)kept)
                continue;
            if (r->hdr.type == REQUEST_CONNECT)
                c->close_after_flush = true; /* its session was never created */
            r->err = ZN_SYSTEMERROR;
            r->zxid = 0;
            r->done = true;
        }
    if ((uint64_t)tree_last_zxid(srv->tree) >= kept) {
        /* An expiry that was withdrawn is tried again by the session timer. */
        struct zn_hiter it;
        zn_hiter_init(&it, &srv->sessions);
        for (struct session *s; (s = session_next(&it)) != NULL;)
            s->closing = false;
    }
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        request_drain(c);
    }
}

void ensemble_durable(void *ctx, uint64_t last_zxid, int status)
{
    struct server *srv = ctx;
    struct ensemble *e = ens_of(srv);
    if (!e)
        return; /* stopping */
    if (status != 0) {
        persist_failed(e, last_zxid, status);
        ens_process_ready(e);
        return;
    }
    uint64_t persisted = 0;
    while (e->appended_count > 0 && e->appended[e->appended_head] <= last_zxid) {
        persisted = e->appended[e->appended_head];
        e->appended_head = (e->appended_head + 1) % e->appended_cap;
        e->appended_count--;
    }
    if (persisted)
        zab_persisted(e->zab, persisted);
    log_retry_held(e);
    ens_process_ready(e);
}

/* ---- the tick ---- */
void ens_on_tick(uv_timer_t *t)
{
    struct ensemble *e = t->data;
    e->tick_count++;
    if (e->prune_at_tick && e->tick_count >= e->prune_at_tick && e->tp) {
        e->prune_at_tick = 0;
        ens_peers_reconcile(e, &e->srv->cfg, true);
        if (e->removed) {
            /* The grace period has let the others learn the config that
             * removed me; my reconnects would only fill their logs. */
            for (size_t i = 0; i < transport_peer_count(e->tp); i++) {
                struct transport_peer_stats ps;
                if (transport_peer_stats(e->tp, i, &ps) == 0)
                    transport_remove_peer(e->tp, ps.id);
            }
            ZN_INFO("reconfig: removed member id=%u has left the peer mesh", e->my_id);
        }
    } else if (e->peers_dirty) {
        ens_peers_reconcile(e, &e->srv->cfg, false);
    }
    zab_tick(e->zab);
    ens_snapxfer_tick(e);
    /* Compacted entries' buffers: a few per loop turn (ensemble_turn_done),
     * and these when the member is idle (see zab_compact). */
    zab_collect(e->zab, ENSEMBLE_COLLECT_PER_TICK);
    if (e->tick_count % e->touch_every_ticks == 0) {
        ens_send_touches(e);
        ens_expire_forwards(e);
        ens_send_digest(e);
    }
    if (!e->serving)
        conn_expire_parked(e->srv, server_now_ms());
    ens_process_ready(e);
}
