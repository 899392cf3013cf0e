/*
 * znodefs: mounts a ZooKeeper tree (served by znoded or ZooKeeper) with FUSE.
 *
 * This file owns the program: its options, the start-up (connect first, so a
 * wrong HOSTS fails the mount command, then mount, then detach), and the one
 * libuv loop that runs everything: it polls the FUSE session fd and the
 * ZooKeeper connection alike, so a reply that waits on the network (a
 * blocking flock, an @wait read) is answered later from a callback without
 * holding a thread.  It also owns the mapping helpers every handler uses:
 * ZooKeeper codes to errno (the contract's table), znode stat to struct stat,
 * and the mount's per-directory settings.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

struct fs *fs_global;

/* Settings a mount keeps for its own directories (child_mode, mkdir'd kinds). */
#define FS_MAX_DIR_SETTINGS 100000

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

/* ---- per-directory settings of this mount ---- */

static int list_find(char **list, int count, const char *path)
{
    for (int i = 0; i < count; i++)
        if (strcmp(list[i], path) == 0)
            return i;
    return -1;
}

static int list_set(char ***list, int *count, const char *path, bool on)
{
    int i = list_find(*list, *count, path);
    if (!on) {
        if (i >= 0) {
            free((*list)[i]);
            (*list)[i] = (*list)[--*count];
        }
        return 0;
    }
    if (i >= 0)
        return 0;
    if (*count >= FS_MAX_DIR_SETTINGS)
        return ZN_NOMEMORY;
    char **grown = realloc(*list, sizeof **list * (size_t)(*count + 1));
    if (!grown)
        return ZN_NOMEMORY;
    *list = grown;
    if (!(grown[*count] = strdup(path)))
        return ZN_NOMEMORY;
    ++*count;
    return 0;
}

bool fs_dir_is_ephemeral(const struct fs *fs, const char *path)
{
    return list_find(fs->ephemeral_dirs, fs->ephemeral_dir_count, path) >= 0;
}

int fs_set_dir_ephemeral(struct fs *fs, const char *path, bool on)
{
    return list_set(&fs->ephemeral_dirs, &fs->ephemeral_dir_count, path, on);
}

bool fs_made_dir(const struct fs *fs, const char *path)
{
    return list_find(fs->made_dirs, fs->made_dir_count, path) >= 0;
}

void fs_remember_dir(struct fs *fs, const char *path, bool on)
{
    (void)list_set(&fs->made_dirs, &fs->made_dir_count, path, on);
}

/* Renames the entries at old_path and under it in place; one that cannot be renamed (out of
 * memory) is dropped: the kind stored with the node still says what it is. */
static void list_move(char **list, int *count, const char *old_path, const char *new_path)
{
    size_t old_len = strlen(old_path), new_len = strlen(new_path);
    for (int i = 0; i < *count; i++) {
        const char *p = list[i];
        if (strncmp(p, old_path, old_len) != 0 || (p[old_len] != '\0' && p[old_len] != '/'))
            continue;
        char *renamed = malloc(new_len + strlen(p + old_len) + 1);
        if (!renamed) {
            free(list[i]);
            list[i--] = list[--*count];
            continue;
        }
        memcpy(renamed, new_path, new_len);
        strcpy(renamed + new_len, p + old_len);
        free(list[i]);
        list[i] = renamed;
    }
}

void fs_move_dir_settings(struct fs *fs, const char *old_path, const char *new_path)
{
    list_move(fs->made_dirs, &fs->made_dir_count, old_path, new_path);
    list_move(fs->ephemeral_dirs, &fs->ephemeral_dir_count, old_path, new_path);
}

/* ---- options ---- */

/* -o spin_us's default (see on_fuse_readable). */
#define FS_DEFAULT_SPIN_US 30

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG, KEY_RO };

