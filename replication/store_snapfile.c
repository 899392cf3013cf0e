/*
 * store_snapfile: a snapshot's own file, written paced, published by a
 * rename, checked when read (store_snapfile.h has the format).  Used by the
 * store's writer thread (a leader's snapshot, a snapshot serialised on the
 * loop), by recovery and store_inspect, and by the snapshot child after
 * fork: nothing here touches LMDB or logs.
 */
/* (sync_file_range: _GNU_SOURCE, which the build defines) */
#include "store_snapfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "store_io.h"

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static const char *const snapfile_suffix[] = {"", ".tmp", ".store.tmp"};

int store_snapfile_path(char *out, size_t cap, const char *dir, uint64_t zxid, int which)
{
    if (which < STORE_SNAPFILE_FINAL || which > STORE_SNAPFILE_TMP_STORE)
        return -EINVAL;
    int n = snprintf(out, cap, "%s/snapshot.%" PRIx64 "%s", dir, zxid, snapfile_suffix[which]);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int store_snapfile_parse_name(const char *name, uint64_t *zxid, bool *tmp)
{
    if (strncmp(name, "snapshot.", 9) != 0)
        return 0;
    const char *hex = name + 9;
    size_t digits = strspn(hex, "0123456789abcdef");
    if (digits == 0 || digits > 16 || (digits > 1 && hex[0] == '0'))
        return 0;
    if (hex[digits] != '\0' && strcmp(hex + digits, ".tmp") != 0 &&
        strcmp(hex + digits, ".store.tmp") != 0)
        return 0;
    *tmp = hex[digits] != '\0';
    *zxid = strtoull(hex, NULL, 16);
    return 1;
}

/* A blob at least this big is checksummed in two halves on two threads. */
#define SNAPFILE_CRC_SPLIT_BYTES (32u << 20)

struct crc_half {
    const unsigned char *p;
    size_t len;
    uint32_t crc;
};

static void *crc_half_main(void *arg)
{
    struct crc_half *h = arg;
    h->crc = crc32c(h->p, h->len);
    return NULL;
}

uint32_t store_snapfile_blob_crc(uint64_t zxid, const void *blob, size_t len)
{
    unsigned char zxid_be[8];
    put_be64(zxid_be, zxid);
    uint32_t crc = crc32c(zxid_be, 8);
    /* A restart checks the newest snapshot whole before loading it (2.6 GB
     * with 10M znodes), with the second core otherwise idle: its second half
     * is checksummed there (and, from a mapped file, faulted in there). */
    pthread_t t;
    size_t first = len / 2 - len / 2 % 4096;
    struct crc_half second = {(const unsigned char *)blob + first, len - first, 0};
    if (len < SNAPFILE_CRC_SPLIT_BYTES || pthread_create(&t, NULL, crc_half_main, &second) != 0)
        return crc32c_extend(crc, blob, len);
    crc = crc32c_extend(crc, blob, first);
    pthread_join(t, NULL);
    return crc32c_combine(crc, second.crc, second.len);
}

/* Waits for the writeback of [offset, offset + len).  The pages stay in the
 * page cache: the newest snapshot is what a restart reads, and reading it
 * from the cache instead of the disk is most of a restart's I/O with 10M
 * znodes.  The older ones' pages go once they are replaced
 * (store_snapfile_uncache). */
static int settle_range(int fd, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return 0;
    if (sync_file_range(fd, (off_t)offset, (off_t)len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0)
        return -errno;
    return 0;
}

int store_snapfile_begin(struct store_snapfile_out *o, const char *dir, uint64_t zxid, int which,
                         size_t chunk_bytes)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    int rc = which == STORE_SNAPFILE_FINAL
                 ? -EINVAL
                 : store_snapfile_path(o->path, sizeof o->path, dir, zxid, which);
    if (rc)
        return rc;
    o->zxid = zxid;
    o->chunk_bytes = chunk_bytes ? chunk_bytes : STORE_SNAPFILE_CHUNK_BYTES;
    o->fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0)
        return -errno;
    unsigned char zxid_be[8];
    put_be64(zxid_be, zxid);
    o->crc = crc32c(zxid_be, 8);
    return 0;
}

