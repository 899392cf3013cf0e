/*
 * zab_broadcast.c: Zab phase 3 on both sides, plus the heartbeats that keep
 * a leadership alive (ZooKeeper's Leader.processAck/commit, Follower
 * processPacket, PING).  It owns shipping the log to each synced follower
 * (chained PROPOSALs, retransmitted from the last acknowledged point when a
 * heartbeat shows no progress), counting durable acks into the commit point,
 * and detecting the loss of the leader or of a quorum.
 *
 * Observers get ZooKeeper's INFORM: the leader ships an observer only
 * committed entries (a PROPOSAL once its zxid is committed, then the
 * COMMIT), so an observer's log holds nothing a new leader could truncate
 * beyond its sync.  Observers still report their durable point (ACK, PING):
 * on this lossy network the leader needs it to know where to resend from,
 * but it is a receipt, never a vote: no count includes it (invariant 6 and
 * zab_counts_in_quorum).
 */
#include "zab_internal.h"

#include <stdlib.h>

/* Brings the peer's send window up to date: what was shipped past the point
 * it reported durable (or the sync point, before it reports).  Counted
 * incrementally as reports come in; recounted (at most a window's entries)
 * when the shipping position moved otherwise (a resend, a new SYNC) or the
 * log was compacted past the old point. */
static void window_refresh(struct zab *z, struct zab_peer *p)
{
    uint64_t from = p->acked_zxid > p->sync_zxid ? p->acked_zxid : p->sync_zxid;
    if (p->win_from == from && p->win_sent == p->sent_zxid)
        return;
    bool recount = p->win_sent != p->sent_zxid || from < p->win_from || from > p->sent_zxid ||
                   p->win_from < z->base_zxid;
    if (!recount) {
        size_t i = zab_log_first_from(z, p->win_from + 1);
        for (; i < z->n_entries && z->entries[i].zxid <= from; i++) {
            if (p->win_entries == 0 || p->win_bytes < z->entries[i].size) {
                recount = true;
                break;
            }
            p->win_entries--;
            p->win_bytes -= z->entries[i].size;
        }
    }
    if (recount) {
        p->win_entries = 0;
        p->win_bytes = 0;
        size_t i = zab_log_first_from(z, from + 1);
        for (; i < z->n_entries && z->entries[i].zxid <= p->sent_zxid; i++) {
            p->win_entries++;
            p->win_bytes += z->entries[i].size;
        }
    }
    p->win_from = from;
    p->win_sent = p->sent_zxid;
}

/* Sends the next entries the peer lacks, as far as its window allows, and no
 * more than half the outbox (what does not fit is shipped on its next report;
 * a proposal dropped from a full outbox would stall the chain until a
 * heartbeat's resend). */
void zab_broadcast_ship(struct zab *z, struct zab_peer *p)
{
    if (!p->sync_sent || p->snap_pending)
        return;
    bool inform = zab_gets_inform_only(z, (uint32_t)(p - z->peers));
    uint64_t last = inform ? z->committed_zxid : zab_log_last(z);
    if (p->sent_zxid >= last)
        return;
    size_t index = 0;
    if (p->sent_zxid != z->base_zxid) {
        ptrdiff_t found = zab_log_find(z, p->sent_zxid);
        if (found < 0) {
            /* Compacted past the peer's position: only a SNAP helps now. */
            p->sync_sent = false;
            p->snap_pending = true;
            z->want_snapshot = true;
            return;
        }
        index = (size_t)found + 1;
    }
    window_refresh(z, p);
    for (; p->sent_zxid < last && p->win_entries < ZAB_SEND_WINDOW_ENTRIES &&
           (p->win_entries == 0 || p->win_bytes < ZAB_SEND_WINDOW_BYTES) &&
           z->n_outbox < ZAB_OUTBOX_MAX / 2;
         index++) {
        const struct zab_entry *e = &z->entries[index];
        struct zab_message m = {.type = ZAB_MSG_PROPOSAL, .to = p->id, .epoch = z->epoch};
        m.u.proposal.prev_zxid = p->sent_zxid;
        m.u.proposal.zxid = e->zxid;
        m.u.proposal.kind = e->kind;
        m.u.proposal.size = e->size;
        m.u.proposal.data = e->data;
        zab_send(z, &m);
        p->sent_zxid = e->zxid;
        p->win_sent = e->zxid;
        p->win_entries++;
        p->win_bytes += e->size;
    }
}

