/*
 * Reads: getData, exists, getChildren(2), getACL, sync, getAllChildrenNumber,
 * getEphemerals, whoAmI, multiRead, and the session-level requests that
 * need no log (ping, auth, setWatches(2), addWatch, removeWatches,
 * checkWatches).  Each is executed against the tree as it is when the
 * request reaches the head of its connection's FIFO, and registers its
 * watch (if any) in the same step, so no change can slip between the read
 * and the watch.
 *
 * ACLs as ZooKeeper 3.8's FinalRequestProcessor checks them: READ for
 * getData, getChildren(2), getAllChildrenNumber and multiRead's ops (after
 * NONODE, before the watch is set); READ or ADMIN for getACL, whose digest
 * ids are shown as "user:x" to a client without ADMIN; nothing for exists,
 * sync, getEphemerals, addWatch, setWatches.
 *
 * getChildrenKinds (a znodefs extension, proto.h) is getChildren2 with the
 * kind znoded stores with each child and with the node: the same checks,
 * watch and stat, so a mount can type an empty directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "acl.h"
#include "assert.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "request.h"
#include "saslauth.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "txn.h"

/* ---- reads ---- */

static int add_watch(struct conn *c, enum watch_kind kind, const char *path)
{
    return watch_add(c->server->watches, kind, path, &c->watches);
}

static int read_children(struct zn_arena *arena, const struct tree_node *n,
                         struct zn_string_vec *out)
{
    uint32_t count = tree_node_child_count(n);
    out->count = (int32_t)count;
    out->items = zn_arena_alloc(arena, sizeof(char *) * (count ? count : 1));
    if (!out->items)
        return ZN_NOMEMORY;
    /* Borrowed from the tree: the reply is encoded before the tree changes. */
    for (uint32_t i = 0; i < count; i++)
        out->items[i] = (char *)tree_node_child_name(n, i);
    return 0;
}

/* One kind byte per child (in the order of read_children), then the node's. */
static int read_child_kinds(struct zn_arena *arena, const struct tree_node *n, bool with_ptime, struct jute_buf *out)
{
    uint32_t count = tree_node_child_count(n);
    ZN_ASSERT(count < INT32_MAX - ZN_KINDS_PTIME_BYTES);
    uint8_t *kinds = zn_arena_alloc(arena, (size_t)count + 1 + ZN_KINDS_PTIME_BYTES);
    if (!kinds)
        return ZN_NOMEMORY;
    for (uint32_t i = 0; i < count; i++)
        kinds[i] = (uint8_t)tree_node_kind(tree_node_child(n, i));
    kinds[count] = (uint8_t)tree_node_kind(n);
    uint64_t ptime = (uint64_t)tree_node_ptime(n);
    for (int i = 0; i < ZN_KINDS_PTIME_BYTES; i++)
        kinds[count + 1 + i] = (uint8_t)(ptime >> (56 - 8 * i));
    out->data = kinds;
    out->len = (int32_t)count + 1 + (with_ptime ? ZN_KINDS_PTIME_BYTES : 0);
    return 0;
}

/* An event setWatches finds missed: told at once, on its own (id 0). */
static void notify_now(struct server *srv, struct conn *c, int32_t type, const char *path)
{
    const struct watch_event ev = {type, path, 0};
    server_watch_notify(srv, &c->watches, &ev);
}

