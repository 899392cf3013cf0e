/*
 * Unit tests of daemon/model/prep.c across requests: the overlay of pending
 * changes, multi success and failure, ephemerals and sessions, and that the
 * txns prep makes apply identically on every member.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prep.h"
#include "prep_fixture.h"

/* ---- the overlay ---- */

static void second_pending_create_of_the_same_path_fails_with_nodeexists(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/dup", NULL, ZN_CREATE_PERSISTENT);
    struct txn first, second;
    assert_int_equal(prepare(h, SID, &r, &first, NULL), 0);
    assert_int_equal(prepare(h, SID, &r, &second, NULL), ZN_NODEEXISTS);
    apply(h, &first, NULL);
    assert_int_equal(prep_pending_count(h->prep), 0);
    assert_non_null(tree_get(h->tree, "/dup"));
}

static void create_under_a_pending_parent_succeeds(void **state)
{
    struct harness *h = *state;
    struct zn_request parent = create_req("/p", NULL, ZN_CREATE_PERSISTENT);
    struct zn_request child = create_req("/p/c", NULL, ZN_CREATE_SEQUENTIAL);
    struct txn t1, t2, t3;
    assert_int_equal(prepare(h, SID, &parent, &t1, NULL), 0);
    assert_int_equal(prepare(h, SID, &child, &t2, NULL), 0);
    assert_int_equal(prepare(h, SID, &child, &t3, NULL), 0);
    assert_string_equal(t2.op.path, "/p/c0000000000");
    assert_string_equal(t3.op.path, "/p/c0000000001");
    /* a delete of the pending parent sees its pending children */
    struct zn_request del = path_req(ZN_OP_DELETE, "/p", -1);
    struct txn t4;
    assert_int_equal(prepare(h, SID, &del, &t4, NULL), ZN_NOTEMPTY);
    apply(h, &t1, NULL);
    apply(h, &t2, NULL);
    apply(h, &t3, NULL);
    assert_int_equal(stat_of(h, "/p").num_children, 2);
    assert_int_equal(prep_pending_count(h->prep), 0);
}

static void pending_delete_and_set_data_are_seen_by_later_requests(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request set = path_req(ZN_OP_SETDATA, "/a", 0);
    struct txn t1, t2, t3, t4;
    assert_int_equal(prepare(h, SID, &set, &t1, NULL), 0);
    assert_int_equal(prepare(h, SID, &set, &t2, NULL), ZN_BADVERSION); /* version is 1 now */
    set.version = 1;
    assert_int_equal(prepare(h, SID, &set, &t2, NULL), 0);
    assert_int_equal(t2.op.version, 2);
    struct zn_request del = path_req(ZN_OP_DELETE, "/a", 2);
    assert_int_equal(prepare(h, SID, &del, &t3, NULL), 0);
    assert_int_equal(prepare(h, SID, &set, &t4, NULL), ZN_NONODE);
    struct zn_request again = create_req("/a", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(prepare(h, SID, &again, &t4, NULL), 0);
    apply(h, &t1, NULL);
    apply(h, &t2, NULL);
    apply(h, &t3, NULL);
    apply(h, &t4, NULL);
    assert_int_equal(stat_of(h, "/a").version, 0);
    assert_int_equal(prep_pending_count(h->prep), 0);
}

static void reset_forgets_every_pending_change(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/gone", NULL, ZN_CREATE_PERSISTENT);
    struct txn t;
    assert_int_equal(prepare(h, SID, &r, &t, NULL), 0);
    assert_true(prep_pending_count(h->prep) > 0);
    prep_reset(h->prep);
    assert_int_equal(prep_pending_count(h->prep), 0);
    assert_int_equal(prepare(h, SID, &r, &t, NULL), 0); /* not NODEEXISTS */
}

/* ---- multi ---- */

static void multi_success_applies_all_ops_with_their_results(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request ops[4] = {create_req("/m", "x", ZN_CREATE_PERSISTENT), path_req(ZN_OP_CHECK, "/m", 0),
                                path_req(ZN_OP_SETDATA, "/m", 0), path_req(ZN_OP_DELETE, "/a", 0)};
    ops[0].type = ZN_OP_CREATE;
    struct zn_request multi = {.type = ZN_OP_MULTI, .op_count = 4, .ops = ops};
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &multi, &res), 0);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.result_count, 4);
    assert_int_equal(res.results[0].type, ZN_OP_CREATE);
    assert_string_equal(res.results[0].path, "/m");
    assert_int_equal(res.results[1].type, ZN_OP_CHECK);
    assert_int_equal(res.results[2].type, ZN_OP_SETDATA);
    assert_int_equal(res.results[2].stat.version, 1);
    assert_int_equal(res.results[3].type, ZN_OP_DELETE);
    assert_null(tree_get(h->tree, "/a"));
    /* every op of a multi has the multi's zxid */
    assert_int_equal(stat_of(h, "/m").czxid, stat_of(h, "/m").mzxid);
}

