/*
 * tree_snapshot: the snapshot format (tree_serialize, tree_deserialize,
 * tree_snapshot_format in tree.h).  Integers big-endian, as jute writes them:
 *
 *   magic "ZNT1" (4) | format version (4) | last zxid (8) | digest (8)
 *   session count (4), then per session: id (8) | timeout ms (4)
 *   node count (8), then per node, parents before children (preorder):
 *     path (jute buffer) | data (jute buffer, length -1: null) | ACL (jute
 *     vector) | czxid mzxid ctime mtime (8 each) | version cversion
 *     aversion (4 each) | ephemeralOwner pzxid (8 each) | kind (4) |
 *     ptime (8, from format 3)
 *
 * Format versions (TREE_SNAPSHOT_VERSION, tree.h): 3 is written; 2 (no
 * ptime, read as 0: unknown) is read too.  The digest (tree_digest.c) is
 * part of the format: a load recomputes it node by node and refuses a
 * snapshot whose stored digest differs.  A load keeps the loading member's
 * own /zookeeper/config (tree_internal.h) and rebuilds the quota set from
 * the limit nodes (tree_quota.c).  A failed load leaves the tree as
 * tree_new made it, config included.
 *
 * Called by snapshot.c (the forked writer), pipeline.c and ensemble.c
 * (recovery, a leader's snapshot), dump.c and zkimport.c.
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "path.h"
#include "tree_internal.h"

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

/* Hands w's bytes to flush and empties w (see tree_serialize_stream). */
static int serialize_flush(struct jute_writer *w, tree_serialize_flush_fn flush, void *ctx)
{
    if (w->error || w->len == 0)
        return w->error;
    int rc = flush(ctx, w->data, w->len);
    jute_writer_reset(w);
    return rc;
}

int tree_serialize(const struct tree *t, struct jute_writer *w)
{
    return tree_serialize_stream(t, w, 0, NULL, NULL);
}

int tree_serialize_stream(const struct tree *t, struct jute_writer *w, size_t flush_bytes,
                          tree_serialize_flush_fn flush, void *ctx)
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
    for (const struct tree_node *n = t->root; n && !w->error; n = tree_preorder_next(n)) {
        jute_write_buffer(w, tree_path_of(n), (int32_t)n->path_len);
        jute_write_buffer(w, n->data_len > 0 ? (const void *)tree_node_data_ptr(n) : "", n->data_len);
        if (n->acl != NULL) {
            jute_write_raw(w, n->acl->wire, n->acl->wire_len);
        } else {
            struct zn_acl_vec none = tree_node_acl_vec(n);
            jute_write_acl_vec(w, &none);
        }
        uint8_t *p = tail;
        p = put_be64(p, (uint64_t)n->czxid);
        p = put_be64(p, (uint64_t)n->mzxid);
        p = put_be64(p, (uint64_t)n->ctime);
        p = put_be64(p, (uint64_t)n->mtime);
        p = put_be32(p, (uint32_t)n->version);
        p = put_be32(p, (uint32_t)n->cversion);
        p = put_be32(p, (uint32_t)n->aversion);
        p = put_be64(p, (uint64_t)tree_node_owner(n));
        p = put_be64(p, (uint64_t)n->pzxid);
        p = put_be32(p, (uint32_t)tree_node_kind_of(n));
        p = put_be64(p, (uint64_t)n->ptime);
        ZN_ASSERT(p == tail + sizeof tail);
        jute_write_raw(w, tail, sizeof tail);
        if (flush && w->len >= flush_bytes) {
            int rc = serialize_flush(w, flush, ctx);
            if (rc)
                return rc;
        }
    }
    return flush ? serialize_flush(w, flush, ctx) : w->error;
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
        int rc = tree_session_insert(t, id, timeout_ms, NULL);
        if (rc != 0)
            return rc == ZN_BADARGUMENTS ? ZN_CORRUPT : rc;
    }
    return 0;
}

