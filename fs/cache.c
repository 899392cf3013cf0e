/*
 * The mount's node cache: the stat (and, once read, the data) of znodes on
 * which this mount has a data watch armed, so that getattr and read are
 * answered without a ZooKeeper round trip (bench/mount-bench.sh: a warm `cat`
 * was two requests, getattr's exists and read's getData; now none).
 *
 * Invariants:
 *   1. An entry exists only while fs_watch_cb is armed as a data watch on
 *      its path: entries are put only from the reply of a request that set
 *      that watch (exists or getData with fs_watch_cb), and every event
 *      delivered to fs_watch_cb for the path drops the entry.
 *   2. ZooKeeper delivers a watch event before any reply that follows the
 *      change on the same session, so a reply never caches a value older
 *      than one the mount has already been told about (its event dropped the
 *      entry first, the reply then puts the newer value).
 *   3. When watches may be lost or late (the connection dropped, the session
 *      ended) every entry goes: a reconnect's SetWatches would deliver the
 *      events, but until then the cache would answer with what it had.
 * The stat is what the mount shows as attributes (size, times, inode) and is
 * exactly what a data watch covers; child counts are not served from here.
 *   4. While the mount has a write in flight that no FUSE reply waits for
 *      (release stores a deferred truncate and deletes ephemeral files after
 *      answering the kernel), the path is held: not served, not cached, so
 *      the next read is ordered after the write on the connection and sees it.
 *   5. A directory's listing is armed through its entry: the reply of a
 *      getChildren2 that set fs_watch_cb as a child watch marks the entry
 *      that was there (fs_cache_mark_listing), and the mark lives exactly as
 *      long as the entry, so whatever drops the entry (an event, a change by
 *      this mount, a hold, a lost connection) disarms the listing too
 *      (node_dir.c has the listing's side).
 * Limits: FS_CACHE_MAX_ENTRIES and FS_CACHE_MAX_BYTES of data; past them new
 * values are simply not cached (the read is answered from the server).
 */
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "znodefs.h"

/* The table's first size; it grows with the entries (FS_CACHE_MAX_ENTRIES). */
#define FS_CACHE_BUCKETS 4096

struct fs_cache_entry {
    struct zn_hlink link; /* in cache.entries, by path */
    char *path;
    struct zn_stat stat;
    bool have_data;
    uint8_t *data;
    int32_t data_len;
    uint64_t listing_id; /* the armed listing of the node (invariant 5), 0 if none */
};

/* A path with writes in flight (invariant 4). */
struct fs_cache_hold {
    struct fs_cache_hold *next;
    char *path;
    int count;
};

static struct {
    struct zn_htable entries; /* set up on first use; nbuckets 0 before */
    size_t data_bytes;
    struct fs_cache_hold *holds;
    size_t hold_count;
    bool holds_overflowed; /* a hold could not be recorded: serve nothing until they drain */
} cache;

static struct fs_cache_hold *find_hold(const char *path)
{
    for (struct fs_cache_hold *h = cache.holds; h; h = h->next)
        if (strcmp(h->path, path) == 0)
            return h;
    return NULL;
}

static bool held(const char *path)
{
    return cache.holds_overflowed || (cache.holds && find_hold(path));
}

void fs_cache_hold(const char *path)
{
    fs_cache_drop(path);
    struct fs_cache_hold *h = find_hold(path);
    if (h) {
        h->count++;
        return;
    }
    if (cache.hold_count >= FS_CACHE_MAX_HOLDS || !(h = calloc(1, sizeof *h)) ||
        !(h->path = strdup(path))) {
        free(h);
        cache.holds_overflowed = true;
        return;
    }
    h->count = 1;
    h->next = cache.holds;
    cache.holds = h;
    cache.hold_count++;
}

void fs_cache_unhold(const char *path)
{
    for (struct fs_cache_hold **link = &cache.holds; *link; link = &(*link)->next) {
        struct fs_cache_hold *h = *link;
        if (strcmp(h->path, path) != 0)
            continue;
        if (--h->count == 0) {
            *link = h->next;
            free(h->path);
            free(h);
            cache.hold_count--;
        }
        break;
    }
    if (!cache.holds)
        cache.holds_overflowed = false;
}

static bool entry_has_path(const struct zn_hlink *l, const void *path)
{
    return strcmp(ZN_HENTRY(l, const struct fs_cache_entry, link)->path, path) == 0;
}

static struct fs_cache_entry *find(const char *path)
{
    struct zn_hlink *l = zn_htable_find(&cache.entries, zn_hash_str(path), entry_has_path, path);
    return l ? ZN_HENTRY(l, struct fs_cache_entry, link) : NULL;
}

