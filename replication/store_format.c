/*
 * The store's record formats: how log entries and snapshot headers are laid
 * out in LMDB values and how their checksums are computed and checked, and
 * the check of LMDB's own file (its meta pages and the pages they use) before
 * it is mapped.  The record layouts are described in store_internal.h; this
 * file is the only code that knows them, and LMDB's, byte by byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_io.h"
#include "znode/errors.h"

uint32_t store_log_crc(uint64_t zxid, const void *payload, size_t len)
{
    unsigned char prefix[12];
    store_put_be64(prefix, zxid);
    store_put_be32(prefix + 8, (uint32_t)len);
    return crc32c_extend(crc32c(prefix, sizeof prefix), payload, len);
}

int store_log_decode(const MDB_val *key, const MDB_val *value, uint64_t *zxid,
                     const void **payload, size_t *len)
{
    if (key->mv_size != 8 || value->mv_size < STORE_LOG_HEADER_BYTES)
        return ZN_CORRUPT;
    const unsigned char *v = value->mv_data;
    uint32_t stored_crc = store_get_be32(v);
    uint32_t stored_len = store_get_be32(v + 4);
    if ((size_t)stored_len != value->mv_size - STORE_LOG_HEADER_BYTES)
        return ZN_CORRUPT;
    uint64_t z = store_get_be64(key->mv_data);
    if (store_log_crc(z, v + STORE_LOG_HEADER_BYTES, stored_len) != stored_crc)
        return ZN_CORRUPT;
    *zxid = z;
    *payload = v + STORE_LOG_HEADER_BYTES;
    *len = stored_len;
    return 0;
}

void store_snap_key(unsigned char key[STORE_SNAP_KEY_BYTES], uint64_t zxid, uint32_t chunk)
{
    store_put_be64(key, zxid);
    store_put_be32(key + 8, chunk);
}

void store_snap_header_encode(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                              const void *blob, size_t len, uint32_t chunks)
{
    unsigned char zxid_be[8];
    store_put_be64(zxid_be, zxid);
    store_snap_header_encode_crc(out, zxid, len, chunks, crc32c_extend(crc32c(zxid_be, 8), blob, len));
}

void store_snap_header_encode_crc(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                                  size_t len, uint32_t chunks, uint32_t blob_crc)
{
    store_put_be32(out, STORE_SNAP_MAGIC);
    store_put_be32(out + 4, STORE_SNAP_VERSION);
    store_put_be64(out + 8, zxid);
    store_put_be64(out + 16, (uint64_t)len);
    store_put_be32(out + 24, chunks);
    store_put_be32(out + 28, blob_crc);
    store_put_be32(out + 32, ZN_STORE_SNAPSHOT_CHUNK_BYTES);
    store_put_be32(out + 36, crc32c(out, 36));
}

void store_snap_record_encode(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                              uint64_t len, uint32_t blob_crc)
{
    store_snap_header_encode_crc(out, zxid, (size_t)len, 0, blob_crc);
    store_put_be32(out + 4, STORE_SNAP_VERSION_FILE);
    store_put_be32(out + 32, 0);
    store_put_be32(out + 36, crc32c(out, 36));
}

int store_snap_record_decode(const MDB_val *value, uint64_t *zxid, uint64_t *len,
                             uint32_t *blob_crc)
{
    if (value->mv_size != STORE_SNAP_HEADER_BYTES)
        return ZN_CORRUPT;
    const unsigned char *h = value->mv_data;
    if (store_get_be32(h + 36) != crc32c(h, 36) || store_get_be32(h) != STORE_SNAP_MAGIC ||
        store_get_be32(h + 4) != STORE_SNAP_VERSION_FILE || store_get_be32(h + 24) != 0 ||
        store_get_be32(h + 32) != 0 || store_get_be64(h + 16) > ZN_STORE_SNAPSHOT_MAX_BYTES)
        return ZN_CORRUPT;
    *zxid = store_get_be64(h + 8);
    *len = store_get_be64(h + 16);
    *blob_crc = store_get_be32(h + 28);
    return 0;
}

int store_snap_header_decode(const MDB_val *value, uint64_t *zxid, uint64_t *blob_len,
                             uint32_t *chunks, uint32_t *blob_crc)
{
    if (value->mv_size != STORE_SNAP_HEADER_BYTES)
        return ZN_CORRUPT;
    const unsigned char *h = value->mv_data;
    uint32_t version = store_get_be32(h + 4);
    if (store_get_be32(h + 36) != crc32c(h, 36) || store_get_be32(h) != STORE_SNAP_MAGIC ||
        (version != 1 && version != STORE_SNAP_VERSION))
        return ZN_CORRUPT;
    uint32_t chunk_bytes = version == 1 ? ZN_STORE_SNAPSHOT_CHUNK_BYTES_V1 : store_get_be32(h + 32);
    if (chunk_bytes == 0 || chunk_bytes > ZN_STORE_SNAPSHOT_CHUNK_BYTES_V1)
        return ZN_CORRUPT;
    *zxid = store_get_be64(h + 8);
    *blob_len = store_get_be64(h + 16);
    *chunks = store_get_be32(h + 24);
    *blob_crc = store_get_be32(h + 28);
    /* The chunk count must match the length, or a reader could be led to
     * allocate or walk more than was written. */
    uint64_t expected = (*blob_len + chunk_bytes - 1) / chunk_bytes;
    if (*blob_len > ZN_STORE_SNAPSHOT_MAX_BYTES || *chunks != expected)
        return ZN_CORRUPT;
    return 0;
}

