/*
 * Requests: decoding a client's packets, the per-connection FIFO that keeps
 * each client's replies in order, reads answered from the tree, and the
 * write pipeline (prep -> log -> durable -> apply -> reply).  The invariants
 * it keeps are listed in server.h.
 *
 * Every packet becomes a struct request queued on its connection.  A read
 * is executed when it reaches the head of the queue, so it sees every
 * earlier write of the same client; a write is prepared at once (its zxid is
 * fixed then), logged, and answered when it is both applied and at the head.
 *
 * Failure of the log (a full disk, an I/O error): every write not yet
 * durable fails with an error the client sees (ZN_SYSTEMERROR, logged with
 * the reason), the log is truncated back to what was applied, and the
 * pipeline restarts with zxids beyond any it handed out, so a late callback
 * for a truncated entry can never be mistaken for a new one.  Nothing that
 * was answered as failed is ever applied, before or after a restart.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "assert.h"
#include "log.h"
#include "path.h"
#include "prep.h"
#include "server.h"
#include "store.h"
#include "tree.h"
#include "txn.h"

/* Pseudo-opcode of the connect handshake inside a conn's FIFO. */
#define REQUEST_CONNECT (-1000)

struct request {
    struct request *next;          /* in its conn's FIFO */
    struct request *next_pending;  /* in the server's pending (prepared) list */
    struct conn *conn;             /* NULL once the conn is gone */
    int64_t session_id;
    struct zn_request_header hdr;
    struct zn_request req;
    struct zn_response resp;
    struct zn_arena arena;
    uint8_t *packet;               /* owned copy of the body; req borrows from it */
    int64_t zxid;                  /* writes: the txn's zxid */
    struct txn txn;
    uint8_t *txn_bytes;
    size_t txn_len;
    int32_t err;
    int32_t timeout_ms;            /* CONNECT / CREATESESSION */
    uint64_t received_ms;
    bool is_write;
    bool done;
    bool appended;                 /* given to the store (or nothing to log) */
    bool has_txn;                  /* false: a write prep refused, answered in order */
    bool expired_connect;          /* CONNECT: answer "expired" and close */
};

static struct jute_writer reply_writer; /* the loop thread's scratch buffer */

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct request *request_new(struct conn *c)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    zn_arena_init(&r->arena);
    r->conn = c;
    r->received_ms = server_now_ms();
    return r;
}

static void request_free(struct request *r)
{
    zn_arena_free(&r->arena);
    free(r->packet);
    free(r->txn_bytes);
    free(r);
}

static void fifo_push(struct conn *c, struct request *r)
{
    if (c->queue_tail)
        c->queue_tail->next = r;
    else
        c->queue_head = r;
    c->queue_tail = r;
    c->queued++;
    c->server->outstanding++;
}

static struct request *fifo_pop(struct conn *c)
{
    struct request *r = c->queue_head;
    c->queue_head = r->next;
    if (!c->queue_head)
        c->queue_tail = NULL;
    r->next = NULL;
    c->queued--;
    c->server->outstanding--;
    return r;
}

/* ---- replies ---- */

static void record_latency(struct conn *c, struct request *r)
{
    uint64_t now = server_now_ms();
    uint64_t lat = now - r->received_ms;
    struct server_stats *s = &c->server->stats;
    if (s->latency_count == 0 || lat < s->latency_min_ms)
        s->latency_min_ms = lat;
    if (lat > s->latency_max_ms)
        s->latency_max_ms = lat;
    s->latency_total_ms += lat;
    s->latency_count++;
    struct conn_stats *cs = &c->stats;
    if (cs->latency_count == 0 || lat < cs->latency_min_ms)
        cs->latency_min_ms = lat;
    if (lat > cs->latency_max_ms)
        cs->latency_max_ms = lat;
    cs->latency_total_ms += lat;
    cs->latency_count++;
    cs->last_latency_ms = lat;
    cs->last_response_ms = now;
    cs->last_op = r->hdr.type;
    cs->last_cxid = r->hdr.xid;
}

