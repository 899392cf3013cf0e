/*
 * Unit tests of the jute wire codec (lib/jute*.c): the bytes it produces are
 * ZooKeeper's (hand-computed vectors), every record and every request and
 * response body round-trips (SASL tokens too), errors are sticky, and the
 * opcode table.  Truncated and hostile input is in test_jute_refuse.c.  The
 * sample catalogue and deep equality come from tests/fuzz/jute_testkit.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jute.h"
#include "jute_fixture.h"
#include "jute_testkit.h"

/* ---- arena ---- */

static void arena_returns_aligned_memory_and_counts_it(void **state)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    for (size_t size = 0; size < 100; size++) {
        uint8_t *p = zn_arena_alloc(&arena, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 8, 0);
        memset(p, 0xab, size);
    }
    assert_true(arena.used_bytes >= 99 * 100 / 2);
    uint8_t *big = zn_arena_alloc(&arena, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    zn_arena_reset(&arena);
    assert_int_equal(arena.used_bytes, 0);
    assert_non_null(arena.head);
    assert_non_null(zn_arena_alloc(&arena, 16));
    zn_arena_free(&arena);
    assert_null(arena.head);
    assert_null(zn_arena_alloc(&arena, SIZE_MAX));
    zn_arena_free(&arena);
}

/* ---- primitives ---- */

