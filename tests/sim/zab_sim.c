/*
 * zab_sim: randomised deterministic simulation of the replication core.
 * Each seed builds a world (sim_world.c), runs chaos (crashes, partitions,
 * loss, duplication, reordering, slow disks) for --steps ticks with the
 * safety invariants checked after every event, then heals and demands
 * progress.  A failing seed prints the command that replays it with a trace.
 *
 *   zab_sim --seeds 300 [--members 3|5] [--steps N] [--first-seed S]
 *   zab_sim --seed S --trace [--members M] [--steps N]
 *   zab_sim --seeds 100 --test-only-quorum 1 --expect-violation
 *       (the core with a broken quorum: succeeds only if a violation is found)
 *   zab_sim --members 5 --observers 2 ...      (3 voters + 2 observers)
 *   zab_sim --members 3 --observers 1 --voters-down 1
 *       (2 voters + 1 observer, voter 1 never up: nothing may commit)
 *   zab_sim --members 4 --reconfig 2 ...
 *       (4 members and 2 idle slots; random reconfigurations on the leader)
 *   ... --test-only-count-observers --expect-violation
 *       (the core counting observers in quorums must be caught)
 */
#include "sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: zab_sim [--seeds N | --seed S] [--first-seed S] [--members 3|5] [--steps N]\n"
                    "               [--liveness-ticks N] [--trace] [--observers K] [--voters-down D] [--reconfig SPARES]\n"
                    "               [--test-only-quorum Q | --test-only-count-observers | --test-only-config-old-quorum]\n"
                    "               [--heartbeat T --sync-limit T --init-limit T] [--silent-crashes PERCENT] [--tcp]\n"
                    "               [--failover-probes N --failover-bound T]\n"
                    "               [--test-only-ignore-link-close | --test-only-stale-state]\n"
                    "               [--expect-violation | --expect-liveness-violation]\n");
    exit(2);
}

/* Failover times in ticks: a histogram, printed as count, p50, p99, max. */
#define HIST_MAX 4096
static uint64_t survivor_hist[HIST_MAX], all_hist[HIST_MAX];

static void print_hist(const char *what, const uint64_t *h)
{
    uint64_t n = 0, seen = 0;
    for (int i = 0; i < HIST_MAX; i++)
        n += h[i];
    int p50 = -1, p99 = -1, max = 0;
    for (int i = 0; i < HIST_MAX; i++) {
        seen += h[i];
        if (h[i])
            max = i;
        if (p50 < 0 && n && seen * 2 >= n)
            p50 = i;
        if (p99 < 0 && n && seen * 100 >= n * 99)
            p99 = i;
    }
    printf("%s: %" PRIu64 " probes, ticks p50 %d, p99 %d, max %d\n", what, n, p50, p99, max);
}

