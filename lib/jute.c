/*
 * jute.c: the bottom of the ZooKeeper wire codec.  It owns the arena that
 * decoded strings and vectors live in, the growable writer and the bounded
 * reader with their primitives (int, long, bool, buffer, string), packet
 * framing, the record visitor (struct jute_io), the small shared records
 * (Stat, ACL and string vectors, connect request/response, request/reply
 * headers, WatcherEvent) and the functions generated from the opcode table
 * (zn_op_name, zn_op_flags).  Request and response bodies are in
 * jute_request.c and jute_response.c.
 *
 * Invariants:
 *  1. A reader never reads past data + len: every primitive checks
 *     jute_remaining() before touching a byte.
 *  2. A length or count read from the wire is checked against the bytes that
 *     remain, times the smallest encoding of one element, before anything is
 *     allocated.  So the arena grows by at most a constant times the input.
 *  3. Reader and writer errors are sticky: the first error is kept and every
 *     later call returns it without reading or writing.
 *  4. Every record is one jute_io function that both decodes and encodes it;
 *     jute_read_X and jute_write_X only wrap it.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "jute.h"
#include "jute_internal.h"

/* ---- arena ---- */

/* Default block size: small enough to keep per-connection memory low, large
 * enough that a typical request (a path and a few ACLs) fits in one block. */
#define JUTE_ARENA_BLOCK_BYTES 4096
#define JUTE_ARENA_ALIGN 8

struct zn_arena_block {
    struct zn_arena_block *next; /* the previously allocated block */
    size_t cap_bytes;
    size_t used_bytes;
    _Alignas(JUTE_ARENA_ALIGN) uint8_t data[];
};

void zn_arena_init(struct zn_arena *arena)
{
    ZN_ASSERT(arena != NULL);
    arena->head = NULL;
    arena->used_bytes = 0;
}

static struct zn_arena_block *arena_block_new(size_t cap_bytes)
{
    struct zn_arena_block *block = malloc(sizeof(*block) + cap_bytes);
    if (block == NULL)
        return NULL;
    block->next = NULL;
    block->cap_bytes = cap_bytes;
    block->used_bytes = 0;
    return block;
}

void *zn_arena_alloc(struct zn_arena *arena, size_t size)
{
    ZN_ASSERT(arena != NULL);
    if (size > SIZE_MAX / 2)
        return NULL;
    size_t rounded = (size + JUTE_ARENA_ALIGN - 1) & ~(size_t)(JUTE_ARENA_ALIGN - 1);
    struct zn_arena_block *block = arena->head;
    if (block == NULL || block->cap_bytes - block->used_bytes < rounded) {
        /* A large request gets a block of its own, so it never wastes the
         * tail of a default block nor forces default blocks to grow. */
        size_t cap = rounded > JUTE_ARENA_BLOCK_BYTES ? rounded : JUTE_ARENA_BLOCK_BYTES;
        struct zn_arena_block *fresh = arena_block_new(cap);
        if (fresh == NULL)
            return NULL;
        fresh->next = arena->head;
        arena->head = fresh;
        block = fresh;
    }
    void *p = block->data + block->used_bytes;
    block->used_bytes += rounded;
    arena->used_bytes += rounded;
    ZN_ASSERT(block->used_bytes <= block->cap_bytes);
    ZN_ASSERT(((uintptr_t)p & (JUTE_ARENA_ALIGN - 1)) == 0);
    return p;
}

void zn_arena_reset(struct zn_arena *arena)
{
    ZN_ASSERT(arena != NULL);
    struct zn_arena_block *block = arena->head;
    if (block == NULL)
        return;
    /* The first block is the last in the list; keep it for reuse. */
    while (block->next != NULL) {
        struct zn_arena_block *next = block->next;
        free(block);
        block = next;
    }
    block->used_bytes = 0;
    arena->head = block;
    arena->used_bytes = 0;
}

