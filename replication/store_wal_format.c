/*
 * store_wal_format: the log segments' format (store_wal.h) byte by byte:
 * names, records, the scan of one segment and its verdict (a torn tail or
 * damage), the file helpers the live log uses, and the offline walk
 * (znoded --dump), which reads the same way and changes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_io.h"
#include "store_wal_internal.h"
#include "znode/errors.h"

const unsigned char wal_zeros[8];

void wal_name(char out[WAL_NAME_BYTES], uint64_t first)
{
    snprintf(out, WAL_NAME_BYTES, "log.%016" PRIx64, first);
}

/* Parses "log.<16 hex>"; false for anything else. */
bool wal_parse_name(const char *name, uint64_t *first)
{
    if (strncmp(name, "log.", 4) != 0 || strlen(name) != 20)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return v != 0;
}

/* ---- records ----------------------------------------------------------- */


uint32_t wal_key(bool keyed, uint64_t secret)
{
    if (!keyed)
        return 0;
    unsigned char b[8];
    store_put_be64(b, secret);
    return crc32c(b, sizeof b);
}

uint32_t wal_record_crc(uint32_t key, const unsigned char head20[20], const void *data, uint32_t len)
{
    return crc32c_extend(crc32c_extend(key, head20, 20), data, len);
}

/* The header's values are a record's and its span fits in avail (the
 * checksum not yet looked at). */
static bool wal_record_fits(const unsigned char *p, uint64_t avail, struct wal_rec *r)
{
    if (avail < WAL_RECORD_HEADER_BYTES)
        return false;
    r->zxid = store_get_be64(p);
    r->batch = store_get_be64(p + 8);
    r->len = store_get_be32(p + 16);
    if (r->zxid == 0 || r->batch == 0 || r->batch > r->zxid || r->len == 0 ||
        r->len > ZN_STORE_ENTRY_MAX_BYTES)
        return false;
    r->span = WAL_RECORD_HEADER_BYTES + wal_align8(r->len);
    return r->span <= avail;
}

bool wal_record_at(const unsigned char *p, uint64_t avail, uint32_t key, struct wal_rec *r)
{
    return wal_record_fits(p, avail, r) &&
           wal_record_crc(key, p, p + WAL_RECORD_HEADER_BYTES, r->len) == store_get_be32(p + 20);
}

void wal_record_head(unsigned char out[WAL_RECORD_HEADER_BYTES], uint64_t zxid,
                     uint64_t batch, const void *data, uint32_t len, bool corrupt, uint32_t key)
{
    store_put_be64(out, zxid);
    store_put_be64(out + 8, batch);
    store_put_be32(out + 16, len);
    uint32_t crc = wal_record_crc(key, out, data, len);
    store_put_be32(out + 20, corrupt ? ~crc : crc);
}

void wal_put_header(unsigned char out[WAL_SEGMENT_HEADER_BYTES], uint64_t first, uint64_t size,
                    uint64_t secret, uint64_t earlier)
{
    store_put_be32(out, WAL_MAGIC);
    store_put_be32(out + 4, WAL_VERSION);
    store_put_be64(out + 8, first);
    store_put_be64(out + 16, size);
    store_put_be64(out + 24, secret);
    store_put_be64(out + 32, earlier);
}

/* ---- scanning one segment ------------------------------------------------ */

/*
 * The checksums of the look-ahead: records that may start anywhere in the
 * region [start, end) of a map, each claiming up to 64 MB, checked without
 * reading their payload again.  prefix[i] is crc32c(m[start, start + i *
 * WAL_AHEAD_STRIDE)), made in one pass on the first long candidate; then a
 * record's crc32c (from the life's key over its 20 header bytes, then its
 * payload [x, y)) is crc32c_shift(crc(header) ^ P(x), y - x) ^ P(y)
 * (crc32c.h), P within a stride of a kept prefix.
 */
struct wal_ahead {
    const unsigned char *m;
    uint64_t start, end;
    uint32_t key; /* the life's (wal_key): where the record's crc32c starts */
    uint32_t *prefix; /* NULL until needed */
    bool nomem;
    uint64_t candidates, crc_bytes;
};

