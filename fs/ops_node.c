/*
 * The namespace handlers of the mount: lookup, getattr/setattr, directories
 * (opendir/readdir, mkdir, rmdir), unlink, and the refusals (symlink,
 * link, chmod, chown).  Each handler starts ZooKeeper requests and sends
 * exactly one reply, from the callback of its last request.
 *
 * Kinds (file or directory): the kind znoded stores with the node (kind.c)
 * when it has one; else a node this mount made with mkdir is a directory;
 * otherwise (and for a "file" that a ZooKeeper client gave children) a node
 * with children other than lock contenders is a directory, else a file (the
 * children rule).  An inode keeps the kind it was
 * looked up with; a changed kind gives a new inode (inode.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "znodefs.h"

/* The state of one namespace request across its ZooKeeper round trips. */
struct node_op {
    fuse_req_t req;
    struct fs *fs;
    fuse_ino_t parent;
    char path[FS_MAX_PATH_BYTES];     /* the znode */
    char key[FS_MAX_PATH_BYTES + 64]; /* the name in the inode table */
    enum fs_virt virt;
    int64_t version_arg;
    struct zn_stat stat;
    uint8_t *data;
    int32_t data_len;
    bool have_data; /* unlink: data holds what the open file's fds still read */
    bool counted;    /* lookup: subdirs counted at stat.cversion, ptime read at stat.pzxid */
    int32_t subdirs;
    int64_t ptime_ms;
    uint64_t first_loss_ms; /* fs_retry_read */
    int64_t zxid_before;    /* mkdir, mknod, unlink: the session's newest zxid when it was sent */
    bool learning_create;   /* node_learned: a lost create (else a lost delete) */
    bool made_dir;
    enum fs_kind reply_kind; /* lookup: the kind replied once the ACL is read */
};

static struct node_op *node_op_new(fuse_req_t req)
{
    struct node_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    op->req = req;
    op->fs = fs_global;
    return op;
}

static void node_op_finish(struct node_op *op, int err)
{
    if (err)
        fuse_reply_err(op->req, err);
    free(op->data);
    free(op);
}

/* Starts a request; on a synchronous error replies and frees op. */
static bool started(struct node_op *op, int rc)
{
    if (rc == 0)
        return true;
    node_op_finish(op, fs_errno(rc));
    return false;
}

static void reply_entry_now(struct node_op *op, enum fs_kind kind)
{
    struct fs *fs = op->fs;
    struct fs_inode *inode = fs_inode_lookup(fs, op->path, op->key, kind, op->virt,
                                             op->version_arg, op->stat.czxid);
    if (!inode) {
        node_op_finish(op, ENOMEM);
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
    node_op_finish(op, 0);
}

static void entry_acl_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct node_op *op = arg;
    /* NOAUTH: neither READ nor ADMIN, so no r; anything else leaves the bits unknown. */
    if (r->rc == 0)
        fs_acl_remember(op->path, r->stat, fs_acl_perms_of(r->acl, r->acl_count));
    else if (r->rc == ZN_NOAUTH)
        fs_acl_remember(op->path, &op->stat, 0);
    reply_entry_now(op, op->reply_kind);
}

/* Replies with the entry once the node's ACL (its mode bits) is known. */
static void reply_entry(struct node_op *op, enum fs_kind kind)
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
    struct node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        fs_children_kinds(op->fs, op->path, NULL, NULL, lookup_children_done, op) == 0)
        return;
    if (r->rc == ZN_NOAUTH) {
        /* No READ: the children are hidden, the stat is not; the children rule on the count. */
        reply_entry(op, fs_made_dir(op->fs, op->path) || op->stat.num_children > 0 ? FS_KIND_DIR
                                                                                  : FS_KIND_FILE);
        return;
    }
    if (r->rc) {
        node_op_finish(op, fs_errno(r->rc));
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
    reply_entry(op, kind);
}

