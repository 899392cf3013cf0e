/*
 * zab_catchup_test: how fast a member that is behind catches up, in the
 * simulated world (manual mode: nothing moves unless the test says so).
 *
 * A member behind by thousands of entries must be brought level by the
 * messages themselves: each durable point it reports opens the leader's send
 * window (ZAB_SEND_WINDOW_ENTRIES) for the next entries, during the sync
 * (before it acks NEWLEADER) as after it.  It used to take one heartbeat per
 * 64 entries in the sync: 2,000 entries behind kept a new leader waiting
 * 2.5 s for that member's ack in the daemon, 30,000 more than initLimit.
 * The tests count ticks (heartbeats), the simulator's clock: a run that
 * needs a heartbeat per batch needs dozens here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "sim.h"
#include "sim_internal.h"
#include "zab_internal.h"

enum { BEHIND = 3000 };

static struct zab_status status_of(struct sim_world *w, int id)
{
    struct zab_status s;
    zab_status(w->m[id].z, &s);
    return s;
}

static bool established(struct sim_world *w, int id)
{
    if (!w->m[id].up)
        return false;
    struct zab_status s = status_of(w, id);
    return s.role == ZAB_LEADING && s.phase == ZAB_PHASE_BROADCAST;
}

static int leader(struct sim_world *w)
{
    for (int id = 1; id <= w->o.members; id++)
        if (established(w, id))
            return id;
    return 0;
}

/* Rounds of delivering every message in flight, then completing every disk
 * write but member hold's (0: none), until until() holds or nothing moves; a
 * tick of every member when nothing moves.  Returns the ticks taken (and the
 * rounds, in *rounds), or -1 after max_ticks. */
static int ticks_until_holding(struct sim_world *w, bool (*until)(struct sim_world *), int max_ticks,
                               int *rounds, int hold)
{
    int r = 0;
    for (int t = 0; t <= max_ticks; t++) {
        for (;;) {
            if (until(w)) {
                if (rounds)
                    *rounds = r;
                return t;
            }
            int moved = sim_deliver(w, 0, 0, 0);
            bool wrote = false;
            for (int id = 1; id <= w->o.members; id++) {
                if (id == hold || !w->m[id].up || w->m[id].pending.n == 0)
                    continue;
                wrote = true;
                sim_persist(w, id);
            }
            if (!moved && !wrote)
                break;
            r++;
        }
        sim_tick(w, 0);
    }
    return -1;
}

/* As ticks_until_holding, with every disk write completed. */
static int ticks_until(struct sim_world *w, bool (*until)(struct sim_world *), int max_ticks,
                       int *rounds)
{
    return ticks_until_holding(w, until, max_ticks, rounds, 0);
}

static bool has_leader(struct sim_world *w) { return leader(w) != 0; }

static bool all_level(struct sim_world *w)
{
    int l = leader(w);
    if (!l)
        return false;
    uint64_t last = status_of(w, l).last_zxid;
    for (int id = 1; id <= w->o.members; id++)
        if (w->m[id].up && (status_of(w, id).persisted_zxid != last ||
                            status_of(w, id).applied_zxid != last))
            return false;
    return true;
}

/* A world of members with an established leader, and the id of a follower of
 * it that misses BEHIND committed entries (crashed while they were written). */
static struct sim_world *world_of_with_one_behind(int members, int *behind, int *old_leader)
{
    struct sim_options o = {.seed = 1, .members = members, .manual = true, .out = stderr};
    struct sim_world *w = sim_world_new(&o);
    assert_non_null(w);
    assert_true(ticks_until(w, has_leader, 50, NULL) >= 0);
    *old_leader = leader(w);
    *behind = *old_leader == 1 ? 2 : 1;
    sim_crash(w, *behind);
    for (int i = 0; i < BEHIND; i++) {
        char data[32];
        snprintf(data, sizeof data, "e%d", i);
        assert_true(sim_propose(w, *old_leader, data) > 0);
        if (i % 500 == 499)
            sim_stabilize(w, 100000); /* below ZAB_INFLIGHT_MAX uncommitted */
    }
    sim_stabilize(w, 100000);
    assert_int_equal(status_of(w, *old_leader).committed_zxid, status_of(w, *old_leader).last_zxid);
    assert_null(sim_violation(w));
    return w;
}

static struct sim_world *world_with_one_behind(int *behind, int *old_leader)
{
    return world_of_with_one_behind(3, behind, old_leader);
}

/* The member behind comes back to the same leader: a DIFF of BEHIND entries
 * shipped as it makes them durable, within a few ticks (it used to be one
 * heartbeat, 2 ticks here, per 64 entries: about 94). */
