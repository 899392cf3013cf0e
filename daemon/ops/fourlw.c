/*
 * Four-letter words on the client port (ruok, srvr, stat, conf, envi, mntr,
 * cons, wchs, wchc, wchp, dirs, isro, crst, srst, hash), in ZooKeeper's
 * output formats so that existing monitoring scripts parse them.  A word not
 * in 4lw.commands.whitelist gets ZooKeeper's refusal line.  The connection is
 * closed once the answer is sent.  The figures the words report are gathered
 * here (fourlw.h) for the AdminServer's JSON answers too (admin.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ensemble.h"
#include "fourlw.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tree.h"

struct text {
    char *data;
    size_t len, cap;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 1024) + (size_t)n;
        char *p = realloc(t->data, cap);
        if (!p)
            return;
        t->data = p;
        t->cap = cap;
    }
}

/* ---- the figures (fourlw.h) ---- */

const char *fourlw_mode(const struct server *srv)
{
    if (srv->cfg.server_count == 0)
        return "standalone";
    if (!ensemble_serving(srv) && srv->cfg.read_only_mode)
        return "read-only";
    return ensemble_role_name(srv);
}

bool fourlw_read_only(const struct server *srv)
{
    return !config_standalone(&srv->cfg) && !ensemble_serving(srv) && srv->cfg.read_only_mode;
}

static void latency_of(uint64_t min_ms, uint64_t max_ms, uint64_t total_ms, uint64_t count,
                       struct fourlw_latency *out)
{
    out->min_ms = count ? min_ms : 0;
    out->max_ms = max_ms;
    out->avg_ms = count ? (double)total_ms / (double)count : 0.0;
}

void fourlw_server_latency(const struct server *srv, struct fourlw_latency *out)
{
    const struct server_stats *s = &srv->stats;
    latency_of(s->latency_min_ms, s->latency_max_ms, s->latency_total_ms, s->latency_count, out);
}

void fourlw_conn_info(const struct conn *c, struct fourlw_conn_info *out)
{
    const struct conn_stats *s = &c->stats;
    memset(out, 0, sizeof *out);
    out->peer = c->peer;
    out->ready = c->state == CONN_READY;
    out->interest_ops = (c->reading_paused || c->close_after_flush ? 0u : 1u) |
                        (c->dirty || c->writes_in_flight_bytes > 0 ? 4u : 0u);
    out->queued = c->queued;
    out->packets_received = s->packets_received;
    out->packets_sent = s->packets_sent;
    out->has_session = c->session != NULL;
    if (!c->session)
        return;
    out->session_id = (uint64_t)c->session->id;
    out->last_operation = s->last_op ? zn_op_name(s->last_op) : "NA";
    out->established_ms = s->established_ms;
    out->timeout_ms = c->timeout_ms;
    out->last_cxid = s->last_cxid;
    out->last_zxid = s->last_zxid;
    out->last_response_ms = s->last_response_ms;
    out->last_latency_ms = s->last_latency_ms;
    latency_of(s->latency_min_ms, s->latency_max_ms, s->latency_total_ms, s->latency_count,
               &out->latency);
}

uint64_t fourlw_watch_owner_session(const struct watch_owner *owner)
{
    const struct conn *c =
        (const struct conn *)((const char *)owner - offsetof(struct conn, watches));
    return c->session ? (uint64_t)c->session->id : 0;
}

size_t fourlw_watching_connections(const struct server *srv)
{
    size_t watching = 0;
    for (const struct conn *o = srv->conns; o; o = o->next)
        watching += o->watches.count > 0;
    return watching;
}

struct watch_list {
    struct fourlw_watch *items;
    size_t count, cap;
    bool failed;
};

static void add_watches(void *ctx, enum watch_kind kind, const char *path,
                        struct watch_owner *const *owners, size_t count)
{
    struct watch_list *w = ctx;
    (void)kind;
    for (size_t i = 0; i < count && !w->failed; i++) {
        if (w->count == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            struct fourlw_watch *items = realloc(w->items, cap * sizeof *items);
            if (!items) {
                w->failed = true;
                return;
            }
            w->items = items;
            w->cap = cap;
        }
        w->items[w->count++] = (struct fourlw_watch){fourlw_watch_owner_session(owners[i]), path};
    }
}

static int by_session_then_path(const void *a, const void *b)
{
    const struct fourlw_watch *x = a, *y = b;
    if (x->session != y->session)
        return x->session < y->session ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int by_path_then_session(const void *a, const void *b)
{
    const struct fourlw_watch *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->session > y->session) - (x->session < y->session);
}