static void multi_failure_reports_per_op_results_and_undoes_its_overlay_changes(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/q", ZN_CREATE_PERSISTENT);
    size_t pending = prep_pending_count(h->prep);
    struct zn_request ops[4] = {create_req("/q/s-", NULL, ZN_CREATE_SEQUENTIAL), create_req("/x", NULL, 0),
                                path_req(ZN_OP_CHECK, "/q", 7), path_req(ZN_OP_DELETE, "/q", -1)};
    struct zn_request multi = {.type = ZN_OP_MULTI, .op_count = 4, .ops = ops};
    struct txn t;
    struct zn_response res;
    assert_int_equal(prepare(h, SID, &multi, &t, &res), ZN_BADVERSION);
    assert_int_equal(res.type, ZN_OP_MULTI);
    assert_int_equal(res.err, ZN_BADVERSION);
    assert_int_equal(res.result_count, 4);
    int32_t want[] = {ZN_OK, ZN_OK, ZN_BADVERSION, ZN_RUNTIMEINCONSISTENCY};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(res.results[i].type, ZN_OP_ERROR);
        assert_int_equal(res.results[i].err, want[i]);
    }
    assert_int_equal(prep_pending_count(h->prep), pending);
    /* the logged txn is a multi of errors, and applying it changes nothing */
    assert_int_equal(t.hdr.type, ZN_OP_MULTI);
    uint64_t digest = tree_digest(h->tree);
    struct zn_response applied;
    apply(h, &t, &applied);
    assert_int_equal(applied.err, ZN_BADVERSION);
    assert_int_equal(applied.results[3].err, ZN_RUNTIMEINCONSISTENCY);
    assert_int_equal(tree_digest(h->tree), digest);
    /* nothing of the failed multi is visible: /x is free, the sequence number
     * is reused (ZOOKEEPER-1624) */
    struct zn_response r2;
    struct zn_request again = create_req("/q/s-", NULL, ZN_CREATE_SEQUENTIAL);
    assert_int_equal(write_op(h, SID, &again, &r2), 0);
    assert_string_equal(r2.path, "/q/s-0000000000");
    must_create(h, SID, "/x", 0);
}

static void multi_failure_restores_the_pending_records_it_shadowed(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    /* a pending setData makes /a version 1 */
    struct zn_request set = path_req(ZN_OP_SETDATA, "/a", 0);
    struct txn t1;
    assert_int_equal(prepare(h, SID, &set, &t1, NULL), 0);
    /* the multi bumps it again, then fails */
    set.version = 1;
    struct zn_request ops[2] = {set, path_req(ZN_OP_DELETE, "/nope", -1)};
    struct zn_request multi = {.type = ZN_OP_MULTI, .op_count = 2, .ops = ops};
    struct txn t2;
    assert_int_equal(prepare(h, SID, &multi, &t2, NULL), ZN_NONODE);
    /* /a is back to "version 1 pending" */
    struct zn_request check = path_req(ZN_OP_CHECK, "/a", 1);
    struct txn t3;
    assert_int_equal(prepare(h, SID, &check, &t3, NULL), 0);
    apply(h, &t1, NULL);
    apply(h, &t2, NULL);
    apply(h, &t3, NULL);
    assert_int_equal(stat_of(h, "/a").version, 1);
}

/* ---- sessions ---- */

static void ephemeral_owner_is_the_creating_session(void **state)
{
    struct harness *h = *state;
    open_session(h, SID);
    struct zn_response res;
    struct zn_request r = create_req("/e", NULL, ZN_CREATE_EPHEMERAL_SEQUENTIAL);
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_string_equal(res.path, "/e0000000000"); /* the root has counted no create yet */
    assert_int_equal(res.stat.ephemeral_owner, SID);
    /* an unknown session cannot own an ephemeral */
    r = create_req("/e2", NULL, ZN_CREATE_EPHEMERAL);
    assert_int_equal(write_op(h, OTHER_SID, &r, NULL), ZN_SESSIONEXPIRED);
}

