/*
 * Unit tests of daemon/model/tree*.c: ZooKeeper's initial tree, the stat rules of
 * each kind of txn (DataTree.createNode / deleteNode / setData / setACL and
 * DataNode.copyStat), watch events and their order, sessions and their
 * ephemerals, all-or-nothing apply and the digest.  Snapshots are in
 * test_tree_snapshot.c; quotas, the config node and import in
 * test_tree_quota.c.
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
#include "tree_fixture.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
