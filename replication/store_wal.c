/*
 * store_wal: the live log's segment files (format and recovery rules in
 * store_wal.h; the bytes, the scan and the offline walk in
 * store_wal_format.c).  The writer thread appends, truncates and compacts; the
 * loop thread reads at recovery while the writer is idle; a backup walks
 * the files under the log's lock.  A thread of its own prepares the next
 * segment (log.spare): a segment compaction dropped, its header rewritten
 * (store_wal.h, recycling), or else zeros written and fdatasync'd once the
 * current one is half full, so a segment change costs the write path a
 * rename and a directory fsync, not 64 MB of zeros.
 *
 * Why written zeros, not fallocate: on this ext4 a 16 KB pwrite+fdatasync
 * took 119-140 us into written zeros and 184-223 us into fallocate'd
 * (unwritten) extents, whose conversion is a metadata change each
 * fdatasync must journal (bench/PROFILE.md, the log's section).
 */
#include "store_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store.h"
#include "store_internal.h"
#include "store_io.h"
#include "store_wal_internal.h"
#include "znode/errors.h"

/* ---- the spare segment's preparer --------------------------------------- */

/* Makes WAL_RECYCLE_TMP (a compacted segment whose records go up to high)
 * the spare: its header rewritten first, fdatasync'd, then the rename, so a
 * file named log.spare always has a whole spare header.  The name it had
 * was gone durably before (wal_compact's directory fsync): the new header
 * never sits in a file still named as a segment. */
