/*
 * open and create: a handle (file_handle.c) the kernel keeps as fi->fh, with direct_io (no
 * page cache to invalidate, and st_size stays exact).
 *
 * Invariants:
 *  - O_TRUNC only empties the handle's buffer: the empty value is stored with the first
 *    write(2), or at release when none followed (file_handle.c).
 *  - Every write(2) stores the whole value, so a writer without O_TRUNC starts from the node's
 *    current data (the base read here).
 *  - A node whose data is past what a reply can carry opens with EFBIG.
 *  - create without O_EXCL opens the node it finds there.  A create lost with its member is
 *    learned (learn.c) and sent again only when it did not apply.  In a directory whose
 *    child_mode is ephemeral the file is an ephemeral node, deleted at release.
 *
 * Called by main.c's ops table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "znodefs.h"

struct open_op {
    fuse_req_t req;
    struct fuse_file_info fi;
    struct fs_handle *h;
    char path[FS_MAX_PATH_BYTES];
    fuse_ino_t parent;
    bool creating;
    struct zn_stat stat;
    uint64_t first_loss_ms; /* fs_retry_read */
    int64_t zxid_before;    /* create: the session's newest zxid when it was sent */
    int create_flags;
};

static void reply_opened(struct open_op *op)
{
    op->fi.fh = (uintptr_t)op->h;
    op->fi.direct_io = 1;
    op->fi.keep_cache = 0;
    if (fuse_reply_open(op->req, &op->fi) != 0)
        fs_handle_free(op->h);
    else
        fs_handle_opened(op->h);
    free(op);
}

static void open_fail(struct open_op *op, int err)
{
    fuse_reply_err(op->req, err);
    fs_handle_free(op->h);
    free(op);
}

/* The base a non-truncating writer starts from: the current data. */
static void open_base_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct open_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, op->h->inode->path, NULL, NULL, open_base_done, op) == 0)
        return;
    if (r->rc) {
        open_fail(op, fs_errno(r->rc));
        return;
    }
    if (r->data_len > 0) {
        op->h->buf = malloc((size_t)r->data_len);
        if (!op->h->buf) {
            open_fail(op, ENOMEM);
            return;
        }
        memcpy(op->h->buf, r->data, (size_t)r->data_len);
        op->h->len = (size_t)r->data_len;
    }
    reply_opened(op);
}

/* The node's size is known to be readable: opens, reading the base a writer without O_TRUNC
 * starts from. */
static void open_checked(struct open_op *op)
{
    struct fs_handle *h = op->h;
    bool needs_base = h->writable && !(op->fi.flags & O_TRUNC) && h->inode->virt != FS_VIRT_CLONE &&
                      !h->inode->unlinked;
    if (!needs_base) {
        reply_opened(op);
        return;
    }
    int rc = zn_get(fs_global->client, h->inode->path, NULL, NULL, open_base_done, op);
    if (rc)
        open_fail(op, fs_errno(rc));
}

/* Data another client stored past what a reply can carry: the file exists and shows its size,
 * but a getData would end the connection; EFBIG says why it cannot be opened. */
static void open_sized(struct open_op *op, const struct zn_stat *st)
{
    if (st->data_length > FS_MAX_DATA_BYTES)
        open_fail(op, EFBIG);
    else
        open_checked(op);
}

static void open_stat_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct open_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_exists(c, op->h->inode->path, fs_watch_cb, NULL, open_stat_done, op) == 0)
        return;
    if (r->rc) {
        open_fail(op, fs_errno(r->rc));
        return;
    }
    fs_cache_put_stat(op->h->inode->path, r->stat); /* the exists armed fs_watch_cb */
    open_sized(op, r->stat);
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
    if (writable && fs->config.read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (writable && inode->virt == FS_VIRT_WAIT) {
        fuse_reply_err(req, EACCES);
        return;
    }
    struct open_op *op = calloc(1, sizeof *op);
    if (!op || !(op->h = fs_handle_new(inode, fi->flags))) {
        free(op);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->fi = *fi;
    if (inode->virt == FS_VIRT_CLONE || inode->virt == FS_VIRT_WAIT || inode->unlinked) {
        open_checked(op);
        return;
    }
    struct zn_stat cached;
    if (fs_cache_stat(inode->path, &cached)) {
        open_sized(op, &cached);
        return;
    }
    int rc = zn_exists(fs->client, inode->path, fs_watch_cb, NULL, open_stat_done, op);
    if (rc)
        open_fail(op, fs_errno(rc));
}

static void create_reply(struct open_op *op)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_lookup(fs, op->path, op->path, FS_KIND_FILE, FS_VIRT_NONE, 0,
                                             op->stat.czxid);
    if (!inode) {
        open_fail(op, ENOMEM);
        return;
    }
    op->h->inode = inode;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = inode->nodeid;
    fs_fill_attr(fs, inode, &op->stat, &e.attr);
    e.attr_timeout = fs->config.attr_timeout_s;
    e.entry_timeout = fs->config.entry_timeout_s;
    op->fi.fh = (uintptr_t)op->h;
    op->fi.direct_io = 1;
    if (fuse_reply_create(op->req, &e, &op->fi) != 0) {
        fs_inode_forget(fs, inode->nodeid, 1);
        fs_handle_free(op->h);
    } else {
        fs_handle_opened(op->h);
    }
    free(op);
}

