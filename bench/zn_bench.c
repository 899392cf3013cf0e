/*
 * zn_bench: a load generator on the ZooKeeper client protocol, for any server
 * (znoded or Apache ZooKeeper), built on libznode's asynchronous API.
 *
 * It owns the benchmark loop and nothing else: T threads, each running its own
 * libuv loop with its share of S sessions; each session keeps at most K
 * requests outstanding (closed loop), optionally paced to a total rate R
 * (ops/s), so two servers can be compared "at the same load".  Latency is
 * measured per request from submission to callback with the monotonic clock
 * and kept in a log-linear histogram (under 1% relative error, bounded
 * memory, no allocation per request: request slots are preallocated per
 * session and reused).
 *
 * Workloads: get, set, create, delete, mixed (get/set by --read-ratio),
 * multi (--multi-ops setData ops in one multi), watch (one writer, S-1
 * watchers: latency from the writer's setData submission to each watcher's
 * notification), session (connect until CONNECTED, then close).
 *
 * Output: one JSON line on stdout (machine-readable) and one human line on
 * stderr.  Exit status 0 if the run completed, 1 on setup failure or if no
 * operation succeeded.
 *
 * This file is the driver (the command line, the threads, the closed loop,
 * the histogram, the report); what each workload creates first and issues is
 * in zn_bench_workloads.c, and what both share in zn_bench_internal.h.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "znode/client.h"
#include "log.h"
#include "zn_bench_internal.h"
static const char *const workload_names[] = {"get",   "set",   "create", "delete",
                                             "mixed", "multi", "watch",  "session",
                                             "exists", "ls"};

/* What every session of the run is made with. */
void bench_client_options(const struct bench_config *c, struct zn_client_options *opt)
{
    zn_client_options_init(opt);
    opt->log_level = ZN_LOG_OFF;
    opt->session_timeout_ms = c->session_timeout_ms;
    opt->tls_ca_file = c->tls_ca;
    opt->tls_cert_file = c->tls_cert;
    opt->tls_key_file = c->tls_key;
}
static pthread_barrier_t start_barrier;
static atomic_int connect_failures;
char *value_buffer;
char run_id[32];

/* ---- histogram ---- */

static unsigned hist_index(uint64_t ns)
{
    if (ns < ZB_HIST_SUB)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned power = msb - ZB_HIST_SUB_BITS + 1;
    if (power >= ZB_HIST_POWERS)
        return ZB_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(ns >> (msb - ZB_HIST_SUB_BITS)) & (ZB_HIST_SUB - 1);
    return power * ZB_HIST_SUB + sub;
}

/* The upper bound (ns) of a bucket: what a percentile in it reports. */
static uint64_t hist_value(unsigned index)
{
    unsigned power = index / ZB_HIST_SUB;
    unsigned sub = index % ZB_HIST_SUB;
    if (power == 0)
        return sub;
    unsigned shift = power - 1;
    return ((uint64_t)(ZB_HIST_SUB + sub + 1) << shift) - 1;
}