static void close_session_removes_its_ephemerals_including_pending_ones(void **state)
{
    struct harness *h = *state;
    open_session(h, SID);
    open_session(h, OTHER_SID);
    must_create(h, SID, "/p", ZN_CREATE_PERSISTENT);
    must_create(h, SID, "/p/e1", ZN_CREATE_EPHEMERAL);
    must_create(h, OTHER_SID, "/p/other", ZN_CREATE_EPHEMERAL);
    /* one more ephemeral, still pending when the close is prepared */
    struct zn_request r = create_req("/p/e2", NULL, ZN_CREATE_EPHEMERAL);
    struct txn pending_create, close, later;
    assert_int_equal(prepare(h, SID, &r, &pending_create, NULL), 0);
    assert_int_equal(prep_close_session(h->prep, SID, ++h->zxid, h->now_ms, &h->arena, &close), 0);
    assert_int_equal(close.hdr.type, ZN_OP_CLOSESESSION);
    assert_int_equal(close.op.paths.count, 2);
    assert_string_equal(close.op.paths.items[0], "/p/e1");
    assert_string_equal(close.op.paths.items[1], "/p/e2");
    /* after the close is prepared: the session is closing */
    r = create_req("/p/e3", NULL, ZN_CREATE_EPHEMERAL);
    assert_int_equal(prepare(h, SID, &r, &later, NULL), ZN_SESSIONEXPIRED);
    struct txn again;
    assert_int_equal(prep_close_session(h->prep, SID, ++h->zxid, h->now_ms, &h->arena, &again), ZN_SESSIONEXPIRED);
    /* and its ephemerals are gone from the overlay */
    struct zn_request del = path_req(ZN_OP_DELETE, "/p/e1", -1);
    assert_int_equal(prepare(h, SID, &del, &later, NULL), ZN_NONODE);

    apply(h, &pending_create, NULL);
    apply(h, &close, NULL);
    assert_null(tree_get(h->tree, "/p/e1"));
    assert_null(tree_get(h->tree, "/p/e2"));
    assert_non_null(tree_get(h->tree, "/p/other"));
    assert_false(tree_session_exists(h->tree, SID));
    assert_int_equal(tree_session_ephemeral_count(h->tree, OTHER_SID), 1);
    assert_int_equal(prep_pending_count(h->prep), 0);
    struct txn unknown;
    assert_int_equal(prep_close_session(h->prep, 0x999, ++h->zxid, h->now_ms, &h->arena, &unknown),
                     ZN_SESSIONEXPIRED);
}

static void create_session_twice_is_refused(void **state)
{
    struct harness *h = *state;
    struct txn t, u;
    assert_int_equal(prep_create_session(h->prep, SID, 5000, ++h->zxid, h->now_ms, &h->arena, &t), 0);
    assert_int_equal(prep_create_session(h->prep, SID, 5000, ++h->zxid, h->now_ms, &h->arena, &u), ZN_BADARGUMENTS);
    /* a pending session may already own ephemerals */
    struct zn_request r = create_req("/e", NULL, ZN_CREATE_EPHEMERAL);
    struct txn c;
    assert_int_equal(prepare(h, SID, &r, &c, NULL), 0);
    apply(h, &t, NULL);
    apply(h, &c, NULL);
    int32_t timeout = 0;
    assert_int_equal(tree_session_timeout(h->tree, SID, &timeout), 0);
    assert_int_equal(timeout, 5000);
}

/* ---- determinism ---- */

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random writes through prep on one member; every txn is encoded, decoded
 * and applied on a second member; the digests agree after every txn, and a
 * snapshot of the first loads into a third with the same digest. */
