/*
 * Unit tests of lib/htable.c: the one hash table (insert, lookup, remove,
 * incremental growth under many keys, iteration while a move is under way,
 * removal during iteration, a load above 1) and the one hash function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htable.h"

struct item {
    int key;
    int seen;
    struct zn_hlink link;
};

static bool item_eq(const struct zn_hlink *l, const void *key)
{
    return ZN_HENTRY(l, const struct item, link)->key == *(const int *)key;
}

static uint64_t key_hash(int key) { return zn_hash(&key, sizeof(key)); }

static struct item *find(const struct zn_htable *t, int key)
{
    struct zn_hlink *l = zn_htable_find(t, key_hash(key), item_eq, &key);
    return l ? ZN_HENTRY(l, struct item, link) : NULL;
}

static struct item *make_items(int n)
{
    struct item *items = calloc((size_t)n, sizeof(*items));
    assert_non_null(items);
    for (int i = 0; i < n; i++)
        items[i].key = i;
    return items;
}

/* The byte loop zn_load_tail's overlapping loads replace (the digest was
 * first defined with it). */
static uint64_t tail_by_bytes(const unsigned char *p, size_t r)
{
    uint64_t v = 0;
    for (size_t k = 0; k < r; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void hash_tail_equals_byte_loop(void **state)
{
    (void)state;
    unsigned char buf[24];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(0xa1 + 37 * i);
    for (size_t off = 0; off < 8; off++)
        for (size_t r = 0; r < 8; r++)
            assert_int_equal(zn_load_tail(buf + off, r), tail_by_bytes(buf + off, r));
    /* zn_hash_more: whole words, then the tail, then the length. */
    for (size_t len = 0; len <= 16; len++) {
        uint64_t h = zn_hash_init();
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            h = zn_hash_mix(h, tail_by_bytes(buf + i, 8));
        h = zn_hash_mix(zn_hash_mix(h, tail_by_bytes(buf + i, len - i)), len);
        assert_int_equal(zn_hash_more(zn_hash_init(), buf, len), h);
    }
}

static void hash_chains_and_spreads(void **state)
{
    (void)state;
    assert_int_equal(zn_hash("/a", 2), zn_hash("/a", 2));
    assert_int_not_equal(zn_hash("/a", 2), zn_hash("/b", 2));
    assert_int_equal(zn_hash_str("/a/b"), zn_hash("/a/b", 4));
    assert_int_not_equal(zn_hash("ab", 2), zn_hash("ab\0", 3)); /* the length counts */
    /* Stable across runs (snapshot digests are built from it): "" is the
     * init state mixed with an empty tail and a zero length. */
    assert_int_equal(zn_hash("", 0), zn_hash_final(zn_hash_mix(zn_hash_mix(0xcbf29ce484222325ull, 0), 0)));
    /* The low bits pick the bucket: sequential keys must fill 1024 buckets
     * about evenly (zn_hash_final spreads every input bit into them). */
    int used[1024] = {0};
    for (int i = 0; i < 1024; i++) {
        char path[32];
        int len = snprintf(path, sizeof(path), "/n%07d", i);
        used[zn_hash(path, (size_t)len) & 1023]++;
    }
    int empty = 0;
    for (int i = 0; i < 1024; i++)
        empty += used[i] == 0;
    /* 1024 balls in 1024 bins leave ~377 empty; a clustering hash leaves more. */
    assert_in_range(empty, 300, 450);
}

static void insert_find_remove(void **state)
{
    (void)state;
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 0), 0);
    struct item *items = make_items(3);
    assert_null(find(&t, 1));
    for (int i = 0; i < 3; i++)
        zn_htable_insert(&t, &items[i].link, key_hash(i));
    assert_int_equal(zn_htable_count(&t), 3);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(find(&t, i), &items[i]);
    assert_null(find(&t, 3));
    zn_htable_remove(&t, &items[1].link);
    assert_null(find(&t, 1));
    assert_ptr_equal(find(&t, 0), &items[0]);
    assert_ptr_equal(find(&t, 2), &items[2]);
    assert_int_equal(zn_htable_count(&t), 2);
    zn_htable_clear(&t);
    assert_int_equal(zn_htable_count(&t), 0);
    assert_null(find(&t, 0));
    zn_htable_free(&t);
    free(items);
}

/* Equal hashes (a collision) are told apart by the comparison. */
static bool always_collide_eq(const struct zn_hlink *l, const void *key) { return item_eq(l, key); }

