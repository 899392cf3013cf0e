/*
 * The ensemble driver: carries out what the replication core asks for and
 * feeds it what happens, and turns the core's committed entries into applied
 * transactions and client replies.
 *
 * Design notes.
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
 * (invariant 2 below).  A member whose log cannot be written stops (exit 1)
 * after logging why: the ensemble keeps its acknowledged writes on the other
 * members, and the member recovers from its disk or a snapshot on restart.
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
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "assert.h"
#include "check.h"
#include "ensemble.h"
#include "log.h"
#include "prep.h"
#include "request.h"
#include "saslauth.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "transport.h"
#include "tree.h"
#include "txn.h"
#include "zab.h"
#include "zkconfig.h"

/* Channels of the peer transport: byte 0 of every frame. */
enum {
    CHANNEL_ZAB = 'Z',       /* a core message */
    CHANNEL_FORWARD = 'F',   /* member -> leader: a client's write */
    CHANNEL_TOUCH = 'T',     /* member -> leader: sessions that showed activity */
    CHANNEL_SYNC = 'S',      /* member -> leader: a client's sync */
    CHANNEL_SYNC_OK = 'O',   /* leader -> member: sync answered at a zxid */
    CHANNEL_DIGEST = 'D',    /* leader -> member: its tree's digest at a zxid it applied */
};

/* Digests of the tree after each of the last DIGEST_RING applied entries,
 * to compare with the leader's (check_digest). */
#define DIGEST_RING 8192
struct digest_mark {
    uint64_t zxid;
    uint64_t digest;
};

/* After a reconfig commits, the servers it removed stay transport peers for
 * this many syncLimits: time for the COMMIT to reach them and for their
 * votes to be answered with the membership that removed them. */
#define ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS 4

enum forward_kind { FORWARD_REQUEST = 0, FORWARD_CONNECT = 1, FORWARD_CLOSE = 2 };

#define TOUCH_MAX_SESSIONS 65536

struct ensemble {
    struct server *srv;
    struct zab *zab;
    struct transport *tp;
    struct tls_server *quorum_tls; /* sslQuorum / portUnification; NULL: plain */
    uv_timer_t tick;
    uint32_t my_id;
    enum zab_role role;
    enum zab_phase phase;
    uint32_t leader_id;
    uint32_t epoch;
    bool serving;
    uint64_t tick_count;
    uint32_t touch_every_ticks;
    uint64_t last_touch_ms;
    uint64_t forward_timeout_ms;
    /* zxids appended to the store and not yet reported durable, in order */
    uint64_t *appended;
    size_t appended_head, appended_count, appended_cap;
    /* leader: writes waiting for room in the core's window */
    struct request *backlog_head, *backlog_tail;
    size_t backlog_count;
    /* syncs waiting for the tree to reach their target */
    struct request *syncs;
    struct jute_writer out;
    uint8_t *msg_buf;               /* encoded core messages, reused */
    size_t msg_cap;
    struct zn_arena scratch;
    /* dynamic reconfiguration (see "reconfig" below) */
    uint64_t config_applied_zxid;   /* the last CONFIG entry applied (not a tree txn) */
    uint64_t config_text_zxid;      /* the CONFIG entry config_text came with */
    char *config_text;              /* its server lines, as /zookeeper/config holds them */
    bool removed;                   /* a reconfig left this member out: it serves no more */
    bool unpark_pending;            /* serving again: parked connections go on (ensemble_turn_done) */
    struct digest_mark digests[DIGEST_RING]; /* ring, newest at digest_next - 1 */
    size_t digest_next;
    uint64_t last_applied_zxid;
    bool config_ids_only;           /* the active config came without its server lines (SYNC or
                                     * a vote): refreshed when its CONFIG entry reaches the log */
    bool peers_dirty;               /* a transport_add_peer to retry at the next tick */
    uint64_t prune_at_tick;         /* drop the transport peers that left, at this tick (0: none) */
    uint64_t sync_limit_ticks;
};

static struct ensemble *ens_of(const struct server *srv) { return srv->ens; }

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
    if (!e || e->role != ZAB_LEADING)
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
static void fatal(const char *what, int rc)
{
    zn_log_exit(1, "FATAL: %s: %s; this member stops (the ensemble keeps every acknowledged write)",
                what, zn_strerror(rc));
}

/* ---- sending ---- */

static void send_bytes(struct ensemble *e, uint32_t to, const uint8_t *data, size_t len)
{
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
    send_bytes(e, m->to, e->msg_buf, 1 + (size_t)n);
    if (e->msg_cap > ENSEMBLE_MSG_BUF_KEEP_BYTES) {
        /* a SNAP (the whole tree): not worth keeping its room for PINGs */
        free(e->msg_buf);
        e->msg_buf = NULL;
        e->msg_cap = 0;
    }
}

/* ---- applying committed entries ---- */

/* The local request a committed txn answers, if this member holds it. */
static struct request *find_waiting(struct server *srv, const struct txn *t)
{
    if (t->hdr.type == ZN_OP_CREATESESSION) {
        for (struct conn *c = srv->conns; c; c = c->next)
            if (c->state == CONN_OPENING && c->queue_head &&
                c->queue_head->hdr.type == REQUEST_CONNECT &&
                c->queue_head->session_id == t->hdr.session_id && !c->queue_head->done)
                return c->queue_head;
        return NULL;
    }
    struct session *s = session_find(srv, t->hdr.session_id);
    if (!s || !s->conn)
        return NULL;
    for (struct request *r = s->conn->queue_head; r; r = r->next)
        if (r->is_write && !r->done && r->hdr.type != ZN_OP_SYNC && r->hdr.xid == t->hdr.cxid)
            return r;
    return NULL;
}

/* Hands the heap's free pages back to the system after a rare, large free
 * (a tree replaced by a SNAP, a tree serialised for one): glibc keeps them
 * otherwise, and a member's RSS stayed at its high-water mark, tens of MB
 * above its tree (bench/PROFILE.md 7).  malloc_trim releases free pages
 * inside the heap too, not only at its top; it walks the whole heap (5-19 ms
 * of the loop at 700k nodes), so not after every snapshot. */
static void release_heap(const char *what)
{
    uint64_t t0 = uv_hrtime();
    malloc_trim(0);
    ZN_DEBUG("malloc_trim after freeing %s: %llu us", what,
             (unsigned long long)((uv_hrtime() - t0) / 1000));
}

