/*
 * kind: the znodefs "kind" extension on the write path.  A create may carry
 * ZN_CREATE_KIND_FILE or ZN_CREATE_KIND_DIRECTORY in its flags (proto.h);
 * this file takes those bits off every create of a client write (top-level
 * and inside a multi), hands prep the plain request and the kind, and so
 * stores the kind with the node through the txn (every ensemble member
 * applies the same txn, and snapshots carry the kind).  ZooKeeper clients
 * never see it: only GETCHILDRENKINDS (read.c) answers it.
 *
 * The bits are refused (BADARGUMENTS, as prep answers any unknown create
 * mode) when both are set, and on any request but a create: this file
 * leaves them in place and prep's own CreateMode check, or the request's
 * decoder for opcodes without flags, refuses them, so a refusal has exactly
 * the txn and per-op results prep gives any bad create.
 *
 * Only the leader preps (pipeline.c standalone, ensemble.c leader_propose);
 * the request is not changed: prep sees a copy whose strings it borrows.
 */
#include <string.h>

#include "assert.h"
#include "kind.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "txn.h"

_Static_assert((int)ZN_KIND_UNKNOWN == (int)ZN_NODE_KIND_UNKNOWN && (int)ZN_KIND_FILE == (int)ZN_NODE_KIND_FILE &&
                   (int)ZN_KIND_DIRECTORY == (int)ZN_NODE_KIND_DIRECTORY,
               "the wire's kind bytes are the stored kinds");

static bool is_create(int32_t type)
{
    return type == ZN_OP_CREATE || type == ZN_OP_CREATE2 || type == ZN_OP_CREATECONTAINER ||
           type == ZN_OP_CREATETTL;
}

int kind_from_flags(int32_t type, int32_t flags, int32_t *kind)
{
    ZN_ASSERT(kind != NULL);
    *kind = ZN_NODE_KIND_UNKNOWN;
    int32_t bits = flags & ZN_CREATE_KIND_MASK;
    if (bits == 0)
        return 0;
    if (!is_create(type) || bits == ZN_CREATE_KIND_MASK)
        return ZN_BADARGUMENTS;
    *kind = bits == ZN_CREATE_KIND_FILE ? ZN_NODE_KIND_FILE : ZN_NODE_KIND_DIRECTORY;
    return 0;
}

/* The request without valid kind bits (invalid ones are left for prep to
 * refuse); *kind the top-level create's kind.  A multi's ops are copied into
 * the arena and their kinds written to kinds[] (arena-allocated). */
static int strip(const struct zn_request *in, struct zn_arena *arena, struct zn_request *out,
                 int32_t *kind, int32_t **kinds)
{
    *out = *in;
    *kinds = NULL;
    if (kind_from_flags(in->type, in->flags, kind) == 0)
        out->flags = in->flags & ~ZN_CREATE_KIND_MASK;
    if (in->type != ZN_OP_MULTI || in->op_count <= 0 || in->ops == NULL)
        return 0;
    size_t n = (size_t)in->op_count;
    struct zn_request *ops = zn_arena_alloc(arena, sizeof *ops * n);
    int32_t *op_kinds = zn_arena_alloc(arena, sizeof *op_kinds * n);
    if (!ops || !op_kinds)
        return ZN_NOMEMORY;
    for (size_t i = 0; i < n; i++) {
        ops[i] = in->ops[i];
        if (kind_from_flags(ops[i].type, ops[i].flags, &op_kinds[i]) == 0)
            ops[i].flags &= ~ZN_CREATE_KIND_MASK;
    }
    out->ops = ops;
    *kinds = op_kinds;
    return 0;
}

int kind_prep_request(struct server *srv, struct request *r, int64_t zxid, int64_t now_ms)
{
    ZN_ASSERT(srv != NULL && r != NULL);
    struct zn_request plain;
    int32_t kind = ZN_NODE_KIND_UNKNOWN, *kinds = NULL;
    if (strip(&r->req, &r->arena, &plain, &kind, &kinds) != 0) {
        /* Out of memory before prep: prep's own refusal gives the error txn
         * and reply the pipeline expects; the kind is lost, never misapplied. */
        plain = r->req;
        kind = ZN_NODE_KIND_UNKNOWN;
        kinds = NULL;
    }
    int rc = prep_request_kind(srv->prep, r->session_id, r->hdr.xid, &plain, kind, zxid, now_ms, &r->arena,
                               &r->txn, &r->resp);
    /* A multi's txn has one op per request op (prep_multi), so each create
     * gets its own kind; prep keeps no kind in its overlay. */
    if (rc == 0 && kinds != NULL && r->txn.hdr.type == ZN_OP_MULTI) {
        ZN_ASSERT(r->txn.op_count == plain.op_count);
        for (int32_t i = 0; i < r->txn.op_count; i++)
            if (is_create(r->txn.ops[i].type))
                r->txn.ops[i].kind = kinds[i];
    }
    return rc;
}
