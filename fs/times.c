/*
 * times: the time part of setattr (utimensat: touch, touch -d, cp -p, tar, rsync -t).
 *
 * A znode has one time a program can set: its mtime, which ZooKeeper takes from the txn that
 * last changed the data.  So setting it is a write of the data the node already has:
 *  - `touch` (UTIME_NOW): getData, then setData of that data at its version; the server's
 *    clock makes the mtime now.  A lost race (BADVERSION) is success: the node was written a
 *    moment ago, which is what touch asked.  Works against any ZooKeeper server.
 *  - an explicit mtime: getData, then setDataTime (znoded's extension, proto.h) of that data
 *    at its version with the wanted mtime.  A lost race reads and tries again, so a
 *    concurrent write is never undone.  A server without the extension (Apache ZooKeeper)
 *    answers UNIMPLEMENTED: EPERM, then and for the rest of the mount, without asking again.
 * Either is a data change as ZooKeeper sees it: version + 1, NodeDataChanged, so every mount's
 * cache drops the old stat.  The mount keeps no access time: st_atime shows st_mtime; an atime
 * given with an mtime follows it, one given alone is refused unless it is what is shown.
 * Times have the milliseconds of ZooKeeper's stat (the kernel is told, FUSE's time_gran).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "znodefs.h"

/* Reads and writes of one explicit mtime that lose a race before it gives up (EAGAIN): a
 * writer as fast as the server can take wins at most a few in a row. */
#define FS_TIMES_TRIES 64

struct times_op {
    char *path;
    enum fs_time_change change;
    int64_t mtime_ms;
    bool newer_wins;  /* a lost race is success: the node was written since, which is newer */
    int tries;
    int32_t sent_version;   /* the version the set was conditional on */
    bool lost;              /* the set was lost with its member: the next read learns its outcome */
    uint64_t first_loss_ms; /* fs_retry_read */
    fs_times_cb cb;
    void *arg;
};

static int64_t timespec_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

int64_t fs_times_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return timespec_ms(&ts);
}

int fs_times_plan(const struct fs_inode *inode, const struct stat *shown, const struct stat *attr,
                  int to_set, int64_t *mtime_ms)
{
    bool atime = (to_set & FUSE_SET_ATTR_ATIME) != 0;
    bool atime_now = (to_set & FUSE_SET_ATTR_ATIME_NOW) != 0;
    bool mtime = (to_set & FUSE_SET_ATTR_MTIME) != 0;
    bool mtime_now = (to_set & FUSE_SET_ATTR_MTIME_NOW) != 0;
    int64_t shown_ms = timespec_ms(&shown->st_mtim);
    *mtime_ms = 0;
    if (!atime && !mtime)
        return FS_TIME_NONE;
    if (!mtime) {
        /* Only the atime, which is the mtime here: no change if it asks for what is shown. */
        if (atime_now)
            return FS_TIME_NONE; /* reading does not move it either */
        return timespec_ms(&attr->st_atim) == shown_ms ? FS_TIME_NONE : -EPERM;
    }
    bool settable = inode->virt == FS_VIRT_NONE || inode->virt == FS_VIRT_DATA;
    if (mtime_now && !settable)
        return FS_TIME_NONE; /* @v=, @wait=, .clone: names, not nodes of their own */
    if (fs_global->config.read_only)
        return mtime_now || timespec_ms(&attr->st_mtim) != shown_ms ? -EROFS : FS_TIME_NONE;
    if (mtime_now)
        return FS_TIME_NOW;
    int64_t want = timespec_ms(&attr->st_mtim);
    if (want == shown_ms)
        return FS_TIME_NONE;
    if (!settable || want < 0)
        return -EPERM;
    if (fs_global->times_ext == FS_EXT_NO)
        return -EPERM;
    *mtime_ms = want;
    return FS_TIME_SET;
}

static void times_finish(struct times_op *op, int err)
{
    op->cb(op->arg, err);
    free(op->path);
    free(op);
}

static int times_start(struct times_op *op);

static void times_synced(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct times_op *op = arg;
    int rc = r->rc;
    if (fs_retry_read(rc, &op->first_loss_ms))
        rc = zn_sync(c, op->path, times_synced, op);
    else if (rc == 0)
        rc = times_start(op);
    if (rc)
        times_finish(op, EIO); /* the set's outcome stays unknown */
}