static void lookup_exists_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_exists(c, op->path, fs_watch_cb, NULL, lookup_exists_done, op) == 0)
        return;
    if (r->rc) {
        node_op_finish(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    fs_cache_put_stat(op->path, r->stat); /* the exists armed fs_watch_cb */
    /* "d@wait=N" waits on children when d is a directory: it needs d's kind. */
    if (op->virt != FS_VIRT_NONE && op->virt != FS_VIRT_WAIT) {
        reply_entry(op, FS_KIND_FILE);
        return;
    }
    if (fs_made_dir(op->fs, op->path) && op->stat.num_children == 0 &&
        (op->stat.pzxid <= op->stat.mzxid || op->fs->kind_ext == FS_KIND_EXT_NO)) {
        reply_entry(op, FS_KIND_DIR);
        return;
    }
    /* Without stored kinds, an empty node is a file: no second round trip. */
    if (op->stat.num_children == 0 && op->fs->kind_ext == FS_KIND_EXT_NO) {
        reply_entry(op, FS_KIND_FILE);
        return;
    }
    started(op, fs_children_kinds(op->fs, op->path, NULL, NULL, lookup_children_done, op));
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
    struct node_op *op = node_op_new(req);
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
        node_op_finish(op, ENAMETOOLONG);
        return;
    }
    started(op, zn_exists(fs->client, op->path, fs_watch_cb, NULL, lookup_exists_done, op));
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

/* ---- getattr, setattr ---- */

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

/* ---- directories ---- */

struct dir_handle {
    char **names;
    int32_t count;
};

struct dir_op {
    fuse_req_t req;
    struct fuse_file_info fi;
    bool is_dir;
    fuse_ino_t ino;
    uint64_t first_loss_ms; /* fs_retry_read */
};

static void opendir_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct dir_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (inode && fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get_children2(c, inode->path, fs_watch_cb, NULL, opendir_done, op) == 0)
        return;
    if (r->rc) {
        fuse_reply_err(op->req, fs_errno(r->rc));
        free(op);
        return;
    }
    struct dir_handle *d = calloc(1, sizeof *d);
    int32_t n = 0;
    if (d)
        d->names = calloc((size_t)r->child_count + 3, sizeof *d->names);
    if (!d || !d->names) {
        free(d);
        fuse_reply_err(op->req, ENOMEM);
        free(op);
        return;
    }
    d->names[n++] = strdup(".");
    d->names[n++] = strdup("..");
    for (int32_t i = 0; i < r->child_count; i++)
        if (!fs_is_lock_contender(r->children[i]))
            d->names[n++] = strdup(r->children[i]);
    /* A directory's data is listed when there is some. */
    if (r->stat && r->stat->data_length > 0)
        d->names[n++] = strdup(".data");
    d->count = n;
    op->fi.fh = (uintptr_t)d;
    if (fuse_reply_open(op->req, &op->fi) != 0) {
        for (int32_t i = 0; i < d->count; i++)
            free(d->names[i]);
        free(d->names);
        free(d);
    }
    free(op);
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    struct dir_op *op = inode ? calloc(1, sizeof *op) : NULL;
    if (!op) {
        fuse_reply_err(req, inode ? ENOMEM : ENOENT);
        return;
    }
    op->req = req;
    op->fi = *fi;
    op->ino = ino;
    int rc = zn_get_children2(fs->client, inode->path, fs_watch_cb, NULL, opendir_done, op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    for (off_t i = off; i < d->count; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = (ino_t)(i + 2); /* a placeholder: stat gives the real one */
        size_t need = fuse_add_direntry(req, buf + used, size - used, d->names[i] ? d->names[i] : "?",
                                        &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    for (int32_t i = 0; d && i < d->count; i++)
        free(d->names[i]);
    if (d)
        free(d->names);
    free(d);
    fuse_reply_err(req, 0);
}

/* ---- mkdir, mknod ---- */

static void made_done(struct zn_client *c, const struct zn_result *r, void *arg);

static void make_send(struct node_op *op)
{
    op->zxid_before = zn_client_last_zxid(op->fs->client);
    started(op, fs_create_kind(op->fs, op->path, "", 0, 0, op->made_dir ? FS_KIND_DIR : FS_KIND_FILE,
                               made_done, op));
}

static void remove_start(struct node_op *op);

/* A create (made_done) or delete (removed_done) lost with its member: sent again if it did
 * not apply, else EIO (learn.c). */
static void node_learned(const struct fs_learned *got, void *arg)
{
    struct node_op *op = arg;
    if (op->learning_create && fs_learned_create_not_applied(got, op->zxid_before))
        make_send(op);
    else if (!op->learning_create && fs_learned_delete_not_applied(got, op->zxid_before))
        remove_start(op);
    else
        node_op_finish(op, EIO);
}

static void made_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct node_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS) {
        op->learning_create = true;
        fs_learn(op->fs, op->path, false, &op->first_loss_ms, node_learned, op);
        return;
    }
    if (r->rc) {
        node_op_finish(op, fs_errno(r->rc));
        return;
    }
    op->stat = *r->stat;
    fs_cache_drop_parent(op->path);
    fs_acl_remember(op->path, r->stat, ZN_PERM_ALL); /* made with the open ACL */
    if (op->made_dir)
        fs_remember_dir(op->fs, op->path, true);
    reply_entry(op, op->made_dir ? FS_KIND_DIR : FS_KIND_FILE);
}

/* Prepares op for creating parent/name; replies and returns NULL on error. */
static struct node_op *start_make(fuse_req_t req, fuse_ino_t parent, const char *name)
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
    struct node_op *op = node_op_new(req);
    if (!op)
        return NULL;
    if (fs_join(p->path, name, op->path) != 0) {
        node_op_finish(op, ENAMETOOLONG);
        return NULL;
    }
    strcpy(op->key, op->path);
    return op;
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct node_op *op = start_make(req, parent, name);
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
    struct node_op *op = start_make(req, parent, name);
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
    struct node_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS && op->virt != FS_VIRT_DATA) {
        fs_learn(op->fs, op->path, false, &op->first_loss_ms, node_learned, op);
        return;
    }
    fs_cache_drop(op->path); /* as write_done: never serve what this change replaced */
    if (r->rc == 0 && op->virt == FS_VIRT_NONE)
        fs_remember_dir(op->fs, op->path, false);
    if (r->rc == 0 && op->virt != FS_VIRT_DATA)
        fs_cache_drop_parent(op->path);
    struct fs_inode *gone = r->rc == 0 && op->virt != FS_VIRT_DATA ? fs_inode_find(op->fs, op->path) : NULL;
    if (gone && gone->virt == FS_VIRT_NONE)
        fs_inode_orphan(op->fs, gone, op->data, op->data_len, op->have_data);
    if (r->rc == 0)
        fuse_reply_err(op->req, 0);
    node_op_finish(op, fs_errno(r->rc));
}