static void colliding_hashes_are_told_apart(void **state)
{
    (void)state;
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 8), 0);
    struct item *items = make_items(100);
    for (int i = 0; i < 100; i++)
        zn_htable_insert(&t, &items[i].link, 42);
    for (int i = 0; i < 100; i++) {
        int key = i;
        struct zn_hlink *l = zn_htable_find(&t, 42, always_collide_eq, &key);
        assert_ptr_equal(l, &items[i].link);
    }
    for (int i = 0; i < 100; i += 2)
        zn_htable_remove(&t, &items[i].link);
    for (int i = 0; i < 100; i++) {
        int key = i;
        struct zn_hlink *l = zn_htable_find(&t, 42, always_collide_eq, &key);
        assert_ptr_equal(l, i % 2 ? &items[i].link : NULL);
    }
    zn_htable_free(&t);
    free(items);
}

/* Every key stays findable at every step while the table doubles from 8 to
 * 256k buckets, with removals mixed in, and moves end before the next
 * growth (never more than twice the entries, never less than half). */
static void grows_incrementally_under_many_keys(void **state)
{
    (void)state;
    enum { N = 200000 };
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 0), 0);
    struct item *items = make_items(N);
    int moves_seen = 0;
    for (int i = 0; i < N; i++) {
        zn_htable_insert(&t, &items[i].link, key_hash(i));
        if (t.old != NULL) {
            moves_seen++;
            /* The lookups must see both arrays: an old key, the newest. */
            assert_ptr_equal(find(&t, i), &items[i]);
            assert_ptr_equal(find(&t, i / 2), &items[i / 2]);
        }
        assert_true(t.count <= t.nbuckets);
        if (i % 3 == 2) { /* remove every third, re-add it at once */
            zn_htable_remove(&t, &items[i - 1].link);
            assert_null(find(&t, i - 1));
            zn_htable_insert(&t, &items[i - 1].link, key_hash(i - 1));
        }
    }
    assert_true(moves_seen > 1000);
    assert_int_equal(zn_htable_count(&t), N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(find(&t, i), &items[i]);
    assert_null(find(&t, N));
    assert_true(t.nbuckets >= N && t.nbuckets <= 2 * (size_t)N + 16);
    for (int i = 0; i < N; i++)
        zn_htable_remove(&t, &items[i].link);
    assert_int_equal(zn_htable_count(&t), 0);
    for (int i = 0; i < N; i += 997)
        assert_null(find(&t, i));
    zn_htable_free(&t);
    free(items);
}

/* Counts each entry the iterator returns; every entry exactly once. */
static int iterate_count(const struct zn_htable *t, struct item *items, int n)
{
    for (int i = 0; i < n; i++)
        items[i].seen = 0;
    struct zn_hiter it;
    zn_hiter_init(&it, t);
    int total = 0;
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL; total++)
        ZN_HENTRY(l, struct item, link)->seen++;
    return total;
}

static void iterates_every_entry_once_while_moving(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 0), 0);
    struct item *items = make_items(N);
    int checked_mid_move = 0;
    for (int i = 0; i < N; i++) {
        zn_htable_insert(&t, &items[i].link, key_hash(i));
        if (t.old != NULL || i % 500 == 0) {
            checked_mid_move += t.old != NULL;
            assert_int_equal(iterate_count(&t, items, i + 1), i + 1);
            for (int k = 0; k <= i; k++)
                assert_int_equal(items[k].seen, 1);
        }
    }
    assert_true(checked_mid_move > 10);
    zn_htable_free(&t);
    free(items);
}

/* The entry just returned may be removed (the tree frees nodes so). */
static void removal_during_iteration(void **state)
{
    (void)state;
    enum { N = 3000 };
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 0), 0);
    struct item *items = make_items(N);
    /* Stop in the middle of a move so both arrays hold entries. */
    int i = 0;
    for (; i < N; i++) {
        zn_htable_insert(&t, &items[i].link, key_hash(i));
        if (i > 1000 && t.old != NULL && t.moved > 0 && t.moved < t.nold / 2)
            break;
    }
    int inserted = i + 1;
    assert_non_null(t.old);
    struct zn_hiter it;
    zn_hiter_init(&it, &t);
    int removed = 0, kept = 0;
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        struct item *e = ZN_HENTRY(l, struct item, link);
        if (e->key % 2 == 0) {
            zn_htable_remove(&t, l);
            removed++;
        } else {
            kept++;
        }
    }
    assert_int_equal(removed + kept, inserted);
    assert_int_equal(zn_htable_count(&t), kept);
    for (int k = 0; k < inserted; k++)
        assert_ptr_equal(find(&t, k), k % 2 ? &items[k] : NULL);
    assert_int_equal(iterate_count(&t, items, inserted), kept);
    zn_htable_free(&t);
    free(items);
}

