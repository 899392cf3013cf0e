/*
 * tree_apply: applying a committed txn to the tree (tree_apply in tree.h),
 * all or nothing.
 *
 * Nothing is validated in advance that can be checked as it goes: every
 * change is recorded in an undo log, and when a later op of the same txn
 * does not fit the tree (a bug or corrupt log) the log is replayed backwards
 * and the tree is as before.  Deleted nodes stay allocated until the txn is
 * done, so undo can relink them and events can name them.  Everything that
 * could run out of memory mid-way (undo log, events, results) is allocated
 * before the first change: apply_capacity bounds the undo entries
 * (TREE_UNDO_PER_OP per op, quota bookkeeping included) and the events.
 * Watch events are fired only once the whole txn is applied.
 *
 * Each change keeps the invariants of tree_internal.h through the node,
 * session and quota primitives (tree.c, tree_session.c, tree_quota.c).
 * Called by the write paths (through tree.h) and by tree_import_replay.
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "path.h"
#include "tree_internal.h"

struct undo *tree_undo_push(struct apply *a, enum undo_kind kind)
{
    ZN_ASSERT(a->undo_count < a->undo_cap);
    struct undo *u = &a->undo[a->undo_count++];
    memset(u, 0, sizeof(*u));
    u->kind = kind;
    return u;
}

struct undo *tree_undo_replace_data(struct apply *a, struct tree_node *n, const uint8_t *bytes, int32_t len)
{
    int32_t old_len = n->data_len;
    struct tree_old_data old;
    tree_digest_out(a->t, n);
    a->t->data_bytes -= tree_node_size_bytes(n);
    int rc = tree_node_set_data(n, bytes, len, a->room, a->room_left, &old);
    a->t->data_bytes += tree_node_size_bytes(n);
    if (rc != 0) {
        tree_digest_in(a->t, n);
        return NULL;
    }
    if (old.bytes && !old.owned) {
        size_t used = (size_t)old_len;
        a->room += used;
        a->room_left -= used;
    }
    struct undo *u = tree_undo_push(a, UNDO_SETDATA);
    u->node = n;
    u->old_data = old;
    u->old_data_len = old_len;
    u->old_version = n->version;
    u->old_mtime = n->mtime;
    u->old_mzxid = n->mzxid;
    return u;
}

static void event_push(struct apply *a, int32_t type, const char *path)
{
    ZN_ASSERT(a->event_count < a->event_cap);
    a->events[a->event_count].type = type;
    a->events[a->event_count].path = path;
    a->event_count++;
}

static int apply_create(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree *t = a->t;
    size_t len = strlen(op->path);
    struct tree_node *parent = tree_find_parent(t, op->path);
    if (parent == NULL || tree_index_find(t, op->path, len) != NULL || tree_owner_is_session(tree_node_owner(parent)) ||
        tree_child_count(parent) >= TREE_MAX_CHILDREN || op->kind < ZN_NODE_KIND_UNKNOWN ||
        op->kind > ZN_NODE_KIND_DIRECTORY || len > PATH_MAX_BYTES)
        return ZN_DATAINCONSISTENCY;
    int64_t owner;
    struct tree_session *session = NULL;
    if (op->type == ZN_OP_CREATECONTAINER) {
        owner = TREE_CONTAINER_OWNER;
    } else if (op->type == ZN_OP_CREATETTL) {
        if (op->ttl_ms <= 0 || op->ttl_ms > TREE_TTL_MAX_MS)
            return ZN_DATAINCONSISTENCY;
        owner = TREE_TTL_OWNER_MASK | op->ttl_ms;
    } else {
        owner = op->ephemeral_owner;
        if (owner != 0 && (!tree_owner_is_session(owner) || (session = tree_session_find(t, owner)) == NULL))
            return ZN_DATAINCONSISTENCY;
    }
    int rc = tree_child_reserve(parent);
    if (rc == 0 && session != NULL)
        rc = tree_ephemeral_reserve(session);
    if (rc != 0)
        return rc;
    struct tree_node *n = tree_node_alloc(op->path, len, &op->data, owner);
    if (n == NULL)
        return ZN_NOMEMORY;
    if (tree_node_acl_init(a->t, n, &op->acl) != 0) {
        tree_node_free(t, n);
        return ZN_NOMEMORY;
    }
    /* DataTree.createStat */
    n->czxid = n->mzxid = n->pzxid = a->hdr->zxid;
    n->ctime = n->mtime = n->ptime = a->hdr->time_ms;
    tree_node_set_kind(n, op->kind); /* checked above */

    struct undo *u = tree_undo_push(a, UNDO_CREATE);
    u->node = n;
    u->parent = parent;
    u->old_cversion = parent->cversion;
    u->old_pzxid = parent->pzxid;
    u->old_ptime = parent->ptime;
    /* DataTree.createNode: -1 means "one more than now"; only move forward,
     * as ZooKeeper does. */
    int32_t cversion = op->parent_cversion;
    if (cversion == -1)
        cversion = parent->cversion + 1;
    if (cversion > parent->cversion) {
        tree_digest_out(t, parent);
        parent->cversion = cversion;
        parent->pzxid = a->hdr->zxid;
        parent->ptime = a->hdr->time_ms;
        tree_digest_in(t, parent);
    }
    tree_node_attach(t, parent, n);
    rc = tree_quota_after_create(a, n, parent);
    if (rc != 0)
        return rc; /* the undo log already holds the create */
    event_push(a, ZN_EVENT_CREATED, tree_path_of(n));
    event_push(a, ZN_EVENT_CHILD, tree_path_of(parent));
    *out = n;
    return 0;
}

