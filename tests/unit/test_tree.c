/*
 * Unit tests of daemon/tree*.c: ZooKeeper's initial tree, the stat rules of
 * each kind of txn (DataTree.createNode / deleteNode / setData / setACL and
 * DataNode.copyStat), watch events and their order, sessions and their
 * ephemerals, all-or-nothing apply, the digest, and snapshots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tree.h"

static struct zn_acl world_all = {ZN_PERM_ALL, {"world", "anyone"}};
static const struct zn_acl_vec open_acl = {1, &world_all};

/* ---- helpers ---- */

struct events {
    int count;
    int32_t type[64];
    char path[64][64];
};

static void record_event(void *ctx, int32_t type, const char *path)
{
    struct events *e = ctx;
    if (e->count < 64) {
        e->type[e->count] = type;
        snprintf(e->path[e->count], sizeof(e->path[0]), "%s", path);
    }
    e->count++;
}

static struct txn txn_of(int64_t zxid, int32_t type)
{
    struct txn t;
    memset(&t, 0, sizeof(t));
    t.hdr = (struct txn_header){0, 1, zxid, 1000 + zxid, type};
    t.op.type = type;
    t.op.data.len = -1;
    t.op.ttl_ms = -1;
    return t;
}

static struct txn create_txn(int64_t zxid, const char *path, const char *data, int32_t parent_cversion,
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

static void apply_ok(struct tree *t, const struct txn *txn)
{
    int rc = tree_apply(t, txn, NULL, NULL, NULL, NULL);
    if (rc != 0)
        fail_msg("apply of zxid %lld failed: %d", (long long)txn->hdr.zxid, rc);
    assert_int_equal(tree_check(t), 0);
}

static struct zn_stat stat_of(const struct tree *t, const char *path)
{
    const struct tree_node *n = tree_get(t, path);
    if (n == NULL)
        fail_msg("no node %s", path);
    struct zn_stat s;
    tree_node_stat(n, &s);
    return s;
}

static void create_session(struct tree *t, int64_t zxid, int64_t sid)
{
    struct txn s = txn_of(zxid, ZN_OP_CREATESESSION);
    s.hdr.session_id = sid;
    s.op.timeout_ms = 30000;
    apply_ok(t, &s);
}

/* ---- tests ---- */

static void new_tree_has_zookeepers_system_nodes(void **state)
{
    struct tree *t = tree_new();
    assert_non_null(t);
    assert_int_equal(tree_node_count(t), 4);
    assert_int_equal(tree_last_zxid(t), 0);
    struct zn_stat root = stat_of(t, "/");
    assert_int_equal(root.num_children, 1);
    assert_int_equal(root.cversion, -1); /* 0 creates * 2 - 1 child, as `stat /` shows */
    assert_int_equal(root.czxid, 0);
    assert_int_equal(root.pzxid, 0);
    struct zn_stat zk = stat_of(t, "/zookeeper");
    assert_int_equal(zk.num_children, 2);
    assert_int_equal(zk.cversion, -2);
    struct zn_stat config = stat_of(t, "/zookeeper/config");
    assert_int_equal(config.aversion, -1);
    struct zn_acl_vec acl = tree_node_acl(tree_get(t, "/zookeeper/config"));
    assert_int_equal(acl.count, 1);
    assert_int_equal(acl.items[0].perms, ZN_PERM_READ);
    assert_string_equal(acl.items[0].id.scheme, "world");
    assert_int_equal(stat_of(t, "/zookeeper/quota").num_children, 0);
    assert_int_equal(tree_check(t), 0);
    tree_free(t);
}

static void create_sets_stat_fields_and_fires_created_then_child_changed(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(0x100000001LL, "/app", "hello", 1, 0);
    c.op.kind = ZN_NODE_KIND_DIRECTORY;
    struct events ev = {0};
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zn_response res;
    assert_int_equal(tree_apply(t, &c, record_event, &ev, &arena, &res), 0);
    assert_int_equal(ev.count, 2);
    assert_int_equal(ev.type[0], ZN_EVENT_CREATED);
    assert_string_equal(ev.path[0], "/app");
    assert_int_equal(ev.type[1], ZN_EVENT_CHILD);
    assert_string_equal(ev.path[1], "/");

    struct zn_stat s = stat_of(t, "/app");
    assert_int_equal(s.czxid, 0x100000001LL);
    assert_int_equal(s.mzxid, 0x100000001LL);
    assert_int_equal(s.pzxid, 0x100000001LL);
    assert_int_equal(s.ctime, 1000 + 0x100000001LL);
    assert_int_equal(s.mtime, s.ctime);
    assert_int_equal(s.version, 0);
    assert_int_equal(s.cversion, 0);
    assert_int_equal(s.aversion, 0);
    assert_int_equal(s.ephemeral_owner, 0);
    assert_int_equal(s.data_length, 5);
    assert_int_equal(s.num_children, 0);
    assert_int_equal(tree_node_kind(tree_get(t, "/app")), ZN_NODE_KIND_DIRECTORY);

    struct zn_stat root = stat_of(t, "/");
    assert_int_equal(root.num_children, 2);
    assert_int_equal(root.pzxid, 0x100000001LL);
    assert_int_equal(root.cversion, 0); /* 1 create * 2 - 2 children */
    assert_int_equal(root.mzxid, 0);

    assert_int_equal(res.err, 0);
    assert_string_equal(res.path, "/app");
    assert_memory_equal(&res.stat, &s, sizeof(s));
    assert_int_equal(tree_last_zxid(t), 0x100000001LL);
    zn_arena_free(&arena);
    tree_free(t);
}

static void null_data_is_kept_distinct_from_empty_data(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/null", NULL, 1, 0);
    apply_ok(t, &c);
    c = create_txn(2, "/empty", "", 2, 0);
    apply_ok(t, &c);
    assert_int_equal(tree_node_data(tree_get(t, "/null")).len, -1);
    assert_int_equal(tree_node_data(tree_get(t, "/empty")).len, 0);
    assert_int_equal(stat_of(t, "/null").data_length, 0);
    tree_free(t);
}

static void set_data_sets_version_mtime_mzxid_and_fires_data_changed(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "old", 1, 0);
    apply_ok(t, &c);
    size_t bytes = tree_data_bytes(t);
    struct txn s = txn_of(2, ZN_OP_SETDATA);
    s.op.path = "/a";
    s.op.data = (struct jute_buf){(const uint8_t *)"newer", 5};
    s.op.version = 1;
    struct events ev = {0};
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zn_response res;
    assert_int_equal(tree_apply(t, &s, record_event, &ev, &arena, &res), 0);
    assert_int_equal(ev.count, 1);
    assert_int_equal(ev.type[0], ZN_EVENT_CHANGED);
    assert_string_equal(ev.path[0], "/a");
    struct zn_stat st = stat_of(t, "/a");
    assert_int_equal(st.version, 1);
    assert_int_equal(st.mzxid, 2);
    assert_int_equal(st.mtime, 1002);
    assert_int_equal(st.czxid, 1);
    assert_int_equal(st.ctime, 1001);
    assert_int_equal(st.pzxid, 1);
    assert_int_equal(st.data_length, 5);
    assert_memory_equal(&res.stat, &st, sizeof(st));
    assert_memory_equal(tree_node_data(tree_get(t, "/a")).data, "newer", 5);
    assert_int_equal(tree_data_bytes(t), bytes + 2);
    assert_int_equal(stat_of(t, "/").pzxid, 1); /* the parent is untouched */
    zn_arena_free(&arena);
    tree_free(t);
}

