/*
 * Extended attributes of the mount: the znode's stat, one read-only
 * attribute per field (user.zk.czxid ... user.zk.pzxid) and user.zk.stat for
 * all of them; user.zk.acl in ZooKeeper's text form (scheme:id:perms, one per
 * line; settable); user.zk.data@V, the one-syscall compare-and-write; and
 * user.zk.child_mode on a directory ("ephemeral": files created in it through
 * this mount live as long as the fd that created them; a setting of this
 * mount, kept in its memory, not stored with the node - fs/README.md).
 *
 * getxattr has no side effects: the kernel's size probe and value read are
 * two calls, and getfattr makes both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

#define XATTR_PREFIX "user.zk."

static const char *const stat_fields[] = {
    "czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
    "ephemeral_owner", "data_length", "num_children",
};
#define STAT_FIELD_COUNT (sizeof stat_fields / sizeof stat_fields[0])

static int64_t stat_field(const struct zn_stat *st, int i)
{
    switch (i) {
    case 0: return st->czxid;
    case 1: return st->mzxid;
    case 2: return st->pzxid;
    case 3: return st->ctime;
    case 4: return st->mtime;
    case 5: return st->version;
    case 6: return st->cversion;
    case 7: return st->aversion;
    case 8: return st->ephemeral_owner;
    case 9: return st->data_length;
    default: return st->num_children;
    }
}

static int stat_field_index(const char *field)
{
    for (size_t i = 0; i < STAT_FIELD_COUNT; i++)
        if (strcmp(field, stat_fields[i]) == 0)
            return (int)i;
    return -1;
}

static void reply_value(fuse_req_t req, const char *value, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, value, len);
}

static void perms_text(int32_t perms, char *out)
{
    char *p = out;
    if (perms & ZN_PERM_CREATE) *p++ = 'c';
    if (perms & ZN_PERM_DELETE) *p++ = 'd';
    if (perms & ZN_PERM_READ) *p++ = 'r';
    if (perms & ZN_PERM_WRITE) *p++ = 'w';
    if (perms & ZN_PERM_ADMIN) *p++ = 'a';
    *p = '\0';
}

/* ---- getxattr ---- */

enum xattr_what { X_FIELD, X_STAT, X_ACL, X_DATA, X_CHILD_MODE };

struct xattr_op {
    fuse_req_t req;
    size_t size;
    enum xattr_what what;
    int field;
    uint64_t first_loss_ms; /* fs_retry_read */
    char path[FS_MAX_PATH_BYTES];
};

static void get_done(struct zn_client *c, const struct zn_result *r, void *arg);

/* Sends op's read (again, after a loss: reads are asked of the next member). */
static int get_send(struct xattr_op *op)
{
    struct zn_client *c = fs_global->client;
    switch (op->what) {
    case X_ACL:
        return zn_get_acl(c, op->path, get_done, op);
    case X_DATA:
        return zn_get(c, op->path, NULL, NULL, get_done, op);
    default:
        return zn_exists(c, op->path, NULL, NULL, get_done, op);
    }
}

