/*
 * Unit tests of the node layout of daemon/model/tree*.c (issue 18's memory
 * work): data in the node's own allocation or, once it outgrows it, in a
 * block of its own, and back; a session's ephemerals in an array whose
 * slots survive deletes and rollbacks; a null ACL kept apart from an empty
 * one with the ACL reduced to one pointer.  Each ends with tree_check and a
 * snapshot round trip, which recomputes the digest node by node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"
#include "tree_fixture.h"

/* A copy of t through a snapshot; its digest was checked by the load. */
static struct tree *round_trip(const struct tree *t)
{
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize(t, &w), 0);
    struct tree *copy = tree_new();
    assert_int_equal(tree_deserialize(copy, w.data, w.len), 0);
    jute_writer_free(&w);
    assert_int_equal(tree_digest(copy), tree_digest(t));
    assert_int_equal(tree_check(copy), 0);
    return copy;
}

static void assert_data(const struct tree *t, const char *path, const uint8_t *bytes, int32_t len)
{
    struct jute_buf b = tree_node_data(tree_get(t, path));
    assert_int_equal(b.len, len);
    if (len > 0)
        assert_memory_equal(b.data, bytes, (size_t)len);
}

static struct txn_op set_op(const char *path, const uint8_t *bytes, int32_t len)
{
    return (struct txn_op){.type = ZN_OP_SETDATA, .path = (char *)path, .data = {bytes, len}, .version = 9};
}

/* A multi of ops then a create under a missing parent: applied, then
 * rolled back. */
static void apply_failing_multi(struct tree *t, int64_t zxid, const struct txn_op *ops, int32_t count)
{
    struct txn_op all[8];
    memcpy(all, ops, sizeof(*ops) * (size_t)count);
    all[count] = (struct txn_op){.type = ZN_OP_CREATE, .path = "/missing/x", .data = {NULL, -1}, .acl = open_acl,
                                 .parent_cversion = -1};
    struct txn m = txn_of(zxid, ZN_OP_MULTI);
    m.op_count = count + 1;
    m.ops = all;
    assert_int_equal(tree_apply(t, &m, NULL, NULL, NULL, NULL), ZN_DATAINCONSISTENCY);
    assert_int_equal(tree_check(t), 0);
}

static void data_moves_out_of_the_node_and_back_and_rolls_back(void **state)
{
    (void)state;
    static uint8_t big[5000], bigger[9000];
    memset(big, 'x', sizeof(big));
    memset(bigger, 'y', sizeof(bigger));
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/a", "ab", 1, 0);
    apply_ok(t, &c);
    assert_data(t, "/a", (const uint8_t *)"ab", 2);

    struct txn s = txn_of(2, ZN_OP_SETDATA);
    s.op = set_op("/a", big, sizeof(big)); /* outgrows the node */
    apply_ok(t, &s);
    assert_data(t, "/a", big, sizeof(big));
    s = txn_of(3, ZN_OP_SETDATA);
    s.op = set_op("/a", (const uint8_t *)"xyz", 3); /* back in the node */
    apply_ok(t, &s);
    assert_data(t, "/a", (const uint8_t *)"xyz", 3);
    uint64_t digest = tree_digest(t);
    size_t bytes = tree_data_bytes(t);

    /* out and in again, then rolled back: in the node as before */
    struct txn_op ops[2] = {set_op("/a", bigger, sizeof(bigger)), set_op("/a", (const uint8_t *)"q", 1)};
    apply_failing_multi(t, 4, ops, 2);
    assert_data(t, "/a", (const uint8_t *)"xyz", 3);
    assert_int_equal(stat_of(t, "/a").version, 9);
    assert_int_equal(tree_digest(t), digest);
    assert_int_equal(tree_data_bytes(t), bytes);

    /* from a block of its own, rolled back to it */
    s = txn_of(5, ZN_OP_SETDATA);
    s.op = set_op("/a", big, sizeof(big));
    apply_ok(t, &s);
    digest = tree_digest(t);
    struct txn_op ops2[3] = {set_op("/a", (const uint8_t *)"in", 2), set_op("/a", NULL, -1),
                             set_op("/a", bigger, sizeof(bigger))};
    apply_failing_multi(t, 6, ops2, 3);
    assert_data(t, "/a", big, sizeof(big));
    assert_int_equal(tree_digest(t), digest);

    /* old values kept for the undo on tree_apply's stack while they fit
     * (TREE_APPLY_ROOM_BYTES), then in blocks of their own: all put back */
    static char v0[601];
    static uint8_t v1[600], v2[600];
    memset(v0, '0', 600);
    memset(v1, '1', sizeof(v1));
    memset(v2, '2', sizeof(v2));
    c = create_txn(7, "/r", v0, 2, 0); /* 600 bytes in the node's own data area */
    apply_ok(t, &c);
    s = txn_of(8, ZN_OP_SETDATA);
    s.op = set_op("/r", (const uint8_t *)v0, 600);
    apply_ok(t, &s);
    digest = tree_digest(t);
    struct txn_op ops3[4] = {set_op("/r", v1, sizeof(v1)), set_op("/r", v2, sizeof(v2)),
                             set_op("/r", (const uint8_t *)"x", 1), set_op("/r", v1, sizeof(v1))};
    apply_failing_multi(t, 9, ops3, 4);
    assert_data(t, "/r", (const uint8_t *)v0, 600);
    assert_int_equal(tree_digest(t), digest);
    s = txn_of(10, ZN_OP_MULTI);
    s.op_count = 3;
    s.ops = ops3;
    apply_ok(t, &s);
    assert_data(t, "/r", (const uint8_t *)"x", 1);

    /* null data in a node made with none, then a value */
    c = create_txn(11, "/n", NULL, 3, 0);
    apply_ok(t, &c);
    assert_data(t, "/n", NULL, -1);
    s = txn_of(12, ZN_OP_SETDATA);
    s.op = set_op("/n", (const uint8_t *)"12345678901234567890", 20);
    apply_ok(t, &s);
    assert_data(t, "/n", (const uint8_t *)"12345678901234567890", 20);

    struct tree *copy = round_trip(t);
    assert_data(copy, "/a", big, sizeof(big));
    assert_data(copy, "/n", (const uint8_t *)"12345678901234567890", 20);
    tree_free(copy);
    tree_free(t);
}

