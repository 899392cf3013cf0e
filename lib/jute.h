/*
 * jute: the ZooKeeper wire codec (used by both libznode and znoded).
 *
 * Jute is ZooKeeper's serialisation: big-endian int32/int64, one-byte
 * booleans, buffers and strings as an int32 length followed by bytes (-1 is
 * null), vectors as an int32 count followed by elements (-1 is null).  Every
 * packet on the client port is framed by a big-endian int32 length.
 *
 * Two layers:
 *  - primitives on a growable writer and a bounded reader;
 *  - whole records: every request body and every response body of the client
 *    protocol, in both directions, through one fat struct each
 *    (struct zn_request, struct zn_response) tagged by opcode.  Each record
 *    is described once, by a function over a struct jute_io that reads or
 *    writes it (see "records described once" below).
 *
 * Ownership on decode: strings and vectors are allocated from the reader's
 * arena (NUL-terminated copies) and live until the arena is reset or freed;
 * byte buffers (struct jute_buf) point into the reader's input and are
 * borrowed until that input is released.  Decoders never allocate more than
 * a constant times the input size, so a hostile length cannot exhaust memory.
 *
 * Errors: functions return 0 or ZN_MARSHALLINGERROR (or ZN_NOMEMORY).  Both
 * reader and writer are sticky: after the first failure every further call
 * fails, so a sequence of calls can be checked once at the end.
 */
#ifndef ZNODE_JUTE_H
#define ZNODE_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "znode/errors.h"
#include "znode/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- arena: bump allocator for decoded strings and vectors ---- */

struct zn_arena_block;
struct zn_arena {
    struct zn_arena_block *head;
    size_t used_bytes;  /* total handed out, for limits */
};

void zn_arena_init(struct zn_arena *arena);
/* Returns 8-byte-aligned memory owned by the arena, or NULL on ENOMEM. */
void *zn_arena_alloc(struct zn_arena *arena, size_t size);
/* Frees all blocks but the first and makes it empty again. */
void zn_arena_reset(struct zn_arena *arena);
void zn_arena_free(struct zn_arena *arena);
/* Empties the arena for reuse.  It keeps its memory only when that is one
 * block of the default size (what a typical request needs): an arena kept
 * in a pool never holds on to a large request's blocks. */
void zn_arena_trim(struct zn_arena *arena);

/* ---- primitives ---- */

/* A byte buffer.  len == -1 means null (distinct from empty). */
struct jute_buf {
    const uint8_t *data;
    int32_t len;
};

struct jute_writer {
    uint8_t *data;   /* malloc'd, owned by the writer (borrowed when fixed) */
    size_t len;
    size_t cap;
    int error;       /* 0 or the first error */
    bool fixed;      /* data is the caller's, cap bytes: never grown or freed */
};

void jute_writer_init(struct jute_writer *w);
/* A writer into the caller's buf of cap bytes: a write past cap fails with
 * ZN_TOOBIG (sticky, as any error) instead of growing it. */
void jute_writer_init_fixed(struct jute_writer *w, uint8_t *buf, size_t cap);
void jute_writer_free(struct jute_writer *w);
/* Empties the writer, keeping its memory. */
void jute_writer_reset(struct jute_writer *w);
/* Hands the bytes to the caller (who frees them with free()); the writer is left empty. */
uint8_t *jute_writer_take(struct jute_writer *w, size_t *len);
int jute_write_buffer(struct jute_writer *w, const void *data, int32_t len); /* len -1: null */
int jute_write_string(struct jute_writer *w, const char *s);                 /* NULL: null */
int jute_write_raw(struct jute_writer *w, const void *data, size_t len);

static inline void jute_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t jute_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The fixed-size primitives are inline: when the writer has room (or the
 * reader the bytes) and no error, they are a few instructions; otherwise
 * jute_write_raw / jute_read_fixed_slow grow, fail and stick. */
static inline int jute_write_int(struct jute_writer *w, int32_t v)
{
    uint8_t b[4];
    if (w->error == 0 && w->cap - w->len >= 4) {
        jute_put_be32(w->data + w->len, (uint32_t)v);
        w->len += 4;
        return 0;
    }
    jute_put_be32(b, (uint32_t)v);
    return jute_write_raw(w, b, 4);
}

static inline int jute_write_long(struct jute_writer *w, int64_t v)
{
    uint8_t b[8];
    uint8_t *p = w->error == 0 && w->cap - w->len >= 8 ? w->data + w->len : b;
    jute_put_be32(p, (uint32_t)((uint64_t)v >> 32));
    jute_put_be32(p + 4, (uint32_t)v);
    if (p == b)
        return jute_write_raw(w, b, 8);
    w->len += 8;
    return 0;
}

