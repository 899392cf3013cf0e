/*
 * The ensemble driver, start and stop: recovery from the store (the
 * snapshot into the tree, the log after it handed to the core with the
 * epochs and the membership), the core's configuration from zoo.cfg (a
 * standalone server is a single voter of its own, with no transport), the
 * peer transport and the tick.
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

/* snapCount txns (and those written while a snapshot is taken) stay in the
 * core's log in memory until the snapshot is stored: the core must have room
 * for them, or it refuses writes (config.h). */
_Static_assert(CONFIG_SNAP_COUNT_MAX <= ZAB_LOG_ENTRIES_MAX / 2, "snapCount's bound must leave room in the core's log");

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
    struct server *srv = rec->srv;
    int rc = tree_deserialize(srv->tree, data, len);
    int32_t format = tree_snapshot_format(data, len);
    if (rc == 0)
        rec->snapshot_zxid = zxid;
    else if (format >= 0 && (format < TREE_SNAPSHOT_OLDEST_VERSION || format > TREE_SNAPSHOT_VERSION))
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " in %s is in format %d, written by another "
                 "version of znoded; this one reads formats %d to %d. Run the version that wrote it; in an "
                 "ensemble, this member may instead start with an empty data directory and "
                 "fetch a snapshot from the others", zxid, srv->cfg.data_dir, (int)format,
                 TREE_SNAPSHOT_OLDEST_VERSION, TREE_SNAPSHOT_VERSION);
    else
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " cannot be loaded: %s", zxid, zn_strerror(rc));
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

/* The core's log entries live from a propose (or a proposal received) to
 * the compaction after their apply: a FIFO lifetime, kept out of the heap
 * where the tree's nodes are allocated meanwhile. */
static void *zab_entry_alloc_fifo(void *ctx, size_t size) { return zn_fifo_alloc(ctx, size); }

static void zab_entry_free_fifo(void *ctx, void *data)
{
    (void)ctx;
    zn_fifo_free(data);
}

int ensemble_start(struct server *srv)
{
    uint64_t start_ms = server_now_ms();
    const struct config *cfg = &srv->cfg;
    struct ensemble *e = calloc(1, sizeof *e);
    if (!e)
        return ZN_NOMEMORY;
    e->srv = srv;
    e->standalone = config_standalone(cfg);
    /* Standalone: a voter of its own, id 1 unless myid says otherwise. */
    e->my_id = cfg->my_id > 0 ? (uint32_t)cfg->my_id : 1;
    jute_writer_init(&e->out);
    zn_arena_init(&e->scratch);
    zn_fifo_init(&e->zab_entries, 0);
    ens_snapxfer_init(e);
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
    /* No epochs stored (a store written standalone by an older version, or
     * restored from a backup): the epoch of the last zxid held, as ZooKeeper
     * takes when its epoch files are missing, so that the next leadership's
     * zxids are above every one in the store. */
    uint64_t held = store_last_zxid(srv->store);
    if ((uint64_t)tree_last_zxid(srv->tree) > held)
        held = (uint64_t)tree_last_zxid(srv->tree);
    if (current < zab_zxid_epoch(held)) {
        current = zab_zxid_epoch(held);
        if (accepted < current) {
            accepted = current;
            accepted_leader = 0;
        }
    }
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
    if (e->standalone)
        voters[n_voters++] = e->my_id;
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
        .entry_alloc = zab_entry_alloc_fifo,
        .entry_free = zab_entry_free_fifo,
        .entry_context = &e->zab_entries,
        .joining = joining,
    };
    rc = zab_new(&zc, &e->zab);
    ens_digest_record(e, (uint64_t)tree_last_zxid(srv->tree)); /* the recovered state */
    /* the last CONFIG entry of the log: its server lines, for its commit */
    for (size_t i = rec.count; i > 0; i--)
        if (rec.entries[i - 1].kind == ZAB_ENTRY_CONFIG && rec.entries[i - 1].zxid > cfg->config_version) {
            struct zn_arena arena;
            zn_arena_init(&arena);
            struct zab_membership m;
            struct config_attachment att;
            if (ens_config_entry_parse(&arena, rec.entries[i - 1].data, rec.entries[i - 1].size, &m, &att) == 0 &&
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
    rc = e->standalone ? 0 : tls_quorum_new(&e->quorum_tls, &tt, cfg, srv->loop);
    if (rc == 0 && !e->standalone)
        rc = transport_start_tls(&e->tp, srv->loop, e->my_id, my_host, my_port, peers, n_peers,
                                 ens_on_peer_frame, ens_on_peer_link, e, e->quorum_tls ? &tt : NULL,
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
                ens_peers_reconcile(e, next, false);
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
    uv_timer_start(&e->tick, ens_on_tick, ENSEMBLE_TICK_MS, ENSEMBLE_TICK_MS);
    uv_idle_init(srv->loop, &e->ready_idle);
    e->ready_idle.data = e;
    if (e->standalone)
        ZN_INFO("standalone (an ensemble of one), recovered zxid=0x%" PRIx64 " nodes=%zu sessions=%zu "
                "log_entries=%zu epochs=%" PRIu64 "/%" PRIu64 " ms=%" PRIu64,
                (uint64_t)tree_last_zxid(srv->tree), tree_node_count(srv->tree),
                zn_htable_count(&srv->sessions), restored.n_entries, accepted, current,
                server_now_ms() - start_ms);
    else
        ZN_INFO("ensemble member id=%u of %zu voters and %zu observers, peers on %s:%d, recovered "
                "zxid=0x%" PRIx64 " log_entries=%zu epochs=%" PRIu64 "/%" PRIu64 " ms=%" PRIu64,
                e->my_id, n_voters, n_observers, my_host, my_port, (uint64_t)tree_last_zxid(srv->tree),
                restored.n_entries, accepted, current, server_now_ms() - start_ms);
    ens_process_ready(e);
    return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct ensemble *e = h->data;
    zab_free(e->zab);
    zn_fifo_destroy(&e->zab_entries);
    jute_writer_free(&e->out);
    zn_arena_free(&e->scratch);
    ens_appended_truncate(e, 0); /* frees what is held */
    free(e->appended);
    free(e->msg_buf);
    free(e->config_text);
    free(e);
}

static void on_ready_idle_closed(uv_handle_t *h)
{
    struct ensemble *e = h->data;
    uv_close((uv_handle_t *)&e->tick, on_tick_closed);
}

void ensemble_stop(struct server *srv)
{
    struct ensemble *e = ens_of(srv);
    if (!e)
        return;
    srv->ens = NULL;
    ens_snapxfer_free(e);
    if (e->tp)
        transport_stop(e->tp);
    tls_server_free(e->quorum_tls); /* the connections closing hold their own references */
    uv_timer_stop(&e->tick);
    uv_idle_stop(&e->ready_idle);
    /* The tick's close frees e, so it is closed once the idle handle is. */
    uv_close((uv_handle_t *)&e->ready_idle, on_ready_idle_closed);
}