/* create without O_EXCL found the node there: open it instead. */
static void create_existing_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct open_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, op->path, NULL, NULL, create_existing_done, op) == 0)
        return;
    if (r->rc) {
        open_fail(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    if (!(op->fi.flags & O_TRUNC) && r->data_len > 0) {
        op->h->buf = malloc((size_t)r->data_len);
        if (!op->h->buf) {
            open_fail(op, ENOMEM);
            return;
        }
        memcpy(op->h->buf, r->data, (size_t)r->data_len);
        op->h->len = (size_t)r->data_len;
    }
    create_reply(op);
}

static void create_done(struct zn_client *c, const struct zn_result *r, void *arg);

static void create_send(struct open_op *op)
{
    op->zxid_before = zn_client_last_zxid(fs_global->client);
    int rc = fs_create_kind(fs_global, op->path, "", 0, op->create_flags, FS_KIND_FILE, create_done, op);
    if (rc)
        open_fail(op, fs_errno(rc));
}

/* A create lost with its member (learn.c): sent again if it did not apply.  Without O_EXCL a
 * node there now is opened, as if it had been there (the call's outcome either way); an
 * exclusive or ephemeral create that may have applied is unknown: EIO. */
static void create_learned(const struct fs_learned *got, void *arg)
{
    struct open_op *op = arg;
    if (fs_learned_create_not_applied(got, op->zxid_before)) {
        create_send(op);
    } else if (got->rc == 0 && got->have_node && !(op->fi.flags & O_EXCL) && !op->create_flags) {
        struct zn_result exists = {.rc = ZN_NODEEXISTS, .data_len = -1};
        create_done(fs_global->client, &exists, op);
    } else {
        open_fail(op, EIO);
    }
}

static void create_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct open_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS) {
        fs_learn(fs_global, op->path, false, &op->first_loss_ms, create_learned, op);
        return;
    }
    if (r->rc == ZN_NODEEXISTS && !(op->fi.flags & O_EXCL)) {
        free(op->h->ephemeral_path);
        op->h->ephemeral_path = NULL;
        int rc = zn_get(c, op->path, NULL, NULL, create_existing_done, op);
        if (rc)
            open_fail(op, fs_errno(rc));
        return;
    }
    if (r->rc) {
        open_fail(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    fs_cache_drop_parent(op->path);
    fs_acl_remember(op->path, r->stat, ZN_PERM_ALL); /* fs_create_kind gives the open ACL */
    op->h->truncate_pending = false; /* the node was created empty */
    create_reply(op);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *p = fs_inode_get(fs, parent);
    if (!p) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (fs->config.read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    char base[NAME_MAX + 1];
    int64_t v;
    enum fs_virt virt = fs_parse_name(name, base, &v);
    if (virt != FS_VIRT_NONE) {
        /* "f@v=N" of a missing f: there is no version N to write at. */
        fuse_reply_err(req, virt == FS_VIRT_VERSIONED || virt == FS_VIRT_WAIT ? ENOENT : EINVAL);
        return;
    }
    struct open_op *op = calloc(1, sizeof *op);
    if (!op || !(op->h = fs_handle_new(p, fi->flags))) {
        free(op);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->fi = *fi;
    op->parent = parent;
    if (fs_join(p->path, name, op->path) != 0) {
        open_fail(op, ENAMETOOLONG);
        return;
    }
    int flags = 0;
    if (fs_dir_is_ephemeral(fs, p->path)) {
        flags = ZN_FLAG_EPHEMERAL;
        op->h->ephemeral_path = strdup(op->path);
        if (!op->h->ephemeral_path) {
            open_fail(op, ENOMEM);
            return;
        }
    }
    op->create_flags = flags;
    create_send(op);
}
