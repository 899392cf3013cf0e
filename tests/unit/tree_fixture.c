/*
 * The helpers tree_fixture.h declares, for daemon/model/tree.c's unit tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"
#include "tree_fixture.h"

static struct zn_acl world_all = {ZN_PERM_ALL, {"world", "anyone"}};
const struct zn_acl_vec open_acl = {1, &world_all};

void record_event(void *ctx, int32_t type, const char *path)
{
    struct events *e = ctx;
    if (e->count < 64) {
        e->type[e->count] = type;
        snprintf(e->path[e->count], sizeof(e->path[0]), "%s", path);
    }
    e->count++;
}

struct txn txn_of(int64_t zxid, int32_t type)
{
    struct txn t;
    memset(&t, 0, sizeof(t));
    t.hdr = (struct txn_header){0, 1, zxid, 1000 + zxid, type};
    t.op.type = type;
    t.op.data.len = -1;
    t.op.ttl_ms = -1;
    return t;
}

struct txn create_txn(int64_t zxid, const char *path, const char *data, int32_t parent_cversion,
                      int64_t owner)
{
    struct txn t = txn_of(zxid, ZN_OP_CREATE2);
    t.op.path = (char *)path;
    t.op.data = data ? (struct jute_buf){(const uint8_t *)data, (int32_t)strlen(data)} : (struct jute_buf){NULL, -1};
    t.op.acl = open_acl;
    t.op.parent_cversion = parent_cversion;
    t.op.ephemeral_owner = owner;
    t.hdr.session_id = owner ? owner : 7;
    return t;
}

void apply_ok(struct tree *t, const struct txn *txn)
{
    int rc = tree_apply(t, txn, NULL, NULL, NULL, NULL);
    if (rc != 0)
        fail_msg("apply of zxid %lld failed: %d", (long long)txn->hdr.zxid, rc);
    assert_int_equal(tree_check(t), 0);
}

struct zn_stat stat_of(const struct tree *t, const char *path)
{
    const struct tree_node *n = tree_get(t, path);
    if (n == NULL)
        fail_msg("no node %s", path);
    struct zn_stat s;
    tree_node_stat(n, &s);
    return s;
}

void create_session(struct tree *t, int64_t zxid, int64_t sid)
{
    struct txn s = txn_of(zxid, ZN_OP_CREATESESSION);
    s.hdr.session_id = sid;
    s.op.timeout_ms = 30000;
    apply_ok(t, &s);
}