/*
 * Loading is pipelined over LOAD_AHEAD nodes, for the path index: with 1M
 * nodes its buckets and chains are far bigger than the caches, and the
 * duplicate check and insertion of each node would wait on two cache misses
 * (the bucket, then the first node of its chain).  A node is parsed and its
 * bucket prefetched; one node later the head of its chain is prefetched; one
 * more node later it is checked against the index and attached.  A parsed
 * node is complete but for its links: its parent pointer is set (so the next
 * node's parent search can walk up through it), it is not yet in the index
 * nor among its parent's children.  Parents precede their children in the
 * stream, so a node's parent is attached first.
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
 * there, without hashing the path or probing the index for each node (with
 * 1M nodes, they cost half of a restart's CPU).  A stream in any other order
 * still loads, through the index and the nodes not yet in it.  Same answer
 * as tree_find_parent.
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
        if (a->path_len == (size_t)pl && memcmp(tree_path_of(a), path, (size_t)pl) == 0)
            return a;
    }
    for (size_t i = 0; i < ls->count; i++) {
        struct tree_node *a = ls->pending[i];
        if (a->path_len == (size_t)pl && memcmp(tree_path_of(a), path, (size_t)pl) == 0)
            return a;
    }
    return tree_index_find(t, path, (size_t)pl);
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
    struct tree_persisted_stat st;
    int32_t kind = -1;
    int64_t ptime = 0;
    jute_read_long(r, &st.czxid);
    jute_read_long(r, &st.mzxid);
    jute_read_long(r, &st.ctime);
    jute_read_long(r, &st.mtime);
    jute_read_int(r, &st.version);
    jute_read_int(r, &st.cversion);
    jute_read_int(r, &st.aversion);
    jute_read_long(r, &st.ephemeral_owner);
    jute_read_long(r, &st.pzxid);
    jute_read_int(r, &kind);
    if (ls->format >= 3)
        jute_read_long(r, &ptime);
    if (r->error || kind < ZN_NODE_KIND_UNKNOWN || kind > ZN_NODE_KIND_DIRECTORY ||
        (tree_owner_is_session(st.ephemeral_owner) && tree_session_find(t, st.ephemeral_owner) == NULL) ||
        (parent && tree_owner_is_session(tree_node_owner(parent))))
        return ZN_CORRUPT;
    struct tree_node *n = tree_node_alloc(path, len, &data, st.ephemeral_owner);
    if (n == NULL)
        return ZN_NOMEMORY;
    n->parent = parent;
    tree_node_set_stat(n, &st);
    tree_node_set_kind(n, kind);
    n->ptime = ptime;
    if (tree_node_acl_init(t, n, &acl) != 0) {
        tree_node_free(t, n);
        return ZN_NOMEMORY;
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
    if (tree_index_find_hashed(t, tree_path_of(n), n->path_len, n->link.hash) != NULL ||
        (parent && tree_child_count(parent) >= TREE_MAX_CHILDREN))
        rc = ZN_CORRUPT;
    else if (parent && tree_child_reserve(parent) != 0)
        rc = ZN_NOMEMORY;
    else if (tree_owner_is_session(tree_node_owner(n)) &&
             tree_ephemeral_reserve(tree_session_find(t, tree_node_owner(n))) != 0)
        rc = ZN_NOMEMORY;
    if (rc != 0) {
        tree_node_free(t, n);
        return rc;
    }
    tree_node_attach(t, parent, n);
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
        tree_node_free(t, ls->pending[i]);
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
    if (r->error || magic != TREE_SNAPSHOT_MAGIC || version < TREE_SNAPSHOT_OLDEST_VERSION ||
        version > TREE_SNAPSHOT_VERSION)
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
    return tree_quota_rebuild(t);
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
    const struct tree_node *n = tree_index_find(t, TREE_CONFIG_PATH, sizeof(TREE_CONFIG_PATH) - 1);
    if (n == NULL)
        return 0;
    struct jute_buf src = {tree_node_data_ptr(n), n->data_len};
    if (tree_data_copy(&src, &out->data, &out->data_len) != 0)
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
    if (config.present && tree_config_store(fresh, config.data, config.data_len, config.mzxid, config.version,
                                       config.mtime) == ZN_NOMEMORY && rc == 0)
        rc = ZN_NOMEMORY;
    free(config.data);
    return rc;
}
