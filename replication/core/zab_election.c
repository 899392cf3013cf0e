/*
 * zab_election.c: leader election while LOOKING, in the spirit of
 * ZooKeeper's FastLeaderElection.  It owns the vote, the logical round and
 * the tallies of votes; it decides who leads and hands over to zab_sync.c.
 *
 * A vote is (currentEpoch, lastZxid, id) of a candidate; a higher epoch wins,
 * then a higher zxid, then a higher id.  Votes of a LOOKING peer count only in
 * the same round; a member that sees a higher round joins it and votes afresh.
 * A quorum of equal votes in the round decides, at the next tick if no better
 * vote arrived meanwhile.  Members already FOLLOWING or
 * LEADING answer LOOKING peers with their leader; a quorum of such answers
 * naming L, with L itself saying LEADING, makes the member follow L; a
 * quorum of answers naming us, in our round, makes us lead (ZooKeeper's
 * checkLeader: they decided on our vote before we heard theirs).  A link
 * coming up gets our vote at once (zab_peer_connected).  Safety does not
 * rest on this file (see zab.c): it only has to converge, and quickly: an
 * ensemble is unavailable until it has.
 *
 * Observers take no part in the election: voters never count, adopt or
 * tally an observer's notification.  A LOOKING observer sends the voters a
 * vote for nobody every resend interval; voters out of the election answer
 * it with their leader, and the observer observes L once a quorum of voters
 * follow or lead L, L itself saying LEADING (the second rule above).  So an
 * observer only ever joins a leadership the voters made.
 */
#include "zab_internal.h"

#include <string.h>

static struct zab_vote self_vote(const struct zab *z)
{
    /* Only an active voter may lead (a voter of a pending membership alone
     * votes, for nobody until it adopts a candidate's vote). */
    if (!(z->flags[z->self_index] & ZAB_MEMBER_VOTER))
        return (struct zab_vote){0};
    return (struct zab_vote){.leader = z->id, .epoch = z->current_epoch, .zxid = zab_log_last(z)};
}

/* A vote we may adopt: for an active voter of our membership whose link
 * has not closed (a vote for a member that died, relayed by members that
 * have not noticed yet, would make us follow nobody). */
static bool candidate(const struct zab *z, const struct zab_vote *v)
{
    int at = zab_peer_index(z, v->leader);
    return v->leader != 0 && at >= 0 && (z->flags[at] & ZAB_MEMBER_VOTER) &&
           (v->leader == z->id || !zab_link_is_down(z, v->leader));
}

static bool vote_better(const struct zab_vote *a, const struct zab_vote *b)
{
    if (a->epoch != b->epoch)
        return a->epoch > b->epoch;
    if (a->zxid != b->zxid)
        return a->zxid > b->zxid;
    return a->leader > b->leader;
}

static bool vote_equal(const struct zab_vote *a, const struct zab_vote *b)
{
    return a->leader == b->leader && a->epoch == b->epoch && a->zxid == b->zxid;
}

static void send_notification(struct zab *z, uint32_t to)
{
    struct zab_message m = {.type = ZAB_MSG_NOTIFICATION, .to = to};
    m.u.notification.round = z->round;
    m.u.notification.state = (uint8_t)(z->role == ZAB_OBSERVING ? ZAB_LOOKING : z->role);
    m.u.notification.membership = z->active;
    if (z->role == ZAB_LOOKING)
        m.u.notification.vote = z->vote;
    else
        m.u.notification.vote =
            (struct zab_vote){.leader = z->leader_id, .epoch = z->epoch, .zxid = zab_log_last(z)};
    zab_send(z, &m);
}

static void broadcast_vote(struct zab *z)
{
    for (uint32_t i = 0; i < z->n_members; i++) /* observers and joiners have no say */
        if (i != z->self_index && zab_is_voter(z, i))
            send_notification(z, z->members[i]);
    /* Jitter keeps members that lost the same messages from resending in lockstep. */
    z->heartbeat_elapsed = 0;
    z->resend_at = z->heartbeat_ticks + (uint32_t)(zab_prng_next(z) % z->heartbeat_ticks);
}

static void set_vote(struct zab *z, struct zab_vote vote)
{
    z->vote = vote;
    z->votes[z->self_index] = (struct zab_vote_record){
        .valid = true, .round = z->round, .state = ZAB_LOOKING, .vote = vote};
}

static void decide(struct zab *z, uint32_t leader, uint32_t round);
static bool quorum_votes_for(const struct zab *z, const struct zab_vote *vote);

