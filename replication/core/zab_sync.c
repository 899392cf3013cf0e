/*
 * zab_sync.c: discovery of the new epoch and synchronisation of followers,
 * both sides (Zab phases 1 and 2; ZooKeeper's Leader.lead up to
 * waitForNewLeaderAck, LearnerHandler.syncFollower, Learner.syncWithLeader).
 * It owns the epoch agreement (FOLLOWERINFO, NEWEPOCH, ACKEPOCH), the choice
 * of DIFF, TRUNC or SNAP for each follower, NEWLEADER and its acks, and the
 * establishment of the leader.  Invariants cited are those of zab.c.
 *
 * Observers sync exactly as followers do (FOLLOWERINFO, NEWEPOCH, ACKEPOCH,
 * SYNC, NEWLEADER) but count nowhere: not in the quorum of FOLLOWERINFO that
 * fixes the epoch, not in the quorum of ACKEPOCH (nor in its "follower is
 * ahead" check), not in the quorum of ACKNEWLEADER.  An observer accepts any
 * epoch at least its currentEpoch, from any leader: its acceptedEpoch vouches
 * for nothing (invariant 1 is about voters), and holding to it could strand
 * it outside the one leadership the voters made of that epoch.
 */
#include "zab_internal.h"

#include <string.h>

/* ---- leader side ---------------------------------------------------- */

void zab_sync_leader_start(struct zab *z)
{
    memset(z->peers, 0, sizeof z->peers);
    for (uint32_t i = 0; i < z->n_members; i++)
        z->peers[i].id = z->members[i];
    struct zab_peer *self = &z->peers[z->self_index];
    self->info = true;
    self->accepted_epoch = z->accepted_epoch;
    z->epoch = 0;
    z->established = false;
    z->initial_zxid = 0;
    z->next_counter = 0;
    /* An ensemble of one has its quorum of FOLLOWERINFO already. */
    zab_sync_leader_step(z, NULL);
}

static void send_newepoch(struct zab *z, struct zab_peer *p)
{
    struct zab_message m = {.type = ZAB_MSG_NEWEPOCH, .to = p->id, .epoch = z->epoch};
    m.u.newepoch.session = p->session;
    zab_send(z, &m);
    p->newepoch_sent = true;
}

static void send_newleader(struct zab *z, struct zab_peer *p)
{
    struct zab_message m = {.type = ZAB_MSG_NEWLEADER, .to = p->id, .epoch = z->epoch};
    m.u.zxid.zxid = z->initial_zxid;
    zab_send(z, &m);
}

static void choose_epoch(struct zab *z)
{
    uint32_t max_epoch = 0;
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++) {
        has[i] = z->peers[i].info && zab_counts_in_quorum(z, i);
        if (has[i] && z->peers[i].accepted_epoch > max_epoch)
            max_epoch = z->peers[i].accepted_epoch;
    }
    if (!zab_quorum(z, has))
        return;
    if (max_epoch == UINT32_MAX) {
        zab_become_looking(z, "epochs exhausted");
        return;
    }
    /* Invariant 1: e is above every acceptedEpoch of a quorum, ours included. */
    z->epoch = max_epoch + 1;
    z->accepted_epoch = z->epoch;
    z->accepted_leader = z->id;
    zab_write_epochs(z);
    z->peers[z->self_index].acked_epoch = true;
    z->peers[z->self_index].current_epoch = z->current_epoch;
    z->peers[z->self_index].last_zxid = zab_log_last(z);
    zab_logf(z, "newepoch epoch=%u", z->epoch);
    for (uint32_t i = 0; i < z->n_members; i++)
        if (i != z->self_index && z->peers[i].info)
            send_newepoch(z, &z->peers[i]);
}

/* The point where the peer's log and ours agree, from its epoch summary
 * (entries of one epoch are e.1..e.k in every log, and invariant 2).
 * Returns false when only a SNAP can bring the peer in line. */
