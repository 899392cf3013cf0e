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

#include "assert.h"
#include "acl.h"
#include "cleaner.h"
#include "ensemble.h"
#include "metrics.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "request.h"
#include "server.h"
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
    if (!srv->clock_fresh) {
        srv->clock_us = uv_hrtime() / 1000;
        srv->clock_fresh = true;
    }
    return srv->clock_us;
}

/* Just before the loop blocks in poll, and just after the poll's callbacks:
 * the next reader takes a fresh value. */
static void on_clock_prepare(uv_prepare_t *h) { ((struct server *)h->data)->clock_fresh = false; }
static void on_clock_check(uv_check_t *h) { ((struct server *)h->data)->clock_fresh = false; }

static void clock_start(struct server *srv)
{
    uv_prepare_init(srv->loop, &srv->clock_prepare);
    uv_check_init(srv->loop, &srv->clock_check);
    srv->clock_prepare.data = srv->clock_check.data = srv;
    uv_prepare_start(&srv->clock_prepare, on_clock_prepare);
    uv_check_start(&srv->clock_check, on_clock_check);
    /* They must not keep the loop alive after server_stop closed the rest. */
    uv_unref((uv_handle_t *)&srv->clock_prepare);
    uv_unref((uv_handle_t *)&srv->clock_check);
}

int server_start(struct server *srv, uv_loop_t *loop, const struct config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = *cfg;
    clock_start(srv);
    srv->stats.started_ms = server_now_ms();
    srv->tree = tree_new();
    srv->watches = watch_manager_new(server_watch_notify, srv);
    if (!srv->tree || !srv->watches)
        return ZN_NOMEMORY;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", cfg->data_log_dir);
    if (make_dirs(dir) != 0) {
        ZN_ERROR("cannot create the data directory %s: %s", dir, strerror(errno));
        return ZN_IO;
    }
    int rc = store_open(&srv->store, loop, dir, NULL, pipeline_durable, srv);
    if (rc != 0) {
        ZN_ERROR("cannot open the log in %s: %s", dir, zn_strerror(rc));
        return rc;
    }
    srv->prep = prep_new(srv->tree);
    if (!srv->prep)
        return ZN_NOMEMORY;
    acl_install(srv);
    rc = cfg->server_count > 0 ? ensemble_start(srv) : pipeline_recover(srv);
    if (rc != 0) {
        ZN_ERROR("recovery from %s failed: %s", dir, zn_strerror(rc));
        return rc;
    }
    rc = server_listen(srv);
    if (rc != 0)
        return rc;
    rc = metrics_start(srv);
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

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    ZN_INFO("signal %d: stopping", signum);
    server_stop(srv);
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
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
    metrics_stop(srv);
    uv_timer_stop(&srv->session_timer);
    cleaner_stop(srv);
    uv_close((uv_handle_t *)&srv->session_timer, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&srv->clock_prepare, on_handle_closed);
    uv_close((uv_handle_t *)&srv->clock_check, on_handle_closed);
    while (srv->conns)
        conn_close(srv->conns, NULL);
    ensemble_stop(srv);
    /* Drains the log queue: writes already logged stay logged; their clients
     * are gone, and they will be applied again on the next start. */
    store_close(srv->store);
    srv->store = NULL;
}