static inline int jute_write_bool(struct jute_writer *w, bool v)
{
    uint8_t b = v ? 1 : 0;
    if (w->error == 0 && w->cap > w->len) {
        w->data[w->len++] = b;
        return 0;
    }
    return jute_write_raw(w, &b, 1);
}
/* Framing: begin reserves the 4-byte length and returns its offset; end fills it in. */
size_t jute_frame_begin(struct jute_writer *w);
int jute_frame_end(struct jute_writer *w, size_t frame_offset);

struct jute_reader {
    const uint8_t *data; /* borrowed */
    size_t len;
    size_t pos;
    int error;
    struct zn_arena *arena; /* borrowed; where strings/vectors go */
    /* Strings read that held a NUL byte: their C copy ends at it, so a path
     * "/a\0b" would read as "/a".  The server refuses such requests
     * (ZooKeeper: BADARGUMENTS) rather than act on a shortened path. */
    uint32_t strings_with_nul;
};

void jute_reader_init(struct jute_reader *r, const void *data, size_t len, struct zn_arena *arena);
static inline size_t jute_remaining(const struct jute_reader *r) { return r->len - r->pos; }
/* The next n bytes (consumed), or NULL with the sticky error set when fewer
 * remain or the reader has failed. */
const uint8_t *jute_read_fixed_slow(struct jute_reader *r, size_t n);
static inline const uint8_t *jute_read_fixed(struct jute_reader *r, size_t n)
{
    if (r->error == 0 && r->len - r->pos >= n) {
        const uint8_t *p = r->data + r->pos;
        r->pos += n;
        return p;
    }
    return jute_read_fixed_slow(r, n);
}

static inline int jute_read_int(struct jute_reader *r, int32_t *v)
{
    const uint8_t *p = jute_read_fixed(r, 4);
    if (p == NULL) {
        *v = 0; /* defined, though the caller must look at the error */
        return r->error;
    }
    *v = (int32_t)jute_get_be32(p);
    return 0;
}

static inline int jute_read_long(struct jute_reader *r, int64_t *v)
{
    const uint8_t *p = jute_read_fixed(r, 8);
    if (p == NULL) {
        *v = 0;
        return r->error;
    }
    *v = (int64_t)(((uint64_t)jute_get_be32(p) << 32) | jute_get_be32(p + 4));
    return 0;
}

static inline int jute_read_bool(struct jute_reader *r, bool *v)
{
    const uint8_t *p = jute_read_fixed(r, 1);
    if (p == NULL) {
        *v = false;
        return r->error;
    }
    *v = *p != 0; /* as Java's DataInput.readBoolean */
    return 0;
}
int jute_read_buffer(struct jute_reader *r, struct jute_buf *v);  /* borrowed from input */
int jute_read_string(struct jute_reader *r, char **v);            /* arena copy, NUL-terminated; NULL for null */

/*
 * ---- records described once ----
 *
 * Each record is one function of (struct jute_io *, struct record *) that
 * lists its fields in wire order through jute_io_int(), jute_io_string(), ...
 * The same function decodes (io reads: the fields are filled in) and encodes
 * (io writes: the fields are only read), so a record cannot be read
 * differently from how it is written.  Errors are the reader's or writer's
 * (sticky), so a record function checks once at the end.
 */
struct jute_io {
    struct jute_reader *r; /* decoding when set, else encoding to w */
    struct jute_writer *w;
};

/* Record functions are forced inline: each jute_read_X / jute_write_X
 * wrapper builds its io as a constant, so the compiler folds every "reading
 * or writing?" test away and the wrapper is the hand-written decoder or
 * encoder it replaces, at no cost per field. */
#define JUTE_IO_INLINE static inline __attribute__((always_inline))

static inline struct jute_io jute_io_reader(struct jute_reader *r) { return (struct jute_io){.r = r, .w = NULL}; }
static inline struct jute_io jute_io_writer(struct jute_writer *w) { return (struct jute_io){.r = NULL, .w = w}; }
static inline bool jute_io_reading(const struct jute_io *io) { return io->r != NULL; }
static inline int jute_io_error(const struct jute_io *io) { return io->r ? io->r->error : io->w->error; }
/* The out-of-line helpers take the reader and writer by value, so that an io
 * never escapes and the compiler keeps knowing which one it is. */
int jute_io_fail_rw(struct jute_reader *r, struct jute_writer *w, int code);
static inline int jute_io_fail(struct jute_io *io, int code) { return jute_io_fail_rw(io->r, io->w, code); }

