/*
 * The open file (struct fs_handle, fi->fh): its life from the open's reply to release.
 *
 * Invariants:
 *  - A handle the kernel took (fs_handle_opened) is counted in its inode's open_count, and in
 *    truncates_pending while its O_TRUNC is not settled, until release.
 *  - A writable handle holds the file's whole value (buf) and is listed among the writers, so
 *    a truncate through this mount gives its value to every writer of the inode
 *    (fs_handles_cut): no writer's next write(2) brings the cut bytes back.
 *  - release answers at once and cannot report errors: what it still has to send (the empty
 *    value of an O_TRUNC nothing was written after, the deletes of the ephemeral nodes the
 *    handle created) goes out as release steps whose outcome is only logged, each holding its
 *    path uncached (cache.c) until answered.
 *  - A handle whose ephemeral nodes died with an expired session deletes nothing: a node of
 *    that name now belongs to someone else.
 *
 * Called by file_open.c (new, opened, free), file_write.c (truncated), file_clone.c (release
 * steps), node_attr.c (fs_handles_cut) and main.c's ops table (release).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

void fs_handle_free(struct fs_handle *h)
{
    if (!h)
        return;
    free(h->buf);
    free(h->snapshot);
    free(h->ephemeral_path);
    free(h->clone_input);
    free(h->clone_name);
    for (int i = 0; i < h->clone_ephemeral_count; i++)
        free(h->clone_ephemerals[i]);
    free(h);
}

/* A write nobody waits for: what it is (for the log) and the paths it holds in the cache. */
struct fs_release_step {
    char *what;
    char *path;
    char *parent; /* a delete changes its parent's listing (node_dir.c): held too; or NULL */
};

static void release_step_free(struct fs_release_step *st)
{
    if (st->path)
        fs_cache_unhold(st->path);
    if (st->parent)
        fs_cache_unhold(st->parent);
    free(st->what);
    free(st->path);
    free(st->parent);
    free(st);
}

struct fs_release_step *fs_release_step_new(const char *what, const char *path, bool deletes)
{
    struct fs_release_step *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    const char *slash = strrchr(path, '/');
    size_t parent_len = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (!(st->what = strdup(what)) || !(st->path = strdup(path)) ||
        (deletes && parent_len && !(st->parent = strndup(path, parent_len)))) {
        free(st->what);
        free(st->path);
        free(st);
        return NULL;
    }
    fs_cache_hold(st->path);
    if (st->parent)
        fs_cache_hold(st->parent);
    return st;
}

void fs_release_step_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_release_step *st = arg;
    if (r->rc)
        ZN_WARN("release: %s path=%s failed: %s", st->what, st->path, zn_strerror(r->rc));
    release_step_free(st);
}

/* Sends a request whose outcome only gets logged (release cannot report errors). */
void fs_release_fire(int rc, struct fs_release_step *st)
{
    if (rc) {
        ZN_WARN("release: %s path=%s failed: %s", st->what, st->path, zn_strerror(rc));
        release_step_free(st);
    }
}

/* The open writable handles, linked by writer_next. */
static struct fs_handle *writers;

void fs_handles_cut(struct fs_inode *inode, const struct fs_handle *except, const uint8_t *data,
                    size_t len)
{
    for (struct fs_handle *h = writers; h; h = h->writer_next) {
        if (h->inode != inode || h == except)
            continue;
        uint8_t *copy = malloc(len + 1);
        if (!copy) {
            ZN_WARN("truncate: an open writer of path=%s keeps its old value (no memory)", inode->path);
            continue;
        }
        if (len > 0) /* a cut to 0 passes no data (NULL): memcpy from NULL is undefined */
            memcpy(copy, data, len);
        free(h->buf);
        h->buf = copy;
        h->len = len;
        h->cuts++;
    }
}

void fs_handle_opened(struct fs_handle *h)
{
    if (h->writable) {
        h->writer_next = writers;
        writers = h;
    }
    h->inode->open_count++;
    if (h->truncate_pending)
        h->inode->truncates_pending++;
}

void fs_handle_truncated(struct fs_handle *h)
{
    if (!h->truncate_pending)
        return;
    h->truncate_pending = false;
    h->inode->truncates_pending--;
    ZN_ASSERT(h->inode->truncates_pending >= 0);
}

bool fs_handle_lost(const struct fs *fs, const struct fs_handle *h)
{
    return h->session_gen != fs->session_gen && (h->ephemeral_path || h->clone_ephemeral_count > 0);
}

struct fs_handle *fs_handle_new(struct fs_inode *inode, int flags)
{
    struct fs_handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->session_gen = fs_global->session_gen;
    h->inode = inode;
    h->writable = (flags & O_ACCMODE) != O_RDONLY;
    h->version = inode->virt == FS_VIRT_VERSIONED ? (int32_t)inode->version_arg : -1;
    h->truncate_pending = h->writable && (flags & O_TRUNC);
    return h;
}

/* ---- release ---- */

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_handle *h = fs_handle_of(fi);
    struct zn_client *c = fs->client;
    if (fi->flock_release)
        fs_lock_release_owner(fs, h->inode->path, fi->lock_owner);
    fs_wait_cancel_handle(fs, h);
    fs_poll_forget(fs, h);
    for (struct fs_handle **p = &writers; *p; p = &(*p)->writer_next) {
        if (*p == h) {
            *p = h->writer_next;
            break;
        }
    }
    h->inode->open_count--;
    bool gone = h->inode->unlinked; /* its path may name another node by now */
    bool truncate = h->truncate_pending && !h->wrote && h->inode->virt != FS_VIRT_CLONE && !gone;
    fs_handle_truncated(h); /* the set below holds the path, so the next read sees it */
    if (truncate) {
        /* O_TRUNC with nothing written: the empty value is stored now. */
        struct fs_release_step *what = fs_release_step_new("truncate", h->inode->path, false);
        if (what)
            fs_release_fire(zn_set(c, h->inode->path, "", 0, h->version, fs_release_step_done, what), what);
    }
    if (fs_handle_lost(fs, h)) {
        /* Its ephemeral nodes died with their session; a node of that name now is someone else's. */
        ZN_INFO("release: ephemeral files of an expired session path=%s were already gone",
                h->ephemeral_path ? h->ephemeral_path : h->inode->path);
        free(h->ephemeral_path);
        h->ephemeral_path = NULL;
        for (int i = 0; i < h->clone_ephemeral_count; i++)
            free(h->clone_ephemerals[i]);
        h->clone_ephemeral_count = 0;
    }
    if (h->ephemeral_path && !gone) {
        struct fs_release_step *what = fs_release_step_new("delete ephemeral", h->ephemeral_path, true);
        if (what)
            fs_release_fire(zn_delete(c, h->ephemeral_path, -1, fs_release_step_done, what), what);
    }
    for (int i = 0; i < h->clone_ephemeral_count; i++) {
        struct fs_release_step *what = fs_release_step_new("delete ephemeral", h->clone_ephemerals[i], true);
        if (what)
            fs_release_fire(zn_delete(c, h->clone_ephemerals[i], -1, fs_release_step_done, what), what);
    }
    fs_handle_free(h);
    fuse_reply_err(req, 0);
}