static bool common_point(const struct zab *z, const struct zab_message *ack, uint64_t *out)
{
    const uint64_t *summary = ack->u.ackepoch.epoch_last;
    uint32_t n = ack->u.ackepoch.n_epochs;
    uint64_t common = 0;
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++) {
        bool known = false;
        uint64_t ours = zab_log_last_of_epoch(z, zab_zxid_epoch(summary[i]), &known);
        if (!known)
            return false;
        if (ours == 0)
            continue; /* we hold no entry of that epoch: look further back */
        common = summary[i] < ours ? summary[i] : ours;
        found = true;
    }
    if (!found) {
        if (n == ZAB_EPOCH_SUMMARY_MAX)
            return false; /* the summary may have been cut short: do not guess */
        common = ack->u.ackepoch.base_zxid; /* committed on the peer, so in our history */
    }
    if (common < z->base_zxid || !zab_log_contains(z, common))
        return false;
    *out = common;
    return true;
}

static void send_sync(struct zab *z, struct zab_peer *p, uint8_t mode, uint64_t zxid)
{
    struct zab_message m = {.type = ZAB_MSG_SYNC, .to = p->id, .epoch = z->epoch};
    m.u.sync.session = p->session;
    m.u.sync.mode = mode;
    m.u.sync.zxid = zxid;
    m.u.sync.membership = z->active;
    if (mode == ZAB_SYNC_SNAP) {
        m.u.sync.data = z->snapshot;
        m.u.sync.size = z->snapshot_size;
    }
    zab_send(z, &m);
    zab_logf(z, "sync peer=%u mode=%s zxid=0x%llx", p->id,
             mode == ZAB_SYNC_DIFF ? "DIFF" : mode == ZAB_SYNC_TRUNC ? "TRUNC" : "SNAP",
             (unsigned long long)zxid);
    p->sync_sent = true;
    p->snap_pending = false;
    p->sync_zxid = zxid;
    p->sent_zxid = zxid;
    p->acked_at_last_ping = 0;
}

static void sync_peer(struct zab *z, struct zab_peer *p, const struct zab_message *ack)
{
    uint64_t common = 0;
    if (ack && common_point(z, ack, &common)) {
        send_sync(z, p, p->last_zxid == common ? ZAB_SYNC_DIFF : ZAB_SYNC_TRUNC, common);
    } else if (z->have_snapshot && z->snapshot_zxid >= z->base_zxid) {
        send_sync(z, p, ZAB_SYNC_SNAP, z->snapshot_zxid);
    } else {
        p->snap_pending = true;
        z->want_snapshot = true;
        return;
    }
    zab_broadcast_ship(z, p);
    send_newleader(z, p);
}

void zab_sync_offer_snapshot(struct zab *z)
{
    if (z->epoch == 0 || z->current_epoch != z->epoch)
        return;
    for (uint32_t i = 0; i < z->n_members; i++)
        if (z->peers[i].snap_pending)
            sync_peer(z, &z->peers[i], NULL);
}

static bool peer_ahead(const struct zab *z, const struct zab_peer *p)
{
    if (p->current_epoch != z->current_epoch)
        return p->current_epoch > z->current_epoch;
    return p->last_zxid > zab_log_last(z);
}

static void try_establish(struct zab *z);

/* The end of discovery: a quorum acked our epoch (invariant 3 check), and our
 * own log is durable (invariant 5). */
static void try_finish_discovery(struct zab *z)
{
    if (z->phase != ZAB_PHASE_DISCOVERY || z->epoch == 0)
        return;
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++) {
        has[i] = z->peers[i].acked_epoch && zab_counts_in_quorum(z, i);
        if (has[i] && i != z->self_index && peer_ahead(z, &z->peers[i])) {
            zab_become_looking(z, "a follower is ahead of the leader");
            return;
        }
    }
    if (!zab_quorum(z, has) || z->persisted_zxid < zab_log_last(z))
        return;
    z->current_epoch = z->epoch;
    zab_write_epochs(z);
    z->initial_zxid = zab_log_last(z);
    z->phase = ZAB_PHASE_SYNC;
    z->phase_ticks = 0;
    z->role_changed = true;
    zab_logf(z, "discovery done epoch=%u initial=0x%llx", z->epoch,
             (unsigned long long)z->initial_zxid);
    for (uint32_t i = 0; i < z->n_members; i++)
        if (i != z->self_index && z->peers[i].acked_epoch)
            sync_peer(z, &z->peers[i], &z->peers[i].ackepoch);
    try_establish(z);
}

