/*
 * zkdata: the reader of ZooKeeper's snapshot and log files (zkdata.h).  A
 * file is mapped read-only and read with the jute reader the wire codec
 * uses; the checksum of a snapshot is checked before any record is handed
 * over, that of a log entry before the entry is.
 */
#include "zkdata.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "znode/errors.h"

/* The snapshot's trailer: the Adler32 (a long) and the path "/" (length 1). */
#define ZKDATA_TRAILER_BYTES (8 + 4 + 1)
/* ZooKeeper 3.6+'s ZxidDigest: zxid (long), digest version (int), digest (long). */
#define ZKDATA_DIGEST_BYTES (8 + 4 + 8)
#define ZKDATA_HEADER_BYTES (4 + 4 + 8)

uint32_t zkdata_adler32(uint32_t adler, const uint8_t *data, size_t len)
{
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (len > 0) {
        size_t n = len < 5552 ? len : 5552; /* no overflow before the modulo */
        len -= n;
        while (n--) {
            a += *data++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return b << 16 | a;
}

static int fail(struct zkdata_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct zkdata_error *err, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->what, sizeof err->what, fmt, ap);
    va_end(ap);
    return rc;
}

/* A file mapped read-only, with the reader (and its arena) over it. */
struct zkfile {
    const uint8_t *data;
    size_t len;
    struct zn_arena arena;
    struct jute_reader r;
};

static int read_header(struct jute_reader *r, int32_t magic, const char *path,
                       struct zkdata_error *err);

/* Maps path and reads its header.  On error nothing needs closing. */
static int zkfile_open(const char *path, int32_t magic, struct zkfile *f, struct zkdata_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, ZN_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fail(err, ZN_IO, "%s: %s", path, strerror(errno));
    }
    f->len = (size_t)st.st_size;
    f->data = f->len ? mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (f->len && f->data == MAP_FAILED)
        return fail(err, ZN_IO, "%s: %s", path, strerror(errno));
    zn_arena_init(&f->arena);
    jute_reader_init(&f->r, f->data, f->len, &f->arena);
    int rc = read_header(&f->r, magic, path, err);
    if (rc) {
        zn_arena_free(&f->arena);
        if (f->len)
            munmap((void *)f->data, f->len);
    }
    return rc;
}

static void zkfile_close(struct zkfile *f)
{
    zn_arena_free(&f->arena);
    if (f->len)
        munmap((void *)f->data, f->len);
}

/* The file header; its magic tells a snapshot, a log and a compressed snapshot apart. */
static int read_header(struct jute_reader *r, int32_t magic, const char *path,
                       struct zkdata_error *err)
{
    int32_t got = 0, version = 0;
    int64_t dbid = 0;
    const uint8_t *raw = (const uint8_t *)r->data;
    if (r->len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b)
        return fail(err, ZN_CORRUPT, "%s is gzip-compressed: not read yet (only uncompressed "
                    "snapshots)", path);
    jute_read_int(r, &got);
    jute_read_int(r, &version);
    jute_read_long(r, &dbid);
    if (r->error || got != magic)
        return fail(err, ZN_CORRUPT, "%s is not a ZooKeeper %s (no %s header)", path,
                    magic == ZKDATA_SNAPSHOT_MAGIC ? "snapshot" : "transaction log",
                    magic == ZKDATA_SNAPSHOT_MAGIC ? "ZKSN" : "ZKLG");
    if (version != ZKDATA_VERSION)
        return fail(err, ZN_CORRUPT, "%s has format version %d; this reads version %d", path,
                    (int)version, ZKDATA_VERSION);
    return 0;
}

