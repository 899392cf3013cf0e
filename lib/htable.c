/* The one hash table (see htable.h for how it grows and why). */
#include "htable.h"

#include <stdlib.h>

#include "assert.h"
#include "znode/errors.h"

int zn_htable_init(struct zn_htable *t, size_t min_buckets)
{
    size_t n = 8;
    while (n < min_buckets)
        n *= 2;
    *t = (struct zn_htable){.buckets = calloc(n, sizeof(*t->buckets)), .nbuckets = n};
    if (t->buckets == NULL) {
        t->nbuckets = 0;
        return ZN_NOMEMORY;
    }
    return 0;
}

void zn_htable_set_load(struct zn_htable *t, size_t load) { t->load = load > 1 ? load : 1; }

static size_t load_of(const struct zn_htable *t) { return t->load > 1 ? t->load : 1; }

void zn_htable_free(struct zn_htable *t)
{
    free(t->buckets);
    free(t->old);
    *t = (struct zn_htable){0};
}

/* Moves old bucket t->moved into the new array; frees the old array when it
 * was the last one. */
static void move_one(struct zn_htable *t)
{
    struct zn_hlink *l = t->old[t->moved];
    while (l) {
        struct zn_hlink *next = l->next;
        struct zn_hlink **slot = &t->buckets[l->hash & (t->nbuckets - 1)];
        l->next = *slot;
        *slot = l;
        l = next;
    }
    t->old[t->moved++] = NULL;
    if (t->moved == t->nold) {
        free(t->old);
        t->old = NULL;
        t->nold = t->moved = 0;
    }
}

static void finish_move(struct zn_htable *t)
{
    while (t->old)
        move_one(t);
}

/* Starts a move into `n` buckets (n > nbuckets); ZN_NOMEMORY leaves the
 * table as it was. */
static int start_growth(struct zn_htable *t, size_t n)
{
    struct zn_hlink **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return ZN_NOMEMORY;
    finish_move(t);
    t->old = t->buckets;
    t->nold = t->nbuckets;
    t->moved = 0;
    t->buckets = b;
    t->nbuckets = n;
    return 0;
}

int zn_htable_reserve(struct zn_htable *t, size_t count)
{
    size_t n = t->nbuckets;
    while (n * load_of(t) < count)
        n *= 2;
    if (n > t->nbuckets && start_growth(t, n) != 0)
        return ZN_NOMEMORY;
    /* A reserve precedes a bulk load: pay the move now, not in it. */
    finish_move(t);
    return 0;
}

void zn_htable_insert(struct zn_htable *t, struct zn_hlink *l, uint64_t hash)
{
    if (t->old) {
        for (int i = 0; i < ZN_HTABLE_MOVE_PER_INSERT && t->old; i++)
            move_one(t);
    } else if (t->count + 1 > t->nbuckets * load_of(t)) {
        /* A failed allocation keeps the size; a later insert tries again. */
        (void)start_growth(t, t->nbuckets * 2);
    }
    l->hash = hash;
    struct zn_hlink **slot = &t->buckets[hash & (t->nbuckets - 1)];
    l->next = *slot;
    *slot = l;
    t->count++;
}

static struct zn_hlink **find_link(struct zn_hlink **p, const struct zn_hlink *l)
{
    while (*p && *p != l)
        p = &(*p)->next;
    return *p ? p : NULL;
}

void zn_htable_remove(struct zn_htable *t, struct zn_hlink *l)
{
    struct zn_hlink **p = find_link(&t->buckets[l->hash & (t->nbuckets - 1)], l);
    if (p == NULL && t->old) {
        size_t i = l->hash & (t->nold - 1);
        if (i >= t->moved)
            p = find_link(&t->old[i], l);
    }
    ZN_ASSERT(p != NULL);
    *p = l->next;
    l->next = NULL;
    t->count--;
}

void zn_htable_clear(struct zn_htable *t)
{
    /* The entries may be freed already: drop the old array unread. */
    free(t->old);
    t->old = NULL;
    t->nold = t->moved = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = NULL;
    t->count = 0;
}

void zn_hiter_init(struct zn_hiter *it, const struct zn_htable *t)
{
    *it = (struct zn_hiter){.t = t};
}

struct zn_hlink *zn_hiter_next(struct zn_hiter *it)
{
    const struct zn_htable *t = it->t;
    while (it->next == NULL) {
        size_t i = it->bucket;
        if (i < t->nold)
            it->next = t->old[i];
        else if (i - t->nold < t->nbuckets)
            it->next = t->buckets[i - t->nold];
        else
            return NULL;
        it->bucket++;
    }
    struct zn_hlink *l = it->next;
    it->next = l->next;
    return l;
}
