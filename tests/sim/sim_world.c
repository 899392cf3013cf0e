/*
 * sim_world.c: the deterministic world of the zab simulator.  It owns the
 * members (each a real struct zab from replication/core driven exactly as
 * the daemon's driver will drive it: ready, carry out in order, advance), the
 * fake network (per-message delay, loss, duplication, hence reordering;
 * partitions; every message goes through the byte codec), the fake disks
 * (write latency, crash losing what was not reported durable, snapshots and
 * compaction), the client, and the safety invariants, checked after every
 * event.  All randomness comes from one seed (splitmix64).
 *
 * Observers (sim_options.observers) are the last members: they run the same
 * driver, and every invariant covers them too (their applied history must
 * be the voters' one); besides, an observer must never lead or follow.
 * With voters_down set, voters 1..voters_down go down for good a quarter
 * into the run; when that leaves no quorum of voters, nothing may commit
 * from then on (no zxid above what a downed voter held durably) and no
 * leader may be established in an epoch no downed voter accepted: observers
 * must not stand in for the missing voters.
 *
 * The replicated "state machine" is a digest chain: applying entry x to
 * state d gives H(d, x.zxid, x.data), so two members that applied the same
 * zxid with different histories have different digests.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SIM_NEVER UINT64_MAX

struct sim_entry {
    uint64_t zxid;
    uint32_t size;
    uint8_t *data;
    uint8_t kind;
    uint64_t done_at; /* pending writes: when the disk reports it durable */
};

struct sim_vec {
    struct sim_entry *items;
    size_t n, cap;
};

struct sim_member {
    int id;
    struct zab *z;
    bool up;
    bool idle;              /* not in the ensemble: never started, or wiped to be added again */
    bool removed;           /* a membership removed it: it only answers votes now */
    bool joining;           /* started as a joiner: join_membership is its static configuration */
    struct zab_membership join_membership;
    bool has_membership;    /* on disk: the last ready.config */
    struct zab_membership membership;
    uint32_t incarnation;
    /* the disk: what survives a crash */
    uint32_t accepted_epoch, accepted_leader, current_epoch;
    uint64_t snapshot_zxid, snapshot_digest;
    struct sim_vec durable;  /* log entries after the snapshot, durable */
    struct sim_vec pending;  /* appended, not yet durable: lost on crash */
    /* the applied state (memory) */
    uint64_t applied_zxid, digest;
    int applies_since_snapshot;
    struct zab_status last_status;
    bool dirty;             /* driven since check_leaders last looked: its status may have changed */
};

struct sim_msg {
    uint64_t at, seq;
    int from, to;
    uint8_t *bytes;
    size_t len;
};

/* zxid -> (previous applied zxid, digest after) of the one committed history */
struct sim_chain_slot {
    uint64_t zxid, prev, digest;
    bool used;
};

struct sim_world {
    struct sim_options o;
    uint64_t prng;
    uint64_t now;
    uint64_t seq;
    struct sim_member m[SIM_MEMBERS_MAX + 1];
    int group[SIM_MEMBERS_MAX + 1];
    /* network: a binary heap on (at, seq) */
    struct sim_msg *net;
    size_t n_net, cap_net;
    /* invariants */
    struct sim_chain_slot *chain;
    size_t chain_cap, chain_used;
    uint64_t *acked;  /* sorted */
    size_t n_acked, cap_acked;
    uint32_t *epoch_leader; /* epoch -> established leader id */
    size_t cap_epochs;
    char violation[512];
    /* reconfiguration: every activated version's lists, to check they agree */
    struct zab_membership versions[64];
    int n_versions;
    struct zab_membership proposed; /* the last membership proposed (crash rule) */
    bool has_proposed;
    bool liveness_failure;     /* the violation is a liveness one (no progress after healing) */
    bool voters_lost;          /* voters_down went down for good */
    bool quorum_gone;          /* and that left no quorum of voters */
    uint64_t bound_zxid;       /* then: the highest zxid that can have been committed */
    uint32_t bound_epoch;      /* then: the highest epoch that can be established */
    uint64_t client_counter;
    uint64_t stats_delivered, stats_commits;
    bool last_crash_silent;
    uint64_t link_last_at[SIM_MEMBERS_MAX + 1][SIM_MEMBERS_MAX + 1]; /* fifo_links */
    struct sim_failover_stats failover;
};

/* ---- membership -------------------------------------------------------- */
static int voter_count(const struct sim_world *w) { return w->o.members - w->o.observers; }
static int slots(const struct sim_world *w) { return w->o.members + w->o.spares; }
static bool is_observer(const struct sim_world *w, int id) { return id > voter_count(w); }
static bool stays_down(const struct sim_world *w, int id) { return w->voters_lost && id <= w->o.voters_down; }

/* ---- randomness -------------------------------------------------------- */