#define FS_OPT(t, p) {t, offsetof(struct fs_config, p), 1}
static const struct fuse_opt fs_opts[] = {
    FS_OPT("session_timeout=%d", session_timeout_ms),
    FS_OPT("auth=%s", auth),
    FS_OPT("tls", tls),
    FS_OPT("cafile=%s", tls_ca),
    FS_OPT("certfile=%s", tls_cert),
    FS_OPT("keyfile=%s", tls_key),
    FS_OPT("sasl=%s", sasl),
    FS_OPT("sasl_user=%s", sasl_user),
    FS_OPT("sasl_password_file=%s", sasl_password_file),
    FS_OPT("sasl_service=%s", sasl_service),
    FS_OPT("entry_timeout=%lf", entry_timeout_s),
    FS_OPT("attr_timeout=%lf", attr_timeout_s),
    FS_OPT("spin_us=%d", spin_us),
    FS_OPT("log=%s", log_file),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("foreground", KEY_FOREGROUND),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_END,
};

static void usage(FILE *out)
{
    fprintf(out,
"usage: znodefs [-f] [-d] [-o OPT[,OPT...]] HOSTS MOUNTPOINT\n"
"\n"
"Mounts the znode tree of a ZooKeeper ensemble (znoded or Apache ZooKeeper).\n"
"HOSTS is a connect string: host:port[,host:port...][/chroot]; the mount fails\n"
"over between the hosts.  Also usable as `mount -t fuse.znodefs HOSTS DIR`.\n"
"Unmount with `fusermount3 -u MOUNTPOINT`.\n"
"\n"
"Options:\n"
"  -o session_timeout=MS  ZooKeeper session timeout (default %d); ephemeral files and\n"
"                         locks outlive a server crash for this long\n"
"  -o auth=USER:PASSWORD  add digest credentials to the session\n"
"  -o tls,cafile=CA.pem   connect with TLS (a server's secureClientPort), checking the\n"
"                         server's certificate against CA.pem and the host in HOSTS\n"
"  -o certfile=C.pem[,keyfile=K.pem]  with tls: the client's certificate and key (PEM,\n"
"                         the key unencrypted; default: in certfile), for\n"
"                         ssl.clientAuth=need and the x509: identity\n"
"  -o sasl=DIGEST-MD5,sasl_user=NAME,sasl_password_file=FILE  authenticate with SASL\n"
"                         as NAME (a user_NAME entry of the server's JAAS Server\n"
"                         section; the password is FILE's first line): the mount is\n"
"                         then sasl:NAME, again after every reconnect\n"
"  -o sasl=GSSAPI[,sasl_service=S]  Kerberos, with the ticket cache of the environment;\n"
"                         the server's principal is S/HOST (S default zookeeper)\n"
"  -o entry_timeout=S     how long the kernel caches names (default 1.0)\n"
"  -o attr_timeout=S      how long the kernel caches attributes (default 1.0); remote\n"
"                         changes also invalidate the caches as soon as a watch fires\n"
"  -o spin_us=US          after answering from the cache, poll for the next request\n"
"                         this long before sleeping (default %d; 0: never)\n"
"  -o ro                  read-only mount\n"
"  -o log=FILE            in the background, log to FILE instead of syslog (daemon facility)\n"
"  -f, -o foreground      stay in the foreground\n"
"  -d, -o debug           foreground, and log every request and watch event\n"
"  -h, --help             this text;  -V, --version  the version\n"
"  Other -o options are FUSE's (allow_other, default_permissions, ...).\n"
"\n"
"What you see: directories are znodes with children (or made with mkdir), files\n"
"are znodes' data; DIR/.data is a directory node's data; xattrs user.zk.* carry\n"
"the stat and ACL; `setfattr -n user.zk.data@V -v NEW f` and writes to \"f@v=V\"\n"
"are compare-and-write (ECANCELED when the version moved); reading \"f@wait=V\"\n"
"blocks until f's version passes V; flock(1) is a distributed lock (kazoo's\n"
"layout); `setfattr -n user.zk.child_mode -v ephemeral DIR` makes files created\n"
"in DIR through this mount ephemeral (a setting of this mount only, not stored\n"
"with the node: other mounts create persistent files there); DIR/.clone creates\n"
"sequential children (write \"PREFIX\\nDATA\", read back the name).  Mode bits show\n"
"the node's ACL for this mount's identity (world, and digest with auth=).\n"
"poll/select: POLLPRI once the file changed since it was last read at offset 0.\n"
"If the session expires, the mount opens a new one; files that held ephemeral\n"
"nodes of the old session then fail with EIO.\n",
            ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS, FS_DEFAULT_SPIN_US);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct fs_config *c = data;
    switch (key) {
    case FUSE_OPT_KEY_NONOPT:
        if (!c->hosts) {
            c->hosts = strdup(arg);
            return 0;
        }
        if (!c->mountpoint) {
            c->mountpoint = realpath(arg, NULL);
            if (!c->mountpoint) {
                fprintf(stderr, "znodefs: bad mount point %s: %s\n", arg, strerror(errno));
                return -1;
            }
            return 0;
        }
        fprintf(stderr, "znodefs: unexpected argument %s\n", arg);
        return -1;
    case KEY_HELP:
        usage(stdout);
        exit(0);
    case KEY_VERSION:
        printf("znodefs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
        exit(0);
    case KEY_FOREGROUND:
        c->foreground = true;
        return 0;
    case KEY_DEBUG:
        c->foreground = true;
        c->debug = true;
        return 0;
    case KEY_RO:
        c->read_only = true;
        return 1; /* FUSE mounts read-only too */
    default:
        return 1;
    }
}

/* ---- the FUSE side of the loop ---- */

static const struct fuse_lowlevel_ops fs_ops;

/*
 * How long the loop keeps polling /dev/fuse after answering requests from
 * the cache, before it sleeps in epoll.  A `cat` is five FUSE requests in a
 * row (GETATTR, OPEN, READ, READ at EOF, RELEASE), each sent only after the
 * previous one is answered; on an idle virtual machine every sleep and
 * wake-up of the mount between them costs 10-25 us, so a cached read took
 * 2.3x a getData over TCP (one round trip).  Polling for the next request
 * for a few tens of microseconds (only when every request was answered
 * without a server round trip, so a request to the server is never held
 * back) removes the mount's wake-ups from the chain: bench/mount-bench.sh on
 * an idle machine, open+read+close 98-126 us -> 28-37 us.  The cost: up to
 * spin_us of CPU after each burst (sched_yield lets a runnable thread on the
 * core go first), which a script that spawns many processes on a 2-core
 * machine pays as ~0.1 ms more per `cat`.  -o spin_us=0 turns it off.
 * Bounded per turn, so an idle mount costs nothing.
 */
#define FS_FUSE_SPIN_TURN_NS 2000000u

static void on_fuse_readable(uv_poll_t *handle, int status, int events)
{
    struct fs *fs = handle->data;
    uint64_t turn_start = uv_hrtime(), last = turn_start;
    uint64_t spin_ns = fs->config.spin_us > 0 ? (uint64_t)fs->config.spin_us * 1000u : 0;
    /* Drain what the kernel queued; EAGAIN ends the round, unless every
     * request was answered from the cache: then wait a little for the next. */
    for (int i = 0; i < 256 && !fuse_session_exited(fs->session); i++) {
        int res = fuse_session_receive_buf(fs->session, &fs->fuse_buf);
        if (res == -EINTR)
            continue;
        if (res == -EAGAIN && spin_ns && fs->client && zn_client_outstanding(fs->client) == 0) {
            uint64_t now = uv_hrtime();
            if (now - last < spin_ns && now - turn_start < FS_FUSE_SPIN_TURN_NS) {
                sched_yield(); /* a runnable thread on this core goes first */
                i--;
                continue;
            }
        }
        if (res <= 0)
            break;
        fuse_session_process_buf(fs->session, &fs->fuse_buf);
        last = uv_hrtime();
    }
    if (fuse_session_exited(fs->session)) {
        uv_poll_stop(handle);
        uv_stop(fs->loop);
    }
}

static void on_kick(uv_async_t *a)
{
    struct fs *fs = a->data;
    fs_wait_kick(fs);
    fs_lock_kick(fs);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct fs *fs = s->data;
    ZN_INFO("signal=%d: unmounting", signum);
    fuse_session_exit(fs->session);
    uv_stop(fs->loop);
}

static void on_session_event(struct zn_client *client, int event, void *arg)
{
    struct fs *fs = arg;
    if (client != fs->client)
        return; /* the client of an expired session, being closed */
    /* libznode logs each event itself: logged here too, it showed twice. */
    /* Events may be missed or late until the watches are back (cache.c invariant 3). */
    if (event != ZN_SESSION_CONNECTED && event != ZN_SESSION_CONNECTED_READ_ONLY)
        fs_cache_drop_all();
    if (event == ZN_SESSION_EXPIRED) {
        ZN_ERROR("session expired sid=0x%" PRIx64 ": its ephemeral files and locks are gone; "
                 "their open files now fail with EIO; opening a new session",
                 (uint64_t)zn_client_session_id(client));
        /* Later, from the loop: the expired client is still inside its own callbacks. */
        uv_timer_start(&fs->renew_timer, fs_session_renew, 0, 0);
    } else if (event == ZN_SESSION_AUTH_FAILED) {
        ZN_ERROR("the ensemble rejected %s: every operation fails with EACCES; remount with "
                 "the right credentials",
                 fs->config.sasl ? zn_client_last_failure(client) : "auth=<user:password>");
    }
}

/* Makes a client in *out and starts connecting (requests queue until connected). */
static int new_client(struct fs *fs, struct zn_client **out)
{
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.session_timeout_ms = fs->config.session_timeout_ms;
    o.session_cb = on_session_event;
    o.session_arg = fs;
    /* Every mount allows read-only members (canBeReadOnly): without a quorum, a member in
     * read-only mode serves its reads and answers its writes NOTREADONLY (EROFS, at once);
     * znoded keeps the session, and closes the connection when the quorum is back. */
    o.read_only = true;
    if (fs->config.tls) {
        o.tls_ca_file = fs->config.tls_ca;
        o.tls_cert_file = fs->config.tls_cert;
        o.tls_key_file = fs->config.tls_key;
    }
    o.sasl_mechanism = fs->config.sasl;
    o.sasl_service = fs->config.sasl_service;
    if (fs->config.sasl_user) {
        o.sasl_user = fs->config.sasl_user;
        o.sasl_password = fs->sasl_password;
    }
    struct zn_client *client;
    int rc = zn_client_new(fs->loop, fs->config.hosts, &o, &client);
    if (rc)
        return rc;
    if (fs->config.auth &&
        (rc = zn_add_auth(client, "digest", fs->config.auth, (int32_t)strlen(fs->config.auth),
                          NULL, NULL)) != 0) {
        zn_client_close(client, NULL, NULL);
        return rc;
    }
    *out = client;
    return 0;
}

static void invalidate_inode(struct fs *fs, struct fs_inode *inode, void *arg)
{
    (void)fs;
    (void)arg;
    fs_notify_inval_inode(inode->nodeid);
}

struct rearm_ctx {
    size_t sent;
};

static void rearm_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    char *path = arg;
    if (r->rc == 0 && r->stat)
        fs_cache_put_stat(path, r->stat); /* the exists armed fs_watch_cb */
    free(path);
}