static int apply_delete_node(struct apply *a, struct tree_node *n)
{
    if (n == NULL || n->parent == NULL || tree_child_count(n) > 0)
        return ZN_DATAINCONSISTENCY;
    struct tree_node *parent = n->parent;
    struct undo *u = tree_undo_push(a, UNDO_DELETE);
    u->node = n;
    u->parent = parent;
    u->old_pzxid = parent->pzxid;
    u->old_ptime = parent->ptime;
    tree_node_detach(a->t, n);
    if (a->hdr->zxid > parent->pzxid) {
        tree_digest_out(a->t, parent);
        parent->pzxid = a->hdr->zxid;
        parent->ptime = a->hdr->time_ms;
        tree_digest_in(a->t, parent);
    }
    int rc = tree_quota_after_delete(a, n, parent);
    if (rc != 0)
        return rc;
    event_push(a, ZN_EVENT_DELETED, tree_path_of(n));
    event_push(a, ZN_EVENT_CHILD, tree_path_of(parent));
    return 0;
}

static int apply_set_data(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree_node *n = tree_index_find(a->t, op->path, strlen(op->path));
    if (n == NULL)
        return ZN_DATAINCONSISTENCY;
    struct undo *u = tree_undo_replace_data(a, n, op->data.data, op->data.len);
    if (u == NULL)
        return ZN_NOMEMORY;
    n->version = op->version;
    n->mtime = a->hdr->time_ms;
    n->mzxid = a->hdr->zxid;
    tree_digest_in(a->t, n);
    int rc = tree_quota_account(a, tree_path_of(n),
                                (int64_t)tree_node_data_bytes(n) - (u->old_data_len > 0 ? u->old_data_len : 0), 0);
    if (rc != 0)
        return rc;
    event_push(a, ZN_EVENT_CHANGED, tree_path_of(n));
    *out = n;
    return 0;
}

static int apply_set_acl(struct apply *a, const struct txn_op *op, struct tree_node **out)
{
    struct tree_node *n = tree_index_find(a->t, op->path, strlen(op->path));
    if (n == NULL)
        return ZN_DATAINCONSISTENCY;
    struct acl_shared *acl;
    if (tree_acl_copy(a->t, &op->acl, &acl) != 0)
        return ZN_NOMEMORY;
    struct undo *u = tree_undo_push(a, UNDO_SETACL);
    u->node = n;
    u->old_acl = n->acl;
    u->old_flags = n->flags;
    u->old_version = n->aversion;
    tree_digest_out(a->t, n);
    n->acl = acl;
    n->flags = (uint8_t)((n->flags & ~TREE_NODE_ACL_NULL) | (op->acl.count < 0 ? TREE_NODE_ACL_NULL : 0));
    n->aversion = op->version;
    tree_digest_in(a->t, n);
    *out = n;
    return 0;
}

