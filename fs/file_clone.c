/*
 * The .clone control file of a directory: writes collect "PREFIX\nDATA", the next read creates
 * DIR/PREFIX<seq> with DATA (sequential; ephemeral in a directory whose child_mode is
 * ephemeral, deleted at release by file_handle.c) and returns the created name.
 *
 * Invariants: an ephemeral node the handle cannot track is deleted at once, never left behind;
 * the collected request is consumed by the read whatever its outcome.
 *
 * Called by file_read.c and file_write.c for handles of a .clone inode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "znodefs.h"

/* Bytes one write to a .clone file may carry (prefix, newline, data). */
#define FS_MAX_CLONE_INPUT_BYTES (FS_MAX_DATA_BYTES + NAME_MAX + 1)

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
    fs_cache_drop_parent(r->path); /* a new entry in the directory (node_dir.c invariant 2) */
    const char *slash = strrchr(r->path, '/');
    const char *name = slash ? slash + 1 : r->path;
    char *line = malloc(strlen(name) + 2);
    char *keep = op->ephemeral ? strdup(r->path) : NULL;
    if (!line || (op->ephemeral && (!keep || h->clone_ephemeral_count >= FS_MAX_CLONE_EPHEMERALS))) {
        /* Cannot track it: do not leave an ephemeral node nobody will delete. */
        struct fs_release_step *what = op->ephemeral ? fs_release_step_new("delete untracked ephemeral", r->path, true) : NULL;
        if (what)
            fs_release_fire(zn_delete(c, r->path, -1, fs_release_step_done, what), what);
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

void fs_clone_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
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

void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
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