static void rearm_children_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    (void)c;
    (void)r;
    (void)arg;
}

/* Arms again, in the new session, the watches the kernel's cached nodes relied on: a data watch
 * on every node (so a remote change or delete is told to the kernel, inotify's IN_DELETE_SELF
 * included, without waiting for the kernel to ask) and a child watch on every directory. */
static void rearm_inode(struct fs *fs, struct fs_inode *inode, void *arg)
{
    struct rearm_ctx *ctx = arg;
    if (inode->virt != FS_VIRT_NONE || inode->unlinked || ctx->sent >= FS_REARM_MAX_WATCHES)
        return;
    char *path = strdup(inode->path);
    if (!path)
        return;
    if (zn_exists(fs->client, inode->path, fs_watch_cb, NULL, rearm_done, path) != 0) {
        free(path);
        return;
    }
    ctx->sent++;
    if (inode->kind == FS_KIND_DIR &&
        zn_get_children(fs->client, inode->path, fs_watch_cb, NULL, rearm_children_done, NULL) == 0)
        ctx->sent++;
}

void fs_session_renew(uv_timer_t *timer)
{
    struct fs *fs = timer->data;
    struct zn_client *old = fs->client, *fresh = NULL;
    ZN_ASSERT(old != NULL);
    int rc = new_client(fs, &fresh);
    if (rc) {
        /* Out of memory: try again shortly rather than serve nothing forever; meanwhile
         * every call on the expired client fails cleanly (EIO). */
        ZN_ERROR("cannot open a new session: %s; retrying in %d ms", zn_strerror(rc), FS_RENEW_RETRY_MS);
        uv_timer_start(&fs->renew_timer, fs_session_renew, FS_RENEW_RETRY_MS, 0);
        return;
    }
    fs->client = fresh;
    zn_client_close(old, NULL, NULL);
    /* Handles that depended on the old session (ephemeral files) see it (EIO). */
    fs->session_gen++;
    fs->sessions_renewed++;
    fs_lock_session_lost(fs);
    fs_cache_drop_all();
    /* The kernel's attributes were kept valid by the old session's watches: ask again, which
     * arms them on the new one. */
    fs_inode_for_all(fs, invalidate_inode, NULL);
    struct rearm_ctx ctx = {0};
    fs_inode_for_all(fs, rearm_inode, &ctx);
    fs_wait_rearm(fs);
    if (ctx.sent >= FS_REARM_MAX_WATCHES)
        ZN_WARN("re-armed only %d watches; the rest are armed as the kernel asks again",
                FS_REARM_MAX_WATCHES);
    ZN_INFO("new session requested (renewal %" PRIu64 "); watches re-armed=%zu", fs->sessions_renewed,
            ctx.sent);
}

