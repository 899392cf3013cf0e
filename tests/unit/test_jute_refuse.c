/*
 * Unit tests of the jute wire codec's refusals (lib/jute*.c): truncated and
 * hostile input is refused without over-reading (exact-size copies, so ASan
 * sees any read past the end) or large allocations; so are foreign ops in a
 * multi and unknown opcodes.  The sample catalogue comes from
 * tests/fuzz/jute_testkit.c.
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

/* An exact-size heap copy, so that ASan reports any read past the end. */
static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* ---- truncation ---- */

static void every_truncated_request_is_refused(void **state)
{
    for (size_t i = 0; i < jute_sample_request_count(); i++) {
        const struct zn_request *req = jute_sample_request(i);
        struct jute_writer w;
        encode_request(&w, req);
        for (size_t cut = 0; cut < w.len; cut++) {
            uint8_t *prefix = exact_copy(w.data, cut);
            struct zn_arena arena;
            zn_arena_init(&arena);
            struct jute_reader r;
            jute_reader_init(&r, prefix, cut, &arena);
            struct zn_request d;
            int rc = jute_read_request(&r, req->type, &d);
            if (rc != ZN_MARSHALLINGERROR)
                fail_msg("%s cut at %zu of %zu: rc=%d", jute_sample_request_label(i), cut, w.len, rc);
            assert_null(d.path);
            assert_null(d.ops);
            assert_true(r.pos <= cut);
            zn_arena_free(&arena);
            free(prefix);
        }
        jute_writer_free(&w);
    }
}

static void every_truncated_response_is_refused(void **state)
{
    for (size_t i = 0; i < jute_sample_response_count(); i++) {
        const struct zn_response *resp = jute_sample_response(i);
        struct jute_writer w;
        encode_response(&w, resp);
        for (size_t cut = 0; cut < w.len; cut++) {
            uint8_t *prefix = exact_copy(w.data, cut);
            struct zn_arena arena;
            zn_arena_init(&arena);
            struct jute_reader r;
            jute_reader_init(&r, prefix, cut, &arena);
            struct zn_response d;
            int rc = jute_read_response(&r, resp->type, &d);
            if (rc != ZN_MARSHALLINGERROR)
                fail_msg("%s reply cut at %zu of %zu: rc=%d", jute_sample_response_label(i), cut, w.len, rc);
            assert_null(d.results);
            assert_true(r.pos <= cut);
            zn_arena_free(&arena);
            free(prefix);
        }
        jute_writer_free(&w);
    }
}

static void truncated_connect_records_are_refused(void **state)
{
    struct jute_writer w;
    jute_writer_init(&w);
    jute_write_connect_request(&w, &jute_sample_connect_request);
    size_t without_read_only = w.len - 1;
    for (size_t cut = 0; cut < without_read_only; cut++) {
        uint8_t *prefix = exact_copy(w.data, cut);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, prefix, cut, &arena);
        struct zn_connect_request c;
        assert_int_equal(jute_read_connect_request(&r, &c), ZN_MARSHALLINGERROR);
        zn_arena_free(&arena);
        free(prefix);
    }
    jute_writer_reset(&w);
    jute_write_connect_response(&w, &jute_sample_connect_response);
    for (size_t cut = 0; cut < w.len - 1; cut++) {
        uint8_t *prefix = exact_copy(w.data, cut);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, prefix, cut, &arena);
        struct zn_connect_response c;
        assert_int_equal(jute_read_connect_response(&r, &c), ZN_MARSHALLINGERROR);
        zn_arena_free(&arena);
        free(prefix);
    }
    jute_writer_free(&w);
}

/* ---- hostile input ---- */

/* Decodes hex as a request of type, expecting MARSHALLINGERROR with next to
 * no allocation (an empty path before the hostile field may cost 8 bytes):
 * the length or count is refused before anything is sized by it. */
