/*
 * rename(2) on the mount: one multi that creates the node (and, for a directory, every node
 * under it) at the new path and deletes the old ones, so the move is atomic for every other
 * client, and `mv` of a tree needs no copy (which could not keep times: EPERM per node).
 *
 * Steps: read the source (data, version); for a node with children, walk its subtree (each
 * node's children with their kinds, then each child's data); read the target; send the multi:
 * delete the target (at its version), create the nodes parents first, delete the old ones
 * children first (each at the version read, so a change meanwhile fails the multi and the
 * rename starts over, FS_RENAME_RETRIES times).  A subtree over FS_RENAME_MAX_NODES nodes, a
 * multi over one txn, or an ephemeral node inside (its owner's session cannot be moved) is
 * EXDEV: `mv` then copies and deletes.
 *
 * Before the reply, the inodes of the old paths are pointed at the new ones (the kernel has
 * moved its dentries with the same inodes and asks about them at once), and while the multi is
 * in flight the old paths' delete events are not passed to the kernel as deletions: they are
 * handled after the kernel's rename and would delete the moved dentries under their new names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

/* Nodes one rename moves at most: two ops each, and a multi holds ZN_CLIENT_MAX_MULTI_OPS. */
#define FS_RENAME_MAX_NODES 400
/* What each op of a multi txn adds besides its path and data (header, version, ACL, flags). */
#define FS_MULTI_OP_OVERHEAD_BYTES 64

struct rename_node {
    char *rel;        /* path under the source ("" for the source itself) */
    uint8_t *data;
    int32_t data_len;
    int32_t version;
    int64_t mtime_ms; /* kept at the new path (times.c) */
    int kind;         /* ZN_KIND_*, 0 if unknown */
};

struct rename_op {
    fuse_req_t req;
    struct fs *fs;
    char path[FS_MAX_PATH_BYTES];
    char new_path[FS_MAX_PATH_BYTES];
    unsigned int flags;
    int retries;
    int zk_kind;              /* the source's kind, from its inode */
    bool ephemeral;           /* the source is an ephemeral node of this session */
    struct rename_node *nodes; /* nodes[0] is the source; parents before children */
    int node_count;
    size_t bytes;             /* data and paths the multi will carry */
    int pending;              /* walk requests (then mtime writes) not answered yet */
    int walk_err;             /* errno that ends the walk once pending drains, 0 */
    bool walk_raced;          /* a node changed during the walk: start over */
    bool walk_lost;           /* a walk read was lost with its member: start over (fs_retry_read) */
    bool target_exists;
    struct zn_stat target_stat;
    int64_t zxid_before;      /* the session's newest zxid when the multi was sent */
    uint64_t first_loss_ms;   /* fs_retry_read: its reads, or learning a lost multi's outcome */
    int64_t from_pzxid;       /* ... and the source's parent's pzxid then, 0 if unknown */
    struct rename_op *next_in_flight;
};

/* Renames whose multi is in flight, for fs_rename_in_flight. */
static struct rename_op *in_flight;

static void rename_start(struct rename_op *op);

static void nodes_free(struct rename_op *op)
{
    for (int i = 0; i < op->node_count; i++) {
        free(op->nodes[i].rel);
        free(op->nodes[i].data);
    }
    free(op->nodes);
    op->nodes = NULL;
    op->node_count = 0;
    op->bytes = 0;
}

static void in_flight_remove(struct rename_op *op)
{
    for (struct rename_op **link = &in_flight; *link; link = &(*link)->next_in_flight)
        if (*link == op) {
            *link = op->next_in_flight;
            return;
        }
}

bool fs_rename_in_flight(const char *path)
{
    for (const struct rename_op *op = in_flight; op; op = op->next_in_flight) {
        size_t len = strlen(op->path);
        if (strncmp(path, op->path, len) == 0 && (path[len] == '\0' || path[len] == '/'))
            return true;
    }
    return false;
}

/* Replies err (0: success) and frees op. */
static void finish(struct rename_op *op, int err)
{
    in_flight_remove(op);
    fuse_reply_err(op->req, err);
    nodes_free(op);
    free(op);
}

