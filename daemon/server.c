/*
 * Server start and stop: opening the store and recovering the tree from it,
 * listening, the session timer, and a clean stop on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "assert.h"
#include "acl.h"
#include "admin.h"
#include "cleaner.h"
#include "ensemble.h"
#include "metrics.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "request.h"
#include "saslauth.h"
#include "server.h"
#include "snapshot.h"
#include "store.h"
#include "tree.h"
#include "txn.h"

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

uint64_t server_clock_us(struct server *srv)
{
    if (!srv->clock.fresh) {
        srv->clock.us = uv_hrtime() / 1000;
        srv->clock.fresh = true;
    }
    return srv->clock.us;
}

/* A loop turn whose callbacks took longer than this is a stall: every client
 * of the member waited that long (logged, counted in mntr). */
#define SERVER_LOOP_STALL_MS 20
#define SERVER_LOOP_STALL_LOG_EVERY_MS 1000

/* Once per loop turn, after the poll's callbacks: the turn's work is its
 * time since the last check less the time the loop waited in poll. */
static void loop_turn_measure(struct server *srv)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(srv->loop);
    if (srv->clock.turn_start_ns) {
        uint64_t turn = now - srv->clock.turn_start_ns, waited = idle - srv->clock.turn_idle_ns;
        uint64_t work_us = (turn > waited ? turn - waited : 0) / 1000;
        if (work_us > srv->stats.loop_turn_max_us)
            srv->stats.loop_turn_max_us = work_us;
        if (work_us >= SERVER_LOOP_STALL_MS * 1000) {
            srv->stats.loop_stalls++;
            uint64_t now_ms = now / 1000000;
            if (now_ms - srv->clock.stall_logged_ms >= SERVER_LOOP_STALL_LOG_EVERY_MS) {
                ZN_INFO("loop: one turn's work took %" PRIu64 " ms (%" PRIu64
                        " more such turns since the last report)",
                        work_us / 1000, srv->clock.stalls_unlogged);
                srv->clock.stall_logged_ms = now_ms;
                srv->clock.stalls_unlogged = 0;
            } else {
                srv->clock.stalls_unlogged++;
            }
        }
    }
    srv->clock.turn_start_ns = now;
    srv->clock.turn_idle_ns = idle;
}

/* Just before the loop blocks in poll, and just after the poll's callbacks:
 * the next reader takes a fresh value. */
static void on_clock_prepare(uv_prepare_t *h) { ((struct server *)h->data)->clock.fresh = false; }
static void on_clock_check(uv_check_t *h)
{
    struct server *srv = h->data;
    srv->clock.fresh = false;
    if (srv->ens)
        ensemble_turn_done(srv);
    loop_turn_measure(srv);
}

static void clock_start(struct server *srv)
{
    /* for loop_turn_measure; before the loop runs (libuv's rule) */
    if (uv_loop_configure(srv->loop, UV_METRICS_IDLE_TIME) != 0)
        ZN_WARN("loop: no idle-time metrics; stalls go unmeasured");
    uv_prepare_init(srv->loop, &srv->clock.prepare);
    uv_check_init(srv->loop, &srv->clock.check);
    srv->clock.prepare.data = srv->clock.check.data = srv;
    uv_prepare_start(&srv->clock.prepare, on_clock_prepare);
    uv_check_start(&srv->clock.check, on_clock_check);
    /* They must not keep the loop alive after server_stop closed the rest. */
    uv_unref((uv_handle_t *)&srv->clock.prepare);
    uv_unref((uv_handle_t *)&srv->clock.check);
}

/* The log's segment size: preAllocSize, capped by txnLogSizeLimitInKb. */
static uint64_t server_segment_bytes(const struct config *cfg)
{
    uint64_t bytes = cfg->log_segment_bytes ? cfg->log_segment_bytes : ZN_STORE_SEGMENT_BYTES;
    if (cfg->log_size_limit && cfg->log_size_limit < bytes)
        bytes = cfg->log_size_limit;
    return bytes < ZN_STORE_SEGMENT_MIN_BYTES ? ZN_STORE_SEGMENT_MIN_BYTES : bytes;
}