static inline int jute_io_int(struct jute_io *io, int32_t *v)
{
    return io->r ? jute_read_int(io->r, v) : jute_write_int(io->w, *v);
}
static inline int jute_io_long(struct jute_io *io, int64_t *v)
{
    return io->r ? jute_read_long(io->r, v) : jute_write_long(io->w, *v);
}
static inline int jute_io_bool(struct jute_io *io, bool *v)
{
    return io->r ? jute_read_bool(io->r, v) : jute_write_bool(io->w, *v);
}
static inline int jute_io_buffer(struct jute_io *io, struct jute_buf *v)
{
    return io->r ? jute_read_buffer(io->r, v) : jute_write_buffer(io->w, v->data, v->len);
}
static inline int jute_io_string(struct jute_io *io, char **v)
{
    return io->r ? jute_read_string(io->r, v) : jute_write_string(io->w, *v);
}
/* A trailing optional bool (present when bytes remain): reading sets
 * *present from the input, writing writes *v only when *present. */
static inline int jute_io_optional_bool(struct jute_io *io, bool *present, bool *v)
{
    if (io->r)
        *present = io->r->error == 0 && jute_remaining(io->r) > 0;
    return *present ? jute_io_bool(io, v) : jute_io_error(io);
}
/* A vector's count (-1: null) and its array.  Writing, writes *count and
 * returns items.  Reading, reads *count, checked against the input (each
 * element at least min_elem_bytes), and returns an arena array of *count
 * elements of elem_bytes (NULL when *count <= 0; on error *count is 0).
 * JUTE_IO_VEC stores the array only when reading (an encoded record may be
 * read-only memory); the caller then visits the *count elements. */
void *jute_io_vec(struct jute_reader *r, struct jute_writer *w, int32_t *count, void *items, size_t elem_bytes,
                  size_t min_elem_bytes);
#define JUTE_IO_VEC(io, count, items, min_elem_bytes)                                             \
    do {                                                                                          \
        void *jute_items_ = jute_io_vec((io)->r, (io)->w, (count), (items), sizeof(*(items)), (min_elem_bytes)); \
        if (jute_io_reading(io))                                                                  \
            (items) = jute_items_;                                                                \
    } while (0)

/* ---- records ---- */

struct zn_id {
    char *scheme;
    char *id;
};

struct zn_acl {
    int32_t perms;
    struct zn_id id;
};

/* count == -1: a null vector. */
struct zn_acl_vec {
    int32_t count;
    struct zn_acl *items;
};

struct zn_string_vec {
    int32_t count;
    char **items;
};

struct zn_client_info {
    char *auth_scheme;
    char *user;
};

int jute_write_stat(struct jute_writer *w, const struct zn_stat *s);
int jute_read_stat(struct jute_reader *r, struct zn_stat *s);
int jute_write_acl_vec(struct jute_writer *w, const struct zn_acl_vec *v);
int jute_read_acl_vec(struct jute_reader *r, struct zn_acl_vec *v);
int jute_write_string_vec(struct jute_writer *w, const struct zn_string_vec *v);
int jute_read_string_vec(struct jute_reader *r, struct zn_string_vec *v);

/* The records inside others, inline like every record function (see
 * JUTE_IO_INLINE). */
/* Stat's 68 bytes and a reply header's 16, written with one room check and
 * whole-word stores: every reply carries a header and every read's a stat,
 * and field by field they cost ~290 instructions per reply (the compiler
 * keeps jute_io_long out of line there). */
#define JUTE_STAT_BYTES 68
#define JUTE_REPLY_HEADER_BYTES 16
int jute_write_stat_packed(struct jute_writer *w, const struct zn_stat *s);
int jute_write_reply_header_packed(struct jute_writer *w, int32_t xid, int64_t zxid, int32_t err);

JUTE_IO_INLINE int jute_io_stat(struct jute_io *io, struct zn_stat *s)
{
    if (!jute_io_reading(io))
        return jute_write_stat_packed(io->w, s);
    jute_io_long(io, &s->czxid);
    jute_io_long(io, &s->mzxid);
    jute_io_long(io, &s->ctime);
    jute_io_long(io, &s->mtime);
    jute_io_int(io, &s->version);
    jute_io_int(io, &s->cversion);
    jute_io_int(io, &s->aversion);
    jute_io_long(io, &s->ephemeral_owner);
    jute_io_int(io, &s->data_length);
    jute_io_int(io, &s->num_children);
    return jute_io_long(io, &s->pzxid);
}

