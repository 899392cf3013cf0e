/*
 * getattr and setattr of a node: its attributes (the stat, st_nlink from its subdirectories,
 * the mode bits from its ACL), truncate, times (times.c) and the refusals of chmod and chown.
 *
 * Invariants:
 *  - A truncate stores the node's value cut or zero-padded to the size asked, and gives it to
 *    every writable handle of the inode (fs_handles_cut, file_handle.c), so no writer's next
 *    write(2) brings the cut bytes back.  A handle opened with O_TRUNC and not written yet is
 *    already empty: truncating it to 0 sends nothing.
 *  - chmod and chown succeed only when they ask for what the node already shows.
 *  - A node deleted while open here still answers fstat and ftruncate from what its fds hold.
 *
 * Called by main.c's ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "znodefs.h"

struct attr_op {
    fuse_req_t req;
    fuse_ino_t ino;
    off_t new_size;
    bool truncate;
    bool truncate_pending; /* setattr on a handle opened with O_TRUNC and not yet written */
    bool count_tried;      /* the directory's subdirectories were asked for once */
    uint64_t first_loss_ms; /* fs_retry_read */
    struct stat attr;      /* setattr: what was asked */
    int to_set;
    int time_change;       /* setattr: enum fs_time_change, after the truncate if any */
    int64_t mtime_ms;      /* setattr: FS_TIME_SET's mtime */
    struct zn_stat stat;
    struct fs_handle *h;   /* ftruncate: the writable handle whose value it cuts, or NULL */
    uint8_t *set_buf;      /* the truncated value being set, new_size bytes, owned */
};

static void reply_attr_now(fuse_req_t req, struct fs_inode *inode, const struct zn_stat *zst)
{
    struct fs *fs = fs_global;
    struct stat st;
    fs_inode_saw(inode, zst);
    fs_fill_attr(fs, inode, zst, &st);
    bool volatile_name = inode->virt == FS_VIRT_WAIT || inode->virt == FS_VIRT_VERSIONED;
    fuse_reply_attr(req, &st, volatile_name ? 0 : fs->config.attr_timeout_s);
}

static void getattr_acl_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (!inode) {
        fuse_reply_err(op->req, ENOENT);
    } else {
        if (r->rc == 0)
            fs_acl_remember(inode->path, r->stat, fs_acl_perms_of(r->acl, r->acl_count));
        else if (r->rc == ZN_NOAUTH)
            fs_acl_remember(inode->path, &op->stat, 0);
        reply_attr_now(op->req, inode, &op->stat);
    }
    free(op);
}

static bool needs_count(const struct fs_inode *inode, const struct zn_stat *st)
{
    return fs_dir_needs_listing(fs_global, inode, st);
}

static void reply_attr(struct attr_op *op, struct fs_inode *inode);

static void getattr_count_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (!inode) {
        fuse_reply_err(op->req, ENOENT);
        free(op);
        return;
    }
    /* Counted at the reply's cversion, so the stat shown is the reply's too; a failure leaves
     * st_nlink 1 (unknown) rather than failing the stat. */
    if (r->rc == 0 && r->stat) {
        inode->subdirs_counted = true;
        inode->subdirs_cversion = r->stat->cversion;
        inode->subdirs = fs_count_subdirs(fs_global, inode->path, r);
        inode->ptime_pzxid = r->stat->pzxid;
        inode->ptime_ms = fs_result_ptime(r);
        op->stat = *r->stat;
    }
    reply_attr(op, inode);
}

/* Replies with the attributes once the node's ACL (its mode bits) and, for a directory, its
 * subdirectories (st_nlink) are known; frees op. */
static void reply_attr(struct attr_op *op, struct fs_inode *inode)
{
    if (needs_count(inode, &op->stat) && !op->count_tried) {
        op->count_tried = true;
        if (fs_children_kinds(fs_global, inode->path, NULL, NULL, getattr_count_done, op) == 0)
            return;
    }
    if (inode->virt != FS_VIRT_CLONE && !fs_acl_known(inode->path, &op->stat, NULL) &&
        zn_get_acl(fs_global->client, inode->path, getattr_acl_done, op) == 0)
        return;
    reply_attr_now(op->req, inode, &op->stat);
    free(op);
}

static int start_getattr(struct attr_op *op);

static void getattr_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs *fs = fs_global;
    if (fs_retry_read(r->rc, &op->first_loss_ms) && start_getattr(op) == 0)
        return;
    struct fs_inode *inode = fs_inode_get(fs, op->ino);
    if (r->rc == ZN_NONODE && inode && inode->open_count > 0 && inode->have_last_stat) {
        /* Deleted elsewhere while open here: fstat still answers, with st_nlink 0. */
        fs_inode_orphan(fs, inode, NULL, 0, false);
        reply_attr_now(op->req, inode, &inode->last_stat);
        free(op);
        return;
    }
    if (r->rc || !inode) {
        fuse_reply_err(op->req, r->rc ? fs_errno(r->rc) : ENOENT);
        free(op);
        return;
    }
    fs_cache_put_stat(inode->path, r->stat); /* the exists armed fs_watch_cb */
    op->stat = *r->stat;
    reply_attr(op, inode);
}

