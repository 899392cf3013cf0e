/*
 * ZooKeeper's answers in POSIX terms, for every handler: result codes to
 * errno (the contract's table, docs/filesystem.md), a znode's stat to struct
 * stat (st_ino from name and czxid, st_nlink of directories, times), the
 * size and path limits of one transaction, which lost reads to ask again,
 * and the parent whose cached stat a change of its children makes stale.
 * Functions of their arguments and the mount's settings, but fs_retry_read
 * (the loop's clock) and fs_cache_drop_parent (the node cache).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "znodefs.h"

int fs_errno(int rc)
{
    switch (rc) {
    case ZN_OK:
        return 0;
    case ZN_NONODE:
        return ENOENT;
    case ZN_NODEEXISTS:
        return EEXIST;
    case ZN_NOTEMPTY:
        return ENOTEMPTY;
    case ZN_BADVERSION:
        return ECANCELED;
    case ZN_NOAUTH:
    case ZN_AUTHFAILED:
        return EACCES;
    case ZN_NOCHILDRENFOREPHEMERALS:
        return EPERM;
    case ZN_INVALIDACL:
    case ZN_BADARGUMENTS:
        return EINVAL;
    case ZN_TOOBIG:
        return EFBIG;
    case ZN_NOMEMORY:
        return ENOMEM;
    case ZN_NOTREADONLY:
        return EROFS;
    case ZN_UNIMPLEMENTED:
        return ENOSYS;
    default:
        return EIO; /* connection loss, timeouts, an ended session */
    }
}

bool fs_retry_read(int rc, uint64_t *first_loss_ms)
{
    if (rc != ZN_CONNECTIONLOSS)
        return false;
    uint64_t now = uv_now(fs_global->loop);
    if (*first_loss_ms == 0)
        *first_loss_ms = now;
    return now - *first_loss_ms < (uint64_t)fs_global->config.session_timeout_ms;
}

int fs_join(const char *parent, const char *name, char *out)
{
    int n = strcmp(parent, "/") == 0 ? snprintf(out, FS_MAX_PATH_BYTES, "/%s", name)
                                     : snprintf(out, FS_MAX_PATH_BYTES, "%s/%s", parent, name);
    return n < 0 || n >= FS_MAX_PATH_BYTES ? ZN_BADARGUMENTS : 0;
}

int32_t fs_data_limit(const struct fs *fs, const char *path)
{
    size_t server_path = fs->config.chroot_bytes + strlen(path);
    size_t txn_room = FS_TXN_MAX_BYTES - FS_SETDATA_TXN_OVERHEAD_BYTES;
    if (server_path >= txn_room)
        return 0;
    size_t room = txn_room - server_path;
    return room < FS_MAX_DATA_BYTES ? (int32_t)room : FS_MAX_DATA_BYTES;
}

bool fs_multi_fits(const struct fs *fs, int32_t data_len, const char *from, const char *to)
{
    /* Two deletes at most, so the target's path counts twice. */
    size_t need = (size_t)(data_len > 0 ? data_len : 0) + FS_MULTI_TXN_OVERHEAD_BYTES +
                  3 * fs->config.chroot_bytes + strlen(from) + 2 * strlen(to);
    return need <= FS_TXN_MAX_BYTES;
}

static void ms_to_timespec(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/*
 * st_ino names the znode, the same on every mount: a delete and recreate gives a new czxid.
 * The czxid alone is not enough: every node one multi creates (a tree moved by rename) has the
 * same one, and find and du then see one directory inside itself; nor is it for a directory's
 * .data file.  So the name is mixed in (zn_hash), which a node keeps until it is deleted.
 */
static ino_t ino_of(const char *key, int64_t czxid)
{
    uint64_t h = zn_hash_str(key) ^ (uint64_t)czxid * 0x9E3779B97F4A7C15ull;
    return h ? (ino_t)h : 1;
}

/* 2 plus the subdirectories, as on Linux; 1 while they are not counted at this cversion,
 * which find and fts read as "unknown" (never a wrong count they would trust). */
static nlink_t dir_nlink(const struct fs_inode *inode, const struct zn_stat *st)
{
    if (inode->unlinked)
        return 0;
    if (st->num_children == 0)
        return 2;
    if (inode->subdirs_counted && inode->subdirs_cversion == st->cversion)
        return inode->subdirs >= 0 ? 2 + (nlink_t)inode->subdirs : 1;
    return 1;
}

void fs_cache_drop_parent(const char *path)
{
    char parent[FS_MAX_PATH_BYTES];
    const char *slash = strrchr(path, '/');
    if (!slash || strlen(path) >= sizeof parent)
        return;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    memcpy(parent, path, len);
    parent[len] = '\0';
    fs_cache_drop(parent);
}

void fs_fill_attr(const struct fs *fs, const struct fs_inode *inode, const struct zn_stat *st,
                  struct stat *out)
{
    memset(out, 0, sizeof *out);
    out->st_ino = st->czxid > 0 ? ino_of(inode->key, st->czxid) : inode->nodeid;
    out->st_uid = fs->uid;
    out->st_gid = fs->gid;
    out->st_blksize = 4096;
    bool ro = fs->config.read_only;
    /* The node's data as a file: its ACL's READ and WRITE for the mount's identity. */
    mode_t data_perm = fs_acl_mode_bits(inode->path, st, false, ro);
    switch (inode->virt) {
    case FS_VIRT_NONE:
        if (inode->kind == FS_KIND_DIR) {
            out->st_mode = S_IFDIR | fs_acl_mode_bits(inode->path, st, true, ro);
            out->st_nlink = dir_nlink(inode, st);
        } else {
            out->st_mode = S_IFREG | data_perm;
            out->st_nlink = inode->unlinked ? 0 : 1;
        }
        out->st_size = inode->truncates_pending > 0 ? 0 : st->data_length;
        break;
    case FS_VIRT_DATA:
    case FS_VIRT_VERSIONED:
        out->st_mode = S_IFREG | data_perm;
        out->st_nlink = 1;
        out->st_size = inode->truncates_pending > 0 ? 0 : st->data_length;
        break;
    case FS_VIRT_WAIT:
        out->st_mode = S_IFREG | (data_perm & 0444);
        out->st_nlink = 1;
        break;
    case FS_VIRT_CLONE:
        out->st_mode = S_IFREG | (fs->config.read_only ? 0444 : 0666);
        out->st_nlink = 1;
        break;
    }
    out->st_blocks = (out->st_size + 511) / 512;
    int64_t mtime = st->mtime;
    /* A directory's mtime is its last change: the data's (mzxid), or an entry's (pzxid), whose
     * time znoded answers (kind.c: fs_result_ptime). */
    if (inode->virt == FS_VIRT_NONE && inode->kind == FS_KIND_DIR && st->pzxid > st->mzxid &&
        inode->ptime_pzxid == st->pzxid && inode->ptime_ms > 0)
        mtime = inode->ptime_ms;
    ms_to_timespec(mtime, &out->st_mtim);
    ms_to_timespec(mtime, &out->st_atim);
    ms_to_timespec(mtime > st->ctime ? mtime : st->ctime, &out->st_ctim);
}