static int wal_recycle_file(struct wal *w, uint64_t high, const char *spare)
{
    unsigned char head[WAL_SEGMENT_HEADER_BYTES];
    wal_put_header(head, high, w->segment_bytes, 0, high); /* no secret: no life yet */
    int fd = openat(w->dirfd, WAL_RECYCLE_TMP, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = store_pwrite_all(fd, head, sizeof head, 0);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = errno;
    /* the file's earlier lives leave the page cache: each later append would
     * otherwise dirty (and write) the large folio it fell in, as zeros'
     * would (wal_zero_file) */
    if (rc == 0)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (rc == 0 && renameat(w->dirfd, WAL_RECYCLE_TMP, w->dirfd, spare) != 0)
        rc = errno;
    if (rc)
        unlinkat(w->dirfd, WAL_RECYCLE_TMP, 0);
    return rc;
}

static void *wal_prep_main(void *arg)
{
    struct wal *w = arg;
    pthread_mutex_lock(&w->pm);
    for (;;) {
        while (!w->stop && !w->want)
            pthread_cond_wait(&w->pc, &w->pm);
        if (w->stop)
            break;
        bool recycle = w->recycle;
        uint64_t high = recycle ? w->recycle_high : 0;
        int slot = w->job_slot;
        const char *spare = wal_spare_name(slot);
        w->want = w->recycle = false;
        w->busy = true;
        pthread_mutex_unlock(&w->pm);
        int rc;
        if (recycle) {
            rc = wal_recycle_file(w, high, spare);
            if (rc)
                ZN_WARN("store: cannot reuse a compacted log segment in dir=%s: %s (the next "
                        "one is made of zeros instead)", w->dir, strerror(rc));
        } else {
            rc = wal_zero_file(w->dirfd, WAL_SPARE_TMP, w->segment_bytes, &w->stop);
            if (rc == 0 && renameat(w->dirfd, WAL_SPARE_TMP, w->dirfd, spare) != 0)
                rc = errno;
            if (rc && rc != ECANCELED)
                ZN_WARN("store: cannot prepare the next log segment in dir=%s: %s (it is made when "
                        "needed instead)", w->dir, strerror(rc));
        }
        pthread_mutex_lock(&w->pm);
        w->busy = false;
        w->ready[slot] = rc == 0;
        w->spare_high[slot] = high;
        if (rc == 0)
            (recycle ? &w->recycled : &w->zeroed)[0]++;
        /* zeros are not tried again before the next segment starts */
        w->failed = rc != 0 && !recycle;
        pthread_cond_broadcast(&w->pc);
    }
    pthread_mutex_unlock(&w->pm);
    return NULL;
}

/* A slot without a spare (-1: both have one); under pm. */
static int wal_free_slot(struct wal *w)
{
    for (int i = 0; i < WAL_SPARES; i++)
        if (!w->ready[i])
            return i;
    return -1;
}

/* Zeros are written only when no spare is ready. */
static void wal_prep_kick(struct wal *w)
{
    pthread_mutex_lock(&w->pm);
    if (!w->ready[0] && !w->ready[1] && !w->busy && !w->want && !w->failed) {
        w->job_slot = 0;
        w->want = true;
        pthread_cond_signal(&w->pc);
    }
    pthread_mutex_unlock(&w->pm);
}

/* A new life's secret: 64 bits from getrandom(2) (store_wal.h, the secret),
 * drawn again in the 2^-32 case of a key of 0 (version 1's: no secret). */
static int wal_new_secret(uint64_t *secret)
{
    unsigned char b[8];
    for (size_t got = 0; got < sizeof b || wal_key(true, store_get_be64(b)) == 0;) {
        if (got == sizeof b)
            got = 0;
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        got += (size_t)n;
    }
    *secret = store_get_be64(b);
    return 0;
}

/* Starts a segment for records from first, of at least min_bytes. */
static int wal_new_segment(struct wal *w, uint64_t first, uint64_t min_bytes)
{
    char name[WAL_NAME_BYTES];
    wal_name(name, first);
    uint64_t secret = 0;
    int src = wal_new_secret(&secret);
    if (src) {
        ZN_ERROR("store: cannot start log segment %s/%s: getrandom: %s", w->dir, name, strerror(src));
        return src;
    }
    uint64_t bytes = w->segment_bytes;
    if (bytes < min_bytes)
        bytes = (min_bytes + WAL_MIN_SEGMENT_BYTES - 1) / WAL_MIN_SEGMENT_BYTES * WAL_MIN_SEGMENT_BYTES;
    bool spare = false;
    pthread_mutex_lock(&w->pm);
    while (w->busy || w->want)
        pthread_cond_wait(&w->pc, &w->pm);
    /* A recycled spare's earlier lives must all be below its new name:
     * recovery tells them from this life's records by that alone.  After
     * a truncation, a snapshot installed or a restore below them, it is
     * not used (and goes). */
    int slot = -1, stale[WAL_SPARES];
    uint64_t spare_high = 0, stale_high[WAL_SPARES];
    size_t nstale = 0;
    for (int i = 0; bytes == w->segment_bytes && i < WAL_SPARES; i++) {
        if (!w->ready[i])
            continue;
        if (w->spare_high[i] >= first) {
            w->ready[i] = false;
            stale_high[nstale] = w->spare_high[i];
            stale[nstale++] = i;
        } else if (slot < 0) {
            slot = i;
        }
    }
    if (slot >= 0) {
        w->ready[slot] = false;
        spare_high = w->spare_high[slot];
        spare = true;
    }
    w->failed = false;
    pthread_mutex_unlock(&w->pm);
    for (size_t i = 0; i < nstale; i++) {
        ZN_INFO("store: the spare log segment %s holds zxids up to 0x%" PRIx64 ", not below the "
                "next segment's first 0x%" PRIx64 " (the log went back): removed",
                wal_spare_name(stale[i]), stale_high[i], first);
        unlinkat(w->dirfd, wal_spare_name(stale[i]), 0);
    }
    int rc = 0;
    if (spare) {
        if (renameat(w->dirfd, wal_spare_name(slot), w->dirfd, name) != 0)
            rc = errno;
    } else {
        rc = wal_zero_file(w->dirfd, WAL_NEW_TMP, bytes, NULL);
        /* A disk without room for a whole segment still takes the writes
         * it has room for: smaller segments, down to what this group needs. */
        uint64_t least = (min_bytes + WAL_MIN_SEGMENT_BYTES - 1) / WAL_MIN_SEGMENT_BYTES * WAL_MIN_SEGMENT_BYTES;
        while ((rc == ENOSPC || rc == EDQUOT) && bytes > least) {
            bytes = bytes / 2 > least ? bytes / 2 : least;
            ZN_WARN("store: no room for a log segment of %" PRIu64 " bytes in dir=%s; trying %" PRIu64,
                    bytes * 2, w->dir, bytes);
            rc = wal_zero_file(w->dirfd, WAL_NEW_TMP, bytes, NULL);
        }
        if (rc == 0 && renameat(w->dirfd, WAL_NEW_TMP, w->dirfd, name) != 0)
            rc = errno;
        if (rc == 0) {
            pthread_mutex_lock(&w->pm);
            w->zeroed++;
            pthread_mutex_unlock(&w->pm);
        }
    }
    if (rc == 0)
        rc = store_fsync_dirfd(w->dirfd);
    int fd = rc ? -1 : openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
    if (rc == 0 && fd < 0)
        rc = errno;
    pthread_mutex_lock(&w->lock);
    if (rc == 0 && w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct wal_segment *bigger = realloc(w->segs, cap * sizeof *bigger);
        if (!bigger)
            rc = ENOMEM;
        else {
            w->segs = bigger;
            w->cap = cap;
        }
    }
    if (rc) {
        pthread_mutex_unlock(&w->lock);
        if (fd >= 0)
            close(fd);
        ZN_ERROR("store: cannot start log segment %s/%s: %s", w->dir, name, strerror(rc));
        return rc;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    /* its header (with the secret) is written with its first group commit */
    w->segs[w->n++] = (struct wal_segment){.first = first, .size = bytes, .keyed = true,
                                           .hdr = WAL_SEGMENT_HEADER_BYTES, .secret = secret,
                                           .key = wal_key(true, secret),
                                           .earlier = spare_high};
    w->counts.segments = w->n;
    pthread_mutex_unlock(&w->lock);
    ZN_INFO("store: log segment %s started (%s, %" PRIu64 " bytes)", name,
            !spare ? "zeros made now" : spare_high ? "the prepared spare, recycled"
                                                      : "the prepared spare, zeros", bytes);
    return 0;
}

/* ---- open --------------------------------------------------------------- */

int wal_open(struct wal **out, const char *dir, uint64_t segment_bytes)
{
    *out = NULL;
    struct wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return ZN_NOMEMORY;
    }
    w->segment_bytes = segment_bytes ? segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
    w->fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->pm, NULL);
    pthread_cond_init(&w->pc, NULL);
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t *list = NULL;
    size_t count = 0;
    int rc = w->dirfd < 0 ? errno : wal_list(w->dirfd, &list, &count, true);
    if (rc) {
        ZN_ERROR("store: cannot list the log segments of dir=%s: %s", dir, strerror(rc));
        wal_close(w);
        return wal_errno_code(rc);
    }
    if (count > 0 && !(w->segs = calloc(count, sizeof *w->segs))) {
        free(list);
        wal_close(w);
        return ZN_NOMEMORY;
    }
    w->cap = count;
    uint64_t prev = 0;
    int result = 0;
    bool removed = false;
    for (size_t i = 0; i < count && result == 0; i++) {
        char name[WAL_NAME_BYTES];
        wal_name(name, list[i]);
        int fd;
        struct wal_scan sc = {.name_zxid = list[i], .prev_zxid = prev, .last_segment = i + 1 == count};
        if ((rc = wal_map(w->dirfd, name, &fd, &sc.map, &sc.size, true))) {
            ZN_ERROR("store: cannot read log segment %s/%s: %s", dir, name, strerror(rc));
            result = wal_errno_code(rc);
            break;
        }
        int unused = 0;
        wal_scan_segment(&sc, 0, 0, NULL, NULL, &unused);
        if (sc.map)
            munmap((void *)sc.map, (size_t)sc.size);
        if (sc.nomem) {
            ZN_ERROR("store: no memory to scan log segment %s/%s", dir, name);
            result = ZN_NOMEMORY;
            close(fd);
            break;
        }
        if (sc.outcome == WAL_DAMAGED || (sc.seg.entries == 0 && !sc.last_segment)) {
            result = wal_refuse(dir, name, sc.bad_at, sc.what ? sc.what : "a segment without records before later ones");
            close(fd);
            break;
        }
        if (sc.outcome == WAL_TORN) {
            ZN_WARN("store: dropping the torn tail of %s/%s: bytes %" PRIu64 "..%" PRIu64
                    " (%s); the group commit it held was never reported durable",
                    dir, name, sc.bad_at, sc.torn_to, sc.what);
            if (sc.seg.entries > 0 && ((rc = wal_write_zeros(fd, sc.bad_at, sc.torn_to - sc.bad_at)) ||
                                       (fdatasync(fd) != 0 && (rc = errno)))) {
                ZN_ERROR("store: cannot zero the torn tail of %s/%s: %s", dir, name, strerror(rc));
                result = wal_errno_code(rc);
                close(fd);
                break;
            }
        }
        if (sc.seg.entries == 0) { /* the last segment, made but never (durably) written */
            close(fd);
            if (unlinkat(w->dirfd, name, 0) != 0) {
                result = wal_errno_code(errno);
                break;
            }
            removed = true;
            continue;
        }
        w->segs[w->n++] = sc.seg;
        w->counts.entries += sc.seg.entries;
        w->counts.bytes += sc.seg.bytes;
        prev = sc.seg.last;
        if (sc.last_segment)
            w->fd = fd;
        else
            close(fd);
    }
    free(list);
    if (result == 0 && removed && (rc = store_fsync_dirfd(w->dirfd)))
        result = wal_errno_code(rc);
    /* An empty last segment removed (a crash between its start and its first
     * group commit): the one before it is the last again, and the appends go
     * on into it. */
    if (result == 0 && w->n && w->fd < 0) {
        char name[WAL_NAME_BYTES];
        wal_name(name, w->segs[w->n - 1].first);
        if ((w->fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC)) < 0) {
            ZN_ERROR("store: cannot open log segment %s/%s: %s", dir, name, strerror(errno));
            result = wal_errno_code(errno);
        }
    }
    if (result) {
        wal_close(w);
        return result;
    }
    w->counts.segments = w->n;
    w->counts.first_zxid = w->n ? w->segs[0].first : 0;
    w->counts.last_zxid = prev;
    if ((rc = pthread_create(&w->prep, NULL, wal_prep_main, w))) {
        wal_close(w);
        return ZN_IO;
    }
    w->prep_started = true;
    /* A spare left by the last run (zeros, or a recycled segment's spare
     * header: fdatasync'd before it was named) is used as it is when it has
     * the size segments have now. */
    for (int i = 0; i < WAL_SPARES; i++) {
        const char *spare_name = wal_spare_name(i);
        int sfd = openat(w->dirfd, spare_name, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
            continue;
        struct stat spare;
        unsigned char head[WAL_SEGMENT_HEADER_BYTES];
        uint64_t high;
        if (fstat(sfd, &spare) == 0 && (uint64_t)spare.st_size == w->segment_bytes &&
            store_pread_all(sfd, head, sizeof head, 0) == 0 &&
            wal_spare_header(head, w->segment_bytes, &high)) {
            pthread_mutex_lock(&w->pm);
            w->ready[i] = true;
            w->spare_high[i] = high;
            pthread_mutex_unlock(&w->pm);
        } else
            unlinkat(w->dirfd, spare_name, 0);
        close(sfd);
    }
    if (w->n && w->segs[w->n - 1].end > w->segs[w->n - 1].size / 2)
        wal_prep_kick(w);
    *out = w;
    return 0;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->prep_started) {
        pthread_mutex_lock(&w->pm);
        __atomic_store_n(&w->stop, true, __ATOMIC_RELAXED); /* read unlocked by wal_zero_file */
        pthread_cond_signal(&w->pc);
        pthread_mutex_unlock(&w->pm);
        pthread_join(w->prep, NULL);
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    pthread_cond_destroy(&w->pc);
    pthread_mutex_destroy(&w->pm);
    pthread_mutex_destroy(&w->lock);
    free(w->segs);
    free(w->heads);
    free(w->iov);
    free(w->dir);
    free(w);
}