/* Adds a node (rel copied); its index, or -1 with op->walk_err set. */
static int add_node(struct rename_op *op, const char *rel, int kind)
{
    if (op->node_count >= FS_RENAME_MAX_NODES) {
        op->walk_err = EXDEV;
        return -1;
    }
    struct rename_node *grown = realloc(op->nodes, sizeof *grown * (size_t)(op->node_count + 1));
    if (!grown) {
        op->walk_err = ENOMEM;
        return -1;
    }
    op->nodes = grown;
    struct rename_node *n = &op->nodes[op->node_count];
    memset(n, 0, sizeof *n);
    if (!(n->rel = strdup(rel))) {
        op->walk_err = ENOMEM;
        return -1;
    }
    n->kind = kind;
    op->bytes += 2 * strlen(rel) + strlen(op->path) + strlen(op->new_path) +
                 2 * op->fs->config.chroot_bytes + 2 * FS_MULTI_OP_OVERHEAD_BYTES;
    return op->node_count++;
}

/* Records a node's data and version from its getData reply: 0, or the errno. */
static int keep_data(struct rename_op *op, int index, const struct zn_result *r)
{
    struct rename_node *n = &op->nodes[index];
    /* Another session's ephemeral node cannot be made again as its own. */
    if (r->stat->ephemeral_owner != 0 && (index > 0 || r->stat->ephemeral_owner != zn_client_session_id(op->fs->client)))
        return EXDEV;
    if (index == 0)
        op->ephemeral = r->stat->ephemeral_owner != 0;
    n->version = r->stat->version;
    n->mtime_ms = r->stat->mtime;
    n->data_len = r->data_len > 0 ? r->data_len : 0;
    if (n->data_len > 0) {
        if (!(n->data = malloc((size_t)n->data_len)))
            return ENOMEM;
        memcpy(n->data, r->data, (size_t)n->data_len);
    }
    op->bytes += (size_t)n->data_len;
    return 0;
}

static void check_target(struct rename_op *op);
static void walk_node(struct rename_op *op, int index);

/* One walk request's answer arrived: once none is pending, the walk is over. */
static void walk_step_done(struct rename_op *op)
{
    if (--op->pending > 0)
        return;
    if (op->walk_lost && !op->walk_err) {
        rename_start(op); /* nothing was sent: the reads are asked of the next member */
        return;
    }
    if (op->walk_raced && !op->walk_err && op->retries++ < FS_RENAME_RETRIES) {
        rename_start(op);
        return;
    }
    if (op->walk_err || op->walk_raced)
        finish(op, op->walk_err ? op->walk_err : EAGAIN);
    else
        check_target(op);
}

struct walk_visit {
    struct rename_op *op;
    int index;
};

/* Notes a walk request's failure: a node gone meanwhile means start over. */
static void walk_failed(struct rename_op *op, int rc)
{
    if (rc == ZN_NONODE)
        op->walk_raced = true;
    else if (fs_retry_read(rc, &op->first_loss_ms))
        op->walk_lost = true;
    else if (!op->walk_err)
        op->walk_err = fs_errno(rc);
}

static void child_data_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct walk_visit *v = arg;
    struct rename_op *op = v->op;
    int err = 0;
    if (r->rc)
        walk_failed(op, r->rc);
    else if (!op->walk_err && (err = keep_data(op, v->index, r)) != 0)
        op->walk_err = err;
    else if (!op->walk_err && r->stat->num_children > 0)
        walk_node(op, v->index);
    free(v);
    walk_step_done(op);
}

