/* The simulator's safety invariants, checked after every event (sim_internal.h). */
#include "sim_internal.h"

/* ---- invariants -------------------------------------------------------- */

void violate(struct sim_world *w, const char *fmt, ...)
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

void check_state_at(struct sim_world *w, int id, uint64_t zxid, uint64_t digest, const char *how)
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
void check_apply(struct sim_world *w, int id, uint64_t prev, uint64_t zxid, uint64_t digest)
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

void record_acked(struct sim_world *w, uint64_t zxid)
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

void check_leaders(struct sim_world *w)
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
