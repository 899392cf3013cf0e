/*
 * tree: the in-memory znode tree and the replicated session table (see
 * tree.h for the contract).  This file owns the nodes, the path index, the
 * children sets, the session table with each session's ephemerals, the
 * incremental digest and the snapshot format.
 *
 * Design notes.
 *  - Nodes are found by full path in lib/htable (the node embeds the chain
 *    link; the path is stored inline after the node); it grows by moving a
 *    few buckets per insert, so no write pays for rehashing millions of
 *    nodes, and an insert cannot fail.  Each node has
 *    a parent link and an array of child pointers; a child knows its index in
 *    that array, so add and remove are O(1) (remove swaps the last child into
 *    the hole) and getChildren is O(children).
 *  - A session's ephemerals are an intrusive doubly linked list through the
 *    nodes, so close-session is O(its ephemerals).
 *  - tree_apply validates nothing in advance that it can check as it goes:
 *    every change is recorded in an undo log, and when a later op of the same
 *    txn does not fit the tree (a bug or corrupt log) the log is replayed
 *    backwards and the tree is as before.  Deleted nodes stay allocated until
 *    the txn is done, so undo can relink them and events can name them.
 *    Everything that could run out of memory mid-way (undo log, events,
 *    results) is allocated before the first change.
 *
 * Invariants (checked by tree_check):
 *  1. every node but the root has a parent, and parent->children[index] is it;
 *  2. the index holds exactly the nodes reachable from the root;
 *  3. a node whose owner is a session (not 0, not container or TTL) is on
 *     that session's ephemeral list, and that session exists;
 *  4. digest == sum of node digests + sum of session digests;
 *     data_bytes == sum of path + data lengths;
 *  5. the quota set holds exactly the real paths of the limit nodes
 *     (/zookeeper/quota/<path>/zookeeper_limits) in the tree.
 *
 * Quotas (ZooKeeper's DataTree: the pTrie, updateQuotaStat and
 * updateQuotaForPath).  The quota set is derived from the limit nodes, so
 * every member (and a member loading a snapshot) has the same one.  Applying
 * a create, delete or setData under a path with a quota adds the change to
 * the deepest such quota's zookeeper_stats (count and bytes of data), without
 * touching that node's version, mzxid or mtime and without firing a watch;
 * creating a zookeeper_stats node sets it to its subtree's current count and
 * bytes.  A missing or unparsable stats node is left alone (ZooKeeper logs it
 * or throws); every member does the same, so digests stay equal.  Unlike
 * ZooKeeper, which prefix-matches "/zookeeper/quota" as a string, only nodes
 * strictly inside a /zookeeper/quota/<path>/ directory count as quota nodes.
 * The stats are replicated state (part of the snapshot); ZooKeeper recounts
 * them when it loads a snapshot, which differs only if a client wrote a
 * stats node by hand.
 *
 * /zookeeper/config is member-local: each member sets it from its own
 * configuration (tree_set_config), as ZooKeeper's initConfigInZKDatabase
 * does.  Its data, version, mzxid and mtime are therefore left out of the
 * digest, and a snapshot load keeps the loading member's own.
 */
#include "tree.h"

#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "htable.h"
#include "path.h"
#include "quota.h"

#define TREE_CONFIG_PATH "/zookeeper/config"

struct tree_node {
    struct zn_hlink link; /* in the path index; link.hash is zn_hash(path) */
    struct tree_node *parent;
    struct tree_node **children;
    uint32_t child_count;
    uint32_t child_cap;
    uint32_t index_in_parent;
    uint32_t path_len;
    struct tree_node *eph_prev; /* session ephemeral list */
    struct tree_node *eph_next;
    uint8_t *data;              /* malloc'd, NULL when data_len <= 0 */
    int32_t data_len;           /* -1: null data */
    int32_t kind;
    struct zn_acl_vec acl;      /* items and strings in one malloc'd block */
    /* StatPersisted */
    int64_t czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner;
    int32_t version, cversion, aversion;
    /* znodefs extension: the time of the txn that set pzxid (a child made or
     * deleted), 0 if unknown (a format 2 snapshot).  Derived from the txns'
     * times, so not in the digest, which format 2 snapshots must still match. */
    int64_t ptime;
    uint64_t digest;
    char path[];
};

/* A path with a quota (ZooKeeper's pTrie holds the same set). */
struct tree_quota {
    struct zn_hlink link; /* in tree.quotas */
    size_t len;
    char path[];
};

/*
 * One distinct ACL, shared by every node that has it, as ZooKeeper's
 * ReferenceCountedACLCache shares them: nearly every node of a tree has one
 * of a handful of ACLs, and a copy per node was 48 bytes of heap each (10% of
 * a member's RSS with 100-byte znodes).  A node's acl.items points at items.
 */
struct acl_shared {
    struct zn_hlink link; /* in tree.acls; the hash is acl_hash */
    uint64_t refs;
    const uint8_t *wire;   /* the vector as jute writes it (in this block), for snapshots */
    size_t wire_len;
    struct zn_acl items[]; /* then their strings, then wire */
};

struct tree_session {
    struct zn_hlink link; /* in tree.sessions, by id */
    int64_t id;
    int32_t timeout_ms;
    struct tree_node *eph_head;
    size_t eph_count;
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

#define TREE_INITIAL_BUCKETS 1024
#define TREE_INITIAL_SESSION_BUCKETS 256
#define TREE_INITIAL_QUOTA_BUCKETS 16
#define TREE_INITIAL_ACL_BUCKETS 16
/* Undo entries one op can need: the op itself, a quota set change, and two
 * stats node updates (a new zookeeper_stats node's recount, and the
 * enclosing quota's). */
#define TREE_UNDO_PER_OP 4

/* ---------------------------------------------------------------- hashing */

/*
 * The digest's hash: 8 bytes per multiply, where zn_hash (FNV-1a, for the
 * indexes) takes one byte per multiply: a create recomputes two node
 * digests over ~250 bytes each, and byte by byte that was an eighth of the
 * event loop's time under a create load.  It starts and ends as zn_hash
 * does (zn_hash_init, zn_hash_final).  The value is stored in snapshots and compared between members, so every member
 * must hash the same way: changing this function changes the snapshot
 * format's digest (snapshots written before it fail their digest check).
 */
static inline uint64_t digest_mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t digest_bytes(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *b = bytes;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = digest_mix(h, w);
    }
    uint64_t tail = 0;
    for (size_t k = 0; i < len; i++, k++)
        tail |= (uint64_t)b[i] << (8 * k);
    /* The length goes in too, so "ab" and "ab\0" differ. */
    return digest_mix(digest_mix(h, tail), (uint64_t)len);
}

static inline uint64_t hash_i64(uint64_t h, int64_t v) { return digest_mix(h, (uint64_t)v); }

static bool node_is_config(const struct tree_node *n)
{
    return n->path_len == sizeof(TREE_CONFIG_PATH) - 1 && memcmp(n->path, TREE_CONFIG_PATH, n->path_len) == 0;
}

static uint64_t node_compute_digest(const struct tree_node *n)
{
    /* The config node's contents are member-local (see the notes above). */
    bool local = node_is_config(n);
    uint64_t h = digest_bytes(zn_hash_init(), n->path, n->path_len);
    h = hash_i64(h, n->czxid);
    h = hash_i64(h, local ? 0 : n->mzxid);
    h = hash_i64(h, n->pzxid);
    h = hash_i64(h, n->ctime);
    h = hash_i64(h, local ? 0 : n->mtime);
    h = hash_i64(h, local ? 0 : n->version);
    h = hash_i64(h, n->cversion);
    h = hash_i64(h, n->aversion);
    h = hash_i64(h, n->ephemeral_owner);
    h = hash_i64(h, n->kind);
    h = hash_i64(h, local ? 0 : n->data_len);
    if (n->data_len > 0 && !local)
        h = digest_bytes(h, n->data, (size_t)n->data_len);
    h = hash_i64(h, n->acl.count);
    for (int32_t i = 0; i < n->acl.count; i++) {
        const struct zn_acl *a = &n->acl.items[i];
        h = hash_i64(h, a->perms);
        if (a->id.scheme)
            h = digest_bytes(h, a->id.scheme, strlen(a->id.scheme));
        h = hash_i64(h, -1);
        if (a->id.id)
            h = digest_bytes(h, a->id.id, strlen(a->id.id));
        h = hash_i64(h, -2);
    }
    return zn_hash_final(h);
}

static uint64_t session_digest(int64_t id, int32_t timeout_ms)
{
    uint64_t h = hash_i64(zn_hash_init(), id);
    h = hash_i64(h, timeout_ms);
    /* Distinguish a session from a node whose bytes happen to match. */
    h = digest_bytes(h, "session", 7);
    return zn_hash_final(h);
}

/* Call after any change of n's hashed fields. */
static void node_redigest(struct tree *t, struct tree_node *n)
{
    t->digest -= n->digest;
    n->digest = node_compute_digest(n);
    t->digest += n->digest;
}

static size_t node_size_bytes(const struct tree_node *n)
{
    return n->path_len + (n->data_len > 0 ? (size_t)n->data_len : 0);
}

/* ------------------------------------------------------------- path index */

static bool node_has_path(const struct zn_hlink *l, const void *key)
{
    const struct tree_node *n = ZN_HENTRY(l, const struct tree_node, link);
    return zn_hkey_is(key, n->path, n->path_len);
}

/* h is zn_hash(path, len), for a caller that already has it. */
static struct tree_node *index_find_hashed(const struct tree *t, const char *path, size_t len,
                                           uint64_t h)
{
    struct zn_hlink *l = zn_htable_find(&t->index, h, node_has_path, &(struct zn_hkey){path, len});
    return l ? ZN_HENTRY(l, struct tree_node, link) : NULL;
}

static struct tree_node *index_find(const struct tree *t, const char *path, size_t len)
{
    return index_find_hashed(t, path, len, zn_hash(path, len));
}

/* --------------------------------------------------------------- quota set */

