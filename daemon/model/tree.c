/*
 * tree: the in-memory znode tree (see tree.h for the contract).  This file
 * owns the nodes, the path index and the children sets, the tree's lifetime
 * and its getters, the member-local config node, and the invariant checker.
 * The rest of the tree is split by concept around tree_internal.h (which
 * lists the files and the invariants they keep).
 *
 * Nodes are found by full path in lib/htable (the node embeds the chain
 * link; path and data follow its fixed fields in its one allocation); it grows by moving a few
 * buckets per insert, so no write pays for rehashing millions of nodes, and
 * an insert cannot fail.  Each node has a parent link and an array of child
 * pointers (with their count; a leaf has none); a child knows its index in
 * that array, so add and remove are O(1) (remove swaps the last child into
 * the hole) and getChildren is O(children).  tree_node_attach and
 * tree_node_detach are the only ways into and out of the index, the
 * children, the sessions' ephemeral arrays and the digest, so they keep
 * invariants 1 to 4 for every caller.
 *
 * Memory (issue 18; bench/tree_mem measures it): a node is one malloc'd
 * block, its fixed fields then its owner (when not 0), path and data
 * (tree_internal.h); nothing a node rarely uses costs every node a field.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "path.h"
#include "tree_internal.h"

#define TREE_INITIAL_BUCKETS 1024
/* Nodes per bucket of the path index before it grows: 2 halves the buckets'
 * 8 bytes a node (4.2 to 8.4 bytes a node instead of 8.4 to 16.8) for chains
 * of 1 to 2 nodes on average instead of 0.5 to 1; a chain's extra nodes
 * cost a cache miss each in a lookup of a large tree, but most are told
 * apart by the hash stored in their link without reading their path. */
#define TREE_INDEX_LOAD 2
#define TREE_INITIAL_SESSION_BUCKETS 256
#define TREE_INITIAL_QUOTA_BUCKETS 16
#define TREE_INITIAL_ACL_BUCKETS 16

/* -------------------------------------------------------------------- nodes */

int tree_data_copy(const struct jute_buf *src, uint8_t **data, int32_t *len)
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

/* The data area's room: what the allocator gave past the path. */
static size_t data_room(const struct tree_node *n)
{
    return malloc_usable_size((void *)(uintptr_t)n) - (size_t)(tree_node_data_area(n) - (const uint8_t *)n);
}

struct tree_node *tree_node_alloc(const char *path, size_t len, const struct jute_buf *data, int64_t owner)
{
    size_t dlen = data && data->len > 0 ? (size_t)data->len : 0;
    size_t area = dlen > sizeof(uint8_t *) ? dlen : sizeof(uint8_t *);
    size_t owner_bytes = owner != 0 ? sizeof(owner) : 0;
    struct tree_node *n = malloc(offsetof(struct tree_node, tail) + owner_bytes + len + 1 + area);
    if (n == NULL)
        return NULL;
    memset(n, 0, offsetof(struct tree_node, tail));
    if (owner != 0) {
        n->flags |= TREE_NODE_OWNED | (tree_owner_is_session(owner) ? TREE_NODE_EPHEMERAL : 0);
        memcpy(n->tail, &owner, sizeof(owner));
    }
    char *p = tree_path_of(n);
    memcpy(p, path, len);
    p[len] = '\0';
    n->path_len = (uint32_t)len;
    n->link.hash = zn_hash(path, len);
    n->data_len = data ? (data->len < 0 ? -1 : data->len) : 0;
    if (dlen > 0)
        memcpy(tree_node_data_area(n), data->data, dlen);
    return n;
}