static uint32_t wal_ahead_crc(struct wal_ahead *ah, uint32_t crc, uint64_t from, uint64_t len)
{
    ah->crc_bytes += len;
    return crc32c_extend(crc, ah->m + from, (size_t)len);
}

/* crc32c(m[start, pos)), start <= pos <= end. */
static uint32_t wal_ahead_prefix(struct wal_ahead *ah, uint64_t pos)
{
    uint64_t i = (pos - ah->start) / WAL_AHEAD_STRIDE, at = ah->start + i * WAL_AHEAD_STRIDE;
    return wal_ahead_crc(ah, ah->prefix[i], at, pos - at);
}

/* r (wal_record_fits at a) has the checksum its header holds. */
static bool wal_ahead_check(struct wal_ahead *ah, uint64_t a, const struct wal_rec *r)
{
    ah->candidates++;
    uint32_t want = store_get_be32(ah->m + a + 20);
    uint32_t head = wal_ahead_crc(ah, ah->key, a, 20);
    uint64_t x = a + WAL_RECORD_HEADER_BYTES, y = x + r->len;
    if (r->len <= WAL_AHEAD_DIRECT_BYTES)
        return wal_ahead_crc(ah, head, x, r->len) == want;
    if (!ah->prefix) {
        size_t n = (size_t)((ah->end - ah->start) / WAL_AHEAD_STRIDE) + 1;
        if (!(ah->prefix = malloc(n * sizeof *ah->prefix))) {
            ah->nomem = true;
            return false;
        }
        ah->prefix[0] = 0;
        for (size_t i = 1; i < n; i++)
            ah->prefix[i] = wal_ahead_crc(ah, ah->prefix[i - 1], ah->start + (i - 1) * WAL_AHEAD_STRIDE,
                                          WAL_AHEAD_STRIDE);
    }
    return (crc32c_shift(head ^ wal_ahead_prefix(ah, x), r->len) ^ wal_ahead_prefix(ah, y)) == want;
}

/* A record of the log at a (a valid one, checksummed as wal_record_at). */
static bool wal_ahead_record_at(struct wal_ahead *ah, uint64_t a, struct wal_rec *r)
{
    return wal_record_fits(ah->m + a, ah->end - a, r) && wal_ahead_check(ah, a, r);
}

/* Whether a record can follow the valid chain (last zxid prev, its group
 * commit batch; batch 0: none in this segment) in the log at all: a later
 * zxid, of no earlier epoch, of the chain's group commit or of a later one.
 * Only these are checksummed: anything else after the gap (a stale record,
 * say) cannot be a record the log still needs.  A client can still plant
 * headers that pass (it knows the zxids): wal_ahead_check's bounded cost,
 * not this filter, is what keeps the look-ahead linear. */
static bool wal_ahead_may_follow(const struct wal_rec *r, uint64_t prev, uint64_t batch)
{
    return r->zxid > prev && r->zxid >> 32 >= prev >> 32 && r->batch <= r->zxid &&
           (r->batch == batch || r->batch > prev);
}

/*
 * Walks the records of one segment (calling fn, when given, for those with
 * from <= zxid <= to), then decides what the first place that is not a
 * valid record is (store_wal.h).  *fn_rc gets fn's non-zero return.
 *
 * A record of this life has a zxid at or above the segment's name; one
 * below it is stale (the file's previous life as a recycled segment,
 * store_wal.h), never replayed, never counted against the segment.
 */