static bool quota_has_path(const struct zn_hlink *l, const void *key)
{
    const struct tree_quota *q = ZN_HENTRY(l, const struct tree_quota, link);
    return zn_hkey_is(key, q->path, q->len);
}

static struct tree_quota *quota_find(const struct tree *t, const char *path, size_t len)
{
    struct zn_hkey key = {path, len};
    struct zn_hlink *l = zn_htable_find(&t->quotas, zn_hash(path, len), quota_has_path, &key);
    return l ? ZN_HENTRY(l, struct tree_quota, link) : NULL;
}

static void quota_link(struct tree *t, struct tree_quota *q)
{
    zn_htable_insert(&t->quotas, &q->link, zn_hash(q->path, q->len));
}

static void quota_unlink(struct tree *t, struct tree_quota *q) { zn_htable_remove(&t->quotas, &q->link); }

/* Adds path to the set; *added is NULL when it was there already. */
static int quota_add(struct tree *t, const char *path, struct tree_quota **added)
{
    size_t len = strlen(path);
    *added = NULL;
    if (quota_find(t, path, len) != NULL)
        return 0;
    struct tree_quota *q = malloc(sizeof(*q) + len + 1);
    if (q == NULL)
        return ZN_NOMEMORY;
    memcpy(q->path, path, len + 1);
    q->len = len;
    quota_link(t, q);
    *added = q;
    return 0;
}

static void quota_clear(struct tree *t)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->quotas);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        free(ZN_HENTRY(l, struct tree_quota, link));
    zn_htable_clear(&t->quotas);
}

/* The deepest path with a quota that is path or one of its ancestors
 * (ZooKeeper's getMaxPrefixWithQuota); never the root. */
static const struct tree_quota *quota_prefix(const struct tree *t, const char *path, size_t len)
{
    if (zn_htable_count(&t->quotas) == 0)
        return NULL;
    while (len > 1) {
        const struct tree_quota *q = quota_find(t, path, len);
        if (q != NULL)
            return q;
        long parent = path_parent_len(path, len);
        if (parent <= 0)
            return NULL;
        len = (size_t)parent;
    }
    return NULL;
}

/* The real path a limit node stands for, when n is one (see quota.h). */
static const char *limit_node_real_path(const struct tree_node *n, const struct tree_node *parent)
{
    if (parent == NULL || n->path_len != parent->path_len + 1 + sizeof(QUOTA_LIMIT_NODE) - 1 ||
        strcmp(n->path + parent->path_len + 1, QUOTA_LIMIT_NODE) != 0)
        return NULL;
    return quota_real_path(parent->path);
}

/* Rebuilds the set from the limit nodes (after a snapshot load). */
static int quota_rebuild(struct tree *t);

/* ---------------------------------------------------------------- sessions */

static bool session_has_id(const struct zn_hlink *l, const void *key)
{
    return ZN_HENTRY(l, const struct tree_session, link)->id == *(const int64_t *)key;
}

static struct tree_session *session_find(const struct tree *t, int64_t id)
{
    struct zn_hlink *l = zn_htable_find(&t->sessions, zn_hash(&id, sizeof(id)), session_has_id, &id);
    return l ? ZN_HENTRY(l, struct tree_session, link) : NULL;
}

static void session_link(struct tree *t, struct tree_session *s)
{
    zn_htable_insert(&t->sessions, &s->link, zn_hash(&s->id, sizeof(s->id)));
    t->digest += session_digest(s->id, s->timeout_ms);
}

static void session_unlink(struct tree *t, struct tree_session *s)
{
    zn_htable_remove(&t->sessions, &s->link);
    t->digest -= session_digest(s->id, s->timeout_ms);
}

/* True when the stored owner is a session (ZooKeeper's EphemeralType.NORMAL). */
static bool owner_is_session(int64_t owner)
{
    return owner != 0 && owner != TREE_CONTAINER_OWNER &&
           (owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK;
}

/* Adds a session with no ephemerals (*out, when not NULL).  Returns 0,
 * ZN_BADARGUMENTS (not a session id, already there, or the table full),
 * or ZN_NOMEMORY. */
static int session_insert(struct tree *t, int64_t id, int32_t timeout_ms, struct tree_session **out)
{
    if (!owner_is_session(id) || session_find(t, id) != NULL || zn_htable_count(&t->sessions) >= TREE_MAX_SESSIONS)
        return ZN_BADARGUMENTS;
    struct tree_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ZN_NOMEMORY;
    s->id = id;
    s->timeout_ms = timeout_ms;
    session_link(t, s);
    if (out)
        *out = s;
    return 0;
}

static void ephemeral_link(struct tree_session *s, struct tree_node *n)
{
    n->eph_prev = NULL;
    n->eph_next = s->eph_head;
    if (s->eph_head)
        s->eph_head->eph_prev = n;
    s->eph_head = n;
    s->eph_count++;
}

static void ephemeral_unlink(struct tree_session *s, struct tree_node *n)
{
    if (n->eph_prev)
        n->eph_prev->eph_next = n->eph_next;
    else
        s->eph_head = n->eph_next;
    if (n->eph_next)
        n->eph_next->eph_prev = n->eph_prev;
    n->eph_prev = n->eph_next = NULL;
    s->eph_count--;
}

/* ------------------------------------------------------------------- nodes */

static uint64_t acl_hash(const struct zn_acl_vec *v)
{
    uint64_t h = hash_i64(0, v->count);
    for (int32_t i = 0; i < v->count; i++) {
        const struct zn_id *id = &v->items[i].id;
        h = hash_i64(h, v->items[i].perms);
        h = id->scheme ? digest_bytes(h, id->scheme, strlen(id->scheme)) : hash_i64(h, -1);
        h = id->id ? digest_bytes(h, id->id, strlen(id->id)) : hash_i64(h, -1);
    }
    return h;
}

static bool str_same(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool acl_same(const struct zn_acl *items, const struct zn_acl_vec *v)
{
    for (int32_t i = 0; i < v->count; i++)
        if (items[i].perms != v->items[i].perms || !str_same(items[i].id.scheme, v->items[i].id.scheme) ||
            !str_same(items[i].id.id, v->items[i].id.id))
            return false;
    return true;
}

static struct acl_shared *acl_shared_of(struct zn_acl *items)
{
    return (struct acl_shared *)((char *)items - offsetof(struct acl_shared, items));
}

static bool acl_shared_is(const struct zn_hlink *l, const void *key)
{
    return acl_same(ZN_HENTRY(l, const struct acl_shared, link)->items, key);
}

/* dst shares the tree's copy of src (made if new); NULL items for count <= 0.
 * Give it back with acl_release. */
static int acl_copy(struct tree *t, const struct zn_acl_vec *src, struct zn_acl_vec *dst)
{
    dst->count = src->count;
    dst->items = NULL;
    if (src->count <= 0)
        return 0;
    uint64_t h = acl_hash(src);
    struct zn_hlink *found = zn_htable_find(&t->acls, h, acl_shared_is, src);
    if (found != NULL) {
        struct acl_shared *a = ZN_HENTRY(found, struct acl_shared, link);
        a->refs++;
        dst->items = a->items;
        return 0;
    }
    struct jute_writer wire;
    jute_writer_init(&wire);
    if (jute_write_acl_vec(&wire, src) != 0) {
        jute_writer_free(&wire);
        return ZN_NOMEMORY;
    }
    size_t size = sizeof(struct acl_shared) + sizeof(struct zn_acl) * (size_t)src->count + wire.len;
    for (int32_t i = 0; i < src->count; i++) {
        const struct zn_id *id = &src->items[i].id;
        size += (id->scheme ? strlen(id->scheme) + 1 : 0) + (id->id ? strlen(id->id) + 1 : 0);
    }
    struct acl_shared *a = malloc(size);
    if (a == NULL) {
        jute_writer_free(&wire);
        return ZN_NOMEMORY;
    }
    struct zn_acl *items = a->items;
    char *s = (char *)(items + src->count);
    for (int32_t i = 0; i < src->count; i++) {
        const struct zn_id *id = &src->items[i].id;
        items[i].perms = src->items[i].perms;
        items[i].id.scheme = items[i].id.id = NULL;
        if (id->scheme) {
            size_t l = strlen(id->scheme) + 1;
            items[i].id.scheme = memcpy(s, id->scheme, l);
            s += l;
        }
        if (id->id) {
            size_t l = strlen(id->id) + 1;
            items[i].id.id = memcpy(s, id->id, l);
            s += l;
        }
    }
    memcpy(s, wire.data, wire.len);
    a->wire = (const uint8_t *)s;
    a->wire_len = wire.len;
    jute_writer_free(&wire);
    a->refs = 1;
    zn_htable_insert(&t->acls, &a->link, h);
    dst->items = items;
    return 0;
}

/* Gives back a node's share of an ACL (items from acl_copy, or NULL). */
static void acl_release(struct tree *t, struct zn_acl *items)
{
    if (items == NULL)
        return;
    struct acl_shared *a = acl_shared_of(items);
    ZN_ASSERT(a->refs > 0);
    if (--a->refs > 0)
        return;
    zn_htable_remove(&t->acls, &a->link);
    free(a);
}

static int data_copy(const struct jute_buf *src, uint8_t **data, int32_t *len)
{
    *data = NULL;
    *len = src->len < 0 ? -1 : src->len;
    if (src->len > 0) {
        *data = malloc((size_t)src->len);
        if (*data == NULL)
            return ZN_NOMEMORY;
        memcpy(*data, src->data, (size_t)src->len);
    }
    return 0;
}

static struct tree_node *node_alloc(const char *path, size_t len)
{
    struct tree_node *n = calloc(1, sizeof(*n) + len + 1);
    if (n == NULL)
        return NULL;
    memcpy(n->path, path, len);
    n->path[len] = '\0';
    n->path_len = (uint32_t)len;
    n->link.hash = zn_hash(path, len);
    n->data_len = 0;
    return n;
}

static void node_free(struct tree *t, struct tree_node *n)
{
    if (n == NULL)
        return;
    free(n->children);
    free(n->data);
    acl_release(t, n->acl.items);
    free(n);
}

/* Makes room for one more child; the only allocation a link can need. */
static int child_reserve(struct tree_node *parent)
{
    if (parent->child_count < parent->child_cap)
        return 0;
    uint32_t cap = parent->child_cap ? parent->child_cap * 2 : 4;
    struct tree_node **c = realloc(parent->children, sizeof(*c) * cap);
    if (c == NULL)
        return ZN_NOMEMORY;
    parent->children = c;
    parent->child_cap = cap;
    return 0;
}

static void child_link(struct tree_node *parent, struct tree_node *child)
{
    ZN_ASSERT(parent->child_count < parent->child_cap);
    child->parent = parent;
    child->index_in_parent = parent->child_count;
    parent->children[parent->child_count++] = child;
}

static void child_unlink(struct tree_node *child)
{
    struct tree_node *parent = child->parent;
    ZN_ASSERT(parent && parent->children[child->index_in_parent] == child);
    struct tree_node *last = parent->children[--parent->child_count];
    parent->children[child->index_in_parent] = last;
    last->index_in_parent = child->index_in_parent;
    child->parent = NULL;
}

/* Adds a fully built node under parent: index, children, session list,
 * digest, sizes.  The caller reserved child room and checked the session. */
static void node_attach(struct tree *t, struct tree_node *parent, struct tree_node *n)
{
    if (parent)
        child_link(parent, n);
    zn_htable_insert(&t->index, &n->link, n->link.hash);
    if (owner_is_session(n->ephemeral_owner)) {
        struct tree_session *s = session_find(t, n->ephemeral_owner);
        ZN_ASSERT(s != NULL);
        ephemeral_link(s, n);
        t->ephemeral_count++;
    }
    n->digest = node_compute_digest(n);
    t->digest += n->digest;
    t->data_bytes += node_size_bytes(n);
}

/* The inverse of node_attach; the node stays allocated. */
static void node_detach(struct tree *t, struct tree_node *n)
{
    if (n->parent)
        child_unlink(n);
    zn_htable_remove(&t->index, &n->link);
    if (owner_is_session(n->ephemeral_owner)) {
        struct tree_session *s = session_find(t, n->ephemeral_owner);
        ZN_ASSERT(s != NULL);
        ephemeral_unlink(s, n);
        t->ephemeral_count--;
    }
    t->digest -= n->digest;
    t->data_bytes -= node_size_bytes(n);
}

static struct tree_node *find_parent(const struct tree *t, const char *path)
{
    long pl = path_parent_len(path, strlen(path));
    if (pl < 0)
        return NULL;
    if (pl == 0)
        return strcmp(path, "/") == 0 ? NULL : t->root;
    return index_find(t, path, (size_t)pl);
}

/* ------------------------------------------------------- lifetime, getters */

static void tree_clear(struct tree *t)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->index);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        node_free(t, ZN_HENTRY(l, struct tree_node, link));
    zn_htable_clear(&t->index);
    zn_hiter_init(&it, &t->sessions);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        free(ZN_HENTRY(l, struct tree_session, link));
    zn_htable_clear(&t->sessions);
    quota_clear(t);
    t->ephemeral_count = 0;
    t->root = NULL;
    t->last_zxid = 0;
    t->data_bytes = 0;
    t->digest = 0;
}

