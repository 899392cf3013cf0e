/* The FIFO arena (fifo_arena.h has its invariants). */
#include "fifo_arena.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "assert.h"

/* Under AddressSanitizer a chunk's bytes are poisoned but for the live
 * blocks: the chunks come from mmap, so without this ASan would not see a
 * write past a block into its neighbour, or a use after zn_fifo_free. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A block's header: its chunk and its size (for the poisoning), 16 bytes to
 * keep the block 16-byte aligned. */
#define HDR 16u
struct block_hdr {
    struct zn_fifo_chunk *chunk;
    size_t size;
};
_Static_assert(sizeof(struct block_hdr) <= HDR, "block header fits HDR");

struct zn_fifo_chunk {
    struct zn_fifo *owner;
    atomic_size_t refs; /* live blocks, +1 while current (invariant 2) */
    size_t used;        /* bump offset from the chunk's start (owner only) */
    size_t size;        /* mapped bytes */
};

#define CHUNK_HDR ((sizeof(struct zn_fifo_chunk) + 15u) & ~(size_t)15u)

static struct zn_fifo_chunk *chunk_map(struct zn_fifo *f, size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    struct zn_fifo_chunk *c = m;
    c->owner = f;
    c->used = CHUNK_HDR;
    c->size = size;
    atomic_init(&c->refs, 0);
    atomic_fetch_add_explicit(&f->chunks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->maps, 1, memory_order_relaxed);
    POISON((char *)c + CHUNK_HDR, size - CHUNK_HDR);
    return c;
}

static void chunk_unmap(struct zn_fifo_chunk *c)
{
    atomic_fetch_sub_explicit(&c->owner->chunks, 1, memory_order_relaxed);
    size_t size = c->size;
    UNPOISON((char *)c + CHUNK_HDR, size - CHUNK_HDR); /* the range may be mapped again */
    munmap(c, size);
}

/* Drops one reference; the last one releases the chunk (invariants 2, 4). */
static void chunk_unref(struct zn_fifo_chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct zn_fifo *f = c->owner;
    if (c->size != f->chunk_bytes) {
        chunk_unmap(c);
        return;
    }
    for (unsigned i = 0; i < ZN_FIFO_SPARES; i++) {
        struct zn_fifo_chunk *empty = NULL;
        if (atomic_compare_exchange_strong_explicit(&f->spare[i], &empty, c, memory_order_acq_rel,
                                                    memory_order_relaxed))
            return;
    }
    chunk_unmap(c);
}

/* Owner thread: a kept chunk, or NULL (invariant 2). */
static struct zn_fifo_chunk *spare_take(struct zn_fifo *f)
{
    for (unsigned i = 0; i < ZN_FIFO_SPARES; i++) {
        if (!atomic_load_explicit(&f->spare[i], memory_order_relaxed))
            continue;
        struct zn_fifo_chunk *c = atomic_exchange_explicit(&f->spare[i], NULL, memory_order_acq_rel);
        if (c)
            return c;
    }
    return NULL;
}

void zn_fifo_init(struct zn_fifo *f, size_t chunk_bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!chunk_bytes)
        chunk_bytes = ZN_FIFO_CHUNK_BYTES;
    f->cur = NULL;
    for (unsigned i = 0; i < ZN_FIFO_SPARES; i++)
        atomic_init(&f->spare[i], NULL);
    atomic_init(&f->chunks, 0);
    atomic_init(&f->maps, 0);
    f->chunk_bytes = (chunk_bytes + page - 1) / page * page;
}

static void *bump(struct zn_fifo_chunk *c, size_t need, size_t n)
{
    char *b = (char *)c + c->used;
    c->used += need;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    UNPOISON(b, HDR + n);
    *(struct block_hdr *)b = (struct block_hdr){.chunk = c, .size = n};
    return b + HDR;
}

void *zn_fifo_alloc(struct zn_fifo *f, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t need = HDR + ((n + 15u) & ~(size_t)15u);
    struct zn_fifo_chunk *c = f->cur;
    if (c && c->used + need <= c->size)
        return bump(c, need, n);
    if (c && atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
        c->used = CHUNK_HDR; /* invariant 3 */
        if (c->used + need <= c->size)
            return bump(c, need, n);
    }
    if (CHUNK_HDR + need > f->chunk_bytes) { /* invariant 4 */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        struct zn_fifo_chunk *big = chunk_map(f, (CHUNK_HDR + need + page - 1) / page * page);
        return big ? bump(big, need, n) : NULL;
    }
    struct zn_fifo_chunk *next = spare_take(f);
    if (!next && !(next = chunk_map(f, f->chunk_bytes)))
        return NULL;
    next->used = CHUNK_HDR;
    atomic_store_explicit(&next->refs, 1, memory_order_relaxed);
    f->cur = next;
    if (c)
        chunk_unref(c);
    return bump(next, need, n);
}

void zn_fifo_free(void *p)
{
    if (!p)
        return;
    struct block_hdr *h = (struct block_hdr *)((char *)p - HDR);
    struct zn_fifo_chunk *c = h->chunk;
    POISON(h, HDR + h->size); /* before the unref: the chunk may be reused after it */
    chunk_unref(c);
}

void zn_fifo_destroy(struct zn_fifo *f)
{
    if (f->cur) {
        ZN_ASSERT(atomic_load(&f->cur->refs) == 1);
        chunk_unref(f->cur);
        f->cur = NULL;
    }
    for (struct zn_fifo_chunk *s; (s = spare_take(f)) != NULL;)
        chunk_unmap(s);
    ZN_ASSERT(atomic_load(&f->chunks) == 0);
}

size_t zn_fifo_chunks(struct zn_fifo *f) { return atomic_load_explicit(&f->chunks, memory_order_relaxed); }

size_t zn_fifo_maps(struct zn_fifo *f) { return atomic_load_explicit(&f->maps, memory_order_relaxed); }