static void a_member_behind_catches_up_with_its_leader_in_a_few_ticks(void **state)
{
    (void)state;
    int behind, old_leader;
    struct sim_world *w = world_with_one_behind(&behind, &old_leader);
    sim_restart(w, behind);
    int rounds = 0;
    int ticks = ticks_until(w, all_level, 200, &rounds);
    print_message("level after %d ticks, %d rounds of messages and disk writes\n", ticks, rounds);
    assert_true(ticks >= 0);
    assert_true(ticks <= 2);
    assert_true(rounds <= 20);
    assert_int_equal(leader(w), old_leader);
    assert_null(sim_violation(w));
    sim_world_free(w);
}

/* The leader dies and the member behind is needed for the next quorum: the
 * new leader is established once that member has taken the whole DIFF
 * during the sync, before it acks NEWLEADER, with no heartbeat per batch. */
static void a_new_leader_that_needs_the_member_behind_is_established_in_a_few_ticks(void **state)
{
    (void)state;
    int behind, old_leader;
    struct sim_world *w = world_with_one_behind(&behind, &old_leader);
    sim_crash(w, old_leader);
    sim_restart(w, behind);
    /* syncLimit (5 ticks) for the survivor to give up its leader, then the election. */
    int rounds = 0;
    int ticks = ticks_until(w, has_leader, 200, &rounds);
    print_message("a leader after %d ticks, %d rounds of messages and disk writes\n", ticks, rounds);
    assert_true(ticks >= 0);
    assert_true(ticks <= 12);
    int new_leader = leader(w);
    assert_int_not_equal(new_leader, behind); /* it lacks committed entries */
    assert_int_equal(status_of(w, behind).persisted_zxid, status_of(w, new_leader).last_zxid);
    assert_null(sim_violation(w));
    sim_world_free(w);
}

static int g_follower, g_leader; /* for follower_in_broadcast */

static bool follower_in_broadcast(struct sim_world *w)
{
    struct zab_status f = status_of(w, g_follower);
    return f.leader_id == (uint32_t)g_leader && f.phase == ZAB_PHASE_BROADCAST;
}

static bool follower_serving(struct sim_world *w) { return status_of(w, g_follower).serving; }

/* Of 5, the old leader and one more die; the new leader needs the member
 * behind as well as the up-to-date follower F for its quorum of 3.  F acks
 * NEWLEADER at once and takes proposals from then on, but serves clients
 * only once its leader is established (a COMMIT of the epoch, ZooKeeper's
 * UPTODATE): before, its leader could take no write, and a follower serving
 * then forwarded writes that waited (they used to be dropped, and its
 * clients cut off after its forward timeout). */
static void a_follower_serves_only_once_its_leader_is_established(void **state)
{
    (void)state;
    int behind, old_leader;
    struct sim_world *w = world_of_with_one_behind(5, &behind, &old_leader);
    int gone = 0;
    for (int id = 1; id <= 5 && !gone; id++)
        if (id != behind && id != old_leader)
            gone = id;
    sim_crash(w, old_leader);
    sim_crash(w, gone);
    sim_restart(w, behind);
    /* The election's winner has the highest (epoch, zxid, id) of the three. */
    int new_leader = 0;
    for (int id = 5; id >= 1 && !new_leader; id--)
        if (w->m[id].up && id != behind)
            new_leader = id;
    g_leader = new_leader;
    g_follower = 0;
    for (int id = 1; id <= 5 && !g_follower; id++)
        if (w->m[id].up && id != behind && id != new_leader)
            g_follower = id;
    /* The member behind cannot make its catch-up durable for now. */
    assert_true(ticks_until_holding(w, follower_in_broadcast, 200, NULL, behind) >= 0);
    struct zab_status f = status_of(w, g_follower), l = status_of(w, new_leader);
    assert_int_equal(f.role, ZAB_FOLLOWING);
    assert_int_equal(f.leader_id, new_leader);
    assert_int_equal(l.role, ZAB_LEADING);
    assert_int_equal(l.phase, ZAB_PHASE_SYNC); /* waiting for the member behind */
    assert_false(l.serving);
    assert_false(f.serving); /* acked NEWLEADER, but its leader is not established */
    /* The member behind writes and acks: the leader is established, and its
     * COMMIT saying so to F is lost.  F serves from the next heartbeat (an
     * established leader's heartbeat to F is a COMMIT), not the next write. */
    sim_persist(w, behind);
    assert_true(sim_deliver(w, behind, new_leader, 0) > 0);
    assert_true(established(w, new_leader));
    assert_true(status_of(w, new_leader).serving);
    assert_true(sim_drop(w, new_leader, g_follower) > 0);
    sim_stabilize(w, 100000);
    assert_false(status_of(w, g_follower).serving);
    int ticks = ticks_until(w, follower_serving, 50, NULL);
    print_message("the follower serves %d ticks after its COMMIT was lost\n", ticks);
    assert_true(ticks >= 0 && ticks <= 3); /* a heartbeat is 2 ticks here */
    assert_true(status_of(w, behind).serving);
    assert_null(sim_violation(w));
    sim_world_free(w);
}