static void primitives_are_big_endian_and_round_trip(void **state)
{
    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_int(&w, 0x01020304);
    jute_write_int(&w, -1);
    jute_write_long(&w, INT64_MIN);
    jute_write_long(&w, 0x1122334455667788LL);
    jute_write_bool(&w, true);
    jute_write_bool(&w, false);
    jute_write_buffer(&w, NULL, -1);
    jute_write_buffer(&w, "", 0);
    jute_write_string(&w, NULL);
    jute_write_string(&w, "z\xc3\xa9");
    assert_writer_bytes(&w, "01020304 ffffffff 8000000000000000 1122334455667788 01 00"
                            " ffffffff 00000000 ffffffff 00000003 7ac3a9");

    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    int32_t i32;
    int64_t i64;
    bool b;
    struct jute_buf buf;
    char *s;
    assert_int_equal(jute_read_int(&r, &i32), 0);
    assert_int_equal(i32, 0x01020304);
    assert_int_equal(jute_read_int(&r, &i32), 0);
    assert_int_equal(i32, -1);
    assert_int_equal(jute_read_long(&r, &i64), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(jute_read_long(&r, &i64), 0);
    assert_true(i64 == 0x1122334455667788LL);
    assert_int_equal(jute_read_bool(&r, &b), 0);
    assert_true(b);
    assert_int_equal(jute_read_bool(&r, &b), 0);
    assert_false(b);
    assert_int_equal(jute_read_buffer(&r, &buf), 0);
    assert_int_equal(buf.len, -1);
    assert_null(buf.data);
    assert_int_equal(jute_read_buffer(&r, &buf), 0);
    assert_int_equal(buf.len, 0);
    assert_int_equal(jute_read_string(&r, &s), 0);
    assert_null(s);
    assert_int_equal(jute_read_string(&r, &s), 0);
    assert_string_equal(s, "z\xc3\xa9");
    assert_int_equal(jute_remaining(&r), 0);
    assert_int_equal(jute_read_bool(&r, &b), ZN_MARSHALLINGERROR);
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

static void strings_are_copied_nul_terminated_with_their_bytes_kept(void **state)
{
    size_t len;
    uint8_t *in = from_hex("00000003 610062", &len); /* "a\0b" */
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, in, len, &arena);
    char *s;
    assert_int_equal(jute_read_string(&r, &s), 0);
    assert_memory_equal(s, "a\0b\0", 4);
    assert_true((uint8_t *)s < in || (uint8_t *)s >= in + len); /* a copy, not the input */
    zn_arena_free(&arena);
    free(in);
}

static void frame_end_fills_in_the_body_length(void **state)
{
    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_int(&w, 7);
    size_t frame = jute_frame_begin(&w);
    jute_write_long(&w, 1);
    jute_write_bool(&w, true);
    assert_int_equal(jute_frame_end(&w, frame), 0);
    assert_writer_bytes(&w, "00000007 00000009 0000000000000001 01");
    size_t len;
    uint8_t *taken = jute_writer_take(&w, &len);
    assert_int_equal(len, 17);
    assert_null(w.data);
    assert_int_equal(w.len, 0);
    free(taken);
}

/* ---- exact bytes against hand-computed vectors ---- */

static void connect_request_bytes_are_zookeepers(void **state)
{
    static const uint8_t zero_passwd[16];
    struct zn_connect_request c = {
        .protocol_version = 0, .last_zxid_seen = 0, .timeout_ms = 30000, .session_id = 0,
        .passwd = {zero_passwd, 16}, .read_only = false, .has_read_only = true,
    };
    struct jute_writer w;
    jute_writer_init(&w);
    size_t frame = jute_frame_begin(&w);
    jute_write_connect_request(&w, &c);
    jute_frame_end(&w, frame);
    /* len=45: protocolVersion, lastZxidSeen, timeOut=30000, sessionId,
     * passwd (16 zero bytes), readOnly=false */
    assert_writer_bytes(&w, "0000002d 00000000 0000000000000000 00007530 0000000000000000"
                            " 00000010 00000000000000000000000000000000 00");

    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    struct zn_connect_request d;
    jute_reader_init(&r, w.data + 4, w.len - 4, &arena);
    assert_int_equal(jute_read_connect_request(&r, &d), 0);
    assert_true(jute_connect_request_equal(&c, &d));

    /* An old client sends no readOnly byte: still a valid connect. */
    jute_reader_init(&r, w.data + 4, w.len - 5, &arena);
    assert_int_equal(jute_read_connect_request(&r, &d), 0);
    assert_false(d.has_read_only);
    assert_false(d.read_only);
    assert_int_equal(d.timeout_ms, 30000);
    assert_int_equal(d.passwd.len, 16);
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

static void create_request_bytes_are_zookeepers(void **state)
{
    struct zn_acl acl = {ZN_PERM_ALL, {"world", "anyone"}};
    struct zn_request req = {
        .type = ZN_OP_CREATE, .path = "/a", .data = {(const uint8_t *)"hi", 2},
        .acl = {1, &acl}, .flags = ZN_CREATE_EPHEMERAL,
    };
    struct zn_request_header h = {1, ZN_OP_CREATE};
    struct jute_writer w;
    jute_writer_init(&w);
    size_t frame = jute_frame_begin(&w);
    jute_write_request_header(&w, &h);
    jute_write_request(&w, &req);
    jute_frame_end(&w, frame);
    assert_writer_bytes(&w, "00000033 00000001 00000001"                  /* len=51, xid, type */
                            " 00000002 2f61 00000002 6869"                /* path "/a", data "hi" */
                            " 00000001 0000001f 00000005 776f726c64"      /* 1 ACL: ALL world */
                            " 00000006 616e796f6e65 00000001");           /* anyone, flags */
    jute_writer_free(&w);
}

static void get_data_response_bytes_are_zookeepers(void **state)
{
    struct zn_reply_header h = {7, 0x100000003LL, 0};
    struct zn_response resp = {
        .type = ZN_OP_GETDATA, .data = {(const uint8_t *)"v", 1},
        .stat = {1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 9},
    };
    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_reply_header(&w, &h);
    jute_write_response(&w, &resp);
    assert_writer_bytes(&w, "00000007 0000000100000003 00000000 00000001 76"
                            " 0000000000000001 0000000000000002 0000000000000003 0000000000000004"
                            " 00000005 00000006 00000007 0000000000000008 00000001 00000000"
                            " 0000000000000009");

    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_reply_header h2;
    struct zn_response d;
    assert_int_equal(jute_read_reply_header(&r, &h2), 0);
    assert_int_equal(h2.xid, 7);
    assert_true(h2.zxid == 0x100000003LL);
    assert_int_equal(jute_read_response(&r, ZN_OP_GETDATA, &d), 0);
    assert_true(jute_response_equal(&resp, &d));
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

static void multi_request_is_framed_by_multi_headers(void **state)
{
    struct zn_request ops[] = {
        {.type = ZN_OP_CHECK, .path = "/a", .version = 1},
        {.type = ZN_OP_DELETE, .path = "/b", .version = -1},
    };
    struct zn_request req = {.type = ZN_OP_MULTI, .op_count = 2, .ops = ops};
    struct jute_writer w;
    encode_request(&w, &req);
    assert_writer_bytes(&w, "0000000d 00 ffffffff 00000002 2f61 00000001"   /* {check,false,-1} */
                            " 00000002 00 ffffffff 00000002 2f62 ffffffff"  /* {delete,false,-1} */
                            " ffffffff 01 ffffffff");                       /* {-1,true,-1} */
    jute_writer_free(&w);
}

/* A multi's ops are decoded in one pass when they are few (at most
 * JUTE_LIST_SHORT_ELEMS) and in two otherwise: every length on either side
 * of that round-trips, and a list cut before its end marker is refused
 * with nothing left in the arena, whatever its length. */
static void multis_of_every_length_round_trip_and_cut_ones_leave_nothing(void **state)
{
    (void)state;
    static const char *paths[] = {"/p0", "/p1", "/p2", "/p3", "/p4", "/p5", "/p6", "/p7", "/p8", "/p9"};
    struct zn_request ops[10];
    for (int32_t n = 0; n <= 10; n++) {
        for (int32_t i = 0; i < n; i++)
            ops[i] = (struct zn_request){.type = ZN_OP_CHECK, .path = (char *)paths[i], .version = i};
        struct zn_request req = {.type = ZN_OP_MULTI, .op_count = n, .ops = ops};
        struct jute_writer w;
        encode_request(&w, &req);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, w.data, w.len, &arena);
        struct zn_request d;
        assert_int_equal(jute_read_request(&r, ZN_OP_MULTI, &d), 0);
        assert_int_equal(d.op_count, n);
        if (n == 0)
            assert_null(d.ops);
        for (int32_t i = 0; i < n; i++) {
            assert_int_equal(d.ops[i].type, ZN_OP_CHECK);
            assert_string_equal(d.ops[i].path, paths[i]);
            assert_int_equal(d.ops[i].version, i);
        }
        assert_int_equal(jute_remaining(&r), 0);
        zn_arena_free(&arena);
        /* the same list without its 9-byte end marker */
        zn_arena_init(&arena);
        jute_reader_init(&r, w.data, w.len - 9, &arena);
        assert_int_equal(jute_read_request(&r, ZN_OP_MULTI, &d), ZN_MARSHALLINGERROR);
        assert_int_equal(d.op_count, 0);
        assert_null(d.ops);
        assert_int_equal(arena.used_bytes, 0);
        zn_arena_free(&arena);
        jute_writer_free(&w);
    }
}

static void multi_response_bodies_follow_each_result_type(void **state)
{
    struct zn_response results[] = {
        {.type = ZN_OP_CREATE, .path = "/a"},                              /* CreateResponse */
        {.type = ZN_OP_CREATE2, .path = "/b", .stat = {.version = 1}},    /* Create2Response */
        {.type = ZN_OP_DELETE},                                            /* nothing */
        {.type = ZN_OP_ERROR, .err = ZN_NONODE},                           /* ErrorResponse */
    };
    struct zn_response resp = {.type = ZN_OP_MULTI, .result_count = 4, .results = results};
    struct jute_writer w;
    encode_response(&w, &resp);
    assert_writer_bytes(&w, "00000001 00 00000000 00000002 2f61"
                            " 0000000f 00 00000000 00000002 2f62"
                            " 0000000000000000 0000000000000000 0000000000000000 0000000000000000"
                            " 00000001 00000000 00000000 0000000000000000 00000000 00000000"
                            " 0000000000000000"
                            " 00000002 00 00000000"
                            " ffffffff 00 ffffff9b ffffff9b"
                            " ffffffff 01 ffffffff");
    jute_writer_free(&w);
}

static void multi_create_ttl_and_container_results_go_out_as_create2(void **state)
{
    struct zn_response results[] = {
        {.type = ZN_OP_CREATECONTAINER, .path = "/box", .stat = {.czxid = 5}},
        {.type = ZN_OP_CREATETTL, .path = "/ttl", .stat = {.version = 2}},
    };
    struct zn_response resp = {.type = ZN_OP_MULTI, .result_count = 2, .results = results};
    struct jute_writer w;
    encode_response(&w, &resp);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(w.data[3], ZN_OP_CREATE2); /* first MultiHeader.type, big-endian */
    struct zn_response d;
    assert_int_equal(jute_read_response(&r, ZN_OP_MULTI, &d), 0);
    assert_int_equal(d.result_count, 2);
    for (int i = 0; i < 2; i++) {
        struct zn_response expected = results[i];
        expected.type = ZN_OP_CREATE2;
        assert_true(jute_response_equal(&expected, &d.results[i]));
    }
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

/* GetSASLRequest and SetSASLResponse (zookeeper.jute): one buffer each; a
 * null token (-1) in a response decodes as len -1. */
static void sasl_tokens_are_one_buffer_each_way(void **state)
{
    (void)state;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_writer w;
    jute_writer_init(&w);
    struct zn_request req = {.type = ZN_OP_SASL, .auth = {(uint8_t *)"tok", 3}};
    assert_int_equal(jute_write_request(&w, &req), 0);
    static const uint8_t want[] = {0, 0, 0, 3, 't', 'o', 'k'};
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(w.data, want, sizeof want);
    struct jute_reader r;
    struct zn_request back;
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(jute_read_request(&r, ZN_OP_SASL, &back), 0);
    assert_int_equal(back.auth.len, 3);
    assert_memory_equal(back.auth.data, "tok", 3);
    /* a length past the packet is refused, not read */
    static const uint8_t short_token[] = {0, 0, 0, 9, 'x'};
    jute_reader_init(&r, short_token, sizeof short_token, &arena);
    assert_int_not_equal(jute_read_request(&r, ZN_OP_SASL, &back), 0);
    jute_writer_reset(&w);
    struct zn_response resp = {.type = ZN_OP_SASL, .data = {NULL, -1}};
    assert_int_equal(jute_write_response(&w, &resp), 0);
    static const uint8_t null_token[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(w.len, 4);
    assert_memory_equal(w.data, null_token, 4);
    struct zn_response got;
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(jute_read_response(&r, ZN_OP_SASL, &got), 0);
    assert_int_equal(got.data.len, -1);
    jute_writer_free(&w);
    zn_arena_free(&arena);
}

/* ---- round trips ---- */

static void every_sample_request_round_trips(void **state)
{
    for (size_t i = 0; i < jute_sample_request_count(); i++) {
        const struct zn_request *req = jute_sample_request(i);
        struct jute_writer w;
        encode_request(&w, req);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, w.data, w.len, &arena);
        struct zn_request d;
        assert_int_equal(jute_read_request(&r, req->type, &d), 0);
        assert_int_equal(jute_remaining(&r), 0);
        if (!jute_request_equal(req, &d))
            fail_msg("%s: %s differs after a round trip", jute_sample_request_label(i),
                     jute_testkit_mismatch);
        zn_arena_free(&arena);
        jute_writer_free(&w);
    }
}

static void every_sample_response_round_trips(void **state)
{
    for (size_t i = 0; i < jute_sample_response_count(); i++) {
        const struct zn_response *resp = jute_sample_response(i);
        struct jute_writer w;
        encode_response(&w, resp);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, w.data, w.len, &arena);
        struct zn_response d;
        assert_int_equal(jute_read_response(&r, resp->type, &d), 0);
        assert_int_equal(jute_remaining(&r), 0);
        if (!jute_response_equal(resp, &d))
            fail_msg("%s: %s differs after a round trip", jute_sample_response_label(i),
                     jute_testkit_mismatch);
        zn_arena_free(&arena);
        jute_writer_free(&w);
    }
}

static void every_opcode_of_the_protocol_has_a_sample(void **state)
{
    static const int32_t request_ops[] = {
        ZN_OP_CREATE, ZN_OP_CREATE2, ZN_OP_CREATECONTAINER, ZN_OP_CREATETTL, ZN_OP_DELETE,
        ZN_OP_EXISTS, ZN_OP_GETDATA, ZN_OP_GETCHILDREN, ZN_OP_GETCHILDREN2, ZN_OP_SETDATA,
        ZN_OP_GETACL, ZN_OP_SETACL, ZN_OP_CHECK, ZN_OP_SYNC, ZN_OP_DELETECONTAINER,
        ZN_OP_GETALLCHILDRENNUMBER, ZN_OP_GETEPHEMERALS, ZN_OP_ADDWATCH, ZN_OP_CHECKWATCHES,
        ZN_OP_REMOVEWATCHES, ZN_OP_AUTH, ZN_OP_SETWATCHES, ZN_OP_SETWATCHES2, ZN_OP_MULTI,
        ZN_OP_MULTIREAD, ZN_OP_RECONFIG, ZN_OP_PING, ZN_OP_CLOSESESSION, ZN_OP_WHOAMI,
    };
    for (size_t k = 0; k < sizeof(request_ops) / sizeof(request_ops[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < jute_sample_request_count(); i++)
            found |= jute_sample_request(i)->type == request_ops[k];
        if (!found)
            fail_msg("no sample request for %s", zn_op_name(request_ops[k]));
    }
    /* Each response opcode of jute.h's table, too. */
    static const int32_t response_ops[] = {
        ZN_OP_CREATE, ZN_OP_CREATECONTAINER, ZN_OP_CREATE2, ZN_OP_CREATETTL, ZN_OP_EXISTS,
        ZN_OP_SETDATA, ZN_OP_SETACL, ZN_OP_GETDATA, ZN_OP_GETACL, ZN_OP_GETCHILDREN,
        ZN_OP_GETCHILDREN2, ZN_OP_GETEPHEMERALS, ZN_OP_SYNC, ZN_OP_GETALLCHILDRENNUMBER,
        ZN_OP_WHOAMI, ZN_OP_RECONFIG, ZN_OP_MULTI, ZN_OP_MULTIREAD, ZN_OP_DELETE, ZN_OP_CHECK,
        ZN_OP_PING, ZN_OP_AUTH, ZN_OP_SETWATCHES, ZN_OP_ADDWATCH, ZN_OP_REMOVEWATCHES,
        ZN_OP_CHECKWATCHES, ZN_OP_CLOSESESSION,
    };
    for (size_t k = 0; k < sizeof(response_ops) / sizeof(response_ops[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < jute_sample_response_count(); i++)
            found |= jute_sample_response(i)->type == response_ops[k];
        if (!found)
            fail_msg("no sample response for %s", zn_op_name(response_ops[k]));
    }
}

static void records_round_trip(void **state)
{
    struct zn_stat st = {-1, INT64_MAX, 3, 4, INT32_MIN, 6, 7, 0x10000a1b2c3d4LL, 1048575, 2, 11};
    struct zn_acl acls[] = {{31, {"world", "anyone"}}, {1, {"", ""}}};
    struct zn_acl_vec acl_null = {-1, NULL}, acl_empty = {0, NULL}, acl_two = {2, acls};
    char *names[] = {"a", "", NULL};
    struct zn_string_vec sv_null = {-1, NULL}, sv_three = {3, names};
    struct zn_watcher_event ev = {ZN_EVENT_DELETED, ZN_STATE_SYNC_CONNECTED, "/gone"};
    struct zn_request_header rh = {-8, ZN_OP_SETWATCHES};
    struct zn_reply_header ph = {-1, -1, ZN_SESSIONEXPIRED};
    struct zn_connect_response cr = jute_sample_connect_response;

    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_stat(&w, &st);
    jute_write_acl_vec(&w, &acl_null);
    jute_write_acl_vec(&w, &acl_empty);
    jute_write_acl_vec(&w, &acl_two);
    jute_write_string_vec(&w, &sv_null);
    jute_write_string_vec(&w, &sv_three);
    jute_write_watcher_event(&w, &ev);
    jute_write_request_header(&w, &rh);
    jute_write_reply_header(&w, &ph);
    assert_int_equal(jute_write_connect_response(&w, &cr), 0);
    /* stat 68, null and empty ACL vectors 4 + 4, two ACLs 4 + 23 + 12, null
     * string vector 4, three strings 4 + 5 + 4 + 4, event 4 + 4 + 4 + 5,
     * headers 8 + 16, connect response 4 + 4 + 8 + 4 + 16 + 1 */
    assert_int_equal(w.len, 214);

    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_stat st2;
    struct zn_acl_vec a1, a2, a3;
    struct zn_string_vec s1, s2;
    struct zn_watcher_event ev2;
    struct zn_request_header rh2;
    struct zn_reply_header ph2;
    struct zn_connect_response cr2;
    jute_read_stat(&r, &st2);
    jute_read_acl_vec(&r, &a1);
    jute_read_acl_vec(&r, &a2);
    jute_read_acl_vec(&r, &a3);
    jute_read_string_vec(&r, &s1);
    jute_read_string_vec(&r, &s2);
    jute_read_watcher_event(&r, &ev2);
    jute_read_request_header(&r, &rh2);
    jute_read_reply_header(&r, &ph2);
    assert_int_equal(jute_read_connect_response(&r, &cr2), 0);
    assert_int_equal(jute_remaining(&r), 0);
    struct zn_response with_st = {.stat = st}, with_st2 = {.stat = st2};
    assert_true(jute_response_equal(&with_st, &with_st2)); /* field by field: padding differs */
    assert_true(st2.mzxid == INT64_MAX);
    assert_int_equal(st2.version, INT32_MIN);
    assert_int_equal(st2.data_length, 1048575);
    assert_true(st2.pzxid == 11);
    assert_int_equal(a1.count, -1);
    assert_int_equal(a2.count, 0);
    assert_int_equal(a3.count, 2);
    assert_int_equal(a3.items[0].perms, 31);
    assert_string_equal(a3.items[0].id.scheme, "world");
    assert_string_equal(a3.items[0].id.id, "anyone");
    assert_string_equal(a3.items[1].id.id, "");
    assert_int_equal(s1.count, -1);
    assert_int_equal(s2.count, 3);
    assert_string_equal(s2.items[0], "a");
    assert_string_equal(s2.items[1], "");
    assert_null(s2.items[2]);
    assert_int_equal(ev2.type, ZN_EVENT_DELETED);
    assert_int_equal(ev2.state, ZN_STATE_SYNC_CONNECTED);
    assert_string_equal(ev2.path, "/gone");
    assert_int_equal(rh2.xid, -8);
    assert_int_equal(rh2.type, ZN_OP_SETWATCHES);
    assert_int_equal(ph2.err, ZN_SESSIONEXPIRED);
    assert_true(ph2.zxid == -1);
    assert_true(jute_connect_response_equal(&cr, &cr2));
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

/* ---- sticky errors ---- */

static void reader_errors_are_sticky(void **state)
{
    size_t len;
    uint8_t *in = from_hex("000000 0102030405060708090a0b0c", &len);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, in, 2, &arena); /* only two bytes visible */
    int32_t v = 0;
    assert_int_equal(jute_read_int(&r, &v), ZN_MARSHALLINGERROR);
    assert_int_equal(r.error, ZN_MARSHALLINGERROR);
    /* Even with enough bytes now, nothing more is read. */
    r.len = len;
    bool b;
    int64_t l;
    char *s;
    struct jute_buf buf;
    struct zn_request req;
    assert_int_equal(jute_read_bool(&r, &b), ZN_MARSHALLINGERROR);
    assert_int_equal(jute_read_long(&r, &l), ZN_MARSHALLINGERROR);
    assert_int_equal(jute_read_string(&r, &s), ZN_MARSHALLINGERROR);
    assert_int_equal(jute_read_buffer(&r, &buf), ZN_MARSHALLINGERROR);
    assert_int_equal(jute_read_request(&r, ZN_OP_PING, &req), ZN_MARSHALLINGERROR);
    assert_int_equal(r.pos, 0);
    assert_int_equal(arena.used_bytes, 0);
    zn_arena_free(&arena);
    free(in);
}

static void writer_errors_are_sticky(void **state)
{
    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_int(&w, 1);
    struct zn_request bad = {.type = 999};
    assert_int_equal(jute_write_request(&w, &bad), ZN_UNIMPLEMENTED);
    size_t len = w.len;
    assert_int_equal(jute_write_int(&w, 2), ZN_UNIMPLEMENTED);
    assert_int_equal(jute_write_long(&w, 2), ZN_UNIMPLEMENTED);
    assert_int_equal(jute_write_string(&w, "x"), ZN_UNIMPLEMENTED);
    assert_int_equal(jute_write_request(&w, jute_sample_request(0)), ZN_UNIMPLEMENTED);
    size_t frame = jute_frame_begin(&w);
    assert_int_equal(jute_frame_end(&w, frame), ZN_UNIMPLEMENTED);
    assert_int_equal(w.len, len);
    /* reset clears the error and keeps the memory */
    jute_writer_reset(&w);
    assert_int_equal(w.error, 0);
    assert_int_equal(jute_write_int(&w, 2), 0);
    assert_writer_bytes(&w, "00000002");
    jute_writer_free(&w);
}

/* ---- opcode table ---- */

static void write_opcodes_are_zookeepers_quorum_ops(void **state)
{
    static const int32_t writes[] = {ZN_OP_CREATE, ZN_OP_CREATE2, ZN_OP_CREATETTL, ZN_OP_CREATECONTAINER,
                                     ZN_OP_DELETE, ZN_OP_DELETECONTAINER, ZN_OP_SETDATA, ZN_OP_SETACL,
                                     ZN_OP_CHECK, ZN_OP_MULTI, ZN_OP_RECONFIG, ZN_OP_CREATESESSION,
                                     ZN_OP_CLOSESESSION};
    static const int32_t reads[] = {ZN_OP_EXISTS, ZN_OP_GETDATA, ZN_OP_GETACL, ZN_OP_GETCHILDREN,
                                    ZN_OP_GETCHILDREN2, ZN_OP_SYNC, ZN_OP_PING, ZN_OP_MULTIREAD,
                                    ZN_OP_AUTH, ZN_OP_SETWATCHES, ZN_OP_SETWATCHES2, ZN_OP_GETEPHEMERALS,
                                    ZN_OP_GETALLCHILDRENNUMBER, ZN_OP_ADDWATCH, ZN_OP_WHOAMI,
                                    ZN_OP_CHECKWATCHES, ZN_OP_REMOVEWATCHES, 999};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        assert_true(zn_op_is_write(writes[i]));
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
        assert_false(zn_op_is_write(reads[i]));
    assert_string_equal(zn_op_name(ZN_OP_CREATE), "create");
    assert_string_equal(zn_op_name(ZN_OP_GETDATA), "getData");
    assert_string_equal(zn_op_name(ZN_OP_MULTIREAD), "multiRead");
    assert_string_equal(zn_op_name(ZN_OP_CLOSESESSION), "closeSession");
    assert_string_equal(zn_op_name(12345), "unknown");
}

/* znodefs extension: setDataTime asks as setData does, then the mtime. */
static void set_data_time_is_set_data_then_the_mtime(void **state)
{
    struct zn_request req = {.type = ZN_OP_SETDATATIME, .path = "/d", .data = {(const uint8_t *)"x", 1},
                             .version = 3, .mtime_ms = 0x0102030405LL};
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(jute_write_request(&w, &req), 0);
    assert_writer_bytes(&w, "00000002 2f64 00000001 78 00000003 0000000102030405");
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_request d;
    assert_int_equal(jute_read_request(&r, ZN_OP_SETDATATIME, &d), 0);
    assert_string_equal(d.path, "/d");
    assert_int_equal(d.version, 3);
    assert_int_equal(d.mtime_ms, 0x0102030405LL);
    assert_int_equal(jute_remaining(&r), 0);
    assert_true(zn_op_is_write(ZN_OP_SETDATATIME));
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

/* znodefs extension: getChildrenKinds asks as getChildren2 does and is
 * answered with getChildren2's body followed by the kind bytes. */
static void children_kinds_extend_get_children2_with_a_kind_buffer(void **state)
{
    struct zn_request req = {.type = ZN_OP_GETCHILDRENKINDS, .path = "/d", .watch = true};
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(jute_write_request(&w, &req), 0);
    assert_writer_bytes(&w, "00000002 2f64 01");
    jute_writer_free(&w);
    /* getChildrenKindsTime asks the same; its data only ends with 8 more bytes */
    req.type = ZN_OP_GETCHILDRENKINDSTIME;
    jute_writer_init(&w);
    assert_int_equal(jute_write_request(&w, &req), 0);
    assert_writer_bytes(&w, "00000002 2f64 01");
    jute_writer_free(&w);

    char *names[] = {"a", "b"};
    static const uint8_t kinds[] = {ZN_KIND_FILE, ZN_KIND_UNKNOWN, ZN_KIND_DIRECTORY};
    struct zn_response resp = {
        .type = ZN_OP_GETCHILDRENKINDS, .children = {2, names}, .data = {kinds, 3},
        .stat = {1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 9},
    };
    jute_writer_init(&w);
    assert_int_equal(jute_write_response(&w, &resp), 0);
    assert_writer_bytes(&w, "00000002 00000001 61 00000001 62"
                            " 0000000000000001 0000000000000002 0000000000000003 0000000000000004"
                            " 00000005 00000006 00000007 0000000000000008 00000001 00000000"
                            " 0000000000000009 00000003 010002");
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_response d;
    assert_int_equal(jute_read_response(&r, ZN_OP_GETCHILDRENKINDSTIME, &d), 0);
    assert_int_equal(d.data.len, 3);
    jute_reader_init(&r, w.data, w.len, &arena);
    assert_int_equal(jute_read_response(&r, ZN_OP_GETCHILDRENKINDS, &d), 0);
    assert_int_equal(d.children.count, 2);
    assert_string_equal(d.children.items[1], "b");
    assert_int_equal(d.stat.num_children, 0);
    assert_int_equal(d.data.len, 3);
    assert_memory_equal(d.data.data, kinds, 3);
    assert_int_equal(jute_remaining(&r), 0);
    /* A reply cut inside the kinds is refused. */
    jute_reader_init(&r, w.data, w.len - 1, &arena);
    assert_int_equal(jute_read_response(&r, ZN_OP_GETCHILDRENKINDS, &d), ZN_MARSHALLINGERROR);
    zn_arena_free(&arena);
    jute_writer_free(&w);
    /* ZooKeeper's own creates never carry the kind bits, so they cannot be
     * mistaken for an extended create. */
    for (int32_t mode = ZN_CREATE_PERSISTENT; mode <= ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL; mode++)
        assert_int_equal(mode & ZN_CREATE_KIND_MASK, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_returns_aligned_memory_and_counts_it),
        cmocka_unit_test(primitives_are_big_endian_and_round_trip),
        cmocka_unit_test(strings_are_copied_nul_terminated_with_their_bytes_kept),
        cmocka_unit_test(frame_end_fills_in_the_body_length),
        cmocka_unit_test(connect_request_bytes_are_zookeepers),
        cmocka_unit_test(create_request_bytes_are_zookeepers),
        cmocka_unit_test(get_data_response_bytes_are_zookeepers),
        cmocka_unit_test(multi_request_is_framed_by_multi_headers),
        cmocka_unit_test(multis_of_every_length_round_trip_and_cut_ones_leave_nothing),
        cmocka_unit_test(multi_response_bodies_follow_each_result_type),
        cmocka_unit_test(multi_create_ttl_and_container_results_go_out_as_create2),
        cmocka_unit_test(every_sample_request_round_trips),
        cmocka_unit_test(every_sample_response_round_trips),
        cmocka_unit_test(every_opcode_of_the_protocol_has_a_sample),
        cmocka_unit_test(records_round_trip),
        cmocka_unit_test(sasl_tokens_are_one_buffer_each_way),
        cmocka_unit_test(reader_errors_are_sticky),
        cmocka_unit_test(writer_errors_are_sticky),
        cmocka_unit_test(write_opcodes_are_zookeepers_quorum_ops),
        cmocka_unit_test(children_kinds_extend_get_children2_with_a_kind_buffer),
        cmocka_unit_test(set_data_time_is_set_data_then_the_mtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