/* Adds one of ZooKeeper's own nodes with a zeroed stat. */
static struct tree_node *add_system_node(struct tree *t, const char *path, const struct zn_acl_vec *acl,
                                         int32_t aversion)
{
    struct tree_node *n = node_alloc(path, strlen(path));
    if (n == NULL)
        return NULL;
    if (acl_copy(t, acl, &n->acl) != 0) {
        node_free(t, n);
        return NULL;
    }
    n->aversion = aversion;
    struct tree_node *parent = find_parent(t, path);
    if (parent && child_reserve(parent) != 0) {
        node_free(t, n);
        return NULL;
    }
    node_attach(t, parent, n);
    return n;
}

static int tree_init_nodes(struct tree *t)
{
    /* ZooKeeper's system nodes are created with ACL id -1 (OPEN_ACL_UNSAFE:
     * world:anyone ALL); /zookeeper/config gets READ_ACL_UNSAFE with version
     * -1 (DataTree.addConfigNode). */
    struct zn_acl open = {ZN_PERM_ALL, {"world", "anyone"}};
    struct zn_acl read = {ZN_PERM_READ, {"world", "anyone"}};
    struct zn_acl_vec open_acl = {1, &open}, read_acl = {1, &read};
    t->root = add_system_node(t, "/", &open_acl, 0);
    if (t->root == NULL || !add_system_node(t, "/zookeeper", &open_acl, 0) ||
        !add_system_node(t, "/zookeeper/quota", &open_acl, 0) ||
        !add_system_node(t, "/zookeeper/config", &read_acl, -1))
        return ZN_NOMEMORY;
    return 0;
}

struct tree *tree_new(void)
{
    struct tree *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (zn_htable_init(&t->index, TREE_INITIAL_BUCKETS) != 0 ||
        zn_htable_init(&t->sessions, TREE_INITIAL_SESSION_BUCKETS) != 0 ||
        zn_htable_init(&t->quotas, TREE_INITIAL_QUOTA_BUCKETS) != 0 ||
        zn_htable_init(&t->acls, TREE_INITIAL_ACL_BUCKETS) != 0 || tree_init_nodes(t) != 0) {
        tree_free(t);
        return NULL;
    }
    return t;
}

void tree_free(struct tree *t)
{
    if (t == NULL)
        return;
    if (t->index.buckets && t->sessions.buckets && t->quotas.buckets && t->acls.buckets)
        tree_clear(t);
    ZN_ASSERT(zn_htable_count(&t->acls) == 0); /* every node gave its share back */
    zn_htable_free(&t->index);
    zn_htable_free(&t->sessions);
    zn_htable_free(&t->quotas);
    zn_htable_free(&t->acls);
    free(t);
}

const struct tree_node *tree_get(const struct tree *t, const char *path)
{
    ZN_ASSERT(t != NULL && path != NULL);
    return index_find(t, path, strlen(path));
}

void tree_node_stat(const struct tree_node *n, struct zn_stat *out)
{
    /* Padding too (after aversion): a stat compared or copied whole holds
     * no stale stack bytes. */
    memset(out, 0, sizeof(*out));
    out->czxid = n->czxid;
    out->mzxid = n->mzxid;
    out->ctime = n->ctime;
    out->mtime = n->mtime;
    out->version = n->version;
    /* The persisted cversion counts creates; each child no longer present
     * was also deleted, so changes = creates * 2 - children (copyStat). */
    out->cversion = (int32_t)((int64_t)n->cversion * 2 - n->child_count);
    out->aversion = n->aversion;
    out->ephemeral_owner = owner_is_session(n->ephemeral_owner) ? n->ephemeral_owner : 0;
    out->data_length = n->data_len > 0 ? n->data_len : 0;
    out->num_children = (int32_t)n->child_count;
    out->pzxid = n->pzxid;
}

int64_t tree_node_raw_owner(const struct tree_node *n) { return n->ephemeral_owner; }
bool tree_node_is_container(const struct tree_node *n) { return n->ephemeral_owner == TREE_CONTAINER_OWNER; }

