/*
 * zab: the replication protocol of znodefs as a pure, deterministic state
 * machine (ZooKeeper Atomic Broadcast: election, discovery, synchronisation,
 * broadcast).  The design notes and numbered invariants are at the top of
 * zab.c.
 *
 * The core reads no clock, no random source, no socket and no disk.  A driver
 * (the daemon's adapter, or the simulator) feeds it events and carries out the
 * actions it asks for, in the style of etcd's raft RawNode:
 *
 *     zab_tick(z)                 one tick of the driver's clock passed
 *     zab_step(z, &msg)           a message arrived from a peer
 *     zab_peer_connected(z, id)   the link to a peer came up (optional)
 *     zab_peer_disconnected(z, id) the link to a peer closed (optional, but
 *                                 without it a dead leader costs syncLimit)
 *     zab_propose(z, data, n)     (leader) replicate an opaque entry
 *     zab_persisted(z, zxid)      the store made the log durable up to zxid
 *     zab_snapshot_offer(z, ...)  a snapshot the core asked for (ready.snapshot_wanted)
 *     if (zab_has_ready(z)) { zab_ready(z, &rd); carry out rd in order; zab_advance(z); }
 *
 * Between zab_ready() and zab_advance() the driver must not call any other
 * function of the same zab object: the ready batch borrows the core's memory.
 *
 * Proposals are answered by ready.committed, never by zab_propose alone.  When
 * a leader loses its role (ready.role_changed), its uncommitted proposals
 * may still commit under the next leader or vanish: the driver fails the
 * pending client requests with a connection loss, as ZooKeeper does, and
 * matches later commits by zxid.  The core keeps its log in memory until the
 * driver snapshots its applied state and calls zab_compact().
 *
 * zxid = epoch in the high 32 bits, counter in the low 32.  Every new leader
 * has a new epoch; counter 0 of an epoch never names an entry.
 *
 * Errors are negative ints.  ZAB_ENOMEM, ZAB_ECORRUPT and ZAB_ETOOBIG have the
 * values of ZN_NOMEMORY, ZN_CORRUPT and ZN_TOOBIG of include/znode/errors.h so
 * the daemon can pass them through; the others are in a range of their own.
 * (The core does not include that header: it depends on libc alone.)
 */
#ifndef ZAB_H
#define ZAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zab_message.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ZAB_ENOMEM = -901,     /* allocation failed */
    ZAB_ECORRUPT = -904,   /* a message does not decode */
    ZAB_ETOOBIG = -906,    /* over a named size limit */
    ZAB_ENOTLEADER = -950, /* zab_propose on a member that is not an established leader */
    ZAB_EBUSY = -951,      /* too many uncommitted proposals (ZAB_INFLIGHT_MAX) */
    ZAB_EINVAL = -952,     /* bad configuration or argument */
    ZAB_ENOQUORUM = -953,  /* zab_propose_config: a quorum of the new voters is not synced */
    ZAB_ESHARED = -954,    /* zab_persist_failed: another member may hold the entries */
};

/* Returns a static message for a ZAB_E* code, or "unknown error". */
const char *zab_strerror(int code);

#define ZAB_INFLIGHT_MAX 4096u           /* proposed but not committed, on a leader */
#define ZAB_LOG_ENTRIES_MAX (1u << 24)   /* entries held in memory (compact with zab_compact) */
#define ZAB_OUTBOX_MAX 8192u             /* messages per ready batch; beyond, dropped (the protocol retransmits) */
/* Proposals shipped to one peer beyond the point it has reported durable: a
 * window, so a member catching up receives a stream while it writes, not one
 * batch per report (ZooKeeper queues the whole DIFF at once).  The bytes bound
 * keeps large entries from filling the transport's queue; one entry is always
 * allowed.  The entry bound is at least the leader's ZAB_INFLIGHT_MAX, so a
 * follower in step with the leader is never held back by it. */
#define ZAB_SEND_WINDOW_ENTRIES 4096u
#define ZAB_SEND_WINDOW_BYTES (16u << 20)

#define ZAB_OBSERVERS_MAX ZAB_MEMBERSHIP_OBSERVERS_MAX /* non-voting members of one ensemble */

/* ZAB_OBSERVING: a non-voting member (zoo.cfg's server.N=...:observer) that
 * learns the committed history from the leader; an observer that lost its
 * leader is ZAB_LOOKING again, and it never leads. */
enum zab_role { ZAB_LOOKING = 0, ZAB_FOLLOWING = 1, ZAB_LEADING = 2, ZAB_OBSERVING = 3 };