int tree_node_set_data(struct tree_node *n, const uint8_t *bytes, int32_t len, uint8_t *room,
                       size_t room_len, struct tree_old_data *old)
{
    size_t old_len = (size_t)tree_node_data_bytes(n), new_len = len > 0 ? (size_t)len : 0;
    bool was_out = (n->flags & TREE_NODE_DATA_OUT) != 0;
    uint8_t *area = tree_node_data_area(n), *saved = NULL, *fresh = NULL;
    bool owned = true;
    if (was_out) {
        memcpy(&saved, area, sizeof(saved));
    } else if (old_len > 0 && old_len <= room_len) {
        saved = memcpy(room, area, old_len);
        owned = false;
    } else if (old_len > 0) {
        if ((saved = malloc(old_len)) == NULL)
            return ZN_NOMEMORY;
        memcpy(saved, area, old_len);
    }
    if (new_len > data_room(n)) {
        if ((fresh = malloc(new_len)) == NULL) {
            if (!was_out && owned)
                free(saved);
            return ZN_NOMEMORY;
        }
        memcpy(fresh, bytes, new_len);
        memcpy(area, &fresh, sizeof(fresh));
        n->flags |= TREE_NODE_DATA_OUT;
    } else {
        if (new_len > 0)
            memcpy(area, bytes, new_len);
        n->flags &= (uint8_t)~TREE_NODE_DATA_OUT;
    }
    n->data_len = len < 0 ? -1 : len;
    *old = (struct tree_old_data){.bytes = saved, .owned = owned};
    return 0;
}

void tree_node_restore_data(struct tree_node *n, struct tree_old_data old, int32_t old_len)
{
    uint8_t *area = tree_node_data_area(n);
    if (n->flags & TREE_NODE_DATA_OUT) {
        uint8_t *out;
        memcpy(&out, area, sizeof(out));
        free(out);
    }
    size_t len = old_len > 0 ? (size_t)old_len : 0;
    if (len <= data_room(n)) {
        if (len > 0)
            memcpy(area, old.bytes, len);
        if (old.owned)
            free(old.bytes);
        n->flags &= (uint8_t)~TREE_NODE_DATA_OUT;
    } else {
        ZN_ASSERT(old.owned); /* only data that was in the data area is in room */
        memcpy(area, &old.bytes, sizeof(old.bytes));
        n->flags |= TREE_NODE_DATA_OUT;
    }
    n->data_len = old_len;
}

void tree_node_free(struct tree *t, struct tree_node *n)
{
    if (n == NULL)
        return;
    if (!(n->flags & TREE_NODE_EPHEMERAL))
        free(n->kids); /* else the union holds eph_slot */
    if (n->flags & TREE_NODE_DATA_OUT)
        free((void *)(uintptr_t)tree_node_data_ptr(n));
    tree_acl_release(t, n->acl);
    free(n);
}

/* Room in a node's children array: not stored (4 bytes a node), but what the
 * allocator gave, which is at least what was asked for. */
static size_t child_room(const struct tree_node *parent)
{
    if (parent->kids == NULL)
        return 0;
    return (malloc_usable_size(parent->kids) - offsetof(struct tree_children, at)) / sizeof(parent->kids->at[0]);
}

/* Children arrays up to this many double; larger ones grow by an eighth, so
 * a parent of millions wastes ~6% of its array on average, not up to half
 * (at 10M children, doubling leaves 13.4 bytes a child where 8 are used).
 * The price: ~8 reallocs per size doubling instead of one, each a copy at
 * worst (glibc moves an array above its mmap threshold with mremap). */
#define TREE_CHILDREN_DOUBLE_MAX 1024

/* Makes room for one more child; the only allocation a link can need.  The
 * array grows and never shrinks, so a child put back by an undo finds the
 * room it left. */
int tree_child_reserve(struct tree_node *parent)
{
    if (tree_child_count(parent) < child_room(parent))
        return 0;
    /* From the count, not the room: malloc_usable_size may give a little
     * more than asked, and doubling that (5, 10, 11, 22, ...) ends far
     * above a power of two (1534 for 1000 children). */
    size_t count = tree_child_count(parent), cap = 4;
    if (count >= TREE_CHILDREN_DOUBLE_MAX)
        cap = count + count / 8;
    else
        while (cap <= count)
            cap *= 2;
    struct tree_children *c = realloc(parent->kids, offsetof(struct tree_children, at) + sizeof(c->at[0]) * cap);
    if (c == NULL)
        return ZN_NOMEMORY;
    if (parent->kids == NULL)
        c->count = 0;
    parent->kids = c;
    return 0;
}