static uint64_t sim_rand(struct sim_world *w)
{
    uint64_t x = (w->prng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t sim_range(struct sim_world *w, uint64_t n) { return n ? sim_rand(w) % n : 0; }
static bool sim_chance(struct sim_world *w, int percent_x10) { return (int)sim_range(w, 1000) < percent_x10; }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "zab_sim: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "zab_sim: out of memory\n");
        exit(2);
    }
    return p;
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t digest_apply(uint64_t digest, uint64_t zxid, const uint8_t *data, uint32_t size)
{
    digest = hash_bytes(digest ^ 0xcbf29ce484222325ull, &zxid, sizeof zxid);
    return hash_bytes(digest, data, size);
}

/* ---- tracing ----------------------------------------------------------- */

static void trace(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct sim_world *w, const char *fmt, ...)
{
    if (!w->o.trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (!w->o.manual)
        fprintf(w->o.out, "t=%" PRIu64 " ", w->now);
    vfprintf(w->o.out, fmt, ap);
    fputc('\n', w->o.out);
    va_end(ap);
}

static const char *zxid_str(char *buf, uint64_t zxid)
{
    snprintf(buf, 24, "%u.%u", zab_zxid_epoch(zxid), zab_zxid_counter(zxid));
    return buf;
}

static void format_message(const struct zab_message *m, char *out, size_t cap)
{
    char a[24], b[24];
    int n = snprintf(out, cap, "%u->%u %s", m->from, m->to, zab_message_type_name(m->type));
    if (n < 0 || (size_t)n >= cap)
        return;
    out += n;
    cap -= (size_t)n;
    switch (m->type) {
    case ZAB_MSG_NOTIFICATION:
        snprintf(out, cap, " round=%u state=%s vote=(leader=%u epoch=%u zxid=%s)",
                 m->u.notification.round, zab_role_name(m->u.notification.state),
                 m->u.notification.vote.leader, m->u.notification.vote.epoch,
                 zxid_str(a, m->u.notification.vote.zxid));
        break;
    case ZAB_MSG_FOLLOWERINFO:
        snprintf(out, cap, " acceptedEpoch=%u currentEpoch=%u last=%s", m->u.info.accepted_epoch,
                 m->u.info.current_epoch, zxid_str(a, m->u.info.last_zxid));
        break;
    case ZAB_MSG_NEWEPOCH:
        snprintf(out, cap, " epoch=%u", m->epoch);
        break;
    case ZAB_MSG_ACKEPOCH:
        snprintf(out, cap, " epoch=%u currentEpoch=%u last=%s epochs=%u", m->epoch,
                 m->u.ackepoch.current_epoch, zxid_str(a, m->u.ackepoch.last_zxid),
                 m->u.ackepoch.n_epochs);
        break;
    case ZAB_MSG_SYNC:
        snprintf(out, cap, " epoch=%u %s %s", m->epoch,
                 m->u.sync.mode == ZAB_SYNC_DIFF    ? "DIFF"
                 : m->u.sync.mode == ZAB_SYNC_TRUNC ? "TRUNC"
                                                    : "SNAP",
                 zxid_str(a, m->u.sync.zxid));
        break;
    case ZAB_MSG_PROPOSAL:
        if (m->u.proposal.kind == ZAB_ENTRY_CONFIG) {
            snprintf(out, cap, " epoch=%u prev=%s zxid=%s (membership)", m->epoch,
                     zxid_str(a, m->u.proposal.prev_zxid), zxid_str(b, m->u.proposal.zxid));
            break;
        }
        snprintf(out, cap, " epoch=%u prev=%s zxid=%s data=%.*s", m->epoch,
                 zxid_str(a, m->u.proposal.prev_zxid), zxid_str(b, m->u.proposal.zxid),
                 (int)(m->u.proposal.size > 16 ? 16 : m->u.proposal.size), (const char *)m->u.proposal.data);
        break;
    default:
        snprintf(out, cap, " epoch=%u zxid=%s", m->epoch, zxid_str(a, m->u.zxid.zxid));
        break;
    }
}

static void core_log(void *context, uint32_t id, const char *message)
{
    struct sim_world *w = context;
    if (w->o.trace && !w->o.manual)
        trace(w, "[%u] %s", id, message);
}

/* ---- invariants -------------------------------------------------------- */

static void violate(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violate(struct sim_world *w, const char *fmt, ...)
{
    if (w->violation[0])
        return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->violation, sizeof w->violation, fmt, ap);
    va_end(ap);
    trace(w, "VIOLATION %s", w->violation);
}

const char *sim_violation(const struct sim_world *w) { return w->violation[0] ? w->violation : NULL; }

const struct sim_failover_stats *sim_failover(const struct sim_world *w) { return &w->failover; }
bool sim_violation_is_liveness(const struct sim_world *w) { return w->violation[0] && w->liveness_failure; }

static struct sim_chain_slot *chain_slot(struct sim_world *w, uint64_t zxid, bool insert)
{
    if (insert && (w->chain_used + 1) * 2 > w->chain_cap) {
        size_t old_cap = w->chain_cap;
        struct sim_chain_slot *old = w->chain;
        w->chain_cap = old_cap ? old_cap * 2 : 1024;
        w->chain = calloc(w->chain_cap, sizeof *w->chain);
        if (!w->chain)
            exit(2);
        w->chain_used = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].used) {
                struct sim_chain_slot *s = chain_slot(w, old[i].zxid, true);
                *s = old[i];
            }
        free(old);
    }
    if (!w->chain_cap)
        return NULL;
    size_t i = (size_t)((zxid * 0x9e3779b97f4a7c15ull) >> 7) & (w->chain_cap - 1);
    while (w->chain[i].used) {
        if (w->chain[i].zxid == zxid)
            return &w->chain[i];
        i = (i + 1) & (w->chain_cap - 1);
    }
    if (!insert)
        return NULL;
    w->chain[i].used = true;
    w->chain[i].zxid = zxid;
    w->chain_used++;
    return &w->chain[i];
}

static void check_state_at(struct sim_world *w, int id, uint64_t zxid, uint64_t digest, const char *how)
{
    if (zxid == 0)
        return;
    struct sim_chain_slot *s = chain_slot(w, zxid, false);
    if (s && s->digest != digest) {
        char a[24];
        violate(w, "member %d %s state at zxid %s with a digest no other member has", id, how,
                zxid_str(a, zxid));
    }
}

/* Committed prefixes agree, same digest at the same zxid, and no acknowledged
 * entry is skipped. */
static void check_apply(struct sim_world *w, int id, uint64_t prev, uint64_t zxid, uint64_t digest)
{
    char a[24], b[24], c[24];
    struct sim_chain_slot *s = chain_slot(w, zxid, false);
    if (s) {
        if (s->prev != prev || s->digest != digest)
            violate(w, "committed histories differ: member %d applied %s after %s, another after %s",
                    id, zxid_str(a, zxid), zxid_str(b, prev), zxid_str(c, s->prev));
    } else {
        s = chain_slot(w, zxid, true);
        s->prev = prev;
        s->digest = digest;
    }
    /* the first acked zxid above prev must not be below zxid */
    size_t lo = 0, hi = w->n_acked;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->acked[mid] <= prev)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->n_acked && w->acked[lo] < zxid)
        violate(w, "acknowledged entry %s lost: member %d applied %s right after %s", zxid_str(a, w->acked[lo]),
                id, zxid_str(b, zxid), zxid_str(c, prev));
}

static void record_acked(struct sim_world *w, uint64_t zxid)
{
    if (w->n_acked == w->cap_acked) {
        w->cap_acked = w->cap_acked ? w->cap_acked * 2 : 256;
        w->acked = xrealloc(w->acked, w->cap_acked * sizeof *w->acked);
    }
    size_t i = w->n_acked;
    while (i > 0 && w->acked[i - 1] > zxid)
        i--;
    if (i > 0 && w->acked[i - 1] == zxid)
        return;
    memmove(w->acked + i + 1, w->acked + i, (w->n_acked - i) * sizeof *w->acked);
    w->acked[i] = zxid;
    w->n_acked++;
}

static void check_leaders(struct sim_world *w)
{
    for (int i = 1; i <= slots(w); i++) {
        struct sim_member *m = &w->m[i];
        if (!m->up || !m->dirty)
            continue; /* the core changes only when called, and every call is followed by drive() */
        m->dirty = false;
        zab_status(m->z, &m->last_status);
        const struct zab_status *s = &m->last_status;
        bool static_membership = !w->o.reconfig && !w->o.spares && !w->has_proposed;
        if ((static_membership && s->observer != is_observer(w, m->id)) ||
            (s->observer && (s->role == ZAB_LEADING || s->role == ZAB_FOLLOWING)))
            violate(w, "member %d (observer=%d) is %s", m->id, (int)s->observer, zab_role_name(s->role));
        if (!s->observer && s->role == ZAB_OBSERVING)
            violate(w, "voter %d is observing", m->id);
        if (s->role != ZAB_LEADING || s->phase != ZAB_PHASE_BROADCAST)
            continue;
        if (w->quorum_gone && s->epoch > w->bound_epoch)
            violate(w, "member %d leads epoch %u with only %d of %d voters able to run", m->id, s->epoch,
                    voter_count(w) - w->o.voters_down, voter_count(w));
        if (s->epoch >= w->cap_epochs) {
            size_t cap = s->epoch * 2 + 16;
            w->epoch_leader = xrealloc(w->epoch_leader, cap * sizeof *w->epoch_leader);
            memset(w->epoch_leader + w->cap_epochs, 0, (cap - w->cap_epochs) * sizeof *w->epoch_leader);
            w->cap_epochs = cap;
        }
        if (w->epoch_leader[s->epoch] == 0)
            w->epoch_leader[s->epoch] = m->id;
        else if (w->epoch_leader[s->epoch] != (uint32_t)m->id)
            violate(w, "two established leaders in epoch %u: %u and %d", s->epoch,
                    w->epoch_leader[s->epoch], m->id);
    }
}

/* ---- disk -------------------------------------------------------------- */

static void vec_push(struct sim_vec *v, struct sim_entry e)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->items = xrealloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->n++] = e;
}

