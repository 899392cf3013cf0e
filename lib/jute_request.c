/*
 * jute_request.c: the bodies of client requests (what follows the
 * RequestHeader), both directions, for every opcode znoded serves.  The
 * record of each opcode is listed in jute.h; the layouts are those of
 * zookeeper.jute, and multi framing follows MultiOperationRecord.java:
 *
 *   { MultiHeader{type, done=false, err=-1} op-body }*  MultiHeader{-1, true, -1}
 *
 * A multi (opcode MULTI) may hold create, create2, createTTL,
 * createContainer, delete, setData and check; a multiRead only getChildren
 * and getData.  Anything else inside, a nested multi included, is
 * ZN_MARSHALLINGERROR, as ZooKeeper throws "Invalid type of op".
 */
#include <string.h>

#include "assert.h"
#include "jute.h"
#include "jute_internal.h"

static bool op_allowed_in_multi(int32_t multi_type, int32_t op_type)
{
    unsigned want = multi_type == ZN_OP_MULTI ? ZN_OPF_IN_MULTI : ZN_OPF_IN_MULTIREAD;
    return (zn_op_flags(op_type) & want) != 0;
}

/* Every body but multi, both directions.  Decoding, the caller has zeroed req
 * and set its type. */
JUTE_IO_INLINE int io_body(struct jute_io *io, struct zn_request *req)
{
    switch (req->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_io_string(io, &req->path);
        jute_io_buffer(io, &req->data);
        jute_io_acl_vec(io, &req->acl);
        jute_io_int(io, &req->flags);
        if (req->type == ZN_OP_CREATETTL)
            jute_io_long(io, &req->ttl);
        break;
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        jute_io_string(io, &req->path);
        jute_io_int(io, &req->version);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_GETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_io_string(io, &req->path);
        jute_io_bool(io, &req->watch);
        break;
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
        jute_io_string(io, &req->path);
        jute_io_buffer(io, &req->data);
        jute_io_int(io, &req->version);
        if (req->type == ZN_OP_SETDATATIME)
            jute_io_long(io, &req->mtime_ms);
        break;
    case ZN_OP_GETACL:
    case ZN_OP_SYNC:
    case ZN_OP_DELETECONTAINER:
    case ZN_OP_GETALLCHILDRENNUMBER:
    case ZN_OP_GETEPHEMERALS:
        jute_io_string(io, &req->path);
        break;
    case ZN_OP_SETACL:
        jute_io_string(io, &req->path);
        jute_io_acl_vec(io, &req->acl);
        jute_io_int(io, &req->version);
        break;
    case ZN_OP_ADDWATCH:
    case ZN_OP_CHECKWATCHES:
    case ZN_OP_REMOVEWATCHES:
        jute_io_string(io, &req->path);
        jute_io_int(io, &req->flags);
        break;
    case ZN_OP_AUTH:
        jute_io_int(io, &req->auth_type);
        jute_io_string(io, &req->scheme);
        jute_io_buffer(io, &req->auth);
        break;
    case ZN_OP_SASL: /* GetSASLRequest: the client's token */
        jute_io_buffer(io, &req->auth);
        break;
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2: {
        int kinds = req->type == ZN_OP_SETWATCHES ? ZN_WATCHES_CHILD + 1 : ZN_WATCHES_KINDS;
        jute_io_long(io, &req->relative_zxid);
        for (int k = 0; k < kinds; k++)
            jute_io_string_vec(io, &req->watches[k]);
        break;
    }
    case ZN_OP_RECONFIG:
        jute_io_string(io, &req->joining);
        jute_io_string(io, &req->leaving);
        jute_io_string(io, &req->new_members);
        jute_io_long(io, &req->config_id);
        break;
    case ZN_OP_PING:
    case ZN_OP_CLOSESESSION:
    case ZN_OP_WHOAMI:
        break;
    default:
        return jute_io_fail(io, ZN_UNIMPLEMENTED);
    }
    return jute_io_error(io);
}

/* ---- encode ---- */

static int write_multi(struct jute_writer *w, const struct zn_request *req)
{
    ZN_ASSERT(req->op_count >= 0 && (req->op_count == 0 || req->ops != NULL));
    struct jute_io io = jute_io_writer(w);
    for (int32_t i = 0; i < req->op_count; i++) {
        struct zn_request *op = &req->ops[i];
        if (!op_allowed_in_multi(req->type, op->type))
            return jute_writer_fail(w, ZN_MARSHALLINGERROR);
        int32_t type = op->type, err = -1;
        bool done = false;
        jute_io_multi_header(&io, &type, &done, &err);
        io_body(&io, op);
    }
    int32_t type = -1, err = -1;
    bool done = true;
    return jute_io_multi_header(&io, &type, &done, &err);
}

int jute_write_request(struct jute_writer *w, const struct zn_request *req)
{
    ZN_ASSERT(w != NULL && req != NULL);
    if (w->error != 0)
        return w->error;
    if (req->type == ZN_OP_MULTI || req->type == ZN_OP_MULTIREAD)
        return write_multi(w, req);
    struct jute_io io = jute_io_writer(w);
    return io_body(&io, (struct zn_request *)req); /* encoding only reads it */
}

/* ---- decode ---- */

static int read_multi(struct jute_reader *r, struct zn_request *req);

int jute_read_request(struct jute_reader *r, int32_t type, struct zn_request *req)
{
    ZN_ASSERT(r != NULL && req != NULL);
    memset(req, 0, sizeof(*req));
    req->type = type;
    if (r->error != 0)
        return r->error;
    int rc;
    struct jute_io io = jute_io_reader(r);
    if (type == ZN_OP_MULTI || type == ZN_OP_MULTIREAD)
        rc = read_multi(r, req);
    else
        rc = io_body(&io, req);
    if (rc != 0) {
        /* Leave no pointer into a half-decoded record. */
        memset(req, 0, sizeof(*req));
        req->type = type;
    }
    return rc;
}

/* Reads one MultiHeader and, unless it ends the list, the op after it
 * into *op (jute_read_one_fn; ctx is the multi's type). */
static int read_multi_op(struct jute_reader *r, void *ctx, void *elem, bool *done)
{
    int32_t multi_type = *(const int32_t *)ctx, op_type = 0, err = 0;
    struct zn_request *op = elem;
    struct jute_io io = jute_io_reader(r);
    if (jute_io_multi_header(&io, &op_type, done, &err) != 0 || *done)
        return r->error;
    if (!op_allowed_in_multi(multi_type, op_type))
        return jute_reader_fail(r, ZN_MARSHALLINGERROR);
    memset(op, 0, sizeof(*op));
    op->type = op_type;
    return io_body(&io, op);
}

static int read_multi(struct jute_reader *r, struct zn_request *req)
{
    void *ops = NULL;
    int rc = jute_read_unsized_list(r, sizeof(*req->ops), read_multi_op, &req->type, &ops, &req->op_count);
    req->ops = ops;
    return rc;
}
