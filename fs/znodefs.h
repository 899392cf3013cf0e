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

#include "htable.h"
#include "reply_check.h"
#include "znode/client.h"

/* Inodes the mount keeps at once (the kernel holds them until FORGET). */
#define FS_MAX_INODES (1 << 20)
/* Initial buckets of the inode tables (they grow). */
#define FS_INODE_BUCKETS 4096
/* What a getData reply adds to the data in its frame: reply header (xid, zxid, err: 16),
 * the data's length (4), the stat (68).  A client (this one, Java's) drops the connection on
 * a frame over jute.maxbuffer, so data longer than the frame can carry can be stored (a setData
 * frame adds only 20 bytes and the path) but never read back. */
#define FS_GETDATA_REPLY_OVERHEAD_BYTES (16 + 4 + 68)
/* Largest data the mount stores or reads: what a getData reply under ZooKeeper's default
 * jute.maxbuffer (1 MiB less one byte) can carry, 1048487 bytes.  A longer path lowers what a
 * setData can send (its frame carries the path): the client refuses it (EFBIG). */
#define FS_MAX_DATA_BYTES (ZN_DEFAULT_MAX_PACKET_BYTES - FS_GETDATA_REPLY_OVERHEAD_BYTES)
/* A replicated write's txn must fit one log entry of this size (znoded's ZAB_ENTRY_BYTES_MAX,
 * ZooKeeper's jute.maxbuffer); a setData txn adds 48 bytes to its data and server path
 * (measured on a 3-member ensemble: data + path <= 1048528).  A txn over it is never
 * proposed and never answered, so the mount refuses it first. */
#define FS_TXN_MAX_BYTES (1024 * 1024)
#define FS_SETDATA_TXN_OVERHEAD_BYTES 48
/* What a create txn adds besides a setData txn's overhead (its ACL, flags; measured 48). */
#define FS_CREATE_TXN_EXTRA_BYTES 64
/* What a multi txn (rename: create with the data, delete, delete) adds besides its data and
 * paths, with room to spare. */
#define FS_MULTI_TXN_OVERHEAD_BYTES 512
/* Longest path the mount builds (from the mount's root; the chroot comes on top): past it,
 * ENAMETOOLONG.  Linux's PATH_MAX (4096) bounds one syscall's path, not depth: a program
 * that works relative to a directory (cd, openat) goes deeper.  Each request holds a path or
 * two of this size, so it is not the 1 MiB a server takes (ZN_CLIENT_MAX_PATH_BYTES). */
#define FS_MAX_PATH_BYTES (32 * 1024)
/* Longest xattr value produced (user.zk.stat, user.zk.acl). */
#define FS_MAX_XATTR_BYTES (64 * 1024)
/* Ephemeral sequential nodes one open .clone file may create. */
#define FS_MAX_CLONE_EPHEMERALS 64
/* Retries of a rename whose source changed under it. */
#define FS_RENAME_RETRIES 5

enum fs_kind { FS_KIND_FILE = 1, FS_KIND_DIR = 2 };

/* Whether the server stores node kinds (kind.c). */
enum fs_kind_ext { FS_KIND_EXT_UNKNOWN = 0, FS_KIND_EXT_YES, FS_KIND_EXT_NO };
/* Whether the server has another extension (setDataTime, times.c). */
enum fs_ext { FS_EXT_UNKNOWN = 0, FS_EXT_YES, FS_EXT_NO };

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
    /* Open files of this inode, and what they still see once its node is gone (POSIX: an
     * unlinked file lives on for the fds open on it, with st_nlink 0). */
    int open_count;
    /* Open files of it made with O_TRUNC that have not written yet: the server still holds the
     * old data (the empty value is stored with the data that follows, or at close), but to this
     * mount the file is empty from the open on, as POSIX says. */
    int truncates_pending;
    bool unlinked;           /* the node was deleted (or renamed over): never ask its path again */
    bool have_last_stat;
    struct zn_stat last_stat; /* the stat last shown to the kernel */
    bool have_orphan_data;
    uint8_t *orphan_data;    /* an unlinked file's data, as its open fds read and write it */
    int32_t orphan_len;
    /* A directory's subdirectories (-1: some child's kind is unknown), counted when its
     * cversion was subdirs_cversion: st_nlink is 2 plus them. */
    bool subdirs_counted;
    int32_t subdirs_cversion;
    int32_t subdirs;
    /* A directory's ptime (znoded's time of the change that set pzxid, 0 if unknown), read
     * when its pzxid was ptime_pzxid: its mtime once an entry changed after its data. */
    int64_t ptime_pzxid;
    int64_t ptime_ms;
    /* A directory's listing as the last opendir gave it to the kernel (NULL before the first):
     * an opendir that reads the same lets the kernel serve its cached copy; while armed
     * (listing_id marks its node cache entry, node_dir.c) opendir gives it without asking. */
    struct fs_listing *listing;
    uint64_t listing_id;
    struct zn_hlink by_id;  /* in fs.by_id; the hash is the node id */
    struct zn_hlink by_key; /* in fs.by_key while the name means this inode */
};

