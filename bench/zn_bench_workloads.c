/*
 * zn_bench's workloads: the nodes each one needs before the run (created with
 * one pipelined client, parents first) and the requests each one issues
 * (get, set, create, delete, mixed, multi, exists, ls: one request per call of
 * issue_one; watch: session 0 writes, the others watch; session: each slot
 * cycles connect -> close).  Called by the driver, zn_bench.c, on each
 * thread's own loop; completions go back through record_completion and
 * thread_maybe_finish.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "znode/client.h"
#include "zn_bench_internal.h"

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static void key_path(const struct bench_config *c, int key, char *out)
{
    if (c->path != NULL) {
        snprintf(out, ZB_MAX_PATH_BYTES, "%s", c->path);
        return;
    }
    snprintf(out, ZB_MAX_PATH_BYTES, "%s/k%07d", c->prefix, key);
}

/* Directory of a session's created (and deleted) nodes. */
static void session_dir(const struct bench_config *c, int session, char *out)
{
    snprintf(out, ZB_MAX_DIR_BYTES, "%s/c/%s-s%d", c->prefix, run_id, session);
}

static void watch_path(const struct bench_config *c, char *out)
{
    snprintf(out, ZB_MAX_PATH_BYTES, "%s/w", c->prefix);
}

/* ---- setup: create nodes with one pipelined client ---- */

struct setup_state {
    const struct bench_config *config;
    struct zn_client *client;
    int phase_count;
    int (*make_path)(const struct bench_config *c, int64_t i, char *out);
    int64_t total;
    int64_t next;
    int64_t done;
    int in_flight;
    int value_bytes;
    int rc;
    bool connected;
    bool failed_connect;
};

static void setup_fill(struct setup_state *st);

static void setup_created(struct zn_client *client, const struct zn_result *r, void *arg)
{
    struct setup_state *st = arg;
    st->in_flight--;
    st->done++;
    if (r->rc != 0 && r->rc != ZN_NODEEXISTS && st->rc == 0)
        st->rc = r->rc;
    setup_fill(st);
}

static void setup_fill(struct setup_state *st)
{
    char path[ZB_MAX_PATH_BYTES];
    while (st->rc == 0 && st->in_flight < ZB_SETUP_OUTSTANDING && st->next < st->total) {
        if (st->make_path(st->config, st->next, path) != 0) {
            st->next++;
            st->done++;
            continue;
        }
        int rc = zn_create(st->client, path, value_buffer, st->value_bytes, NULL, 0, 0, 0,
                           setup_created, st);
        if (rc != 0) {
            st->rc = rc;
            return;
        }
        st->next++;
        st->in_flight++;
    }
}

static void setup_session_cb(struct zn_client *client, int event, void *arg)
{
    struct setup_state *st = arg;
    if (event == ZN_SESSION_CONNECTED)
        st->connected = true;
    else if (event == ZN_SESSION_EXPIRED || event == ZN_SESSION_AUTH_FAILED)
        st->failed_connect = true;
}

/* Creates make_path(0..total-1) (existing nodes are fine), in order of index
 * so parents (made by lower indexes) exist first: indexes where make_path
 * returns a parent are issued before children because the first
 * `phase_count` paths are created synchronously one at a time. */