long fourlw_watches(const struct server *srv, bool by_path, struct fourlw_watch **out)
{
    struct watch_list w = {0};
    watch_foreach_path(srv->watches, add_watches, &w);
    if (w.failed) {
        free(w.items);
        *out = NULL;
        return -1;
    }
    if (w.count > 0) /* items is NULL then, which qsort may not be given */
        qsort(w.items, w.count, sizeof *w.items, by_path ? by_path_then_session : by_session_then_path);
    /* a path watched for its data and its children is one watched path */
    size_t kept = 0;
    for (size_t i = 0; i < w.count; i++)
        if (kept == 0 || by_session_then_path(&w.items[i], &w.items[kept - 1]) != 0)
            w.items[kept++] = w.items[i];
    *out = w.items;
    return (long)kept;
}

size_t fourlw_watched_paths(const struct server *srv)
{
    struct fourlw_watch *w;
    long n = fourlw_watches(srv, true, &w);
    if (n < 0) /* out of memory: the count of (kind, path) pairs is the next best */
        return watch_path_count(srv->watches);
    size_t distinct = 0;
    for (long i = 0; i < n; i++)
        distinct += i == 0 || strcmp(w[i].path, w[i - 1].path) != 0;
    free(w);
    return distinct;
}

uint64_t fourlw_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t bytes = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    return bytes;
}

uint64_t fourlw_data_dir_bytes(const struct server *srv)
{
    return fourlw_dir_bytes(srv->cfg.data_dir);
}

uint64_t fourlw_log_dir_bytes(const struct server *srv)
{
    return fourlw_dir_bytes(srv->cfg.data_log_dir);
}

void fourlw_reset_server_stats(struct server *srv)
{
    struct server_stats *s = &srv->stats;
    s->latency_min_ms = s->latency_max_ms = s->latency_total_ms = s->latency_count = 0;
    s->packets_received = s->packets_sent = 0;
}

void fourlw_reset_conn_stats(struct server *srv)
{
    for (struct conn *o = srv->conns; o; o = o->next) {
        o->stats.latency_min_ms = o->stats.latency_max_ms = 0;
        o->stats.latency_total_ms = o->stats.latency_count = 0;
    }
}

static size_t count_open_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 2 ? n - 3 : 0; /* ., .. and the directory's own fd */
}

static void put_u64(fourlw_put_fn put, void *ctx, const char *key, uint64_t v)
{
    put(ctx, key, &(struct fourlw_value){.kind = FOURLW_U64, .u64 = v});
}

static void put_double(fourlw_put_fn put, void *ctx, const char *key, double v, int precision)
{
    put(ctx, key, &(struct fourlw_value){.kind = FOURLW_DOUBLE, .dbl = v, .precision = precision});
}

static void put_zxid(fourlw_put_fn put, void *ctx, const char *key, uint64_t v)
{
    put(ctx, key, &(struct fourlw_value){.kind = FOURLW_ZXID, .u64 = v});
}

