/*
 * The invariant checkers (daemon/check.h): a consistent state passes, and
 * each planted corruption is reported.  Corruptions are written through the
 * pointers the modules lend (a node's path and data, a prep record's key, a
 * watch owner's fields), as a stray write would; the one the public API
 * cannot reach, a session missing from the tree's table, is planted by
 * wrapping tree_session_exists at link time (-Wl,--wrap, tests/CMakeLists.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "prep_fixture.h"
#include "watch.h"

/* The session the wrapped tree_session_exists hides (0: none). */
static int64_t hidden_session;
bool __real_tree_session_exists(const struct tree *t, int64_t session_id);
bool __wrap_tree_session_exists(const struct tree *t, int64_t session_id)
{
    return session_id != hidden_session && __real_tree_session_exists(t, session_id);
}

/* What a check found (CHECK_WHY_BYTES, check.h). */
static char why[CHECK_WHY_BYTES];

static int check_setup(void **state)
{
    hidden_session = 0;
    return setup(state);
}

static void prepare_create(struct harness *h, const char *path, int32_t flags, struct txn *t)
{
    struct zn_request r = create_req(path, "data", flags);
    struct zn_response err;
    if (prepare(h, SID, &r, t, &err) != 0)
        fail_msg("prep of create %s failed: %d", path, err.err);
}

/* A tree with a session, an ephemeral, nested nodes and a quota. */
static void build(struct harness *h)
{
    open_session(h, SID);
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    must_create(h, SID, "/a/b", ZN_CREATE_PERSISTENT);
    must_create(h, SID, "/a/e", ZN_CREATE_EPHEMERAL);
    must_create(h, SID, "/zookeeper/quota/a", ZN_CREATE_PERSISTENT);
    must_create(h, SID, "/zookeeper/quota/a/zookeeper_limits", ZN_CREATE_PERSISTENT);
    assert_int_equal(tree_quota_count(h->tree), 1);
}

static void a_consistent_tree_and_overlay_pass(void **state)
{
    struct harness *h = *state;
    build(h);
    struct txn pending;
    prepare_create(h, "/a/c", ZN_CREATE_PERSISTENT, &pending); /* prepared, not yet applied */
    prepare_create(h, "/a/c/d", ZN_CREATE_PERSISTENT, &pending);
    assert_int_equal(prep_pending_count(h->prep), 4); /* two nodes, two parents */
    if (check_tree(h->tree, why) != 0 || check_prep(h->prep, tree_last_zxid(h->tree), why) != 0)
        fail_msg("%s", why);
}

static void a_node_whose_path_changed_under_the_index_is_caught(void **state)
{
    struct harness *h = *state;
    build(h);
    char *path = (char *)tree_node_path(tree_get(h->tree, "/a/b"));
    path[3] = 'x';
    assert_int_equal(check_tree(h->tree, why), ZN_DATAINCONSISTENCY);
    assert_non_null(strstr(why, "the index does not find node /a/x"));
    path[3] = 'b';
    assert_int_equal(check_tree(h->tree, why), 0);
}

static void data_changed_behind_the_digest_is_caught(void **state)
{
    struct harness *h = *state;
    build(h);
    uint8_t *data = (uint8_t *)tree_node_data(tree_get(h->tree, "/a")).data;
    data[0] ^= 1;
    assert_int_equal(check_tree(h->tree, why), ZN_DATAINCONSISTENCY);
    assert_string_equal(why, "tree: tree_check failed (links, index or digests)");
    data[0] ^= 1;
    assert_int_equal(check_tree(h->tree, why), 0);
}

static void an_ephemeral_whose_session_is_missing_is_caught(void **state)
{
    struct harness *h = *state;
    build(h);
    hidden_session = SID;
    assert_int_equal(check_tree(h->tree, why), ZN_DATAINCONSISTENCY);
    assert_string_equal(why, "tree: ephemeral /a/e: owner 0x1000000000000001 is not in the session table");
}

