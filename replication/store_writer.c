/*
 * The store's writer thread: the only code that writes LMDB once the store
 * is open.  It takes everything queued at once, writes each run of log
 * entries in ONE write transaction (group commit: LMDB's commit is the
 * fsync), and handles snapshots (with compaction), truncations and metadata
 * in queue order: each in its own transaction, except a big snapshot, which
 * takes several bounded ones (its compaction too) with queued log entries
 * committed between them.  On MDB_MAP_FULL it grows the
 * map (doubling, up to map_max_bytes) and retries the transaction, which
 * LMDB allows only with no transaction active in the process: hence the
 * resize lock that readers hold around their read transactions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <time.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

typedef int (*store_txn_fn)(struct store *s, MDB_txn *txn, void *arg);

/* Doubles the map up to its ceiling.  Returns true if it grew. */
static bool store_grow_map(struct store *s)
{
    pthread_mutex_lock(&s->mutex);
    uint64_t current = s->map_bytes;
    pthread_mutex_unlock(&s->mutex);
    if (current >= s->opts.map_max_bytes)
        return false;
    uint64_t next = current * 2 < s->opts.map_max_bytes ? current * 2 : s->opts.map_max_bytes;
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, next);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc) {
        store_error(rc, "growing the LMDB map");
        return false;
    }
    pthread_mutex_lock(&s->mutex);
    s->map_bytes = next;
    pthread_mutex_unlock(&s->mutex);
    ZN_INFO("store: map grown map_bytes=%" PRIu64 " map_max_bytes=%" PRIu64, next,
            s->opts.map_max_bytes);
    return true;
}

/*
 * LMDB reads pages through its read-only map of data.mdb: appending to the
 * log touches the last leaf page on every commit, so over time nearly every
 * log page written was mapped into this process once, and stayed counted in
 * its RSS (100k znodes: ~24 MB of a member's ~80 MB) though nothing reads it
 * again until compaction.  Every STORE_UNMAP_EVERY_COMMITS commits, after a
 * snapshot and after recovery, the map's page table entries are dropped
 * (MADV_DONTNEED on a shared file mapping): the pages stay in the page cache,
 * no byte changes, and a page LMDB needs again is mapped back by a minor
 * fault.  Safe beside read transactions on the loop thread (a dropped page
 * faults back with the same bytes); the map is only resized on this thread.
 */
#define STORE_UNMAP_EVERY_COMMITS 256u

/* The address and length of this process's map of data.mdb (LMDB does not
 * tell it: MDB_envinfo.me_mapaddr is only set with MDB_FIXEDMAP), found in
 * /proc/self/maps by the file's inode.  Returns 0 when found. */
static int store_find_map(struct store *s, uintptr_t *start, uintptr_t *end)
{
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0)
        return -1;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return -1;
    char line[512];
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, offset, inode;
        char perms[8];
        unsigned dev_major, dev_minor;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &offset, &dev_major,
                   &dev_minor, &inode) == 7 &&
            inode == (unsigned long)st.st_ino && offset == 0 && perms[3] == 's') {
            *start = lo;
            *end = hi;
            found = 0;
        }
    }
    fclose(maps);
    return found;
}

void store_unmap_pages(struct store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    uintptr_t start, end;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return;
    pthread_rwlock_rdlock(&s->resize_lock);
    if (store_find_map(s, &start, &end) == 0) {
        uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0) {
            used = (used + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
            if (used > end - start)
                used = end - start;
            (void)madvise((void *)start, (size_t)used, MADV_DONTNEED);
        }
    }
    pthread_rwlock_unlock(&s->resize_lock);
}

/*
 * Runs fn in a write transaction and commits it.  fn must start from scratch
 * on each call (it is retried after the map grows).  With injectable, a
 * pending test fault replaces the commit.  Returns an LMDB or errno code.
 */
static int store_write_txn(struct store *s, store_txn_fn fn, void *arg, bool injectable)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc)
            return rc;
        rc = fn(s, txn, arg);
        if (rc == 0 && injectable) {
            pthread_mutex_lock(&s->mutex);
            if (s->fail_batches) {
                s->fail_batches--;
                rc = s->fail_error;
            }
            pthread_mutex_unlock(&s->mutex);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
            if (rc == 0) {
                pthread_mutex_lock(&s->mutex);
                s->stats.fsyncs++;
                pthread_mutex_unlock(&s->mutex);
                if (++s->commits_since_unmap >= STORE_UNMAP_EVERY_COMMITS) {
                    s->commits_since_unmap = 0;
                    store_unmap_pages(s);
                }
            }
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_MAP_FULL && store_grow_map(s))
            continue;
        return rc;
    }
}