static void vec_truncate(struct sim_vec *v, uint64_t zxid)
{
    while (v->n && v->items[v->n - 1].zxid > zxid)
        free(v->items[--v->n].data);
}

static void vec_clear(struct sim_vec *v) { vec_truncate(v, 0); }

static void vec_drop_upto(struct sim_vec *v, uint64_t zxid)
{
    size_t k = 0;
    while (k < v->n && v->items[k].zxid <= zxid)
        free(v->items[k++].data);
    memmove(v->items, v->items + k, (v->n - k) * sizeof *v->items);
    v->n -= k;
}

/* ---- network ----------------------------------------------------------- */

static bool msg_before(const struct sim_msg *a, const struct sim_msg *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void net_push(struct sim_world *w, struct sim_msg msg)
{
    if (w->n_net == w->cap_net) {
        w->cap_net = w->cap_net ? w->cap_net * 2 : 256;
        w->net = xrealloc(w->net, w->cap_net * sizeof *w->net);
    }
    size_t i = w->n_net++;
    w->net[i] = msg;
    while (i > 0 && msg_before(&w->net[i], &w->net[(i - 1) / 2])) {
        struct sim_msg t = w->net[i];
        w->net[i] = w->net[(i - 1) / 2];
        w->net[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void net_remove_at(struct sim_world *w, size_t i)
{
    w->net[i] = w->net[--w->n_net];
    for (;;) { /* sift up then down */
        if (i > 0 && msg_before(&w->net[i], &w->net[(i - 1) / 2])) {
            struct sim_msg t = w->net[i];
            w->net[i] = w->net[(i - 1) / 2];
            w->net[(i - 1) / 2] = t;
            i = (i - 1) / 2;
            continue;
        }
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < w->n_net && msg_before(&w->net[l], &w->net[s]))
            s = l;
        if (r < w->n_net && msg_before(&w->net[r], &w->net[s]))
            s = r;
        if (s == i || i >= w->n_net)
            break;
        struct sim_msg t = w->net[i];
        w->net[i] = w->net[s];
        w->net[s] = t;
        i = s;
    }
}

static bool connected(const struct sim_world *w, int a, int b) { return w->group[a] == w->group[b]; }


static void net_send(struct sim_world *w, const struct zab_message *msg)
{
    size_t size = zab_message_encoded_size(msg);
    uint8_t *bytes = xmalloc(size);
    int64_t n = zab_message_encode(msg, bytes, size);
    if (n != (int64_t)size) {
        violate(w, "encode of %s returned %" PRId64 " for %zu bytes", zab_message_type_name(msg->type), n, size);
        free(bytes);
        return;
    }
    int copies = 1;
    if (!w->o.manual) {
        if (!connected(w, (int)msg->from, (int)msg->to) || sim_chance(w, w->o.loss_percent * 10))
            copies = 0;
        else if (sim_chance(w, w->o.dup_percent * 10))
            copies = 2;
    }
    if (w->o.manual && w->o.trace) {
        char line[256];
        format_message(msg, line, sizeof line);
        trace(w, "  send %s", line);
    }
    for (int c = 0; c < copies; c++) {
        struct sim_msg sm = {.from = (int)msg->from, .to = (int)msg->to, .len = size, .seq = ++w->seq};
        sm.at = w->o.manual ? 0 : w->now + 1 + sim_range(w, (uint64_t)w->o.delay_max_units);
        if (!w->o.manual && w->o.fifo_links) {
            uint64_t *last = &w->link_last_at[msg->from][msg->to];
            if (sm.at < *last)
                sm.at = *last; /* equal times deliver in seq order */
            *last = sm.at;
        } else if (!w->o.manual && sim_chance(w, 10)) { /* 1%: a straggler, arriving many ticks late */
            sm.at += sim_range(w, 30 * SIM_TICK_UNITS);
        }
        sm.bytes = c == 0 ? bytes : xmalloc(size);
        if (c)
            memcpy(sm.bytes, bytes, size);
        net_push(w, sm);
    }
    if (!copies)
        free(bytes);
}

/* ---- the driver: carrying out a ready batch, in its order --------------- */

static void member_apply(struct sim_world *w, struct sim_member *m, const struct zab_entry *e)
{
    uint64_t prev = m->applied_zxid;
    if (e->zxid <= prev) {
        char a[24], b[24];
        violate(w, "member %d applied %s after %s: out of order", m->id, zxid_str(a, e->zxid), zxid_str(b, prev));
        return;
    }
    if (w->quorum_gone && e->zxid > w->bound_zxid) {
        char a[24];
        violate(w, "member %d applied %s with only %d of %d voters able to run", m->id, zxid_str(a, e->zxid),
                voter_count(w) - w->o.voters_down, voter_count(w));
    }
    m->digest = digest_apply(m->digest, e->zxid, e->data, e->size);
    m->applied_zxid = e->zxid;
    check_apply(w, m->id, prev, e->zxid, m->digest);
    w->stats_commits++;
    if (w->o.manual && w->o.trace) {
        char a[24];
        if (e->kind == ZAB_ENTRY_CONFIG)
            trace(w, "  %d apply %s (membership)", m->id, zxid_str(a, e->zxid));
        else
            trace(w, "  %d apply %s %.*s", m->id, zxid_str(a, e->zxid), (int)e->size, (const char *)e->data);
    }
}

static void schedule_write(struct sim_world *w, struct sim_member *m, const struct zab_entry *e)
{
    struct sim_entry se = {.zxid = e->zxid, .size = e->size, .data = xmalloc(e->size), .kind = e->kind};
    memcpy(se.data, e->data, e->size);
    if (w->o.manual) {
        se.done_at = SIM_NEVER;
    } else {
        uint64_t at = w->now + 1 + sim_range(w, (uint64_t)w->o.disk_latency_max_units);
        uint64_t tail = m->pending.n ? m->pending.items[m->pending.n - 1].done_at : 0;
        se.done_at = at > tail ? at : tail; /* the disk completes in order */
    }
    vec_push(&m->pending, se);
}

static bool listed(const uint32_t *ids, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool same_membership(const struct zab_membership *a, const struct zab_membership *b)
{
    return a->version == b->version && a->n_voters == b->n_voters && a->n_observers == b->n_observers &&
           !memcmp(a->voters, b->voters, a->n_voters * sizeof a->voters[0]) &&
           !memcmp(a->observers, b->observers, a->n_observers * sizeof a->observers[0]);
}

/* ready.config: durable on the "disk"; every member that activates version v
 * must see the same lists. */
static void member_config_changed(struct sim_world *w, struct sim_member *m, const struct zab_membership *c,
                                  bool removed)
{
    m->membership = *c;
    m->has_membership = true;
    if (listed(c->voters, c->n_voters, (uint32_t)m->id) || listed(c->observers, c->n_observers, (uint32_t)m->id))
        m->joining = false; /* as the core: a joiner until a membership names it */
    bool known = false;
    for (int i = 0; i < w->n_versions; i++) {
        if (w->versions[i].version != c->version)
            continue;
        known = true;
        if (!same_membership(&w->versions[i], c))
            violate(w, "member %d activated membership 0x%" PRIx64 " with lists another member does not have",
                    m->id, c->version);
    }
    if (!known && w->n_versions < (int)(sizeof w->versions / sizeof w->versions[0]))
        w->versions[w->n_versions++] = *c;
    if (w->o.trace) {
        char a[24];
        trace(w, "  %d membership %s voters=%u observers=%u%s", m->id, zxid_str(a, c->version), c->n_voters,
              c->n_observers, removed ? " removed" : "");
    }
    if (removed)
        m->removed = true;
}

static void member_start(struct sim_world *w, struct sim_member *m);

/* A removed member about to be added again: stopped and its disk wiped, so
 * that it starts afresh, as a new server. */
static void retire(struct sim_world *w, struct sim_member *m)
{
    trace(w, "%s%d wiped", w->o.manual ? "  " : "", m->id);
    zab_free(m->z);
    m->z = NULL;
    m->up = false;
    m->idle = true;
    vec_clear(&m->pending);
    vec_clear(&m->durable);
    m->accepted_epoch = m->accepted_leader = m->current_epoch = 0;
    m->snapshot_zxid = m->snapshot_digest = 0;
    m->applied_zxid = m->digest = 0;
    m->has_membership = m->joining = m->removed = false;
}

static void drive(struct sim_world *w, struct sim_member *m)
{
    m->dirty = true;
    while (m->up && zab_has_ready(m->z)) {
        struct zab_ready rd;
        zab_ready(m->z, &rd);
        char a[24];
        if (rd.truncate) {
            vec_truncate(&m->durable, rd.truncate_to);
            vec_truncate(&m->pending, rd.truncate_to);
            if (w->o.manual && w->o.trace)
                trace(w, "  %d truncate to %s", m->id, zxid_str(a, rd.truncate_to));
        }
        if (rd.install_snapshot) {
            uint64_t digest = 0;
            if (rd.snapshot_size == 8)
                memcpy(&digest, rd.snapshot_data, 8);
            else
                violate(w, "member %d got a snapshot of %u bytes", m->id, rd.snapshot_size);
            vec_clear(&m->durable);
            vec_clear(&m->pending);
            m->snapshot_zxid = rd.snapshot_zxid;
            m->snapshot_digest = digest;
            m->applied_zxid = rd.snapshot_zxid;
            m->digest = digest;
            check_state_at(w, m->id, rd.snapshot_zxid, digest, "installed a snapshot");
            if (w->o.trace)
                trace(w, "  %d install snapshot %s", m->id, zxid_str(a, rd.snapshot_zxid));
        }
        for (size_t i = 0; i < rd.n_entries; i++)
            schedule_write(w, m, &rd.entries[i]);
        if (rd.config_changed)
            member_config_changed(w, m, rd.config, rd.removed);
        if (rd.write_epochs) {
            m->accepted_epoch = rd.accepted_epoch;
            m->accepted_leader = rd.accepted_leader;
            m->current_epoch = rd.current_epoch;
        }
        for (size_t i = 0; i < rd.n_messages; i++)
            net_send(w, &rd.messages[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            member_apply(w, m, &rd.committed[i]);
            if (rd.role == ZAB_LEADING)
                record_acked(w, rd.committed[i].zxid); /* the leader answers its client */
        }
        if (rd.role_changed && w->o.trace)
            trace(w, "  %d role %s/%s leader=%u epoch=%u", m->id, zab_role_name(rd.role),
                  zab_phase_name(rd.phase), rd.leader_id, rd.epoch);
        bool want = rd.snapshot_wanted;
        m->applies_since_snapshot += (int)rd.n_committed;
        zab_advance(m->z);
        if (want) {
            uint8_t bytes[8];
            memcpy(bytes, &m->digest, 8);
            int rc = zab_snapshot_offer(m->z, m->applied_zxid, bytes, 8);
            if (rc < 0)
                violate(w, "member %d: snapshot offer refused: %s", m->id, zab_strerror(rc));
        }
        if (w->o.compact_every && m->applies_since_snapshot >= w->o.compact_every) {
            /* A snapshot of the applied state, then compaction of the log. */
            m->applies_since_snapshot = 0;
            m->snapshot_zxid = m->applied_zxid;
            m->snapshot_digest = m->digest;
            vec_drop_upto(&m->durable, m->applied_zxid);
            zab_compact(m->z, m->applied_zxid);
        }
        /* as the daemon does once per loop turn: a few compacted buffers go
         * (the rest stay until zab_free, which frees them) */
        zab_collect(m->z, 8);
    }
}

static void member_start(struct sim_world *w, struct sim_member *m)
{
    uint32_t ids[SIM_MEMBERS_MAX];
    for (int i = 0; i < w->o.members; i++)
        ids[i] = (uint32_t)(i + 1); /* voters, then observers */
    struct zab_entry *entries = xmalloc(m->durable.n * sizeof *entries);
    size_t n = 0;
    for (size_t i = 0; i < m->durable.n; i++)
        if (m->durable.items[i].zxid > m->snapshot_zxid)
            entries[n++] = (struct zab_entry){.zxid = m->durable.items[i].zxid,
                                              .size = m->durable.items[i].size,
                                              .data = m->durable.items[i].data,
                                              .kind = m->durable.items[i].kind};
    const struct zab_membership *start = m->has_membership ? &m->membership
                                         : m->joining      ? &m->join_membership
                                                           : NULL;
    struct zab_restored restored = {
        .accepted_epoch = m->accepted_epoch,
        .accepted_leader = m->accepted_leader,
        .current_epoch = m->current_epoch,
        .snapshot_zxid = m->snapshot_zxid,
        .entries = entries,
        .n_entries = n,
        .membership = start,
    };
    struct zab_config c = {
        .id = (uint32_t)m->id,
        .voters = ids,
        .n_voters = (size_t)voter_count(w),
        .observers = ids + voter_count(w),
        .n_observers = (size_t)w->o.observers,
        .test_only_count_observers = w->o.count_observers,
        .heartbeat_ticks = (uint32_t)(w->o.heartbeat_ticks ? w->o.heartbeat_ticks : 2),
        .init_limit_ticks = (uint32_t)(w->o.init_limit_ticks ? w->o.init_limit_ticks : 10),
        .sync_limit_ticks = (uint32_t)(w->o.sync_limit_ticks ? w->o.sync_limit_ticks : 5),
        .test_only_ignore_link_close = w->o.ignore_link_close,
        .test_only_lead_on_stale_votes = w->o.stale_state,
        .prng_state = w->o.manual ? (uint64_t)m->id : sim_rand(w),
        .restored = &restored,
        .log = core_log,
        .log_context = w,
        .test_only_quorum_override = w->o.quorum_override,
        .joining = m->joining,
        .test_only_config_on_old_quorum = w->o.config_old_quorum,
    };
    int rc = zab_new(&c, &m->z);
    free(entries);
    if (rc < 0) {
        violate(w, "member %d: zab_new failed: %s", m->id, zab_strerror(rc));
        return;
    }
    m->up = true;
    m->incarnation++;
    m->applied_zxid = m->snapshot_zxid;
    m->digest = m->snapshot_digest;
    m->applies_since_snapshot = 0;
    check_state_at(w, m->id, m->applied_zxid, m->digest, "restarted with a");
    drive(w, m);
}

struct sim_world *sim_world_new(const struct sim_options *o)
{
    struct sim_world *w = calloc(1, sizeof *w);
    if (!w)
        exit(2);
    w->o = *o;
    if (!w->o.out)
        w->o.out = stdout;
    w->prng = o->seed;
    for (int i = 1; i <= slots(w); i++) {
        w->m[i].id = i;
        w->m[i].idle = i > o->members;
        w->group[i] = 0;
    }
    for (int i = 1; i <= o->members; i++)
        member_start(w, &w->m[i]);
    check_leaders(w);
    return w;
}

void sim_world_free(struct sim_world *w)
{
    if (!w)
        return;
    for (int i = 1; i <= slots(w); i++) {
        zab_free(w->m[i].z);
        vec_clear(&w->m[i].durable);
        vec_clear(&w->m[i].pending);
        free(w->m[i].durable.items);
        free(w->m[i].pending.items);
    }
    for (size_t i = 0; i < w->n_net; i++)
        free(w->net[i].bytes);
    free(w->net);
    free(w->chain);
    free(w->acked);
    free(w->epoch_leader);
    free(w);
}

/* ---- events ------------------------------------------------------------ */

static void deliver(struct sim_world *w, struct sim_msg *sm)
{
    struct sim_member *m = &w->m[sm->to];

    if (m->up && !connected(w, sm->from, sm->to) && w->o.manual)
        trace(w, "lost %d->%d (partition)", sm->from, sm->to);
    if (m->up && connected(w, sm->from, sm->to)) {
        struct zab_message msg;
        int rc = zab_message_decode(sm->bytes, sm->len, &msg);
        if (rc < 0) {
            violate(w, "decode of a message from %d failed: %s", sm->from, zab_strerror(rc));
        } else {
            if (w->o.trace) {
                char line[256];
                format_message(&msg, line, sizeof line);
                trace(w, "deliver %s", line);
            }
            zab_step(m->z, &msg);
            w->stats_delivered++;
            drive(w, m);
        }
    }
    free(sm->bytes);
}

static void complete_writes(struct sim_world *w, struct sim_member *m, uint64_t upto_time)
{
    size_t k = 0;
    while (k < m->pending.n && m->pending.items[k].done_at <= upto_time)
        k++;
    if (!k)
        return;
    uint64_t last = m->pending.items[k - 1].zxid;
    for (size_t i = 0; i < k; i++)
        vec_push(&m->durable, m->pending.items[i]);
    memmove(m->pending.items, m->pending.items + k, (m->pending.n - k) * sizeof *m->pending.items);
    m->pending.n -= k;
    if (w->o.manual && w->o.trace) {
        char a[24];
        trace(w, "  %d durable to %s", m->id, zxid_str(a, last));
    }
    zab_persisted(m->z, last);
    drive(w, m);
}

/* Member `id`'s driver reports its link to `peer` up (zab_peer_connected). */
static void links_up(struct sim_world *w, int id, int peer)
{
    struct sim_member *m = &w->m[id];
    zab_peer_connected(m->z, (uint32_t)peer);
    drive(w, m);
}

/* A member (re)started: its links to every reachable member come up, both ways. */
static void links_up_with_all(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++)
        if (i != id && w->m[i].up && w->group[i] == w->group[id]) {
            links_up(w, id, i);
            links_up(w, i, id);
        }
}

/* The crashed member's peers see its links close (EOF, as after kill -9) at
 * once: before a restart, which may come in the same chaos step and brings
 * the links up again, as a reconnect follows the close in the daemon. */
static void crash_links_close(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++) {
        if (i == id || !w->m[i].up || !connected(w, id, i))
            continue;
        trace(w, "link %d->%d closed", i, id);
        zab_peer_disconnected(w->m[i].z, (uint32_t)id);
        drive(w, &w->m[i]);
    }
}

void sim_crash(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return;
    bool silent = w->o.manual || sim_chance(w, w->o.silent_crash_percent * 10);
    w->last_crash_silent = silent;
    trace(w, "crash %d%s", id, silent && !w->o.manual ? " (silent)" : "");
    zab_free(m->z);
    m->z = NULL;
    m->up = false;
    vec_clear(&m->pending); /* not reported durable: lost */
    if (!silent)
        crash_links_close(w, id);
}

void sim_restart(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (m->up || stays_down(w, id) || m->idle)
        return;
    trace(w, "restart %d", id);
    member_start(w, m);
    check_leaders(w);
    if (!w->o.manual) /* random runs: its links to the others come up */
        links_up_with_all(w, id);
}

void sim_partition(struct sim_world *w, const int *group)
{
    for (int i = 1; i <= slots(w); i++)
        w->group[i] = group[i];
    if (w->o.trace) {
        char line[64] = "";
        for (int i = 1; i <= slots(w); i++) {
            size_t len = strlen(line);
            snprintf(line + len, sizeof line - len, "%s%d:%d", i > 1 ? " " : "", i, group[i]);
        }
        trace(w, "partition %s", line);
    }
}

void sim_heal(struct sim_world *w)
{
    int group[SIM_MEMBERS_MAX + 1] = {0};
    int was[SIM_MEMBERS_MAX + 1];
    memcpy(was, w->group, sizeof was);
    memcpy(w->group, group, sizeof group);
    trace(w, "heal");
    if (!w->o.manual) /* random runs: the links cut by the partition come up */
        for (int i = 1; i <= slots(w); i++)
            for (int j = 1; j <= slots(w); j++)
                if (i != j && was[i] != was[j] && w->m[i].up && w->m[j].up)
                    links_up(w, i, j);
}

void sim_link(struct sim_world *w, int id, int peer, bool up)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return;
    trace(w, "link %d->%d %s", id, peer, up ? "up" : "closed");
    if (up)
        zab_peer_connected(m->z, (uint32_t)peer);
    else
        zab_peer_disconnected(m->z, (uint32_t)peer);
    drive(w, m);
    check_leaders(w);
}

void sim_tick(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++) {
        if ((id && i != id) || !w->m[i].up)
            continue;
        zab_tick(w->m[i].z);
        drive(w, &w->m[i]);
    }
    check_leaders(w);
}

int sim_deliver(struct sim_world *w, int from, int to, int max)
{
    /* In manual mode all messages have at == 0, so heap order is send order;
     * pick matching ones in seq order. */
    int n = 0;
    while (max == 0 || n < max) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < w->n_net; i++) {
            if ((from && w->net[i].from != from) || (to && w->net[i].to != to))
                continue;
            if (best == SIZE_MAX || w->net[i].seq < w->net[best].seq)
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        struct sim_msg sm = w->net[best];
        net_remove_at(w, best);
        deliver(w, &sm);
        check_leaders(w);
        n++;
    }
    return n;
}