static void finish_syncs(struct ensemble *e)
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
    zab_collect(e->zab, ENSEMBLE_COLLECT_PER_TURN);
    if (e->unpark_pending) {
        /* Here, not in on_role_change: a ConnectRequest goes through
         * submit(), which must not run inside process_ready. */
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
        zab_compact(e->zab, (uint64_t)zxid);
    }
}

static void apply_committed(struct ensemble *e, const struct zab_entry *entry)
{
    struct server *srv = e->srv;
    zn_arena_reset(&e->scratch);
    struct jute_reader rd;
    jute_reader_init(&rd, entry->data, entry->size, &e->scratch);
    struct txn t;
    int rc = txn_decode(&rd, &t);
    if (rc != 0)
        fatal("a committed entry does not decode", rc);
    struct request *r = find_waiting(srv, &t);
    struct zn_response scratch_resp;
    struct zn_response *resp = r ? &r->resp : &scratch_resp;
    memset(resp, 0, sizeof *resp);
    rc = tree_apply(srv->tree, &t, pipeline_tree_event, srv, r ? &r->arena : &e->scratch, resp);
    prep_applied(srv->prep, (int64_t)entry->zxid);
    srv->txns_since_snapshot++;
    if (rc != 0) {
        ZN_ERROR("cannot apply zxid=0x%" PRIx64 " op=%s: %s", entry->zxid,
                 zn_op_name(t.hdr.type), zn_strerror(rc));
        if (r) {
            r->err = ZN_SYSTEMERROR;
            request_finish(srv, r);
        }
        return;
    }
    pipeline_after_apply(srv, &t, r);
    check_after_apply(srv, (int64_t)entry->zxid);
    if (r) {
        r->zxid = (int64_t)entry->zxid;
        r->err = resp->err;
        if (t.hdr.type == ZN_OP_MULTI && resp->result_count > 0)
            r->err = ZN_OK; /* per-op results carry the errors */
        request_finish(srv, r);
    }
}

/* ---- reconfig ---- */

/* A CONFIG entry in the store: this prefix, then the core's data.  A txn
 * starts with its session id, and no server makes this one (its low bytes
 * are not a time a server could start at); the membership that follows must
 * also decode. */
static const uint8_t CONFIG_ENTRY_MAGIC[8] = ENSEMBLE_CONFIG_ENTRY_MAGIC;
/* Attachment layout (jute): session id (long), cxid (int), text (buffer). */
#define RECONFIG_TEXT_MAX_BYTES ZKCONFIG_TEXT_MAX_BYTES

static void close_all_clients(struct server *srv, const char *why);

struct config_attachment {
    int64_t session_id;
    int32_t cxid;
    const char *text; /* NUL-terminated copy in the arena */
};

/* Splits a CONFIG entry's data into its membership and attachment (the
 * arena holds the text).  Returns 0 or ZN_MARSHALLINGERROR. */
static int config_entry_parse(struct zn_arena *arena, const uint8_t *data, size_t len,
                              struct zab_membership *m, struct config_attachment *out)
{
    int64_t used = zab_membership_decode_prefix(data, len, m);
    if (used < 0)
        return ZN_MARSHALLINGERROR;
    struct jute_reader rd;
    jute_reader_init(&rd, data + used, len - (size_t)used, arena);
    struct jute_buf text;
    jute_read_long(&rd, &out->session_id);
    jute_read_int(&rd, &out->cxid);
    jute_read_buffer(&rd, &text);
    if (rd.error || text.len < 0 || text.len > RECONFIG_TEXT_MAX_BYTES)
        return ZN_MARSHALLINGERROR;
    char *copy = zn_arena_alloc(arena, (size_t)text.len + 1);
    if (!copy)
        return ZN_NOMEMORY;
    memcpy(copy, text.data, (size_t)text.len);
    copy[text.len] = '\0';
    out->text = copy;
    return 0;
}

/* Makes every server of cfg (but me and members a reconfig removed) a
 * transport peer; with prune, drops the transport peers cfg does not name
 * (at commit: ZooKeeper closes its connections to removed servers). */
static void peers_reconcile(struct ensemble *e, const struct config *cfg, bool prune)
{
    e->peers_dirty = false;
    for (int i = 0; i < cfg->server_count; i++) {
        const struct config_server *s = &cfg->servers[i];
        if (s->id == (int)e->my_id || s->not_member)
            continue;
        struct transport_peer p = {.id = (uint32_t)s->id, .port = s->peer_port};
        snprintf(p.host, sizeof p.host, "%s", s->host);
        int rc = transport_add_peer(e->tp, &p);
        if (rc == ZN_THROTTLEDOP)
            e->peers_dirty = true; /* its old connections still closing */
        else if (rc != 0)
            ZN_WARN("reconfig: cannot add peer id=%d %s:%d: %s", s->id, s->host, s->peer_port,
                    zn_strerror(rc));
    }
    if (!prune)
        return;
    for (size_t i = 0; i < transport_peer_count(e->tp); i++) {
        struct transport_peer_stats ps;
        if (transport_peer_stats(e->tp, i, &ps) != 0)
            continue;
        bool named = false;
        for (int k = 0; k < cfg->server_count; k++)
            named |= cfg->servers[k].id == (int)ps.id && !cfg->servers[k].not_member;
        if (!named)
            transport_remove_peer(e->tp, ps.id); /* ZN_BADARGUMENTS if already removed */
    }
}

static void config_activate(struct ensemble *e, const struct zab_membership *m, bool removed);

/* A CONFIG entry reached the log (appended or recovered): remember its
 * server lines for its commit, and reach its new servers now.  If it is the
 * config already active from ids alone (a member that learned it from a
 * vote, then synced the entry), its server lines replace the guessed ones. */
static void config_entry_seen(struct ensemble *e, const struct zab_entry *entry)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zab_membership m;
    struct config_attachment att;
    struct config *next = malloc(sizeof *next);
    char err[256];
    if (next && config_entry_parse(&arena, entry->data, entry->size, &m, &att) == 0) {
        char *copy = strdup(att.text);
        if (copy) {
            free(e->config_text);
            e->config_text = copy;
            e->config_text_zxid = entry->zxid;
        }
        *next = e->srv->cfg;
        if (config_set_membership(next, att.text, err, sizeof err) == 0)
            peers_reconcile(e, next, false);
        else
            ZN_WARN("reconfig: entry zxid=0x%" PRIx64 " has bad server lines: %s", entry->zxid, err);
    }
    free(next);
    zn_arena_free(&arena);
    if (e->config_ids_only && e->config_text_zxid == entry->zxid &&
        entry->zxid == e->srv->cfg.config_version) {
        m.version = entry->zxid;
        config_activate(e, &m, e->removed);
    }
}