/* Smallest ACL on the wire: perms + two empty strings. */
#define JUTE_ACL_MIN_BYTES 12

JUTE_IO_INLINE int jute_io_acl_vec(struct jute_io *io, struct zn_acl_vec *v)
{
    JUTE_IO_VEC(io, &v->count, v->items, JUTE_ACL_MIN_BYTES);
    for (int32_t i = 0; i < v->count; i++) {
        jute_io_int(io, &v->items[i].perms);
        jute_io_string(io, &v->items[i].id.scheme);
        jute_io_string(io, &v->items[i].id.id);
    }
    int rc = jute_io_error(io);
    if (rc != 0 && jute_io_reading(io)) {
        v->count = 0;
        v->items = NULL;
    }
    return rc;
}

JUTE_IO_INLINE int jute_io_string_vec(struct jute_io *io, struct zn_string_vec *v)
{
    JUTE_IO_VEC(io, &v->count, v->items, 4);
    for (int32_t i = 0; i < v->count; i++)
        jute_io_string(io, &v->items[i]);
    int rc = jute_io_error(io);
    if (rc != 0 && jute_io_reading(io)) {
        v->count = 0;
        v->items = NULL;
    }
    return rc;
}

struct zn_connect_request {
    int32_t protocol_version;
    int64_t last_zxid_seen;
    int32_t timeout_ms;
    int64_t session_id;
    struct jute_buf passwd;
    bool read_only;
    bool has_read_only; /* old clients omit the trailing readOnly byte */
};

struct zn_connect_response {
    int32_t protocol_version;
    int32_t timeout_ms;
    int64_t session_id;
    struct jute_buf passwd;
    bool read_only;
    bool has_read_only;
};

int jute_write_connect_request(struct jute_writer *w, const struct zn_connect_request *c);
int jute_read_connect_request(struct jute_reader *r, struct zn_connect_request *c);
int jute_write_connect_response(struct jute_writer *w, const struct zn_connect_response *c);
int jute_read_connect_response(struct jute_reader *r, struct zn_connect_response *c);

struct zn_request_header {
    int32_t xid;
    int32_t type;
};

struct zn_reply_header {
    int32_t xid;
    int64_t zxid;
    int32_t err;
};

int jute_write_request_header(struct jute_writer *w, const struct zn_request_header *h);
int jute_read_request_header(struct jute_reader *r, struct zn_request_header *h);
int jute_write_reply_header(struct jute_writer *w, const struct zn_reply_header *h);
int jute_read_reply_header(struct jute_reader *r, struct zn_reply_header *h);

struct zn_watcher_event {
    int32_t type;
    int32_t state;
    char *path;
};

int jute_write_watcher_event(struct jute_writer *w, const struct zn_watcher_event *e);
int jute_read_watcher_event(struct jute_reader *r, struct zn_watcher_event *e);

/*
 * A request body, tagged by opcode.  Which fields are meaningful depends on
 * type (the record of zookeeper.jute named in the comment):
 *   CREATE, CREATE2, CREATECONTAINER  CreateRequest: path data acl flags
 *   CREATETTL                         CreateTTLRequest: path data acl flags ttl
 *   DELETE                            DeleteRequest: path version
 *   EXISTS, GETDATA, GETCHILDREN,
 *   GETCHILDREN2                      ...Request: path watch
 *   SETDATA                           SetDataRequest: path data version
 *   GETACL                            GetACLRequest: path
 *   SETACL                            SetACLRequest: path acl version
 *   CHECK                             CheckVersionRequest: path version
 *   SYNC, DELETECONTAINER             path only
 *   GETALLCHILDRENNUMBER              path only
 *   GETEPHEMERALS                     GetEphemeralsRequest: path (prefixPath)
 *   ADDWATCH                          AddWatchRequest: path flags(mode)
 *   CHECKWATCHES, REMOVEWATCHES       path flags(watcher type)
 *   AUTH                              AuthPacket: auth_type scheme auth
 *   SASL                              GetSASLRequest: auth (the token)
 *   SETWATCHES                        SetWatches: relative_zxid watches[0..2]
 *   SETWATCHES2                       SetWatches2: relative_zxid watches[0..4]
 *   MULTI, MULTIREAD                  MultiHeader-framed ops[], ended by {-1, true, -1}
 *   RECONFIG                          ReconfigRequest: joining leaving new_members config_id
 *   PING, CLOSESESSION, WHOAMI        no body
 */