static int start_getattr(struct attr_op *op)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, op->ino);
    if (!inode)
        return ZN_NONODE;
    return zn_exists(fs->client, inode->path, fs_watch_cb, NULL, getattr_done, op);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (inode && inode->unlinked) {
        if (inode->have_last_stat)
            reply_attr_now(req, inode, &inode->last_stat);
        else
            fuse_reply_err(req, ENOENT);
        return;
    }
    struct zn_stat cached;
    if (inode && fs_cache_stat(inode->path, &cached) && !needs_count(inode, &cached) &&
        (inode->virt == FS_VIRT_CLONE || fs_acl_known(inode->path, &cached, NULL))) {
        reply_attr_now(req, inode, &cached);
        return;
    }
    struct attr_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->ino = ino;
    int rc = start_getattr(op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}

static void setattr_continue(struct attr_op *op, struct fs_inode *inode);

static void truncate_set_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (inode)
        fs_cache_drop(inode->path);
    /* The handle's next write(2) sets its whole value: it must hold the truncated data,
     * or ftruncate then write gives back the old bytes past the write. */
    if (r->rc == 0 && inode) /* its other writers too: truncate by path, or by another fd */
        fs_handles_cut(inode, op->h, op->set_buf, (size_t)op->new_size);
    if (r->rc == 0 && op->h) {
        free(op->h->buf);
        op->h->buf = op->set_buf;
        op->h->len = (size_t)op->new_size;
        op->h->cuts++;
        op->set_buf = NULL;
    }
    free(op->set_buf);
    op->set_buf = NULL;
    if (r->rc == 0 && inode && op->time_change == FS_TIME_SET) {
        op->truncate = false; /* done: now the mtime it asked for */
        setattr_continue(op, inode);
        return;
    }
    int rc = r->rc ? r->rc : start_getattr(op);
    if (rc) {
        fuse_reply_err(op->req, fs_errno(rc));
        free(op);
    }
}

static void truncate_get_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (inode && fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, inode->path, NULL, NULL, truncate_get_done, op) == 0)
        return;
    int rc = r->rc ? r->rc : inode ? 0 : ZN_NONODE;
    if (rc == 0) {
        int32_t have = r->data_len > 0 ? r->data_len : 0;
        uint8_t *buf = calloc(1, (size_t)op->new_size + 1);
        if (!buf) {
            rc = ZN_NOMEMORY;
        } else {
            memcpy(buf, r->data, (size_t)(have < op->new_size ? have : op->new_size));
            int32_t version = inode->virt == FS_VIRT_VERSIONED ? (int32_t)inode->version_arg : -1;
            rc = zn_set(c, inode->path, buf, (int32_t)op->new_size, version, truncate_set_done, op);
            if (rc == 0 && op->h)
                op->set_buf = buf; /* for the handle, once set */
            else
                free(buf);
        }
    }
    if (rc) {
        fuse_reply_err(op->req, fs_errno(rc));
        free(op);
    }
}

/* What chmod and chown ask that the node does not already show, and what its times need
 * (times.c): 0 with *change set, else the errno.  The mode bits are the node's ACL, which
 * chmod cannot set, but tar, cp -a, rsync and git set each to what it already is, which is
 * no change and succeeds. */
static int setattr_refusal(const struct fs_inode *inode, const struct zn_stat *zst,
                           const struct stat *attr, int to_set, int *change, int64_t *mtime_ms)
{
    struct fs *fs = fs_global;
    struct stat now;
    fs_fill_attr(fs, inode, zst, &now);
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (now.st_mode & 07777))
        return EPERM;
    if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != now.st_uid) ||
        ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != now.st_gid))
        return EPERM;
    *change = fs_times_plan(inode, &now, attr, to_set, mtime_ms);
    return *change < 0 ? -*change : 0;
}