static void send_connect_response(struct conn *c, struct request *r)
{
    struct zn_connect_response resp = {0};
    uint8_t passwd[ZN_PASSWD_BYTES] = {0};
    if (!r->expired_connect && c->session) {
        resp.timeout_ms = c->session->timeout_ms;
        resp.session_id = c->session->id;
        session_password(c->session->id, passwd);
    }
    resp.passwd.data = passwd;
    resp.passwd.len = ZN_PASSWD_BYTES;
    resp.has_read_only = true;
    jute_writer_reset(&reply_writer);
    jute_write_connect_response(&reply_writer, &resp);
    conn_send_frame(c, &reply_writer);
    if (r->expired_connect) {
        c->close_after_flush = true;
        ZN_INFO("refused reconnect peer=%s: session expired or unknown", c->peer);
    }
}

static void send_reply(struct conn *c, struct request *r)
{
    if (r->hdr.type == REQUEST_CONNECT) {
        send_connect_response(c, r);
        return;
    }
    record_latency(c, r);
    struct zn_reply_header h = {
        .xid = r->hdr.xid,
        .zxid = r->is_write && r->zxid ? r->zxid : tree_last_zxid(c->server->tree),
        .err = r->err,
    };
    c->stats.last_zxid = h.zxid;
    jute_writer_reset(&reply_writer);
    jute_write_reply_header(&reply_writer, &h);
    /* A multi carries its per-op results even when it failed. */
    if (r->err == ZN_OK || r->hdr.type == ZN_OP_MULTI || r->hdr.type == ZN_OP_MULTIREAD) {
        r->resp.type = r->hdr.type;
        if (r->err != ZN_OK && r->resp.result_count == 0) {
            /* no per-op results: nothing but the header, as for any error */
        } else if (jute_write_response(&reply_writer, &r->resp) != 0) {
            ZN_ERROR("cannot encode reply op=%s sid=0x%" PRIx64, zn_op_name(r->hdr.type),
                     (uint64_t)r->session_id);
            jute_writer_reset(&reply_writer);
            h.err = ZN_MARSHALLINGERROR;
            jute_write_reply_header(&reply_writer, &h);
        }
    }
    conn_send_frame(c, &reply_writer);
    if (r->hdr.type == ZN_OP_CLOSESESSION)
        c->close_after_flush = true;
}

void server_watch_notify(void *ctx, struct watch_owner *owner, int32_t event_type,
                         const char *path)
{
    (void)ctx;
    struct conn *c = (struct conn *)((char *)owner - offsetof(struct conn, watches));
    struct zn_reply_header h = {.xid = ZN_XID_NOTIFICATION, .zxid = -1, .err = 0};
    struct zn_watcher_event e = {.type = event_type, .state = ZN_STATE_SYNC_CONNECTED,
                                 .path = (char *)path};
    jute_writer_reset(&reply_writer);
    jute_write_reply_header(&reply_writer, &h);
    jute_write_watcher_event(&reply_writer, &e);
    conn_send_frame(c, &reply_writer);
}

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
            server_watch_notify(srv, &c->watches, ZN_EVENT_DELETED, p);
            continue;
        }
        tree_node_stat(n, &st);
        if (st.mzxid > rel)
            server_watch_notify(srv, &c->watches, ZN_EVENT_CHANGED, p);
        else
            add_watch(c, WATCH_DATA, p);
    }
    for (int32_t i = 0; i < w[ZN_WATCHES_EXIST].count; i++) {
        const char *p = w[ZN_WATCHES_EXIST].items[i];
        if (tree_get(srv->tree, p))
            server_watch_notify(srv, &c->watches, ZN_EVENT_CREATED, p);
        else
            add_watch(c, WATCH_DATA, p);
    }
    for (int32_t i = 0; i < w[ZN_WATCHES_CHILD].count; i++) {
        const char *p = w[ZN_WATCHES_CHILD].items[i];
        const struct tree_node *n = tree_get(srv->tree, p);
        struct zn_stat st;
        if (!n) {
            server_watch_notify(srv, &c->watches, ZN_EVENT_DELETED, p);
            continue;
        }
        tree_node_stat(n, &st);
        if (st.pzxid > rel)
            server_watch_notify(srv, &c->watches, ZN_EVENT_CHILD, p);
        else
            add_watch(c, WATCH_CHILD, p);
    }
    if (r->hdr.type == ZN_OP_SETWATCHES2 &&
        (w[ZN_WATCHES_PERSISTENT].count > 0 || w[ZN_WATCHES_PERSISTENT_RECURSIVE].count > 0))
        ZN_WARN("setWatches2: persistent watches are not supported yet; ignored peer=%s", c->peer);
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
    case ZN_OP_GETACL:
    case ZN_OP_SYNC:
    case ZN_OP_GETALLCHILDRENNUMBER:
        if (!q->path || path_validate(q->path, false) != 0) {
            out->err = ZN_BADARGUMENTS;
            return;
        }
        n = tree_get(srv->tree, q->path);
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
        if (q->watch && c)
            add_watch(c, WATCH_DATA, q->path);
        out->data = tree_node_data(n);
        tree_node_stat(n, &out->stat);
        return;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2: {
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        if (q->watch && c)
            add_watch(c, WATCH_CHILD, q->path);
        out->err = read_children(&r->arena, n, &out->children);
        tree_node_stat(n, &out->stat);
        return;
    }
    case ZN_OP_GETACL:
        if (!n) {
            out->err = ZN_NONODE;
            return;
        }
        out->acl = tree_node_acl(n);
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
        out->number = count_descendants(n);
        if (out->number < 0)
            out->err = ZN_NOMEMORY;
        return;
    default:
        out->err = ZN_UNIMPLEMENTED;
        return;
    }
}

