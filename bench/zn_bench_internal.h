/*
 * What zn_bench's driver (zn_bench.c: the command line, the threads, the
 * closed loop, the histogram and the report) and its workloads
 * (zn_bench_workloads.c: the nodes each one needs first and the requests each
 * one issues) share: the run's configuration, its threads and sessions, and
 * the calls each side makes into the other.  Invariant: a thread's state is
 * touched only from its own loop.
 */
#ifndef ZN_BENCH_INTERNAL_H
#define ZN_BENCH_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "znode/client.h"

/* ---- limits ---- */
#define ZB_MAX_THREADS 16
#define ZB_MAX_SESSIONS 4096
#define ZB_MAX_OUTSTANDING 4096
#define ZB_MAX_VALUE_BYTES (1024 * 1024 - 1024)
#define ZB_MAX_PATH_BYTES 256
/* A session directory: the prefix (at most 128 bytes) and "/c/RUNID-sN". */
#define ZB_MAX_DIR_BYTES 200
#define ZB_MAX_MULTI_OPS 64
#define ZB_MAX_KEYS 10000000
/* Outstanding creates while populating nodes before a run. */
#define ZB_SETUP_OUTSTANDING 512
/* Pacing granularity of --rate. */
#define ZB_RATE_TICK_MS 1
/* How long sessions may take to connect before the run is abandoned. */
#define ZB_CONNECT_TIMEOUT_MS 30000

/* Histogram: 2^ZB_HIST_SUB_BITS sub-buckets per power of two of nanoseconds. */
#define ZB_HIST_SUB_BITS 7
#define ZB_HIST_SUB (1u << ZB_HIST_SUB_BITS)
#define ZB_HIST_POWERS 44 /* up to 2^44 ns, about 4.9 hours */
#define ZB_HIST_BUCKETS (ZB_HIST_POWERS * ZB_HIST_SUB)

enum bench_workload {
    WL_GET,
    WL_SET,
    WL_CREATE,
    WL_DELETE,
    WL_MIXED,
    WL_MULTI,
    WL_WATCH,
    WL_SESSION,
    WL_EXISTS,
    WL_LS,
};

struct bench_config {
    const char *server;
    enum bench_workload workload;
    int threads;
    int sessions;
    int outstanding;
    double duration_s;
    double warmup_s;
    int64_t ops; /* > 0: run this many operations instead of a duration */
    int value_bytes;
    double read_ratio;
    int keys;
    int multi_ops;
    double rate; /* total ops/s; 0: as fast as possible */
    const char *prefix;
    const char *label;
    const char *path; /* get/set/exists/ls: this one node instead of random keys */
    int session_timeout_ms;
    bool no_setup;
    const char *tls_ca, *tls_cert, *tls_key; /* --tls-*: every session over TLS */
};

struct bench_histogram {
    uint64_t counts[ZB_HIST_BUCKETS];
    uint64_t total;
    uint64_t sum_ns;
    uint64_t max_ns;
};

struct bench_thread;
struct bench_session;

/* One request in flight; preallocated per session, reused from a free list. */
struct bench_request {
    struct bench_session *session;
    struct bench_request *next_free;
    uint64_t start_ns;
};

struct bench_session {
    struct bench_thread *thread;
    struct zn_client *client;
    int index;        /* global session index */
    int in_flight;
    bool connected;
    bool closed;
    uint64_t sequence; /* create/delete: next node number */
    uint64_t delete_limit;
    struct bench_request *slots;
    struct bench_request *free_slots;
    /* watch workload: watchers re-arm with get; the writer sets. */
    bool armed;
};

struct bench_thread {
    const struct bench_config *config;
    int index;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t timer;      /* connect deadline, then warmup, then end of run */
    uv_timer_t rate_timer; /* pacing for --rate */
    struct bench_session *sessions;
    int session_count;
    int connected_count;
    int closed_count;
    bool measuring;
    bool stopping;
    bool failed;
    uint64_t rng;
    double tokens;
    double tokens_per_tick;
    /* ops mode */
    int64_t budget;
    int64_t issued;
    int64_t completed;
    uint64_t measure_start_ns;
    uint64_t measure_end_ns; /* end of the window (timer or last completion) */
    bool finished;
    uint64_t ok_count;
    uint64_t error_count;
    int first_error;
    struct bench_histogram hist;
    /* watch workload (single thread) */
    uint64_t watch_set_ns;
    int watch_pending_events;
    int watch_armed;
    bool watch_set_in_flight;
    /* session workload: slots cycle new -> connected -> close -> closed */
    int session_slots_busy;
};

/* Shared by every thread, written before they start: the bytes every set and
 * create writes, and the run's id (in the names of created nodes). */
extern char *value_buffer;
extern char run_id[32];
/* delete: how many nodes setup made under each session's directory. */
extern int64_t delete_per_session;

static inline uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- the driver (zn_bench.c) ---- */

void bench_client_options(const struct bench_config *c, struct zn_client_options *opt);
void record_completion(struct bench_thread *t, uint64_t start_ns, int rc);
/* The callback of every request issue_one makes. */
void request_done(struct zn_client *client, const struct zn_result *r, void *arg);
void thread_maybe_finish(struct bench_thread *t);

/* ---- the workloads (zn_bench_workloads.c) ---- */

/* Creates the nodes the workload needs (none for session, --path or --no-setup). */
int setup_workload(const struct bench_config *c);
int issue_one(struct bench_session *s, struct bench_request *req);
void watch_start(struct bench_thread *t);
void slot_start(struct bench_session *s);

#endif