int64_t tree_node_ttl_ms(const struct tree_node *n)
{
    if (n->ephemeral_owner == TREE_CONTAINER_OWNER ||
        (n->ephemeral_owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK)
        return -1;
    return n->ephemeral_owner & TREE_TTL_MAX_MS;
}

const char *tree_node_path(const struct tree_node *n) { return n->path; }

struct jute_buf tree_node_data(const struct tree_node *n)
{
    struct jute_buf b = {n->data_len > 0 ? n->data : (const uint8_t *)"", n->data_len};
    return b;
}

struct zn_acl_vec tree_node_acl(const struct tree_node *n) { return n->acl; }
int32_t tree_node_kind(const struct tree_node *n) { return n->kind; }
int64_t tree_node_ptime(const struct tree_node *n) { return n->ptime; }
uint32_t tree_node_child_count(const struct tree_node *n) { return n->child_count; }

const struct tree_node *tree_node_child(const struct tree_node *n, uint32_t index)
{
    ZN_ASSERT(index < n->child_count);
    return n->children[index];
}

const char *tree_node_child_name(const struct tree_node *n, uint32_t index)
{
    const struct tree_node *c = tree_node_child(n, index);
    return c->path + path_parent_len(c->path, c->path_len) + 1;
}

int64_t tree_last_zxid(const struct tree *t) { return t->last_zxid; }
size_t tree_node_count(const struct tree *t) { return zn_htable_count(&t->index); }
size_t tree_data_bytes(const struct tree *t) { return t->data_bytes; }
uint64_t tree_digest(const struct tree *t) { return t->digest; }

const char *tree_quota_prefix(const struct tree *t, const char *path)
{
    ZN_ASSERT(t != NULL && path != NULL);
    const struct tree_quota *q = quota_prefix(t, path, strlen(path));
    return q ? q->path : NULL;
}

size_t tree_quota_count(const struct tree *t) { return zn_htable_count(&t->quotas); }

/* Replaces the config node's contents; the digest does not change. */
static int config_store(struct tree *t, const uint8_t *data, int32_t len, int64_t mzxid, int32_t version,
                        int64_t mtime)
{
    struct tree_node *n = index_find(t, TREE_CONFIG_PATH, sizeof(TREE_CONFIG_PATH) - 1);
    if (n == NULL)
        return ZN_NONODE;
    uint8_t *copy;
    int32_t copy_len;
    struct jute_buf src = {data, len};
    if (data_copy(&src, &copy, &copy_len) != 0)
        return ZN_NOMEMORY;
    uint64_t digest_before = t->digest;
    t->data_bytes -= node_size_bytes(n);
    free(n->data);
    n->data = copy;
    n->data_len = copy_len;
    n->mzxid = mzxid;
    n->version = version;
    n->mtime = mtime;
    t->data_bytes += node_size_bytes(n);
    node_redigest(t, n);
    ZN_ASSERT(t->digest == digest_before);
    return 0;
}

int tree_set_config(struct tree *t, const char *text, size_t len, int64_t config_version, int64_t now_ms)
{
    ZN_ASSERT(t != NULL && (text != NULL || len == 0));
    if (len > TREE_CONFIG_MAX_BYTES)
        return ZN_BADARGUMENTS;
    /* ZooKeeper's initConfigInZKDatabase: setData with version -1 at the
     * config's version as zxid, stamped with the member's wall clock. */
    return config_store(t, (const uint8_t *)text, (int32_t)len, config_version, -1, now_ms);
}

bool tree_session_exists(const struct tree *t, int64_t session_id)
{
    return session_find(t, session_id) != NULL;
}

int tree_session_timeout(const struct tree *t, int64_t session_id, int32_t *timeout_ms)
{
    const struct tree_session *s = session_find(t, session_id);
    if (s == NULL)
        return ZN_SESSIONEXPIRED;
    *timeout_ms = s->timeout_ms;
    return 0;
}

size_t tree_session_count(const struct tree *t) { return zn_htable_count(&t->sessions); }

int tree_for_each_session(const struct tree *t, tree_session_fn fn, void *ctx)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->sessions);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct tree_session *s = ZN_HENTRY(l, const struct tree_session, link);
        int rc = fn(ctx, s->id, s->timeout_ms);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tree_for_each_ephemeral(const struct tree *t, int64_t session_id, tree_path_fn fn, void *ctx)
{
    const struct tree_session *s = session_find(t, session_id);
    for (const struct tree_node *n = s ? s->eph_head : NULL; n; n = n->eph_next) {
        int rc = fn(ctx, n->path);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t tree_ephemeral_count(const struct tree *t) { return t->ephemeral_count; }

size_t tree_session_ephemeral_count(const struct tree *t, int64_t session_id)
{
    const struct tree_session *s = session_find(t, session_id);
    return s ? s->eph_count : 0;
}


/* ------------------------------------------------------------------- apply */

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
    uint8_t *old_data;
    int32_t old_data_len;
    int32_t old_version;
    int64_t old_mtime;
    int64_t old_mzxid;
    struct zn_acl_vec old_acl;
};

struct apply_event {
    int32_t type;
    const char *path; /* into a node that lives until the events are fired */
};

struct apply {
    struct tree *t;
    const struct txn_header *hdr;
    struct undo *undo;
    size_t undo_count, undo_cap;
    struct apply_event *events;
    size_t event_count, event_cap;
};

static struct undo *undo_push(struct apply *a, enum undo_kind kind)
{
    ZN_ASSERT(a->undo_count < a->undo_cap);
    struct undo *u = &a->undo[a->undo_count++];
    memset(u, 0, sizeof(*u));
    u->kind = kind;
    return u;
}

static void event_push(struct apply *a, int32_t type, const char *path)
{
    ZN_ASSERT(a->event_count < a->event_cap);
    a->events[a->event_count].type = type;
    a->events[a->event_count].path = path;
    a->event_count++;
}

/* Replaces n's data without touching its version, mzxid or mtime and
 * without an event: how ZooKeeper writes a quota stats node. */
static int replace_data_quietly(struct apply *a, struct tree_node *n, const char *text, size_t len)
{
    uint8_t *data = malloc(len > 0 ? len : 1);
    if (data == NULL)
        return ZN_NOMEMORY;
    memcpy(data, text, len);
    struct undo *u = undo_push(a, UNDO_SETDATA);
    u->node = n;
    u->old_data = n->data;
    u->old_data_len = n->data_len;
    u->old_version = n->version;
    u->old_mtime = n->mtime;
    u->old_mzxid = n->mzxid;
    a->t->data_bytes -= node_size_bytes(n);
    if (len == 0) {
        free(data);
        data = NULL;
    }
    n->data = data;
    n->data_len = (int32_t)len;
    a->t->data_bytes += node_size_bytes(n);
    node_redigest(a->t, n);
    return 0;
}

static int32_t node_data_bytes(const struct tree_node *n) { return n->data_len > 0 ? n->data_len : 0; }

/* The stats node of a quota path, or NULL. */
static struct tree_node *quota_stats_node(const struct tree *t, const char *real_path)
{
    size_t len = strlen(QUOTA_ROOT) + strlen(real_path) + 1 + strlen(QUOTA_STAT_NODE);
    char *path = malloc(len + 1);
    if (path == NULL)
        return NULL; /* read as missing: the caller then changes nothing */
    snprintf(path, len + 1, "%s%s/%s", QUOTA_ROOT, real_path, QUOTA_STAT_NODE);
    struct tree_node *n = index_find(t, path, len);
    free(path);
    return n;
}

/* ZooKeeper's updateQuotaStat: adds the diffs to the stats of the deepest
 * quota over path.  A missing or unparsable stats node is left alone. */
static int quota_account(struct apply *a, const char *path, int64_t bytes_diff, int64_t count_diff)
{
    const struct tree_quota *q = quota_prefix(a->t, path, strlen(path));
    if (q == NULL)
        return 0;
    struct tree_node *stats = quota_stats_node(a->t, q->path);
    struct quota_record record;
    if (stats == NULL || quota_record_parse(stats->data, stats->data_len, &record) != 0)
        return 0;
    if (quota_record_set(&record, QUOTA_KEY_COUNT, quota_record_get(&record, QUOTA_KEY_COUNT) + count_diff) != 0 ||
        quota_record_set(&record, QUOTA_KEY_BYTES, quota_record_get(&record, QUOTA_KEY_BYTES) + bytes_diff) != 0)
        return 0; /* a record already full of other keys: left alone as unparsable */
    char text[QUOTA_RECORD_MAX_BYTES];
    int len = quota_record_format(&record, text, sizeof(text));
    ZN_ASSERT(len >= 0);
    return replace_data_quietly(a, stats, text, (size_t)len);
}

/* The next node of root's subtree in preorder, or NULL. */
static const struct tree_node *subtree_next(const struct tree_node *n, const struct tree_node *root)
{
    if (n->child_count > 0)
        return n->children[0];
    while (n != root) {
        const struct tree_node *p = n->parent;
        if (n->index_in_parent + 1 < p->child_count)
            return p->children[n->index_in_parent + 1];
        n = p;
    }
    return NULL;
}

/* ZooKeeper's updateQuotaForPath: a new stats node starts as the count and
 * bytes of its real path's subtree as it is now. */
static int quota_recount(struct apply *a, struct tree_node *stats, const char *real_path)
{
    int64_t count = 0, bytes = 0;
    const struct tree_node *top = index_find(a->t, real_path, strlen(real_path));
    for (const struct tree_node *n = top; n; n = subtree_next(n, top)) {
        count++;
        bytes += node_data_bytes(n);
    }
    struct quota_record record = {0};
    quota_record_set(&record, QUOTA_KEY_COUNT, count);
    quota_record_set(&record, QUOTA_KEY_BYTES, bytes);
    char text[QUOTA_RECORD_MAX_BYTES];
    int len = quota_record_format(&record, text, sizeof(text));
    ZN_ASSERT(len >= 0);
    return replace_data_quietly(a, stats, text, (size_t)len);
}

/* The quota bookkeeping of DataTree.createNode, after the node is linked. */
static int quota_after_create(struct apply *a, struct tree_node *n, struct tree_node *parent)
{
    const char *real = limit_node_real_path(n, parent);
    if (real != NULL) {
        struct tree_quota *added;
        int rc = quota_add(a->t, real, &added);
        if (rc != 0)
            return rc;
        if (added)
            undo_push(a, UNDO_QUOTA_ADD)->quota = added;
    } else if (n->path_len == parent->path_len + 1 + sizeof(QUOTA_STAT_NODE) - 1 &&
               strcmp(n->path + parent->path_len + 1, QUOTA_STAT_NODE) == 0 &&
               (real = quota_real_path(parent->path)) != NULL) {
        int rc = quota_recount(a, n, real);
        if (rc != 0)
            return rc;
    }
    return quota_account(a, n->path, node_data_bytes(n), 1);
}

/* The quota bookkeeping of DataTree.deleteNode, after the node is unlinked. */
static int quota_after_delete(struct apply *a, struct tree_node *n, struct tree_node *parent)
{
    const char *real = limit_node_real_path(n, parent);
    if (real != NULL) {
        struct tree_quota *q = quota_find(a->t, real, strlen(real));
        if (q != NULL) {
            quota_unlink(a->t, q);
            undo_push(a, UNDO_QUOTA_REMOVE)->quota = q;
        }
    }
    return quota_account(a, n->path, -(int64_t)node_data_bytes(n), -1);
}

static int apply_create(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree *t = a->t;
    size_t len = strlen(op->path);
    struct tree_node *parent = find_parent(t, op->path);
    if (parent == NULL || index_find(t, op->path, len) != NULL || owner_is_session(parent->ephemeral_owner) ||
        parent->child_count >= TREE_MAX_CHILDREN || op->kind < ZN_NODE_KIND_UNKNOWN ||
        op->kind > ZN_NODE_KIND_DIRECTORY || len > PATH_MAX_BYTES)
        return ZN_DATAINCONSISTENCY;
    int64_t owner;
    if (op->type == ZN_OP_CREATECONTAINER) {
        owner = TREE_CONTAINER_OWNER;
    } else if (op->type == ZN_OP_CREATETTL) {
        if (op->ttl_ms <= 0 || op->ttl_ms > TREE_TTL_MAX_MS)
            return ZN_DATAINCONSISTENCY;
        owner = TREE_TTL_OWNER_MASK | op->ttl_ms;
    } else {
        owner = op->ephemeral_owner;
        if (owner != 0 && (!owner_is_session(owner) || session_find(t, owner) == NULL))
            return ZN_DATAINCONSISTENCY;
    }
    int rc = child_reserve(parent);
    if (rc != 0)
        return rc;
    struct tree_node *n = node_alloc(op->path, len);
    if (n == NULL)
        return ZN_NOMEMORY;
    if (acl_copy(a->t, &op->acl, &n->acl) != 0 || data_copy(&op->data, &n->data, &n->data_len) != 0) {
        node_free(t, n);
        return ZN_NOMEMORY;
    }
    /* DataTree.createStat */
    n->czxid = n->mzxid = n->pzxid = a->hdr->zxid;
    n->ctime = n->mtime = n->ptime = a->hdr->time_ms;
    n->ephemeral_owner = owner;
    n->kind = op->kind;

    struct undo *u = undo_push(a, UNDO_CREATE);
    u->node = n;
    u->parent = parent;
    u->old_cversion = parent->cversion;
    u->old_pzxid = parent->pzxid;
    u->old_ptime = parent->ptime;
    /* DataTree.createNode: -1 means "one more than now"; only move forward,
     * as ZooKeeper does. */
    int32_t cversion = op->parent_cversion;
    if (cversion == -1)
        cversion = parent->cversion + 1;
    if (cversion > parent->cversion) {
        parent->cversion = cversion;
        parent->pzxid = a->hdr->zxid;
        parent->ptime = a->hdr->time_ms;
        node_redigest(t, parent);
    }
    node_attach(t, parent, n);
    rc = quota_after_create(a, n, parent);
    if (rc != 0)
        return rc; /* the undo log already holds the create */
    event_push(a, ZN_EVENT_CREATED, n->path);
    event_push(a, ZN_EVENT_CHILD, parent->path);
    *out = n;
    return 0;
}

static int apply_delete_node(struct apply *a, struct tree_node *n)
{
    if (n == NULL || n->parent == NULL || n->child_count > 0)
        return ZN_DATAINCONSISTENCY;
    struct tree_node *parent = n->parent;
    struct undo *u = undo_push(a, UNDO_DELETE);
    u->node = n;
    u->parent = parent;
    u->old_pzxid = parent->pzxid;
    u->old_ptime = parent->ptime;
    node_detach(a->t, n);
    if (a->hdr->zxid > parent->pzxid) {
        parent->pzxid = a->hdr->zxid;
        parent->ptime = a->hdr->time_ms;
        node_redigest(a->t, parent);
    }
    int rc = quota_after_delete(a, n, parent);
    if (rc != 0)
        return rc;
    event_push(a, ZN_EVENT_DELETED, n->path);
    event_push(a, ZN_EVENT_CHILD, parent->path);
    return 0;
}

static int apply_set_data(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree_node *n = index_find(a->t, op->path, strlen(op->path));
    if (n == NULL)
        return ZN_DATAINCONSISTENCY;
    uint8_t *data;
    int32_t data_len;
    if (data_copy(&op->data, &data, &data_len) != 0)
        return ZN_NOMEMORY;
    struct undo *u = undo_push(a, UNDO_SETDATA);
    u->node = n;
    u->old_data = n->data;
    u->old_data_len = n->data_len;
    u->old_version = n->version;
    u->old_mtime = n->mtime;
    u->old_mzxid = n->mzxid;
    a->t->data_bytes -= node_size_bytes(n);
    n->data = data;
    n->data_len = data_len;
    n->version = op->version;
    n->mtime = a->hdr->time_ms;
    n->mzxid = a->hdr->zxid;
    a->t->data_bytes += node_size_bytes(n);
    node_redigest(a->t, n);
    int rc = quota_account(a, n->path, (int64_t)node_data_bytes(n) - (u->old_data_len > 0 ? u->old_data_len : 0), 0);
    if (rc != 0)
        return rc;
    event_push(a, ZN_EVENT_CHANGED, n->path);
    *out = n;
    return 0;
}

static int apply_set_acl(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree_node *n = index_find(a->t, op->path, strlen(op->path));
    if (n == NULL)
        return ZN_DATAINCONSISTENCY;
    struct zn_acl_vec acl;
    if (acl_copy(a->t, &op->acl, &acl) != 0)
        return ZN_NOMEMORY;
    struct undo *u = undo_push(a, UNDO_SETACL);
    u->node = n;
    u->old_acl = n->acl;
    u->old_version = n->aversion;
    n->acl = acl;
    n->aversion = op->version;
    node_redigest(a->t, n);
    *out = n;
    return 0;
}

/* Replays the undo log backwards: the tree is as before the txn. */
static void apply_rollback(struct apply *a)
{
    struct tree *t = a->t;
    while (a->undo_count > 0) {
        struct undo *u = &a->undo[--a->undo_count];
        switch (u->kind) {
        case UNDO_CREATE:
            node_detach(t, u->node);
            node_free(t, u->node);
            u->parent->cversion = u->old_cversion;
            u->parent->pzxid = u->old_pzxid;
            u->parent->ptime = u->old_ptime;
            node_redigest(t, u->parent);
            break;
        case UNDO_DELETE:
            /* The slot the node left is still allocated: no failure here. */
            node_attach(t, u->parent, u->node);
            u->parent->pzxid = u->old_pzxid;
            u->parent->ptime = u->old_ptime;
            node_redigest(t, u->parent);
            break;
        case UNDO_SETDATA:
            t->data_bytes -= node_size_bytes(u->node);
            free(u->node->data);
            u->node->data = u->old_data;
            u->node->data_len = u->old_data_len;
            u->node->version = u->old_version;
            u->node->mtime = u->old_mtime;
            u->node->mzxid = u->old_mzxid;
            t->data_bytes += node_size_bytes(u->node);
            node_redigest(t, u->node);
            break;
        case UNDO_SETACL:
            acl_release(t, u->node->acl.items);
            u->node->acl = u->old_acl;
            u->node->aversion = u->old_version;
            node_redigest(t, u->node);
            break;
        case UNDO_SESSION_CREATE:
            session_unlink(t, u->session);
            free(u->session);
            break;
        case UNDO_SESSION_CLOSE:
            session_link(t, u->session);
            break;
        case UNDO_QUOTA_ADD:
            quota_unlink(t, u->quota);
            free(u->quota);
            break;
        case UNDO_QUOTA_REMOVE:
            quota_link(t, u->quota);
            break;
        }
    }
    a->event_count = 0;
}

/* Frees what the txn replaced or removed, once nothing can roll it back. */
static void apply_release(struct apply *a)
{
    for (size_t i = 0; i < a->undo_count; i++) {
        struct undo *u = &a->undo[i];
        switch (u->kind) {
        case UNDO_DELETE:
            node_free(a->t, u->node);
            break;
        case UNDO_SETDATA:
            free(u->old_data);
            break;
        case UNDO_SETACL:
            acl_release(a->t, u->old_acl.items);
            break;
        case UNDO_SESSION_CLOSE:
            free(u->session);
            break;
        case UNDO_QUOTA_REMOVE:
            free(u->quota);
            break;
        default:
            break;
        }
    }
    a->undo_count = 0;
}

static bool op_has_path(int32_t type) { return (zn_op_flags(type) & ZN_OPF_TXN_PATH) != 0; }

/* Applies one op of a txn (a multi's or the whole txn's). */
static int apply_op(struct apply *a, const struct txn_op *op, struct tree_node **touched)
{
    *touched = NULL;
    if (op_has_path(op->type) && op->path == NULL)
        return ZN_DATAINCONSISTENCY;
    switch (op->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        return apply_create(a, op, touched);
    case ZN_OP_DELETE:
        return apply_delete_node(a, index_find(a->t, op->path, strlen(op->path)));
    case ZN_OP_SETDATA:
        return apply_set_data(a, op, touched);
    case ZN_OP_SETACL:
        return apply_set_acl(a, op, touched);
    case ZN_OP_CHECK:
        /* Prep checked the version; applying a check changes nothing. */
        *touched = index_find(a->t, op->path, strlen(op->path));
        return *touched ? 0 : ZN_DATAINCONSISTENCY;
    case ZN_OP_ERROR:
        return 0;
    default:
        return ZN_DATAINCONSISTENCY;
    }
}

static int apply_create_session(struct apply *a, const struct txn_op *op)
{
    struct tree *t = a->t;
    struct tree_session *s;
    int rc = session_insert(t, a->hdr->session_id, op->timeout_ms, &s);
    if (rc != 0)
        return rc == ZN_BADARGUMENTS ? ZN_DATAINCONSISTENCY : rc;
    undo_push(a, UNDO_SESSION_CREATE)->session = s;
    return 0;
}

static int compare_node_paths(const void *x, const void *y)
{
    const struct tree_node *const *a = x, *const *b = y;
    return strcmp((*a)->path, (*b)->path);
}

/* Deletes the session's ephemerals (those the txn names first, in its order,
 * then any others in path order, so every member deletes the same way) and
 * then the session.  A session already gone makes this a no-op. */
static int apply_close_session(struct apply *a, const struct txn_op *op)
{
    struct tree *t = a->t;
    int64_t id = a->hdr->session_id;
    struct tree_session *s = session_find(t, id);
    if (s == NULL)
        return 0;
    for (int32_t i = 0; i < op->paths.count; i++) {
        if (op->paths.items[i] == NULL)
            return ZN_DATAINCONSISTENCY;
        struct tree_node *n = index_find(t, op->paths.items[i], strlen(op->paths.items[i]));
        if (n == NULL || n->ephemeral_owner != id)
            continue; /* ZooKeeper ignores NONODE here too */
        int rc = apply_delete_node(a, n);
        if (rc != 0)
            return rc;
    }
    if (s->eph_count > 0) {
        size_t count = s->eph_count, i = 0;
        struct tree_node **rest = malloc(sizeof(*rest) * count);
        if (rest == NULL)
            return ZN_NOMEMORY;
        for (struct tree_node *n = s->eph_head; n; n = n->eph_next)
            rest[i++] = n;
        qsort(rest, count, sizeof(*rest), compare_node_paths);
        for (i = 0; i < count; i++) {
            int rc = apply_delete_node(a, rest[i]);
            if (rc != 0) {
                free(rest);
                return rc;
            }
        }
        free(rest);
    }
    session_unlink(t, s);
    undo_push(a, UNDO_SESSION_CLOSE)->session = s;
    return 0;
}

static char *arena_strdup(struct zn_arena *arena, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = zn_arena_alloc(arena, len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

/* Prepares one result before the tree changes (so no allocation is left for
 * after): type and a copy of the path. */
static int result_prepare(struct zn_arena *arena, struct zn_response *r, const struct txn_op *op)
{
    memset(r, 0, sizeof(*r));
    r->type = op->type;
    r->err = op->type == ZN_OP_ERROR ? op->err : 0;
    if (op_has_path(op->type) && op->path != NULL) {
        r->path = arena_strdup(arena, op->path);
        if (r->path == NULL)
            return ZN_NOMEMORY;
    }
    return 0;
}

static void result_finish(struct zn_response *r, const struct tree_node *touched)
{
    if (touched != NULL && r->type != ZN_OP_CHECK)
        tree_node_stat(touched, &r->stat);
}

/* ZooKeeper's multi rule (DataTree.processTxn): when any op is an ERROR the
 * whole multi fails: ops before the first error report 0, ops after it
 * RUNTIMEINCONSISTENCY, and nothing changes. */
static bool multi_failed(const struct txn *txn)
{
    for (int32_t i = 0; i < txn->op_count; i++) {
        if (txn->ops[i].type == ZN_OP_ERROR)
            return true;
    }
    return false;
}

static int apply_multi(struct apply *a, const struct txn *txn, struct zn_arena *arena, struct zn_response *result)
{
    struct zn_response *results = NULL;
    if (result != NULL && txn->op_count > 0) {
        results = zn_arena_alloc(arena, sizeof(*results) * (size_t)txn->op_count);
        if (results == NULL)
            return ZN_NOMEMORY;
        for (int32_t i = 0; i < txn->op_count; i++) {
            if (result_prepare(arena, &results[i], &txn->ops[i]) != 0)
                return ZN_NOMEMORY;
        }
    }
    bool failed = multi_failed(txn);
    bool post_failed = false;
    int32_t first_err = 0;
    for (int32_t i = 0; i < txn->op_count; i++) {
        const struct txn_op *op = &txn->ops[i];
        if (!txn_op_allowed_in_multi(op->type))
            return ZN_DATAINCONSISTENCY;
        int32_t err = 0;
        if (op->type == ZN_OP_ERROR) {
            post_failed = true;
            err = op->err;
        } else if (failed) {
            err = post_failed ? ZN_RUNTIMEINCONSISTENCY : ZN_OK;
        } else {
            struct tree_node *touched;
            int rc = apply_op(a, op, &touched);
            if (rc != 0)
                return rc;
            if (results)
                result_finish(&results[i], touched);
        }
        if (results && (failed || op->type == ZN_OP_ERROR)) {
            results[i].type = ZN_OP_ERROR;
            results[i].err = err;
            results[i].path = NULL;
        }
        if (err != 0 && first_err == 0)
            first_err = err;
    }
    if (result) {
        result->err = first_err;
        result->result_count = txn->op_count;
        result->results = results;
    }
    return 0;
}

/* How many undo entries and events a txn can need, so both are allocated
 * before anything changes. */
static size_t apply_capacity(const struct tree *t, const struct txn *txn)
{
    size_t ops = 1;
    if (txn->hdr.type == ZN_OP_MULTI)
        ops = (size_t)(txn->op_count > 0 ? txn->op_count : 0) + 1;
    else if (txn->hdr.type == ZN_OP_CLOSESESSION)
        ops = (size_t)(txn->op.paths.count > 0 ? txn->op.paths.count : 0) +
              tree_session_ephemeral_count(t, txn->hdr.session_id) + 1;
    return ops * TREE_UNDO_PER_OP;
}

static int apply_body(struct apply *a, const struct txn *txn, struct zn_arena *arena, struct zn_response *result)
{
    if (txn->hdr.type == ZN_OP_MULTI)
        return apply_multi(a, txn, arena, result);
    if (txn->op.type != txn->hdr.type)
        return ZN_DATAINCONSISTENCY;
    if (result != NULL && result_prepare(arena, result, &txn->op) != 0)
        return ZN_NOMEMORY;
    switch (txn->hdr.type) {
    case ZN_OP_CREATESESSION:
        return apply_create_session(a, &txn->op);
    case ZN_OP_CLOSESESSION:
        return apply_close_session(a, &txn->op);
    case ZN_OP_SETACL:
    case ZN_OP_ERROR:
    case ZN_OP_CHECK:
    default:
        if (!txn_op_allowed_in_multi(txn->hdr.type) && txn->hdr.type != ZN_OP_SETACL)
            return ZN_DATAINCONSISTENCY;
        struct tree_node *touched;
        int rc = apply_op(a, &txn->op, &touched);
        if (rc == 0 && result != NULL)
            result_finish(result, touched);
        return rc;
    }
}

int tree_apply(struct tree *t, const struct txn *txn, tree_event_fn on_event, void *ctx,
               struct zn_arena *arena, struct zn_response *result)
{
    ZN_ASSERT(t != NULL && txn != NULL);
    ZN_ASSERT(result == NULL || arena != NULL);
    if (txn->hdr.zxid <= t->last_zxid)
        return ZN_DATAINCONSISTENCY; /* applied twice, or out of order */
    if (txn->hdr.type == ZN_OP_MULTI && (txn->op_count < 0 || txn->op_count > TXN_MAX_MULTI_OPS))
        return ZN_DATAINCONSISTENCY;
    if (result != NULL) {
        memset(result, 0, sizeof(*result));
        result->type = txn->hdr.type;
    }

    struct apply a = {.t = t, .hdr = &txn->hdr};
    a.undo_cap = apply_capacity(t, txn);
    a.event_cap = a.undo_cap / TREE_UNDO_PER_OP * 2;
    /* A single-op txn (nearly all of them) needs no allocation. */
    struct undo undo_inline[TREE_UNDO_PER_OP];
    struct apply_event events_inline[2];
    bool inline_room = a.undo_cap <= TREE_UNDO_PER_OP && a.event_cap <= 2;
    a.undo = inline_room ? undo_inline : malloc(sizeof(*a.undo) * a.undo_cap);
    a.events = inline_room ? events_inline : malloc(sizeof(*a.events) * a.event_cap);
    if (a.undo == NULL || a.events == NULL) {
        if (!inline_room) {
            free(a.undo);
            free(a.events);
        }
        return ZN_NOMEMORY;
    }
    int rc = apply_body(&a, txn, arena, result);
    if (rc != 0) {
        apply_rollback(&a);
    } else {
        t->last_zxid = txn->hdr.zxid;
        if (on_event) {
            for (size_t i = 0; i < a.event_count; i++)
                on_event(ctx, a.events[i].type, a.events[i].path);
        }
    }
    apply_release(&a);
    if (!inline_room) {
        free(a.undo);
        free(a.events);
    }
    return rc;
}

/* --------------------------------------------------------------- snapshots */

#define TREE_SNAPSHOT_MAGIC 0x5a4e5431 /* "ZNT1" */

int32_t tree_snapshot_format(const void *data, size_t len)
{
    const unsigned char *b = data;
    if (len < 8 || ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) !=
                       TREE_SNAPSHOT_MAGIC)
        return -1;
    return (int32_t)((uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7]);
}
/* Decoded strings of this many nodes share the arena before it is reset,
 * bounding the memory a load uses beyond the tree itself. */
#define TREE_LOAD_ARENA_NODES 4096

static const struct tree_node *preorder_next(const struct tree_node *n)
{
    if (n->child_count > 0)
        return n->children[0];
    while (n->parent) {
        const struct tree_node *p = n->parent;
        if (n->index_in_parent + 1 < p->child_count)
            return p->children[n->index_in_parent + 1];
        n = p;
    }
    return NULL;
}

/* czxid mzxid ctime mtime (8 each), version cversion aversion (4 each),
 * ephemeralOwner pzxid (8 each), kind (4), and from format 3 ptime (8). */
#define SNAPSHOT_NODE_TAIL_BYTES (4 * 8 + 3 * 4 + 2 * 8 + 4 + 8)

static inline uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return p + 4;
}

static inline uint8_t *put_be64(uint8_t *p, uint64_t v)
{
    return put_be32(put_be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

size_t tree_snapshot_bound(const struct tree *t)
{
    size_t acl_max = 4; /* a vector of none */
    struct zn_hiter it;
    zn_hiter_init(&it, &t->acls);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct acl_shared *a = ZN_HENTRY(l, const struct acl_shared, link);
        if (a->wire_len > acl_max)
            acl_max = a->wire_len;
    }
    /* header, sessions, node count; per node two lengths, the ACL and the
     * fixed fields besides its path and data (counted in data_bytes) */
    return 4 + 4 + 8 + 8 + 4 + zn_htable_count(&t->sessions) * 12 + 8 + t->data_bytes +
           zn_htable_count(&t->index) * (4 + 4 + acl_max + SNAPSHOT_NODE_TAIL_BYTES);
}

int tree_serialize(const struct tree *t, struct jute_writer *w)
{
    ZN_ASSERT(t != NULL && w != NULL);
    jute_write_int(w, TREE_SNAPSHOT_MAGIC);
    jute_write_int(w, TREE_SNAPSHOT_VERSION);
    jute_write_long(w, t->last_zxid);
    jute_write_long(w, (int64_t)t->digest);
    jute_write_int(w, (int32_t)zn_htable_count(&t->sessions));
    struct zn_hiter it;
    zn_hiter_init(&it, &t->sessions);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct tree_session *s = ZN_HENTRY(l, const struct tree_session, link);
        jute_write_long(w, s->id);
        jute_write_int(w, s->timeout_ms);
    }
    jute_write_long(w, (int64_t)zn_htable_count(&t->index));
    /* Per node: path, data, ACL, then the fixed fields in one block.  The
     * ACL's bytes are its shared copy's (acl_shared.wire), and the path's
     * length is stored: a snapshot child serialises up to a million nodes
     * a second while the server takes writes on the same 2 cores. */
    uint8_t tail[SNAPSHOT_NODE_TAIL_BYTES];
    for (const struct tree_node *n = t->root; n && !w->error; n = preorder_next(n)) {
        jute_write_buffer(w, n->path, (int32_t)n->path_len);
        jute_write_buffer(w, n->data_len > 0 ? (const void *)n->data : "", n->data_len);
        if (n->acl.count > 0) {
            const struct acl_shared *a = acl_shared_of(n->acl.items);
            jute_write_raw(w, a->wire, a->wire_len);
        } else {
            jute_write_acl_vec(w, &n->acl);
        }
        uint8_t *p = tail;
        p = put_be64(p, (uint64_t)n->czxid);
        p = put_be64(p, (uint64_t)n->mzxid);
        p = put_be64(p, (uint64_t)n->ctime);
        p = put_be64(p, (uint64_t)n->mtime);
        p = put_be32(p, (uint32_t)n->version);
        p = put_be32(p, (uint32_t)n->cversion);
        p = put_be32(p, (uint32_t)n->aversion);
        p = put_be64(p, (uint64_t)n->ephemeral_owner);
        p = put_be64(p, (uint64_t)n->pzxid);
        p = put_be32(p, (uint32_t)n->kind);
        p = put_be64(p, (uint64_t)n->ptime);
        ZN_ASSERT(p == tail + sizeof tail);
        jute_write_raw(w, tail, sizeof tail);
    }
    return w->error;
}

static int load_sessions(struct tree *t, struct jute_reader *r)
{
    int32_t count = 0;
    jute_read_int(r, &count);
    if (r->error || count < 0 || count > TREE_MAX_SESSIONS || (size_t)count > jute_remaining(r) / 12)
        return ZN_CORRUPT;
    for (int32_t i = 0; i < count; i++) {
        int64_t id = 0;
        int32_t timeout_ms = 0;
        jute_read_long(r, &id);
        jute_read_int(r, &timeout_ms);
        if (r->error)
            return ZN_CORRUPT;
        int rc = session_insert(t, id, timeout_ms, NULL);
        if (rc != 0)
            return rc == ZN_BADARGUMENTS ? ZN_CORRUPT : rc;
    }
    return 0;
}

/*
 * Loading is pipelined over LOAD_AHEAD nodes, for the path index: with 1M
 * nodes its buckets and chains are far bigger than the caches, and the
 * duplicate check and insertion of each node waited on two cache misses (the
 * bucket, then the first node of its chain), a fifth of a restart.  A node is
 * parsed and its bucket prefetched; one node later the head of its chain is
 * prefetched; one more node later it is checked against the index and
 * attached.  A parsed node is complete but for its links: its parent pointer
 * is set (so the next node's parent search can walk up through it), it is not
 * yet in the index nor among its parent's children.  Parents precede their
 * children in the stream, so a node's parent is attached first.
 */
#define LOAD_AHEAD 2

struct load_state {
    struct tree_node *pending[LOAD_AHEAD + 1]; /* parsed, not attached; oldest first */
    size_t count;
    struct tree_node *last;                    /* the node parsed last */
    int32_t format;                            /* the snapshot's format version */
};

/*
 * The parent of path while loading.  Snapshots are written in preorder, so it
 * is the node parsed last or one of its ancestors: found by walking up from
 * there, without hashing or probing the index (a restart with 1M nodes spent
 * half its CPU in index_find and path hashing).  A stream in any other order
 * still loads, through the index and the nodes not yet in it.  Same answer as
 * find_parent.
 */
static struct tree_node *load_find_parent(const struct tree *t, const struct load_state *ls,
                                          const char *path, size_t len)
{
    long pl = path_parent_len(path, len);
    if (pl < 0 || (len == 1 && path[0] == '/'))
        return NULL;
    if (pl == 0)
        pl = 1; /* the root, "/", which may still be pending */
    for (struct tree_node *a = ls->last; a != NULL; a = a->parent) {
        if (a->path_len == (size_t)pl && memcmp(a->path, path, (size_t)pl) == 0)
            return a;
    }
    for (size_t i = 0; i < ls->count; i++) {
        struct tree_node *a = ls->pending[i];
        if (a->path_len == (size_t)pl && memcmp(a->path, path, (size_t)pl) == 0)
            return a;
    }
    return index_find(t, path, (size_t)pl);
}

/* Reads one node into *out, complete but for its links (see LOAD_AHEAD). */
static int load_parse_node(struct tree *t, struct jute_reader *r, const struct load_state *ls,
                           struct tree_node **out)
{
    char *path = NULL;
    struct jute_buf data = {NULL, -1};
    struct zn_acl_vec acl = {0, NULL};
    jute_read_string(r, &path);
    jute_read_buffer(r, &data);
    jute_read_acl_vec(r, &acl);
    if (r->error || path == NULL || path[0] != '/')
        return ZN_CORRUPT;
    size_t len = strlen(path);
    struct tree_node *parent = load_find_parent(t, ls, path, len);
    /* the root first (and only once), then nodes whose parent came before */
    bool is_root = len == 1;
    bool root_loaded = t->root != NULL || ls->last != NULL;
    if (is_root == root_loaded || (!is_root && parent == NULL))
        return ZN_CORRUPT;
    struct tree_node *n = node_alloc(path, len);
    if (n == NULL)
        return ZN_NOMEMORY;
    n->parent = parent;
    jute_read_long(r, &n->czxid);
    jute_read_long(r, &n->mzxid);
    jute_read_long(r, &n->ctime);
    jute_read_long(r, &n->mtime);
    jute_read_int(r, &n->version);
    jute_read_int(r, &n->cversion);
    jute_read_int(r, &n->aversion);
    jute_read_long(r, &n->ephemeral_owner);
    jute_read_long(r, &n->pzxid);
    jute_read_int(r, &n->kind);
    if (ls->format >= 3)
        jute_read_long(r, &n->ptime);
    int rc = 0;
    if (r->error || n->kind < ZN_NODE_KIND_UNKNOWN || n->kind > ZN_NODE_KIND_DIRECTORY ||
        (owner_is_session(n->ephemeral_owner) && session_find(t, n->ephemeral_owner) == NULL) ||
        (parent && owner_is_session(parent->ephemeral_owner)))
        rc = ZN_CORRUPT;
    if (rc == 0 && (acl_copy(t, &acl, &n->acl) != 0 || data_copy(&data, &n->data, &n->data_len) != 0))
        rc = ZN_NOMEMORY;
    if (rc != 0) {
        node_free(t, n);
        return rc;
    }
    *out = n;
    return 0;
}

/* Checks a parsed node against the index and attaches it (n is consumed:
 * attached, or freed on error). */
static int load_link_node(struct tree *t, struct tree_node *n)
{
    struct tree_node *parent = n->parent;
    int rc = 0;
    if (index_find_hashed(t, n->path, n->path_len, n->link.hash) != NULL ||
        (parent && parent->child_count >= TREE_MAX_CHILDREN))
        rc = ZN_CORRUPT;
    else if (parent && child_reserve(parent) != 0)
        rc = ZN_NOMEMORY;
    if (rc != 0) {
        node_free(t, n);
        return rc;
    }
    node_attach(t, parent, n);
    if (parent == NULL)
        t->root = n;
    return 0;
}

/* Attaches the oldest pending node. */
static int load_link_oldest(struct tree *t, struct load_state *ls)
{
    struct tree_node *n = ls->pending[0];
    ls->count--;
    memmove(ls->pending, ls->pending + 1, ls->count * sizeof ls->pending[0]);
    int rc = load_link_node(t, n);
    if (rc != 0)
        ls->last = NULL; /* n may have been it, and is freed */
    return rc;
}

/* Frees what was parsed and not attached (after an error). */
static void load_drop_pending(struct tree *t, struct load_state *ls)
{
    for (size_t i = 0; i < ls->count; i++)
        node_free(t, ls->pending[i]);
    ls->count = 0;
    ls->last = NULL;
}

static int load_nodes(struct tree *t, struct jute_reader *r, struct zn_arena *arena,
                      int64_t node_count, int32_t format)
{
    struct load_state ls = {.count = 0, .last = NULL, .format = format};
    int rc = 0;
    for (int64_t i = 0; i < node_count && rc == 0; i++) {
        if (i % TREE_LOAD_ARENA_NODES == 0)
            zn_arena_reset(arena);
        struct tree_node *n;
        if ((rc = load_parse_node(t, r, &ls, &n)) != 0)
            break;
        __builtin_prefetch(zn_htable_slot(&t->index, n->link.hash));
        /* the node before: its bucket has arrived; its chain's head next */
        if (ls.count > 0) {
            const struct tree_node *prev = ls.pending[ls.count - 1];
            const struct zn_hlink *head = *(struct zn_hlink *const *)zn_htable_slot(&t->index, prev->link.hash);
            if (head)
                __builtin_prefetch(head);
        }
        ls.pending[ls.count++] = n;
        ls.last = n;
        if (ls.count > LOAD_AHEAD)
            rc = load_link_oldest(t, &ls);
    }
    while (rc == 0 && ls.count > 0)
        rc = load_link_oldest(t, &ls);
    if (rc != 0)
        load_drop_pending(t, &ls);
    return rc;
}

static int load_all(struct tree *t, struct jute_reader *r, struct zn_arena *arena)
{
    int32_t magic = 0, version = 0;
    int64_t last_zxid = 0, digest = 0, node_count = 0;
    jute_read_int(r, &magic);
    jute_read_int(r, &version);
    jute_read_long(r, &last_zxid);
    jute_read_long(r, &digest);
    /* Format 2 has no ptime (read as 0, unknown); it is otherwise format 3. */
    if (r->error || magic != TREE_SNAPSHOT_MAGIC || version < TREE_SNAPSHOT_OLDEST_VERSION || version > TREE_SNAPSHOT_VERSION)
        return ZN_CORRUPT;
    int rc = load_sessions(t, r);
    if (rc != 0)
        return rc;
    jute_read_long(r, &node_count);
    /* A node takes at least 60 bytes; a larger count is a lie. */
    if (r->error || node_count < 1 || (uint64_t)node_count > jute_remaining(r) / 60)
        return ZN_CORRUPT;
    /* The index sized once for every node (node_count is bounded by the
     * input's size above), not doubled and rehashed ~20 times on the way. */
    if (zn_htable_reserve(&t->index, (size_t)node_count) != 0)
        return ZN_NOMEMORY;
    if ((rc = load_nodes(t, r, arena, node_count, version)) != 0)
        return rc;
    if (jute_remaining(r) != 0 || t->digest != (uint64_t)digest)
        return ZN_CORRUPT;
    t->last_zxid = last_zxid;
    return quota_rebuild(t);
}

static int quota_rebuild(struct tree *t)
{
    quota_clear(t);
    for (const struct tree_node *n = t->root; n; n = preorder_next(n)) {
        const char *real = limit_node_real_path(n, n->parent);
        struct tree_quota *added;
        if (real != NULL && quota_add(t, real, &added) != 0)
            return ZN_NOMEMORY;
    }
    return 0;
}

/* The member-local config node contents a snapshot load keeps. */
struct saved_config {
    bool present;
    uint8_t *data;
    int32_t data_len;
    int64_t mzxid, mtime;
    int32_t version;
};

static int config_save(const struct tree *t, struct saved_config *out)
{
    memset(out, 0, sizeof(*out));
    const struct tree_node *n = index_find(t, TREE_CONFIG_PATH, sizeof(TREE_CONFIG_PATH) - 1);
    if (n == NULL)
        return 0;
    struct jute_buf src = {n->data, n->data_len};
    if (data_copy(&src, &out->data, &out->data_len) != 0)
        return ZN_NOMEMORY;
    out->present = true;
    out->mzxid = n->mzxid;
    out->mtime = n->mtime;
    out->version = n->version;
    return 0;
}

int tree_deserialize(struct tree *fresh, const void *data, size_t len)
{
    ZN_ASSERT(fresh != NULL && (data != NULL || len == 0));
    ZN_ASSERT(fresh->last_zxid == 0 && zn_htable_count(&fresh->sessions) == 0);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, data, len, &arena);
    struct saved_config config;
    if (config_save(fresh, &config) != 0) {
        zn_arena_free(&arena);
        return ZN_NOMEMORY;
    }
    tree_clear(fresh);
    int rc = load_all(fresh, &r, &arena);
    zn_arena_free(&arena);
    if (rc != 0) {
        tree_clear(fresh);
        if (tree_init_nodes(fresh) != 0) {
            free(config.data);
            return ZN_NOMEMORY;
        }
    }
    /* The snapshot carries the config of the member that wrote it; this
     * member keeps its own (its digest does not include it). */
    if (config.present && config_store(fresh, config.data, config.data_len, config.mzxid, config.version,
                                       config.mtime) == ZN_NOMEMORY && rc == 0)
        rc = ZN_NOMEMORY;
    free(config.data);
    return rc;
}

