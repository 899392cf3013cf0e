/*
 * znoded's metrics: each server's request counters and latency
 * histograms the request path feeds, the Prometheus text rendering of them
 * and of the server's gauges (read at scrape time, never kept twice), and
 * the HTTP endpoint (httpd.c) that serves the page.
 *
 * Names follow ZooKeeper 3.8's Prometheus provider where it has the metric:
 * the gauges its ZooKeeperServer.registerMetrics registers (znode_count,
 * watch_count, ...), quorum_size, synced_followers, and the summaries of
 * ServerMetrics (readlatency, updatelatency, fsynctime), in milliseconds with
 * quantiles 0.5/0.9/0.99 as its ADVANCED summaries have.  Ours are prefixed
 * znodefs_; their latencies are histograms in seconds, Prometheus' base unit.
 *
 * A server's metrics hang off srv->metrics from metrics_start to
 * metrics_stop; a server without them (NULL) makes every hook do nothing.
 * Everything runs on the loop thread; nothing here locks.
 */
#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "assert.h"
#include "ensemble.h"
#include "httpd.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "watch.h"
#include "znode/errors.h"
#include "znode/proto.h"

#ifndef ZNODED_VERSION
#define ZNODED_VERSION "0.1.0"
#endif
#define METRICS_ZK_VERSION "3.8.4"

static const uint64_t latency_bounds_us[METRICS_LATENCY_BOUNDS] = METRICS_LATENCY_BOUNDS_US;

/* ---- opcodes ---- */

/* One slot per opcode flagged ZN_OPF_METRIC, in the table's order, then one
 * for any other opcode. */
static const struct {
    int32_t op;
    unsigned flags;
} opcodes[] = {
#define SLOT_OP(name, value, str, flags) {ZN_OP_##name, flags},
    ZN_OPCODES(SLOT_OP)
#undef SLOT_OP
};
#define SLOT_COUNT(name, value, str, flags) +(((flags)&ZN_OPF_METRIC) ? 1 : 0)
enum { SLOT_UNKNOWN = 0 ZN_OPCODES(SLOT_COUNT) };
#undef SLOT_COUNT
_Static_assert(SLOT_UNKNOWN + 1 == METRICS_OP_SLOTS, "METRICS_OP_SLOTS must match the ZN_OPF_METRIC opcodes");

size_t metrics_op_slot(int32_t op)
{
    size_t slot = 0;
    for (size_t i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++) {
        if (!(opcodes[i].flags & ZN_OPF_METRIC))
            continue;
        if (opcodes[i].op == op)
            return slot;
        slot++;
    }
    return SLOT_UNKNOWN;
}

int32_t metrics_slot_op(size_t slot)
{
    ZN_ASSERT(slot < METRICS_OP_SLOTS);
    for (size_t i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++)
        if ((opcodes[i].flags & ZN_OPF_METRIC) && slot-- == 0)
            return opcodes[i].op;
    return INT32_MIN;
}

/* ---- histograms ---- */

void metrics_histogram_observe(struct metrics_histogram *h, uint64_t value_us)
{
    size_t b = 0;
    while (b < METRICS_LATENCY_BOUNDS && value_us > latency_bounds_us[b])
        b++;
    h->buckets[b]++;
    h->count++;
    h->sum_us += value_us;
    if (value_us > h->max_us)
        h->max_us = value_us;
}

double metrics_histogram_quantile(const struct metrics_histogram *h, double q)
{
    ZN_ASSERT(q >= 0.0 && q <= 1.0);
    if (h->count == 0)
        return 0.0;
    double rank = q * (double)h->count;
    uint64_t below = 0;
    for (size_t b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        uint64_t in = h->buckets[b];
        if (in == 0 || (double)(below + in) < rank) {
            below += in;
            continue;
        }
        if (b == METRICS_LATENCY_BOUNDS)
            return (double)h->max_us; /* +Inf bucket: the largest value seen is the best bound */
        double lower = b == 0 ? 0.0 : (double)latency_bounds_us[b - 1];
        double upper = (double)latency_bounds_us[b];
        /* no value above the largest seen, whatever the bucket's width */
        if ((double)h->max_us <= lower)
            return (double)h->max_us;
        if ((double)h->max_us < upper)
            upper = (double)h->max_us;
        return lower + (upper - lower) * ((rank - (double)below) / (double)in);
    }
    return (double)h->max_us;
}

