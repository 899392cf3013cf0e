/*
 * libznode's watch table: which watchers wait on which path, for data,
 * existence or children, with ZooKeeper's one-shot semantics.
 *
 * A hash table keyed by client-relative path; each entry holds three small
 * watcher lists (ZN_WATCHES_DATA, _EXIST, _CHILD).  Which lists an event
 * triggers (as Java's ZKWatchManager.materialize):
 *   NodeCreated, NodeDataChanged   data + exist
 *   NodeChildrenChanged            child
 *   NodeDeleted                    data + exist + child
 * Triggered watchers are removed before any is called, and a (cb, arg) pair
 * present in several triggered lists is called once.  After a reconnect the
 * whole table is re-sent with SetWatches (opcode 101, xid -8).
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "client_internal.h"

#define CLIENT_WATCH_INITIAL_BUCKETS 64

#define ENTRY_OF(l) ZN_HENTRY(l, struct client_watch_entry, link)

static bool entry_has_path(const struct zn_hlink *l, const void *path)
{
    return strcmp(ENTRY_OF(l)->path, path) == 0;
}

static struct client_watch_entry *find(struct client_watch_table *t, const char *path)
{
    struct zn_hlink *l = zn_htable_find(&t->entries, zn_hash_str(path), entry_has_path, path);
    return l ? ENTRY_OF(l) : NULL;
}

static void entry_free(struct client_watch_entry *e)
{
    for (int k = 0; k < 3; k++)
        free(e->list[k]);
    free(e->path);
    free(e);
}

int client_watch_add(struct zn_client *c, int kind, const char *path, zn_watch_cb cb, void *arg)
{
    ZN_ASSERT(kind >= 0 && kind < 3 && cb && path);
    struct client_watch_table *t = &c->watches;
    if (t->entries.nbuckets == 0 && zn_htable_init(&t->entries, CLIENT_WATCH_INITIAL_BUCKETS) != 0)
        return ZN_NOMEMORY;
    struct client_watch_entry *e = find(t, path);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->path = strdup(path))) {
            free(e);
            return ZN_NOMEMORY;
        }
        zn_htable_insert(&t->entries, &e->link, zn_hash_str(path));
    }
    for (int i = 0; i < e->count[kind]; i++)
        if (e->list[kind][i].cb == cb && e->list[kind][i].arg == arg)
            return 0; /* already there: one watcher */
    if (e->count[kind] == e->cap[kind]) {
        int32_t cap = e->cap[kind] ? e->cap[kind] * 2 : 2;
        struct client_watcher *list = realloc(e->list[kind], sizeof *list * (size_t)cap);
        if (!list)
            return ZN_NOMEMORY;
        e->list[kind] = list;
        e->cap[kind] = cap;
    }
    e->list[kind][e->count[kind]++] = (struct client_watcher){cb, arg};
    return 0;
}

/* Moves the watchers of the given kinds out of entry e into out (deduplicated). */
static int take(struct client_watch_entry *e, const bool kinds[3], struct client_watcher **out,
                int32_t *out_count)
{
    int32_t total = 0;
    for (int k = 0; k < 3; k++)
        if (kinds[k])
            total += e->count[k];
    struct client_watcher *list = calloc((size_t)(total ? total : 1), sizeof *list);
    if (!list)
        return ZN_NOMEMORY;
    int32_t n = 0;
    for (int k = 0; k < 3; k++) {
        if (!kinds[k])
            continue;
        for (int i = 0; i < e->count[k]; i++) {
            bool dup = false;
            for (int j = 0; j < n && !dup; j++)
                dup = list[j].cb == e->list[k][i].cb && list[j].arg == e->list[k][i].arg;
            if (!dup)
                list[n++] = e->list[k][i];
        }
        free(e->list[k]);
        e->list[k] = NULL;
        e->count[k] = e->cap[k] = 0;
    }
    *out = list;
    *out_count = n;
    return 0;
}