void wal_counts(struct wal *w, struct wal_counts *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->counts;
    pthread_mutex_unlock(&w->lock);
}

void wal_io_counts(struct wal *w, uint64_t *writes, uint64_t *syncs)
{
    pthread_mutex_lock(&w->lock);
    *writes = w->writes;
    *syncs = w->syncs;
    pthread_mutex_unlock(&w->lock);
}

/* ---- append ------------------------------------------------------------- */

static int wal_reserve(struct wal *w, size_t n)
{
    size_t heads = WAL_SEGMENT_HEADER_BYTES + n * (8 + WAL_RECORD_HEADER_BYTES);
    if (heads > w->heads_cap) {
        unsigned char *p = realloc(w->heads, heads);
        if (!p)
            return ENOMEM;
        w->heads = p;
        w->heads_cap = heads;
    }
    size_t iov = 1 + 2 * n + 1;
    if (iov > w->iov_cap) {
        struct iovec *p = realloc(w->iov, iov * sizeof *p);
        if (!p)
            return ENOMEM;
        w->iov = p;
        w->iov_cap = iov;
    }
    return 0;
}

/* pwritev of every piece, IOV_MAX at a time, resuming after short writes. */
static int wal_pwritev_all(struct wal *w, int fd, struct iovec *iov, size_t cnt, uint64_t off)
{
    while (cnt > 0) {
        int batch = cnt < IOV_MAX ? (int)cnt : IOV_MAX;
        ssize_t done = pwritev(fd, iov, batch, (off_t)off);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return done < 0 ? errno : EIO;
        w->writes++;
        off += (uint64_t)done;
        while (cnt > 0 && (size_t)done >= iov->iov_len) {
            done -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
        }
    }
    return 0;
}

