/*
 * Internals shared by the tree's files (tree.h is the contract).  Not a
 * public header: nothing outside daemon/model/tree*.c includes it.
 *
 *   tree.c           the nodes, the path index, the children; the tree's
 *                    lifetime, the getters, the config node, tree_check
 *   tree_digest.c    the incremental digest: what a node and a session add
 *   tree_session.c   the replicated session table and each one's ephemerals
 *   tree_acl.c       the distinct ACLs, shared by the nodes that have them
 *   tree_quota.c     the quota set and the accounting of the stats nodes
 *   tree_apply.c     applying a txn, with the undo log that makes it all or
 *                    nothing
 *   tree_snapshot.c  the snapshot format: serialise, load, format versions
 *   tree_import.c    building a tree from ZooKeeper's data, node by node
 *
 * Invariants (checked by tree_check, tree.c; every file that changes the
 * tree keeps them):
 *  1. every node but the root has a parent, and parent->kids->at[index] is it;
 *  2. the index holds exactly the nodes reachable from the root;
 *  3. a node whose owner is a session (not 0, not container or TTL) is in
 *     that session's ephemeral array at its eph_slot, and that session
 *     exists;
 *  4. digest == sum of node digests (tree_node_compute_digest of the node
 *     as it is: not stored, so a change takes the node out of the digest
 *     before and puts it back after) + sum of session digests;
 *     data_bytes == sum of path + data lengths;
 *  5. the quota set holds exactly the real paths of the limit nodes
 *     (/zookeeper/quota/<path>/zookeeper_limits) in the tree.
 *
 * /zookeeper/config is member-local: each member sets it from its own
 * configuration (tree_set_config), as ZooKeeper's initConfigInZKDatabase
 * does.  Its data, version, mzxid and mtime are therefore left out of the
 * digest, and a snapshot load keeps the loading member's own.
 */
#ifndef ZNODED_TREE_INTERNAL_H
#define ZNODED_TREE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "htable.h"
#include "tree.h"

#define TREE_CONFIG_PATH "/zookeeper/config"

/* Field order: 8-byte fields, then 4-byte, then 1-byte ones, so that the
 * path starts right after them (bench/tree_mem prints the layout). */
struct tree_node {
    struct zn_hlink link; /* in the path index; link.hash is zn_hash(path) */
    struct tree_node *parent;
    union {
        /* malloc'd, NULL until the first child (tree_child_count) */
        struct tree_children *kids;
        /* a session's ephemeral (TREE_NODE_EPHEMERAL, never a parent): its
         * index in s->eph */
        size_t eph_slot;
    };
    /* shared with every node that has the same ACL (tree_acl.c); NULL for
     * an empty vector, or a null one (TREE_NODE_ACL_NULL) */
    struct acl_shared *acl;
    /* StatPersisted; ephemeralOwner is in tail (tree_node_owner) */
    int64_t czxid, mzxid, pzxid, ctime, mtime;
    /* znodefs extension: the time of the txn that set pzxid (a child made or
     * deleted), 0 if unknown (a format 2 snapshot).  Derived from the txns'
     * times, so not in the digest, which format 2 snapshots must still match. */
    int64_t ptime;
    uint32_t index_in_parent;
    uint32_t path_len;
    int32_t data_len; /* -1: null data */
    int32_t version, cversion, aversion;
    uint8_t flags; /* TREE_NODE_*, and the kind (tree_node_kind_of) */
    /* the ephemeral owner (8 bytes) when it is not 0 (TREE_NODE_OWNED:
     * nearly every node is 0, and it never changes), then the path and its
     * NUL (tree_path_of), then the data area: the data (data_len bytes),
     * or when it outgrew the area (TREE_NODE_DATA_OUT) a pointer to a
     * malloc'd copy; the area is at least a pointer long (tree_node_alloc) */
    char tail[];
};

