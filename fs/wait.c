/*
 * Reading "f@wait=N": the read blocks until f's version (a directory's
 * cversion) is greater than N, then returns the data (a directory's children,
 * one per line); ENOENT if the node is deleted.  No polling: each round sets a
 * watch with the read, and the watch event starts the next round.  Waits are
 * answered from the loop (no thread is held) and are interruptible: the
 * interrupt callback only marks the wait and wakes the loop (replying inside
 * libfuse's callback would free the request under its own lock).
 *
 * A watch cannot be unregistered, so it carries the wait's id, not a pointer:
 * an event for a wait that has ended finds nothing and is ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

struct fs_wait {
    struct fs_wait *next;
    uint64_t id;
    fuse_req_t req;
    struct fs_handle *h;
    size_t size;
    off_t off;
    bool interrupted;
    bool rearm; /* its watch or read went with an expired session: resumed after renewal */
};

static struct fs_wait *find(struct fs *fs, uint64_t id)
{
    for (struct fs_wait *w = fs->waits; w; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static void end_wait(struct fs *fs, struct fs_wait *w)
{
    for (struct fs_wait **link = &fs->waits; *link; link = &(*link)->next)
        if (*link == w) {
            *link = w->next;
            break;
        }
    free(w);
}

static void fail(struct fs *fs, struct fs_wait *w, int err)
{
    fuse_reply_err(w->req, err);
    end_wait(fs, w);
}

static void round_start(struct fs *fs, struct fs_wait *w);

/* The mount opens a new session after expiry (session.c): the wait goes on in it. */
static void resume_after_expiry(struct fs *fs, struct fs_wait *w, struct zn_client *expired)
{
    if (fs->client != expired)
        round_start(fs, w); /* already renewed */
    else
        w->rearm = true;
}

void fs_wait_rearm(struct fs *fs)
{
    struct fs_wait *w = fs->waits;
    while (w) {
        struct fs_wait *next = w->next;
        if (w->rearm && !w->interrupted) {
            w->rearm = false;
            round_start(fs, w);
        }
        w = next;
    }
}

static void on_watch(struct zn_client *c, int type, int state, const char *path, void *arg)
{
    struct fs *fs = fs_global;
    fs_watch_cb(c, type, state, path, NULL);
    struct fs_wait *w = find(fs, (uint64_t)(uintptr_t)arg);
    if (!w || w->interrupted)
        return;
    if (type == ZN_EVENT_NONE && state == ZN_STATE_EXPIRED) {
        resume_after_expiry(fs, w, c);
        return;
    }
    if (type == ZN_EVENT_NONE) {
        fail(fs, w, EIO); /* the session ended */
        return;
    }
    round_start(fs, w);
}

/* Joins children into "a\nb\n" as the snapshot. */
static int children_text(struct fs_handle *h, const struct zn_result *r)
{
    size_t total = 0;
    for (int32_t i = 0; i < r->child_count; i++)
        if (!fs_is_lock_contender(r->children[i]))
            total += strlen(r->children[i]) + 1;
    uint8_t *text = malloc(total + 1), *p = text;
    if (!text)
        return ZN_NOMEMORY;
    for (int32_t i = 0; i < r->child_count; i++) {
        if (fs_is_lock_contender(r->children[i]))
            continue;
        size_t n = strlen(r->children[i]);
        memcpy(p, r->children[i], n);
        p[n] = '\n';
        p += n + 1;
    }
    free(h->snapshot);
    h->snapshot = text;
    h->snapshot_len = (int32_t)total;
    h->have_snapshot = true;
    return 0;
}

static void round_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_wait *w = find(fs, (uint64_t)(uintptr_t)arg);
    if (!w || w->interrupted)
        return;
    if (r->rc == ZN_SESSIONEXPIRED) {
        resume_after_expiry(fs, w, c);
        return;
    }
    if (r->rc) {
        fail(fs, w, fs_errno(r->rc));
        return;
    }
    struct fs_handle *h = w->h;
    bool dir = h->inode->kind == FS_KIND_DIR;
    int64_t seen = dir ? r->stat->cversion : r->stat->version;
    if (seen <= h->inode->version_arg)
        return; /* the watch set with this read starts the next round */
    int rc;
    if (dir) {
        rc = children_text(h, r);
    } else {
        free(h->snapshot);
        h->snapshot = NULL;
        h->snapshot_len = r->data_len > 0 ? r->data_len : 0;
        if (r->data_len > 0 && !(h->snapshot = malloc((size_t)r->data_len)))
            rc = ZN_NOMEMORY;
        else {
            if (r->data_len > 0)
                memcpy(h->snapshot, r->data, (size_t)r->data_len);
            h->have_snapshot = true;
            rc = 0;
        }
    }
    if (rc) {
        fail(fs, w, fs_errno(rc));
        return;
    }
    fs_reply_slice(w->req, h->snapshot, h->snapshot_len, w->size, w->off);
    end_wait(fs, w);
}

static void round_start(struct fs *fs, struct fs_wait *w)
{
    void *id = (void *)(uintptr_t)w->id;
    const char *path = w->h->inode->path;
    int rc = w->h->inode->kind == FS_KIND_DIR
                 ? zn_get_children2(fs->client, path, on_watch, id, round_done, id)
                 : zn_get(fs->client, path, on_watch, id, round_done, id);
    if (rc == ZN_SESSIONEXPIRED)
        w->rearm = true; /* the renewal timer is due: it resumes the wait */
    else if (rc)
        fail(fs, w, fs_errno(rc));
}

static void on_interrupt(fuse_req_t req, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_wait *w = find(fs, (uint64_t)(uintptr_t)arg);
    if (!w)
        return;
    w->interrupted = true;
    uv_async_send(&fs->kick);
}

void fs_wait_kick(struct fs *fs)
{
    struct fs_wait *w = fs->waits;
    while (w) {
        struct fs_wait *next = w->next;
        if (w->interrupted)
            fail(fs, w, EINTR);
        w = next;
    }
}

void fs_wait_cancel_handle(struct fs *fs, struct fs_handle *h)
{
    /* The kernel does not release a file with a read in flight; this is a safety net. */
    for (struct fs_wait *w = fs->waits; w; w = w->next)
        if (w->h == h) {
            w->interrupted = true;
            uv_async_send(&fs->kick);
        }
}

void fs_wait_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
    struct fs *fs = fs_global;
    if (h->have_snapshot) {
        fs_reply_slice(req, h->snapshot, h->snapshot_len, size, off);
        return;
    }
    struct fs_wait *w = calloc(1, sizeof *w);
    if (!w) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    w->id = ++fs->next_async_id;
    w->req = req;
    w->h = h;
    w->size = size;
    w->off = off;
    w->next = fs->waits;
    fs->waits = w;
    uint64_t id = w->id;
    round_start(fs, w);
    if (find(fs, id)) /* still waiting (not failed at once) */
        fuse_req_interrupt_func(req, on_interrupt, (void *)(uintptr_t)id);
}