int sim_drop(struct sim_world *w, int from, int to)
{
    int n = 0;
    for (size_t i = 0; i < w->n_net;) {
        if ((from && w->net[i].from != from) || (to && w->net[i].to != to)) {
            i++;
            continue;
        }
        free(w->net[i].bytes);
        net_remove_at(w, i);
        n++;
        i = 0; /* the heap reshuffled */
    }
    return n;
}

void sim_persist(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++)
        if ((!id || i == id) && w->m[i].up)
            complete_writes(w, &w->m[i], SIM_NEVER);
    check_leaders(w);
}

/* Member id's disk fails every write not yet durable (a full disk): they are
 * gone, and the driver asks the core to withdraw them (zab_persist_failed). */
int sim_persist_fail(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    vec_clear(&m->pending);
    int rc = zab_persist_failed(m->z);
    if (w->o.manual)
        trace(w, "  %d persist failed: %s", id, rc == 0 ? "withdrawn" : zab_strerror(rc));
    drive(w, m);
    return rc;
}

int64_t sim_propose(struct sim_world *w, int id, const char *data)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    int64_t zxid = zab_propose(m->z, (const uint8_t *)data, (uint32_t)strlen(data));
    char a[24];
    if (zxid > 0)
        trace(w, "%s%d propose %s %s", w->o.manual ? "  " : "", id, zxid_str(a, (uint64_t)zxid), data);
    else if (w->o.manual)
        trace(w, "  %d propose refused: %s", id, zab_strerror((int)zxid));
    drive(w, m);
    return zxid;
}