/* ready.config_changed: the membership m is committed.  Durable before the
 * batch's messages go out (the dynamic file), then the server list, the
 * transport and /zookeeper/config follow it. */
static void config_activate(struct ensemble *e, const struct zab_membership *m, bool removed)
{
    struct server *srv = e->srv;
    struct config *next = malloc(sizeof *next);
    if (!next)
        fatal("out of memory activating a configuration", ZN_NOMEMORY);
    *next = srv->cfg;
    char err[256];
    bool have_text = e->config_text && e->config_text_zxid == m->version;
    if (have_text && config_set_membership(next, e->config_text, err, sizeof err) != 0) {
        ZN_ERROR("reconfig: committed config version=0x%" PRIx64 " has bad server lines: %s",
                 m->version, err);
        have_text = false;
        *next = srv->cfg;
    }
    e->config_ids_only = !have_text;
    if (!have_text) {
        /* Learned from the leader's SYNC or a vote (ids only): keep the
         * servers we know the addresses of. */
        int n = 0;
        for (int i = 0; i < next->server_count; i++) {
            struct config_server s = next->servers[i];
            bool voter = false, observer = false;
            for (uint32_t k = 0; k < m->n_voters; k++)
                voter |= m->voters[k] == (uint32_t)s.id;
            for (uint32_t k = 0; k < m->n_observers; k++)
                observer |= m->observers[k] == (uint32_t)s.id;
            if (!voter && !observer)
                continue;
            s.observer = observer;
            s.not_member = false;
            next->servers[n++] = s;
        }
        next->server_count = n;
        if ((uint32_t)n != m->n_voters + m->n_observers)
            ZN_WARN("reconfig: config version=0x%" PRIx64 " names %u servers, %d of them with a known address",
                    m->version, m->n_voters + m->n_observers, n);
    }
    bool named = false;
    for (int i = 0; i < next->server_count; i++)
        named |= next->servers[i].id == (int)e->my_id;
    if (!named) {
        /* keep my own line for my peer address; it is no part of the config */
        for (int i = 0; i < srv->cfg.server_count; i++)
            if (srv->cfg.servers[i].id == (int)e->my_id && next->server_count < CONFIG_MAX_SERVERS) {
                next->servers[next->server_count] = srv->cfg.servers[i];
                next->servers[next->server_count++].not_member = true;
            }
    }
    next->config_version = m->version;
    next->dynamic_loaded = true;
    char *text = malloc(ZKCONFIG_TEXT_MAX_BYTES);
    if (!text)
        fatal("out of memory activating a configuration", ZN_NOMEMORY);
    int len = zkconfig_text(next, text, ZKCONFIG_TEXT_MAX_BYTES);
    ZN_ASSERT(len >= 0);
    int rc = config_write_dynamic(next, m->version, text, (size_t)len);
    free(text);
    if (rc != 0)
        fatal("cannot write the dynamic configuration file", rc);
    srv->cfg = *next;
    free(next);
    rc = zkconfig_install(srv);
    if (rc != 0)
        ZN_ERROR("reconfig: cannot update /zookeeper/config: %s", zn_strerror(rc));
    /* ZooKeeper's reconfig is a setData of /zookeeper/config: its watches
     * fire (clients that follow the membership rely on it). */
    pipeline_tree_event(srv, ZN_EVENT_CHANGED, "/zookeeper/config");
    /* New servers now; those that left only after a grace period, so that
     * this batch's COMMIT reaches them and their votes are answered with
     * the membership that removed them (R6) until they learn it. */
    peers_reconcile(e, &srv->cfg, false);
    e->prune_at_tick = e->tick_count + ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS * e->sync_limit_ticks;
    ZN_INFO("reconfig: config version=0x%" PRIx64 " active: voters=%u observers=%u", m->version,
            m->n_voters, m->n_observers);
    if (removed && !e->removed) {
        /* Its clients are closed once this batch's commits are answered
         * (the reconfig's own client among them): process_ready. */
        e->removed = true;
        ZN_WARN("reconfig: this member (id=%u) was removed from the ensemble by config version=0x%" PRIx64
                "; it stops serving clients and takes no further part (stop it)",
                e->my_id, m->version);
    }
}

/* A committed CONFIG entry: no tree txn; the member holding the client
 * that asked for it answers with the new config and its stat. */
static void config_entry_applied(struct ensemble *e, const struct zab_entry *entry)
{
    struct server *srv = e->srv;
    e->config_applied_zxid = entry->zxid;
    /* The tree's last zxid moves to it, as ZooKeeper applies reconfig as a
     * txn: a client that saw this zxid (the reconfig's reply) is refused by
     * any member whose tree is behind what it saw.  An ERROR txn changes
     * nothing else (nor the digest). */
    zn_arena_reset(&e->scratch);
    struct txn marker;
    memset(&marker, 0, sizeof marker);
    marker.hdr.type = ZN_OP_ERROR;
    marker.hdr.zxid = (int64_t)entry->zxid;
    marker.hdr.time_ms = server_wall_ms();
    marker.op.type = ZN_OP_ERROR;
    struct zn_response ignored;
    int rc = tree_apply(srv->tree, &marker, pipeline_tree_event, srv, &e->scratch, &ignored);
    if (rc != 0)
        ZN_ERROR("reconfig: cannot mark config zxid=0x%" PRIx64 " applied: %s", entry->zxid, zn_strerror(rc));
    prep_applied(srv->prep, (int64_t)entry->zxid);
    check_after_apply(srv, (int64_t)entry->zxid);
    zn_arena_reset(&e->scratch);
    struct zab_membership m;
    struct config_attachment att;
    if (config_entry_parse(&e->scratch, entry->data, entry->size, &m, &att) != 0 || att.session_id == 0)
        return;
    struct session *s = session_find(srv, att.session_id);
    if (!s || !s->conn)
        return;
    for (struct request *r = s->conn->queue_head; r; r = r->next) {
        if (!r->is_write || r->done || r->hdr.type != ZN_OP_RECONFIG || r->hdr.xid != att.cxid)
            continue;
        const struct tree_node *n = tree_get(srv->tree, "/zookeeper/config");
        memset(&r->resp, 0, sizeof r->resp);
        r->resp.type = ZN_OP_RECONFIG;
        if (n) {
            struct jute_buf data = tree_node_data(n);
            uint8_t *copy = zn_arena_alloc(&r->arena, data.len > 0 ? (size_t)data.len : 1);
            if (copy && data.len > 0)
                memcpy(copy, data.data, (size_t)data.len);
            r->resp.data = (struct jute_buf){copy, copy ? data.len : -1};
            tree_node_stat(n, &r->resp.stat);
        }
        r->zxid = (int64_t)entry->zxid;
        r->err = ZN_OK;
        request_finish(srv, r);
        return;
    }
}

