/*
 * The one hash table of znodefs and its one hash function.
 *
 * Intrusive and chained: an entry embeds a `struct zn_hlink` (its chain link
 * and its hash) and the table never allocates or frees entries; a lookup
 * takes the key's hash, the key and a comparison, and returns the link
 * (container_of gives the entry back: ZN_HENTRY).
 *
 * Growth is incremental.  When the entries outnumber the buckets (times the
 * table's load, 1 unless zn_htable_set_load says otherwise) the table
 * allocates twice as many and from then on every insert moves the chains of
 * a few old buckets (ZN_HTABLE_MOVE_PER_INSERT) into the new array; until
 * the old array is empty, lookups and removals look in both.  A one-shot
 * rehash of the server's path index walks every node (~1 s of cache misses
 * at 10M nodes) inside one write; this spreads that walk over the next
 * inserts, as many as the old size, so the move always ends before the next
 * growth is due.  Bucket counts are powers of two, calloc'd, so a large array
 * costs its pages as the moves touch them.
 *
 * Insert never fails: when the larger array cannot be allocated the table
 * keeps its size (chains get longer) and tries again at a later insert.
 * zn_htable_reserve sizes the table ahead (for a load whose count is known)
 * and is the only call that reports ZN_NOMEMORY.
 *
 * Removal never moves buckets, so an iterator survives the removal of the
 * entry it just returned; an insert during an iteration is not allowed (it
 * may move entries behind the cursor).  No shrinking.
 *
 * The hash multiplies 8 bytes at a time (zn_hash_mix) and ends with
 * splitmix64's finaliser (the mix alone leaves the low bits, which pick the
 * bucket, poorly spread); stable across runs and processes of one machine, so
 * it is also the tree's digest (whole words are read in host order: members
 * of one ensemble must share a byte order).
 */
#ifndef ZN_HTABLE_H
#define ZN_HTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <endian.h>
#include <string.h>

/* --------------------------------------------------------------- hashing */

static inline uint64_t zn_hash_init(void) { return 0xcbf29ce484222325ull; }

/* One step: 8 bytes per multiply.  A byte per multiply (FNV-1a) made
 * hashing a path the largest single cost of a write's lookups: a set hashes
 * its path five or six times (prep's overlay, the index, the watches). */
static inline uint64_t zn_hash_mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static inline uint64_t zn_load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The r < 8 bytes at p as a little-endian number (0 for none), read with at
 * most two overlapping loads instead of a byte loop: overlapping bytes land
 * on the same bit positions, so OR-ing the loads is exact. */
static inline uint64_t zn_load_tail(const unsigned char *p, size_t r)
{
    if (r >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + r - 4, 4);
        return (uint64_t)le32toh(lo) | (uint64_t)le32toh(hi) << (8 * (r - 4));
    }
    if (r == 0)
        return 0;
    return (uint64_t)p[0] | (uint64_t)p[r / 2] << (8 * (r / 2)) | (uint64_t)p[r - 1] << (8 * (r - 1));
}

/* Continues state over len bytes: whole words in host order, the tail as a
 * little-endian word, then the length (so "ab" and "ab\0" differ).  The
 * tree's digest is built from it, zn_hash_init and zn_hash_final, and is
 * stored in snapshots: changing any of the three changes the digest format. */
static inline uint64_t zn_hash_more(uint64_t state, const void *bytes, size_t len)
{
    const unsigned char *b = bytes;
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        state = zn_hash_mix(state, zn_load64(b + i));
    state = zn_hash_mix(state, zn_load_tail(b + i, len - i));
    return zn_hash_mix(state, (uint64_t)len);
}