static int read_acl_cache(struct jute_reader *r, const struct zkdata_visitor *v)
{
    int32_t count = 0;
    jute_read_int(r, &count);
    if (r->error || count < 0 || (size_t)count > jute_remaining(r) / 12)
        return ZN_CORRUPT;
    for (int32_t i = 0; i < count; i++) {
        int64_t index = 0;
        struct zn_acl_vec acl = {0, NULL};
        jute_read_long(r, &index);
        jute_read_acl_vec(r, &acl);
        if (r->error)
            return ZN_CORRUPT;
        int rc = v->acl ? v->acl(v->ctx, index, &acl) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int read_nodes(struct jute_reader *r, const struct zkdata_visitor *v, struct zn_arena *arena)
{
    for (size_t n = 0;; n++) {
        if (n % 4096 == 0)
            zn_arena_reset(arena); /* the paths of one batch of nodes at a time */
        char *path = NULL;
        jute_read_string(r, &path);
        if (r->error || path == NULL)
            return ZN_CORRUPT;
        if (strcmp(path, "/") == 0)
            return 0; /* DataTree's end marker; the root itself is "" */
        struct jute_buf data = {NULL, -1};
        int64_t acl_index = 0;
        struct zkdata_stat s;
        jute_read_buffer(r, &data);
        jute_read_long(r, &acl_index);
        jute_read_long(r, &s.czxid);
        jute_read_long(r, &s.mzxid);
        jute_read_long(r, &s.ctime);
        jute_read_long(r, &s.mtime);
        jute_read_int(r, &s.version);
        jute_read_int(r, &s.cversion);
        jute_read_int(r, &s.aversion);
        jute_read_long(r, &s.ephemeral_owner);
        jute_read_long(r, &s.pzxid);
        if (r->error || (path[0] != '\0' && path[0] != '/'))
            return ZN_CORRUPT;
        int rc = v->node ? v->node(v->ctx, path[0] ? path : "/", data, acl_index, &s) : 0;
        if (rc)
            return rc;
    }
}

int zkdata_read_snapshot(const char *path, const struct zkdata_visitor *v, int64_t *digest_zxid,
                         struct zkdata_error *err)
{
    *digest_zxid = 0;
    struct zkfile f;
    int rc = zkfile_open(path, ZKDATA_SNAPSHOT_MAGIC, &f, err);
    if (rc)
        return rc;
    struct jute_reader r = f.r; /* positioned after the header */
    if (f.len < ZKDATA_HEADER_BYTES + ZKDATA_TRAILER_BYTES)
        rc = fail(err, ZN_CORRUPT, "%s is cut short (%zu bytes)", path, f.len);
    if (rc == 0) {
        /* The checksum first: nothing of a damaged snapshot is handed over. */
        size_t body = f.len - ZKDATA_TRAILER_BYTES;
        const uint8_t *t = f.data + body;
        uint64_t stored = 0;
        for (int i = 0; i < 8; i++)
            stored = stored << 8 | t[i];
        uint32_t computed = zkdata_adler32(1, f.data, body);
        if (stored != computed || memcmp(t + 8, "\0\0\0\1/", 5) != 0)
            rc = fail(err, ZN_CORRUPT, "%s fails its checksum (stored %" PRIu64 ", computed %u): "
                      "it is damaged or cut short", path, stored, computed);
    }
    if (rc == 0) {
        int32_t count = 0;
        jute_read_int(&r, &count);
        if (r.error || count < 0 || (size_t)count > jute_remaining(&r) / 12)
            rc = ZN_CORRUPT;
        for (int32_t i = 0; i < count && rc == 0; i++) {
            int64_t id = 0;
            int32_t timeout = 0;
            jute_read_long(&r, &id);
            jute_read_int(&r, &timeout);
            rc = r.error ? ZN_CORRUPT : v->session ? v->session(v->ctx, id, timeout) : 0;
        }
        if (rc == 0)
            rc = read_acl_cache(&r, v);
        if (rc == 0)
            rc = read_nodes(&r, v, &f.arena);
        /* 3.6+ writes the tree's checksum, then the zxid digest and a
         * checksum of everything before it; older versions only the first. */
        size_t rest = jute_remaining(&r);
        if (rc == 0 && rest == 2 * ZKDATA_TRAILER_BYTES + ZKDATA_DIGEST_BYTES) {
            const uint8_t *t = f.data + r.pos;
            uint64_t stored = 0;
            for (int i = 0; i < 8; i++)
                stored = stored << 8 | t[i];
            if (stored != zkdata_adler32(1, f.data, r.pos) || memcmp(t + 8, "\0\0\0\1/", 5) != 0)
                rc = fail(err, ZN_CORRUPT, "%s: the tree fails its checksum", path);
            r.pos += ZKDATA_TRAILER_BYTES;
            int64_t zxid = 0;
            jute_read_long(&r, &zxid);
            *digest_zxid = zxid;
        } else if (rc == 0 && rest != ZKDATA_TRAILER_BYTES) {
            rc = ZN_CORRUPT;
        }
        if (rc == ZN_CORRUPT && !err->what[0])
            fail(err, rc, "%s: a record is malformed at byte %zu", path, r.pos);
    }
    zkfile_close(&f);
    return rc;
}

int zkdata_read_log(const char *path, bool last, const struct zkdata_visitor *v, bool *torn,
                    struct zkdata_error *err)
{
    *torn = false;
    struct zkfile f;
    int rc = zkfile_open(path, ZKDATA_LOG_MAGIC, &f, err);
    if (rc)
        return rc;
    struct jute_reader r = f.r; /* positioned after the header */
    for (uint64_t entry = 0; rc == 0; entry++) {
        size_t at = r.pos;
        int64_t crc = 0;
        int32_t len = 0;
        jute_read_long(&r, &crc);
        jute_read_int(&r, &len);
        if (r.error || (crc == 0 && len == 0))
            break; /* the end, or the zeros ZooKeeper preallocates */
        if (len < 0 || (size_t)len + 1 > jute_remaining(&r) ||
            f.data[r.pos + (size_t)len] != 'B') {
            if (last) {
                *torn = true; /* a write cut short: ZooKeeper reads it as the end */
                break;
            }
            rc = fail(err, ZN_CORRUPT, "%s: entry %" PRIu64 " at byte %zu is cut short, and this "
                      "is not the newest log", path, entry, at);
            break;
        }
        const uint8_t *txn = f.data + r.pos;
        if ((uint64_t)crc != zkdata_adler32(1, txn, (size_t)len)) {
            rc = fail(err, ZN_CORRUPT, "%s: entry %" PRIu64 " at byte %zu fails its checksum",
                      path, entry, at);
            break;
        }
        r.pos += (size_t)len + 1;
        struct jute_reader h;
        jute_reader_init(&h, txn, (size_t)len, &f.arena);
        int64_t session = 0, zxid = 0, time_ms = 0;
        int32_t cxid = 0, type = 0;
        jute_read_long(&h, &session);
        jute_read_int(&h, &cxid);
        jute_read_long(&h, &zxid);
        jute_read_long(&h, &time_ms);
        jute_read_int(&h, &type);
        if (h.error) {
            rc = fail(err, ZN_CORRUPT, "%s: entry %" PRIu64 " at byte %zu has no transaction "
                      "header", path, entry, at);
            break;
        }
        if (v->txn)
            rc = v->txn(v->ctx, session, cxid, zxid, time_ms, type, txn + h.pos,
                        (size_t)len - h.pos);
    }
    zkfile_close(&f);
    return rc;
}
