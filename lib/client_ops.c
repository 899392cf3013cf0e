/*
 * libznode's operations: turns each public call (zn_create, zn_get, ...) into
 * a jute request with the chroot prepended, checks its arguments and limits
 * at the edge, and turns each reply back into a struct zn_result with the
 * chroot stripped, registering the call's watch when the reply says it holds
 * (ZooKeeper's rules: exists watches on NONODE, data/child watches on OK).
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "client_internal.h"

/* ---- ACLs ---- */

/* Converts public ACL entries into the codec's (borrowing the strings). */
static int acl_to_wire(const struct zn_acl_entry *acl, int count, struct zn_acl_vec *out)
{
    if (!acl) {
        acl = zn_acl_open_unsafe;
        count = 1;
    }
    if (count <= 0 || count > 1024)
        return ZN_BADARGUMENTS;
    struct zn_acl *items = calloc((size_t)count, sizeof *items);
    if (!items)
        return ZN_NOMEMORY;
    for (int i = 0; i < count; i++) {
        if (!acl[i].scheme || !acl[i].id) {
            free(items);
            return ZN_BADARGUMENTS;
        }
        items[i].perms = acl[i].perms;
        items[i].id.scheme = (char *)acl[i].scheme;
        items[i].id.id = (char *)acl[i].id;
    }
    out->count = count;
    out->items = items;
    return 0;
}

static int create_opcode(int flags, int64_t ttl_ms, bool want_stat, int32_t *opcode,
                         int32_t *mode)
{
    bool ephemeral = flags & ZN_FLAG_EPHEMERAL, sequential = flags & ZN_FLAG_SEQUENTIAL;
    bool container = flags & ZN_FLAG_CONTAINER, ttl = flags & ZN_FLAG_TTL;
    if (flags & ~(ZN_FLAG_EPHEMERAL | ZN_FLAG_SEQUENTIAL | ZN_FLAG_CONTAINER | ZN_FLAG_TTL))
        return ZN_BADARGUMENTS;
    if (container && (ephemeral || sequential || ttl))
        return ZN_BADARGUMENTS;
    if (ttl && (ephemeral || ttl_ms <= 0))
        return ZN_BADARGUMENTS;
    if (!ttl && ttl_ms != 0)
        return ZN_BADARGUMENTS;
    if (container) {
        *opcode = ZN_OP_CREATECONTAINER;
        *mode = ZN_CREATE_CONTAINER;
    } else if (ttl) {
        *opcode = ZN_OP_CREATETTL;
        *mode = sequential ? ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL : ZN_CREATE_PERSISTENT_WITH_TTL;
    } else {
        *opcode = want_stat ? ZN_OP_CREATE2 : ZN_OP_CREATE;
        *mode = (ephemeral ? ZN_CREATE_EPHEMERAL : 0) | (sequential ? ZN_CREATE_SEQUENTIAL : 0);
    }
    return 0;
}

static int check_data(const struct zn_client *c, const void *data, int32_t data_len)
{
    if (data_len < -1 || (data_len > 0 && !data))
        return ZN_BADARGUMENTS;
    if (data_len > client_max_data(c))
        return ZN_TOOBIG;
    return 0;
}

/* Common prologue: usable client, valid path, callback given; fills req->path. */
static int begin(struct zn_client *c, struct zn_request *req, int32_t type, const char *path,
                 zn_result_cb cb)
{
    ZN_ASSERT(c);
    memset(req, 0, sizeof *req);
    req->type = type;
    req->data.len = -1;
    req->acl.count = -1;
    if (!cb)
        return ZN_BADARGUMENTS;
    int rc = client_usable(c);
    if (rc)
        return rc;
    rc = client_check_path(c, path);
    if (rc)
        return rc;
    req->path = client_server_path(c, path);
    return req->path ? 0 : ZN_NOMEMORY;
}

static int finish(struct zn_client *c, struct zn_request *req, int rc, zn_result_cb cb, void *arg,
                  zn_watch_cb watch_cb, void *watch_arg, const char *path)
{
    char *watch_path = NULL;
    if (rc == 0 && watch_cb) {
        watch_path = strdup(path);
        if (!watch_path)
            rc = ZN_NOMEMORY;
    }
    if (rc == 0)
        rc = client_submit(c, req, cb, arg, watch_cb, watch_arg, watch_path);
    if (rc != 0)
        free(watch_path);
    free(req->path);
    free(req->acl.items);
    return rc;
}

