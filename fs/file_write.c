/*
 * write(2) of an open file (the contract's "Writing"): every write stores the whole value the
 * file now holds with one setData, and its error is write(2)'s, so `echo` reports a lost
 * conditional race, a missing quorum or EFBIG.  A handle opened through "f@v=N" makes each
 * setData conditional on the version the previous one produced, so no update is lost.
 *
 * Invariants:
 *  - A write that was not stored leaves the handle holding what it held, unless a truncate
 *    replaced its value meanwhile (h->cuts).
 *  - A write lost with its connection is answered only once its outcome is learned (the probe
 *    below), bounded by fs_retry_read.
 *  - Writes through an fd of a file whose node is gone change only what its fds read.
 *
 * Called by main.c's ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

struct write_op {
    fuse_req_t req;
    struct fs_handle *h;
    size_t size;
    size_t old_len;
    int64_t zxid_before;    /* the newest zxid this session had seen when the write was sent */
    uint64_t first_loss_ms; /* fs_retry_read */
    uint32_t cuts;          /* h->cuts when sent: a truncate may replace h->buf meanwhile */
};

/*
 * A write in flight when its connection is lost (its member died) has an outcome the mount can
 * learn: once libznode is connected to another member, a sync and a read of the node tell.
 * A write that applied made the node's mzxid newer than any zxid the session had seen when it
 * was sent, and the node then holds its data; a node whose mzxid is not newer has had no write
 * since, so the write did not apply and is sent again (for f@v=N at the same version).  The
 * sync first, because the member the read goes to may not yet have applied a write committed
 * before the leader changed.  Anything else (written since by someone, and not this data) cannot
 * be told apart from "applied, then overwritten": EIO.  A conditional write that finds
 * the next version holding other data lost its race: ECANCELED.  Bounded by fs_retry_read.
 */
static void write_sent(struct zn_client *c, const struct zn_result *r, void *arg);

static int write_send(struct write_op *op)
{
    struct fs_handle *h = op->h;
    op->zxid_before = zn_client_last_zxid(fs_global->client);
    op->cuts = h->cuts;
    return zn_set(fs_global->client, h->inode->path, h->buf, (int32_t)h->len, h->version, write_sent, op);
}

static void write_finish(struct write_op *op, const struct zn_result *r);

/* Ends the write with rc, a failure. */
static void write_fail(struct write_op *op, int rc)
{
    struct zn_result failed = {.rc = rc, .data_len = -1};
    write_finish(op, &failed);
}

static void write_probe_synced(struct zn_client *c, const struct zn_result *r, void *arg);

/* Starts (again) learning a lost write's outcome: sync, then read. */
static void write_probe(struct write_op *op)
{
    if (zn_sync(fs_global->client, op->h->inode->path, write_probe_synced, op) != 0)
        write_fail(op, ZN_CONNECTIONLOSS);
}

static void write_probe_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct write_op *op = arg;
    struct fs_handle *h = op->h;
    if (fs_retry_read(r->rc, &op->first_loss_ms)) {
        write_probe(op);
        return;
    }
    if (r->rc) {
        write_fail(op, ZN_CONNECTIONLOSS); /* the outcome cannot be learned */
    } else if (r->stat->mzxid <= op->zxid_before) {
        ZN_INFO("write path=%s lost with its connection did not apply: sent again", h->inode->path);
        int rc = write_send(op);
        if (rc)
            write_fail(op, rc);
    } else if (r->data_len == (int32_t)h->len && memcmp(r->data, h->buf, h->len) == 0) {
        write_finish(op, r); /* applied: the node holds it, written since it was sent */
    } else if (h->version >= 0 && r->stat->version == h->version + 1) {
        write_fail(op, ZN_BADVERSION); /* another write took the version it was conditional on */
    } else {
        write_fail(op, ZN_CONNECTIONLOSS); /* written since, not with this data: unknown */
    }
}

static void write_probe_synced(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct write_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms)) {
        write_probe(op);
        return;
    }
    int rc = r->rc ? ZN_CONNECTIONLOSS : zn_get(c, op->h->inode->path, NULL, NULL, write_probe_done, op);
    if (rc)
        write_fail(op, rc);
}

static void write_sent(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct write_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms))
        write_probe(op);
    else
        write_finish(op, r);
}

static void write_finish(struct write_op *op, const struct zn_result *r)
{
    struct fs_handle *h = op->h;
    /* The change's event came first and dropped it; this covers a write that failed half-way. */
    fs_cache_drop(h->inode->path);
    if (r->rc) {
        if (h->cuts == op->cuts)
            h->len = op->old_len; /* not stored: the handle holds what it held */
        fuse_reply_err(op->req, fs_errno(r->rc));
    } else {
        if (h->version >= 0)
            h->version = r->stat->version; /* the next write is conditional on this one */
        h->wrote = true;
        fs_handle_truncated(h);
        h->have_snapshot = false;
        fuse_reply_write(op->req, op->size);
    }
    free(op);
}

/* Writes through an fd of a file whose node is gone change what its fds read, never the
 * server (a node made at that name since is another file). */
static void orphan_write(fuse_req_t req, struct fs_inode *inode, const char *buf, size_t size, off_t off)
{
    if (!inode->have_orphan_data) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (off < 0 || (uint64_t)off + size > FS_MAX_DATA_BYTES) {
        fuse_reply_err(req, EFBIG);
        return;
    }
    size_t end = (size_t)off + size;
    if (end > (size_t)inode->orphan_len) {
        uint8_t *grown = realloc(inode->orphan_data, end);
        if (!grown) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        memset(grown + inode->orphan_len, 0, end - (size_t)inode->orphan_len);
        inode->orphan_data = grown;
        inode->orphan_len = (int32_t)end;
        inode->last_stat.data_length = inode->orphan_len;
    }
    memcpy(inode->orphan_data + off, buf, size);
    fuse_reply_write(req, size);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_handle *h = fs_handle_of(fi);
    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (fs_handle_lost(fs, h)) {
        fuse_reply_err(req, EIO); /* its ephemeral node went with the expired session */
        return;
    }
    if (h->inode->virt == FS_VIRT_CLONE) {
        fs_clone_write(req, h, buf, size, off);
        return;
    }
    if (h->inode->unlinked) {
        orphan_write(req, h->inode, buf, size, off);
        return;
    }
    if (off < 0 || (uint64_t)off + size > (uint64_t)fs_data_limit(fs, h->inode->path)) {
        fuse_reply_err(req, EFBIG);
        return;
    }
    size_t end = (size_t)off + size;
    size_t new_len = end > h->len ? end : h->len;
    if (new_len > h->len) {
        uint8_t *grown = realloc(h->buf, new_len);
        if (!grown) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        memset(grown + h->len, 0, new_len - h->len); /* a hole reads as zeros */
        h->buf = grown;
    }
    struct write_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    *op = (struct write_op){req, h, size, h->len, 0, 0, 0};
    memcpy(h->buf + off, buf, size);
    h->len = new_len;
    int rc = write_send(op);
    if (rc) {
        h->len = op->old_len;
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}