static void init_op(void *userdata, struct fuse_conn_info *conn)
{
    /* O_TRUNC arrives with OPEN, so it is published with the data that follows. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* A writeback cache would lose write errors: never. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    conn->time_gran = 1000000; /* ZooKeeper's times are in ms (times.c) */
    /* POSIX locks stay local (only flock is distributed). */
    conn->want &= ~FUSE_CAP_POSIX_LOCKS;
    if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
        conn->want |= FUSE_CAP_FLOCK_LOCKS;
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = init_op,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .setattr = fs_op_setattr,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .releasedir = fs_op_releasedir,
    .mkdir = fs_op_mkdir,
    .mknod = fs_op_mknod,
    .unlink = fs_op_unlink,
    .rmdir = fs_op_rmdir,
    .rename = fs_op_rename,
    .symlink = fs_op_symlink,
    .link = fs_op_link,
    .create = fs_op_create,
    .open = fs_op_open,
    .read = fs_op_read,
    .write = fs_op_write,
    /* No .flush: every write(2) is stored before it returns and POSIX locks stay local, so
     * FLUSH has nothing to do; left unset, the kernel learns that (ENOSYS) once and stops
     * sending one per close(2): a round trip less per `cat` (bench/mount-bench.sh). */
    .release = fs_op_release,
    .getxattr = fs_op_getxattr,
    .setxattr = fs_op_setxattr,
    .listxattr = fs_op_listxattr,
    .removexattr = fs_op_removexattr,
    .flock = fs_op_flock,
    .poll = fs_op_poll,
};

