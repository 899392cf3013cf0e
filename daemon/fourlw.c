/*
 * Four-letter words on the client port (ruok, srvr, stat, conf, envi, mntr,
 * cons, wchs, wchc, wchp, dirs, isro, crst, srst, hash), in ZooKeeper's
 * output formats so that existing monitoring scripts parse them.  A word not
 * in 4lw.commands.whitelist gets ZooKeeper's refusal line.  The connection is
 * closed once the answer is sent.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <dirent.h>
#include <unistd.h>

#include "ensemble.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tree.h"

#define ZNODED_VERSION "0.1.0"
/* The ZooKeeper version we are compatible with, as clients and tools parse it. */
#define FOURLW_ZK_VERSION "3.8.4-znodefs-" ZNODED_VERSION ", built on " __DATE__

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

static const char *server_mode(const struct server *srv)
{
    if (srv->cfg.server_count == 0)
        return "standalone";
    if (!ensemble_serving(srv) && srv->cfg.read_only_mode)
        return "read-only";
    return ensemble_role_name(srv);
}

static void latency(const struct server *srv, struct text *t, const char *sep)
{
    const struct server_stats *s = &srv->stats;
    double avg = s->latency_count ? (double)s->latency_total_ms / (double)s->latency_count : 0.0;
    text_printf(t, "Latency min/avg/max: %" PRIu64 "/%.4f/%" PRIu64 "%s",
                s->latency_count ? s->latency_min_ms : 0, avg, s->latency_max_ms, sep);
}

static void server_summary(const struct server *srv, struct text *t)
{
    latency(srv, t, "\n");
    text_printf(t, "Received: %" PRIu64 "\n", srv->stats.packets_received);
    text_printf(t, "Sent: %" PRIu64 "\n", srv->stats.packets_sent);
    text_printf(t, "Connections: %zu\n", srv->conn_count);
    text_printf(t, "Outstanding: %" PRIu64 "\n", srv->outstanding);
    text_printf(t, "Zxid: 0x%" PRIx64 "\n", (uint64_t)tree_last_zxid(srv->tree));
    text_printf(t, "Mode: %s\n", server_mode(srv));
    text_printf(t, "Node count: %zu\n", tree_node_count(srv->tree));
}

static void conn_brief(const struct conn *c, struct text *t)
{
    text_printf(t, " /%s[%d](queued=%u,recved=%" PRIu64 ",sent=%" PRIu64 ")\n", c->peer,
                c->state == CONN_READY, c->queued, c->stats.packets_received,
                c->stats.packets_sent);
}