static int g_behind; /* for behind_acked_epoch */

static bool behind_acked_epoch(struct sim_world *w)
{
    const struct zab *z = w->m[g_behind].z;
    return w->m[g_behind].up && z->role == ZAB_FOLLOWING && z->epoch_acked && !z->synced;
}

/* Ticks the member behind stays a follower of leader l while every message
 * from l to it is dropped (its driver holding them for a snapshot file it
 * fetches meanwhile) and, with progress, the bytes of that file keep coming
 * (zab_snapshot_transfer_progress each tick).  Messages among the others,
 * and from it to l, go on.  Returns the ticks until it left this attempt to
 * follow l (max if never). */
static int ticks_following_while_held(struct sim_world *w, int l, bool progress, int max)
{
    uint64_t attempt = w->m[g_behind].z->session;
    for (int t = 0; t < max; t++) {
        for (int step = 0; step < 10000; step++) {
            sim_drop(w, l, g_behind);
            if (sim_deliver(w, 0, 0, 1))
                continue;
            bool wrote = false;
            for (int id = 1; id <= w->o.members; id++)
                if (w->m[id].up && w->m[id].pending.n) {
                    sim_persist(w, id);
                    wrote = true;
                }
            if (!wrote)
                break;
        }
        const struct zab *z = w->m[g_behind].z;
        if (z->role != ZAB_FOLLOWING || z->leader_id != (uint32_t)l || z->session != attempt)
            return t;
        if (progress)
            zab_snapshot_transfer_progress(w->m[g_behind].z, (uint32_t)l);
        sim_tick(w, 0);
    }
    return max;
}

/* A learner whose driver fetches the leader's snapshot file out of band
 * (daemon/ensemble/snapxfer.c: a SNAP of a tree larger than one message)
 * holds the leader's SYNC until the file is in.  Discovery's bound (a few
 * heartbeats, 8 ticks here) would end its attempt mid-transfer and start the
 * transfer over, for ever with a file that takes longer; while bytes come,
 * initLimit (40 ticks here) bounds the sync, as ZooKeeper's initLimit bounds
 * a snapshot's transfer.  Without bytes, discovery's bound stands. */
static void a_learner_fetching_its_leaders_snapshot_waits_up_to_init_limit(void **state)
{
    (void)state;
    for (int progress = 0; progress <= 1; progress++) {
        struct sim_options o = {.seed = 1, .members = 3, .manual = true, .out = stderr,
                                .init_limit_ticks = 40};
        struct sim_world *w = sim_world_new(&o);
        assert_non_null(w);
        assert_true(ticks_until(w, has_leader, 50, NULL) >= 0);
        int l = leader(w);
        g_behind = l == 1 ? 2 : 1;
        sim_crash(w, g_behind);
        sim_restart(w, g_behind);
        /* one message at a time: the state lasts from NEWEPOCH to SYNC */
        int steps = 0;
        for (; steps < 10000 && !behind_acked_epoch(w); steps++) {
            if (sim_deliver(w, 0, 0, 1))
                continue;
            for (int id = 1; id <= 3; id++)
                if (w->m[id].up && w->m[id].pending.n)
                    sim_persist(w, id);
            sim_tick(w, 0);
        }
        assert_true(behind_acked_epoch(w));
        uint32_t discovery = w->m[g_behind].z->discovery_limit_ticks;
        int ticks = ticks_following_while_held(w, l, progress, 100);
        print_message("%s bytes: the member left its leader after %d ticks (discovery bound %u, "
                      "initLimit 40)\n", progress ? "with" : "without", ticks, discovery);
        if (progress) {
            assert_true(ticks >= 38 && ticks <= 42); /* initLimit, not discovery's bound */
        } else {
            assert_true(ticks <= (int)discovery + 2);
        }
        assert_null(sim_violation(w));
        sim_world_free(w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_member_behind_catches_up_with_its_leader_in_a_few_ticks),
        cmocka_unit_test(a_new_leader_that_needs_the_member_behind_is_established_in_a_few_ticks),
        cmocka_unit_test(a_follower_serves_only_once_its_leader_is_established),
        cmocka_unit_test(a_learner_fetching_its_leaders_snapshot_waits_up_to_init_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