/* ---- text ---- */

void metrics_text_printf(struct metrics_text *t, const char *fmt, ...)
{
    if (t->error)
        return;
    for (;;) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->error = ZN_SYSTEMERROR;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        if (t->len + (size_t)n + 1 > METRICS_TEXT_MAX_BYTES) {
            t->error = ZN_TOOBIG;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        if (cap > METRICS_TEXT_MAX_BYTES)
            cap = METRICS_TEXT_MAX_BYTES;
        char *p = realloc(t->data, cap);
        if (!p) {
            t->error = ZN_NOMEMORY;
            return;
        }
        t->data = p;
        t->cap = cap;
    }
}

void metrics_text_free(struct metrics_text *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Appends s escaped: backslash and newline always, the double quote in label values. */
static void text_escaped(struct metrics_text *t, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                        : (quote && *s == '"') ? "\\\"" : NULL;
        if (!esc)
            continue;
        metrics_text_printf(t, "%.*s%s", (int)(s - run), run, esc);
        run = s + 1;
    }
    metrics_text_printf(t, "%s", run);
}

void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
    metrics_text_printf(t, "# HELP %s ", name);
    text_escaped(t, help, false);
    metrics_text_printf(t, "\n# TYPE %s %s\n", name, type);
}

static void sample_name(struct metrics_text *t, const char *name, const char *const *labels)
{
    metrics_text_printf(t, "%s", name);
    if (!labels || !labels[0])
        return;
    metrics_text_printf(t, "{");
    for (size_t i = 0; labels[i]; i += 2) {
        ZN_ASSERT(labels[i + 1]);
        metrics_text_printf(t, "%s%s=\"", i ? "," : "", labels[i]);
        text_escaped(t, labels[i + 1], true);
        metrics_text_printf(t, "\"");
    }
    metrics_text_printf(t, "}");
}

void metrics_sample_u64(struct metrics_text *t, const char *name, const char *const *labels,
                        uint64_t value)
{
    sample_name(t, name, labels);
    metrics_text_printf(t, " %" PRIu64 "\n", value);
}

void metrics_sample_double(struct metrics_text *t, const char *name, const char *const *labels,
                           double value)
{
    sample_name(t, name, labels);
    if (isnan(value))
        metrics_text_printf(t, " NaN\n");
    else if (isinf(value))
        metrics_text_printf(t, " %s\n", value > 0 ? "+Inf" : "-Inf");
    else
        metrics_text_printf(t, " %.10g\n", value);
}

void metrics_render_summary_ms(struct metrics_text *t, const char *name, const char *help,
                               const struct metrics_histogram *h)
{
    static const char *const quantiles[] = {"0.5", "0.9", "0.99"};
    static const double qs[] = {0.5, 0.9, 0.99};
    char series[128];
    metrics_family(t, name, "summary", help);
    for (size_t i = 0; i < 3; i++) {
        const char *labels[] = {"quantile", quantiles[i], NULL};
        metrics_sample_double(t, name, labels, metrics_histogram_quantile(h, qs[i]) / 1000.0);
    }
    snprintf(series, sizeof series, "%s_count", name);
    metrics_sample_u64(t, series, NULL, h->count);
    snprintf(series, sizeof series, "%s_sum", name);
    metrics_sample_double(t, series, NULL, (double)h->sum_us / 1000.0);
}