void sim_stabilize(struct sim_world *w, int max_rounds)
{
    for (int r = 0; r < max_rounds; r++) {
        int moved = sim_deliver(w, 0, 0, 0);
        bool wrote = false;
        for (int i = 1; i <= slots(w); i++)
            if (w->m[i].up && w->m[i].pending.n)
                wrote = true;
        sim_persist(w, 0);
        if (!moved && !wrote)
            return;
    }
}

int sim_join(struct sim_world *w, int id, int from)
{
    if (id < 1 || id > slots(w) || !w->m[id].idle || from < 1 || from > slots(w) || !w->m[from].up)
        return -1;
    struct sim_member *m = &w->m[id];
    struct zab_status st;
    zab_status(w->m[from].z, &st);
    trace(w, "%sjoin %d knowing membership of %d", w->o.manual ? "" : "", id, from);
    m->idle = false;
    m->joining = true;
    m->join_membership = st.config;
    member_start(w, m);
    check_leaders(w);
    if (!w->o.manual && m->up) /* random runs: its links come up, as on a restart */
        links_up_with_all(w, id);
    return m->up ? 0 : -1;
}

int64_t sim_propose_config(struct sim_world *w, int id, const uint32_t *voters, int n_voters,
                           const uint32_t *observers, int n_observers)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    int64_t zxid = zab_propose_config(m->z, voters, (size_t)n_voters, observers, (size_t)n_observers, 0);
    char line[128] = "", a[24];
    for (int i = 0; i < n_voters + n_observers; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%s%u%s", i ? "," : "",
                 i < n_voters ? voters[i] : observers[i - n_voters], i < n_voters ? "" : "o");
    }
    if (zxid > 0) {
        trace(w, "%s%d propose membership %s: %s", w->o.manual ? "  " : "", id, zxid_str(a, (uint64_t)zxid), line);
        w->has_proposed = true;
        w->proposed = (struct zab_membership){.n_voters = (uint32_t)n_voters, .n_observers = (uint32_t)n_observers};
        memcpy(w->proposed.voters, voters, (size_t)n_voters * sizeof *voters);
        memcpy(w->proposed.observers, observers, (size_t)n_observers * sizeof *observers);
    } else {
        trace(w, "%s%d propose membership %s refused: %s", w->o.manual ? "  " : "", id, line,
              zab_strerror((int)zxid));
    }
    drive(w, m);
    return zxid;
}

