/*
 * prep: the leader's prep stage (see prep.h): ZooKeeper's validation rules
 * for every write request (PrepRequestProcessor.pRequest2Txn and
 * pRequest2TxnCreate), in ZooKeeper's order, so each failing request reports
 * the same error ZooKeeper would; and the session txns.
 *
 * Each rule reads the nodes as they will be (prep_overlay.c), judges the
 * caller by the ACL rules (prep_acl.c) and the quotas (prep_quota.c), then
 * records what its txn changes in the overlay.
 *
 * Invariant: a request that fails leaves the overlay as it found it (its
 * records are rolled back by zxid) and *out holds the ERROR txn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "path.h"
#include "prep_internal.h"

/* Room for "%010d" of any int32 plus the NUL. */
#define PREP_SEQUENCE_BYTES 12

static bool owner_is_session(int64_t owner)
{
    return owner != 0 && owner != TREE_CONTAINER_OWNER &&
           (owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK;
}

static int copy_data(struct zn_arena *arena, const struct jute_buf *src, struct jute_buf *dst)
{
    dst->len = src->len < 0 ? -1 : src->len;
    dst->data = (const uint8_t *)"";
    if (src->len > 0) {
        uint8_t *d = zn_arena_alloc(arena, (size_t)src->len);
        if (d == NULL)
            return ZN_NOMEMORY;
        memcpy(d, src->data, (size_t)src->len);
        dst->data = d;
    }
    return 0;
}

/* ZooKeeper's checkAndIncVersion: -1 matches any; the new version skips -1
 * when it wraps (ZOOKEEPER-4743). */
static int check_and_inc_version(int32_t current, int32_t expected, int32_t *next)
{
    if (expected != -1 && expected != current)
        return ZN_BADVERSION;
    int32_t v = (int32_t)((uint32_t)current + 1u);
    *next = v == -1 ? 0 : v;
    return 0;
}

void prep_set_options(struct prep *p, const struct prep_options *options)
{
    ZN_ASSERT(p != NULL && options != NULL);
    p->options = *options;
}

static bool create_mode_valid(int32_t flags) { return flags >= ZN_CREATE_PERSISTENT && flags <= ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL; }
static bool mode_sequential(int32_t f)
{
    return f == ZN_CREATE_SEQUENTIAL || f == ZN_CREATE_EPHEMERAL_SEQUENTIAL || f == ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
}
static bool mode_ephemeral(int32_t f) { return f == ZN_CREATE_EPHEMERAL || f == ZN_CREATE_EPHEMERAL_SEQUENTIAL; }
static bool mode_ttl(int32_t f) { return f == ZN_CREATE_PERSISTENT_WITH_TTL || f == ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL; }

/*
 * The znodefs "kind" extension: a create may carry ZN_CREATE_KIND_FILE or
 * ZN_CREATE_KIND_DIRECTORY in its flags (proto.h).  Prep takes the bits off
 * and stores the kind with the node through the txn op (every member applies
 * the same txn, and snapshots carry the kind).  ZooKeeper clients never see
 * it: only GETCHILDRENKINDS (read.c) answers it.  Both bits at once are no
 * kind and no create mode: BADARGUMENTS, as any unknown mode; on any other
 * request the bits are refused by its decoder (opcodes without flags).
 */
_Static_assert((int)ZN_KIND_UNKNOWN == (int)ZN_NODE_KIND_UNKNOWN && (int)ZN_KIND_FILE == (int)ZN_NODE_KIND_FILE &&
                   (int)ZN_KIND_DIRECTORY == (int)ZN_NODE_KIND_DIRECTORY,
               "the wire's kind bytes are the stored kinds");

/* The kind a create's flags carry (ZN_NODE_KIND_UNKNOWN when none). */
static int kind_from_flags(int32_t flags, int32_t *kind)
{
    int32_t bits = flags & ZN_CREATE_KIND_MASK;
    *kind = bits == 0                      ? ZN_NODE_KIND_UNKNOWN
            : bits == ZN_CREATE_KIND_FILE   ? ZN_NODE_KIND_FILE
            : bits == ZN_CREATE_KIND_DIRECTORY ? ZN_NODE_KIND_DIRECTORY
                                             : -1;
    return *kind < 0 ? ZN_BADARGUMENTS : 0;
}

/* pRequest2TxnCreate */
static int prep_create(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    int32_t kind;
    if (kind_from_flags(req->flags, &kind) != 0)
        return ZN_BADARGUMENTS;
    int32_t flags = req->flags & ~ZN_CREATE_KIND_MASK;
    if (!create_mode_valid(flags))
        return ZN_BADARGUMENTS; /* CreateMode.fromFlag */
    int64_t ttl = req->type == ZN_OP_CREATETTL ? req->ttl : -1;
    /* validateCreateRequest */
    if (mode_ttl(flags) && !p->options.ttl_enabled)
        return ZN_UNIMPLEMENTED;
    if (mode_ttl(flags) ? (ttl <= 0 || ttl > TREE_TTL_MAX_MS) : ttl >= 0)
        return ZN_BADARGUMENTS;
    if (mode_ephemeral(flags) && c->who->session_id != 0 && !prep_session_live(p, c->who->session_id))
        return ZN_SESSIONEXPIRED;
    /* validatePathForCreate */
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0)
        return ZN_BADARGUMENTS;
    struct zn_acl_vec acl;
    int rc = prep_fixup_acl(p, c->who, &req->acl, c->arena, &acl);
    if (rc != 0)
        return rc;
    struct node_view parent = prep_lookup(p, req->path, (size_t)parent_len);
    if (!parent.exists)
        return ZN_NONODE;
    char *path = arena_strndup(c->arena, req->path, len);
    if (path == NULL)
        return ZN_NOMEMORY;
    rc = prep_check_acl(p, c->who, &parent.acl, ZN_PERM_CREATE);
    if (rc != 0)
        return rc;
    if (mode_sequential(flags)) {
        char *full = zn_arena_alloc(c->arena, len + PREP_SEQUENCE_BYTES);
        if (full == NULL)
            return ZN_NOMEMORY;
        snprintf(full, len + PREP_SEQUENCE_BYTES, "%s%010d", path, parent.cversion);
        path = full;
        len = strlen(full);
    }
    if (path_validate(path, false) != 0)
        return ZN_BADARGUMENTS;
    if (prep_lookup(p, path, len).exists)
        return ZN_NODEEXISTS;
    if (owner_is_session(parent.ephemeral_owner))
        return ZN_NOCHILDRENFOREPHEMERALS;
    if (req->data.len > PREP_MAX_DATA_BYTES || parent.child_count >= TREE_MAX_CHILDREN)
        return ZN_BADARGUMENTS;
    rc = prep_check_quota(c, path, req->data.len > 0 ? req->data.len : 0, 1);
    if (rc != 0)
        return rc;
    int32_t new_cversion = parent.cversion + 1;

    op->type = req->type;
    op->path = path;
    if (copy_data(c->arena, &req->data, &op->data) != 0)
        return ZN_NOMEMORY;
    op->acl = acl;
    op->parent_cversion = new_cversion;
    op->kind = kind;
    op->ttl_ms = req->type == ZN_OP_CREATETTL ? ttl : -1;
    op->ephemeral_owner = 0;
    int64_t owner = 0;
    if (req->type == ZN_OP_CREATECONTAINER) {
        owner = TREE_CONTAINER_OWNER;
    } else if (req->type == ZN_OP_CREATETTL) {
        owner = TREE_TTL_OWNER_MASK | ttl;
    } else if (mode_ephemeral(flags)) {
        owner = op->ephemeral_owner = c->who->session_id;
    }

    /* The parent's record, then the node's (ZooKeeper's order). */
    long pl = path_parent_len(path, len);
    parent.child_count++;
    parent.cversion = new_cversion;
    parent.pzxid = c->zxid;
    rc = prep_record_add(p, c->zxid, pl == 0 ? "/" : path, pl == 0 ? 1 : (size_t)pl, &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view node;
    memset(&node, 0, sizeof(node));
    node.exists = true;
    node.ephemeral_owner = owner;
    node.pzxid = node.mzxid = c->zxid;
    node.mtime = c->now_ms;
    node.data_bytes = req->data.len > 0 ? req->data.len : 0;
    node.acl = acl;
    return prep_record_add(p, c->zxid, path, len, &node, 0);
}

/* The parent path of a delete (getParentPathAndValidate). */
static int prep_delete(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0 || path_is_special(req->path))
        return ZN_BADARGUMENTS;
    struct node_view parent = prep_lookup(p, req->path, (size_t)parent_len);
    if (!parent.exists)
        return ZN_NONODE;
    int rc = prep_check_acl(p, c->who, &parent.acl, ZN_PERM_DELETE);
    if (rc != 0)
        return rc;
    struct node_view node = prep_lookup(p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    int32_t unused;
    rc = check_and_inc_version(node.version, req->version, &unused);
    if (rc != 0)
        return rc;
    if (node.child_count > 0)
        return ZN_NOTEMPTY;
    op->type = ZN_OP_DELETE;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    parent.child_count--;
    parent.pzxid = c->zxid;
    rc = prep_record_add(p, c->zxid, parent_len == 0 ? "/" : req->path, parent_len == 0 ? 1 : (size_t)parent_len,
                         &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view gone;
    memset(&gone, 0, sizeof(gone));
    return prep_record_add(p, c->zxid, req->path, len, &gone, 0);
}

/* deleteContainer, as the container manager sends it (session 0): no ACL
 * check, NOTEMPTY when a child appeared meanwhile, BADVERSION when the node
 * is a session's ephemeral (EphemeralType NORMAL).  Logged as a delete. */
static int prep_delete_container(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0 || path_is_special(req->path))
        return ZN_BADARGUMENTS;
    struct node_view node = prep_lookup(p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    if (node.child_count > 0)
        return ZN_NOTEMPTY;
    if (owner_is_session(node.ephemeral_owner))
        return ZN_BADVERSION;
    struct node_view parent = prep_lookup(p, req->path, (size_t)parent_len);
    ZN_ASSERT(parent.exists);
    op->type = ZN_OP_DELETE;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    parent.child_count--;
    parent.pzxid = c->zxid;
    int rc = prep_record_add(p, c->zxid, parent_len == 0 ? "/" : req->path,
                             parent_len == 0 ? 1 : (size_t)parent_len, &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view gone;
    memset(&gone, 0, sizeof(gone));
    return prep_record_add(p, c->zxid, req->path, len, &gone, 0);
}

/* setData and check share: validatePath, then the node.  A node that
 * exists (in the tree or the overlay) had its path validated at its create,
 * and the lookup is exact, so only a miss is validated: BADARGUMENTS still
 * comes before NONODE.  The leading '/' keeps "" (the root to prep_lookup)
 * and the overlay's session keys ("#...") out. */
static int prep_existing(struct prep_call *c, const struct zn_request *req, struct node_view *node, size_t *len)
{
    if (req->path == NULL || req->path[0] != '/')
        return ZN_BADARGUMENTS;
    *len = strlen(req->path);
    *node = prep_lookup(c->p, req->path, *len);
    if (node->exists)
        return 0;
    return path_validate(req->path, false) != 0 ? ZN_BADARGUMENTS : ZN_NONODE;
}

static int prep_set_data(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct node_view node;
    size_t len;
    int rc = prep_existing(c, req, &node, &len);
    if (rc == 0)
        rc = prep_check_acl(c->p, c->who, &node.acl, ZN_PERM_WRITE);
    if (rc == 0 && req->data.len > PREP_MAX_DATA_BYTES)
        rc = ZN_BADARGUMENTS;
    int32_t new_bytes = req->data.len > 0 ? req->data.len : 0;
    if (rc == 0)
        rc = prep_check_quota(c, req->path, (int64_t)new_bytes - node.data_bytes, 0);
    int32_t version = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.version, req->version, &version);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_SETDATA;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL || copy_data(c->arena, &req->data, &op->data) != 0)
        return ZN_NOMEMORY;
    op->version = version;
    node.version = version;
    node.mtime = c->txn_time_ms;
    node.mzxid = c->zxid;
    node.data_bytes = new_bytes;
    return prep_record_add(c->p, c->zxid, req->path, len, &node, 0);
}

static int prep_set_acl(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    if (path_validate(req->path, false) != 0)
        return ZN_BADARGUMENTS;
    struct zn_acl_vec acl;
    int rc = prep_fixup_acl(c->p, c->who, &req->acl, c->arena, &acl);
    if (rc != 0)
        return rc;
    size_t len = strlen(req->path);
    struct node_view node = prep_lookup(c->p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    rc = prep_check_acl(c->p, c->who, &node.acl, ZN_PERM_ADMIN);
    int32_t aversion = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.aversion, req->version, &aversion);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_SETACL;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    op->acl = acl;
    op->version = aversion;
    node.aversion = aversion;
    /* The new ACL goes on the record, so requests prepared before this one
     * applies are checked against it (ZooKeeper does the same). */
    node.acl = acl;
    return prep_record_add(c->p, c->zxid, req->path, len, &node, 0);
}

static int prep_check(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct node_view node;
    size_t len;
    int rc = prep_existing(c, req, &node, &len);
    if (rc == 0)
        rc = prep_check_acl(c->p, c->who, &node.acl, ZN_PERM_READ);
    int32_t next = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.version, req->version, &next);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_CHECK;
    op->path = arena_strndup(c->arena, req->path, len);
    op->version = next; /* as ZooKeeper's CheckVersionTxn */
    return op->path ? 0 : ZN_NOMEMORY;
}