/* Connects, authenticates, and waits for the session: errors here fail the mount. */
static int connect_client(struct fs *fs)
{
    int rc = new_client(fs, &fs->client);
    if (rc) {
        fprintf(stderr, "znodefs: bad HOSTS %s, auth or TLS files: %s\n", fs->config.hosts, zn_strerror(rc));
        return rc;
    }
    rc = zn_sync_wait_connected(fs->client);
    if (rc == ZN_AUTHFAILED && fs->config.sasl) {
        fprintf(stderr, "znodefs: authentication failed: %s\n", zn_client_last_failure(fs->client));
        return rc;
    }
    if (rc) {
        fprintf(stderr, "znodefs: cannot reach %s: %s\n", fs->config.hosts, zn_strerror(rc));
        return rc;
    }
    return 0;
}

/* -o sasl=...: complete and consistent, the password read.  0, or -1 (said why). */
static int check_sasl_options(struct fs *fs)
{
    const struct fs_config *cfg = &fs->config;
    bool digest = cfg->sasl && strcmp(cfg->sasl, "DIGEST-MD5") == 0;
    if (cfg->sasl && !digest && strcmp(cfg->sasl, "GSSAPI") != 0) {
        fprintf(stderr, "znodefs: -o sasl= is DIGEST-MD5 or GSSAPI\n");
        return -1;
    }
    if (!digest && (cfg->sasl_user || cfg->sasl_password_file)) {
        fprintf(stderr, "znodefs: sasl_user= and sasl_password_file= need -o sasl=DIGEST-MD5\n");
        return -1;
    }
    if (cfg->sasl_service && !(cfg->sasl && !digest)) {
        fprintf(stderr, "znodefs: sasl_service= needs -o sasl=GSSAPI\n");
        return -1;
    }
    if (digest && (!cfg->sasl_user || !cfg->sasl_password_file)) {
        fprintf(stderr, "znodefs: -o sasl=DIGEST-MD5 needs sasl_user=NAME and sasl_password_file=FILE\n");
        return -1;
    }
    char err[600];
    if (digest && zn_read_password_file(cfg->sasl_password_file, fs->sasl_password, sizeof fs->sasl_password, err,
                                        sizeof err) != 0) {
        fprintf(stderr, "znodefs: sasl_password_file=%s\n", err);
        return -1;
    }
    return 0;
}

