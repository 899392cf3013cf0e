/*
 * Unit tests of daemon/model/tree.c's quotas (the stat nodes follow creates, sets
 * and deletes; a failed txn rolls them back; a snapshot brings them back), the
 * member-local config node, and import (every stat field kept; a fuzzy replay
 * skips ops that do not fit).
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