void zn_arena_free(struct zn_arena *arena)
{
    ZN_ASSERT(arena != NULL);
    struct zn_arena_block *block = arena->head;
    while (block != NULL) {
        struct zn_arena_block *next = block->next;
        free(block);
        block = next;
    }
    arena->head = NULL;
    arena->used_bytes = 0;
}

void zn_arena_trim(struct zn_arena *arena)
{
    ZN_ASSERT(arena != NULL);
    struct zn_arena_block *block = arena->head;
    if (block != NULL && (block->next != NULL || block->cap_bytes != JUTE_ARENA_BLOCK_BYTES)) {
        zn_arena_free(arena);
        return;
    }
    if (block != NULL)
        block->used_bytes = 0;
    arena->used_bytes = 0;
    ZN_ASSERT(arena->head == NULL || arena->head->next == NULL);
}

/* ---- writer ---- */

#define JUTE_WRITER_MIN_CAP_BYTES 256

void jute_writer_init(struct jute_writer *w)
{
    ZN_ASSERT(w != NULL);
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->error = 0;
    w->fixed = false;
}

void jute_writer_init_fixed(struct jute_writer *w, uint8_t *buf, size_t cap)
{
    ZN_ASSERT(w != NULL && (buf != NULL || cap == 0));
    jute_writer_init(w);
    w->data = buf;
    w->cap = cap;
    w->fixed = true;
}

void jute_writer_free(struct jute_writer *w)
{
    ZN_ASSERT(w != NULL);
    if (!w->fixed)
        free(w->data);
    jute_writer_init(w);
}

void jute_writer_reset(struct jute_writer *w)
{
    ZN_ASSERT(w != NULL);
    w->len = 0;
    w->error = 0;
}

uint8_t *jute_writer_take(struct jute_writer *w, size_t *len)
{
    ZN_ASSERT(w != NULL && len != NULL && !w->fixed);
    uint8_t *data = w->data;
    *len = w->len;
    jute_writer_init(w);
    return data;
}

static int writer_fail(struct jute_writer *w, int code)
{
    if (w->error == 0)
        w->error = code;
    return w->error;
}

/* Makes room for n more bytes; returns 0 or the (sticky) error. */
static int writer_grow(struct jute_writer *w, size_t n)
{
    if (w->error != 0)
        return w->error;
    if (n > SIZE_MAX / 2 - w->len)
        return writer_fail(w, ZN_NOMEMORY);
    size_t need = w->len + n;
    if (need <= w->cap)
        return 0;
    if (w->fixed)
        return writer_fail(w, ZN_TOOBIG);
    size_t cap = w->cap < JUTE_WRITER_MIN_CAP_BYTES ? JUTE_WRITER_MIN_CAP_BYTES : w->cap;
    while (cap < need)
        cap *= 2;
    uint8_t *data = realloc(w->data, cap);
    if (data == NULL)
        return writer_fail(w, ZN_NOMEMORY);
    w->data = data;
    w->cap = cap;
    return 0;
}

/* writer_grow, with the common case (room, no error) inline. */
static inline int writer_reserve(struct jute_writer *w, size_t n)
{
    if (w->error == 0 && w->cap - w->len >= n)
        return 0;
    return writer_grow(w, n);
}

static inline uint8_t *put_be32(uint8_t *p, int32_t v)
{
    uint32_t be = htobe32((uint32_t)v);
    memcpy(p, &be, 4);
    return p + 4;
}

static inline uint8_t *put_be64(uint8_t *p, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    memcpy(p, &be, 8);
    return p + 8;
}

