/*
 * The messages members of an ensemble exchange, as C structs, and their
 * encoding to bytes (big-endian, jute-like: fixed-width integers, buffers as
 * a 32-bit length then the bytes).  The decoder checks every length against
 * what remains and against the named limits, so it can be handed any bytes.
 *
 * Frame: type u8, version u8 (ZAB_WIRE_VERSION), from u32, to u32, then the body
 * of the type.  The driver's transport adds its own length prefix.
 */
#ifndef ZAB_MESSAGE_H
#define ZAB_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZAB_WIRE_VERSION 2 /* 2: PROPOSAL carries the entry kind, SYNC the membership */
#define ZAB_MEMBERS_MAX 15u                    /* voting members of one ensemble */
/* One entry: a txn, whose data jute.maxbuffer bounds (the server refuses a
 * jute.maxbuffer whose txns could pass this: CONFIG_JUTE_MAX_BUFFER_MAX). */
#define ZAB_ENTRY_BYTES_MAX (32u << 20)
#define ZAB_SNAPSHOT_BYTES_MAX (64u << 20)     /* one SNAP transfer */
#define ZAB_EPOCH_SUMMARY_MAX 16u              /* epochs described in an ACKEPOCH */
#define ZAB_MESSAGE_HEADER_BYTES 10u
#define ZAB_MEMBERSHIP_OBSERVERS_MAX 16u      /* = ZAB_OBSERVERS_MAX of zab.h */
#define ZAB_MEMBERSHIP_BYTES_MAX (8u + 4u + 4u * ZAB_MEMBERS_MAX + 4u + 4u * ZAB_MEMBERSHIP_OBSERVERS_MAX)
#define ZAB_MESSAGE_BYTES_MAX (ZAB_SNAPSHOT_BYTES_MAX + 64u)

enum zab_message_type {
    ZAB_MSG_NOTIFICATION = 1, /* election vote */
    ZAB_MSG_FOLLOWERINFO = 2, /* follower -> leader: my acceptedEpoch */
    ZAB_MSG_NEWEPOCH = 3,     /* leader -> follower: the epoch I propose */
    ZAB_MSG_ACKEPOCH = 4,     /* follower -> leader: accepted, and my history */
    ZAB_MSG_SYNC = 5,         /* leader -> follower: DIFF / TRUNC / SNAP */
    ZAB_MSG_PROPOSAL = 6,     /* leader -> follower: one entry, chained to the previous */
    ZAB_MSG_NEWLEADER = 7,    /* leader -> follower: my initial history ends at zxid */
    ZAB_MSG_ACKNEWLEADER = 8, /* follower -> leader: I hold it durably, currentEpoch set */
    ZAB_MSG_ACK = 9,          /* follower -> leader: durable up to zxid (cumulative) */
    ZAB_MSG_COMMIT = 10,      /* leader -> follower: committed up to zxid (cumulative) */
    ZAB_MSG_PING = 11,        /* both ways: leader carries commit zxid, follower its durable zxid */
};
#define ZAB_MSG_TYPE_MAX 11

enum zab_sync_mode { ZAB_SYNC_DIFF = 1, ZAB_SYNC_TRUNC = 2, ZAB_SYNC_SNAP = 3 };

/* Who is in the ensemble: ZooKeeper's dynamic configuration.  version is
 * the zxid of the CONFIG entry that made it (0: the static configuration). */
struct zab_membership {
    uint64_t version;
    uint32_t n_voters;
    uint32_t voters[ZAB_MEMBERS_MAX];
    uint32_t n_observers;
    uint32_t observers[ZAB_MEMBERSHIP_OBSERVERS_MAX];
};

/* Bytes zab_membership_encode writes for m. */
size_t zab_membership_encoded_size(const struct zab_membership *m);

/* Encodes m (version, then both lists) into buf.  Returns the bytes written,
 * or ZAB_ETOOBIG (cap too small, a list over its limit). */
int64_t zab_membership_encode(const struct zab_membership *m, uint8_t *buf, size_t cap);

