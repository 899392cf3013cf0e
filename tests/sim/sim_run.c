/* The randomised run of the simulator: chaos, then healing and the liveness and failover checks (sim_internal.h). */
#include "sim_internal.h"

/* ---- the randomised run ----------------------------------------------- */

static int count_up(const struct sim_world *w)
{
    int n = 0;
    for (int i = 1; i <= slots(w); i++)
        n += w->m[i].up;
    return n;
}

static int established_leader(struct sim_world *w)
{
    for (int i = 1; i <= slots(w); i++) {
        if (!w->m[i].up)
            continue;
        struct zab_status s;
        zab_status(w->m[i].z, &s);
        if (s.role == ZAB_LEADING && s.phase == ZAB_PHASE_BROADCAST)
            return i;
    }
    return 0;
}

static int count_voters_up(const struct sim_world *w)
{
    int n = 0;
    for (int i = 1; i <= voter_count(w); i++)
        n += w->m[i].up;
    return n;
}

static struct zab_membership initial_membership(const struct sim_world *w)
{
    struct zab_membership m = {0};
    for (int i = 1; i <= w->o.members; i++) {
        if (is_observer(w, i))
            m.observers[m.n_observers++] = (uint32_t)i;
        else
            m.voters[m.n_voters++] = (uint32_t)i;
    }
    return m;
}

/* Crashing id keeps a quorum of voters up in the newest activated and the
 * last proposed membership (reconfiguration runs). */
static bool can_crash(const struct sim_world *w, int id)
{
    struct zab_membership sets[2];
    int n = 0;
    sets[n] = initial_membership(w);
    for (int i = 0; i < w->n_versions; i++)
        if (w->versions[i].version > sets[n].version)
            sets[n] = w->versions[i];
    n++;
    if (w->has_proposed)
        sets[n++] = w->proposed;
    for (int k = 0; k < n; k++) {
        uint32_t up = 0;
        for (uint32_t i = 0; i < sets[k].n_voters; i++) {
            uint32_t v = sets[k].voters[i];
            up += v != (uint32_t)id && w->m[v].up;
        }
        if (up < sets[k].n_voters / 2 + 1)
            return false;
    }
    return true;
}

/* A random reconfiguration on the established leader: add a member (idle,
 * or a joiner not yet named), remove one (the leader too), or switch one
 * between voter and observer.  Voters stay within 3..5. */
static void random_reconfig(struct sim_world *w, int leader)
{
    struct zab_status st;
    zab_status(w->m[leader].z, &st);
    if (st.reconfig_pending)
        return;
    struct zab_membership next = st.config;
    int op = (int)sim_range(w, 4);
    if (op == 3) {
        /* Bulk: keep one voter, make two others voters (observers, joiners
         * or idle ids), drop every other voter.  Old and new quorums may
         * then be disjoint but for the kept one: only the double quorum
         * keeps the committed history. */
        uint32_t kept = next.voters[sim_range(w, next.n_voters)];
        uint32_t chosen[2];
        int n_chosen = 0;
        for (int i = 1; i <= slots(w) && n_chosen < 2; i++) {
            if (listed(next.voters, next.n_voters, (uint32_t)i))
                continue;
            bool observer = listed(next.observers, next.n_observers, (uint32_t)i);
            if (!observer && !w->m[i].idle && !w->m[i].joining && !w->m[i].removed)
                continue;
            chosen[n_chosen++] = (uint32_t)i;
        }
        if (n_chosen < 2)
            return;
        for (int k = 0; k < 2; k++) {
            if (w->m[chosen[k]].removed)
                retire(w, &w->m[chosen[k]]);
            if (w->m[chosen[k]].idle && sim_join(w, (int)chosen[k], leader) < 0)
                return;
        }
        struct zab_membership bulk = {.n_voters = 3, .voters = {kept, chosen[0], chosen[1]}};
        for (uint32_t i = 0; i < next.n_observers; i++)
            if (next.observers[i] != chosen[0] && next.observers[i] != chosen[1])
                bulk.observers[bulk.n_observers++] = next.observers[i];
        next = bulk;
    } else if (op == 0) {
        int id = 0;
        for (int i = 1; i <= slots(w) && !id; i++)
            if (!w->m[i].idle && w->m[i].joining && !listed(next.voters, next.n_voters, (uint32_t)i) &&
                !listed(next.observers, next.n_observers, (uint32_t)i))
                id = i; /* a joiner whose addition did not happen */
        for (int i = 1; i <= slots(w) && !id; i++)
            if (w->m[i].idle || w->m[i].removed)
                id = i;
        if (!id)
            return;
        if (w->m[id].removed)
            retire(w, &w->m[id]);
        if (w->m[id].idle && sim_join(w, id, leader) < 0)
            return;
        if (next.n_voters < 5 && sim_chance(w, 600))
            next.voters[next.n_voters++] = (uint32_t)id;
        else
            next.observers[next.n_observers++] = (uint32_t)id;
    } else {
        uint32_t n_all = next.n_voters + next.n_observers;
        uint32_t pick = (uint32_t)sim_range(w, n_all);
        bool voter = pick < next.n_voters;
        uint32_t id = voter ? next.voters[pick] : next.observers[pick - next.n_voters];
        if (voter && next.n_voters <= 3)
            return;
        if (!voter && op == 2 && next.n_voters >= 5)
            return;
        uint32_t *list = voter ? next.voters : next.observers;
        uint32_t *count = voter ? &next.n_voters : &next.n_observers;
        uint32_t at = voter ? pick : pick - next.n_voters;
        memmove(list + at, list + at + 1, (*count - at - 1) * sizeof *list);
        (*count)--;
        if (op == 2) {
            if (voter)
                next.observers[next.n_observers++] = id;
            else
                next.voters[next.n_voters++] = id;
        }
    }
    sim_propose_config(w, leader, next.voters, (int)next.n_voters, next.observers, (int)next.n_observers);
}