#define HOSTILE_ALLOWANCE_BYTES 64
static void assert_request_refused_without_allocation(int32_t type, const char *hex)
{
    size_t len;
    uint8_t *in = from_hex(hex, &len);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, in, len, &arena);
    struct zn_request d;
    assert_int_equal(jute_read_request(&r, type, &d), ZN_MARSHALLINGERROR);
    assert_true(arena.used_bytes <= HOSTILE_ALLOWANCE_BYTES);
    zn_arena_free(&arena);
    free(in);
}

static void hostile_lengths_fail_without_allocating(void **state)
{
    /* path length 2^31-1 with 4 bytes behind it */
    assert_request_refused_without_allocation(ZN_OP_GETDATA, "7fffffff 2f616263");
    /* path length -2 */
    assert_request_refused_without_allocation(ZN_OP_GETDATA, "fffffffe 00");
    /* INT32_MIN */
    assert_request_refused_without_allocation(ZN_OP_SYNC, "80000000");
    /* data length 2^31-1 after an empty path */
    assert_request_refused_without_allocation(ZN_OP_SETDATA, "00000000 7fffffff 00000000");
    /* ACL count 2^31-1, and a count that needs 12 bytes per ACL but has 11 */
    assert_request_refused_without_allocation(ZN_OP_SETACL, "00000000 7fffffff 00000000");
    assert_request_refused_without_allocation(ZN_OP_SETACL, "00000000 00000001 0000001f 00000000 000000");
    /* ACL count -2 */
    assert_request_refused_without_allocation(ZN_OP_SETACL, "00000000 fffffffe 00000000");
    /* watch list count 2^31-1 and -5 */
    assert_request_refused_without_allocation(ZN_OP_SETWATCHES, "0000000000000000 7fffffff");
    assert_request_refused_without_allocation(ZN_OP_SETWATCHES, "0000000000000000 fffffffb");
    /* auth buffer longer than the input */
    assert_request_refused_without_allocation(ZN_OP_AUTH, "00000000 ffffffff 00000010 0102");
}

static void hostile_response_counts_fail_without_allocating(void **state)
{
    static const struct {
        int32_t type;
        const char *hex;
    } cases[] = {
        {ZN_OP_GETCHILDREN, "7fffffff 00000000"},
        {ZN_OP_GETCHILDREN, "fffffffe"},
        {ZN_OP_WHOAMI, "7fffffff 0000000000000000"},
        {ZN_OP_WHOAMI, "00000002 00000000 00000000"},
        {ZN_OP_GETACL, "40000000 00000000 00000000 00000000"},
        {ZN_OP_GETDATA, "7fffffff 00"},
        {ZN_OP_CREATE, "7ffffff0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *in = from_hex(cases[i].hex, &len);
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, in, len, &arena);
        struct zn_response d;
        assert_int_equal(jute_read_response(&r, cases[i].type, &d), ZN_MARSHALLINGERROR);
        assert_int_equal(arena.used_bytes, 0);
        zn_arena_free(&arena);
        free(in);
    }
}

static void decoding_allocates_at_most_a_constant_times_the_input(void **state)
{
    /* The cheapest op to send that costs a whole struct zn_request to hold:
     * a getData of "" in a multiRead, 14 bytes each. */
    enum { OPS = 20000 };
    struct jute_writer w;
    jute_writer_init(&w);
    for (int i = 0; i < OPS; i++) {
        jute_write_int(&w, ZN_OP_GETDATA);
        jute_write_bool(&w, false);
        jute_write_int(&w, -1);
        jute_write_string(&w, "");
        jute_write_bool(&w, false);
    }
    jute_write_int(&w, -1);
    jute_write_bool(&w, true);
    jute_write_int(&w, -1);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_request d;
    assert_int_equal(jute_read_request(&r, ZN_OP_MULTIREAD, &d), 0);
    assert_int_equal(d.op_count, OPS);
    assert_string_equal(d.ops[OPS - 1].path, "");
    /* The bound documented in jute.h: a constant times the input. */
    assert_true(arena.used_bytes <= 24 * w.len);
    zn_arena_free(&arena);
    jute_writer_free(&w);
}

