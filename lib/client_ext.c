/*
 * libznode's calls for the znodefs extensions (client.h, "znodefs
 * extension"): a create2 whose flags carry ZN_CREATE_KIND_*, the
 * getChildrenKinds reads and setDataTime (proto.h).  They go through the same submission
 * path as every other call (client_submit); replies are decoded by
 * client_complete (client_ops.c).  Which servers have the extension is the
 * caller's business: these calls only say what the server answered.
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "client_internal.h"

/* Fills req's path (chroot prepended, malloc'd) after the common checks. */
static int ext_begin(struct zn_client *c, struct zn_request *req, int32_t type, const char *path,
                     zn_result_cb cb)
{
    ZN_ASSERT(c != NULL);
    memset(req, 0, sizeof *req);
    req->type = type;
    req->data.len = -1;
    req->acl.count = -1;
    if (!cb)
        return ZN_BADARGUMENTS;
    int rc = client_usable(c);
    if (rc == 0)
        rc = client_check_path(c, path);
    if (rc)
        return rc;
    req->path = client_server_path(c, path);
    return req->path ? 0 : ZN_NOMEMORY;
}

int zn_ext_create2_kind(struct zn_client *c, const char *path, const void *data, int32_t data_len,
                        int flags, int kind, zn_result_cb cb, void *arg)
{
    if (flags & ~(ZN_FLAG_EPHEMERAL | ZN_FLAG_SEQUENTIAL))
        return ZN_BADARGUMENTS;
    if (kind != ZN_KIND_FILE && kind != ZN_KIND_DIRECTORY)
        return ZN_BADARGUMENTS;
    if (data_len < -1 || (data_len > 0 && !data))
        return ZN_BADARGUMENTS;
    if (data_len > client_max_data(c))
        return ZN_TOOBIG;
    struct zn_request req;
    int rc = ext_begin(c, &req, ZN_OP_CREATE2, path, cb);
    if (rc == 0 && strcmp(path, "/") == 0)
        rc = ZN_BADARGUMENTS;
    if (rc == 0) {
        /* The acl is only read while the request is encoded. */
        struct zn_acl open_acl = {zn_acl_open_unsafe[0].perms,
                                  {(char *)zn_acl_open_unsafe[0].scheme, (char *)zn_acl_open_unsafe[0].id}};
        req.acl.count = 1;
        req.acl.items = &open_acl;
        req.data.data = data;
        req.data.len = data_len;
        req.flags = ((flags & ZN_FLAG_EPHEMERAL) ? ZN_CREATE_EPHEMERAL : 0) |
                    ((flags & ZN_FLAG_SEQUENTIAL) ? ZN_CREATE_SEQUENTIAL : 0) |
                    (kind == ZN_KIND_FILE ? ZN_CREATE_KIND_FILE : ZN_CREATE_KIND_DIRECTORY);
        rc = client_submit(c, &req, cb, arg, NULL, NULL, NULL);
    }
    free(req.path);
    return rc;
}

static int children_kinds(struct zn_client *c, int32_t type, const char *path, zn_watch_cb watch_cb,
                          void *watch_arg, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = ext_begin(c, &req, type, path, cb);
    req.watch = watch_cb != NULL;
    char *watch_path = NULL;
    if (rc == 0 && watch_cb) {
        watch_path = strdup(path);
        if (!watch_path)
            rc = ZN_NOMEMORY;
    }
    if (rc == 0)
        rc = client_submit(c, &req, cb, arg, watch_cb, watch_arg, watch_path);
    if (rc != 0)
        free(watch_path);
    free(req.path);
    return rc;
}

int zn_ext_get_children_kinds(struct zn_client *c, const char *path, zn_watch_cb watch_cb,
                              void *watch_arg, zn_result_cb cb, void *arg)
{
    return children_kinds(c, ZN_OP_GETCHILDRENKINDS, path, watch_cb, watch_arg, cb, arg);
}

int zn_ext_get_children_kinds_ptime(struct zn_client *c, const char *path, zn_watch_cb watch_cb,
                                    void *watch_arg, zn_result_cb cb, void *arg)
{
    return children_kinds(c, ZN_OP_GETCHILDRENKINDSTIME, path, watch_cb, watch_arg, cb, arg);
}

int zn_ext_set_with_mtime(struct zn_client *c, const char *path, const void *data, int32_t data_len,
                          int32_t version, int64_t mtime_ms, zn_result_cb cb, void *arg)
{
    if (mtime_ms < 0 || data_len < -1 || (data_len > 0 && !data))
        return ZN_BADARGUMENTS;
    if (data_len > client_max_data(c))
        return ZN_TOOBIG;
    struct zn_request req;
    int rc = ext_begin(c, &req, ZN_OP_SETDATATIME, path, cb);
    if (rc == 0) {
        req.data.data = data;
        req.data.len = data_len;
        req.version = version;
        req.mtime_ms = mtime_ms;
        rc = client_submit(c, &req, cb, arg, NULL, NULL, NULL);
    }
    free(req.path);
    return rc;
}