struct fs_config {
    char *hosts;
    char *mountpoint;
    char *auth;            /* "user:password" or NULL */
    int tls;               /* -o tls: connect to a secureClientPort (needs cafile=) */
    char *tls_ca;          /* -o cafile=: the CAs the server's certificate must chain to */
    char *tls_cert;        /* -o certfile=: the client's PEM certificate (ssl.clientAuth=need) */
    char *tls_key;         /* -o keyfile=: its unencrypted PEM key (default: in certfile) */
    char *sasl;            /* -o sasl=: DIGEST-MD5 or GSSAPI, or NULL */
    char *sasl_user;       /* -o sasl_user=: DIGEST-MD5's user */
    char *sasl_password_file; /* -o sasl_password_file=: its password (the first line) */
    char *sasl_service;    /* -o sasl_service=: GSSAPI: the server principal's service */
    int session_timeout_ms;
    double entry_timeout_s;
    double attr_timeout_s;
    int spin_us;             /* -o spin_us: poll /dev/fuse this long before sleeping */
    bool read_only;
    bool foreground;
    bool debug;
    size_t chroot_bytes;   /* the connect string's /chroot, prefixed to every server path */
    char *log_file;        /* -o log=FILE, or NULL: syslog when in the background */
};

struct fs {
    struct fs_config config;
    char sasl_password[ZN_JAAS_VALUE_BYTES]; /* from sasl_password_file=, for every new session */
    uv_loop_t *loop;
    struct zn_client *client;
    struct fuse_session *session;
    uv_poll_t fuse_poll;
    struct fuse_buf fuse_buf;
    uid_t uid;
    gid_t gid;

    struct zn_htable by_id;  /* every inode, by node id */
    struct zn_htable by_key; /* the newest inode of each name, by key */
    uint64_t next_nodeid;

    /* Directories whose new files are ephemeral (user.zk.child_mode). */
    char **ephemeral_dirs;
    int ephemeral_dir_count;
    /* Nodes this mount made with mkdir: directories even while empty. */
    char **made_dirs;
    int made_dir_count;
    enum fs_kind_ext kind_ext;
    enum fs_ext times_ext;     /* setDataTime (times.c) */
    enum fs_ext ptime_ext;     /* getChildrenKindsTime (kind.c) */

    uv_async_t kick;           /* wakes the loop to answer interrupted waits */
    struct fs_lock *locks;     /* every flock contender of this mount */
    struct fs_wait *waits;     /* every pending @wait read */
    uint64_t next_async_id;
    struct fs_handle *polled;  /* open files that were polled (file_read.c) */

    /* Session renewal (session.c): a new session after expiry. */
    uv_timer_t renew_timer;
    uint64_t session_gen;      /* bumped by each renewal */
    uint64_t sessions_renewed;
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
    uint64_t session_gen; /* fs->session_gen when opened: its ephemerals belong to that session */
    /* .clone */
    char *clone_input;
    size_t clone_input_len;
    char *clone_name;     /* created child name + "\n" */
    char *clone_ephemerals[FS_MAX_CLONE_EPHEMERALS]; /* deleted at release */
    int clone_ephemeral_count;
    size_t clone_read_base;
    /* poll (file_read.c): a data watch armed for this handle reports a change (POLLPRI). */
    int64_t snapshot_mzxid;   /* mzxid of the value last read at offset 0, 0 if none */
    uint64_t poll_id;         /* 0 until polled; the watch's arg */
    bool poll_armed;          /* a watch (or its exists) for poll_id is outstanding */
    bool poll_changed;        /* the node changed since the last read at offset 0 */
    struct fuse_pollhandle *poll_handle; /* to notify, owned */
    struct fs_handle *poll_next; /* fs->polled list */
    struct fs_handle *writer_next; /* the open writable handles (file_handle.c), for fs_handles_cut */
    uint32_t cuts;                 /* times a truncate replaced buf */
};