void fourlw_monitor(const struct server *srv, fourlw_put_fn put, void *ctx)
{
    const struct server_stats *s = &srv->stats;
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    struct store_stats ss = {0};
    if (srv->store)
        store_stats(srv->store, &ss);
    struct fourlw_latency lat;
    fourlw_server_latency(srv, &lat);
    put(ctx, "version", &(struct fourlw_value){.kind = FOURLW_STRING, .str = FOURLW_ZK_VERSION});
    put(ctx, "server_state", &(struct fourlw_value){.kind = FOURLW_STRING, .str = fourlw_mode(srv)});
    put_double(put, ctx, "avg_latency", lat.avg_ms, 4);
    put_u64(put, ctx, "max_latency", lat.max_ms);
    put_u64(put, ctx, "min_latency", lat.min_ms);
    put_u64(put, ctx, "packets_received", s->packets_received);
    put_u64(put, ctx, "packets_sent", s->packets_sent);
    put_u64(put, ctx, "num_alive_connections", srv->conn_count);
    put_u64(put, ctx, "outstanding_requests", srv->outstanding);
    put_u64(put, ctx, "znode_count", tree_node_count(srv->tree));
    put_u64(put, ctx, "watch_count", watch_count(srv->watches));
    put_u64(put, ctx, "ephemerals_count", tree_ephemeral_count(srv->tree));
    put_u64(put, ctx, "approximate_data_size", tree_data_bytes(srv->tree));
    put_u64(put, ctx, "open_file_descriptor_count", count_open_fds());
    put_u64(put, ctx, "max_file_descriptor_count", (uint64_t)rl.rlim_cur);
    put_u64(put, ctx, "uptime", server_now_ms() - s->started_ms);
    put_u64(put, ctx, "global_sessions", zn_htable_count(&srv->sessions));
    put_zxid(put, ctx, "last_zxid", (uint64_t)tree_last_zxid(srv->tree));
    if (!config_standalone(&srv->cfg)) {
        put_u64(put, ctx, "epoch", ensemble_epoch(srv));
        put_u64(put, ctx, "leader_id", ensemble_leader_id(srv));
        if (ensemble_is_leader(srv))
            put_u64(put, ctx, "synced_followers", (uint64_t)ensemble_synced_followers(srv));
    }
    put_u64(put, ctx, "digest", (uint64_t)tree_digest(srv->tree));
    put_u64(put, ctx, "connection_rejected", s->connections_refused);
    put_u64(put, ctx, "malformed_packets", s->malformed_packets);
    put_u64(put, ctx, "fsync_count", ss.fsyncs);
    put_double(put, ctx, "avg_commit_batch", ss.average_batch_entries, 2);
    put_u64(put, ctx, "log_entries", ss.log_entries);
    put_u64(put, ctx, "log_segments", ss.log_segments);
    put_zxid(put, ctx, "snapshot_zxid", ss.snapshot_zxid);
    put_u64(put, ctx, "loop_stalls", s->loop_stalls);
    put_u64(put, ctx, "loop_turn_max_us", s->loop_turn_max_us);
}

void fourlw_environment(fourlw_put_string_fn put, void *ctx)
{
    struct utsname u;
    char host[256] = "";
    char cwd[1024] = "";
    char pid[24];
    gethostname(host, sizeof host - 1);
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, "?");
    uname(&u);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    put(ctx, "zookeeper.version", FOURLW_ZK_VERSION);
    put(ctx, "host.name", host);
    put(ctx, "znodefs.version", ZNODED_VERSION);
    put(ctx, "java.version", "none (znoded is written in C)");
    put(ctx, "os.name", u.sysname);
    put(ctx, "os.arch", u.machine);
    put(ctx, "os.version", u.release);
    put(ctx, "user.name", getenv("USER") ? getenv("USER") : "?");
    put(ctx, "user.home", getenv("HOME") ? getenv("HOME") : "?");
    put(ctx, "user.dir", cwd);
    put(ctx, "process.id", pid);
}

/* ---- the text answers ---- */

static void server_summary(const struct server *srv, struct text *t)
{
    struct fourlw_latency lat;
    fourlw_server_latency(srv, &lat);
    text_printf(t, "Latency min/avg/max: %" PRIu64 "/%.4f/%" PRIu64 "\n", lat.min_ms, lat.avg_ms,
                lat.max_ms);
    text_printf(t, "Received: %" PRIu64 "\n", srv->stats.packets_received);
    text_printf(t, "Sent: %" PRIu64 "\n", srv->stats.packets_sent);
    text_printf(t, "Connections: %zu\n", srv->conn_count);
    text_printf(t, "Outstanding: %" PRIu64 "\n", srv->outstanding);
    text_printf(t, "Zxid: 0x%" PRIx64 "\n", (uint64_t)tree_last_zxid(srv->tree));
    text_printf(t, "Mode: %s\n", fourlw_mode(srv));
    text_printf(t, "Node count: %zu\n", tree_node_count(srv->tree));
}

static void conn_line(const struct conn *c, struct text *t, bool full)
{
    struct fourlw_conn_info i;
    fourlw_conn_info(c, &i);
    text_printf(t, " /%s[%d](queued=%u,recved=%" PRIu64 ",sent=%" PRIu64, i.peer,
                full && i.has_session ? 1 : i.ready, i.queued, i.packets_received, i.packets_sent);
    if (full && i.has_session)
        text_printf(t,
                    ",sid=0x%" PRIx64 ",lop=%s,est=%" PRIu64 ",to=%d,lcxid=0x%x,lzxid=0x%" PRIx64
                    ",lresp=%" PRIu64 ",llat=%" PRIu64 ",minlat=%" PRIu64 ",avglat=%.4f,maxlat=%" PRIu64,
                    i.session_id, i.last_operation, i.established_ms, i.timeout_ms,
                    (unsigned)i.last_cxid, (uint64_t)i.last_zxid, i.last_response_ms,
                    i.last_latency_ms, i.latency.min_ms, i.latency.avg_ms, i.latency.max_ms);
    text_printf(t, ")\n");
}