/* The phase inside a role; a leader serves proposals only in ZAB_PHASE_BROADCAST. */
enum zab_phase {
    ZAB_PHASE_ELECTION = 0,  /* LOOKING */
    ZAB_PHASE_DISCOVERY = 1, /* epoch being agreed (FOLLOWERINFO/NEWEPOCH/ACKEPOCH) */
    ZAB_PHASE_SYNC = 2,      /* history being synchronised (SYNC, NEWLEADER) */
    ZAB_PHASE_BROADCAST = 3, /* leader established / follower acked NEWLEADER */
};

/* ZAB_ENTRY_CONFIG: a membership change (zab_propose_config); its data is a
 * struct zab_membership in zab_membership_encode's bytes.  The driver stores
 * and restores the kind with the entry, and does not apply a CONFIG entry
 * to its data: ready.config_changed tells it when the membership changed. */
enum zab_entry_kind { ZAB_ENTRY_DATA = 0, ZAB_ENTRY_CONFIG = 1 };

/* A log entry.  data is opaque to the core, except in CONFIG entries. */
struct zab_entry {
    uint64_t zxid;
    uint32_t size;
    uint8_t *data;
    uint8_t kind;  /* enum zab_entry_kind; 0 = an opaque entry */
};

/* What the driver restored from its store at start (all zero for a new member). */
struct zab_restored {
    uint32_t accepted_epoch;
    uint32_t accepted_leader;        /* who proposed accepted_epoch (0 if none) */
    uint32_t current_epoch;
    uint64_t snapshot_zxid;          /* the applied state the driver loaded is at this zxid */
    const struct zab_entry *entries; /* durable log entries after snapshot_zxid, in order; copied */
    size_t n_entries;
    /* The active membership the driver persisted from ready.config (copied);
     * NULL: the static one of zab_config (version 0). */
    const struct zab_membership *membership;
};

/* Logging is injected so that simulation output is deterministic. */
typedef void (*zab_log_fn)(void *context, uint32_t id, const char *message);

struct zab_config {
    uint32_t id;                            /* my id; must be in voters or observers */
    const uint32_t *voters;                 /* copied; ids > 0, distinct */
    size_t n_voters;                        /* 1..ZAB_MEMBERS_MAX */
    uint32_t heartbeat_ticks;               /* PING and notification resend interval (>= 1) */
    uint32_t init_limit_ticks;              /* discovery+sync must finish within this (initLimit) */
    uint32_t sync_limit_ticks;              /* silence after which a peer is considered lost (syncLimit) */
    /* Discovery (a leader gathering a quorum of FOLLOWERINFO and ACKEPOCH, a
     * follower waiting for its leader's NEWEPOCH and SYNC) must finish within
     * this, else the member looks again.  Discovery moves no data, only a
     * few round trips, so it needs no initLimit: waiting initLimit on a
     * leader that will never answer (it died before the link came up, or it
     * is collecting a quorum that is following someone else) was a 20 s
     * outage.  0: min(init_limit_ticks, 3 x heartbeat_ticks + 2).  The sync
     * that follows (SNAP, DIFF, the NEWLEADER ack) keeps initLimit. */
    uint32_t discovery_limit_ticks;
    uint64_t prng_state;                    /* seeds the jitter of election resends */
    const struct zab_restored *restored;    /* may be NULL: a fresh member */
    zab_log_fn log;                         /* may be NULL */
    void *log_context;
    /* Where the log entries' copies are allocated (zab_log_append) and
     * freed, on the caller's thread, roughly in zxid order (compaction frees
     * the oldest first).  NULL: malloc and free.  The driver gives them an
     * allocator kept out of its main heap (lib/fifo_arena.h). */
    void *(*entry_alloc)(void *ctx, size_t size);
    void (*entry_free)(void *ctx, void *data);
    void *entry_context;
    /* TEST ONLY: if nonzero, replaces the quorum size.  It exists so that the
     * simulator can prove it catches a broken core (a quorum of one lets two
     * leaders of one epoch and lost commits happen).  Never set it elsewhere. */
    uint32_t test_only_quorum_override;
    /* Observers (non-voting members): never counted in any quorum, never
     * leaders; they sync from the leader and receive each committed entry.
     * I am an observer when my id is among them.  NULL/0: none. */
    const uint32_t *observers;              /* copied; ids > 0, distinct from each other and the voters */
    size_t n_observers;                     /* 0..ZAB_OBSERVERS_MAX */
    /* TEST ONLY: if true, the leader treats observers as followers: it
     * ships them proposals before they commit and counts their acks (and
     * their epoch and NEWLEADER acks) in quorums.  A broken core the
     * simulator must catch.  Never set it elsewhere. */
    bool test_only_count_observers;
    /* A member joining a running ensemble: my id need not be in the lists
     * (the ensemble's current membership).  Until a membership naming me is
     * active, I count nowhere, never lead, and learn from the leader as an
     * observer does (but receive every proposal, so the leader sees me up
     * to date before zab_propose_config counts me). */
    bool joining;
    /* TEST ONLY: if true, a CONFIG entry commits on a quorum of the active
     * voters alone (ZooKeeper's rule broken): the simulator must catch it.
     * Never set it elsewhere. */
    bool test_only_config_on_old_quorum;
    /* TEST ONLY: if true, zab_peer_disconnected does nothing, as before
     * issue 13: a dead leader is noticed after syncLimit of silence.  The
     * simulator's failover bound must catch it.  Never set it elsewhere. */
    bool test_only_ignore_link_close;
    /* TEST ONLY: if true, the core trusts stale state as before issue 13:
     * a LOOKING member leads on a quorum of members that say they follow it,
     * whatever leadership they follow (a restarted leader takes the votes of
     * its old followers for its own), and a follower does not see that its
     * leader restarted from the leader's LOOKING votes.  The simulator's
     * failover bound must catch it.  Never set it elsewhere. */
    bool test_only_lead_on_stale_votes;
};

