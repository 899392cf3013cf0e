/*
 * Unit tests of lib/fifo_arena.c: the FIFO arena of a write's short-lived
 * copies (blocks kept intact across chunks, frees in any order, a block
 * larger than a chunk, chunks given back, frees from another thread).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fifo_arena.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define CHUNK 4096u
#define N 1000

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31u + i);
}

static void check(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (unsigned char)(seed * 31u + i));
}

static size_t size_of(unsigned i) { return 1 + (i * 37u) % 300; }

/* Block i: size_of(i) bytes filled from seed i, 16-byte aligned. */
static unsigned char *alloc_filled(struct zn_fifo *f, unsigned i)
{
    unsigned char *p = zn_fifo_alloc(f, size_of(i));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    fill(p, size_of(i), i);
    return p;
}

/* Checks block i is intact, then frees it. */
static void free_checked(unsigned char *p, unsigned i)
{
    check(p, size_of(i), i);
    zn_fifo_free(p);
}

/* A new arena of 4 KiB chunks with blocks 0..N-1 in b. */
static void start_filled(struct zn_fifo *f, unsigned char **b)
{
    zn_fifo_init(f, CHUNK);
    for (unsigned i = 0; i < N; i++)
        b[i] = alloc_filled(f, i);
}

/* A drained arena holds at most its current chunk and the spares; destroy
 * unmaps them all. */
static void drain_and_destroy(struct zn_fifo *f)
{
    assert_true(zn_fifo_chunks(f) <= 1 + ZN_FIFO_SPARES);
    zn_fifo_destroy(f);
    assert_int_equal(zn_fifo_chunks(f), 0);
}

/* Blocks in order and freed in order: they stay intact across chunks, are
 * 16-byte aligned, and a drained arena holds at most its current chunk and
 * the spares; destroy unmaps them all. */
static void test_fifo_in_order(void **state)
{
    (void)state;
    struct zn_fifo f;
    unsigned char *b[N];
    start_filled(&f, b);
    assert_true(zn_fifo_chunks(&f) > 20); /* ~160 KB of blocks in 4 KiB chunks */
    for (unsigned i = 0; i < N; i++)
        free_checked(b[i], i);
    drain_and_destroy(&f);
}

/* Frees in any order (reverse halves, every third first): no block is
 * overwritten by a later allocation while it lives, a chunk is held while
 * one of its blocks is, and everything is given back at the end. */
static void test_fifo_out_of_order(void **state)
{
    (void)state;
    struct zn_fifo f;
    unsigned char *b[N];
    start_filled(&f, b);
    for (unsigned i = 0; i < N; i += 3) {
        zn_fifo_free(b[i]);
        b[i] = NULL;
    }
    /* new blocks meanwhile must not land on live ones */
    unsigned char *more[N];
    for (unsigned i = 0; i < N; i++)
        more[i] = alloc_filled(&f, N + i);
    size_t held = zn_fifo_chunks(&f);
    for (unsigned i = N; i-- > 0;)
        if (b[i])
            free_checked(b[i], i);
    assert_true(zn_fifo_chunks(&f) < held);
    /* one block keeps its chunk */
    for (unsigned i = 1; i < N; i++)
        free_checked(more[i], N + i);
    assert_true(zn_fifo_chunks(&f) >= 2 && zn_fifo_chunks(&f) <= 2 + ZN_FIFO_SPARES);
    free_checked(more[0], N);
    drain_and_destroy(&f);
}

/* A block larger than a chunk gets a chunk of its own, unmapped at its free
 * (never kept as the spare); the blocks around it are unaffected. */
static void test_fifo_big_block(void **state)
{
    (void)state;
    struct zn_fifo f;
    zn_fifo_init(&f, CHUNK);
    unsigned char *small = zn_fifo_alloc(&f, 100);
    fill(small, 100, 1);
    assert_int_equal(zn_fifo_chunks(&f), 1);
    size_t big_n = 3 * CHUNK + 5;
    unsigned char *big = zn_fifo_alloc(&f, big_n);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 16, 0);
    assert_int_equal(zn_fifo_chunks(&f), 2);
    fill(big, big_n, 2);
    unsigned char *after = zn_fifo_alloc(&f, 100);
    fill(after, 100, 3);
    assert_int_equal(zn_fifo_chunks(&f), 2); /* the current chunk had room */
    check(big, big_n, 2);
    zn_fifo_free(big);
    assert_int_equal(zn_fifo_chunks(&f), 1);
    check(small, 100, 1);
    check(after, 100, 3);
    zn_fifo_free(small);
    zn_fifo_free(after);
    zn_fifo_free(NULL);
    zn_fifo_destroy(&f);
    assert_int_equal(zn_fifo_chunks(&f), 0);
}

/* A steady FIFO (a few blocks in flight) cycles through at most two chunks:
 * the emptied current chunk is reused, a retired one becomes the spare. */
