/*
 * zab.c: the public face of the core and the dispatch of its state machine.
 * It owns the design (below), the role transitions, the ready/advance batch
 * and the checks of the invariants.  Each phase of the protocol lives in its
 * own file: zab_election.c (LOOKING), zab_sync.c (discovery and
 * synchronisation, both sides), zab_broadcast.c (proposals, acks, commits,
 * heartbeats), zab_log.c (the in-memory log), zab_message.c (the codec),
 * zab_membership.c (who is in the ensemble: observers, reconfiguration).
 * It is over 800 lines by intent: 226 of them are the design notes and the
 * numbered invariants that every file of the core cites; the code (about
 * 800 lines) is the entry points and the role transitions, which read best
 * beside the checks of those invariants.
 *
 * DESIGN NOTES
 *
 * The protocol is Zab as in Junqueira, Reed, Serafini, "Zab: High-performance
 * broadcast for primary-backup systems" (DSN 2011) and as ZooKeeper implements
 * it (FastLeaderElection, Leader/Follower/LearnerHandler), adapted to a
 * message network that may lose, duplicate, delay and reorder (ZooKeeper
 * relies on TCP's FIFO): every leader->follower stream is self-describing
 * (a PROPOSAL names the zxid it follows; ACK, COMMIT and PING are cumulative),
 * so lost or reordered messages cost a retransmission on the next heartbeat,
 * never safety.
 *
 * Phases.  A member is LOOKING (election), then FOLLOWING or LEADING, each
 * going through DISCOVERY, SYNC and BROADCAST:
 *   election   votes (currentEpoch, lastZxid, id), highest wins; logical
 *              rounds; a quorum of equal votes in a round decides; a member
 *              that hears a quorum of members already following/leading L
 *              (L itself saying LEADING) joins L.
 *   discovery  follower -> FOLLOWERINFO(acceptedEpoch, session);
 *              leader, on a quorum of them (itself included), picks
 *              e = max(acceptedEpoch) + 1, writes acceptedEpoch = e, sends
 *              NEWEPOCH(e); a follower accepts only e > acceptedEpoch, or
 *              e == acceptedEpoch from the very leader it accepted e from
 *              (it restarted, or lost its leader for a while: a leader never
 *              proposes one epoch twice, so (e, leader) names one
 *              leadership), writes acceptedEpoch = e and that leader,
 *              answers ACKEPOCH(currentEpoch, lastZxid, last zxid of each
 *              epoch in its log).
 *              On a quorum of ACKEPOCH, the leader gives up if a follower is
 *              ahead of it in (currentEpoch, lastZxid) (ZooKeeper's "follower
 *              is ahead of the leader"), waits until its own log is durable,
 *              then writes currentEpoch = e.
 *   sync       per follower: the common point c of the two logs (from the
 *              epoch summary: entries of one epoch are e.1..e.k in every log);
 *              SYNC DIFF(c) if the follower ends at c, TRUNC(c) if beyond,
 *              SNAP(s, state) if c is older than the leader's in-memory log;
 *              then PROPOSALs from there, then NEWLEADER(e, H) where H ends the
 *              leader's initial history.  The PROPOSALs flow in a window
 *              (ZAB_SEND_WINDOW_ENTRIES/BYTES past the point the follower
 *              reported durable): a syncing follower reports each durable
 *              point in a PING, so a member far behind gets a stream, not a
 *              batch per heartbeat.  The follower acks NEWLEADER once
 *              its log up to H is durable, writing currentEpoch = e first.
 *              A quorum of ACKNEWLEADER (leader included) establishes the
 *              leader, which commits up to H and starts serving proposals.
 *   broadcast  zxid = (e, ++counter); PROPOSAL(prev, zxid); ACK(durable up
 *              to) from followers that acked NEWLEADER; the leader commits
 *              the highest zxid durable on a quorum and sends COMMIT; PING
 *              both ways every heartbeat_ticks carries commit/durable points
 *              (an established leader's to a follower that acked NEWLEADER
 *              is a COMMIT).  A learner serves clients once a COMMIT of the
 *              epoch came after its ACKNEWLEADER (zab_ready.serving): only an
 *              established leader sends COMMIT, so it is ZooKeeper's
 *              UPTODATE.
 *   attempts   each attempt of a follower to join a leader has a random
 *              session id (FOLLOWERINFO); NEWEPOCH, ACKEPOCH and SYNC name
 *              it, so that the leader's view of a follower and the follower
 *              agree on which attempt they are in: the leader tracks the
 *              latest FOLLOWERINFO to arrive; a follower answers a NEWEPOCH
 *              of another session with its current FOLLOWERINFO, ignores a
 *              SYNC of another session, and starts a new attempt when its
 *              leader comes back with a newer epoch.  A restarted member
 *              re-accepts the epoch it accepted from the same leader.
 *   loss       a follower that hears nothing from its leader for
 *              sync_limit_ticks (init_limit_ticks before it acked NEWLEADER)
 *              goes LOOKING; a leader that is not established within
 *              init_limit_ticks, or has not heard from a quorum within
 *              sync_limit_ticks, goes LOOKING.  Discovery, which moves no
 *              data, has a bound of its own, a few heartbeats
 *              (discovery_limit_ticks), on both sides.  Silence is the
 *              backstop; events come first: when the driver reports the
 *              link to the leader closed (zab_peer_disconnected), a
 *              learner looks at once, and a leader left without the links
 *              of a quorum stops leading at once, as ZooKeeper's do when
 *              their sockets close.  A peer whose link closed counts as
 *              gone until the driver reports its link up again.
 *   stale      a member that restarts forgets its leadership; its old
 *              followers may still answer its votes "following you" until
 *              they notice.  Such answers never make it lead: only members
 *              that follow it in its round and have not yet been given an
 *              epoch (they decided on its vote of this round) count for
 *              checkLeader (zab_election.c).  And a follower whose leader
 *              sends it a LOOKING vote of the followed epoch or later knows
 *              the leader restarted, and looks (leader_is_looking).
 *
 * Observers (ZooKeeper's server.N=...:observer).  Members in
 * zab_config.observers are non-voting: they never vote (a LOOKING observer
 * asks the voters and observes the leader a quorum of voters follows, that
 * leader saying LEADING), never lead, and count in no quorum: not in the
 * election, the epoch's FOLLOWERINFO quorum, the ACKEPOCH quorum and its
 * "follower ahead" check, the ACKNEWLEADER quorum, the commit quorum, nor
 * the leader's "still has a quorum" check (zab_counts_in_quorum).  They
 * sync like followers (DIFF/TRUNC/SNAP, NEWLEADER) and then get INFORM: a
 * committed entry's PROPOSAL and its COMMIT, never an uncommitted entry.
 * Their ACKs and PINGs are receipts the leader resends from (the network
 * loses messages), never votes.  An observer accepts any epoch >= its
 * currentEpoch from its leader: its acceptedEpoch vouches for nothing.  An
 * observer that hears nothing from its leader for syncLimit looks again.
 * Hence every invariant below holds with "member" read as "voter" wherever
 * a quorum is involved, and observers' logs are prefixes of the leader's.
 *
 * Why the election may be simple: safety does not rest on it.  Uniqueness of
 * the leader of an epoch rests on acceptedEpoch (invariant 1), and the new
 * leader holding every committed entry rests on the discovery check against a
 * quorum (invariant 3).  The election only makes a good candidate likely.
 *
 * INVARIANTS (numbered; the code cites them)
 *   1. A member acknowledges NEWEPOCH(e) to one leader only: acceptedEpoch
 *      only grows, and it and its leader are durable before ACKEPOCH is
 *      sent.  Hence two leaders cannot both collect a quorum of ACKEPOCH for
 *      one e: at most one established leader per epoch, and zxids are unique:
 *      a zxid names one entry across the whole ensemble.
 *   2. Log matching: if two logs contain zxid x, they are equal up to x.  A
 *      follower appends only a PROPOSAL whose prev_zxid is its last zxid,
 *      after a SYNC made its log a prefix of the leader's.
 *   3. An established leader's log contains every committed entry: a quorum
 *      acked its epoch with (currentEpoch, lastZxid) no higher than its own,
 *      and every committed entry is durable on a quorum whose members have
 *      currentEpoch >= the entry's epoch.
 *   4. Committed entries are never truncated, and are applied in zxid order,
 *      exactly once, by every member.
 *   5. currentEpoch = e is durable only after the log it vouches for (the
 *      leader's initial history of e, up to H) is durable: the leader waits
 *      for its own log, a follower for persisted >= H.
 *   6. Nothing is acknowledged before it is durable: followers ACK their
 *      persisted point; the leader counts itself only up to its persisted
 *      point; acks count only from followers whose currentEpoch is e.
 *   7. base_zxid <= applied <= committed <= last; persisted <= last.
 *
 * DYNAMIC RECONFIGURATION (ZooKeeper 3.5's reconfig; zab_membership.c).
 * The API is zab.h's (zab_propose_config, ready.config_changed and
 * ready.removed, zab_config.joining, zab_restored.membership) and
 * zab_message.h's (struct zab_membership: version = the zxid of the CONFIG
 * entry that made it, 0 for zoo.cfg's).  A CONFIG entry is replicated like
 * any other; the driver never applies it to its tree.  PROPOSAL carries an
 * entry's kind; SYNC and NOTIFICATION carry the sender's active membership,
 * so a member that missed a reconfiguration learns it from any answer to its
 * votes, as ZooKeeper 3.5's notifications carry the config.  The rules:
 *   R1. The peer table is keyed by id, not by position in a fixed list: an
 *       entry per id of the active membership, the pending one (below) and,
 *       on a leader, joiners (ids in neither that sent FOLLOWERINFO; at most
 *       ZAB_PEERS_MAX in all, more are ignored).  Each has flags active
 *       voter / active observer / pending voter / pending observer.  Rebuilt,
 *       keeping the state of ids that stay, whenever either membership
 *       changes.
 *   R2. Pending = the last CONFIG entry in the log above the active
 *       membership's version (at most one: a leader proposes a CONFIG entry
 *       only once the previous one committed, and a log is a prefix of one
 *       leader's history plus a tail of one epoch).  Recomputed on append,
 *       truncate, SNAP install and restore (entries after the snapshot are
 *       scanned).  A member acts on the pending membership as soon as the
 *       entry is in its log, as ZooKeeper's followers do.
 *   R3. Every quorum of discovery and broadcast (FOLLOWERINFO, ACKEPOCH
 *       with its "follower ahead" check, ACKNEWLEADER, commit, the leader's
 *       liveness check) is a quorum of the active voters AND, while a pending
 *       membership exists, of the pending voters (ZooKeeper's rule: a
 *       reconfiguration commits on a quorum of the old and of the new).  For
 *       the commit point: c_old = quorum-durable point of the active voters,
 *       c_new = of the pending voters; commit c_old if it is below the
 *       pending zxid, else min(c_old, c_new) if c_new reaches the pending
 *       zxid, else the entry just before the pending one.  Why it is safe:
 *       invariant 3 needs every committed entry durable on a quorum that
 *       intersects the next leader's discovery quorum; an entry committed
 *       under the new membership is durable on a quorum of the new voters,
 *       and a leader that holds the CONFIG entry (it must: the entry is
 *       durable on a quorum of the old voters, which its discovery quorum
 *       intersects, and the "ahead" check refuses a leader without it)
 *       gathers a quorum of the new voters too.  The election alone counts
 *       the active voters only (zab_quorum_active): members whose logs hold
 *       different pending entries must still agree on a leader, who then
 *       truncates what was never committed; safety does not rest on it.
 *   R4. Activation: when the commit point passes the CONFIG entry, the
 *       pending membership becomes active (ready.config_changed), on every
 *       member, at the point it commits it.  SYNC carries the leader's
 *       active membership (and notifications the sender's); a member adopts
 *       it if its version is higher (it is committed), which covers SNAP,
 *       compacted logs and members that were down.
 *   R5. Joiners: a voter answers a LOOKING notification from an id outside
 *       its memberships as it answers an observer (never counted); the
 *       joiner, started by its driver with zab_config.joining and the
 *       ensemble's current membership (which does not name it), finds the
 *       leader the voters follow and sends FOLLOWERINFO; the leader gives
 *       it a joiner slot and syncs it like an observer, but ships it every
 *       proposal so that its acks show it up to date (ZAB_ENOQUORUM above).
 *       Once a CONFIG entry naming it is in its log it acts on it (R2), and
 *       once that commits it counts.  Only an active voter is a candidate
 *       in the election: a voter of the pending membership alone votes for
 *       nobody until it adopts a candidate's vote.
 *   R6. Removal: a member that activates a membership naming it nowhere
 *       stops taking part (role LOOKING, phase ELECTION, ready.removed): it
 *       ignores every message and tick after, except that it answers a
 *       LOOKING notification with that membership, so that members that
 *       missed the COMMIT (and would otherwise wait for a quorum of a
 *       membership that no longer runs) learn it.  Restarted with that
 *       membership restored, it starts removed.  A leader that activates a membership in
 *       which it is no voter commits the CONFIG entry, sends that COMMIT,
 *       then stops: the remaining voters, activating the membership, see
 *       their leader is no voter of it and look at once (ZooKeeper hands
 *       over to a designated leader to save even that election; not built).  A leader that
 *       stays as an observer looks again at activation, and so does a
 *       follower demoted to observer; an observer (or joiner) that the
 *       pending membership names a voter looks again as soon as the entry
 *       is in its log, so that it votes and acks as a voter (it counts in
 *       the pending quorum).
 *   R7. Tested by the simulator (zab_sim --reconfig SPARES): a random reconfiguration
 *       about every 100 ticks on the leader (add an idle id as a joiner,
 *       remove a member - the leader too -, switch voter and observer)
 *       under every fault; invariants as before plus: every member that
 *       activates version v has the same lists; a removed member stops (the
 *       core asserts it never leads again); the liveness phase demands the
 *       probe applied on every member of the leader's active membership.
 *       Random changes are single (add, remove, switch) or bulk (keep one
 *       voter, two others become the voters).  Scenarios:
 *       reconfig_add_voter, reconfig_remove_leader, reconfig_truncated.  A
 *       test-only core that commits a CONFIG entry on the old quorum alone
 *       (zab_config.test_only_config_on_old_quorum) is caught by the
 *       acknowledged-entry invariant.  Not built: a per-commit check that
 *       an entry above version v is durable on a quorum of v's voters.
 *
 * Transitions: LOOKING -> LEADING/DISCOVERY | FOLLOWING/DISCOVERY (election
 * decides); DISCOVERY -> SYNC (leader: quorum ACKEPOCH; follower: SYNC
 * received); SYNC -> BROADCAST (leader: quorum ACKNEWLEADER; follower: it
 * acked NEWLEADER); any -> LOOKING on a timeout, a follower ahead, a refused
 * epoch or an inconsistent SYNC; a follower or observer -> LOOKING when its
 * leader's notification says it looks in a later round than the one it was
 * followed in, or follows another member (see leader_is_looking).
 */