static void try_establish(struct zab *z)
{
    if (z->established || z->phase != ZAB_PHASE_SYNC)
        return;
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++) /* ourselves: durable up to initial_zxid (invariant 5) */
        has[i] = i == z->self_index || (z->peers[i].acked_newleader && zab_counts_in_quorum(z, i));
    if (!zab_quorum(z, has))
        return;
    z->established = true;
    z->phase = ZAB_PHASE_BROADCAST;
    z->phase_ticks = 0;
    z->role_changed = true;
    zab_logf(z, "established epoch=%u", z->epoch);
    zab_commit_to(z, z->initial_zxid);
    for (uint32_t i = 0; i < z->n_members; i++)
        z->peers[i].last_heard_tick = z->now;
    zab_broadcast_send_commit(z);
    zab_broadcast_leader_advance_commit(z);
}

void zab_sync_leader_persisted(struct zab *z)
{
    if (z->phase == ZAB_PHASE_DISCOVERY)
        try_finish_discovery(z);
    else if (z->phase == ZAB_PHASE_SYNC)
        try_establish(z);
    else
        zab_broadcast_leader_advance_commit(z);
}

static void on_followerinfo(struct zab *z, struct zab_peer *p, const struct zab_message *m)
{
    if (!p->info || p->session != m->u.info.session) {
        /* Another attempt of that follower: a new one (it restarted or
         * re-elected us), or a straggler from an old one.  Sessions are not
         * ordered, so follow the latest to arrive; a follower whose attempt
         * we dropped this way hears NEWEPOCH again and starts another. */
        uint32_t id = p->id;
        memset(p, 0, sizeof *p);
        p->id = id;
        p->info = true;
        p->session = m->u.info.session;
        p->accepted_epoch = m->u.info.accepted_epoch;
    }
    p->last_heard_tick = z->now;
    bool counts = zab_counts_in_quorum(z, (uint32_t)(p - z->peers));
    if (counts && z->established && (m->u.info.accepted_epoch > z->epoch ||
                           (m->u.info.accepted_epoch == z->epoch && m->u.info.accepted_leader != z->id))) {
        /* It accepted our epoch (or a later one) from another leader, so it
         * can never follow us (invariant 1): make way for a new epoch it can
         * join.  This follows a race of two leaders choosing one epoch. */
        zab_become_looking(z, "a member cannot join this epoch");
        return;
    }
    if (z->epoch == 0)
        choose_epoch(z);
    else if (!p->acked_epoch)
        send_newepoch(z, p);
}

static void on_ackepoch(struct zab *z, struct zab_peer *p, const struct zab_message *m)
{
    if (m->epoch != z->epoch || z->epoch == 0 || !p->info || m->u.ackepoch.session != p->session)
        return;
    p->last_heard_tick = z->now;
    if (!p->acked_epoch) {
        p->acked_epoch = true;
        p->current_epoch = m->u.ackepoch.current_epoch;
        p->last_zxid = m->u.ackepoch.last_zxid;
        p->ackepoch = *m;
    }
    if (z->phase == ZAB_PHASE_DISCOVERY) {
        try_finish_discovery(z);
        return;
    }
    /* Past discovery: sync it, or resync if our SYNC was lost (the follower
     * resends ACKEPOCH until a SYNC arrives, and applies only the first). */
    if (!p->snap_pending && !p->acked_newleader)
        sync_peer(z, p, m);
}

static void on_acknewleader(struct zab *z, struct zab_peer *p, const struct zab_message *m)
{
    if (m->epoch != z->epoch || z->epoch == 0 || m->u.zxid.zxid != z->initial_zxid || !p->sync_sent)
        return;
    p->last_heard_tick = z->now;
    if (!p->acked_newleader) {
        p->acked_newleader = true;
        if (p->acked_zxid < z->initial_zxid)
            p->acked_zxid = z->initial_zxid;
        zab_logf(z, "acknewleader peer=%u", p->id);
    }
    if (!z->established) {
        try_establish(z);
    } else {
        struct zab_message commit = {.type = ZAB_MSG_COMMIT, .to = p->id, .epoch = z->epoch};
        commit.u.zxid.zxid = z->committed_zxid;
        zab_send(z, &commit);
        zab_broadcast_leader_advance_commit(z);
    }
}

