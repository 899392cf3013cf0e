/*
 * read and poll of an open file.
 *
 * Invariants:
 *  - A read at offset 0 fetches the value (from the node cache while its data watch is armed,
 *    else with a getData that arms one) and keeps it as the handle's snapshot; later offsets
 *    are served from that snapshot, so one `cat` sees one value.
 *  - A file opened here with O_TRUNC reads empty until written; a file whose node is gone
 *    reads what the mount kept of it (the orphan inode).
 *  - A read lost with its connection is asked again (fs_retry_read).
 *
 * Called by main.c's ops table; fs_reply_slice by wait.c and file_clone.c too, fs_poll_forget
 * by release (file_handle.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "znodefs.h"

void fs_reply_slice(fuse_req_t req, const uint8_t *data, int32_t len, size_t size, off_t off)
{
    if (len < 0 || off >= len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = (size_t)(len - off);
    fuse_reply_buf(req, (const char *)data + off, n < size ? n : size);
}

/* Keeps a copy of data as the handle's snapshot. */
static int take_snapshot(struct fs_handle *h, const uint8_t *data, int32_t len)
{
    free(h->snapshot);
    h->snapshot = NULL;
    h->snapshot_len = len > 0 ? len : 0;
    h->have_snapshot = true;
    if (len > 0) {
        h->snapshot = malloc((size_t)len);
        if (!h->snapshot) {
            h->have_snapshot = false;
            return ZN_NOMEMORY;
        }
        memcpy(h->snapshot, data, (size_t)len);
    }
    return 0;
}

/* ---- poll: POLLIN always (a regular file is readable), and POLLPRI once the
 * node changed since this open file last read it at offset 0 (sysfs's
 * convention: poll for POLLPRI, or select's exceptfds, then lseek(0) and
 * read).  The change is learned from a data watch armed for the handle, whose
 * event sends fuse_lowlevel_notify_poll; the watch carries the handle's poll
 * id, never a pointer (a handle may be released first). ---- */

static struct fs_handle *polled_find(struct fs *fs, uint64_t id)
{
    for (struct fs_handle *h = fs->polled; h; h = h->poll_next)
        if (h->poll_id == id)
            return h;
    return NULL;
}

void fs_poll_forget(struct fs *fs, struct fs_handle *h)
{
    if (!h->poll_id)
        return;
    for (struct fs_handle **link = &fs->polled; *link; link = &(*link)->poll_next)
        if (*link == h) {
            *link = h->poll_next;
            break;
        }
    if (h->poll_handle)
        fuse_pollhandle_destroy(h->poll_handle);
    h->poll_handle = NULL;
    h->poll_id = 0;
}

static void poll_notify(struct fs_handle *h)
{
    if (h->poll_handle) {
        fuse_lowlevel_notify_poll(h->poll_handle);
        fuse_pollhandle_destroy(h->poll_handle);
        h->poll_handle = NULL;
    }
}

/* A read at offset 0 saw the node at st: the change, if any, has been read. */
static void read_seen(struct fs_handle *h, const struct zn_stat *st)
{
    h->snapshot_mzxid = st->mzxid;
    h->poll_changed = false;
}

static void poll_watch(struct zn_client *c, int type, int state, const char *path, void *arg)
{
    struct fs *fs = fs_global;
    fs_watch_cb(c, type, state, path, NULL);
    struct fs_handle *h = polled_find(fs, (uint64_t)(uintptr_t)arg);
    if (!h)
        return;
    h->poll_armed = false;
    h->poll_changed = true; /* changed, deleted, or the session ended: worth a look either way */
    poll_notify(h);
}

struct poll_op {
    fuse_req_t req;
    uint64_t id;
};

static unsigned poll_events(const struct fs_handle *h)
{
    return POLLIN | POLLRDNORM | (h->poll_changed ? POLLPRI : 0);
}

static void poll_arm_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct poll_op *op = arg;
    struct fs_handle *h = polled_find(fs_global, op->id);
    if (!h) { /* released meanwhile: the file is readable, nothing more to say */
        fuse_reply_poll(op->req, POLLIN | POLLRDNORM);
        free(op);
        return;
    }
    if (r->rc) {
        h->poll_armed = false;
        h->poll_changed = true; /* gone (ENOENT on the next read) or unreachable */
    } else if (h->snapshot_mzxid != 0 && r->stat->mzxid != h->snapshot_mzxid) {
        h->poll_changed = true; /* changed between the read and this poll */
    }
    fuse_reply_poll(op->req, poll_events(h));
    free(op);
}

