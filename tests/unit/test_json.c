/* json: the writer of the AdminServer's answers: layout, nesting, escaping,
 * and what any byte string (a znode path) becomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"

static void nested_objects_and_arrays_are_laid_out_as_zookeeper_lays_them_out(void **state)
{
    (void)state;
    struct json j = {0};
    json_begin_object(&j);
    json_key(&j, "a");
    json_u64(&j, 1);
    json_key(&j, "list");
    json_begin_array(&j);
    json_string(&j, "x");
    json_i64(&j, -2);
    json_end_array(&j);
    json_key(&j, "empty");
    json_begin_object(&j);
    json_end_object(&j);
    json_key(&j, "none");
    json_begin_array(&j);
    json_end_array(&j);
    json_key(&j, "error");
    json_string(&j, NULL);
    json_key(&j, "ok");
    json_bool(&j, true);
    json_end_object(&j);
    assert_int_equal(j.text.error, 0);
    assert_string_equal(j.text.data, "{\n"
                                     "  \"a\" : 1,\n"
                                     "  \"list\" : [\n"
                                     "    \"x\",\n"
                                     "    -2\n"
                                     "  ],\n"
                                     "  \"empty\" : { },\n"
                                     "  \"none\" : [ ],\n"
                                     "  \"error\" : null,\n"
                                     "  \"ok\" : true\n"
                                     "}\n");
    metrics_text_free(&j.text);
}

static void strings_are_escaped_and_bytes_that_are_not_utf8_stay_valid_json(void **state)
{
    (void)state;
    struct json j = {0};
    json_begin_array(&j);
    json_string(&j, "quote\" back\\ nl\n tab\t");
    json_string(&j, "caf\xc3\xa9 \xe2\x82\xac");   /* valid UTF-8 passes through */
    json_string(&j, "bad\xff\xc3(end");           /* a stray byte and a cut sequence */
    json_end_array(&j);
    assert_string_equal(j.text.data, "[\n"
                                     "  \"quote\\\" back\\\\ nl\\n tab\\u0009\",\n"
                                     "  \"caf\xc3\xa9 \xe2\x82\xac\",\n"
                                     "  \"bad\\u00ff\\u00c3(end\"\n"
                                     "]\n");
    metrics_text_free(&j.text);
}

static void doubles_have_four_decimals_and_non_finite_ones_are_null(void **state)
{
    (void)state;
    struct json j = {0};
    json_begin_array(&j);
    json_double(&j, 2.5);
    json_double(&j, 1.0 / 0.0);
    json_end_array(&j);
    assert_string_equal(j.text.data, "[\n  2.5000,\n  null\n]\n");
    metrics_text_free(&j.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_objects_and_arrays_are_laid_out_as_zookeeper_lays_them_out),
        cmocka_unit_test(strings_are_escaped_and_bytes_that_are_not_utf8_stay_valid_json),
        cmocka_unit_test(doubles_have_four_decimals_and_non_finite_ones_are_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
