/*
 * check: the invariant checkers (see check.h).  Only public functions and
 * iteration helpers of tree, prep and watch are used here.
 */
#include "check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prep.h"
#include "quota.h"
#include "server.h"
#include "tree.h"
#include "watch.h"
#include "znode/errors.h"

static int fail(char why[CHECK_WHY_BYTES], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, CHECK_WHY_BYTES, fmt, ap);
    va_end(ap);
    return ZN_DATAINCONSISTENCY;
}

/* ------------------------------------------------------------------- tree */

static bool owner_is_session(int64_t owner)
{
    return owner != 0 && owner != TREE_CONTAINER_OWNER && (owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK;
}

struct node_stack {
    const struct tree_node **items;
    size_t count, cap;
};

static int push(struct node_stack *s, const struct tree_node *n)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        const struct tree_node **items = realloc(s->items, cap * sizeof *items);
        if (items == NULL)
            return ZN_NOMEMORY;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = n;
    return 0;
}

/* One node against its children, its stat, the index and the session table. */
static int check_node(const struct tree *t, const struct tree_node *n, struct node_stack *stack,
                      size_t *ephemerals, size_t *limits, char why[CHECK_WHY_BYTES])
{
    const char *path = tree_node_path(n);
    if (tree_get(t, path) != n)
        return fail(why, "tree: the index does not find node %s", path);
    struct zn_stat st;
    tree_node_stat(n, &st);
    uint32_t children = tree_node_child_count(n);
    struct jute_buf data = tree_node_data(n);
    if (st.num_children != (int32_t)children || st.data_length != (data.len > 0 ? data.len : 0))
        return fail(why, "tree: %s: stat says %d children, %d bytes; it has %u, %d", path, st.num_children,
                    st.data_length, children, data.len);
    int64_t owner = tree_node_raw_owner(n);
    if (owner_is_session(owner)) {
        if (!tree_session_exists(t, owner))
            return fail(why, "tree: ephemeral %s: owner 0x%" PRIx64 " is not in the session table", path,
                        (uint64_t)owner);
        if (children != 0)
            return fail(why, "tree: ephemeral %s has %u children", path, children);
        (*ephemerals)++;
    }
    const char *parent_dir = quota_real_path(path);
    const char *slash = strrchr(path, '/');
    if (parent_dir && slash && slash > parent_dir && strcmp(slash + 1, QUOTA_LIMIT_NODE) == 0) {
        /* /zookeeper/quota/<real>/zookeeper_limits: <real> has a quota */
        size_t real_len = (size_t)(slash - parent_dir);
        char real[real_len + 1];
        memcpy(real, parent_dir, real_len);
        real[real_len] = '\0';
        const char *found = tree_quota_prefix(t, real);
        if (found == NULL || strcmp(found, real) != 0)
            return fail(why, "tree: limit node %s but %s has no quota in the set", path, real);
        (*limits)++;
    }
    size_t path_len = strlen(path);
    for (uint32_t i = 0; i < children; i++) {
        const struct tree_node *c = tree_node_child(n, i);
        const char *name = tree_node_child_name(n, i);
        const char *cpath = c ? tree_node_path(c) : NULL;
        size_t base = path_len == 1 ? 0 : path_len; /* the root's children are "/name" */
        if (c == NULL || name == NULL || name[0] == '\0' || strchr(name, '/') ||
            strncmp(cpath, path, base) != 0 || cpath[base] != '/' || strcmp(cpath + base + 1, name) != 0)
            return fail(why, "tree: child %u of %s (%s) is not at the path its name gives (%s)", i, path,
                        name ? name : "(null)", cpath ? cpath : "(null)");
        if (push(stack, c) != 0)
            return fail(why, "tree: out of memory while checking");
    }
    return 0;
}

struct session_walk {
    const struct tree *t;
    int64_t session;
    size_t listed, sessions;
    char *why;
    int rc;
};

static int check_listed_ephemeral(void *ctx, const char *path)
{
    struct session_walk *w = ctx;
    const struct tree_node *n = tree_get(w->t, path);
    if (n == NULL || tree_node_raw_owner(n) != w->session) {
        w->rc = fail(w->why, "tree: session 0x%" PRIx64 " lists ephemeral %s, which %s", (uint64_t)w->session,
                     path, n ? "it does not own" : "does not exist");
        return 1;
    }
    w->listed++;
    return 0;
}