/* The actions of one ready batch, to be carried out in this order.  Every
 * pointer is borrowed from the core until zab_advance(). */
struct zab_ready {
    /* 1. Log truncation: drop every log entry with zxid > truncate_to, durably,
     *    before anything else; outstanding appends of dropped entries must be
     *    cancelled and never reported by zab_persisted. */
    bool truncate;
    uint64_t truncate_to;
    /* 2. Snapshot to install (SNAP sync): replace the applied state and the
     *    whole log with it, durably, before the appends below. */
    bool install_snapshot;
    uint64_t snapshot_zxid;
    const uint8_t *snapshot_data;
    uint32_t snapshot_size;
    /* 3. Entries to append to the log, in order.  Durability may come later:
     *    report it with zab_persisted(), in order. */
    const struct zab_entry *entries;
    size_t n_entries;
    /* 4. Epochs to write durably (all three values, synchronously) before
     *    any message of this batch is sent. */
    bool write_epochs;
    uint32_t accepted_epoch;
    uint32_t accepted_leader;
    uint32_t current_epoch;
    /* 4b. The active membership changed (a CONFIG entry committed, or a
     *    SYNC told us a newer one): persist it durably before the messages
     *    below (it is zab_restored.membership at the next start), update the
     *    transport's peers and /zookeeper/config.  removed: this member is in
     *    neither list and was not joining: it has stopped for good (it
     *    takes no part any more, but still answers election notifications
     *    with the membership that removed it, so that members that missed
     *    its commit learn it): the driver stops serving clients and keeps
     *    the transport up until the operator stops it.  Restarted with that
     *    membership restored, it starts removed. */
    bool config_changed;
    const struct zab_membership *config;
    bool removed;
    /* 5. Messages to send. */
    const struct zab_message *messages;
    size_t n_messages;
    /* 6. Entries newly committed, in zxid order: apply them. */
    const struct zab_entry *committed;
    size_t n_committed;
    /* 7. The core wants a snapshot of the applied state (after applying 6):
     *    call zab_snapshot_offer() before the next zab_ready(). */
    bool snapshot_wanted;
    /* Role change, for the driver's information (the daemon forwards writes
     * to the leader, stops serving writes while not in broadcast, ...). */
    bool role_changed;
    enum zab_role role;
    enum zab_phase phase;
    uint32_t leader_id;  /* 0 when none */
    uint32_t epoch;      /* the epoch of the current leadership, 0 when none */
    /* Clients may be served: an established leader, or a learner in
     * broadcast whose leader is established (it heard a COMMIT of the epoch
     * after its ACKNEWLEADER, ZooKeeper's UPTODATE).  A learner that acked
     * NEWLEADER is in broadcast (it takes proposals and acks them) before
     * that: its leader may still wait for other members' acks, and can
     * propose nothing until it has a quorum of them. */
    bool serving;
};

struct zab;

/* Creates a member.  config and everything it points to are copied.
 * Returns 0 and sets *out, or ZAB_EINVAL (bad configuration, restored entries
 * out of order) or ZAB_ENOMEM. */
int zab_new(const struct zab_config *config, struct zab **out);

