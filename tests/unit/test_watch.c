/* The watch manager: ZooKeeper's trigger rules, one-shot, one event per client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "watch.h"
#include "znode/proto.h"

struct seen {
    struct watch_owner *owner;
    int32_t type;
    char path[64];
};

static struct seen events[64];
static int event_count;
static int total_events;

static void notify(void *ctx, struct watch_owner *owner, int32_t type, const char *path)
{
    (void)ctx;
    total_events++;
    if (event_count == 64)
        return;
    events[event_count].owner = owner;
    events[event_count].type = type;
    snprintf(events[event_count].path, sizeof events[event_count].path, "%s", path);
    event_count++;
}

static int setup(void **state)
{
    event_count = 0;
    total_events = 0;
    *state = watch_manager_new(notify, NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    watch_manager_free(*state);
    return 0;
}

static void data_watch_fires_once_on_change(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a;
    watch_owner_init(&a);
    assert_int_equal(watch_add(wm, WATCH_DATA, "/a", &a), 0);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/a"), 1);
    assert_int_equal(event_count, 1);
    assert_int_equal(events[0].type, ZN_EVENT_CHANGED);
    assert_string_equal(events[0].path, "/a");
    assert_ptr_equal(events[0].owner, &a);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/a"), 0);
    assert_int_equal(watch_count(wm), 0);
    watch_remove_owner(wm, &a);
}

static void registering_twice_gives_one_event(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a;
    watch_owner_init(&a);
    watch_add(wm, WATCH_DATA, "/a", &a);
    watch_add(wm, WATCH_DATA, "/a", &a);
    assert_int_equal(watch_count(wm), 1);
    watch_trigger(wm, ZN_EVENT_CREATED, "/a");
    assert_int_equal(event_count, 1);
    watch_remove_owner(wm, &a);
}

static void child_watch_ignores_data_change_and_fires_on_children_changed(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a;
    watch_owner_init(&a);
    watch_add(wm, WATCH_CHILD, "/a", &a);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/a"), 0);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CREATED, "/a"), 0);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHILD, "/a"), 1);
    assert_int_equal(events[0].type, ZN_EVENT_CHILD);
    watch_remove_owner(wm, &a);
}

static void delete_tells_a_client_with_data_and_child_watches_once(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a, b;
    watch_owner_init(&a);
    watch_owner_init(&b);
    watch_add(wm, WATCH_DATA, "/a", &a);
    watch_add(wm, WATCH_CHILD, "/a", &a);
    watch_add(wm, WATCH_CHILD, "/a", &b);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_DELETED, "/a"), 2);
    assert_int_equal(event_count, 2);
    assert_true(events[0].owner != events[1].owner);
    assert_int_equal(watch_count(wm), 0);
    assert_int_equal(watch_path_count(wm), 0);
    watch_remove_owner(wm, &a);
    watch_remove_owner(wm, &b);
}

static void removing_an_owner_leaves_other_owners_watches(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a, b;
    watch_owner_init(&a);
    watch_owner_init(&b);
    char path[32];
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/n%d", i);
        watch_add(wm, WATCH_DATA, path, &a);
        if (i % 2 == 0)
            watch_add(wm, WATCH_DATA, path, &b);
    }
    assert_int_equal(watch_count(wm), 150);
    watch_remove_owner(wm, &a);
    assert_int_equal(watch_count(wm), 50);
    assert_int_equal(watch_path_count(wm), 50);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/n1"), 0);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/n2"), 1);
    assert_ptr_equal(events[0].owner, &b);
    assert_int_equal(b.count, 49);
    watch_remove_owner(wm, &b);
    assert_int_equal(watch_count(wm), 0);
}

static void many_watchers_on_one_path_all_fire(void **state)
{
    struct watch_manager *wm = *state;
    enum { N = 10000 };
    static struct watch_owner owners[N];
    for (int i = 0; i < N; i++) {
        watch_owner_init(&owners[i]);
        assert_int_equal(watch_add(wm, WATCH_DATA, "/hot", &owners[i]), 0);
    }
    assert_int_equal(watch_count(wm), N);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/hot"), N);
    assert_int_equal(total_events, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(owners[i].count, 0);
    assert_int_equal(watch_count(wm), 0);
    for (int i = 0; i < N; i++)
        watch_remove_owner(wm, &owners[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(data_watch_fires_once_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(registering_twice_gives_one_event, setup, teardown),
        cmocka_unit_test_setup_teardown(child_watch_ignores_data_change_and_fires_on_children_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_tells_a_client_with_data_and_child_watches_once, setup, teardown),
        cmocka_unit_test_setup_teardown(removing_an_owner_leaves_other_owners_watches, setup, teardown),
        cmocka_unit_test_setup_teardown(many_watchers_on_one_path_all_fire, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
