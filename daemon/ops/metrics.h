/*
 * znoded's metrics, in the Prometheus text format (version 0.0.4), served
 * over HTTP as ZooKeeper 3.8's PrometheusMetricsProvider serves them:
 *
 *   metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
 *   metricsProvider.httpPort=7000      (default 7000)
 *   metricsProvider.httpHost=0.0.0.0   (default 0.0.0.0)
 *
 * and then GET http://HOST:PORT/metrics (or /).  Where ZooKeeper has a
 * metric its name is used (znode_count, watch_count, readlatency, ...);
 * what ZooKeeper has no name for is prefixed znodefs_.
 *
 * The server hooks (each a single call; a hook that is never called leaves
 * its metrics at zero, it never breaks anything):
 *   metrics_start(srv)                   in server_start, after listening
 *   metrics_stop(srv)                    in server_stop
 *   metrics_observe_request(srv, ...)    once per answered request
 *   metrics_observe_fsync(srv, ...)      once per durable log write
 * Every function is safe to call with a server metrics_start never saw (or
 * after metrics_stop): it does nothing.  All run on the server's loop thread.
 *
 * Per-request cost: a few additions into fixed arrays; nothing is
 * allocated.
 */
#ifndef ZNODED_METRICS_H
#define ZNODED_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;

/* The largest page rendered; past it the scrape fails with 500. */
#define METRICS_TEXT_MAX_BYTES (4u * 1024 * 1024)
/* Upper bounds of the latency histogram's buckets, in microseconds; one
 * more bucket (+Inf) counts everything above the last. */
#define METRICS_LATENCY_BOUNDS_US                                                          \
    {25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
     1000000, 2500000, 5000000, 10000000}
#define METRICS_LATENCY_BOUNDS 18
#define METRICS_LATENCY_BUCKETS (METRICS_LATENCY_BOUNDS + 1)
/* The opcodes counted one by one; any other lands in the "unknown" slot. */
#define METRICS_OP_SLOTS 32
#define METRICS_PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- server hooks ---- */

/*
 * Starts keeping metrics for srv and, when srv->cfg names the Prometheus
 * provider, serves them on metricsProvider.httpHost:httpPort.  Returns 0, or
 * ZN_IO when the port cannot be bound (ZooKeeper refuses to start then too),
 * ZN_BADARGUMENTS for a bad httpHost or ZN_NOMEMORY; the reason is logged.
 * Calling it again for a running srv returns 0 and changes nothing.
 */
int metrics_start(struct server *srv);

/* Closes the HTTP listener and its connections and forgets srv's metrics
 * (the memory goes in the handles' close callbacks: the loop runs on). */
void metrics_stop(struct server *srv);

/* One answered request: its opcode (ZN_OP_*), the error code in its reply
 * header (0 for success), and the time from receipt to reply. */
void metrics_observe_request(struct server *srv, int32_t op, int32_t err, uint64_t latency_us);

/* One durable write of the transaction log (ZooKeeper's fsynctime). */
void metrics_observe_fsync(struct server *srv, uint64_t duration_us);

/* The port the metrics page is served on, or -1 when it is not served. */
int metrics_http_port(const struct server *srv);

/*
 * Renders srv's whole page into a malloc'd buffer (ownership passes to the
 * caller) of *len bytes.  Returns 0, ZN_NOMEMORY, or ZN_TOOBIG past
 * METRICS_TEXT_MAX_BYTES; ZN_BADARGUMENTS when metrics_start never saw srv.
 */
int metrics_render(struct server *srv, char **out, size_t *len);

/* ---- the pure parts (no server, no I/O), for the unit tests ---- */

/* A latency histogram of fixed size: observing never allocates. */
struct metrics_histogram {
    uint64_t buckets[METRICS_LATENCY_BUCKETS]; /* not cumulative */
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
};

void metrics_histogram_observe(struct metrics_histogram *h, uint64_t value_us);
/* The q-quantile (0 <= q <= 1) in microseconds, interpolated linearly within
 * its bucket as Prometheus' histogram_quantile does; 0 when empty; values
 * past the last bound are reported as the largest value seen. */
double metrics_histogram_quantile(const struct metrics_histogram *h, double q);

/* The slot of an opcode, in [0, METRICS_OP_SLOTS); and the opcode of a slot
 * (for the "unknown" slot: INT32_MIN). */
size_t metrics_op_slot(int32_t op);
int32_t metrics_slot_op(size_t slot);

/* A growing text buffer bounded by METRICS_TEXT_MAX_BYTES.  Once an append
 * fails (memory, limit) the buffer refuses further text and keeps the code. */
struct metrics_text {
    char *data;   /* NUL-terminated; owned */
    size_t len, cap;
    int error;    /* 0, ZN_NOMEMORY or ZN_TOOBIG */
};

void metrics_text_printf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_text_free(struct metrics_text *t);

/* "# HELP name help" (help escaped as the format asks) and "# TYPE name type". */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/*
 * One sample line: name{labels} value.  labels is NULL or pairs
 * "k1", "v1", "k2", "v2", ..., NULL; values are escaped (\\, \", \n).
 * Integers are written exactly; doubles as Prometheus reads them
 * (+Inf, -Inf, NaN included).
 */
void metrics_sample_u64(struct metrics_text *t, const char *name, const char *const *labels,
                        uint64_t value);
void metrics_sample_double(struct metrics_text *t, const char *name, const char *const *labels,
                           double value);

/*
 * The per-opcode request families (znodefs_requests_total,
 * znodefs_request_errors_total, znodefs_request_latency_seconds) for the
 * opcodes with at least one request.  by_op and errors_by_op have
 * METRICS_OP_SLOTS entries each.
 */
void metrics_render_requests(struct metrics_text *t, const struct metrics_histogram *by_op,
                             const uint64_t *errors_by_op);

/* A ZooKeeper summary (quantiles 0.5, 0.9, 0.99, _count, _sum) from a
 * histogram, in milliseconds as ZooKeeper reports readlatency and fsynctime. */
void metrics_render_summary_ms(struct metrics_text *t, const char *name, const char *help,
                               const struct metrics_histogram *h);

#endif
