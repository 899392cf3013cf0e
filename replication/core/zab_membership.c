/*
 * zab_membership.c: who is in the ensemble (ZooKeeper's dynamic
 * reconfiguration, steps R1-R6 of the notes in zab.c).  It owns the active
 * membership (committed), the pending one (a CONFIG entry in the log above
 * it, at most one), the table of peers keyed by id that every other file
 * indexes (members[], peers[], votes[], others[] share its indexes), the
 * quorum rule over both memberships, and activation: the moment a CONFIG
 * entry commits, with what follows for this member's role.
 */
#include "zab_internal.h"

#include <string.h>

static bool list_has(const uint32_t *ids, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static uint8_t flags_for(const struct zab *z, uint32_t id)
{
    uint8_t f = 0;
    if (list_has(z->active.voters, z->active.n_voters, id))
        f |= ZAB_MEMBER_VOTER;
    if (list_has(z->active.observers, z->active.n_observers, id))
        f |= ZAB_MEMBER_OBSERVER;
    if (z->has_pending) {
        if (list_has(z->pending.voters, z->pending.n_voters, id))
            f |= ZAB_MEMBER_PENDING_VOTER;
        if (list_has(z->pending.observers, z->pending.n_observers, id))
            f |= ZAB_MEMBER_PENDING_OBSERVER;
    }
    return f;
}

int zab_membership_check(const struct zab_membership *m)
{
    if (m->n_voters == 0 || m->n_voters > ZAB_MEMBERS_MAX || m->n_observers > ZAB_OBSERVERS_MAX)
        return ZAB_EINVAL;
    for (uint32_t i = 0; i < m->n_voters + m->n_observers; i++) {
        uint32_t id = i < m->n_voters ? m->voters[i] : m->observers[i - m->n_voters];
        if (id == 0)
            return ZAB_EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if ((j < m->n_voters ? m->voters[j] : m->observers[j - m->n_voters]) == id)
                return ZAB_EINVAL;
    }
    return 0;
}

/* R1: the table of ids, keeping the state of every id that stays.  Ids:
 * myself, both memberships, and on a leader the joiners that reached it. */
void zab_membership_rebuild(struct zab *z)
{
    uint32_t ids[ZAB_PEERS_MAX];
    int from[ZAB_PEERS_MAX];
    uint32_t n = 0;
#define ADD_ID(x)                                                                        \
    do {                                                                                 \
        uint32_t id_ = (x);                                                              \
        if (n < ZAB_PEERS_MAX && !list_has(ids, n, id_)) {                               \
            from[n] = zab_peer_index(z, id_);                                            \
            ids[n++] = id_;                                                              \
        }                                                                                \
    } while (0)
    ADD_ID(z->id);
    for (uint32_t i = 0; i < z->active.n_voters; i++)
        ADD_ID(z->active.voters[i]);
    for (uint32_t i = 0; i < z->active.n_observers; i++)
        ADD_ID(z->active.observers[i]);
    if (z->has_pending) {
        for (uint32_t i = 0; i < z->pending.n_voters; i++)
            ADD_ID(z->pending.voters[i]);
        for (uint32_t i = 0; i < z->pending.n_observers; i++)
            ADD_ID(z->pending.observers[i]);
    }
    if (z->role == ZAB_LEADING)
        for (uint32_t i = 0; i < z->n_members; i++)
            if (z->peers[i].info && z->flags[i] == 0)
                ADD_ID(z->members[i]); /* a joiner in the middle of its sync (not a member just removed) */
#undef ADD_ID
    struct zab_peer peers[ZAB_PEERS_MAX];
    struct zab_vote_record votes[ZAB_PEERS_MAX], others[ZAB_PEERS_MAX];
    memset(peers, 0, sizeof peers);
    memset(votes, 0, sizeof votes);
    memset(others, 0, sizeof others);
    for (uint32_t i = 0; i < n; i++) {
        if (from[i] >= 0) {
            peers[i] = z->peers[from[i]];
            votes[i] = z->votes[from[i]];
            others[i] = z->others[from[i]];
        } else {
            peers[i].id = ids[i];
            peers[i].last_heard_tick = z->now;
        }
        z->flags[i] = flags_for(z, ids[i]);
    }
    memcpy(z->members, ids, sizeof ids);
    memcpy(z->peers, peers, sizeof peers);
    memcpy(z->votes, votes, sizeof votes);
    memcpy(z->others, others, sizeof others);
    z->n_members = n;
    z->self_index = 0;
    z->is_observer = !zab_is_voter(z, 0);
}

/* A joiner reached the leader: a slot that counts nowhere (R5). */
int zab_membership_add_joiner(struct zab *z, uint32_t id)
{
    if (id == 0 || z->n_members >= ZAB_PEERS_MAX)
        return -1;
    uint32_t i = z->n_members++;
    z->members[i] = id;
    memset(&z->peers[i], 0, sizeof z->peers[i]);
    memset(&z->votes[i], 0, sizeof z->votes[i]);
    memset(&z->others[i], 0, sizeof z->others[i]);
    z->peers[i].id = id;
    z->peers[i].last_heard_tick = z->now;
    z->flags[i] = 0;
    return (int)i;
}

static uint32_t quorum_size(const struct zab *z, uint32_t n_voters)
{
    return z->quorum_override ? z->quorum_override : n_voters / 2 + 1;
}

/* R3: has[i] for each index; a quorum of the active voters and, while a
 * CONFIG entry is pending, of the pending voters too.  (The test-only
 * count_observers core counts observers towards a quorum sized by the
 * voters: the bug it stands for.) */
bool zab_quorum(const struct zab *z, const bool *has)
{
    uint32_t active = 0, pending = 0;
    for (uint32_t i = 0; i < z->n_members; i++) {
        if (!has[i])
            continue;
        uint8_t f = z->flags[i];
        if ((f & ZAB_MEMBER_VOTER) || (z->count_observers && (f & ZAB_MEMBER_OBSERVER)))
            active++;
        if ((f & ZAB_MEMBER_PENDING_VOTER) || (z->count_observers && (f & ZAB_MEMBER_PENDING_OBSERVER)))
            pending++;
    }
    uint32_t active_voters = z->active.n_voters;
    if (active < quorum_size(z, active_voters))
        return false;
    if (!z->has_pending)
        return true;
    uint32_t pending_voters = z->pending.n_voters;
    return pending >= quorum_size(z, pending_voters);
}

/* The election's rule: a quorum of the active voters alone.  Safety rests
 * on discovery (zab.c), which uses zab_quorum; members whose logs hold
 * different pending entries must still be able to agree on a leader, who
 * then truncates what was not committed. */
bool zab_quorum_active(const struct zab *z, const bool *has)
{
    uint32_t active = 0;
    for (uint32_t i = 0; i < z->n_members; i++)
        if (has[i] && ((z->flags[i] & ZAB_MEMBER_VOTER) ||
                       (z->count_observers && (z->flags[i] & ZAB_MEMBER_OBSERVER))))
            active++;
    uint32_t active_voters = z->active.n_voters;
    return active >= quorum_size(z, active_voters);
}

static int compare_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The highest zxid durable on a quorum of one membership's voters (mask:
 * which flags make a member count in it); 0 if no quorum reported. */
