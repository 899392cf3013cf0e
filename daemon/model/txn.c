/*
 * txn: the codec of the transaction records (see txn.h for the format and
 * ownership).  It owns nothing but the mapping between struct txn and bytes,
 * written once (io_txn) for both directions; what a transaction means is the
 * tree's business (tree_apply.c).
 */
#include "txn.h"

#include <string.h>

#include "assert.h"

bool txn_op_allowed_in_multi(int32_t type)
{
    return type == ZN_OP_ERROR || (zn_op_flags(type) & ZN_OPF_IN_MULTI) != 0;
}

/* The body of one op, both directions.  An unknown type is refused (a
 * decoder's corrupt input, an encoder's bad argument). */
JUTE_IO_INLINE int io_op_body(struct jute_io *io, struct txn_op *op)
{
    switch (op->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        jute_io_string(io, &op->path);
        jute_io_buffer(io, &op->data);
        jute_io_acl_vec(io, &op->acl);
        jute_io_int(io, &op->parent_cversion);
        jute_io_long(io, &op->ephemeral_owner);
        jute_io_int(io, &op->kind);
        jute_io_long(io, &op->ttl_ms);
        break;
    case ZN_OP_DELETE:
        jute_io_string(io, &op->path);
        break;
    case ZN_OP_SETDATA:
        jute_io_string(io, &op->path);
        jute_io_buffer(io, &op->data);
        jute_io_int(io, &op->version);
        break;
    case ZN_OP_SETACL:
        jute_io_string(io, &op->path);
        jute_io_acl_vec(io, &op->acl);
        jute_io_int(io, &op->version);
        break;
    case ZN_OP_CHECK:
        jute_io_string(io, &op->path);
        jute_io_int(io, &op->version);
        break;
    case ZN_OP_CREATESESSION:
        jute_io_int(io, &op->timeout_ms);
        break;
    case ZN_OP_CLOSESESSION:
        jute_io_string_vec(io, &op->paths);
        break;
    case ZN_OP_ERROR:
        jute_io_int(io, &op->err);
        break;
    default:
        return jute_io_reading(io) ? ZN_MARSHALLINGERROR : ZN_BADARGUMENTS;
    }
    return jute_io_error(io);
}

/* What a decoded op must satisfy beyond its layout. */
static int op_valid(const struct txn_op *op)
{
    unsigned flags = zn_op_flags(op->type);
    /* A path is mandatory wherever there is one; a null one is corrupt. */
    if ((flags & ZN_OPF_TXN_PATH) && op->path == NULL)
        return ZN_MARSHALLINGERROR;
    if (op->type == ZN_OP_CLOSESESSION && op->paths.count > TXN_MAX_CLOSE_PATHS)
        return ZN_MARSHALLINGERROR;
    if ((flags & ZN_OPF_CREATE) && (op->kind < ZN_NODE_KIND_UNKNOWN || op->kind > ZN_NODE_KIND_DIRECTORY))
        return ZN_MARSHALLINGERROR;
    return 0;
}

JUTE_IO_INLINE int io_op(struct jute_io *io, struct txn_op *op)
{
    int rc = io_op_body(io, op);
    return rc == 0 && jute_io_reading(io) ? op_valid(op) : rc;
}

/* The format version and the header, both directions. */
JUTE_IO_INLINE int io_header(struct jute_io *io, struct txn_header *hdr)
{
    int32_t version = TXN_FORMAT_VERSION;
    jute_io_int(io, &version);
    jute_io_long(io, &hdr->session_id);
    jute_io_int(io, &hdr->cxid);
    jute_io_long(io, &hdr->zxid);
    jute_io_long(io, &hdr->time_ms);
    if (jute_io_int(io, &hdr->type) != 0)
        return jute_io_error(io);
    return version == TXN_FORMAT_VERSION ? 0 : ZN_MARSHALLINGERROR;
}

/* What follows the header, both directions: t->hdr says which op. */
JUTE_IO_INLINE int io_txn_body(struct jute_io *io, struct txn *t)
{
    bool reading = jute_io_reading(io);
    int bad = reading ? ZN_MARSHALLINGERROR : ZN_BADARGUMENTS;
    if (t->hdr.type != ZN_OP_MULTI) {
        if (reading)
            t->op.type = t->hdr.type;
        else if (t->op.type != t->hdr.type)
            return ZN_BADARGUMENTS;
        return io_op(io, &t->op);
    }
    if (!reading && (t->op_count < 0 || t->op_count > TXN_MAX_MULTI_OPS))
        return ZN_BADARGUMENTS;
    if (jute_io_int(io, &t->op_count) != 0)
        return jute_io_error(io);
    if (reading) {
        int32_t count = t->op_count;
        t->op_count = 0;
        /* Each op is at least 8 bytes (type + smallest body), so a count
         * larger than the input allows is a lie and must not drive an
         * allocation. */
        if (count < 0 || count > TXN_MAX_MULTI_OPS || (size_t)count > jute_remaining(io->r) / 8)
            return ZN_MARSHALLINGERROR;
        if (count == 0)
            return 0;
        t->ops = zn_arena_alloc(io->r->arena, sizeof(*t->ops) * (size_t)count);
        if (t->ops == NULL)
            return ZN_NOMEMORY;
        memset(t->ops, 0, sizeof(*t->ops) * (size_t)count);
        t->op_count = count;
    }
    for (int32_t i = 0; i < t->op_count; i++) {
        /* Checked before it is written, and once read. */
        if (!reading && !txn_op_allowed_in_multi(t->ops[i].type))
            return bad;
        if (jute_io_int(io, &t->ops[i].type) != 0)
            return jute_io_error(io);
        if (!txn_op_allowed_in_multi(t->ops[i].type))
            return bad;
        int rc = io_op(io, &t->ops[i]);
        if (rc != 0)
            return rc;
    }
    return jute_io_error(io);
}

/* The whole record, both directions.  Decoding, *t is zeroed. */
JUTE_IO_INLINE int io_txn(struct jute_io *io, struct txn *t)
{
    int rc = io_header(io, &t->hdr);
    return rc != 0 ? rc : io_txn_body(io, t);
}

int txn_encode(struct jute_writer *w, const struct txn *t)
{
    ZN_ASSERT(w != NULL && t != NULL);
    struct jute_io io = jute_io_writer(w);
    return io_txn(&io, (struct txn *)t); /* encoding only reads it */
}

int txn_decode_header(struct jute_reader *r, struct txn_header *hdr)
{
    ZN_ASSERT(r != NULL && hdr != NULL);
    memset(hdr, 0, sizeof(*hdr));
    struct jute_io io = jute_io_reader(r);
    return io_header(&io, hdr);
}

int txn_decode_body(struct jute_reader *r, const struct txn_header *hdr, struct txn *t)
{
    ZN_ASSERT(r != NULL && hdr != NULL && t != NULL);
    memset(t, 0, sizeof(*t));
    t->hdr = *hdr;
    struct jute_io io = jute_io_reader(r);
    return io_txn_body(&io, t);
}

int txn_decode(struct jute_reader *r, struct txn *t)
{
    ZN_ASSERT(r != NULL && t != NULL);
    memset(t, 0, sizeof(*t));
    struct jute_io io = jute_io_reader(r);
    return io_txn(&io, t);
}