static void children_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct walk_visit *v = arg;
    struct rename_op *op = v->op;
    if (r->rc)
        walk_failed(op, r->rc);
    for (int32_t i = 0; r->rc == 0 && !op->walk_err && i < r->child_count; i++) {
        char rel[FS_MAX_PATH_BYTES], path[FS_MAX_PATH_BYTES];
        enum fs_kind kind;
        int zk_kind = fs_result_kind(r, i, &kind) == 0
                          ? (kind == FS_KIND_DIR ? ZN_KIND_DIRECTORY : ZN_KIND_FILE)
                          : 0;
        int n = snprintf(rel, sizeof rel, "%s/%s", op->nodes[v->index].rel, r->children[i]);
        size_t longest = strlen(op->path) > strlen(op->new_path) ? strlen(op->path) : strlen(op->new_path);
        if (n < 0 || (size_t)n + longest >= sizeof path) {
            op->walk_err = ENAMETOOLONG;
            break;
        }
        int index = add_node(op, rel, zk_kind);
        struct walk_visit *child = index < 0 ? NULL : malloc(sizeof *child);
        if (index >= 0 && !child)
            op->walk_err = ENOMEM;
        if (!child)
            break;
        *child = (struct walk_visit){op, index};
        snprintf(path, sizeof path, "%s%s", op->path, rel);
        int rc = zn_get(c, path, NULL, NULL, child_data_done, child);
        if (rc) {
            free(child);
            op->walk_err = fs_errno(rc);
            break;
        }
        op->pending++;
    }
    free(v);
    walk_step_done(op);
}

/* Lists the children of node index (with their kinds); counted in op->pending. */
static void walk_node(struct rename_op *op, int index)
{
    char path[FS_MAX_PATH_BYTES];
    struct walk_visit *v = malloc(sizeof *v);
    if (!v) {
        op->walk_err = ENOMEM;
        return;
    }
    *v = (struct walk_visit){op, index};
    snprintf(path, sizeof path, "%s%s", op->path, op->nodes[index].rel);
    int rc = fs_children_kinds(op->fs, path, NULL, NULL, children_done, v);
    if (rc) {
        free(v);
        op->walk_err = fs_errno(rc);
        return;
    }
    op->pending++;
}

/* ---- the multi ---- */

static void mtime_kept(void *arg, int err)
{
    struct rename_op *op = arg;
    if (err && err != EPERM) /* EPERM: the server cannot keep times (times.c) */
        ZN_WARN("rename: an mtime under path=%s not kept: %s", op->new_path, strerror(err));
    if (--op->pending == 0)
        finish(op, 0);
}

/* Moved: each node at its new path gets back the mtime it had (a create's is the multi's
 * time), as a rename on Linux keeps them; then the reply. */
static void keep_mtimes(struct rename_op *op)
{
    op->pending = 1; /* this loop, so no answer ends it before it is over */
    for (int i = 0; i < op->node_count && op->fs->times_ext != FS_EXT_NO; i++) {
        char path[FS_MAX_PATH_BYTES];
        snprintf(path, sizeof path, "%s%s", op->new_path, op->nodes[i].rel);
        const struct rename_node *n = &op->nodes[i];
        if (fs_times_put(path, n->data, n->data_len, 0, n->mtime_ms, mtime_kept, op) == 0)
            op->pending++;
    }
    mtime_kept(op, 0);
}

static void moved_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct rename_op *op = arg;
    if (r->rc == 0)
        fs_cache_put_stat(op->new_path, r->stat); /* the exists armed fs_watch_cb */
    fs_cache_drop_parent(op->path);
    fs_cache_drop_parent(op->new_path);
    int rc = fs_inode_move(op->fs, op->path, op->new_path, r->rc == 0 ? r->stat->czxid : 0);
    if (rc)
        ZN_WARN("rename: inodes of path=%s not moved to %s: %s", op->path, op->new_path, zn_strerror(rc));
    fs_move_dir_settings(op->fs, op->path, op->new_path);
    keep_mtimes(op);
}

static void multi_applied(struct rename_op *op)
{
    /* The new node's czxid (the inode's identity) and the data watch the cache needs. */
    if (zn_exists(op->fs->client, op->new_path, fs_watch_cb, NULL, moved_done, op) != 0) {
        struct zn_result unknown = {.rc = ZN_CONNECTIONLOSS};
        moved_done(op->fs->client, &unknown, op);
    }
}

/* The target's side of a lost multi: every op of a multi has its zxid, so a target made by the
 * transaction that last changed the source's parent, after the multi was sent, is this move. */
