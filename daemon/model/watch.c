/*
 * Watch manager implementation.  Each (kind, path) with watchers is an entry
 * in a hash table (lib/htable); an entry holds an array of slots {owner, index of
 * the back-link in the owner}, and an owner holds an array of registrations
 * {entry, index of the slot in the entry}.  Removal from either side is a
 * swap-remove that fixes the moved element's back-link, so firing a watch
 * or closing a connection never scans other clients' watches.  Persistent
 * kinds use the same entries; they are just not removed when they fire.
 *
 * A fired one-shot entry is kept as a spare, with its slot array (the last
 * WATCH_SPARE_ENTRIES of them): its clients re-arm right after the event,
 * and the new entry of the same kind and path takes it back instead of
 * allocating an entry and growing its slots from 4 again.  Only the same (kind, path) takes a spare, so a large slot array
 * never moves to a path few clients watch.
 */
#include "watch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "htable.h"
#include "znode/errors.h"
#include "znode/proto.h"

/* Fired entries kept for the re-arming clients (see above). */
#define WATCH_SPARE_ENTRIES 8

struct watch_slot {
    struct watch_owner *owner;
    uint32_t reg_index;
};

struct watch_entry {
    struct zn_hlink link; /* in watch_manager.entries */
    struct watch_slot *slots;
    uint32_t count;
    uint32_t cap;
    enum watch_kind kind;
    uint32_t path_cap; /* bytes allocated for path (in what was padding: no byte more per entry) */
    char path[];
};

struct watch_registration {
    struct watch_entry *entry;
    uint32_t slot_index;
};

struct watch_manager {
    struct zn_htable entries; /* struct watch_entry by (kind, path) */
    size_t registration_count;
    uint64_t event_mark; /* increases per trigger; see watch_owner.last_event_mark */
    size_t recursive_count; /* WATCH_RECURSIVE registrations: 0 skips the ancestor walk */
    watch_notify_fn notify;
    void *ctx;
    struct watch_entry *spares[WATCH_SPARE_ENTRIES]; /* out of the table, count 0; or NULL */
    uint32_t spare_next; /* the slot the next spare takes (the oldest) */
};

#define WATCH_INITIAL_BUCKETS 64

static uint64_t hash_path(enum watch_kind kind, const char *path)
{
    return zn_hash_str(path) ^ (uint64_t)kind;
}

struct entry_key {
    enum watch_kind kind;
    const char *path;
};

static bool entry_is(const struct zn_hlink *l, const void *key)
{
    const struct watch_entry *e = ZN_HENTRY(l, const struct watch_entry, link);
    const struct entry_key *k = key;
    return e->kind == k->kind && strcmp(e->path, k->path) == 0;
}

static struct watch_entry *find_entry(const struct watch_manager *wm, enum watch_kind kind, const char *path)
{
    struct entry_key key = {kind, path};
    struct zn_hlink *l = zn_htable_find(&wm->entries, hash_path(kind, path), entry_is, &key);
    return l ? ZN_HENTRY(l, struct watch_entry, link) : NULL;
}

struct watch_manager *watch_manager_new(watch_notify_fn notify, void *ctx)
{
    struct watch_manager *wm = calloc(1, sizeof *wm);
    if (!wm)
        return NULL;
    if (zn_htable_init(&wm->entries, WATCH_INITIAL_BUCKETS) != 0) {
        free(wm);
        return NULL;
    }
    wm->notify = notify;
    wm->ctx = ctx;
    return wm;
}

void watch_manager_free(struct watch_manager *wm)
{
    if (!wm)
        return;
    struct zn_hiter it;
    zn_hiter_init(&it, &wm->entries);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        struct watch_entry *e = ZN_HENTRY(l, struct watch_entry, link);
        free(e->slots);
        free(e);
    }
    for (uint32_t i = 0; i < WATCH_SPARE_ENTRIES; i++) {
        if (wm->spares[i]) {
            free(wm->spares[i]->slots);
            free(wm->spares[i]);
        }
    }
    zn_htable_free(&wm->entries);
    free(wm);
}