static void delete_sets_parent_pzxid_and_counts_in_the_client_cversion(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/d", NULL, 1, 0);
    apply_ok(t, &c);
    c = create_txn(2, "/d/x", NULL, 1, 0);
    apply_ok(t, &c);
    struct txn d = txn_of(3, ZN_OP_DELETE);
    d.op.path = "/d/x";
    struct events ev = {0};
    assert_int_equal(tree_apply(t, &d, record_event, &ev, NULL, NULL), 0);
    assert_int_equal(ev.count, 2);
    assert_int_equal(ev.type[0], ZN_EVENT_DELETED);
    assert_string_equal(ev.path[0], "/d/x");
    assert_int_equal(ev.type[1], ZN_EVENT_CHILD);
    assert_string_equal(ev.path[1], "/d");
    assert_null(tree_get(t, "/d/x"));
    struct zn_stat s = stat_of(t, "/d");
    assert_int_equal(s.pzxid, 3);
    assert_int_equal(s.num_children, 0);
    assert_int_equal(s.cversion, 2); /* a create and a delete */
    assert_int_equal(s.mzxid, 1);
    tree_free(t);
}

static void set_acl_sets_aversion_and_the_new_acl(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "x", 1, 0);
    apply_ok(t, &c);
    struct zn_acl read = {ZN_PERM_READ, {"digest", "u:h"}};
    struct txn a = txn_of(2, ZN_OP_SETACL);
    a.op.path = "/a";
    a.op.acl = (struct zn_acl_vec){1, &read};
    a.op.version = 1;
    struct events ev = {0};
    assert_int_equal(tree_apply(t, &a, record_event, &ev, NULL, NULL), 0);
    assert_int_equal(ev.count, 0); /* setACL triggers no watch in ZooKeeper */
    struct zn_stat s = stat_of(t, "/a");
    assert_int_equal(s.aversion, 1);
    assert_int_equal(s.version, 0);
    assert_int_equal(s.mzxid, 1);
    struct zn_acl_vec acl = tree_node_acl(tree_get(t, "/a"));
    assert_int_equal(acl.count, 1);
    assert_string_equal(acl.items[0].id.id, "u:h");
    tree_free(t);
}

/* Nodes with equal ACLs share one copy; a change leaves the others' ACL as
 * it was, and the last node to go frees it (ASan checks). */
static void nodes_with_equal_acls_share_one_copy(void **state)
{
    struct tree *t = tree_new();
    struct txn c1 = create_txn(1, "/a", "x", 1, 0), c2 = create_txn(2, "/b", "y", 2, 0);
    apply_ok(t, &c1);
    apply_ok(t, &c2);
    struct zn_acl_vec a = tree_node_acl(tree_get(t, "/a")), b = tree_node_acl(tree_get(t, "/b"));
    assert_ptr_equal(a.items, b.items);
    assert_string_equal(a.items[0].id.scheme, "world");

    struct zn_acl read = {ZN_PERM_READ, {"digest", "u:h"}};
    struct txn set = txn_of(3, ZN_OP_SETACL);
    set.op.path = "/a";
    set.op.acl = (struct zn_acl_vec){1, &read};
    set.op.version = 1;
    apply_ok(t, &set);
    a = tree_node_acl(tree_get(t, "/a"));
    b = tree_node_acl(tree_get(t, "/b"));
    assert_ptr_not_equal(a.items, b.items);
    assert_string_equal(a.items[0].id.id, "u:h");
    assert_string_equal(b.items[0].id.id, "anyone");
    assert_int_equal(b.items[0].perms, ZN_PERM_ALL);

    /* /b gets /a's new ACL: they share it again */
    set.hdr.zxid = 4;
    set.op.path = "/b";
    apply_ok(t, &set);
    a = tree_node_acl(tree_get(t, "/a"));
    b = tree_node_acl(tree_get(t, "/b"));
    assert_ptr_equal(a.items, b.items);
    struct txn d = txn_of(5, ZN_OP_DELETE);
    d.op.path = "/a";
    d.hdr.zxid = 5;
    d.op.version = -1;
    apply_ok(t, &d);
    assert_string_equal(tree_node_acl(tree_get(t, "/b")).items[0].id.id, "u:h");
    tree_free(t);
}

static void sequential_parent_cversion_is_taken_from_the_txn_and_only_moves_forward(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/q", NULL, 1, 0);
    apply_ok(t, &c);
    c = create_txn(2, "/q/a", NULL, 5, 0);
    apply_ok(t, &c);
    assert_int_equal(stat_of(t, "/q").cversion, 9); /* 5 * 2 - 1 */
    c = create_txn(3, "/q/b", NULL, 3, 0);           /* an older cversion is ignored */
    apply_ok(t, &c);
    assert_int_equal(stat_of(t, "/q").cversion, 8);   /* still 5 creates, 2 children */
    assert_int_equal(stat_of(t, "/q").pzxid, 2);
    c = create_txn(4, "/q/c", NULL, -1, 0);          /* -1: one more than now */
    apply_ok(t, &c);
    assert_int_equal(stat_of(t, "/q").cversion, 9);   /* 6 * 2 - 3 */
    tree_free(t);
}