/* ---------------------------------------------------------------- import */

void tree_import_begin(struct tree *t)
{
    ZN_ASSERT(t != NULL && t->last_zxid == 0);
    tree_clear(t);
}

int tree_import_session(struct tree *t, int64_t id, int32_t timeout_ms)
{
    return session_insert(t, id, timeout_ms, NULL);
}

int tree_import_node(struct tree *t, const char *path, struct jute_buf data,
                     const struct zn_acl_vec *acl, const struct tree_persisted_stat *stat)
{
    size_t len = strlen(path);
    bool is_root = len == 1 && path[0] == '/';
    if (len == 0 || path[0] != '/' || len > PATH_MAX_BYTES || (t->root == NULL) != is_root ||
        index_find(t, path, len) != NULL)
        return ZN_BADARGUMENTS;
    struct tree_node *parent = is_root ? NULL : find_parent(t, path);
    if ((!is_root && parent == NULL) || (parent && owner_is_session(parent->ephemeral_owner)) ||
        (parent && parent->child_count >= TREE_MAX_CHILDREN) ||
        (owner_is_session(stat->ephemeral_owner) && session_find(t, stat->ephemeral_owner) == NULL))
        return ZN_BADARGUMENTS;
    if (parent && child_reserve(parent) != 0)
        return ZN_NOMEMORY;
    struct tree_node *n = node_alloc(path, len);
    if (n == NULL)
        return ZN_NOMEMORY;
    if (acl_copy(t, acl, &n->acl) != 0 || data_copy(&data, &n->data, &n->data_len) != 0) {
        node_free(t, n);
        return ZN_NOMEMORY;
    }
    n->czxid = stat->czxid;
    n->mzxid = stat->mzxid;
    n->pzxid = stat->pzxid;
    n->ctime = stat->ctime;
    n->mtime = stat->mtime;
    n->ephemeral_owner = stat->ephemeral_owner;
    n->version = stat->version;
    n->cversion = stat->cversion;
    n->aversion = stat->aversion;
    n->kind = ZN_NODE_KIND_UNKNOWN;
    node_attach(t, parent, n);
    if (is_root)
        t->root = n;
    return 0;
}