#include "zab_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *zab_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case ZAB_ENOMEM: return "out of memory";
    case ZAB_ECORRUPT: return "corrupt message";
    case ZAB_ETOOBIG: return "over the size limit";
    case ZAB_ENOTLEADER: return "not the established leader";
    case ZAB_EBUSY: return "too many uncommitted proposals, or a reconfiguration in flight";
    case ZAB_EINVAL: return "invalid argument or configuration";
    case ZAB_ENOQUORUM: return "a quorum of the new voters is not synced with the leader";
    case ZAB_ESHARED: return "other members may hold the entries";
    default: return "unknown error";
    }
}

const char *zab_role_name(enum zab_role role)
{
    switch (role) {
    case ZAB_LOOKING: return "looking";
    case ZAB_FOLLOWING: return "following";
    case ZAB_LEADING: return "leading";
    case ZAB_OBSERVING: return "observing";
    }
    return "?";
}

const char *zab_phase_name(enum zab_phase phase)
{
    switch (phase) {
    case ZAB_PHASE_ELECTION: return "election";
    case ZAB_PHASE_DISCOVERY: return "discovery";
    case ZAB_PHASE_SYNC: return "sync";
    case ZAB_PHASE_BROADCAST: return "broadcast";
    }
    return "?";
}

void zab_logf(struct zab *z, const char *fmt, ...)
{
    if (!z->log_fn)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    z->log_fn(z->log_context, z->id, line);
}

