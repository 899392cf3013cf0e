/*
 * Learning the outcome of a change lost with its connection (its member died while it was in
 * flight): once libznode is connected to another member, a sync (so that member has applied
 * every committed transaction) and a read of the node and of its parent tell what happened in
 * the cases the callers can decide (docs/filesystem.md, "Failures"):
 *  - a create whose node is absent while the parent's pzxid is not newer than any zxid the
 *    session had seen when it was sent: nothing entered the parent since, so it did not apply;
 *  - a delete (or a rename, whose multi deletes its source) whose node is still there with a
 *    czxid not newer than that zxid: the node it was sent for is still there, so it did not apply;
 *  - a conditional write, as file_write.c's write: the node's data and version tell.
 * Such a change is sent again; anything else is unknown to the mount (EIO, the program decides).
 * Each read lost again is asked again, bounded by fs_retry_read.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

struct learn {
    struct fs *fs;
    char *path;
    char *parent;
    bool data;
    uint64_t *first_loss_ms;
    fs_learn_cb cb;
    void *arg;
    struct fs_learned got;
};

static void learn_free(struct learn *l)
{
    free(l->got.data);
    free(l->path);
    free(l->parent);
    free(l);
}

static void learn_end(struct learn *l, int rc)
{
    l->got.rc = rc;
    l->cb(&l->got, l->arg);
    learn_free(l);
}

static void learn_restart(struct learn *l);

/* The reply to a lost read: true when it was handled (asked again, or the learning ended). */
static bool lost_again(struct learn *l, const struct zn_result *r)
{
    if (r->rc != ZN_CONNECTIONLOSS)
        return false;
    if (fs_retry_read(r->rc, l->first_loss_ms))
        learn_restart(l);
    else
        learn_end(l, ZN_CONNECTIONLOSS);
    return true;
}

static void parent_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct learn *l = arg;
    if (lost_again(l, r))
        return;
    if (r->rc == 0) {
        l->got.have_parent = true;
        l->got.parent = *r->stat;
    }
    learn_end(l, r->rc == ZN_NONODE ? 0 : r->rc);
}

static void node_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct learn *l = arg;
    if (lost_again(l, r))
        return;
    if (r->rc && r->rc != ZN_NONODE) {
        learn_end(l, r->rc);
        return;
    }
    free(l->got.data);
    l->got.data = NULL;
    l->got.have_node = r->rc == 0;
    if (r->rc == 0) {
        l->got.node = *r->stat;
        l->got.data_len = r->data_len > 0 ? r->data_len : 0;
        if (l->data && l->got.data_len > 0) {
            if (!(l->got.data = malloc((size_t)l->got.data_len))) {
                learn_end(l, ZN_NOMEMORY);
                return;
            }
            memcpy(l->got.data, r->data, (size_t)l->got.data_len);
        }
    }
    int rc = zn_exists(c, l->parent, NULL, NULL, parent_done, l);
    if (rc)
        learn_end(l, rc);
}

static void synced(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct learn *l = arg;
    if (lost_again(l, r))
        return;
    if (r->rc) {
        learn_end(l, r->rc);
        return;
    }
    int rc = l->data ? zn_get(c, l->path, NULL, NULL, node_done, l)
                     : zn_exists(c, l->path, NULL, NULL, node_done, l);
    if (rc)
        learn_end(l, rc);
}

static void learn_restart(struct learn *l)
{
    int rc = zn_sync(l->fs->client, l->path, synced, l);
    if (rc)
        learn_end(l, rc);
}

void fs_learn(struct fs *fs, const char *path, bool data, uint64_t *first_loss_ms, fs_learn_cb cb,
              void *arg)
{
    struct learn *l = calloc(1, sizeof *l);
    if (l) {
        l->path = strdup(path);
        l->parent = strdup(path);
    }
    if (!l || !l->path || !l->parent) {
        if (l)
            learn_free(l);
        struct fs_learned failed = {.rc = ZN_NOMEMORY};
        cb(&failed, arg);
        return;
    }
    char *slash = strrchr(l->parent, '/');
    if (slash == l->parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    l->fs = fs;
    l->data = data;
    l->first_loss_ms = first_loss_ms;
    l->cb = cb;
    l->arg = arg;
    ZN_INFO("a change of path=%s was lost with its connection: learning its outcome", path);
    learn_restart(l);
}

bool fs_learned_create_not_applied(const struct fs_learned *got, int64_t zxid_before)
{
    return got->rc == 0 && !got->have_node && got->have_parent && got->parent.pzxid <= zxid_before;
}

bool fs_learned_delete_not_applied(const struct fs_learned *got, int64_t zxid_before)
{
    return got->rc == 0 && got->have_node && got->node.czxid <= zxid_before;
}