static inline uint64_t zn_hash_final(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static inline uint64_t zn_hash(const void *bytes, size_t len)
{
    return zn_hash_final(zn_hash_more(zn_hash_init(), bytes, len));
}

static inline uint64_t zn_hash_str(const char *s) { return zn_hash(s, strlen(s)); }

static inline uint64_t zn_hash_u64(uint64_t v) { return zn_hash_final(zn_hash_mix(zn_hash_init(), v)); }

/* ----------------------------------------------------------------- table */

struct zn_hlink {
    struct zn_hlink *next;
    uint64_t hash;
};

#define ZN_HENTRY(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

struct zn_htable {
    struct zn_hlink **buckets; /* inserts go here */
    size_t nbuckets;           /* power of two */
    struct zn_hlink **old;     /* being emptied into buckets, or NULL */
    size_t nold;
    size_t moved;              /* old[0..moved) are empty */
    size_t count;
    size_t load;               /* most entries per bucket before growth; 0 means 1 */
};

/* Old buckets moved per insert while growing: at least 1 keeps the move
 * ahead of the next growth; a few more end it sooner. */
#define ZN_HTABLE_MOVE_PER_INSERT 4

/* An empty table of `min_buckets` (rounded up to a power of two, at least
 * 8); 0 or ZN_NOMEMORY.  A zeroed table that was never set up may be
 * searched, counted and iterated (it is empty); inserts need one set up. */
int zn_htable_init(struct zn_htable *t, size_t min_buckets);
/* Lets the table hold up to `load` entries per bucket on average before it
 * grows (1 by default): fewer buckets (8 bytes each) for longer chains.
 * The tree's path index uses 2 (see daemon/model/tree.c).  Call it on a
 * table that is set up. */
void zn_htable_set_load(struct zn_htable *t, size_t load);
/* Frees the bucket arrays, not the entries (remove or iterate them first);
 * the table must be set up again before its next use. */
void zn_htable_free(struct zn_htable *t);

/* Room for `count` entries without growth; 0 or ZN_NOMEMORY. */
int zn_htable_reserve(struct zn_htable *t, size_t count);

/* Links `l` with `hash`; duplicates are the caller's business. */
void zn_htable_insert(struct zn_htable *t, struct zn_hlink *l, uint64_t hash);
/* Unlinks `l`, which must be in the table. */
void zn_htable_remove(struct zn_htable *t, struct zn_hlink *l);
/* Unlinks every entry at once without reading them (the caller frees
 * them, or already has: freeing while iterating, then clearing, is fine). */
void zn_htable_clear(struct zn_htable *t);

static inline size_t zn_htable_count(const struct zn_htable *t) { return t->count; }

/* The chain a hash is in, when it is in the old array (NULL otherwise). */
static inline struct zn_hlink *zn_htable_old_chain_(const struct zn_htable *t, uint64_t hash)
{
    if (t->old == NULL)
        return NULL;
    size_t i = hash & (t->nold - 1);
    return i >= t->moved ? t->old[i] : NULL;
}

/* A key of bytes, for the many entries that keep theirs as bytes and a
 * length: their eq ends in zn_hkey_is(key, their bytes, their length). */
struct zn_hkey {
    const void *bytes;
    size_t len;
};

static inline bool zn_hkey_is(const void *key, const void *bytes, size_t len)
{
    const struct zn_hkey *k = key;
    return k->len == len && memcmp(k->bytes, bytes, len) == 0;
}

/* The first entry with `hash` for which eq(link, key) holds, or NULL.
 * Inline so that a constant `eq` is inlined too. */
static inline struct zn_hlink *zn_htable_find(const struct zn_htable *t, uint64_t hash,
                                              bool (*eq)(const struct zn_hlink *, const void *),
                                              const void *key)
{
    if (t->count == 0)
        return NULL; /* also a zeroed table that was never set up */
    for (struct zn_hlink *l = t->buckets[hash & (t->nbuckets - 1)]; l; l = l->next)
        if (l->hash == hash && eq(l, key))
            return l;
    for (struct zn_hlink *l = zn_htable_old_chain_(t, hash); l; l = l->next)
        if (l->hash == hash && eq(l, key))
            return l;
    return NULL;
}

/* For a prefetch: the address of the bucket an insert of `hash` writes. */
static inline const void *zn_htable_slot(const struct zn_htable *t, uint64_t hash)
{
    return &t->buckets[hash & (t->nbuckets - 1)];
}

/* Iteration in no particular order:
 *   struct zn_hiter it; zn_hiter_init(&it, t);
 *   for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) ...
 * The entry just returned may be removed; nothing may be inserted. */
struct zn_hiter {
    const struct zn_htable *t;
    struct zn_hlink *next; /* the next entry of the current chain */
    size_t bucket;         /* the next bucket to start: old ones first, then new */
};

void zn_hiter_init(struct zn_hiter *it, const struct zn_htable *t);
struct zn_hlink *zn_hiter_next(struct zn_hiter *it);

#endif
