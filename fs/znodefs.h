/*
 * znodefs internals shared by the files of fs/: the mount's state (struct fs), its
 * inode table, open-file handles, and the helpers each handler file uses.
 *
 * Threads: everything here runs on the one libuv loop thread (FUSE requests
 * and ZooKeeper replies alike), except the notifier thread of notify.c,
 * which only sends kernel cache invalidations queued by fs_notify_*.
 */
#ifndef ZNODEFS_H
#define ZNODEFS_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "znode/client.h"

/* Inodes the mount keeps at once (the kernel holds them until FORGET). */
#define FS_MAX_INODES (1 << 20)
/* Buckets of the inode hash tables (power of two). */
#define FS_INODE_BUCKETS 4096
/* Largest data the mount writes: ZooKeeper's default jute.maxbuffer less one. */
#define FS_MAX_DATA_BYTES ZN_DEFAULT_MAX_PACKET_BYTES
/* Longest path the mount builds. */
#define FS_MAX_PATH_BYTES ZN_CLIENT_MAX_PATH_BYTES
/* Longest xattr value produced (user.zk.stat, user.zk.acl). */
#define FS_MAX_XATTR_BYTES (64 * 1024)
/* Ephemeral sequential nodes one open .clone file may create. */
#define FS_MAX_CLONE_EPHEMERALS 64
/* Retries of a rename whose source changed under it. */
#define FS_RENAME_RETRIES 5

enum fs_kind { FS_KIND_FILE = 1, FS_KIND_DIR = 2 };

/* Whether the server stores node kinds (kind.c). */
enum fs_kind_ext { FS_KIND_EXT_UNKNOWN = 0, FS_KIND_EXT_YES, FS_KIND_EXT_NO };

/* What an inode stands for: a znode, or one of the mount's special names. */
enum fs_virt {
    FS_VIRT_NONE = 0,  /* the znode at path */
    FS_VIRT_DATA,      /* ".data": the data of the directory node at path */
    FS_VIRT_VERSIONED, /* "name@v=N": the node at path, written only at version N */
    FS_VIRT_WAIT,      /* "name@wait=N": reads block until the version passes N */
    FS_VIRT_CLONE,     /* ".clone": creates sequential children of path */
};

struct fs_inode {
    uint64_t nodeid;
    uint64_t nlookup;
    char *path;     /* client-relative znode path ("/" for the root) */
    char *key;      /* path plus the special suffix: the by-name table key */
    enum fs_kind kind;
    enum fs_virt virt;
    int64_t version_arg; /* N of @v=N / @wait=N */
    int64_t czxid;
    struct fs_inode *next_by_id;
    struct fs_inode *next_by_key;
};

struct fs_config {
    char *hosts;
    char *mountpoint;
    char *auth;            /* "user:password" or NULL */
    int session_timeout_ms;
    double entry_timeout_s;
    double attr_timeout_s;
    bool read_only;
    bool foreground;
    bool debug;
};

struct fs {
    struct fs_config config;
    uv_loop_t *loop;
    struct zn_client *client;
    struct fuse_session *session;
    uv_poll_t fuse_poll;
    struct fuse_buf fuse_buf;
    uid_t uid;
    gid_t gid;

    struct fs_inode *by_id[FS_INODE_BUCKETS];
    struct fs_inode *by_key[FS_INODE_BUCKETS];
    size_t inode_count;
    uint64_t next_nodeid;

    /* Directories whose new files are ephemeral (user.zk.child_mode). */
    char **ephemeral_dirs;
    int ephemeral_dir_count;
    /* Nodes this mount made with mkdir: directories even while empty. */
    char **made_dirs;
    int made_dir_count;
    enum fs_kind_ext kind_ext;

    uv_async_t kick;           /* wakes the loop to answer interrupted waits */
    struct fs_lock *locks;     /* every flock contender of this mount */
    struct fs_wait *waits;     /* every pending @wait read */
    uint64_t next_async_id;
};

/* An open file (fi->fh). */
struct fs_handle {
    struct fs_inode *inode;
    bool writable;
    bool wrote;           /* a write(2) stored data */
    bool truncate_pending; /* opened with O_TRUNC, nothing stored yet */
    int32_t version;      /* -1, or the version the next write is conditional on */
    uint8_t *buf;         /* the value being written */
    size_t len;
    uint8_t *snapshot;    /* data read at offset 0, served for later offsets */
    int32_t snapshot_len;
    bool have_snapshot;
    char *ephemeral_path; /* the node this handle created as ephemeral: deleted at release */
    /* .clone */
    char *clone_input;
    size_t clone_input_len;
    char *clone_name;     /* created child name + "\n" */
    char *clone_ephemerals[FS_MAX_CLONE_EPHEMERALS]; /* deleted at release */
    int clone_ephemeral_count;
    size_t clone_read_base;
};

