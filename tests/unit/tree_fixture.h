/*
 * Helpers shared by daemon/model/tree.c's unit tests (test_tree.c,
 * test_tree_snapshot.c, test_tree_quota.c): txns built the way the prep
 * stage builds them, an apply that must succeed and leave tree_check clean,
 * a node's stat, and a watch-event recorder.
 */
#ifndef ZN_TEST_TREE_FIXTURE_H
#define ZN_TEST_TREE_FIXTURE_H

#include <stdint.h>

#include "tree.h"

/* world:anyone with every permission */
extern const struct zn_acl_vec open_acl;

/* The watch events a tree fired (record_event is the tree's callback). */
struct events {
    int count;
    int32_t type[64];
    char path[64][64];
};

void record_event(void *ctx, int32_t type, const char *path);
struct txn txn_of(int64_t zxid, int32_t type);
struct txn create_txn(int64_t zxid, const char *path, const char *data, int32_t parent_cversion,
                      int64_t owner);
void apply_ok(struct tree *t, const struct txn *txn);
struct zn_stat stat_of(const struct tree *t, const char *path);
void create_session(struct tree *t, int64_t zxid, int64_t sid);

#endif