/*
 * ---- LMDB's file, checked before it is mapped ----------------------------
 *
 * LMDB maps data.mdb and reads its pages through the map: a page that the
 * newest commit uses but that lies past the end of a file cut short (a disk
 * that lost its tail, an operator's mistake, the truncate nemesis of
 * tests/faults) raises SIGBUS on first touch, and a whole page lost at the
 * end used to open as if nothing happened.  So before mdb_env_open maps the
 * file, its two meta pages are read with pread, the newer is picked as LMDB
 * picks it (the higher txnid), and the file must hold every page up to the
 * meta's last page.  A file that is shorter is not damaged yet: LMDB may
 * allocate pages at the end and free them in the same transaction, never
 * writing them; then the B-trees (the free list's and the main database's,
 * which holds the named databases) are walked from their roots with pread
 * and only a page in use that the file does not wholly hold is damage.
 *
 * The layouts below are LMDB 0.9's (liblmdb 0.9.24, 64-bit, host byte order):
 *   page header (16): pgno (8) | pad (2) | flags (2) | lower (2) | upper (2)
 *                     (an overflow page's lower/upper hold its page count, 4)
 *   meta page: header | magic (4) | version (4) | address (8) | mapsize (8) |
 *              db[2] (48 each: pad (4, db[0]'s is the page size) | flags (2) |
 *              depth (2) | branch, leaf, overflow pages, entries, root (8 each)) |
 *              last page (8) | txnid (8)
 *   node (8 + key + data): lo (2) | hi (2) | flags (2) | key size (2); a branch
 *              node's child is lo | hi << 16 | flags << 32, a leaf's data size
 *              lo | hi << 16
 */
#define LMDB_PAGE_HEADER 16u
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_BRANCH 0x01u
#define LMDB_P_LEAF 0x02u
#define LMDB_P_OVERFLOW 0x04u
#define LMDB_P_META 0x08u
#define LMDB_P_LEAF2 0x20u
#define LMDB_F_BIGDATA 0x01u
#define LMDB_F_SUBDATA 0x02u
#define LMDB_P_INVALID UINT64_MAX
#define LMDB_META_MAGIC_AT 16u
#define LMDB_META_VERSION_AT 20u
#define LMDB_META_PSIZE_AT 40u
#define LMDB_META_FREE_ROOT_AT 80u
#define LMDB_META_MAIN_ROOT_AT 128u
#define LMDB_META_LAST_PAGE_AT 136u
#define LMDB_META_TXNID_AT 144u
#define LMDB_META_BYTES 152u
#define LMDB_DB_ROOT_AT 40u /* in a 48-byte db record (a named database's leaf data) */
#define LMDB_DB_BYTES 48u
#define LMDB_PAGE_MIN 512u
#define LMDB_PAGE_MAX 65536u
/* LMDB's cursors hold at most 32 levels; a deeper walk is a cycle or damage. */
#define STORE_CHECK_MAX_DEPTH 32