/* Watches re-armed at once after a renewal (the rest as the kernel asks again). */
#define FS_REARM_MAX_WATCHES 100000
/* Retry delay when a new session cannot even be allocated. */
#define FS_RENEW_RETRY_MS 1000

/* ---- main.c ---- */
extern struct fs *fs_global;

/* ---- session.c ---- */
/* Makes the mount's client, connects, authenticates and waits for the session: 0, or the
 * error (said on stderr) that fails the mount command. */
int fs_session_connect(struct fs *fs);
/* After expiry (timer callback): a new client and session, locks and cache of the old one
 * dropped, kernel attributes invalidated so watches are armed again, @wait reads resumed. */
void fs_session_renew(uv_timer_t *timer);

/* ---- options.c ---- */
/* The command line (args) into fs->config, checked as a whole; 0, or -1 (said why). */
int fs_options_parse(struct fs *fs, struct fuse_args *args);

/* ---- mapping.c ---- */
/* Maps a ZooKeeper result code to the errno of the contract's table. */
int fs_errno(int rc);
/* Fills a struct stat from a znode stat for inode (kind, virtual name). */
void fs_fill_attr(const struct fs *fs, const struct fs_inode *inode, const struct zn_stat *st,
                  struct stat *out);
/* The most data a setData of path may carry: FS_MAX_DATA_BYTES, less for long paths. */
int32_t fs_data_limit(const struct fs *fs, const char *path);
/* True when a rename multi moving data_len bytes between these paths fits one txn. */
bool fs_multi_fits(const struct fs *fs, int32_t data_len, const char *from, const char *to);
/* Drops the cached stat of path's parent: this mount changed its children (cversion, and so
 * its st_nlink), which no data watch reports; its armed listing goes with it (node_dir.c). */
void fs_cache_drop_parent(const char *path);
/* True when a read that failed with rc should be asked again: it was lost with its connection
 * (the member died, or closed its clients while electing a leader) less than a session timeout
 * after its first loss (*first_loss_ms, 0 until then). Reads are idempotent, and the client
 * holds the request until it has reconnected; past the bound, EIO. */
bool fs_retry_read(int rc, uint64_t *first_loss_ms);
/* Joins parent path and name into out (FS_MAX_PATH_BYTES); ZN_BADARGUMENTS if too long. */
int fs_join(const char *parent, const char *name, char *out);

/* ---- learn.c, file_handle.c ---- */
/* What fs_learn read after a change was lost with its connection (learn.c): rc 0 when both reads
 * were answered; the node (data only if asked for) and its parent, when they exist. */
struct fs_learned {
    int rc;
    bool have_node, have_parent;
    struct zn_stat node, parent;
    uint8_t *data; /* borrowed during the callback */
    int32_t data_len;
};
typedef void (*fs_learn_cb)(const struct fs_learned *got, void *arg);
/* Syncs, then reads path (its data too if data) and its parent; calls cb once, always. */
void fs_learn(struct fs *fs, const char *path, bool data, uint64_t *first_loss_ms, fs_learn_cb cb,
              void *arg);
/* A create sent when the session had seen zxid_before did not apply: the node is absent and
 * nothing entered its parent since. */
bool fs_learned_create_not_applied(const struct fs_learned *got, int64_t zxid_before);
/* A delete (or a rename's multi) of a node sent then did not apply: that node is still there. */
bool fs_learned_delete_not_applied(const struct fs_learned *got, int64_t zxid_before);
/* A truncate through this mount stored data (len bytes) as inode's value: every other open
 * writable handle of it (not except) holds that value now, so that its next write(2), which
 * sets its whole value, neither restores the bytes cut nor loses the zeros added (file_handle.c). */
void fs_handles_cut(struct fs_inode *inode, const struct fs_handle *except, const uint8_t *data,
                    size_t len);

/* ---- dir_settings.c ---- */
bool fs_dir_is_ephemeral(const struct fs *fs, const char *path);
int fs_set_dir_ephemeral(struct fs *fs, const char *path, bool on);
bool fs_made_dir(const struct fs *fs, const char *path);
/* A rename moved old_path and the nodes under it to new_path: so do this mount's settings. */
void fs_move_dir_settings(struct fs *fs, const char *old_path, const char *new_path);
void fs_remember_dir(struct fs *fs, const char *path, bool on);

