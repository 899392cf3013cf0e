/*
 * Unit tests of daemon/model/txn.c: every transaction type round-trips through the
 * codec, and truncated or hostile bytes are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "txn.h"

static struct zn_acl world_all = {ZN_PERM_ALL, {"world", "anyone"}};

/* Format version, session id, cxid, zxid, time, type. */
#define TXN_TEST_HEADER_BYTES (4 + 8 + 4 + 8 + 8 + 4)

static void assert_op_equal(const struct txn_op *a, const struct txn_op *b)
{
    assert_int_equal(a->type, b->type);
    if (a->path || b->path)
        assert_string_equal(a->path, b->path);
    switch (a->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        assert_int_equal(a->data.len, b->data.len);
        if (a->data.len > 0)
            assert_memory_equal(a->data.data, b->data.data, (size_t)a->data.len);
        assert_int_equal(a->acl.count, b->acl.count);
        for (int i = 0; i < a->acl.count; i++) {
            assert_int_equal(a->acl.items[i].perms, b->acl.items[i].perms);
            assert_string_equal(a->acl.items[i].id.scheme, b->acl.items[i].id.scheme);
            assert_string_equal(a->acl.items[i].id.id, b->acl.items[i].id.id);
        }
        assert_int_equal(a->parent_cversion, b->parent_cversion);
        assert_int_equal(a->ephemeral_owner, b->ephemeral_owner);
        assert_int_equal(a->kind, b->kind);
        assert_int_equal(a->ttl_ms, b->ttl_ms);
        break;
    case ZN_OP_SETDATA:
        assert_int_equal(a->data.len, b->data.len);
        assert_int_equal(a->version, b->version);
        break;
    case ZN_OP_SETACL:
    case ZN_OP_CHECK:
        assert_int_equal(a->version, b->version);
        break;
    case ZN_OP_CREATESESSION:
        assert_int_equal(a->timeout_ms, b->timeout_ms);
        break;
    case ZN_OP_CLOSESESSION:
        assert_int_equal(a->paths.count, b->paths.count);
        for (int i = 0; i < a->paths.count; i++)
            assert_string_equal(a->paths.items[i], b->paths.items[i]);
        break;
    case ZN_OP_ERROR:
        assert_int_equal(a->err, b->err);
        break;
    }
}

/* The bytes of t, as the codec wrote them before txn.c described each record
 * once (io_txn): the log format, pinned.  Re-encoding what they decode to
 * must give them back. */
static void assert_pinned_bytes(const struct jute_writer *w, const char *hex)
{
    char got[2 * 512 + 1];
    assert_true(w->len <= 512);
    for (size_t i = 0; i < w->len; i++)
        snprintf(got + 2 * i, 3, "%02x", w->data[i]);
    got[2 * w->len] = '\0';
    assert_string_equal(got, hex);
}

/* Encodes and checks the bytes, decodes and compares, re-encodes the decoded
 * txn to the same bytes; also checks every strict prefix is refused. */