/*
 * LMDB turns a short pwrite into EIO ("TODO: Use which error code?"), which
 * is what a disk that fills up in the middle of a write produces.  Reports
 * ENOSPC instead when the file system has less room than the failed write
 * needed plus a margin, so the daemon sees "disk full", not "I/O error".
 */
#define STORE_NOSPACE_MARGIN_BYTES (1u << 20)

static int store_classify_failure(struct store *s, int rc, uint64_t bytes_needed)
{
    if (rc != EIO)
        return rc;
    mdb_filehandle_t fd;
    struct statvfs fs;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &fs) != 0)
        return rc;
    uint64_t available = (uint64_t)fs.f_bavail * fs.f_frsize;
    return available < bytes_needed + STORE_NOSPACE_MARGIN_BYTES ? ENOSPC : rc;
}

/* ---- log entries -------------------------------------------------------- */

static int store_put_log_record(struct store *s, MDB_txn *txn, const struct store_item *item,
                                bool corrupt)
{
    unsigned char key_bytes[8];
    store_put_be64(key_bytes, item->zxid);
    MDB_val key = {8, key_bytes};
    MDB_val value = {STORE_LOG_HEADER_BYTES + item->len, NULL};
    /* MDB_APPEND: zxids only grow, so LMDB can skip the search and fill
     * pages completely; it fails with MDB_KEYEXIST if order were broken. */
    int rc = mdb_put(txn, s->dbi_log, &key, &value, MDB_RESERVE | (corrupt ? 0 : MDB_APPEND));
    if (rc)
        return rc;
    unsigned char *v = value.mv_data;
    uint32_t crc = store_log_crc(item->zxid, item->data, item->len);
    store_put_be32(v, corrupt ? ~crc : crc);
    store_put_be32(v + 4, (uint32_t)item->len);
    memcpy(v + STORE_LOG_HEADER_BYTES, item->data, item->len);
    return 0;
}

static int store_put_entries(struct store *s, MDB_txn *txn, void *arg)
{
    for (const struct store_item *item = arg; item; item = item->next) {
        int rc = store_put_log_record(s, txn, item, false);
        if (rc)
            return rc;
    }
    return 0;
}

