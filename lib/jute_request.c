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
    switch (op_type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATETTL:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_DELETE:
    case ZN_OP_SETDATA:
    case ZN_OP_CHECK:
        return multi_type == ZN_OP_MULTI;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETDATA:
        return multi_type == ZN_OP_MULTIREAD;
    default:
        return false;
    }
}

/* ---- encode ---- */

static int write_multi(struct jute_writer *w, const struct zn_request *req);

int jute_write_request(struct jute_writer *w, const struct zn_request *req)
{
    ZN_ASSERT(w != NULL && req != NULL);
    if (w->error != 0)
        return w->error;
    switch (req->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_write_string(w, req->path);
        jute_write_buffer(w, req->data.data, req->data.len);
        jute_write_acl_vec(w, &req->acl);
        jute_write_int(w, req->flags);
        if (req->type == ZN_OP_CREATETTL)
            jute_write_long(w, req->ttl);
        break;
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        jute_write_string(w, req->path);
        jute_write_int(w, req->version);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_GETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_write_string(w, req->path);
        jute_write_bool(w, req->watch);
        break;
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
        jute_write_string(w, req->path);
        jute_write_buffer(w, req->data.data, req->data.len);
        jute_write_int(w, req->version);
        if (req->type == ZN_OP_SETDATATIME)
            jute_write_long(w, req->mtime_ms);
        break;
    case ZN_OP_GETACL:
    case ZN_OP_SYNC:
    case ZN_OP_DELETECONTAINER:
    case ZN_OP_GETALLCHILDRENNUMBER:
    case ZN_OP_GETEPHEMERALS:
        jute_write_string(w, req->path);
        break;
    case ZN_OP_SETACL:
        jute_write_string(w, req->path);
        jute_write_acl_vec(w, &req->acl);
        jute_write_int(w, req->version);
        break;
    case ZN_OP_ADDWATCH:
    case ZN_OP_CHECKWATCHES:
    case ZN_OP_REMOVEWATCHES:
        jute_write_string(w, req->path);
        jute_write_int(w, req->flags);
        break;
    case ZN_OP_AUTH:
        jute_write_int(w, req->auth_type);
        jute_write_string(w, req->scheme);
        jute_write_buffer(w, req->auth.data, req->auth.len);
        break;
    case ZN_OP_SASL: /* GetSASLRequest: the client's token */
        jute_write_buffer(w, req->auth.data, req->auth.len);
        break;
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2: {
        int kinds = req->type == ZN_OP_SETWATCHES ? ZN_WATCHES_CHILD + 1 : ZN_WATCHES_KINDS;
        jute_write_long(w, req->relative_zxid);
        for (int k = 0; k < kinds; k++)
            jute_write_string_vec(w, &req->watches[k]);
        break;
    }
    case ZN_OP_MULTI:
    case ZN_OP_MULTIREAD:
        return write_multi(w, req);
    case ZN_OP_RECONFIG:
        jute_write_string(w, req->joining);
        jute_write_string(w, req->leaving);
        jute_write_string(w, req->new_members);
        jute_write_long(w, req->config_id);
        break;
    case ZN_OP_PING:
    case ZN_OP_CLOSESESSION:
    case ZN_OP_WHOAMI:
        break;
    default:
        return jute_writer_fail(w, ZN_UNIMPLEMENTED);
    }
    return w->error;
}

static int write_multi_header(struct jute_writer *w, int32_t type, bool done, int32_t err)
{
    jute_write_int(w, type);
    jute_write_bool(w, done);
    return jute_write_int(w, err);
}

static int write_multi(struct jute_writer *w, const struct zn_request *req)
{
    ZN_ASSERT(req->op_count >= 0 && (req->op_count == 0 || req->ops != NULL));
    for (int32_t i = 0; i < req->op_count; i++) {
        const struct zn_request *op = &req->ops[i];
        if (!op_allowed_in_multi(req->type, op->type))
            return jute_writer_fail(w, ZN_MARSHALLINGERROR);
        write_multi_header(w, op->type, false, -1);
        jute_write_request(w, op);
    }
    return write_multi_header(w, -1, true, -1);
}