static void child_link(struct tree_node *parent, struct tree_node *child)
{
    ZN_ASSERT(tree_child_count(parent) < child_room(parent));
    child->parent = parent;
    child->index_in_parent = parent->kids->count;
    parent->kids->at[parent->kids->count++] = child;
}

static void child_unlink(struct tree_node *child)
{
    struct tree_node *parent = child->parent;
    ZN_ASSERT(parent && parent->kids->at[child->index_in_parent] == child);
    struct tree_node *last = parent->kids->at[--parent->kids->count];
    parent->kids->at[child->index_in_parent] = last;
    last->index_in_parent = child->index_in_parent;
    child->parent = NULL;
}

/* Adds a fully built node under parent: index, children, session's
 * ephemerals, digest, sizes.  The caller reserved room in the parent's
 * children and the session's ephemerals (tree_ephemeral_reserve). */
void tree_node_attach(struct tree *t, struct tree_node *parent, struct tree_node *n)
{
    if (parent)
        child_link(parent, n);
    zn_htable_insert(&t->index, &n->link, n->link.hash);
    if (tree_owner_is_session(tree_node_owner(n))) {
        struct tree_session *s = tree_session_find(t, tree_node_owner(n));
        ZN_ASSERT(s != NULL);
        tree_ephemeral_link(s, n);
        t->ephemeral_count++;
    }
    tree_digest_in(t, n);
    t->data_bytes += tree_node_size_bytes(n);
}

/* The inverse of tree_node_attach; the node stays allocated. */
void tree_node_detach(struct tree *t, struct tree_node *n)
{
    if (n->parent)
        child_unlink(n);
    zn_htable_remove(&t->index, &n->link);
    if (tree_owner_is_session(tree_node_owner(n))) {
        struct tree_session *s = tree_session_find(t, tree_node_owner(n));
        ZN_ASSERT(s != NULL);
        tree_ephemeral_unlink(s, n);
        t->ephemeral_count--;
    }
    tree_digest_out(t, n);
    t->data_bytes -= tree_node_size_bytes(n);
}

struct tree_node *tree_find_parent(const struct tree *t, const char *path)
{
    long pl = path_parent_len(path, strlen(path));
    if (pl < 0)
        return NULL;
    if (pl == 0)
        return strcmp(path, "/") == 0 ? NULL : t->root;
    return tree_index_find(t, path, (size_t)pl);
}

/* -------------------------------------------------------- lifetime, getters */

void tree_clear(struct tree *t)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->index);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        tree_node_free(t, ZN_HENTRY(l, struct tree_node, link));
    zn_htable_clear(&t->index);
    zn_hiter_init(&it, &t->sessions);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        tree_session_free(ZN_HENTRY(l, struct tree_session, link));
    zn_htable_clear(&t->sessions);
    tree_quota_clear(t);
    t->ephemeral_count = 0;
    t->root = NULL;
    t->last_zxid = 0;
    t->data_bytes = 0;
    t->digest = 0;
}

/* Adds one of ZooKeeper's own nodes with a zeroed stat. */
struct tree_node *tree_add_system_node(struct tree *t, const char *path, const struct zn_acl_vec *acl,
                                       int32_t aversion)
{
    struct tree_node *n = tree_node_alloc(path, strlen(path), NULL, 0);
    if (n == NULL)
        return NULL;
    if (tree_node_acl_init(t, n, acl) != 0) {
        tree_node_free(t, n);
        return NULL;
    }
    n->aversion = aversion;
    struct tree_node *parent = tree_find_parent(t, path);
    if (parent && tree_child_reserve(parent) != 0) {
        tree_node_free(t, n);
        return NULL;
    }
    tree_node_attach(t, parent, n);
    return n;
}

