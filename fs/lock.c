/*
 * flock(2) on the mount: a distributed lock, ZooKeeper's lock recipe laid
 * out exactly as kazoo's Lock and ReadLock lay it out, so shell scripts and
 * kazoo programs exclude each other:
 *   - a contender is an ephemeral sequential child of the locked node named
 *     "<32 hex uuid>__lock__<seq>" (exclusive) or "...__rlock__<seq>" (shared);
 *   - an exclusive contender holds the lock when no contender of either kind
 *     has a lower sequence; a shared one when no "__lock__" one has;
 *   - a waiter watches only its nearest blocking predecessor (no herd).
 * One contender per (path, lock owner): the kernel names the owner per open
 * file description and sends it again with RELEASE when the holder closes the
 * file or dies (SIGKILL included), which deletes the contender.  Contenders are
 * ephemeral, so the session's end releases them too.
 *
 * A blocking flock is answered from the loop when the predecessor goes away;
 * an interrupt (Ctrl-C, flock -w's alarm) deletes the contender and answers
 * EINTR.  Watches carry the lock's id, never a pointer (see wait.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <uv.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

/* Contenders this mount keeps at once. */
#define FS_MAX_LOCKS 100000

enum lock_state { LOCK_CREATING, LOCK_WAITING, LOCK_HELD };

struct fs_lock {
    struct fs_lock *next;
    uint64_t id;
    char *path;       /* the locked node */
    char *node;       /* our contender's full path, once created */
    uint64_t owner;
    bool shared;
    bool nonblocking;
    enum lock_state state;
    fuse_req_t req;   /* the flock call waiting for its answer, or NULL */
    bool interrupted;
    bool released;    /* unlocked or closed while its create was in flight */
};

static struct fs_lock *find_id(struct fs *fs, uint64_t id)
{
    for (struct fs_lock *l = fs->locks; l; l = l->next)
        if (l->id == id)
            return l;
    return NULL;
}

static void delete_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    if (r->rc && r->rc != ZN_NONODE)
        ZN_WARN("unlock: cannot delete contender: %s", zn_strerror(r->rc));
}

/* Removes l, deleting its contender node, and answers its pending call with err (if any). */
static void drop(struct fs *fs, struct fs_lock *l, int err)
{
    if (l->node && zn_delete(fs->client, l->node, -1, delete_done, NULL) != 0)
        ZN_WARN("unlock: cannot delete contender path=%s", l->node);
    if (l->req)
        fuse_reply_err(l->req, err);
    for (struct fs_lock **link = &fs->locks; *link; link = &(*link)->next)
        if (*link == l) {
            *link = l->next;
            break;
        }
    free(l->path);
    free(l->node);
    free(l);
}

static void answer(struct fs_lock *l, int err)
{
    fuse_req_t req = l->req;
    l->req = NULL;
    if (req)
        fuse_reply_err(req, err);
}

/* Parses the sequence after the marker of a contender name; false if not one. */
static bool contender_seq(const char *name, bool *shared, long long *seq)
{
    if (!fs_is_lock_contender(name))
        return false;
    *shared = strstr(name, "__rlock__") != NULL; /* uuids are hex: no underscores */
    const char *seqtext = name + strlen(name) - ZN_SEQUENCE_DIGITS;
    if (seqtext > name && seqtext[-1] == '-')
        seqtext--;
    *seq = strtoll(seqtext, NULL, 10);
    return true;
}

static void check(struct fs *fs, struct fs_lock *l);

static void on_predecessor_event(struct zn_client *c, int type, int state, const char *path,
                                 void *arg)
{
    struct fs *fs = fs_global;
    struct fs_lock *l = find_id(fs, (uint64_t)(uintptr_t)arg);
    if (!l || l->state != LOCK_WAITING || l->interrupted)
        return;
    if (type == ZN_EVENT_NONE) {
        drop(fs, l, EIO);
        return;
    }
    check(fs, l);
}

static void predecessor_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_lock *l = find_id(fs, (uint64_t)(uintptr_t)arg);
    if (!l || l->interrupted)
        return;
    if (r->rc == ZN_NONODE) {
        check(fs, l); /* gone before we could watch it */
        return;
    }
    if (r->rc)
        drop(fs, l, fs_errno(r->rc));
    /* else: the watch is set; its event calls check() */
}

static void children_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_lock *l = find_id(fs, (uint64_t)(uintptr_t)arg);
    if (!l || l->interrupted)
        return;
    if (r->rc) {
        drop(fs, l, fs_errno(r->rc));
        return;
    }
    const char *mine = strrchr(l->node, '/') + 1;
    bool my_shared;
    long long my_seq;
    ZN_ASSERT(contender_seq(mine, &my_shared, &my_seq));
    const char *predecessor = NULL;
    long long best = 0;
    bool found_self = false;
    for (int32_t i = 0; i < r->child_count; i++) {
        bool shared;
        long long seq;
        if (strcmp(r->children[i], mine) == 0)
            found_self = true;
        if (!contender_seq(r->children[i], &shared, &seq) || seq >= my_seq)
            continue;
        if (l->shared && shared)
            continue; /* readers do not exclude readers */
        if (!predecessor || seq > best) {
            predecessor = r->children[i];
            best = seq;
        }
    }
    if (!found_self) {
        drop(fs, l, EIO); /* our ephemeral node is gone: the session was lost */
        return;
    }
    if (!predecessor) {
        l->state = LOCK_HELD;
        answer(l, 0);
        return;
    }
    if (l->nonblocking) {
        drop(fs, l, EWOULDBLOCK);
        return;
    }
    char path[FS_MAX_PATH_BYTES];
    if (fs_join(l->path, predecessor, path) != 0) {
        drop(fs, l, ENAMETOOLONG);
        return;
    }
    void *id = (void *)(uintptr_t)l->id;
    l->state = LOCK_WAITING;
    int rc = zn_exists(fs->client, path, on_predecessor_event, id, predecessor_done, id);
    if (rc)
        drop(fs, l, fs_errno(rc));
}