void zab_election_start(struct zab *z)
{
    z->round++;
    z->decide_on_tick = false;
    memset(z->votes, 0, sizeof z->votes);
    memset(z->others, 0, sizeof z->others);
    memset(z->stashed_info, 0, sizeof z->stashed_info);
    if (z->is_observer) {
        /* A vote for nobody: voters read only our state, LOOKING. */
        z->vote = (struct zab_vote){.leader = 0, .epoch = z->current_epoch, .zxid = zab_log_last(z)};
        broadcast_vote(z);
        return;
    }
    set_vote(z, self_vote(z));
    broadcast_vote(z);
    if (quorum_votes_for(z, &z->vote))
        decide(z, z->id, z->round); /* an ensemble of one */
}

static void decide(struct zab *z, uint32_t leader, uint32_t round)
{
    if (leader == z->id)
        zab_become_leader(z);
    else
        zab_become_follower(z, leader, round);
}

static bool quorum_votes_for(const struct zab *z, const struct zab_vote *vote)
{
    if (vote->leader == 0)
        return false; /* a vote for nobody decides nothing */
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++)
        has[i] = z->votes[i].valid && z->votes[i].round == z->round && vote_equal(&z->votes[i].vote, vote);
    return zab_quorum_active(z, has);
}

/* A quorum of members agreeing on a leader that says it leads: the members
 * out of the election that name it, and we ourselves, who would join it.
 * Counting ourselves lets a member that was cut off rejoin as soon as the
 * leader answers (a healed follower of 3 waited for a second answer, which
 * a dead connection to the other follower held up for a second or more).
 * Joining a leader that then fails to keep a quorum costs an election, never
 * safety (see zab.c). */
static bool others_agree_on(const struct zab *z, uint32_t leader)
{
    int li = zab_peer_index(z, leader);
    if (li < 0 || !(z->flags[li] & ZAB_MEMBER_VOTER) || !z->others[li].valid ||
        z->others[li].state != ZAB_LEADING)
        return false;
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++)
        has[i] = i == z->self_index || (z->others[i].valid && z->others[i].vote.leader == leader);
    return zab_quorum_active(z, has);
}

/* Member i's notification says it follows us, in our round, and has not
 * been given an epoch yet: it decided on our vote of this round and waits
 * for us in discovery.  A member that follows us in an epoch (its vote's
 * epoch is not 0) follows a leadership of ours that is gone: we are
 * LOOKING, so we restarted or gave up, and a leader never resumes an epoch.
 * Counting such stale answers made a restarted leader lead on the votes of
 * followers that had not noticed it died, then wait out discovery. */
static bool followed_by(const struct zab *z, uint32_t i)
{
    return z->others[i].valid && z->others[i].state == ZAB_FOLLOWING &&
           z->others[i].round == z->round && z->others[i].vote.leader == z->id &&
           (z->others[i].vote.epoch == 0 || z->lead_on_stale_votes);
}

/* We are a voter, and with us, the members following us make a quorum. */
static bool quorum_follows_us(const struct zab *z)
{
    if (!(z->flags[z->self_index] & ZAB_MEMBER_VOTER))
        return false;
    bool has[ZAB_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < z->n_members; i++)
        has[i] = i == z->self_index || followed_by(z, i);
    return zab_quorum_active(z, has);
}

void zab_election_step(struct zab *z, const struct zab_message *m)
{
    int from = zab_peer_index(z, m->from);
    const struct zab_vote *theirs = &m->u.notification.vote;
    uint32_t round = m->u.notification.round;
    if (z->is_observer && m->u.notification.state == ZAB_LOOKING)
        return; /* an observer waits for the voters to have a leader */
    if (m->u.notification.state == ZAB_LOOKING) {
        z->others[from].valid = false;
        if (round > z->round) {
            z->round = round;
            memset(z->votes, 0, sizeof z->votes);
            struct zab_vote mine = self_vote(z);
            set_vote(z, candidate(z, theirs) && vote_better(theirs, &mine) ? *theirs : mine);
            broadcast_vote(z);
        } else if (round < z->round) {
            send_notification(z, m->from); /* bring the laggard into our round */
            return;
        } else if (candidate(z, theirs) && vote_better(theirs, &z->vote)) {
            set_vote(z, *theirs);
            broadcast_vote(z);
        } else if (!vote_equal(theirs, &z->vote)) {
            /* Theirs is worse: the sender has not seen ours (it reached it
             * while it still followed a leader, which answered for it), and
             * we would not send it again before the resend interval (1-2 s
             * in the daemon).  Each such answer strictly improves the
             * receiver's vote, so this cannot ping-pong. */
            send_notification(z, m->from);
        }
        z->votes[from] = (struct zab_vote_record){
            .valid = true, .round = round, .state = ZAB_LOOKING, .vote = *theirs};
        /* As ZooKeeper's finalizeWait: give better votes in flight a tick
         * to arrive before deciding, so fewer members follow a non-leader. */
        z->decide_on_tick = quorum_votes_for(z, &z->vote);
        return;
    }
    /* The sender is FOLLOWING or LEADING. */
    z->others[from] = (struct zab_vote_record){
        .valid = true, .round = round, .state = m->u.notification.state, .vote = *theirs};
    if (theirs->leader == z->id) {
        /* Members that decided on our vote before we heard theirs (their
         * votes to us were lost: a start sends its first votes before the
         * links are up) now follow us and answer our votes with it.  As
         * ZooKeeper's checkLeader: a quorum of them in our own round makes
         * us lead (their FOLLOWERINFO waits in z->stashed_info).  Anything
         * else naming us is stale: we do not lead. */
        if (round == z->round && quorum_follows_us(z))
            decide(z, z->id, z->round);
        return;
    }
    if (others_agree_on(z, theirs->leader))
        decide(z, theirs->leader, round > z->round ? round : z->round);
}

