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
static int io_body(struct jute_io *io, struct zn_request *req)
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

/* MultiHeader{type, done, err}: before every op, and {-1, true, -1} last. */
static int io_multi_header(struct jute_io *io, int32_t *type, bool *done, int32_t *err)
{
    jute_io_int(io, type);
    jute_io_bool(io, done);
    return jute_io_int(io, err);
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
        io_multi_header(&io, &type, &done, &err);
        io_body(&io, op);
    }
    int32_t type = -1, err = -1;
    bool done = true;
    return io_multi_header(&io, &type, &done, &err);
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

/* Reads one MultiHeader and, unless it ends the list, the op after it into
 * *op.  Returns 0 with *done set, or the sticky error. */
static int read_multi_op(struct jute_reader *r, int32_t multi_type, struct zn_request *op, bool *done)
{
    int32_t op_type = 0, err = 0;
    struct jute_io io = jute_io_reader(r);
    if (io_multi_header(&io, &op_type, done, &err) != 0 || *done)
        return r->error;
    if (!op_allowed_in_multi(multi_type, op_type))
        return jute_reader_fail(r, ZN_MARSHALLINGERROR);
    memset(op, 0, sizeof(*op));
    op->type = op_type;
    return io_body(&io, op);
}

/*
 * The op count is not on the wire (the list ends with done=true), so the ops
 * are decoded twice: a first pass validates them and counts them, with their
 * strings in a scratch arena emptied after every op; the second pass decodes
 * them into an array of exactly that size.  Memory stays proportional to the
 * input, and nothing is allocated for a list that turns out malformed.
 */
static int read_multi(struct jute_reader *r, struct zn_request *req)
{
    size_t start = r->pos;
    struct zn_arena *arena = r->arena;
    struct zn_arena scratch;
    zn_arena_init(&scratch);
    r->arena = &scratch;
    size_t count = 0;
    for (;;) {
        struct zn_request op;
        bool done = false;
        if (read_multi_op(r, req->type, &op, &done) != 0 || done)
            break;
        zn_arena_reset(&scratch);
        /* Each op takes at least a MultiHeader and a path length, so the
         * input runs out long before this; the check keeps the cast safe. */
        if (++count > INT32_MAX)
            jute_reader_fail(r, ZN_MARSHALLINGERROR);
    }
    r->arena = arena;
    zn_arena_free(&scratch);
    if (r->error != 0)
        return r->error;

    r->pos = start;
    if (count > 0) {
        req->ops = jute_read_alloc(r, count, sizeof(*req->ops));
        if (req->ops == NULL)
            return r->error;
    }
    for (size_t i = 0; i < count; i++) {
        bool done = false;
        if (read_multi_op(r, req->type, &req->ops[i], &done) != 0)
            return r->error;
        ZN_ASSERT(!done);
    }
    struct zn_request terminator;
    bool done = false;
    read_multi_op(r, req->type, &terminator, &done);
    ZN_ASSERT(r->error != 0 || done);
    if (r->error != 0)
        return r->error;
    req->op_count = (int32_t)count;
    return 0;
}