struct store_file_walk {
    int fd;
    uint32_t psize;
    uint64_t present;   /* pages the file holds whole */
    uint64_t visited;   /* bounded by present: more means a cycle */
    uint64_t missing;   /* the first page in use the file does not hold */
    uint64_t missing_end;
    char problem[160];  /* damage other than a missing page */
    unsigned char *mark; /* tests: a bit per page reached, mark_pages long */
    uint64_t mark_pages;
    uint64_t marked;     /* pages reached, overflow pages included */
};

static uint16_t store_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint32_t store_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint64_t store_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Notes pages [first, first + count) as in use; 0 if the file holds them. */
static int store_walk_need(struct store_file_walk *w, uint64_t first, uint64_t count)
{
    if (first < w->present && count <= w->present - first) {
        w->marked += count;
        for (uint64_t p = first; w->mark && p < first + count && p < w->mark_pages; p++)
            w->mark[p / 8] |= (unsigned char)(1u << (p % 8));
        return 0;
    }
    w->missing = first;
    w->missing_end = first + count - 1;
    return -1;
}

/* Walks the B-tree below pgno; returns 0, or -1 with missing or problem set. */
static int store_walk_tree(struct store_file_walk *w, uint64_t pgno, int depth)
{
    if (pgno == LMDB_P_INVALID)
        return 0; /* an empty database */
    if (depth > STORE_CHECK_MAX_DEPTH || ++w->visited > w->present) {
        snprintf(w->problem, sizeof w->problem, "its B-tree loops or is deeper than %d levels",
                 STORE_CHECK_MAX_DEPTH);
        return -1;
    }
    if (store_walk_need(w, pgno, 1))
        return -1;
    /* The recursion reuses one buffer: copy out what is needed per node. */
    unsigned char *page = malloc(w->psize);
    if (!page) {
        snprintf(w->problem, sizeof w->problem, "out of memory while checking it");
        return -1;
    }
    int rc = 0;
    if (store_pread_all(w->fd, page, w->psize, pgno * w->psize)) {
        snprintf(w->problem, sizeof w->problem, "page %" PRIu64 " cannot be read", pgno);
        rc = -1;
        goto out;
    }
    uint16_t flags = store_u16(page + 10), lower = store_u16(page + 12);
    if (store_u64(page) != pgno || lower < LMDB_PAGE_HEADER || lower > w->psize ||
        !(flags & (LMDB_P_BRANCH | LMDB_P_LEAF))) {
        snprintf(w->problem, sizeof w->problem,
                 "page %" PRIu64 ", in use, is not a B-tree page (it says page %" PRIu64
                 ", flags 0x%x)",
                 pgno, store_u64(page), flags);
        rc = -1;
        goto out;
    }
    if (flags & LMDB_P_LEAF2)
        goto out; /* fixed-size keys, no nodes: only in DUPFIXED databases */
    unsigned nodes = (lower - LMDB_PAGE_HEADER) / 2u;
    for (unsigned i = 0; i < nodes && rc == 0; i++) {
        uint16_t at = store_u16(page + LMDB_PAGE_HEADER + 2u * i);
        if ((size_t)at + 8u > w->psize) {
            snprintf(w->problem, sizeof w->problem, "page %" PRIu64 " has a node out of bounds", pgno);
            rc = -1;
            break;
        }
        const unsigned char *node = page + at;
        uint16_t lo = store_u16(node), hi = store_u16(node + 2), nflags = store_u16(node + 4);
        uint16_t ksize = store_u16(node + 6);
        if (flags & LMDB_P_BRANCH) {
            uint64_t child = (uint64_t)lo | (uint64_t)hi << 16 | (uint64_t)nflags << 32;
            rc = store_walk_tree(w, child, depth + 1);
            continue;
        }
        size_t data_at = (size_t)at + 8u + ksize;
        if (nflags & LMDB_F_BIGDATA) {
            if (data_at + 8u > w->psize) {
                rc = -1;
                snprintf(w->problem, sizeof w->problem, "page %" PRIu64 " has a node out of bounds", pgno);
                break;
            }
            uint64_t ov = store_u64(page + data_at);
            unsigned char head[LMDB_PAGE_HEADER];
            if (store_walk_need(w, ov, 1) ||
                store_pread_all(w->fd, head, sizeof head, ov * w->psize)) {
                rc = -1;
                break;
            }
            uint32_t count = store_u32(head + 12);
            if (store_u64(head) != ov || !(store_u16(head + 10) & LMDB_P_OVERFLOW) || count == 0) {
                snprintf(w->problem, sizeof w->problem,
                         "page %" PRIu64 ", in use, is not an overflow page", ov);
                rc = -1;
                break;
            }
            /* The first page was counted above. */
            w->marked--;
            rc = store_walk_need(w, ov, count);
        } else if (nflags & LMDB_F_SUBDATA) {
            if (data_at + LMDB_DB_BYTES > w->psize) {
                rc = -1;
                snprintf(w->problem, sizeof w->problem, "page %" PRIu64 " has a node out of bounds", pgno);
                break;
            }
            rc = store_walk_tree(w, store_u64(page + data_at + LMDB_DB_ROOT_AT), depth + 1);
        }
    }
out:
    free(page);
    return rc;
}