static void conn_full(const struct conn *c, struct text *t)
{
    if (!c->session) {
        conn_brief(c, t);
        return;
    }
    const struct conn_stats *s = &c->stats;
    double avg = s->latency_count ? (double)s->latency_total_ms / (double)s->latency_count : 0.0;
    text_printf(t,
                " /%s[1](queued=%u,recved=%" PRIu64 ",sent=%" PRIu64 ",sid=0x%" PRIx64
                ",lop=%s,est=%" PRIu64 ",to=%d,lcxid=0x%x,lzxid=0x%" PRIx64 ",lresp=%" PRIu64
                ",llat=%" PRIu64 ",minlat=%" PRIu64 ",avglat=%.4f,maxlat=%" PRIu64 ")\n",
                c->peer, c->queued, s->packets_received, s->packets_sent,
                (uint64_t)c->session->id, s->last_op ? zn_op_name(s->last_op) : "NA",
                s->established_ms, c->timeout_ms, (unsigned)s->last_cxid,
                (uint64_t)s->last_zxid, s->last_response_ms, s->last_latency_ms,
                s->latency_count ? s->latency_min_ms : 0, avg, s->latency_max_ms);
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

static void word_mntr(const struct server *srv, struct text *t)
{
    const struct server_stats *s = &srv->stats;
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    struct store_stats ss = {0};
    if (srv->store)
        store_stats(srv->store, &ss);
    text_printf(t, "zk_version\t%s\n", FOURLW_ZK_VERSION);
    text_printf(t, "zk_server_state\t%s\n", server_mode(srv));
    text_printf(t, "zk_avg_latency\t%.4f\n",
                s->latency_count ? (double)s->latency_total_ms / (double)s->latency_count : 0.0);
    text_printf(t, "zk_max_latency\t%" PRIu64 "\n", s->latency_max_ms);
    text_printf(t, "zk_min_latency\t%" PRIu64 "\n", s->latency_count ? s->latency_min_ms : 0);
    text_printf(t, "zk_packets_received\t%" PRIu64 "\n", s->packets_received);
    text_printf(t, "zk_packets_sent\t%" PRIu64 "\n", s->packets_sent);
    text_printf(t, "zk_num_alive_connections\t%zu\n", srv->conn_count);
    text_printf(t, "zk_outstanding_requests\t%" PRIu64 "\n", srv->outstanding);
    text_printf(t, "zk_znode_count\t%zu\n", tree_node_count(srv->tree));
    text_printf(t, "zk_watch_count\t%zu\n", watch_count(srv->watches));
    text_printf(t, "zk_ephemerals_count\t%zu\n", tree_ephemeral_count(srv->tree));
    text_printf(t, "zk_approximate_data_size\t%zu\n", tree_data_bytes(srv->tree));
    text_printf(t, "zk_open_file_descriptor_count\t%zu\n", count_open_fds());
    text_printf(t, "zk_max_file_descriptor_count\t%llu\n", (unsigned long long)rl.rlim_cur);
    text_printf(t, "zk_uptime\t%" PRIu64 "\n", server_now_ms() - s->started_ms);
    text_printf(t, "zk_global_sessions\t%zu\n", srv->session_count);
    text_printf(t, "zk_last_zxid\t0x%" PRIx64 "\n", (uint64_t)tree_last_zxid(srv->tree));
    if (srv->ens) {
        text_printf(t, "zk_epoch\t%u\n", ensemble_epoch(srv));
        text_printf(t, "zk_leader_id\t%u\n", ensemble_leader_id(srv));
        if (ensemble_is_leader(srv))
            text_printf(t, "zk_synced_followers\t%d\n", ensemble_synced_followers(srv));
    }
    text_printf(t, "zk_digest\t%" PRIu64 "\n", (uint64_t)tree_digest(srv->tree));
    text_printf(t, "zk_connection_rejected\t%" PRIu64 "\n", s->connections_refused);
    text_printf(t, "zk_malformed_packets\t%" PRIu64 "\n", s->malformed_packets);
    text_printf(t, "zk_fsync_count\t%" PRIu64 "\n", ss.fsyncs);
    text_printf(t, "zk_avg_commit_batch\t%.2f\n", ss.average_batch_entries);
    text_printf(t, "zk_log_entries\t%" PRIu64 "\n", ss.log_entries);
    text_printf(t, "zk_snapshot_zxid\t0x%" PRIx64 "\n", ss.snapshot_zxid);
    text_printf(t, "zk_loop_stalls\t%" PRIu64 "\n", s->loop_stalls);
    text_printf(t, "zk_loop_turn_max_us\t%" PRIu64 "\n", s->loop_turn_max_us);
}

static void word_conf(const struct server *srv, struct text *t)
{
    const struct config *cfg = &srv->cfg;
    text_printf(t, "clientPort=%d\n", cfg->client_port);
    text_printf(t, "secureClientPort=-1\n");
    text_printf(t, "dataDir=%s\n", cfg->data_dir);
    text_printf(t, "dataDirSize=0\n");
    text_printf(t, "dataLogDir=%s\n", cfg->data_log_dir);
    text_printf(t, "dataLogSize=0\n");
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

static void word_envi(const struct server *srv, struct text *t)
{
    struct utsname u;
    char host[256] = "";
    char cwd[1024] = "";
    gethostname(host, sizeof host - 1);
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, "?");
    uname(&u);
    text_printf(t, "Environment:\n");
    text_printf(t, "zookeeper.version=%s\n", FOURLW_ZK_VERSION);
    text_printf(t, "host.name=%s\n", host);
    text_printf(t, "znodefs.version=%s\n", ZNODED_VERSION);
    text_printf(t, "java.version=none (znoded is written in C)\n");
    text_printf(t, "os.name=%s\n", u.sysname);
    text_printf(t, "os.arch=%s\n", u.machine);
    text_printf(t, "os.version=%s\n", u.release);
    text_printf(t, "user.name=%s\n", getenv("USER") ? getenv("USER") : "?");
    text_printf(t, "user.home=%s\n", getenv("HOME") ? getenv("HOME") : "?");
    text_printf(t, "user.dir=%s\n", cwd);
    text_printf(t, "process.id=%d\n", (int)getpid());
    (void)srv;
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
    for (size_t i = 0; i < count; i++) {
        const struct conn *c =
            (const struct conn *)((const char *)owners[i] - offsetof(struct conn, watches));
        text_printf(t, "\t0x%" PRIx64 "\n", c->session ? (uint64_t)c->session->id : 0);
    }
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
    text_printf(t, "SessionTracker dump:\nGlobal Sessions(%zu):\n", srv->session_count);
    for (size_t b = 0; b < srv->session_buckets; b++)
        for (struct session *s = srv->sessions[b]; s; s = s->next_in_bucket)
            text_printf(t, "0x%" PRIx64 "\t%dms\texpires in %" PRId64 "ms%s\n", (uint64_t)s->id,
                        s->timeout_ms, (int64_t)(s->expires_at_ms - now),
                        s->local_read_only ? "\tread-only" : "");
    size_t with = 0;
    for (size_t b = 0; b < srv->session_buckets; b++)
        for (struct session *s = srv->sessions[b]; s; s = s->next_in_bucket)
            with += tree_session_ephemeral_count(srv->tree, s->id) > 0;
    text_printf(t, "ephemeral nodes dump:\nSessions with Ephemerals (%zu):\n", with);
    for (size_t b = 0; b < srv->session_buckets; b++)
        for (struct session *s = srv->sessions[b]; s; s = s->next_in_bucket) {
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
            conn_brief(o, &t);
        text_printf(&t, "\n");
        server_summary(srv, &t);
    } else if (bit == CONFIG_4LW_CONS) {
        for (struct conn *o = srv->conns; o; o = o->next)
            conn_full(o, &t);
        text_printf(&t, "\n");
    } else if (bit == CONFIG_4LW_CONF) {
        word_conf(srv, &t);
    } else if (bit == CONFIG_4LW_ENVI) {
        word_envi(srv, &t);
    } else if (bit == CONFIG_4LW_MNTR) {
        word_mntr(srv, &t);
    } else if (bit == CONFIG_4LW_WCHS) {
        size_t watching = 0;
        for (struct conn *o = srv->conns; o; o = o->next)
            watching += o->watches.count > 0;
        text_printf(&t, "%zu connections watching %zu paths\nTotal watches:%zu\n", watching,
                    watch_path_count(srv->watches), watch_count(srv->watches));
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
        text_printf(&t, srv->ens && !ensemble_serving(srv) && srv->cfg.read_only_mode ? "ro" : "rw");
    } else if (bit == CONFIG_4LW_DIRS) {
        struct store_stats ss = {0};
        if (srv->store)
            store_stats(srv->store, &ss);
        text_printf(&t, "datadir_size: %" PRIu64 "\nlogdir_size: %" PRIu64 "\n", (uint64_t)0,
                    ss.log_bytes);
    } else if (bit == CONFIG_4LW_SRST) {
        memset(&srv->stats.latency_min_ms, 0, sizeof(uint64_t) * 4);
        srv->stats.packets_received = srv->stats.packets_sent = 0;
        text_printf(&t, "Server stats reset.\n");
    } else if (bit == CONFIG_4LW_CRST) {
        for (struct conn *o = srv->conns; o; o = o->next) {
            o->stats.latency_min_ms = o->stats.latency_max_ms = 0;
            o->stats.latency_total_ms = o->stats.latency_count = 0;
        }
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