/* Decodes exactly len bytes.  Returns 0, or ZAB_ECORRUPT (truncated,
 * trailing bytes, a list over its limit, an id 0, an id listed twice, no
 * voter). */
int zab_membership_decode(const uint8_t *buf, size_t len, struct zab_membership *m);

/* As zab_membership_decode, but bytes after the membership are allowed (a
 * CONFIG entry's attachment, see zab_propose_config_attached).  Returns the
 * bytes the membership took (> 0), or ZAB_ECORRUPT. */
int64_t zab_membership_decode_prefix(const uint8_t *buf, size_t len, struct zab_membership *m);

struct zab_vote {
    uint32_t leader;   /* proposed leader id */
    uint32_t epoch;    /* the proposed leader's currentEpoch */
    uint64_t zxid;     /* the proposed leader's last zxid */
};

struct zab_message {
    uint8_t type;  /* enum zab_message_type */
    uint32_t from;
    uint32_t to;
    /* Epoch of the leadership the message belongs to (all types except
     * NOTIFICATION and FOLLOWERINFO, where it is 0). */
    uint32_t epoch;
    union {
        struct {
            uint32_t round; /* logical clock of elections */
            uint8_t state;  /* enum zab_role of the sender */
            struct zab_vote vote;
            struct zab_membership membership; /* the sender's active one: a newer one is adopted */
        } notification;
        struct {
            uint64_t session; /* fresh per attempt to follow: tells a restart from a duplicate */
            uint32_t accepted_epoch;
            uint32_t accepted_leader; /* who proposed accepted_epoch */
            uint32_t current_epoch;
            uint64_t last_zxid;
        } info; /* FOLLOWERINFO */
        struct {
            uint64_t session; /* the FOLLOWERINFO session this answers */
            uint32_t current_epoch;
            uint64_t last_zxid;
            uint64_t base_zxid; /* the follower's log starts after this committed zxid */
            uint32_t n_epochs;  /* last zxid of each epoch in the log, newest first */
            uint64_t epoch_last[ZAB_EPOCH_SUMMARY_MAX];
        } ackepoch;
        struct {
            uint64_t session;  /* the follower's session it answers (stale ones are ignored) */
            uint8_t mode;      /* enum zab_sync_mode */
            uint64_t zxid;     /* DIFF/TRUNC: keep the log up to here; SNAP: snapshot zxid */
            uint32_t size;     /* SNAP only */
            const uint8_t *data; /* SNAP only; borrowed (from the sender's core or the decode buffer) */
            struct zab_membership membership; /* the leader's active (committed) membership */
        } sync;
        struct {
            uint64_t prev_zxid;
            uint64_t zxid;
            uint8_t kind;      /* enum zab_entry_kind of zab.h */
            uint32_t size;
            const uint8_t *data; /* borrowed, as above */
        } proposal;
        struct {
            uint64_t session; /* the FOLLOWERINFO session it answers */
        } newepoch;
        struct {
            uint64_t zxid;
        } zxid; /* NEWLEADER, ACK, COMMIT, PING; ACKNEWLEADER carries the NEWLEADER zxid */
    } u;
};

/* Number of bytes zab_message_encode needs for msg. */
size_t zab_message_encoded_size(const struct zab_message *msg);

/* Encodes msg into buf (capacity cap).  Returns the number of bytes written,
 * or ZAB_ETOOBIG if cap is too small or a field is over its limit. */
int64_t zab_message_encode(const struct zab_message *msg, uint8_t *buf, size_t cap);

/* Decodes exactly len bytes into *msg.  Pointer fields of *msg borrow from
 * buf, which must outlive their use.  Returns 0, or ZAB_ECORRUPT (truncated,
 * trailing bytes, unknown type or version, a length over its limit) on any
 * malformed input; never reads outside buf[0..len). */
int zab_message_decode(const uint8_t *buf, size_t len, struct zab_message *msg);

const char *zab_message_type_name(uint8_t type);

#ifdef __cplusplus
}
#endif
#endif