void metrics_render_requests(struct metrics_text *t, const struct metrics_histogram *by_op,
                             const uint64_t *errors_by_op)
{
    metrics_family(t, "znodefs_requests_total", "counter",
                   "Client requests answered, by opcode");
    for (size_t s = 0; s < METRICS_OP_SLOTS; s++) {
        if (by_op[s].count == 0)
            continue;
        const char *labels[] = {"op", zn_op_name(metrics_slot_op(s)), NULL};
        metrics_sample_u64(t, "znodefs_requests_total", labels, by_op[s].count);
    }
    metrics_family(t, "znodefs_request_errors_total", "counter",
                   "Client requests answered with a non-zero ZooKeeper error code, by opcode");
    for (size_t s = 0; s < METRICS_OP_SLOTS; s++) {
        if (by_op[s].count == 0)
            continue;
        const char *labels[] = {"op", zn_op_name(metrics_slot_op(s)), NULL};
        metrics_sample_u64(t, "znodefs_request_errors_total", labels, errors_by_op[s]);
    }
    metrics_family(t, "znodefs_request_latency_seconds", "histogram",
                   "Time from receiving a request to queueing its reply, by opcode");
    for (size_t s = 0; s < METRICS_OP_SLOTS; s++) {
        const struct metrics_histogram *h = &by_op[s];
        if (h->count == 0)
            continue;
        const char *op = zn_op_name(metrics_slot_op(s));
        uint64_t cumulative = 0;
        for (size_t b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
            char le[32];
            if (b < METRICS_LATENCY_BOUNDS)
                snprintf(le, sizeof le, "%g", (double)latency_bounds_us[b] / 1e6);
            else
                snprintf(le, sizeof le, "+Inf");
            cumulative += h->buckets[b];
            const char *labels[] = {"op", op, "le", le, NULL};
            metrics_sample_u64(t, "znodefs_request_latency_seconds_bucket", labels, cumulative);
        }
        const char *labels[] = {"op", op, NULL};
        metrics_sample_double(t, "znodefs_request_latency_seconds_sum", labels,
                              (double)h->sum_us / 1e6);
        metrics_sample_u64(t, "znodefs_request_latency_seconds_count", labels, h->count);
    }
}

/* ---- the registry ---- */

struct metrics {
    struct server *srv;
    struct httpd *httpd;        /* NULL when the page is not served */
    struct metrics_histogram by_op[METRICS_OP_SLOTS];
    uint64_t errors_by_op[METRICS_OP_SLOTS];
    struct metrics_histogram read_latency;   /* ZooKeeper's readlatency */
    struct metrics_histogram update_latency; /* ZooKeeper's updatelatency */
    struct metrics_histogram fsync_time;     /* ZooKeeper's fsynctime */
};

void metrics_observe_request(struct server *srv, int32_t op, int32_t err, uint64_t latency_us)
{
    struct metrics *m = srv->metrics;
    if (!m)
        return;
    size_t s = metrics_op_slot(op);
    metrics_histogram_observe(&m->by_op[s], latency_us);
    if (err != 0)
        m->errors_by_op[s]++;
    metrics_histogram_observe(zn_op_is_write(op) ? &m->update_latency : &m->read_latency,
                              latency_us);
}

void metrics_observe_fsync(struct server *srv, uint64_t duration_us)
{
    struct metrics *m = srv->metrics;
    if (m)
        metrics_histogram_observe(&m->fsync_time, duration_us);
}

/* ---- the page ---- */

static size_t count_open_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own fd */
}

static void gauge_u64(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
    metrics_family(t, name, "gauge", help);
    metrics_sample_u64(t, name, NULL, v);
}

static void gauge_double(struct metrics_text *t, const char *name, const char *help, double v)
{
    metrics_family(t, name, "gauge", help);
    metrics_sample_double(t, name, NULL, v);
}

static void counter_u64(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
    metrics_family(t, name, "counter", help);
    metrics_sample_u64(t, name, NULL, v);
}

static const char *server_state(const struct server *srv)
{
    return config_standalone(&srv->cfg) ? "standalone" : ensemble_role_name(srv);
}