static void hist_record(struct bench_histogram *h, uint64_t ns)
{
    h->counts[hist_index(ns)]++;
    h->total++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

static void hist_merge(struct bench_histogram *into, const struct bench_histogram *from)
{
    for (unsigned i = 0; i < ZB_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

static double hist_percentile_us(const struct bench_histogram *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < ZB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return (double)(v < h->max_ns ? v : h->max_ns) / 1000.0;
        }
    }
    return (double)h->max_ns / 1000.0;
}

/* ---- the run ---- */

static void session_fill(struct bench_session *s);

static bool thread_may_issue(struct bench_thread *t)
{
    if (t->stopping)
        return false;
    if (t->budget > 0 && t->issued >= t->budget)
        return false;
    if (t->config->rate > 0 && t->tokens < 1.0)
        return false;
    return true;
}

void record_completion(struct bench_thread *t, uint64_t start_ns, int rc)
{
    uint64_t end = now_ns();
    t->completed++;
    if (!t->measuring)
        return;
    if (rc == 0) {
        t->ok_count++;
        hist_record(&t->hist, end - start_ns);
    } else {
        t->error_count++;
        if (t->first_error == 0)
            t->first_error = rc;
    }
}

void request_done(struct zn_client *client, const struct zn_result *r, void *arg)
{
    struct bench_request *req = arg;
    struct bench_session *s = req->session;
    struct bench_thread *t = s->thread;
    record_completion(t, req->start_ns, r->rc);
    req->next_free = s->free_slots;
    s->free_slots = req;
    s->in_flight--;
    if (t->budget > 0 && t->completed >= t->budget)
        t->stopping = true;
    if (t->stopping)
        thread_maybe_finish(t);
    else
        session_fill(s);
}


static void session_fill(struct bench_session *s)
{
    struct bench_thread *t = s->thread;
    while (s->connected && s->in_flight < t->config->outstanding && thread_may_issue(t)) {
        struct bench_request *req = s->free_slots;
        if (req == NULL)
            break;
        req->start_ns = now_ns();
        int rc = issue_one(s, req);
        if (rc != 0) {
            if (rc == ZN_NONODE) /* delete: nothing left for this session */
                break;
            t->error_count++;
            if (t->first_error == 0)
                t->first_error = rc;
            t->stopping = true;
            break;
        }
        s->free_slots = req->next_free;
        s->in_flight++;
        t->issued++;
        if (t->config->rate > 0)
            t->tokens -= 1.0;
    }
    if (t->config->workload == WL_DELETE && s->in_flight == 0 && s->sequence >= s->delete_limit)
        thread_maybe_finish(t);
}

static void fill_all(struct bench_thread *t)
{
    for (int i = 0; i < t->session_count; i++)
        session_fill(&t->sessions[i]);
}

/* ---- thread lifecycle ---- */

static void close_cb_count(void *arg)
{
    struct bench_session *s = arg;
    s->closed = true;
    s->thread->closed_count++;
}

static void thread_close_handles(struct bench_thread *t)
{
    if (!uv_is_closing((uv_handle_t *)&t->timer))
        uv_close((uv_handle_t *)&t->timer, NULL);
    if (!uv_is_closing((uv_handle_t *)&t->rate_timer))
        uv_close((uv_handle_t *)&t->rate_timer, NULL);
}

/* Once stopping and nothing is in flight: note the end of the window (in ops
 * mode, the last completion) and close every client and handle, so the
 * thread's loop runs out of work and returns. */
void thread_maybe_finish(struct bench_thread *t)
{
    if (t->finished)
        return;
    if (!t->stopping) {
        /* delete workload: done once every session ran out of nodes */
        for (int i = 0; i < t->session_count; i++) {
            struct bench_session *s = &t->sessions[i];
            if (s->in_flight > 0 || s->sequence < s->delete_limit)
                return;
        }
        t->stopping = true;
    }
    const struct bench_config *c = t->config;
    if (c->workload == WL_SESSION) {
        if (t->session_slots_busy > 0)
            return;
    } else if (c->workload == WL_WATCH) {
        if (t->watch_set_in_flight || t->watch_pending_events > 0)
            return;
    } else {
        for (int i = 0; i < t->session_count; i++)
            if (t->sessions[i].in_flight > 0)
                return;
    }
    t->finished = true;
    if (t->measure_end_ns == 0)
        t->measure_end_ns = now_ns();
    if (t->measure_start_ns == 0)
        t->measure_start_ns = t->measure_end_ns;
    t->measuring = false;
    uv_timer_stop(&t->timer);
    uv_timer_stop(&t->rate_timer);
    if (c->workload != WL_SESSION) {
        for (int i = 0; i < t->session_count; i++) {
            if (t->sessions[i].client != NULL)
                zn_client_close(t->sessions[i].client, close_cb_count, &t->sessions[i]);
        }
    }
    thread_close_handles(t);
}

static void on_end(uv_timer_t *timer)
{
    struct bench_thread *t = timer->data;
    /* Only what completes inside the window counts. */
    t->measure_end_ns = now_ns();
    t->measuring = false;
    t->stopping = true;
    thread_maybe_finish(t);
}

static void start_measuring(struct bench_thread *t)
{
    t->measuring = true;
    t->measure_start_ns = now_ns();
    if (t->config->ops <= 0 && t->config->workload != WL_DELETE)
        uv_timer_start(&t->timer, on_end, (uint64_t)(t->config->duration_s * 1000.0), 0);
}

static void on_warmup_done(uv_timer_t *timer)
{
    start_measuring(timer->data);
}

static void on_rate_tick(uv_timer_t *timer)
{
    struct bench_thread *t = timer->data;
    t->tokens += t->tokens_per_tick;
    /* No burst larger than what may be outstanding anyway after a stall. */
    double cap = (double)t->session_count * t->config->outstanding;
    if (t->tokens > cap)
        t->tokens = cap;
    fill_all(t);
}

static void on_connect_deadline(uv_timer_t *timer)
{
    struct bench_thread *t = timer->data;
    t->failed = true;
}

static void thread_session_cb(struct zn_client *client, int event, void *arg)
{
    struct bench_session *s = arg;
    if (event == ZN_SESSION_CONNECTED) {
        if (!s->connected)
            s->thread->connected_count++;
        s->connected = true;
        if (s->thread->measure_start_ns != 0 && !s->thread->stopping)
            session_fill(s);
    } else if (event == ZN_SESSION_DISCONNECTED) {
        s->connected = false;
    } else if (event == ZN_SESSION_EXPIRED || event == ZN_SESSION_AUTH_FAILED) {
        s->connected = false;
        s->thread->failed = true;
    }
}

static int thread_connect(struct bench_thread *t)
{
    const struct bench_config *c = t->config;
    for (int i = 0; i < t->session_count; i++) {
        struct bench_session *s = &t->sessions[i];
        struct zn_client_options opt;
        bench_client_options(c, &opt);
        opt.session_cb = thread_session_cb;
        opt.session_arg = s;
        int rc = zn_client_new(&t->loop, c->server, &opt, &s->client);
        if (rc != 0) {
            fprintf(stderr, "zn_bench: client for %s: %s\n", c->server, zn_strerror(rc));
            s->client = NULL;
            return rc;
        }
    }
    uv_timer_start(&t->timer, on_connect_deadline, ZB_CONNECT_TIMEOUT_MS, 0);
    while (t->connected_count < t->session_count && !t->failed)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_timer_stop(&t->timer);
    if (t->failed) {
        fprintf(stderr, "zn_bench: %d of %d sessions connected to %s within %d ms\n",
                t->connected_count, t->session_count, c->server, ZB_CONNECT_TIMEOUT_MS);
        return ZN_CONNECTIONLOSS;
    }
    return 0;
}

static void *thread_main(void *arg)
{
    struct bench_thread *t = arg;
    const struct bench_config *c = t->config;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->timer);
    uv_timer_init(&t->loop, &t->rate_timer);
    t->timer.data = t;
    t->rate_timer.data = t;
    int rc = 0;
    if (c->workload != WL_SESSION)
        rc = thread_connect(t);
    if (rc != 0)
        atomic_fetch_add(&connect_failures, 1);
    /* Every thread starts loading at the same moment. */
    pthread_barrier_wait(&start_barrier);
    if (atomic_load(&connect_failures) > 0) {
        t->failed = true;
        t->stopping = true;
        thread_maybe_finish(t);
    } else {
        if (c->ops > 0 || c->workload == WL_DELETE || c->warmup_s <= 0) {
            start_measuring(t);
        } else {
            uv_timer_start(&t->timer, on_warmup_done, (uint64_t)(c->warmup_s * 1000.0), 0);
        }
        if (c->rate > 0) {
            t->tokens_per_tick = c->rate / c->threads * ZB_RATE_TICK_MS / 1000.0;
            uv_timer_start(&t->rate_timer, on_rate_tick, ZB_RATE_TICK_MS, ZB_RATE_TICK_MS);
        }
        if (c->workload == WL_WATCH)
            watch_start(t);
        else if (c->workload == WL_SESSION)
            for (int i = 0; i < t->session_count && !t->stopping; i++)
                slot_start(&t->sessions[i]);
        else
            fill_all(t);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(&t->loop);
    if (close_rc != 0)
        fprintf(stderr, "zn_bench: thread %d loop did not close cleanly: %s\n", t->index,
                uv_strerror(close_rc));
    return NULL;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zn_bench -s HOST:PORT[,HOST:PORT...] -w WORKLOAD [options]\n"
            "  -w, --workload      get|set|create|delete|mixed|multi|watch|session|exists|ls\n"
            "  -c, --sessions N    sessions (default 8; watch: 1 writer + N-1 watchers;\n"
            "                      session: concurrent connects)\n"
            "  -o, --outstanding K requests in flight per session (default 16)\n"
            "  -t, --threads T     loops/threads sharing the sessions (default 1)\n"
            "  -d, --duration S    measured seconds (default 5)\n"
            "      --warmup S      unmeasured seconds first (default 1)\n"
            "  -n, --ops N         run N operations instead of a duration (delete: default 20000)\n"
            "  -v, --value-size B  bytes of data per set/create (default 100)\n"
            "  -r, --read-ratio R  mixed: fraction of gets (default 0.9)\n"
            "  -k, --keys N        keys read and written by get/set/mixed/multi (default 1000)\n"
            "  -m, --multi-ops N   setData ops per multi (default 4)\n"
            "  -R, --rate OPS      pace to this total rate (ops/s); default: as fast as possible\n"
            "  -p, --prefix PATH   root of the benchmark's nodes (default /zn-bench)\n"
            "  -l, --label TEXT    copied into the JSON line\n"
            "  -P, --path PATH     get/set/exists/ls this one existing node (no setup)\n"
            "      --no-setup      the nodes already exist (skip creating keys)\n"
            "      --tls-ca FILE   every session over TLS (a secureClientPort), the server's\n"
            "                      certificate checked against the PEM CAs in FILE\n"
            "      --tls-cert FILE, --tls-key FILE  the client's certificate and key (PEM)\n");
}

