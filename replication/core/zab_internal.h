/*
 * The state of one zab member, shared by the files of the core (zab.c owns
 * the design notes; zab_election.c, zab_sync.c, zab_broadcast.c and
 * zab_log.c each own one concern).  Not a public header.
 */
#ifndef ZAB_INTERNAL_H
#define ZAB_INTERNAL_H

#include "zab.h"

#include <stdio.h>
#include <stdlib.h>

/* The core depends on libc alone, so it carries its own always-on assertion. */
#define ZAB_ASSERT(expr)                                                                 \
    do {                                                                                 \
        if (!(expr)) {                                                                   \
            fprintf(stderr, "zab assertion failed: %s (%s:%d)\n", #expr, __FILE__, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Ids a member keeps state for: both memberships and joiners (zab_membership.c). */
#define ZAB_PEERS_MAX (2u * (ZAB_MEMBERS_MAX + ZAB_OBSERVERS_MAX))

/* What an id is, per index of the peer table. */
enum {
    ZAB_MEMBER_VOTER = 1,            /* voter of the active membership */
    ZAB_MEMBER_OBSERVER = 2,         /* observer of the active membership */
    ZAB_MEMBER_PENDING_VOTER = 4,    /* voter of the pending membership */
    ZAB_MEMBER_PENDING_OBSERVER = 8, /* observer of the pending membership */
};

/* What the leader knows of one peer (index = position in members). */
struct zab_peer {
    uint32_t id;
    bool info;               /* FOLLOWERINFO received this leadership */
    uint64_t session;        /* of the follower's current attempt */
    uint64_t sync_zxid;      /* where the SYNC left the peer's log */
    uint32_t accepted_epoch; /* from FOLLOWERINFO */
    bool newepoch_sent;
    bool acked_epoch;        /* ACKEPOCH received for our epoch */
    uint32_t current_epoch;  /* from ACKEPOCH */
    uint64_t last_zxid;      /* from ACKEPOCH */
    struct zab_message ackepoch; /* kept to sync the peer when discovery ends */
    bool sync_sent;          /* SYNC sent; proposals flow from sent_zxid */
    bool snap_pending;       /* waiting for a snapshot offer to send SNAP */
    uint64_t sent_zxid;      /* last zxid shipped (proposal chain position) */
    uint64_t acked_zxid;     /* durable on the peer (cumulative ACK/PING) */
    uint64_t acked_at_last_ping;
    /* The send window (zab_broadcast_ship): entries and bytes shipped in
     * (win_from, win_sent], valid while win_sent == sent_zxid. */
    uint64_t win_from;
    uint64_t win_sent;
    uint32_t win_entries;
    uint64_t win_bytes;
    bool acked_newleader;
    uint32_t last_heard_tick;
};

struct zab_vote_record {
    bool valid;
    uint32_t round;
    uint8_t state;
    struct zab_vote vote;
};

struct zab {
    /* configuration */
    uint32_t id;
    uint32_t members[ZAB_PEERS_MAX]; /* the peer table's ids (zab_membership.c); self first */
    uint8_t flags[ZAB_PEERS_MAX];    /* ZAB_MEMBER_* of each */
    uint32_t n_members;
    uint32_t self_index;             /* always 0 */
    bool is_observer;                /* not a voter of either membership */
    bool count_observers;            /* TEST ONLY: the broken core (zab_config) */
    uint32_t quorum_override;        /* TEST ONLY */
    bool config_old_quorum;          /* TEST ONLY: the broken reconfiguration (zab_config) */
    struct zab_membership active;    /* committed, in force */
    bool has_pending;                /* a CONFIG entry above it is in the log */
    uint64_t pending_zxid;
    struct zab_membership pending;
    bool joining;                    /* zab_config.joining, until a membership names me */
    bool removed;                    /* stopped for good */
    bool config_changed;             /* for the next ready */
    struct zab_membership ready_config;
    uint32_t heartbeat_ticks;
    uint32_t init_limit_ticks;
    uint32_t sync_limit_ticks;
    uint32_t discovery_limit_ticks;  /* see zab_discovery_limit (zab.c) */
    bool ignore_link_close;          /* TEST ONLY: the broken core of zab_config */
    bool lead_on_stale_votes;        /* TEST ONLY: the broken core of zab_config */
    /* Ids whose link the driver reported down and not up since, and from
     * which no message arrived since (zab_peer_disconnected).  A set of ids,
     * not a flag of the peer table: that table is rebuilt on every
     * membership change and cleared on every new leadership. */
    uint32_t down_ids[ZAB_PEERS_MAX];
    uint32_t n_down;
    /* Ids that asked for our vote while our link to them was down: the
     * answer was lost, so it goes out again when the link comes up (a
     * restarted member would otherwise wait for its resend to rejoin). */
    uint32_t unanswered_ids[ZAB_PEERS_MAX];
    uint32_t n_unanswered;
    uint64_t prng;
    zab_log_fn log_fn;
    void *log_context;
    void *(*entry_alloc)(void *ctx, size_t size); /* NULL: malloc, free */
    void (*entry_free)(void *ctx, void *data);
    void *entry_context;

    /* durable state (mirrors the driver's store) */
    uint32_t accepted_epoch;
    uint32_t accepted_leader; /* the one leader we acked accepted_epoch to (invariant 1) */
    uint32_t current_epoch;

    /* the log: entries[0..n_entries) have zxids > base_zxid, increasing */
    struct zab_entry *entries;
    size_t n_entries;
    size_t cap_entries;
    uint64_t base_zxid;
    uint64_t persisted_zxid;
    uint64_t committed_zxid;
    uint64_t applied_zxid;
    size_t unstable_index; /* entries from here on not yet handed to the driver */

    /* role */
    enum zab_role role;
    enum zab_phase phase;
    uint32_t leader_id;
    uint32_t epoch;        /* leadership epoch (leader: proposed; follower: from NEWEPOCH) */
    uint32_t now;          /* ticks since start (for last-heard bookkeeping) */
    uint32_t phase_ticks;  /* ticks since the phase began */
    uint32_t heartbeat_elapsed;
    uint32_t resend_at;    /* election resend due when heartbeat_elapsed reaches it */

    /* election */
    uint32_t round;
    struct zab_vote vote;
    bool decide_on_tick;       /* a quorum agreed: decide at the next tick unless a better vote comes */
    struct zab_vote_record votes[ZAB_PEERS_MAX];  /* LOOKING peers, this round */
    struct zab_vote_record others[ZAB_PEERS_MAX]; /* peers out of election */
    struct zab_message stashed_info[ZAB_PEERS_MAX]; /* FOLLOWERINFO heard while LOOKING (type 0: none) */

    /* follower */
    uint32_t heard_ticks;      /* ticks since the leader was last heard */
    uint64_t session;          /* this attempt to follow (FOLLOWERINFO) */
    bool epoch_acked;          /* NEWEPOCH accepted in this session */
    /* The driver is receiving the leader's snapshot out of band for this
     * session (zab_snapshot_transfer_progress): the leader is syncing us. */
    bool in_transfer;
    bool synced;               /* SYNC received: the log is a prefix of the leader's */
    bool newleader_received;
    uint64_t newleader_zxid;
    bool acked_newleader;
    /* Our leader is established: a COMMIT of its epoch came after our
     * ACKNEWLEADER (only an established leader sends COMMIT).  ZooKeeper's
     * UPTODATE: a learner serves clients only from then on. */
    bool leader_uptodate;
    uint64_t ack_sent_zxid;
    uint64_t progress_sent_zxid; /* durable point last reported while syncing */

    /* leader */
    struct zab_peer peers[ZAB_PEERS_MAX];
    bool established;
    uint64_t initial_zxid;     /* end of the initial history (NEWLEADER zxid) */
    uint32_t next_counter;
    uint8_t *snapshot;         /* snapshot offered by the driver, for SNAP */
    uint32_t snapshot_size;
    uint64_t snapshot_zxid;
    bool have_snapshot;
    bool want_snapshot;        /* ask the driver in the next ready */

    /* ready batch being built */
    struct zab_message *outbox;
    size_t n_outbox;
    size_t cap_outbox;
    bool pending_truncate;
    uint64_t truncate_to;
    bool pending_install;
    uint8_t *install_data;
    uint32_t install_size;
    uint64_t install_zxid;
    bool pending_epochs;
    bool role_changed;
    uint64_t compact_to;       /* deferred to zab_advance, when no message borrows the log */
    /* Buffers of compacted entries not yet freed: [retired_head, n_retired)
     * of retired, freed oldest first by zab_collect. */
    void **retired;
    size_t retired_head, n_retired, cap_retired;
    uint8_t *retired_snapshot; /* freed at zab_advance, when no message borrows it */
    /* handed out by zab_ready, consumed by zab_advance */
    bool in_ready;
    size_t ready_unstable_end;
    uint64_t ready_applied_to;
    bool ready_snapshot_wanted;
};

/* A voter of the active or the pending membership: it votes, and counts in
 * the quorums of zab_quorum. */
static inline bool zab_is_voter(const struct zab *z, uint32_t i)
{
    return (z->flags[i] & (ZAB_MEMBER_VOTER | ZAB_MEMBER_PENDING_VOTER)) != 0;
}

/* Whether the member at index i counts in quorums (election, epoch,
 * establishment, commit, liveness of the leadership): voters only. */
static inline bool zab_counts_in_quorum(const struct zab *z, uint32_t i)
{
    return zab_is_voter(z, i) ||
           (z->count_observers && (z->flags[i] & (ZAB_MEMBER_OBSERVER | ZAB_MEMBER_PENDING_OBSERVER)));
}

/* Observers get only committed entries (INFORM); voters and joiners (in no
 * membership: the leader must see them up to date) get every proposal. */
static inline bool zab_gets_inform_only(const struct zab *z, uint32_t i)
{
    return !zab_counts_in_quorum(z, i) &&
           (z->flags[i] & (ZAB_MEMBER_OBSERVER | ZAB_MEMBER_PENDING_OBSERVER)) != 0;
}

/* A member that learns from a leader: a follower or an observer. */
static inline bool zab_is_learner(const struct zab *z)
{
    return z->role == ZAB_FOLLOWING || z->role == ZAB_OBSERVING;
}

/* zab_ready.serving: an established leader, or a learner whose leader is. */
static inline bool zab_serving(const struct zab *z)
{
    if (z->role == ZAB_LEADING)
        return z->established;
    return zab_is_learner(z) && z->phase == ZAB_PHASE_BROADCAST && z->leader_uptodate;
}

/* zab.c */
void zab_logf(struct zab *z, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void zab_send(struct zab *z, struct zab_message *msg);
void zab_write_epochs(struct zab *z);
int zab_peer_index(const struct zab *z, uint32_t id);
bool zab_link_is_down(const struct zab *z, uint32_t id);
void zab_become_looking(struct zab *z, const char *why);
void zab_become_leader(struct zab *z);
void zab_become_follower(struct zab *z, uint32_t leader, uint32_t round);
void zab_commit_to(struct zab *z, uint64_t zxid);
uint64_t zab_prng_next(struct zab *z);

/* zab_membership.c */
int zab_membership_check(const struct zab_membership *m);
void zab_membership_rebuild(struct zab *z);
int zab_membership_add_joiner(struct zab *z, uint32_t id);
bool zab_quorum(const struct zab *z, const bool *has);
bool zab_quorum_active(const struct zab *z, const bool *has);
uint64_t zab_membership_commit_point(const struct zab *z, const uint64_t *durable, const bool *known);
void zab_membership_scan(struct zab *z);
void zab_membership_adopt(struct zab *z, const struct zab_membership *m);
void zab_membership_settle(struct zab *z);

/* zab_log.c */
uint64_t zab_log_last(const struct zab *z);
ptrdiff_t zab_log_find(const struct zab *z, uint64_t zxid); /* index or -1 */
size_t zab_log_first_from(const struct zab *z, uint64_t zxid); /* first index with zxid >= zxid */
bool zab_log_contains(const struct zab *z, uint64_t zxid);  /* entry or the base */
int zab_log_append(struct zab *z, uint64_t zxid, const uint8_t *data, uint32_t size, uint8_t kind);
void zab_log_truncate(struct zab *z, uint64_t zxid);
void zab_log_reset(struct zab *z, uint64_t base_zxid);
void zab_log_compact(struct zab *z, uint64_t zxid);
uint64_t zab_log_prev(const struct zab *z, size_t index);
uint32_t zab_log_epoch_summary(const struct zab *z, uint64_t *out, uint32_t max);
uint64_t zab_log_last_of_epoch(const struct zab *z, uint32_t epoch, bool *known);

/* zab_election.c */
void zab_election_start(struct zab *z);
void zab_election_tick(struct zab *z);
void zab_election_step(struct zab *z, const struct zab_message *m);
void zab_election_answer(struct zab *z, const struct zab_message *m);
void zab_election_answer_observer(struct zab *z, const struct zab_message *m);
void zab_election_answer_removed(struct zab *z, const struct zab_message *m);
void zab_election_peer_connected(struct zab *z, uint32_t id);
void zab_election_peer_disconnected(struct zab *z, uint32_t id);

/* zab_sync.c */
void zab_sync_leader_start(struct zab *z);
void zab_sync_leader_tick(struct zab *z);
void zab_sync_leader_step(struct zab *z, const struct zab_message *m);
void zab_sync_follower_start(struct zab *z);
void zab_sync_follower_tick(struct zab *z);
void zab_sync_follower_step(struct zab *z, const struct zab_message *m);
void zab_sync_follower_resend_info(struct zab *z, uint32_t id);
void zab_sync_offer_snapshot(struct zab *z);
void zab_sync_follower_persisted(struct zab *z);
void zab_sync_leader_persisted(struct zab *z);
void zab_sync_leader_resend(struct zab *z, struct zab_peer *p);

/* zab_broadcast.c */
void zab_broadcast_ship(struct zab *z, struct zab_peer *p);
void zab_broadcast_ship_all(struct zab *z);
void zab_broadcast_leader_step(struct zab *z, const struct zab_message *m);
void zab_broadcast_leader_tick(struct zab *z);
void zab_broadcast_leader_advance_commit(struct zab *z);
void zab_broadcast_send_commit(struct zab *z);
void zab_broadcast_follower_step(struct zab *z, const struct zab_message *m);
void zab_broadcast_follower_tick(struct zab *z);
void zab_broadcast_follower_ack(struct zab *z);
void zab_broadcast_leader_heartbeat(struct zab *z);
void zab_broadcast_follower_heartbeat(struct zab *z);
bool zab_broadcast_leader_has_quorum(const struct zab *z);

/* A log entry's copy (zab_config.entry_alloc). */
static inline void *zab_entry_alloc(const struct zab *z, size_t size)
{
    return z->entry_alloc ? z->entry_alloc(z->entry_context, size) : malloc(size);
}

static inline void zab_entry_free(const struct zab *z, void *data)
{
    if (z->entry_free)
        z->entry_free(z->entry_context, data);
    else
        free(data);
}

#endif