static void inconsistent_txns_fail_and_leave_the_tree_unchanged(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "x", 1, 0);
    apply_ok(t, &c);
    uint64_t digest = tree_digest(t);
    size_t bytes = tree_data_bytes(t);

    struct txn bad = create_txn(2, "/a", "x", 2, 0); /* exists */
    assert_int_equal(tree_apply(t, &bad, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    bad = create_txn(2, "/nope/x", "x", 1, 0); /* no parent */
    assert_int_equal(tree_apply(t, &bad, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    bad = create_txn(2, "/e", "x", 1, 99); /* no such session */
    assert_int_equal(tree_apply(t, &bad, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    bad = create_txn(1, "/b", "x", 2, 0); /* zxid not after the last one */
    assert_int_equal(tree_apply(t, &bad, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);

    /* A multi whose third op does not fit: the first two are undone. */
    struct txn_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct txn_op){.type = ZN_OP_CREATE, .path = "/m", .data = {NULL, -1}, .acl = open_acl, .parent_cversion = 2};
    ops[1] = (struct txn_op){.type = ZN_OP_SETDATA, .path = "/a", .data = {(const uint8_t *)"longer data", 11}, .version = 1};
    ops[2] = (struct txn_op){.type = ZN_OP_DELETE, .path = "/missing"};
    struct txn m = txn_of(2, ZN_OP_MULTI);
    m.op_count = 3;
    m.ops = ops;
    struct events ev = {0};
    assert_int_equal(tree_apply(t, &m, record_event, &ev, NULL, NULL), ZN_DATAINCONSISTENCY);
    assert_int_equal(ev.count, 0);
    assert_null(tree_get(t, "/m"));
    assert_int_equal(stat_of(t, "/a").version, 0);
    assert_int_equal(stat_of(t, "/").cversion, 0);
    assert_int_equal(tree_digest(t), digest);
    assert_int_equal(tree_data_bytes(t), bytes);
    assert_int_equal(tree_last_zxid(t), 1);
    assert_int_equal(tree_check(t), 0);

    /* Deleting a node with children is refused too. */
    c = create_txn(2, "/a/child", NULL, 1, 0);
    apply_ok(t, &c);
    struct txn d = txn_of(3, ZN_OP_DELETE);
    d.op.path = "/a";
    assert_int_equal(tree_apply(t, &d, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    assert_non_null(tree_get(t, "/a"));
    tree_free(t);
}

static void multi_applies_every_op_and_fires_their_events_in_order(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "x", 1, 0);
    apply_ok(t, &c);
    struct txn_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct txn_op){.type = ZN_OP_CREATE, .path = "/b", .data = {NULL, -1}, .acl = open_acl, .parent_cversion = 2};
    ops[1] = (struct txn_op){.type = ZN_OP_SETDATA, .path = "/a", .data = {(const uint8_t *)"y", 1}, .version = 1};
    ops[2] = (struct txn_op){.type = ZN_OP_DELETE, .path = "/a"};
    struct txn m = txn_of(2, ZN_OP_MULTI);
    m.op_count = 3;
    m.ops = ops;
    struct events ev = {0};
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zn_response res;
    assert_int_equal(tree_apply(t, &m, record_event, &ev, &arena, &res), 0);
    assert_int_equal(ev.count, 5);
    int32_t want_type[] = {ZN_EVENT_CREATED, ZN_EVENT_CHILD, ZN_EVENT_CHANGED, ZN_EVENT_DELETED, ZN_EVENT_CHILD};
    const char *want_path[] = {"/b", "/", "/a", "/a", "/"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ev.type[i], want_type[i]);
        assert_string_equal(ev.path[i], want_path[i]);
    }
    assert_int_equal(res.err, 0);
    assert_int_equal(res.result_count, 3);
    assert_int_equal(res.results[0].type, ZN_OP_CREATE);
    assert_string_equal(res.results[0].path, "/b");
    assert_int_equal(res.results[1].type, ZN_OP_SETDATA);
    assert_int_equal(res.results[1].stat.version, 1);
    assert_int_equal(res.results[2].type, ZN_OP_DELETE);
    assert_null(tree_get(t, "/a"));
    zn_arena_free(&arena);
    tree_free(t);
}

static void failed_multi_changes_nothing_and_reports_zookeepers_per_op_errors(void **state)
{
    struct tree *t = tree_new();
    uint64_t digest = tree_digest(t);
    struct txn_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct txn_op){.type = ZN_OP_ERROR, .err = 0};
    ops[1] = (struct txn_op){.type = ZN_OP_ERROR, .err = ZN_NONODE};
    ops[2] = (struct txn_op){.type = ZN_OP_ERROR, .err = ZN_RUNTIMEINCONSISTENCY};
    struct txn m = txn_of(5, ZN_OP_MULTI);
    m.op_count = 3;
    m.ops = ops;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zn_response res;
    assert_int_equal(tree_apply(t, &m, NULL, NULL, &arena, &res), 0);
    assert_int_equal(res.err, ZN_NONODE);
    assert_int_equal(res.result_count, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res.results[i].type, ZN_OP_ERROR);
    assert_int_equal(res.results[0].err, 0);
    assert_int_equal(res.results[1].err, ZN_NONODE);
    assert_int_equal(res.results[2].err, ZN_RUNTIMEINCONSISTENCY);
    assert_int_equal(tree_digest(t), digest);
    assert_int_equal(tree_last_zxid(t), 5);
    zn_arena_free(&arena);
    tree_free(t);
}

static void close_session_deletes_its_ephemerals_in_path_order(void **state)
{
    struct tree *t = tree_new();
    create_session(t, 1, 0x11);
    create_session(t, 2, 0x22);
    assert_true(tree_session_exists(t, 0x11));
    int32_t timeout = 0;
    assert_int_equal(tree_session_timeout(t, 0x11, &timeout), 0);
    assert_int_equal(timeout, 30000);
    struct txn c = create_txn(3, "/p", NULL, 1, 0);
    apply_ok(t, &c);
    c = create_txn(4, "/p/b", NULL, 1, 0x11);
    apply_ok(t, &c);
    c = create_txn(5, "/p/a", NULL, 2, 0x11);
    apply_ok(t, &c);
    c = create_txn(6, "/p/other", NULL, 3, 0x22);
    apply_ok(t, &c);
    assert_int_equal(stat_of(t, "/p/a").ephemeral_owner, 0x11);
    assert_int_equal(tree_session_ephemeral_count(t, 0x11), 2);
    assert_int_equal(tree_ephemeral_count(t), 3);

    /* ephemerals may not have children */
    c = create_txn(7, "/p/a/x", NULL, 1, 0);
    assert_int_equal(tree_apply(t, &c, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);

    struct txn close = txn_of(7, ZN_OP_CLOSESESSION);
    close.hdr.session_id = 0x11;
    struct events ev = {0};
    assert_int_equal(tree_apply(t, &close, record_event, &ev, NULL, NULL), 0);
    assert_int_equal(ev.count, 4);
    assert_int_equal(ev.type[0], ZN_EVENT_DELETED);
    assert_string_equal(ev.path[0], "/p/a");
    assert_string_equal(ev.path[1], "/p");
    assert_string_equal(ev.path[2], "/p/b");
    assert_null(tree_get(t, "/p/a"));
    assert_null(tree_get(t, "/p/b"));
    assert_non_null(tree_get(t, "/p/other"));
    assert_false(tree_session_exists(t, 0x11));
    assert_int_equal(tree_session_timeout(t, 0x11, &timeout), ZN_SESSIONEXPIRED);
    assert_int_equal(tree_session_count(t), 1);
    assert_int_equal(tree_ephemeral_count(t), 1);
    assert_int_equal(stat_of(t, "/p").pzxid, 7);

    /* a second close of the same session is a no-op */
    close.hdr.zxid = 8;
    assert_int_equal(tree_apply(t, &close, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(tree_check(t), 0);
    tree_free(t);
}

static void containers_and_ttl_nodes_hide_their_owner_from_clients(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/c", NULL, 1, 0);
    c.hdr.type = c.op.type = ZN_OP_CREATECONTAINER;
    apply_ok(t, &c);
    assert_true(tree_node_is_container(tree_get(t, "/c")));
    assert_int_equal(stat_of(t, "/c").ephemeral_owner, 0);
    c = create_txn(2, "/t", NULL, 2, 0);
    c.hdr.type = c.op.type = ZN_OP_CREATETTL;
    c.op.ttl_ms = 5000;
    apply_ok(t, &c);
    assert_int_equal(tree_node_ttl_ms(tree_get(t, "/t")), 5000);
    assert_int_equal(stat_of(t, "/t").ephemeral_owner, 0);
    assert_int_equal(tree_node_raw_owner(tree_get(t, "/t")), (int64_t)0xff00000000001388ull);
    /* a TTL/container node may have children */
    c = create_txn(3, "/t/x", NULL, 1, 0);
    apply_ok(t, &c);
    tree_free(t);
}

/* Builds the same tree along two paths of different op order; the trees are
 * equal, so the digests must be. */
static void digest_depends_on_the_state_not_the_order_of_children(void **state)
{
    struct tree *a = tree_new(), *b = tree_new();
    assert_int_equal(tree_digest(a), tree_digest(b));
    /* a: create x, y, z, delete x.  b: the same txns (same zxids), so the
     * same state; its child array is built in another order via deletes. */
    const char *names[] = {"/x", "/y", "/z"};
    for (int i = 0; i < 3; i++) {
        struct txn c = create_txn(i + 1, names[i], "d", i + 1, 0);
        apply_ok(a, &c);
        apply_ok(b, &c);
    }
    struct txn d = txn_of(4, ZN_OP_DELETE);
    d.op.path = "/x";
    apply_ok(a, &d);
    apply_ok(b, &d);
    assert_int_equal(tree_digest(a), tree_digest(b));
    /* a change is seen, and undoing it by value restores the digest */
    uint64_t before = tree_digest(a);
    struct txn s = txn_of(5, ZN_OP_SETDATA);
    s.op.path = "/y";
    s.op.data = (struct jute_buf){(const uint8_t *)"e", 1};
    s.op.version = 1;
    apply_ok(a, &s);
    assert_int_not_equal(tree_digest(a), before);
    assert_int_not_equal(tree_digest(a), tree_digest(b));
    tree_free(a);
    tree_free(b);
}

struct collected {
    int count;
    char paths[8][32];
};

static int collect_path(void *ctx, const char *path)
{
    struct collected *c = ctx;
    snprintf(c->paths[c->count++ % 8], 32, "%s", path);
    return 0;
}

static int count_session(void *ctx, int64_t sid, int32_t timeout_ms)
{
    (*(int *)ctx)++;
    return 0;
}

static void snapshot_round_trip_restores_nodes_sessions_and_digest(void **state)
{
    struct tree *t = tree_new();
    create_session(t, 1, 0x51);
    struct txn c = create_txn(2, "/a", "payload", 1, 0);
    c.op.kind = ZN_NODE_KIND_FILE;
    apply_ok(t, &c);
    c = create_txn(3, "/a/e", NULL, 1, 0x51);
    apply_ok(t, &c);
    c = create_txn(4, "/b", "", 2, 0);
    apply_ok(t, &c);

    struct zn_acl digest_acl[2] = {{ZN_PERM_READ, {"digest", "someone:hashhashhashhashhashhash="}},
                                   {ZN_PERM_ALL, {"ip", "127.0.0.1"}}};
    struct txn set = txn_of(5, ZN_OP_SETACL);
    set.op.path = "/b";
    set.op.acl = (struct zn_acl_vec){2, digest_acl};
    set.op.version = 1;
    apply_ok(t, &set);

    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    /* a snapshot child writes into a buffer of tree_snapshot_bound bytes */
    assert_true(tree_snapshot_bound(t) >= w.len);
    uint8_t *fixed = malloc(tree_snapshot_bound(t));
    struct jute_writer fw;
    jute_writer_init_fixed(&fw, fixed, tree_snapshot_bound(t));
    assert_int_equal(tree_serialize(t, &fw), 0);
    assert_int_equal(fw.len, w.len);
    assert_memory_equal(fw.data, w.data, w.len);
    jute_writer_init_fixed(&fw, fixed, w.len - 1); /* one byte short: refused, not grown */
    assert_int_equal(tree_serialize(t, &fw), ZN_TOOBIG);
    jute_writer_free(&fw); /* the buffer is the caller's */
    free(fixed);
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, w.data, w.len), 0);
    assert_int_equal(tree_check(back), 0);
    assert_int_equal(tree_digest(back), tree_digest(t));
    assert_int_equal(tree_node_acl(tree_get(back, "/b")).count, 2);
    assert_string_equal(tree_node_acl(tree_get(back, "/b")).items[1].id.id, "127.0.0.1");
    assert_int_equal(tree_node_count(back), tree_node_count(t));
    assert_int_equal(tree_data_bytes(back), tree_data_bytes(t));
    assert_int_equal(tree_last_zxid(back), 5);
    const char *paths[] = {"/", "/zookeeper", "/zookeeper/config", "/a", "/a/e", "/b"};
    for (int i = 0; i < 6; i++) {
        struct zn_stat x = stat_of(t, paths[i]), y = stat_of(back, paths[i]);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    assert_int_equal(tree_node_kind(tree_get(back, "/a")), ZN_NODE_KIND_FILE);
    assert_int_equal(tree_node_data(tree_get(back, "/a/e")).len, -1);
    assert_int_equal(tree_node_data(tree_get(back, "/b")).len, 0);
    struct collected col = {0};
    tree_for_each_ephemeral(back, 0x51, collect_path, &col);
    assert_int_equal(col.count, 1);
    assert_string_equal(col.paths[0], "/a/e");
    int sessions = 0;
    tree_for_each_session(back, count_session, &sessions);
    assert_int_equal(sessions, 1);

    /* the restored tree keeps applying like the original */
    struct txn close = txn_of(6, ZN_OP_CLOSESESSION);
    close.hdr.session_id = 0x51;
    apply_ok(t, &close);
    apply_ok(back, &close);
    assert_int_equal(tree_digest(back), tree_digest(t));
    jute_writer_free(&w);
    tree_free(back);
    tree_free(t);
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* znodefs extension: a node's ptime is the time of the txn that last made or
 * deleted a child (a failed multi changes it back), survives a snapshot, is
 * 0 (unknown) from a format 2 snapshot, and is no part of the digest. */
static void ptime_is_the_time_of_the_last_child_change(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "x", 1, 0);
    apply_ok(t, &c);
    assert_int_equal(tree_node_ptime(tree_get(t, "/a")), 1001); /* its creation */
    c = create_txn(2, "/a/b", "x", 1, 0);
    apply_ok(t, &c);
    assert_int_equal(tree_node_ptime(tree_get(t, "/a")), 1002);
    struct txn set = txn_of(3, ZN_OP_SETDATA);
    set.op.path = "/a";
    set.op.version = 1;
    apply_ok(t, &set);
    assert_int_equal(tree_node_ptime(tree_get(t, "/a")), 1002);
    struct txn d = txn_of(4, ZN_OP_DELETE);
    d.op.path = "/a/b";
    apply_ok(t, &d);
    assert_int_equal(tree_node_ptime(tree_get(t, "/a")), 1004);
    struct txn_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct txn_op){.type = ZN_OP_CREATE, .path = "/a/c", .data = {NULL, -1}, .acl = open_acl, .parent_cversion = -1};
    ops[1] = (struct txn_op){.type = ZN_OP_DELETE, .path = "/missing"};
    struct txn m = txn_of(5, ZN_OP_MULTI);
    m.op_count = 2;
    m.ops = ops;
    assert_int_equal(tree_apply(t, &m, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    assert_int_equal(tree_node_ptime(tree_get(t, "/a")), 1004);

    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, w.data, w.len), 0);
    assert_int_equal(tree_node_ptime(tree_get(back, "/a")), 1004);
    tree_free(back);
    /* Format 2 is format 3 without the 8 ptime bytes after each node's kind:
     * rewrite it so, node by node (each node's tail ends its record). */
    struct jute_writer old;
    jute_writer_init(&old);
    /* magic, version, zxid, digest, no sessions, node count; then the initial
     * tree's four nodes and /a, each ending with kind (4) and ptime (8). */
    size_t header = 4 + 4 + 8 + 8 + 4 + 8, from = header, kept = 0;
    jute_write_raw(&old, w.data, header);
    for (int i = 0; i < 5; i++) {
        size_t at = from;
        at += 4 + be32_at(w.data + at); /* path */
        int32_t data_len = (int32_t)be32_at(w.data + at);
        at += 4 + (data_len > 0 ? (size_t)data_len : 0);
        uint32_t acls = be32_at(w.data + at);
        at += 4;
        for (uint32_t k = 0; k < acls && acls != 0xffffffffu; k++) {
            at += 4; /* perms */
            at += 4 + be32_at(w.data + at); /* scheme */
            at += 4 + be32_at(w.data + at); /* id */
        }
        at += 4 * 8 + 3 * 4 + 2 * 8 + 4; /* the format 2 tail */
        jute_write_raw(&old, w.data + from, at - from);
        from = at + 8; /* the ptime, dropped */
        kept++;
    }
    assert_int_equal(from, w.len);
    assert_int_equal(kept, 5);
    old.data[7] = 2;
    back = tree_new();
    assert_int_equal(tree_deserialize(back, old.data, old.len), 0);
    assert_int_equal(tree_node_ptime(tree_get(back, "/a")), 0);
    assert_int_equal(tree_digest(back), tree_digest(t));
    tree_free(back);
    jute_writer_free(&old);
    jute_writer_free(&w);
    tree_free(t);
}

static void deserialize_refuses_corrupt_snapshots_and_keeps_the_initial_tree(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "payload", 1, 0);
    apply_ok(t, &c);
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    uint64_t initial = 0;
    {
        struct tree *fresh = tree_new();
        initial = tree_digest(fresh);
        tree_free(fresh);
    }
    for (size_t cut = 0; cut < w.len; cut += 7) {
        struct tree *back = tree_new();
        assert_int_not_equal(tree_deserialize(back, w.data, cut), 0);
        assert_int_equal(tree_digest(back), initial);
        assert_int_equal(tree_check(back), 0);
        tree_free(back);
    }
    /* a snapshot in another format is refused, and its format can be named */
    assert_int_equal(tree_snapshot_format(w.data, w.len), TREE_SNAPSHOT_VERSION);
    assert_int_equal(tree_snapshot_format(w.data, 7), -1);
    w.data[7] ^= 3; /* the low byte of the version: format 0 */
    assert_int_equal(tree_snapshot_format(w.data, w.len), TREE_SNAPSHOT_VERSION ^ 3);
    {
        struct tree *other = tree_new();
        assert_int_equal(tree_deserialize(other, w.data, w.len), ZN_CORRUPT);
        assert_int_equal(tree_digest(other), initial);
        tree_free(other);
    }
    w.data[7] ^= 3;
    /* a flipped data byte is caught by the digest */
    size_t at = (size_t)((uint8_t *)memmem(w.data, w.len, "payload", 7) - w.data);
    w.data[at] ^= 1;
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, w.data, w.len), ZN_CORRUPT);
    assert_int_equal(tree_node_count(back), 4);
    tree_free(back);
    jute_writer_free(&w);
    tree_free(t);
}

/* Where node path's record starts in a snapshot: its length-prefixed path. */
static size_t record_at(const struct jute_writer *w, const char *path)
{
    uint8_t key[64];
    size_t len = strlen(path);
    key[0] = key[1] = key[2] = 0;
    key[3] = (uint8_t)len;
    memcpy(key + 4, path, len);
    const uint8_t *at = memmem(w->data, w->len, key, 4 + len);
    assert_non_null(at);
    return (size_t)(at - w->data);
}

/* The loader attaches nodes a few behind the one it reads (tree_snapshot.c,
 * LOAD_AHEAD): a parent still waiting to be attached is found, and a stream
 * refused with nodes still waiting leaves the initial tree (and, under ASan,
 * no leak of those nodes). */
static void a_snapshot_out_of_preorder_loads_and_a_duplicate_is_refused(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    const char *paths[] = {"/a", "/a/x", "/b", "/b/y"};
    for (int i = 0; i < 4; i++) {
        struct txn c = create_txn(1 + i, paths[i], "v", i + 1, 0);
        apply_ok(t, &c);
    }
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    size_t a = record_at(&w, "/a"), ax = record_at(&w, "/a/x"), b = record_at(&w, "/b"),
           by = record_at(&w, "/b/y");
    assert_true(a < ax && ax < b && b < by); /* preorder, as written */

    /* /a, /b, /a/x, /b/y: /a/x's parent is neither the node read before it
     * nor one of that node's ancestors */
    uint8_t *moved = malloc(w.len);
    memcpy(moved, w.data, w.len);
    size_t ax_len = b - ax, b_len = by - b;
    memcpy(moved + ax, w.data + b, b_len);
    memcpy(moved + ax + b_len, w.data + ax, ax_len);
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, moved, w.len), 0);
    assert_int_equal(tree_digest(back), tree_digest(t));
    assert_int_equal(tree_check(back), 0);
    assert_non_null(tree_get(back, "/a/x"));
    tree_free(back);

    /* /b renamed /a: /b/y then has no parent, and is refused while /a/x and
     * the second /a are still waiting; nothing of it is kept */
    uint64_t initial;
    {
        struct tree *fresh = tree_new();
        initial = tree_digest(fresh);
        tree_free(fresh);
    }
    memcpy(moved, w.data, w.len);
    memcpy(moved + b + 4, "/a", 2);
    back = tree_new();
    assert_int_equal(tree_deserialize(back, moved, w.len), ZN_CORRUPT);
    assert_int_equal(tree_digest(back), initial);
    assert_int_equal(tree_check(back), 0);
    tree_free(back);

    /* a stream whose first node is not the root is refused (its node count
     * and digest disagree too: this holds the outcome, not which check) */
    memcpy(moved, w.data, w.len);
    size_t root = record_at(&w, "/");
    memmove(moved + root, w.data + a, w.len - a);
    back = tree_new();
    assert_int_equal(tree_deserialize(back, moved, w.len - (a - root)), ZN_CORRUPT);
    assert_int_equal(tree_check(back), 0);
    tree_free(back);
    free(moved);
    jute_writer_free(&w);
    tree_free(t);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

