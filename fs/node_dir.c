/*
 * Directory listings: opendir gives the kernel a listing (lock contenders hidden, ".data" listed
 * when the node has data), readdir serves it from any offset, releasedir lets it go.  Called by
 * main.c's ops table.
 *
 * A listing is one allocation (struct fs_listing): the names, each ended by a NUL, and their
 * offsets.  The open directory holds it, and so does its inode: the listing the kernel was
 * given last for that inode.  When a new listing has the same names, the inode's is used and the
 * kernel is told to keep the copy it made (keep_cache with cache_readdir): no readdir round
 * trips either.
 *
 * A listing cache, with the discipline of cache.c: opendir answers from the inode's listing,
 * without asking the server, while that listing is armed.  Invariants:
 *   1. A listing is armed only from the reply of the getChildren2 that read it, which set
 *      fs_watch_cb as a child watch on its path, and only when that path then had a node cache
 *      entry (cache.c: a data watch armed, no event since, not held): the entry is marked with
 *      the listing's serial (fs_cache_mark_listing), and the inode keeps the same serial.  The
 *      entry was there before the reply, so the data watch covered the node's data from then on
 *      and ".data" is right; the reply armed the child watch, so the names are right.
 *   2. Whatever could change it drops the entry, and the mark with it (fs_cache_listing_armed
 *      then fails): any event for the path (a child created or deleted: the child watch; its
 *      data set: the data watch, as ".data" shows it; its deletion), a change this mount made
 *      under it once answered (create, mknod, mkdir, unlink, rmdir, rename in or out,
 *      .clone creates: fs_cache_drop_parent), a path held while a write nobody waits for is in
 *      flight (release's deletes of ephemeral files hold the parent), and connection loss or
 *      session end (fs_cache_drop_all).  ZooKeeper delivers the event before the reply to the
 *      change on the same session, so the change's own reply cannot be followed by a cached
 *      listing from before it; the explicit drop is kept anyway, as cache.c does.
 *   3. A listing read for a path the inode no longer has (renamed while the request was out),
 *      or for an unlinked inode, is never armed; a serial is never reused, so an entry marked
 *      for one inode's listing never arms another inode of the same path.
 * Without a data watch on the node opendir asks for one (an exists, before the getChildren2 on
 * the same connection), so the next opendir can be answered from here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "znodefs.h"

struct fs_listing {
    int refs;            /* the open directories holding it, and its inode */
    int32_t count;       /* names, "." and ".." included */
    size_t bytes;        /* of names */
    const uint32_t *at;  /* where each name starts in names */
    const char *names;   /* count names, each ended by a NUL */
};

struct dir_op {
    fuse_req_t req;
    struct fuse_file_info fi;
    fuse_ino_t ino;
    uint64_t first_loss_ms; /* fs_retry_read */
    char path[];            /* what was asked for */
};

/* Serials of armed listings (invariant 3); 0 is none. */
static uint64_t listing_serial;

/* Drops n references of l (NULL: nothing). */
static void listing_unref(struct fs_listing *l, int n)
{
    if (l && (l->refs -= n) == 0)
        free(l);
}

void fs_listing_put(struct fs_listing *l) { listing_unref(l, 1); }

/* Appends name to a listing being built (room was counted). */
static void listing_add(uint32_t *at, char *names, int32_t *n, size_t *used, const char *name)
{
    size_t len = strlen(name) + 1;
    at[(*n)++] = (uint32_t)*used;
    memcpy(names + *used, name, len);
    *used += len;
}

/* The listing of a getChildren2 reply, in one allocation (refs 1), or NULL when out of memory. */
static struct fs_listing *listing_new(const struct zn_result *r)
{
    bool data = r->stat && r->stat->data_length > 0;
    size_t bytes = sizeof "." + sizeof ".." + (data ? sizeof ".data" : 0);
    int32_t count = 2 + (data ? 1 : 0);
    for (int32_t i = 0; i < r->child_count; i++)
        if (!fs_is_lock_contender(r->children[i])) {
            bytes += strlen(r->children[i]) + 1;
            count++;
        }
    if (bytes > UINT32_MAX)
        return NULL;
    struct fs_listing *l = malloc(sizeof *l + sizeof(uint32_t) * (size_t)count + bytes);
    if (!l)
        return NULL;
    uint32_t *at = (uint32_t *)(l + 1);
    char *names = (char *)(at + count);
    size_t used = 0;
    int32_t n = 0;
    listing_add(at, names, &n, &used, ".");
    listing_add(at, names, &n, &used, "..");
    for (int32_t i = 0; i < r->child_count; i++)
        if (!fs_is_lock_contender(r->children[i]))
            listing_add(at, names, &n, &used, r->children[i]);
    /* A directory's data is listed when there is some. */
    if (data)
        listing_add(at, names, &n, &used, ".data");
    *l = (struct fs_listing){.refs = 1, .count = n, .bytes = used, .at = at, .names = names};
    return l;
}