static void entry_free(struct fs_cache_entry *e)
{
    zn_htable_remove(&cache.entries, &e->link);
    if (e->have_data && e->data_len > 0)
        cache.data_bytes -= (size_t)e->data_len;
    free(e->data);
    free(e->path);
    free(e);
}

static const struct fs_cache_entry *fs_cache_get(const char *path)
{
    return held(path) ? NULL : find(path);
}

bool fs_cache_stat(const char *path, struct zn_stat *stat)
{
    const struct fs_cache_entry *e = fs_cache_get(path);
    if (!e)
        return false;
    *stat = e->stat;
    return true;
}

bool fs_cache_too_big(const char *path)
{
    struct zn_stat st;
    return fs_cache_stat(path, &st) && st.data_length > FS_MAX_DATA_BYTES;
}

bool fs_cache_data(const char *path, const uint8_t **data, int32_t *data_len, struct zn_stat *stat)
{
    const struct fs_cache_entry *e = fs_cache_get(path);
    if (!e || !e->have_data)
        return false;
    *data = e->data;
    *data_len = e->data_len;
    if (stat)
        *stat = e->stat;
    return true;
}

/* The entry for path, made if missing; NULL when over the limits or out of memory. */
static struct fs_cache_entry *entry_for(const char *path)
{
    if (held(path))
        return NULL;
    struct fs_cache_entry *found = find(path);
    if (found)
        return found;
    if (cache.entries.nbuckets == 0 && zn_htable_init(&cache.entries, FS_CACHE_BUCKETS) != 0)
        return NULL;
    if (zn_htable_count(&cache.entries) >= FS_CACHE_MAX_ENTRIES)
        return NULL;
    struct fs_cache_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return NULL;
    }
    zn_htable_insert(&cache.entries, &e->link, zn_hash_str(path));
    return e;
}

void fs_cache_put_stat(const char *path, const struct zn_stat *stat)
{
    ZN_ASSERT(path && stat);
    struct fs_cache_entry *e = entry_for(path);
    if (!e)
        return;
    /* The data kept is of this stat's version, or it goes. */
    if (e->have_data && e->stat.mzxid != stat->mzxid) {
        if (e->data_len > 0)
            cache.data_bytes -= (size_t)e->data_len;
        free(e->data);
        e->data = NULL;
        e->data_len = 0;
        e->have_data = false;
    }
    e->stat = *stat;
}

void fs_cache_put_data(const char *path, const uint8_t *data, int32_t data_len, const struct zn_stat *stat)
{
    ZN_ASSERT(path && stat);
    int32_t len = data_len > 0 ? data_len : 0;
    if (cache.data_bytes + (size_t)len > FS_CACHE_MAX_BYTES) {
        fs_cache_put_stat(path, stat);
        return;
    }
    uint8_t *copy = NULL;
    if (len > 0) {
        if (!(copy = malloc((size_t)len)))
            return;
        memcpy(copy, data, (size_t)len);
    }
    struct fs_cache_entry *e = entry_for(path);
    if (!e) {
        free(copy);
        return;
    }
    if (e->have_data && e->data_len > 0)
        cache.data_bytes -= (size_t)e->data_len;
    free(e->data);
    e->data = copy;
    e->data_len = len;
    e->have_data = true;
    e->stat = *stat;
    cache.data_bytes += (size_t)len;
}

void fs_cache_drop(const char *path)
{
    struct fs_cache_entry *e = find(path);
    if (e)
        entry_free(e);
}

void fs_cache_drop_all(void)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &cache.entries);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        entry_free(ZN_HENTRY(l, struct fs_cache_entry, link)); /* removes it */
    ZN_ASSERT(zn_htable_count(&cache.entries) == 0 && cache.data_bytes == 0);
}

bool fs_cache_mark_listing(const char *path, uint64_t id)
{
    struct fs_cache_entry *e = held(path) ? NULL : find(path);
    if (e)
        e->listing_id = id;
    return e != NULL;
}

bool fs_cache_listing_armed(const char *path, uint64_t id)
{
    const struct fs_cache_entry *e = id ? fs_cache_get(path) : NULL;
    return e && e->listing_id == id;
}

static void watch_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    (void)c;
    char *path = arg;
    if (r->rc == 0 && r->stat)
        fs_cache_put_stat(path, r->stat); /* the exists armed fs_watch_cb */
    free(path);
}

int fs_cache_watch(struct zn_client *c, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = zn_exists(c, path, fs_watch_cb, NULL, watch_done, copy);
    if (rc)
        free(copy);
    return rc;
}