static int count_path(void *ctx, const char *path)
{
    (void)path;
    (*(int *)ctx)++;
    return 0;
}

static void ephemerals_keep_their_slots_through_deletes_and_rollbacks(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    create_session(t, 1, 0x11);
    int64_t zxid = 2;
    char path[16];
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof(path), "/e%d", i);
        struct txn c = create_txn(zxid++, path, "v", -1, 0x11);
        apply_ok(t, &c); /* tree_check checks every slot */
    }
    const char *gone[] = {"/e3", "/e0", "/e9"};
    for (int i = 0; i < 3; i++) {
        struct txn d = txn_of(zxid++, ZN_OP_DELETE);
        d.op.path = (char *)gone[i];
        apply_ok(t, &d);
    }
    assert_int_equal(tree_session_ephemeral_count(t, 0x11), 7);
    uint64_t digest = tree_digest(t);

    /* deletes rolled back put the nodes back in the room they left */
    struct txn_op ops[3] = {{.type = ZN_OP_DELETE, .path = "/e5"}, {.type = ZN_OP_DELETE, .path = "/e1"},
                            {.type = ZN_OP_DELETE, .path = "/e8"}};
    apply_failing_multi(t, zxid++, ops, 3);
    assert_int_equal(tree_session_ephemeral_count(t, 0x11), 7);
    assert_int_equal(tree_ephemeral_count(t), 7);
    assert_int_equal(tree_digest(t), digest);
    int listed = 0;
    assert_int_equal(tree_for_each_ephemeral(t, 0x11, count_path, &listed), 0);
    assert_int_equal(listed, 7);
    struct tree *copy = round_trip(t);
    assert_int_equal(tree_session_ephemeral_count(copy, 0x11), 7);
    tree_free(copy);

    struct txn close = txn_of(zxid++, ZN_OP_CLOSESESSION);
    close.hdr.session_id = 0x11;
    apply_ok(t, &close);
    assert_int_equal(tree_ephemeral_count(t), 0);
    assert_int_equal(tree_node_count(t), 4);
    tree_free(t);
}

static void a_null_acl_stays_apart_from_an_empty_one(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    struct txn c = create_txn(1, "/null", NULL, 1, 0);
    c.op.acl = (struct zn_acl_vec){-1, NULL};
    apply_ok(t, &c);
    c = create_txn(2, "/empty", NULL, 2, 0);
    c.op.acl = (struct zn_acl_vec){0, NULL};
    apply_ok(t, &c);
    assert_int_equal(tree_node_acl(tree_get(t, "/null")).count, -1);
    assert_int_equal(tree_node_acl(tree_get(t, "/empty")).count, 0);
    assert_int_equal(tree_node_acl(tree_get(t, "/")).count, 1);

    struct tree *copy = round_trip(t);
    assert_int_equal(tree_node_acl(tree_get(copy, "/null")).count, -1);
    assert_int_equal(tree_node_acl(tree_get(copy, "/empty")).count, 0);
    tree_free(copy);

    /* the digest tells them apart, as ZooKeeper's state does */
    struct tree *other = tree_new();
    c = create_txn(1, "/null", NULL, 1, 0);
    c.op.acl = (struct zn_acl_vec){0, NULL};
    apply_ok(other, &c);
    c = create_txn(2, "/empty", NULL, 2, 0);
    c.op.acl = (struct zn_acl_vec){0, NULL};
    apply_ok(other, &c);
    assert_int_not_equal(tree_digest(other), tree_digest(t));
    tree_free(other);

    /* setACL from null to a real one, then to an empty one */
    struct txn s = txn_of(3, ZN_OP_SETACL);
    s.op = (struct txn_op){.type = ZN_OP_SETACL, .path = "/null", .acl = open_acl, .version = 1};
    apply_ok(t, &s);
    assert_int_equal(tree_node_acl(tree_get(t, "/null")).count, 1);
    s = txn_of(4, ZN_OP_SETACL);
    s.op = (struct txn_op){.type = ZN_OP_SETACL, .path = "/null", .acl = {0, NULL}, .version = 2};
    apply_ok(t, &s);
    assert_int_equal(tree_node_acl(tree_get(t, "/null")).count, 0);
    tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_moves_out_of_the_node_and_back_and_rolls_back),
        cmocka_unit_test(ephemerals_keep_their_slots_through_deletes_and_rollbacks),
        cmocka_unit_test(a_null_acl_stays_apart_from_an_empty_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