void sim_set_output(struct sim_world *w, FILE *out) { w->o.out = out; }
void sim_set_compaction(struct sim_world *w, int applies) { w->o.compact_every = applies; }

void sim_print_status(struct sim_world *w)
{
    char a[24], b[24], c[24];
    for (int i = 1; i <= slots(w); i++) {
        struct sim_member *m = &w->m[i];
        if (!m->up) {
            fprintf(w->o.out, "  %d %s\n", i, m->idle ? "idle" : "down");
            continue;
        }
        struct zab_status s;
        zab_status(m->z, &s);
        fprintf(w->o.out, "  %d %s/%s leader=%u epoch=%u accepted=%u current=%u last=%s committed=%s applied=%s\n",
                i, zab_role_name(s.role), zab_phase_name(s.phase), s.leader_id, s.epoch, s.accepted_epoch,
                s.current_epoch, zxid_str(a, s.last_zxid), zxid_str(b, s.committed_zxid),
                zxid_str(c, s.applied_zxid));
        if (w->o.reconfig || w->o.spares || s.config.version || s.reconfig_pending) {
            fprintf(w->o.out, "    membership %s voters=", zxid_str(a, s.config.version));
            for (uint32_t k = 0; k < s.config.n_voters; k++)
                fprintf(w->o.out, "%s%u", k ? "," : "", s.config.voters[k]);
            fprintf(w->o.out, " observers=");
            for (uint32_t k = 0; k < s.config.n_observers; k++)
                fprintf(w->o.out, "%s%u", k ? "," : "", s.config.observers[k]);
            if (s.reconfig_pending)
                fprintf(w->o.out, " pending=%s", zxid_str(b, s.pending_version));
            fputc('\n', w->o.out);
        }
    }
}

void sim_print_log(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    char a[24];
    fprintf(w->o.out, "  %d disk: epochs=%u/%u snapshot=%s log=", id, m->accepted_epoch, m->current_epoch,
            zxid_str(a, m->snapshot_zxid));
    for (size_t i = 0; i < m->durable.n; i++)
        fprintf(w->o.out, "%s%s", i ? "," : "", zxid_str(a, m->durable.items[i].zxid));
    if (m->pending.n) {
        fprintf(w->o.out, " pending=");
        for (size_t i = 0; i < m->pending.n; i++)
            fprintf(w->o.out, "%s%s", i ? "," : "", zxid_str(a, m->pending.items[i].zxid));
    }
    fputc('\n', w->o.out);
}

/* ---- the randomised run ----------------------------------------------- */

static int count_up(const struct sim_world *w)
{
    int n = 0;
    for (int i = 1; i <= slots(w); i++)
        n += w->m[i].up;
    return n;
}

static int established_leader(struct sim_world *w)
{
    for (int i = 1; i <= slots(w); i++) {
        if (!w->m[i].up)
            continue;
        struct zab_status s;
        zab_status(w->m[i].z, &s);
        if (s.role == ZAB_LEADING && s.phase == ZAB_PHASE_BROADCAST)
            return i;
    }
    return 0;
}

static int count_voters_up(const struct sim_world *w)
{
    int n = 0;
    for (int i = 1; i <= voter_count(w); i++)
        n += w->m[i].up;
    return n;
}

static struct zab_membership initial_membership(const struct sim_world *w)
{
    struct zab_membership m = {0};
    for (int i = 1; i <= w->o.members; i++) {
        if (is_observer(w, i))
            m.observers[m.n_observers++] = (uint32_t)i;
        else
            m.voters[m.n_voters++] = (uint32_t)i;
    }
    return m;
}

/* Crashing id keeps a quorum of voters up in the newest activated and the
 * last proposed membership (reconfiguration runs). */
static bool can_crash(const struct sim_world *w, int id)
{
    struct zab_membership sets[2];
    int n = 0;
    sets[n] = initial_membership(w);
    for (int i = 0; i < w->n_versions; i++)
        if (w->versions[i].version > sets[n].version)
            sets[n] = w->versions[i];
    n++;
    if (w->has_proposed)
        sets[n++] = w->proposed;
    for (int k = 0; k < n; k++) {
        uint32_t up = 0;
        for (uint32_t i = 0; i < sets[k].n_voters; i++) {
            uint32_t v = sets[k].voters[i];
            up += v != (uint32_t)id && w->m[v].up;
        }
        if (up < sets[k].n_voters / 2 + 1)
            return false;
    }
    return true;
}

/* A random reconfiguration on the established leader: add a member (idle,
 * or a joiner not yet named), remove one (the leader too), or switch one
 * between voter and observer.  Voters stay within 3..5. */