static void round_trip(const struct txn *t, const char *hex)
{
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(txn_encode(&w, t), 0);
    assert_pinned_bytes(&w, hex);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct txn back;
    assert_int_equal(txn_decode(&r, &back), 0);
    assert_int_equal(jute_remaining(&r), 0);
    assert_memory_equal(&back.hdr, &t->hdr, sizeof(t->hdr));
    if (t->hdr.type == ZN_OP_MULTI) {
        assert_int_equal(back.op_count, t->op_count);
        for (int i = 0; i < t->op_count; i++)
            assert_op_equal(&back.ops[i], &t->ops[i]);
    } else {
        assert_op_equal(&back.op, &t->op);
    }
    struct jute_writer again;
    jute_writer_init(&again);
    assert_int_equal(txn_encode(&again, &back), 0);
    assert_pinned_bytes(&again, hex);
    jute_writer_free(&again);
    for (size_t cut = 0; cut < w.len; cut++) {
        zn_arena_reset(&arena);
        jute_reader_init(&r, w.data, cut, &arena);
        if (txn_decode(&r, &back) == 0)
            fail_msg("decoded a txn cut at %zu of %zu bytes", cut, w.len);
    }
    /* The header alone: the same header as the whole decode, from any
     * input holding it (the body is not looked at), and never from less. */
    for (size_t cut = 0; cut <= w.len; cut++) {
        struct txn_header h;
        jute_reader_init(&r, w.data, cut, &arena);
        int rc = txn_decode_header(&r, &h);
        if (cut < TXN_TEST_HEADER_BYTES) {
            if (rc == 0)
                fail_msg("decoded a header cut at %zu bytes", cut);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(r.pos, TXN_TEST_HEADER_BYTES);
        assert_memory_equal(&h, &t->hdr, sizeof(h));
    }
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

static struct txn header(int32_t type)
{
    struct txn t;
    memset(&t, 0, sizeof(t));
    t.hdr = (struct txn_header){0x1234567890abcdefLL, 42, 0x100000007LL, 1700000000123LL, type};
    t.op.type = type;
    return t;
}

static void every_txn_type_round_trips(void **state)
{
    struct txn t = header(ZN_OP_CREATE2);
    t.op.path = "/a/b0000000003";
    t.op.data = (struct jute_buf){(const uint8_t *)"hello", 5};
    t.op.acl = (struct zn_acl_vec){1, &world_all};
    t.op.parent_cversion = 4;
    t.op.ephemeral_owner = 0x1234567890abcdefLL;
    t.op.kind = ZN_NODE_KIND_FILE;
    t.op.ttl_ms = -1;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b0000000f0000000e2f612f62303030303030303030330000000568656c6c6f000000010000001f00000005776f726c6400000006616e796f6e65000000041234567890abcdef00000001ffffffffffffffff");
    t.hdr.type = t.op.type = ZN_OP_CREATETTL;
    t.op.ttl_ms = 5000;
    t.op.data.len = -1;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b000000150000000e2f612f6230303030303030303033ffffffff000000010000001f00000005776f726c6400000006616e796f6e65000000041234567890abcdef000000010000000000001388");

    t = header(ZN_OP_DELETE);
    t.op.path = "/x";
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b00000002000000022f78");
    t = header(ZN_OP_SETDATA);
    t.op.path = "/x";
    t.op.data = (struct jute_buf){(const uint8_t *)"", 0};
    t.op.version = 7;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b00000005000000022f780000000000000007");
    t = header(ZN_OP_SETACL);
    t.op.path = "/x";
    t.op.acl = (struct zn_acl_vec){1, &world_all};
    t.op.version = 2;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b00000007000000022f78000000010000001f00000005776f726c6400000006616e796f6e6500000002");
    t = header(ZN_OP_CREATESESSION);
    t.op.timeout_ms = 30000;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687bfffffff600007530");
    char *paths[] = {"/e1", "/e2"};
    t = header(ZN_OP_CLOSESESSION);
    t.op.paths = (struct zn_string_vec){2, paths};
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687bfffffff500000002000000032f6531000000032f6532");
    t = header(ZN_OP_ERROR);
    t.op.err = ZN_NONODE;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687bffffffffffffff9b");
}

static void multi_round_trips_with_its_ops_in_order(void **state)
{
    struct txn_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct txn_op){.type = ZN_OP_CREATE, .path = "/m", .data = {NULL, -1}, .acl = {1, &world_all}, .parent_cversion = 1, .ttl_ms = -1};
    ops[1] = (struct txn_op){.type = ZN_OP_CHECK, .path = "/m", .version = 0};
    ops[2] = (struct txn_op){.type = ZN_OP_DELETE, .path = "/m"};
    struct txn t = header(ZN_OP_MULTI);
    t.op_count = 3;
    t.ops = ops;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b0000000e0000000300000001000000022f6dffffffff000000010000001f00000005776f726c6400000006616e796f6e6500000001000000000000000000000000ffffffffffffffff0000000d000000022f6d0000000000000002000000022f6d");
    t.op_count = 0;
    round_trip(&t,
               "000000011234567890abcdef0000002a00000001000000070000018bcfe5687b0000000e00000000");
}

static void encode_refuses_a_setacl_inside_a_multi(void **state)
{
    struct txn_op op = {.type = ZN_OP_SETACL, .path = "/m", .acl = {1, &world_all}};
    struct txn t = header(ZN_OP_MULTI);
    t.op_count = 1;
    t.ops = &op;
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(txn_encode(&w, &t), ZN_BADARGUMENTS);
    jute_writer_free(&w);
}

static void decode_refuses_unknown_type_version_and_huge_counts(void **state)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_writer w;
    jute_writer_init(&w);
    struct jute_reader r;
    struct txn t;

    /* unknown type */
    jute_write_int(&w, TXN_FORMAT_VERSION);
    jute_write_long(&w, 1);
    jute_write_int(&w, 1);
    jute_write_long(&w, 1);
    jute_write_long(&w, 1);
    jute_write_int(&w, ZN_OP_GETDATA);
    jute_write_int(&w, 0);
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(txn_decode(&r, &t), ZN_MARSHALLINGERROR);

    /* wrong format version */
    jute_writer_reset(&w);
    jute_write_int(&w, 99);
    jute_write_long(&w, 1);
    jute_write_int(&w, 1);
    jute_write_long(&w, 1);
    jute_write_long(&w, 1);
    jute_write_int(&w, ZN_OP_ERROR);
    jute_write_int(&w, 0);
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(txn_decode(&r, &t), ZN_MARSHALLINGERROR);
    struct txn_header h;
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(txn_decode_header(&r, &h), ZN_MARSHALLINGERROR);

    /* a multi claiming two billion ops in a few bytes */
    jute_writer_reset(&w);
    jute_write_int(&w, TXN_FORMAT_VERSION);
    jute_write_long(&w, 1);
    jute_write_int(&w, 1);
    jute_write_long(&w, 1);
    jute_write_long(&w, 1);
    jute_write_int(&w, ZN_OP_MULTI);
    jute_write_int(&w, 2000000000);
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(txn_decode(&r, &t), ZN_MARSHALLINGERROR);
    assert_true(arena.used_bytes < 4096);

    jute_writer_free(&w);
    zn_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_txn_type_round_trips),
        cmocka_unit_test(multi_round_trips_with_its_ops_in_order),
        cmocka_unit_test(encode_refuses_a_setacl_inside_a_multi),
        cmocka_unit_test(decode_refuses_unknown_type_version_and_huge_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