static void remove_start(struct node_op *op)
{
    int32_t version = op->virt == FS_VIRT_VERSIONED ? (int32_t)op->version_arg : -1;
    op->zxid_before = zn_client_last_zxid(op->fs->client);
    started(op, zn_delete(op->fs->client, op->path, version, removed_done, op));
}

static void remove_open_file_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct node_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get(c, op->path, NULL, NULL, remove_open_file_done, op) == 0)
        return;
    if (r->rc) {
        node_op_finish(op, fs_errno(r->rc));
        return;
    }
    /* fstat of its fds answers from the last stat once it is gone: this one, the newest. */
    struct fs_inode *open_file = fs_inode_find(op->fs, op->path);
    if (open_file)
        fs_inode_saw(open_file, r->stat);
    op->data_len = r->data_len > 0 ? r->data_len : 0;
    if (op->data_len > 0 && !(op->data = malloc((size_t)op->data_len))) {
        node_op_finish(op, ENOMEM);
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
    struct node_op *op = node_op_new(req);
    if (!op)
        return;
    char base[NAME_MAX + 1];
    if (strlen(name) > NAME_MAX) {
        node_op_finish(op, ENAMETOOLONG);
        return;
    }
    op->virt = fs_parse_name(name, base, &op->version_arg);
    switch (op->virt) {
    case FS_VIRT_DATA: /* rm DIR/.data empties the directory's data (so rm -r works) */
        strcpy(op->path, p->path);
        started(op, zn_set(fs->client, op->path, "", 0, -1, removed_done, op));
        return;
    case FS_VIRT_CLONE:
    case FS_VIRT_WAIT:
        node_op_finish(op, EPERM);
        return;
    case FS_VIRT_VERSIONED:
    case FS_VIRT_NONE:
        if (fs_join(p->path, base, op->path) != 0) {
            node_op_finish(op, ENAMETOOLONG);
            return;
        }
        break;
    }
    struct fs_inode *open_file = fs_inode_find(fs, op->path);
    if (!dir && open_file && open_file->open_count > 0 && open_file->virt == FS_VIRT_NONE) {
        /* Its open fds go on reading it after the unlink, as on Linux: fetch it first. */
        started(op, zn_get(fs->client, op->path, NULL, NULL, remove_open_file_done, op));
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