void wal_scan_segment(struct wal_scan *sc, uint64_t from, uint64_t to, wal_record_fn fn,
                             void *ctx, int *fn_rc)
{
    const unsigned char *m = sc->map;
    memset(&sc->seg, 0, sizeof sc->seg);
    sc->seg.first = sc->name_zxid;
    sc->seg.size = sc->size;
    sc->outcome = WAL_CLEAN;
    sc->what = NULL;
    sc->nomem = false;
    sc->ahead_candidates = sc->ahead_crc_bytes = 0;
    uint64_t prev = sc->prev_zxid, batch = 0, off = 0;
    uint32_t version = sc->size >= WAL_SEGMENT_HEADER_BYTES && store_get_be32(m) == WAL_MAGIC
                           ? store_get_be32(m + 4) : 0;
    bool magic = version == WAL_VERSION || version == WAL_VERSION_V1;
    /* version 2: every record's crc is keyed by the life's secret (the
     * header's); version 1 (no secret) is read as it was written.  A header
     * whose magic or version is damaged cannot say which: version 2 is
     * assumed (its secret read where it would be) unless the first record
     * checks as version 1's, so that valid records after a wrong header are
     * still found (damage, refused) rather than taken for a torn tail. */
    struct wal_rec first_v1;
    bool keyed = magic ? version == WAL_VERSION
                       : !(sc->size >= WAL_SEGMENT_HEADER_V1_BYTES &&
                           wal_record_at(m + WAL_SEGMENT_HEADER_V1_BYTES, sc->size - WAL_SEGMENT_HEADER_V1_BYTES,
                                         0, &first_v1));
    uint32_t hdr = keyed ? WAL_SEGMENT_HEADER_BYTES : WAL_SEGMENT_HEADER_V1_BYTES;
    uint64_t secret = keyed ? store_get_be64(m + 24) : 0;
    uint32_t key = wal_key(keyed, secret);
    bool header = magic && store_get_be64(m + 8) == sc->name_zxid;
    /* A recycled segment not yet begun: its header is still the spare's (the
     * highest zxid of its earlier lives, below this name, and the file's size). */
    bool earlier = magic && store_get_be64(m + 8) < sc->name_zxid && store_get_be64(m + 16) == sc->size;
    /* Version 2: a file with earlier lives (its header says so, or is not
     * whole), whose records fail this life's check (their secrets were
     * others): bytes that are not a record of this life may be theirs. */
    bool recycled = keyed && (!(header || earlier) || store_get_be64(m + 32) != 0);
    sc->seg.keyed = keyed;
    sc->seg.hdr = hdr;
    sc->seg.secret = secret;
    sc->seg.key = key;
    sc->seg.earlier = keyed && header ? store_get_be64(m + 32) : 0;
    if (sc->size < WAL_MIN_SEGMENT_BYTES || (header && store_get_be64(m + 16) > sc->size)) {
        sc->outcome = WAL_DAMAGED;
        sc->bad_at = sc->size;
        sc->what = "the file is cut short of the size its header says it was made with";
        return;
    }
    if (header) {
        off = hdr;
        struct wal_rec r;
        while (wal_record_at(m + off, sc->size - off, key, &r) && r.zxid > prev &&
               (off == hdr ? r.zxid == sc->name_zxid : true) &&
               (r.batch == batch || (r.batch == r.zxid && r.batch > prev))) {
            if (fn && !*fn_rc && r.zxid >= from && r.zxid <= to)
                *fn_rc = fn(ctx, r.zxid, m + off + WAL_RECORD_HEADER_BYTES, r.len);
            prev = r.zxid;
            batch = r.batch;
            sc->seg.entries++;
            sc->seg.bytes += r.len;
            sc->seg.last = sc->seg.high = r.zxid;
            sc->seg.last_batch = r.batch;
            off += r.span;
            sc->seg.end = off;
        }
    }
    /* off: the first place that is not a valid record (0: the header). */
    sc->bad_at = off;
    uint64_t from_at = earlier ? hdr : off;
    /* After it: this life's records (of a torn or lost group commit) and
     * other bytes, counted as this life's torn tail only before the first
     * stale byte (in a recycled version 2 file, any bytes that are not a
     * record of this life: an earlier life's records fail this life's
     * check, their secret was another).  The look-ahead costs at most one
     * pass of crc32c over the rest of the segment and a bounded amount per
     * header that may follow the chain, whatever lengths the headers claim
     * (the region may be 64 MB of an earlier life's records and payloads,
     * or of headers a client planted in its data). */
    uint64_t last_nonzero = from_at, first_batch = 0;
    bool found = false, several = false, starts = false, stale = false;
    struct wal_ahead ah = {.m = m, .start = from_at, .end = sc->size, .key = key};
    for (uint64_t a = from_at; a + 8 <= sc->size && !ah.nomem;) {
        if (memcmp(m + a, wal_zeros, 8) == 0) {
            a += 8;
            continue;
        }
        struct wal_rec r;
        if (a > off && a >= hdr && wal_record_fits(m + a, sc->size - a, &r) &&
            r.zxid >= sc->name_zxid && wal_ahead_may_follow(&r, prev, batch) &&
            wal_ahead_check(&ah, a, &r)) {
            if (found && r.batch != first_batch)
                several = true;
            if (!found)
                first_batch = r.batch;
            starts |= r.zxid == r.batch; /* a group commit's first record */
            found = true;
            if (r.zxid > sc->seg.high)
                sc->seg.high = r.zxid;
            a += r.span;
            last_nonzero = a;
            continue;
        }
        if (recycled)
            stale = true; /* only stale bytes can follow it */
        else
            last_nonzero = a + 8;
        a += 8;
    }
    free(ah.prefix);
    sc->ahead_candidates = ah.candidates;
    sc->ahead_crc_bytes = ah.crc_bytes;
    if (ah.nomem) {
        sc->nomem = true;
        sc->outcome = WAL_DAMAGED;
        sc->what = "no memory to check the rest of the segment";
        return;
    }
    if (!found) {
        /* the end of the log: zeros, or an earlier life's records */
        if (last_nonzero <= from_at && !stale)
            return;
        if (stale) {
            /* A recycled segment: what is not zero before its stale records
             * is this life's torn tail only if it starts as a record of this
             * life would (the group commit's header is its first bytes);
             * anything else is the remnant of an earlier life's record that
             * this life's last one ended inside: the end of the log. */
            struct wal_rec r = {0};
            bool claims = header && off + WAL_RECORD_HEADER_BYTES <= sc->size;
            if (claims) {
                r.zxid = store_get_be64(m + off);
                r.batch = store_get_be64(m + off + 8);
                r.len = store_get_be32(m + off + 16);
                claims = r.zxid > prev && r.zxid >= sc->name_zxid && r.batch && r.batch <= r.zxid &&
                         r.len && r.len <= ZN_STORE_ENTRY_MAX_BYTES;
            }
            if (!claims)
                return;
            uint64_t span = WAL_RECORD_HEADER_BYTES + wal_align8(r.len);
            last_nonzero = off + span < sc->size ? off + span : sc->size;
        }
        sc->outcome = WAL_TORN;
        sc->torn_to = last_nonzero;
        sc->what = header ? "a record cut short or failing its check, nothing valid after it"
                          : "a segment header cut short, nothing valid after it";
        return;
    }
    /* One group commit after the gap: torn if the gap is inside it (its first
     * record is before the gap, or is what the gap lost); a whole group
     * commit after the gap means the gap was durable: damage. */
    if (sc->last_segment && !several && (first_batch == batch || (first_batch > prev && !starts))) {
        sc->outcome = WAL_TORN;
        sc->torn_to = last_nonzero;
        sc->what = "the last group commit's pages reached the disk out of order";
        return;
    }
    sc->outcome = WAL_DAMAGED;
    sc->what = !header ? "the segment header is wrong, with valid records after it"
               : sc->last_segment ? "a record fails its check, and records of a later group commit follow it"
                                  : "a record fails its check in a segment a later one follows";
}