void zab_broadcast_ship_all(struct zab *z)
{
    for (uint32_t i = 0; i < z->n_members; i++)
        if (i != z->self_index)
            zab_broadcast_ship(z, &z->peers[i]);
}

/* Commits the highest zxid durable on a quorum of members whose currentEpoch
 * is ours (invariant 6), and tells the followers. */
void zab_broadcast_leader_advance_commit(struct zab *z)
{
    if (!z->established)
        return;
    uint64_t durable[ZAB_PEERS_MAX];
    bool known[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++) {
        known[i] = i == z->self_index || z->peers[i].acked_newleader;
        durable[i] = i == z->self_index ? z->persisted_zxid : z->peers[i].acked_zxid;
    }
    /* R3 of zab.c: both memberships while a CONFIG entry is pending. */
    uint64_t quorum_zxid = zab_membership_commit_point(z, durable, known);
    if (quorum_zxid <= z->committed_zxid)
        return;
    zab_commit_to(z, quorum_zxid);
    zab_broadcast_send_commit(z);
}

void zab_broadcast_send_commit(struct zab *z)
{
    for (uint32_t i = 0; i < z->n_members; i++) {
        struct zab_peer *p = &z->peers[i];
        if (i == z->self_index || !p->sync_sent)
            continue;
        if (zab_gets_inform_only(z, i))
            zab_broadcast_ship(z, p); /* INFORM: what just committed, before the COMMIT */
        struct zab_message m = {.type = ZAB_MSG_COMMIT, .to = p->id, .epoch = z->epoch};
        m.u.zxid.zxid = z->committed_zxid;
        zab_send(z, &m);
    }
}

void zab_broadcast_leader_step(struct zab *z, const struct zab_message *m)
{
    if (m->epoch != z->epoch || z->epoch == 0)
        return;
    struct zab_peer *p = &z->peers[zab_peer_index(z, m->from)];
    if (!p->info)
        return;
    p->last_heard_tick = z->now;
    uint64_t zxid = m->u.zxid.zxid;
    /* Followers report 0 until synced, and only zxids of our log after. */
    if (!p->sync_sent || zxid <= p->acked_zxid || zxid > zab_log_last(z) || !zab_log_contains(z, zxid))
        return;
    p->acked_zxid = zxid;
    if (p->sent_zxid < zxid)
        p->sent_zxid = zxid;
    if (p->acked_newleader)
        zab_broadcast_leader_advance_commit(z);
    zab_broadcast_ship(z, p);
}

/* Every heartbeat: PING (or COMMIT, below) with our commit point, and resend
 * from the last acknowledged point to a peer that made no progress since the
 * last one. */
void zab_broadcast_leader_heartbeat(struct zab *z)
{
    for (uint32_t i = 0; i < z->n_members; i++) {
        struct zab_peer *p = &z->peers[i];
        if (i == z->self_index || !p->info || z->epoch == 0)
            continue;
        /* To a follower that acked NEWLEADER, an established leader's
         * heartbeat is a COMMIT: a learner serves only after a COMMIT of the
         * epoch (zab_ready.serving), and the one sent at establishment may
         * have been lost.  COMMIT gets no answer; the follower's own
         * heartbeat PINGs report its durable point all the same. */
        bool uptodate = z->established && p->acked_newleader;
        struct zab_message m = {.type = uptodate ? ZAB_MSG_COMMIT : ZAB_MSG_PING, .to = p->id,
                                .epoch = z->epoch};
        m.u.zxid.zxid = z->committed_zxid;
        zab_send(z, &m);
        zab_sync_leader_resend(z, p);
        if (!p->sync_sent)
            continue;
        /* What the peer reported durable is the truth once it reports (a
         * lost SYNC SNAP leaves it below sync_zxid: ship() then resends the
         * SNAP); before, the sync point. */
        uint64_t from = p->acked_zxid ? p->acked_zxid : p->sync_zxid;
        if (p->sent_zxid > from && p->acked_zxid == p->acked_at_last_ping)
            p->sent_zxid = from;
        p->acked_at_last_ping = p->acked_zxid;
        zab_broadcast_ship(z, p);
    }
}

/* Whether a leader still has, with itself, a quorum it can lead.
 * Established: followers that acked NEWLEADER, were heard within syncLimit
 * and whose link has not closed since.  In sync: followers that acked the
 * epoch, heard within syncLimit (they heartbeat while they sync), link up.
 * In discovery: the members whose link has not closed, which may still join
 * the epoch (the discovery bound covers the rest). */
