/*
 * The wire bytes of every record, pinned: each sample request, response and
 * connect record of the test kit encodes to the bytes recorded in
 * jute_golden.inc (written by the codec before its records were described
 * once), those bytes decode back to the sample, and re-encoding what they
 * decode to gives the same bytes.  Also the opcode table's consistency.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jute.h"
#include "jute_testkit.h"

static const struct {
    const char *label;
    const char *hex;
} golden[] = {
#include "jute_golden.inc"
};
#define GOLDEN_COUNT (sizeof(golden) / sizeof(golden[0]))

static const char *golden_hex(const char *label)
{
    for (size_t i = 0; i < GOLDEN_COUNT; i++)
        if (strcmp(golden[i].label, label) == 0)
            return golden[i].hex;
    fail_msg("no golden bytes for %s", label);
    return NULL;
}

/* The bytes of hex, malloc'd; *len set. */
static uint8_t *unhex(const char *hex, size_t *len)
{
    *len = strlen(hex) / 2;
    uint8_t *b = malloc(*len + 1);
    assert_non_null(b);
    for (size_t i = 0; i < *len; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        b[i] = (uint8_t)v;
    }
    return b;
}

static void assert_bytes(const char *label, const struct jute_writer *w, const uint8_t *want, size_t want_len)
{
    if (w->len != want_len || (want_len > 0 && memcmp(w->data, want, want_len) != 0)) {
        size_t at = 0;
        while (at < w->len && at < want_len && w->data[at] == want[at])
            at++;
        fail_msg("%s: %zu bytes written, %zu pinned; first difference at byte %zu", label, w->len, want_len,
                 at);
    }
}

enum record { REQUEST, RESPONSE, CONNECT_REQUEST, CONNECT_RESPONSE };

static int encode(enum record kind, const void *x, struct jute_writer *w)
{
    switch (kind) {
    case REQUEST: return jute_write_request(w, x);
    case RESPONSE: return jute_write_response(w, x);
    case CONNECT_REQUEST: return jute_write_connect_request(w, x);
    default: return jute_write_connect_response(w, x);
    }
}

/* Decodes into *out (a union big enough for any) and compares with x. */
static void decode_equal(enum record kind, const char *label, const void *x, const uint8_t *bytes, size_t len,
                         struct zn_arena *arena, void *out)
{
    struct jute_reader r;
    jute_reader_init(&r, bytes, len, arena);
    bool same = false;
    switch (kind) {
    case REQUEST:
        assert_int_equal(jute_read_request(&r, ((const struct zn_request *)x)->type, out), 0);
        same = jute_request_equal(x, out);
        break;
    case RESPONSE:
        assert_int_equal(jute_read_response(&r, ((const struct zn_response *)x)->type, out), 0);
        same = jute_response_equal(x, out);
        break;
    case CONNECT_REQUEST:
        assert_int_equal(jute_read_connect_request(&r, out), 0);
        same = jute_connect_request_equal(x, out);
        break;
    default:
        assert_int_equal(jute_read_connect_response(&r, out), 0);
        same = jute_connect_response_equal(x, out);
        break;
    }
    assert_int_equal(jute_remaining(&r), 0);
    if (!same)
        fail_msg("%s: the pinned bytes decode to another record (%s)", label, jute_testkit_mismatch);
}

/* encode(x) == bytes, decode(bytes) == x, encode(decode(bytes)) == bytes. */
static void check_record(enum record kind, const char *label, const void *x)
{
    size_t len;
    uint8_t *bytes = unhex(golden_hex(label), &len);
    struct jute_writer w;
    jute_writer_init(&w);
    assert_int_equal(encode(kind, x, &w), 0);
    assert_bytes(label, &w, bytes, len);

    union {
        struct zn_request req;
        struct zn_response resp;
        struct zn_connect_request creq;
        struct zn_connect_response cresp;
    } back;
    struct zn_arena arena;
    zn_arena_init(&arena);
    decode_equal(kind, label, x, bytes, len, &arena, &back);
    jute_writer_reset(&w);
    assert_int_equal(encode(kind, &back, &w), 0);
    assert_bytes(label, &w, bytes, len);
    zn_arena_free(&arena);
    jute_writer_free(&w);
    free(bytes);
}

static void every_record_has_its_pinned_bytes_both_ways(void **state)
{
    (void)state;
    char label[128];
    size_t checked = 0;
    for (size_t i = 0; i < jute_sample_request_count(); i++, checked++) {
        snprintf(label, sizeof(label), "request:%s", jute_sample_request_label(i));
        check_record(REQUEST, label, jute_sample_request(i));
    }
    for (size_t i = 0; i < jute_sample_response_count(); i++, checked++) {
        snprintf(label, sizeof(label), "response:%s", jute_sample_response_label(i));
        check_record(RESPONSE, label, jute_sample_response(i));
    }
    check_record(CONNECT_REQUEST, "connect_request", &jute_sample_connect_request);
    check_record(CONNECT_RESPONSE, "connect_response", &jute_sample_connect_response);
    checked += 2;
    /* No pinned entry without its sample (a renamed sample is caught here). */
    assert_int_equal(checked, GOLDEN_COUNT);
}

static void the_opcode_table_is_consistent(void **state)
{
    (void)state;
    static const int32_t ops[] = {
#define OP_VALUE(name, value, str, flags) value,
        ZN_OPCODES(OP_VALUE)
#undef OP_VALUE
    };
    size_t n = sizeof(ops) / sizeof(ops[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned f = zn_op_flags(ops[i]);
        const char *name = zn_op_name(ops[i]);
        assert_string_not_equal(name, "unknown");
        for (size_t k = i + 1; k < n; k++) {
            assert_int_not_equal(ops[i], ops[k]);
            assert_string_not_equal(name, zn_op_name(ops[k]));
        }
        /* A create, or an op of a multi, is a write; an op of a multiRead is not. */
        if (f & (ZN_OPF_CREATE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH))
            assert_true(f & ZN_OPF_WRITE);
        if (f & ZN_OPF_CREATE)
            assert_true((f & ZN_OPF_IN_MULTI) && (f & ZN_OPF_TXN_PATH));
        if (f & ZN_OPF_IN_MULTIREAD)
            assert_false(f & ZN_OPF_WRITE);
    }
    assert_int_equal(zn_op_flags(12345), 0);
    assert_string_equal(zn_op_name(12345), "unknown");
    assert_true(zn_op_is_create(ZN_OP_CREATETTL) && zn_op_is_create(ZN_OP_CREATECONTAINER));
    assert_false(zn_op_is_create(ZN_OP_SETDATA));
    assert_false(zn_op_is_write(ZN_OP_DELETE - 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_record_has_its_pinned_bytes_both_ways),
        cmocka_unit_test(the_opcode_table_is_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