/* A LOOKING peer asked while we are out of the election: tell it our leader.
 * Observers answer nobody: no voter needs to know what they observe. */
void zab_election_answer(struct zab *z, const struct zab_message *m)
{
    if (m->u.notification.state != ZAB_LOOKING || z->is_observer)
        return;
    send_notification(z, m->from);
    if (zab_link_is_down(z, m->from) && z->n_unanswered < ZAB_PEERS_MAX) {
        for (uint32_t i = 0; i < z->n_unanswered; i++)
            if (z->unanswered_ids[i] == m->from)
                return;
        z->unanswered_ids[z->n_unanswered++] = m->from;
    }
}

/* A removed member answers a LOOKING voter with a vote for nobody and its
 * membership (the one that removed it). */
void zab_election_answer_removed(struct zab *z, const struct zab_message *m)
{
    ZAB_ASSERT(z->removed && z->role == ZAB_LOOKING);
    send_notification(z, m->from);
}

/* A notification from an observer: never counted.  A voter that follows or
 * leads tells a LOOKING observer its leader; a LOOKING voter has nothing to
 * tell yet (the observer asks again). */
void zab_election_answer_observer(struct zab *z, const struct zab_message *m)
{
    if (z->role != ZAB_LOOKING)
        zab_election_answer(z, m);
}

/* The link to member id came up.  While we look, our last vote to it was
 * probably lost (a start sends its first vote before any link is up), and
 * waiting for the resend interval would make every start take 1-2 s. */
void zab_election_peer_connected(struct zab *z, uint32_t id)
{
    for (uint32_t i = 0; i < z->n_unanswered; i++) {
        if (z->unanswered_ids[i] != id)
            continue;
        z->unanswered_ids[i] = z->unanswered_ids[--z->n_unanswered];
        if (z->role != ZAB_LOOKING && !z->removed) {
            send_notification(z, id); /* the answer the down link lost */
            return;
        }
        break;
    }
    int at = zab_peer_index(z, id);
    if (at < 0 || (uint32_t)at == z->self_index || !zab_is_voter(z, (uint32_t)at))
        return;
    if (z->role == ZAB_LOOKING) {
        send_notification(z, id);
    } else if (zab_is_learner(z) && !z->is_observer && id == z->leader_id &&
               z->phase == ZAB_PHASE_DISCOVERY && !z->epoch_acked) {
        /* We decided on its vote, and our answers to it were lost: if it
         * still looks, this tells it that we follow it (see
         * quorum_follows_us), rather than its next resend.  (Telling every
         * peer our leader on every link-up was tried and not kept: one
         * simulator seed in 20,000 then missed its liveness bound, a
         * restarted member with a shorter log winning an election against
         * the leader's followers.) */
        send_notification(z, id);
    }
}

/* The link to member id closed while we look: it may have died, so its
 * vote of this round and its answer out of the election no longer count
 * towards a decision (a quorum "for" a dead candidate would make us follow
 * it, then wait out discovery).  If it is alive it votes again when the
 * link comes back (zab_peer_connected, on both sides). */
void zab_election_peer_disconnected(struct zab *z, uint32_t id)
{
    int at = zab_peer_index(z, id);
    if (at < 0 || (uint32_t)at == z->self_index)
        return;
    z->votes[at].valid = false;
    z->others[at].valid = false;
    if (z->vote.leader == id && !z->is_observer) {
        set_vote(z, self_vote(z)); /* our candidate may be dead: back to ourselves */
        broadcast_vote(z);
    }
    z->decide_on_tick = quorum_votes_for(z, &z->vote);
}

void zab_election_tick(struct zab *z)
{
    if (z->decide_on_tick) {
        z->decide_on_tick = false;
        if (quorum_votes_for(z, &z->vote)) {
            decide(z, z->vote.leader, z->round);
            return;
        }
    }
    if (z->heartbeat_elapsed >= z->resend_at) {
        /* A fresh look at our own state: the log may have grown durable. */
        if (z->vote.leader == z->id && !z->is_observer)
            set_vote(z, self_vote(z));
        broadcast_vote(z);
    }
}
