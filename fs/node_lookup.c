/*
 * lookup and forget, and the entry reply that mkdir and mknod share (node_change.c).  Each
 * namespace handler starts ZooKeeper requests and sends exactly one reply, from the callback
 * of its last request.
 *
 * Kinds (file or directory): the kind znoded stores with the node (kind.c) when it has one;
 * else a node this mount made with mkdir is a directory; otherwise (and for a "file" that a
 * ZooKeeper client gave children) a node with children other than lock contenders is a
 * directory, else a file (the children rule).  An inode keeps the kind it was looked up with;
 * a changed kind gives a new inode (inode.c).
 *
 * Invariants: an entry is replied once the node's ACL (its mode bits) is known, or could not
 * be read; an entry the kernel did not take is forgotten again.
 *
 * Called by main.c's ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "znodefs.h"

struct fs_node_op *fs_node_op_new(fuse_req_t req)
{
    struct fs_node_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->req = req;
    op->fs = fs_global;
    return op;
}

void fs_node_op_finish(struct fs_node_op *op, int err)
{
    if (err)
        fuse_reply_err(op->req, err);
    free(op->data);
    free(op);
}

bool fs_node_started(struct fs_node_op *op, int rc)
{
    if (rc == 0)
        return true;
    fs_node_op_finish(op, fs_errno(rc));
    return false;
}

static void reply_entry_now(struct fs_node_op *op, enum fs_kind kind)
{
    struct fs *fs = op->fs;
    struct fs_inode *inode = fs_inode_lookup(fs, op->path, op->key, kind, op->virt,
                                             op->version_arg, op->stat.czxid);
    if (!inode) {
        fs_node_op_finish(op, ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = inode->nodeid;
    if (op->counted && kind == FS_KIND_DIR) {
        inode->subdirs_counted = true;
        inode->subdirs_cversion = op->stat.cversion;
        inode->subdirs = op->subdirs;
        inode->ptime_pzxid = op->stat.pzxid;
        inode->ptime_ms = op->ptime_ms;
    }
    fs_inode_saw(inode, &op->stat);
    fs_fill_attr(fs, inode, &op->stat, &e.attr);
    bool volatile_name = op->virt == FS_VIRT_WAIT || op->virt == FS_VIRT_VERSIONED;
    e.attr_timeout = volatile_name ? 0 : fs->config.attr_timeout_s;
    e.entry_timeout = volatile_name ? 0 : fs->config.entry_timeout_s;
    if (fuse_reply_entry(op->req, &e) != 0)
        fs_inode_forget(fs, inode->nodeid, 1); /* the kernel did not take it */
    fs_node_op_finish(op, 0);
}

static void entry_acl_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    /* NOAUTH: neither READ nor ADMIN, so no r; anything else leaves the bits unknown. */
    if (r->rc == 0)
        fs_acl_remember(op->path, r->stat, fs_acl_perms_of(r->acl, r->acl_count));
    else if (r->rc == ZN_NOAUTH)
        fs_acl_remember(op->path, &op->stat, 0);
    reply_entry_now(op, op->reply_kind);
}

void fs_node_reply_entry(struct fs_node_op *op, enum fs_kind kind)
{
    if (op->virt == FS_VIRT_CLONE || fs_acl_known(op->path, &op->stat, NULL)) {
        reply_entry_now(op, kind);
        return;
    }
    op->reply_kind = kind;
    int rc = zn_get_acl(op->fs->client, op->path, entry_acl_done, op);
    if (rc)
        reply_entry_now(op, kind); /* the bits stay the defaults; the entry is still right */
}

/* ---- lookup ---- */

static void lookup_children_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        fs_children_kinds(op->fs, op->path, NULL, NULL, lookup_children_done, op) == 0)
        return;
    if (r->rc == ZN_NOAUTH) {
        /* No READ: the children are hidden, the stat is not; the children rule on the count. */
        fs_node_reply_entry(op, fs_made_dir(op->fs, op->path) || op->stat.num_children > 0 ? FS_KIND_DIR
                                                                                  : FS_KIND_FILE);
        return;
    }
    if (r->rc) {
        fs_node_op_finish(op, fs_errno(r->rc));
        return;
    }
    enum fs_kind kind = FS_KIND_FILE, stored;
    if (fs_made_dir(op->fs, op->path) ||
        (fs_result_kind(r, -1, &stored) == 0 && stored == FS_KIND_DIR))
        kind = FS_KIND_DIR;
    for (int32_t i = 0; i < r->child_count; i++)
        if (!fs_is_lock_contender(r->children[i]))
            kind = FS_KIND_DIR;
    if (r->stat) {
        op->stat = *r->stat;
        op->counted = true;
        op->subdirs = fs_count_subdirs(op->fs, op->path, r);
        op->ptime_ms = fs_result_ptime(r);
    }
    fs_node_reply_entry(op, kind);
}

static void lookup_exists_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs_node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_exists(c, op->path, fs_watch_cb, NULL, lookup_exists_done, op) == 0)
        return;
    if (r->rc) {
        fs_node_op_finish(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    fs_cache_put_stat(op->path, r->stat); /* the exists armed fs_watch_cb */
    /* "d@wait=N" waits on children when d is a directory: it needs d's kind. */
    if (op->virt != FS_VIRT_NONE && op->virt != FS_VIRT_WAIT) {
        fs_node_reply_entry(op, FS_KIND_FILE);
        return;
    }
    if (fs_made_dir(op->fs, op->path) && op->stat.num_children == 0 &&
        (op->stat.pzxid <= op->stat.mzxid || op->fs->kind_ext == FS_KIND_EXT_NO)) {
        fs_node_reply_entry(op, FS_KIND_DIR);
        return;
    }
    /* Without stored kinds, an empty node is a file: no second round trip. */
    if (op->stat.num_children == 0 && op->fs->kind_ext == FS_KIND_EXT_NO) {
        fs_node_reply_entry(op, FS_KIND_FILE);
        return;
    }
    fs_node_started(op, fs_children_kinds(op->fs, op->path, NULL, NULL, lookup_children_done, op));
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *fs = fs_global;
    struct fs_inode *p = fs_inode_get(fs, parent);
    if (!p) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    struct fs_node_op *op = fs_node_op_new(req);
    if (!op)
        return;
    char base[NAME_MAX + 1];
    op->virt = fs_parse_name(name, base, &op->version_arg);
    int rc;
    if (op->virt == FS_VIRT_DATA || op->virt == FS_VIRT_CLONE) {
        strcpy(op->path, p->path);
        rc = fs_join(p->path, name, op->key);
    } else {
        rc = fs_join(p->path, base, op->path);
        if (rc == 0)
            rc = fs_join(p->path, name, op->key);
    }
    if (rc) {
        fs_node_op_finish(op, ENAMETOOLONG);
        return;
    }
    fs_node_started(op, zn_exists(fs->client, op->path, fs_watch_cb, NULL, lookup_exists_done, op));
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs_inode_forget(fs_global, ino, nlookup);
    fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        fs_inode_forget(fs_global, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}
