/*
 * tree_acl: the distinct ACLs of a tree, each shared by every node that has
 * it, as ZooKeeper's ReferenceCountedACLCache shares them: nearly every node
 * of a tree has one of a handful of ACLs, and a copy per node would cost 48
 * bytes of heap each (a tenth of a member's memory with 100-byte znodes).
 *
 * Invariants: an acl_shared is in tree.acls exactly while refs > 0, and refs
 * counts the nodes (and undo entries holding an old ACL, tree_apply.c) that
 * point at it (a node holds one pointer, 8 bytes, for its ACL); tree_free asserts that none is left.  Each one also
 * keeps its vector as jute writes it (wire), which tree_serialize copies
 * as is.
 *
 * Called wherever a node gets or drops an ACL: tree.c, tree_apply.c,
 * tree_snapshot.c, tree_import.c.
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "tree_internal.h"

static uint64_t acl_hash(const struct zn_acl_vec *v)
{
    uint64_t h = tree_hash_i64(0, v->count);
    for (int32_t i = 0; i < v->count; i++) {
        const struct zn_id *id = &v->items[i].id;
        h = tree_hash_i64(h, v->items[i].perms);
        h = id->scheme ? tree_digest_bytes(h, id->scheme, strlen(id->scheme)) : tree_hash_i64(h, -1);
        h = id->id ? tree_digest_bytes(h, id->id, strlen(id->id)) : tree_hash_i64(h, -1);
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

static bool acl_shared_is(const struct zn_hlink *l, const void *key)
{
    return acl_same(ZN_HENTRY(l, const struct acl_shared, link)->items, key);
}

int tree_acl_copy(struct tree *t, const struct zn_acl_vec *src, struct acl_shared **dst)
{
    *dst = NULL;
    if (src->count <= 0)
        return 0;
    uint64_t h = acl_hash(src);
    struct zn_hlink *found = zn_htable_find(&t->acls, h, acl_shared_is, src);
    if (found != NULL) {
        struct acl_shared *a = ZN_HENTRY(found, struct acl_shared, link);
        a->refs++;
        *dst = a;
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
    a->count = src->count;
    zn_htable_insert(&t->acls, &a->link, h);
    *dst = a;
    return 0;
}

void tree_acl_release(struct tree *t, struct acl_shared *a)
{
    if (a == NULL)
        return;
    ZN_ASSERT(a->refs > 0);
    if (--a->refs > 0)
        return;
    zn_htable_remove(&t->acls, &a->link);
    free(a);
}
