/*
 * libznode's blocking layer (zn_sync_*): each call submits one asynchronous
 * operation and runs the client's loop on the calling thread until that
 * operation's callback ran or the client's sync deadline passed.
 *
 * The state of a call lives on the heap, not the caller's stack: after a
 * timeout the operation is still outstanding and its callback, when it comes,
 * must find the state alive; the callback then frees it (`abandoned`).
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "client_internal.h"

struct sync_call {
    bool done;
    bool abandoned;
    int rc;
    char *path;
    struct zn_stat stat;
    bool has_stat;
    uint8_t *data;
    int32_t data_len;
    char **children;
    int32_t child_count;
};

static void sync_call_free(struct sync_call *s)
{
    free(s->path);
    free(s->data);
    zn_strings_free(s->children, s->child_count);
    free(s);
}

void zn_strings_free(char **strings, int32_t count)
{
    if (!strings)
        return;
    for (int32_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

static void on_sync_timer(uv_timer_t *t) { (void)t; /* only wakes uv_run */ }

static void sync_result(struct zn_client *c, const struct zn_result *res, void *arg)
{
    struct sync_call *s = arg;
    if (s->abandoned) {
        sync_call_free(s);
        return;
    }
    s->done = true;
    s->rc = res->rc;
    if (res->path && !(s->path = strdup(res->path)))
        s->rc = ZN_NOMEMORY;
    if (res->stat) {
        s->stat = *res->stat;
        s->has_stat = true;
    }
    s->data_len = res->data_len;
    if (res->data_len >= 0) {
        s->data = malloc(res->data_len > 0 ? (size_t)res->data_len : 1);
        if (!s->data)
            s->rc = ZN_NOMEMORY;
        else if (res->data_len > 0)
            memcpy(s->data, res->data, (size_t)res->data_len);
    }
    if (res->children) {
        s->children = calloc((size_t)(res->child_count ? res->child_count : 1), sizeof(char *));
        if (!s->children) {
            s->rc = ZN_NOMEMORY;
            return;
        }
        for (int32_t i = 0; i < res->child_count; i++) {
            s->children[i] = strdup(res->children[i]);
            s->child_count = i + 1;
            if (!s->children[i]) {
                s->rc = ZN_NOMEMORY;
                return;
            }
        }
    }
}

/* Runs the loop until done() or the deadline.  Returns 0 or ZN_OPERATIONTIMEOUT. */
static int run_until(struct zn_client *c, bool (*done)(struct zn_client *, void *), void *arg)
{
    uv_loop_t *loop = c->loop;
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + (uint64_t)c->options.sync_timeout_ms;
    /* The client is not freed while the loop runs here: only zn_client_close frees it,
     * and calling that from a callback during a zn_sync_* call is excluded by the contract. */
    uv_timer_start(&c->sync_timer, on_sync_timer, (uint64_t)c->options.sync_timeout_ms, 0);
    int rc = 0;
    while (!done(c, arg)) {
        if (uv_now(loop) >= deadline) {
            rc = ZN_OPERATIONTIMEOUT;
            break;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    if (!c->finishing)
        uv_timer_stop(&c->sync_timer);
    return rc;
}

static bool call_done(struct zn_client *c, void *arg)
{
    (void)c;
    return ((struct sync_call *)arg)->done;
}

/* Waits for a submitted call; on success the caller owns s, on timeout it was abandoned. */
static int wait_call(struct zn_client *c, struct sync_call *s)
{
    if (run_until(c, call_done, s) != 0) {
        s->abandoned = true;
        return ZN_OPERATIONTIMEOUT;
    }
    return s->rc;
}

static bool connected_or_ended(struct zn_client *c, void *arg)
{
    (void)arg;
    return c->state == CLIENT_CONNECTED || c->state == CLIENT_ENDED;
}

int zn_sync_wait_connected(struct zn_client *c)
{
    ZN_ASSERT(c);
    int rc = run_until(c, connected_or_ended, NULL);
    if (rc)
        return rc;
    if (c->state == CLIENT_CONNECTED)
        return 0;
    return client_usable(c) ? client_usable(c) : ZN_CONNECTIONLOSS;
}

#define SYNC_BEGIN()                                   \
    struct sync_call *s = calloc(1, sizeof *s);        \
    if (!s)                                            \
        return ZN_NOMEMORY;                            \
    s->data_len = -1
#define SYNC_SUBMIT(call)                              \
    do {                                               \
        int submit_rc = (call);                        \
        if (submit_rc) {                               \
            free(s);                                   \
            return submit_rc;                          \
        }                                              \
    } while (0)
#define SYNC_WAIT()                                    \
    int rc = wait_call(c, s);                          \
    if (rc == ZN_OPERATIONTIMEOUT && s->abandoned)     \
        return rc

int zn_sync_create(struct zn_client *c, const char *path, const void *data, int32_t data_len,
                   int flags, char **created_path)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_create(c, path, data, data_len, NULL, 0, flags, 0, sync_result, s));
    SYNC_WAIT();
    if (rc == 0 && created_path) {
        *created_path = s->path;
        s->path = NULL;
    }
    sync_call_free(s);
    return rc;
}