int jute_write_stat_packed(struct jute_writer *w, const struct zn_stat *s)
{
    int rc = writer_reserve(w, JUTE_STAT_BYTES);
    if (rc != 0)
        return rc;
    uint8_t *p = w->data + w->len;
    p = put_be64(p, s->czxid);
    p = put_be64(p, s->mzxid);
    p = put_be64(p, s->ctime);
    p = put_be64(p, s->mtime);
    p = put_be32(p, s->version);
    p = put_be32(p, s->cversion);
    p = put_be32(p, s->aversion);
    p = put_be64(p, s->ephemeral_owner);
    p = put_be32(p, s->data_length);
    p = put_be32(p, s->num_children);
    put_be64(p, s->pzxid);
    w->len += JUTE_STAT_BYTES;
    return 0;
}

int jute_write_reply_header_packed(struct jute_writer *w, int32_t xid, int64_t zxid, int32_t err)
{
    int rc = writer_reserve(w, JUTE_REPLY_HEADER_BYTES);
    if (rc != 0)
        return rc;
    uint8_t *p = w->data + w->len;
    put_be32(put_be64(put_be32(p, xid), zxid), err);
    w->len += JUTE_REPLY_HEADER_BYTES;
    return 0;
}

int jute_write_raw(struct jute_writer *w, const void *data, size_t len)
{
    ZN_ASSERT(w != NULL && (data != NULL || len == 0));
    int rc = writer_reserve(w, len);
    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(w->data + w->len, data, len);
    w->len += len;
    return 0;
}

int jute_write_buffer(struct jute_writer *w, const void *data, int32_t len)
{
    ZN_ASSERT(len >= -1);
    ZN_ASSERT(data != NULL || len <= 0);
    int rc = jute_write_int(w, len);
    if (rc != 0 || len <= 0)
        return rc;
    return jute_write_raw(w, data, (size_t)len);
}

int jute_write_string(struct jute_writer *w, const char *s)
{
    if (s == NULL)
        return jute_write_int(w, -1);
    size_t len = strlen(s);
    if (len > INT32_MAX)
        return writer_fail(w, ZN_MARSHALLINGERROR);
    return jute_write_buffer(w, s, (int32_t)len);
}

size_t jute_frame_begin(struct jute_writer *w)
{
    size_t offset = w->len;
    jute_write_int(w, 0); /* placeholder, filled in by jute_frame_end */
    return offset;
}

int jute_frame_end(struct jute_writer *w, size_t frame_offset)
{
    if (w->error != 0)
        return w->error;
    ZN_ASSERT(frame_offset + 4 <= w->len);
    size_t body = w->len - frame_offset - 4;
    if (body > INT32_MAX)
        return writer_fail(w, ZN_MARSHALLINGERROR);
    jute_put_be32(w->data + frame_offset, (uint32_t)body);
    return 0;
}

/* ---- reader ---- */

void jute_reader_init(struct jute_reader *r, const void *data, size_t len, struct zn_arena *arena)
{
    ZN_ASSERT(r != NULL && (data != NULL || len == 0));
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->error = 0;
    r->arena = arena;
    r->strings_with_nul = 0;
}

