/*
 * Unit tests of daemon/model/path.c: ZooKeeper's PathUtils.validatePath rules
 * (cases from ZooKeeper's PathUtilsTest plus UTF-8 specifics) and the helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "path.h"
#include "znode/errors.h"

static void valid_paths_are_accepted(void **state)
{
    const char *ok[] = {"/", "/a", "/a/b", "/this is / a valid/path", "/name/with.period.",
                        "/test/.../x", "/a/..b", "/a/.b", "/a/b.", "/\xc3\xa9t\xc3\xa9", "/\xe4\xb8\xad"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (path_validate(ok[i], false) != 0)
            fail_msg("rejected %s", ok[i]);
    }
}

static void invalid_paths_fail_with_badarguments(void **state)
{
    const char *bad[] = {"", "a", "a/b", "//", "/a/", "/a//b", "/.", "/..", "/a/.", "/a/..", "/./a",
                         "/../a", "/a/./b", "/a/../b", "/a\x01", "/a\x1f", "/a\x7f", "/\xc2\x80", "/\xc2\x9f",
                         "/\xee\x80\x80",          /* U+E000, private use */
                         "/\xef\xa3\xbf",          /* U+F8FF */
                         "/\xef\xbf\xb0",          /* U+FFF0 */
                         "/\xef\xbf\xbf",          /* U+FFFF */
                         "/\xf0\x9f\x98\x80",      /* U+1F600: a surrogate pair in Java */
                         "/\xed\xa0\x80",          /* an encoded surrogate */
                         "/\xc0\xaf",              /* overlong '/' */
                         "/\xff", "/\xc3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (path_validate(bad[i], false) != ZN_BADARGUMENTS)
            fail_msg("accepted bad path #%zu", i);
    }
    assert_int_equal(path_validate(NULL, false), ZN_BADARGUMENTS);
}

static void sequential_prefix_may_end_with_a_slash_or_dot(void **state)
{
    /* ZooKeeper validates path + "1". */
    assert_int_equal(path_validate("/", true), 0);
    assert_int_equal(path_validate("/a/", true), 0);
    assert_int_equal(path_validate("/a/.", true), 0);
    assert_int_equal(path_validate("/a/..", true), 0);
    assert_int_equal(path_validate("/a/lock-", true), 0);
    assert_int_equal(path_validate("/a//", true), ZN_BADARGUMENTS);
    assert_int_equal(path_validate("//", true), ZN_BADARGUMENTS);
    assert_int_equal(path_validate("/./x/", true), ZN_BADARGUMENTS);
    assert_int_equal(path_validate("a/", true), ZN_BADARGUMENTS);
    /* non-sequential: the same prefixes are invalid */
    assert_int_equal(path_validate("/a/", false), ZN_BADARGUMENTS);
    assert_int_equal(path_validate("/a/.", false), ZN_BADARGUMENTS);
}

static void parent_and_last_component_follow_zookeeper(void **state)
{
    assert_int_equal(path_parent_len("/a/b/c", 6), 4);
    assert_int_equal(path_parent_len("/a", 2), 0);
    assert_int_equal(path_parent_len("/", 1), 0);
    assert_int_equal(path_parent_len("abc", 3), -1);
    assert_string_equal(path_last_component("/a/b/c"), "c");
    assert_string_equal(path_last_component("/a"), "a");
    assert_string_equal(path_last_component("/"), "");
}

static void special_paths_are_zookeepers_own(void **state)
{
    assert_true(path_is_special("/"));
    assert_true(path_is_special("/zookeeper"));
    assert_true(path_is_special("/zookeeper/quota"));
    assert_true(path_is_special("/zookeeper/config"));
    assert_false(path_is_special("/zookeeper/other"));
    assert_false(path_is_special("/zoo"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_paths_are_accepted),
        cmocka_unit_test(invalid_paths_fail_with_badarguments),
        cmocka_unit_test(sequential_prefix_may_end_with_a_slash_or_dot),
        cmocka_unit_test(parent_and_last_component_follow_zookeeper),
        cmocka_unit_test(special_paths_are_zookeepers_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