static int check_session(void *ctx, int64_t session_id, int32_t timeout_ms)
{
    struct session_walk *w = ctx;
    size_t before = w->listed;
    w->session = session_id;
    w->sessions++;
    if (!owner_is_session(session_id) || timeout_ms <= 0) {
        w->rc = fail(w->why, "tree: session 0x%" PRIx64 " timeout %d is not a session", (uint64_t)session_id,
                     timeout_ms);
        return 1;
    }
    if (tree_for_each_ephemeral(w->t, session_id, check_listed_ephemeral, w) != 0)
        return 1;
    if (w->listed - before != tree_session_ephemeral_count(w->t, session_id)) {
        w->rc = fail(w->why, "tree: session 0x%" PRIx64 " lists %zu ephemerals but counts %zu", (uint64_t)session_id,
                     w->listed - before, tree_session_ephemeral_count(w->t, session_id));
        return 1;
    }
    return 0;
}

int check_tree(const struct tree *t, char why[CHECK_WHY_BYTES])
{
    const struct tree_node *root = tree_get(t, "/");
    if (root == NULL || strcmp(tree_node_path(root), "/") != 0)
        return fail(why, "tree: no root");
    struct node_stack stack = {0};
    size_t nodes = 0, bytes = 0, ephemerals = 0, limits = 0;
    int rc = push(&stack, root) == 0 ? 0 : fail(why, "tree: out of memory while checking");
    while (rc == 0 && stack.count > 0) {
        const struct tree_node *n = stack.items[--stack.count];
        nodes++;
        struct jute_buf data = tree_node_data(n);
        bytes += strlen(tree_node_path(n)) + (data.len > 0 ? (size_t)data.len : 0);
        if (nodes > tree_node_count(t))
            rc = fail(why, "tree: more nodes reachable from the root than the %zu counted", tree_node_count(t));
        else
            rc = check_node(t, n, &stack, &ephemerals, &limits, why);
    }
    free(stack.items);
    if (rc != 0)
        return rc;
    if (nodes != tree_node_count(t) || bytes != tree_data_bytes(t))
        return fail(why, "tree: %zu nodes and %zu bytes reachable, counters say %zu and %zu", nodes, bytes,
                    tree_node_count(t), tree_data_bytes(t));
    if (ephemerals != tree_ephemeral_count(t))
        return fail(why, "tree: %zu ephemeral nodes, counter says %zu", ephemerals, tree_ephemeral_count(t));
    if (limits != tree_quota_count(t))
        return fail(why, "tree: %zu limit nodes, %zu quotas in the set", limits, tree_quota_count(t));
    struct session_walk w = {.t = t, .why = why};
    if (tree_for_each_session(t, check_session, &w) != 0)
        return w.rc;
    if (w.sessions != tree_session_count(t) || w.listed != ephemerals)
        return fail(why, "tree: %zu sessions listing %zu ephemerals; counted %zu sessions, %zu ephemeral nodes",
                    w.sessions, w.listed, tree_session_count(t), ephemerals);
    if (tree_check(t) != 0)
        return fail(why, "tree: tree_check failed (links, index or digests)");
    return 0;
}

/* ------------------------------------------------------------------- prep */

struct prep_seen {
    const void *id, *shadowed_id, *shadowed_by_id;
    const char *key;
    size_t key_len, index;
};

struct prep_walk {
    const struct prep *p;
    int64_t applied_zxid, last_zxid;
    struct prep_seen *seen; /* FIFO order */
    size_t count, cap;
    char *why;
    int rc;
};

static int check_record(void *ctx, const struct prep_record_info *r)
{
    struct prep_walk *w = ctx;
    if (r->zxid <= w->applied_zxid || r->zxid < w->last_zxid) {
        w->rc = fail(w->why, "prep: record %.*s zxid 0x%" PRIx64 " after 0x%" PRIx64 " (applied 0x%" PRIx64 ")",
                     (int)r->key_len, r->key, (uint64_t)r->zxid, (uint64_t)w->last_zxid, (uint64_t)w->applied_zxid);
        return 1;
    }
    w->last_zxid = r->zxid;
    const void *found = prep_find_record(w->p, r->key, r->key_len);
    if (r->newest != (r->shadowed_by_id == NULL) || (found == r->id) != r->newest) {
        w->rc = fail(w->why, "prep: record %.*s zxid 0x%" PRIx64 ": newest=%d hidden=%d, and a lookup finds %s",
                     (int)r->key_len, r->key, (uint64_t)r->zxid, r->newest, r->shadowed_by_id != NULL,
                     found == r->id ? "it" : found ? "another record" : "nothing");
        return 1;
    }
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct prep_seen *seen = realloc(w->seen, cap * sizeof *seen);
        if (seen == NULL) {
            w->rc = fail(w->why, "prep: out of memory while checking");
            return 1;
        }
        w->seen = seen;
        w->cap = cap;
    }
    w->seen[w->count] = (struct prep_seen){r->id, r->shadowed_id, r->shadowed_by_id, r->key, r->key_len, w->count};
    w->count++;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct prep_seen *)a)->id, y = (uintptr_t)((const struct prep_seen *)b)->id;
    return (x > y) - (x < y);
}

