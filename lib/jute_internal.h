/*
 * Helpers shared by the files of the jute codec (jute.c, jute_request.c,
 * jute_response.c).  Not part of libznode's API: nothing outside lib/jute*.c
 * includes this.
 */
#ifndef ZNODE_JUTE_INTERNAL_H
#define ZNODE_JUTE_INTERNAL_H

#include "jute.h"

/* Records the first error of a reader/writer (sticky) and returns it. */
int jute_reader_fail(struct jute_reader *r, int code);
int jute_writer_fail(struct jute_writer *w, int code);

/* Reads a vector count: -1 (null) or 0..n, where n elements of at least
 * min_elem_bytes each still fit in the input.  Anything else is
 * ZN_MARSHALLINGERROR, so no allocation is ever sized by a hostile count. */
int jute_read_count(struct jute_reader *r, size_t min_elem_bytes, int32_t *count);

/* An arena array of count (> 0) elements, or NULL with the sticky error set. */
void *jute_read_alloc(struct jute_reader *r, size_t count, size_t elem_bytes);

/* MultiHeader{type, done, err}: before every op of a multi request or result
 * of a multi response, and {-1, true, -1} after the last. */
JUTE_IO_INLINE int jute_io_multi_header(struct jute_io *io, int32_t *type, bool *done, int32_t *err)
{
    jute_io_int(io, type);
    jute_io_bool(io, done);
    return jute_io_int(io, err);
}

/* Reads one element of an unsized list into elem (zeroed, elem_bytes), or
 * sets *done at the list's end marker.  Returns 0 or the sticky error. */
typedef int (*jute_read_one_fn)(struct jute_reader *r, void *ctx, void *elem, bool *done);

/*
 * A list whose count is not on the wire (a multi's ops or results, ended by
 * a done header).  A short one (at most JUTE_LIST_SHORT_ELEMS elements, the
 * common multi) is decoded once, into an arena array of that many.  A longer
 * one is decoded twice: a first pass validates and counts the elements,
 * with their strings in a scratch arena emptied after every one; the second
 * decodes them into an arena array of exactly that size.  Memory stays
 * proportional to the input, and nothing is left allocated for a list that
 * turns out malformed (the short pass gives the arena back what it took).
 * Returns 0 with *items and *count set, or the error.  elem_bytes is at
 * most a struct zn_request's or zn_response's.
 */
#define JUTE_LIST_SHORT_ELEMS 4
int jute_read_unsized_list(struct jute_reader *r, size_t elem_bytes, jute_read_one_fn one, void *ctx,
                           void **items, int32_t *count);

/* Smallest encodings, used to bound counts before allocating. */
#define JUTE_MULTI_HEADER_BYTES 9 /* int type, bool done, int err */

#endif