/* Forks; the parent waits for the child's verdict on the mount and exits with it. */
static int detach(int *status_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char verdict = 1;
        if (read(p[0], &verdict, 1) != 1)
            verdict = 1;
        _exit(verdict);
    }
    close(p[0]);
    setsid();
    *status_fd = p[1];
    return 0;
}

static void report(int status_fd, char verdict)
{
    if (status_fd < 0)
        return;
    if (write(status_fd, &verdict, 1) != 1) {
        /* the parent is gone: nobody to tell */
    }
    close(status_fd);
}

/* stdin and stdout to /dev/null, stderr (every log line) to the log sink: once mounted in
 * the background, nothing more reaches the terminal the mount came from. */
static void detach_stdio(const struct fs_config *config)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    if (fs_log_sink_start(config->log_file) != 0)
        dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

/* mount, df and findmnt name the ensemble (fsname) and the filesystem (fuse.znodefs), as sshfs
 * does; the user's own -o fsname=/subtype= come later and win. */
static int add_mount_names(struct fuse_args *args, const char *hosts)
{
    char *names = NULL, *fsname = malloc(strlen("fsname=") + strlen(hosts) + 1);
    if (!fsname)
        return -1;
    strcpy(fsname, "fsname=");
    strcat(fsname, hosts);
    /* A connect string has commas, which separate -o options unless escaped. */
    int rc = fuse_opt_add_opt_escaped(&names, fsname);
    free(fsname);
    if (rc == 0)
        rc = fuse_opt_add_opt(&names, "subtype=znodefs");
    if (rc == 0)
        rc = fuse_opt_insert_arg(args, 1, "-o");
    if (rc == 0)
        rc = fuse_opt_insert_arg(args, 2, names);
    free(names);
    return rc;
}

static void on_client_closed(void *arg) { *(bool *)arg = true; }