static void times_set_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct times_op *op = arg;
    fs_cache_drop(op->path);
    if (op->change == FS_TIME_SET && r->rc == 0)
        fs_global->times_ext = FS_EXT_YES;
    if (r->rc == ZN_BADVERSION && op->newer_wins) {
        times_finish(op, 0); /* written by someone else since the read: touched */
        return;
    }
    if (r->rc == ZN_BADVERSION && ++op->tries < FS_TIMES_TRIES) {
        int rc = times_start(op);
        if (rc)
            times_finish(op, fs_errno(rc));
        return;
    }
    if (r->rc == ZN_CONNECTIONLOSS && fs_retry_read(r->rc, &op->first_loss_ms)) {
        /* times_get_done learns whether it applied, after a sync: the next member may not
         * have applied what the old leader committed. */
        op->lost = true;
        ZN_INFO("a change of path=%s was lost with its connection: learning its outcome", op->path);
        int rc = zn_sync(c, op->path, times_synced, op);
        if (rc)
            times_finish(op, fs_errno(rc));
        return;
    }
    if (r->rc == ZN_UNIMPLEMENTED) {
        fs_global->times_ext = FS_EXT_NO;
        times_finish(op, EPERM);
        return;
    }
    times_finish(op, r->rc == ZN_BADVERSION ? EAGAIN : r->rc ? fs_errno(r->rc) : 0);
}

static void times_get_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct times_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) && times_start(op) == 0)
        return;
    int rc = r->rc;
    if (rc == 0 && op->lost && r->stat->version != op->sent_version) {
        /* The lost set, or another write, took the version: touch is done either way; an
         * explicit time is done if the node has it one version on, else unknown. */
        bool applied = op->change == FS_TIME_NOW ||
                       (r->stat->version == op->sent_version + 1 && r->stat->mtime == op->mtime_ms);
        times_finish(op, applied ? 0 : EIO);
        return;
    }
    op->lost = false; /* not applied: the node is as it was, the set is sent again */
    if (rc == 0)
        op->sent_version = r->stat->version;
    if (rc == 0 && op->change == FS_TIME_NOW)
        rc = zn_set(c, op->path, r->data, r->data_len, r->stat->version, times_set_done, op);
    else if (rc == 0)
        rc = zn_ext_set_with_mtime(c, op->path, r->data, r->data_len, r->stat->version, op->mtime_ms,
                                   times_set_done, op);
    if (rc)
        times_finish(op, fs_errno(rc));
}

static int times_start(struct times_op *op)
{
    return zn_get(fs_global->client, op->path, NULL, NULL, times_get_done, op);
}

static struct times_op *times_op_new(const char *path, enum fs_time_change change, int64_t mtime_ms,
                                     fs_times_cb cb, void *arg)
{
    struct times_op *op = calloc(1, sizeof *op);
    if (!op || !(op->path = strdup(path))) {
        free(op);
        return NULL;
    }
    op->change = change;
    op->mtime_ms = mtime_ms;
    op->newer_wins = change == FS_TIME_NOW;
    op->cb = cb;
    op->arg = arg;
    return op;
}

int fs_times_put(const char *path, const uint8_t *data, int32_t data_len, int32_t version, int64_t mtime_ms,
                 fs_times_cb cb, void *arg)
{
    if (fs_global->times_ext == FS_EXT_NO)
        return EPERM;
    struct times_op *op = times_op_new(path, FS_TIME_SET, mtime_ms, cb, arg);
    if (!op)
        return ENOMEM;
    op->newer_wins = true;
    int rc = zn_ext_set_with_mtime(fs_global->client, path, data, data_len, version, mtime_ms, times_set_done, op);
    if (rc) {
        free(op->path);
        free(op);
        return fs_errno(rc);
    }
    return 0;
}

int fs_times_apply(const char *path, enum fs_time_change change, int64_t mtime_ms, fs_times_cb cb, void *arg)
{
    struct times_op *op = times_op_new(path, change, mtime_ms, cb, arg);
    if (!op)
        return ENOMEM;
    int rc = times_start(op);
    if (rc) {
        free(op->path);
        free(op);
        return fs_errno(rc);
    }
    return 0;
}