/* setWatches after a reconnect: fire what the client missed, register the rest. */
static void read_set_watches(struct server *srv, struct conn *c, struct request *r)
{
    int64_t rel = r->req.relative_zxid;
    struct zn_string_vec *w = r->req.watches;
    for (int32_t i = 0; i < w[ZN_WATCHES_DATA].count; i++) {
        const char *p = w[ZN_WATCHES_DATA].items[i];
        const struct tree_node *n = tree_get(srv->tree, p);
        struct zn_stat st;
        if (!n) {
            notify_now(srv, c, ZN_EVENT_DELETED, p);
            continue;
        }
        tree_node_stat(n, &st);
        if (st.mzxid > rel)
            notify_now(srv, c, ZN_EVENT_CHANGED, p);
        else
            add_watch(c, WATCH_DATA, p);
    }
    for (int32_t i = 0; i < w[ZN_WATCHES_EXIST].count; i++) {
        const char *p = w[ZN_WATCHES_EXIST].items[i];
        if (tree_get(srv->tree, p))
            notify_now(srv, c, ZN_EVENT_CREATED, p);
        else
            add_watch(c, WATCH_DATA, p);
    }
    for (int32_t i = 0; i < w[ZN_WATCHES_CHILD].count; i++) {
        const char *p = w[ZN_WATCHES_CHILD].items[i];
        const struct tree_node *n = tree_get(srv->tree, p);
        struct zn_stat st;
        if (!n) {
            notify_now(srv, c, ZN_EVENT_DELETED, p);
            continue;
        }
        tree_node_stat(n, &st);
        if (st.pzxid > rel)
            notify_now(srv, c, ZN_EVENT_CHILD, p);
        else
            add_watch(c, WATCH_CHILD, p);
    }
    if (r->hdr.type != ZN_OP_SETWATCHES2)
        return;
    /* Persistent watches are just set again: no missed event is replayed. */
    for (int32_t i = 0; i < w[ZN_WATCHES_PERSISTENT].count; i++) {
        add_watch(c, WATCH_PERSISTENT_CHILD, w[ZN_WATCHES_PERSISTENT].items[i]);
        add_watch(c, WATCH_PERSISTENT_DATA, w[ZN_WATCHES_PERSISTENT].items[i]);
    }
    for (int32_t i = 0; i < w[ZN_WATCHES_PERSISTENT_RECURSIVE].count; i++)
        add_watch(c, WATCH_RECURSIVE, w[ZN_WATCHES_PERSISTENT_RECURSIVE].items[i]);
}

struct ephemeral_ctx {
    struct request *r;
    const char *prefix;
    size_t prefix_len;
    size_t cap;
};

static int collect_ephemeral(void *ctx, const char *path)
{
    struct ephemeral_ctx *e = ctx;
    struct zn_string_vec *v = &e->r->resp.children;
    if (strncmp(path, e->prefix, e->prefix_len) != 0)
        return 0;
    if ((size_t)v->count == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        char **items = zn_arena_alloc(&e->r->arena, cap * sizeof *items);
        if (!items)
            return ZN_NOMEMORY;
        if (v->count)
            memcpy(items, v->items, (size_t)v->count * sizeof *items);
        v->items = items;
        e->cap = cap;
    }
    v->items[v->count++] = (char *)path;
    return 0;
}

static int32_t count_descendants(const struct tree_node *n)
{
    /* Iterative: depth is bounded only by the path length limit. */
    int64_t total = 0;
    size_t cap = 64, len = 0;
    const struct tree_node **stack = malloc(cap * sizeof *stack);
    if (!stack)
        return -1;
    stack[len++] = n;
    while (len > 0) {
        const struct tree_node *x = stack[--len];
        uint32_t k = tree_node_child_count(x);
        total += k;
        for (uint32_t i = 0; i < k; i++) {
            if (len == cap) {
                const struct tree_node **p = realloc(stack, cap * 2 * sizeof *stack);
                if (!p) {
                    free(stack);
                    return -1;
                }
                stack = p;
                cap *= 2;
            }
            stack[len++] = tree_node_child(x, i);
        }
    }
    free(stack);
    return total > INT32_MAX ? INT32_MAX : (int32_t)total;
}

/* ZooKeeper's checkACL for a read: true (with NOAUTH in out) when refused. */
static bool check_read(struct server *srv, struct conn *c, const struct tree_node *n, int32_t perm,
                       struct zn_response *out)
{
    struct zn_acl_vec acl = tree_node_acl(n);
    out->err = acl_check_conn(srv, c, &acl, perm);
    return out->err != 0;
}

/* getACL without ADMIN: each digest id's hash replaced by "x"
 * (id.replaceAll(":.*", ":x")).  The copy lives in the arena. */