#define MANY_NODES 100000

static void hundred_thousand_children_under_one_node_serialise_and_list(void **state)
{
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/big", NULL, 1, 0);
    apply_ok(t, &c);
    char data[100];
    memset(data, 'x', sizeof(data));
    char path[32];
    for (int i = 0; i < MANY_NODES; i++) {
        snprintf(path, sizeof(path), "/big/n%07d", i);
        c = create_txn(2 + i, path, NULL, i + 1, 0);
        c.op.data = (struct jute_buf){(const uint8_t *)data, sizeof(data)};
        assert_int_equal(tree_apply(t, &c, NULL, NULL, NULL, NULL), 0);
    }
    const struct tree_node *big = tree_get(t, "/big");
    assert_int_equal(tree_node_child_count(big), MANY_NODES);
    /* every name listed once */
    char *seen = calloc(MANY_NODES, 1);
    for (uint32_t i = 0; i < tree_node_child_count(big); i++) {
        int k = atoi(tree_node_child_name(big, i) + 1);
        assert_true(k >= 0 && k < MANY_NODES && !seen[k]);
        seen[k] = 1;
    }
    free(seen);

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    double ser = seconds_since(&start);
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, w.data, w.len), 0);
    double de = seconds_since(&start);
    print_message("snapshot of %d nodes of 100 bytes: %zu bytes, serialise %.3f s, deserialise %.3f s\n",
                  MANY_NODES, w.len, ser, de);
    assert_int_equal(tree_digest(back), tree_digest(t));
    assert_int_equal(tree_check(back), 0);

    /* removing half the children keeps the rest reachable */
    int64_t zxid = tree_last_zxid(t) + 1;
    for (int i = 0; i < MANY_NODES; i += 2) {
        snprintf(path, sizeof(path), "/big/n%07d", i);
        struct txn d = txn_of(zxid++, ZN_OP_DELETE);
        d.op.path = path;
        assert_int_equal(tree_apply(t, &d, NULL, NULL, NULL, NULL), 0);
    }
    assert_int_equal(tree_node_child_count(big), MANY_NODES / 2);
    assert_int_equal(tree_check(t), 0);
    jute_writer_free(&w);
    tree_free(back);
    tree_free(t);
}