/* ---- decode ---- */

static int read_multi(struct jute_reader *r, struct zn_request *req);

/* Every body but multi; the caller has zeroed req and set its type. */
static int read_body(struct jute_reader *r, struct zn_request *req)
{
    switch (req->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_read_string(r, &req->path);
        jute_read_buffer(r, &req->data);
        jute_read_acl_vec(r, &req->acl);
        jute_read_int(r, &req->flags);
        if (req->type == ZN_OP_CREATETTL)
            jute_read_long(r, &req->ttl);
        break;
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        jute_read_string(r, &req->path);
        jute_read_int(r, &req->version);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_GETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_read_string(r, &req->path);
        jute_read_bool(r, &req->watch);
        break;
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
        jute_read_string(r, &req->path);
        jute_read_buffer(r, &req->data);
        jute_read_int(r, &req->version);
        if (req->type == ZN_OP_SETDATATIME)
            jute_read_long(r, &req->mtime_ms);
        break;
    case ZN_OP_GETACL:
    case ZN_OP_SYNC:
    case ZN_OP_DELETECONTAINER:
    case ZN_OP_GETALLCHILDRENNUMBER:
    case ZN_OP_GETEPHEMERALS:
        jute_read_string(r, &req->path);
        break;
    case ZN_OP_SETACL:
        jute_read_string(r, &req->path);
        jute_read_acl_vec(r, &req->acl);
        jute_read_int(r, &req->version);
        break;
    case ZN_OP_ADDWATCH:
    case ZN_OP_CHECKWATCHES:
    case ZN_OP_REMOVEWATCHES:
        jute_read_string(r, &req->path);
        jute_read_int(r, &req->flags);
        break;
    case ZN_OP_AUTH:
        jute_read_int(r, &req->auth_type);
        jute_read_string(r, &req->scheme);
        jute_read_buffer(r, &req->auth);
        break;
    case ZN_OP_SASL:
        jute_read_buffer(r, &req->auth);
        break;
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2: {
        int kinds = req->type == ZN_OP_SETWATCHES ? ZN_WATCHES_CHILD + 1 : ZN_WATCHES_KINDS;
        jute_read_long(r, &req->relative_zxid);
        for (int k = 0; k < kinds; k++)
            jute_read_string_vec(r, &req->watches[k]);
        break;
    }
    case ZN_OP_RECONFIG:
        jute_read_string(r, &req->joining);
        jute_read_string(r, &req->leaving);
        jute_read_string(r, &req->new_members);
        jute_read_long(r, &req->config_id);
        break;
    case ZN_OP_PING:
    case ZN_OP_CLOSESESSION:
    case ZN_OP_WHOAMI:
        break;
    default:
        return jute_reader_fail(r, ZN_UNIMPLEMENTED);
    }
    return r->error;
}

int jute_read_request(struct jute_reader *r, int32_t type, struct zn_request *req)
{
    ZN_ASSERT(r != NULL && req != NULL);
    memset(req, 0, sizeof(*req));
    req->type = type;
    if (r->error != 0)
        return r->error;
    int rc;
    if (type == ZN_OP_MULTI || type == ZN_OP_MULTIREAD)
        rc = read_multi(r, req);
    else
        rc = read_body(r, req);
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
    jute_read_int(r, &op_type);
    jute_read_bool(r, done);
    if (jute_read_int(r, &err) != 0 || *done)
        return r->error;
    if (!op_allowed_in_multi(multi_type, op_type))
        return jute_reader_fail(r, ZN_MARSHALLINGERROR);
    memset(op, 0, sizeof(*op));
    op->type = op_type;
    return read_body(r, op);
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