int tree_init_nodes(struct tree *t)
{
    /* ZooKeeper's system nodes are created with ACL id -1 (OPEN_ACL_UNSAFE:
     * world:anyone ALL); /zookeeper/config gets READ_ACL_UNSAFE with version
     * -1 (DataTree.addConfigNode). */
    struct zn_acl open = {ZN_PERM_ALL, {"world", "anyone"}};
    struct zn_acl read = {ZN_PERM_READ, {"world", "anyone"}};
    struct zn_acl_vec open_acl = {1, &open}, read_acl = {1, &read};
    t->root = tree_add_system_node(t, "/", &open_acl, 0);
    if (t->root == NULL || !tree_add_system_node(t, "/zookeeper", &open_acl, 0) ||
        !tree_add_system_node(t, "/zookeeper/quota", &open_acl, 0) ||
        !tree_add_system_node(t, "/zookeeper/config", &read_acl, -1))
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
        zn_htable_init(&t->acls, TREE_INITIAL_ACL_BUCKETS) != 0) {
        tree_free(t);
        return NULL;
    }
    zn_htable_set_load(&t->index, TREE_INDEX_LOAD);
    if (tree_init_nodes(t) != 0) {
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
    return tree_index_find(t, path, strlen(path));
}

void tree_node_set_stat(struct tree_node *n, const struct tree_persisted_stat *st)
{
    ZN_ASSERT(tree_node_owner(n) == st->ephemeral_owner);
    n->czxid = st->czxid;
    n->mzxid = st->mzxid;
    n->pzxid = st->pzxid;
    n->ctime = st->ctime;
    n->mtime = st->mtime;
    n->version = st->version;
    n->cversion = st->cversion;
    n->aversion = st->aversion;
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
    out->cversion = (int32_t)((int64_t)n->cversion * 2 - tree_child_count(n));
    out->aversion = n->aversion;
    out->ephemeral_owner = tree_owner_is_session(tree_node_owner(n)) ? tree_node_owner(n) : 0;
    out->data_length = n->data_len > 0 ? n->data_len : 0;
    out->num_children = (int32_t)tree_child_count(n);
    out->pzxid = n->pzxid;
}

int64_t tree_node_raw_owner(const struct tree_node *n) { return tree_node_owner(n); }
bool tree_node_is_container(const struct tree_node *n) { return tree_node_owner(n) == TREE_CONTAINER_OWNER; }