/* Chunk k is written, its writeback started, and then chunk k-1's is waited
 * for: the disk always has the next chunk to do, and never more than two. */
static int snapfile_put_chunk(struct store_snapfile_out *o, const unsigned char *p, size_t n)
{
    uint64_t off = STORE_SNAPFILE_HEADER_BYTES + o->len;
    int rc = -store_pwrite_all(o->fd, p, n, off);
    if (rc)
        return rc;
    o->crc = crc32c_extend(o->crc, p, n);
    if (sync_file_range(o->fd, (off_t)off, (off_t)n, SYNC_FILE_RANGE_WRITE) != 0)
        return -errno;
    if ((rc = settle_range(o->fd, o->prev_off, o->prev_len)))
        return rc;
    o->prev_off = off;
    o->prev_len = n;
    o->len += n;
    return 0;
}

int store_snapfile_append(struct store_snapfile_out *o, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (o->rc == 0 && n > 0) {
        size_t k = n < o->chunk_bytes ? n : o->chunk_bytes;
        o->rc = snapfile_put_chunk(o, p, k);
        p += k;
        n -= k;
    }
    return o->rc;
}

int store_snapfile_finish(struct store_snapfile_out *o, uint32_t *blob_crc)
{
    int rc = o->rc;
    if (rc == 0)
        rc = settle_range(o->fd, o->prev_off, o->prev_len);
    unsigned char h[STORE_SNAPFILE_HEADER_BYTES] = {0};
    put_be32(h, STORE_SNAPFILE_MAGIC);
    put_be32(h + 4, STORE_SNAPFILE_VERSION);
    put_be64(h + 8, o->zxid);
    put_be64(h + 16, o->len);
    put_be32(h + 24, o->crc);
    put_be32(h + 36, crc32c(h, 36));
    if (rc == 0)
        rc = -store_pwrite_all(o->fd, h, sizeof h, 0);
    if (rc == 0 && fsync(o->fd) != 0)
        rc = -errno;
    if (o->fd >= 0 && close(o->fd) != 0 && rc == 0)
        rc = -errno;
    o->fd = -1;
    if (rc) {
        unlink(o->path);
        return rc;
    }
    if (blob_crc)
        *blob_crc = o->crc;
    return 0;
}

void store_snapfile_abort(struct store_snapfile_out *o)
{
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
        unlink(o->path);
    }
}

int store_snapfile_write(const char *dir, uint64_t zxid, int which, const void *blob, size_t len,
                         size_t chunk_bytes, store_snapfile_progress_fn progress, void *ctx,
                         uint32_t *blob_crc)
{
    struct store_snapfile_out o;
    int rc = store_snapfile_begin(&o, dir, zxid, which, chunk_bytes);
    if (rc) {
        store_snapfile_abort(&o);
        return rc;
    }
    for (size_t done = 0; o.rc == 0 && done < len;) {
        size_t n = len - done < o.chunk_bytes ? len - done : o.chunk_bytes;
        if (store_snapfile_append(&o, (const unsigned char *)blob + done, n))
            break;
        done += n;
        if (progress)
            progress(ctx, done);
    }
    return store_snapfile_finish(&o, blob_crc);
}

/* Opens dir/snapshot.<zxid>'s name which for reading into *fd: 0 or -errno. */
static int open_for_reading(const char *dir, uint64_t zxid, int which, int *fd)
{
    char path[4096];
    int rc = store_snapfile_path(path, sizeof path, dir, zxid, which);
    if (rc)
        return rc;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? -errno : 0;
}

int store_snapfile_uncache(const char *dir, uint64_t zxid)
{
    int fd;
    int rc = open_for_reading(dir, zxid, STORE_SNAPFILE_FINAL, &fd);
    if (rc)
        return rc;
    rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return -rc;
}