/* Reads and checks one meta page; returns NULL or what is wrong with it. */
static const char *store_meta_page_check(const unsigned char *meta)
{
    if (!(store_u16(meta + 10) & LMDB_P_META))
        return "is not a meta page";
    if (store_u32(meta + LMDB_META_MAGIC_AT) != LMDB_MAGIC)
        return "has no LMDB magic number";
    if (store_u32(meta + LMDB_META_VERSION_AT) != LMDB_DATA_VERSION)
        return "has an unknown LMDB version";
    uint32_t psize = store_u32(meta + LMDB_META_PSIZE_AT);
    if (psize < LMDB_PAGE_MIN || psize > LMDB_PAGE_MAX || (psize & (psize - 1)))
        return "has an impossible page size";
    return NULL;
}

int store_refuse_damaged(const char *dir, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ZN_ERROR("store: %s/data.mdb is damaged: %s; refusing to start on it. Move %s aside "
             "(mv %s %s.damaged) and start this member again: in an ensemble it rejoins empty "
             "and the leader brings it up to date with a snapshot (a standalone server has no "
             "other copy: restore its data from a backup)",
             dir, what, dir, dir, dir);
    return ZN_CORRUPT;
}

int store_file_check(const char *dir, struct store_file_facts *facts)
{
    memset(facts, 0, sizeof *facts);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path) {
        ZN_ERROR("store: the data directory's path is too long dir=%s", dir);
        return ZN_BADARGUMENTS;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* a new store: LMDB creates it */
        ZN_ERROR("store: cannot open %s: %s", path, strerror(errno));
        return ZN_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        ZN_ERROR("store: cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return ZN_IO;
    }
    facts->exists = true;
    facts->file_bytes = (uint64_t)sb.st_size;
    int rc = 0;
    unsigned char meta[2][LMDB_META_BYTES];
    const char *bad;
    /* LMDB writes both meta pages when it creates the file: an existing file
     * without them (even an empty one) lost them, and with them the member's
     * history, which an empty new store must not silently replace. */
    if (store_pread_all(fd, meta[0], LMDB_META_BYTES, 0)) {
        rc = store_refuse_damaged(dir, "it is %" PRIu64 " bytes, shorter than its first meta page",
                               facts->file_bytes);
        goto out;
    }
    if ((bad = store_meta_page_check(meta[0]))) {
        rc = store_refuse_damaged(dir, "its first meta page %s", bad);
        goto out;
    }
    uint32_t psize = store_u32(meta[0] + LMDB_META_PSIZE_AT);
    if (facts->file_bytes < 2ull * psize ||
        store_pread_all(fd, meta[1], LMDB_META_BYTES, psize)) {
        rc = store_refuse_damaged(dir, "it is %" PRIu64 " bytes, shorter than its two meta pages "
                               "(page size %u)", facts->file_bytes, psize);
        goto out;
    }
    if ((bad = store_meta_page_check(meta[1]))) {
        rc = store_refuse_damaged(dir, "its second meta page %s", bad);
        goto out;
    }
    /* LMDB's choice: the meta page of the newer commit. */
    const unsigned char *m = meta[store_u64(meta[0] + LMDB_META_TXNID_AT) <
                                  store_u64(meta[1] + LMDB_META_TXNID_AT)];
    facts->page_bytes = psize;
    facts->last_pgno = store_u64(m + LMDB_META_LAST_PAGE_AT);
    facts->txnid = store_u64(m + LMDB_META_TXNID_AT);
    uint64_t present = facts->file_bytes / psize;
    if (facts->last_pgno < present)
        goto out; /* the file holds every page the commit may use */
    struct store_file_walk w = {.fd = fd, .psize = psize, .present = present};
    if (store_walk_tree(&w, store_u64(m + LMDB_META_FREE_ROOT_AT), 0) == 0 &&
        store_walk_tree(&w, store_u64(m + LMDB_META_MAIN_ROOT_AT), 0) == 0) {
        ZN_WARN("store: %s is %" PRIu64 " bytes, short of the last page %" PRIu64
                " (page size %u), but every page in use is there (the pages it lacks are free)",
                path, facts->file_bytes, facts->last_pgno, psize);
        goto out;
    }
    if (w.problem[0])
        rc = store_refuse_damaged(dir, "%s (txn %" PRIu64 ")", w.problem, facts->txnid);
    else
        rc = store_refuse_damaged(dir,
                               "it is %" PRIu64 " bytes (%" PRIu64 " whole pages of %u), but %s %" PRIu64
                               "%s%.0" PRIu64 ", in use by its newest commit (txn %" PRIu64
                               ", last page %" PRIu64 "), %s",
                               facts->file_bytes, present, psize,
                               w.missing_end > w.missing ? "the overflow pages" : "page", w.missing,
                               w.missing_end > w.missing ? "-" : "",
                               w.missing_end > w.missing ? w.missing_end : 0,
                               facts->txnid, facts->last_pgno,
                               w.missing_end > w.missing ? "are not all in the file" : "is missing");
out:
    close(fd);
    return rc;
}