static void handle_auth(struct conn *c, struct request *r)
{
    const char *scheme = r->req.scheme ? r->req.scheme : "";
    if (strcmp(scheme, "digest") != 0 || r->req.auth.len <= 0 ||
        !memchr(r->req.auth.data, ':', (size_t)r->req.auth.len)) {
        /* ZooKeeper answers AUTHFAILED and drops the connection. */
        r->err = ZN_AUTHFAILED;
        c->close_after_flush = true;
        ZN_WARN("auth failed peer=%s scheme=%s", c->peer, scheme);
        return;
    }
    if (c->auth_count == CONN_MAX_AUTH_IDS) {
        r->err = ZN_BADARGUMENTS;
        return;
    }
    /* Kept as given (user:password); ACL checks compare its digest form. */
    struct conn_auth *a = &c->auth[c->auth_count];
    a->scheme = strdup(scheme);
    a->id = strndup((const char *)r->req.auth.data, (size_t)r->req.auth.len);
    if (!a->scheme || !a->id) {
        free(a->scheme);
        free(a->id);
        r->err = ZN_NOMEMORY;
        return;
    }
    c->auth_count++;
}

static void execute_read(struct server *srv, struct conn *c, struct request *r)
{
    r->resp.type = r->hdr.type;
    switch (r->hdr.type) {
    case ZN_OP_PING:
        return;
    case ZN_OP_AUTH:
        handle_auth(c, r);
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

/* Answers everything at the head of c's FIFO that can be answered now. */
static void conn_drain(struct conn *c)
{
    struct server *srv = c->server;
    while (c->queue_head && c->state != CONN_CLOSING) {
        struct request *r = c->queue_head;
        if (r->is_write && !r->done)
            break;
        if (!r->is_write && !r->done)
            execute_read(srv, c, r);
        fifo_pop(c);
        send_reply(c, r);
        request_free(r);
        if (c->close_after_flush)
            break;
    }
}

void request_conn_closed(struct conn *c)
{
    while (c->queue_head) {
        struct request *r = fifo_pop(c);
        if (r->is_write && !r->done) {
            r->conn = NULL; /* still in the pipeline; freed once applied */
            continue;
        }
        request_free(r);
    }
}

/* ---- the write pipeline ---- */

static void pipeline_append_staged(struct server *srv);

static void pending_push(struct server *srv, struct request *r)
{
    if (srv->pending_tail)
        srv->pending_tail->next_pending = r;
    else
        srv->pending_head = r;
    srv->pending_tail = r;
    if (!srv->staged)
        srv->staged = r;
}

static struct request *pending_pop(struct server *srv)
{
    struct request *r = srv->pending_head;
    srv->pending_head = r->next_pending;
    if (!srv->pending_head)
        srv->pending_tail = NULL;
    if (srv->staged == r)
        srv->staged = r->next_pending;
    r->next_pending = NULL;
    return r;
}

/* A request finished (applied or failed): answer it or drop it. */
static void request_finish(struct server *srv, struct request *r)
{
    r->done = true;
    if (r->conn)
        conn_drain(r->conn);
    else
        request_free(r);
}

/* Fails every prepared request from the head on (the log could not take
 * them), truncates the log back to the tree, and restarts prep. */
static void pipeline_fail_all(struct server *srv, int status)
{
    ZN_ERROR("the log could not be written (%s): failing every write not yet durable; "
             "they were not applied", zn_strerror(status));
    int64_t applied = tree_last_zxid(srv->tree);
    int rc = store_truncate_after(srv->store, (uint64_t)applied);
    if (rc != 0)
        ZN_ERROR("could not truncate the log after zxid=0x%" PRIx64 ": %s", (uint64_t)applied,
                 zn_strerror(rc));
    prep_reset(srv->prep);
    while (srv->pending_head) {
        struct request *r = pending_pop(srv);
        if (r->hdr.type == ZN_OP_CREATESESSION || r->hdr.type == REQUEST_CONNECT) {
            if (r->conn)
                r->conn->close_after_flush = true;
        }
        if (r->hdr.type == ZN_OP_CLOSESESSION && !r->conn) {
            struct session *s = session_find(srv, r->session_id);
            if (s)
                s->closing = false; /* expiry will try again */
        }
        r->err = ZN_SYSTEMERROR;
        r->zxid = 0;
        request_finish(srv, r);
    }
}

static void maybe_snapshot(struct server *srv)
{
    if (srv->txns_since_snapshot < srv->cfg.snap_count)
        return;
    struct jute_writer w;
    jute_writer_init(&w);
    uint64_t start = server_now_ms();
    if (tree_serialize(srv->tree, &w) != 0 || w.error) {
        ZN_ERROR("snapshot: cannot serialise the tree");
        jute_writer_free(&w);
        return;
    }
    size_t len;
    uint8_t *blob = jute_writer_take(&w, &len);
    jute_writer_free(&w);
    int64_t zxid = tree_last_zxid(srv->tree);
    int rc = store_snapshot(srv->store, (uint64_t)zxid, blob, len);
    if (rc != 0) {
        free(blob);
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed: %s", (uint64_t)zxid, zn_strerror(rc));
        return;
    }
    srv->txns_since_snapshot = 0;
    ZN_INFO("snapshot queued zxid=0x%" PRIx64 " bytes=%zu nodes=%zu serialise_ms=%" PRIu64,
            (uint64_t)zxid, len, tree_node_count(srv->tree), server_now_ms() - start);
}

static void on_tree_event(void *ctx, int32_t event_type, const char *path)
{
    struct server *srv = ctx;
    watch_trigger(srv->watches, event_type, path);
}

static void apply_request(struct server *srv, struct request *r)
{
    if (!r->has_txn) {
        request_finish(srv, r); /* prep's error, now in its place in the order */
        return;
    }
    memset(&r->resp, 0, sizeof r->resp);
    int rc = tree_apply(srv->tree, &r->txn, on_tree_event, srv, &r->arena, &r->resp);
    prep_applied(srv->prep, r->zxid);
    srv->txns_since_snapshot++;
    if (rc != 0) {
        /* A txn prep produced always applies; this is a bug, loudly. */
        ZN_ERROR("cannot apply zxid=0x%" PRIx64 " op=%s: %s", (uint64_t)r->zxid,
                 zn_op_name(r->txn.hdr.type), zn_strerror(rc));
        r->err = ZN_SYSTEMERROR;
    } else {
        r->err = r->resp.err;
    }
    if (r->hdr.type == REQUEST_CONNECT && rc == 0) {
        struct session *s = session_add(srv, r->session_id, r->timeout_ms);
        if (!s) {
            r->expired_connect = true;
        } else if (r->conn) {
            s->conn = r->conn;
            r->conn->session = s;
            r->conn->state = CONN_READY;
            ZN_INFO("session created sid=0x%" PRIx64 " timeout_ms=%d peer=%s",
                    (uint64_t)s->id, s->timeout_ms, r->conn->peer);
        }
    } else if (r->hdr.type == ZN_OP_CLOSESESSION && rc == 0) {
        struct session *s = session_find(srv, r->session_id);
        if (s && r->conn && s->conn == r->conn) {
            /* The client asked: answer it, then close. */
            s->conn = NULL;
            r->conn->session = NULL;
        }
        ZN_INFO("session closed sid=0x%" PRIx64 " by=%s", (uint64_t)r->session_id,
                r->conn ? "client" : "expiry");
        session_remove(srv, r->session_id);
    }
    request_finish(srv, r);
}

static void on_durable(void *ctx, uint64_t last_zxid, int status)
{
    struct server *srv = ctx;
    if (status != 0) {
        if (srv->pending_head && srv->pending_head->appended &&
            (uint64_t)srv->pending_head->zxid <= last_zxid)
            pipeline_fail_all(srv, status);
        server_flush(srv);
        return;
    }
    while (srv->pending_head && srv->pending_head->appended &&
           (uint64_t)srv->pending_head->zxid <= last_zxid)
        apply_request(srv, pending_pop(srv));
    pipeline_append_staged(srv);
    maybe_snapshot(srv);
    server_flush(srv);
}

static void pipeline_append_staged(struct server *srv)
{
    while (srv->staged) {
        struct request *r = srv->staged;
        if (!r->has_txn) {
            srv->staged = r->next_pending;
            continue;
        }
        int rc = store_append(srv->store, (uint64_t)r->zxid, r->txn_bytes, r->txn_len);
        if (rc == ZN_THROTTLEDOP)
            return; /* the store's queue is full: retried after the next batch */
        if (rc != 0) {
            pipeline_fail_all(srv, rc);
            return;
        }
        r->appended = true;
        free(r->txn_bytes); /* the store copied it */
        r->txn_bytes = NULL;
        srv->staged = r->next_pending;
    }
}

/*
 * Puts a prepared write in the pipeline, or finishes it with prep's error.
 * A write that failed validation is still queued behind every write prepared
 * before it (with nothing to log): it was judged against the tree as those
 * will leave it, so its answer must not overtake them, or a client could be
 * told "node exists" and then read that it does not.
 */
static void pipeline_submit(struct server *srv, struct request *r, int prep_rc)
{
    /* prep saw this zxid even when it refused: never hand it out again
     * (ZooKeeper too spends a zxid on every refused write). */
    srv->next_zxid++;
    if (prep_rc != 0) {
        if (r->hdr.type == ZN_OP_MULTI && r->resp.result_count > 0)
            r->err = ZN_OK; /* ZooKeeper: the per-op results carry the errors */
        else
            r->err = prep_rc;
        r->zxid = 0;
        if (!srv->pending_head) {
            r->done = true;
            return;
        }
        r->zxid = srv->pending_tail->zxid;
        r->appended = true; /* nothing to log */
        pending_push(srv, r);
        if (srv->staged == r)
            srv->staged = NULL;
        return;
    }
    r->has_txn = true;
    r->txn.hdr.zxid = r->zxid;
    struct jute_writer w;
    jute_writer_init(&w);
    if (txn_encode(&w, &r->txn) != 0 || w.error) {
        jute_writer_free(&w);
        ZN_ERROR("cannot encode txn zxid=0x%" PRIx64, (uint64_t)r->zxid);
        prep_reset(srv->prep); /* the overlay holds a txn that will never apply */
        r->err = ZN_SYSTEMERROR;
        r->done = true;
        return;
    }
    r->txn_bytes = jute_writer_take(&w, &r->txn_len);
    jute_writer_free(&w);
    pending_push(srv, r);
    pipeline_append_staged(srv);
}

static void submit_write(struct server *srv, struct request *r)
{
    struct session *s = session_find(srv, r->session_id);
    if (!s || s->closing) {
        r->err = ZN_SESSIONEXPIRED;
        r->done = true;
        return;
    }
    r->zxid = srv->next_zxid;
    int rc;
    if (r->hdr.type == ZN_OP_CLOSESESSION) {
        s->closing = true;
        rc = prep_close_session(srv->prep, r->session_id, r->zxid, wall_ms(), &r->arena, &r->txn);
    } else {
        rc = prep_request(srv->prep, r->session_id, r->hdr.xid, &r->req, r->zxid, wall_ms(),
                          &r->arena, &r->txn, &r->resp);
    }
    pipeline_submit(srv, r, rc);
}

void pipeline_expire_session(struct server *srv, struct session *s)
{
    struct request *r = request_new(NULL);
    if (!r)
        return; /* tried again on the next tick */
    s->closing = true;
    r->session_id = s->id;
    r->hdr.type = ZN_OP_CLOSESESSION;
    r->hdr.xid = 0;
    r->is_write = true;
    r->zxid = srv->next_zxid;
    int rc = prep_close_session(srv->prep, s->id, r->zxid, wall_ms(), &r->arena, &r->txn);
    pipeline_submit(srv, r, rc);
    if (r->done) {
        s->closing = false;
        request_free(r);
    }
}

/* ---- packets ---- */

static bool session_password_ok(int64_t id, const struct jute_buf *passwd)
{
    uint8_t expected[ZN_PASSWD_BYTES];
    session_password(id, expected);
    return passwd->len == ZN_PASSWD_BYTES && memcmp(passwd->data, expected, ZN_PASSWD_BYTES) == 0;
}

void request_handle_connect(struct conn *c, const uint8_t *data, size_t len)
{
    struct server *srv = c->server;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader rd;
    jute_reader_init(&rd, data, len, &arena);
    struct zn_connect_request cr;
    if (jute_read_connect_request(&rd, &cr) != 0) {
        zn_arena_free(&arena);
        srv->stats.malformed_packets++;
        conn_close(c, "malformed ConnectRequest");
        return;
    }
    if (cr.last_zxid_seen > tree_last_zxid(srv->tree)) {
        zn_arena_free(&arena);
        char why[160];
        snprintf(why, sizeof why,
                 "refusing session: client has seen zxid 0x%" PRIx64 ", our last is 0x%" PRIx64,
                 (uint64_t)cr.last_zxid_seen, (uint64_t)tree_last_zxid(srv->tree));
        conn_close(c, why);
        return;
    }
    int32_t timeout = cr.timeout_ms;
    if (timeout < srv->cfg.min_session_timeout_ms)
        timeout = srv->cfg.min_session_timeout_ms;
    if (timeout > srv->cfg.max_session_timeout_ms)
        timeout = srv->cfg.max_session_timeout_ms;

    struct request *r = request_new(c);
    if (!r) {
        zn_arena_free(&arena);
        conn_close(c, "out of memory");
        return;
    }
    r->hdr.type = REQUEST_CONNECT;
    r->timeout_ms = timeout;
    c->timeout_ms = timeout;
    if (cr.session_id != 0) {
        struct session *s = session_find(srv, cr.session_id);
        r->session_id = cr.session_id;
        if (!s || s->closing || !session_password_ok(cr.session_id, &cr.passwd)) {
            r->expired_connect = true;
        } else {
            if (s->conn && s->conn != c)
                conn_close(s->conn, "session reconnected on another connection");
            s->conn = c;
            c->session = s;
            c->timeout_ms = s->timeout_ms;
            session_touch(srv, s);
            ZN_INFO("session reconnected sid=0x%" PRIx64 " peer=%s", (uint64_t)s->id, c->peer);
        }
        c->state = r->expired_connect ? CONN_OPENING : CONN_READY;
        r->done = true;
        fifo_push(c, r);
        conn_drain(c);
    } else {
        r->session_id = session_new_id(srv);
        r->is_write = true;
        r->zxid = srv->next_zxid;
        c->state = CONN_OPENING;
        fifo_push(c, r);
        int rc = prep_create_session(srv->prep, r->session_id, timeout, r->zxid, wall_ms(),
                                     &r->arena, &r->txn);
        pipeline_submit(srv, r, rc);
        if (r->done) {
            r->expired_connect = true;
            conn_drain(c);
        }
    }
    zn_arena_free(&arena);
}

void request_handle_packet(struct conn *c, const uint8_t *data, size_t len)
{
    struct server *srv = c->server;
    struct request *r = request_new(c);
    if (!r) {
        conn_close(c, "out of memory");
        return;
    }
    r->packet = malloc(len ? len : 1);
    if (!r->packet) {
        request_free(r);
        conn_close(c, "out of memory");
        return;
    }
    memcpy(r->packet, data, len);
    struct jute_reader rd;
    jute_reader_init(&rd, r->packet, len, &r->arena);
    if (jute_read_request_header(&rd, &r->hdr) != 0) {
        request_free(r);
        srv->stats.malformed_packets++;
        conn_close(c, "malformed request header");
        return;
    }
    int rc = jute_read_request(&rd, r->hdr.type, &r->req);
    if (rc == ZN_UNIMPLEMENTED) {
        r->err = ZN_UNIMPLEMENTED;
        r->done = true;
    } else if (rc != 0) {
        char why[96];
        snprintf(why, sizeof why, "malformed %s request (xid=%d, %zu bytes)",
                 zn_op_name(r->hdr.type), r->hdr.xid, len);
        request_free(r);
        srv->stats.malformed_packets++;
        conn_close(c, why);
        return;
    }
    r->session_id = c->session ? c->session->id
                    : c->queue_head && c->queue_head->hdr.type == REQUEST_CONNECT
                        ? c->queue_head->session_id
                        : 0;
    if (c->session)
        session_touch(srv, c->session);
    ZN_DEBUG("request peer=%s sid=0x%" PRIx64 " xid=%d op=%s path=%s", c->peer,
             (uint64_t)r->session_id, r->hdr.xid, zn_op_name(r->hdr.type),
             r->req.path ? r->req.path : "-");
    r->is_write = !r->done && zn_op_is_write(r->hdr.type);
    fifo_push(c, r);
    if (r->is_write)
        submit_write(srv, r);
    conn_drain(c);
}

/* ---- recovery and start ---- */

static int recover_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct server *srv = ctx;
    int rc = tree_deserialize(srv->tree, data, len);
    if (rc != 0)
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " cannot be loaded: %s", zxid, zn_strerror(rc));
    return rc;
}