/* Replays the undo log backwards: the tree is as before the txn. */
static void apply_rollback(struct apply *a)
{
    struct tree *t = a->t;
    while (a->undo_count > 0) {
        struct undo *u = &a->undo[--a->undo_count];
        switch (u->kind) {
        case UNDO_CREATE:
            tree_node_detach(t, u->node);
            tree_node_free(t, u->node);
            tree_digest_out(t, u->parent);
            u->parent->cversion = u->old_cversion;
            u->parent->pzxid = u->old_pzxid;
            u->parent->ptime = u->old_ptime;
            tree_digest_in(t, u->parent);
            break;
        case UNDO_DELETE:
            /* The slot the node left is still allocated: no failure here. */
            tree_node_attach(t, u->parent, u->node);
            tree_digest_out(t, u->parent);
            u->parent->pzxid = u->old_pzxid;
            u->parent->ptime = u->old_ptime;
            tree_digest_in(t, u->parent);
            break;
        case UNDO_SETDATA:
            tree_digest_out(t, u->node);
            t->data_bytes -= tree_node_size_bytes(u->node);
            tree_node_restore_data(u->node, u->old_data, u->old_data_len);
            u->old_data = (struct tree_old_data){0};
            u->node->version = u->old_version;
            u->node->mtime = u->old_mtime;
            u->node->mzxid = u->old_mzxid;
            t->data_bytes += tree_node_size_bytes(u->node);
            tree_digest_in(t, u->node);
            break;
        case UNDO_SETACL:
            tree_digest_out(t, u->node);
            tree_acl_release(t, u->node->acl);
            u->node->acl = u->old_acl;
            u->node->flags = (uint8_t)((u->node->flags & ~TREE_NODE_ACL_NULL) | (u->old_flags & TREE_NODE_ACL_NULL));
            u->node->aversion = u->old_version;
            tree_digest_in(t, u->node);
            break;
        case UNDO_SESSION_CREATE:
            tree_session_unlink(t, u->session);
            tree_session_free(u->session);
            break;
        case UNDO_SESSION_CLOSE:
            tree_session_link(t, u->session);
            break;
        case UNDO_QUOTA_ADD:
            tree_quota_unlink(t, u->quota);
            free(u->quota);
            break;
        case UNDO_QUOTA_REMOVE:
            tree_quota_link(t, u->quota);
            break;
        }
    }
    a->event_count = 0;
}

/* Frees what the txn replaced or removed, once nothing can roll it back. */
static void apply_release(struct apply *a)
{
    for (size_t i = 0; i < a->undo_count; i++) {
        struct undo *u = &a->undo[i];
        switch (u->kind) {
        case UNDO_DELETE:
            tree_node_free(a->t, u->node);
            break;
        case UNDO_SETDATA:
            if (u->old_data.owned)
                free(u->old_data.bytes);
            break;
        case UNDO_SETACL:
            tree_acl_release(a->t, u->old_acl);
            break;
        case UNDO_SESSION_CLOSE:
            tree_session_free(u->session);
            break;
        case UNDO_QUOTA_REMOVE:
            free(u->quota);
            break;
        default:
            break;
        }
    }
    a->undo_count = 0;
}

static bool op_has_path(int32_t type) { return (zn_op_flags(type) & ZN_OPF_TXN_PATH) != 0; }

/* Ops (a multi's, plus one) whose undo log and events fit on tree_apply's stack. */
#define TREE_APPLY_INLINE_OPS 9

/* Applies one op of a txn (a multi's or the whole txn's). */
static int apply_op(struct apply *a, const struct txn_op *op, struct tree_node **touched)
{
    *touched = NULL;
    if (op_has_path(op->type) && op->path == NULL)
        return ZN_DATAINCONSISTENCY;
    switch (op->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        return apply_create(a, op, touched);
    case ZN_OP_DELETE:
        return apply_delete_node(a, tree_index_find(a->t, op->path, strlen(op->path)));
    case ZN_OP_SETDATA:
        return apply_set_data(a, op, touched);
    case ZN_OP_SETACL:
        return apply_set_acl(a, op, touched);
    case ZN_OP_CHECK:
        /* Prep checked the version; applying a check changes nothing. */
        *touched = tree_index_find(a->t, op->path, strlen(op->path));
        return *touched ? 0 : ZN_DATAINCONSISTENCY;
    case ZN_OP_ERROR:
        return 0;
    default:
        return ZN_DATAINCONSISTENCY;
    }
}

static int apply_create_session(struct apply *a, const struct txn_op *op)
{
    struct tree *t = a->t;
    struct tree_session *s;
    int rc = tree_session_insert(t, a->hdr->session_id, op->timeout_ms, &s);
    if (rc != 0)
        return rc == ZN_BADARGUMENTS ? ZN_DATAINCONSISTENCY : rc;
    tree_undo_push(a, UNDO_SESSION_CREATE)->session = s;
    return 0;
}

static int compare_node_paths(const void *x, const void *y)
{
    const struct tree_node *const *a = x, *const *b = y;
    return strcmp(tree_path_of((*a)), tree_path_of((*b)));
}