/* A zeroed table that was never set up (a static one) is empty, not a crash. */
static void a_zeroed_table_is_empty(void **state)
{
    (void)state;
    static struct zn_htable never_set_up;
    assert_null(find(&never_set_up, 1));
    assert_int_equal(zn_htable_count(&never_set_up), 0);
    assert_int_equal(iterate_count(&never_set_up, NULL, 0), 0);
    zn_htable_clear(&never_set_up);
    zn_htable_free(&never_set_up);
}

static bool bytes_eq(const struct zn_hlink *l, const void *key)
{
    (void)l;
    return zn_hkey_is(key, "/a/b", 4);
}

static void a_bytes_key_compares_length_and_bytes(void **state)
{
    (void)state;
    assert_true(bytes_eq(NULL, &(struct zn_hkey){"/a/b", 4}));
    assert_false(bytes_eq(NULL, &(struct zn_hkey){"/a/b/", 5}));
    assert_false(bytes_eq(NULL, &(struct zn_hkey){"/a/c", 4}));
    assert_false(bytes_eq(NULL, &(struct zn_hkey){"/a/", 3}));
}

static void reserve_sizes_once(void **state)
{
    (void)state;
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 16), 0);
    assert_int_equal(t.nbuckets, 16);
    struct item *items = make_items(1000);
    for (int i = 0; i < 20; i++)
        zn_htable_insert(&t, &items[i].link, key_hash(i));
    assert_int_equal(zn_htable_reserve(&t, 1000), 0);
    assert_int_equal(t.nbuckets, 1024);
    assert_null(t.old);
    size_t before = t.nbuckets;
    for (int i = 20; i < 1000; i++)
        zn_htable_insert(&t, &items[i].link, key_hash(i));
    assert_int_equal(t.nbuckets, before);
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(find(&t, i), &items[i]);
    zn_htable_free(&t);
    free(items);
}

static void a_load_of_two_grows_at_twice_the_buckets(void **state)
{
    (void)state;
    struct zn_htable t;
    assert_int_equal(zn_htable_init(&t, 16), 0);
    zn_htable_set_load(&t, 2);
    struct item *items = make_items(5000);
    for (int i = 0; i < 32; i++)
        zn_htable_insert(&t, &items[i].link, key_hash(i));
    assert_int_equal(t.nbuckets, 16); /* 32 entries in 16 buckets: no growth yet */
    zn_htable_insert(&t, &items[32].link, key_hash(32));
    assert_int_equal(t.nbuckets, 32);
    for (int i = 33; i < 5000; i++)
        zn_htable_insert(&t, &items[i].link, key_hash(i));
    assert_int_equal(t.nbuckets, 4096); /* 5000 entries, at most 2 a bucket */
    for (int i = 0; i < 5000; i++)
        assert_ptr_equal(find(&t, i), &items[i]);
    for (int i = 0; i < 5000; i += 2)
        zn_htable_remove(&t, &items[i].link);
    for (int i = 0; i < 5000; i++)
        assert_ptr_equal(find(&t, i), i % 2 ? &items[i] : NULL);
    /* reserve sizes for the load too */
    zn_htable_clear(&t);
    assert_int_equal(zn_htable_reserve(&t, 20000), 0);
    assert_int_equal(t.nbuckets, 16384);
    zn_htable_free(&t);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_chains_and_spreads),
        cmocka_unit_test(hash_tail_equals_byte_loop),
        cmocka_unit_test(insert_find_remove),
        cmocka_unit_test(colliding_hashes_are_told_apart),
        cmocka_unit_test(grows_incrementally_under_many_keys),
        cmocka_unit_test(iterates_every_entry_once_while_moving),
        cmocka_unit_test(removal_during_iteration),
        cmocka_unit_test(reserve_sizes_once),
        cmocka_unit_test(a_zeroed_table_is_empty),
        cmocka_unit_test(a_bytes_key_compares_length_and_bytes),
        cmocka_unit_test(a_load_of_two_grows_at_twice_the_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