/* ---- files ------------------------------------------------------------- */

/* Writes len zero bytes at off. */
int wal_write_zeros(int fd, uint64_t off, uint64_t len)
{
    static const unsigned char zero_chunk[64 << 10];
    while (len > 0) {
        size_t n = len < sizeof zero_chunk ? (size_t)len : sizeof zero_chunk;
        int rc = store_pwrite_all(fd, zero_chunk, n, off);
        if (rc)
            return rc;
        off += n;
        len -= n;
    }
    return 0;
}

/* Creates dir/name as bytes of written zeros, fdatasync'd (not yet named
 * durably: the caller renames it and fsyncs the directory). */
int wal_zero_file(int dirfd, const char *name, uint64_t bytes, const bool *stop)
{
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < bytes; off += WAL_ZERO_CHUNK) {
        if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))
            rc = ECANCELED; /* the store is closing: the spare is not needed */
        else
            rc = wal_write_zeros(fd, off, bytes - off < WAL_ZERO_CHUNK ? bytes - off : WAL_ZERO_CHUNK);
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = errno;
    /* The zeros leave the page cache: written in large pieces they sit in
     * large folios (64 KB-1 MB), and each append then dirties, and is
     * accounted as writing, a whole folio (1 MB per 200-byte group commit
     * measured here, against 4 KB once dropped; bench/PROFILE.md). */
    if (rc == 0)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (rc)
        unlinkat(dirfd, name, 0);
    return rc;
}