static void mntr_line(void *ctx, const char *key, const struct fourlw_value *v)
{
    struct text *t = ctx;
    switch (v->kind) {
    case FOURLW_U64:
        text_printf(t, "zk_%s\t%" PRIu64 "\n", key, v->u64);
        break;
    case FOURLW_DOUBLE:
        text_printf(t, "zk_%s\t%.*f\n", key, v->precision, v->dbl);
        break;
    case FOURLW_STRING:
        text_printf(t, "zk_%s\t%s\n", key, v->str);
        break;
    case FOURLW_ZXID:
        text_printf(t, "zk_%s\t0x%" PRIx64 "\n", key, v->u64);
        break;
    }
}

static void word_conf(const struct server *srv, struct text *t)
{
    const struct config *cfg = &srv->cfg;
    text_printf(t, "clientPort=%d\n", cfg->client_port);
    text_printf(t, "secureClientPort=-1\n");
    text_printf(t, "dataDir=%s\n", cfg->data_dir);
    text_printf(t, "dataDirSize=%" PRIu64 "\n", fourlw_data_dir_bytes(srv));
    text_printf(t, "dataLogDir=%s\n", cfg->data_log_dir);
    text_printf(t, "dataLogSize=%" PRIu64 "\n", fourlw_log_dir_bytes(srv));
    text_printf(t, "tickTime=%d\n", cfg->tick_time_ms);
    text_printf(t, "maxClientCnxns=%d\n", cfg->max_client_cnxns);
    text_printf(t, "minSessionTimeout=%d\n", cfg->min_session_timeout_ms);
    text_printf(t, "maxSessionTimeout=%d\n", cfg->max_session_timeout_ms);
    text_printf(t, "clientPortListenBacklog=-1\n");
    text_printf(t, "serverId=%d\n", cfg->my_id);
    if (cfg->server_count > 0) {
        text_printf(t, "initLimit=%d\n", cfg->init_limit);
        text_printf(t, "syncLimit=%d\n", cfg->sync_limit);
        for (int i = 0; i < cfg->server_count; i++)
            text_printf(t, "server.%d=%s:%d:%d:%s\n", cfg->servers[i].id, cfg->servers[i].host,
                        cfg->servers[i].peer_port, cfg->servers[i].election_port,
                        cfg->servers[i].observer ? "observer" : "participant");
    }
}

static void envi_line(void *ctx, const char *key, const char *value)
{
    text_printf(ctx, "%s=%s\n", key, value);
}

struct wchc_ctx {
    struct text *t;
};

static void wchc_path(void *ctx, enum watch_kind kind, const char *path)
{
    struct wchc_ctx *w = ctx;
    text_printf(w->t, "\t%s\n", path);
    (void)kind;
}

static void wchp_path(void *ctx, enum watch_kind kind, const char *path,
                      struct watch_owner *const *owners, size_t count)
{
    struct text *t = ctx;
    text_printf(t, "%s\n", path);
    for (size_t i = 0; i < count; i++)
        text_printf(t, "\t0x%" PRIx64 "\n", fourlw_watch_owner_session(owners[i]));
    (void)kind;
}

struct dump_ctx {
    struct text *t;
    size_t with_ephemerals;
};

static int dump_path(void *ctx, const char *path)
{
    struct dump_ctx *d = ctx;
    text_printf(d->t, "\t%s\n", path);
    return 0;
}

/* ZooKeeper's dump: the sessions with their expiry, then each session's
 * ephemeral nodes. */
static void word_dump(struct server *srv, struct text *t)
{
    uint64_t now = server_now_ms();
    text_printf(t, "SessionTracker dump:\nGlobal Sessions(%zu):\n", zn_htable_count(&srv->sessions));
    struct zn_hiter it;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;)
        text_printf(t, "0x%" PRIx64 "\t%dms\texpires in %" PRId64 "ms%s\n", (uint64_t)s->id,
                    s->timeout_ms, (int64_t)(s->expires_at_ms - now), s->local_read_only ? "\tread-only" : "");
    size_t with = 0;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;)
        with += tree_session_ephemeral_count(srv->tree, s->id) > 0;
    text_printf(t, "ephemeral nodes dump:\nSessions with Ephemerals (%zu):\n", with);
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;) {
        if (tree_session_ephemeral_count(srv->tree, s->id) == 0)
            continue;
        text_printf(t, "0x%" PRIx64 ":\n", (uint64_t)s->id);
        struct dump_ctx d = {t, 0};
        tree_for_each_ephemeral(srv->tree, s->id, dump_path, &d);
    }
}

