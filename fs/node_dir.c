/*
 * Directory listings: opendir reads the children once (lock contenders hidden, ".data" listed
 * when the node has data) and keeps them in the handle, readdir serves that list from any
 * offset, releasedir frees it.  Called by main.c's ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "znodefs.h"

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

/* True when d lists exactly what inode's last listing did; inode then remembers d's.  Out of
 * memory, it remembers nothing (the next opendir is then "changed" too). */
static bool listing_unchanged(struct fs_inode *inode, const struct dir_handle *d)
{
    size_t len = 0;
    for (int32_t i = 0; i < d->count; i++)
        len += strlen(d->names[i] ? d->names[i] : "") + 1;
    char *flat = malloc(len ? len : 1);
    if (!flat) {
        free(inode->listing);
        inode->listing = NULL;
        return false;
    }
    size_t at = 0;
    for (int32_t i = 0; i < d->count; i++) {
        const char *name = d->names[i] ? d->names[i] : "";
        size_t n = strlen(name) + 1;
        memcpy(flat + at, name, n);
        at += n;
    }
    bool same = inode->listing && inode->listing_len == len && memcmp(inode->listing, flat, len) == 0;
    free(inode->listing);
    inode->listing = flat;
    inode->listing_len = len;
    return same;
}

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
    /* The kernel keeps what readdir returned (cache_readdir) and, when this listing is the one
     * it was given last time, serves it from there: no readdir round trips, a few thousand
     * entries at a time, for a directory that did not change.  The listing itself is always
     * the server's, read just now; only the copy of it is spared. */
    op->fi.cache_readdir = 1;
    op->fi.keep_cache = inode && listing_unchanged(inode, d);
    if (fuse_reply_open(op->req, &op->fi) != 0) {
        /* The kernel did not get this listing: it must not be taken for the one it holds. */
        if (inode) {
            free(inode->listing);
            inode->listing = NULL;
        }
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