bool wal_spare_header(const unsigned char head[WAL_SEGMENT_HEADER_BYTES], uint64_t size, uint64_t *high)
{
    *high = 0;
    bool zeros = true;
    for (size_t i = 0; i < WAL_SEGMENT_HEADER_BYTES; i++)
        zeros = zeros && head[i] == 0;
    if (zeros)
        return true;
    if (store_get_be32(head) != WAL_MAGIC || store_get_be32(head + 4) != WAL_VERSION ||
        store_get_be64(head + 16) != size || store_get_be64(head + 24) != 0 ||
        store_get_be64(head + 32) != store_get_be64(head + 8))
        return false;
    *high = store_get_be64(head + 8);
    return true;
}

const char *wal_spare_name(int slot)
{
    return slot == 0 ? WAL_SPARE : WAL_SPARE2;
}

/* Maps name read-only; *map NULL for an empty file.  Returns 0 or errno. */
int wal_map(int dirfd, const char *name, int *fd_out, const unsigned char **map,
                   uint64_t *size, bool writable)
{
    *map = NULL;
    int fd = openat(dirfd, name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = errno;
        close(fd);
        return rc;
    }
    *size = (uint64_t)st.st_size;
    if (*size > 0) {
        void *p = mmap(NULL, (size_t)*size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int rc = errno;
            close(fd);
            return rc;
        }
        *map = p;
    }
    *fd_out = fd;
    return 0;
}

int wal_errno_code(int e)
{
    return e == ENOSPC || e == EDQUOT ? ZN_NOSPACE : e == ENOMEM ? ZN_NOMEMORY : ZN_IO;
}

/* The sorted list of dir's segments' first zxids (malloc'd). */
int wal_list(int dirfd, uint64_t **out, size_t *count, bool remove_leftovers)
{
    *out = NULL;
    *count = 0;
    int fd = dup(dirfd);
    if (fd < 0)
        return errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno;
    }
    rewinddir(d);
    size_t n = 0, cap = 0;
    uint64_t *list = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t first;
        if (remove_leftovers && (strcmp(e->d_name, WAL_SPARE_TMP) == 0 ||
                                 strcmp(e->d_name, WAL_NEW_TMP) == 0 ||
                                 strcmp(e->d_name, WAL_RECYCLE_TMP) == 0)) {
            unlinkat(dirfd, e->d_name, 0); /* half made: made again when needed */
            continue;
        }
        if (!wal_parse_name(e->d_name, &first))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *bigger = realloc(list, cap * sizeof *list);
            if (!bigger) {
                free(list);
                closedir(d);
                return ENOMEM;
            }
            list = bigger;
        }
        list[n++] = first;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* few files: insertion sort */
        for (size_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
            uint64_t t = list[j];
            list[j] = list[j - 1];
            list[j - 1] = t;
        }
    *out = list;
    *count = n;
    return 0;
}