/* Appends "server.N=..." strings separated by commas to next (bulk form
 * adds them all to an empty list; incremental form replaces same ids).
 * ZooKeeper demands the client port of each joiner (need_client), not of the
 * members of a bulk list. */
static int reconfig_add_servers(struct config *next, const char *list, bool need_client)
{
    char *copy = strdup(list);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq) {
            ZN_WARN("reconfig refused: wrong format of server string '%s'", item);
            rc = ZN_BADARGUMENTS;
            break;
        }
        *eq = '\0';
        struct config_server s;
        char err[256];
        if (strncmp(item, "server.", 7) != 0 ||
            config_parse_server(item, eq + 1, &s, err, sizeof err) != 0) {
            ZN_WARN("reconfig refused: %s", strncmp(item, "server.", 7) ? "expected server.N=..." : err);
            rc = ZN_BADARGUMENTS;
            break;
        }
        if (need_client && s.client_address[0] == '\0') {
            ZN_WARN("reconfig refused: server.%d: each server should have 3 ports specified", s.id);
            rc = ZN_BADARGUMENTS;
            break;
        }
        int at = next->server_count;
        for (int i = 0; i < next->server_count; i++)
            if (next->servers[i].id == s.id)
                at = i;
        if (at == next->server_count && next->server_count >= CONFIG_MAX_SERVERS) {
            rc = ZN_BADARGUMENTS;
            break;
        }
        next->servers[at] = s;
        if (at == next->server_count)
            next->server_count++;
    }
    free(copy);
    return rc;
}

static int reconfig_remove_servers(struct config *next, const char *list)
{
    char *copy = strdup(list);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *end;
        long id = strtol(item, &end, 10);
        while (*end == ' ')
            end++;
        if (end == item || *end != '\0' || id <= 0) {
            ZN_WARN("reconfig refused: '%s' is not a server id", item);
            rc = ZN_BADARGUMENTS;
            break;
        }
        int n = 0;
        for (int i = 0; i < next->server_count; i++)
            if (next->servers[i].id != id)
                next->servers[n++] = next->servers[i];
        next->server_count = n;
    }
    free(copy);
    return rc;
}

static int reconfig_errno(int zab_rc)
{
    switch (zab_rc) {
    case ZAB_ENOQUORUM: return ZN_NEWCONFIGNOQUORUM;
    case ZAB_EBUSY: return ZN_RECONFIGINPROGRESS;
    case ZAB_EINVAL: return ZN_BADARGUMENTS;
    case ZAB_ENOMEM: return ZN_NOMEMORY;
    case ZAB_ENOTLEADER: return ZN_CONNECTIONLOSS;
    default: return ZN_SYSTEMERROR;
    }
}

/* ZooKeeper's PrepRequestProcessor for reconfig, in its order of checks;
 * on success proposes the CONFIG entry (zxid expected) and returns 0. */
static int reconfig_prepare(struct ensemble *e, struct request *r, uint64_t zxid,
                            struct config *next)
{
    struct server *srv = e->srv;
    if (!srv->cfg.reconfig_enabled) {
        ZN_ERROR("Reconfig operation requested but reconfig feature is disabled (reconfigEnabled=false) sid=0x%" PRIx64,
                 (uint64_t)r->session_id);
        return ZN_RECONFIGDISABLED;
    }
    struct zab_status st;
    zab_status(e->zab, &st);
    if (st.reconfig_pending)
        return ZN_RECONFIGINPROGRESS;
    if (r->req.config_id != -1 && (uint64_t)r->req.config_id != st.config.version) {
        ZN_WARN("reconfig refused: from version 0x%" PRIx64 ", the last seen version is 0x%" PRIx64,
                (uint64_t)r->req.config_id, st.config.version);
        return ZN_BADVERSION;
    }
    *next = srv->cfg;
    int n = 0; /* the membership as it is: members only */
    for (int i = 0; i < next->server_count; i++)
        if (!next->servers[i].not_member)
            next->servers[n++] = next->servers[i];
    next->server_count = n;
    int rc = 0;
    if (r->req.new_members && r->req.new_members[0]) {
        next->server_count = 0;
        rc = reconfig_add_servers(next, r->req.new_members, false);
    } else {
        if (r->req.leaving && r->req.leaving[0])
            rc = reconfig_remove_servers(next, r->req.leaving);
        if (rc == 0 && r->req.joining && r->req.joining[0])
            rc = reconfig_add_servers(next, r->req.joining, true);
    }
    if (rc != 0)
        return rc;
    uint32_t voters[CONFIG_MAX_SERVERS], observers[CONFIG_MAX_SERVERS];
    size_t n_voters = 0, n_observers = 0;
    for (int i = 0; i < next->server_count; i++) {
        if (next->servers[i].observer)
            observers[n_observers++] = (uint32_t)next->servers[i].id;
        else
            voters[n_voters++] = (uint32_t)next->servers[i].id;
    }
    /* standaloneEnabled (ZooKeeper's default): at least two voters */
    if (n_voters < 2) {
        ZN_WARN("reconfig refused: new configuration must include at least 2 followers");
        return ZN_BADARGUMENTS;
    }
    if (n_voters > ZAB_MEMBERS_MAX || n_observers > ZAB_OBSERVERS_MAX)
        return ZN_BADARGUMENTS;
    /* /zookeeper/config is READ_ACL_UNSAFE: only the super user (or
     * skipACL) passes this check, as in ZooKeeper 3.5.3+. */
    const struct tree_node *node = tree_get(srv->tree, "/zookeeper/config");
    struct zn_acl_vec acl = node ? tree_node_acl(node) : (struct zn_acl_vec){0};
    struct prep_caller who;
    acl_caller(srv, r, &who);
    if (acl_check(&acl, ZN_PERM_WRITE, who.ids, who.id_count, srv->cfg.skip_acl) != 0) {
        ZN_WARN("reconfig refused: not authorized (WRITE on /zookeeper/config) sid=0x%" PRIx64,
                (uint64_t)r->session_id);
        return ZN_NOAUTH;
    }
    next->config_version = zxid;
    char *text = malloc(ZKCONFIG_TEXT_MAX_BYTES);
    if (!text)
        return ZN_NOMEMORY;
    next->join_ensemble = false;
    int len = zkconfig_text(next, text, ZKCONFIG_TEXT_MAX_BYTES);
    ZN_ASSERT(len >= 0);
    jute_writer_reset(&e->out);
    jute_write_long(&e->out, r->session_id);
    jute_write_int(&e->out, r->hdr.xid);
    jute_write_buffer(&e->out, (const uint8_t *)text, len);
    free(text);
    if (e->out.error)
        return ZN_NOMEMORY;
    int64_t got = zab_propose_config_attached(e->zab, voters, n_voters, observers, n_observers, 0,
                                              e->out.data, (uint32_t)e->out.len);
    if (got < 0) {
        ZN_WARN("reconfig refused: %s", zab_strerror((int)got));
        return reconfig_errno((int)got);
    }
    ZN_ASSERT((uint64_t)got == zxid);
    ZN_INFO("reconfig proposed version=0x%" PRIx64 " voters=%zu observers=%zu sid=0x%" PRIx64, zxid,
            n_voters, n_observers, (uint64_t)r->session_id);
    return 0;
}