/* ---- log_sink.c ---- */
/* Sends every later line of stderr to file (appended) or, when file is NULL, to syslog;
 * 0, or -1 (errno set) with stderr unchanged. */
int fs_log_sink_start(const char *file);
/* Waits until every line written so far has reached syslog; later lines go nowhere.  Call
 * last, before the process exits; a no-op unless the syslog sink was started. */
void fs_log_sink_stop(void);

/* ---- rename.c ---- */
/* True while a rename of path (or of a node above it) waits for its multi: the delete events
 * of the old paths are not deletions the kernel must hear of (its dentries moved). */
bool fs_rename_in_flight(const char *path);

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
/* The node's ptime in a fs_children_kinds result (ms; 0 when the server gave none). */
int64_t fs_result_ptime(const struct zn_result *r);
/* Whether a directory showing st needs a fs_children_kinds listing for its attributes: its
 * subdirectories (st_nlink) or its ptime (st_mtime) are not known at st's cversion / pzxid. */
bool fs_dir_needs_listing(const struct fs *fs, const struct fs_inode *inode, const struct zn_stat *st);
/* The directories among the children of path in a fs_children_kinds result (lock contenders
 * aside), or -1 when the kind of one is unknown (made by a ZooKeeper client). */
int32_t fs_count_subdirs(const struct fs *fs, const char *path, const struct zn_result *r);

/* ---- inode.c ---- */
void fs_inodes_init(struct fs *fs);
struct fs_inode *fs_inode_get(struct fs *fs, fuse_ino_t nodeid);
/* Finds or makes the inode for (key, czxid, kind) and counts one lookup.
 * Returns NULL when out of memory or over FS_MAX_INODES. */
struct fs_inode *fs_inode_lookup(struct fs *fs, const char *path, const char *key,
                                 enum fs_kind kind, enum fs_virt virt, int64_t version_arg,
                                 int64_t czxid);
/* The kernel was shown st for inode: kept for when the node is gone. */
void fs_inode_saw(struct fs_inode *inode, const struct zn_stat *st);
/* inode's node is gone while fds may be open on it: it keeps last_stat (st_nlink 0) and data
 * (copied, may be NULL with have_data false), and loses its name. */
void fs_inode_orphan(struct fs *fs, struct fs_inode *inode, const uint8_t *data, int32_t len, bool have_data);
/* The newest inode the name key stands for, or NULL; no lookup is counted. */
struct fs_inode *fs_inode_find(struct fs *fs, const char *key);
void fs_inode_forget(struct fs *fs, fuse_ino_t nodeid, uint64_t nlookup);
/* A rename through this mount moved the node at old_path, and those under it, to new_path (new
 * znodes; czxid the moved node's, 0 if unknown): every inode of those paths (special names
 * included) now stands for its new path, as the kernel's dentries already do, and a node
 * renamed over loses its name.  An inode whose czxid is not known yet takes the one its next
 * lookup finds.  Returns 0, or
 * ZN_NOMEMORY when some inode could not be moved (it keeps the old path: ENOENT). */
int fs_inode_move(struct fs *fs, const char *old_path, const char *new_path, int64_t czxid);
/* Calls fn for every inode. */
void fs_inode_for_all(struct fs *fs, void (*fn)(struct fs *, struct fs_inode *, void *), void *arg);
/* Calls fn for every inode whose znode path is path. */
void fs_inode_for_path(struct fs *fs, const char *path, void (*fn)(struct fs *, struct fs_inode *, void *),
                       void *arg);
/* The name a special suffix or ".data"/".clone" gives, or FS_VIRT_NONE. */
enum fs_virt fs_parse_name(const char *name, char *base, int64_t *version_arg);
/* True for names that cannot be created: .data, .clone, *@v=N, *@wait=N. */
bool fs_name_reserved(const char *name);
/* True for a lock contender's name (kazoo's "<uuid>__lock__<seq>" / "__rlock__"). */
bool fs_is_lock_contender(const char *name);

