/*
 * prep_internal.h: what the prep files share (not part of prep.h's API).
 *
 *   prep.c          the per-operation rules (create, delete, setData, setACL,
 *                   check, multi, reconfig's answer, sessions) and the entry
 *                   points prep_request, prep_create_session, prep_close_session
 *   prep_overlay.c  the overlay of pending changes, its lookups, prep_applied
 *                   and prep_reset, and the records the checker (check.c) walks
 *   prep_acl.c      ACL checks and fixupACL (the "auth" scheme's expansion,
 *                   each provider's id rules)
 *   prep_quota.c    checkQuota: the quota warnings and enforceQuota's refusal
 *
 * All of it is the pure model: no I/O but the quota warnings logged, no clock.
 */
#ifndef ZNODED_PREP_INTERNAL_H
#define ZNODED_PREP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fifo_arena.h"
#include "htable.h"
#include "prep.h"

/* Longest quota warning kept to compare with the next (longer ones are cut). */
#define PREP_QUOTA_MESSAGE_BYTES 512

/* What a node will be: the fields prep needs, as ZooKeeper's ChangeRecord. */
struct node_view {
    bool exists;
    int64_t ephemeral_owner; /* as persisted */
    int32_t version, cversion, aversion;
    int64_t pzxid;
    int64_t mzxid, mtime; /* kept for completeness of the view */
    int32_t child_count;
    int32_t data_bytes;   /* length of the data (0 for null), for quotas */
    struct zn_acl_vec acl; /* borrowed from the record or the tree */
};

struct prep_record {
    struct zn_hlink link; /* in prep.map while in_map */
    struct prep_record *fifo_prev, *fifo_next;
    struct prep_record *shadowed;    /* older record of the same key */
    struct prep_record *shadowed_by; /* newer record of the same key */
    bool in_map;
    int64_t zxid;
    struct node_view view;
    int32_t session_timeout_ms;      /* session records */
    size_t key_len;
    char key[]; /* NUL-terminated; then, in the same allocation, the copy of
                 * the ACL behind view.acl (prep_record_add) */
};

struct prep {
    const struct tree *tree;
    struct prep_options options;
    struct zn_htable map; /* the newest record of each key */
    size_t record_count;
    struct prep_record *head, *tail;
    struct zn_fifo records; /* the records' memory: freed in zxid order, kept out of the heap */
    int64_t last_zxid;
    char last_quota_message[PREP_QUOTA_MESSAGE_BYTES];
    int64_t last_quota_message_ms;
    uint64_t quota_messages_held;
    bool reconfig_enabled;     /* reconfigEnabled (prep_set_reconfig_enabled) */
};

/* One prep_request call: the prep, who asks, and the txn's zxid and times. */
struct prep_call {
    struct prep *p;
    const struct prep_caller *who;
    int64_t zxid;
    int64_t now_ms;
    struct zn_arena *arena;
    int64_t txn_time_ms; /* the txn header's time: now_ms, or setDataTime's mtime */
};

static inline char *arena_strndup(struct zn_arena *arena, const char *s, size_t len)
{
    char *copy = zn_arena_alloc(arena, len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* prep_overlay.c */
/* Adds a record (the key's newest state) for `zxid`. */
int prep_record_add(struct prep *p, int64_t zxid, const char *key, size_t len, const struct node_view *view,
                    int32_t session_timeout_ms);
/* Pops every record of `zxid` off the tail (a failed request or multi). */
void prep_rollback_zxid(struct prep *p, int64_t zxid);
/* The node at path[0..len) as it will be (ZooKeeper's getRecordForPath);
 * len 0 is ZooKeeper's "" alias of the root. */
struct node_view prep_lookup(const struct prep *p, const char *path, size_t len);
/* A session's overlay key: "#" and its id in hex. */
void prep_session_key(int64_t session_id, char key[20]);
/* The session exists and is not closing. */
bool prep_session_live(const struct prep *p, int64_t session_id);

/* prep_acl.c */
/* zks.checkACL for the caller (none for the server's own writes). */
int prep_check_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl, int32_t perm);
/* ZooKeeper's fixupACL; the result lives in the arena. */
int prep_fixup_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl,
                   struct zn_arena *arena, struct zn_acl_vec *out);

/* prep_quota.c */
/* ZooKeeperServer.checkQuota (enforceQuota only). */
int prep_check_quota(struct prep_call *c, const char *path, int64_t bytes_diff, int64_t count_diff);

#endif