/* Deletes the session's ephemerals (those the txn names first, in its order,
 * then any others in path order, so every member deletes the same way) and
 * then the session.  A session already gone makes this a no-op. */
static int apply_close_session(struct apply *a, const struct txn_op *op)
{
    struct tree *t = a->t;
    int64_t id = a->hdr->session_id;
    struct tree_session *s = tree_session_find(t, id);
    if (s == NULL)
        return 0;
    for (int32_t i = 0; i < op->paths.count; i++) {
        if (op->paths.items[i] == NULL)
            return ZN_DATAINCONSISTENCY;
        struct tree_node *n = tree_index_find(t, op->paths.items[i], strlen(op->paths.items[i]));
        if (n == NULL || tree_node_owner(n) != id)
            continue; /* ZooKeeper ignores NONODE here too */
        int rc = apply_delete_node(a, n);
        if (rc != 0)
            return rc;
    }
    if (s->eph_count > 0) {
        size_t count = s->eph_count;
        struct tree_node **rest = malloc(sizeof(*rest) * count);
        if (rest == NULL)
            return ZN_NOMEMORY;
        memcpy(rest, s->eph, sizeof(*rest) * count);
        qsort(rest, count, sizeof(*rest), compare_node_paths);
        for (size_t i = 0; i < count; i++) {
            int rc = apply_delete_node(a, rest[i]);
            if (rc != 0) {
                free(rest);
                return rc;
            }
        }
        free(rest);
    }
    tree_session_unlink(t, s);
    tree_undo_push(a, UNDO_SESSION_CLOSE)->session = s;
    return 0;
}