static void get_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct xattr_op *op = arg;
    if (fs_retry_read(r->rc, &op->first_loss_ms) && get_send(op) == 0)
        return;
    if (r->rc) {
        fuse_reply_err(op->req, fs_errno(r->rc));
        free(op);
        return;
    }
    char *text = malloc(FS_MAX_XATTR_BYTES);
    size_t len = 0;
    if (!text) {
        fuse_reply_err(op->req, ENOMEM);
        free(op);
        return;
    }
    switch (op->what) {
    case X_FIELD:
        len = (size_t)snprintf(text, FS_MAX_XATTR_BYTES, "%" PRId64, stat_field(r->stat, op->field));
        break;
    case X_STAT:
        for (size_t i = 0; i < STAT_FIELD_COUNT; i++)
            len += (size_t)snprintf(text + len, FS_MAX_XATTR_BYTES - len, "%s=%" PRId64 "\n",
                                    stat_fields[i], stat_field(r->stat, (int)i));
        break;
    case X_ACL:
        for (int32_t i = 0; i < r->acl_count && len < FS_MAX_XATTR_BYTES; i++) {
            char perms[8];
            perms_text(r->acl[i].perms, perms);
            len += (size_t)snprintf(text + len, FS_MAX_XATTR_BYTES - len, "%s:%s:%s\n",
                                    r->acl[i].scheme, r->acl[i].id, perms);
        }
        if (len > FS_MAX_XATTR_BYTES)
            len = FS_MAX_XATTR_BYTES;
        break;
    case X_DATA:
        if (r->data_len > FS_MAX_XATTR_BYTES) {
            free(text);
            fuse_reply_err(op->req, E2BIG);
            free(op);
            return;
        }
        len = r->data_len > 0 ? (size_t)r->data_len : 0;
        memcpy(text, r->data, len);
        break;
    case X_CHILD_MODE:
        break;
    }
    reply_value(op->req, text, len, op->size);
    free(text);
    free(op);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    const char *field = name + strlen(XATTR_PREFIX);
    if (strcmp(field, "child_mode") == 0) {
        if (inode->kind != FS_KIND_DIR || inode->virt != FS_VIRT_NONE) {
            fuse_reply_err(req, ENODATA);
            return;
        }
        const char *mode = fs_dir_is_ephemeral(fs, inode->path) ? "ephemeral" : "persistent";
        reply_value(req, mode, strlen(mode), size);
        return;
    }
    struct xattr_op *op = calloc(1, sizeof *op);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->size = size;
    strcpy(op->path, inode->path);
    if ((op->field = stat_field_index(field)) >= 0) {
        op->what = X_FIELD;
    } else if (strcmp(field, "stat") == 0) {
        op->what = X_STAT;
    } else if (strcmp(field, "acl") == 0) {
        op->what = X_ACL;
    } else if (strcmp(field, "data") == 0) {
        op->what = X_DATA;
    } else {
        free(op);
        fuse_reply_err(req, ENODATA);
        return;
    }
    int rc = get_send(op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    char list[1024];
    size_t len = 0;
    for (size_t i = 0; i < STAT_FIELD_COUNT; i++)
        len += (size_t)sprintf(list + len, XATTR_PREFIX "%s", stat_fields[i]) + 1;
    len += (size_t)sprintf(list + len, XATTR_PREFIX "stat") + 1;
    len += (size_t)sprintf(list + len, XATTR_PREFIX "acl") + 1;
    if (inode->kind == FS_KIND_DIR && inode->virt == FS_VIRT_NONE)
        len += (size_t)sprintf(list + len, XATTR_PREFIX "child_mode") + 1;
    reply_value(req, list, len, size);
}

/* ---- setxattr ---- */

/* A set of the data or of the ACL: the request and the node, for the cache. */
struct xattr_set_op {
    fuse_req_t req;
    char path[FS_MAX_PATH_BYTES];
    /* user.zk.data: what is sent again if it was lost with its member (data_learned) */
    uint8_t *value;
    int32_t size, version;
    int64_t zxid_before;
    uint64_t first_loss_ms;
};

static void inval_attr(struct fs *fs, struct fs_inode *inode, void *arg)
{
    (void)fs;
    (void)arg;
    fs_notify_inval_inode(inode->nodeid);
}

static void acl_set_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct xattr_set_op *op = arg;
    /* setACL fires no watch: the mode bits and the cached stat (aversion) change here. */
    fs_acl_forget(op->path);
    fs_cache_drop(op->path);
    fs_inode_for_path(fs_global, op->path, inval_attr, NULL);
    fuse_reply_err(op->req, fs_errno(r->rc));
    free(op);
}

/* user.zk.data@V stored (or not): whatever the node cache held for the path is
 * older than what the next read must see (cache.c: its event normally came first). */
static void data_set_done(struct zn_client *c, const struct zn_result *r, void *arg);

static int data_send(struct xattr_set_op *op)
{
    op->zxid_before = zn_client_last_zxid(fs_global->client);
    return zn_set(fs_global->client, op->path, op->value ? (const void *)op->value : "", op->size,
                  op->version, data_set_done, op);
}

static void data_set_end(struct xattr_set_op *op, int err)
{
    fs_cache_drop(op->path);
    fuse_reply_err(op->req, err);
    free(op->value);
    free(op);
}

/* A set lost with its member, learned as file_write.c learns a write's: a node unchanged since it
 * was sent did not take it (sent again); one holding its data did; a conditional set whose
 * version was taken by other data lost its race; anything else is unknown: EIO. */
static void data_learned(const struct fs_learned *got, void *arg)
{
    struct xattr_set_op *op = arg;
    int err = EIO;
    if (got->rc == 0 && !got->have_node) {
        err = ENOENT; /* deleted since: a set never creates */
    } else if (got->rc == 0 && got->node.mzxid <= op->zxid_before) {
        int rc = data_send(op);
        if (rc == 0)
            return;
        err = fs_errno(rc);
    } else if (got->rc == 0 && got->data_len == op->size &&
               (op->size == 0 || memcmp(got->data, op->value, (size_t)op->size) == 0)) {
        err = 0;
    } else if (got->rc == 0 && op->version >= 0 && got->node.version == op->version + 1) {
        err = ECANCELED;
    }
    data_set_end(op, err);
}