static void test_fifo_steady_reuses_chunks(void **state)
{
    (void)state;
    struct zn_fifo f;
    zn_fifo_init(&f, CHUNK);
    unsigned char *ring[8] = {0};
    for (unsigned i = 0; i < 100000; i++) {
        unsigned k = i % 8;
        if (ring[k])
            free_checked(ring[k], i - 8);
        ring[k] = alloc_filled(&f, i);
        assert_true(zn_fifo_chunks(&f) <= 2);
    }
    for (unsigned k = 0; k < 8; k++)
        zn_fifo_free(ring[k]);
    drain_and_destroy(&f);
}

/* Blocks freed in bursts that span several chunks, as a server frees a
 * group commit's or an applied batch's copies while the next batch is being
 * allocated, map their chunks once: after the first rounds every chunk
 * needed comes back from a spare slot, never from mmap again (with one
 * spare, most of each burst's chunks were unmapped and mapped again). */
static void test_fifo_bursts_of_several_chunks_map_no_more(void **state)
{
    (void)state;
    struct zn_fifo f;
    zn_fifo_init(&f, CHUNK);
    enum { BATCH = 64, ROUNDS = 2000 }; /* ~64 x 180 bytes: about three 4 KiB chunks */
    unsigned char *prev[BATCH] = {0}, *cur[BATCH];
    size_t maps_after_warmup = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        for (unsigned k = 0; k < BATCH; k++)
            cur[k] = alloc_filled(&f, r * BATCH + k);
        for (unsigned k = 0; k < BATCH; k++)
            if (prev[k])
                free_checked(prev[k], (r - 1) * BATCH + k);
        memcpy(prev, cur, sizeof prev);
        if (r == 10)
            maps_after_warmup = zn_fifo_maps(&f);
    }
    assert_true(maps_after_warmup >= 6);
    assert_int_equal(zn_fifo_maps(&f), maps_after_warmup);
    for (unsigned k = 0; k < BATCH; k++)
        free_checked(prev[k], (ROUNDS - 1) * BATCH + k);
    drain_and_destroy(&f);
}

/* One thread allocates, another frees (the store's writer frees what the
 * loop allocated): a pipe of blocks through a mutex-protected queue. */
struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *q[64];
    unsigned head, tail, done;
};

static void *freer(void *arg)
{
    struct handoff *h = arg;
    for (unsigned n = 0;; n++) {
        pthread_mutex_lock(&h->mu);
        while (h->head == h->tail && !h->done)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->head == h->tail && h->done) {
            pthread_mutex_unlock(&h->mu);
            return NULL;
        }
        unsigned char *p = h->q[h->head++ % 64];
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        check(p, 64, n);
        zn_fifo_free(p);
    }
}

static void test_fifo_free_from_another_thread(void **state)
{
    (void)state;
    struct zn_fifo f;
    zn_fifo_init(&f, CHUNK);
    struct handoff h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, freer, &h), 0);
    for (unsigned i = 0; i < 200000; i++) {
        unsigned char *p = zn_fifo_alloc(&f, 64);
        assert_non_null(p);
        fill(p, 64, i);
        pthread_mutex_lock(&h.mu);
        while (h.tail - h.head == 64)
            pthread_cond_wait(&h.cv, &h.mu);
        h.q[h.tail++ % 64] = p;
        pthread_cond_broadcast(&h.cv);
        pthread_mutex_unlock(&h.mu);
    }
    pthread_mutex_lock(&h.mu);
    h.done = 1;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    assert_int_equal(pthread_join(t, NULL), 0);
    drain_and_destroy(&f);
}

/* Under ASan, only live blocks are addressable: the bytes past a block (its
 * neighbour's header, the chunk's unused tail) and a freed block are
 * poisoned, so an overrun or a use after free is reported.  Skipped (and
 * counted as skipped) in a build without ASan. */
static void test_fifo_poisons_all_but_live_blocks(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    struct zn_fifo f;
    zn_fifo_init(&f, CHUNK);
    unsigned char *a = zn_fifo_alloc(&f, 24);
    unsigned char *b = zn_fifo_alloc(&f, 100);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(__asan_region_is_poisoned(a, 24), 0);
    assert_int_equal(__asan_region_is_poisoned(b, 100), 0);
    assert_int_equal(__asan_address_is_poisoned(a + 24), 1); /* past a: b's header */
    assert_int_equal(__asan_address_is_poisoned(b + 104), 1); /* past b: the unused tail */
    zn_fifo_free(a);
    assert_int_equal(__asan_address_is_poisoned(a), 1);
    assert_int_equal(__asan_region_is_poisoned(b, 100), 0);
    zn_fifo_free(b);
    assert_int_equal(__asan_address_is_poisoned(b), 1);
    zn_fifo_destroy(&f);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_in_order),
        cmocka_unit_test(test_fifo_out_of_order),
        cmocka_unit_test(test_fifo_big_block),
        cmocka_unit_test(test_fifo_steady_reuses_chunks),
        cmocka_unit_test(test_fifo_bursts_of_several_chunks_map_no_more),
        cmocka_unit_test(test_fifo_free_from_another_thread),
        cmocka_unit_test(test_fifo_poisons_all_but_live_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