/* The gauges ZooKeeperServer.registerMetrics registers, read now. */
static void render_zookeeper_gauges(struct metrics_text *t, const struct server *srv)
{
    const struct server_stats *s = &srv->stats;
    double avg = s->latency_count ? (double)s->latency_total_ms / (double)s->latency_count : 0.0;
    gauge_double(t, "avg_latency", "Average request latency (ms)", avg);
    gauge_u64(t, "max_latency", "Largest request latency (ms)", s->latency_max_ms);
    gauge_u64(t, "min_latency", "Smallest request latency (ms)",
              s->latency_count ? s->latency_min_ms : 0);
    gauge_u64(t, "packets_received", "Packets received from clients", s->packets_received);
    gauge_u64(t, "packets_sent", "Packets sent to clients", s->packets_sent);
    gauge_u64(t, "num_alive_connections", "Open client connections", srv->conn_count);
    gauge_u64(t, "outstanding_requests", "Requests received and not yet answered",
              srv->outstanding);
    gauge_u64(t, "uptime", "Time since the server started (ms)",
              server_now_ms() - s->started_ms);
    gauge_u64(t, "znode_count", "Znodes in the tree", srv->tree ? tree_node_count(srv->tree) : 0);
    gauge_u64(t, "watch_count", "Watch registrations",
              srv->watches ? watch_count(srv->watches) : 0);
    gauge_u64(t, "ephemerals_count", "Ephemeral znodes",
              srv->tree ? tree_ephemeral_count(srv->tree) : 0);
    gauge_u64(t, "approximate_data_size", "Bytes of znode data and paths",
              srv->tree ? tree_data_bytes(srv->tree) : 0);
    gauge_u64(t, "global_sessions", "Sessions (all global in znoded)", zn_htable_count(&srv->sessions));
    gauge_u64(t, "local_sessions", "Local sessions (znoded has none)", 0);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    gauge_u64(t, "open_file_descriptor_count", "Open file descriptors", count_open_fds());
    gauge_u64(t, "max_file_descriptor_count", "The file descriptor limit",
              (uint64_t)rl.rlim_cur);
    counter_u64(t, "connection_rejected", "Client connections refused (limits)",
                s->connections_refused);
    if (!config_standalone(&srv->cfg)) {
        int voters = 0;
        for (int i = 0; i < srv->cfg.server_count; i++)
            voters += !srv->cfg.servers[i].observer;
        gauge_u64(t, "quorum_size", "Voting members of the ensemble", (uint64_t)voters);
        if (ensemble_is_leader(srv))
            gauge_u64(t, "synced_followers", "Followers in sync with this leader",
                      (uint64_t)ensemble_synced_followers(srv));
    }
}

static void render_znodefs_gauges(struct metrics_text *t, const struct server *srv)
{
    metrics_family(t, "znodefs_info", "gauge", "Versions: znoded's and ZooKeeper's it speaks");
    const char *info[] = {"version", ZNODED_VERSION, "zookeeper_version", METRICS_ZK_VERSION, NULL};
    metrics_sample_u64(t, "znodefs_info", info, 1);
    static const char *const states[] = {"standalone", "leader", "follower", "observer",
                                         "looking"};
    const char *state = server_state(srv);
    metrics_family(t, "znodefs_server_state", "gauge", "1 for the member's current role");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        const char *labels[] = {"state", states[i], NULL};
        metrics_sample_u64(t, "znodefs_server_state", labels, strcmp(state, states[i]) == 0);
    }
    if (!config_standalone(&srv->cfg)) {
        gauge_u64(t, "znodefs_epoch", "The epoch of the current leadership",
                  ensemble_epoch(srv));
        gauge_u64(t, "znodefs_leader_id", "The id of the current leader (0: none)",
                  ensemble_leader_id(srv));
    }
    gauge_u64(t, "znodefs_last_zxid", "The zxid of the last transaction applied",
              srv->tree ? (uint64_t)tree_last_zxid(srv->tree) : 0);
    counter_u64(t, "znodefs_malformed_packets_total", "Client packets that could not be decoded",
                srv->stats.malformed_packets);
    struct store_stats ss = {0};
    if (srv->store)
        store_stats(srv->store, &ss);
    counter_u64(t, "znodefs_fsync_total", "Durable commits of the log store", ss.fsyncs);
    counter_u64(t, "znodefs_log_batches_total", "Group commits of the log", ss.batches);
    counter_u64(t, "znodefs_log_batches_failed_total", "Group commits of the log that failed",
                ss.batches_failed);
    gauge_u64(t, "znodefs_log_entries", "Transactions in the log on disk", ss.log_entries);
    gauge_u64(t, "znodefs_log_bytes", "Bytes of the transactions in the log", ss.log_bytes);
    gauge_u64(t, "znodefs_log_segments", "The log's segment files (preAllocSize each)", ss.log_segments);
    counter_u64(t, "znodefs_log_segments_recycled_total",
                "Log segments reused from compacted ones (no zeros written)", ss.log_segments_recycled);
    counter_u64(t, "znodefs_log_segments_zeroed_total",
                "Log segments prepared as written zeros", ss.log_segments_zeroed);
    gauge_u64(t, "znodefs_snapshot_zxid", "The zxid of the newest snapshot", ss.snapshot_zxid);
}