int wal_remove_segments(const char *dir, uint64_t *removed)
{
    *removed = 0;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errno;
    uint64_t *list;
    size_t n;
    int rc = wal_list(dirfd, &list, &n, true);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[WAL_NAME_BYTES];
        wal_name(name, list[i]);
        if (unlinkat(dirfd, name, 0) != 0)
            rc = errno;
        else
            (*removed)++;
    }
    free(list);
    for (int i = 0; rc == 0 && i < WAL_SPARES; i++)
        if (unlinkat(dirfd, wal_spare_name(i), 0) != 0 && errno != ENOENT)
            rc = errno;
    if (rc == 0 && fsync(dirfd) != 0)
        rc = errno;
    close(dirfd);
    return rc;
}

int wal_refuse(const char *dir, const char *name, uint64_t offset, const char *what)
{
    ZN_ERROR("store: %s/%s is damaged at offset %" PRIu64 ": %s; refusing to start on it (the "
             "log after it may hold acknowledged writes). Move %s aside (mv %s %s.damaged) and "
             "start this member again: in an ensemble it rejoins empty and the leader brings it "
             "up to date with a snapshot (a standalone server has no other copy: restore its "
             "data from a backup)",
             dir, name, offset, what, dir, dir, dir);
    return ZN_CORRUPT;
}

/* ---- offline ------------------------------------------------------------ */

int wal_inspect(const char *dir, uint64_t from, uint64_t to, wal_record_fn fn,
                wal_problem_fn problem, void *ctx)
{
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errno == ENOENT ? 0 : wal_errno_code(errno);
    uint64_t *list;
    size_t count;
    int rc = wal_list(dirfd, &list, &count, false);
    if (rc) {
        close(dirfd);
        return wal_errno_code(rc);
    }
    uint64_t prev = 0;
    int result = 0;
    for (size_t i = 0; i < count && result == 0; i++) {
        char name[WAL_NAME_BYTES];
        wal_name(name, list[i]);
        int fd;
        struct wal_scan sc = {.name_zxid = list[i], .prev_zxid = prev, .last_segment = i + 1 == count};
        if ((rc = wal_map(dirfd, name, &fd, &sc.map, &sc.size, false))) {
            result = problem(ctx, name, 0, 0, strerror(rc), false);
            continue;
        }
        close(fd);
        wal_scan_segment(&sc, from, to, fn, ctx, &result);
        if (result == 0 && sc.outcome != WAL_CLEAN) {
            /* the zxid the bad record's header claims, when it is plausible */
            uint64_t claimed = sc.bad_at + 8 <= sc.size ? store_get_be64(sc.map + sc.bad_at) : 0;
            if (sc.outcome == WAL_TORN || claimed <= (sc.seg.entries ? sc.seg.last : prev))
                claimed = 0;
            result = problem(ctx, name, sc.bad_at, claimed, sc.what, sc.outcome == WAL_TORN);
            /* the valid records after damage are still shown (checked as
             * the look-ahead checks them: linear in the segment) */
            struct wal_ahead ah = {.m = sc.map, .start = sc.bad_at, .end = sc.size, .key = sc.seg.key};
            for (uint64_t a = sc.bad_at + 8; result == 0 && sc.outcome == WAL_DAMAGED && !sc.nomem &&
                                             !ah.nomem && a + 8 <= sc.size;) {
                struct wal_rec r;
                if (a >= sc.seg.hdr && wal_ahead_record_at(&ah, a, &r)) {
                    /* not the stale records of a recycled file's earlier lives */
                    if (fn && r.zxid >= from && r.zxid <= to && r.zxid >= sc.name_zxid)
                        result = fn(ctx, r.zxid, sc.map + a + WAL_RECORD_HEADER_BYTES, r.len);
                    a += r.span;
                } else {
                    a += 8;
                }
            }
            if (result == 0 && ah.nomem)
                result = problem(ctx, name, sc.bad_at, 0, "no memory to show the records after it", false);
            free(ah.prefix);
        }
        else if (result == 0 && sc.seg.entries == 0 && !sc.last_segment)
            result = problem(ctx, name, sc.bad_at, 0, "a segment without records before later ones", false);
        if (sc.map)
            munmap((void *)sc.map, (size_t)sc.size);
        if (sc.seg.entries)
            prev = sc.seg.last;
    }
    free(list);
    close(dirfd);
    return result;
}