int64_t tree_node_ttl_ms(const struct tree_node *n)
{
    if (tree_node_owner(n) == TREE_CONTAINER_OWNER ||
        (tree_node_owner(n) & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK)
        return -1;
    return tree_node_owner(n) & TREE_TTL_MAX_MS;
}

const char *tree_node_path(const struct tree_node *n) { return tree_path_of(n); }

struct jute_buf tree_node_data(const struct tree_node *n)
{
    struct jute_buf b = {n->data_len > 0 ? tree_node_data_ptr(n) : (const uint8_t *)"", n->data_len};
    return b;
}

struct zn_acl_vec tree_node_acl(const struct tree_node *n) { return tree_node_acl_vec(n); }
int32_t tree_node_kind(const struct tree_node *n) { return tree_node_kind_of(n); }
int64_t tree_node_ptime(const struct tree_node *n) { return n->ptime; }
uint32_t tree_node_child_count(const struct tree_node *n) { return tree_child_count(n); }

const struct tree_node *tree_node_child(const struct tree_node *n, uint32_t index)
{
    ZN_ASSERT(index < tree_child_count(n));
    return n->kids->at[index];
}

const char *tree_node_child_name(const struct tree_node *n, uint32_t index)
{
    const struct tree_node *c = tree_node_child(n, index);
    return tree_path_of(c) + path_parent_len(tree_path_of(c), c->path_len) + 1;
}

int64_t tree_last_zxid(const struct tree *t) { return t->last_zxid; }
size_t tree_node_count(const struct tree *t) { return zn_htable_count(&t->index); }
size_t tree_data_bytes(const struct tree *t) { return t->data_bytes; }
uint64_t tree_digest(const struct tree *t) { return t->digest; }

/* ---------------------------------------------------------- the config node */

/* Replaces the config node's contents; the digest does not change. */
int tree_config_store(struct tree *t, const uint8_t *data, int32_t len, int64_t mzxid, int32_t version,
                      int64_t mtime)
{
    struct tree_node *n = tree_index_find(t, TREE_CONFIG_PATH, sizeof(TREE_CONFIG_PATH) - 1);
    if (n == NULL)
        return ZN_NONODE;
    uint64_t digest_before = tree_node_compute_digest(n);
    size_t size_before = tree_node_size_bytes(n);
    struct tree_old_data old;
    if (tree_node_set_data(n, data, len, NULL, 0, &old) != 0)
        return ZN_NOMEMORY;
    free(old.bytes);
    t->data_bytes -= size_before;
    n->mzxid = mzxid;
    n->version = version;
    n->mtime = mtime;
    t->data_bytes += tree_node_size_bytes(n);
    ZN_ASSERT(tree_node_compute_digest(n) == digest_before);
    return 0;
}

int tree_set_config(struct tree *t, const char *text, size_t len, int64_t config_version, int64_t now_ms)
{
    ZN_ASSERT(t != NULL && (text != NULL || len == 0));
    if (len > TREE_CONFIG_MAX_BYTES)
        return ZN_BADARGUMENTS;
    /* ZooKeeper's initConfigInZKDatabase: setData with version -1 at the
     * config's version as zxid, stamped with the member's wall clock. */
    return tree_config_store(t, (const uint8_t *)text, (int32_t)len, config_version, -1, now_ms);
}

/* --------------------------------------------------------------- invariants */

/* The invariants of tree_internal.h, 1 to 4 here, 5 in tree_quota.c. */
int tree_check(const struct tree *t)
{
    size_t reachable = 0, bytes = 0, ephemerals = 0;
    uint64_t digest = 0;
    for (const struct tree_node *n = t->root; n; n = tree_preorder_next(n)) {
        reachable++;
        bytes += tree_node_size_bytes(n);
        if (tree_index_find(t, tree_path_of(n), n->path_len) != n)
            return ZN_DATAINCONSISTENCY;
        digest += tree_node_compute_digest(n);
        if (n->parent && n->parent->kids->at[n->index_in_parent] != n)
            return ZN_DATAINCONSISTENCY;
        if (n != t->root && tree_find_parent(t, tree_path_of(n)) != n->parent)
            return ZN_DATAINCONSISTENCY;
        if (tree_owner_is_session(tree_node_owner(n))) {
            if (tree_session_find(t, tree_node_owner(n)) == NULL)
                return ZN_DATAINCONSISTENCY;
            ephemerals++;
        }
    }
    size_t listed = 0;
    struct zn_hiter it;
    zn_hiter_init(&it, &t->sessions);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct tree_session *s = ZN_HENTRY(l, const struct tree_session, link);
        digest += tree_session_digest(s->id, s->timeout_ms);
        for (size_t i = 0; i < s->eph_count; i++) {
            const struct tree_node *n = s->eph[i];
            if (tree_node_owner(n) != s->id || n->eph_slot != i ||
                tree_index_find(t, tree_path_of(n), n->path_len) != n)
                return ZN_DATAINCONSISTENCY;
        }
        listed += s->eph_count;
    }
    if (reachable != zn_htable_count(&t->index) || bytes != t->data_bytes || digest != t->digest ||
        listed != ephemerals || ephemerals != t->ephemeral_count)
        return ZN_DATAINCONSISTENCY;
    return tree_quota_check(t);
}