static int setup_run(const struct bench_config *c, int phase_count,
                     int (*make_path)(const struct bench_config *, int64_t, char *),
                     int64_t total, int value_bytes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct setup_state st = {.config = c, .make_path = make_path, .total = total,
                             .value_bytes = value_bytes};
    struct zn_client_options opt;
    bench_client_options(c, &opt);
    opt.session_cb = setup_session_cb;
    opt.session_arg = &st;
    int rc = zn_client_new(&loop, c->server, &opt, &st.client);
    if (rc != 0) {
        fprintf(stderr, "zn_bench: setup connect to %s: %s\n", c->server, zn_strerror(rc));
        uv_loop_close(&loop);
        return rc;
    }
    rc = zn_sync_wait_connected(st.client);
    if (rc == 0) {
        char path[ZB_MAX_PATH_BYTES];
        for (int64_t i = 0; i < phase_count && i < total && rc == 0; i++) {
            if (make_path(c, i, path) != 0)
                continue;
            int r = zn_sync_create(st.client, path, NULL, -1, 0, NULL);
            if (r != 0 && r != ZN_NODEEXISTS)
                rc = r;
        }
        st.next = phase_count < total ? phase_count : total;
        st.done = st.next;
        if (rc == 0) {
            setup_fill(&st);
            while (st.done < st.total && st.rc == 0 && !st.failed_connect) {
                if (zn_sync_run_once(st.client) != 0)
                    break;
            }
            while (st.in_flight > 0 && zn_sync_run_once(st.client) == 0) {
            }
            rc = st.rc;
            if (rc == 0 && st.done < st.total)
                rc = ZN_CONNECTIONLOSS;
        }
    }
    if (rc != 0)
        fprintf(stderr, "zn_bench: setup on %s failed: %s\n", c->server, zn_strerror(rc));
    zn_sync_close(st.client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* Setup paths.  Index 0..1: the prefix and its "c" directory; then keys. */
static int path_keys(const struct bench_config *c, int64_t i, char *out)
{
    if (i == 0)
        snprintf(out, ZB_MAX_PATH_BYTES, "%s", c->prefix);
    else if (i == 1)
        snprintf(out, ZB_MAX_PATH_BYTES, "%s/c", c->prefix);
    else if (i == 2)
        watch_path(c, out);
    else
        key_path(c, (int)(i - 3), out);
    return 0;
}

/* For create and delete: the prefix, "c", then one directory per session,
 * then (delete only) each session's nodes to delete. */
int64_t delete_per_session;
static int path_session_nodes(const struct bench_config *c, int64_t i, char *out)
{
    if (i < 3)
        return path_keys(c, i, out);
    i -= 3;
    if (i < c->sessions) {
        session_dir(c, (int)i, out);
        return 0;
    }
    i -= c->sessions;
    char dir[ZB_MAX_DIR_BYTES];
    int session = (int)(i / delete_per_session);
    session_dir(c, session, dir);
    snprintf(out, ZB_MAX_PATH_BYTES, "%s/n%" PRId64, dir, i % delete_per_session);
    return 0;
}

/* Issues one request of the workload; returns 0 or the synchronous error. */
int issue_one(struct bench_session *s, struct bench_request *req)
{
    struct bench_thread *t = s->thread;
    const struct bench_config *c = t->config;
    char path[ZB_MAX_PATH_BYTES];
    enum bench_workload w = c->workload;
    if (w == WL_MIXED) {
        double draw = (double)(rng_next(&t->rng) >> 11) / 9007199254740992.0;
        w = draw < c->read_ratio ? WL_GET : WL_SET;
    }
    switch (w) {
    case WL_GET:
        key_path(c, (int)(rng_next(&t->rng) % (uint64_t)c->keys), path);
        return zn_get(s->client, path, NULL, NULL, request_done, req);
    case WL_EXISTS:
        key_path(c, (int)(rng_next(&t->rng) % (uint64_t)c->keys), path);
        return zn_exists(s->client, path, NULL, NULL, request_done, req);
    case WL_LS:
        if (c->path != NULL)
            snprintf(path, sizeof path, "%s", c->path);
        else
            snprintf(path, sizeof path, "%s", c->prefix);
        return zn_get_children(s->client, path, NULL, NULL, request_done, req);
    case WL_SET:
        key_path(c, (int)(rng_next(&t->rng) % (uint64_t)c->keys), path);
        return zn_set(s->client, path, value_buffer, c->value_bytes, -1, request_done, req);
    case WL_CREATE: {
        char dir[ZB_MAX_DIR_BYTES];
        session_dir(c, s->index, dir);
        snprintf(path, sizeof path, "%s/n%" PRIu64, dir, s->sequence++);
        return zn_create(s->client, path, value_buffer, c->value_bytes, NULL, 0, 0, 0,
                         request_done, req);
    }
    case WL_DELETE: {
        if (s->sequence >= s->delete_limit)
            return ZN_NONODE; /* this session has deleted all of its nodes */
        char dir[ZB_MAX_DIR_BYTES];
        session_dir(c, s->index, dir);
        snprintf(path, sizeof path, "%s/n%" PRIu64, dir, s->sequence++);
        return zn_delete(s->client, path, -1, request_done, req);
    }
    case WL_MULTI: {
        struct zn_op ops[ZB_MAX_MULTI_OPS];
        char paths[ZB_MAX_MULTI_OPS][ZB_MAX_PATH_BYTES];
        /* Distinct keys: consecutive from a random start. */
        int start = (int)(rng_next(&t->rng) % (uint64_t)c->keys);
        for (int i = 0; i < c->multi_ops; i++) {
            key_path(c, (start + i) % c->keys, paths[i]);
            ops[i] = (struct zn_op){.type = ZN_OP_SETDATA, .path = paths[i],
                                    .data = value_buffer, .data_len = c->value_bytes,
                                    .version = -1};
        }
        return zn_multi(s->client, ops, c->multi_ops, request_done, req);
    }
    default:
        return ZN_BADARGUMENTS;
    }
}

/* ---- watch workload: session 0 writes, the others watch ---- */

static void watch_maybe_set(struct bench_thread *t);

static void watch_rearmed(struct zn_client *client, const struct zn_result *r, void *arg)
{
    struct bench_session *s = arg;
    struct bench_thread *t = s->thread;
    if (r->rc != 0) {
        t->error_count++;
        if (t->first_error == 0)
            t->first_error = r->rc;
        t->stopping = true;
        thread_maybe_finish(t);
        return;
    }
    s->armed = true;
    t->watch_armed++;
    watch_maybe_set(t);
}

static void watch_fired(struct zn_client *client, int type, int state, const char *path,
                        void *arg)
{
    struct bench_session *s = arg;
    struct bench_thread *t = s->thread;
    if (type != ZN_EVENT_CHANGED)
        return; /* session end: nothing to measure */
    record_completion(t, t->watch_set_ns, 0);
    t->watch_pending_events--;
    s->armed = false;
    t->watch_armed--;
    if (t->stopping) {
        thread_maybe_finish(t);
        return;
    }
    char wpath[ZB_MAX_PATH_BYTES];
    watch_path(t->config, wpath);
    int rc = zn_get(s->client, wpath, watch_fired, s, watch_rearmed, s);
    if (rc != 0) {
        t->first_error = rc;
        t->stopping = true;
    }
}

static void watch_set_done(struct zn_client *client, const struct zn_result *r, void *arg)
{
    struct bench_thread *t = arg;
    t->watch_set_in_flight = false;
    if (r->rc != 0) {
        t->error_count++;
        if (t->first_error == 0)
            t->first_error = r->rc;
        t->stopping = true;
    }
    if (t->stopping)
        thread_maybe_finish(t);
    else
        watch_maybe_set(t);
}

/* The writer sets again once every watcher saw the last change and re-armed. */
static void watch_maybe_set(struct bench_thread *t)
{
    int watchers = t->session_count - 1;
    if (t->stopping || t->watch_set_in_flight || t->watch_pending_events > 0 ||
        t->watch_armed < watchers)
        return;
    if (t->budget > 0 && t->completed >= t->budget) {
        t->stopping = true;
        thread_maybe_finish(t);
        return;
    }
    char path[ZB_MAX_PATH_BYTES];
    watch_path(t->config, path);
    t->watch_set_ns = now_ns();
    t->watch_pending_events = watchers;
    t->watch_set_in_flight = true;
    int rc = zn_set(t->sessions[0].client, path, value_buffer, t->config->value_bytes, -1,
                    watch_set_done, t);
    if (rc != 0) {
        t->watch_set_in_flight = false;
        t->first_error = rc;
        t->stopping = true;
    }
}

void watch_start(struct bench_thread *t)
{
    char path[ZB_MAX_PATH_BYTES];
    watch_path(t->config, path);
    for (int i = 1; i < t->session_count; i++) {
        struct bench_session *s = &t->sessions[i];
        int rc = zn_get(s->client, path, watch_fired, s, watch_rearmed, s);
        if (rc != 0) {
            t->first_error = rc;
            t->stopping = true;
            return;
        }
    }
}

/* ---- session workload: each slot cycles connect -> close ---- */

static void slot_closed(void *arg)
{
    struct bench_session *s = arg;
    struct bench_thread *t = s->thread;
    s->client = NULL;
    t->session_slots_busy--;
    if (t->budget > 0 && t->completed >= t->budget)
        t->stopping = true;
    if (!t->stopping)
        slot_start(s);
    else
        thread_maybe_finish(t);
}

static void slot_event(struct zn_client *client, int event, void *arg)
{
    struct bench_session *s = arg;
    struct bench_thread *t = s->thread;
    if (event == ZN_SESSION_CONNECTED || event == ZN_SESSION_EXPIRED ||
        event == ZN_SESSION_AUTH_FAILED) {
        if (s->connected)
            return;
        s->connected = true;
        record_completion(t, s->slots[0].start_ns, event == ZN_SESSION_CONNECTED ? 0 : ZN_CONNECTIONLOSS);
        zn_client_close(client, slot_closed, s);
    }
}

void slot_start(struct bench_session *s)
{
    struct bench_thread *t = s->thread;
    struct zn_client_options opt;
    bench_client_options(t->config, &opt);
    opt.session_cb = slot_event;
    opt.session_arg = s;
    s->connected = false;
    s->slots[0].start_ns = now_ns();
    t->issued++;
    int rc = zn_client_new(&t->loop, t->config->server, &opt, &s->client);
    if (rc != 0) {
        t->first_error = rc;
        t->stopping = true;
        s->client = NULL;
        return;
    }
    t->session_slots_busy++;
}

int setup_workload(const struct bench_config *c)
{
    if (c->no_setup || c->path != NULL || c->workload == WL_SESSION)
        return 0;
    switch (c->workload) {
    case WL_CREATE:
        delete_per_session = 0;
        return setup_run(c, 3 + c->sessions, path_session_nodes, 3 + c->sessions, 0);
    case WL_DELETE:
        delete_per_session = (c->ops + c->sessions - 1) / c->sessions;
        return setup_run(c, 3 + c->sessions, path_session_nodes,
                         3 + c->sessions + delete_per_session * c->sessions, c->value_bytes);
    default:
        return setup_run(c, 3, path_keys, 3 + (int64_t)c->keys, c->value_bytes);
    }
}