enum zn_watch_list {
    ZN_WATCHES_DATA = 0,
    ZN_WATCHES_EXIST = 1,
    ZN_WATCHES_CHILD = 2,
    ZN_WATCHES_PERSISTENT = 3,
    ZN_WATCHES_PERSISTENT_RECURSIVE = 4,
    ZN_WATCHES_KINDS = 5,
};

struct zn_request {
    int32_t type;
    char *path;
    struct jute_buf data;
    struct zn_acl_vec acl;
    int32_t flags;   /* create mode, addWatch mode, or watcher type */
    int32_t version;
    int64_t ttl;
    int64_t mtime_ms; /* SETDATATIME */
    bool watch;
    /* AUTH; SASL's token is in auth */
    int32_t auth_type;
    char *scheme;
    struct jute_buf auth;
    /* SETWATCHES, SETWATCHES2 */
    int64_t relative_zxid;
    struct zn_string_vec watches[ZN_WATCHES_KINDS];
    /* MULTI, MULTIREAD */
    int32_t op_count;
    struct zn_request *ops;
    /* RECONFIG */
    char *joining;
    char *leaving;
    char *new_members;
    int64_t config_id;
};

/* Encodes/decodes the body only (after the RequestHeader).  The decoder
 * rejects unknown opcodes with ZN_UNIMPLEMENTED, and a multi whose ops nest
 * or are not allowed in a multi with ZN_MARSHALLINGERROR. */
int jute_write_request(struct jute_writer *w, const struct zn_request *req);
int jute_read_request(struct jute_reader *r, int32_t type, struct zn_request *req);

/*
 * A response body, by the opcode of its request.  When the ReplyHeader's err
 * is non-zero there is no body (except for MULTI, whose body carries the
 * per-op results).  Fields:
 *   CREATE                            CreateResponse: path
 *   CREATE2, CREATETTL, CREATECONTAINER  Create2Response: path stat
 *                                     (a CreateResponse prefix)
 *   EXISTS, SETDATA, SETACL           stat
 *   GETDATA                           GetDataResponse: data stat
 *   GETACL                            GetACLResponse: acl stat
 *   GETCHILDREN                       GetChildrenResponse: children
 *   GETCHILDREN2                      GetChildren2Response: children stat
 *   GETEPHEMERALS                     GetEphemeralsResponse: children
 *   SYNC                              SyncResponse: path
 *   GETALLCHILDRENNUMBER              number
 *   WHOAMI                            client_info[]
 *   RECONFIG                          GetDataResponse: data stat
 *   SASL                              SetSASLResponse: data (the token; len -1: null)
 *   MULTI, MULTIREAD                  results[]: each a response of its op's
 *                                     type; err != 0 means an ErrorResponse
 *                                     (type ZN_OP_ERROR on the wire).  Only
 *                                     create, create2, delete, setData, check,
 *                                     getData, getChildren are valid result
 *                                     types (MultiResponse.java); a
 *                                     createTTL/createContainer result is
 *                                     written as create2 (path stat), as
 *                                     ZooKeeper does, and decodes as create2
 *   DELETE, DELETECONTAINER, CHECK, PING, AUTH, SETWATCHES, SETWATCHES2,
 *   ADDWATCH, REMOVEWATCHES, CHECKWATCHES, CLOSESESSION   no body
 * For MULTIREAD, a failed getData/getChildren is an ErrorResponse in place.
 */
struct zn_response {
    int32_t type;
    int32_t err;     /* per-op error inside a multi */
    char *path;
    struct jute_buf data;
    struct zn_stat stat;
    struct zn_string_vec children;
    struct zn_acl_vec acl;
    int32_t number;
    int32_t client_info_count;
    struct zn_client_info *client_info;
    int32_t result_count;
    struct zn_response *results;
};

int jute_write_response(struct jute_writer *w, const struct zn_response *resp);
int jute_read_response(struct jute_reader *r, int32_t type, struct zn_response *resp);

/* ---- opcodes (the table is ZN_OPCODES in znode/proto.h) ---- */

/* The ZN_OPF_* flags of an opcode; 0 for one not in the table. */
unsigned zn_op_flags(int32_t type);
/* "create", "getData", ...: for logs, 4-letter words and metrics; "unknown"
 * for an opcode not in the table. */
const char *zn_op_name(int32_t type);
/* True for opcodes that change state (must go through the write path). */
static inline bool zn_op_is_write(int32_t type) { return (zn_op_flags(type) & ZN_OPF_WRITE) != 0; }
static inline bool zn_op_is_create(int32_t type) { return (zn_op_flags(type) & ZN_OPF_CREATE) != 0; }

#ifdef __cplusplus
}
#endif
#endif