int main(int argc, char **argv)
{
    static struct fs fs_storage;
    struct fs *fs = &fs_storage;
    fs_global = fs;
    zn_log_set_program("znodefs");
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    fs->config.session_timeout_ms = ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS;
    fs->config.entry_timeout_s = 1.0;
    fs->config.attr_timeout_s = 1.0;
    fs->config.spin_us = FS_DEFAULT_SPIN_US;
    if (fuse_opt_parse(&args, &fs->config, fs_opts, opt_proc) != 0)
        return 2;
    if (!fs->config.hosts || !fs->config.mountpoint) {
        usage(stderr);
        return 2;
    }
    if (fs->config.tls && !fs->config.tls_ca) {
        fprintf(stderr, "znodefs: -o tls needs cafile=FILE (the CAs the server's certificate must "
                        "chain to)\n");
        return 2;
    }
    if (!fs->config.tls && (fs->config.tls_ca || fs->config.tls_cert || fs->config.tls_key)) {
        fprintf(stderr, "znodefs: cafile=, certfile= and keyfile= need -o tls\n");
        return 2;
    }
    if (fs->config.tls_key && !fs->config.tls_cert) {
        fprintf(stderr, "znodefs: keyfile= needs certfile=\n");
        return 2;
    }
    if (check_sasl_options(fs) != 0)
        return 2;
    const char *chroot = strchr(fs->config.hosts, '/');
    fs->config.chroot_bytes = chroot && strcmp(chroot, "/") != 0 ? strlen(chroot) : 0;
    if (add_mount_names(&args, fs->config.hosts) != 0)
        return 2;
    if (fs->config.debug) {
        zn_log_threshold = ZN_LOG_DEBUG;
        /* libfuse's own trace of every request (bench/mount-bench.sh counts them). */
        if (fuse_opt_add_arg(&args, "-d") != 0)
            return 2;
    }
    fs->uid = getuid();
    fs->gid = getgid();
    fs_acl_set_identity(fs->config.auth);
    fs_acl_set_sasl_identity(fs->config.sasl_user);
    fs_inodes_init(fs);

    int status_fd = -1;
    if (!fs->config.foreground && detach(&status_fd) != 0) {
        perror("znodefs: fork");
        return 1;
    }
    /* Until it is mounted, the terminal gets only what makes the mount fail (a member that
     * is down while another answers is not worth a line there). */
    int threshold = zn_log_threshold;
    if (status_fd >= 0 && zn_log_threshold < ZN_LOG_ERROR)
        zn_log_threshold = ZN_LOG_ERROR;
    static uv_loop_t loop;
    uv_loop_init(&loop);
    fs->loop = &loop;
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(fs->loop, &fs->renew_timer);
    fs->renew_timer.data = fs;
    if (connect_client(fs) != 0) {
        report(status_fd, 1);
        return 1;
    }
    struct fuse_lowlevel_ops ops = fs_ops; /* fuse_session_new copies it */
    reply_check_wrap_ops(&ops);            /* debug and sanitizer builds: one reply per request */
    fs->session = fuse_session_new(&args, &ops, sizeof ops, fs);
    if (!fs->session) {
        report(status_fd, 1);
        return 1;
    }
    if (fuse_session_mount(fs->session, fs->config.mountpoint) != 0) {
        fprintf(stderr, "znodefs: cannot mount on %s\n", fs->config.mountpoint);
        report(status_fd, 1);
        return 1;
    }
    int fd = fuse_session_fd(fs->session);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (fs_notify_start(fs) != 0) {
        fuse_session_unmount(fs->session);
        report(status_fd, 1);
        return 1;
    }
    uv_poll_init(fs->loop, &fs->fuse_poll, fd);
    fs->fuse_poll.data = fs;
    uv_poll_start(&fs->fuse_poll, UV_READABLE, on_fuse_readable);
    uv_async_init(fs->loop, &fs->kick, on_kick);
    fs->kick.data = fs;
    uv_signal_t sigs[3];
    int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(fs->loop, &sigs[i]);
        sigs[i].data = fs;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    report(status_fd, 0);
    if (status_fd >= 0)
        detach_stdio(&fs->config);
    else if (fs->config.log_file && fs_log_sink_start(fs->config.log_file) != 0)
        ZN_WARN("cannot log to %s: logging to stderr", fs->config.log_file);
    zn_log_threshold = threshold;
    ZN_INFO("mounted hosts=%s mountpoint=%s sid=0x%" PRIx64 " server=%s", fs->config.hosts,
            fs->config.mountpoint, (uint64_t)zn_client_session_id(fs->client),
            zn_client_current_server(fs->client));

    uv_run(fs->loop, UV_RUN_DEFAULT);

    uv_poll_stop(&fs->fuse_poll);
    uv_close((uv_handle_t *)&fs->fuse_poll, NULL);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_close((uv_handle_t *)&fs->kick, NULL);
    uv_timer_stop(&fs->renew_timer);
    uv_close((uv_handle_t *)&fs->renew_timer, NULL);
    fs_notify_stop();
    fuse_session_unmount(fs->session);
    /* End the session now, so its ephemeral files and locks vanish at once. */
    bool closed = false;
    zn_client_close(fs->client, on_client_closed, &closed);
    while (!closed && uv_run(fs->loop, UV_RUN_ONCE) != 0) {
    }
    fuse_session_destroy(fs->session);
    free(fs->fuse_buf.mem);
    fuse_opt_free_args(&args);
    ZN_INFO("unmounted mountpoint=%s", fs->config.mountpoint);
    return 0;
}