void fourlw_handle(struct conn *c, const char word[4])
{
    struct server *srv = c->server;
    struct text t = {0};
    unsigned bit = config_4lw_bit(word);
    ZN_DEBUG("four-letter word peer=%s word=%.4s", c->peer, word);
    if (!(srv->cfg.four_letter_words & bit)) {
        text_printf(&t, "%.4s is not executed because it is not in the whitelist.\n", word);
    } else if (bit == CONFIG_4LW_RUOK) {
        text_printf(&t, "imok");
    } else if (bit == CONFIG_4LW_SRVR) {
        text_printf(&t, "Zookeeper version: %s\n", FOURLW_ZK_VERSION);
        server_summary(srv, &t);
    } else if (bit == CONFIG_4LW_STAT) {
        text_printf(&t, "Zookeeper version: %s\nClients:\n", FOURLW_ZK_VERSION);
        for (struct conn *o = srv->conns; o; o = o->next)
            conn_line(o, &t, false);
        text_printf(&t, "\n");
        server_summary(srv, &t);
    } else if (bit == CONFIG_4LW_CONS) {
        for (struct conn *o = srv->conns; o; o = o->next)
            conn_line(o, &t, true);
        text_printf(&t, "\n");
    } else if (bit == CONFIG_4LW_CONF) {
        word_conf(srv, &t);
    } else if (bit == CONFIG_4LW_ENVI) {
        text_printf(&t, "Environment:\n");
        fourlw_environment(envi_line, &t);
    } else if (bit == CONFIG_4LW_MNTR) {
        fourlw_monitor(srv, mntr_line, &t);
    } else if (bit == CONFIG_4LW_WCHS) {
        text_printf(&t, "%zu connections watching %zu paths\nTotal watches:%zu\n",
                    fourlw_watching_connections(srv), fourlw_watched_paths(srv),
                    watch_count(srv->watches));
    } else if (bit == CONFIG_4LW_WCHC) {
        for (struct conn *o = srv->conns; o; o = o->next) {
            if (!o->session || o->watches.count == 0)
                continue;
            text_printf(&t, "0x%" PRIx64 "\n", (uint64_t)o->session->id);
            struct wchc_ctx w = {&t};
            watch_owner_foreach(&o->watches, wchc_path, &w);
        }
    } else if (bit == CONFIG_4LW_WCHP) {
        watch_foreach_path(srv->watches, wchp_path, &t);
    } else if (bit == CONFIG_4LW_ISRO) {
        /* "ro" while this member serves read-only sessions (no quorum) */
        text_printf(&t, fourlw_read_only(srv) ? "ro" : "rw");
    } else if (bit == CONFIG_4LW_DIRS) {
        text_printf(&t, "datadir_size: %" PRIu64 "\nlogdir_size: %" PRIu64 "\n",
                    fourlw_data_dir_bytes(srv), fourlw_log_dir_bytes(srv));
    } else if (bit == CONFIG_4LW_SRST) {
        fourlw_reset_server_stats(srv);
        text_printf(&t, "Server stats reset.\n");
    } else if (bit == CONFIG_4LW_CRST) {
        fourlw_reset_conn_stats(srv);
        text_printf(&t, "Connection stats reset.\n");
    } else if (bit == CONFIG_4LW_DUMP) {
        word_dump(srv, &t);
    } else if (bit == CONFIG_4LW_HASH) {
        text_printf(&t, "digest=%" PRIu64 ", zxid=0x%" PRIx64 "\n",
                    (uint64_t)tree_digest(srv->tree), (uint64_t)tree_last_zxid(srv->tree));
    } else {
        text_printf(&t, "%.4s is not executed because it is not in the whitelist.\n", word);
    }
    if (t.len > 0)
        jute_write_raw(&c->out, t.data, t.len);
    free(t.data);
    /* The word and anything after it are not a request stream. */
    c->rlen = 0;
    c->close_after_flush = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    conn_mark_dirty(c);
}