static int prep_one(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    memset(op, 0, sizeof(*op));
    op->data.len = -1;
    op->ttl_ms = -1;
    switch (req->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        return prep_create(c, req, op);
    case ZN_OP_DELETE:
        return prep_delete(c, req, op);
    case ZN_OP_DELETECONTAINER:
        return prep_delete_container(c, req, op);
    case ZN_OP_SETDATA:
        return prep_set_data(c, req, op);
    case ZN_OP_SETDATATIME:
        /* znodefs extension: the txn's time (the node's mtime) is the client's
         * (c->txn_time_ms); never inside a multi. */
        return req->mtime_ms >= 0 ? prep_set_data(c, req, op) : ZN_BADARGUMENTS;
    case ZN_OP_SETACL:
        return prep_set_acl(c, req, op);
    case ZN_OP_CHECK:
        return prep_check(c, req, op);
    case ZN_OP_RECONFIG:
        /* Reached only standalone (an ensemble's leader prepares reconfig
         * itself, ensemble.c): ZooKeeper refuses it as disabled first, then
         * as unimplemented in standalone mode. */
        if (!c->p->reconfig_enabled) {
            ZN_ERROR("Reconfig operation requested but reconfig feature is disabled.");
            return ZN_RECONFIGDISABLED;
        }
        return ZN_UNIMPLEMENTED;
    default:
        return ZN_UNIMPLEMENTED;
    }
}