/* tree_node.flags: the ACL vector was null (count -1), not empty. */
#define TREE_NODE_ACL_NULL 0x01
/* tree_node.flags: the data is in a malloc'd block the data area points at. */
#define TREE_NODE_DATA_OUT 0x02
/* tree_node.flags: the tail starts with an ephemeral owner that is not 0. */
#define TREE_NODE_OWNED 0x04
/* tree_node.flags: the owner is a session: the union holds eph_slot. */
#define TREE_NODE_EPHEMERAL 0x08
/* tree_node.flags: the kind (ZN_NODE_KIND_*, 0 to 2) in bits 4 and 5. */
#define TREE_NODE_KIND_SHIFT 4
#define TREE_NODE_KIND_MASK 0x30

static inline int32_t tree_node_kind_of(const struct tree_node *n)
{
    return (n->flags & TREE_NODE_KIND_MASK) >> TREE_NODE_KIND_SHIFT;
}

/* kind: 0 to 2, checked by the caller. */
static inline void tree_node_set_kind(struct tree_node *n, int32_t kind)
{
    n->flags = (uint8_t)((n->flags & ~TREE_NODE_KIND_MASK) | ((kind << TREE_NODE_KIND_SHIFT) & TREE_NODE_KIND_MASK));
}

/* A parent's children: how many, then the pointers (as many as the
 * allocator's room holds, tree_child_reserve).  A leaf has none, so the
 * count costs a node nothing until it has a child. */
struct tree_children {
    uint32_t count;
    uint32_t unused;
    struct tree_node *at[];
};

static inline uint32_t tree_child_count(const struct tree_node *n)
{
    return (n->flags & TREE_NODE_EPHEMERAL) || n->kids == NULL ? 0 : n->kids->count;
}

/* The node's path (NUL-terminated, path_len bytes). */
static inline char *tree_path_of(const struct tree_node *n)
{
    return (char *)(uintptr_t)n->tail + ((n->flags & TREE_NODE_OWNED) ? sizeof(int64_t) : 0);
}

/* The stored ephemeral owner: a session id, TREE_CONTAINER_OWNER, a TTL
 * encoding, or 0. */
static inline int64_t tree_node_owner(const struct tree_node *n)
{
    int64_t owner = 0;
    if (n->flags & TREE_NODE_OWNED)
        memcpy(&owner, n->tail, sizeof(owner));
    return owner;
}

/* A path with a quota (ZooKeeper's pTrie holds the same set). */
struct tree_quota {
    struct zn_hlink link; /* in tree.quotas */
    size_t len;
    char path[];
};

/* One distinct ACL, shared by every node that has it (tree_acl.c).  A node's
 * acl points at it. */
struct acl_shared {
    struct zn_hlink link; /* in tree.acls; the hash is acl_hash */
    uint64_t refs;
    const uint8_t *wire;   /* the vector as jute writes it (in this block), for snapshots */
    size_t wire_len;
    int32_t count;         /* > 0 */
    struct zn_acl items[]; /* then their strings, then wire */
};

struct tree_session {
    struct zn_hlink link; /* in tree.sessions, by id */
    int64_t id;
    int32_t timeout_ms;
    struct tree_node **eph; /* its ephemerals, in no order; malloc'd */
    size_t eph_count, eph_cap;
};

struct tree {
    struct zn_htable index; /* every node, by path */
    struct zn_htable sessions; /* struct tree_session, by id */
    size_t ephemeral_count;
    struct tree_node *root;
    int64_t last_zxid;
    size_t data_bytes;
    uint64_t digest;
    struct zn_htable quotas; /* struct tree_quota, by path */
    struct zn_htable acls; /* distinct ACLs (struct acl_shared), shared by the nodes that have them */
};

/* ---- small helpers every file uses ---- */

static inline size_t tree_node_size_bytes(const struct tree_node *n)
{
    return n->path_len + (n->data_len > 0 ? (size_t)n->data_len : 0);
}