/* Records how long a log commit took, for store_take_commit_times. */
static void store_note_commit_time(struct store *s, const struct timespec *t0,
                                   const struct timespec *t1)
{
    int64_t us = (int64_t)(t1->tv_sec - t0->tv_sec) * 1000000 + (t1->tv_nsec - t0->tv_nsec) / 1000;
    pthread_mutex_lock(&s->mutex);
    if (s->commit_times < STORE_COMMIT_TIMES_MAX)
        s->commit_us[s->commit_times++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    pthread_mutex_unlock(&s->mutex);
}

/* Writes one run of entries (run..last, already detached) and queues the
 * result for the loop, carried by last. */
static void store_write_entries(struct store *s, struct store_item *run, struct store_item *last,
                                uint64_t count, uint64_t bytes)
{
    struct timespec t0, t1;
    int status;
    if (s->install_failed) {
        status = s->install_failed;
        ZN_ERROR("store: not writing log entries zxid=0x%" PRIx64 "..0x%" PRIx64
                 ": the leader's snapshot before them could not be stored (%s)",
                 run->zxid, last->zxid, zn_strerror(status));
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = store_write_txn(s, store_put_entries, run, true);
        if (rc)
            rc = store_classify_failure(s, rc, bytes + count * STORE_LOG_HEADER_BYTES);
        else
            store_note_commit_time(s, &t0, (clock_gettime(CLOCK_MONOTONIC, &t1), &t1));
        status = rc ? store_error(rc, "committing a log batch") : 0;
    }
    while (run != last) {
        struct store_item *next = run->next;
        free(run);
        run = next;
    }
    last->status = status;
    last->batch_entries = count;
    last->batch_bytes = bytes;
    pthread_mutex_lock(&s->mutex);
    if (status == 0) {
        s->stats.batches++;
        s->stats.entries_written += count;
        s->stats.last_batch_entries = count;
        s->stats.log_entries += count;
        s->stats.log_bytes += bytes;
    } else {
        s->stats.batches_failed++;
    }
    last->next = NULL;
    if (s->completed.tail)
        s->completed.tail->next = last;
    else
        s->completed.head = last;
    s->completed.tail = last;
    pthread_mutex_unlock(&s->mutex);
    uv_async_send(&s->async);
}

/* ---- deletion helpers (counting what they remove) ---------------------- */

struct store_deleted {
    uint64_t entries, bytes;
};

/* Deletes log entries with from <= zxid <= to, at most max of them; *more
 * (when not NULL) tells whether some were left for lack of max. */
static int store_delete_log_range(struct store *s, MDB_txn *txn, uint64_t from, uint64_t to,
                                  uint64_t max, bool *more, struct store_deleted *deleted)
{
    if (more)
        *more = false;
    uint64_t removed = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->dbi_log, &cur);
    if (rc)
        return rc;
    for (;;) {
        unsigned char key_bytes[8];
        store_put_be64(key_bytes, from);
        MDB_val key = {8, key_bytes}, value;
        rc = mdb_cursor_get(cur, &key, &value, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        uint64_t zxid = key.mv_size == 8 ? store_get_be64(key.mv_data) : 0;
        if (key.mv_size == 8 && zxid > to)
            break;
        if (removed == max) {
            if (more)
                *more = true;
            break;
        }
        removed++;
        deleted->entries++;
        if (value.mv_size >= STORE_LOG_HEADER_BYTES)
            deleted->bytes += value.mv_size - STORE_LOG_HEADER_BYTES;
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Deletes up to max keys of the snapshot at zxid (chunks and header);
 * *more (when not NULL) tells whether some were left for lack of max. */
static int store_snap_delete_some(struct store *s, MDB_txn *txn, uint64_t zxid, uint64_t max,
                                  bool *more)
{
    if (more)
        *more = false;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->dbi_snap, &cur);
    if (rc)
        return rc;
    for (uint64_t removed = 0;; removed++) {
        unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
        store_snap_key(key_bytes, zxid, 0);
        MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value;
        rc = mdb_cursor_get(cur, &key, &value, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc || key.mv_size < 8 || store_get_be64(key.mv_data) != zxid)
            break;
        if (removed == max) {
            if (more)
                *more = true;
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

static int store_snap_delete(struct store *s, MDB_txn *txn, uint64_t zxid)
{
    return store_snap_delete_some(s, txn, zxid, UINT64_MAX, NULL);
}

/* Lists the complete snapshots' zxids oldest first: the first max into
 * zxids, the total into *count.  A zxid with chunks but no header is an
 * incomplete snapshot left by a crash (or failure) between the transactions
 * of a chunked write: it is deleted here, never listed.  Called only between
 * snapshot writes, or in a snapshot's last transaction after its header is
 * in, so no snapshot being written is mistaken for a leftover. */
static int store_snap_list(struct store *s, MDB_txn *txn, uint64_t *zxids, size_t max,
                           size_t *count)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->dbi_snap, &cur);
    if (rc)
        return rc;
    size_t n = 0;
    uint64_t next = 0;
    for (;;) {
        unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
        store_snap_key(key_bytes, next, 0);
        MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value;
        rc = mdb_cursor_get(cur, &key, &value, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        if (key.mv_size != STORE_SNAP_KEY_BYTES) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t zxid = store_get_be64(key.mv_data);
        if (store_get_be32((unsigned char *)key.mv_data + 8) != 0) {
            ZN_WARN("store: deleting incomplete snapshot zxid=0x%" PRIx64
                    " (its write was cut short)", zxid);
            if ((rc = store_snap_delete(s, txn, zxid)))
                break;
        } else {
            if (n < max)
                zxids[n] = zxid;
            n++;
        }
        if (zxid == UINT64_MAX)
            break;
        next = zxid + 1;
    }
    mdb_cursor_close(cur);
    *count = n;
    return rc;
}

static int store_put_meta_value(struct store *s, MDB_txn *txn, const char *name, uint64_t value)
{
    size_t name_len = strlen(name);
    unsigned char v[STORE_META_VALUE_BYTES];
    store_put_be64(v + 4, value);
    store_put_be32(v, crc32c_extend(crc32c(name, name_len), v + 4, 8));
    MDB_val key = {name_len, (void *)name}, val = {sizeof v, v};
    return mdb_put(txn, s->dbi_meta, &key, &val, 0);
}

/* ---- snapshots and compaction ------------------------------------------ */

/*
 * A snapshot is written in transactions of at most snapshot_txn_bytes: each
 * but the last puts chunks [first, end); the last puts the remaining chunks,
 * then the header (the completion marker), then trims old snapshots and
 * compacts the log.  Between transactions the writer commits the log entries
 * queued meanwhile (store_writer_interleave), so a 60 MB snapshot holds a log
 * commit back for one ~2 MB transaction, not for the whole blob.
 */
struct store_snapshot_job {
    const struct store_item *item;
    uint32_t first, end;     /* chunk indexes (0-based) this transaction writes */
    uint32_t chunks;         /* of the whole blob */
    bool clear;              /* first transaction: delete leftovers at this zxid */
    uint64_t log_top;        /* set by the first transaction: the log's highest zxid then */
    struct store_deleted deleted;
    size_t snapshots;        /* after the write */
    uint64_t newest_zxid;
    uint64_t compacted_zxid; /* 0: no compaction */
    uint32_t crc;            /* blob crc32c (over zxid || blob) of the committed chunks */
    uint32_t crc_txn;        /* the same, with this transaction's chunks */
    uint64_t dropped[ZN_STORE_SNAPSHOTS_KEPT_MAX]; /* older snapshots whose header went: */
    size_t n_dropped;        /* their chunks are deleted in bounded transactions after */
};

static int store_put_snapshot_chunks(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_snapshot_job *job = arg;
    const struct store_item *item = job->item;
    int rc = job->clear ? store_snap_delete(s, txn, item->zxid) : 0;
    if (rc == 0 && job->clear) {
        /* Every item queued before this snapshot is committed by now, so the
         * log's last key tells whether the log already holds the snapshot's
         * zxid (see store_write_snapshot). */
        MDB_cursor *cur;
        MDB_val key, value;
        job->log_top = 0;
        if ((rc = mdb_cursor_open(txn, s->dbi_log, &cur)))
            return rc;
        rc = mdb_cursor_get(cur, &key, &value, MDB_LAST);
        if (rc == 0 && key.mv_size == 8)
            job->log_top = store_get_be64(key.mv_data);
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    job->crc_txn = job->crc; /* from scratch: the transaction may be retried */
    for (uint32_t i = job->first; rc == 0 && i < job->end; i++) {
        size_t offset = (size_t)i * ZN_STORE_SNAPSHOT_CHUNK_BYTES;
        size_t n = item->len - offset < ZN_STORE_SNAPSHOT_CHUNK_BYTES ? item->len - offset
                                                                      : ZN_STORE_SNAPSHOT_CHUNK_BYTES;
        unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
        store_snap_key(key_bytes, item->zxid, i + 1);
        MDB_val chunk_key = {STORE_SNAP_KEY_BYTES, key_bytes};
        MDB_val chunk = {n, (unsigned char *)item->blob + offset};
        /* MDB_APPEND fills leaf pages instead of splitting them in half; it
         * refuses (MDB_KEYEXIST) a key below the last, which a snapshot
         * older than one kept can have (a leader's, after a truncation). */
        rc = mdb_put(txn, s->dbi_snap, &chunk_key, &chunk, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            rc = mdb_put(txn, s->dbi_snap, &chunk_key, &chunk, 0);
        job->crc_txn = crc32c_extend(job->crc_txn, chunk.mv_data, n);
    }
    return rc;
}

/* The last transaction of a snapshot. */
static int store_put_snapshot(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_snapshot_job *job = arg;
    const struct store_item *item = job->item;
    memset(&job->deleted, 0, sizeof job->deleted);
    job->compacted_zxid = 0;

    int rc = store_put_snapshot_chunks(s, txn, job);
    if (rc)
        return rc;
    unsigned char header[STORE_SNAP_HEADER_BYTES];
    store_snap_header_encode_crc(header, item->zxid, item->len, job->chunks, job->crc_txn);
    unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
    store_snap_key(key_bytes, item->zxid, 0);
    MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value = {sizeof header, header};
    if ((rc = mdb_put(txn, s->dbi_snap, &key, &value, 0)))
        return rc;

    /* Keep the newest snapshots_kept.  Of an older one only the header goes
     * here (it no longer counts, as an incomplete snapshot); its chunks,
     * 70k keys for a tree of 600k nodes, go in bounded transactions after
     * this one, with log batches between them (store_write_snapshot). */
    uint64_t zxids[ZN_STORE_SNAPSHOTS_KEPT_MAX + 1];
    size_t count;
    job->n_dropped = 0;
    if ((rc = store_snap_list(s, txn, zxids, ZN_STORE_SNAPSHOTS_KEPT_MAX + 1, &count)))
        return rc;
    while (count > ZN_STORE_SNAPSHOTS_KEPT_MAX + 1) {
        /* more than were ever kept (the option was lowered): the oldest
         * beyond what the list holds go at once */
        if ((rc = store_snap_delete(s, txn, zxids[0])) ||
            (rc = store_snap_list(s, txn, zxids, ZN_STORE_SNAPSHOTS_KEPT_MAX + 1, &count)))
            return rc;
    }
    size_t excess = count > s->opts.snapshots_kept ? count - s->opts.snapshots_kept : 0;
    for (size_t i = 0; i < excess; i++) {
        unsigned char old_key[STORE_SNAP_KEY_BYTES];
        store_snap_key(old_key, zxids[i], 0);
        MDB_val old = {STORE_SNAP_KEY_BYTES, old_key};
        if ((rc = mdb_del(txn, s->dbi_snap, &old, NULL)))
            return rc;
        job->dropped[job->n_dropped++] = zxids[i];
    }
    memmove(zxids, zxids + excess, (count - excess) * sizeof zxids[0]);
    count -= excess;
    ZN_ASSERT(count >= 1 && count <= ZN_STORE_SNAPSHOTS_KEPT_MAX);
    job->snapshots = count;
    job->newest_zxid = zxids[count - 1];
    /* Compact only once an older snapshot backs the newest one: if the
     * newest is ever found damaged, recovery falls back to the oldest kept,
     * whose later log entries are all still here.  The compaction point is
     * recorded here; the entries at or below it are deleted afterwards in
     * bounded transactions (store_compact_txn).  Entries left there by a
     * crash are harmless (recovery reads only above a snapshot at or above
     * the point) and go with the next compaction. */
    if (count >= 2) {
        uint64_t oldest = zxids[0];
        if ((rc = store_put_meta_value(s, txn, STORE_META_COMPACTED, oldest)))
            return rc;
        job->compacted_zxid = oldest;
    }
    return 0;
}

/* One bounded step of a compaction: deletes up to STORE_COMPACT_TXN_ENTRIES
 * log entries at or below job->compacted_zxid. */
struct store_compact_job {
    uint64_t to;
    bool more;
    struct store_deleted deleted; /* by this transaction */
};

static int store_compact_txn(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_compact_job *job = arg;
    memset(&job->deleted, 0, sizeof job->deleted);
    return store_delete_log_range(s, txn, 0, job->to, STORE_COMPACT_TXN_ENTRIES, &job->more,
                                  &job->deleted);
}

static int store_drop_snapshot_txn(struct store *s, MDB_txn *txn, void *arg);
static void store_writer_interleave(struct store *s, struct store_item **rest);

/* One bounded step of deleting a replaced snapshot's chunks. */
struct store_drop_job {
    uint64_t zxid;
    bool more;
};

static int store_drop_chunks_txn(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_drop_job *job = arg;
    return store_snap_delete_some(s, txn, job->zxid, STORE_COMPACT_TXN_ENTRIES, &job->more);
}

/* store_write_txn (not injectable), timed: *longest_us becomes the longest
 * such transaction so far, for the snapshot's log line. */
static int store_timed_write_txn(struct store *s, store_txn_fn fn, void *arg, int64_t *longest_us)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = store_write_txn(s, fn, arg, false);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    if (rc == 0 && us > *longest_us)
        *longest_us = us;
    return rc;
}

/* True (once) when a test asked the snapshot write to stop after txns. */
static bool store_test_snapshot_crashes(struct store *s, unsigned txns)
{
    pthread_mutex_lock(&s->mutex);
    bool crash = s->crash_snapshot_after && txns >= s->crash_snapshot_after;
    if (crash)
        s->crash_snapshot_after = 0;
    pthread_mutex_unlock(&s->mutex);
    return crash;
}

/* Gives back the part of item's blob below upto that went not yet back:
 * whole pages only, unless upto is the blob's end (see store_blob_release_fn).
 * A blob from malloc goes in one free() at the end instead. */
static void store_release_blob_upto(struct store_item *item, size_t upto)
{
    if (!item->release) {
        if (upto == item->len)
            free(item->blob);
        return;
    }
    if (upto < item->len) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        upto -= upto % page;
    }
    if (upto <= item->released && !(upto == 0 && item->len == 0))
        return; /* (an empty blob goes back in one empty piece) */
    item->release((unsigned char *)item->blob + item->released, upto - item->released);
    item->released = upto;
}

/* Writes item's snapshot; rest is what the writer took after it, to which
 * entries queued meanwhile are added and from which the leading log entries
 * are written between the snapshot's transactions. */
static int store_write_snapshot(struct store *s, struct store_item *item, struct store_item **rest)
{
    uint32_t chunks = (uint32_t)((item->len + ZN_STORE_SNAPSHOT_CHUNK_BYTES - 1) /
                                 ZN_STORE_SNAPSHOT_CHUNK_BYTES);
    size_t per_txn_size = s->opts.snapshot_txn_bytes / ZN_STORE_SNAPSHOT_CHUNK_BYTES;
    uint32_t per_txn = per_txn_size == 0 ? 1 : per_txn_size > UINT32_MAX ? UINT32_MAX
                                                                       : (uint32_t)per_txn_size;
    struct store_snapshot_job job = {.item = item, .chunks = chunks};
    unsigned char zxid_be[8];
    store_put_be64(zxid_be, item->zxid);
    job.crc = crc32c(zxid_be, sizeof zxid_be);
    /* The longest transaction of each kind, in the log line: how long log
     * commits queued behind the snapshot could wait. */
    int64_t longest_us = 0, last_us = 0, compact_us = 0;
    uint32_t done = 0;
    unsigned txns = 0;
    bool crashed = false;
    int rc = 0;
    while (chunks - done > per_txn) {
        job.first = done;
        job.end = done + per_txn;
        job.clear = done == 0;
        if ((rc = store_timed_write_txn(s, store_put_snapshot_chunks, &job, &longest_us)))
            break;
        job.crc = job.crc_txn;
        done += per_txn;
        txns++;
        /* committed: its pages go now rather than all at the end */
        store_release_blob_upto(item, (size_t)done * ZN_STORE_SNAPSHOT_CHUNK_BYTES);
        if (store_test_snapshot_crashes(s, txns)) {
            crashed = true;
            break;
        }
        /* Log entries may overtake this snapshot only if the log already
         * holds its zxid: a snapshot of our own tree (standalone, or a
         * leader's or follower's periodic one) then only repeats what the
         * log has, and a crash before its header leaves the older snapshot
         * and the log to recover from.  A snapshot installed from a leader
         * (SNAP sync) is the only record of the state up to its zxid: an
         * entry after it reported durable, and acknowledged, before it is
         * complete would after a crash be replayed on the wrong tree. */
        if (job.log_top >= item->zxid)
            store_writer_interleave(s, rest);
    }
    if (rc == 0 && !crashed) {
        job.first = done;
        job.end = chunks;
        job.clear = done == 0;
        rc = store_timed_write_txn(s, store_put_snapshot, &job, &last_us);
    }
    if (rc) {
        rc = store_classify_failure(s, rc, item->len);
        /* Best effort: a leftover would also be deleted by the next
         * snapshot or at recovery, and is never used meanwhile. */
        if (done > 0)
            store_write_txn(s, store_drop_snapshot_txn, item, false);
    }
    pthread_mutex_lock(&s->mutex);
    if (rc == 0 && !crashed) {
        s->stats.snapshot_count = job.snapshots;
        s->stats.snapshot_zxid = job.newest_zxid;
    } else {
        s->stats.snapshots_failed++;
    }
    pthread_mutex_unlock(&s->mutex);
    /* The snapshots it replaced, whose headers went with its own: their
     * chunks, in bounded transactions with queued log batches between them.
     * A crash meanwhile leaves chunks without a header, which the next
     * snapshot or recovery deletes. */
    for (size_t i = 0; rc == 0 && !crashed && i < job.n_dropped; i++) {
        struct store_drop_job drop = {.zxid = job.dropped[i], .more = true};
        while (drop.more) {
            int drc = store_timed_write_txn(s, store_drop_chunks_txn, &drop, &compact_us);
            if (drc) {
                store_error(drc, "deleting an old snapshot (left for the next snapshot)");
                break;
            }
            if (drop.more)
                store_writer_interleave(s, rest);
        }
    }
    /* The snapshot counts: now the log at or below the compaction point
     * goes, in bounded transactions with queued log batches between them. */
    struct store_compact_job compact = {.to = job.compacted_zxid, .more = true};
    memset(&job.deleted, 0, sizeof job.deleted);
    while (rc == 0 && !crashed && job.compacted_zxid && compact.more) {
        int crc = store_timed_write_txn(s, store_compact_txn, &compact, &compact_us);
        if (crc) {
            store_error(crc, "compacting the log (the entries are left for the next compaction)");
            break;
        }
        job.deleted.entries += compact.deleted.entries;
        job.deleted.bytes += compact.deleted.bytes;
        pthread_mutex_lock(&s->mutex);
        ZN_ASSERT(s->stats.log_entries >= compact.deleted.entries);
        s->stats.log_entries -= compact.deleted.entries;
        s->stats.log_bytes -= compact.deleted.bytes;
        pthread_mutex_unlock(&s->mutex);
        if (compact.more)
            store_writer_interleave(s, rest);
    }
    if (crashed) {
        ZN_WARN("store: test: snapshot write stopped after %u transactions zxid=0x%" PRIx64, txns,
                item->zxid);
        return ZN_IO;
    }
    if (rc)
        return store_error(rc, "writing a snapshot");
    store_unmap_pages(s); /* compaction read the pages it deleted */
    ZN_INFO("store: snapshot written zxid=0x%" PRIx64 " bytes=%zu transactions=%u "
            "longest_chunk_txn_us=%" PRId64 " header_txn_us=%" PRId64
            " longest_compaction_txn_us=%" PRId64 " snapshots=%zu "
            "compacted_to=0x%" PRIx64 " log_entries_deleted=%" PRIu64,
            item->zxid, item->len, txns + 1, longest_us, last_us, compact_us, job.snapshots,
            job.compacted_zxid, job.deleted.entries);
    return 0;
}

/* ---- truncation, metadata, test records ---------------------------------- */

struct store_truncate_job {
    uint64_t zxid;
    struct store_deleted deleted;
    size_t snapshots;
    uint64_t newest_snapshot;
    uint64_t last_left;
};

static int store_truncate_txn(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_truncate_job *job = arg;
    memset(&job->deleted, 0, sizeof job->deleted);
    int rc = 0;
    if (job->zxid < UINT64_MAX)
        rc = store_delete_log_range(s, txn, job->zxid + 1, UINT64_MAX, UINT64_MAX, NULL,
                                    &job->deleted);
    if (rc)
        return rc;
    uint64_t zxids[ZN_STORE_SNAPSHOTS_KEPT_MAX + 1];
    size_t count;
    for (;;) {
        if ((rc = store_snap_list(s, txn, zxids, ZN_STORE_SNAPSHOTS_KEPT_MAX + 1, &count)))
            return rc;
        size_t listed = count < ZN_STORE_SNAPSHOTS_KEPT_MAX + 1 ? count : ZN_STORE_SNAPSHOTS_KEPT_MAX + 1;
        if (count == 0 || zxids[listed - 1] <= job->zxid)
            break;
        ZN_WARN("store: truncation removes snapshot zxid=0x%" PRIx64 " above zxid=0x%" PRIx64,
                zxids[listed - 1], job->zxid);
        if ((rc = store_snap_delete(s, txn, zxids[listed - 1])))
            return rc;
    }
    job->snapshots = count;
    job->newest_snapshot = count ? zxids[(count < ZN_STORE_SNAPSHOTS_KEPT_MAX + 1 ? count : ZN_STORE_SNAPSHOTS_KEPT_MAX + 1) - 1] : 0;
    job->last_left = job->newest_snapshot;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->dbi_log, &cur)))
        return rc;
    MDB_val key, value;
    rc = mdb_cursor_get(cur, &key, &value, MDB_LAST);
    if (rc == 0 && key.mv_size == 8 && store_get_be64(key.mv_data) > job->last_left)
        job->last_left = store_get_be64(key.mv_data);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int store_write_truncate(struct store *s, struct store_item *item)
{
    struct store_truncate_job job = {.zxid = item->zxid};
    int rc = store_write_txn(s, store_truncate_txn, &job, false);
    if (rc)
        return store_error(rc, "truncating the log");
    pthread_mutex_lock(&s->mutex);
    ZN_ASSERT(s->stats.log_entries >= job.deleted.entries);
    s->stats.log_entries -= job.deleted.entries;
    s->stats.log_bytes -= job.deleted.bytes;
    s->stats.snapshot_count = job.snapshots;
    s->stats.snapshot_zxid = job.newest_snapshot;
    pthread_mutex_unlock(&s->mutex);
    item->waiter->zxid = job.last_left;
    ZN_INFO("store: truncated after zxid=0x%" PRIx64 " entries_deleted=%" PRIu64
            " last_zxid=0x%" PRIx64,
            item->zxid, job.deleted.entries, job.last_left);
    return 0;
}

static int store_meta_txn(struct store *s, MDB_txn *txn, void *arg)
{
    const struct store_item *item = arg;
    return store_put_meta_value(s, txn, item->meta_key, item->meta_value);
}

static int store_drop_snapshot_txn(struct store *s, MDB_txn *txn, void *arg)
{
    const struct store_item *item = arg;
    return store_snap_delete(s, txn, item->zxid);
}

static int store_corrupt_entry_txn(struct store *s, MDB_txn *txn, void *arg)
{
    return store_put_log_record(s, txn, arg, true);
}

/* Handles one item that is not a log entry.  Frees it; wakes its waiter. */
static void store_write_other(struct store *s, struct store_item *item)
{
    int status = 0, rc;
    switch (item->op) {
    case STORE_OP_SNAPSHOT:
        ZN_ASSERT(!"snapshots are written by store_writer_process");
        break;
    case STORE_OP_TRUNCATE:
        status = store_write_truncate(s, item);
        break;
    case STORE_OP_META:
        rc = store_write_txn(s, store_meta_txn, item, false);
        status = rc ? store_error(rc, "writing metadata") : 0;
        break;
    case STORE_OP_DROP_SNAPSHOT:
        rc = store_write_txn(s, store_drop_snapshot_txn, item, false);
        status = rc ? store_error(rc, "deleting a snapshot") : 0;
        break;
    case STORE_OP_CORRUPT_ENTRY:
        rc = store_write_txn(s, store_corrupt_entry_txn, item, false);
        status = rc ? store_error(rc, "writing a corrupt test entry") : 0;
        if (status == 0) {
            pthread_mutex_lock(&s->mutex);
            s->stats.log_entries++;
            s->stats.log_bytes += item->len;
            pthread_mutex_unlock(&s->mutex);
        }
        break;
    case STORE_OP_ENTRY:
        ZN_ASSERT(!"entries are written in runs");
    }
    struct store_waiter *waiter = item->waiter;
    free(item);
    if (waiter) {
        pthread_mutex_lock(&s->mutex);
        waiter->status = status;
        waiter->done = true;
        pthread_cond_broadcast(&s->done_cond);
        pthread_mutex_unlock(&s->mutex);
    }
}

/* Splits the taken list into runs of entries (bounded by the batch limits)
 * and single other items, in order.  A snapshot may write log entries that
 * follow it (and entries queued while it is written) before it completes. */
static void store_writer_process(struct store *s, struct store_item *list)
{
    while (list) {
        if (list->op == STORE_OP_SNAPSHOT) {
            struct store_item *item = list;
            list = list->next;
            item->next = NULL;
            int rc = store_write_snapshot(s, item, &list);
            if (item->install)
                s->install_failed = rc;
            store_release_blob_upto(item, item->len);
            free(item);
            continue;
        }
        if (list->op != STORE_OP_ENTRY) {
            struct store_item *item = list;
            list = list->next;
            item->next = NULL;
            store_write_other(s, item);
            continue;
        }
        struct store_item *run = list, *last = list;
        uint64_t count = 1, bytes = list->len;
        while (last->next && last->next->op == STORE_OP_ENTRY && count < s->opts.batch_max_entries &&
               bytes + last->next->len <= s->opts.batch_max_bytes) {
            last = last->next;
            count++;
            bytes += last->len;
        }
        list = last->next;
        last->next = NULL;
        store_write_entries(s, run, last, count, bytes);
    }
}

/*
 * Between two transactions of a snapshot: takes what was queued meanwhile
 * (appended to *rest, keeping queue order; not while paused) and writes the
 * log entries at the head of *rest.  It stops at the first other item
 * (truncation, metadata, another snapshot): those keep their order after the
 * snapshot.  Entries may overtake the snapshot they follow because it counts
 * only at its last transaction and compacts nothing before then.
 */
static void store_writer_interleave(struct store *s, struct store_item **rest)
{
    pthread_mutex_lock(&s->mutex);
    if (!s->paused && s->queue.head) {
        struct store_item **tail = rest;
        while (*tail)
            tail = &(*tail)->next;
        *tail = s->queue.head;
        s->queue.head = s->queue.tail = NULL;
    }
    pthread_mutex_unlock(&s->mutex);
    struct store_item *entries = *rest, **end = rest;
    while (*end && (*end)->op == STORE_OP_ENTRY)
        end = &(*end)->next;
    if (end == rest)
        return;
    *rest = *end;
    *end = NULL;
    store_writer_process(s, entries);
}

void *store_writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mutex);
    for (;;) {
        while (!s->stopping && (s->paused || !s->queue.head))
            pthread_cond_wait(&s->work_cond, &s->mutex);
        if (!s->queue.head) {
            ZN_ASSERT(s->stopping);
            break;
        }
        if (s->paused)
            continue;
        struct store_item *list = s->queue.head;
        s->queue.head = s->queue.tail = NULL;
        s->writer_busy = true;
        pthread_mutex_unlock(&s->mutex);
        store_writer_process(s, list);
        pthread_mutex_lock(&s->mutex);
        s->writer_busy = false;
    }
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}