static void check(struct fs *fs, struct fs_lock *l)
{
    void *id = (void *)(uintptr_t)l->id;
    int rc = zn_get_children(fs->client, l->path, NULL, NULL, children_done, id);
    if (rc)
        drop(fs, l, fs_errno(rc));
}

static void created_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_lock *l = find_id(fs, (uint64_t)(uintptr_t)arg);
    ZN_ASSERT(l);
    if (r->rc) {
        drop(fs, l, r->rc == ZN_NOCHILDRENFOREPHEMERALS ? EPERM : fs_errno(r->rc));
        return;
    }
    l->node = strdup(r->path);
    if (!l->node) {
        ZN_WARN("flock: out of memory: contender path=%s left to the session's end", r->path);
        drop(fs, l, ENOMEM);
        return;
    }
    if (l->interrupted || l->released) {
        drop(fs, l, EINTR);
        return;
    }
    check(fs, l);
}

static void on_interrupt(fuse_req_t req, void *arg)
{
    struct fs *fs = fs_global;
    struct fs_lock *l = find_id(fs, (uint64_t)(uintptr_t)arg);
    if (!l)
        return;
    l->interrupted = true;
    uv_async_send(&fs->kick);
}

void fs_lock_kick(struct fs *fs)
{
    struct fs_lock *l = fs->locks;
    while (l) {
        struct fs_lock *next = l->next;
        /* One still being created is dropped when its create answers. */
        if (l->interrupted && l->state != LOCK_CREATING)
            drop(fs, l, EINTR);
        l = next;
    }
}

void fs_lock_release_owner(struct fs *fs, const char *path, uint64_t owner)
{
    struct fs_lock *l = fs->locks;
    while (l) {
        struct fs_lock *next = l->next;
        if (l->owner == owner && strcmp(l->path, path) == 0) {
            if (l->state == LOCK_CREATING)
                l->released = true;
            else
                drop(fs, l, EINTR);
        }
        l = next;
    }
}

void fs_lock_session_lost(struct fs *fs)
{
    struct fs_lock *l = fs->locks;
    while (l) {
        struct fs_lock *next = l->next;
        /* One being created is dropped by its create's SESSIONEXPIRED answer. */
        if (l->state != LOCK_CREATING) {
            ZN_WARN("flock: lock path=%s lost with the expired session", l->path);
            free(l->node); /* gone with the session; a delete could only hit a stranger */
            l->node = NULL;
            drop(fs, l, EIO);
        }
        l = next;
    }
}

static void random_hex(char out[33])
{
    unsigned char bytes[16];
    uv_random(NULL, NULL, bytes, sizeof bytes, 0, NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

void fs_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
    struct fs *fs = fs_global;
    struct fs_inode *inode = fs_inode_get(fs, ino);
    if (!inode) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    const char *path = inode->path;
    int kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
    struct fs_lock *mine = NULL;
    size_t count = 0;
    for (struct fs_lock *l = fs->locks; l; l = l->next, count++)
        if (l->owner == fi->lock_owner && strcmp(l->path, path) == 0 && !l->req)
            mine = l;
    if (kind == LOCK_UN) {
        if (mine) {
            if (mine->state == LOCK_CREATING)
                mine->released = true;
            else
                drop(fs, mine, 0);
        }
        fuse_reply_err(req, 0);
        return;
    }
    bool shared = kind == LOCK_SH;
    if (mine && mine->state == LOCK_HELD && mine->shared == shared) {
        fuse_reply_err(req, 0); /* already held in this mode */
        return;
    }
    if (mine) /* a conversion: flock(2) drops the old lock first */
        drop(fs, mine, 0);
    if (count >= FS_MAX_LOCKS) {
        fuse_reply_err(req, ENOLCK);
        return;
    }
    struct fs_lock *l = calloc(1, sizeof *l);
    char prefix[FS_MAX_PATH_BYTES];
    char uuid[33];
    random_hex(uuid);
    char name[64];
    snprintf(name, sizeof name, "%s%s", uuid, shared ? "__rlock__" : "__lock__");
    if (!l || !(l->path = strdup(path))) {
        free(l);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fs_join(path, name, prefix) != 0) {
        free(l->path);
        free(l);
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    l->id = ++fs->next_async_id;
    l->owner = fi->lock_owner;
    l->shared = shared;
    l->nonblocking = (op & LOCK_NB) != 0;
    l->state = LOCK_CREATING;
    l->req = req;
    l->next = fs->locks;
    fs->locks = l;
    void *id = (void *)(uintptr_t)l->id;
    int rc = zn_create(fs->client, prefix, "", 0, NULL, 0, ZN_FLAG_EPHEMERAL | ZN_FLAG_SEQUENTIAL, 0,
                       created_done, id);
    if (rc) {
        drop(fs, l, fs_errno(rc));
        return;
    }
    if (!l->nonblocking)
        fuse_req_interrupt_func(req, on_interrupt, id);
}
