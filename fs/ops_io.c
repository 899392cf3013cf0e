/*
 * Open files of the mount: create, open, read, write, release, poll, and the
 * .clone control file that creates sequential children.
 *
 * Write semantics (the contract's "Writing"): every write(2) stores the whole
 * value the file now holds with one setData, and its error is write(2)'s, so
 * `echo` reports a lost conditional race, a missing quorum or EFBIG.  O_TRUNC
 * only empties the handle's buffer; the empty value is stored at release when
 * no write followed.  A handle opened through "f@v=N" makes each setData
 * conditional on the version the previous one produced, so no update is lost.
 * Reads at offset 0 fetch the data; later offsets are served from that
 * snapshot, so one `cat` sees one value.  Data files use direct_io: no page
 * cache to invalidate, and st_size stays exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

/* Bytes one write to a .clone file may carry (prefix, newline, data). */
#define FS_MAX_CLONE_INPUT_BYTES (FS_MAX_DATA_BYTES + NAME_MAX + 1)

static struct fs_handle *handle_of(struct fuse_file_info *fi)
{
    return (struct fs_handle *)(uintptr_t)fi->fh;
}

static void handle_free(struct fs_handle *h)
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

/* A write nobody waits for: what it is (for the log) and the path it holds in the cache. */
struct release_step {
    char *what;
    char *path;
};

static struct release_step *release_step_new(const char *what, const char *path)
{
    struct release_step *st = calloc(1, sizeof *st);
    if (!st || !(st->what = strdup(what)) || !(st->path = strdup(path))) {
        if (st)
            free(st->what);
        free(st);
        return NULL;
    }
    fs_cache_hold(path);
    return st;
}

static void release_step_free(struct release_step *st)
{
    fs_cache_unhold(st->path);
    free(st->what);
    free(st->path);
    free(st);
}

static void release_step_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct release_step *st = arg;
    if (r->rc)
        ZN_WARN("release: %s path=%s failed: %s", st->what, st->path, zn_strerror(r->rc));
    release_step_free(st);
}

/* Sends a request whose outcome only gets logged (release cannot report errors). */
static void fire(int rc, struct release_step *st)
{
    if (rc) {
        ZN_WARN("release: %s path=%s failed: %s", st->what, st->path, zn_strerror(rc));
        release_step_free(st);
    }
}

/* ---- open, create ---- */

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
        memcpy(copy, data, len);
        free(h->buf);
        h->buf = copy;
        h->len = len;
        h->cuts++;
    }
}

/* The kernel took h: counted on its inode until release. */
static void handle_opened(struct fs_handle *h)
{
    if (h->writable) {
        h->writer_next = writers;
        writers = h;
    }
    h->inode->open_count++;
    if (h->truncate_pending)
        h->inode->truncates_pending++;
}

/* h's O_TRUNC is settled: stored with its first write, or at release. */
static void handle_truncated(struct fs_handle *h)
{
    if (!h->truncate_pending)
        return;
    h->truncate_pending = false;
    h->inode->truncates_pending--;
    ZN_ASSERT(h->inode->truncates_pending >= 0);
}

static void reply_opened(struct open_op *op)
{
    op->fi.fh = (uintptr_t)op->h;
    op->fi.direct_io = 1;
    op->fi.keep_cache = 0;
    if (fuse_reply_open(op->req, &op->fi) != 0)
        handle_free(op->h);
    else
        handle_opened(op->h);
    free(op);
}