void watch_owner_init(struct watch_owner *owner) { memset(owner, 0, sizeof *owner); }

static int grow(void **array, uint32_t *cap, size_t elem_size)
{
    uint32_t n = *cap ? *cap * 2 : 4;
    void *p = realloc(*array, (size_t)n * elem_size);
    if (!p)
        return ZN_NOMEMORY;
    *array = p;
    *cap = n;
    return 0;
}

static void entry_free(struct watch_entry *e)
{
    free(e->slots);
    free(e);
}

/* An entry out of the table (and empty) becomes a spare, in place of the
 * oldest one. */
static void entry_release(struct watch_manager *wm, struct watch_entry *e)
{
    e->count = 0;
    struct watch_entry **slot = &wm->spares[wm->spare_next];
    wm->spare_next = (wm->spare_next + 1) % WATCH_SPARE_ENTRIES;
    if (*slot)
        entry_free(*slot);
    *slot = e;
}

/* A new entry for (kind, path), len bytes: the spare of the same kind and
 * path if there is one (path already in place), else a new one. */
static struct watch_entry *entry_obtain(struct watch_manager *wm, enum watch_kind kind, const char *path,
                                        size_t len)
{
    for (uint32_t i = 0; i < WATCH_SPARE_ENTRIES; i++) {
        struct watch_entry *e = wm->spares[i];
        if (e && e->kind == kind && e->path_cap == len + 1 && memcmp(e->path, path, len) == 0) {
            wm->spares[i] = NULL;
            return e;
        }
    }
    if (len >= UINT32_MAX)
        return NULL;
    struct watch_entry *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->kind = kind;
    e->path_cap = (uint32_t)len + 1;
    memcpy(e->path, path, len + 1);
    return e;
}

static void unlink_entry(struct watch_manager *wm, struct watch_entry *e)
{
    zn_htable_remove(&wm->entries, &e->link);
    entry_release(wm, e);
}

/* Removes slot i of e (swap-remove, fixing the moved slot's back-link). */
static void entry_remove_slot(struct watch_entry *e, uint32_t i)
{
    ZN_ASSERT(i < e->count);
    e->count--;
    if (i != e->count) {
        e->slots[i] = e->slots[e->count];
        e->slots[i].owner->regs[e->slots[i].reg_index].slot_index = i;
    }
}

/* Removes registration i of owner (swap-remove, fixing the moved one's back-link). */
static void owner_remove_reg(struct watch_owner *owner, uint32_t i)
{
    ZN_ASSERT(i < owner->count);
    owner->count--;
    if (i != owner->count) {
        owner->regs[i] = owner->regs[owner->count];
        struct watch_registration *moved = &owner->regs[i];
        moved->entry->slots[moved->slot_index].reg_index = i;
    }
}

/* Is owner among e's watchers?  The shorter of the two lists is searched:
 * 50 clients re-arming one path would scan each other's slots otherwise
 * (quadratic in the watchers; 10k re-arming in a watch storm, 50M steps),
 * and one client's many watches would be scanned for a path few watch. */
static bool registered(const struct watch_entry *e, const struct watch_owner *owner)
{
    if (owner->count <= e->count) {
        for (uint32_t i = 0; i < owner->count; i++)
            if (owner->regs[i].entry == e)
                return true;
        return false;
    }
    for (uint32_t i = 0; i < e->count; i++)
        if (e->slots[i].owner == owner)
            return true;
    return false;
}

