/*
 * prep_overlay: the overlay of pending changes (ZooKeeper's
 * outstandingChanges) that prep checks each write against, and its lookups:
 * the tree as it will be once every prepared txn has applied.
 *
 * A record is the state a node (or a session) will have after one pending
 * txn: stat as persisted, child count, ACL, or "deleted".  Records are kept
 * in zxid order in a FIFO (so prep_applied drops from the head) and the
 * newest record of each key is in a hash map; a record remembers the one it
 * shadows, so a failed multi can pop its own records off the tail and put
 * the shadowed ones back (ZooKeeper's rollbackPendingChanges).  Keys are
 * node paths ("/...") or, for sessions, "#" and the id in hex, which no path
 * can be.
 *
 * Invariants (check.c's check_prep verifies them through
 * prep_for_each_record and prep_find_record):
 *  1. FIFO zxids never decrease; the map holds exactly the records with no
 *     newer record of the same key;
 *  2. a record's shadowed record is older and still in the FIFO, or NULL.
 *
 * Called by the rules (prep.c) and, through prep.h, by whoever applies the
 * txns (prep_applied, prep_reset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "prep_internal.h"

#define PREP_INITIAL_BUCKETS 256

static bool record_has_key(const struct zn_hlink *l, const void *key)
{
    return zn_hkey_is(key, ZN_HENTRY(l, const struct prep_record, link)->key,
                      ZN_HENTRY(l, const struct prep_record, link)->key_len);
}

/* The newest record of the key (hash: zn_hash of it), or NULL. */
static struct prep_record *map_find_hashed(const struct prep *p, const char *key, size_t len, uint64_t hash)
{
    struct zn_hlink *l = zn_htable_find(&p->map, hash, record_has_key, &(struct zn_hkey){key, len});
    return l ? ZN_HENTRY(l, struct prep_record, link) : NULL;
}

static struct prep_record *map_find(const struct prep *p, const char *key, size_t len)
{
    return map_find_hashed(p, key, len, zn_hash(key, len));
}

static void map_remove(struct prep *p, struct prep_record *r)
{
    zn_htable_remove(&p->map, &r->link);
    r->in_map = false;
}

static void map_insert(struct prep *p, struct prep_record *r)
{
    zn_htable_insert(&p->map, &r->link, r->link.hash);
    r->in_map = true;
}

/* Bytes of an ACL's deep copy: its items, then their strings. */
static size_t acl_copy_bytes(const struct zn_acl_vec *acl)
{
    if (acl->count <= 0)
        return 0;
    size_t size = sizeof(struct zn_acl) * (size_t)acl->count;
    for (int32_t i = 0; i < acl->count; i++) {
        const struct zn_id *id = &acl->items[i].id;
        size += (id->scheme ? strlen(id->scheme) + 1 : 0) + (id->id ? strlen(id->id) + 1 : 0);
    }
    return size;
}

/* Deep copy of src into the acl_copy_bytes(src) bytes at mem (aligned for
 * struct zn_acl). */
static void acl_copy(const struct zn_acl_vec *src, void *mem, struct zn_acl_vec *dst)
{
    dst->count = src->count;
    dst->items = NULL;
    if (src->count <= 0)
        return;
    struct zn_acl *items = mem;
    char *s = (char *)(items + src->count);
    for (int32_t i = 0; i < src->count; i++) {
        const struct zn_id *id = &src->items[i].id;
        items[i].perms = src->items[i].perms;
        items[i].id.scheme = items[i].id.id = NULL;
        if (id->scheme) {
            size_t n = strlen(id->scheme) + 1;
            items[i].id.scheme = memcpy(s, id->scheme, n);
            s += n;
        }
        if (id->id) {
            size_t n = strlen(id->id) + 1;
            items[i].id.id = memcpy(s, id->id, n);
            s += n;
        }
    }
    dst->items = items;
}

/* Adds a record (the key's newest state) for `zxid`.  One allocation per
 * record: the record, its key, then the copy of its ACL (a write makes one
 * or two records; two allocations each were a share of the write path's
 * malloc and free), from the prep's FIFO arena: records are freed in zxid
 * order (prep_applied), and from the heap they left holes between the
 * tree's nodes allocated meanwhile. */
int prep_record_add(struct prep *p, int64_t zxid, const char *key, size_t len, const struct node_view *view,
                    int32_t session_timeout_ms)
{
    ZN_ASSERT(p->tail == NULL || p->tail->zxid <= zxid);
    size_t acl_bytes = acl_copy_bytes(&view->acl);
    /* The key right after the record, then the ACL's copy, aligned. */
    const size_t align = _Alignof(struct zn_acl);
    size_t acl_at = (sizeof(struct prep_record) + len + 1 + align - 1) & ~(align - 1);
    struct prep_record *r = zn_fifo_alloc(&p->records, acl_at + acl_bytes);
    if (r == NULL)
        return ZN_NOMEMORY;
    memset(r, 0, sizeof(*r));
    memcpy(r->key, key, len);
    r->key[len] = '\0';
    r->key_len = len;
    r->link.hash = zn_hash(key, len);
    r->zxid = zxid;
    r->view = *view;
    r->session_timeout_ms = session_timeout_ms;
    acl_copy(&view->acl, (char *)r + acl_at, &r->view.acl);
    struct prep_record *old = map_find_hashed(p, key, len, r->link.hash);
    if (old) {
        map_remove(p, old);
        old->shadowed_by = r;
        r->shadowed = old;
    }
    map_insert(p, r);
    r->fifo_prev = p->tail;
    if (p->tail)
        p->tail->fifo_next = r;
    else
        p->head = r;
    p->tail = r;
    p->record_count++;
    return 0;
}