/* Frees a member and everything it owns.  NULL is allowed. */
void zab_free(struct zab *z);

/* One tick passed.  Drives resends, heartbeats, and loss detection. */
void zab_tick(struct zab *z);

/* A message arrived (msg copied as needed; borrowed for the call).  Messages
 * not addressed to this member, from unknown members, or stale are ignored:
 * the network may lose, duplicate, delay and reorder. Returns 0. */
int zab_step(struct zab *z, const struct zab_message *msg);

/* The driver's link to member id came up: messages to it are delivered from
 * now on.  Optional (the core resends on its own timers), but a LOOKING
 * member sends it its vote at once, and a follower still waiting for its
 * leader's NEWEPOCH resends FOLLOWERINFO: without this, the first messages
 * of a start, sent before the links were up, wait for a resend interval. */
void zab_peer_connected(struct zab *z, uint32_t id);

/* The driver's link to member id closed (the peer reset it or sent EOF: it
 * died, restarted, or the connection broke).  Optional, as
 * zab_peer_connected, but it is what makes failover fast: a follower or
 * observer whose leader's link closes looks at once (as ZooKeeper's
 * follower does when its socket to the leader closes) instead of waiting
 * out syncLimit; a leader that no longer has the links of a quorum stops
 * leading at once; a LOOKING member forgets the peer's vote of this round.
 * Until zab_peer_connected(z, id), the core counts id as gone: a driver
 * that reports closes must report links coming up too. */
void zab_peer_disconnected(struct zab *z, uint32_t id);

/* On an established leader: appends data (copied) as the next entry and
 * replicates it.  Returns the zxid (> 0) or ZAB_ENOTLEADER, ZAB_EBUSY,
 * ZAB_ETOOBIG (size > ZAB_ENTRY_BYTES_MAX) or ZAB_ENOMEM.  The entry counts as
 * acknowledged only once it comes back in ready.committed. */
int64_t zab_propose(struct zab *z, const uint8_t *data, uint32_t size);

/* The zxid the next successful zab_propose() will return, so that the
 * daemon's prep stage can stamp its transaction header before proposing;
 * 0 when this member is not an established leader. */
uint64_t zab_next_zxid(const struct zab *z);

/* On an established leader: proposes the membership (voters, observers:
 * copied) as a CONFIG entry, whose zxid becomes its version.  It commits on
 * a quorum of the active voters AND a quorum of the new ones, and is then
 * active everywhere (ready.config_changed).  from_version: 0, or the version
 * the change is meant for (ZooKeeper's reconfig -v): if it is not the active
 * one, ZAB_EINVAL.  Returns the zxid, or ZAB_ENOTLEADER; ZAB_EBUSY (a CONFIG
 * entry is not committed yet, or the window is full); ZAB_EINVAL (no voter,
 * an id 0 or listed twice, over ZAB_MEMBERS_MAX/ZAB_OBSERVERS_MAX, a stale
 * from_version); ZAB_ENOQUORUM (a quorum of the new voters has not synced
 * with this leader and been heard within syncLimit). */
int64_t zab_propose_config(struct zab *z, const uint32_t *voters, size_t n_voters,
                           const uint32_t *observers, size_t n_observers, uint64_t from_version);

/* As zab_propose_config, with attachment (attachment_len bytes, copied; may
 * be NULL when 0) stored after the membership in the CONFIG entry's data and
 * replicated with it, opaque to the core: the daemon carries there what ids
 * alone do not say (ZooKeeper's server strings, the requesting client).
 * zab_membership_decode_prefix tells where it starts.  Also ZAB_ETOOBIG when
 * the whole entry passes ZAB_ENTRY_BYTES_MAX. */
int64_t zab_propose_config_attached(struct zab *z, const uint32_t *voters, size_t n_voters,
                                    const uint32_t *observers, size_t n_observers,
                                    uint64_t from_version, const uint8_t *attachment,
                                    uint32_t attachment_len);

/* The store made every log entry up to zxid durable.  Reports for zxids not
 * in the current log (truncated since) are ignored. */
void zab_persisted(struct zab *z, uint64_t zxid);

/* The store could not make the log durable past the persisted point (a full
 * disk, an I/O error): the driver asks to withdraw every entry after it.
 * Allowed only when no other member can hold any of them and none has
 * committed: a leader that has shipped none of them (a single voter ships
 * nothing before it commits; observers get only committed entries).  Then
 * they leave the log, never commit, and their zxids are never named again
 * (the next proposal skips them: invariant 1 holds across the gap); the
 * driver truncates its store after the persisted point and fails the writes
 * they carried.  Returns 0, or ZAB_ESHARED when another member may hold one
 * (or one committed): the member cannot take back what others may commit,
 * and the driver must stop rather than serve from a log that lacks it. */
