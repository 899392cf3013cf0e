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
 */
#include "sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: zab_sim [--seeds N | --seed S] [--first-seed S] [--members 3|5] [--steps N]\n"
                    "               [--liveness-ticks N] [--trace] [--test-only-quorum Q --expect-violation]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t first_seed = 1, seeds = 100;
    bool single = false, trace = false, expect_violation = false;
    int members = 3, steps = 300, liveness = 200;
    uint32_t quorum_override = 0;
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
        else if (!strcmp(a, "--trace"))
            trace = true;
        else if (!strcmp(a, "--expect-violation"))
            expect_violation = true;
        else
            usage();
    }
    if (members < 1 || members > SIM_MEMBERS_MAX || steps < 1 || seeds < 1)
        usage();
    uint64_t failed = 0, passed = 0;
    for (uint64_t s = first_seed; s < first_seed + seeds; s++) {
        struct sim_options o = {
            .seed = s,
            .members = members,
            .trace = trace,
            .out = stdout,
            .quorum_override = quorum_override,
            .loss_percent = 5,
            .dup_percent = 3,
            .delay_max_units = 25,
            .disk_latency_max_units = 15,
            .compact_every = 20,
        };
        struct sim_world *w = sim_world_new(&o);
        int rc = sim_violation(w) ? -1 : sim_run_random(w, steps, liveness);
        if (rc < 0) {
            failed++;
            if (!expect_violation || single)
                printf("seed %" PRIu64 " FAILED: %s\n  replay: %s --seed %" PRIu64 " --members %d --steps %d%s --trace\n", s,
                       sim_violation(w), argv[0], s, members, steps,
                       quorum_override ? " --test-only-quorum 1" : "");
            else
                printf("seed %" PRIu64 ": violation found as expected: %s\n", s, sim_violation(w));
        } else {
            passed++;
        }
        sim_world_free(w);
        if (expect_violation && failed)
            break;
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