static void random_reconfig(struct sim_world *w, int leader)
{
    struct zab_status st;
    zab_status(w->m[leader].z, &st);
    if (st.reconfig_pending)
        return;
    struct zab_membership next = st.config;
    int op = (int)sim_range(w, 4);
    if (op == 3) {
        /* Bulk: keep one voter, make two others voters (observers, joiners
         * or idle ids), drop every other voter.  Old and new quorums may
         * then be disjoint but for the kept one: only the double quorum
         * keeps the committed history. */
        uint32_t kept = next.voters[sim_range(w, next.n_voters)];
        uint32_t chosen[2];
        int n_chosen = 0;
        for (int i = 1; i <= slots(w) && n_chosen < 2; i++) {
            if (listed(next.voters, next.n_voters, (uint32_t)i))
                continue;
            bool observer = listed(next.observers, next.n_observers, (uint32_t)i);
            if (!observer && !w->m[i].idle && !w->m[i].joining && !w->m[i].removed)
                continue;
            chosen[n_chosen++] = (uint32_t)i;
        }
        if (n_chosen < 2)
            return;
        for (int k = 0; k < 2; k++) {
            if (w->m[chosen[k]].removed)
                retire(w, &w->m[chosen[k]]);
            if (w->m[chosen[k]].idle && sim_join(w, (int)chosen[k], leader) < 0)
                return;
        }
        struct zab_membership bulk = {.n_voters = 3, .voters = {kept, chosen[0], chosen[1]}};
        for (uint32_t i = 0; i < next.n_observers; i++)
            if (next.observers[i] != chosen[0] && next.observers[i] != chosen[1])
                bulk.observers[bulk.n_observers++] = next.observers[i];
        next = bulk;
    } else if (op == 0) {
        int id = 0;
        for (int i = 1; i <= slots(w) && !id; i++)
            if (!w->m[i].idle && w->m[i].joining && !listed(next.voters, next.n_voters, (uint32_t)i) &&
                !listed(next.observers, next.n_observers, (uint32_t)i))
                id = i; /* a joiner whose addition did not happen */
        for (int i = 1; i <= slots(w) && !id; i++)
            if (w->m[i].idle || w->m[i].removed)
                id = i;
        if (!id)
            return;
        if (w->m[id].removed)
            retire(w, &w->m[id]);
        if (w->m[id].idle && sim_join(w, id, leader) < 0)
            return;
        if (next.n_voters < 5 && sim_chance(w, 600))
            next.voters[next.n_voters++] = (uint32_t)id;
        else
            next.observers[next.n_observers++] = (uint32_t)id;
    } else {
        uint32_t n_all = next.n_voters + next.n_observers;
        uint32_t pick = (uint32_t)sim_range(w, n_all);
        bool voter = pick < next.n_voters;
        uint32_t id = voter ? next.voters[pick] : next.observers[pick - next.n_voters];
        if (voter && next.n_voters <= 3)
            return;
        if (!voter && op == 2 && next.n_voters >= 5)
            return;
        uint32_t *list = voter ? next.voters : next.observers;
        uint32_t *count = voter ? &next.n_voters : &next.n_observers;
        uint32_t at = voter ? pick : pick - next.n_voters;
        memmove(list + at, list + at + 1, (*count - at - 1) * sizeof *list);
        (*count)--;
        if (op == 2) {
            if (voter)
                next.observers[next.n_observers++] = id;
            else
                next.voters[next.n_voters++] = id;
        }
    }
    sim_propose_config(w, leader, next.voters, (int)next.n_voters, next.observers, (int)next.n_observers);
}

static void chaos(struct sim_world *w)
{
    if (w->o.reconfig) {
        /* Crash/restart by the memberships in force; the rest as below. */
        if (sim_chance(w, 10)) {
            int id = 1 + (int)sim_range(w, (uint64_t)slots(w));
            if (can_crash(w, id))
                sim_crash(w, id);
        }
        if (sim_chance(w, 2))
            for (int i = 1; i <= slots(w); i++)
                sim_crash(w, i);
        for (int i = 1; i <= slots(w); i++)
            if (!w->m[i].up && sim_chance(w, 60))
                sim_restart(w, i);
        int leader = established_leader(w);
        if (leader && sim_chance(w, 10))
            random_reconfig(w, leader);
    }
    int n = w->o.reconfig ? slots(w) : w->o.members, quorum = voter_count(w) / 2 + 1;
    /* Crash a member, keeping a quorum of voters up (observers do not count;
     * with voters_down there is no quorum to keep). */
    if (!w->o.reconfig && sim_chance(w, 10) && (count_voters_up(w) > quorum || w->o.observers)) {
        int id = 1 + (int)sim_range(w, (uint64_t)n);
        if (is_observer(w, id) || count_voters_up(w) > quorum || w->voters_lost)
            sim_crash(w, id);
    }
    if (!w->o.reconfig && sim_chance(w, 2)) { /* everyone at once: only durable state survives */
        for (int i = 1; i <= n; i++)
            sim_crash(w, i);
    }
    for (int i = 1; i <= n && !w->o.reconfig; i++)
        if (!w->m[i].up && sim_chance(w, 60))
            sim_restart(w, i);
    if (count_up(w) <= w->o.voters_down) /* sim_restart skips those that stay down */
        for (int i = 1; i <= n; i++)
            sim_restart(w, i);
    bool partitioned = false;
    for (int i = 1; i <= n; i++)
        partitioned |= w->group[i] != 0;
    if (!partitioned && sim_chance(w, 10)) {
        int group[SIM_MEMBERS_MAX + 1] = {0};
        for (int i = 1; i <= n; i++)
            group[i] = (int)sim_range(w, 2);
        sim_partition(w, group);
    } else if (partitioned && sim_chance(w, 50)) {
        sim_heal(w);
    }
    /* the client */
    int leader = established_leader(w);
    if (leader && sim_chance(w, 400)) {
        char data[32];
        snprintf(data, sizeof data, "c%" PRIu64, ++w->client_counter);
        sim_propose(w, leader, data);
    }
}

/* Runs every event due up to time `until`. */
static void run_until(struct sim_world *w, uint64_t until, bool with_chaos)
{
    while (w->now < until && !w->violation[0]) {
        w->now++;
        while (w->n_net && w->net[0].at <= w->now) {
            struct sim_msg sm = w->net[0];
            net_remove_at(w, 0);
            deliver(w, &sm);
            check_leaders(w);
        }
        for (int i = 1; i <= slots(w); i++) {
            struct sim_member *m = &w->m[i];
            if (m->up && m->pending.n && m->pending.items[0].done_at <= w->now) {
                complete_writes(w, m, w->now);
                check_leaders(w);
            }
            if (m->up && w->now % SIM_TICK_UNITS == (uint64_t)i % SIM_TICK_UNITS) {
                zab_tick(m->z);
                drive(w, m);
                check_leaders(w);
            }
        }
        if (with_chaos && w->now % SIM_TICK_UNITS == 0)
            chaos(w);
    }
}

/* Voters 1..voters_down go down for good.  If no quorum of voters is left,
 * any commit from now on has an entry durable on a downed voter, and any
 * established leader an epoch a downed voter accepted: bound both. */
static void lose_voters(struct sim_world *w)
{
    trace(w, "voters 1..%d down for good", w->o.voters_down);
    for (int i = 1; i <= w->o.voters_down; i++)
        sim_crash(w, i);
    w->quorum_gone = voter_count(w) - w->o.voters_down < voter_count(w) / 2 + 1;
    for (int i = 1; i <= w->o.voters_down; i++) {
        struct sim_member *m = &w->m[i];
        uint64_t last = m->durable.n ? m->durable.items[m->durable.n - 1].zxid : m->snapshot_zxid;
        if (last > w->bound_zxid)
            w->bound_zxid = last;
        if (m->accepted_epoch > w->bound_epoch)
            w->bound_epoch = m->accepted_epoch;
    }
    w->voters_lost = true;
}