void client_watch_deliver(struct zn_client *c, int type, int state, const char *path)
{
    struct client_watch_table *t = &c->watches;
    if (!path)
        return;
    struct client_watch_entry *e = find(t, path);
    if (!e) {
        CLIENT_LOG(c, ZN_LOG_DEBUG, "event without watcher type=%d path=%s", type, path);
        return;
    }
    bool kinds[3] = {false, false, false};
    switch (type) {
    case ZN_EVENT_CREATED:
    case ZN_EVENT_CHANGED:
        kinds[ZN_WATCHES_DATA] = kinds[ZN_WATCHES_EXIST] = true;
        break;
    case ZN_EVENT_CHILD:
        kinds[ZN_WATCHES_CHILD] = true;
        break;
    case ZN_EVENT_DELETED:
        kinds[0] = kinds[1] = kinds[2] = true;
        break;
    default:
        return;
    }
    struct client_watcher *list;
    int32_t n;
    if (take(e, kinds, &list, &n) != 0) {
        CLIENT_LOG(c, ZN_LOG_ERROR, "out of memory delivering an event path=%s", path);
        return;
    }
    /* Copy the path: the entry may be freed before the watchers run. */
    char *path_copy = strdup(path);
    if (e->count[0] + e->count[1] + e->count[2] == 0) {
        zn_htable_remove(&t->entries, &e->link);
        entry_free(e);
    }
    for (int32_t i = 0; i < n; i++)
        list[i].cb(c, type, state, path_copy ? path_copy : "", list[i].arg);
    free(path_copy);
    free(list);
}

void client_watch_end_all(struct zn_client *c, int state)
{
    struct client_watch_table t = c->watches;
    memset(&c->watches, 0, sizeof c->watches); /* watchers may register anew; they go to a fresh table */
    struct zn_hiter it;
    zn_hiter_init(&it, &t.entries);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        struct client_watch_entry *e = ENTRY_OF(l);
        bool all[3] = {true, true, true};
        struct client_watcher *list;
        int32_t n;
        if (take(e, all, &list, &n) == 0) {
            for (int32_t i = 0; i < n; i++)
                list[i].cb(c, ZN_EVENT_NONE, state, e->path, list[i].arg);
            free(list);
        }
        entry_free(e);
    }
    zn_htable_free(&t.entries);
}

void client_watch_table_free(struct client_watch_table *t)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->entries);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        entry_free(ENTRY_OF(l));
    zn_htable_free(&t->entries);
}

/* Collects, into vectors of server paths, the entries the iterator gives until the byte
 * budget; *done when it has none left. */
static int set_watches_packet(struct zn_client *c, struct jute_writer *w, struct zn_hiter *it, bool *done)
{
    struct zn_string_vec vec[3];
    int32_t cap[3] = {0, 0, 0};
    memset(vec, 0, sizeof vec);
    size_t bytes = 0;
    int rc = 0;
    while (bytes < ZN_CLIENT_SET_WATCHES_MAX_BYTES && rc == 0) {
        struct zn_hlink *l = zn_hiter_next(it);
        if (l == NULL) {
            *done = true;
            break;
        }
        const struct client_watch_entry *e = ENTRY_OF(l);
        for (int k = 0; k < 3 && rc == 0; k++) {
            if (e->count[k] == 0)
                continue;
            if (vec[k].count == cap[k]) {
                cap[k] = cap[k] ? cap[k] * 2 : 16;
                char **items = realloc(vec[k].items, sizeof *items * (size_t)cap[k]);
                if (!items) {
                    rc = ZN_NOMEMORY;
                    break;
                }
                vec[k].items = items;
            }
            char *server_path = client_server_path(c, e->path);
            if (!server_path) {
                rc = ZN_NOMEMORY;
                break;
            }
            vec[k].items[vec[k].count++] = server_path;
            bytes += strlen(server_path) + 4;
        }
    }
    if (rc == 0 && vec[0].count + vec[1].count + vec[2].count > 0) {
        struct zn_request req;
        memset(&req, 0, sizeof req);
        req.type = ZN_OP_SETWATCHES;
        req.data.len = -1;
        req.acl.count = -1;
        req.relative_zxid = c->last_zxid;
        for (int k = 0; k < 3; k++)
            req.watches[k] = vec[k];
        struct zn_request_header hdr = {ZN_XID_SETWATCHES, ZN_OP_SETWATCHES};
        size_t f = jute_frame_begin(w);
        jute_write_request_header(w, &hdr);
        jute_write_request(w, &req);
        jute_frame_end(w, f);
        rc = w->error ? w->error : 1;
    }
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < vec[k].count; i++)
            free(vec[k].items[i]);
        free(vec[k].items);
    }
    return rc;
}

int client_watch_encode_set_watches(struct zn_client *c, struct jute_writer *w)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &c->watches.entries);
    bool done = false;
    int packets = 0;
    while (!done) {
        int rc = set_watches_packet(c, w, &it, &done);
        if (rc < 0)
            return rc;
        packets += rc;
    }
    return packets;
}