/* ---- quotas and the config node ---- */

static void assert_data(const struct tree *t, const char *path, const char *expected)
{
    const struct tree_node *n = tree_get(t, path);
    if (n == NULL)
        fail_msg("no node %s", path);
    struct jute_buf d = tree_node_data(n);
    size_t len = d.len > 0 ? (size_t)d.len : 0;
    if (len != strlen(expected) || memcmp(d.data, expected, len) != 0)
        fail_msg("%s holds '%.*s', expected '%s'", path, (int)len, (const char *)d.data, expected);
}

/* The nodes zkCli's setquota makes for /app: the quota dirs, the limits, then the stats. */
static int64_t make_quota(struct tree *t, int64_t zxid, const char *limits)
{
    struct txn c = create_txn(zxid++, "/zookeeper/quota/app", NULL, -1, 0);
    apply_ok(t, &c);
    c = create_txn(zxid++, "/zookeeper/quota/app/zookeeper_limits", limits, -1, 0);
    apply_ok(t, &c);
    c = create_txn(zxid++, "/zookeeper/quota/app/zookeeper_stats", "count=0,bytes=0", -1, 0);
    apply_ok(t, &c);
    return zxid;
}

static void quota_stats_count_the_subtree_and_follow_creates_sets_and_deletes(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/app", "abc", -1, 0);
    apply_ok(t, &c);
    c = create_txn(2, "/app/x", "12345", -1, 0);
    apply_ok(t, &c);
    int64_t z = make_quota(t, 3, "count=10,bytes=-1");
    /* The new stats node is set to what /app's subtree holds (updateQuotaForPath). */
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=8");
    assert_string_equal(tree_quota_prefix(t, "/app/x/y"), "/app");
    assert_null(tree_quota_prefix(t, "/apple"));
    assert_null(tree_quota_prefix(t, "/"));

    struct events ev = {0};
    c = create_txn(z++, "/app/x/y", "zz", -1, 0);
    assert_int_equal(tree_apply(t, &c, record_event, &ev, NULL, NULL), 0);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=3,bytes=10");
    /* No watch fires on the stats node, and its version does not move. */
    for (int i = 0; i < ev.count; i++)
        assert_true(strstr(ev.path[i], "zookeeper_stats") == NULL);
    assert_int_equal(stat_of(t, "/zookeeper/quota/app/zookeeper_stats").version, 0);

    struct txn set = txn_of(z++, ZN_OP_SETDATA);
    set.op.path = "/app/x";
    set.op.data = (struct jute_buf){(const uint8_t *)"1", 1};
    set.op.version = 1;
    apply_ok(t, &set);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=3,bytes=6");

    struct txn del = txn_of(z++, ZN_OP_DELETE);
    del.op.path = "/app/x/y";
    apply_ok(t, &del);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=4");
    /* Outside the quota nothing is counted. */
    c = create_txn(z++, "/other", "qqq", -1, 0);
    apply_ok(t, &c);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=4");
    tree_free(t);
}