static int redact_digests(struct zn_arena *arena, struct zn_acl_vec *acl)
{
    if (acl->count <= 0)
        return 0;
    struct zn_acl *items = zn_arena_alloc(arena, sizeof *items * (size_t)acl->count);
    if (!items)
        return ZN_NOMEMORY;
    for (int32_t i = 0; i < acl->count; i++) {
        items[i] = acl->items[i];
        const char *id = items[i].id.id;
        const char *colon = id ? strchr(id, ':') : NULL;
        if (!items[i].id.scheme || strcmp(items[i].id.scheme, "digest") != 0 || !colon)
            continue;
        size_t user_len = (size_t)(colon - id);
        char *masked = zn_arena_alloc(arena, user_len + 3);
        if (!masked)
            return ZN_NOMEMORY;
        memcpy(masked, id, user_len);
        memcpy(masked + user_len, ":x", 3);
        items[i].id.id = masked;
    }
    acl->items = items;
    return 0;
}

static void read_one(struct server *srv, struct conn *c, int32_t type, const struct zn_request *q,
                     struct zn_response *out, struct request *r)
{
    const struct tree_node *n = NULL;
    out->type = type;
    switch (type) {
    case ZN_OP_EXISTS:
    case ZN_OP_GETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
    case ZN_OP_GETACL:
    case ZN_OP_SYNC:
    case ZN_OP_GETALLCHILDRENNUMBER:
        if (!q->path) {
            out->err = ZN_BADARGUMENTS;
            return;
        }
        /* Every path in the tree passed path_validate when its node was
         * created (the lookup is exact): only a miss needs the check, which
         * still answers BADARGUMENTS before NONODE, as ZooKeeper does. */
        n = tree_get(srv->tree, q->path);
        if (!n && path_validate(q->path, false) != 0) {
            out->err = ZN_BADARGUMENTS;
            return;
        }
        break;
    default:
        break;
    }
    switch (type) {
    case ZN_OP_EXISTS:
        if (q->watch && c)
            add_watch(c, WATCH_DATA, q->path);
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        tree_node_stat(n, &out->stat);
        return;
    case ZN_OP_GETDATA:
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        if (check_read(srv, c, n, ZN_PERM_READ, out))
            return;
        if (q->watch && c)
            add_watch(c, WATCH_DATA, q->path);
        out->data = tree_node_data(n);
        tree_node_stat(n, &out->stat);
        return;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME: {
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        if (check_read(srv, c, n, ZN_PERM_READ, out))
            return;
        if (q->watch && c)
            add_watch(c, WATCH_CHILD, q->path);
        out->err = read_children(&r->arena, n, &out->children);
        if (out->err == 0 && type != ZN_OP_GETCHILDREN && type != ZN_OP_GETCHILDREN2)
            out->err = read_child_kinds(&r->arena, n, type == ZN_OP_GETCHILDRENKINDSTIME, &out->data);
        tree_node_stat(n, &out->stat);
        return;
    }
    case ZN_OP_GETACL:
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        if (check_read(srv, c, n, ZN_PERM_READ | ZN_PERM_ADMIN, out))
            return;
        out->acl = tree_node_acl(n);
        if (acl_check_conn(srv, c, &out->acl, ZN_PERM_ADMIN) != 0)
            out->err = redact_digests(&r->arena, &out->acl);
        tree_node_stat(n, &out->stat);
        return;
    case ZN_OP_SYNC:
        /* Standalone: the tree is always up to date with the log. */
        out->path = q->path;
        return;
    case ZN_OP_GETALLCHILDRENNUMBER:
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        if (check_read(srv, c, n, ZN_PERM_READ, out))
            return;
        out->number = count_descendants(n);
        if (out->number < 0)
            out->err = ZN_NOMEMORY;
        return;
    default:
        out->err = ZN_UNIMPLEMENTED;
        return;
    }
}