void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
    struct fs *fs = fs_global;
    struct fs_handle *h = fs_handle_of(fi);
    if (!h->poll_id) {
        h->poll_id = ++fs->next_async_id;
        h->poll_next = fs->polled;
        fs->polled = h;
    }
    if (ph) {
        if (h->poll_handle)
            fuse_pollhandle_destroy(h->poll_handle);
        h->poll_handle = ph;
    }
    bool data_node = h->inode->virt == FS_VIRT_NONE || h->inode->virt == FS_VIRT_DATA ||
                     h->inode->virt == FS_VIRT_VERSIONED;
    if (!data_node || h->poll_changed || h->poll_armed) {
        fuse_reply_poll(req, poll_events(h));
        return;
    }
    struct poll_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->id = h->poll_id;
    h->poll_armed = true;
    int rc = zn_exists(fs->client, h->inode->path, poll_watch, (void *)(uintptr_t)h->poll_id, poll_arm_done, op);
    if (rc) {
        h->poll_armed = false;
        free(op);
        fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLERR);
    }
}

/* ---- read ---- */

struct read_op {
    fuse_req_t req;
    struct fs_handle *h;
    size_t size;
    off_t off;
    uint64_t first_loss_ms; /* fs_retry_read */
};

/* A file whose node is gone: its fds read what the mount kept of it (Linux: the orphan inode). */
static void orphan_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
    const struct fs_inode *inode = h->inode;
    if (inode->have_orphan_data)
        fs_reply_slice(req, inode->orphan_data, inode->orphan_len, size, off);
    else if (h->have_snapshot)
        fs_reply_slice(req, h->snapshot, h->snapshot_len, size, off);
    else
        fuse_reply_err(req, ENOENT); /* deleted elsewhere before this fd read anything */
}

static void read_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct read_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, op->h->inode->path, fs_watch_cb, NULL, read_done, op) == 0)
        return;
    if (r->rc == ZN_NONODE && op->h->have_snapshot) {
        /* Deleted elsewhere while open: the fd keeps what it read. */
        fs_inode_orphan(fs_global, op->h->inode, op->h->snapshot, op->h->snapshot_len, true);
        orphan_read(op->req, op->h, op->size, op->off);
        free(op);
        return;
    }
    int rc = r->rc ? r->rc : take_snapshot(op->h, r->data, r->data_len);
    if (r->rc == 0 && r->stat) { /* the getData armed fs_watch_cb */
        fs_cache_put_data(op->h->inode->path, r->data, r->data_len, r->stat);
        read_seen(op->h, r->stat);
    }
    if (rc)
        fuse_reply_err(op->req, fs_errno(rc));
    else
        fs_reply_slice(op->req, op->h->snapshot, op->h->snapshot_len, op->size, op->off);
    free(op);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_handle *h = fs_handle_of(fi);
    if (fs_handle_lost(fs, h)) {
        fuse_reply_err(req, EIO); /* its ephemeral node went with the expired session */
        return;
    }
    switch (h->inode->virt) {
    case FS_VIRT_CLONE:
        fs_clone_read(req, h, size, off);
        return;
    case FS_VIRT_WAIT:
        fs_wait_read(req, h, size, off);
        return;
    default:
        break;
    }
    if (h->inode->unlinked) {
        orphan_read(req, h, size, off);
        return;
    }
    if (h->inode->truncates_pending > 0) {
        fuse_reply_buf(req, NULL, 0); /* opened with O_TRUNC here: empty until written */
        return;
    }
    if (off > 0 && h->have_snapshot) {
        fs_reply_slice(req, h->snapshot, h->snapshot_len, size, off);
        return;
    }
    if (fs_cache_too_big(h->inode->path)) {
        fuse_reply_err(req, EFBIG); /* grew past what a reply carries since the open */
        return;
    }
    const uint8_t *cached;
    int32_t cached_len;
    struct zn_stat cached_stat;
    if (fs_cache_data(h->inode->path, &cached, &cached_len, &cached_stat)) {
        /* A data watch is armed: the server would answer with this very value. */
        int rc = take_snapshot(h, cached, cached_len);
        read_seen(h, &cached_stat);
        if (rc)
            fuse_reply_err(req, fs_errno(rc));
        else
            fs_reply_slice(req, h->snapshot, h->snapshot_len, size, off);
        return;
    }
    struct read_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    *op = (struct read_op){req, h, size, off, 0};
    int rc = zn_get(fs->client, h->inode->path, fs_watch_cb, NULL, read_done, op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}