static int leader_reconfig(struct ensemble *e, struct request *r, uint64_t zxid)
{
    struct config *next = malloc(sizeof *next);
    if (!next)
        return ZN_NOMEMORY;
    int rc = reconfig_prepare(e, r, zxid, next);
    free(next);
    return rc;
}

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

static bool window_full(struct ensemble *e)
{
    struct zab_status st;
    zab_status(e->zab, &st);
    return st.last_zxid > st.committed_zxid &&
           zab_zxid_counter(st.last_zxid) - zab_zxid_counter(st.committed_zxid) >=
               ZAB_INFLIGHT_MAX - 1 &&
           zab_zxid_epoch(st.last_zxid) == zab_zxid_epoch(st.committed_zxid);
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
    struct session *s = session_find(srv, r->session_id);
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
    } else if (r->hdr.type == ZN_OP_RECONFIG) {
        rc = leader_reconfig(e, r, zxid);
        if (rc == 0) {
            /* proposed; the commit answers it (config_entry_applied) */
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

static void leader_submit(struct ensemble *e, struct request *r)
{
    if (e->backlog_head || window_full(e)) {
        if (e->backlog_count >= ENSEMBLE_BACKLOG_MAX) {
            drop_request(e, r, "the leader's backlog is full");
            return;
        }
        backlog_push(e, r);
        return;
    }
    leader_propose(e, r);
}

static void drain_backlog(struct ensemble *e)
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

/* ---- the ready loop ---- */

static void appended_push(struct ensemble *e, uint64_t zxid)
{
    if (e->appended_count == e->appended_cap) {
        size_t cap = e->appended_cap ? e->appended_cap * 2 : 1024;
        uint64_t *a = malloc(cap * sizeof *a);
        if (!a)
            fatal("out of memory for the append queue", ZN_NOMEMORY);
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
static void appended_truncate(struct ensemble *e, uint64_t keep)
{
    while (e->appended_count > 0 &&
           e->appended[(e->appended_head + e->appended_count - 1) % e->appended_cap] > keep)
        e->appended_count--;
}

static void close_all_clients(struct server *srv, const char *why)
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
    e->serving = rd->phase == ZAB_PHASE_BROADCAST &&
                 (rd->role == ZAB_LEADING || rd->role == ZAB_FOLLOWING ||
                  rd->role == ZAB_OBSERVING);
    ZN_INFO("role=%s phase=%s leader=%u epoch=%u serving=%s", zab_role_name(rd->role),
            zab_phase_name(rd->phase), rd->leader_id, rd->epoch, e->serving ? "yes" : "no");
    bool new_leadership = old_epoch != e->epoch || old_leader != e->leader_id;
    if (was_serving && (!e->serving || new_leadership))
        close_all_clients(srv, "this member lost its leader; reconnect to another member");
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

/* The tree's digest after applying zxid.  TEST ONLY: the planted bug
 * "diverged-digest" makes this member's digests differ from everyone's, as a
 * tree that lost a node would, so that a test proves the check bites. */
static void digest_record(struct ensemble *e, uint64_t zxid)
{
    uint64_t digest = tree_digest(e->srv->tree);
    if (e->srv->cfg.planted_bug == CONFIG_PLANTED_BUG_DIVERGED_DIGEST)
        digest ^= 1;
    e->digests[e->digest_next % DIGEST_RING] = (struct digest_mark){.zxid = zxid, .digest = digest};
    e->digest_next++;
    e->last_applied_zxid = zxid;
}

/* Leader: tell every peer the digest of the tree at its last applied zxid. */
static void send_digest(struct ensemble *e)
{
    if (e->role != ZAB_LEADING || !e->serving || e->digest_next == 0)
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
            send_bytes(e, ps.id, e->out.data, e->out.len);
    }
}

/* A member: the leader's digest at zxid against ours, if we applied zxid
 * recently; a difference means our tree is not the ensemble's. */
static void check_digest(struct ensemble *e, uint32_t from, struct jute_reader *rd)
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

static void install_snapshot(struct ensemble *e, uint64_t zxid, const uint8_t *data, uint32_t size)
{
    struct server *srv = e->srv;
    struct tree *fresh = tree_new();
    if (!fresh)
        fatal("out of memory installing a snapshot", ZN_NOMEMORY);
    int rc = tree_deserialize(fresh, data, size);
    if (rc != 0)
        fatal("the leader's snapshot does not load", rc);
    close_all_clients(srv, "this member is installing a snapshot");
    rc = store_truncate_after(srv->store, zxid);
    if (rc != 0)
        fatal("cannot truncate the log for a snapshot", rc);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        fatal("out of memory installing a snapshot", ZN_NOMEMORY);
    memcpy(copy, data, size);
    rc = store_snapshot(srv->store, zxid, copy, size);
    if (rc != 0) {
        free(copy);
        fatal("cannot store the leader's snapshot", rc);
    }
    e->appended_count = 0;
    /* Replace the tree, the prep built on it, and the session table. */
    prep_free(srv->prep);
    tree_free(srv->tree);
    srv->tree = fresh;
    srv->prep = prep_new(srv->tree);
    if (!srv->prep)
        fatal("out of memory installing a snapshot", ZN_NOMEMORY);
    acl_install(srv);
    session_clear_all(srv);
    tree_for_each_session(srv->tree, session_add_recovered, srv);
    srv->txns_since_snapshot = 0;
    ZN_INFO("installed the leader's snapshot zxid=0x%" PRIx64 " bytes=%u nodes=%zu", zxid, size,
            tree_node_count(srv->tree));
}

static void process_ready(struct ensemble *e)
{
    struct server *srv = e->srv;
    while (zab_has_ready(e->zab)) {
        struct zab_ready rd;
        zab_ready(e->zab, &rd);
        if (rd.truncate) {
            int rc = store_truncate_after(srv->store, rd.truncate_to);
            if (rc != 0)
                fatal("cannot truncate the log", rc);
            appended_truncate(e, rd.truncate_to);
            ZN_INFO("log truncated after zxid=0x%" PRIx64, rd.truncate_to);
        }
        if (rd.install_snapshot) {
            install_snapshot(e, rd.snapshot_zxid, rd.snapshot_data, rd.snapshot_size);
            digest_record(e, rd.snapshot_zxid);
        }
        for (size_t i = 0; i < rd.n_entries; i++) {
            const struct zab_entry *en = &rd.entries[i];
            int rc;
            if (en->kind == ZAB_ENTRY_CONFIG) {
                uint8_t *stored = malloc(sizeof CONFIG_ENTRY_MAGIC + en->size);
                if (!stored)
                    fatal("out of memory for a configuration entry", ZN_NOMEMORY);
                memcpy(stored, CONFIG_ENTRY_MAGIC, sizeof CONFIG_ENTRY_MAGIC);
                memcpy(stored + sizeof CONFIG_ENTRY_MAGIC, en->data, en->size);
                rc = store_append(srv->store, en->zxid, stored, sizeof CONFIG_ENTRY_MAGIC + en->size);
                free(stored);
                config_entry_seen(e, en);
            } else {
                rc = store_append(srv->store, en->zxid, en->data, en->size);
            }
            if (rc != 0)
                fatal("cannot queue a log entry", rc);
            appended_push(e, en->zxid);
        }
        if (rd.write_epochs) {
            int rc = store_meta_put(srv->store, "acceptedEpoch", rd.accepted_epoch);
            if (rc == 0)
                rc = store_meta_put(srv->store, "acceptedLeader", rd.accepted_leader);
            if (rc == 0)
                rc = store_meta_put(srv->store, "currentEpoch", rd.current_epoch);
            if (rc != 0)
                fatal("cannot write the epochs", rc);
        }
        if (rd.config_changed)
            config_activate(e, rd.config, rd.removed);
        for (size_t i = 0; i < rd.n_messages; i++)
            send_zab(e, &rd.messages[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            if (rd.committed[i].kind == ZAB_ENTRY_CONFIG)
                config_entry_applied(e, &rd.committed[i]);
            else
                apply_committed(e, &rd.committed[i]);
            digest_record(e, rd.committed[i].zxid);
        }
        if (rd.role_changed)
            on_role_change(e, &rd);
        if (e->removed && (e->serving || e->srv->conns)) {
            e->serving = false;
            close_all_clients(srv, "this member was removed from the ensemble");
        }
        bool want_snapshot = rd.snapshot_wanted;
        bool installed = rd.install_snapshot;
        zab_advance(e->zab);
        if (installed)
            release_heap("the tree a snapshot replaced");
        if (want_snapshot) {
            struct jute_writer w;
            jute_writer_init(&w);
            if (tree_serialize(srv->tree, &w) == 0 && !w.error) {
                int rc = zab_snapshot_offer(e->zab, (uint64_t)tree_last_zxid(srv->tree), w.data,
                                            (uint32_t)w.len);
                if (rc != 0)
                    ZN_ERROR("cannot offer a snapshot: %s", zab_strerror(rc));
            }
            jute_writer_free(&w);
            release_heap("a snapshot's serialisation");
        }
    }
    finish_syncs(e);
    pipeline_maybe_snapshot(srv);
    drain_backlog(e);
    server_flush(srv);
}

void ensemble_durable(struct server *srv, uint64_t last_zxid, int status)
{
    struct ensemble *e = ens_of(srv);
    if (status != 0)
        fatal("the log could not be written", status);
    uint64_t persisted = 0;
    while (e->appended_count > 0 && e->appended[e->appended_head] <= last_zxid) {
        persisted = e->appended[e->appended_head];
        e->appended_head = (e->appended_head + 1) % e->appended_cap;
        e->appended_count--;
    }
    if (persisted)
        zab_persisted(e->zab, persisted);
    process_ready(e);
}

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
    if (!ensemble_is_leader(e->srv))
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
    leader_submit(e, r);
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
    send_bytes(e, from, e->out.data, e->out.len);
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
    finish_syncs(e);
}

static void on_peer_frame(void *ctx, uint32_t from, const uint8_t *frame, size_t len)
{
    struct ensemble *e = ctx;
    if (len < 1)
        return;
    if (frame[0] == CHANNEL_ZAB) {
        struct zab_message m;
        if (zab_message_decode(frame + 1, len - 1, &m) != 0 || m.from != from) {
            ZN_WARN("malformed peer message from=%u bytes=%zu", from, len);
            return;
        }
        zab_step(e->zab, &m);
        process_ready(e);
        return;
    }
    zn_arena_reset(&e->scratch);
    struct jute_reader rd;
    jute_reader_init(&rd, frame + 1, len - 1, &e->scratch);
    switch (frame[0]) {
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
        check_digest(e, from, &rd);
        break;
    default:
        ZN_WARN("unknown peer frame channel=%d from=%u", frame[0], from);
        return;
    }
    process_ready(e);
}

/* Our link to a peer came up or closed; the core hears both.  Up: a
 * LOOKING core sends its vote at once rather than at its next resend (1-2 s),
 * which made every start of an ensemble, whose first votes go out before any
 * link is up, take that long.  Closed (the peer died: its kernel closed the
 * socket; or the connection broke): a follower whose leader's link closed
 * looks at once, as ZooKeeper's does, instead of waiting out syncLimit of
 * silence (10 s with tickTime=2000, syncLimit=5: a leader's death stopped
 * writes that long). */
static void on_peer_link(void *ctx, uint32_t peer, bool connected)
{
    struct ensemble *e = ctx;
    if (!e->zab)
        return;
    if (connected)
        zab_peer_connected(e->zab, peer);
    else
        zab_peer_disconnected(e->zab, peer);
    process_ready(e);
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
        leader_submit(e, r);
    else
        forward(e, r, kind);
    process_ready(e);
}

void ensemble_submit_write(struct server *srv, struct request *r)
{
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
        finish_syncs(e);
        return;
    }
    /* TEST ONLY: planted bug for tests/faults (issue 6): a follower answers
     * sync from its own tree without asking the leader, so a read after sync
     * may be stale. tests/faults/run.sh --planted-bug stale-sync expects the
     * linearizability checker to catch it. */
    if (srv->cfg.planted_bug == CONFIG_PLANTED_BUG_STALE_SYNC) {
        r->sync_target = 0;
        finish_syncs(e);
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
    process_ready(e);
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
    leader_submit(e, r);
    process_ready(e);
}

/* ---- the tick ---- */

static void send_touches(struct ensemble *e)
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
    send_bytes(e, e->leader_id, e->out.data, e->out.len);
}

/* Requests forwarded long ago without an answer: their forward (or its
 * commit) was lost; the client gets to retry elsewhere. */
static void expire_forwards(struct ensemble *e)
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

static void on_tick(uv_timer_t *t)
{
    struct ensemble *e = t->data;
    e->tick_count++;
    if (e->prune_at_tick && e->tick_count >= e->prune_at_tick) {
        e->prune_at_tick = 0;
        peers_reconcile(e, &e->srv->cfg, true);
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
        peers_reconcile(e, &e->srv->cfg, false);
    }
    zab_tick(e->zab);
    /* Compacted entries' buffers: a few per loop turn (ensemble_turn_done),
     * and these when the member is idle (see zab_compact). */
    zab_collect(e->zab, ENSEMBLE_COLLECT_PER_TICK);
    if (e->tick_count % e->touch_every_ticks == 0) {
        send_touches(e);
        expire_forwards(e);
        send_digest(e);
    }
    if (!e->serving)
        conn_expire_parked(e->srv, server_now_ms());
    process_ready(e);
}

/* ---- start and stop ---- */

struct recovered {
    struct server *srv;
    struct zab_entry *entries;
    size_t count, cap;
    uint64_t snapshot_zxid;
};

static int recover_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct recovered *rec = ctx;
    int rc = tree_deserialize(rec->srv->tree, data, len);
    if (rc == 0)
        rec->snapshot_zxid = zxid;
    return rc;
}

static int recover_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct recovered *rec = ctx;
    if (rec->count == rec->cap) {
        size_t cap = rec->cap ? rec->cap * 2 : 1024;
        struct zab_entry *p = realloc(rec->entries, cap * sizeof *p);
        if (!p)
            return ZN_NOMEMORY;
        rec->entries = p;
        rec->cap = cap;
    }
    uint8_t kind = ZAB_ENTRY_DATA;
    struct zab_membership m;
    if (len > sizeof CONFIG_ENTRY_MAGIC && memcmp(data, CONFIG_ENTRY_MAGIC, sizeof CONFIG_ENTRY_MAGIC) == 0 &&
        zab_membership_decode_prefix((const uint8_t *)data + sizeof CONFIG_ENTRY_MAGIC,
                                     len - sizeof CONFIG_ENTRY_MAGIC, &m) > 0) {
        kind = ZAB_ENTRY_CONFIG;
        data = (const uint8_t *)data + sizeof CONFIG_ENTRY_MAGIC;
        len -= sizeof CONFIG_ENTRY_MAGIC;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ZN_NOMEMORY;
    memcpy(copy, data, len);
    rec->entries[rec->count++] = (struct zab_entry){.zxid = zxid, .size = (uint32_t)len,
                                                    .data = copy, .kind = kind};
    return 0;
}

static void core_log(void *context, uint32_t id, const char *message)
{
    (void)context;
    ZN_DEBUG("zab id=%u %s", id, message);
}

int ensemble_start(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    struct ensemble *e = calloc(1, sizeof *e);
    if (!e)
        return ZN_NOMEMORY;
    e->srv = srv;
    e->my_id = (uint32_t)cfg->my_id;
    jute_writer_init(&e->out);
    zn_arena_init(&e->scratch);
    srv->ens = e;

    struct recovered rec = {.srv = srv};
    int rc = store_recover(srv->store, recover_snapshot, recover_entry, &rec);
    if (rc != 0) {
        ZN_ERROR("recovery failed: %s", zn_strerror(rc));
        return rc;
    }
    rc = tree_for_each_session(srv->tree, session_add_recovered, srv);
    if (rc != 0)
        return rc;
    uint64_t accepted = 0, accepted_leader = 0, current = 0;
    store_meta_get(srv->store, "acceptedEpoch", &accepted);
    store_meta_get(srv->store, "acceptedLeader", &accepted_leader);
    store_meta_get(srv->store, "currentEpoch", &current);
    struct zab_restored restored = {
        .accepted_epoch = (uint32_t)accepted,
        .accepted_leader = (uint32_t)accepted_leader,
        .current_epoch = (uint32_t)current,
        .snapshot_zxid = (uint64_t)tree_last_zxid(srv->tree),
        .entries = rec.entries,
        .n_entries = rec.count,
    };
    uint32_t voters[CONFIG_MAX_SERVERS], observers[CONFIG_MAX_SERVERS];
    size_t n_voters = 0, n_observers = 0;
    struct transport_peer peers[CONFIG_MAX_SERVERS];
    size_t n_peers = 0;
    const char *my_host = NULL;
    int my_port = 0;
    /* joinEnsemble: the other lines are the ensemble being joined; I am in
     * no membership until a reconfig names me (zab_config.joining). */
    bool joining = cfg->join_ensemble && !cfg->dynamic_loaded;
    for (int i = 0; i < cfg->server_count; i++) {
        const struct config_server *s = &cfg->servers[i];
        bool member = !s->not_member && !(joining && s->id == cfg->my_id);
        if (member && !s->observer)
            voters[n_voters++] = (uint32_t)s->id;
        else if (member)
            observers[n_observers++] = (uint32_t)s->id;
        if (s->id == cfg->my_id) {
            my_host = s->host;
            my_port = s->peer_port;
            continue;
        }
        peers[n_peers].id = (uint32_t)s->id;
        snprintf(peers[n_peers].host, sizeof peers[n_peers].host, "%s", s->host);
        peers[n_peers].port = s->peer_port;
        n_peers++;
    }
    /* The dynamic file is the last committed membership (with its version). */
    struct zab_membership persisted = {.version = cfg->config_version};
    if (cfg->dynamic_loaded) {
        persisted.n_voters = (uint32_t)n_voters;
        memcpy(persisted.voters, voters, n_voters * sizeof voters[0]);
        persisted.n_observers = (uint32_t)n_observers;
        memcpy(persisted.observers, observers, n_observers * sizeof observers[0]);
        restored.membership = &persisted;
    }
    uint32_t ticks_per_tick_time = (uint32_t)(cfg->tick_time_ms / ENSEMBLE_TICK_MS);
    if (ticks_per_tick_time < 1)
        ticks_per_tick_time = 1;
    struct zab_config zc = {
        .id = e->my_id,
        .voters = voters,
        .n_voters = n_voters,
        .observers = observers,
        .n_observers = n_observers,
        .heartbeat_ticks = ticks_per_tick_time / 2 ? ticks_per_tick_time / 2 : 1,
        .init_limit_ticks = (uint32_t)cfg->init_limit * ticks_per_tick_time,
        .sync_limit_ticks = (uint32_t)cfg->sync_limit * ticks_per_tick_time,
        .prng_state = (uint64_t)server_wall_ms() ^ ((uint64_t)e->my_id << 48),
        .restored = &restored,
        .log = core_log,
        .log_context = e,
        .joining = joining,
    };
    rc = zab_new(&zc, &e->zab);
    digest_record(e, (uint64_t)tree_last_zxid(srv->tree)); /* the recovered state */
    /* the last CONFIG entry of the log: its server lines, for its commit */
    for (size_t i = rec.count; i > 0; i--)
        if (rec.entries[i - 1].kind == ZAB_ENTRY_CONFIG && rec.entries[i - 1].zxid > cfg->config_version) {
            struct zn_arena arena;
            zn_arena_init(&arena);
            struct zab_membership m;
            struct config_attachment att;
            if (config_entry_parse(&arena, rec.entries[i - 1].data, rec.entries[i - 1].size, &m, &att) == 0 &&
                (e->config_text = strdup(att.text)) != NULL)
                e->config_text_zxid = rec.entries[i - 1].zxid;
            zn_arena_free(&arena);
            break;
        }
    for (size_t i = 0; i < rec.count; i++)
        free(rec.entries[i].data);
    free(rec.entries);
    if (rc != 0) {
        ZN_ERROR("cannot start the replication core: %s", zab_strerror(rc));
        return rc == ZAB_ENOMEM ? ZN_NOMEMORY : ZN_CONFIG;
    }
    e->touch_every_ticks = ticks_per_tick_time / 2 ? ticks_per_tick_time / 2 : 1;
    e->sync_limit_ticks = zc.sync_limit_ticks;
    e->forward_timeout_ms = (uint64_t)ENSEMBLE_FORWARD_TIMEOUT_FACTOR * (uint64_t)cfg->sync_limit *
                            (uint64_t)cfg->tick_time_ms;
    struct transport_tls tt;
    struct transport_auth ta = {
        .learner = cfg->sasl.quorum_learner_require,
        .server_enabled = cfg->sasl.quorum_enable,
        .server_require = cfg->sasl.quorum_server_require,
        .step = saslauth_quorum_step,
        .session_free = saslauth_quorum_free,
    };
    rc = tls_quorum_new(&e->quorum_tls, &tt, cfg, srv->loop);
    if (rc == 0)
        rc = transport_start_tls(&e->tp, srv->loop, e->my_id, my_host, my_port, peers, n_peers,
                                 on_peer_frame, on_peer_link, e, e->quorum_tls ? &tt : NULL,
                                 cfg->sasl.quorum_enable ? &ta : NULL);
    if (rc != 0) {
        ZN_ERROR("cannot start the peer transport on %s:%d: %s", my_host, my_port,
                 zn_strerror(rc));
        return rc;
    }
    if (e->config_text) {
        /* a CONFIG entry waiting to commit: reach its servers */
        struct config *next = malloc(sizeof *next);
        char err[256];
        if (next) {
            *next = *cfg;
            if (config_set_membership(next, e->config_text, err, sizeof err) == 0)
                peers_reconcile(e, next, false);
            free(next);
        }
    }
    struct zab_status st;
    zab_status(e->zab, &st);
    if (st.removed) {
        e->removed = true;
        e->prune_at_tick = ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS * e->sync_limit_ticks;
        ZN_WARN("reconfig: this member (id=%u) was removed from the ensemble by config version=0x%" PRIx64
                "; it serves no clients and takes no further part (stop it)", e->my_id, st.config.version);
    }
    if (joining)
        ZN_INFO("joining the ensemble as id=%u: a reconfig must add this member before it votes", e->my_id);
    uv_timer_init(srv->loop, &e->tick);
    e->tick.data = e;
    uv_timer_start(&e->tick, on_tick, ENSEMBLE_TICK_MS, ENSEMBLE_TICK_MS);
    ZN_INFO("ensemble member id=%u of %zu voters and %zu observers, peers on %s:%d, recovered zxid=0x%" PRIx64
            " log_entries=%zu epochs=%" PRIu64 "/%" PRIu64,
            e->my_id, n_voters, n_observers, my_host, my_port, (uint64_t)tree_last_zxid(srv->tree),
            restored.n_entries, accepted, current);
    process_ready(e);
    return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct ensemble *e = h->data;
    zab_free(e->zab);
    jute_writer_free(&e->out);
    zn_arena_free(&e->scratch);
    free(e->appended);
    free(e->msg_buf);
    free(e->config_text);
    free(e);
}

void ensemble_stop(struct server *srv)
{
    struct ensemble *e = ens_of(srv);
    if (!e)
        return;
    srv->ens = NULL;
    transport_stop(e->tp);
    tls_server_free(e->quorum_tls); /* the connections closing hold their own references */
    uv_timer_stop(&e->tick);
    uv_close((uv_handle_t *)&e->tick, on_tick_closed);
}
