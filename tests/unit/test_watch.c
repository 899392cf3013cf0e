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
    uint64_t id;
    char path[96];
};

static struct seen events[64];
static int event_count;
static int total_events;

static void notify(void *ctx, struct watch_owner *owner, const struct watch_event *ev)
{
    (void)ctx;
    total_events++;
    if (event_count == 64)
        return;
    events[event_count].owner = owner;
    events[event_count].type = ev->type;
    events[event_count].id = ev->id;
    snprintf(events[event_count].path, sizeof events[event_count].path, "%s", ev->path);
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

/* The watch fan-out (bench/compare's watch workload): 50 clients watch one
 * node, each event re-arms them all, round after round.  Each gets exactly
 * one event per change, every event of one trigger carries the trigger's id
 * (the server encodes the frame once per id), and the fired entries kept as
 * spares leave the counts exact. */
static void watchers_rearming_round_after_round_each_get_one_event(void **state)
{
    struct watch_manager *wm = *state;
    enum { N = 50, ROUNDS = 5 };
    static struct watch_owner owners[N];
    int seen[N];
    for (int i = 0; i < N; i++)
        watch_owner_init(&owners[i]);
    uint64_t last_id = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(watch_add(wm, WATCH_DATA, "/hot", &owners[i]), 0);
        assert_int_equal(watch_count(wm), N);
        assert_int_equal(watch_path_count(wm), 1);
        event_count = 0;
        assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/hot"), N);
        assert_int_equal(event_count, N);
        memset(seen, 0, sizeof seen);
        for (int k = 0; k < N; k++) {
            ptrdiff_t i = events[k].owner - owners;
            assert_true(i >= 0 && i < N);
            seen[i]++;
            assert_string_equal(events[k].path, "/hot");
            assert_int_equal(events[k].type, ZN_EVENT_CHANGED);
            assert_true(events[k].id == events[0].id);
        }
        for (int i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
        assert_true(events[0].id > last_id);
        last_id = events[0].id;
        assert_int_equal(watch_count(wm), 0);
        assert_int_equal(watch_path_count(wm), 0);
        assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/hot"), 0);
    }
    for (int i = 0; i < N; i++)
        watch_remove_owner(wm, &owners[i]);
}

/* A fired entry kept as a spare is taken back only by a registration of its
 * own kind and path: paths of every length, both tables, more entries fired
 * than spares are kept, and every event has its own path and table. */
static void fired_entries_reused_only_for_their_kind_and_path(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a;
    watch_owner_init(&a);
    static const char *paths[] = {"/a", "/bb", "/a-path-longer-than-one-allocation-step-0123456789",
                                  "/c", "/a-path-longer-than-one-allocation-step-0123456789/and-more-bytes"};
    for (int round = 0; round < 3; round++) {
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            assert_int_equal(watch_add(wm, WATCH_DATA, paths[p], &a), 0);
            event_count = 0;
            assert_int_equal(watch_trigger(wm, ZN_EVENT_DELETED, paths[p]), 1);
            assert_string_equal(events[0].path, paths[p]);
        }
        /* all registered at once, out of the spares and beyond them */
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            assert_int_equal(watch_add(wm, WATCH_DATA, paths[p], &a), 0);
            assert_int_equal(watch_add(wm, WATCH_CHILD, paths[p], &a), 0);
        }
        assert_int_equal(watch_path_count(wm), 10);
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            event_count = 0;
            assert_int_equal(watch_trigger(wm, ZN_EVENT_CHILD, paths[p]), 1);
            assert_string_equal(events[0].path, paths[p]);
            assert_true(watch_contains(wm, paths[p], ZN_WATCHER_DATA, &a));
            assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, paths[p]), 1);
            assert_string_equal(events[1].path, paths[p]);
        }
        assert_int_equal(watch_count(wm), 0);
    }
    watch_remove_owner(wm, &a);
}

/* Registering twice is one registration whichever side is shorter: a client
 * with many watches adding one it has on a path few watch, and a client
 * with one watch adding it again on a path many watch. */
static void registering_twice_is_one_registration_on_either_side(void **state)
{
    struct watch_manager *wm = *state;
    enum { MANY = 20 };
    static struct watch_owner crowd[MANY];
    struct watch_owner busy, lone;
    watch_owner_init(&busy);
    watch_owner_init(&lone);
    char path[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(path, sizeof path, "/p%d", i);
        assert_int_equal(watch_add(wm, WATCH_DATA, path, &busy), 0);
    }
    assert_int_equal(watch_add(wm, WATCH_DATA, "/p7", &busy), 0); /* busy: 20 regs, /p7: 1 slot */
    assert_int_equal(busy.count, MANY);
    for (int i = 0; i < MANY; i++) {
        watch_owner_init(&crowd[i]);
        assert_int_equal(watch_add(wm, WATCH_DATA, "/crowded", &crowd[i]), 0);
    }
    assert_int_equal(watch_add(wm, WATCH_DATA, "/crowded", &lone), 0);
    assert_int_equal(watch_add(wm, WATCH_DATA, "/crowded", &lone), 0); /* lone: 1 reg, 21 slots */
    assert_int_equal(watch_add(wm, WATCH_DATA, "/crowded", &crowd[3]), 0);
    assert_int_equal(watch_count(wm), 2 * MANY + 1);
    event_count = 0;
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/p7"), 1);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/crowded"), MANY + 1);
    assert_int_equal(total_events, MANY + 2);
    watch_remove_owner(wm, &busy);
    watch_remove_owner(wm, &lone);
    for (int i = 0; i < MANY; i++)
        watch_remove_owner(wm, &crowd[i]);
    assert_int_equal(watch_count(wm), 0);
}

/* One trigger, one id for every owner it tells, recursive and persistent
 * watches included; the next trigger has another. */
static void every_owner_of_one_trigger_gets_its_id(void **state)
{
    struct watch_manager *wm = *state;
    struct watch_owner a, b, c;
    watch_owner_init(&a);
    watch_owner_init(&b);
    watch_owner_init(&c);
    watch_add(wm, WATCH_DATA, "/x/y", &a);
    watch_add(wm, WATCH_PERSISTENT_DATA, "/x/y", &b);
    watch_add(wm, WATCH_RECURSIVE, "/x", &c);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/x/y"), 3);
    assert_int_equal(watch_trigger(wm, ZN_EVENT_CHANGED, "/x/y"), 2);
    assert_int_equal(event_count, 5);
    assert_true(events[0].id != 0 && events[0].id == events[1].id && events[1].id == events[2].id);
    assert_true(events[3].id == events[4].id && events[3].id != events[0].id);
    watch_remove_owner(wm, &a);
    watch_remove_owner(wm, &b);
    watch_remove_owner(wm, &c);
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
        cmocka_unit_test_setup_teardown(watchers_rearming_round_after_round_each_get_one_event, setup, teardown),
        cmocka_unit_test_setup_teardown(fired_entries_reused_only_for_their_kind_and_path, setup, teardown),
        cmocka_unit_test_setup_teardown(registering_twice_is_one_registration_on_either_side, setup, teardown),
        cmocka_unit_test_setup_teardown(every_owner_of_one_trigger_gets_its_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