static void open_fail(struct open_op *op, int err)
{
    fuse_reply_err(op->req, err);
    handle_free(op->h);
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

bool fs_handle_lost(const struct fs *fs, const struct fs_handle *h)
{
    return h->session_gen != fs->session_gen && (h->ephemeral_path || h->clone_ephemeral_count > 0);
}

static struct fs_handle *handle_new(struct fs_inode *inode, int flags)
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
    if (!op || !(op->h = handle_new(inode, fi->flags))) {
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
        handle_free(op->h);
    } else {
        handle_opened(op->h);
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
    if (!op || !(op->h = handle_new(p, fi->flags))) {
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

static void poll_forget(struct fs *fs, struct fs_handle *h)
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
    struct fs_handle *h = handle_of(fi);
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

static void clone_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
                        off_t off);
static void clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);


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
    struct fs_handle *h = handle_of(fi);
    if (fs_handle_lost(fs, h)) {
        fuse_reply_err(req, EIO); /* its ephemeral node went with the expired session */
        return;
    }
    switch (h->inode->virt) {
    case FS_VIRT_CLONE:
        clone_read(req, h, size, off);
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

/* ---- write ---- */

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
 * be told apart from "applied, then overwritten": EIO, as before.  A conditional write that finds
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
        handle_truncated(h);
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
    struct fs_handle *h = handle_of(fi);
    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (fs_handle_lost(fs, h)) {
        fuse_reply_err(req, EIO); /* its ephemeral node went with the expired session */
        return;
    }
    if (h->inode->virt == FS_VIRT_CLONE) {
        clone_write(req, h, buf, size, off);
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

/* ---- .clone: write "PREFIX\nDATA", then read: the read creates DIR/PREFIX<seq> ----
 * Shells split one printf into several write(2)s, so writes only collect the
 * request; the first read after them creates the node (its errors are the
 * read's) and returns the created name and a newline. */

struct clone_op {
    fuse_req_t req;
    struct fs_handle *h;
    size_t size;
    off_t off;
    bool ephemeral;
};

static void clone_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct clone_op *op = arg;
    struct fs_handle *h = op->h;
    if (r->rc) {
        fuse_reply_err(op->req, fs_errno(r->rc));
        free(op);
        return;
    }
    const char *slash = strrchr(r->path, '/');
    const char *name = slash ? slash + 1 : r->path;
    char *line = malloc(strlen(name) + 2);
    char *keep = op->ephemeral ? strdup(r->path) : NULL;
    if (!line || (op->ephemeral && (!keep || h->clone_ephemeral_count >= FS_MAX_CLONE_EPHEMERALS))) {
        /* Cannot track it: do not leave an ephemeral node nobody will delete. */
        struct release_step *what = op->ephemeral ? release_step_new("delete untracked ephemeral", r->path) : NULL;
        if (what)
            fire(zn_delete(c, r->path, -1, release_step_done, what), what);
        free(line);
        free(keep);
        fuse_reply_err(op->req, line ? EMFILE : ENOMEM);
        free(op);
        return;
    }
    strcpy(line, name);
    strcat(line, "\n");
    free(h->clone_name);
    h->clone_name = line;
    h->clone_read_base = (size_t)op->off;
    if (keep)
        h->clone_ephemerals[h->clone_ephemeral_count++] = keep;
    fs_reply_slice(op->req, (const uint8_t *)line, (int32_t)strlen(line), op->size, 0);
    free(op);
}

static void clone_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
                        off_t off)
{
    size_t end = (size_t)off + size;
    if (off < 0 || end > FS_MAX_CLONE_INPUT_BYTES) {
        fuse_reply_err(req, EFBIG);
        return;
    }
    /* Writes after a created name start a new request. */
    if (h->clone_name && h->clone_input_len == 0)
        h->clone_read_base = 0;
    size_t start = (size_t)off >= h->clone_read_base ? (size_t)off - h->clone_read_base : 0;
    if (start + size > h->clone_input_len) {
        char *grown = realloc(h->clone_input, start + size);
        if (!grown) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        h->clone_input = grown;
        h->clone_input_len = start + size;
    }
    memcpy(h->clone_input + start, buf, size);
    fuse_reply_write(req, size);
}

/* Creates the node h->clone_input asks for; the reply is the name. */
static void clone_create(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
    struct fs *fs = fs_global;
    const char *buf = h->clone_input;
    size_t len = h->clone_input_len;
    const char *nl = memchr(buf, '\n', len);
    size_t prefix_len = nl ? (size_t)(nl - buf) : len;
    const char *data = nl ? nl + 1 : "";
    size_t data_len = nl ? len - prefix_len - 1 : 0;
    char prefix[NAME_MAX + 1];
    char path[FS_MAX_PATH_BYTES];
    int err = 0;
    if (prefix_len + ZN_SEQUENCE_DIGITS > NAME_MAX || memchr(buf, '/', prefix_len) ||
        memchr(buf, '\0', prefix_len))
        err = EINVAL;
    if (!err) {
        memcpy(prefix, buf, prefix_len);
        prefix[prefix_len] = '\0';
        if (fs_join(h->inode->path, prefix, path) != 0)
            err = ENAMETOOLONG;
        /* A create txn carries an ACL and flags besides what a setData's does. */
        else if (data_len + FS_CREATE_TXN_EXTRA_BYTES + ZN_SEQUENCE_DIGITS >
                 (size_t)fs_data_limit(fs, path))
            err = EFBIG;
    }
    struct clone_op *op = err ? NULL : calloc(1, sizeof *op);
    if (!err && !op)
        err = ENOMEM;
    if (!err) {
        *op = (struct clone_op){req, h, size, off, fs_dir_is_ephemeral(fs, h->inode->path)};
        int flags = ZN_FLAG_SEQUENTIAL | (op->ephemeral ? ZN_FLAG_EPHEMERAL : 0);
        int rc = fs_create_kind(fs, path, data, (int32_t)data_len, flags, FS_KIND_FILE, clone_done, op);
        if (rc) {
            free(op);
            err = fs_errno(rc);
        }
    }
    /* The request is consumed either way: a retry writes it again. */
    free(h->clone_input);
    h->clone_input = NULL;
    h->clone_input_len = 0;
    if (err)
        fuse_reply_err(req, err);
}

static void clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
    if (h->clone_input_len > 0) {
        clone_create(req, h, size, off);
        return;
    }
    if (!h->clone_name || (size_t)off < h->clone_read_base) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    fs_reply_slice(req, (const uint8_t *)h->clone_name, (int32_t)strlen(h->clone_name), size,
                   off - (off_t)h->clone_read_base);
}