static void target_learned(const struct fs_learned *got, void *arg)
{
    struct rename_op *op = arg;
    if (got->rc == 0 && got->have_node && got->node.czxid > op->zxid_before &&
        got->node.czxid == op->from_pzxid)
        multi_applied(op);
    else
        finish(op, EIO);
}

/* A multi lost with its member (learn.c): it deletes the source, so a source still there is
 * one it did not move: start again.  A source gone asks the target (target_learned). */
static void multi_learned(const struct fs_learned *got, void *arg)
{
    struct rename_op *op = arg;
    if (fs_learned_delete_not_applied(got, op->zxid_before)) {
        rename_start(op);
    } else if (got->rc == 0 && !got->have_node && got->have_parent) {
        op->from_pzxid = got->parent.pzxid;
        fs_learn(op->fs, op->new_path, false, &op->first_loss_ms, target_learned, op);
    } else {
        finish(op, EIO);
    }
}

static void multi_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct rename_op *op = arg;
    /* The old paths' events came before this reply: deletions pass again. */
    in_flight_remove(op);
    fs_cache_drop(op->path);
    fs_cache_drop(op->new_path);
    if (r->rc == ZN_CONNECTIONLOSS) {
        fs_learn(op->fs, op->path, false, &op->first_loss_ms, multi_learned, op);
        return;
    }
    if (r->rc == 0) {
        multi_applied(op);
        return;
    }
    /* A server without the kind extension refuses kinded creates: move it plain. */
    bool kinded = false;
    for (int i = 0; i < op->node_count; i++)
        kinded |= op->nodes[i].kind != 0;
    if (r->rc == ZN_BADARGUMENTS && kinded && op->fs->kind_ext != FS_KIND_EXT_YES) {
        op->fs->kind_ext = FS_KIND_EXT_NO;
        rename_start(op);
        return;
    }
    /* The source, its subtree or the target changed between the reads and the multi. */
    bool raced = r->rc == ZN_BADVERSION || r->rc == ZN_NODEEXISTS || r->rc == ZN_NOTEMPTY ||
                 r->rc == ZN_NONODE;
    if (raced && op->retries++ < FS_RENAME_RETRIES) {
        rename_start(op);
        return;
    }
    finish(op, fs_errno(r->rc));
}

static void free_paths(char **paths, int count)
{
    for (int i = 0; paths && i < count; i++)
        free(paths[i]);
    free(paths);
}

static void send_multi(struct rename_op *op)
{
    struct zn_client *c = op->fs->client;
    int count = op->node_count;
    int max_ops = 2 * count + 1;
    struct zn_op *ops = calloc((size_t)max_ops, sizeof *ops);
    /* Each path as long as it is: FS_MAX_PATH_BYTES for each of 400 nodes would be 26 MB. */
    char **new_paths = calloc((size_t)count, sizeof *new_paths);
    char **old_paths = calloc((size_t)count, sizeof *old_paths);
    bool paths = ops && new_paths && old_paths;
    for (int i = 0; paths && i < count; i++) {
        new_paths[i] = malloc(strlen(op->new_path) + strlen(op->nodes[i].rel) + 1);
        old_paths[i] = malloc(strlen(op->path) + strlen(op->nodes[i].rel) + 1);
        paths = new_paths[i] && old_paths[i];
        if (paths) {
            strcat(strcpy(new_paths[i], op->new_path), op->nodes[i].rel);
            strcat(strcpy(old_paths[i], op->path), op->nodes[i].rel);
        }
    }
    if (!paths) {
        free_paths(new_paths, count);
        free_paths(old_paths, count);
        free(ops);
        finish(op, ENOMEM);
        return;
    }
    int n = 0;
    if (op->target_exists) {
        ops[n].type = ZN_OP_DELETE;
        ops[n].path = op->new_path;
        ops[n++].version = op->target_stat.version;
    }
    bool kinds = op->fs->kind_ext != FS_KIND_EXT_NO;
    for (int i = 0; i < count; i++) {
        ops[n].type = ZN_OP_CREATE;
        ops[n].path = new_paths[i];
        ops[n].data = op->nodes[i].data;
        ops[n].data_len = op->nodes[i].data_len;
        ops[n].flags = i == 0 && op->ephemeral ? ZN_FLAG_EPHEMERAL : 0;
        /* Each node keeps its kind: an empty directory stays a directory. */
        ops[n++].kind = kinds ? op->nodes[i].kind : 0;
    }
    for (int i = count - 1; i >= 0; i--) {
        ops[n].type = ZN_OP_DELETE;
        ops[n].path = old_paths[i];
        ops[n++].version = op->nodes[i].version;
    }
    ZN_ASSERT(n <= max_ops && n <= ZN_CLIENT_MAX_MULTI_OPS);
    op->zxid_before = zn_client_last_zxid(c);
    int rc = zn_multi(c, ops, n, multi_done, op);
    free(ops);
    free_paths(new_paths, count);
    free_paths(old_paths, count);
    if (rc == ZN_TOOBIG) {
        finish(op, EXDEV); /* not one request: not atomically; mv copies instead */
    } else if (rc) {
        finish(op, fs_errno(rc));
    } else {
        op->next_in_flight = in_flight;
        in_flight = op;
    }
}