/* A record hides only an older record of its key, which names it back. */
static int check_shadows(struct prep_walk *w)
{
    if (w->count == 0)
        return 0;
    qsort(w->seen, w->count, sizeof *w->seen, by_id);
    for (size_t i = 0; i < w->count; i++) {
        const struct prep_seen *r = &w->seen[i];
        if (r->shadowed_id == NULL)
            continue;
        struct prep_seen key = {.id = r->shadowed_id};
        const struct prep_seen *h = bsearch(&key, w->seen, w->count, sizeof *w->seen, by_id);
        if (h == NULL || h->index >= r->index || h->shadowed_by_id != r->id || h->key_len != r->key_len ||
            memcmp(h->key, r->key, r->key_len) != 0)
            return fail(w->why, "prep: record %.*s (FIFO position %zu) hides %s", (int)r->key_len, r->key, r->index,
                        h == NULL ? "a record not in the FIFO" : "a record that is not its key's older one");
    }
    return 0;
}

int check_prep(const struct prep *p, int64_t applied_zxid, char why[CHECK_WHY_BYTES])
{
    struct prep_walk w = {.p = p, .applied_zxid = applied_zxid, .why = why};
    int rc = prep_for_each_record(p, check_record, &w) != 0 ? w.rc : 0;
    if (rc == 0 && w.count != prep_pending_count(p))
        rc = fail(why, "prep: %zu records in the FIFO, %zu counted", w.count, prep_pending_count(p));
    if (rc == 0)
        rc = check_shadows(&w);
    free(w.seen);
    return rc;
}

/* ---------------------------------------------------------------- watches */

struct watch_seen {
    const struct watch_owner *owner;
    int kind;
    char *path;
};

struct watch_walk {
    struct watch_seen *items;
    size_t count, cap;
    const struct watch_owner *owner; /* the owner being listed */
    size_t entries, registrations;
    const struct watch_owner **owners; /* every owner seen */
    size_t owner_count, owner_cap;
    bool nomem, bad_entry;
};

static void seen_add(struct watch_walk *w, const struct watch_owner *owner, int kind, const char *path)
{
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct watch_seen *items = realloc(w->items, cap * sizeof *items);
        if (items == NULL) {
            w->nomem = true;
            return;
        }
        w->items = items;
        w->cap = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        w->nomem = true;
        return;
    }
    w->items[w->count++] = (struct watch_seen){owner, kind, copy};
}

static void owner_add(struct watch_walk *w, const struct watch_owner *owner)
{
    if (w->owner_count == w->owner_cap) {
        size_t cap = w->owner_cap ? w->owner_cap * 2 : 64;
        const struct watch_owner **owners = realloc(w->owners, cap * sizeof *owners);
        if (owners == NULL) {
            w->nomem = true;
            return;
        }
        w->owners = owners;
        w->owner_cap = cap;
    }
    w->owners[w->owner_count++] = owner;
}

static void on_entry(void *ctx, enum watch_kind kind, const char *path, struct watch_owner *const *owners,
                     size_t count)
{
    struct watch_walk *w = ctx;
    w->entries++;
    w->registrations += count;
    if (count == 0 || (unsigned)kind >= WATCH_KINDS)
        w->bad_entry = true;
    for (size_t i = 0; i < count; i++) {
        seen_add(w, owners[i], kind, path);
        owner_add(w, owners[i]);
    }
}

static void on_owner_path(void *ctx, enum watch_kind kind, const char *path)
{
    struct watch_walk *w = ctx;
    seen_add(w, w->owner, kind, path);
}

static int seen_cmp(const void *a, const void *b)
{
    const struct watch_seen *x = a, *y = b;
    if (x->owner != y->owner)
        return (uintptr_t)x->owner < (uintptr_t)y->owner ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return (x > y) - (x < y);
}