/* ---- release ---- */


void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_handle *h = handle_of(fi);
    struct zn_client *c = fs->client;
    if (fi->flock_release)
        fs_lock_release_owner(fs, h->inode->path, fi->lock_owner);
    fs_wait_cancel_handle(fs, h);
    poll_forget(fs, h);
    for (struct fs_handle **p = &writers; *p; p = &(*p)->writer_next) {
        if (*p == h) {
            *p = h->writer_next;
            break;
        }
    }
    h->inode->open_count--;
    bool gone = h->inode->unlinked; /* its path may name another node by now */
    bool truncate = h->truncate_pending && !h->wrote && h->inode->virt != FS_VIRT_CLONE && !gone;
    handle_truncated(h); /* the set below holds the path, so the next read sees it */
    if (truncate) {
        /* O_TRUNC with nothing written: the empty value is stored now. */
        struct release_step *what = release_step_new("truncate", h->inode->path);
        if (what)
            fire(zn_set(c, h->inode->path, "", 0, h->version, release_step_done, what), what);
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
        struct release_step *what = release_step_new("delete ephemeral", h->ephemeral_path);
        if (what)
            fire(zn_delete(c, h->ephemeral_path, -1, release_step_done, what), what);
    }
    for (int i = 0; i < h->clone_ephemeral_count; i++) {
        struct release_step *what = release_step_new("delete ephemeral", h->clone_ephemerals[i]);
        if (what)
            fire(zn_delete(c, h->clone_ephemerals[i], -1, release_step_done, what), what);
    }
    handle_free(h);
    fuse_reply_err(req, 0);
}