int zn_sync_delete(struct zn_client *c, const char *path, int32_t version)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_delete(c, path, version, sync_result, s));
    SYNC_WAIT();
    sync_call_free(s);
    return rc;
}

int zn_sync_exists(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
                   struct zn_stat *stat)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_exists(c, path, watch_cb, watch_arg, sync_result, s));
    SYNC_WAIT();
    if (rc == 0 && stat)
        *stat = s->stat;
    sync_call_free(s);
    return rc;
}

int zn_sync_get(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
                uint8_t **data, int32_t *data_len, struct zn_stat *stat)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_get(c, path, watch_cb, watch_arg, sync_result, s));
    SYNC_WAIT();
    if (rc == 0) {
        if (data) {
            *data = s->data;
            s->data = NULL;
        }
        if (data_len)
            *data_len = s->data_len;
        if (stat)
            *stat = s->stat;
    }
    sync_call_free(s);
    return rc;
}

int zn_sync_set(struct zn_client *c, const char *path, const void *data, int32_t data_len,
                int32_t version, struct zn_stat *stat)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_set(c, path, data, data_len, version, sync_result, s));
    SYNC_WAIT();
    if (rc == 0 && stat)
        *stat = s->stat;
    sync_call_free(s);
    return rc;
}

int zn_sync_get_children(struct zn_client *c, const char *path, zn_watch_cb watch_cb,
                         void *watch_arg, char ***children, int32_t *count, struct zn_stat *stat)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_get_children2(c, path, watch_cb, watch_arg, sync_result, s));
    SYNC_WAIT();
    if (rc == 0) {
        if (children) {
            *children = s->children;
            *count = s->child_count;
            s->children = NULL;
            s->child_count = 0;
        }
        if (stat)
            *stat = s->stat;
    }
    sync_call_free(s);
    return rc;
}

int zn_sync_sync(struct zn_client *c, const char *path)
{
    SYNC_BEGIN();
    SYNC_SUBMIT(zn_sync(c, path, sync_result, s));
    SYNC_WAIT();
    sync_call_free(s);
    return rc;
}

int zn_sync_run_once(struct zn_client *c)
{
    ZN_ASSERT(c);
    uv_run(c->loop, UV_RUN_ONCE);
    return client_usable(c);
}

static void on_sync_closed(void *arg) { *(bool *)arg = true; }

void zn_sync_close(struct zn_client *c)
{
    bool closed = false;
    uv_loop_t *loop = c->loop;
    zn_client_close(c, on_sync_closed, &closed);
    /* Bounded: CloseSession waits at most CLIENT_CLOSE_WAIT_MS, then handles close. */
    while (!closed)
        uv_run(loop, UV_RUN_ONCE);
}