int watch_add(struct watch_manager *wm, enum watch_kind kind, const char *path,
              struct watch_owner *owner)
{
    ZN_ASSERT(kind < WATCH_KINDS);
    struct watch_entry *e = find_entry(wm, kind, path);
    if (e) {
        if (registered(e, owner))
            return 0;
    } else {
        e = entry_obtain(wm, kind, path, strlen(path));
        if (!e)
            return ZN_NOMEMORY;
        zn_htable_insert(&wm->entries, &e->link, hash_path(kind, path));
    }
    if (e->count == e->cap && grow((void **)&e->slots, &e->cap, sizeof *e->slots) != 0)
        goto nomem;
    if (owner->count == owner->cap &&
        grow((void **)&owner->regs, &owner->cap, sizeof *owner->regs) != 0)
        goto nomem;
    e->slots[e->count] = (struct watch_slot){owner, owner->count};
    owner->regs[owner->count] = (struct watch_registration){e, e->count};
    e->count++;
    owner->count++;
    wm->registration_count++;
    if (kind == WATCH_RECURSIVE)
        wm->recursive_count++;
    return 0;
nomem:
    if (e->count == 0)
        unlink_entry(wm, e);
    return ZN_NOMEMORY;
}

int32_t watch_kind_table(enum watch_kind kind)
{
    return kind == WATCH_CHILD || kind == WATCH_PERSISTENT_CHILD ? ZN_WATCHER_CHILDREN : ZN_WATCHER_DATA;
}

/* Notifies owner of the current event unless it was already told of it. */
static bool notify_once(struct watch_manager *wm, struct watch_owner *owner, const struct watch_event *ev)
{
    if (owner->last_event_mark == ev->id)
        return false;
    owner->last_event_mark = ev->id;
    wm->notify(wm->ctx, owner, ev);
    return true;
}

/* Fires the one-shot watches of (kind, path), removing them. */
static size_t fire_once(struct watch_manager *wm, enum watch_kind kind, const struct watch_event *ev)
{
    const char *path = ev->path;
    struct watch_entry *e = find_entry(wm, kind, path);
    if (!e)
        return 0;
    /* Detach the entry first: a notify callback may register new watches on
     * the same path (clients re-arm), and those belong to the next event. */
    zn_htable_remove(&wm->entries, &e->link);
    size_t fired = 0;
    for (uint32_t i = 0; i < e->count; i++) {
        struct watch_slot *s = &e->slots[i];
        owner_remove_reg(s->owner, s->reg_index);
    }
    wm->registration_count -= e->count;
    for (uint32_t i = 0; i < e->count; i++)
        fired += notify_once(wm, e->slots[i].owner, ev);
    entry_release(wm, e);
    return fired;
}

/* Notifies the persistent watches of (kind, watched_path) of an event on
 * event_path; they stay.  The notify callback only queues output, so the
 * entry cannot change under the loop. */
static size_t fire_persistent(struct watch_manager *wm, enum watch_kind kind, const char *watched_path,
                              const struct watch_event *ev)
{
    const struct watch_entry *e = find_entry(wm, kind, watched_path);
    if (!e)
        return 0;
    size_t fired = 0;
    for (uint32_t i = 0; i < e->count; i++)
        fired += notify_once(wm, e->slots[i].owner, ev);
    return fired;
}

