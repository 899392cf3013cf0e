/*
 * Watch manager implementation.  Each (kind, path) with watchers is an entry
 * in a hash table (lib/htable); an entry holds an array of slots {owner, index of
 * the back-link in the owner}, and an owner holds an array of registrations
 * {entry, index of the slot in the entry}.  Removal from either side is a
 * swap-remove that fixes the moved element's back-link, so firing a watch
 * or closing a connection never scans other clients' watches.  Persistent
 * kinds use the same entries; they are just not removed when they fire.
 */
#include "watch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "htable.h"
#include "znode/errors.h"
#include "znode/proto.h"

struct watch_slot {
    struct watch_owner *owner;
    uint32_t reg_index;
};

struct watch_entry {
    struct zn_hlink link; /* in watch_manager.entries */
    enum watch_kind kind;
    struct watch_slot *slots;
    uint32_t count;
    uint32_t cap;
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

static void unlink_entry(struct watch_manager *wm, struct watch_entry *e)
{
    zn_htable_remove(&wm->entries, &e->link);
    free(e->slots);
    free(e);
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

int watch_add(struct watch_manager *wm, enum watch_kind kind, const char *path,
              struct watch_owner *owner)
{
    ZN_ASSERT(kind < WATCH_KINDS);
    struct watch_entry *e = find_entry(wm, kind, path);
    if (e) {
        for (uint32_t i = 0; i < e->count; i++)
            if (e->slots[i].owner == owner)
                return 0;
    } else {
        size_t len = strlen(path);
        e = calloc(1, sizeof *e + len + 1);
        if (!e)
            return ZN_NOMEMORY;
        memcpy(e->path, path, len + 1);
        e->kind = kind;
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
static bool notify_once(struct watch_manager *wm, struct watch_owner *owner, int32_t event_type,
                        const char *path)
{
    if (owner->last_event_mark == wm->event_mark)
        return false;
    owner->last_event_mark = wm->event_mark;
    wm->notify(wm->ctx, owner, event_type, path);
    return true;
}

/* Fires the one-shot watches of (kind, path), removing them. */
static size_t fire_once(struct watch_manager *wm, enum watch_kind kind, int32_t event_type,
                        const char *path)
{
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
        fired += notify_once(wm, e->slots[i].owner, event_type, path);
    free(e->slots);
    free(e);
    return fired;
}

/* Notifies the persistent watches of (kind, watched_path) of an event on
 * event_path; they stay.  The notify callback only queues output, so the
 * entry cannot change under the loop. */
static size_t fire_persistent(struct watch_manager *wm, enum watch_kind kind, const char *watched_path,
                              int32_t event_type, const char *event_path)
{
    const struct watch_entry *e = find_entry(wm, kind, watched_path);
    if (!e)
        return 0;
    size_t fired = 0;
    for (uint32_t i = 0; i < e->count; i++)
        fired += notify_once(wm, e->slots[i].owner, event_type, event_path);
    return fired;
}

/* Recursive watches on path and each of its ancestors, "/" included. */
static size_t fire_recursive(struct watch_manager *wm, int32_t event_type, const char *path)
{
    if (wm->recursive_count == 0)
        return 0;
    size_t len = strlen(path);
    char *prefix = malloc(len + 1);
    if (!prefix)
        return 0; /* out of memory: the events are lost, as a dropped connection would lose them */
    memcpy(prefix, path, len + 1);
    size_t fired = 0;
    for (;;) {
        fired += fire_persistent(wm, WATCH_RECURSIVE, prefix, event_type, path);
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
    wm->event_mark++;
    size_t n = 0;
    switch (event_type) {
    case ZN_EVENT_CREATED:
    case ZN_EVENT_CHANGED:
        n += fire_once(wm, WATCH_DATA, event_type, path);
        n += fire_persistent(wm, WATCH_PERSISTENT_DATA, path, event_type, path);
        return n + fire_recursive(wm, event_type, path);
    case ZN_EVENT_DELETED:
        /* A client watching in both tables is told once, as ZooKeeper
         * suppresses the child watcher already notified; the client library
         * delivers the one event to all its watchers of the path. */
        n += fire_once(wm, WATCH_DATA, event_type, path);
        n += fire_persistent(wm, WATCH_PERSISTENT_DATA, path, event_type, path);
        n += fire_recursive(wm, event_type, path);
        n += fire_once(wm, WATCH_CHILD, event_type, path);
        return n + fire_persistent(wm, WATCH_PERSISTENT_CHILD, path, event_type, path);
    case ZN_EVENT_CHILD:
        n += fire_once(wm, WATCH_CHILD, event_type, path);
        return n + fire_persistent(wm, WATCH_PERSISTENT_CHILD, path, event_type, path);
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