int store_snapfile_publish(const char *dir, uint64_t zxid, int which)
{
    char tmp[4096], final[4096];
    int rc = which == STORE_SNAPFILE_FINAL ? -EINVAL
                                           : store_snapfile_path(tmp, sizeof tmp, dir, zxid, which);
    if (rc == 0)
        rc = store_snapfile_path(final, sizeof final, dir, zxid, false);
    if (rc)
        return rc;
    if (rename(tmp, final) != 0)
        return -errno;
    return -store_fsync_dir(dir);
}

static int damaged(struct store_snapfile_facts *facts, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int damaged(struct store_snapfile_facts *facts, uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(facts->problem, sizeof facts->problem, fmt, ap);
    va_end(ap);
    facts->offset = offset;
    return 1;
}

/* Checks the header in h against the file's size st_size. */
static int check_header(const unsigned char *h, uint64_t zxid, uint64_t file_bytes,
                        struct store_snapfile_facts *facts)
{
    if (get_be32(h) != STORE_SNAPFILE_MAGIC)
        return damaged(facts, 0, "it does not start with a snapshot file's magic number");
    if (get_be32(h + 36) != crc32c(h, 36))
        return damaged(facts, 0, "its header fails its checksum");
    if (get_be32(h + 4) != STORE_SNAPFILE_VERSION)
        return damaged(facts, 4, "its format version %" PRIu32 " is not one this build reads",
                       get_be32(h + 4));
    if (get_be64(h + 8) != zxid)
        return damaged(facts, 8, "its header names zxid 0x%" PRIx64 ", not its file name's",
                       get_be64(h + 8));
    facts->len = get_be64(h + 16);
    facts->crc = get_be32(h + 24);
    uint64_t want = STORE_SNAPFILE_HEADER_BYTES + facts->len;
    if (file_bytes != want) /* the damage starts where the shorter of the two ends */
        return damaged(facts, file_bytes < want ? file_bytes : want,
                       "it is %" PRIu64 " bytes, its header says %" PRIu64 " (cut short or grown)",
                       file_bytes, want);
    return 0;
}

/* Opens the file and checks its header; returns an open fd in *fd on 0. */
static int open_checked(const char *dir, uint64_t zxid, int which,
                        struct store_snapfile_facts *facts, int *fd_out, uint64_t *file_bytes)
{
    memset(facts, 0, sizeof *facts);
    int fd;
    int rc = open_for_reading(dir, zxid, which, &fd);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *file_bytes = (uint64_t)st.st_size;
    unsigned char h[STORE_SNAPFILE_HEADER_BYTES];
    if (*file_bytes < sizeof h)
        rc = damaged(facts, *file_bytes, "it is %" PRIu64 " bytes, shorter than its header",
                     *file_bytes);
    else if ((rc = -store_pread_all(fd, h, sizeof h, 0)) == 0)
        rc = check_header(h, zxid, *file_bytes, facts);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int store_snapfile_check_header(const char *dir, uint64_t zxid, int which,
                                struct store_snapfile_facts *facts)
{
    int fd;
    uint64_t file_bytes;
    int rc = open_checked(dir, zxid, which, facts, &fd, &file_bytes);
    if (rc == 0)
        close(fd);
    return rc;
}

int store_snapfile_map(const char *dir, uint64_t zxid, uint64_t len, uint32_t crc, void **map,
                       size_t *map_len, struct store_snapfile_facts *facts)
{
    *map = NULL;
    *map_len = 0;
    int fd;
    uint64_t file_bytes;
    int rc = open_checked(dir, zxid, STORE_SNAPFILE_FINAL, facts, &fd, &file_bytes);
    if (rc)
        return rc;
    if (facts->len != len || facts->crc != crc) {
        close(fd);
        return damaged(facts, 16,
                       "its header (%" PRIu64 " bytes, crc 0x%08" PRIx32 ") differs from the "
                       "store's record of it (%" PRIu64 " bytes, crc 0x%08" PRIx32 ")",
                       facts->len, facts->crc, len, crc);
    }
    if (file_bytes > SIZE_MAX) {
        close(fd);
        return -EFBIG;
    }
    void *p = mmap(NULL, (size_t)file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    rc = p == MAP_FAILED ? -errno : 0;
    close(fd);
    if (rc)
        return rc;
    (void)madvise(p, (size_t)file_bytes, MADV_SEQUENTIAL);
    const unsigned char *blob = (const unsigned char *)p + STORE_SNAPFILE_HEADER_BYTES;
    if (store_snapfile_blob_crc(zxid, blob, (size_t)len) != crc) {
        munmap(p, (size_t)file_bytes);
        return damaged(facts, STORE_SNAPFILE_HEADER_BYTES,
                       "its %" PRIu64 " bytes from offset %u on fail their checksum", len,
                       STORE_SNAPFILE_HEADER_BYTES);
    }
    *map = p;
    *map_len = (size_t)file_bytes;
    return 0;
}

int store_snapfile_remove(const char *dir, uint64_t zxid)
{
    char path[4096];
    int rc = 0;
    for (int which = STORE_SNAPFILE_FINAL; which <= STORE_SNAPFILE_TMP_STORE; which++) {
        if (store_snapfile_path(path, sizeof path, dir, zxid, which) == 0 && unlink(path) != 0 &&
            errno != ENOENT && rc == 0)
            rc = -errno;
    }
    return rc;
}

int store_snapfile_sweep(const char *dir, bool tmp_too, bool (*keep)(void *ctx, uint64_t zxid),
                         void *ctx, unsigned *removed)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        uint64_t zxid;
        bool tmp;
        if (!store_snapfile_parse_name(de->d_name, &zxid, &tmp) || (tmp && !tmp_too) ||
            (!tmp && keep(ctx, zxid)))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
            if (errno != ENOENT && rc == 0)
                rc = -errno;
            continue;
        }
        (*removed)++;
    }
    closedir(d);
    return rc;
}

