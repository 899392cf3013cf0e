/*
 * admin: the AdminServer (admin.h).  One table maps every command name and
 * alias to the function that writes its keys; the answer around them is
 * ZooKeeper's CommandResponse: the command's keys, then "command" (its
 * primary name, whatever alias was asked for) and "error" (null, or why it
 * could not answer).  An unknown command is answered as ZooKeeper answers
 * it: 200 with the error "Unknown command: NAME".
 */
#include "admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "assert.h"
#include "backup.h"
#include "ensemble.h"
#include "fourlw.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "watch.h"
#include "znode/errors.h"
#include "znode/proto.h"

#define ADMIN_JSON_TYPE "application/json"
#define ADMIN_HTML_TYPE "text/html; charset=utf-8"
#define ADMIN_MAX_CONNECTIONS 16

/* The most of zoo.cfg initial_configuration shows (real ones are a few hundred bytes). */
#define ADMIN_INITIAL_CONFIG_MAX_BYTES (64u * 1024)

struct admin {
    struct httpd *httpd;
    struct backup *backup;   /* the snapshot command running, or NULL */
    char *initial_config;    /* zoo.cfg's text as read at start; NULL when it could not be */
};

/* Writes a command's keys into j; returns NULL, or the text of its "error". */
typedef const char *(*admin_command_fn)(struct server *srv, struct json *j);

/* ---- the commands ---- */

static const char *cmd_ruok(struct server *srv, struct json *j)
{
    (void)srv;
    (void)j;
    return NULL;
}

static const char *cmd_configuration(struct server *srv, struct json *j)
{
    const struct config *cfg = &srv->cfg;
    json_member_i64(j, "client_port", cfg->client_port);
    json_member_string(j, "data_dir", cfg->data_dir);
    json_member_string(j, "data_log_dir", cfg->data_log_dir);
    json_member_i64(j, "tick_time", cfg->tick_time_ms);
    json_member_i64(j, "max_client_cnxns", cfg->max_client_cnxns);
    json_member_i64(j, "min_session_timeout", cfg->min_session_timeout_ms);
    json_member_i64(j, "max_session_timeout", cfg->max_session_timeout_ms);
    json_member_i64(j, "server_id", cfg->my_id);
    json_member_i64(j, "client_port_listen_backlog", -1); /* as ZooKeeper's default: the listener's own backlog */
    return NULL;
}

static void connection(struct json *j, const struct conn *c, bool brief)
{
    struct fourlw_conn_info i;
    fourlw_conn_info(c, &i);
    json_begin_object(j);
    json_member_string(j, "remote_socket_address", i.peer);
    json_member_u64(j, "interest_ops", i.interest_ops);
    json_member_u64(j, "outstanding_requests", i.queued);
    json_member_u64(j, "packets_received", i.packets_received);
    json_member_u64(j, "packets_sent", i.packets_sent);
    if (!brief) {
        json_member_u64(j, "session_id", i.session_id);
        json_member_string(j, "last_operation", i.has_session ? i.last_operation : "NA");
        json_member_u64(j, "established", i.established_ms);
        json_member_i64(j, "session_timeout", i.timeout_ms);
        json_member_i64(j, "last_cxid", i.has_session ? i.last_cxid : -1);
        json_member_i64(j, "last_zxid", i.has_session ? i.last_zxid : -1);
        json_member_u64(j, "last_response_time", i.last_response_ms);
        json_member_u64(j, "last_latency", i.last_latency_ms);
        json_member_u64(j, "min_latency", i.latency.min_ms);
        json_member_double(j, "avg_latency", i.latency.avg_ms);
        json_member_u64(j, "max_latency", i.latency.max_ms);
    }
    json_end_object(j);
}

/* "connections" and the always empty "secure_connections" (no TLS here). */
static void connections(struct server *srv, struct json *j, bool brief)
{
    json_key(j, "connections");
    json_begin_array(j);
    for (const struct conn *c = srv->conns; c; c = c->next)
        connection(j, c, brief);
    json_end_array(j);
    json_key(j, "secure_connections");
    json_begin_array(j);
    json_end_array(j);
}

static const char *cmd_connections(struct server *srv, struct json *j)
{
    connections(srv, j, false);
    return NULL;
}

