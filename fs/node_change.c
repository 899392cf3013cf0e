/*
 * Changes of the namespace: mkdir and mknod create a node, unlink and rmdir delete one, and
 * symlink and link are refused (EPERM).
 *
 * Invariants:
 *  - A create or delete lost with its member is learned (learn.c) and sent again only when it
 *    did not apply; when it may have applied, EIO.
 *  - Unlinking a file open here first fetches its data, so its fds go on reading it after the
 *    unlink, as on Linux.
 *  - "rm DIR/.data" empties the directory's data; .clone and @wait names cannot be removed.
 *
 * Called by main.c's ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "znodefs.h"

/* ---- mkdir, mknod ---- */

static void made_done(struct zn_client *c, const struct zn_result *r, void *arg);

static void make_send(struct fs_node_op *op)
{
    op->zxid_before = zn_client_last_zxid(op->fs->client);
    fs_node_started(op, fs_create_kind(op->fs, op->path, "", 0, 0, op->made_dir ? FS_KIND_DIR : FS_KIND_FILE,
                                       made_done, op));
}

static void remove_start(struct fs_node_op *op);

/* A create (made_done) or delete (removed_done) lost with its member: sent again if it did
 * not apply, else EIO (learn.c). */
static void node_learned(const struct fs_learned *got, void *arg)
{
    struct fs_node_op *op = arg;
    if (op->learning_create && fs_learned_create_not_applied(got, op->zxid_before))
        make_send(op);
    else if (!op->learning_create && fs_learned_delete_not_applied(got, op->zxid_before))
        remove_start(op);
    else
        fs_node_op_finish(op, EIO);
}

static void made_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS) {
        op->learning_create = true;
        fs_learn(op->fs, op->path, false, &op->first_loss_ms, node_learned, op);
        return;
    }
    if (r->rc) {
        fs_node_op_finish(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    fs_cache_drop_parent(op->path);
    fs_acl_remember(op->path, r->stat, ZN_PERM_ALL); /* made with the open ACL */
    if (op->made_dir)
        fs_remember_dir(op->fs, op->path, true);
    fs_node_reply_entry(op, op->made_dir ? FS_KIND_DIR : FS_KIND_FILE);
}

/* Prepares op for creating parent/name; replies and returns NULL on error. */
static struct fs_node_op *start_make(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *fs = fs_global;
    struct fs_inode *p = fs_inode_get(fs, parent);
    if (!p) {
        fuse_reply_err(req, ENOENT);
        return NULL;
    }
    if (fs->config.read_only) {
        fuse_reply_err(req, EROFS);
        return NULL;
    }
    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return NULL;
    }
    if (fs_name_reserved(name)) {
        fuse_reply_err(req, EINVAL);
        return NULL;
    }
    struct fs_node_op *op = fs_node_op_new(req);
    if (!op)
        return NULL;
    if (fs_join(p->path, name, op->path) != 0) {
        fs_node_op_finish(op, ENAMETOOLONG);
        return NULL;
    }
    strcpy(op->key, op->path);
    return op;
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct fs_node_op *op = start_make(req, parent, name);
    if (!op)
        return;
    op->made_dir = true;
    make_send(op);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM); /* no devices, fifos or sockets in ZooKeeper */
        return;
    }
    struct fs_node_op *op = start_make(req, parent, name);
    if (!op)
        return;
    make_send(op);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM);
}

/* ---- unlink, rmdir ---- */

static void removed_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS && op->virt != FS_VIRT_DATA) {
        fs_learn(op->fs, op->path, false, &op->first_loss_ms, node_learned, op);
        return;
    }
    fs_cache_drop(op->path); /* as a write(2): never serve what this change replaced */
    if (r->rc == 0 && op->virt == FS_VIRT_NONE)
        fs_remember_dir(op->fs, op->path, false);
    if (r->rc == 0 && op->virt != FS_VIRT_DATA)
        fs_cache_drop_parent(op->path);
    struct fs_inode *gone = r->rc == 0 && op->virt != FS_VIRT_DATA ? fs_inode_find(op->fs, op->path) : NULL;
    if (gone && gone->virt == FS_VIRT_NONE)
        fs_inode_orphan(op->fs, gone, op->data, op->data_len, op->have_data);
    if (r->rc == 0)
        fuse_reply_err(op->req, 0);
    fs_node_op_finish(op, fs_errno(r->rc));
}

static void remove_start(struct fs_node_op *op)
{
    int32_t version = op->virt == FS_VIRT_VERSIONED ? (int32_t)op->version_arg : -1;
    op->zxid_before = zn_client_last_zxid(op->fs->client);
    fs_node_started(op, zn_delete(op->fs->client, op->path, version, removed_done, op));
}

static void remove_open_file_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, op->path, NULL, NULL, remove_open_file_done, op) == 0)
        return;
    if (r->rc) {
        fs_node_op_finish(op, fs_errno(r->rc));
        return;
    }
    /* fstat of its fds answers from the last stat once it is gone: this one, the newest. */
    struct fs_inode *open_file = fs_inode_find(op->fs, op->path);
    if (open_file)
        fs_inode_saw(open_file, r->stat);
    op->data_len = r->data_len > 0 ? r->data_len : 0;
    if (op->data_len > 0 && !(op->data = malloc((size_t)op->data_len))) {
        fs_node_op_finish(op, ENOMEM);
        return;
    }
    if (op->data_len > 0)
        memcpy(op->data, r->data, (size_t)op->data_len);
    op->have_data = true;
    remove_start(op);
}

static void remove_node(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
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
    struct fs_node_op *op = fs_node_op_new(req);
    if (!op)
        return;
    char base[NAME_MAX + 1];
    if (strlen(name) > NAME_MAX) {
        fs_node_op_finish(op, ENAMETOOLONG);
        return;
    }
    op->virt = fs_parse_name(name, base, &op->version_arg);
    switch (op->virt) {
    case FS_VIRT_DATA: /* rm DIR/.data empties the directory's data (so rm -r works) */
        strcpy(op->path, p->path);
        fs_node_started(op, zn_set(fs->client, op->path, "", 0, -1, removed_done, op));
        return;
    case FS_VIRT_CLONE:
    case FS_VIRT_WAIT:
        fs_node_op_finish(op, EPERM);
        return;
    case FS_VIRT_VERSIONED:
    case FS_VIRT_NONE:
        if (fs_join(p->path, base, op->path) != 0) {
            fs_node_op_finish(op, ENAMETOOLONG);
            return;
        }
        break;
    }
    struct fs_inode *open_file = fs_inode_find(fs, op->path);
    if (!dir && open_file && open_file->open_count > 0 && open_file->virt == FS_VIRT_NONE) {
        /* Its open fds go on reading it after the unlink, as on Linux: fetch it first. */
        fs_node_started(op, zn_get(fs->client, op->path, NULL, NULL, remove_open_file_done, op));
        return;
    }
    remove_start(op);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_node(req, parent, name, false);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_node(req, parent, name, true);
}