static int parse_workload(const char *name)
{
    for (int i = 0; i < (int)(sizeof workload_names / sizeof workload_names[0]); i++)
        if (strcmp(name, workload_names[i]) == 0)
            return i;
    return -1;
}

static int parse_args(int argc, char **argv, struct bench_config *c)
{
    static const struct option longopts[] = {
        {"server", required_argument, 0, 's'},     {"workload", required_argument, 0, 'w'},
        {"sessions", required_argument, 0, 'c'},   {"outstanding", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 't'},    {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'W'},     {"ops", required_argument, 0, 'n'},
        {"value-size", required_argument, 0, 'v'}, {"read-ratio", required_argument, 0, 'r'},
        {"keys", required_argument, 0, 'k'},       {"multi-ops", required_argument, 0, 'm'},
        {"rate", required_argument, 0, 'R'},       {"prefix", required_argument, 0, 'p'},
        {"label", required_argument, 0, 'l'},      {"no-setup", no_argument, 0, 'N'},
        {"path", required_argument, 0, 'P'},       {"tls-ca", required_argument, 0, 'A'},
        {"tls-cert", required_argument, 0, 'C'},   {"tls-key", required_argument, 0, 'K'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    *c = (struct bench_config){.threads = 1, .sessions = 8, .outstanding = 16,
                               .duration_s = 5, .warmup_s = 1, .value_bytes = 100,
                               .read_ratio = 0.9, .keys = 1000, .multi_ops = 4,
                               .prefix = "/zn-bench", .label = "",
                               .session_timeout_ms = 30000};
    int workload = -1, opt;
    while ((opt = getopt_long(argc, argv, "s:w:c:o:t:d:n:v:r:k:m:R:p:l:P:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': c->server = optarg; break;
        case 'w': workload = parse_workload(optarg); break;
        case 'c': c->sessions = atoi(optarg); break;
        case 'o': c->outstanding = atoi(optarg); break;
        case 't': c->threads = atoi(optarg); break;
        case 'd': c->duration_s = atof(optarg); break;
        case 'W': c->warmup_s = atof(optarg); break;
        case 'n': c->ops = atoll(optarg); break;
        case 'v': c->value_bytes = atoi(optarg); break;
        case 'r': c->read_ratio = atof(optarg); break;
        case 'k': c->keys = atoi(optarg); break;
        case 'm': c->multi_ops = atoi(optarg); break;
        case 'R': c->rate = atof(optarg); break;
        case 'p': c->prefix = optarg; break;
        case 'l': c->label = optarg; break;
        case 'N': c->no_setup = true; break;
        case 'P': c->path = optarg; break;
        case 'A': c->tls_ca = optarg; break;
        case 'C': c->tls_cert = optarg; break;
        case 'K': c->tls_key = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    const char *bad = NULL;
    if (c->server == NULL) bad = "--server is required";
    else if (workload < 0) bad = "--workload must be one of get set create delete mixed multi watch session";
    else if (c->threads < 1 || c->threads > ZB_MAX_THREADS) bad = "--threads out of range (1..16)";
    else if (c->sessions < 1 || c->sessions > ZB_MAX_SESSIONS) bad = "--sessions out of range (1..4096)";
    else if (c->outstanding < 1 || c->outstanding > ZB_MAX_OUTSTANDING) bad = "--outstanding out of range (1..4096)";
    else if (c->duration_s <= 0 && c->ops <= 0) bad = "--duration must be positive";
    else if (c->value_bytes < 0 || c->value_bytes > ZB_MAX_VALUE_BYTES) bad = "--value-size out of range";
    else if (c->read_ratio < 0 || c->read_ratio > 1) bad = "--read-ratio must be within 0..1";
    else if (c->keys < 1 || c->keys > ZB_MAX_KEYS) bad = "--keys out of range";
    else if (c->multi_ops < 1 || c->multi_ops > ZB_MAX_MULTI_OPS || c->multi_ops > c->keys) bad = "--multi-ops out of range (1..64, at most --keys)";
    else if (c->path != NULL && (c->path[0] != '/' || strlen(c->path) >= ZB_MAX_PATH_BYTES)) bad = "--path must be an absolute path of under 256 bytes";
    else if (c->rate < 0) bad = "--rate must not be negative";
    else if (c->prefix[0] != '/' || strlen(c->prefix) > 128) bad = "--prefix must be an absolute path of at most 128 bytes";
    if (bad != NULL) {
        fprintf(stderr, "zn_bench: %s\n", bad);
        usage(stderr);
        return -1;
    }
    c->workload = (enum bench_workload)workload;
    if (c->workload == WL_WATCH) {
        if (c->sessions < 2) {
            fprintf(stderr, "zn_bench: watch needs at least 2 sessions (1 writer, watchers)\n");
            return -1;
        }
        c->threads = 1; /* one clock and one loop see both the set and the events */
    }
    if (c->threads > c->sessions)
        c->threads = c->sessions;
    if (c->workload == WL_DELETE && c->ops <= 0)
        c->ops = 20000;
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    struct bench_config c;
    if (parse_args(argc, argv, &c) != 0)
        return 2;
    zn_log_threshold = ZN_LOG_ERROR;
    value_buffer = malloc((size_t)c.value_bytes + 1);
    if (value_buffer == NULL)
        return 1;
    memset(value_buffer, 'x', (size_t)c.value_bytes + 1);
    snprintf(run_id, sizeof run_id, "%ld-%d", (long)time(NULL), (int)getpid());

    if (setup_workload(&c) != 0)
        return 1;

    static struct bench_thread threads[ZB_MAX_THREADS];
    struct bench_session *sessions = calloc((size_t)c.sessions, sizeof *sessions);
    struct bench_request *slots = calloc((size_t)c.sessions * c.outstanding, sizeof *slots);
    if (sessions == NULL || slots == NULL) {
        fprintf(stderr, "zn_bench: out of memory\n");
        return 1;
    }
    int per_thread = c.sessions / c.threads, extra = c.sessions % c.threads, next = 0;
    for (int i = 0; i < c.threads; i++) {
        struct bench_thread *t = &threads[i];
        memset(t, 0, sizeof *t);
        t->config = &c;
        t->index = i;
        t->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull) ^ (uint64_t)getpid();
        t->sessions = &sessions[next];
        t->session_count = per_thread + (i < extra ? 1 : 0);
        if (c.ops > 0 && c.workload != WL_DELETE)
            t->budget = c.ops / c.threads + (i == 0 ? c.ops % c.threads : 0);
        for (int j = 0; j < t->session_count; j++) {
            struct bench_session *s = &t->sessions[j];
            s->thread = t;
            s->index = next + j;
            s->slots = &slots[(size_t)(next + j) * c.outstanding];
            if (c.workload == WL_DELETE) {
                s->delete_limit = (uint64_t)delete_per_session;
            }
            for (int k = 0; k < c.outstanding; k++) {
                s->slots[k].session = s;
                s->slots[k].next_free = k + 1 < c.outstanding ? &s->slots[k + 1] : NULL;
            }
            s->free_slots = &s->slots[0];
        }
        next += t->session_count;
    }
    pthread_barrier_init(&start_barrier, NULL, (unsigned)c.threads);
    for (int i = 0; i < c.threads; i++) {
        if (pthread_create(&threads[i].thread, NULL, thread_main, &threads[i]) != 0) {
            fprintf(stderr, "zn_bench: pthread_create failed\n");
            return 1;
        }
    }
    static struct bench_histogram total;
    uint64_t ok = 0, errors = 0;
    int first_error = 0;
    double ops_per_s = 0, window_s = 0;
    for (int i = 0; i < c.threads; i++) {
        pthread_join(threads[i].thread, NULL);
        struct bench_thread *t = &threads[i];
        hist_merge(&total, &t->hist);
        ok += t->ok_count;
        errors += t->error_count;
        if (first_error == 0)
            first_error = t->first_error;
        double w = (double)(t->measure_end_ns - t->measure_start_ns) / 1e9;
        if (w > 0)
            ops_per_s += (double)t->ok_count / w;
        if (w > window_s)
            window_s = w;
    }
    bool failed = atomic_load(&connect_failures) > 0 || ok == 0;
    printf("{\"label\":\"%s\",\"workload\":\"%s\",\"server\":\"%s\",\"threads\":%d,"
           "\"sessions\":%d,\"outstanding\":%d,\"value_bytes\":%d,\"read_ratio\":%.3f,"
           "\"multi_ops\":%d,\"rate\":%.0f,\"ops\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"first_error\":\"%s\",\"duration_s\":%.3f,\"ops_per_s\":%.1f,\"mean_us\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"ok\":%s}\n",
           c.label, workload_names[c.workload], c.server, c.threads, c.sessions, c.outstanding,
           c.value_bytes, c.read_ratio, c.multi_ops, c.rate, ok, errors,
           first_error ? zn_strerror(first_error) : "", window_s, ops_per_s,
           total.total ? (double)total.sum_ns / (double)total.total / 1000.0 : 0.0,
           hist_percentile_us(&total, 0.50), hist_percentile_us(&total, 0.99),
           hist_percentile_us(&total, 0.999), (double)total.max_ns / 1000.0,
           failed ? "false" : "true");
    fprintf(stderr,
            "%s %s: %" PRIu64 " ops in %.2f s = %.0f ops/s, latency p50 %.0f us p99 %.0f us "
            "p999 %.0f us max %.0f us, %" PRIu64 " errors%s%s\n",
            workload_names[c.workload], c.server, ok, window_s, ops_per_s,
            hist_percentile_us(&total, 0.50), hist_percentile_us(&total, 0.99),
            hist_percentile_us(&total, 0.999), (double)total.max_ns / 1000.0, errors,
            first_error ? " first: " : "", first_error ? zn_strerror(first_error) : "");
    free(sessions);
    free(slots);
    free(value_buffer);
    return failed ? 1 : 0;
}