static int wal_test_die_pieces;

void store_test_die_in_group_commit(int pieces)
{
    wal_test_die_pieces = pieces;
}

int wal_append(struct wal *w, const struct wal_entry *e, size_t n, bool corrupt_first)
{
    ZN_ASSERT(n > 0 && e[0].zxid > w->counts.last_zxid);
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += WAL_RECORD_HEADER_BYTES + wal_align8(e[i].len);
    struct wal_segment *cur = w->n ? &w->segs[w->n - 1] : NULL;
    int rc;
    /* a segment of version 1 (no secret) is never appended to: its records
     * and the new ones would not share a format */
    if (!cur || cur->end + need > cur->size || !cur->keyed) {
        if ((rc = wal_new_segment(w, e[0].zxid, WAL_SEGMENT_HEADER_BYTES + need)))
            return rc;
        cur = &w->segs[w->n - 1];
    }
    if ((rc = wal_reserve(w, n)))
        return rc;
    /* iovecs: [segment header] then per record: (previous padding +) header, payload; last padding */
    size_t cnt = 0, used = 0;
    uint64_t off = cur->end;
    if (off == 0) {
        wal_put_header(w->heads, cur->first, cur->size, cur->secret, cur->earlier);
        used = WAL_SEGMENT_HEADER_BYTES;
        w->iov[cnt++] = (struct iovec){w->heads, WAL_SEGMENT_HEADER_BYTES};
    }
    size_t pad = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        ZN_ASSERT(i == 0 || e[i].zxid > e[i - 1].zxid);
        unsigned char *h = w->heads + used;
        memset(h, 0, pad);
        wal_record_head(h + pad, e[i].zxid, e[0].zxid, e[i].data, (uint32_t)e[i].len,
                        corrupt_first && i == 0, cur->key);
        w->iov[cnt++] = (struct iovec){h, pad + WAL_RECORD_HEADER_BYTES};
        w->iov[cnt++] = (struct iovec){(void *)e[i].data, e[i].len};
        used += pad + WAL_RECORD_HEADER_BYTES;
        pad = (size_t)(wal_align8(e[i].len) - e[i].len);
        bytes += e[i].len;
    }
    if (pad)
        w->iov[cnt++] = (struct iovec){(void *)wal_zeros, pad};
    uint64_t total = (off == 0 ? WAL_SEGMENT_HEADER_BYTES : 0) + need;
    int die = wal_test_die_pieces;
    if (die) /* tests: a kill -9 between the write (whole or part of it) and its fdatasync */
        cnt = die > 0 && (size_t)die < cnt ? (size_t)die : cnt;
    if (e[n - 1].zxid > cur->high) /* before the write: a failed one counts too */
        cur->high = e[n - 1].zxid;
    if ((rc = wal_pwritev_all(w, w->fd, w->iov, cnt, off)))
        return rc;
    if (die)
        raise(SIGKILL);
    if (fdatasync(w->fd) != 0)
        return errno;
    pthread_mutex_lock(&w->lock);
    w->syncs++;
    cur->end = off + total;
    if (cur->end > cur->size)
        cur->size = cur->end;
    cur->last = e[n - 1].zxid;
    cur->last_batch = e[0].zxid;
    cur->entries += n;
    cur->bytes += bytes;
    w->counts.entries += n;
    w->counts.bytes += bytes;
    w->counts.last_zxid = cur->last;
    if (!w->counts.first_zxid)
        w->counts.first_zxid = cur->first;
    pthread_mutex_unlock(&w->lock);
    if (cur->end > cur->size / 2)
        wal_prep_kick(w);
    return 0;
}