/* m is NULL when called to make progress without a message. */
void zab_sync_leader_step(struct zab *z, const struct zab_message *m)
{
    if (!m) {
        if (z->epoch == 0)
            choose_epoch(z);
        if (z->role == ZAB_LEADING)
            try_finish_discovery(z);
        return;
    }
    struct zab_peer *p = &z->peers[zab_peer_index(z, m->from)];
    switch (m->type) {
    case ZAB_MSG_FOLLOWERINFO: on_followerinfo(z, p, m); break;
    case ZAB_MSG_ACKEPOCH: on_ackepoch(z, p, m); break;
    case ZAB_MSG_ACKNEWLEADER: on_acknewleader(z, p, m); break;
    default: break;
    }
}

void zab_sync_leader_tick(struct zab *z)
{
    if (z->phase == ZAB_PHASE_DISCOVERY && z->phase_ticks > z->discovery_limit_ticks) {
        zab_become_looking(z, "no quorum for the epoch within the discovery bound");
        return;
    }
    if (z->phase_ticks > z->init_limit_ticks) {
        zab_become_looking(z, z->phase == ZAB_PHASE_DISCOVERY ? "no quorum for the epoch"
                                                              : "no quorum acked NEWLEADER");
        return;
    }
    if (z->phase == ZAB_PHASE_SYNC && !zab_broadcast_leader_has_quorum(z)) {
        zab_become_looking(z, "a quorum of the epoch's followers went silent during sync");
        return;
    }
    if (z->heartbeat_elapsed < z->heartbeat_ticks)
        return;
    z->heartbeat_elapsed = 0;
    zab_broadcast_leader_heartbeat(z);
}

/* Every heartbeat, in every phase: the steps of a peer's sync whose answer
 * has not come (messages may be lost, and a peer may start a new attempt
 * while we are established). */
void zab_sync_leader_resend(struct zab *z, struct zab_peer *p)
{
    if (z->epoch && !p->acked_epoch)
        send_newepoch(z, p);
    if (p->sync_sent && !p->acked_newleader)
        send_newleader(z, p);
}

/* ---- follower side -------------------------------------------------- */

static void send_followerinfo(struct zab *z)
{
    struct zab_message m = {.type = ZAB_MSG_FOLLOWERINFO, .to = z->leader_id};
    m.u.info.session = z->session;
    m.u.info.accepted_epoch = z->accepted_epoch;
    m.u.info.accepted_leader = z->accepted_leader;
    m.u.info.current_epoch = z->current_epoch;
    m.u.info.last_zxid = zab_log_last(z);
    zab_send(z, &m);
}

static void send_ackepoch(struct zab *z)
{
    struct zab_message m = {.type = ZAB_MSG_ACKEPOCH, .to = z->leader_id, .epoch = z->epoch};
    m.u.ackepoch.session = z->session;
    m.u.ackepoch.current_epoch = z->current_epoch;
    m.u.ackepoch.last_zxid = zab_log_last(z);
    m.u.ackepoch.base_zxid = z->base_zxid;
    m.u.ackepoch.n_epochs = zab_log_epoch_summary(z, m.u.ackepoch.epoch_last, ZAB_EPOCH_SUMMARY_MAX);
    zab_send(z, &m);
}

void zab_sync_follower_start(struct zab *z)
{
    z->session = zab_prng_next(z) | 1;
    z->epoch = 0;
    z->epoch_acked = false;
    z->in_transfer = false;
    z->synced = false;
    z->newleader_zxid = 0;
    z->newleader_received = false;
    z->acked_newleader = false;
    z->leader_uptodate = false;
    z->ack_sent_zxid = 0;
    z->progress_sent_zxid = 0;
    z->heard_ticks = 0;
    send_followerinfo(z);
}

/* The link to our leader came up, or it told us it leads: if it has not
 * answered FOLLOWERINFO yet, our copy was lost (sent before the link was up)
 * or ignored (it was still looking). */
void zab_sync_follower_resend_info(struct zab *z, uint32_t id)
{
    if (id == z->leader_id && z->phase == ZAB_PHASE_DISCOVERY && !z->epoch_acked)
        send_followerinfo(z);
}