static void data_set_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct xattr_set_op *op = arg;
    if (r->rc == ZN_CONNECTIONLOSS) {
        fs_learn(fs_global, op->path, true, &op->first_loss_ms, data_learned, op);
        return;
    }
    data_set_end(op, fs_errno(r->rc));
}

/* Parses "scheme:id:perms" lines (id may hold colons: digest user:hash). */
static int parse_acl(const char *value, size_t size, struct zn_acl_entry *out, int max, char *store)
{
    memcpy(store, value, size);
    store[size] = '\0';
    int n = 0;
    for (char *line = strtok(store, "\n,"); line; line = strtok(NULL, "\n,")) {
        char *first = strchr(line, ':'), *last = strrchr(line, ':');
        if (!first || first == last || n == max)
            return -1;
        *first = '\0';
        *last = '\0';
        int32_t perms = 0;
        for (const char *p = last + 1; *p; p++) {
            switch (*p) {
            case 'c': perms |= ZN_PERM_CREATE; break;
            case 'd': perms |= ZN_PERM_DELETE; break;
            case 'r': perms |= ZN_PERM_READ; break;
            case 'w': perms |= ZN_PERM_WRITE; break;
            case 'a': perms |= ZN_PERM_ADMIN; break;
            default: return -1;
            }
        }
        out[n++] = (struct zn_acl_entry){perms, line, first + 1};
    }
    return n > 0 ? n : -1;
}

#define FS_MAX_ACL_ENTRIES 64

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    if (fs->config.read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    const char *field = name + strlen(XATTR_PREFIX);
    int rc;
    if (strncmp(field, "data", 4) == 0 && (field[4] == '\0' || field[4] == '@')) {
        long long version = -1;
        if (field[4] == '@') {
            char *end;
            version = strtoll(field + 5, &end, 10);
            if (field[5] == '\0' || *end || version < -1 || version > INT32_MAX) {
                fuse_reply_err(req, EINVAL);
                return;
            }
        }
        struct xattr_set_op *op = calloc(1, sizeof *op);
        if (!op) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        op->req = req;
        strcpy(op->path, inode->path);
        op->size = (int32_t)size;
        op->version = (int32_t)version;
        if (size > 0 && !(op->value = malloc(size))) {
            free(op);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        if (size > 0)
            memcpy(op->value, value, size);
        rc = data_send(op);
        if (rc) {
            free(op->value);
            free(op);
        }
        if (rc == ZN_TOOBIG)
            rc = 0, fuse_reply_err(req, E2BIG);
        else if (rc)
            fuse_reply_err(req, fs_errno(rc));
        return;
    }
    if (strcmp(field, "child_mode") == 0) {
        if (inode->kind != FS_KIND_DIR || inode->virt != FS_VIRT_NONE) {
            fuse_reply_err(req, ENOTDIR);
            return;
        }
        bool ephemeral = size == 9 && memcmp(value, "ephemeral", 9) == 0;
        bool persistent = size == 10 && memcmp(value, "persistent", 10) == 0;
        if (!ephemeral && !persistent) {
            fuse_reply_err(req, EINVAL);
            return;
        }
        fuse_reply_err(req, fs_set_dir_ephemeral(fs, inode->path, ephemeral) ? ENOMEM : 0);
        return;
    }
    if (strcmp(field, "acl") == 0) {
        struct zn_acl_entry acl[FS_MAX_ACL_ENTRIES];
        char *store = malloc(size + 1);
        int n = store ? parse_acl(value, size, acl, FS_MAX_ACL_ENTRIES, store) : -1;
        if (n < 0) {
            free(store);
            fuse_reply_err(req, store ? EINVAL : ENOMEM);
            return;
        }
        struct xattr_set_op *op = calloc(1, sizeof *op);
        if (!op) {
            free(store);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        op->req = req;
        strcpy(op->path, inode->path);
        rc = zn_set_acl(fs->client, inode->path, acl, n, -1, acl_set_done, op);
        free(store); /* zn_set_acl copied it */
        if (rc) {
            free(op);
            fuse_reply_err(req, fs_errno(rc));
        }
        return;
    }
    /* The stat fields are read-only: ENOTSUP, which copy tools (cp -a, mv of a tree) skip
     * quietly when they copy every xattr of a node onto another. */
    fuse_reply_err(req, ENOTSUP);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fuse_reply_err(req, strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0 ? EPERM : ENODATA);
}