int metrics_render(struct server *srv, char **out, size_t *len)
{
    ZN_ASSERT(out && len);
    *out = NULL;
    *len = 0;
    struct metrics *m = srv->metrics;
    if (!m)
        return ZN_BADARGUMENTS;
    struct metrics_text t = {0};
    render_zookeeper_gauges(&t, srv);
    metrics_render_summary_ms(&t, "readlatency", "Read request latency (ms)", &m->read_latency);
    metrics_render_summary_ms(&t, "updatelatency", "Write request latency (ms)",
                              &m->update_latency);
    if (srv->store) {
        /* the store's writer thread records each log commit; take them now */
        uint32_t us[STORE_COMMIT_TIMES_MAX];
        size_t n = store_take_commit_times(srv->store, us, STORE_COMMIT_TIMES_MAX);
        for (size_t i = 0; i < n; i++)
            metrics_observe_fsync(srv, us[i]);
    }
    metrics_render_summary_ms(&t, "fsynctime", "Time to make a log write durable (ms)",
                              &m->fsync_time);
    render_znodefs_gauges(&t, srv);
    metrics_render_requests(&t, m->by_op, m->errors_by_op);
    if (m->httpd) {
        struct httpd_stats hs;
        httpd_get_stats(m->httpd, &hs);
        counter_u64(&t, "znodefs_metrics_http_requests_total",
                    "Requests to this metrics endpoint (this one included)", hs.requests);
    }
    if (t.error) {
        int rc = t.error;
        metrics_text_free(&t);
        return rc;
    }
    *out = t.data;
    *len = t.len;
    return 0;
}

static int render_page(void *ctx, char **body, size_t *len)
{
    return metrics_render(ctx, body, len);
}

int metrics_http_port(const struct server *srv)
{
    struct metrics *m = srv->metrics;
    return m && m->httpd ? httpd_port(m->httpd) : -1;
}

int metrics_start(struct server *srv)
{
    ZN_ASSERT(srv && srv->loop);
    if (srv->metrics)
        return 0;
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return ZN_NOMEMORY;
    m->srv = srv;
    if (srv->cfg.metrics_prometheus) {
        struct httpd_options opts = {
            .name = "metrics http",
            .host = srv->cfg.metrics_http_host,
            .port = srv->cfg.metrics_http_port,
            .content_type = METRICS_PROMETHEUS_CONTENT_TYPE,
        };
        int rc = httpd_start(&m->httpd, srv->loop, &opts, render_page, srv);
        if (rc != 0) {
            free(m);
            return rc;
        }
        ZN_INFO("metrics: serving Prometheus metrics on http://%s:%d/metrics",
                srv->cfg.metrics_http_host, httpd_port(m->httpd));
    }
    srv->metrics = m;
    return 0;
}

void metrics_stop(struct server *srv)
{
    struct metrics *m = srv->metrics;
    if (!m)
        return;
    /* httpd never calls render_page after this: m may go now. */
    httpd_stop(m->httpd);
    srv->metrics = NULL;
    free(m);
}