static int recover_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct server *srv = ctx;
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader rd;
    jute_reader_init(&rd, data, len, &arena);
    struct txn t;
    int rc = txn_decode(&rd, &t);
    if (rc == 0)
        rc = tree_apply(srv->tree, &t, NULL, NULL, NULL, NULL);
    zn_arena_free(&arena);
    if (rc != 0)
        ZN_ERROR("log entry zxid=0x%" PRIx64 " cannot be applied: %s", zxid, zn_strerror(rc));
    srv->txns_since_snapshot++;
    return rc;
}

static int add_recovered_session(void *ctx, int64_t id, int32_t timeout_ms)
{
    return session_add(ctx, id, timeout_ms) ? 0 : ZN_NOMEMORY;
}

int pipeline_recover(struct server *srv)
{
    uint64_t start = server_now_ms();
    int rc = store_recover(srv->store, recover_snapshot, recover_entry, srv);
    if (rc != 0)
        return rc;
    rc = tree_for_each_session(srv->tree, add_recovered_session, srv);
    if (rc != 0)
        return rc;
    int64_t last = tree_last_zxid(srv->tree);
    if ((int64_t)store_last_zxid(srv->store) > last)
        last = (int64_t)store_last_zxid(srv->store);
    srv->next_zxid = last + 1;
    ZN_INFO("recovered zxid=0x%" PRIx64 " nodes=%zu sessions=%zu ms=%" PRIu64,
            (uint64_t)tree_last_zxid(srv->tree), tree_node_count(srv->tree), srv->session_count,
            server_now_ms() - start);
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int server_start(struct server *srv, uv_loop_t *loop, const struct config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->stats.started_ms = server_now_ms();
    jute_writer_init(&reply_writer);
    srv->tree = tree_new();
    srv->watches = watch_manager_new(server_watch_notify, srv);
    if (!srv->tree || !srv->watches)
        return ZN_NOMEMORY;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", cfg->data_log_dir);
    if (make_dirs(dir) != 0) {
        ZN_ERROR("cannot create the data directory %s: %s", dir, strerror(errno));
        return ZN_IO;
    }
    int rc = store_open(&srv->store, loop, dir, NULL, on_durable, srv);
    if (rc != 0) {
        ZN_ERROR("cannot open the log in %s: %s", dir, zn_strerror(rc));
        return rc;
    }
    rc = pipeline_recover(srv);
    if (rc != 0) {
        ZN_ERROR("recovery from %s failed: %s", dir, zn_strerror(rc));
        return rc;
    }
    srv->prep = prep_new(srv->tree);
    if (!srv->prep)
        return ZN_NOMEMORY;
    rc = server_listen(srv);
    if (rc != 0)
        return rc;
    server_install_signals(srv);
    return session_start_timer(srv);
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    ZN_INFO("signal %d: stopping", signum);
    server_stop(srv);
}

int server_install_signals(struct server *srv)
{
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    return uv_signal_start(&srv->sigint, on_signal, SIGINT);
}

void server_stop(struct server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
    uv_timer_stop(&srv->session_timer);
    uv_close((uv_handle_t *)&srv->session_timer, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    while (srv->conns)
        conn_close(srv->conns, NULL);
    /* Drains the log queue: writes already logged stay logged; their clients
     * are gone, and they will be applied again on the next start. */
    store_close(srv->store);
    srv->store = NULL;
}