static bool listing_same(const struct fs_listing *a, const struct fs_listing *b)
{
    return a->count == b->count && a->bytes == b->bytes && memcmp(a->names, b->names, a->bytes) == 0;
}

/* True when inode's listing may be given without asking the server (invariants 1-3). */
static bool listing_armed(const struct fs_inode *inode)
{
    return inode->listing && !inode->unlinked && fs_cache_listing_armed(inode->path, inode->listing_id);
}

/* Opens the directory with l, whose reference the caller gives to the handle; same: l is the
 * listing the kernel was given last for this inode, so it keeps its copy. */
static void reply_listing(fuse_req_t req, struct fuse_file_info *fi, struct fs_inode *inode,
                          struct fs_listing *l, bool same)
{
    fi->fh = (uintptr_t)l;
    fi->cache_readdir = 1;
    fi->keep_cache = same;
    if (fuse_reply_open(req, fi) != 0) {
        /* The kernel did not get this listing: it must not be taken for the one it holds. */
        bool kept = inode && inode->listing == l;
        if (kept) {
            inode->listing = NULL;
            inode->listing_id = 0;
        }
        listing_unref(l, kept ? 2 : 1); /* the handle's, and the inode's */
    }
}

static void opendir_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct dir_op *op = arg;
    struct fs_inode *inode = fs_inode_get(fs_global, op->ino);
    if (fs_retry_read(r->rc, &op->first_loss_ms) &&
        zn_get_children2(c, op->path, fs_watch_cb, NULL, opendir_done, op) == 0)
        return;
    if (r->rc) {
        fuse_reply_err(op->req, fs_errno(r->rc));
        free(op);
        return;
    }
    struct fs_listing *l = listing_new(r);
    if (!l) {
        fuse_reply_err(op->req, ENOMEM);
        free(op);
        return;
    }
    /* The reference of l held here goes to the handle. */
    bool same = false;
    if (inode) {
        same = inode->listing && listing_same(inode->listing, l);
        if (same) {
            fs_listing_put(l);
            l = inode->listing;
        } else {
            fs_listing_put(inode->listing);
            inode->listing = l;
        }
        l->refs++; /* the inode's, or the handle's of the inode's */
        bool here = !inode->unlinked && strcmp(inode->path, op->path) == 0;
        uint64_t serial = ++listing_serial;
        inode->listing_id = here && fs_cache_mark_listing(op->path, serial) ? serial : 0;
    }
    reply_listing(op->req, &op->fi, inode, l, same);
    free(op);
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (listing_armed(inode)) {
        inode->listing->refs++; /* the handle's */
        reply_listing(req, fi, inode, inode->listing, true);
        return;
    }
    size_t len = strlen(inode->path) + 1;
    struct dir_op *op = calloc(1, sizeof *op + len);
    if (!op) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    op->req = req;
    op->fi = *fi;
    op->ino = ino;
    memcpy(op->path, inode->path, len);
    /* The data watch a listing is armed with (invariant 1); its reply comes first. */
    struct zn_stat st;
    if (!inode->unlinked && !fs_cache_stat(op->path, &st))
        (void)fs_cache_watch(fs->client, op->path); /* without it, only this listing is not kept */
    int rc = zn_get_children2(fs->client, op->path, fs_watch_cb, NULL, opendir_done, op);
    if (rc) {
        fuse_reply_err(req, fs_errno(rc));
        free(op);
    }
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    const struct fs_listing *l = (const struct fs_listing *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    struct stat st;
    memset(&st, 0, sizeof st);
    for (off_t i = off; i >= 0 && i < l->count; i++) {
        st.st_ino = (ino_t)(i + 2); /* a placeholder: stat gives the real one */
        size_t need = fuse_add_direntry(req, buf + used, size - used, l->names + l->at[i], &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_listing_put((struct fs_listing *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}