static inline int32_t tree_node_data_bytes(const struct tree_node *n) { return n->data_len > 0 ? n->data_len : 0; }

/* Where the node's data area starts (see struct tree_node). */
static inline uint8_t *tree_node_data_area(const struct tree_node *n)
{
    return (uint8_t *)(tree_path_of(n) + n->path_len + 1);
}

/* The node's data bytes (tree_node_data_bytes of them). */
static inline const uint8_t *tree_node_data_ptr(const struct tree_node *n)
{
    const uint8_t *area = tree_node_data_area(n);
    if (n->flags & TREE_NODE_DATA_OUT) {
        const uint8_t *out;
        memcpy(&out, area, sizeof(out));
        return out;
    }
    return area;
}

static inline bool tree_node_has_path(const struct zn_hlink *l, const void *key)
{
    const struct tree_node *n = ZN_HENTRY(l, const struct tree_node, link);
    return zn_hkey_is(key, tree_path_of(n), n->path_len);
}

/* h is zn_hash(path, len), for a caller that already has it. */
static inline struct tree_node *tree_index_find_hashed(const struct tree *t, const char *path, size_t len,
                                                       uint64_t h)
{
    struct zn_hlink *l = zn_htable_find(&t->index, h, tree_node_has_path, &(struct zn_hkey){path, len});
    return l ? ZN_HENTRY(l, struct tree_node, link) : NULL;
}

static inline struct tree_node *tree_index_find(const struct tree *t, const char *path, size_t len)
{
    return tree_index_find_hashed(t, path, len, zn_hash(path, len));
}