static int reader_fail(struct jute_reader *r, int code)
{
    if (r->error == 0)
        r->error = code;
    return r->error;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL (with the
 * sticky error set) when fewer remain. */
static const uint8_t *reader_take(struct jute_reader *r, size_t n)
{
    if (r->error != 0)
        return NULL;
    if (jute_remaining(r) < n) {
        reader_fail(r, ZN_MARSHALLINGERROR);
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    ZN_ASSERT(r->pos <= r->len);
    return p;
}

const uint8_t *jute_read_fixed_slow(struct jute_reader *r, size_t n)
{
    return reader_take(r, n);
}

int jute_read_buffer(struct jute_reader *r, struct jute_buf *v)
{
    int32_t len = 0;
    int rc = jute_read_int(r, &len);
    if (rc != 0)
        return rc;
    if (len == -1) {
        v->data = NULL;
        v->len = -1;
        return 0;
    }
    if (len < -1)
        return reader_fail(r, ZN_MARSHALLINGERROR);
    const uint8_t *p = reader_take(r, (size_t)len);
    if (p == NULL)
        return r->error;
    v->data = p;
    v->len = len;
    return 0;
}

int jute_read_string(struct jute_reader *r, char **v)
{
    ZN_ASSERT(r->arena != NULL);
    struct jute_buf b;
    int rc = jute_read_buffer(r, &b);
    if (rc != 0)
        return rc;
    if (b.len == -1) {
        *v = NULL;
        return 0;
    }
    char *s = zn_arena_alloc(r->arena, (size_t)b.len + 1);
    if (s == NULL)
        return reader_fail(r, ZN_NOMEMORY);
    if (b.len > 0) {
        memcpy(s, b.data, (size_t)b.len);
        if (memchr(s, '\0', (size_t)b.len))
            r->strings_with_nul++;
    }
    s[b.len] = '\0';
    *v = s;
    return 0;
}

/* Reads a vector count and checks it before anything is allocated: -1 (null)
 * or 0..n where n elements of at least min_elem_bytes each fit in what
 * remains.  Returns 0 with *count set, or the sticky error. */
int jute_read_count(struct jute_reader *r, size_t min_elem_bytes, int32_t *count)
{
    ZN_ASSERT(min_elem_bytes > 0);
    int rc = jute_read_int(r, count);
    if (rc != 0)
        return rc;
    if (*count < -1)
        return reader_fail(r, ZN_MARSHALLINGERROR);
    if (*count > 0 && (size_t)*count > jute_remaining(r) / min_elem_bytes)
        return reader_fail(r, ZN_MARSHALLINGERROR);
    return 0;
}

/* Arena array of count elements, or NULL with the sticky error set. */
void *jute_read_alloc(struct jute_reader *r, size_t count, size_t elem_bytes)
{
    ZN_ASSERT(r->arena != NULL && count > 0);
    if (count > SIZE_MAX / 4 / elem_bytes) {
        reader_fail(r, ZN_MARSHALLINGERROR);
        return NULL;
    }
    void *p = zn_arena_alloc(r->arena, count * elem_bytes);
    if (p == NULL)
        reader_fail(r, ZN_NOMEMORY);
    return p;
}

int jute_reader_fail(struct jute_reader *r, int code)
{
    return reader_fail(r, code);
}

int jute_writer_fail(struct jute_writer *w, int code)
{
    return writer_fail(w, code);
}

int jute_io_fail_rw(struct jute_reader *r, struct jute_writer *w, int code)
{
    return r ? reader_fail(r, code) : writer_fail(w, code);
}

void *jute_io_vec(struct jute_reader *r, struct jute_writer *w, int32_t *count, void *items, size_t elem_bytes,
                  size_t min_elem_bytes)
{
    if (r == NULL) {
        ZN_ASSERT(*count >= -1 && (*count <= 0 || items != NULL));
        jute_write_int(w, *count);
        return items;
    }
    int32_t n = 0;
    *count = 0;
    if (jute_read_count(r, min_elem_bytes, &n) != 0)
        return NULL;
    if (n <= 0) {
        *count = n;
        return NULL;
    }
    void *p = jute_read_alloc(r, (size_t)n, elem_bytes);
    if (p != NULL)
        *count = n;
    return p;
}

/* Where an arena stood, to give back what was allocated since. */
struct arena_mark {
    struct zn_arena_block *head;
    size_t head_used, used;
};

static struct arena_mark arena_mark(const struct zn_arena *a)
{
    return (struct arena_mark){a->head, a->head ? a->head->used_bytes : 0, a->used_bytes};
}

static void arena_rollback(struct zn_arena *a, struct arena_mark m)
{
    while (a->head != m.head) {
        struct zn_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    if (a->head)
        a->head->used_bytes = m.head_used;
    a->used_bytes = m.used;
}

/* The short list's single pass (see jute_internal.h): up to
 * JUTE_LIST_SHORT_ELEMS elements straight into their array, the end marker
 * into a local.  Returns 1 when the list was longer (decode it again in two
 * passes), else 0 or the error; the arena is given back what this took
 * unless it returns 0. */
static int read_short_list(struct jute_reader *r, size_t elem_bytes, jute_read_one_fn one, void *ctx,
                           void **items, int32_t *count)
{
    union {
        struct zn_request request;
        struct zn_response response;
    } marker;
    ZN_ASSERT(elem_bytes <= sizeof marker);
    struct arena_mark mark = arena_mark(r->arena);
    uint8_t *array = jute_read_alloc(r, JUTE_LIST_SHORT_ELEMS, elem_bytes);
    if (array == NULL)
        return r->error;
    for (size_t n = 0;; n++) {
        void *elem = n < JUTE_LIST_SHORT_ELEMS ? (void *)(array + n * elem_bytes) : (void *)&marker;
        memset(elem, 0, elem_bytes);
        bool done = false;
        if (one(r, ctx, elem, &done) != 0) {
            arena_rollback(r->arena, mark);
            return r->error;
        }
        if (done) {
            *items = n > 0 ? array : NULL;
            *count = (int32_t)n;
            return 0;
        }
        if (n == JUTE_LIST_SHORT_ELEMS) {
            arena_rollback(r->arena, mark);
            return 1;
        }
    }
}

int jute_read_unsized_list(struct jute_reader *r, size_t elem_bytes, jute_read_one_fn one, void *ctx,
                           void **items, int32_t *count)
{
    *items = NULL;
    *count = 0;
    size_t start = r->pos;
    int short_rc = read_short_list(r, elem_bytes, one, ctx, items, count);
    if (short_rc != 1)
        return short_rc;
    *items = NULL;
    *count = 0;
    r->pos = start;
    struct zn_arena *arena = r->arena;
    struct zn_arena scratch;
    zn_arena_init(&scratch);
    r->arena = &scratch;
    size_t n = 0;
    for (;;) {
        void *elem = zn_arena_alloc(&scratch, elem_bytes);
        if (elem == NULL) {
            reader_fail(r, ZN_NOMEMORY);
            break;
        }
        bool done = false;
        if (one(r, ctx, elem, &done) != 0 || done)
            break;
        zn_arena_reset(&scratch);
        /* Each element takes at least a header and a length, so the input
         * runs out long before this; the check keeps the cast safe. */
        if (++n > INT32_MAX)
            reader_fail(r, ZN_MARSHALLINGERROR);
    }
    r->arena = arena;
    if (r->error != 0) {
        zn_arena_free(&scratch);
        return r->error;
    }

    r->pos = start;
    uint8_t *array = NULL;
    if (n > 0 && (array = jute_read_alloc(r, n, elem_bytes)) == NULL) {
        zn_arena_free(&scratch);
        return r->error;
    }
    for (size_t i = 0; i < n && r->error == 0; i++) {
        bool done = false;
        one(r, ctx, array + i * elem_bytes, &done);
        ZN_ASSERT(r->error != 0 || !done);
    }
    /* The end marker has no strings: the scratch arena holds it. */
    zn_arena_reset(&scratch);
    void *terminator = zn_arena_alloc(&scratch, elem_bytes);
    bool done = false;
    if (terminator == NULL)
        reader_fail(r, ZN_NOMEMORY);
    else if (r->error == 0)
        one(r, ctx, terminator, &done);
    zn_arena_free(&scratch);
    ZN_ASSERT(r->error != 0 || done);
    if (r->error != 0)
        return r->error;
    *items = array;
    *count = (int32_t)n;
    return 0;
}

/* ---- shared records ---- */

/* jute_write_<name> and jute_read_<name>: both through jute_io_<name>.  The
 * writer's record is cast to non-const: an encoding io only reads it. */
#define JUTE_RECORD(name, type)                                                 \
    int jute_write_##name(struct jute_writer *w, const type *x)                \
    {                                                                           \
        struct jute_io io = jute_io_writer(w);                                  \
        return jute_io_##name(&io, (type *)x);                                  \
    }                                                                           \
    int jute_read_##name(struct jute_reader *r, type *x)                       \
    {                                                                           \
        struct jute_io io = jute_io_reader(r);                                  \
        return jute_io_##name(&io, x);                                          \
    }

/* ConnectRequest.  Clients before 3.4 end the record before readOnly
 * (ZooKeeperServer reads it inside a try and treats its absence as an old
 * client). */
JUTE_IO_INLINE int jute_io_connect_request(struct jute_io *io, struct zn_connect_request *c)
{
    if (jute_io_reading(io))
        memset(c, 0, sizeof(*c));
    jute_io_int(io, &c->protocol_version);
    jute_io_long(io, &c->last_zxid_seen);
    jute_io_int(io, &c->timeout_ms);
    jute_io_long(io, &c->session_id);
    jute_io_buffer(io, &c->passwd);
    return jute_io_optional_bool(io, &c->has_read_only, &c->read_only);
}

/* ConnectResponse: servers before 3.4 send no readOnly byte; ClientCnxn
 * tolerates that. */
JUTE_IO_INLINE int jute_io_connect_response(struct jute_io *io, struct zn_connect_response *c)
{
    if (jute_io_reading(io))
        memset(c, 0, sizeof(*c));
    jute_io_int(io, &c->protocol_version);
    jute_io_int(io, &c->timeout_ms);
    jute_io_long(io, &c->session_id);
    jute_io_buffer(io, &c->passwd);
    return jute_io_optional_bool(io, &c->has_read_only, &c->read_only);
}

JUTE_IO_INLINE int jute_io_request_header(struct jute_io *io, struct zn_request_header *h)
{
    jute_io_int(io, &h->xid);
    return jute_io_int(io, &h->type);
}

JUTE_IO_INLINE int jute_io_reply_header(struct jute_io *io, struct zn_reply_header *h)
{
    if (!jute_io_reading(io))
        return jute_write_reply_header_packed(io->w, h->xid, h->zxid, h->err);
    jute_io_int(io, &h->xid);
    jute_io_long(io, &h->zxid);
    return jute_io_int(io, &h->err);
}

JUTE_IO_INLINE int jute_io_watcher_event(struct jute_io *io, struct zn_watcher_event *e)
{
    if (jute_io_reading(io))
        e->path = NULL;
    jute_io_int(io, &e->type);
    jute_io_int(io, &e->state);
    return jute_io_string(io, &e->path);
}

JUTE_RECORD(stat, struct zn_stat)
JUTE_RECORD(acl_vec, struct zn_acl_vec)
JUTE_RECORD(string_vec, struct zn_string_vec)
JUTE_RECORD(connect_request, struct zn_connect_request)
JUTE_RECORD(connect_response, struct zn_connect_response)
JUTE_RECORD(request_header, struct zn_request_header)
JUTE_RECORD(reply_header, struct zn_reply_header)
JUTE_RECORD(watcher_event, struct zn_watcher_event)

/* ---- opcodes: generated from ZN_OPCODES (znode/proto.h) ---- */

unsigned zn_op_flags(int32_t type)
{
    switch (type) {
#define ZN_OPCODE_FLAGS(name, value, str, flags) \
    case ZN_OP_##name:                           \
        return flags;
        ZN_OPCODES(ZN_OPCODE_FLAGS)
#undef ZN_OPCODE_FLAGS
    default:
        return 0;
    }
}

const char *zn_op_name(int32_t type)
{
    switch (type) {
#define ZN_OPCODE_NAME(name, value, str, flags) \
    case ZN_OP_##name:                          \
        return str;
        ZN_OPCODES(ZN_OPCODE_NAME)
#undef ZN_OPCODE_NAME
    default:
        return "unknown";
    }
}