void prep_set_reconfig_enabled(struct prep *p, bool enabled)
{
    ZN_ASSERT(p != NULL);
    p->reconfig_enabled = enabled;
}

static void error_op(struct txn_op *op, int32_t err)
{
    memset(op, 0, sizeof(*op));
    op->type = ZN_OP_ERROR;
    op->err = err;
}

/* The ops of a multi, in order, against the overlay; on the first failure,
 * this multi's records are popped and every op becomes an ERROR. */
static int prep_multi(struct prep_call *c, const struct zn_request *req, struct txn *out,
                      struct zn_response *error_result)
{
    if (req->op_count < 0 || req->op_count > TXN_MAX_MULTI_OPS || (req->op_count > 0 && req->ops == NULL))
        return ZN_BADARGUMENTS;
    out->op_count = req->op_count;
    out->ops = NULL;
    if (req->op_count > 0) {
        out->ops = zn_arena_alloc(c->arena, sizeof(*out->ops) * (size_t)req->op_count);
        if (out->ops == NULL)
            return ZN_NOMEMORY;
    }
    int failed_at = -1, failure = 0;
    for (int32_t i = 0; i < req->op_count; i++) {
        const struct zn_request *sub = &req->ops[i];
        int rc = txn_op_allowed_in_multi(sub->type) && sub->type != ZN_OP_ERROR ? prep_one(c, sub, &out->ops[i])
                                                                                : ZN_BADARGUMENTS;
        if (rc != 0) {
            failed_at = i;
            failure = rc;
            break;
        }
    }
    if (failed_at < 0)
        return 0;
    prep_rollback_zxid(c->p, c->zxid);
    for (int32_t i = 0; i < req->op_count; i++)
        error_op(&out->ops[i], i < failed_at ? ZN_OK : i == failed_at ? failure : ZN_RUNTIMEINCONSISTENCY);
    if (error_result) {
        memset(error_result, 0, sizeof(*error_result));
        error_result->type = ZN_OP_MULTI;
        error_result->err = failure;
        error_result->result_count = req->op_count;
        if (req->op_count > 0) {
            error_result->results = zn_arena_alloc(c->arena, sizeof(*error_result->results) * (size_t)req->op_count);
            if (error_result->results == NULL)
                return failure;
            for (int32_t i = 0; i < req->op_count; i++) {
                memset(&error_result->results[i], 0, sizeof(error_result->results[i]));
                error_result->results[i].type = ZN_OP_ERROR;
                error_result->results[i].err = out->ops[i].err;
            }
        }
    }
    return failure;
}