static void target_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct rename_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms)) {
        rename_start(op); /* a read lost with its member: asked of the next one */
        return;
    }
    if (r->rc && r->rc != ZN_NONODE) {
        finish(op, fs_errno(r->rc));
        return;
    }
    op->target_exists = r->rc == 0;
    if (op->target_exists) {
        op->target_stat = *r->stat;
        if (op->flags & RENAME_NOREPLACE) {
            finish(op, EEXIST);
            return;
        }
        if (op->target_stat.num_children > 0) {
            finish(op, ENOTEMPTY);
            return;
        }
    }
    /* One txn carries it all, or it is not atomic: EXDEV, and mv copies. */
    if (!fs_multi_fits(op->fs, (int32_t)op->bytes, op->path, op->new_path)) {
        finish(op, EXDEV);
        return;
    }
    send_multi(op);
}

static void check_target(struct rename_op *op)
{
    int rc = zn_exists(op->fs->client, op->new_path, NULL, NULL, target_done, op);
    if (rc)
        finish(op, fs_errno(rc));
}

static void source_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct rename_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms)) {
        rename_start(op);
        return;
    }
    int err = r->rc ? fs_errno(r->rc) : 0;
    if (!err && add_node(op, "", op->zk_kind) < 0)
        err = op->walk_err;
    if (!err)
        err = keep_data(op, 0, r);
    if (err) {
        finish(op, err);
        return;
    }
    if (r->stat->num_children == 0) {
        check_target(op);
        return;
    }
    op->pending = 1; /* the walk itself, so no answer ends it before it is started */
    walk_node(op, 0);
    walk_step_done(op);
}

static void rename_start(struct rename_op *op)
{
    nodes_free(op);
    op->walk_err = 0;
    op->walk_raced = false;
    op->walk_lost = false;
    op->pending = 0;
    if (fs_cache_too_big(op->path)) {
        finish(op, EXDEV); /* its data cannot be read, so not moved in one multi */
        return;
    }
    int rc = zn_get(op->fs->client, op->path, NULL, NULL, source_done, op);
    if (rc)
        finish(op, fs_errno(rc));
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
    struct fs *fs = fs_global;
    struct fs_inode *p = fs_inode_get(fs, parent), *np = fs_inode_get(fs, newparent);
    if (!p || !np) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (fs->config.read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (flags & RENAME_EXCHANGE || fs_name_reserved(name) || fs_name_reserved(newname)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct rename_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->fs = fs;
    op->flags = flags;
    if (fs_join(p->path, name, op->path) || fs_join(np->path, newname, op->new_path)) {
        finish(op, ENAMETOOLONG);
        return;
    }
    /* The kernel looked the source up before the rename: its inode knows the kind. */
    struct fs_inode *source = fs_inode_find(fs, op->path);
    if (source && source->virt == FS_VIRT_NONE)
        op->zk_kind = source->kind == FS_KIND_DIR ? ZN_KIND_DIRECTORY : ZN_KIND_FILE;
    else if (fs_made_dir(fs, op->path))
        op->zk_kind = ZN_KIND_DIRECTORY;
    rename_start(op);
}