static const char *cmd_connection_stat_reset(struct server *srv, struct json *j)
{
    (void)j;
    fourlw_reset_conn_stats(srv);
    return NULL;
}

static const char *cmd_stat_reset(struct server *srv, struct json *j)
{
    (void)j;
    fourlw_reset_server_stats(srv);
    return NULL;
}

static const char *cmd_dirs(struct server *srv, struct json *j)
{
    json_member_u64(j, "datadir_size", fourlw_data_dir_bytes(srv));
    json_member_u64(j, "logdir_size", fourlw_log_dir_bytes(srv));
    return NULL;
}

/* The sessions in expiry order: ZooKeeper groups them by expiry time. */
static int by_expiry(const void *a, const void *b)
{
    const struct session *x = *(const struct session *const *)a;
    const struct session *y = *(const struct session *const *)b;
    if (x->expires_at_ms != y->expires_at_ms)
        return x->expires_at_ms < y->expires_at_ms ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int ephemeral_path(void *ctx, const char *path)
{
    json_string(ctx, path);
    return 0;
}

static const char *cmd_dump(struct server *srv, struct json *j)
{
    size_t count = zn_htable_count(&srv->sessions);
    struct session **all = malloc((count ? count : 1) * sizeof *all);
    if (!all)
        return "out of memory";
    size_t n = 0;
    struct zn_hiter it;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; n < count && (s = session_next(&it)) != NULL;)
        all[n++] = s;
    qsort(all, n, sizeof *all, by_expiry);
    char key[32];
    json_key(j, "expiry_time_to_session_ids");
    json_begin_object(j);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || all[i]->expires_at_ms != all[i - 1]->expires_at_ms) {
            if (i > 0)
                json_end_array(j);
            snprintf(key, sizeof key, "%" PRIu64, all[i]->expires_at_ms);
            json_key(j, key);
            json_begin_array(j);
        }
        json_u64(j, (uint64_t)all[i]->id);
    }
    if (n > 0)
        json_end_array(j);
    json_end_object(j);
    json_key(j, "session_id_to_ephemeral_paths");
    json_begin_object(j);
    for (size_t i = 0; i < n; i++) {
        if (tree_session_ephemeral_count(srv->tree, all[i]->id) == 0)
            continue;
        snprintf(key, sizeof key, "%" PRIu64, (uint64_t)all[i]->id);
        json_key(j, key);
        json_begin_array(j);
        tree_for_each_ephemeral(srv->tree, all[i]->id, ephemeral_path, j);
        json_end_array(j);
    }
    json_end_object(j);
    free(all);
    return NULL;
}

static void environment_pair(void *ctx, const char *key, const char *value)
{
    json_member_string(ctx, key, value);
}

static const char *cmd_environment(struct server *srv, struct json *j)
{
    (void)srv;
    fourlw_environment(environment_pair, j);
    return NULL;
}

static const char *cmd_hash(struct server *srv, struct json *j)
{
    json_key(j, "digests");
    json_begin_array(j);
    json_begin_object(j);
    json_member_i64(j, "zxid", tree_last_zxid(srv->tree));
    json_member_u64(j, "digest", tree_digest(srv->tree));
    json_end_object(j);
    json_end_array(j);
    return NULL;
}

static const char *cmd_initial_configuration(struct server *srv, struct json *j)
{
    if (!srv->admin || !srv->admin->initial_config)
        return "the configuration file could not be read at start";
    json_member_string(j, "initial_configuration", srv->admin->initial_config);
    return NULL;
}

/* zoo.cfg's text as the server read it at start (ZooKeeper keeps its own
 * copy too, so a file edited since does not show). */
static char *read_initial_config(const char *path)
{
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f)
        return NULL;
    char *text = malloc(ADMIN_INITIAL_CONFIG_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, ADMIN_INITIAL_CONFIG_MAX_BYTES, f) : 0;
    bool whole = text && feof(f) && !ferror(f);
    fclose(f);
    if (!whole) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

static const char *cmd_is_read_only(struct server *srv, struct json *j)
{
    json_member_bool(j, "read_only", fourlw_read_only(srv));
    return NULL;
}

static const struct config_server *member(const struct config *cfg, int id)
{
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->servers[i].id == id)
            return &cfg->servers[i];
    return NULL;
}