static void an_overlay_record_the_tree_has_applied_is_caught(void **state)
{
    struct harness *h = *state;
    build(h);
    struct txn t;
    prepare_create(h, "/a/c", ZN_CREATE_PERSISTENT, &t);
    struct zn_response res;
    assert_int_equal(tree_apply(h->tree, &t, NULL, NULL, &h->arena, &res), 0);
    /* prep_applied forgotten */
    assert_int_equal(check_prep(h->prep, tree_last_zxid(h->tree), why), ZN_DATAINCONSISTENCY);
    assert_non_null(strstr(why, "prep: record /a zxid 0x100000007 after 0x0 (applied 0x100000007)"));
    prep_applied(h->prep, t.hdr.zxid);
    assert_int_equal(check_prep(h->prep, tree_last_zxid(h->tree), why), 0);
}

static int grab_newest_key(void *ctx, const struct prep_record_info *info)
{
    if (info->newest)
        *(char **)ctx = (char *)info->key;
    return 0;
}

static void an_overlay_record_its_lookup_cannot_find_is_caught(void **state)
{
    struct harness *h = *state;
    build(h);
    struct txn t;
    prepare_create(h, "/a/c", ZN_CREATE_PERSISTENT, &t);
    char *key = NULL;
    prep_for_each_record(h->prep, grab_newest_key, &key); /* the last newest: /a/c */
    assert_string_equal(key, "/a/c");
    key[3] = 'q';
    assert_int_equal(check_prep(h->prep, tree_last_zxid(h->tree), why), ZN_DATAINCONSISTENCY);
    assert_non_null(strstr(why, "record /a/q zxid 0x100000007: newest=1 hidden=0, and a lookup finds nothing"));
    key[3] = 'c';
    assert_int_equal(check_prep(h->prep, tree_last_zxid(h->tree), why), 0);
}

static void no_notify(void *ctx, struct watch_owner *owner, const struct watch_event *ev) {}

static void watch_tables_that_disagree_are_caught(void **state)
{
    (void)state;
    struct watch_manager *wm = watch_manager_new(no_notify, NULL);
    struct watch_owner a, b;
    watch_owner_init(&a);
    watch_owner_init(&b);
    assert_int_equal(watch_add(wm, WATCH_DATA, "/x", &a), 0);
    assert_int_equal(watch_add(wm, WATCH_CHILD, "/x", &a), 0);
    assert_int_equal(watch_add(wm, WATCH_DATA, "/y", &b), 0);
    assert_int_equal(watch_add(wm, WATCH_RECURSIVE, "/", &b), 0);
    struct watch_owner *owners[] = {&a, &b};
    if (check_watches(wm, owners, 2, why) != 0)
        fail_msg("%s", why);
    /* a's and b's registrations swapped: each entry names an owner that lists other paths */
    struct watch_owner saved = a;
    a = b;
    b = saved;
    assert_int_equal(check_watches(wm, owners, 2, why), ZN_DATAINCONSISTENCY);
    assert_non_null(strstr(why, "is registered for an owner"));
    saved = a;
    a = b;
    b = saved;
    /* an owner that lost count of a registration */
    a.count--;
    assert_int_equal(check_watches(wm, owners, 2, why), ZN_DATAINCONSISTENCY);
    assert_string_equal(why, "watches: /x (kind 1) is registered for an owner that does not list it");
    a.count++;
    assert_int_equal(check_watches(wm, owners, 2, why), 0);
    watch_remove_owner(wm, &a);
    watch_remove_owner(wm, &b);
    assert_int_equal(check_watches(wm, owners, 2, why), 0);
    watch_manager_free(wm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_consistent_tree_and_overlay_pass, check_setup, teardown),
        cmocka_unit_test_setup_teardown(a_node_whose_path_changed_under_the_index_is_caught, check_setup, teardown),
        cmocka_unit_test_setup_teardown(data_changed_behind_the_digest_is_caught, check_setup, teardown),
        cmocka_unit_test_setup_teardown(an_ephemeral_whose_session_is_missing_is_caught, check_setup, teardown),
        cmocka_unit_test_setup_teardown(an_overlay_record_the_tree_has_applied_is_caught, check_setup, teardown),
        cmocka_unit_test_setup_teardown(an_overlay_record_its_lookup_cannot_find_is_caught, check_setup, teardown),
        cmocka_unit_test_setup_teardown(watch_tables_that_disagree_are_caught, check_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