/* ---- main.c ---- */
extern struct fs *fs_global;
/* Maps a ZooKeeper result code to the errno of the contract's table. */
int fs_errno(int rc);
/* Fills a struct stat from a znode stat for inode (kind, virtual name). */
void fs_fill_attr(const struct fs *fs, const struct fs_inode *inode, const struct zn_stat *st,
                  struct stat *out);
/* Joins parent path and name into out (FS_MAX_PATH_BYTES); ZN_BADARGUMENTS if too long. */
int fs_join(const char *parent, const char *name, char *out);
bool fs_dir_is_ephemeral(const struct fs *fs, const char *path);
int fs_set_dir_ephemeral(struct fs *fs, const char *path, bool on);
bool fs_made_dir(const struct fs *fs, const char *path);
void fs_remember_dir(struct fs *fs, const char *path, bool on);

/* ---- kind.c ---- */
/* zn_create2 (open ACL, flags ZN_FLAG_EPHEMERAL/SEQUENTIAL) storing kind when
 * the server has the extension, plain otherwise; cb as for zn_create2. */
int fs_create_kind(struct fs *fs, const char *path, const void *data, int32_t data_len, int flags,
                   enum fs_kind kind, zn_result_cb cb, void *arg);
/* zn_get_children2, with the kinds (result data) when the server has them. */
int fs_children_kinds(struct fs *fs, const char *path, zn_watch_cb watch_cb, void *watch_arg, zn_result_cb cb,
                      void *arg);
/* The stored kind of child `index` (-1: the node itself) of a
 * fs_children_kinds result: 0, or -1 when unknown (the children rule decides). */
int fs_result_kind(const struct zn_result *r, int32_t index, enum fs_kind *kind);

/* ---- inode.c ---- */
void fs_inodes_init(struct fs *fs);
struct fs_inode *fs_inode_get(struct fs *fs, fuse_ino_t nodeid);
/* Finds or makes the inode for (key, czxid, kind) and counts one lookup.
 * Returns NULL when out of memory or over FS_MAX_INODES. */
struct fs_inode *fs_inode_lookup(struct fs *fs, const char *path, const char *key,
                                 enum fs_kind kind, enum fs_virt virt, int64_t version_arg,
                                 int64_t czxid);
void fs_inode_forget(struct fs *fs, fuse_ino_t nodeid, uint64_t nlookup);
/* Calls fn for every inode whose znode path is path. */
void fs_inode_for_path(struct fs *fs, const char *path, void (*fn)(struct fs *, struct fs_inode *, void *),
                       void *arg);
/* The name a special suffix or ".data"/".clone" gives, or FS_VIRT_NONE. */
enum fs_virt fs_parse_name(const char *name, char *base, int64_t *version_arg);
/* True for names that cannot be created: .data, .clone, *@v=N, *@wait=N. */
bool fs_name_reserved(const char *name);
/* True for a lock contender's name (kazoo's "<uuid>__lock__<seq>" / "__rlock__"). */
bool fs_is_lock_contender(const char *name);

/* ---- notify.c: kernel cache invalidations from a thread of their own ---- */
int fs_notify_start(struct fs *fs);
void fs_notify_stop(void);
void fs_notify_inval_inode(uint64_t nodeid);
void fs_notify_delete(uint64_t parent, uint64_t child, const char *name);
void fs_notify_inval_entry(uint64_t parent, const char *name);
/* The watcher every read sets: turns events into invalidations. */
void fs_watch_cb(struct zn_client *client, int type, int state, const char *path, void *arg);

/* ---- ops_node.c, ops_io.c, ops_xattr.c, lock.c, wait.c ---- */
void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi);
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi);
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fs_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
/* Drops every flock of (path, owner): the fd was closed or its holder died. */
void fs_lock_release_owner(struct fs *fs, const char *path, uint64_t owner);
/* Starts an @wait read for handle h: replies once the version passes N. */
void fs_wait_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
/* Answers interrupted waits and locks (their interrupt callbacks only mark them). */
void fs_wait_kick(struct fs *fs);
void fs_lock_kick(struct fs *fs);
/* Drops a handle's pending wait (the file was closed). */
void fs_wait_cancel_handle(struct fs *fs, struct fs_handle *h);
/* Replies to req with data[off, off+size) of a snapshot. */
void fs_reply_slice(fuse_req_t req, const uint8_t *data, int32_t len, size_t size, off_t off);

#endif