int server_start(struct server *srv, uv_loop_t *loop, const struct config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = *cfg;
    clock_start(srv);
    srv->stats.started_ms = server_now_ms();
    srv->stats.started_s = (int64_t)time(NULL);
    srv->tree = tree_new();
    srv->watches = watch_manager_new(server_watch_notify, srv);
    jute_writer_init(&srv->event_frame);
    if (!srv->tree || !srv->watches)
        return ZN_NOMEMORY;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", cfg->data_log_dir);
    if (make_dirs(dir) != 0) {
        ZN_ERROR("cannot create the data directory %s: %s", dir, strerror(errno));
        return ZN_IO;
    }
    /* Snapshot files in dataDir, the log in dataLogDir, as ZooKeeper keeps them. */
    if (make_dirs(cfg->data_dir) != 0) {
        ZN_ERROR("cannot create the data directory %s: %s", cfg->data_dir, strerror(errno));
        return ZN_IO;
    }
    /* autopurge.*: snapshots kept, and whether they go after every snapshot
     * (no purgeInterval) or only when purged (server_start_purge). */
    _Static_assert(CONFIG_SNAP_RETAIN_MAX == ZN_STORE_SNAPSHOTS_KEPT_MAX,
                   "autopurge.snapRetainCount's bound is the store's");
    struct store_options opts = {.queue_max_bytes = cfg->store_queue_max_bytes,
                                 .snap_dir = cfg->data_dir,
                                 .segment_bytes = server_segment_bytes(cfg),
                                 .snapshots_kept = cfg->snap_retain_count,
                                 .purge_on_call = cfg->purge_interval_hours >= 0};
    int rc = store_open(&srv->store, loop, dir, &opts, ensemble_durable, srv);
    if (rc != 0) {
        ZN_ERROR("cannot open the log in %s: %s", dir, zn_strerror(rc));
        return rc;
    }
    srv->prep = prep_new(srv->tree);
    if (!srv->prep)
        return ZN_NOMEMORY;
    acl_install(srv);
    if ((srv->cfg.sasl.enabled || srv->cfg.sasl.quorum_enable) && saslauth_init(&srv->cfg.sasl) != 0)
        return ZN_SYSTEMERROR;
    rc = ensemble_start(srv);
    if (rc != 0) {
        ZN_ERROR("recovery from %s failed: %s", dir, zn_strerror(rc));
        return rc;
    }
    if ((rc = server_start_purge(srv)) != 0)
        return rc;
    rc = server_listen(srv);
    if (rc != 0)
        return rc;
    rc = metrics_start(srv);
    if (rc != 0)
        return rc;
    rc = admin_start(srv);
    if (rc != 0)
        return rc;
    server_install_signals(srv);
    /* Containers and TTL nodes: only the leader's cleanup writes are accepted. */
    rc = cleaner_start(srv);
    if (rc != 0)
        return rc;
    return session_start_timer(srv);
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

/* autopurge.purgeInterval=N: the store's purge (replication/store.h:
 * store_purge) now and every N hours, as ZooKeeper's DatadirCleanupManager
 * runs PurgeTxnLog; the snapshots taken in between accumulate until then. */
static void on_purge_timer(uv_timer_t *t)
{
    struct server *srv = t->data;
    if (!srv->store)
        return;
    int rc = store_purge(srv->store);
    if (rc != 0)
        ZN_ERROR("autopurge: cannot queue a purge: %s (the next runs in %ld h)", zn_strerror(rc),
                 srv->cfg.purge_interval_hours);
    else
        ZN_INFO("autopurge: purge queued: keeping the newest %u snapshots (autopurge.snapRetainCount)",
                srv->cfg.snap_retain_count);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    ZN_INFO("signal %d: stopping", signum);
    server_stop(srv);
}

int server_start_purge(struct server *srv)
{
    if (srv->cfg.purge_interval_hours <= 0) {
        if (srv->cfg.purge_interval_hours == 0)
            ZN_INFO("autopurge: autopurge.purgeInterval=0: no purge; snapshots and log segments "
                    "accumulate in %s and %s", srv->cfg.data_dir, srv->cfg.data_log_dir);
        return 0;
    }
    uint64_t ms = (uint64_t)srv->cfg.purge_interval_hours * 3600u * 1000u;
    uv_timer_init(srv->loop, &srv->purge_timer);
    srv->purge_timer.data = srv;
    srv->purge_timer_on = true;
    ZN_INFO("autopurge: a purge now and every %ld h, keeping %u snapshots",
            srv->cfg.purge_interval_hours, srv->cfg.snap_retain_count);
    int rc = uv_timer_start(&srv->purge_timer, on_purge_timer, 0, ms);
    if (rc != 0) {
        ZN_ERROR("autopurge: cannot start the purge timer: %s", uv_strerror(rc));
        return ZN_SYSTEMERROR;
    }
    return 0;
}

int server_install_signals(struct server *srv)
{
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    return uv_signal_start(&srv->sigint, on_signal, SIGINT);
}

void server_stop(struct server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    server_unlisten(srv);
    metrics_stop(srv);
    admin_stop(srv);
    uv_timer_stop(&srv->session_timer);
    if (srv->purge_timer_on) {
        srv->purge_timer_on = false;
        uv_close((uv_handle_t *)&srv->purge_timer, on_handle_closed);
    }
    cleaner_stop(srv);
    snapshot_abandon(srv);
    uv_close((uv_handle_t *)&srv->session_timer, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&srv->clock.prepare, on_handle_closed);
    uv_close((uv_handle_t *)&srv->clock.check, on_handle_closed);
    while (srv->conns)
        conn_close(srv->conns, NULL);
    ensemble_stop(srv);
    /* Drains the log queue: writes already logged stay logged; their clients
     * are gone, and they will be applied again on the next start. */
    store_close(srv->store);
    srv->store = NULL;
}
