/*
 * tree_digest: the tree's incremental digest (tree_digest in tree.h).  A
 * node adds the hash of its path, its stat as persisted, its data, ACL and
 * kind; a session adds the hash of its id and timeout.  The tree's digest is
 * the sum, kept current by every change (tree_digest_out before a change of
 * hashed fields and tree_digest_in after it, tree_node_attach/detach,
 * tree_session_link/unlink), so
 * equal trees have equal digests whatever order the operations took
 * (invariant 4, tree_internal.h).  The config node's contents are left out:
 * they are member-local.
 *
 * The hash is the hash tables' (zn_hash_more, zn_hash_mix, lib/htable.h):
 * 8 bytes per multiply.  The value is stored in snapshots and
 * compared between members, so every member must hash the same way: changing
 * these functions changes the snapshot format's digest (snapshots written
 * before it fail their digest check).
 * A node's digest is not stored (8 bytes a node): it is recomputed from the
 * node before and after each change, which costs one more hash of the node
 * (~30 multiplies for a 100-byte znode) per change.
 *
 * Called by the other tree files; ptime is not hashed (tree_internal.h).
 */
#include <string.h>

#include "tree_internal.h"

static bool node_is_config(const struct tree_node *n)
{
    return n->path_len == sizeof(TREE_CONFIG_PATH) - 1 && memcmp(tree_path_of(n), TREE_CONFIG_PATH, n->path_len) == 0;
}

uint64_t tree_node_compute_digest(const struct tree_node *n)
{
    /* The config node's contents are member-local (tree_internal.h). */
    bool local = node_is_config(n);
    uint64_t h = tree_digest_bytes(zn_hash_init(), tree_path_of(n), n->path_len);
    h = tree_hash_i64(h, n->czxid);
    h = tree_hash_i64(h, local ? 0 : n->mzxid);
    h = tree_hash_i64(h, n->pzxid);
    h = tree_hash_i64(h, n->ctime);
    h = tree_hash_i64(h, local ? 0 : n->mtime);
    h = tree_hash_i64(h, local ? 0 : n->version);
    h = tree_hash_i64(h, n->cversion);
    h = tree_hash_i64(h, n->aversion);
    h = tree_hash_i64(h, tree_node_owner(n));
    h = tree_hash_i64(h, tree_node_kind_of(n));
    h = tree_hash_i64(h, local ? 0 : n->data_len);
    if (n->data_len > 0 && !local)
        h = tree_digest_bytes(h, tree_node_data_ptr(n), (size_t)n->data_len);
    struct zn_acl_vec acl = tree_node_acl_vec(n);
    h = tree_hash_i64(h, acl.count);
    for (int32_t i = 0; i < acl.count; i++) {
        const struct zn_acl *a = &acl.items[i];
        h = tree_hash_i64(h, a->perms);
        if (a->id.scheme)
            h = tree_digest_bytes(h, a->id.scheme, strlen(a->id.scheme));
        h = tree_hash_i64(h, -1);
        if (a->id.id)
            h = tree_digest_bytes(h, a->id.id, strlen(a->id.id));
        h = tree_hash_i64(h, -2);
    }
    return zn_hash_final(h);
}

uint64_t tree_session_digest(int64_t id, int32_t timeout_ms)
{
    uint64_t h = tree_hash_i64(zn_hash_init(), id);
    h = tree_hash_i64(h, timeout_ms);
    /* Distinguish a session from a node whose bytes happen to match. */
    h = tree_digest_bytes(h, "session", 7);
    return zn_hash_final(h);
}