/* True when the stored owner is a session (ZooKeeper's EphemeralType.NORMAL). */
static inline bool tree_owner_is_session(int64_t owner)
{
    return owner != 0 && owner != TREE_CONTAINER_OWNER &&
           (owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK;
}

/* The next node after n in preorder (parents before children), or NULL. */
static inline const struct tree_node *tree_preorder_next(const struct tree_node *n)
{
    if (tree_child_count(n) > 0)
        return n->kids->at[0];
    while (n->parent) {
        const struct tree_node *p = n->parent;
        if (n->index_in_parent + 1 < p->kids->count)
            return p->kids->at[n->index_in_parent + 1];
        n = p;
    }
    return NULL;
}

/* ---- nodes, lifetime, the config node (tree.c) ---- */

/* Copies src into *data (NULL when src->len <= 0) and *len (-1 for null data).
 * Returns 0 or ZN_NOMEMORY. */
int tree_data_copy(const struct jute_buf *src, uint8_t **data, int32_t *len);
/* A node with this path, data (copied; NULL: empty) and ephemeral owner
 * (fixed for its life) and an otherwise zeroed stat, in no structure yet,
 * in one allocation; NULL when out of memory. */
struct tree_node *tree_node_alloc(const char *path, size_t len, const struct jute_buf *data, int64_t owner);
/* Sets the stat of a new node (the owner it was made with must match). */
void tree_node_set_stat(struct tree_node *n, const struct tree_persisted_stat *st);
/* The data a node had before tree_node_set_data: bytes (NULL when there was
 * none) is a malloc'd block when owned, else the caller's room. */
struct tree_old_data {
    uint8_t *bytes;
    bool owned;
};
/* Replaces n's data (len -1: null) with a copy of bytes, in place when it
 * fits the data area, else in a block of its own.  *old gets the data as it
 * was: copied into room when it was in the data area and fits room_len
 * bytes (an undo that is nearly always dropped then costs no malloc and no
 * free), else in a malloc'd block the caller owns.  The digest and
 * data_bytes are the caller's.  Returns 0 or ZN_NOMEMORY (n is then
 * unchanged). */
int tree_node_set_data(struct tree_node *n, const uint8_t *bytes, int32_t len, uint8_t *room,
                       size_t room_len, struct tree_old_data *old);
/* Puts back data that tree_node_set_data gave out (an owned block is
 * consumed); cannot fail. */
void tree_node_restore_data(struct tree_node *n, struct tree_old_data old, int32_t old_len);
/* Frees a node that is in no structure (NULL is a no-op), giving back its ACL share. */
void tree_node_free(struct tree *t, struct tree_node *n);
int tree_child_reserve(struct tree_node *parent);
void tree_node_attach(struct tree *t, struct tree_node *parent, struct tree_node *n);
void tree_node_detach(struct tree *t, struct tree_node *n);
struct tree_node *tree_find_parent(const struct tree *t, const char *path);
/* Frees every node, session and quota: an empty tree (no root, last zxid 0). */
void tree_clear(struct tree *t);
/* Adds ZooKeeper's initial nodes to an empty tree.  Returns 0 or ZN_NOMEMORY. */
int tree_init_nodes(struct tree *t);
struct tree_node *tree_add_system_node(struct tree *t, const char *path, const struct zn_acl_vec *acl,
                                       int32_t aversion);
int tree_config_store(struct tree *t, const uint8_t *data, int32_t len, int64_t mzxid, int32_t version,
                      int64_t mtime);

/* ---- the digest (tree_digest.c) ---- */

/* The digest's steps are the hash tables' (lib/htable.h): see tree_digest.c
 * before changing them (the digest is stored in snapshots and compared
 * between members). */
static inline uint64_t tree_hash_i64(uint64_t h, int64_t v) { return zn_hash_mix(h, (uint64_t)v); }

static inline uint64_t tree_digest_bytes(uint64_t h, const void *bytes, size_t len)
{
    return zn_hash_more(h, bytes, len);
}
uint64_t tree_node_compute_digest(const struct tree_node *n);
uint64_t tree_session_digest(int64_t id, int32_t timeout_ms);
/* Bracket every change of an attached node's hashed fields: out before the
 * change, in after it (attach and detach do it for the whole node). */
static inline void tree_digest_out(struct tree *t, const struct tree_node *n)
{
    t->digest -= tree_node_compute_digest(n);
}

static inline void tree_digest_in(struct tree *t, const struct tree_node *n)
{
    t->digest += tree_node_compute_digest(n);
}

/* ---- sessions (tree_session.c) ---- */

struct tree_session *tree_session_find(const struct tree *t, int64_t id);
/* Puts s in the table, or takes it out; both move the digest. */
void tree_session_link(struct tree *t, struct tree_session *s);
void tree_session_unlink(struct tree *t, struct tree_session *s);
/* Adds a session with no ephemerals (*out, when not NULL).  Returns 0,
 * ZN_BADARGUMENTS (not a session id, already there, or the table full),
 * or ZN_NOMEMORY. */
int tree_session_insert(struct tree *t, int64_t id, int32_t timeout_ms, struct tree_session **out);
/* Frees a session that is in no table. */
void tree_session_free(struct tree_session *s);
/* Makes room for one more ephemeral of s (before a change, as
 * tree_child_reserve).  Returns 0 or ZN_NOMEMORY. */
int tree_ephemeral_reserve(struct tree_session *s);
void tree_ephemeral_link(struct tree_session *s, struct tree_node *n);
void tree_ephemeral_unlink(struct tree_session *s, struct tree_node *n);

/* ---- shared ACLs (tree_acl.c) ---- */

/* *dst shares the tree's copy of src (made if new); NULL for count <= 0.
 * Give it back with tree_acl_release.  Returns 0 or ZN_NOMEMORY. */
int tree_acl_copy(struct tree *t, const struct zn_acl_vec *src, struct acl_shared **dst);
/* Gives back a share of an ACL (from tree_acl_copy, or NULL). */
void tree_acl_release(struct tree *t, struct acl_shared *a);

/* Sets the ACL of a node that has none yet (a new one): a share of src. */
static inline int tree_node_acl_init(struct tree *t, struct tree_node *n, const struct zn_acl_vec *src)
{
    if (src->count < 0)
        n->flags |= TREE_NODE_ACL_NULL;
    return tree_acl_copy(t, src, &n->acl);
}

/* The node's ACL as a vector (count -1 for a null one). */
static inline struct zn_acl_vec tree_node_acl_vec(const struct tree_node *n)
{
    if (n->acl != NULL)
        return (struct zn_acl_vec){n->acl->count, n->acl->items};
    return (struct zn_acl_vec){(n->flags & TREE_NODE_ACL_NULL) ? -1 : 0, NULL};
}

/* ---- applying a txn (tree_apply.c) ---- */

/* Undo entries one op can need: the op itself, a quota set change, and two
 * stats node updates (a new zookeeper_stats node's recount, and the
 * enclosing quota's). */
#define TREE_UNDO_PER_OP 4
/* Room on tree_apply's stack for the old values of sets (struct apply). */
#define TREE_APPLY_ROOM_BYTES 1024

enum undo_kind {
    UNDO_CREATE,
    UNDO_DELETE,
    UNDO_SETDATA,
    UNDO_SETACL,
    UNDO_SESSION_CREATE,
    UNDO_SESSION_CLOSE,
    UNDO_QUOTA_ADD,
    UNDO_QUOTA_REMOVE,
};

struct undo {
    enum undo_kind kind;
    struct tree_node *node;
    struct tree_node *parent;
    struct tree_session *session;
    struct tree_quota *quota;
    int64_t old_pzxid, old_ptime;
    int32_t old_cversion;
    struct tree_old_data old_data;
    int32_t old_data_len;
    int32_t old_version;
    int64_t old_mtime;
    int64_t old_mzxid;
    struct acl_shared *old_acl;
    uint8_t old_flags;
};

struct apply_event {
    int32_t type;
    const char *path; /* into a node that lives until the events are fired */
};

struct apply {
    struct tree *t;
    const struct txn_header *hdr;
    uint8_t *room;    /* for old data the undo log keeps (tree_node_set_data) */
    size_t room_left;
    struct undo *undo;
    size_t undo_count, undo_cap;
    struct apply_event *events;
    size_t event_count, event_cap;
};

/* The next entry of the undo log (zeroed but for kind); room was reserved
 * before the txn's first change (TREE_UNDO_PER_OP per op). */
struct undo *tree_undo_push(struct apply *a, enum undo_kind kind);
/* Replaces n's data (tree_node_set_data), keeping data_bytes current and
 * taking n out of the digest, and pushes an UNDO_SETDATA entry that owns
 * the old data and holds n's version, mtime and mzxid.  The caller then
 * changes those as it needs and puts n back with tree_digest_in.  NULL when
 * out of memory (nothing changed then). */
struct undo *tree_undo_replace_data(struct apply *a, struct tree_node *n, const uint8_t *bytes, int32_t len);

/* ---- quotas (tree_quota.c) ---- */

void tree_quota_link(struct tree *t, struct tree_quota *q);
void tree_quota_unlink(struct tree *t, struct tree_quota *q);
void tree_quota_clear(struct tree *t);
/* Rebuilds the set from the limit nodes (after a snapshot load or an
 * import).  Returns 0 or ZN_NOMEMORY. */
int tree_quota_rebuild(struct tree *t);
/* The quota bookkeeping of applying a change (each pushes its undo
 * entries).  Return 0 or ZN_NOMEMORY. */
int tree_quota_account(struct apply *a, const char *path, int64_t bytes_diff, int64_t count_diff);
int tree_quota_after_create(struct apply *a, struct tree_node *n, struct tree_node *parent);
int tree_quota_after_delete(struct apply *a, struct tree_node *n, struct tree_node *parent);
/* Invariant 5.  Returns 0 or ZN_DATAINCONSISTENCY. */
int tree_quota_check(const struct tree *t);

#endif