void chaos(struct sim_world *w)
{
    if (w->o.reconfig) {
        /* Crash/restart by the memberships in force; the rest as below. */
        if (sim_chance(w, 10)) {
            int id = 1 + (int)sim_range(w, (uint64_t)slots(w));
            if (can_crash(w, id))
                sim_crash(w, id);
        }
        if (sim_chance(w, 2))
            for (int i = 1; i <= slots(w); i++)
                sim_crash(w, i);
        for (int i = 1; i <= slots(w); i++)
            if (!w->m[i].up && sim_chance(w, 60))
                sim_restart(w, i);
        int leader = established_leader(w);
        if (leader && sim_chance(w, 10))
            random_reconfig(w, leader);
    }
    int n = w->o.reconfig ? slots(w) : w->o.members, quorum = voter_count(w) / 2 + 1;
    /* Crash a member, keeping a quorum of voters up (observers do not count;
     * with voters_down there is no quorum to keep). */
    if (!w->o.reconfig && sim_chance(w, 10) && (count_voters_up(w) > quorum || w->o.observers)) {
        int id = 1 + (int)sim_range(w, (uint64_t)n);
        if (is_observer(w, id) || count_voters_up(w) > quorum || w->voters_lost)
            sim_crash(w, id);
    }
    if (!w->o.reconfig && sim_chance(w, 2)) { /* everyone at once: only durable state survives */
        for (int i = 1; i <= n; i++)
            sim_crash(w, i);
    }
    for (int i = 1; i <= n && !w->o.reconfig; i++)
        if (!w->m[i].up && sim_chance(w, 60))
            sim_restart(w, i);
    if (count_up(w) <= w->o.voters_down) /* sim_restart skips those that stay down */
        for (int i = 1; i <= n; i++)
            sim_restart(w, i);
    bool partitioned = false;
    for (int i = 1; i <= n; i++)
        partitioned |= w->group[i] != 0;
    if (!partitioned && sim_chance(w, 10)) {
        int group[SIM_MEMBERS_MAX + 1] = {0};
        for (int i = 1; i <= n; i++)
            group[i] = (int)sim_range(w, 2);
        sim_partition(w, group);
    } else if (partitioned && sim_chance(w, 50)) {
        sim_heal(w);
    }
    /* the client */
    int leader = established_leader(w);
    if (leader && sim_chance(w, 400)) {
        char data[32];
        snprintf(data, sizeof data, "c%" PRIu64, ++w->client_counter);
        sim_propose(w, leader, data);
    }
}

/* Runs every event due up to time `until`. */
static void run_until(struct sim_world *w, uint64_t until, bool with_chaos)
{
    while (w->now < until && !w->violation[0]) {
        w->now++;
        while (w->n_net && w->net[0].at <= w->now) {
            struct sim_msg sm = w->net[0];
            net_remove_at(w, 0);
            deliver(w, &sm);
            check_leaders(w);
        }
        for (int i = 1; i <= slots(w); i++) {
            struct sim_member *m = &w->m[i];
            if (m->up && m->pending.n && m->pending.items[0].done_at <= w->now) {
                complete_writes(w, m, w->now);
                check_leaders(w);
            }
            if (m->up && w->now % SIM_TICK_UNITS == (uint64_t)i % SIM_TICK_UNITS) {
                zab_tick(m->z);
                drive(w, m);
                check_leaders(w);
            }
        }
        if (with_chaos && w->now % SIM_TICK_UNITS == 0)
            chaos(w);
    }
}

