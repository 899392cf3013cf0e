/*
 * What the files of the ensemble driver share (the driver's design notes
 * and invariants are at the top of ensemble.c; its public face is
 * ensemble.h).  Not for use outside the driver.
 */
#ifndef ZNODED_ENSEMBLE_INTERNAL_H
#define ZNODED_ENSEMBLE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ensemble.h"
#include "fifo_arena.h"
#include "jute.h"
#include "server.h"
#include "store_snapfile.h"
#include "zab.h"
#include "zkconfig.h"

struct config;
struct request;
struct transport;
struct tls_server;

/* Channels of the peer transport: byte 0 of every frame. */
enum {
    CHANNEL_ZAB = 'Z',       /* a core message */
    CHANNEL_FORWARD = 'F',   /* member -> leader: a client's write */
    CHANNEL_TOUCH = 'T',     /* member -> leader: sessions that showed activity */
    CHANNEL_SYNC = 'S',      /* member -> leader: a client's sync */
    CHANNEL_SYNC_OK = 'O',   /* leader -> member: sync answered at a zxid */
    CHANNEL_DIGEST = 'D',    /* leader -> member: its tree's digest at a zxid it applied */
    CHANNEL_SNAP_REQ = 'Q',  /* member -> leader: bytes of a snapshot file (snapxfer.c) */
    CHANNEL_SNAP_DATA = 'P', /* leader -> member: those bytes */
};

/* SNAP sync from the leader's snapshot file (snapxfer.c). */
struct snapxfer_ref {
    uint64_t zxid;
    uint64_t len;  /* the blob's bytes */
    uint32_t crc;  /* the blob's checksum, as its file's header has it */
};
struct snapxfer_held;
struct snapxfer {
    /* leader: the file being served */
    int src_fd;
    uint64_t src_zxid;
    uint32_t src_idle_ticks;
    bool offer_pending;  /* the core asked while the newest snapshot was not recorded yet */
    /* The core keeps its log from this snapshot's zxid while a member may be
     * fetching it (0: none): compacted past it, the entries that must follow
     * the file would be gone, and a member whose transfer outlasts the time
     * between two snapshots would be sent a SNAP again, for ever. */
    uint64_t pin_zxid;
    uint32_t pin_idle_ticks;
    /* learner: the file being received, and the leader's core messages held */
    bool active;
    uint32_t from;
    uint64_t zxid, len;
    uint32_t crc;
    uint64_t received, requested;
    uint64_t started_ms, progress_ms;
    struct store_snapfile_out out;
    struct snapxfer_held *held_head, *held_tail;
    size_t held_bytes;
    struct tree *tree; /* loaded from the received file, until the core's SYNC installs it */
};

/* Digests of the tree after each of the last DIGEST_RING applied entries,
 * to compare with the leader's (check_digest). */
#define DIGEST_RING 8192
struct digest_mark {
    uint64_t zxid;
    uint64_t digest;
};

/* After a reconfig commits, the servers it removed stay transport peers for
 * this many syncLimits: time for the COMMIT to reach them and for their
 * votes to be answered with the membership that removed them. */
#define ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS 4

enum forward_kind { FORWARD_REQUEST = 0, FORWARD_CONNECT = 1, FORWARD_CLOSE = 2 };

#define TOUCH_MAX_SESSIONS 65536

struct ensemble {
    struct server *srv;
    struct zab *zab;
    struct zn_fifo zab_entries; /* the core's log entries (zab_config.entry_alloc) */
    struct transport *tp;           /* NULL when standalone: no peers */
    bool standalone;                /* config_standalone: a single voter of its own */
    struct tls_server *quorum_tls; /* sslQuorum / portUnification; NULL: plain */
    uv_timer_t tick;
    /* A client's write or sync was submitted: the core's ready batch is
     * processed once per loop turn, not once per request (ens_ready_later) */
    uv_idle_t ready_idle;
    bool ready_later;
    uint32_t my_id;
    enum zab_role role;
    enum zab_phase phase;
    uint32_t leader_id;
    uint32_t epoch;
    bool serving;
    uint64_t tick_count;
    uint32_t touch_every_ticks;
    uint64_t last_touch_ms;
    uint64_t forward_timeout_ms;
    /* zxids appended to the store and not yet reported durable, in order */
    uint64_t *appended;
    size_t appended_head, appended_count, appended_cap;
    /* Entries the store's queue had no room for (ZN_THROTTLEDOP), in zxid
     * order, appended after its next batch (log_append, log_retry_held):
     * a burst of large writes waits for the disk, never stops the member. */
    struct held_entry *held_head, *held_tail;
    size_t held_count;
    /* leader: writes waiting for room in the core's window */
    struct request *backlog_head, *backlog_tail;
    size_t backlog_count;
    /* syncs waiting for the tree to reach their target */
    struct request *syncs;
    struct jute_writer out;
    uint8_t *msg_buf;               /* encoded core messages, reused */
    size_t msg_cap;
    struct zn_arena scratch;
    /* dynamic reconfiguration (see "reconfig" below) */
    uint64_t config_applied_zxid;   /* the last CONFIG entry applied (not a tree txn) */
    uint64_t config_text_zxid;      /* the CONFIG entry config_text came with */
    char *config_text;              /* its server lines, as /zookeeper/config holds them */
    bool removed;                   /* a reconfig left this member out: it serves no more */
    bool unpark_pending;            /* serving again: parked connections go on (ensemble_turn_done) */
    struct digest_mark digests[DIGEST_RING]; /* ring, newest at digest_next - 1 */
    size_t digest_next;
    uint64_t last_applied_zxid;
    bool config_ids_only;           /* the active config came without its server lines (SYNC or
                                     * a vote): refreshed when its CONFIG entry reaches the log */
    bool peers_dirty;               /* a transport_add_peer to retry at the next tick */
    uint64_t prune_at_tick;         /* drop the transport peers that left, at this tick (0: none) */
    uint64_t sync_limit_ticks;
    struct snapxfer xfer;
};