static void the_same_txns_applied_on_two_trees_give_equal_digests(void **state)
{
    struct harness *h = *state;
    struct tree *replica = tree_new();
    open_session(h, SID);
    struct txn first;
    assert_int_equal(prep_create_session(h->prep, OTHER_SID, 1, ++h->zxid, 0, &h->arena, &first), 0);
    apply(h, &first, NULL);
    /* the replica starts from a snapshot of the leader */
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(h->tree, &w), 0);
    assert_int_equal(tree_deserialize(replica, w.data, w.len), 0);
    jute_writer_free(&w);

    uint64_t seed = 0x9e3779b97f4a7c15ull;
    const char *names[] = {"/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/deep"};
    struct zn_arena decode_arena;
    zn_arena_init(&decode_arena);
    int applied = 0;
    for (int i = 0; i < 2000; i++) {
        zn_arena_reset(&h->arena);
        uint64_t r = next_random(&seed);
        const char *path = names[r % 6];
        struct zn_request req;
        int64_t sid = (r >> 8) % 2 ? SID : OTHER_SID;
        switch ((r >> 16) % 5) {
        case 0:
            req = create_req(path, "data", (int32_t)((r >> 24) % 4));
            break;
        case 1:
            req = path_req(ZN_OP_DELETE, path, -1);
            break;
        case 2:
            req = path_req(ZN_OP_SETDATA, path, -1);
            req.data = (struct jute_buf){(const uint8_t *)&seed, 8};
            break;
        case 3:
            req = path_req(ZN_OP_SETACL, path, -1);
            break;
        default: {
            static struct zn_request ops[2];
            ops[0] = create_req(path, NULL, ZN_CREATE_SEQUENTIAL);
            ops[1] = path_req(ZN_OP_SETDATA, names[(r >> 32) % 6], -1);
            req = (struct zn_request){.type = ZN_OP_MULTI, .op_count = 2, .ops = ops};
        }
        }
        struct txn t;
        struct zn_response res;
        int rc = prepare(h, sid, &req, &t, &res);
        if (rc != 0 && t.hdr.type != ZN_OP_MULTI)
            continue; /* the server answers the error; nothing is logged */
        jute_writer_init(&w);
        assert_int_equal(txn_encode(&w, &t), 0);
        apply(h, &t, &res);
        zn_arena_reset(&decode_arena);
        struct jute_reader rd;
        jute_reader_init(&rd, w.data, w.len, &decode_arena);
        struct txn copy;
        assert_int_equal(txn_decode(&rd, &copy), 0);
        assert_int_equal(tree_apply(replica, &copy, NULL, NULL, NULL, NULL), 0);
        jute_writer_free(&w);
        assert_int_equal(tree_digest(replica), tree_digest(h->tree));
        applied++;
        if (i == 1000) {
            struct txn close;
            assert_int_equal(prep_close_session(h->prep, OTHER_SID, ++h->zxid, 0, &h->arena, &close), 0);
            jute_writer_init(&w);
            assert_int_equal(txn_encode(&w, &close), 0);
            apply(h, &close, NULL);
            jute_reader_init(&rd, w.data, w.len, &decode_arena);
            assert_int_equal(txn_decode(&rd, &copy), 0);
            assert_int_equal(tree_apply(replica, &copy, NULL, NULL, NULL, NULL), 0);
            jute_writer_free(&w);
            struct txn reopen;
            assert_int_equal(prep_create_session(h->prep, OTHER_SID, 1, ++h->zxid, 0, &h->arena, &reopen), 0);
            apply(h, &reopen, NULL);
            assert_int_equal(tree_apply(replica, &reopen, NULL, NULL, NULL, NULL), 0);
        }
    }
    assert_true(applied > 500);
    assert_int_equal(tree_check(replica), 0);
    assert_int_equal(tree_node_count(replica), tree_node_count(h->tree));

    struct tree *restored = tree_new();
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(h->tree, &w), 0);
    assert_int_equal(tree_deserialize(restored, w.data, w.len), 0);
    assert_int_equal(tree_digest(restored), tree_digest(replica));
    jute_writer_free(&w);
    tree_free(restored);
    zn_arena_free(&decode_arena);
    tree_free(replica);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(second_pending_create_of_the_same_path_fails_with_nodeexists),
        T(create_under_a_pending_parent_succeeds),
        T(pending_delete_and_set_data_are_seen_by_later_requests),
        T(reset_forgets_every_pending_change),
        T(multi_success_applies_all_ops_with_their_results),
        T(multi_failure_reports_per_op_results_and_undoes_its_overlay_changes),
        T(multi_failure_restores_the_pending_records_it_shadowed),
        T(ephemeral_owner_is_the_creating_session),
        T(close_session_removes_its_ephemerals_including_pending_ones),
        T(create_session_twice_is_refused),
        T(the_same_txns_applied_on_two_trees_give_equal_digests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