/* Voters 1..voters_down go down for good.  If no quorum of voters is left,
 * any commit from now on has an entry durable on a downed voter, and any
 * established leader an epoch a downed voter accepted: bound both. */
static void lose_voters(struct sim_world *w)
{
    trace(w, "voters 1..%d down for good", w->o.voters_down);
    for (int i = 1; i <= w->o.voters_down; i++)
        sim_crash(w, i);
    w->quorum_gone = voter_count(w) - w->o.voters_down < voter_count(w) / 2 + 1;
    for (int i = 1; i <= w->o.voters_down; i++) {
        struct sim_member *m = &w->m[i];
        uint64_t last = m->durable.n ? m->durable.items[m->durable.n - 1].zxid : m->snapshot_zxid;
        if (last > w->bound_zxid)
            w->bound_zxid = last;
        if (m->accepted_epoch > w->bound_epoch)
            w->bound_epoch = m->accepted_epoch;
    }
    w->voters_lost = true;
}

/* Members of the leader's active membership, and how many of its voters
 * applied zxid (0 when there is no established leader). */
static int applied_by(struct sim_world *w, int leader, uint64_t zxid, bool *all)
{
    struct zab_status st;
    zab_status(w->m[leader].z, &st);
    int voters = 0;
    *all = true;
    for (uint32_t i = 0; i < st.config.n_voters; i++) {
        struct sim_member *m = &w->m[st.config.voters[i]];
        bool has = m->up && m->applied_zxid >= zxid;
        voters += has;
        *all &= has;
    }
    for (uint32_t i = 0; i < st.config.n_observers; i++) {
        struct sim_member *m = &w->m[st.config.observers[i]];
        *all &= m->up && m->applied_zxid >= zxid;
    }
    return voters;
}

/* One failover probe: crash the established leader, restart it 0..syncLimit
 * ticks later, and time the way back (see sim_options.failover_probes). */
static void failover_probe(struct sim_world *w, int k)
{
    int leader = established_leader(w);
    if (!leader) {
        w->liveness_failure = true;
        violate(w, "failover probe %d: no established leader to crash", k);
        return;
    }
    int sync_limit = w->o.sync_limit_ticks ? w->o.sync_limit_ticks : 5;
    int bound = w->o.failover_bound_ticks;
    uint64_t restart_ticks = sim_range(w, (uint64_t)sync_limit);
    uint64_t crashed_at = w->now;
    uint64_t restart_at = crashed_at + restart_ticks * SIM_TICK_UNITS;
    int quorum = voter_count(w) / 2 + 1;
    trace(w, "failover probe %d: crash leader %d, restart in %" PRIu64 " ticks", k, leader, restart_ticks);
    sim_crash(w, leader);
    /* A crash that closed links must be noticed at once, so the survivors
     * serve within the bound; a silent one only from silence, or from the
     * restarted leader's votes. */
    bool links_closed = !w->last_crash_silent;
    uint64_t survivors_by = crashed_at + (uint64_t)bound * SIM_TICK_UNITS;
    uint64_t all_by = (restart_at > crashed_at ? restart_at : crashed_at) + (uint64_t)bound * SIM_TICK_UNITS;
    int64_t probe = 0;
    int probe_leader = 0;
    uint32_t probe_epoch = 0;
    bool survivors_served = !links_closed;
    while (!w->violation[0]) {
        if (w->now >= restart_at && !w->m[leader].up)
            sim_restart(w, leader);
        run_until(w, w->now + SIM_TICK_UNITS, false);
        int now_leader = established_leader(w);
        uint32_t now_epoch = 0;
        if (now_leader) {
            struct zab_status st;
            zab_status(w->m[now_leader].z, &st);
            now_epoch = st.epoch;
        }
        /* A probe of an earlier leadership may have been truncated away. */
        if (now_leader && (probe <= 0 || now_leader != probe_leader || now_epoch != probe_epoch)) {
            probe = sim_propose(w, now_leader, "failover-probe");
            probe_leader = now_leader;
            probe_epoch = now_epoch;
        }
        bool all = false;
        int voters = now_leader && probe > 0 ? applied_by(w, now_leader, (uint64_t)probe, &all) : 0;
        if (!survivors_served && voters >= quorum) {
            survivors_served = true;
            uint64_t took = (w->now - crashed_at) / SIM_TICK_UNITS;
            w->failover.survivor_ticks[w->failover.n_survivor++ % SIM_FAILOVER_SAMPLES_MAX] = (uint32_t)took;
            trace(w, "failover probe %d: served again after %" PRIu64 " ticks", k,
                  (w->now - crashed_at) / SIM_TICK_UNITS);
        }
        if (!survivors_served && w->now > survivors_by) {
            w->liveness_failure = true;
            violate(w, "failover probe %d: leader %d crashed (links closed) at tick %" PRIu64
                    ": no leader serving a quorum within %d ticks",
                    k, leader, crashed_at / SIM_TICK_UNITS, bound);
            return;
        }
        if (all && w->m[leader].up && survivors_served) {
            uint64_t from = restart_at > crashed_at ? restart_at : crashed_at;
            uint64_t took = w->now > from ? (w->now - from) / SIM_TICK_UNITS : 0;
            w->failover.all_ticks[w->failover.n_all++ % SIM_FAILOVER_SAMPLES_MAX] = (uint32_t)took;
            return;
        }
        if (w->now > all_by) {
            w->liveness_failure = true;
            violate(w, "failover probe %d: leader %d crashed at tick %" PRIu64 "%s, restarted %" PRIu64
                    " ticks later: not every member applied a probe within %d ticks of the restart",
                    k, leader, crashed_at / SIM_TICK_UNITS, links_closed ? "" : " (silent)", restart_ticks,
                    bound);
            return;
        }
    }
}

