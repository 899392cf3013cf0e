/*
 * zkdata: the reader of ZooKeeper's snapshot and log files (zkdata.h).  A
 * file is mapped read-only and read with the jute reader the wire codec
 * uses; the checksum of a snapshot is checked before any record is handed
 * over, that of a log entry before the entry is.  A compressed snapshot
 * (ZooKeeper's SnapStream: the name ends in .gz or .snappy) is first
 * inflated into memory whole; its checksum covers the inflated bytes.
 */
#include "zkdata.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>
#include <zlib.h>

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

/* A file mapped read-only (or, compressed, inflated into malloc'd memory),
 * with the reader (and its arena) over it. */
struct zkfile {
    const uint8_t *data;
    size_t len;
    bool inflated; /* data is malloc'd, not mapped */
    struct zn_arena arena;
    struct jute_reader r;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Grows *out to hold at least need bytes (doubling), within the limit. */
static int grow(uint8_t **out, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    if (need > ZKDATA_INFLATED_MAX_BYTES)
        return ZN_TOOBIG;
    size_t c = *cap ? *cap : 1 << 20;
    while (c < need)
        c *= 2;
    if (c > ZKDATA_INFLATED_MAX_BYTES)
        c = ZKDATA_INFLATED_MAX_BYTES;
    uint8_t *p = realloc(*out, c);
    if (!p)
        return ZN_NOMEMORY;
    *out = p;
    *cap = c;
    return 0;
}

/* java.util.zip.GZIPOutputStream's stream, inflated whole.  A stream that
 * ends before its trailer is ZKDATA_CUT_SHORT: cut short (a write ZooKeeper never
 * finished), not damaged. */
static int inflate_gzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return ZN_NOMEMORY;
    size_t cap = 0;
    int rc = 0, zrc = Z_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(in_len > UINT32_MAX ? UINT32_MAX : in_len);
    *out = NULL;
    while (zrc == Z_OK) {
        if ((rc = grow(out, &cap, z.total_out + 1)) != 0)
            break;
        z.next_out = *out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out > UINT32_MAX ? UINT32_MAX : cap - z.total_out);
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc == Z_BUF_ERROR && z.avail_in == 0)
            rc = ZKDATA_CUT_SHORT; /* no more input, no end: cut short */
        else if (zrc != Z_OK && zrc != Z_STREAM_END)
            rc = ZN_CORRUPT;
        if (rc)
            break;
    }
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc == 0 && z.total_in != in_len)
        rc = ZN_CORRUPT; /* bytes after the gzip member */
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Snappy's densest element is a 2-byte copy of 11 bytes or a 3-byte copy of
 * 64 (format_description.txt), so no block inflates to more than about 22
 * times its size; 32 leaves room. */
#define SNAPPY_MAX_EXPANSION 32

/* xerial snappy-java's SnappyOutputStream, which ZooKeeper uses: the
 * header (its magic, then two ints: version, compatible version), then
 * blocks of an int length and that many bytes of raw snappy. */