static void handle_auth(struct server *srv, struct conn *c, struct request *r)
{
    const char *scheme = r->req.scheme ? r->req.scheme : "";
    size_t len = r->req.auth.len > 0 ? (size_t)r->req.auth.len : 0;
    int rc = acl_add_auth(srv, c, scheme, len ? (const void *)r->req.auth.data : "", len);
    if (rc == 0)
        return;
    /* ZooKeeper answers AUTHFAILED and drops the connection, whatever the
     * provider's reason. */
    r->err = ZN_AUTHFAILED;
    c->close_after_flush = true;
    ZN_WARN("auth failed peer=%s scheme=%s: %s", c->peer, scheme, zn_strerror(rc));
}

/*
 * ZooKeeperServer.processSasl: one token of the client's exchange, answered
 * with the server's.  Once it completes the connection holds sasl:<user>.
 * A failure is answered AUTHFAILED (SESSIONCLOSEDREQUIRESASLAUTH when sasl
 * is enforced) and the connection closed, as in ZooKeeper.
 */
static void handle_sasl(struct server *srv, struct conn *c, struct request *r)
{
    size_t len = r->req.auth.len > 0 ? (size_t)r->req.auth.len : 0;
    const char *out;
    unsigned outlen;
    char user[CONFIG_SASL_NAME_BYTES], why[256];
    enum saslauth_result res = saslauth_step(&c->sasl, r->req.auth.data, len, &out, &outlen, user,
                                             sizeof user, why, sizeof why);
    if (res == SASLAUTH_DONE) {
        int rc = acl_add_sasl(srv, c, user);
        if (rc != 0) {
            snprintf(why, sizeof why, "%s", zn_strerror(rc));
            res = SASLAUTH_FAILED;
        } else {
            ZN_INFO("sasl: peer=%s sid=0x%" PRIx64 " authenticated as sasl:%s", c->peer,
                    (uint64_t)r->session_id, user);
        }
    }
    if (res == SASLAUTH_FAILED) {
        bool required = srv->cfg.sasl.enforce_auth && (srv->cfg.sasl.enforce_schemes & CONFIG_SCHEME_SASL);
        r->err = required ? ZN_SESSIONCLOSEDREQUIRESASLAUTH : ZN_AUTHFAILED;
        c->close_after_flush = true;
        ZN_WARN("sasl: peer=%s failed to authenticate: %s; closing the connection", c->peer, why);
        return;
    }
    /* The token is copied: the session's buffer is reused by the next step. */
    r->resp.data.len = (int32_t)outlen;
    r->resp.data.data = NULL;
    if (outlen > 0) {
        uint8_t *copy = zn_arena_alloc(&r->arena, outlen);
        if (!copy) {
            r->err = ZN_NOMEMORY;
            return;
        }
        memcpy(copy, out, outlen);
        r->resp.data.data = copy;
    }
}

/* addWatch: no ACL or existence check, as in ZooKeeper 3.8. */
static void handle_add_watch(struct server *srv, struct conn *c, struct request *r)
{
    const char *path = r->req.path;
    if (!path || path_validate(path, false) != 0) {
        r->err = ZN_BADARGUMENTS;
        return;
    }
    int rc;
    switch (r->req.flags) {
    case ZN_WATCH_PERSISTENT:
        rc = watch_add(srv->watches, WATCH_PERSISTENT_CHILD, path, &c->watches);
        if (rc == 0)
            rc = watch_add(srv->watches, WATCH_PERSISTENT_DATA, path, &c->watches);
        break;
    case ZN_WATCH_PERSISTENT_RECURSIVE:
        rc = watch_add(srv->watches, WATCH_RECURSIVE, path, &c->watches);
        break;
    default:
        rc = ZN_MARSHALLINGERROR; /* WatcherMode.fromZooDef throws */
        break;
    }
    r->err = rc;
}

/* removeWatches and checkWatches: NOWATCHER when the connection has no
 * watch of that type on the path. */