static uint64_t quorum_point(const struct zab *z, const uint64_t *durable, const bool *known,
                             uint8_t mask, uint32_t n_voters)
{
    uint64_t points[ZAB_PEERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < z->n_members; i++)
        if (known[i] && (z->flags[i] & mask))
            points[n++] = durable[i];
    uint32_t q = quorum_size(z, n_voters);
    if (n < q || q == 0)
        return 0;
    qsort(points, n, sizeof points[0], compare_desc);
    return points[q - 1];
}

/* R3 for the commit point. */
uint64_t zab_membership_commit_point(const struct zab *z, const uint64_t *durable, const bool *known)
{
    uint8_t active_mask = ZAB_MEMBER_VOTER | (z->count_observers ? ZAB_MEMBER_OBSERVER : 0);
    uint32_t active_n = z->active.n_voters;
    uint64_t c_old = quorum_point(z, durable, known, active_mask, active_n);
    if (!z->has_pending || c_old < z->pending_zxid || z->config_old_quorum)
        return c_old;
    uint8_t pending_mask = ZAB_MEMBER_PENDING_VOTER | (z->count_observers ? ZAB_MEMBER_PENDING_OBSERVER : 0);
    uint32_t pending_n = z->pending.n_voters;
    uint64_t c_new = quorum_point(z, durable, known, pending_mask, pending_n);
    if (c_new >= z->pending_zxid)
        return c_old < c_new ? c_old : c_new;
    ptrdiff_t at = zab_log_find(z, z->pending_zxid);
    ZAB_ASSERT(at >= 0);
    return zab_log_prev(z, (size_t)at); /* everything before the CONFIG entry */
}