static void deleting_the_limit_node_ends_the_quota_and_the_deepest_quota_counts(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/app", NULL, -1, 0);
    apply_ok(t, &c);
    c = create_txn(2, "/app/sub", NULL, -1, 0);
    apply_ok(t, &c);
    int64_t z = make_quota(t, 3, "count=10,bytes=-1");
    c = create_txn(z++, "/zookeeper/quota/app/sub", NULL, -1, 0);
    apply_ok(t, &c);
    c = create_txn(z++, "/zookeeper/quota/app/sub/zookeeper_limits", "count=1,bytes=-1", -1, 0);
    apply_ok(t, &c);
    c = create_txn(z++, "/zookeeper/quota/app/sub/zookeeper_stats", "", -1, 0);
    apply_ok(t, &c);
    assert_int_equal(tree_quota_count(t), 2);
    assert_data(t, "/zookeeper/quota/app/sub/zookeeper_stats", "count=1,bytes=0");
    c = create_txn(z++, "/app/sub/n", "x", -1, 0);
    apply_ok(t, &c);
    /* Only the deepest quota over the path counts it (getMaxPrefixWithQuota). */
    assert_data(t, "/zookeeper/quota/app/sub/zookeeper_stats", "count=2,bytes=1");
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=0");

    struct txn del = txn_of(z++, ZN_OP_DELETE);
    del.op.path = "/zookeeper/quota/app/sub/zookeeper_limits";
    apply_ok(t, &del);
    assert_int_equal(tree_quota_count(t), 1);
    assert_string_equal(tree_quota_prefix(t, "/app/sub/n"), "/app");
    c = create_txn(z++, "/app/sub/m", "yy", -1, 0);
    apply_ok(t, &c);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=3,bytes=2");
    tree_free(t);
}