static int do_create(struct zn_client *c, bool want_stat, const char *path, const void *data,
                     int32_t data_len, const struct zn_acl_entry *acl, int acl_count, int flags,
                     int64_t ttl_ms, zn_result_cb cb, void *arg)
{
    int32_t opcode, mode;
    int rc = create_opcode(flags, ttl_ms, want_stat, &opcode, &mode);
    if (rc)
        return rc;
    rc = check_data(c, data, data_len);
    if (rc)
        return rc;
    struct zn_request req;
    rc = begin(c, &req, opcode, path, cb);
    if (rc == 0 && strcmp(path, "/") == 0)
        rc = ZN_BADARGUMENTS;
    if (rc == 0)
        rc = acl_to_wire(acl, acl_count, &req.acl);
    req.data.data = data;
    req.data.len = data_len;
    req.flags = mode;
    req.ttl = ttl_ms;
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

int zn_create(struct zn_client *c, const char *path, const void *data, int32_t data_len,
              const struct zn_acl_entry *acl, int acl_count, int flags, int64_t ttl_ms,
              zn_result_cb cb, void *arg)
{
    return do_create(c, false, path, data, data_len, acl, acl_count, flags, ttl_ms, cb, arg);
}

int zn_create2(struct zn_client *c, const char *path, const void *data, int32_t data_len,
               const struct zn_acl_entry *acl, int acl_count, int flags, int64_t ttl_ms,
               zn_result_cb cb, void *arg)
{
    return do_create(c, true, path, data, data_len, acl, acl_count, flags, ttl_ms, cb, arg);
}

int zn_delete(struct zn_client *c, const char *path, int32_t version, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = begin(c, &req, ZN_OP_DELETE, path, cb);
    req.version = version;
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

static int read_op(struct zn_client *c, int32_t type, const char *path, zn_watch_cb watch_cb,
                   void *watch_arg, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = begin(c, &req, type, path, cb);
    req.watch = watch_cb != NULL;
    return finish(c, &req, rc, cb, arg, watch_cb, watch_arg, path);
}

int zn_exists(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
              zn_result_cb cb, void *arg)
{
    return read_op(c, ZN_OP_EXISTS, path, watch_cb, watch_arg, cb, arg);
}

int zn_get(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
           zn_result_cb cb, void *arg)
{
    return read_op(c, ZN_OP_GETDATA, path, watch_cb, watch_arg, cb, arg);
}

int zn_get_children(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
                    zn_result_cb cb, void *arg)
{
    return read_op(c, ZN_OP_GETCHILDREN, path, watch_cb, watch_arg, cb, arg);
}

int zn_get_children2(struct zn_client *c, const char *path, zn_watch_cb watch_cb, void *watch_arg,
                     zn_result_cb cb, void *arg)
{
    return read_op(c, ZN_OP_GETCHILDREN2, path, watch_cb, watch_arg, cb, arg);
}

int zn_set(struct zn_client *c, const char *path, const void *data, int32_t data_len,
           int32_t version, zn_result_cb cb, void *arg)
{
    int rc = check_data(c, data, data_len);
    if (rc)
        return rc;
    struct zn_request req;
    rc = begin(c, &req, ZN_OP_SETDATA, path, cb);
    req.data.data = data;
    req.data.len = data_len;
    req.version = version;
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

int zn_get_acl(struct zn_client *c, const char *path, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = begin(c, &req, ZN_OP_GETACL, path, cb);
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

int zn_set_acl(struct zn_client *c, const char *path, const struct zn_acl_entry *acl,
               int acl_count, int32_t version, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = begin(c, &req, ZN_OP_SETACL, path, cb);
    if (rc == 0)
        rc = acl ? acl_to_wire(acl, acl_count, &req.acl) : ZN_BADARGUMENTS;
    req.version = version;
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

int zn_sync(struct zn_client *c, const char *path, zn_result_cb cb, void *arg)
{
    struct zn_request req;
    int rc = begin(c, &req, ZN_OP_SYNC, path, cb);
    return finish(c, &req, rc, cb, arg, NULL, NULL, path);
}

/* ---- multi ---- */

static void free_multi(struct zn_request *ops, int count)
{
    for (int i = 0; i < count; i++) {
        free(ops[i].path);
        free(ops[i].acl.items);
    }
    free(ops);
}

static int multi_op(struct zn_client *c, const struct zn_op *op, struct zn_request *out)
{
    memset(out, 0, sizeof *out);
    out->data.len = -1;
    out->acl.count = -1;
    int rc = client_check_path(c, op->path);
    if (rc)
        return rc;
    switch (op->type) {
    case ZN_OP_CREATE: {
        int32_t opcode, mode;
        rc = create_opcode(op->flags & ~ZN_FLAG_TTL, 0, false, &opcode, &mode);
        if (rc == 0)
            rc = check_data(c, op->data, op->data_len);
        if (rc == 0)
            rc = acl_to_wire(op->acl, op->acl_count, &out->acl);
        if (rc == 0 && op->kind != 0 && op->kind != ZN_KIND_FILE && op->kind != ZN_KIND_DIRECTORY)
            rc = ZN_BADARGUMENTS;
        out->type = opcode;
        out->flags = mode | (op->kind == ZN_KIND_FILE        ? ZN_CREATE_KIND_FILE
                             : op->kind == ZN_KIND_DIRECTORY ? ZN_CREATE_KIND_DIRECTORY
                                                             : 0);
        out->data.data = op->data;
        out->data.len = op->data_len;
        break;
    }
    case ZN_OP_SETDATA:
        rc = check_data(c, op->data, op->data_len);
        out->type = ZN_OP_SETDATA;
        out->data.data = op->data;
        out->data.len = op->data_len;
        out->version = op->version;
        break;
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        out->type = op->type;
        out->version = op->version;
        break;
    default:
        return ZN_BADARGUMENTS;
    }
    if (rc == 0) {
        out->path = client_server_path(c, op->path);
        if (!out->path)
            rc = ZN_NOMEMORY;
    }
    return rc;
}

int zn_multi(struct zn_client *c, const struct zn_op *ops, int op_count, zn_result_cb cb, void *arg)
{
    ZN_ASSERT(c);
    if (!cb || op_count < 0 || op_count > ZN_CLIENT_MAX_MULTI_OPS || (op_count > 0 && !ops))
        return ZN_BADARGUMENTS;
    int rc = client_usable(c);
    if (rc)
        return rc;
    struct zn_request *wire = calloc((size_t)(op_count ? op_count : 1), sizeof *wire);
    if (!wire)
        return ZN_NOMEMORY;
    for (int i = 0; i < op_count && rc == 0; i++)
        rc = multi_op(c, &ops[i], &wire[i]);
    if (rc == 0) {
        struct zn_request req;
        memset(&req, 0, sizeof req);
        req.type = ZN_OP_MULTI;
        req.data.len = -1;
        req.acl.count = -1;
        req.op_count = op_count;
        req.ops = wire;
        rc = client_submit(c, &req, cb, arg, NULL, NULL, NULL);
    }
    free_multi(wire, op_count);
    return rc;
}

/* ---- replies ---- */

void client_fail_request(struct zn_client *c, struct client_request *req, int rc)
{
    struct zn_result res;
    memset(&res, 0, sizeof res);
    res.rc = rc;
    res.data_len = -1;
    zn_result_cb cb = req->cb;
    void *arg = req->arg;
    free(req->frame);
    free(req->watch_path);
    free(req);
    if (cb)
        cb(c, &res, arg);
}

/* The opcode whose response record the server sends for a request type. */
static int32_t response_type(int32_t type)
{
    /* createContainer is answered with a CreateResponse-compatible prefix (the path). */
    return type == ZN_OP_CREATECONTAINER ? ZN_OP_CREATE : type;
}

static void register_watch(struct zn_client *c, struct client_request *req, int rc)
{
    if (!req->watch_cb)
        return;
    int kind = -1;
    switch (req->type) {
    case ZN_OP_EXISTS:
        kind = rc == 0 ? ZN_WATCHES_DATA : rc == ZN_NONODE ? ZN_WATCHES_EXIST : -1;
        break;
    case ZN_OP_GETDATA:
        kind = rc == 0 ? ZN_WATCHES_DATA : -1;
        break;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS: /* znodefs extension (client_ext.c) */
    case ZN_OP_GETCHILDRENKINDSTIME:
        kind = rc == 0 ? ZN_WATCHES_CHILD : -1;
        break;
    }
    if (kind >= 0 && client_watch_add(c, kind, req->watch_path, req->watch_cb, req->watch_arg) != 0)
        CLIENT_LOG(c, ZN_LOG_ERROR, "out of memory registering a watch path=%s", req->watch_path);
}

static int convert_acl(struct zn_arena *arena, const struct zn_acl_vec *in,
                       struct zn_acl_entry **out)
{
    if (in->count <= 0) {
        *out = NULL;
        return 0;
    }
    struct zn_acl_entry *e = zn_arena_alloc(arena, sizeof *e * (size_t)in->count);
    if (!e)
        return ZN_NOMEMORY;
    for (int i = 0; i < in->count; i++) {
        e[i].perms = in->items[i].perms;
        e[i].scheme = in->items[i].id.scheme ? in->items[i].id.scheme : "";
        e[i].id = in->items[i].id.id ? in->items[i].id.id : "";
    }
    *out = e;
    return 0;
}

void client_complete(struct zn_client *c, struct client_request *req,
                     const struct zn_reply_header *hdr, struct jute_reader *r)
{
    struct zn_result res;
    memset(&res, 0, sizeof res);
    res.rc = hdr->err;
    res.data_len = -1;
    struct zn_response resp;
    memset(&resp, 0, sizeof resp);
    struct zn_acl_entry *acl = NULL;
    struct zn_op_result *ops = NULL;
    if (hdr->err == 0 || req->type == ZN_OP_MULTI) {
        int rc = jute_read_response(r, response_type(req->type), &resp);
        if (rc && hdr->err == 0) {
            res.rc = ZN_MARSHALLINGERROR;
            CLIENT_LOG(c, ZN_LOG_ERROR, "cannot decode reply xid=%d op=%s", req->xid,
                       zn_op_name(req->type));
        } else if (rc == 0) {
            switch (req->type) {
            case ZN_OP_CREATE:
            case ZN_OP_CREATECONTAINER:
            case ZN_OP_SYNC:
                res.path = client_strip_chroot(c, resp.path);
                break;
            case ZN_OP_CREATE2:
            case ZN_OP_CREATETTL:
                res.path = client_strip_chroot(c, resp.path);
                res.stat = &resp.stat;
                break;
            case ZN_OP_EXISTS:
            case ZN_OP_SETDATA:
            case ZN_OP_SETDATATIME: /* znodefs extension (client_ext.c) */
            case ZN_OP_SETACL:
                res.stat = &resp.stat;
                break;
            case ZN_OP_GETDATA:
                res.data = resp.data.data;
                res.data_len = resp.data.len;
                res.stat = &resp.stat;
                break;
            case ZN_OP_GETCHILDRENKINDS: /* znodefs extension (client_ext.c) */
            case ZN_OP_GETCHILDRENKINDSTIME:
                res.data = resp.data.data;
                res.data_len = resp.data.len;
                /* fall through */
            case ZN_OP_GETCHILDREN2:
                res.stat = &resp.stat;
                /* fall through */
            case ZN_OP_GETCHILDREN:
                res.children = resp.children.items;
                res.child_count = resp.children.count > 0 ? resp.children.count : 0;
                break;
            case ZN_OP_GETACL:
                if (convert_acl(r->arena, &resp.acl, &acl) != 0)
                    res.rc = ZN_NOMEMORY;
                res.acl = acl;
                res.acl_count = resp.acl.count > 0 ? resp.acl.count : 0;
                res.stat = &resp.stat;
                break;
            case ZN_OP_MULTI:
                if (resp.result_count > 0) {
                    ops = zn_arena_alloc(r->arena, sizeof *ops * (size_t)resp.result_count);
                    if (!ops) {
                        res.rc = ZN_NOMEMORY;
                        break;
                    }
                    int first_error = 0;
                    for (int i = 0; i < resp.result_count; i++) {
                        struct zn_response *sub = &resp.results[i];
                        ops[i].rc = sub->err;
                        ops[i].type = sub->type;
                        ops[i].path = client_strip_chroot(c, sub->path);
                        ops[i].stat = sub->type == ZN_OP_SETDATA || sub->type == ZN_OP_CREATE2
                                          ? &sub->stat
                                          : NULL;
                        /* The failing op carries the real code; the others RUNTIMEINCONSISTENCY. */
                        if (sub->err && (first_error == 0 ||
                                         first_error == ZN_RUNTIMEINCONSISTENCY))
                            first_error = sub->err;
                    }
                    if (res.rc == 0)
                        res.rc = first_error;
                    res.op_results = ops;
                    res.op_count = resp.result_count;
                }
                break;
            }
        }
    }
    register_watch(c, req, res.rc);
    zn_result_cb cb = req->cb;
    void *arg = req->arg;
    free(req->frame);
    free(req->watch_path);
    free(req);
    if (cb)
        cb(c, &res, arg);
}