struct held_entry {
    struct held_entry *next;
    uint64_t zxid;
    size_t len;
    uint8_t data[]; /* as the store keeps it (a CONFIG entry with its magic) */
};

static inline struct ensemble *ens_of(const struct server *srv) { return srv->ens; }

/* A CONFIG entry in the store: this prefix, then the core's data.  A txn
 * starts with its session id, and no server makes this one (its low bytes
 * are not a time a server could start at); the membership that follows must
 * also decode. */
static const uint8_t CONFIG_ENTRY_MAGIC[8] = ENSEMBLE_CONFIG_ENTRY_MAGIC;
/* Attachment layout (jute): session id (long), cxid (int), text (buffer). */
#define RECONFIG_TEXT_MAX_BYTES ZKCONFIG_TEXT_MAX_BYTES


struct config_attachment {
    int64_t session_id;
    int32_t cxid;
    const char *text; /* NUL-terminated copy in the arena */
};

/* the ready loop, sending, the tick (ensemble.c) */
void ens_fatal(const char *what, int rc);
void ens_send_bytes(struct ensemble *e, uint32_t to, const uint8_t *data, size_t len);
void ens_close_all_clients(struct server *srv, const char *why);
void ens_process_ready(struct ensemble *e);
void ens_ready_later(struct ensemble *e);
void ens_appended_truncate(struct ensemble *e, uint64_t keep);
void ens_on_tick(uv_timer_t *t);

/* applying committed entries, syncs, digests, installing a snapshot (ensemble_apply.c) */
void ens_tree_event(void *ctx, int32_t event_type, const char *path);
void ens_finish_syncs(struct ensemble *e);
void ens_apply_committed(struct ensemble *e, const struct zab_entry *entry);
void ens_digest_record(struct ensemble *e, uint64_t zxid);
void ens_send_digest(struct ensemble *e);
void ens_check_digest(struct ensemble *e, uint32_t from, struct jute_reader *rd);
void ens_install_snapshot(struct ensemble *e, uint64_t zxid, const uint8_t *data, uint32_t size);
void ens_release_heap(const char *what);

/* SNAP sync from the leader's snapshot file (snapxfer.c) */
void ens_snapxfer_init(struct ensemble *e);
void ens_snapxfer_free(struct ensemble *e);
bool ens_snapxfer_parse_ref(const uint8_t *data, size_t size, struct snapxfer_ref *out);
bool ens_snapxfer_offer(struct ensemble *e);
void ens_snapxfer_serve(struct ensemble *e, uint32_t from, struct jute_reader *rd);
bool ens_snapxfer_hold(struct ensemble *e, uint32_t from, const uint8_t *frame, size_t len);
bool ens_snapxfer_step(struct ensemble *e, uint32_t from, const uint8_t *frame, size_t len);
bool ens_snapxfer_start(struct ensemble *e, uint32_t from, const struct snapxfer_ref *ref,
                        const uint8_t *frame, size_t len);
void ens_snapxfer_receive(struct ensemble *e, uint32_t from, struct jute_reader *rd);
void ens_snapxfer_abandon(struct ensemble *e, const char *why);
void ens_snapxfer_tick(struct ensemble *e);
struct tree *ens_snapxfer_take_tree(struct ensemble *e, uint64_t zxid);
uint64_t ens_snapxfer_compact_bound(const struct ensemble *e, uint64_t zxid);

/* the leader: prepare, propose, the backlog (ensemble_propose.c) */
void ens_leader_submit(struct ensemble *e, struct request *r);
void ens_drain_backlog(struct ensemble *e);

/* member to leader: forwarded writes, touches, syncs; frames from peers (ensemble_forward.c) */
void ens_on_peer_frame(void *ctx, uint32_t from, const uint8_t *frame, size_t len);
void ens_on_peer_link(void *ctx, uint32_t peer, bool connected);
void ens_send_touches(struct ensemble *e);
void ens_expire_forwards(struct ensemble *e);

/* reconfig: CONFIG entries, the new membership, peers (ensemble_reconfig.c) */
void ens_config_entry_seen(struct ensemble *e, const struct zab_entry *entry);
void ens_config_activate(struct ensemble *e, const struct zab_membership *m, bool removed);
void ens_config_entry_applied(struct ensemble *e, const struct zab_entry *entry);
void ens_peers_reconcile(struct ensemble *e, const struct config *cfg, bool prune);
int ens_config_entry_parse(struct zn_arena *arena, const uint8_t *data, size_t len,
                              struct zab_membership *m, struct config_attachment *out);
int ens_leader_reconfig(struct ensemble *e, struct request *r, uint64_t zxid);

#endif