/* splitmix64: the core's only source of variety, seeded by the driver. */
uint64_t zab_prng_next(struct zab *z)
{
    uint64_t x = (z->prng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int zab_peer_index(const struct zab *z, uint32_t id)
{
    for (uint32_t i = 0; i < z->n_members; i++)
        if (z->members[i] == id)
            return (int)i;
    return -1;
}

bool zab_link_is_down(const struct zab *z, uint32_t id)
{
    for (uint32_t i = 0; i < z->n_down; i++)
        if (z->down_ids[i] == id)
            return true;
    return false;
}

static void link_mark_up(struct zab *z, uint32_t id)
{
    for (uint32_t i = 0; i < z->n_down; i++)
        if (z->down_ids[i] == id) {
            z->down_ids[i] = z->down_ids[--z->n_down];
            return;
        }
}

static void link_mark_down(struct zab *z, uint32_t id)
{
    if (zab_link_is_down(z, id))
        return;
    if (z->n_down < ZAB_PEERS_MAX)
        z->down_ids[z->n_down++] = id;
}

void zab_send(struct zab *z, struct zab_message *msg)
{
    ZAB_ASSERT(!z->in_ready);
    ZAB_ASSERT(msg->to != z->id);
    msg->from = z->id;
    if (z->n_outbox >= ZAB_OUTBOX_MAX)
        return; /* dropped like a lost message: every exchange is retransmitted */
    if (z->n_outbox == z->cap_outbox) {
        size_t cap = z->cap_outbox ? z->cap_outbox * 2 : 32;
        struct zab_message *grown = realloc(z->outbox, cap * sizeof *grown);
        if (!grown)
            return; /* as above: losing a message is always safe */
        z->outbox = grown;
        z->cap_outbox = cap;
    }
    z->outbox[z->n_outbox++] = *msg;
}

void zab_write_epochs(struct zab *z)
{
    ZAB_ASSERT(z->current_epoch <= z->accepted_epoch);
    z->pending_epochs = true;
}

void zab_commit_to(struct zab *z, uint64_t zxid)
{
    uint64_t last = zab_log_last(z);
    if (zxid > last)
        zxid = last;
    if (zxid > z->committed_zxid) {
        z->committed_zxid = zxid;
        zab_logf(z, "commit zxid=0x%llx", (unsigned long long)zxid);
    }
}

static void set_role(struct zab *z, enum zab_role role, enum zab_phase phase, uint32_t leader)
{
    z->role = role;
    z->phase = phase;
    z->leader_id = leader;
    z->phase_ticks = 0;
    z->heartbeat_elapsed = 0;
    z->role_changed = true;
}

void zab_become_looking(struct zab *z, const char *why)
{
    zab_logf(z, "looking (%s)", why);
    set_role(z, ZAB_LOOKING, ZAB_PHASE_ELECTION, 0);
    z->epoch = 0;
    z->established = false;
    z->synced = false;
    z->acked_newleader = false;
    z->leader_uptodate = false;
    z->epoch_acked = false;
    z->in_transfer = false;
    z->newleader_zxid = 0;
    z->newleader_received = false;
    memset(z->peers, 0, sizeof z->peers);
    zab_election_start(z);
}

static void step(struct zab *z, const struct zab_message *m);

void zab_become_leader(struct zab *z)
{
    zab_logf(z, "leading round=%u", z->round);
    set_role(z, ZAB_LEADING, ZAB_PHASE_DISCOVERY, z->id);
    zab_sync_leader_start(z);
    /* FOLLOWERINFO that reached us while we looked, from members that
     * decided before us.  One may be an old attempt: the sessions sort that
     * out (on_followerinfo), as for any straggler. */
    struct zab_message stashed[ZAB_PEERS_MAX];
    memcpy(stashed, z->stashed_info, sizeof stashed);
    memset(z->stashed_info, 0, sizeof z->stashed_info);
    for (uint32_t i = 0; i < ZAB_PEERS_MAX && z->role == ZAB_LEADING; i++)
        if (stashed[i].type == ZAB_MSG_FOLLOWERINFO)
            step(z, &stashed[i]); /* checked again: the membership may have changed since */
}

/* An observer takes the same path as a follower, under its own role. */
void zab_become_follower(struct zab *z, uint32_t leader, uint32_t round)
{
    zab_logf(z, "%s leader=%u round=%u", z->is_observer ? "observing" : "following", leader, round);
    z->round = round;
    memset(z->stashed_info, 0, sizeof z->stashed_info);
    set_role(z, z->is_observer ? ZAB_OBSERVING : ZAB_FOLLOWING, ZAB_PHASE_DISCOVERY, leader);
    zab_sync_follower_start(z);
}

/* Invariant 7 and friends, checked after every call into the core. */
static void check_invariants(const struct zab *z)
{
    uint64_t last = zab_log_last(z);
    ZAB_ASSERT(z->base_zxid <= z->applied_zxid);
    ZAB_ASSERT(z->applied_zxid <= z->committed_zxid);
    ZAB_ASSERT(z->committed_zxid <= last);
    ZAB_ASSERT(z->persisted_zxid <= last);
    ZAB_ASSERT(z->current_epoch <= z->accepted_epoch);
    ZAB_ASSERT(z->unstable_index <= z->n_entries);
    if (z->n_entries)
        ZAB_ASSERT(z->entries[0].zxid > z->base_zxid);
    /* Observers never lead nor follow; voters never observe. */
    ZAB_ASSERT(z->is_observer ? (z->role == ZAB_LOOKING || z->role == ZAB_OBSERVING)
                              : z->role != ZAB_OBSERVING);
    ZAB_ASSERT(z->self_index == 0 && z->members[0] == z->id);
    ZAB_ASSERT(z->is_observer == !zab_is_voter(z, z->self_index));
    ZAB_ASSERT(!z->removed || (z->role == ZAB_LOOKING && z->epoch == 0));
    ZAB_ASSERT(!z->has_pending || z->pending_zxid > z->committed_zxid);
    if (z->role == ZAB_LEADING && z->established) {
        ZAB_ASSERT(z->epoch == z->accepted_epoch && z->epoch == z->current_epoch);
        ZAB_ASSERT(z->committed_zxid >= z->initial_zxid);
    }
}

int zab_new(const struct zab_config *c, struct zab **out)
{
    *out = NULL;
    if (!c || c->n_voters == 0 || c->n_voters > ZAB_MEMBERS_MAX || c->heartbeat_ticks == 0 ||
        c->init_limit_ticks == 0 || c->sync_limit_ticks == 0 || c->id == 0 ||
        c->n_observers > ZAB_OBSERVERS_MAX || (c->n_observers && !c->observers))
        return ZAB_EINVAL;
    struct zab *z = calloc(1, sizeof *z);
    if (!z)
        return ZAB_ENOMEM;
    z->id = c->id;
    struct zab_membership *m = &z->active;
    if (c->restored && c->restored->membership) {
        *m = *c->restored->membership;
    } else {
        m->n_voters = (uint32_t)c->n_voters;
        memcpy(m->voters, c->voters, c->n_voters * sizeof *c->voters);
        m->n_observers = (uint32_t)c->n_observers;
        if (c->n_observers)
            memcpy(m->observers, c->observers, c->n_observers * sizeof *c->observers);
    }
    if (zab_membership_check(m) < 0)
        goto invalid;
    bool found = false;
    for (uint32_t i = 0; i < m->n_voters; i++)
        found |= m->voters[i] == c->id;
    for (uint32_t i = 0; i < m->n_observers; i++)
        found |= m->observers[i] == c->id;
    /* Not named and not joining: valid only for a member that was removed
     * (its persisted membership leaves it out): it restarts removed. */
    bool removed = !found && !c->joining;
    if (removed && !(c->restored && c->restored->membership))
        goto invalid;
    z->joining = !found && c->joining;
    z->count_observers = c->test_only_count_observers;
    z->quorum_override = c->test_only_quorum_override;
    z->config_old_quorum = c->test_only_config_on_old_quorum;
    zab_membership_rebuild(z);
    z->heartbeat_ticks = c->heartbeat_ticks;
    z->init_limit_ticks = c->init_limit_ticks;
    z->sync_limit_ticks = c->sync_limit_ticks;
    z->discovery_limit_ticks = c->discovery_limit_ticks;
    if (z->discovery_limit_ticks == 0) {
        uint32_t few_heartbeats = 3 * c->heartbeat_ticks + 2;
        z->discovery_limit_ticks = few_heartbeats < c->init_limit_ticks ? few_heartbeats : c->init_limit_ticks;
    }
    z->ignore_link_close = c->test_only_ignore_link_close;
    z->lead_on_stale_votes = c->test_only_lead_on_stale_votes;
    z->prng = c->prng_state;
    z->log_fn = c->log;
    z->log_context = c->log_context;
    ZAB_ASSERT(!c->entry_alloc == !c->entry_free);
    z->entry_alloc = c->entry_alloc;
    z->entry_free = c->entry_free;
    z->entry_context = c->entry_context;
    if (c->restored) {
        const struct zab_restored *r = c->restored;
        if (r->current_epoch > r->accepted_epoch)
            goto invalid;
        z->accepted_epoch = r->accepted_epoch;
        z->accepted_leader = r->accepted_leader;
        z->current_epoch = r->current_epoch;
        z->base_zxid = z->persisted_zxid = z->committed_zxid = z->applied_zxid = r->snapshot_zxid;
        for (size_t i = 0; i < r->n_entries; i++) {
            if (r->entries[i].zxid <= zab_log_last(z) || zab_zxid_counter(r->entries[i].zxid) == 0)
                goto invalid;
            int rc = zab_log_append(z, r->entries[i].zxid, r->entries[i].data, r->entries[i].size,
                                    r->entries[i].kind);
            if (rc < 0) {
                zab_free(z);
                return rc;
            }
        }
        z->persisted_zxid = zab_log_last(z);
        z->unstable_index = z->n_entries; /* already in the driver's store */
    }
    if (removed) {
        z->removed = true;
        z->vote = (struct zab_vote){.leader = 0, .epoch = z->current_epoch, .zxid = zab_log_last(z)};
        zab_logf(z, "start removed from the ensemble");
    } else {
        zab_become_looking(z, "start");
    }
    check_invariants(z);
    *out = z;
    return 0;
invalid:
    zab_free(z);
    return ZAB_EINVAL;
}

void zab_free(struct zab *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n_entries; i++)
        zab_entry_free(z, z->entries[i].data);
    free(z->entries);
    zab_collect(z, SIZE_MAX);
    free(z->retired);
    free(z->outbox);
    free(z->snapshot);
    free(z->retired_snapshot);
    free(z->install_data);
    free(z);
}

void zab_tick(struct zab *z)
{
    ZAB_ASSERT(!z->in_ready);
    if (z->removed)
        return;
    z->now++;
    z->phase_ticks++;
    z->heartbeat_elapsed++;
    switch (z->role) {
    case ZAB_LOOKING:
        zab_election_tick(z);
        break;
    case ZAB_LEADING:
        if (z->phase == ZAB_PHASE_BROADCAST)
            zab_broadcast_leader_tick(z);
        else
            zab_sync_leader_tick(z);
        break;
    case ZAB_FOLLOWING:
    case ZAB_OBSERVING:
        if (z->phase == ZAB_PHASE_BROADCAST)
            zab_broadcast_follower_tick(z);
        else
            zab_sync_follower_tick(z);
        break;
    }
    zab_membership_settle(z);
    check_invariants(z);
}

static void step_leader(struct zab *z, const struct zab_message *m)
{
    switch (m->type) {
    case ZAB_MSG_FOLLOWERINFO:
    case ZAB_MSG_ACKEPOCH:
    case ZAB_MSG_ACKNEWLEADER:
        zab_sync_leader_step(z, m);
        break;
    case ZAB_MSG_ACK:
    case ZAB_MSG_PING:
        zab_broadcast_leader_step(z, m);
        break;
    default:
        break; /* leader-to-follower types sent to a leader: stale, ignored */
    }
}

static void step_follower(struct zab *z, const struct zab_message *m)
{
    if (m->from != z->leader_id)
        return;
    switch (m->type) {
    case ZAB_MSG_NEWEPOCH:
    case ZAB_MSG_SYNC:
    case ZAB_MSG_NEWLEADER:
        zab_sync_follower_step(z, m);
        break;
    case ZAB_MSG_PROPOSAL:
    case ZAB_MSG_COMMIT:
    case ZAB_MSG_PING:
        zab_broadcast_follower_step(z, m);
        break;
    default:
        break;
    }
}

/* Our leader's notification says it does not lead us: it is LOOKING in a
 * round after the one we followed it in (it gave up: a follower ahead, a lost
 * quorum) or with a vote of our leadership's epoch or later (it restarted),
 * or it FOLLOWS another member in that round or later (the election
 * did not converge: we followed it on votes it later dropped).  A member's
 * round only grows, and it decides at most once per round, so neither can be
 * a stale message from before a leadership we could still join: its LOOKING
 * votes of the round it won in may arrive after we followed it, and say
 * nothing, which is why LOOKING needs a later round. */
static bool leader_is_looking(const struct zab *z, const struct zab_message *m)
{
    if (!zab_is_learner(z) || m->from != z->leader_id)
        return false;
    uint32_t round = m->u.notification.round;
    if (m->u.notification.state == ZAB_LOOKING) {
        /* A LOOKING vote that carries an epoch at least that of the
         * leadership we follow was sent after that leadership began: no
         * member has currentEpoch e before e's leader finishes discovery,
         * and then it leads, not looks.  So the leader restarted (its round
         * starts again at 1, which the round test cannot see) or gave up. */
        if (z->epoch != 0 && m->u.notification.vote.epoch >= z->epoch && !z->lead_on_stale_votes)
            return true;
        return round > z->round;
    }
    return m->u.notification.state == ZAB_FOLLOWING && round >= z->round &&
           m->u.notification.vote.leader != z->leader_id;
}

static void step(struct zab *z, const struct zab_message *m)
{
    if (m->to != z->id || m->from == z->id)
        return;
    if (z->removed) {
        /* Stopped, but it still answers votes with its membership: members
         * that missed the commit of the CONFIG entry that removed it learn
         * it here (R6), as removed ZooKeeper servers keep answering. */
        if (m->type == ZAB_MSG_NOTIFICATION && m->u.notification.state == ZAB_LOOKING)
            zab_election_answer_removed(z, m);
        return;
    }
    if (m->type == ZAB_MSG_NOTIFICATION && m->u.notification.membership.version > z->active.version &&
        zab_membership_check(&m->u.notification.membership) == 0) {
        /* R4: a newer membership is committed; a member that was down or
         * cut off through a reconfiguration learns it here. */
        zab_membership_adopt(z, &m->u.notification.membership);
        if (z->removed)
            return;
    }
    int index = zab_peer_index(z, m->from);
    if (index < 0 && m->type == ZAB_MSG_FOLLOWERINFO && z->role == ZAB_LEADING)
        index = zab_membership_add_joiner(z, m->from); /* R5 */
    if (index < 0 && m->type == ZAB_MSG_NOTIFICATION) {
        zab_election_answer_observer(z, m); /* a joiner, or a member that left */
        return;
    }
    if (index < 0)
        return;
    bool from_observer = !zab_is_voter(z, (uint32_t)index);
    if (from_observer && (z->is_observer || z->role != ZAB_LEADING) &&
        m->type != ZAB_MSG_NOTIFICATION)
        return; /* observers talk only to their leader, and elect nobody */
    if (m->type == ZAB_MSG_NOTIFICATION) {
        if (from_observer) {
            zab_election_answer_observer(z, m);
        } else if (z->role == ZAB_LOOKING) {
            zab_election_step(z, m);
        } else if (leader_is_looking(z, m)) {
            /* ZooKeeper's leader closes its learners' sockets when it gives
             * up; ours says so by looking in a later round.  Without this a
             * follower would wait out initLimit (or syncLimit) in a
             * leadership that is gone. */
            zab_become_looking(z, m->u.notification.state == ZAB_LOOKING ? "the leader is looking"
                                                                         : "the leader follows another");
            zab_election_step(z, m);
        } else {
            zab_election_answer(z, m);
        }
    } else if (z->role == ZAB_LOOKING && m->type == ZAB_MSG_FOLLOWERINFO) {
        /* A member decided on our vote before we decided: keep its
         * FOLLOWERINFO for the leadership we may be about to take, rather
         * than have it resend a heartbeat later (zab_become_leader). */
        z->stashed_info[index] = *m;
    } else if (z->role == ZAB_LEADING) {
        step_leader(z, m);
    } else if (zab_is_learner(z)) {
        step_follower(z, m);
    }
}

void zab_peer_connected(struct zab *z, uint32_t id)
{
    ZAB_ASSERT(!z->in_ready);
    if (z->removed || id == z->id)
        return;
    link_mark_up(z, id);
    zab_election_peer_connected(z, id);
    if (zab_is_learner(z))
        zab_sync_follower_resend_info(z, id);
    check_invariants(z);
}

void zab_peer_disconnected(struct zab *z, uint32_t id)
{
    ZAB_ASSERT(!z->in_ready);
    if (z->removed || id == z->id || z->ignore_link_close)
        return;
    link_mark_down(z, id);
    if (zab_is_learner(z) && id == z->leader_id) {
        zab_become_looking(z, "the leader's link closed");
    } else if (z->role == ZAB_LEADING && !zab_broadcast_leader_has_quorum(z)) {
        zab_become_looking(z, "lost the links of a quorum of followers");
    } else if (z->role == ZAB_LOOKING) {
        zab_election_peer_disconnected(z, id);
    }
    zab_membership_settle(z);
    check_invariants(z);
}

int zab_step(struct zab *z, const struct zab_message *m)
{
    ZAB_ASSERT(!z->in_ready);
    step(z, m);
    zab_membership_settle(z);
    check_invariants(z);
    return 0;
}

static int64_t propose(struct zab *z, const uint8_t *data, uint32_t size, uint8_t kind)
{
    ZAB_ASSERT(!z->in_ready);
    if (z->role != ZAB_LEADING || !z->established)
        return ZAB_ENOTLEADER;
    if (size > ZAB_ENTRY_BYTES_MAX)
        return ZAB_ETOOBIG;
    if (zab_zxid_counter(zab_log_last(z)) >= UINT32_MAX - 1)
        return ZAB_EBUSY; /* counter exhausted: ZooKeeper forces a new election here */
    if (zab_uncommitted(z) >= ZAB_INFLIGHT_MAX)
        return ZAB_EBUSY;
    uint64_t zxid = zab_zxid_make(z->epoch, ++z->next_counter);
    int rc = zab_log_append(z, zxid, data, size, kind);
    if (rc < 0) {
        z->next_counter--;
        return rc;
    }
    zab_broadcast_ship_all(z);
    check_invariants(z);
    return (int64_t)zxid;
}

int64_t zab_propose(struct zab *z, const uint8_t *data, uint32_t size)
{
    return propose(z, data, size, ZAB_ENTRY_DATA);
}

int64_t zab_propose_config(struct zab *z, const uint32_t *voters, size_t n_voters,
                           const uint32_t *observers, size_t n_observers, uint64_t from_version)
{
    return zab_propose_config_attached(z, voters, n_voters, observers, n_observers, from_version,
                                       NULL, 0);
}

int64_t zab_propose_config_attached(struct zab *z, const uint32_t *voters, size_t n_voters,
                                    const uint32_t *observers, size_t n_observers,
                                    uint64_t from_version, const uint8_t *attachment,
                                    uint32_t attachment_len)
{
    ZAB_ASSERT(!z->in_ready);
    ZAB_ASSERT(attachment || attachment_len == 0);
    if (z->role != ZAB_LEADING || !z->established)
        return ZAB_ENOTLEADER;
    if (z->has_pending)
        return ZAB_EBUSY; /* only one reconfiguration in flight (R2) */
    if (n_voters == 0 || n_voters > ZAB_MEMBERS_MAX || n_observers > ZAB_OBSERVERS_MAX || !voters ||
        (n_observers && !observers) || (from_version && from_version != z->active.version))
        return ZAB_EINVAL;
    struct zab_membership m = {.n_voters = (uint32_t)n_voters, .n_observers = (uint32_t)n_observers};
    memcpy(m.voters, voters, n_voters * sizeof *voters);
    if (n_observers)
        memcpy(m.observers, observers, n_observers * sizeof *observers);
    if (zab_membership_check(&m) < 0)
        return ZAB_EINVAL;
    /* A quorum of the new voters must be synced with us and alive, or the
     * entry could never commit (ZooKeeper's NewConfigNoQuorum). */
    uint32_t synced = 0;
    for (uint32_t i = 0; i < m.n_voters; i++) {
        int at = zab_peer_index(z, m.voters[i]);
        if (m.voters[i] == z->id ||
            (at >= 0 && z->peers[at].acked_newleader &&
             z->now - z->peers[at].last_heard_tick <= z->sync_limit_ticks))
            synced++;
    }
    uint32_t need = z->quorum_override ? z->quorum_override : m.n_voters / 2 + 1;
    if (synced < need)
        return ZAB_ENOQUORUM;
    if (attachment_len > ZAB_ENTRY_BYTES_MAX - ZAB_MEMBERSHIP_BYTES_MAX)
        return ZAB_ETOOBIG;
    uint8_t *data = malloc(ZAB_MEMBERSHIP_BYTES_MAX + (size_t)attachment_len);
    if (!data)
        return ZAB_ENOMEM;
    int64_t size = zab_membership_encode(&m, data, ZAB_MEMBERSHIP_BYTES_MAX);
    ZAB_ASSERT(size > 0);
    if (attachment_len)
        memcpy(data + size, attachment, attachment_len);
    int64_t zxid = propose(z, data, (uint32_t)size + attachment_len, ZAB_ENTRY_CONFIG);
    free(data);
    if (zxid > 0)
        zab_logf(z, "propose membership zxid=0x%llx voters=%u observers=%u", (unsigned long long)zxid,
                 m.n_voters, m.n_observers);
    return zxid;
}

uint64_t zab_next_zxid(const struct zab *z)
{
    if (z->role != ZAB_LEADING || !z->established)
        return 0;
    return zab_zxid_make(z->epoch, z->next_counter + 1);
}

void zab_persisted(struct zab *z, uint64_t zxid)
{
    ZAB_ASSERT(!z->in_ready);
    if (zxid <= z->persisted_zxid)
        return;
    ptrdiff_t index = zab_log_find(z, zxid);
    if (index < 0 || (size_t)index >= z->unstable_index)
        return; /* truncated since, or never handed out: invariant 6 forbids counting it */
    z->persisted_zxid = zxid;
    if (z->role == ZAB_LEADING)
        zab_sync_leader_persisted(z);
    else if (zab_is_learner(z))
        zab_sync_follower_persisted(z);
    zab_membership_settle(z);
    check_invariants(z);
}

int zab_persist_failed(struct zab *z)
{
    ZAB_ASSERT(!z->in_ready);
    if (z->committed_zxid > z->persisted_zxid)
        return ZAB_ESHARED; /* committed on others' acks: it must stay */
    if (zab_log_last(z) > z->persisted_zxid) {
        if (z->role != ZAB_LEADING)
            return ZAB_ESHARED; /* a learner's entries came from its leader */
        for (uint32_t i = 0; i < z->n_members; i++)
            if (i != z->self_index && z->peers[i].sent_zxid > z->persisted_zxid)
                return ZAB_ESHARED;
        zab_logf(z, "withdraw entries after zxid=0x%llx: the log could not take them",
                 (unsigned long long)z->persisted_zxid);
        zab_log_truncate(z, z->persisted_zxid);
    }
    check_invariants(z);
    return 0;
}

int zab_snapshot_offer(struct zab *z, uint64_t zxid, const uint8_t *data, uint32_t size)
{
    ZAB_ASSERT(!z->in_ready);
    if (size > ZAB_SNAPSHOT_BYTES_MAX)
        return ZAB_ETOOBIG;
    if (zxid > z->applied_zxid || zxid < z->base_zxid || !zab_log_contains(z, zxid))
        return ZAB_EINVAL;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return ZAB_ENOMEM;
    if (size)
        memcpy(copy, data, size);
    /* Messages in the outbox may borrow the old snapshot: free it at advance. */
    free(z->retired_snapshot);
    z->retired_snapshot = z->snapshot;
    z->snapshot = copy;
    z->snapshot_size = size;
    z->snapshot_zxid = zxid;
    z->have_snapshot = true;
    if (z->role == ZAB_LEADING)
        zab_sync_offer_snapshot(z);
    check_invariants(z);
    return 0;
}

/* Drops the log up to compact_to.  Only with an empty outbox: queued
 * messages borrow entries' data and the snapshot. */
static void compact_now(struct zab *z)
{
    ZAB_ASSERT(z->n_outbox == 0);
    zab_log_compact(z, z->compact_to);
    z->compact_to = 0;
    if (z->have_snapshot && z->snapshot_zxid < z->base_zxid) {
        /* entries after it are gone: it cannot seed a SNAP, and its copy
         * (the whole tree) would only hold memory until the next one */
        z->have_snapshot = false;
        free(z->snapshot);
        z->snapshot = NULL;
        z->snapshot_size = 0;
    }
}

/* The copy of an offered snapshot is kept only while a peer waits for it:
 * once the SNAPs are sent (the outbox is drained), it is a whole tree held
 * for nothing; a later laggard asks the driver for a fresh one, as ZooKeeper
 * serialises one for each learner it sends a SNAP. */
static void release_snapshot_if_unused(struct zab *z)
{
    if (!z->snapshot || z->n_outbox)
        return;
    for (uint32_t i = 0; i < z->n_members; i++)
        if (z->peers[i].snap_pending)
            return;
    free(z->snapshot);
    z->snapshot = NULL;
    z->snapshot_size = 0;
    z->have_snapshot = false;
}

void zab_compact(struct zab *z, uint64_t zxid)
{
    ZAB_ASSERT(!z->in_ready);
    if (zxid > z->compact_to)
        z->compact_to = zxid;
    /* At once when nothing borrows the log, so that the memory is free when
     * the driver returns (it may trim its heap); else at zab_advance. */
    if (z->n_outbox == 0) {
        compact_now(z);
        check_invariants(z);
    }
}

bool zab_has_ready(const struct zab *z)
{
    return z->config_changed || z->n_outbox || z->unstable_index < z->n_entries || z->pending_truncate ||
           z->pending_install || z->pending_epochs || z->committed_zxid > z->applied_zxid ||
           z->want_snapshot || z->role_changed;
}

void zab_ready(struct zab *z, struct zab_ready *rd)
{
    ZAB_ASSERT(!z->in_ready);
    memset(rd, 0, sizeof *rd);
    rd->truncate = z->pending_truncate;
    rd->truncate_to = z->truncate_to;
    rd->install_snapshot = z->pending_install;
    rd->snapshot_zxid = z->install_zxid;
    rd->snapshot_data = z->install_data;
    rd->snapshot_size = z->install_size;
    rd->entries = z->entries + z->unstable_index;
    rd->n_entries = z->n_entries - z->unstable_index;
    rd->write_epochs = z->pending_epochs;
    if (z->config_changed) {
        z->ready_config = z->active;
        rd->config_changed = true;
        rd->config = &z->ready_config;
        rd->removed = z->removed;
    }
    rd->accepted_epoch = z->accepted_epoch;
    rd->accepted_leader = z->accepted_leader;
    rd->current_epoch = z->current_epoch;
    rd->messages = z->outbox;
    rd->n_messages = z->n_outbox;
    if (z->committed_zxid > z->applied_zxid) {
        ptrdiff_t first = z->applied_zxid == z->base_zxid ? 0 : zab_log_find(z, z->applied_zxid) + 1;
        ptrdiff_t last = zab_log_find(z, z->committed_zxid);
        ZAB_ASSERT(first >= 0 && last >= first);
        rd->committed = z->entries + first;
        rd->n_committed = (size_t)(last - first + 1);
    }
    rd->snapshot_wanted = z->want_snapshot;
    rd->role_changed = z->role_changed;
    rd->role = z->role;
    rd->phase = z->phase;
    rd->leader_id = z->leader_id;
    rd->epoch = z->epoch;
    rd->serving = zab_serving(z);
    z->in_ready = true;
    z->ready_unstable_end = z->n_entries;
    z->ready_applied_to = z->committed_zxid;
    z->ready_snapshot_wanted = z->want_snapshot;
}

void zab_advance(struct zab *z)
{
    ZAB_ASSERT(z->in_ready);
    z->in_ready = false;
    z->unstable_index = z->ready_unstable_end;
    z->applied_zxid = z->ready_applied_to;
    if (z->ready_snapshot_wanted)
        z->want_snapshot = false;
    z->n_outbox = 0;
    z->pending_truncate = false;
    z->pending_install = false;
    free(z->install_data);
    z->install_data = NULL;
    z->pending_epochs = false;
    z->role_changed = false;
    z->config_changed = false;
    free(z->retired_snapshot);
    z->retired_snapshot = NULL;
    if (z->compact_to)
        compact_now(z);
    release_snapshot_if_unused(z);
    check_invariants(z);
}

/* The uncommitted entries are the log's tail (zxids increase): found by
 * bisection, not counted one by one at every proposal (with 128 writes in
 * flight that walk was 2-5% of a write's instructions). */
size_t zab_uncommitted(const struct zab *z)
{
    return z->n_entries - zab_log_first_from(z, z->committed_zxid + 1);
}

void zab_status(const struct zab *z, struct zab_status *s)
{
    memset(s, 0, sizeof *s);
    s->id = z->id;
    s->role = z->role;
    s->phase = z->phase;
    s->serving = zab_serving(z);
    s->leader_id = z->leader_id;
    s->epoch = z->epoch;
    s->accepted_epoch = z->accepted_epoch;
    s->current_epoch = z->current_epoch;
    s->last_zxid = zab_log_last(z);
    s->persisted_zxid = z->persisted_zxid;
    s->committed_zxid = z->committed_zxid;
    s->applied_zxid = z->applied_zxid;
    s->election_round = z->round;
    s->observer = z->is_observer;
    s->config = z->active;
    s->reconfig_pending = z->has_pending;
    s->pending_version = z->has_pending ? z->pending_zxid : 0;
    s->removed = z->removed;
    s->log_entries = z->n_entries;
    s->retired_entries = z->n_retired - z->retired_head;
    s->snapshot_bytes = z->snapshot ? z->snapshot_size : 0;
}