/* DataTree.deleteNode moves the parent's pzxid before it finds the child gone. */
static void import_touch_parent(struct tree *t, const char *path, int64_t zxid)
{
    struct tree_node *parent = path && path[0] == '/' ? find_parent(t, path) : NULL;
    if (parent && index_find(t, path, strlen(path)) == NULL && zxid > parent->pzxid) {
        parent->pzxid = zxid;
        node_redigest(t, parent);
    }
}

int tree_import_replay(struct tree *t, const struct txn *txn, uint64_t *skipped_ops)
{
    int64_t zxid = txn->hdr.zxid;
    if (zxid <= t->last_zxid)
        return ZN_DATAINCONSISTENCY;
    if (txn->hdr.type == ZN_OP_CLOSESESSION) {
        for (int32_t i = 0; i < txn->op.paths.count; i++)
            import_touch_parent(t, txn->op.paths.items[i], zxid);
    }
    int rc = tree_apply(t, txn, NULL, NULL, NULL, NULL);
    if (rc != ZN_DATAINCONSISTENCY || txn->hdr.type == ZN_OP_CLOSESESSION)
        return rc;
    bool multi = txn->hdr.type == ZN_OP_MULTI;
    int32_t count = multi ? txn->op_count : 1;
    for (int32_t i = 0; i < count; i++) {
        struct txn one = {.hdr = txn->hdr, .op = multi ? txn->ops[i] : txn->op};
        one.hdr.type = one.op.type;
        t->last_zxid = zxid - 1; /* every op at the txn's zxid */
        rc = tree_apply(t, &one, NULL, NULL, NULL, NULL);
        if (rc == ZN_DATAINCONSISTENCY) {
            (*skipped_ops)++;
            if (one.op.type == ZN_OP_DELETE)
                import_touch_parent(t, one.op.path, zxid);
            rc = 0;
        }
        if (rc != 0)
            return rc;
    }
    t->last_zxid = zxid;
    return 0;
}

