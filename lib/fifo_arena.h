/*
 * A FIFO arena: memory for short-lived blocks freed in roughly the order
 * they were allocated (a write's copies that live until it is durable or
 * applied), kept out of the main heap so that they leave no holes between
 * the long-lived allocations (the tree's nodes) made meanwhile.
 *
 * Blocks are bumped out of chunks (ZN_FIFO_CHUNK_BYTES, mmap'd); each block
 * starts with a 16-byte header pointing at its chunk, so zn_fifo_free needs
 * no arena argument.  Invariants:
 *
 * 1. One thread allocates (the owner); any thread may free.  The owner alone
 *    moves a chunk's bump offset; the only state shared with freeing threads
 *    is each chunk's reference count and the arena's spare slots, all
 *    atomic.
 * 2. A chunk's count is its live blocks, plus 1 while it is the arena's
 *    current chunk (the owner's reference).  Whoever brings it to 0 releases
 *    the chunk: it goes into an empty spare slot (compare-and-swap from
 *    NULL, so freeing threads never race for one), or is unmapped when all
 *    ZN_FIFO_SPARES are taken.  The owner takes a new current chunk from a
 *    slot (exchange with NULL) before it maps one.  So a FIFO whose live
 *    blocks span up to ZN_FIFO_SPARES chunks (a server's writes in flight
 *    do: one spare was too few, and nearly every chunk was mapped fresh and
 *    its pages faulted in again) cycles through its chunks without a system
 *    call, and an idle arena keeps at most its current chunk and the spares.
 * 3. The current chunk with no live block (count 1, seen by the owner) is
 *    reused from its start: nobody else can hold a reference to it then.
 * 4. A block larger than a chunk gets a chunk of its own (no owner
 *    reference), unmapped when that block is freed: never the spare.
 * 5. Blocks are 16-byte aligned; the order of frees does not matter for
 *    correctness, only for how soon chunks come back (a chunk is held while
 *    any of its blocks is).
 * zn_fifo_destroy requires every block freed.
 */
#ifndef ZN_FIFO_ARENA_H
#define ZN_FIFO_ARENA_H

#include <stdatomic.h>
#include <stddef.h>

#define ZN_FIFO_CHUNK_BYTES (64 * 1024)
#define ZN_FIFO_SPARES 4

struct zn_fifo_chunk;

struct zn_fifo {
    struct zn_fifo_chunk *cur;                 /* owner thread only */
    _Atomic(struct zn_fifo_chunk *) spare[ZN_FIFO_SPARES]; /* emptied chunks kept */
    atomic_size_t chunks;                      /* chunks mapped (cur, spares, held) */
    atomic_size_t maps;                        /* chunks ever mapped (tests, stats) */
    size_t chunk_bytes;
};

/* chunk_bytes 0 means ZN_FIFO_CHUNK_BYTES; rounded up to a page. */
void zn_fifo_init(struct zn_fifo *f, size_t chunk_bytes);
/* Owner thread only.  NULL when out of memory. */
void *zn_fifo_alloc(struct zn_fifo *f, size_t n);
/* Any thread; NULL is ignored. */
void zn_fifo_free(void *p);
/* Owner thread; every block must have been freed. */
void zn_fifo_destroy(struct zn_fifo *f);
/* Chunks mapped now (for tests and stats). */
size_t zn_fifo_chunks(struct zn_fifo *f);
/* Chunks mapped since zn_fifo_init (for tests and stats). */
size_t zn_fifo_maps(struct zn_fifo *f);

#endif