/* ---- truncation, compaction, reading ------------------------------------ */

/* Walks the valid records of segment seg (its known extent), calling fn for
 * zxid >= from.  With cut_after, stops at the first record above it and sets
 * *cut to its offset (seg->end when none). */
static int wal_walk(struct wal *w, const struct wal_segment *seg, uint64_t from, wal_record_fn fn,
                    void *ctx, uint64_t cut_after, uint64_t *cut, struct wal_segment *kept)
{
    char name[WAL_NAME_BYTES];
    wal_name(name, seg->first);
    int fd;
    const unsigned char *m;
    uint64_t size;
    int rc = wal_map(w->dirfd, name, &fd, &m, &size, false);
    if (rc) {
        ZN_ERROR("store: cannot read log segment %s/%s: %s", w->dir, name, strerror(rc));
        return wal_errno_code(rc);
    }
    close(fd);
    if (size < seg->end) {
        if (m)
            munmap((void *)m, (size_t)size);
        return wal_refuse(w->dir, name, size, "the file is shorter than the records it held");
    }
    if (kept)
        *kept = (struct wal_segment){.first = seg->first, .size = seg->size, .end = seg->hdr,
                                     .keyed = seg->keyed, .hdr = seg->hdr, .secret = seg->secret,
                                     .key = seg->key,
                                     .earlier = seg->earlier};
    int result = 0;
    for (uint64_t off = seg->hdr; off < seg->end;) {
        struct wal_rec r;
        if (!wal_record_at(m + off, seg->end - off, seg->key, &r)) {
            result = wal_refuse(w->dir, name, off, "a record checked at open no longer reads back");
            break;
        }
        if (cut && r.zxid > cut_after) {
            *cut = off;
            break;
        }
        if (kept) {
            kept->last = r.zxid;
            kept->last_batch = r.batch;
            kept->entries++;
            kept->bytes += r.len;
            kept->end = off + r.span;
        }
        if (fn && r.zxid >= from && (result = fn(ctx, r.zxid, m + off + WAL_RECORD_HEADER_BYTES, r.len)))
            break;
        off += r.span;
    }
    if (m)
        munmap((void *)m, (size_t)size);
    return result;
}