/* Copies src to dst (created), fsync'd.  Returns 0 or -errno. */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    static _Thread_local char buf[1 << 16];
    int rc = 0;
    for (uint64_t off = 0; rc == 0;) {
        ssize_t n = pread(in, buf, sizeof buf, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = -store_pwrite_all(out, buf, (size_t)n, off);
        off += (uint64_t)n;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    if (rc)
        unlink(dst);
    return rc;
}

int store_snapfile_transfer(const char *from, const char *to, uint64_t zxid, bool keep)
{
    char src[4096], dst[4096];
    int rc = store_snapfile_path(src, sizeof src, from, zxid, STORE_SNAPFILE_FINAL);
    if (rc == 0)
        rc = store_snapfile_path(dst, sizeof dst, to, zxid, STORE_SNAPFILE_FINAL);
    if (rc)
        return rc;
    if (keep ? link(src, dst) == 0 || errno == EEXIST : rename(src, dst) == 0)
        return 0;
    if (errno != EXDEV && (!keep || (errno != EPERM && errno != EMLINK)))
        return -errno;
    if ((rc = copy_file(src, dst)) == 0 && !keep && unlink(src) != 0)
        rc = -errno;
    return rc;
}

int store_snapfile_transfer_all(const char *from, const char *to, bool keep)
{
    DIR *d = opendir(from);
    if (!d)
        return -errno;
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;) {
        uint64_t zxid;
        bool tmp;
        if (store_snapfile_parse_name(de->d_name, &zxid, &tmp) && !tmp)
            rc = store_snapfile_transfer(from, to, zxid, keep);
    }
    closedir(d);
    if (rc == 0)
        rc = -store_fsync_dir(to);
    if (rc == 0 && !keep)
        rc = -store_fsync_dir(from);
    return rc;
}