int store_test_pages_in_use(const char *dir, unsigned char *mark, uint64_t mark_pages,
                            uint64_t *in_use, uint64_t *last_pgno)
{
    struct store_file_facts facts;
    int rc = store_file_check(dir, &facts);
    if (rc)
        return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ZN_IO;
    unsigned char meta[2][LMDB_META_BYTES];
    if (store_pread_all(fd, meta[0], LMDB_META_BYTES, 0) ||
        store_pread_all(fd, meta[1], LMDB_META_BYTES, facts.page_bytes)) {
        close(fd);
        return ZN_IO;
    }
    const unsigned char *m = meta[store_u64(meta[0] + LMDB_META_TXNID_AT) <
                                  store_u64(meta[1] + LMDB_META_TXNID_AT)];
    struct store_file_walk w = {.fd = fd, .psize = facts.page_bytes,
                                .present = facts.file_bytes / facts.page_bytes,
                                .mark = mark, .mark_pages = mark_pages};
    rc = store_walk_tree(&w, store_u64(m + LMDB_META_FREE_ROOT_AT), 0) ||
                 store_walk_tree(&w, store_u64(m + LMDB_META_MAIN_ROOT_AT), 0)
             ? ZN_CORRUPT
             : 0;
    close(fd);
    *in_use = w.marked;
    *last_pgno = facts.last_pgno;
    return rc;
}
