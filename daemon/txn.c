/*
 * txn: the codec of the transaction records (see txn.h for the format and
 * ownership).  It owns nothing but the mapping between struct txn and bytes;
 * what a transaction means is the tree's business (tree.c).
 */
#include "txn.h"

#include <string.h>

#include "assert.h"

bool txn_op_allowed_in_multi(int32_t type)
{
    switch (type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
    case ZN_OP_DELETE:
    case ZN_OP_SETDATA:
    case ZN_OP_CHECK:
    case ZN_OP_ERROR:
        return true;
    default:
        return false;
    }
}

static bool is_create(int32_t type)
{
    return type == ZN_OP_CREATE || type == ZN_OP_CREATE2 || type == ZN_OP_CREATECONTAINER ||
           type == ZN_OP_CREATETTL;
}

static int encode_body(struct jute_writer *w, const struct txn_op *op)
{
    switch (op->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_write_string(w, op->path);
        jute_write_buffer(w, op->data.data, op->data.len);
        jute_write_acl_vec(w, &op->acl);
        jute_write_int(w, op->parent_cversion);
        jute_write_long(w, op->ephemeral_owner);
        jute_write_int(w, op->kind);
        jute_write_long(w, op->ttl_ms);
        break;
    case ZN_OP_DELETE:
        jute_write_string(w, op->path);
        break;
    case ZN_OP_SETDATA:
        jute_write_string(w, op->path);
        jute_write_buffer(w, op->data.data, op->data.len);
        jute_write_int(w, op->version);
        break;
    case ZN_OP_SETACL:
        jute_write_string(w, op->path);
        jute_write_acl_vec(w, &op->acl);
        jute_write_int(w, op->version);
        break;
    case ZN_OP_CHECK:
        jute_write_string(w, op->path);
        jute_write_int(w, op->version);
        break;
    case ZN_OP_CREATESESSION:
        jute_write_int(w, op->timeout_ms);
        break;
    case ZN_OP_CLOSESESSION:
        jute_write_string_vec(w, &op->paths);
        break;
    case ZN_OP_ERROR:
        jute_write_int(w, op->err);
        break;
    default:
        return ZN_BADARGUMENTS;
    }
    return w->error;
}

int txn_encode(struct jute_writer *w, const struct txn *t)
{
    ZN_ASSERT(w != NULL && t != NULL);
    jute_write_int(w, TXN_FORMAT_VERSION);
    jute_write_long(w, t->hdr.session_id);
    jute_write_int(w, t->hdr.cxid);
    jute_write_long(w, t->hdr.zxid);
    jute_write_long(w, t->hdr.time_ms);
    jute_write_int(w, t->hdr.type);
    if (t->hdr.type != ZN_OP_MULTI) {
        if (t->op.type != t->hdr.type)
            return ZN_BADARGUMENTS;
        return encode_body(w, &t->op);
    }
    if (t->op_count < 0 || t->op_count > TXN_MAX_MULTI_OPS)
        return ZN_BADARGUMENTS;
    jute_write_int(w, t->op_count);
    for (int32_t i = 0; i < t->op_count; i++) {
        if (!txn_op_allowed_in_multi(t->ops[i].type))
            return ZN_BADARGUMENTS;
        jute_write_int(w, t->ops[i].type);
        int rc = encode_body(w, &t->ops[i]);
        if (rc != 0)
            return rc;
    }
    return w->error;
}

static int decode_body(struct jute_reader *r, struct txn_op *op)
{
    switch (op->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_read_string(r, &op->path);
        jute_read_buffer(r, &op->data);
        jute_read_acl_vec(r, &op->acl);
        jute_read_int(r, &op->parent_cversion);
        jute_read_long(r, &op->ephemeral_owner);
        jute_read_int(r, &op->kind);
        jute_read_long(r, &op->ttl_ms);
        break;
    case ZN_OP_DELETE:
        jute_read_string(r, &op->path);
        break;
    case ZN_OP_SETDATA:
        jute_read_string(r, &op->path);
        jute_read_buffer(r, &op->data);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_SETACL:
        jute_read_string(r, &op->path);
        jute_read_acl_vec(r, &op->acl);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_CHECK:
        jute_read_string(r, &op->path);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_CREATESESSION:
        jute_read_int(r, &op->timeout_ms);
        break;
    case ZN_OP_CLOSESESSION:
        jute_read_string_vec(r, &op->paths);
        break;
    case ZN_OP_ERROR:
        jute_read_int(r, &op->err);
        break;
    default:
        return ZN_MARSHALLINGERROR;
    }
    if (r->error)
        return r->error;
    /* A path is mandatory wherever there is one; a null one is corrupt. */
    if ((is_create(op->type) || op->type == ZN_OP_DELETE || op->type == ZN_OP_SETDATA ||
         op->type == ZN_OP_SETACL || op->type == ZN_OP_CHECK) &&
        op->path == NULL)
        return ZN_MARSHALLINGERROR;
    if (op->type == ZN_OP_CLOSESESSION && op->paths.count > TXN_MAX_CLOSE_PATHS)
        return ZN_MARSHALLINGERROR;
    if (is_create(op->type) && (op->kind < ZN_NODE_KIND_UNKNOWN || op->kind > ZN_NODE_KIND_DIRECTORY))
        return ZN_MARSHALLINGERROR;
    return 0;
}

int txn_decode(struct jute_reader *r, struct txn *t)
{
    ZN_ASSERT(r != NULL && t != NULL);
    memset(t, 0, sizeof(*t));
    int32_t version = 0;
    jute_read_int(r, &version);
    jute_read_long(r, &t->hdr.session_id);
    jute_read_int(r, &t->hdr.cxid);
    jute_read_long(r, &t->hdr.zxid);
    jute_read_long(r, &t->hdr.time_ms);
    jute_read_int(r, &t->hdr.type);
    if (r->error)
        return r->error;
    if (version != TXN_FORMAT_VERSION)
        return ZN_MARSHALLINGERROR;
    if (t->hdr.type != ZN_OP_MULTI) {
        t->op.type = t->hdr.type;
        return decode_body(r, &t->op);
    }
    int32_t count = 0;
    if (jute_read_int(r, &count) != 0)
        return r->error;
    /* Each op is at least 8 bytes (type + smallest body), so a count larger
     * than the input allows is a lie and must not drive an allocation. */
    if (count < 0 || count > TXN_MAX_MULTI_OPS || (size_t)count > jute_remaining(r) / 8)
        return ZN_MARSHALLINGERROR;
    t->op_count = count;
    if (count == 0)
        return 0;
    t->ops = zn_arena_alloc(r->arena, sizeof(*t->ops) * (size_t)count);
    if (t->ops == NULL)
        return ZN_NOMEMORY;
    memset(t->ops, 0, sizeof(*t->ops) * (size_t)count);
    for (int32_t i = 0; i < count; i++) {
        if (jute_read_int(r, &t->ops[i].type) != 0)
            return r->error;
        if (!txn_op_allowed_in_multi(t->ops[i].type))
            return ZN_MARSHALLINGERROR;
        int rc = decode_body(r, &t->ops[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