/* Recursive watches on path and each of its ancestors, "/" included. */
static size_t fire_recursive(struct watch_manager *wm, const struct watch_event *ev)
{
    if (wm->recursive_count == 0)
        return 0;
    const char *path = ev->path;
    size_t len = strlen(path);
    char *prefix = malloc(len + 1);
    if (!prefix)
        return 0; /* out of memory: the events are lost, as a dropped connection would lose them */
    memcpy(prefix, path, len + 1);
    size_t fired = 0;
    for (;;) {
        fired += fire_persistent(wm, WATCH_RECURSIVE, prefix, ev);
        if (strcmp(prefix, "/") == 0)
            break;
        char *slash = strrchr(prefix, '/');
        if (!slash)
            break;
        if (slash == prefix)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    free(prefix);
    return fired;
}

size_t watch_trigger(struct watch_manager *wm, int32_t event_type, const char *path)
{
    const struct watch_event ev = {event_type, path, ++wm->event_mark};
    size_t n = 0;
    switch (event_type) {
    case ZN_EVENT_CREATED:
    case ZN_EVENT_CHANGED:
        n += fire_once(wm, WATCH_DATA, &ev);
        n += fire_persistent(wm, WATCH_PERSISTENT_DATA, path, &ev);
        return n + fire_recursive(wm, &ev);
    case ZN_EVENT_DELETED:
        /* A client watching in both tables is told once, as ZooKeeper
         * suppresses the child watcher already notified; the client library
         * delivers the one event to all its watchers of the path. */
        n += fire_once(wm, WATCH_DATA, &ev);
        n += fire_persistent(wm, WATCH_PERSISTENT_DATA, path, &ev);
        n += fire_recursive(wm, &ev);
        n += fire_once(wm, WATCH_CHILD, &ev);
        return n + fire_persistent(wm, WATCH_PERSISTENT_CHILD, path, &ev);
    case ZN_EVENT_CHILD:
        n += fire_once(wm, WATCH_CHILD, &ev);
        return n + fire_persistent(wm, WATCH_PERSISTENT_CHILD, path, &ev);
    default:
        return 0;
    }
}

static bool kind_in_type(enum watch_kind kind, int32_t watcher_type)
{
    return watcher_type == ZN_WATCHER_ANY || watch_kind_table(kind) == watcher_type;
}

size_t watch_remove(struct watch_manager *wm, const char *path, int32_t watcher_type,
                    struct watch_owner *owner)
{
    size_t removed = 0;
    for (uint32_t i = 0; i < owner->count;) {
        struct watch_registration r = owner->regs[i];
        if (!kind_in_type(r.entry->kind, watcher_type) || strcmp(r.entry->path, path) != 0) {
            i++;
            continue;
        }
        if (r.entry->kind == WATCH_RECURSIVE)
            wm->recursive_count--;
        owner_remove_reg(owner, i); /* moves the last registration into i */
        entry_remove_slot(r.entry, r.slot_index);
        wm->registration_count--;
        if (r.entry->count == 0)
            unlink_entry(wm, r.entry);
        removed++;
    }
    return removed;
}

bool watch_contains(const struct watch_manager *wm, const char *path, int32_t watcher_type,
                    const struct watch_owner *owner)
{
    (void)wm;
    for (uint32_t i = 0; i < owner->count; i++) {
        const struct watch_entry *e = owner->regs[i].entry;
        if (kind_in_type(e->kind, watcher_type) && strcmp(e->path, path) == 0)
            return true;
    }
    return false;
}

void watch_remove_owner(struct watch_manager *wm, struct watch_owner *owner)
{
    while (owner->count > 0) {
        struct watch_registration r = owner->regs[owner->count - 1];
        owner->count--;
        entry_remove_slot(r.entry, r.slot_index);
        wm->registration_count--;
        if (r.entry->kind == WATCH_RECURSIVE)
            wm->recursive_count--;
        if (r.entry->count == 0)
            unlink_entry(wm, r.entry);
    }
    free(owner->regs);
    owner->regs = NULL;
    owner->cap = 0;
}

size_t watch_count(const struct watch_manager *wm) { return wm->registration_count; }
size_t watch_path_count(const struct watch_manager *wm) { return zn_htable_count(&wm->entries); }

void watch_owner_foreach(const struct watch_owner *owner,
                         void (*fn)(void *ctx, enum watch_kind kind, const char *path), void *ctx)
{
    for (uint32_t i = 0; i < owner->count; i++)
        fn(ctx, owner->regs[i].entry->kind, owner->regs[i].entry->path);
}

void watch_foreach_path(const struct watch_manager *wm,
                        void (*fn)(void *ctx, enum watch_kind kind, const char *path,
                                   struct watch_owner *const *owners, size_t count),
                        void *ctx)
{
    enum { BATCH = 64 };
    struct zn_hiter it;
    zn_hiter_init(&it, &wm->entries);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct watch_entry *e = ZN_HENTRY(l, const struct watch_entry, link);
        struct watch_owner *owners[BATCH];
        for (uint32_t i = 0; i < e->count; i += BATCH) {
            size_t n = e->count - i < BATCH ? e->count - i : BATCH;
            for (size_t j = 0; j < n; j++)
                owners[j] = e->slots[i + j].owner;
            fn(ctx, e->kind, e->path, owners, n);
        }
    }
}