/* Removes the newest record, putting back the one it shadowed. */
static void record_pop_tail(struct prep *p)
{
    struct prep_record *r = p->tail;
    ZN_ASSERT(r != NULL && r->shadowed_by == NULL && r->in_map);
    map_remove(p, r);
    if (r->shadowed) {
        r->shadowed->shadowed_by = NULL;
        map_insert(p, r->shadowed);
    }
    p->tail = r->fifo_prev;
    if (p->tail)
        p->tail->fifo_next = NULL;
    else
        p->head = NULL;
    p->record_count--;
    zn_fifo_free(r); /* one allocation: the record, its key, its ACL */
}

void prep_rollback_zxid(struct prep *p, int64_t zxid)
{
    while (p->tail && p->tail->zxid == zxid)
        record_pop_tail(p);
}

void prep_applied(struct prep *p, int64_t zxid)
{
    ZN_ASSERT(p != NULL);
    while (p->head && p->head->zxid <= zxid) {
        struct prep_record *r = p->head;
        if (r->in_map)
            map_remove(p, r);
        if (r->shadowed_by)
            r->shadowed_by->shadowed = NULL;
        p->head = r->fifo_next;
        if (p->head)
            p->head->fifo_prev = NULL;
        else
            p->tail = NULL;
        p->record_count--;
        zn_fifo_free(r);
    }
}

void prep_reset(struct prep *p)
{
    ZN_ASSERT(p != NULL);
    while (p->head) {
        struct prep_record *r = p->head;
        p->head = r->fifo_next;
        zn_fifo_free(r);
    }
    p->tail = NULL;
    zn_htable_clear(&p->map);
    p->record_count = 0;
    p->last_zxid = 0;
}

size_t prep_pending_count(const struct prep *p) { return p->record_count; }

int prep_for_each_record(const struct prep *p, prep_record_fn fn, void *ctx)
{
    for (const struct prep_record *r = p->head; r; r = r->fifo_next) {
        struct prep_record_info info = {r, r->shadowed, r->shadowed_by, r->key, r->key_len, r->zxid, r->in_map};
        int rc = fn(ctx, &info);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const void *prep_find_record(const struct prep *p, const char *key, size_t len) { return map_find(p, key, len); }

struct prep *prep_new(const struct tree *tree)
{
    ZN_ASSERT(tree != NULL);
    struct prep *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tree = tree;
    zn_fifo_init(&p->records, 0);
    if (zn_htable_init(&p->map, PREP_INITIAL_BUCKETS) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void prep_free(struct prep *p)
{
    if (p == NULL)
        return;
    prep_reset(p);
    zn_htable_free(&p->map);
    zn_fifo_destroy(&p->records);
    free(p);
}

/* The node at path[0..len) as it will be (ZooKeeper's getRecordForPath);
 * len 0 is ZooKeeper's "" alias of the root. */
struct node_view prep_lookup(const struct prep *p, const char *path, size_t len)
{
    struct node_view v;
    memset(&v, 0, sizeof(v));
    if (len == 0) {
        path = "/";
        len = 1;
    }
    const struct prep_record *r = map_find(p, path, len);
    if (r)
        return r->view;
    char small[256];
    char *copy = len < sizeof(small) ? small : malloc(len + 1);
    if (copy == NULL)
        return v; /* out of memory reads as absent; callers then fail the request */
    memcpy(copy, path, len);
    copy[len] = '\0';
    const struct tree_node *n = tree_get(p->tree, copy);
    if (copy != small)
        free(copy);
    if (n == NULL)
        return v;
    struct zn_stat st;
    tree_node_stat(n, &st);
    v.exists = true;
    v.ephemeral_owner = tree_node_raw_owner(n);
    v.version = st.version;
    v.aversion = st.aversion;
    v.child_count = st.num_children;
    /* The persisted cversion (creates), not the client's view. */
    v.cversion = (int32_t)(((int64_t)st.cversion + st.num_children) / 2);
    v.pzxid = st.pzxid;
    v.mzxid = st.mzxid;
    v.mtime = st.mtime;
    v.data_bytes = st.data_length;
    v.acl = tree_node_acl(n);
    return v;
}

void prep_session_key(int64_t session_id, char key[20])
{
    snprintf(key, 20, "#%016llx", (unsigned long long)session_id);
}

/* 1: the session exists and is not closing; 0: it does not or is closing. */
bool prep_session_live(const struct prep *p, int64_t session_id)
{
    char key[20];
    prep_session_key(session_id, key);
    const struct prep_record *r = map_find(p, key, strlen(key));
    if (r)
        return r->view.exists;
    return tree_session_exists(p->tree, session_id);
}