/* ---- cache.c: stat and data of nodes with an armed data watch (fs_watch_cb) ---- */
/* Nodes cached at once, and bytes of data kept in all. */
#define FS_CACHE_MAX_ENTRIES 65536
#define FS_CACHE_MAX_BYTES (64u * 1024 * 1024)
struct fs_cache_entry;
/* Put only from the reply of a request that armed fs_watch_cb as a data watch on path. */
void fs_cache_put_stat(const char *path, const struct zn_stat *stat);
void fs_cache_put_data(const char *path, const uint8_t *data, int32_t data_len, const struct zn_stat *stat);
/* True and *stat filled when path's stat is cached. */
bool fs_cache_stat(const char *path, struct zn_stat *stat);
/* True when path's data is cached: *data borrowed until the next cache call. stat may be NULL. */
bool fs_cache_data(const char *path, const uint8_t **data, int32_t *data_len, struct zn_stat *stat);
void fs_cache_drop(const char *path);
void fs_cache_drop_all(void);
/* True when path's cached stat shows data over FS_MAX_DATA_BYTES (written by another client):
 * fetching it would end the connection, so it is refused (EFBIG) instead. */
bool fs_cache_too_big(const char *path);
/* Sends an exists of path that sets fs_watch_cb as its data watch, and caches the stat its
 * reply brings (the one way to arm an entry without reading); 0 or the error of sending. */
int fs_cache_watch(struct zn_client *c, const char *path);
/* A listing of path was read by a getChildren2 that set fs_watch_cb as its child watch (this is
 * its reply): when path has an entry, it is marked with the listing's serial id and true is
 * returned; the mark goes with the entry (node_dir.c, invariants). */
bool fs_cache_mark_listing(const char *path, uint64_t id);
/* True while path's entry is there, not held, and marked with id (non-zero). */
bool fs_cache_listing_armed(const char *path, uint64_t id);
/* Paths with unanswered writes at once; past it nothing is served until they drain. */
#define FS_CACHE_MAX_HOLDS 4096
/* A write to path is in flight that no FUSE reply waits for: bypass the cache
 * for path until the matching fs_cache_unhold (from the write's callback). */
void fs_cache_hold(const char *path);
void fs_cache_unhold(const char *path);

/* ---- node_dir.c ---- */
struct fs_listing;
/* Drops one reference of a listing (NULL: nothing). */
void fs_listing_put(struct fs_listing *l);

/* ---- acl_mode.c: mode bits from the node's ACL for the mount's identity ---- */
/* Paths whose perms are kept at once. */
#define FS_ACL_MAX_ENTRIES 65536
/* The mount's digest identity from auth=USER:PASSWORD (copied), or NULL: world only. */
void fs_acl_set_identity(const char *auth);
/* The mount's SASL DIGEST-MD5 user (sasl:USER entries grant it their perms), or NULL. */
void fs_acl_set_sasl_identity(const char *user);
/* The ZN_PERM_* bits acl grants the mount's identity. */
int32_t fs_acl_perms_of(const struct zn_acl_entry *acl, int32_t count);
/* True (and *perms, may be NULL) when path's perms are known at st's czxid and aversion. */
bool fs_acl_known(const char *path, const struct zn_stat *st, int32_t *perms);
void fs_acl_remember(const char *path, const struct zn_stat *st, int32_t perms);
void fs_acl_forget(const char *path);
/* rwx bits for path at st (all perms while unknown). */
mode_t fs_acl_mode_bits(const char *path, const struct zn_stat *st, bool dir, bool read_only);

/* ---- notify.c: kernel cache invalidations from a thread of their own ---- */
int fs_notify_start(struct fs *fs);
void fs_notify_stop(void);
void fs_notify_inval_inode(uint64_t nodeid);
void fs_notify_delete(uint64_t parent, uint64_t child, const char *name);
void fs_notify_inval_entry(uint64_t parent, const char *name);
/* The watcher every read sets: turns events into invalidations. */
void fs_watch_cb(struct zn_client *client, int type, int state, const char *path, void *arg);

/* ---- the handlers: node_*.c, rename.c, file_*.c, ops_xattr.c, lock.c, wait.c ---- */
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
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph);
void fs_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
/* Drops every flock of (path, owner): the fd was closed or its holder died. */
void fs_lock_release_owner(struct fs *fs, const char *path, uint64_t owner);
/* Starts an @wait read for handle h: replies once the version passes N. */
void fs_wait_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
/* Answers interrupted waits and locks (their interrupt callbacks only mark them). */
void fs_wait_kick(struct fs *fs);
void fs_lock_kick(struct fs *fs);
/* The session expired: every lock of it is gone (pending flock calls fail with EIO). */
void fs_lock_session_lost(struct fs *fs);
/* After a renewal: resumes @wait reads whose watch the expired session took with it. */
void fs_wait_rearm(struct fs *fs);
/* True when h created ephemeral nodes in a session that has since expired. */
bool fs_handle_lost(const struct fs *fs, const struct fs_handle *h);
/* Drops a handle's pending wait (the file was closed). */
void fs_wait_cancel_handle(struct fs *fs, struct fs_handle *h);
/* Replies to req with data[off, off+size) of a snapshot. */
void fs_reply_slice(fuse_req_t req, const uint8_t *data, int32_t len, size_t size, off_t off);

