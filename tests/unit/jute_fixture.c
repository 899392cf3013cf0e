/*
 * The helpers jute_fixture.h declares, for the jute codec's unit tests.
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

uint8_t *from_hex(const char *hex, size_t *len)
{
    uint8_t *out = malloc(strlen(hex) / 2 + 1);
    assert_non_null(out);
    size_t n = 0;
    int high = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ')
            continue;
        int v = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
        assert_true(v >= 0);
        if (high < 0) {
            high = v;
        } else {
            out[n++] = (uint8_t)(high << 4 | v);
            high = -1;
        }
    }
    assert_int_equal(high, -1);
    *len = n;
    return out;
}

void assert_writer_bytes(const struct jute_writer *w, const char *hex)
{
    size_t len;
    uint8_t *expected = from_hex(hex, &len);
    assert_int_equal(w->error, 0);
    assert_int_equal(w->len, len);
    assert_memory_equal(w->data, expected, len);
    free(expected);
}

void encode_request(struct jute_writer *w, const struct zn_request *req)
{
    jute_writer_init(w);
    assert_int_equal(jute_write_request(w, req), 0);
}

void encode_response(struct jute_writer *w, const struct zn_response *resp)
{
    jute_writer_init(w);
    assert_int_equal(jute_write_response(w, resp), 0);
}