static char *arena_strdup(struct zn_arena *arena, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = zn_arena_alloc(arena, len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

/* Prepares one result before the tree changes (so no allocation is left for
 * after): type and, for a create (the one reply that carries its path), a
 * copy of the path. */
static int result_prepare(struct zn_arena *arena, struct zn_response *r, const struct txn_op *op)
{
    memset(r, 0, sizeof(*r));
    r->type = op->type;
    r->err = op->type == ZN_OP_ERROR ? op->err : 0;
    if (zn_op_is_create(op->type) && op->path != NULL) {
        r->path = arena_strdup(arena, op->path);
        if (r->path == NULL)
            return ZN_NOMEMORY;
    }
    return 0;
}

static void result_finish(struct zn_response *r, const struct tree_node *touched)
{
    if (touched != NULL && r->type != ZN_OP_CHECK)
        tree_node_stat(touched, &r->stat);
}

/* ZooKeeper's multi rule (DataTree.processTxn): when any op is an ERROR the
 * whole multi fails: ops before the first error report 0, ops after it
 * RUNTIMEINCONSISTENCY, and nothing changes. */
static bool multi_failed(const struct txn *txn)
{
    for (int32_t i = 0; i < txn->op_count; i++) {
        if (txn->ops[i].type == ZN_OP_ERROR)
            return true;
    }
    return false;
}

static int apply_multi(struct apply *a, const struct txn *txn, struct zn_arena *arena, struct zn_response *result)
{
    struct zn_response *results = NULL;
    if (result != NULL && txn->op_count > 0) {
        results = zn_arena_alloc(arena, sizeof(*results) * (size_t)txn->op_count);
        if (results == NULL)
            return ZN_NOMEMORY;
        for (int32_t i = 0; i < txn->op_count; i++) {
            if (result_prepare(arena, &results[i], &txn->ops[i]) != 0)
                return ZN_NOMEMORY;
        }
    }
    bool failed = multi_failed(txn);
    bool post_failed = false;
    int32_t first_err = 0;
    for (int32_t i = 0; i < txn->op_count; i++) {
        const struct txn_op *op = &txn->ops[i];
        if (!txn_op_allowed_in_multi(op->type))
            return ZN_DATAINCONSISTENCY;
        int32_t err = 0;
        if (op->type == ZN_OP_ERROR) {
            post_failed = true;
            err = op->err;
        } else if (failed) {
            err = post_failed ? ZN_RUNTIMEINCONSISTENCY : ZN_OK;
        } else {
            struct tree_node *touched;
            int rc = apply_op(a, op, &touched);
            if (rc != 0)
                return rc;
            if (results)
                result_finish(&results[i], touched);
        }
        if (results && (failed || op->type == ZN_OP_ERROR)) {
            results[i].type = ZN_OP_ERROR;
            results[i].err = err;
            results[i].path = NULL;
        }
        if (err != 0 && first_err == 0)
            first_err = err;
    }
    if (result) {
        result->err = first_err;
        result->result_count = txn->op_count;
        result->results = results;
    }
    return 0;
}

/* How many undo entries and events a txn can need, so both are allocated
 * before anything changes. */
static size_t apply_capacity(const struct tree *t, const struct txn *txn)
{
    size_t ops = 1;
    if (txn->hdr.type == ZN_OP_MULTI)
        ops = (size_t)(txn->op_count > 0 ? txn->op_count : 0) + 1;
    else if (txn->hdr.type == ZN_OP_CLOSESESSION)
        ops = (size_t)(txn->op.paths.count > 0 ? txn->op.paths.count : 0) +
              tree_session_ephemeral_count(t, txn->hdr.session_id) + 1;
    return ops * TREE_UNDO_PER_OP;
}

static int apply_body(struct apply *a, const struct txn *txn, struct zn_arena *arena, struct zn_response *result)
{
    if (txn->hdr.type == ZN_OP_MULTI)
        return apply_multi(a, txn, arena, result);
    if (txn->op.type != txn->hdr.type)
        return ZN_DATAINCONSISTENCY;
    if (result != NULL && result_prepare(arena, result, &txn->op) != 0)
        return ZN_NOMEMORY;
    switch (txn->hdr.type) {
    case ZN_OP_CREATESESSION:
        return apply_create_session(a, &txn->op);
    case ZN_OP_CLOSESESSION:
        return apply_close_session(a, &txn->op);
    case ZN_OP_SETACL:
    case ZN_OP_ERROR:
    case ZN_OP_CHECK:
    default:
        if (!txn_op_allowed_in_multi(txn->hdr.type) && txn->hdr.type != ZN_OP_SETACL)
            return ZN_DATAINCONSISTENCY;
        struct tree_node *touched;
        int rc = apply_op(a, &txn->op, &touched);
        if (rc == 0 && result != NULL)
            result_finish(result, touched);
        return rc;
    }
}

int tree_apply(struct tree *t, const struct txn *txn, tree_event_fn on_event, void *ctx,
               struct zn_arena *arena, struct zn_response *result)
{
    ZN_ASSERT(t != NULL && txn != NULL);
    ZN_ASSERT(result == NULL || arena != NULL);
    if (txn->hdr.zxid <= t->last_zxid)
        return ZN_DATAINCONSISTENCY; /* applied twice, or out of order */
    if (txn->hdr.type == ZN_OP_MULTI && (txn->op_count < 0 || txn->op_count > TXN_MAX_MULTI_OPS))
        return ZN_DATAINCONSISTENCY;
    if (result != NULL) {
        memset(result, 0, sizeof(*result));
        result->type = txn->hdr.type;
    }

    struct apply a = {.t = t, .hdr = &txn->hdr};
    a.undo_cap = apply_capacity(t, txn);
    a.event_cap = a.undo_cap / TREE_UNDO_PER_OP * 2;
    /* A single-op txn (nearly all of them) and a multi of up to
     * TREE_APPLY_INLINE_OPS - 1 ops need no allocation (~5 KiB of stack). */
    struct undo undo_inline[TREE_UNDO_PER_OP * TREE_APPLY_INLINE_OPS];
    struct apply_event events_inline[2 * TREE_APPLY_INLINE_OPS];
    bool inline_room = a.undo_cap <= TREE_UNDO_PER_OP * TREE_APPLY_INLINE_OPS &&
                       a.event_cap <= 2 * TREE_APPLY_INLINE_OPS;
    /* The old data of sets, kept until the txn cannot roll back: a value in
     * a node's own data area fits here (no malloc and free per set). */
    uint8_t room[TREE_APPLY_ROOM_BYTES];
    a.room = room;
    a.room_left = sizeof room;
    a.undo = inline_room ? undo_inline : malloc(sizeof(*a.undo) * a.undo_cap);
    a.events = inline_room ? events_inline : malloc(sizeof(*a.events) * a.event_cap);
    if (a.undo == NULL || a.events == NULL) {
        if (!inline_room) {
            free(a.undo);
            free(a.events);
        }
        return ZN_NOMEMORY;
    }
    int rc = apply_body(&a, txn, arena, result);
    if (rc != 0) {
        apply_rollback(&a);
    } else {
        t->last_zxid = txn->hdr.zxid;
        if (on_event) {
            for (size_t i = 0; i < a.event_count; i++)
                on_event(ctx, a.events[i].type, a.events[i].path);
        }
    }
    apply_release(&a);
    if (!inline_room) {
        free(a.undo);
        free(a.events);
    }
    return rc;
}