static void on_newepoch(struct zab *z, const struct zab_message *m)
{
    if (z->epoch_acked && m->epoch > z->epoch) {
        /* Our leader lost its leadership and won a new one while we were
         * not looking: join the new one with a new attempt. */
        z->phase = ZAB_PHASE_DISCOVERY;
        z->phase_ticks = 0;
        z->role_changed = true;
        zab_sync_follower_start(z);
        return;
    }
    if (m->u.newepoch.session != z->session) {
        /* The leader tracks another attempt of ours (a straggler FOLLOWERINFO
         * arrived last): tell it the one we are in. */
        send_followerinfo(z);
        return;
    }
    if (z->epoch_acked) {
        /* A duplicate, or the leader lost what it knew of this attempt (it
         * reset it for a straggler, then came back to it): answer again.
         * Its SYNC will be ignored if we are synced, its NEWLEADER re-acked. */
        if (m->epoch == z->epoch)
            send_ackepoch(z);
        return;
    }
    if (z->is_observer) {
        /* Never back to a leadership older than the one we synced with. */
        if (m->epoch < z->current_epoch) {
            zab_become_looking(z, "leader proposed a stale epoch");
            return;
        }
        if (m->epoch >= z->accepted_epoch) {
            z->accepted_epoch = m->epoch;
            z->accepted_leader = m->from;
        }
    } else {
        if (m->epoch < z->accepted_epoch ||
            (m->epoch == z->accepted_epoch && z->accepted_leader != m->from)) {
            /* Invariant 1: never ack one epoch to two leaders. */
            zab_become_looking(z, "leader proposed a stale epoch");
            return;
        }
        z->accepted_epoch = m->epoch;
        z->accepted_leader = m->from;
    }
    z->epoch = m->epoch;
    z->epoch_acked = true;
    z->in_transfer = false;
    zab_write_epochs(z); /* durable before the ACKEPOCH below is sent */
    send_ackepoch(z);
}

static void on_sync(struct zab *z, const struct zab_message *m)
{
    if (!z->epoch_acked || m->epoch != z->epoch || m->u.sync.session != z->session)
        return; /* computed from another attempt's ACKEPOCH: not about this log */
    uint64_t zxid = m->u.sync.zxid;
    /* R4: the leader's active membership is committed: a newer one is ours
     * too (a SNAP, or a log compacted past its CONFIG entry, carries none). */
    if (m->u.sync.membership.version > z->active.version &&
        zab_membership_check(&m->u.sync.membership) == 0)
        zab_membership_adopt(z, &m->u.sync.membership);
    /* Only the first SYNC of a session shapes the log; later ones are resends,
     * except a SNAP beyond our log: the leader compacted what we lack. */
    if (z->synced && (m->u.sync.mode != ZAB_SYNC_SNAP || zxid <= zab_log_last(z)))
        return;
    if (m->u.sync.mode == ZAB_SYNC_SNAP) {
        uint8_t *copy = malloc(m->u.sync.size ? m->u.sync.size : 1);
        if (!copy)
            return; /* the leader resends SYNC while we resend ACKEPOCH */
        if (m->u.sync.size)
            memcpy(copy, m->u.sync.data, m->u.sync.size);
        free(z->install_data);
        z->install_data = copy;
        z->install_size = m->u.sync.size;
        z->install_zxid = zxid;
        z->pending_install = true;
        z->pending_truncate = false;
        zab_log_reset(z, zxid);
    } else {
        /* The SYNC checks itself: the point must be in our log (invariant 2
         * then makes everything up to it the leader's). */
        if (!zab_log_contains(z, zxid)) {
            zab_become_looking(z, "sync point not in the log");
            return;
        }
        /* Committed entries stay (invariant 4): they are in the leader's log,
         * so the resent ones are duplicates we skip. */
        uint64_t keep = zxid < z->committed_zxid ? z->committed_zxid : zxid;
        if (zab_log_last(z) > keep) {
            zab_log_truncate(z, keep);
            if (!z->pending_truncate || keep < z->truncate_to)
                z->truncate_to = keep;
            z->pending_truncate = true;
        }
    }
    if (!z->synced) {
        z->synced = true;
        z->progress_sent_zxid = z->persisted_zxid; /* the leader knows the sync point */
        z->phase = ZAB_PHASE_SYNC;
        z->phase_ticks = 0;
        z->role_changed = true;
    }
    zab_sync_follower_persisted(z);
}

