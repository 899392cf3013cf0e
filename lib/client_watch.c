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

static uint64_t hash_path(const char *path)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct client_watch_entry **find_slot(struct client_watch_table *t, const char *path)
{
    if (t->bucket_count == 0)
        return NULL;
    struct client_watch_entry **slot = &t->buckets[hash_path(path) & (t->bucket_count - 1)];
    while (*slot && strcmp((*slot)->path, path) != 0)
        slot = &(*slot)->next;
    return slot;
}

static int grow(struct client_watch_table *t)
{
    size_t count = t->bucket_count ? t->bucket_count * 2 : 64;
    struct client_watch_entry **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return ZN_NOMEMORY;
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct client_watch_entry *e = t->buckets[i];
        while (e) {
            struct client_watch_entry *next = e->next;
            size_t b = hash_path(e->path) & (count - 1);
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->bucket_count = count;
    return 0;
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
    if (t->entry_count >= t->bucket_count && grow(t) != 0)
        return ZN_NOMEMORY;
    struct client_watch_entry **slot = find_slot(t, path);
    struct client_watch_entry *e = *slot;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->path = strdup(path))) {
            free(e);
            return ZN_NOMEMORY;
        }
        *slot = e;
        t->entry_count++;
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
    struct client_watch_entry **slot = find_slot(t, path);
    if (!slot || !*slot) {
        CLIENT_LOG(c, ZN_LOG_DEBUG, "event without watcher type=%d path=%s", type, path);
        return;
    }
    struct client_watch_entry *e = *slot;
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
        *slot = e->next;
        t->entry_count--;
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
    for (size_t b = 0; b < t.bucket_count; b++) {
        struct client_watch_entry *e = t.buckets[b];
        while (e) {
            struct client_watch_entry *next = e->next;
            bool all[3] = {true, true, true};
            struct client_watcher *list;
            int32_t n;
            if (take(e, all, &list, &n) == 0) {
                for (int32_t i = 0; i < n; i++)
                    list[i].cb(c, ZN_EVENT_NONE, state, e->path, list[i].arg);
                free(list);
            }
            entry_free(e);
            e = next;
        }
    }
    free(t.buckets);
}

void client_watch_table_free(struct client_watch_table *t)
{
    for (size_t b = 0; b < t->bucket_count; b++) {
        struct client_watch_entry *e = t->buckets[b];
        while (e) {
            struct client_watch_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

/* Collects, into vectors of server paths, the entries starting at *cursor until the byte budget. */
static int set_watches_packet(struct zn_client *c, struct jute_writer *w, size_t *bucket,
                              struct client_watch_entry **cursor)
{
    struct client_watch_table *t = &c->watches;
    struct zn_string_vec vec[3];
    int32_t cap[3] = {0, 0, 0};
    memset(vec, 0, sizeof vec);
    size_t bytes = 0;
    int rc = 0;
    while (*bucket < t->bucket_count && bytes < ZN_CLIENT_SET_WATCHES_MAX_BYTES && rc == 0) {
        struct client_watch_entry *e = *cursor ? *cursor : t->buckets[*bucket];
        if (!e) {
            (*bucket)++;
            *cursor = NULL;
            continue;
        }
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
        *cursor = e->next;
        if (!*cursor)
            (*bucket)++;
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
    size_t bucket = 0;
    struct client_watch_entry *cursor = NULL;
    int packets = 0;
    while (bucket < c->watches.bucket_count) {
        int rc = set_watches_packet(c, w, &bucket, &cursor);
        if (rc < 0)
            return rc;
        packets += rc;
    }
    return packets;
}
