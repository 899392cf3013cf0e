/*
 * tree_quota: the quota set and the accounting of the stats nodes
 * (ZooKeeper's DataTree: the pTrie, updateQuotaStat and updateQuotaForPath).
 * daemon/model/quota.c has the records and paths; this file applies them to the
 * tree.
 *
 * The quota set is derived from the limit nodes, so every member (and a
 * member loading a snapshot) has the same one (invariant 5,
 * tree_internal.h).  Applying a create, delete or setData under a path with
 * a quota adds the change to the deepest such quota's zookeeper_stats (count
 * and bytes of data), without touching that node's version, mzxid or mtime
 * and without firing a watch; creating a zookeeper_stats node sets it to its
 * subtree's current count and bytes.  A missing or unparsable stats node is
 * left alone (ZooKeeper logs it or throws); every member does the same, so
 * digests stay equal.  Unlike ZooKeeper, which prefix-matches
 * "/zookeeper/quota" as a string, only nodes strictly inside a
 * /zookeeper/quota/<path>/ directory count as quota nodes.  The stats are
 * replicated state (part of the snapshot); ZooKeeper recounts them when it
 * loads a snapshot, which differs only if a client wrote a stats node by
 * hand.
 *
 * Every change here during a txn goes through the undo log (tree_apply.c),
 * so a txn that fails later leaves the set and the stats as they were.
 * Called by tree_apply.c (accounting), tree_snapshot.c and tree_import.c
 * (rebuild), tree.c (clear, check), and the readers of tree.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "path.h"
#include "quota.h"
#include "tree_internal.h"

/* ------------------------------------------------------------------ the set */

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

void tree_quota_link(struct tree *t, struct tree_quota *q)
{
    zn_htable_insert(&t->quotas, &q->link, zn_hash(q->path, q->len));
}

void tree_quota_unlink(struct tree *t, struct tree_quota *q) { zn_htable_remove(&t->quotas, &q->link); }

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
    tree_quota_link(t, q);
    *added = q;
    return 0;
}

void tree_quota_clear(struct tree *t)
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
        strcmp(tree_path_of(n) + parent->path_len + 1, QUOTA_LIMIT_NODE) != 0)
        return NULL;
    return quota_real_path(tree_path_of(parent));
}

int tree_quota_rebuild(struct tree *t)
{
    tree_quota_clear(t);
    for (const struct tree_node *n = t->root; n; n = tree_preorder_next(n)) {
        const char *real = limit_node_real_path(n, n->parent);
        struct tree_quota *added;
        if (real != NULL && quota_add(t, real, &added) != 0)
            return ZN_NOMEMORY;
    }
    return 0;
}

int tree_quota_check(const struct tree *t)
{
    size_t limits = 0;
    for (const struct tree_node *n = t->root; n; n = tree_preorder_next(n)) {
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

const char *tree_quota_prefix(const struct tree *t, const char *path)
{
    ZN_ASSERT(t != NULL && path != NULL);
    const struct tree_quota *q = quota_prefix(t, path, strlen(path));
    return q ? q->path : NULL;
}

size_t tree_quota_count(const struct tree *t) { return zn_htable_count(&t->quotas); }

/* --------------------------------------------------------------- accounting */

/* Replaces n's data without touching its version, mzxid or mtime and
 * without an event: how ZooKeeper writes a quota stats node. */
static int replace_data_quietly(struct apply *a, struct tree_node *n, const char *text, size_t len)
{
    if (tree_undo_replace_data(a, n, (const uint8_t *)text, (int32_t)len) == NULL)
        return ZN_NOMEMORY;
    tree_digest_in(a->t, n);
    return 0;
}

/* The stats node of a quota path, or NULL. */
static struct tree_node *quota_stats_node(const struct tree *t, const char *real_path)
{
    size_t len = strlen(QUOTA_ROOT) + strlen(real_path) + 1 + strlen(QUOTA_STAT_NODE);
    char *path = malloc(len + 1);
    if (path == NULL)
        return NULL; /* read as missing: the caller then changes nothing */
    snprintf(path, len + 1, "%s%s/%s", QUOTA_ROOT, real_path, QUOTA_STAT_NODE);
    struct tree_node *n = tree_index_find(t, path, len);
    free(path);
    return n;
}

/* ZooKeeper's updateQuotaStat: adds the diffs to the stats of the deepest
 * quota over path.  A missing or unparsable stats node is left alone. */
int tree_quota_account(struct apply *a, const char *path, int64_t bytes_diff, int64_t count_diff)
{
    const struct tree_quota *q = quota_prefix(a->t, path, strlen(path));
    if (q == NULL)
        return 0;
    struct tree_node *stats = quota_stats_node(a->t, q->path);
    struct quota_record record;
    if (stats == NULL || quota_record_parse(tree_node_data_ptr(stats), stats->data_len, &record) != 0)
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
    if (tree_child_count(n) > 0)
        return n->kids->at[0];
    while (n != root) {
        const struct tree_node *p = n->parent;
        if (n->index_in_parent + 1 < p->kids->count)
            return p->kids->at[n->index_in_parent + 1];
        n = p;
    }
    return NULL;
}

/* ZooKeeper's updateQuotaForPath: a new stats node starts as the count and
 * bytes of its real path's subtree as it is now. */
static int quota_recount(struct apply *a, struct tree_node *stats, const char *real_path)
{
    int64_t count = 0, bytes = 0;
    const struct tree_node *top = tree_index_find(a->t, real_path, strlen(real_path));
    for (const struct tree_node *n = top; n; n = subtree_next(n, top)) {
        count++;
        bytes += tree_node_data_bytes(n);
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
int tree_quota_after_create(struct apply *a, struct tree_node *n, struct tree_node *parent)
{
    const char *real = limit_node_real_path(n, parent);
    if (real != NULL) {
        struct tree_quota *added;
        int rc = quota_add(a->t, real, &added);
        if (rc != 0)
            return rc;
        if (added)
            tree_undo_push(a, UNDO_QUOTA_ADD)->quota = added;
    } else if (n->path_len == parent->path_len + 1 + sizeof(QUOTA_STAT_NODE) - 1 &&
               strcmp(tree_path_of(n) + parent->path_len + 1, QUOTA_STAT_NODE) == 0 &&
               (real = quota_real_path(tree_path_of(parent))) != NULL) {
        int rc = quota_recount(a, n, real);
        if (rc != 0)
            return rc;
    }
    return tree_quota_account(a, tree_path_of(n), tree_node_data_bytes(n), 1);
}

/* The quota bookkeeping of DataTree.deleteNode, after the node is unlinked. */
int tree_quota_after_delete(struct apply *a, struct tree_node *n, struct tree_node *parent)
{
    const char *real = limit_node_real_path(n, parent);
    if (real != NULL) {
        struct tree_quota *q = quota_find(a->t, real, strlen(real));
        if (q != NULL) {
            tree_quota_unlink(a->t, q);
            tree_undo_push(a, UNDO_QUOTA_REMOVE)->quota = q;
        }
    }
    return tree_quota_account(a, tree_path_of(n), -(int64_t)tree_node_data_bytes(n), -1);
}