static const char *cmd_leader(struct server *srv, struct json *j)
{
    if (config_standalone(&srv->cfg))
        return "server is not initialized"; /* ZooKeeper's words for a standalone server */
    uint32_t leader = ensemble_leader_id(srv);
    const struct config_server *s = ensemble_serving(srv) ? member(&srv->cfg, (int)leader) : NULL;
    json_member_bool(j, "is_leader", ensemble_is_leader(srv));
    json_member_i64(j, "leader_id", s ? (int64_t)leader : -1);
    json_member_string(j, "leader_ip", s ? s->host : "");
    return NULL;
}

static void monitor_value(void *ctx, const char *key, const struct fourlw_value *v)
{
    struct json *j = ctx;
    json_key(j, key);
    switch (v->kind) {
    case FOURLW_U64:
    case FOURLW_ZXID:
        json_u64(j, v->u64);
        break;
    case FOURLW_DOUBLE:
        json_double(j, v->dbl);
        break;
    case FOURLW_STRING:
        json_string(j, v->str);
        break;
    }
}

static const char *cmd_monitor(struct server *srv, struct json *j)
{
    fourlw_monitor(srv, monitor_value, j);
    return NULL;
}

static void server_stats(struct server *srv, struct json *j)
{
    struct fourlw_latency lat;
    fourlw_server_latency(srv, &lat);
    json_member_string(j, "version", FOURLW_ZK_VERSION);
    json_member_bool(j, "read_only", fourlw_read_only(srv));
    json_key(j, "server_stats");
    json_begin_object(j);
    json_member_u64(j, "packets_sent", srv->stats.packets_sent);
    json_member_u64(j, "packets_received", srv->stats.packets_received);
    json_member_u64(j, "data_dir_size", fourlw_data_dir_bytes(srv));
    json_member_u64(j, "log_dir_size", fourlw_log_dir_bytes(srv));
    json_member_string(j, "server_state", fourlw_mode(srv));
    json_member_i64(j, "last_processed_zxid", tree_last_zxid(srv->tree));
    json_member_u64(j, "outstanding_requests", srv->outstanding);
    json_member_double(j, "avg_latency", lat.avg_ms);
    json_member_u64(j, "max_latency", lat.max_ms);
    json_member_u64(j, "min_latency", lat.min_ms);
    json_member_u64(j, "num_alive_client_connections", srv->conn_count);
    json_member_u64(j, "uptime", server_now_ms() - srv->stats.started_ms);
    json_end_object(j);
    json_member_u64(j, "node_count", tree_node_count(srv->tree));
}

static const char *cmd_server_stats(struct server *srv, struct json *j)
{
    server_stats(srv, j);
    return NULL;
}

static const char *cmd_stats(struct server *srv, struct json *j)
{
    server_stats(srv, j);
    connections(srv, j, true);
    return NULL;
}

static const char *cmd_voting_view(struct server *srv, struct json *j)
{
    const struct config *cfg = &srv->cfg;
    json_key(j, "current_config");
    json_begin_object(j);
    for (int id = 0; id <= 255 && !config_standalone(cfg); id++) {
        const struct config_server *s = member(cfg, id);
        if (!s || s->observer || s->not_member)
            continue;
        char key[8], value[CONFIG_HOST_BYTES * 2 + 64];
        snprintf(key, sizeof key, "%d", id);
        snprintf(value, sizeof value, "%s:%d:%d:participant%s%s", s->host, s->peer_port,
                 s->election_port, s->client_address[0] ? ";" : "", s->client_address);
        json_member_string(j, key, value);
    }
    json_end_object(j);
    return NULL;
}

static const char *cmd_watch_summary(struct server *srv, struct json *j)
{
    json_member_u64(j, "num_connections", fourlw_watching_connections(srv));
    json_member_u64(j, "num_paths", fourlw_watched_paths(srv));
    json_member_u64(j, "num_total_watches", watch_count(srv->watches));
    return NULL;
}