static int inflate_snappy(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    if (in_len < sizeof magic + 8)
        return ZKDATA_CUT_SHORT;
    if (memcmp(in, magic, sizeof magic) != 0)
        return ZN_CORRUPT;
    size_t at = sizeof magic + 8, cap = 0, used = 0;
    int rc = 0;
    *out = NULL;
    while (rc == 0 && at < in_len) {
        if (in_len - at < 4) {
            rc = ZKDATA_CUT_SHORT;
            break;
        }
        uint32_t block = (uint32_t)in[at] << 24 | (uint32_t)in[at + 1] << 16 |
                         (uint32_t)in[at + 2] << 8 | in[at + 3];
        at += 4;
        if (block > in_len - at) {
            rc = ZKDATA_CUT_SHORT;
            break;
        }
        size_t plain = 0;
        if (snappy_uncompressed_length((const char *)in + at, block, &plain) != SNAPPY_OK ||
            plain > (size_t)block * SNAPPY_MAX_EXPANSION + SNAPPY_MAX_EXPANSION) {
            /* A length no block of this size can inflate to: damage, not a
             * reason to allocate gigabytes before snappy finds out. */
            rc = ZN_CORRUPT;
            break;
        }
        if ((rc = grow(out, &cap, used + plain + 1)) != 0)
            break;
        size_t got = cap - used;
        if (snappy_uncompress((const char *)in + at, block, (char *)*out + used, &got) != SNAPPY_OK)
            rc = ZN_CORRUPT;
        used += got;
        at += block;
    }
    *out_len = used;
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int read_header(struct jute_reader *r, int32_t magic, const char *path,
                       struct zkdata_error *err);

/* Maps path (inflating it when its name says it is compressed) and reads
 * its header.  On error nothing needs closing. */
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
    f->inflated = false;
    close(fd);
    if (f->len && f->data == MAP_FAILED)
        return fail(err, ZN_IO, "%s: %s", path, strerror(errno));
    bool gz = ends_with(path, ".gz"), snappy = ends_with(path, ".snappy");
    if (gz || snappy) {
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        int rc = gz ? inflate_gzip(f->data, f->len, &plain, &plain_len)
                    : inflate_snappy(f->data, f->len, &plain, &plain_len);
        if (f->len)
            munmap((void *)f->data, f->len);
        if (rc == ZKDATA_CUT_SHORT)
            return fail(err, ZKDATA_CUT_SHORT, "%s is cut short: its %s stream ends early", path,
                        gz ? "gzip" : "snappy");
        if (rc == ZN_TOOBIG)
            return fail(err, rc, "%s inflates to more than %llu bytes", path,
                        (unsigned long long)ZKDATA_INFLATED_MAX_BYTES);
        if (rc)
            return fail(err, rc, "%s is not a valid %s stream", path, gz ? "gzip" : "snappy");
        f->data = plain;
        f->len = plain_len;
        f->inflated = true;
    }
    zn_arena_init(&f->arena);
    jute_reader_init(&f->r, f->data, f->len, &f->arena);
    int rc = read_header(&f->r, magic, path, err);
    if (rc) {
        zn_arena_free(&f->arena);
        if (f->inflated)
            free((void *)f->data);
        else if (f->len)
            munmap((void *)f->data, f->len);
    }
    return rc;
}

static void zkfile_close(struct zkfile *f)
{
    zn_arena_free(&f->arena);
    if (f->inflated)
        free((void *)f->data);
    else if (f->len)
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
        return fail(err, ZN_CORRUPT, "%s is gzip-compressed but not named .gz, as ZooKeeper "
                    "names it", path);
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
        rc = fail(err, ZKDATA_CUT_SHORT, "%s is cut short (%zu bytes)", path, f.len);
    if (rc == 0 && memcmp(f.data + f.len - 5, "\0\0\0\1/", 5) != 0)
        rc = fail(err, ZKDATA_CUT_SHORT, "%s is cut short: it does not end with the path \"/\" "
                  "a complete snapshot ends with", path);
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

/* The zxid a ZooKeeper file name carries ("snapshot.1a2b", "log.100000001",
 * "snapshot.1a2b.gz"): FileTxnLog/Util.getZxidFromName. */
static bool file_zxid(const char *name, const char *prefix, uint64_t *zxid)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || !name[n])
        return false;
    char *end;
    errno = 0;
    *zxid = strtoull(name + n, &end, 16);
    if (errno != 0 || end == name + n)
        return false;
    return *end == '\0' || (strcmp(prefix, "snapshot.") == 0 &&
                            (strcmp(end, ".gz") == 0 || strcmp(end, ".snappy") == 0));
}

static int file_order(const void *a, const void *b)
{
    const struct zkdata_file *x = a, *y = b;
    if (x->zxid != y->zxid)
        return x->zxid < y->zxid ? -1 : 1;
    return (int)y->snapshot - (int)x->snapshot;
}

long zkdata_list(const char *dir, struct zkdata_file *files, size_t cap)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return -1;
    size_t count = 0;
    for (struct dirent *de; (de = readdir(dh)) != NULL;) {
        struct zkdata_file f = {0};
        f.snapshot = file_zxid(de->d_name, "snapshot.", &f.zxid);
        if ((!f.snapshot && !file_zxid(de->d_name, "log.", &f.zxid)) ||
            strlen(de->d_name) >= sizeof f.name)
            continue;
        if (count == cap) {
            closedir(dh);
            errno = E2BIG;
            return -1;
        }
        snprintf(f.name, sizeof f.name, "%s", de->d_name);
        files[count++] = f;
    }
    closedir(dh);
    qsort(files, count, sizeof files[0], file_order);
    return (long)count;
}