int main(int argc, char **argv)
{
    uint64_t first_seed = 1, seeds = 100;
    bool single = false, trace = false, expect_violation = false;
    /* --expect-liveness-violation: a core broken in a way that only slows it
     * (ignores a closed link, trusts stale votes) must miss a liveness
     * bound; a safety violation is then a real failure. */
    bool expect_liveness = false;
    int members = 3, steps = 300, liveness = 200, observers = 0, voters_down = 0, spares = 0;
    bool reconfig = false, config_old_quorum = false;
    uint32_t quorum_override = 0;
    bool count_observers = false;
    int heartbeat = 0, sync_limit = 0, init_limit = 0, silent_crashes = 0, failover_probes = 0;
    int failover_bound = 0;
    bool ignore_link_close = false, stale_state = false, tcp = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seeds") && v)
            seeds = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--seed") && v)
            first_seed = strtoull(v, NULL, 0), seeds = 1, single = true, i++;
        else if (!strcmp(a, "--first-seed") && v)
            first_seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--members") && v)
            members = atoi(v), i++;
        else if (!strcmp(a, "--steps") && v)
            steps = atoi(v), i++;
        else if (!strcmp(a, "--liveness-ticks") && v)
            liveness = atoi(v), i++;
        else if (!strcmp(a, "--test-only-quorum") && v)
            quorum_override = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--observers") && v)
            observers = atoi(v), i++;
        else if (!strcmp(a, "--voters-down") && v)
            voters_down = atoi(v), i++;
        else if (!strcmp(a, "--reconfig") && v)
            reconfig = true, spares = atoi(v), i++;
        else if (!strcmp(a, "--test-only-config-old-quorum"))
            config_old_quorum = true;
        else if (!strcmp(a, "--test-only-count-observers"))
            count_observers = true;
        else if (!strcmp(a, "--heartbeat") && v)
            heartbeat = atoi(v), i++;
        else if (!strcmp(a, "--sync-limit") && v)
            sync_limit = atoi(v), i++;
        else if (!strcmp(a, "--init-limit") && v)
            init_limit = atoi(v), i++;
        else if (!strcmp(a, "--silent-crashes") && v)
            silent_crashes = atoi(v), i++;
        else if (!strcmp(a, "--failover-probes") && v)
            failover_probes = atoi(v), i++;
        else if (!strcmp(a, "--failover-bound") && v)
            failover_bound = atoi(v), i++;
        else if (!strcmp(a, "--test-only-ignore-link-close"))
            ignore_link_close = true;
        else if (!strcmp(a, "--test-only-stale-state"))
            stale_state = true;
        else if (!strcmp(a, "--tcp"))
            tcp = true;
        else if (!strcmp(a, "--trace"))
            trace = true;
        else if (!strcmp(a, "--expect-violation"))
            expect_violation = true;
        else if (!strcmp(a, "--expect-liveness-violation"))
            expect_violation = expect_liveness = true;
        else
            usage();
    }
    if (members < 1 || members > SIM_MEMBERS_MAX || steps < 1 || seeds < 1 || observers < 0 ||
        observers >= members || voters_down < 0 || voters_down >= members - observers || spares < 0 ||
        members + spares > SIM_MEMBERS_MAX || (reconfig && voters_down) || heartbeat < 0 ||
        sync_limit < 0 || init_limit < 0 || silent_crashes < 0 || silent_crashes > 100 ||
        failover_probes < 0 || (failover_probes && failover_bound < 1) || (failover_probes && voters_down))
        usage();
    char flags[384];
    snprintf(flags, sizeof flags, "%s%s%s", quorum_override ? " --test-only-quorum 1" : "",
             count_observers ? " --test-only-count-observers" : "",
             config_old_quorum ? " --test-only-config-old-quorum" : "");
    if (observers || voters_down) {
        size_t len = strlen(flags);
        snprintf(flags + len, sizeof flags - len, " --observers %d --voters-down %d", observers, voters_down);
    }
    if (reconfig) {
        size_t len = strlen(flags);
        snprintf(flags + len, sizeof flags - len, " --reconfig %d", spares);
    }
    if (heartbeat || sync_limit || init_limit || silent_crashes || failover_probes || tcp) {
        size_t len = strlen(flags);
        snprintf(flags + len, sizeof flags - len,
                 " --heartbeat %d --sync-limit %d --init-limit %d --silent-crashes %d"
                 " --failover-probes %d --failover-bound %d%s%s%s",
                 heartbeat, sync_limit, init_limit, silent_crashes, failover_probes, failover_bound,
                 tcp ? " --tcp" : "",
                 ignore_link_close ? " --test-only-ignore-link-close" : "",
                 stale_state ? " --test-only-stale-state" : "");
    }
    uint64_t failed = 0, passed = 0;
    for (uint64_t s = first_seed; s < first_seed + seeds; s++) {
        struct sim_options o = {
            .seed = s,
            .members = members,
            .trace = trace,
            .out = stdout,
            .quorum_override = quorum_override,
            .loss_percent = tcp ? 0 : 5,
            .dup_percent = tcp ? 0 : 3,
            .fifo_links = tcp,
            .delay_max_units = 25,
            .disk_latency_max_units = 15,
            .compact_every = 20,
            .observers = observers,
            .count_observers = count_observers,
            .voters_down = voters_down,
            .spares = spares,
            .reconfig = reconfig,
            .config_old_quorum = config_old_quorum,
            .heartbeat_ticks = heartbeat,
            .sync_limit_ticks = sync_limit,
            .init_limit_ticks = init_limit,
            .ignore_link_close = ignore_link_close,
            .stale_state = stale_state,
            .silent_crash_percent = silent_crashes,
            .failover_probes = failover_probes,
            .failover_bound_ticks = failover_bound,
        };
        struct sim_world *w = sim_world_new(&o);
        int rc = sim_violation(w) ? -1 : sim_run_random(w, steps, liveness);
        if (rc < 0 && expect_liveness && !sim_violation_is_liveness(w)) {
            printf("seed %" PRIu64 " FAILED a safety check: %s\n  replay: %s --seed %" PRIu64
                   " --members %d --steps %d%s --trace\n",
                   s, sim_violation(w), argv[0], s, members, steps, flags);
            sim_world_free(w);
            return 1;
        }
        if (rc < 0 && expect_violation && !expect_liveness && !single && sim_violation_is_liveness(w)) {
            /* A broken core must be caught by a safety invariant: a run that
             * merely stalls proves nothing about the checks. */
            printf("seed %" PRIu64 ": liveness only (%s), not counted\n", s, sim_violation(w));
            rc = 0;
        }
        if (rc < 0) {
            failed++;
            if (!expect_violation || single)
                printf("seed %" PRIu64 " FAILED: %s\n  replay: %s --seed %" PRIu64 " --members %d --steps %d%s --trace\n", s,
                       sim_violation(w), argv[0], s, members, steps, flags);
            else
                printf("seed %" PRIu64 ": violation found as expected: %s\n", s, sim_violation(w));
        } else {
            passed++;
        }
        const struct sim_failover_stats *fs = sim_failover(w);
        for (uint32_t i = 0; i < fs->n_survivor && i < SIM_FAILOVER_SAMPLES_MAX; i++)
            survivor_hist[fs->survivor_ticks[i] < HIST_MAX ? fs->survivor_ticks[i] : HIST_MAX - 1]++;
        for (uint32_t i = 0; i < fs->n_all && i < SIM_FAILOVER_SAMPLES_MAX; i++)
            all_hist[fs->all_ticks[i] < HIST_MAX ? fs->all_ticks[i] : HIST_MAX - 1]++;
        sim_world_free(w);
        if (expect_violation && failed)
            break;
    }
    if (failover_probes) {
        print_hist("failover, crash with links closed -> a quorum serves", survivor_hist);
        print_hist("failover, restart (or crash) -> every member serves", all_hist);
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    if (expect_violation) {
        if (!failed) {
            printf("expected the broken core to violate an invariant within %" PRIu64 " seeds: it did not\n", seeds);
            return 1;
        }
        return 0;
    }
    return failed ? 1 : 0;
}
