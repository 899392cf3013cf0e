/* The FIFO arena (fifo_arena.h has its invariants). */
#include "fifo_arena.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "assert.h"

#define HDR 16u /* a block's header: its chunk, padded to keep 16-byte alignment */

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
    return c;
}

static void chunk_unmap(struct zn_fifo_chunk *c)
{
    atomic_fetch_sub_explicit(&c->owner->chunks, 1, memory_order_relaxed);
    munmap(c, c->size);
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
    struct zn_fifo_chunk *old = atomic_exchange_explicit(&f->spare, c, memory_order_acq_rel);
    if (old)
        chunk_unmap(old);
}

void zn_fifo_init(struct zn_fifo *f, size_t chunk_bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!chunk_bytes)
        chunk_bytes = ZN_FIFO_CHUNK_BYTES;
    f->cur = NULL;
    atomic_init(&f->spare, NULL);
    atomic_init(&f->chunks, 0);
    f->chunk_bytes = (chunk_bytes + page - 1) / page * page;
}

static void *bump(struct zn_fifo_chunk *c, size_t need)
{
    char *b = (char *)c + c->used;
    c->used += need;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    *(struct zn_fifo_chunk **)b = c;
    return b + HDR;
}

void *zn_fifo_alloc(struct zn_fifo *f, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t need = HDR + ((n + 15u) & ~(size_t)15u);
    struct zn_fifo_chunk *c = f->cur;
    if (c && c->used + need <= c->size)
        return bump(c, need);
    if (c && atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
        c->used = CHUNK_HDR; /* invariant 3 */
        if (c->used + need <= c->size)
            return bump(c, need);
    }
    if (CHUNK_HDR + need > f->chunk_bytes) { /* invariant 4 */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        struct zn_fifo_chunk *big = chunk_map(f, (CHUNK_HDR + need + page - 1) / page * page);
        return big ? bump(big, need) : NULL;
    }
    struct zn_fifo_chunk *next = atomic_exchange_explicit(&f->spare, NULL, memory_order_acq_rel);
    if (!next && !(next = chunk_map(f, f->chunk_bytes)))
        return NULL;
    next->used = CHUNK_HDR;
    atomic_store_explicit(&next->refs, 1, memory_order_relaxed);
    f->cur = next;
    if (c)
        chunk_unref(c);
    return bump(next, need);
}

void zn_fifo_free(void *p)
{
    if (p)
        chunk_unref(*(struct zn_fifo_chunk **)((char *)p - HDR));
}

void zn_fifo_destroy(struct zn_fifo *f)
{
    if (f->cur) {
        ZN_ASSERT(atomic_load(&f->cur->refs) == 1);
        chunk_unref(f->cur);
        f->cur = NULL;
    }
    struct zn_fifo_chunk *s = atomic_exchange(&f->spare, NULL);
    if (s)
        chunk_unmap(s);
    ZN_ASSERT(atomic_load(&f->chunks) == 0);
}

size_t zn_fifo_chunks(struct zn_fifo *f) { return atomic_load_explicit(&f->chunks, memory_order_relaxed); }