static void a_multi_cut_before_its_terminator_is_refused(void **state)
{
    size_t len;
    /* one check op, then the input ends where {-1,true,-1} should be */
    uint8_t *in = from_hex("0000000d 00 ffffffff 00000002 2f61 00000001", &len);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, in, len, &arena);
    struct zn_request d;
    assert_int_equal(jute_read_request(&r, ZN_OP_MULTI, &d), ZN_MARSHALLINGERROR);
    assert_int_equal(d.op_count, 0);
    assert_null(d.ops);
    assert_int_equal(arena.used_bytes, 0);
    zn_arena_free(&arena);
    free(in);
}

static void nested_or_foreign_ops_in_a_multi_are_refused(void **state)
{
    /* a multi inside a multi */
    assert_request_refused_without_allocation(ZN_OP_MULTI, "0000000e 00 ffffffff ffffffff 01 ffffffff");
    /* a getData inside a (write) multi, a create inside a multiRead */
    assert_request_refused_without_allocation(ZN_OP_MULTI, "00000004 00 ffffffff 00000000 00 ffffffff 01 ffffffff");
    assert_request_refused_without_allocation(ZN_OP_MULTIREAD,
                                              "00000001 00 ffffffff 00000000 ffffffff ffffffff 00000000"
                                              " ffffffff 01 ffffffff");
    /* a ping, an unknown op */
    assert_request_refused_without_allocation(ZN_OP_MULTI, "0000000b 00 ffffffff ffffffff 01 ffffffff");
    assert_request_refused_without_allocation(ZN_OP_MULTI, "000003e7 00 ffffffff ffffffff 01 ffffffff");

    /* The encoder refuses them as well. */
    struct zn_request inner = {.type = ZN_OP_MULTI};
    struct zn_request outer = {.type = ZN_OP_MULTI, .op_count = 1, .ops = &inner};
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(jute_write_request(&w, &outer), ZN_MARSHALLINGERROR);
    jute_writer_free(&w);

    /* A multi result of a type MultiResponse does not know. */
    size_t len;
    uint8_t *in = from_hex("00000015 00 00000000 00000000 ffffffff 01 ffffffff", &len);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, in, len, &arena);
    struct zn_response d;
    assert_int_equal(jute_read_response(&r, ZN_OP_MULTI, &d), ZN_MARSHALLINGERROR);
    zn_arena_free(&arena);
    free(in);
}
static void unknown_opcodes_are_unimplemented(void **state)
{
    static const uint8_t body[8];
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    struct zn_request req;
    struct zn_response resp;
    jute_reader_init(&r, body, sizeof(body), &arena);
    assert_int_equal(jute_read_request(&r, 999, &req), ZN_UNIMPLEMENTED);
    jute_reader_init(&r, body, sizeof(body), &arena);
    assert_int_equal(jute_read_request(&r, ZN_OP_CREATESESSION, &req), ZN_UNIMPLEMENTED);
    jute_reader_init(&r, body, sizeof(body), &arena);
    assert_int_equal(jute_read_response(&r, 999, &resp), ZN_UNIMPLEMENTED);
    struct jute_writer w;
    jute_writer_init(&w);
    struct zn_request bad = {.type = 999};
    assert_int_equal(jute_write_request(&w, &bad), ZN_UNIMPLEMENTED);
    assert_int_equal(w.len, 0);
    jute_writer_free(&w);
    zn_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_truncated_request_is_refused),
        cmocka_unit_test(every_truncated_response_is_refused),
        cmocka_unit_test(truncated_connect_records_are_refused),
        cmocka_unit_test(hostile_lengths_fail_without_allocating),
        cmocka_unit_test(hostile_response_counts_fail_without_allocating),
        cmocka_unit_test(decoding_allocates_at_most_a_constant_times_the_input),
        cmocka_unit_test(a_multi_cut_before_its_terminator_is_refused),
        cmocka_unit_test(nested_or_foreign_ops_in_a_multi_are_refused),
        cmocka_unit_test(unknown_opcodes_are_unimplemented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