bool zab_broadcast_leader_has_quorum(const struct zab *z)
{
    bool alive[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++) {
        if (i == z->self_index) {
            alive[i] = true;
            continue;
        }
        const struct zab_peer *p = &z->peers[i];
        bool up = !zab_link_is_down(z, z->members[i]);
        if (z->established)
            alive[i] = up && p->acked_newleader && z->now - p->last_heard_tick <= z->sync_limit_ticks;
        else if (z->phase == ZAB_PHASE_SYNC)
            alive[i] = up && p->acked_epoch && z->now - p->last_heard_tick <= z->sync_limit_ticks;
        else
            alive[i] = up;
    }
    return zab_quorum(z, alive);
}

void zab_broadcast_leader_tick(struct zab *z)
{
    if (!zab_broadcast_leader_has_quorum(z)) {
        zab_become_looking(z, "lost the quorum of followers");
        return;
    }
    if (z->heartbeat_elapsed < z->heartbeat_ticks)
        return;
    z->heartbeat_elapsed = 0;
    zab_broadcast_leader_heartbeat(z);
}

/* ---- follower side -------------------------------------------------- */

/* Cumulative ACK of the durable prefix, once currentEpoch is ours. */
void zab_broadcast_follower_ack(struct zab *z)
{
    if (!z->acked_newleader || z->persisted_zxid <= z->ack_sent_zxid)
        return;
    struct zab_message m = {.type = ZAB_MSG_ACK, .to = z->leader_id, .epoch = z->epoch};
    m.u.zxid.zxid = z->persisted_zxid;
    zab_send(z, &m);
    z->ack_sent_zxid = z->persisted_zxid;
}

void zab_broadcast_follower_heartbeat(struct zab *z)
{
    if (!z->epoch_acked)
        return;
    struct zab_message m = {.type = ZAB_MSG_PING, .to = z->leader_id, .epoch = z->epoch};
    m.u.zxid.zxid = z->synced ? z->persisted_zxid : 0;
    zab_send(z, &m);
}

static void on_proposal(struct zab *z, const struct zab_message *m)
{
    uint64_t last = zab_log_last(z);
    uint64_t zxid = m->u.proposal.zxid;
    if (zxid <= last)
        return; /* a duplicate or a resend (zxids name one entry: invariant 1) */
    if (m->u.proposal.prev_zxid != last || zab_zxid_counter(zxid) == 0 ||
        zab_zxid_epoch(zxid) > z->epoch)
        return; /* a gap: the leader resends from our acked point on its heartbeat */
    if (zab_log_append(z, zxid, m->u.proposal.data, m->u.proposal.size, m->u.proposal.kind) < 0)
        return; /* as if lost; it is resent */
}

void zab_broadcast_follower_step(struct zab *z, const struct zab_message *m)
{
    if (m->epoch != z->epoch || !z->epoch_acked)
        return;
    z->heard_ticks = 0;
    if (!z->synced)
        return;
    switch (m->type) {
    case ZAB_MSG_PROPOSAL:
        on_proposal(z, m);
        break;
    case ZAB_MSG_COMMIT:
    case ZAB_MSG_PING:
        /* Our log is a prefix of the leader's (invariant 2): commit what we hold. */
        zab_commit_to(z, m->u.zxid.zxid);
        if (m->type == ZAB_MSG_COMMIT && z->acked_newleader && !z->leader_uptodate) {
            /* Only an established leader sends COMMIT (try_establish, and to
             * a follower acking after that): we may serve. */
            z->leader_uptodate = true;
            z->role_changed = true;
            zab_logf(z, "leader established epoch=%u: serving", z->epoch);
        }
        if (m->type == ZAB_MSG_PING) {
            struct zab_message reply = {.type = ZAB_MSG_PING, .to = z->leader_id, .epoch = z->epoch};
            reply.u.zxid.zxid = z->persisted_zxid;
            zab_send(z, &reply);
        }
        break;
    default:
        break;
    }
}

void zab_broadcast_follower_tick(struct zab *z)
{
    z->heard_ticks++;
    if (z->heard_ticks > z->sync_limit_ticks) {
        zab_become_looking(z, "leader silent for syncLimit");
        return;
    }
    if (z->heartbeat_elapsed < z->heartbeat_ticks)
        return;
    z->heartbeat_elapsed = 0;
    zab_broadcast_follower_heartbeat(z);
}