static void seen_free(struct watch_walk *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->items[i].path);
    free(w->items);
}

/* Every registration seen from both sides exactly once. */
static int compare_sides(struct watch_walk *by_path, struct watch_walk *by_owner, char why[CHECK_WHY_BYTES])
{
    if (by_path->count > 0)
        qsort(by_path->items, by_path->count, sizeof *by_path->items, seen_cmp);
    if (by_owner->count > 0)
        qsort(by_owner->items, by_owner->count, sizeof *by_owner->items, seen_cmp);
    for (size_t i = 0; i < by_path->count || i < by_owner->count; i++) {
        const struct watch_seen *a = i < by_path->count ? &by_path->items[i] : NULL;
        const struct watch_seen *b = i < by_owner->count ? &by_owner->items[i] : NULL;
        if (a && i > 0 && seen_cmp(a, a - 1) == 0)
            return fail(why, "watches: %s (kind %d) lists an owner twice", a->path, a->kind);
        if (a == NULL || b == NULL || seen_cmp(a, b) != 0) {
            const struct watch_seen *x = a && (b == NULL || seen_cmp(a, b) < 0) ? a : b;
            return fail(why, "watches: %s (kind %d) is registered for an owner %s", x->path, x->kind,
                        x == a ? "that does not list it" : "that the path's entry does not list");
        }
    }
    return 0;
}

int check_watches(const struct watch_manager *wm, struct watch_owner *const *owners, size_t count,
                  char why[CHECK_WHY_BYTES])
{
    struct watch_walk by_path = {0}, by_owner = {0};
    watch_foreach_path(wm, on_entry, &by_path);
    for (size_t i = 0; i < count; i++)
        owner_add(&by_path, owners[i]);
    int rc = 0;
    if (by_path.bad_entry)
        rc = fail(why, "watches: an entry without owners or of an unknown kind");
    else if (by_path.entries != watch_path_count(wm) || by_path.registrations != watch_count(wm))
        rc = fail(why, "watches: %zu entries holding %zu registrations; counted %zu and %zu", by_path.entries,
                  by_path.registrations, watch_path_count(wm), watch_count(wm));
    if (rc == 0 && by_path.owner_count > 0)
        qsort(by_path.owners, by_path.owner_count, sizeof *by_path.owners, ptr_cmp);
    for (size_t i = 0; rc == 0 && i < by_path.owner_count; i++) {
        if (i > 0 && by_path.owners[i] == by_path.owners[i - 1])
            continue;
        size_t before = by_owner.count;
        by_owner.owner = by_path.owners[i];
        watch_owner_foreach(by_owner.owner, on_owner_path, &by_owner);
        if (by_owner.count - before != by_owner.owner->count)
            rc = fail(why, "watches: an owner lists %zu paths but counts %u", by_owner.count - before,
                      by_owner.owner->count);
    }
    if (rc == 0 && (by_path.nomem || by_owner.nomem))
        rc = fail(why, "watches: out of memory while checking");
    if (rc == 0)
        rc = compare_sides(&by_path, &by_owner, why);
    seen_free(&by_path);
    seen_free(&by_owner);
    free(by_path.owners);
    return rc;
}

/* ------------------------------------------------------------- after apply */

void check_after_apply(struct server *srv, int64_t zxid)
{
#ifdef ZN_CHECK_INVARIANTS
    /* Applies since the last check (one loop thread applies). */
    static size_t unchecked;
    size_t nodes = tree_node_count(srv->tree);
    if (++unchecked < nodes / CHECK_FULL_NODES)
        return;
    unchecked = 0;
    char why[CHECK_WHY_BYTES];
    int rc = check_tree(srv->tree, why);
    if (rc == 0)
        rc = check_prep(srv->prep, tree_last_zxid(srv->tree), why);
    if (rc == 0) {
        struct watch_owner *stack_owners[64];
        struct watch_owner **owners = srv->conn_count <= 64 ? stack_owners : malloc(srv->conn_count * sizeof *owners);
        size_t n = 0;
        for (struct conn *c = srv->conns; owners && c && n < srv->conn_count; c = c->next)
            owners[n++] = &c->watches;
        rc = check_watches(srv->watches, owners, n, why);
        if (owners != stack_owners)
            free(owners);
    }
    if (rc != 0) {
        ZN_ERROR("FATAL: an invariant does not hold after applying zxid=0x%" PRIx64 ": %s", (uint64_t)zxid, why);
        abort();
    }
#else
    (void)srv;
    (void)zxid;
#endif
}