/* Writes the watches grouped: each session's paths, or each path's sessions. */
static const char *watch_groups(struct server *srv, struct json *j, const char *name,
                                bool by_path)
{
    struct fourlw_watch *w;
    long n = fourlw_watches(srv, by_path, &w);
    if (n < 0)
        return "out of memory";
    json_key(j, name);
    json_begin_object(j);
    for (long i = 0; i < n; i++) {
        if (i == 0 || (by_path ? strcmp(w[i].path, w[i - 1].path) != 0
                               : w[i].session != w[i - 1].session)) {
            if (i > 0)
                json_end_array(j);
            char key[32];
            snprintf(key, sizeof key, "%" PRIu64, w[i].session);
            json_key(j, by_path ? w[i].path : key);
            json_begin_array(j);
        }
        if (by_path)
            json_u64(j, w[i].session);
        else
            json_string(j, w[i].path);
    }
    if (n > 0)
        json_end_array(j);
    json_end_object(j);
    free(w);
    return NULL;
}

static const char *cmd_watches(struct server *srv, struct json *j)
{
    return watch_groups(srv, j, "session_id_to_watched_paths", false);
}

static const char *cmd_watches_by_path(struct server *srv, struct json *j)
{
    return watch_groups(srv, j, "path_to_session_ids", true);
}

static const char *cmd_zabstate(struct server *srv, struct json *j)
{
    const struct config_server *self = member(&srv->cfg, srv->cfg.my_id);
    json_member_bool(j, "voting", !config_standalone(&srv->cfg) && self && !self->observer && !self->not_member);
    /* The core's phases are not visible here: a member that serves is in
     * broadcast; one that does not is electing or syncing. */
    json_member_string(j, "zabstate", config_standalone(&srv->cfg) ? "" : ensemble_serving(srv) ? "broadcast" : "election");
    return NULL;
}

/* ZooKeeper's last_snapshot: the newest snapshot in the store, its zxid in
 * hex (Long.toHexString, -1 when there is none) and when it was written, in
 * seconds: when this process handed it to the store, or, for the snapshot
 * it started from, when it started (the store keeps no time). */
static const char *cmd_last_snapshot(struct server *srv, struct json *j)
{
    struct store_stats st = {0};
    if (srv->store)
        store_stats(srv->store, &st);
    char zxid[24];
    snprintf(zxid, sizeof zxid, "%" PRIx64, st.snapshot_zxid ? st.snapshot_zxid : UINT64_MAX);
    json_member_string(j, "zxid", zxid);
    int64_t when = -1;
    if (st.snapshot_zxid)
        when = srv->snapshots.stored_zxid == (int64_t)st.snapshot_zxid ? srv->snapshots.stored_s
                                                                       : srv->stats.started_s;
    json_member_i64(j, "timestamp", when);
    return NULL;
}

/* ZooKeeper's observers: on the leader, the observers it syncs (each with
 * its sid only; docs/admin-api.md); elsewhere none. */
static const char *cmd_observers(struct server *srv, struct json *j)
{
    uint32_t ids[CONFIG_MAX_SERVERS];
    size_t n = ensemble_synced_observers(srv, ids, CONFIG_MAX_SERVERS);
    json_member_u64(j, "synced_observers", n);
    json_key(j, "observers");
    json_begin_array(j);
    for (size_t i = 0; i < n && i < CONFIG_MAX_SERVERS; i++) {
        json_begin_object(j);
        json_member_u64(j, "sid", ids[i]);
        json_end_object(j);
    }
    json_end_array(j);
    return NULL;
}

/* ZooKeeper 3.8's commands that have a meaning here, with its aliases;
 * docs/admin-api.md says why the others are not served. */
static const struct admin_command {
    const char *names[4]; /* the primary name first */
    admin_command_fn run;
} commands[] = {
    {{"configuration", "conf", "config"}, cmd_configuration},
    {{"connection_stat_reset", "crst"}, cmd_connection_stat_reset},
    {{"connections", "cons"}, cmd_connections},
    {{"dirs"}, cmd_dirs},
    {{"dump"}, cmd_dump},
    {{"environment", "env", "envi"}, cmd_environment},
    {{"hash"}, cmd_hash},
    {{"initial_configuration", "icfg"}, cmd_initial_configuration},
    {{"is_read_only", "isro"}, cmd_is_read_only},
    {{"last_snapshot", "lsnp"}, cmd_last_snapshot},
    {{"leader", "lead"}, cmd_leader},
    {{"monitor", "mntr"}, cmd_monitor},
    {{"observers", "obsr"}, cmd_observers},
    {{"ruok"}, cmd_ruok},
    {{"server_stats", "srvr"}, cmd_server_stats},
    {{"stat_reset", "srst"}, cmd_stat_reset},
    {{"stats", "stat"}, cmd_stats},
    {{"voting_view"}, cmd_voting_view},
    {{"watch_summary", "wchs"}, cmd_watch_summary},
    {{"watches", "wchc"}, cmd_watches},
    {{"watches_by_path", "wchp"}, cmd_watches_by_path},
    {{"zabstate"}, cmd_zabstate},
};
#define ADMIN_COMMANDS (sizeof commands / sizeof commands[0])