static void quota_stats_keep_zookeepers_record_format_and_skip_unparsable_stats(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/app", NULL, -1, 0);
    apply_ok(t, &c);
    int64_t z = make_quota(t, 2, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=5");
    struct txn set = txn_of(z++, ZN_OP_SETDATA);
    set.op.path = "/zookeeper/quota/app/zookeeper_stats";
    set.op.data = (struct jute_buf){(const uint8_t *)"count=1,bytes=0=;zeta=3;alpha=9", 31};
    set.op.version = 1;
    apply_ok(t, &set);
    c = create_txn(z++, "/app/a", "xy", -1, 0);
    apply_ok(t, &c);
    /* StatsTrack.toString: count, bytes, '=', the other keys sorted after ';'. */
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=2=;alpha=9;zeta=3");
    set.hdr.zxid = set.hdr.zxid + 10;
    z = set.hdr.zxid + 1;
    set.op.data = (struct jute_buf){(const uint8_t *)"count=x", 7};
    set.op.version = 2;
    apply_ok(t, &set);
    c = create_txn(z++, "/app/b", "xy", -1, 0);
    apply_ok(t, &c);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=x");
    tree_free(t);
}

static void a_failed_txn_rolls_back_quota_stats_and_the_quota_set(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/app", NULL, -1, 0);
    apply_ok(t, &c);
    int64_t z = make_quota(t, 2, "count=10,bytes=-1");
    uint64_t digest = tree_digest(t);
    size_t bytes = tree_data_bytes(t);
    /* A multi whose last op does not fit the tree: a create under the quota and a new quota
     * first, then a delete of a missing node. */
    struct txn_op ops[4];
    ops[0] = create_txn(z, "/app/n", "1234", -1, 0).op;
    ops[1] = create_txn(z, "/zookeeper/quota/other", NULL, -1, 0).op;
    ops[2] = create_txn(z, "/zookeeper/quota/other/zookeeper_limits", "count=1", -1, 0).op;
    memset(&ops[3], 0, sizeof(ops[3]));
    ops[3].type = ZN_OP_DELETE;
    ops[3].path = "/missing";
    struct txn m = txn_of(z, ZN_OP_MULTI);
    m.op_count = 4;
    m.ops = ops;
    assert_int_equal(tree_apply(t, &m, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    assert_int_equal(tree_check(t), 0);
    assert_int_equal(tree_digest(t), digest);
    assert_int_equal(tree_data_bytes(t), bytes);
    assert_int_equal(tree_quota_count(t), 1);
    assert_data(t, "/zookeeper/quota/app/zookeeper_stats", "count=1,bytes=0");
    tree_free(t);
}

static void a_snapshot_brings_back_the_quota_set(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/app", NULL, -1, 0);
    apply_ok(t, &c);
    int64_t z = make_quota(t, 2, "count=10,bytes=-1");
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    struct tree *back = tree_new();
    assert_int_equal(tree_deserialize(back, w.data, w.len), 0);
    jute_writer_free(&w);
    assert_int_equal(tree_check(back), 0);
    assert_int_equal(tree_quota_count(back), 1);
    /* Both trees apply the same txn the same way. */
    c = create_txn(z, "/app/n", "abc", -1, 0);
    apply_ok(t, &c);
    apply_ok(back, &c);
    assert_data(back, "/zookeeper/quota/app/zookeeper_stats", "count=2,bytes=3");
    assert_int_equal(tree_digest(back), tree_digest(t));
    tree_free(t);
    tree_free(back);
}

static void set_config_is_member_local_and_kept_across_a_snapshot_load(void **state)
{
    (void)state;
    struct tree *leader = tree_new(), *member = tree_new();
    uint64_t digest = tree_digest(member);
    const char *text = "server.1=127.0.0.1:2888:3888:participant\nversion=0";
    assert_int_equal(tree_set_config(member, text, strlen(text), 0, 1234), 0);
    assert_int_equal(tree_check(member), 0);
    assert_int_equal(tree_digest(member), digest);
    assert_data(member, "/zookeeper/config", text);
    struct zn_stat st = stat_of(member, "/zookeeper/config");
    assert_int_equal(st.version, -1);
    assert_int_equal(st.mtime, 1234);
    assert_int_equal(st.aversion, -1);

    assert_int_equal(tree_set_config(leader, "other", 5, 0, 99), 0);
    struct txn c = create_txn(1, "/a", "x", -1, 0);
    apply_ok(leader, &c);
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(leader, &w), 0);
    assert_int_equal(tree_deserialize(member, w.data, w.len), 0);
    jute_writer_free(&w);
    assert_int_equal(tree_check(member), 0);
    assert_int_equal(tree_digest(member), tree_digest(leader));
    assert_data(member, "/zookeeper/config", text);
    assert_int_equal(stat_of(member, "/zookeeper/config").mtime, 1234);
    tree_free(leader);
    tree_free(member);
}

/* ---- import ---- */

static void import_node(struct tree *t, const char *path, int64_t czxid, int32_t cversion, int64_t owner)
{
    struct tree_persisted_stat s = {
        .czxid = czxid, .mzxid = czxid + 1, .pzxid = czxid + 2, .ctime = 5000 + czxid,
        .mtime = 6000 + czxid, .ephemeral_owner = owner, .version = 3, .cversion = cversion,
        .aversion = 2,
    };
    struct jute_buf data = {(const uint8_t *)"d", 1};
    assert_int_equal(tree_import_node(t, path, data, &open_acl, &s), 0);
}

static void an_imported_tree_keeps_every_stat_field_and_round_trips_a_snapshot(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    tree_import_begin(t);
    assert_int_equal(tree_import_session(t, 0x100, 4000), 0);
    assert_int_equal(tree_import_session(t, 0x100, 4000), ZN_BADARGUMENTS);
    import_node(t, "/", 0, 3, 0);
    import_node(t, "/a", 10, 7, 0);
    import_node(t, "/a/e", 20, 0, 0x100);
    import_node(t, "/a/box", 21, 0, TREE_CONTAINER_OWNER);
    struct tree_persisted_stat s = {0};
    struct jute_buf data = {NULL, -1};
    /* no parent; an ephemeral parent; an owner not imported; a node twice */
    assert_int_equal(tree_import_node(t, "/x/y", data, &open_acl, &s), ZN_BADARGUMENTS);
    assert_int_equal(tree_import_node(t, "/a/e/c", data, &open_acl, &s), ZN_BADARGUMENTS);
    s.ephemeral_owner = 0x200;
    assert_int_equal(tree_import_node(t, "/a/f", data, &open_acl, &s), ZN_BADARGUMENTS);
    s.ephemeral_owner = 0;
    assert_int_equal(tree_import_node(t, "/a", data, &open_acl, &s), ZN_BADARGUMENTS);
    assert_int_equal(tree_import_end(t, 0x30), 0);
    assert_int_equal(tree_check(t), 0);
    assert_non_null(tree_get(t, "/zookeeper/config"));
    assert_int_equal(tree_last_zxid(t), 0x30);
    struct zn_stat a = stat_of(t, "/a");
    assert_int_equal(a.czxid, 10);
    assert_int_equal(a.mzxid, 11);
    assert_int_equal(a.pzxid, 12);
    assert_int_equal(a.ctime, 5010);
    assert_int_equal(a.mtime, 6010);
    assert_int_equal(a.version, 3);
    assert_int_equal(a.aversion, 2);
    assert_int_equal(a.cversion, 7 * 2 - 2); /* persisted creates, seen as changes */
    assert_int_equal(stat_of(t, "/a/e").ephemeral_owner, 0x100);
    assert_true(tree_node_is_container(tree_get(t, "/a/box")));
    assert_int_equal(tree_session_ephemeral_count(t, 0x100), 1);
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    struct tree *copy = tree_new();
    assert_int_equal(tree_deserialize(copy, w.data, w.len), 0);
    assert_true(tree_digest(copy) == tree_digest(t));
    jute_writer_free(&w);
    tree_free(copy);
    tree_free(t);
}

static void a_fuzzy_replay_skips_ops_that_do_not_fit_and_a_gone_delete_moves_the_pzxid(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    tree_import_begin(t);
    import_node(t, "/", 0, 1, 0);
    import_node(t, "/p", 10, 1, 0);
    import_node(t, "/p/there", 11, 0, 0);
    assert_int_equal(tree_import_end(t, 0x20), 0);
    uint64_t skipped = 0;
    /* a create of a node the snapshot already holds: skipped, the parent unchanged */
    struct txn c = create_txn(0x21, "/p/there", "x", 2, 0);
    assert_int_equal(tree_import_replay(t, &c, &skipped), 0);
    assert_int_equal(skipped, 1);
    assert_int_equal(stat_of(t, "/p").pzxid, 12);
    /* a delete of a node already gone: skipped, but the parent's pzxid moves (DataTree.deleteNode) */
    struct txn d = txn_of(0x22, ZN_OP_DELETE);
    d.op.path = "/p/gone";
    assert_int_equal(tree_import_replay(t, &d, &skipped), 0);
    assert_int_equal(skipped, 2);
    assert_int_equal(stat_of(t, "/p").pzxid, 0x22);
    /* a multi with one op that fits and one that does not: the one that fits is applied */
    struct txn_op ops[2] = {create_txn(0x23, "/p/new", "n", -1, 0).op, d.op};
    struct txn m = txn_of(0x23, ZN_OP_MULTI);
    m.op_count = 2;
    m.ops = ops;
    assert_int_equal(tree_import_replay(t, &m, &skipped), 0);
    assert_int_equal(skipped, 3);
    assert_non_null(tree_get(t, "/p/new"));
    assert_int_equal(tree_last_zxid(t), 0x23);
    assert_int_equal(tree_import_replay(t, &m, &skipped), ZN_DATAINCONSISTENCY); /* zxid again */
    assert_int_equal(tree_check(t), 0);
    tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_tree_has_zookeepers_system_nodes),
        cmocka_unit_test(create_sets_stat_fields_and_fires_created_then_child_changed),
        cmocka_unit_test(null_data_is_kept_distinct_from_empty_data),
        cmocka_unit_test(set_data_sets_version_mtime_mzxid_and_fires_data_changed),
        cmocka_unit_test(delete_sets_parent_pzxid_and_counts_in_the_client_cversion),
        cmocka_unit_test(set_acl_sets_aversion_and_the_new_acl),
        cmocka_unit_test(nodes_with_equal_acls_share_one_copy),
        cmocka_unit_test(sequential_parent_cversion_is_taken_from_the_txn_and_only_moves_forward),
        cmocka_unit_test(inconsistent_txns_fail_and_leave_the_tree_unchanged),
        cmocka_unit_test(multi_applies_every_op_and_fires_their_events_in_order),
        cmocka_unit_test(failed_multi_changes_nothing_and_reports_zookeepers_per_op_errors),
        cmocka_unit_test(close_session_deletes_its_ephemerals_in_path_order),
        cmocka_unit_test(containers_and_ttl_nodes_hide_their_owner_from_clients),
        cmocka_unit_test(digest_depends_on_the_state_not_the_order_of_children),
        cmocka_unit_test(snapshot_round_trip_restores_nodes_sessions_and_digest),
        cmocka_unit_test(deserialize_refuses_corrupt_snapshots_and_keeps_the_initial_tree),
        cmocka_unit_test(ptime_is_the_time_of_the_last_child_change),
        cmocka_unit_test(a_snapshot_out_of_preorder_loads_and_a_duplicate_is_refused),
        cmocka_unit_test(hundred_thousand_children_under_one_node_serialise_and_list),
        cmocka_unit_test(quota_stats_count_the_subtree_and_follow_creates_sets_and_deletes),
        cmocka_unit_test(deleting_the_limit_node_ends_the_quota_and_the_deepest_quota_counts),
        cmocka_unit_test(quota_stats_keep_zookeepers_record_format_and_skip_unparsable_stats),
        cmocka_unit_test(a_failed_txn_rolls_back_quota_stats_and_the_quota_set),
        cmocka_unit_test(a_snapshot_brings_back_the_quota_set),
        cmocka_unit_test(set_config_is_member_local_and_kept_across_a_snapshot_load),
        cmocka_unit_test(an_imported_tree_keeps_every_stat_field_and_round_trips_a_snapshot),
        cmocka_unit_test(a_fuzzy_replay_skips_ops_that_do_not_fit_and_a_gone_delete_moves_the_pzxid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