int wal_read(struct wal *w, uint64_t from, wal_record_fn fn, void *ctx)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->segs[i].last < from)
            continue;
        int rc = wal_walk(w, &w->segs[i], from, fn, ctx, 0, NULL, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int wal_truncate_after(struct wal *w, uint64_t zxid, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    bool unlinked = false;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (w->n > 0 && w->segs[w->n - 1].first > zxid) {
        struct wal_segment *seg = &w->segs[w->n - 1];
        char name[WAL_NAME_BYTES];
        wal_name(name, seg->first);
        if (unlinkat(w->dirfd, name, 0) != 0) {
            rc = errno;
            break;
        }
        if (w->fd >= 0) {
            close(w->fd);
            w->fd = -1;
        }
        *entries += seg->entries;
        *bytes += seg->bytes;
        w->n--;
        unlinked = true;
    }
    struct wal_segment *seg = w->n ? &w->segs[w->n - 1] : NULL;
    if (rc == 0 && seg && w->fd < 0) {
        char name[WAL_NAME_BYTES];
        wal_name(name, seg->first);
        if ((w->fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC)) < 0)
            rc = errno;
    }
    if (rc == 0 && seg && seg->last > zxid) {
        uint64_t cut = seg->end;
        struct wal_segment kept;
        int zrc = wal_walk(w, seg, UINT64_MAX, NULL, NULL, zxid, &cut, &kept);
        if (zrc) {
            pthread_mutex_unlock(&w->lock);
            return EIO;
        }
        if ((rc = wal_write_zeros(w->fd, cut, seg->end - cut)) == 0 && fdatasync(w->fd) != 0)
            rc = errno;
        if (rc == 0) {
            w->syncs++;
            *entries += seg->entries - kept.entries;
            *bytes += seg->bytes - kept.bytes;
            kept.high = seg->high;
            *seg = kept;
        }
    }
    if (rc == 0 && unlinked)
        rc = store_fsync_dirfd(w->dirfd);
    w->truncations += *entries > 0;
    w->counts.entries -= *entries;
    w->counts.bytes -= *bytes;
    w->counts.segments = w->n;
    w->counts.last_zxid = w->n ? w->segs[w->n - 1].last : 0;
    w->counts.first_zxid = w->n ? w->segs[0].first : 0;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* Whether a spare slot is free for a compacted segment, and the preparer
 * idle (only the writer thread, this one, gives it work, so it stays so
 * until wal_compact does). */
static bool wal_spare_free(struct wal *w, const struct wal_segment *seg)
{
    pthread_mutex_lock(&w->pm);
    bool free_ = wal_free_slot(w) >= 0 && !w->busy && !w->want && !w->stop &&
                 seg->size == w->segment_bytes;
    pthread_mutex_unlock(&w->pm);
    return free_;
}

int wal_compact(struct wal *w, uint64_t zxid, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    int rc = 0;
    size_t gone = 0;
    bool recycled = false;
    uint64_t high = 0;
    pthread_mutex_lock(&w->lock);
    while (gone + 1 < w->n && w->segs[gone + 1].first <= zxid + 1) {
        char name[WAL_NAME_BYTES];
        wal_name(name, w->segs[gone].first);
        /* One of the size segments have is kept as the next spare: renamed
         * out of the log here (durable with the directory fsync below),
         * its header rewritten by the preparer (wal_recycle_file).  Not
         * while a copy is under way: it reads the old records through the
         * descriptor it holds, which an unlink leaves alone and reuse would
         * overwrite. */
        if (!recycled && w->copying == 0 && wal_spare_free(w, &w->segs[gone])) {
            if (renameat(w->dirfd, name, w->dirfd, WAL_RECYCLE_TMP) == 0) {
                recycled = true;
                high = w->segs[gone].high;
            } else if (unlinkat(w->dirfd, name, 0) != 0) {
                rc = errno;
                break;
            }
        } else if (unlinkat(w->dirfd, name, 0) != 0) {
            rc = errno;
            break;
        }
        *entries += w->segs[gone].entries;
        *bytes += w->segs[gone].bytes;
        gone++;
    }
    if (gone) {
        memmove(w->segs, w->segs + gone, (w->n - gone) * sizeof *w->segs);
        w->n -= gone;
        w->counts.entries -= *entries;
        w->counts.bytes -= *bytes;
        w->counts.segments = w->n;
        w->counts.first_zxid = w->segs[0].first;
        int src = store_fsync_dirfd(w->dirfd);
        rc = rc ? rc : src;
    }
    pthread_mutex_unlock(&w->lock);
    if (recycled) {
        if (rc == 0) {
            pthread_mutex_lock(&w->pm);
            w->recycle = w->want = true;
            w->recycle_high = high;
            w->job_slot = wal_free_slot(w);
            pthread_cond_signal(&w->pc);
            pthread_mutex_unlock(&w->pm);
        } else /* its old name may still be there: not rewritten */
            unlinkat(w->dirfd, WAL_RECYCLE_TMP, 0);
    }
    return rc;
}

void wal_spare_counts(struct wal *w, uint64_t *recycled, uint64_t *zeroed)
{
    pthread_mutex_lock(&w->pm);
    *recycled = w->recycled;
    *zeroed = w->zeroed;
    pthread_mutex_unlock(&w->pm);
}

int wal_copy_begin(struct wal *w, struct wal_copy *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&w->lock);
    size_t n = w->n;
    c->fds = calloc(n ? n : 1, sizeof *c->fds);
    c->firsts = calloc(n ? n : 1, sizeof *c->firsts);
    c->ends = calloc(n ? n : 1, sizeof *c->ends);
    c->sizes = calloc(n ? n : 1, sizeof *c->sizes);
    int rc = c->fds && c->firsts && c->ends && c->sizes ? 0 : ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[WAL_NAME_BYTES];
        wal_name(name, w->segs[i].first);
        if ((c->fds[i] = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = errno;
            break;
        }
        c->firsts[i] = w->segs[i].first;
        c->ends[i] = w->segs[i].end;
        c->sizes[i] = w->segs[i].size;
        c->n = i + 1;
    }
    c->truncations = w->truncations;
    if (rc == 0) {
        w->copying++;
        c->counted = true;
    }
    pthread_mutex_unlock(&w->lock);
    if (rc) {
        ZN_ERROR("store: copying the log's segments in dir=%s: %s", w->dir, strerror(rc));
        wal_copy_finish(w, c, NULL);
        return wal_errno_code(rc);
    }
    return 0;
}

