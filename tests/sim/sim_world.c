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
#include "sim_internal.h"

/* ---- membership -------------------------------------------------------- */

/* ---- randomness -------------------------------------------------------- */

uint64_t sim_rand(struct sim_world *w)
{
    uint64_t x = (w->prng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}


static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "zab_sim: out of memory\n");
        exit(2);
    }
    return p;
}

void *xrealloc(void *p, size_t n)
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

void trace(struct sim_world *w, const char *fmt, ...)
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

const char *zxid_str(char *buf, uint64_t zxid)
{
    snprintf(buf, 24, "%u.%u", zab_zxid_epoch(zxid), zab_zxid_counter(zxid));
    return buf;
}

void format_message(const struct zab_message *m, char *out, size_t cap)
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

/* ---- disk -------------------------------------------------------------- */

void vec_push(struct sim_vec *v, struct sim_entry e)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->items = xrealloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->n++] = e;
}

void vec_truncate(struct sim_vec *v, uint64_t zxid)
{
    while (v->n && v->items[v->n - 1].zxid > zxid)
        free(v->items[--v->n].data);
}


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

void net_remove_at(struct sim_world *w, size_t i)
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

bool listed(const uint32_t *ids, uint32_t n, uint32_t id)
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


/* A removed member about to be added again: stopped and its disk wiped, so
 * that it starts afresh, as a new server. */
void retire(struct sim_world *w, struct sim_member *m)
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

void drive(struct sim_world *w, struct sim_member *m)
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
            trace(w, "  %d role %s/%s leader=%u epoch=%u%s", m->id, zab_role_name(rd.role),
                  zab_phase_name(rd.phase), rd.leader_id, rd.epoch, rd.serving ? " serving" : "");
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

void member_start(struct sim_world *w, struct sim_member *m)
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