/* ftruncate or fchmod on an open file whose node is gone: its fds' own copy changes. */
static void setattr_orphan(fuse_req_t req, struct fs_inode *inode, const struct stat *attr, int to_set)
{
    int change = FS_TIME_NONE;
    int64_t mtime_ms = 0;
    int err = setattr_refusal(inode, &inode->last_stat, attr, to_set, &change, &mtime_ms);
    if (!err && change != FS_TIME_NONE) /* its fds' own copy, as its data */
        inode->last_stat.mtime = change == FS_TIME_SET ? mtime_ms : fs_times_now_ms();
    if (!err && (to_set & FUSE_SET_ATTR_SIZE)) {
        if (!inode->have_orphan_data)
            err = ENOENT;
        else if (attr->st_size > FS_MAX_DATA_BYTES)
            err = EFBIG;
        else if (attr->st_size != inode->orphan_len) {
            uint8_t *grown = realloc(inode->orphan_data, (size_t)attr->st_size + 1);
            if (!grown) {
                err = ENOMEM;
            } else {
                if (attr->st_size > inode->orphan_len)
                    memset(grown + inode->orphan_len, 0, (size_t)(attr->st_size - inode->orphan_len));
                inode->orphan_data = grown;
                inode->orphan_len = (int32_t)attr->st_size;
                inode->last_stat.data_length = inode->orphan_len;
            }
        }
    }
    if (err)
        fuse_reply_err(req, err);
    else
        reply_attr_now(req, inode, &inode->last_stat);
}

#define SETATTR_METADATA \
    (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)

static void setattr_times_done(void *arg, int err)
{
    struct attr_op *op = arg;
    int rc = err ? 0 : start_getattr(op);
    if (err || rc) {
        fuse_reply_err(op->req, err ? err : fs_errno(rc));
        free(op);
    }
}

/* The metadata part is settled: truncates, sets the times, or replies with the attributes. */
static void setattr_continue(struct attr_op *op, struct fs_inode *inode)
{
    struct fs *fs = fs_global;
    int rc;
    if (op->truncate && op->time_change == FS_TIME_NOW)
        op->time_change = FS_TIME_NONE; /* the truncate's write makes the mtime now */
    if (!op->truncate && op->time_change != FS_TIME_NONE) {
        int err = fs_times_apply(inode->path, op->time_change, op->mtime_ms, setattr_times_done, op);
        if (err) {
            fuse_reply_err(op->req, err);
            free(op);
        }
        return;
    }
    if (!op->truncate) {
        /* metadata the node already has: no change. */
        rc = start_getattr(op);
    } else if (op->truncate_pending && op->new_size == 0) {
        rc = start_getattr(op); /* already truncated: published with the data */
    } else {
        rc = zn_get(fs->client, inode->path, NULL, NULL, truncate_get_done, op);
    }
    if (rc) {
        fuse_reply_err(op->req, fs_errno(rc));
        free(op);
    }
}

static void setattr_stat_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct attr_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (inode && fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_exists(c, inode->path, fs_watch_cb, NULL, setattr_stat_done, op) == 0)
        return;
    int err = r->rc ? fs_errno(r->rc) : inode ? 0 : ENOENT;
    if (!err) {
        fs_cache_put_stat(inode->path, r->stat); /* the exists armed fs_watch_cb */
        err = setattr_refusal(inode, r->stat, &op->attr, op->to_set, &op->time_change, &op->mtime_ms);
    }
    if (err) {
        fuse_reply_err(op->req, err);
        free(op);
        return;
    }
    setattr_continue(op, inode);
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode || (inode->unlinked && !inode->have_last_stat)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (inode->unlinked) {
        setattr_orphan(req, inode, attr, to_set);
        return;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        int err = 0;
        if (fs->config.read_only)
            err = EROFS;
        else if (inode->kind == FS_KIND_DIR && inode->virt == FS_VIRT_NONE)
            err = EISDIR;
        else if (attr->st_size > fs_data_limit(fs, inode->path) || fs_cache_too_big(inode->path))
            err = EFBIG;
        if (err) {
            fuse_reply_err(req, err);
            return;
        }
    }
    struct attr_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->ino = ino;
    op->attr = *attr;
    op->to_set = to_set;
    op->truncate = (to_set & FUSE_SET_ATTR_SIZE) != 0;
    op->new_size = attr->st_size;
    op->truncate_pending = fi && fi->fh && ((struct fs_handle *)(uintptr_t)fi->fh)->truncate_pending;
    if (op->truncate && fi && fi->fh) {
        struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
        if (h->writable && h->inode->virt == FS_VIRT_NONE)
            op->h = h;
    }
    if (!(to_set & SETATTR_METADATA)) {
        setattr_continue(op, inode);
        return;
    }
    struct zn_stat cached;
    if (fs_cache_stat(inode->path, &cached) && fs_acl_known(inode->path, &cached, NULL)) {
        int err = setattr_refusal(inode, &cached, attr, to_set, &op->time_change, &op->mtime_ms);
        if (err) {
            fuse_reply_err(req, err);
            free(op);
            return;
        }
        setattr_continue(op, inode);
        return;
    }
    int rc = zn_exists(fs->client, inode->path, fs_watch_cb, NULL, setattr_stat_done, op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}
