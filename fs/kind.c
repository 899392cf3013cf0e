/*
 * The kind extension, the mount's side: whether the server stores each
 * node's kind (file or directory, client.h "znodefs extension"), and the two
 * calls that use it with their fallbacks.  Until a reply says otherwise the
 * mount assumes the extension; a server that answers a kinded create with
 * BADARGUMENTS (and the same create without the kind bits succeeds, or fails
 * otherwise), or answers getChildrenKinds with UNIMPLEMENTED, has none:
 * from then on the mount uses plain create2 / getChildren2 and the children
 * rule, as it does for nodes of unknown kind.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

/* One kinded create, kept for its plain retry. */
struct kind_create {
    zn_result_cb cb;
    void *arg;
    char *path;
    uint8_t *data;
    int32_t data_len;
    int flags;
};

static void kind_create_free(struct kind_create *k)
{
    free(k->path);
    free(k->data);
    free(k);
}

static void plain_create_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct kind_create *k = arg;
    if (r->rc != ZN_BADARGUMENTS && fs_global->kind_ext != FS_KIND_EXT_NO) {
        fs_global->kind_ext = FS_KIND_EXT_NO;
        ZN_INFO("znodefs: the server stores no node kinds: empty directories made elsewhere show as files");
    }
    k->cb(c, r, k->arg);
    kind_create_free(k);
}

static void kind_create_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct kind_create *k = arg;
    if (r->rc == ZN_BADARGUMENTS && fs_global->kind_ext != FS_KIND_EXT_YES) {
        int rc = zn_create2(c, k->path, k->data, k->data_len, NULL, 0, k->flags, 0, plain_create_done, k);
        if (rc == 0)
            return;
        struct zn_result failed = {.rc = rc, .data_len = -1};
        k->cb(c, &failed, k->arg);
        kind_create_free(k);
        return;
    }
    if (r->rc == 0)
        fs_global->kind_ext = FS_KIND_EXT_YES;
    k->cb(c, r, k->arg);
    kind_create_free(k);
}

int fs_create_kind(struct fs *fs, const char *path, const void *data, int32_t data_len, int flags,
                   enum fs_kind kind, zn_result_cb cb, void *arg)
{
    if (fs->kind_ext == FS_KIND_EXT_NO)
        return zn_create2(fs->client, path, data, data_len, NULL, 0, flags, 0, cb, arg);
    struct kind_create *k = calloc(1, sizeof *k);
    if (!k)
        return ZN_NOMEMORY;
    k->cb = cb;
    k->arg = arg;
    k->flags = flags;
    k->data_len = data_len;
    k->path = strdup(path);
    if (data_len > 0)
        k->data = malloc((size_t)data_len);
    if (!k->path || (data_len > 0 && !k->data)) {
        kind_create_free(k);
        return ZN_NOMEMORY;
    }
    if (data_len > 0)
        memcpy(k->data, data, (size_t)data_len);
    int rc = zn_ext_create2_kind(fs->client, path, k->data ? (const void *)k->data : "", data_len, flags,
                                 kind == FS_KIND_DIR ? ZN_KIND_DIRECTORY : ZN_KIND_FILE, kind_create_done, k);
    if (rc)
        kind_create_free(k);
    return rc;
}

/* One getChildrenKinds, kept for its getChildren2 retry. */
struct kind_list {
    zn_result_cb cb;
    void *arg;
    char *path;
    zn_watch_cb watch_cb;
    void *watch_arg;
    bool ptime; /* asked with the ptime */
};