/* ---- open files: file_handle.c, file_open.c, file_read.c, file_write.c, file_clone.c ---- */
static inline struct fs_handle *fs_handle_of(struct fuse_file_info *fi)
{
    return (struct fs_handle *)(uintptr_t)fi->fh;
}
/* A handle of inode opened with flags (O_ACCMODE, O_TRUNC), not yet taken by the kernel. */
struct fs_handle *fs_handle_new(struct fs_inode *inode, int flags);
void fs_handle_free(struct fs_handle *h);
/* The kernel took h: counted on its inode until release. */
void fs_handle_opened(struct fs_handle *h);
/* h's O_TRUNC is settled: stored with its first write, or at release. */
void fs_handle_truncated(struct fs_handle *h);
/* A write nobody waits for (release cannot report errors): what it is, for the log, and the
 * path it holds uncached (fs_cache_hold) until answered; a delete (deletes) holds the parent
 * too, whose listing it changes. */
struct fs_release_step;
/* NULL when out of memory (nothing is held then). */
struct fs_release_step *fs_release_step_new(const char *what, const char *path, bool deletes);
/* The zn_result_cb of a release step's request: logs a failure, frees st. */
void fs_release_step_done(struct zn_client *c, const struct zn_result *r, void *arg);
/* Takes the rc of sending st's request: on a synchronous error logs it and frees st. */
void fs_release_fire(int rc, struct fs_release_step *st);
/* h is released: its poll handle destroyed, its watch (if armed) finds no handle. */
void fs_poll_forget(struct fs *fs, struct fs_handle *h);
/* write(2) and read of a .clone handle (file_clone.c). */
void fs_clone_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

/* ---- node_lookup.c: the state of one namespace request across its ZooKeeper round trips,
 * shared with node_change.c (mkdir, mknod, unlink, rmdir) ---- */
struct fs_node_op {
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
/* A new op for req, or NULL after replying ENOMEM. */
struct fs_node_op *fs_node_op_new(fuse_req_t req);
/* Replies err unless 0 (the reply was sent), and frees op. */
void fs_node_op_finish(struct fs_node_op *op, int err);
/* Starts a request; on a synchronous error (rc) replies and frees op. */
bool fs_node_started(struct fs_node_op *op, int rc);
/* Replies with the entry of op->path as kind once the node's ACL (its mode bits) is known. */
void fs_node_reply_entry(struct fs_node_op *op, enum fs_kind kind);

/* ---- times.c: utimensat ---- */

enum fs_time_change { FS_TIME_NONE = 0, FS_TIME_NOW, FS_TIME_SET };
/* What the time part of a setattr (to_set, attr) asks of a node whose attributes are `shown`: an
 * enum fs_time_change (*mtime_ms the mtime to store for FS_TIME_SET), or a negative errno
 * (-EPERM: a time that cannot be kept; -EROFS on a read-only mount). */
int fs_times_plan(const struct fs_inode *inode, const struct stat *shown, const struct stat *attr,
                  int to_set, int64_t *mtime_ms);
/* The wall clock in ms, as ZooKeeper's stat times. */
int64_t fs_times_now_ms(void);
/* Called once with 0 or the errno. */
typedef void (*fs_times_cb)(void *arg, int err);
/* Makes the node at path (copied) show the change; cb is called exactly once unless this
 * returns an errno (then never). */
int fs_times_apply(const char *path, enum fs_time_change change, int64_t mtime_ms, fs_times_cb cb, void *arg);
/* Gives the node at path (copied), which has data (borrowed for the call) at version, the
 * mtime mtime_ms, without reading it first (rename.c: the moved nodes keep their mtimes).  A
 * write since is newer and wins (success).  EPERM at once when the server has no extension. */
int fs_times_put(const char *path, const uint8_t *data, int32_t data_len, int32_t version, int64_t mtime_ms,
                 fs_times_cb cb, void *arg);

#endif
