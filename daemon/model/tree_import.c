/*
 * tree_import: building a tree from another implementation's data, node by
 * node (tree_import_* in tree.h): daemon/offline/zkimport.c reads ZooKeeper's
 * snapshot and log and feeds them here.  The nodes come with their stats as
 * ZooKeeper persisted them; the txns logged after a fuzzy snapshot are
 * replayed as ZooKeeper replays them (tree_import_replay).
 *
 * Each added node keeps the invariants of tree_internal.h as tree_apply's
 * creates do (through tree_node_attach); tree_import_end adds what
 * ZooKeeper's data may lack (its system nodes), rebuilds the quota set and
 * asserts tree_check.
 */
#include <string.h>

#include "assert.h"
#include "path.h"
#include "tree_internal.h"

void tree_import_begin(struct tree *t)
{
    ZN_ASSERT(t != NULL && t->last_zxid == 0);
    tree_clear(t);
}

int tree_import_session(struct tree *t, int64_t id, int32_t timeout_ms)
{
    return tree_session_insert(t, id, timeout_ms, NULL);
}

int tree_import_node(struct tree *t, const char *path, struct jute_buf data,
                     const struct zn_acl_vec *acl, const struct tree_persisted_stat *stat)
{
    size_t len = strlen(path);
    bool is_root = len == 1 && path[0] == '/';
    if (len == 0 || path[0] != '/' || len > PATH_MAX_BYTES || (t->root == NULL) != is_root ||
        tree_index_find(t, path, len) != NULL)
        return ZN_BADARGUMENTS;
    struct tree_node *parent = is_root ? NULL : tree_find_parent(t, path);
    if ((!is_root && parent == NULL) || (parent && tree_owner_is_session(tree_node_owner(parent))) ||
        (parent && tree_child_count(parent) >= TREE_MAX_CHILDREN) ||
        (tree_owner_is_session(stat->ephemeral_owner) && tree_session_find(t, stat->ephemeral_owner) == NULL))
        return ZN_BADARGUMENTS;
    if ((parent && tree_child_reserve(parent) != 0) ||
        (tree_owner_is_session(stat->ephemeral_owner) &&
         tree_ephemeral_reserve(tree_session_find(t, stat->ephemeral_owner)) != 0))
        return ZN_NOMEMORY;
    struct tree_node *n = tree_node_alloc(path, len, &data, stat->ephemeral_owner);
    if (n == NULL)
        return ZN_NOMEMORY;
    if (tree_node_acl_init(t, n, acl) != 0) {
        tree_node_free(t, n);
        return ZN_NOMEMORY;
    }
    tree_node_set_stat(n, stat);
    tree_node_set_kind(n, ZN_NODE_KIND_UNKNOWN);
    tree_node_attach(t, parent, n);
    if (is_root)
        t->root = n;
    return 0;
}

/* DataTree.deleteNode moves the parent's pzxid before it finds the child gone. */
static void import_touch_parent(struct tree *t, const char *path, int64_t zxid)
{
    struct tree_node *parent = path && path[0] == '/' ? tree_find_parent(t, path) : NULL;
    if (parent && tree_index_find(t, path, strlen(path)) == NULL && zxid > parent->pzxid) {
        tree_digest_out(t, parent);
        parent->pzxid = zxid;
        tree_digest_in(t, parent);
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
    if ((!tree_get(t, "/zookeeper") && !tree_add_system_node(t, "/zookeeper", &open_acl, 0)) ||
        (!tree_get(t, "/zookeeper/quota") && !tree_add_system_node(t, "/zookeeper/quota", &open_acl, 0)) ||
        (!tree_get(t, TREE_CONFIG_PATH) && !tree_add_system_node(t, TREE_CONFIG_PATH, &read_acl, -1)))
        return ZN_NOMEMORY;
    t->last_zxid = last_zxid;
    int rc = tree_quota_rebuild(t);
    ZN_ASSERT(rc != 0 || tree_check(t) == 0);
    return rc;
}