/* R2: the pending membership is the last CONFIG entry of the log above the
 * active version.  Called whenever the log changes shape. */
void zab_membership_scan(struct zab *z)
{
    bool had = z->has_pending;
    uint64_t had_zxid = z->pending_zxid;
    z->has_pending = false;
    z->pending_zxid = 0;
    for (size_t i = z->n_entries; i > 0; i--) {
        const struct zab_entry *e = &z->entries[i - 1];
        if (e->zxid <= z->active.version)
            break;
        if (e->kind != ZAB_ENTRY_CONFIG)
            continue;
        struct zab_membership m;
        if (zab_membership_decode_prefix(e->data, e->size, &m) < 0 || zab_membership_check(&m) < 0)
            continue; /* the leader checked it: cannot happen */
        m.version = e->zxid;
        z->pending = m;
        z->has_pending = true;
        z->pending_zxid = e->zxid;
        break;
    }
    if (had != z->has_pending || had_zxid != z->pending_zxid)
        zab_membership_rebuild(z);
}

static bool named_in(const struct zab_membership *m, uint32_t id)
{
    return list_has(m->voters, m->n_voters, id) || list_has(m->observers, m->n_observers, id);
}

/* Makes m (committed) the active membership. */
void zab_membership_adopt(struct zab *z, const struct zab_membership *m)
{
    bool was_named = named_in(&z->active, z->id);
    z->active = *m;
    z->config_changed = true;
    zab_logf(z, "membership version=0x%llx voters=%u observers=%u", (unsigned long long)m->version,
             m->n_voters, m->n_observers);
    if (named_in(m, z->id))
        z->joining = false;
    else if (was_named && !z->joining)
        z->removed = true;
    zab_membership_scan(z);
    zab_membership_rebuild(z);
}

/* R4 and R6, at the end of every event: activate a committed CONFIG entry,
 * then bring the role in line with the membership. */
void zab_membership_settle(struct zab *z)
{
    if (z->has_pending && z->committed_zxid >= z->pending_zxid) {
        struct zab_membership m = z->pending;
        z->has_pending = false;
        zab_membership_adopt(z, &m);
    }
    if (z->removed) {
        if (z->role != ZAB_LOOKING || z->phase != ZAB_PHASE_ELECTION || z->epoch) {
            zab_logf(z, "removed from the ensemble: stopping");
            z->vote = (struct zab_vote){.leader = 0, .epoch = z->current_epoch, .zxid = zab_log_last(z)};
            z->role = ZAB_LOOKING;
            z->phase = ZAB_PHASE_ELECTION;
            z->leader_id = 0;
            z->epoch = 0;
            z->established = false;
            z->role_changed = true;
        }
        return;
    }
    bool voter = zab_is_voter(z, z->self_index);
    int leader_at = z->leader_id ? zab_peer_index(z, z->leader_id) : -1;
    bool leader_left = (z->role == ZAB_FOLLOWING || z->role == ZAB_OBSERVING) && z->leader_id &&
                       z->leader_id != z->id && !z->has_pending &&
                       (leader_at < 0 || !(z->flags[leader_at] & ZAB_MEMBER_VOTER));
    if (leader_left)
        /* The active membership no longer has my leader as a voter: it stops
         * leading once it commits that (R6); looking at once saves waiting
         * syncLimit for its silence. */
        zab_become_looking(z, "the leader left the ensemble");
    else if (z->role == ZAB_LEADING && !(z->flags[z->self_index] & ZAB_MEMBER_VOTER) && !z->has_pending)
        zab_become_looking(z, "no longer a voter");
    else if (z->role == ZAB_FOLLOWING && !voter)
        zab_become_looking(z, "no longer a voter");
    else if (z->role == ZAB_OBSERVING && voter)
        zab_become_looking(z, "now a voter");
}