/* Members of the leader's active membership, and how many of its voters
 * applied zxid (0 when there is no established leader). */
static int applied_by(struct sim_world *w, int leader, uint64_t zxid, bool *all)
{
    struct zab_status st;
    zab_status(w->m[leader].z, &st);
    int voters = 0;
    *all = true;
    for (uint32_t i = 0; i < st.config.n_voters; i++) {
        struct sim_member *m = &w->m[st.config.voters[i]];
        bool has = m->up && m->applied_zxid >= zxid;
        voters += has;
        *all &= has;
    }
    for (uint32_t i = 0; i < st.config.n_observers; i++) {
        struct sim_member *m = &w->m[st.config.observers[i]];
        *all &= m->up && m->applied_zxid >= zxid;
    }
    return voters;
}

/* One failover probe: crash the established leader, restart it 0..syncLimit
 * ticks later, and time the way back (see sim_options.failover_probes). */
static void failover_probe(struct sim_world *w, int k)
{
    int leader = established_leader(w);
    if (!leader) {
        w->liveness_failure = true;
        violate(w, "failover probe %d: no established leader to crash", k);
        return;
    }
    int sync_limit = w->o.sync_limit_ticks ? w->o.sync_limit_ticks : 5;
    int bound = w->o.failover_bound_ticks;
    uint64_t restart_ticks = sim_range(w, (uint64_t)sync_limit);
    uint64_t crashed_at = w->now;
    uint64_t restart_at = crashed_at + restart_ticks * SIM_TICK_UNITS;
    int quorum = voter_count(w) / 2 + 1;
    trace(w, "failover probe %d: crash leader %d, restart in %" PRIu64 " ticks", k, leader, restart_ticks);
    sim_crash(w, leader);
    /* A crash that closed links must be noticed at once, so the survivors
     * serve within the bound; a silent one only from silence, or from the
     * restarted leader's votes. */
    bool links_closed = !w->last_crash_silent;
    uint64_t survivors_by = crashed_at + (uint64_t)bound * SIM_TICK_UNITS;
    uint64_t all_by = (restart_at > crashed_at ? restart_at : crashed_at) + (uint64_t)bound * SIM_TICK_UNITS;
    int64_t probe = 0;
    int probe_leader = 0;
    uint32_t probe_epoch = 0;
    bool survivors_served = !links_closed;
    while (!w->violation[0]) {
        if (w->now >= restart_at && !w->m[leader].up)
            sim_restart(w, leader);
        run_until(w, w->now + SIM_TICK_UNITS, false);
        int now_leader = established_leader(w);
        uint32_t now_epoch = 0;
        if (now_leader) {
            struct zab_status st;
            zab_status(w->m[now_leader].z, &st);
            now_epoch = st.epoch;
        }
        /* A probe of an earlier leadership may have been truncated away. */
        if (now_leader && (probe <= 0 || now_leader != probe_leader || now_epoch != probe_epoch)) {
            probe = sim_propose(w, now_leader, "failover-probe");
            probe_leader = now_leader;
            probe_epoch = now_epoch;
        }
        bool all = false;
        int voters = now_leader && probe > 0 ? applied_by(w, now_leader, (uint64_t)probe, &all) : 0;
        if (!survivors_served && voters >= quorum) {
            survivors_served = true;
            uint64_t took = (w->now - crashed_at) / SIM_TICK_UNITS;
            w->failover.survivor_ticks[w->failover.n_survivor++ % SIM_FAILOVER_SAMPLES_MAX] = (uint32_t)took;
            trace(w, "failover probe %d: served again after %" PRIu64 " ticks", k,
                  (w->now - crashed_at) / SIM_TICK_UNITS);
        }
        if (!survivors_served && w->now > survivors_by) {
            w->liveness_failure = true;
            violate(w, "failover probe %d: leader %d crashed (links closed) at tick %" PRIu64
                    ": no leader serving a quorum within %d ticks",
                    k, leader, crashed_at / SIM_TICK_UNITS, bound);
            return;
        }
        if (all && w->m[leader].up && survivors_served) {
            uint64_t from = restart_at > crashed_at ? restart_at : crashed_at;
            uint64_t took = w->now > from ? (w->now - from) / SIM_TICK_UNITS : 0;
            w->failover.all_ticks[w->failover.n_all++ % SIM_FAILOVER_SAMPLES_MAX] = (uint32_t)took;
            return;
        }
        if (w->now > all_by) {
            w->liveness_failure = true;
            violate(w, "failover probe %d: leader %d crashed at tick %" PRIu64 "%s, restarted %" PRIu64
                    " ticks later: not every member applied a probe within %d ticks of the restart",
                    k, leader, crashed_at / SIM_TICK_UNITS, links_closed ? "" : " (silent)", restart_ticks,
                    bound);
            return;
        }
    }
}

int sim_run_random(struct sim_world *w, int steps, int liveness_ticks)
{
    if (w->o.voters_down) {
        run_until(w, (uint64_t)steps / 4 * SIM_TICK_UNITS, true);
        lose_voters(w);
        /* No quorum of voters can be up again: the only demand is safety,
         * checked all along. */
        run_until(w, (uint64_t)steps * SIM_TICK_UNITS, true);
        return w->violation[0] ? -1 : 0;
    }
    run_until(w, (uint64_t)steps * SIM_TICK_UNITS, true);
    if (w->violation[0])
        return -1;
    /* Heal: everyone up, one network, no loss; then demand a leader and an
     * entry committed by everyone within liveness_ticks. */
    trace(w, "heal all: liveness phase");
    sim_heal(w);
    for (int i = 1; i <= slots(w); i++)
        sim_restart(w, i);
    w->o.loss_percent = 0;
    w->o.dup_percent = 0;
    uint64_t deadline = w->now + (uint64_t)liveness_ticks * SIM_TICK_UNITS;
    int64_t probe = 0;
    int probe_leader = 0;
    while (w->now < deadline && !w->violation[0]) {
        run_until(w, w->now + SIM_TICK_UNITS, false);
        int leader = established_leader(w);
        if (!leader)
            continue;
        if (probe <= 0 || leader != probe_leader) {
            probe = sim_propose(w, leader, "probe");
            probe_leader = leader;
            continue;
        }
        bool all = true;
        struct zab_status st;
        zab_status(w->m[leader].z, &st);
        bool member[SIM_MEMBERS_MAX + 1] = {false};
        for (uint32_t i = 0; i < st.config.n_voters; i++)
            member[st.config.voters[i]] = true;
        for (uint32_t i = 0; i < st.config.n_observers; i++)
            member[st.config.observers[i]] = true;
        for (int i = 1; i <= slots(w); i++)
            all &= !member[i] || w->m[i].applied_zxid >= (uint64_t)probe;
        if (all) {
            /* Everything acknowledged must be applied everywhere by now. */
            for (int i = 1; i <= slots(w); i++)
                if (member[i] && w->n_acked && w->m[i].applied_zxid < w->acked[w->n_acked - 1] &&
                    !w->violation[0]) {
                    w->liveness_failure = true;
                    violate(w, "member %d did not apply every acknowledged entry", i);
                }
            for (int k = 0; k < w->o.failover_probes && !w->violation[0]; k++)
                failover_probe(w, k);
            return w->violation[0] ? -1 : 0;
        }
    }
    if (!w->violation[0]) {
        w->liveness_failure = true;
        violate(w, "no leader committing on every member within %d ticks of healing", liveness_ticks);
        if (w->o.trace)
            sim_print_status(w);
    }
    return -1;
}
