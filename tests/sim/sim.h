/*
 * The simulated world of the zab simulator: members running the real core
 * (replication/core), a fake network, fake disks, a client, and the safety
 * invariants.  Used by zab_sim (randomised runs from a seed) and
 * zab_sim_script (scenario scripts with expected traces).
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "zab.h"

#define SIM_MEMBERS_MAX 7
#define SIM_TICK_UNITS 10 /* simulated time units per tick */

struct sim_options {
    uint64_t seed;
    int members;
    bool manual;             /* scripts: no random delays; messages wait for "deliver" */
    bool trace;
    FILE *out;               /* trace destination */
    uint32_t quorum_override; /* TEST ONLY: passed to the core's test_only_quorum_override */
    int loss_percent;
    int dup_percent;
    int delay_max_units;
    int disk_latency_max_units;
    int compact_every;       /* applies between snapshots+compaction (0: never) */
    int observers;           /* the last `observers` of the members are observers (non-voting) */
    bool count_observers;    /* TEST ONLY: passed to the core's test_only_count_observers */
    int voters_down;         /* voters 1..voters_down stay down for the whole run: with no
                                quorum of voters left, nothing may be established or committed */
    int spares;              /* ids members+1..members+spares start idle: not in the ensemble */
    bool reconfig;           /* random reconfigurations (add, remove, switch role, bulk) */
    bool config_old_quorum;  /* TEST ONLY: passed to the core's test_only_config_on_old_quorum */
    /* The core's timing, in ticks (0: heartbeat 2, syncLimit 5, initLimit 10,
     * the compressed scale of the safety runs).  The failover runs use a
     * daemon-like scale, where a message delay is small beside a heartbeat. */
    int heartbeat_ticks;
    int sync_limit_ticks;
    /* Links as TCP gives them to the daemon: FIFO per pair of members, no
     * stragglers (loss and duplication are set apart, and 0 for TCP). */
    bool fifo_links;
    int init_limit_ticks;
    bool ignore_link_close;  /* TEST ONLY: passed to the core's test_only_ignore_link_close */
    bool stale_state;        /* TEST ONLY: passed to the core's test_only_lead_on_stale_votes */
    /* Random runs: a crash closes the crashed member's links (its peers'
     * drivers see EOF one message delay later, as after kill -9), except
     * this share of crashes, silent ones (a host that lost power): peers
     * learn of those only from silence. */
    int silent_crash_percent;
    /* After the liveness phase: this many times, crash the established
     * leader and restart it 0..syncLimit ticks later, and require (1) a
     * leader whose probe a quorum applied within failover_bound_ticks of
     * a crash that closed links, and (2) every member, the restarted one
     * included, applying a probe within failover_bound_ticks of the
     * restart (or of the crash, whichever is later). */
    int failover_probes;
    int failover_bound_ticks;
};

struct sim_world;

struct sim_world *sim_world_new(const struct sim_options *options);
void sim_world_free(struct sim_world *w);

/* A violated invariant, or NULL. */
const char *sim_violation(const struct sim_world *w);
/* The violation is one of liveness (no progress after healing), not of safety. */
bool sim_violation_is_liveness(const struct sim_world *w);

/* What the failover probes of one run measured, in ticks: from a crash that
 * closed links until a quorum applied a new leader's probe, and from the
 * restart (or the crash) until every member applied one. */
#define SIM_FAILOVER_SAMPLES_MAX 64
struct sim_failover_stats {
    uint32_t survivor_ticks[SIM_FAILOVER_SAMPLES_MAX];
    uint32_t n_survivor;
    uint32_t all_ticks[SIM_FAILOVER_SAMPLES_MAX];
    uint32_t n_all;
};
const struct sim_failover_stats *sim_failover(const struct sim_world *w);

/* Randomised run: chaos for steps ticks, then heal and demand progress
 * within liveness_ticks.  Returns 0 or -1 (sim_violation says why). */
int sim_run_random(struct sim_world *w, int steps, int liveness_ticks);

/* Manual control, for scripts.  Member ids are 1..members. */
void sim_tick(struct sim_world *w, int id);             /* one tick of one member (0: all) */
int sim_deliver(struct sim_world *w, int from, int to, int max); /* pending messages, FIFO; 0 = any */
int sim_drop(struct sim_world *w, int from, int to);   /* drops pending messages */
void sim_persist(struct sim_world *w, int id);          /* completes pending disk writes (0: all) */
void sim_crash(struct sim_world *w, int id);
void sim_restart(struct sim_world *w, int id);
void sim_partition(struct sim_world *w, const int *group_of_member); /* index 1..members */
void sim_heal(struct sim_world *w);
/* Member id's driver reports its link to peer up or down (zab_peer_connected /
 * zab_peer_disconnected): scripts say when links close, random runs close a
 * crashed member's links themselves. */
void sim_link(struct sim_world *w, int id, int peer, bool up);
int64_t sim_propose(struct sim_world *w, int id, const char *data);
int sim_persist_fail(struct sim_world *w, int id);    /* the disk fails what is pending */
void sim_stabilize(struct sim_world *w, int max_rounds);
void sim_print_status(struct sim_world *w);
void sim_set_output(struct sim_world *w, FILE *out);
void sim_set_compaction(struct sim_world *w, int applies);
void sim_print_log(struct sim_world *w, int id);
/* Starts the idle member id as a joiner that knows the membership of member
 * `from` (fresh disk).  Returns 0 or -1. */
int sim_join(struct sim_world *w, int id, int from);
/* zab_propose_config on member id; prints the outcome in manual mode. */
int64_t sim_propose_config(struct sim_world *w, int id, const uint32_t *voters, int n_voters,
                           const uint32_t *observers, int n_observers);

#endif