static void handle_watches(struct server *srv, struct conn *c, struct request *r)
{
    int32_t type = r->req.flags;
    if (type != ZN_WATCHER_CHILDREN && type != ZN_WATCHER_DATA && type != ZN_WATCHER_ANY) {
        r->err = ZN_MARSHALLINGERROR; /* WatcherType.fromInt throws */
        return;
    }
    const char *path = r->req.path ? r->req.path : "";
    bool found = r->hdr.type == ZN_OP_REMOVEWATCHES
                     ? watch_remove(srv->watches, path, type, &c->watches) > 0
                     : watch_contains(srv->watches, path, type, &c->watches);
    if (!found)
        r->err = ZN_NOWATCHER;
}

void read_execute(struct server *srv, struct conn *c, struct request *r)
{
    r->resp.type = r->hdr.type;
    switch (r->hdr.type) {
    case ZN_OP_PING:
        return;
    case ZN_OP_AUTH:
        handle_auth(srv, c, r);
        return;
    case ZN_OP_SASL:
        handle_sasl(srv, c, r);
        return;
    case ZN_OP_ADDWATCH:
        handle_add_watch(srv, c, r);
        return;
    case ZN_OP_REMOVEWATCHES:
    case ZN_OP_CHECKWATCHES:
        handle_watches(srv, c, r);
        return;
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2:
        read_set_watches(srv, c, r);
        return;
    case ZN_OP_GETEPHEMERALS: {
        const char *prefix = r->req.path ? r->req.path : "/";
        struct ephemeral_ctx e = {r, prefix, strcmp(prefix, "/") == 0 ? 0 : strlen(prefix), 0};
        r->resp.children.count = 0;
        if (tree_for_each_ephemeral(srv->tree, r->session_id, collect_ephemeral, &e) != 0)
            r->err = ZN_NOMEMORY;
        return;
    }
    case ZN_OP_WHOAMI: {
        int32_t n = 1 + c->auth_count;
        r->resp.client_info = zn_arena_alloc(&r->arena, sizeof *r->resp.client_info * (size_t)n);
        if (!r->resp.client_info) {
            r->err = ZN_NOMEMORY;
            return;
        }
        r->resp.client_info[0].auth_scheme = "ip";
        r->resp.client_info[0].user = c->peer_ip;
        for (int i = 0; i < c->auth_count; i++) {
            r->resp.client_info[1 + i].auth_scheme = c->auth[i].scheme;
            char *colon = strchr(c->auth[i].id, ':');
            size_t ulen = colon ? (size_t)(colon - c->auth[i].id) : strlen(c->auth[i].id);
            char *user = zn_arena_alloc(&r->arena, ulen + 1);
            if (!user) {
                r->err = ZN_NOMEMORY;
                return;
            }
            memcpy(user, c->auth[i].id, ulen);
            user[ulen] = '\0';
            r->resp.client_info[1 + i].user = user;
        }
        r->resp.client_info_count = n;
        return;
    }
    case ZN_OP_MULTIREAD: {
        int32_t k = r->req.op_count;
        r->resp.results = zn_arena_alloc(&r->arena, sizeof *r->resp.results * (size_t)(k ? k : 1));
        if (!r->resp.results) {
            r->err = ZN_NOMEMORY;
            return;
        }
        memset(r->resp.results, 0, sizeof *r->resp.results * (size_t)(k ? k : 1));
        for (int32_t i = 0; i < k; i++) {
            const struct zn_request *op = &r->req.ops[i];
            if (op->type != ZN_OP_GETDATA && op->type != ZN_OP_GETCHILDREN) {
                r->resp.results[i].type = op->type;
                r->resp.results[i].err = ZN_BADARGUMENTS;
                continue;
            }
            /* multiRead sets no watches, as in ZooKeeper. */
            struct zn_request copy = *op;
            copy.watch = false;
            read_one(srv, c, op->type, &copy, &r->resp.results[i], r);
        }
        r->resp.result_count = k;
        return;
    }
    default: {
        struct zn_response out = {0};
        read_one(srv, c, r->hdr.type, &r->req, &out, r);
        r->err = out.err;
        out.err = 0;
        r->resp = out;
        return;
    }
    }
}
