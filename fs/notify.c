/*
 * Kernel cache invalidation for the mount: turns ZooKeeper watch events into
 * FUSE notifications, and sends those from a thread of their own.
 *
 * Why a thread: a notification may wait on a kernel lock held by a request
 * that is waiting for this very process to answer it (an invalidated entry's
 * directory is locked by a pending LOOKUP, for example).  Sent from the loop
 * thread, that would deadlock; sent from here, it just waits its turn.  The
 * queue is bounded (FS_NOTIFY_MAX_QUEUED): past it, notifications are dropped
 * and the kernel's attribute timeouts bound the staleness instead.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

#define FS_NOTIFY_MAX_QUEUED 65536

enum notify_type { NOTIFY_INVAL_INODE, NOTIFY_INVAL_ENTRY, NOTIFY_DELETE, NOTIFY_STOP };

struct notify {
    struct notify *next;
    enum notify_type type;
    uint64_t parent;
    uint64_t child;
    char name[];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct notify *head, *tail;
    int count;
    pthread_t thread;
    bool started;
    struct fuse_session *session;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, false, NULL};

static void push(enum notify_type type, uint64_t parent, uint64_t child, const char *name)
{
    if (!q.started)
        return;
    size_t len = name ? strlen(name) : 0;
    struct notify *n = malloc(sizeof *n + len + 1);
    if (!n)
        return;
    n->next = NULL;
    n->type = type;
    n->parent = parent;
    n->child = child;
    memcpy(n->name, name ? name : "", len + 1);
    pthread_mutex_lock(&q.lock);
    if (q.count >= FS_NOTIFY_MAX_QUEUED && type != NOTIFY_STOP) {
        pthread_mutex_unlock(&q.lock);
        free(n);
        return;
    }
    if (q.tail)
        q.tail->next = n;
    else
        q.head = n;
    q.tail = n;
    q.count++;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
}

static void *notify_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (!q.head)
            pthread_cond_wait(&q.cond, &q.lock);
        struct notify *n = q.head;
        q.head = n->next;
        if (!q.head)
            q.tail = NULL;
        q.count--;
        pthread_mutex_unlock(&q.lock);
        enum notify_type type = n->type;
        /* Errors (ENOENT: the kernel no longer holds it) only mean nothing was cached. */
        switch (type) {
        case NOTIFY_INVAL_INODE:
            fuse_lowlevel_notify_inval_inode(q.session, n->child, 0, 0);
            break;
        case NOTIFY_INVAL_ENTRY:
            fuse_lowlevel_notify_inval_entry(q.session, n->parent, n->name, strlen(n->name));
            break;
        case NOTIFY_DELETE:
            if (fuse_lowlevel_notify_delete(q.session, n->parent, n->child, n->name,
                                            strlen(n->name)) != 0)
                fuse_lowlevel_notify_inval_entry(q.session, n->parent, n->name, strlen(n->name));
            break;
        case NOTIFY_STOP:
            break;
        }
        free(n);
        if (type == NOTIFY_STOP)
            return NULL;
    }
}

int fs_notify_start(struct fs *fs)
{
    q.session = fs->session;
    q.started = true;
    if (pthread_create(&q.thread, NULL, notify_main, NULL) != 0) {
        q.started = false;
        return -1;
    }
    return 0;
}

void fs_notify_stop(void)
{
    if (!q.started)
        return;
    push(NOTIFY_STOP, 0, 0, NULL);
    pthread_join(q.thread, NULL);
    q.started = false;
}

void fs_notify_inval_inode(uint64_t nodeid) { push(NOTIFY_INVAL_INODE, 0, nodeid, NULL); }
void fs_notify_inval_entry(uint64_t parent, const char *name)
{
    push(NOTIFY_INVAL_ENTRY, parent, 0, name);
}
void fs_notify_delete(uint64_t parent, uint64_t child, const char *name)
{
    push(NOTIFY_DELETE, parent, child, name);
}

/* ---- watch events ---- */

struct event_ctx {
    int type;
    uint64_t parent; /* node id of the parent directory, 0 if the kernel holds none */
    const char *name;
};

static void on_inode_event(struct fs *fs, struct fs_inode *inode, void *arg)
{
    struct event_ctx *e = arg;
    if (e->type == ZN_EVENT_DELETED && inode->virt == FS_VIRT_NONE && e->parent) {
        fs_notify_delete(e->parent, inode->nodeid, e->name);
        return;
    }
    fs_notify_inval_inode(inode->nodeid);
}

static void find_parent(struct fs *fs, struct fs_inode *inode, void *arg)
{
    uint64_t *parent = arg;
    if (inode->virt == FS_VIRT_NONE && inode->kind == FS_KIND_DIR)
        *parent = inode->nodeid;
}

void fs_watch_cb(struct zn_client *client, int type, int state, const char *path, void *arg)
{
    struct fs *fs = fs_global;
    (void)client;
    (void)arg;
    if (type == ZN_EVENT_NONE) {
        fs_cache_drop_all(); /* the session ended: no watch is armed any more */
        return;
    }
    if (!path || path[0] != '/')
        return;
    /* Any event ends the data watch the cache entry relied on (cache.c invariant 1). */
    fs_cache_drop(path);
    ZN_DEBUG("watch event type=%d path=%s", type, path);
    char parent_path[FS_MAX_PATH_BYTES];
    const char *slash = strrchr(path, '/');
    size_t plen = slash == path ? 1 : (size_t)(slash - path);
    if (plen >= sizeof parent_path)
        return;
    memcpy(parent_path, path, plen);
    parent_path[plen] = '\0';
    struct event_ctx e = {type, 0, slash + 1};
    /* This mount is moving the node: the kernel moved its dentries already, and a deletion
     * sent now would delete them under their new names (a moved directory then looks dead:
     * ENOENT under it until the kernel forgets it). */
    if (type == ZN_EVENT_DELETED && fs_rename_in_flight(path))
        return;
    if (strcmp(path, "/") != 0)
        fs_inode_for_path(fs, parent_path, find_parent, &e.parent);
    if (type == ZN_EVENT_CREATED && e.parent) {
        fs_notify_inval_entry(e.parent, e.name);
        return;
    }
    fs_inode_for_path(fs, path, on_inode_event, &e);
}