int tree_import_end(struct tree *t, int64_t last_zxid)
{
    if (t->root == NULL)
        return ZN_BADARGUMENTS;
    struct zn_acl open = {ZN_PERM_ALL, {"world", "anyone"}};
    struct zn_acl read = {ZN_PERM_READ, {"world", "anyone"}};
    struct zn_acl_vec open_acl = {1, &open}, read_acl = {1, &read};
    if ((!tree_get(t, "/zookeeper") && !add_system_node(t, "/zookeeper", &open_acl, 0)) ||
        (!tree_get(t, "/zookeeper/quota") && !add_system_node(t, "/zookeeper/quota", &open_acl, 0)) ||
        (!tree_get(t, TREE_CONFIG_PATH) && !add_system_node(t, TREE_CONFIG_PATH, &read_acl, -1)))
        return ZN_NOMEMORY;
    t->last_zxid = last_zxid;
    int rc = quota_rebuild(t);
    ZN_ASSERT(rc != 0 || tree_check(t) == 0);
    return rc;
}

/* ------------------------------------------------------------ invariants */

int tree_check(const struct tree *t)
{
    size_t reachable = 0, bytes = 0, ephemerals = 0;
    uint64_t digest = 0;
    for (const struct tree_node *n = t->root; n; n = preorder_next(n)) {
        reachable++;
        bytes += node_size_bytes(n);
        if (n->digest != node_compute_digest(n) || index_find(t, n->path, n->path_len) != n)
            return ZN_DATAINCONSISTENCY;
        digest += n->digest;
        if (n->parent && n->parent->children[n->index_in_parent] != n)
            return ZN_DATAINCONSISTENCY;
        if (n != t->root && find_parent(t, n->path) != n->parent)
            return ZN_DATAINCONSISTENCY;
        if (owner_is_session(n->ephemeral_owner)) {
            if (session_find(t, n->ephemeral_owner) == NULL)
                return ZN_DATAINCONSISTENCY;
            ephemerals++;
        }
    }
    size_t listed = 0;
    struct zn_hiter it;
    zn_hiter_init(&it, &t->sessions);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct tree_session *s = ZN_HENTRY(l, const struct tree_session, link);
        digest += session_digest(s->id, s->timeout_ms);
        size_t count = 0;
        for (const struct tree_node *n = s->eph_head; n; n = n->eph_next) {
            if (n->ephemeral_owner != s->id)
                return ZN_DATAINCONSISTENCY;
            count++;
        }
        if (count != s->eph_count)
            return ZN_DATAINCONSISTENCY;
        listed += count;
    }
    if (reachable != zn_htable_count(&t->index) || bytes != t->data_bytes || digest != t->digest || listed != ephemerals ||
        ephemerals != t->ephemeral_count)
        return ZN_DATAINCONSISTENCY;
    size_t limits = 0;
    for (const struct tree_node *n = t->root; n; n = preorder_next(n)) {
        const char *real = limit_node_real_path(n, n->parent);
        if (real == NULL)
            continue;
        if (quota_find(t, real, strlen(real)) == NULL)
            return ZN_DATAINCONSISTENCY;
        limits++;
    }
    if (limits != zn_htable_count(&t->quotas))
        return ZN_DATAINCONSISTENCY;
    return 0;
}
