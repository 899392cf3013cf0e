/*
 * store_snapwrite: writing one snapshot on the writer thread, with what
 * follows it: the snapshots beyond snapshots_kept dropped and the log
 * compacted, all in bounded transactions with the log entries queued
 * meanwhile committed between them (store_writer_interleave).  The blob's
 * pages are given back as their chunks commit.
 *
 * Invariants: a snapshot counts only once its header is committed; log
 * entries overtake a snapshot only if the log already holds its zxid (never
 * one installed from a leader); the log is compacted only once an older
 * snapshot backs the newest.
 *
 * Called by: the writer thread (store_writer.c: store_write_snapshot,
 * store_release_blob_upto).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

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
        /* Every item queued before this snapshot is written by now, so the
         * log's last zxid tells whether the log already holds the snapshot's
         * zxid (see store_write_snapshot). */
        struct wal_counts log;
        wal_counts(s->wal, &log);
        job->log_top = log.last_zxid;
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
void store_release_blob_upto(struct store_item *item, size_t upto)
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
int store_write_snapshot(struct store *s, struct store_item *item, struct store_item **rest)
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
    /* The snapshot counts: now the log's segments wholly at or below the
     * compaction point go (unlinked: a directory fsync, not a transaction). */
    memset(&job.deleted, 0, sizeof job.deleted);
    if (rc == 0 && !crashed && job.compacted_zxid) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int crc = wal_compact(s->wal, job.compacted_zxid, &job.deleted.entries, &job.deleted.bytes);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        if (us > compact_us)
            compact_us = us;
        if (crc)
            store_error(crc, "compacting the log (the segments are left for the next compaction)");
        pthread_mutex_lock(&s->mutex);
        s->stats.fsyncs += job.deleted.entries > 0; /* the directory's, after the unlinks */
        ZN_ASSERT(s->stats.log_entries >= job.deleted.entries);
        s->stats.log_entries -= job.deleted.entries;
        s->stats.log_bytes -= job.deleted.bytes;
        pthread_mutex_unlock(&s->mutex);
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