int sim_run_random(struct sim_world *w, int steps, int liveness_ticks)
{
    if (w->o.voters_down) {
        run_until(w, (uint64_t)steps / 4 * SIM_TICK_UNITS, true);
        lose_voters(w);
        /* No quorum of voters can be up again: the only demand is safety,
         * checked all along. */
        run_until(w, (uint64_t)steps * SIM_TICK_UNITS, true);
        return w->violation[0] ? -1 : 0;
    }
    run_until(w, (uint64_t)steps * SIM_TICK_UNITS, true);
    if (w->violation[0])
        return -1;
    /* Heal: everyone up, one network, no loss; then demand a leader and an
     * entry committed by everyone within liveness_ticks. */
    trace(w, "heal all: liveness phase");
    sim_heal(w);
    for (int i = 1; i <= slots(w); i++)
        sim_restart(w, i);
    w->o.loss_percent = 0;
    w->o.dup_percent = 0;
    uint64_t deadline = w->now + (uint64_t)liveness_ticks * SIM_TICK_UNITS;
    int64_t probe = 0;
    int probe_leader = 0;
    while (w->now < deadline && !w->violation[0]) {
        run_until(w, w->now + SIM_TICK_UNITS, false);
        int leader = established_leader(w);
        if (!leader)
            continue;
        if (probe <= 0 || leader != probe_leader) {
            probe = sim_propose(w, leader, "probe");
            probe_leader = leader;
            continue;
        }
        bool all = true;
        struct zab_status st;
        zab_status(w->m[leader].z, &st);
        bool member[SIM_MEMBERS_MAX + 1] = {false};
        for (uint32_t i = 0; i < st.config.n_voters; i++)
            member[st.config.voters[i]] = true;
        for (uint32_t i = 0; i < st.config.n_observers; i++)
            member[st.config.observers[i]] = true;
        for (int i = 1; i <= slots(w); i++)
            all &= !member[i] || w->m[i].applied_zxid >= (uint64_t)probe;
        if (all) {
            /* Everything acknowledged must be applied everywhere by now. */
            for (int i = 1; i <= slots(w); i++)
                if (member[i] && w->n_acked && w->m[i].applied_zxid < w->acked[w->n_acked - 1] &&
                    !w->violation[0]) {
                    w->liveness_failure = true;
                    violate(w, "member %d did not apply every acknowledged entry", i);
                }
            for (int k = 0; k < w->o.failover_probes && !w->violation[0]; k++)
                failover_probe(w, k);
            return w->violation[0] ? -1 : 0;
        }
    }
    if (!w->violation[0]) {
        w->liveness_failure = true;
        violate(w, "no leader committing on every member within %d ticks of healing", liveness_ticks);
        if (w->o.trace)
            sim_print_status(w);
    }
    return -1;
}