int zab_persist_failed(struct zab *z);

/* Answers ready.snapshot_wanted: the applied state at zxid (<= the last
 * committed zxid the driver applied), data copied.  Returns 0, ZAB_EINVAL
 * (zxid not applied or already compacted past the log) , ZAB_ETOOBIG or ZAB_ENOMEM. */
int zab_snapshot_offer(struct zab *z, uint64_t zxid, const uint8_t *data, uint32_t size);

/* A learner's driver is receiving its leader's snapshot out of band (the
 * driver's SNAP of a tree too large for one message: SYNC then carries only
 * what names it, and the driver holds the leader's messages until the file
 * is in).  Called as bytes arrive from `from`: while this learner has acked
 * the leader's epoch and is not yet synced, the leader is syncing it, so the
 * few heartbeats discovery allows give way to initLimit, which bounds the
 * whole sync (as ZooKeeper's initLimit bounds a snapshot's transfer), and the
 * leader counts as heard.  Ignored otherwise. */
void zab_snapshot_transfer_progress(struct zab *z, uint32_t from);

/* The driver snapshotted its applied state at zxid: drop log entries up to
 * zxid from memory (they are then served to laggards by SNAP).  zxid above
 * the applied point is clamped to it.  The entries leave the log at once;
 * their buffers wait for zab_collect, which frees as many as the driver
 * asks: freeing the 50-100k entries of one snapshot interval in one call
 * took 7-36 ms of CPU on the driver's loop, a stall for every client of the
 * member. */
void zab_compact(struct zab *z, uint64_t zxid);

/* Frees up to max buffers of entries compaction dropped (oldest first);
 * returns how many are left.  zab_collect(z, 0) only counts them.  The
 * driver calls it with a small max once per turn of its loop, not per event:
 * there can be hundreds of events in a turn, and right after a fork every
 * free writes to a write-protected page (a fault each).  zab_free frees the
 * rest. */
size_t zab_collect(struct zab *z, size_t max);

bool zab_has_ready(const struct zab *z);
void zab_ready(struct zab *z, struct zab_ready *out);
void zab_advance(struct zab *z);

/* Entries in the log above the committed zxid: on a leader, its proposals
 * in flight (zab_propose refuses at ZAB_INFLIGHT_MAX).  Cheaper than
 * zab_status, which copies the membership: the driver asks before every
 * proposal. */
size_t zab_uncommitted(const struct zab *z);

/* Read-only status, for the driver, the simulator's invariants and tests. */
struct zab_status {
    uint32_t id;
    enum zab_role role;
    enum zab_phase phase;
    uint32_t leader_id;
    uint32_t epoch;           /* epoch of the current leadership (0 if none) */
    bool serving;             /* as zab_ready.serving */
    uint32_t accepted_epoch;
    uint32_t current_epoch;
    uint64_t last_zxid;       /* last entry in the log (or the snapshot base) */
    uint64_t persisted_zxid;  /* durable prefix of the log */
    uint64_t committed_zxid;  /* known committed */
    uint64_t applied_zxid;    /* handed to the driver in ready.committed and advanced */
    uint32_t election_round;
    bool observer;            /* not a voter of the active membership (never votes, never leads) */
    struct zab_membership config; /* the active membership */
    bool reconfig_pending;    /* a CONFIG entry above it is in the log, not committed */
    uint64_t pending_version; /* its zxid, when reconfig_pending */
    bool removed;             /* stopped for good: not in the active membership */
    uint64_t log_entries;     /* entries held in memory (zab_compact drops them) */
    uint64_t retired_entries; /* dropped ones whose buffers are not freed yet (zab_collect) */
    uint64_t snapshot_bytes;  /* the copy of the last zab_snapshot_offer still held */
};
void zab_status(const struct zab *z, struct zab_status *out);

static inline uint32_t zab_zxid_epoch(uint64_t zxid) { return (uint32_t)(zxid >> 32); }
static inline uint32_t zab_zxid_counter(uint64_t zxid) { return (uint32_t)zxid; }
static inline uint64_t zab_zxid_make(uint32_t epoch, uint32_t counter)
{
    return ((uint64_t)epoch << 32) | counter;
}

const char *zab_role_name(enum zab_role role);
const char *zab_phase_name(enum zab_phase phase);

#ifdef __cplusplus
}
#endif
#endif
