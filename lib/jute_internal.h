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

/* Smallest encodings, used to bound counts before allocating. */
#define JUTE_MULTI_HEADER_BYTES 9 /* int type, bool done, int err */

#endif