static void header(struct txn *out, int64_t session_id, int32_t cxid, int64_t zxid, int64_t now_ms, int32_t type)
{
    memset(out, 0, sizeof(*out));
    out->hdr.session_id = session_id;
    out->hdr.cxid = cxid;
    out->hdr.zxid = zxid;
    out->hdr.time_ms = now_ms;
    out->hdr.type = type;
}

int prep_request(struct prep *p, const struct prep_caller *who, const struct zn_request *req, int64_t zxid,
                 int64_t now_ms, struct zn_arena *arena, struct txn *out, struct zn_response *error_result)
{
    ZN_ASSERT(p != NULL && who != NULL && req != NULL && arena != NULL && out != NULL);
    ZN_ASSERT(who->id_count == 0 || who->ids != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    /* The znodefs extension setDataTime names the txn's time (the node's mtime). */
    int64_t txn_time_ms = req->type == ZN_OP_SETDATATIME && req->mtime_ms >= 0 ? req->mtime_ms : now_ms;
    struct prep_call c = {p, who, zxid, now_ms, arena, txn_time_ms};
    header(out, who->session_id, who->cxid, zxid, txn_time_ms, req->type);
    int rc;
    if (req->type == ZN_OP_MULTI) {
        rc = prep_multi(&c, req, out, error_result);
        if (rc == 0)
            p->last_zxid = zxid;
        return rc;
    }
    rc = prep_one(&c, req, &out->op);
    if (rc == 0) {
        p->last_zxid = zxid;
        out->hdr.type = out->op.type; /* deleteContainer is logged as the delete it is */
    } else {
        prep_rollback_zxid(p, zxid); /* a create may have added its parent's record */
        out->hdr.type = ZN_OP_ERROR;
        error_op(&out->op, rc);
        if (error_result) {
            memset(error_result, 0, sizeof(*error_result));
            error_result->type = req->type;
            error_result->err = rc;
        }
    }
    return rc;
}

/* ----------------------------------------------------------------- sessions */

int prep_create_session(struct prep *p, int64_t session_id, int32_t timeout_ms, int64_t zxid, int64_t now_ms,
                        struct zn_arena *arena, struct txn *out)
{
    ZN_ASSERT(p != NULL && out != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    if (!owner_is_session(session_id) || prep_session_live(p, session_id))
        return ZN_BADARGUMENTS;
    char key[20];
    prep_session_key(session_id, key);
    struct node_view v;
    memset(&v, 0, sizeof(v));
    v.exists = true;
    int rc = prep_record_add(p, zxid, key, strlen(key), &v, timeout_ms);
    if (rc != 0)
        return rc;
    p->last_zxid = zxid;
    header(out, session_id, 0, zxid, now_ms, ZN_OP_CREATESESSION);
    out->op.type = ZN_OP_CREATESESSION;
    out->op.timeout_ms = timeout_ms;
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The session's ephemerals as they will be: the tree's, and any path a
 * pending record gives to the session; each kept if its newest state is an
 * existing node owned by the session.  Sorted, without duplicates. */
struct ephemeral_list {
    char **items;
    size_t count, cap;
    struct zn_arena *arena;
};

static int ephemeral_push(void *ctx, const char *path)
{
    struct ephemeral_list *l = ctx;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **items = realloc(l->items, sizeof(*items) * cap);
        if (items == NULL)
            return ZN_NOMEMORY;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count] = arena_strndup(l->arena, path, strlen(path));
    if (l->items[l->count] == NULL)
        return ZN_NOMEMORY;
    l->count++;
    return 0;
}

static int collect_ephemerals(struct prep *p, int64_t session_id, struct ephemeral_list *l)
{
    int rc = tree_for_each_ephemeral(p->tree, session_id, ephemeral_push, l);
    for (const struct prep_record *r = p->head; r && rc == 0; r = r->fifo_next) {
        if (r->key[0] == '/' && r->view.exists && r->view.ephemeral_owner == session_id)
            rc = ephemeral_push(l, r->key);
    }
    if (rc != 0)
        return rc;
    if (l->count > 0)
        qsort(l->items, l->count, sizeof(*l->items), compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (kept > 0 && strcmp(l->items[kept - 1], l->items[i]) == 0)
            continue;
        struct node_view v = prep_lookup(p, l->items[i], strlen(l->items[i]));
        if (v.exists && v.ephemeral_owner == session_id)
            l->items[kept++] = l->items[i];
    }
    l->count = kept;
    return l->count > TXN_MAX_CLOSE_PATHS ? ZN_BADARGUMENTS : 0;
}

int prep_close_session(struct prep *p, int64_t session_id, int64_t zxid, int64_t now_ms, struct zn_arena *arena,
                       struct txn *out)
{
    ZN_ASSERT(p != NULL && arena != NULL && out != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    if (!prep_session_live(p, session_id))
        return ZN_SESSIONEXPIRED;
    struct ephemeral_list l = {NULL, 0, 0, arena};
    int rc = collect_ephemerals(p, session_id, &l);
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const char *path = l.items[i];
        size_t len = strlen(path);
        long pl = path_parent_len(path, len);
        struct node_view parent = prep_lookup(p, path, (size_t)pl);
        /* Unlike ZooKeeper (which leaves the parent's child count alone
         * here), the overlay shows the parent as it will be, so a delete of
         * the parent prepared after the close is not refused NOTEMPTY. */
        parent.child_count--;
        parent.pzxid = zxid;
        rc = prep_record_add(p, zxid, pl == 0 ? "/" : path, pl == 0 ? 1 : (size_t)pl, &parent, 0);
        if (rc == 0) {
            struct node_view gone;
            memset(&gone, 0, sizeof(gone));
            rc = prep_record_add(p, zxid, path, len, &gone, 0);
        }
    }
    if (rc == 0) {
        char key[20];
        prep_session_key(session_id, key);
        struct node_view closing;
        memset(&closing, 0, sizeof(closing));
        rc = prep_record_add(p, zxid, key, strlen(key), &closing, 0);
    }
    if (rc != 0) {
        prep_rollback_zxid(p, zxid);
        free(l.items);
        return rc;
    }
    p->last_zxid = zxid;
    header(out, session_id, 0, zxid, now_ms, ZN_OP_CLOSESESSION);
    out->op.type = ZN_OP_CLOSESESSION;
    out->op.paths.count = (int32_t)l.count;
    out->op.paths.items = NULL;
    if (l.count > 0) {
        out->op.paths.items = zn_arena_alloc(arena, sizeof(char *) * l.count);
        if (out->op.paths.items == NULL) {
            prep_rollback_zxid(p, zxid);
            free(l.items);
            return ZN_NOMEMORY;
        }
        memcpy(out->op.paths.items, l.items, sizeof(char *) * l.count);
    }
    free(l.items);
    return 0;
}