static void kind_list_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    struct kind_list *k = arg;
    if (r->rc == ZN_UNIMPLEMENTED && k->ptime) {
        /* a znoded from before ptimes: kinds without them */
        fs_global->ptime_ext = FS_EXT_NO;
        k->ptime = false;
        int rc = zn_ext_get_children_kinds(c, k->path, k->watch_cb, k->watch_arg, kind_list_done, k);
        if (rc == 0)
            return;
        struct zn_result failed = {.rc = rc, .data_len = -1};
        k->cb(c, &failed, k->arg);
    } else if (r->rc == ZN_UNIMPLEMENTED) {
        if (fs_global->kind_ext != FS_KIND_EXT_NO)
            ZN_INFO("znodefs: the server has no getChildrenKinds: the children rule types nodes");
        fs_global->kind_ext = FS_KIND_EXT_NO;
        int rc = zn_get_children2(c, k->path, k->watch_cb, k->watch_arg, k->cb, k->arg);
        if (rc) {
            struct zn_result failed = {.rc = rc, .data_len = -1};
            k->cb(c, &failed, k->arg);
        }
    } else if (r->rc == 0 && r->data_len != r->child_count + 1 + (k->ptime ? ZN_KINDS_PTIME_BYTES : 0)) {
        ZN_ERROR("znodefs: getChildrenKinds path=%s gave %d kinds for %d children", k->path, r->data_len,
                 r->child_count);
        struct zn_result failed = {.rc = ZN_MARSHALLINGERROR, .data_len = -1};
        k->cb(c, &failed, k->arg);
    } else {
        if (r->rc == 0)
            fs_global->kind_ext = FS_KIND_EXT_YES;
        k->cb(c, r, k->arg);
    }
    free(k->path);
    free(k);
}

int fs_children_kinds(struct fs *fs, const char *path, zn_watch_cb watch_cb, void *watch_arg, zn_result_cb cb,
                      void *arg)
{
    if (fs->kind_ext == FS_KIND_EXT_NO)
        return zn_get_children2(fs->client, path, watch_cb, watch_arg, cb, arg);
    struct kind_list *k = calloc(1, sizeof *k);
    if (!k || !(k->path = strdup(path))) {
        free(k);
        return ZN_NOMEMORY;
    }
    *k = (struct kind_list){cb, arg, k->path, watch_cb, watch_arg, fs->ptime_ext != FS_EXT_NO};
    int rc = k->ptime ? zn_ext_get_children_kinds_ptime(fs->client, path, watch_cb, watch_arg, kind_list_done, k)
                      : zn_ext_get_children_kinds(fs->client, path, watch_cb, watch_arg, kind_list_done, k);
    if (rc) {
        free(k->path);
        free(k);
    }
    return rc;
}

int32_t fs_count_subdirs(const struct fs *fs, const char *path, const struct zn_result *r)
{
    int32_t subdirs = 0;
    for (int32_t i = 0; i < r->child_count; i++) {
        if (fs_is_lock_contender(r->children[i]))
            continue;
        enum fs_kind kind;
        char child[FS_MAX_PATH_BYTES];
        if (fs_result_kind(r, i, &kind) == 0) {
            subdirs += kind == FS_KIND_DIR;
        } else if (fs_join(path, r->children[i], child) == 0 && fs_made_dir(fs, child)) {
            subdirs++;
        } else {
            return -1; /* the children rule would need that child's own children */
        }
    }
    return subdirs;
}

int fs_result_kind(const struct zn_result *r, int32_t index, enum fs_kind *kind)
{
    if (r->data == NULL || r->data_len < r->child_count + 1 || index < -1 || index >= r->child_count)
        return -1;
    uint8_t k = r->data[index < 0 ? r->child_count : index];
    if (k == ZN_KIND_FILE)
        *kind = FS_KIND_FILE;
    else if (k == ZN_KIND_DIRECTORY)
        *kind = FS_KIND_DIR;
    else
        return -1;
    return 0;
}

int64_t fs_result_ptime(const struct zn_result *r)
{
    if (r->data == NULL || r->data_len != r->child_count + 1 + ZN_KINDS_PTIME_BYTES)
        return 0;
    uint64_t ptime = 0;
    for (int i = 0; i < ZN_KINDS_PTIME_BYTES; i++)
        ptime = ptime << 8 | r->data[r->child_count + 1 + i];
    return (int64_t)ptime;
}

bool fs_dir_needs_listing(const struct fs *fs, const struct fs_inode *inode, const struct zn_stat *st)
{
    if (inode->virt != FS_VIRT_NONE || inode->kind != FS_KIND_DIR || inode->unlinked)
        return false;
    bool count = st->num_children > 0 && !(inode->subdirs_counted && inode->subdirs_cversion == st->cversion);
    /* Only znoded has ptimes, and they matter only once an entry changed after the data. */
    bool ptime = fs->kind_ext != FS_KIND_EXT_NO && fs->ptime_ext != FS_EXT_NO && st->pzxid > st->mzxid &&
                 inode->ptime_pzxid != st->pzxid;
    return count || ptime;
}