static const struct admin_command *find_command(const char *name)
{
    for (size_t i = 0; i < ADMIN_COMMANDS; i++)
        for (size_t k = 0; k < 4 && commands[i].names[k]; k++)
            if (strcmp(commands[i].names[k], name) == 0)
                return &commands[i];
    return NULL;
}

/* ---- the answers ---- */

static int reply_text(struct httpd_reply *reply, int status, const char *type,
                      struct metrics_text *t)
{
    if (t->error) {
        int rc = t->error;
        metrics_text_free(t);
        return rc;
    }
    reply->status = status;
    reply->content_type = type;
    reply->body = t->data;
    reply->len = t->len;
    t->data = NULL;
    return 0;
}

/* ZooKeeper's page at the command URL: a link to every command. */
static int command_list(struct server *srv, struct httpd_reply *reply)
{
    struct metrics_text t = {0};
    for (size_t i = 0; i <= ADMIN_COMMANDS; i++) {
        const char *name = i < ADMIN_COMMANDS ? commands[i].names[0] : "snapshot";
        metrics_text_printf(&t, "<a href=\"%s/%s\">%s</a>\n<br/>\n", srv->cfg.admin_command_url,
                            name, name);
    }
    return reply_text(reply, 200, ADMIN_HTML_TYPE, &t);
}

void admin_answer_end(struct json *j, const char *command, const char *error)
{
    json_member_string(j, "command", command);
    json_member_string(j, "error", error);
    json_end_object(j);
}

static int command_error(struct httpd_reply *reply, int status, const char *name,
                         const char *error)
{
    struct json j = {0};
    json_begin_object(&j);
    admin_answer_end(&j, name, error);
    return reply_text(reply, status, ADMIN_JSON_TYPE, &j.text);
}

/* As ZooKeeper 3.9, the snapshot command asks for ALL permission on "/":
 * the identities are the client's address ("ip") and, with an
 * "Authorization: digest user:password" header, that digest ("super" too
 * when it is the superDigest).  Sets *why when the answer is no. */
static bool snapshot_allowed(struct server *srv, const struct httpd_request *req,
                             const char **why)
{
    static char digest[ACL_MAX_AUTH_BYTES + 64];
    struct zn_id ids[3] = {{"ip", (char *)req->peer}};
    size_t n = 1;
    const char *auth = req->authorization;
    if (auth[0]) {
        if (strncasecmp(auth, "digest ", 7) != 0 || !strchr(auth + 7, ':') ||
            acl_digest(auth + 7, strlen(auth + 7), digest, sizeof digest) != 0) {
            *why = "the Authorization header must be 'digest user:password'";
            return false;
        }
        if (srv->cfg.super_digest[0] && strcmp(digest, srv->cfg.super_digest) == 0)
            ids[n++] = (struct zn_id){"super", ""};
        ids[n++] = (struct zn_id){"digest", digest};
    }
    const struct tree_node *root = tree_get(srv->tree, "/");
    struct zn_acl_vec acl = tree_node_acl(root);
    if (acl_check(&acl, ZN_PERM_ALL, ids, n, srv->cfg.skip_acl) == 0)
        return true;
    *why = "not authorized: a snapshot needs ALL permission on / (send 'Authorization: digest "
           "user:password')";
    return false;
}

/* ZooKeeper 3.9's restore command replaces a running member's database with
 * the snapshot POSTed to it.  Replacing the tree under a running ensemble
 * member (its peers, its sessions, its watches) is not done here: a member
 * is restored stopped, from a backup file. */
