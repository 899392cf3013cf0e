/*
 * Unit tests of daemon/model/tree.c's snapshots: a round trip restores nodes,
 * sessions and the digest, corrupt ones are refused keeping the initial tree,
 * the pzxid's time, records out of preorder or duplicated, and a hundred
 * thousand children under one node.
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
    /* a caller's buffer of exactly the size is enough */
    uint8_t *fixed = malloc(w.len);
    struct jute_writer fw;
    jute_writer_init_fixed(&fw, fixed, w.len);
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

/* What tree_serialize_stream hands over, concatenated. */
struct stream_sink {
    uint8_t *bytes;
    size_t len, calls, largest;
    size_t fail_at_call; /* 0: never */
};

static int stream_collect(void *ctx, const uint8_t *bytes, size_t len)
{
    struct stream_sink *k = ctx;
    if (++k->calls == k->fail_at_call)
        return ZN_IO;
    k->bytes = realloc(k->bytes, k->len + len);
    memcpy(k->bytes + k->len, bytes, len);
    k->len += len;
    if (len > k->largest)
        k->largest = len;
    return 0;
}

/* The snapshot child's way: the same bytes as tree_serialize, a piece at a
 * time, the writer never much above the flush size, a failed flush stops it. */
static void streamed_snapshot_is_the_same_bytes_in_pieces(void **state)
{
    (void)state;
    struct tree *t = tree_new();
    create_session(t, 1, 0x51);
    char path[32], data[100];
    memset(data, 'v', sizeof data);
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof path, "/n%04d", i);
        struct txn c = create_txn(2 + i, path, NULL, i + 1, i % 7 == 0 ? 0x51 : 0);
        c.op.data = (struct jute_buf){(const uint8_t *)data, (int32_t)(i % 100)};
        apply_ok(t, &c);
    }
    struct jute_writer whole;
    jute_writer_init(&whole);
    assert_int_equal(tree_serialize(t, &whole), 0);

    const size_t flush_sizes[] = {1, 4096, 1u << 20};
    for (size_t f = 0; f < sizeof flush_sizes / sizeof flush_sizes[0]; f++) {
        struct stream_sink k = {0};
        struct jute_writer w;
        jute_writer_init(&w);
        assert_int_equal(tree_serialize_stream(t, &w, flush_sizes[f], stream_collect, &k), 0);
        assert_int_equal(w.len, 0); /* all handed over */
        assert_int_equal(k.len, whole.len);
        assert_memory_equal(k.bytes, whole.data, whole.len);
        /* a flush per node with 1 byte; never more than the size and a node */
        assert_true(flush_sizes[f] > 1 || k.calls >= 2000);
        assert_true(k.largest <= flush_sizes[f] + 256);
        struct tree *back = tree_new();
        assert_int_equal(tree_deserialize(back, k.bytes, k.len), 0);
        assert_int_equal(tree_digest(back), tree_digest(t));
        tree_free(back);
        jute_writer_free(&w);
        free(k.bytes);
    }
    /* a flush that fails stops the walk with its error */
    struct stream_sink k = {.fail_at_call = 3};
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(tree_serialize_stream(t, &w, 4096, stream_collect, &k), ZN_IO);
    assert_int_equal(k.calls, 3);
    assert_true(k.len < whole.len);
    jute_writer_free(&w);
    free(k.bytes);
    jute_writer_free(&whole);
    tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_round_trip_restores_nodes_sessions_and_digest),
        cmocka_unit_test(deserialize_refuses_corrupt_snapshots_and_keeps_the_initial_tree),
        cmocka_unit_test(ptime_is_the_time_of_the_last_child_change),
        cmocka_unit_test(a_snapshot_out_of_preorder_loads_and_a_duplicate_is_refused),
        cmocka_unit_test(hundred_thousand_children_under_one_node_serialise_and_list),
        cmocka_unit_test(streamed_snapshot_is_the_same_bytes_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