static int wal_copy_bytes(int in, int out, uint64_t len)
{
    unsigned char buf[64 << 10];
    for (uint64_t off = 0; off < len;) {
        size_t want = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        ssize_t got = pread(in, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO;
        int rc = store_pwrite_all(out, buf, (size_t)got, off);
        if (rc)
            return rc;
        off += (uint64_t)got;
    }
    return 0;
}

int wal_copy_finish(struct wal *w, struct wal_copy *c, const char *dir)
{
    int rc = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (dir && rc == 0) {
            char path[PATH_MAX];
            char name[WAL_NAME_BYTES];
            wal_name(name, c->firsts[i]);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (out < 0)
                rc = errno;
            else {
                rc = wal_copy_bytes(c->fds[i], out, c->ends[i]);
                /* the size its header names (a hole: zeros) */
                if (rc == 0 && ftruncate(out, (off_t)c->sizes[i]) != 0)
                    rc = errno;
                if (close(out) != 0 && rc == 0)
                    rc = errno;
            }
            if (rc)
                ZN_ERROR("store: copying log segment %s into %s: %s", name, dir, strerror(rc));
        }
        close(c->fds[i]);
    }
    pthread_mutex_lock(&w->lock);
    if (c->counted)
        w->copying--;
    bool truncated = w->truncations != c->truncations;
    pthread_mutex_unlock(&w->lock);
    if (dir && rc == 0) {
        if (truncated) {
            ZN_ERROR("store: the log was truncated while it was copied (a resync with the "
                     "leader); the copy is not used: take it again");
            rc = EAGAIN;
        }
    }
    free(c->fds);
    free(c->firsts);
    free(c->ends);
    free(c->sizes);
    memset(c, 0, sizeof *c);
    return rc ? wal_errno_code(rc) : 0;
}