#define ADMIN_RESTORE_REFUSAL \
    "restore is not served by a running member: stop it, then run 'znoded --restore FILE " \
    "CONFIG' into an empty data directory and start it again"

/* ZooKeeper 3.9's snapshot command: the store as a backup file (backup.c),
 * answered once the copy is made off the loop. */
static int snapshot(struct server *srv, const struct httpd_request *req, struct httpd_reply *reply)
{
    const char *why;
    if (!snapshot_allowed(srv, req, &why))
        return command_error(reply, 403, "snapshot", why);
    int rc = backup_start(srv, srv->admin->httpd, reply->ticket, &srv->admin->backup);
    if (rc == ZN_THROTTLEDOP)
        return command_error(reply, 503, "snapshot", "a snapshot is being taken; try again when it is done");
    if (rc != 0)
        return command_error(reply, 500, "snapshot", zn_strerror(rc));
    reply->deferred = true;
    return 0;
}

static int run_command(struct server *srv, const char *name, struct httpd_reply *reply)
{
    const struct admin_command *cmd = find_command(name);
    struct json j = {0};
    json_begin_object(&j);
    char unknown[HTTPD_PATH_BYTES + 32];
    const char *error;
    if (cmd) {
        error = cmd->run(srv, &j);
    } else {
        snprintf(unknown, sizeof unknown, "Unknown command: %s", name);
        error = unknown;
    }
    admin_answer_end(&j, cmd ? cmd->names[0] : name, error);
    return reply_text(reply, 200, ADMIN_JSON_TYPE, &j.text);
}

int admin_answer(struct server *srv, const struct httpd_request *req, struct httpd_reply *reply)
{
    ZN_ASSERT(srv && req && reply);
    const char *base = srv->cfg.admin_command_url;
    size_t base_len = strcmp(base, "/") == 0 ? 0 : strlen(base);
    const char *rest = strncmp(req->path, base, base_len) == 0 ? req->path + base_len : NULL;
    if (!rest || (rest[0] != '\0' && rest[0] != '/')) {
        reply->status = 404;
        return 0;
    }
    if (strcmp(rest, "/restore") == 0 || strcmp(rest, "/rest") == 0)
        return command_error(reply, 501, "restore", ADMIN_RESTORE_REFUSAL);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply->status = 405;
        return 0;
    }
    if (rest[0] == '\0' || strcmp(rest, "/") == 0)
        return command_list(srv, reply);
    if ((strcmp(rest, "/snapshot") == 0 || strcmp(rest, "/snap") == 0) && srv->admin)
        return snapshot(srv, req, reply);
    return run_command(srv, rest + 1, reply);
}

static int handle(void *ctx, const struct httpd_request *req, struct httpd_reply *reply)
{
    return admin_answer(ctx, req, reply);
}

int admin_start(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    if (!cfg->admin_enabled || srv->admin)
        return 0;
    struct admin *a = calloc(1, sizeof *a);
    if (!a)
        return ZN_NOMEMORY;
    struct httpd_options opts = {
        .name = "admin http",
        .host = cfg->admin_address,
        .port = cfg->admin_port,
        .max_connections = ADMIN_MAX_CONNECTIONS,
        .timeout_ms = (uint64_t)cfg->admin_idle_timeout_ms,
        .handler = handle,
    };
    int rc = httpd_start(&a->httpd, srv->loop, &opts, NULL, srv);
    if (rc != 0) {
        free(a);
        if (cfg->admin_explicit)
            return rc;
        ZN_WARN("admin: no AdminServer: %s:%d cannot be served (the default admin.serverPort); "
                "set admin.serverPort, or admin.enableServer=false",
                cfg->admin_address, cfg->admin_port);
        return 0;
    }
    a->initial_config = read_initial_config(cfg->path);
    srv->admin = a;
    ZN_INFO("admin: AdminServer on http://%s:%d%s", cfg->admin_address, httpd_port(a->httpd),
            cfg->admin_command_url);
    return 0;
}

void admin_stop(struct server *srv)
{
    if (!srv->admin)
        return;
    backup_abandon(srv->admin->backup);
    httpd_stop(srv->admin->httpd);
    free(srv->admin->initial_config);
    free(srv->admin);
    srv->admin = NULL;
}
