/*
 * The container and TTL cleaner (see cleaner.h): a libuv timer, a walk of
 * the tree for candidates, and one deleteContainer request per candidate
 * submitted as the server's own write.  ZooKeeper keeps indexes of its
 * containers and TTL nodes; we walk the tree (O(nodes) per check, every
 * minute by default), which is simpler and cheap at the intervals used.
 */
#include "cleaner.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "ensemble.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "tree.h"

/* The cleaner's timer, from cleaner_start until closed. */
struct cleaner {
    uv_timer_t timer;
    struct server *srv;
};

static bool is_candidate(const struct tree_node *n, int64_t now_ms, int64_t max_never_used_ms)
{
    if (tree_node_child_count(n) != 0)
        return false;
    struct zn_stat st;
    tree_node_stat(n, &st);
    if (tree_node_is_container(n)) {
        /* cversion > 0: keep a new container until it has had a child, so one
         * created just before a check is not deleted at once. */
        if (st.cversion > 0)
            return true;
        return max_never_used_ms != 0 && now_ms - st.mtime > max_never_used_ms;
    }
    int64_t ttl = tree_node_ttl_ms(n);
    return ttl > 0 && now_ms - st.mtime > ttl;
}

size_t cleaner_candidates(const struct tree *t, int64_t now_ms, int64_t max_never_used_ms,
                          int (*fn)(void *ctx, const char *path), void *ctx)
{
    size_t cap = 64, len = 0, found = 0;
    const struct tree_node **stack = malloc(cap * sizeof *stack);
    if (!stack)
        return 0;
    stack[len++] = tree_get(t, "/");
    while (len > 0) {
        const struct tree_node *n = stack[--len];
        if (is_candidate(n, now_ms, max_never_used_ms)) {
            found++;
            if (fn(ctx, tree_node_path(n)) != 0)
                break;
        }
        uint32_t k = tree_node_child_count(n);
        for (uint32_t i = 0; i < k; i++) {
            if (len == cap) {
                const struct tree_node **p = realloc(stack, cap * 2 * sizeof *stack);
                if (!p) {
                    free(stack);
                    return found; /* out of memory: the rest waits for the next check */
                }
                stack = p;
                cap *= 2;
            }
            stack[len++] = tree_node_child(n, i);
        }
    }
    free(stack);
    return found;
}

struct path_list {
    char **paths;
    size_t count, cap;
};

static int collect(void *ctx, const char *path)
{
    struct path_list *l = ctx;
    if (l->count == CLEANER_MAX_CANDIDATES_PER_CHECK)
        return 1;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (!p)
            return 1;
        l->paths = p;
        l->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return 1;
    l->paths[l->count++] = copy;
    return 0;
}

size_t cleaner_check(struct server *srv)
{
    /* Copy the paths first: submitting may change what the tree returns. */
    struct path_list l = {0};
    cleaner_candidates(srv->tree, server_wall_ms(), srv->cfg.container_max_never_used_interval_ms,
                       collect, &l);
    size_t submitted = 0;
    for (size_t i = 0; i < l.count; i++) {
        struct zn_request req = {.type = ZN_OP_DELETECONTAINER, .path = l.paths[i], .version = -1};
        ZN_INFO("Attempting to delete candidate container: %s", l.paths[i]);
        int rc = ensemble_submit_system(srv, &req);
        if (rc == 0)
            submitted++;
        else
            ZN_DEBUG("deleteContainer path=%s: %s", l.paths[i], zn_strerror(rc));
        free(l.paths[i]);
    }
    free(l.paths);
    return submitted;
}

static void on_timer(uv_timer_t *timer)
{
    struct cleaner *cl = timer->data;
    if (!cl->srv->stopping)
        cleaner_check(cl->srv);
}

int cleaner_start(struct server *srv)
{
    ZN_ASSERT(srv->cleaner == NULL);
    struct cleaner *cl = calloc(1, sizeof *cl);
    if (!cl)
        return UV_ENOMEM;
    cl->srv = srv;
    int rc = uv_timer_init(srv->loop, &cl->timer);
    if (rc != 0) {
        free(cl);
        return rc;
    }
    cl->timer.data = cl;
    srv->cleaner = cl;
    uint64_t interval = (uint64_t)srv->cfg.container_check_interval_ms;
    /* ContainerManager: scheduleAtFixedRate(task, interval, interval). */
    rc = uv_timer_start(&cl->timer, on_timer, interval, interval);
    if (rc != 0) {
        cleaner_stop(srv);
        return rc;
    }
    /* The timer alone must not keep the loop alive after server_stop. */
    uv_unref((uv_handle_t *)&cl->timer);
    return 0;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void cleaner_stop(struct server *srv)
{
    struct cleaner *cl = srv->cleaner;
    if (!cl)
        return;
    srv->cleaner = NULL;
    uv_timer_stop(&cl->timer);
    uv_close((uv_handle_t *)&cl->timer, on_closed);
}
