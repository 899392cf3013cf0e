/*
 * What the files of the simulator's world share (sim.h is its face to the
 * drivers): sim_world.c the members, their disks and network and the
 * driver of each core; sim_check.c the invariants checked after every
 * event; sim_events.c the events a script or a run makes happen;
 * sim_run.c the randomised run.
 */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SIM_NEVER UINT64_MAX

struct sim_entry {
    uint64_t zxid;
    uint32_t size;
    uint8_t *data;
    uint8_t kind;
    uint64_t done_at; /* pending writes: when the disk reports it durable */
};

struct sim_vec {
    struct sim_entry *items;
    size_t n, cap;
};

struct sim_member {
    int id;
    struct zab *z;
    bool up;
    bool idle;              /* not in the ensemble: never started, or wiped to be added again */
    bool removed;           /* a membership removed it: it only answers votes now */
    bool joining;           /* started as a joiner: join_membership is its static configuration */
    struct zab_membership join_membership;
    bool has_membership;    /* on disk: the last ready.config */
    struct zab_membership membership;
    uint32_t incarnation;
    /* the disk: what survives a crash */
    uint32_t accepted_epoch, accepted_leader, current_epoch;
    uint64_t snapshot_zxid, snapshot_digest;
    struct sim_vec durable;  /* log entries after the snapshot, durable */
    struct sim_vec pending;  /* appended, not yet durable: lost on crash */
    /* the applied state (memory) */
    uint64_t applied_zxid, digest;
    int applies_since_snapshot;
    struct zab_status last_status;
    bool dirty;             /* driven since check_leaders last looked: its status may have changed */
};

struct sim_msg {
    uint64_t at, seq;
    int from, to;
    uint8_t *bytes;
    size_t len;
};

/* zxid -> (previous applied zxid, digest after) of the one committed history */
struct sim_chain_slot {
    uint64_t zxid, prev, digest;
    bool used;
};

struct sim_world {
    struct sim_options o;
    uint64_t prng;
    uint64_t now;
    uint64_t seq;
    struct sim_member m[SIM_MEMBERS_MAX + 1];
    int group[SIM_MEMBERS_MAX + 1];
    /* network: a binary heap on (at, seq) */
    struct sim_msg *net;
    size_t n_net, cap_net;
    /* invariants */
    struct sim_chain_slot *chain;
    size_t chain_cap, chain_used;
    uint64_t *acked;  /* sorted */
    size_t n_acked, cap_acked;
    uint32_t *epoch_leader; /* epoch -> established leader id */
    size_t cap_epochs;
    char violation[512];
    /* reconfiguration: every activated version's lists, to check they agree */
    struct zab_membership versions[64];
    int n_versions;
    struct zab_membership proposed; /* the last membership proposed (crash rule) */
    bool has_proposed;
    bool liveness_failure;     /* the violation is a liveness one (no progress after healing) */
    bool voters_lost;          /* voters_down went down for good */
    bool quorum_gone;          /* and that left no quorum of voters */
    uint64_t bound_zxid;       /* then: the highest zxid that can have been committed */
    uint32_t bound_epoch;      /* then: the highest epoch that can be established */
    uint64_t client_counter;
    uint64_t stats_delivered, stats_commits;
    bool last_crash_silent;
    uint64_t link_last_at[SIM_MEMBERS_MAX + 1][SIM_MEMBERS_MAX + 1]; /* fifo_links */
    struct sim_failover_stats failover;
};

void *xrealloc(void *p, size_t n);
void trace(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *zxid_str(char *buf, uint64_t zxid);
void format_message(const struct zab_message *m, char *out, size_t cap);
void vec_push(struct sim_vec *v, struct sim_entry e);
void net_remove_at(struct sim_world *w, size_t i);
bool listed(const uint32_t *ids, uint32_t n, uint32_t id);
void member_start(struct sim_world *w, struct sim_member *m);
void retire(struct sim_world *w, struct sim_member *m);
void drive(struct sim_world *w, struct sim_member *m);
void violate(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check_state_at(struct sim_world *w, int id, uint64_t zxid, uint64_t digest, const char *how);
void check_apply(struct sim_world *w, int id, uint64_t prev, uint64_t zxid, uint64_t digest);
void record_acked(struct sim_world *w, uint64_t zxid);
void check_leaders(struct sim_world *w);
void deliver(struct sim_world *w, struct sim_msg *sm);
void complete_writes(struct sim_world *w, struct sim_member *m, uint64_t upto_time);
void chaos(struct sim_world *w);
uint64_t sim_rand(struct sim_world *w);
void vec_truncate(struct sim_vec *v, uint64_t zxid);

static inline int voter_count(const struct sim_world *w) { return w->o.members - w->o.observers; }
static inline int slots(const struct sim_world *w) { return w->o.members + w->o.spares; }
static inline bool is_observer(const struct sim_world *w, int id) { return id > voter_count(w); }
static inline bool stays_down(const struct sim_world *w, int id) { return w->voters_lost && id <= w->o.voters_down; }
static inline uint64_t sim_range(struct sim_world *w, uint64_t n) { return n ? sim_rand(w) % n : 0; }
static inline bool sim_chance(struct sim_world *w, int percent_x10) { return (int)sim_range(w, 1000) < percent_x10; }
static inline void vec_clear(struct sim_vec *v) { vec_truncate(v, 0); }
static inline bool connected(const struct sim_world *w, int a, int b) { return w->group[a] == w->group[b]; }

#endif