static void on_newleader(struct zab *z, const struct zab_message *m)
{
    if (!z->epoch_acked || m->epoch != z->epoch)
        return;
    if (z->acked_newleader) {
        if (m->u.zxid.zxid == z->newleader_zxid) {
            struct zab_message ack = {.type = ZAB_MSG_ACKNEWLEADER, .to = z->leader_id,
                                      .epoch = z->epoch};
            ack.u.zxid.zxid = z->newleader_zxid;
            zab_send(z, &ack); /* our ack was lost */
        }
        return;
    }
    z->newleader_zxid = m->u.zxid.zxid;
    z->newleader_received = true;
    zab_sync_follower_persisted(z);
}

/* Acks NEWLEADER once the log up to its zxid is durable (invariant 5). */
void zab_sync_follower_persisted(struct zab *z)
{
    if (z->acked_newleader) {
        zab_broadcast_follower_ack(z);
        return;
    }
    if (!z->synced)
        return;
    /* Synced, our log is a prefix of the leader's (invariant 2), so a durable
     * prefix reaching H holds the initial history (in entries or a snapshot). */
    if (!z->newleader_received || z->persisted_zxid < z->newleader_zxid) {
        /* Not there yet: report progress as it becomes durable, as ACKs do
         * once NEWLEADER is acked, so that the leader ships the rest of our
         * catch-up as its window to us drains (zab_broadcast_ship).  A
         * receipt, not a vote: a leader counts no member's durable point
         * before its ACKNEWLEADER. */
        if (z->persisted_zxid > z->progress_sent_zxid) {
            struct zab_message progress = {.type = ZAB_MSG_PING, .to = z->leader_id,
                                           .epoch = z->epoch};
            progress.u.zxid.zxid = z->persisted_zxid;
            zab_send(z, &progress);
            z->progress_sent_zxid = z->persisted_zxid;
        }
        return;
    }
    z->current_epoch = z->epoch;
    zab_write_epochs(z);
    struct zab_message ack = {.type = ZAB_MSG_ACKNEWLEADER, .to = z->leader_id, .epoch = z->epoch};
    ack.u.zxid.zxid = z->newleader_zxid;
    zab_send(z, &ack);
    z->acked_newleader = true;
    z->phase = ZAB_PHASE_BROADCAST;
    z->phase_ticks = 0;
    z->heard_ticks = 0;
    z->role_changed = true;
    zab_logf(z, "acked newleader epoch=%u zxid=0x%llx", z->epoch,
             (unsigned long long)z->newleader_zxid);
    zab_broadcast_follower_ack(z);
}

void zab_sync_follower_step(struct zab *z, const struct zab_message *m)
{
    if (!z->epoch_acked || m->epoch == z->epoch)
        z->heard_ticks = 0; /* our leadership is alive; another epoch's messages do not say so */
    switch (m->type) {
    case ZAB_MSG_NEWEPOCH: on_newepoch(z, m); break;
    case ZAB_MSG_SYNC: on_sync(z, m); break;
    case ZAB_MSG_NEWLEADER: on_newleader(z, m); break;
    default: break;
    }
}

void zab_snapshot_transfer_progress(struct zab *z, uint32_t from)
{
    ZAB_ASSERT(!z->in_ready);
    if ((z->role != ZAB_FOLLOWING && z->role != ZAB_OBSERVING) || from != z->leader_id || !z->epoch_acked || z->synced)
        return;
    z->in_transfer = true;
    z->heard_ticks = 0;
}

void zab_sync_follower_tick(struct zab *z)
{
    z->heard_ticks++;
    if (z->phase == ZAB_PHASE_DISCOVERY && z->phase_ticks > z->discovery_limit_ticks && !z->in_transfer) {
        zab_become_looking(z, "leader did not start an epoch with us within the discovery bound");
        return;
    }
    if (z->phase == ZAB_PHASE_SYNC && z->heard_ticks > z->sync_limit_ticks) {
        /* The leader heartbeats through sync: silence is a dead leader,
         * not a long transfer (initLimit bounds that below). */
        zab_become_looking(z, "leader silent for syncLimit during sync");
        return;
    }
    if (z->phase_ticks > z->init_limit_ticks) {
        zab_become_looking(z, "leader did not sync us within initLimit");
        return;
    }
    if (z->heartbeat_elapsed < z->heartbeat_ticks)
        return;
    z->heartbeat_elapsed = 0;
    if (!z->epoch_acked)
        send_followerinfo(z);
    else if (!z->synced)
        send_ackepoch(z);
    zab_broadcast_follower_heartbeat(z);
}
