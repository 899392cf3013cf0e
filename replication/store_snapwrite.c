/*
 * store_snapwrite: one snapshot on the writer thread, with what follows it.
 * A blob handed to the store (a leader's snapshot, one serialised on the
 * loop) is written into its file here, paced (store_snapfile_write), with
 * the log entries queued meanwhile committed between its chunks
 * (store_writer_interleave) unless it is a leader's; a file a snapshot child
 * wrote is only checked.  Then: the file renamed to its final name and the
 * directory fsync'd, the record naming it committed (with the snapshots
 * beyond snapshots_kept dropped and the compaction point moved), the
 * replaced files unlinked, and the log compacted in bounded transactions.
 * The blob's pages are given back as they are written.
 *
 * Invariants: a snapshot counts only once its record is committed, and its
 * record is committed only once its file is durable under its final name;
 * log entries overtake a snapshot only if the log already holds its zxid
 * (never one installed from a leader); the log is compacted only once an
 * older snapshot backs the newest.
 *
 * Called by: the writer thread (store_writer.c: store_write_snapshot,
 * store_release_blob_upto).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

/*
 * What a retain step decides (in the record's transaction, or a purge's):
 * the snapshots kept after it, the newest, and the compaction point (0: none).
 */
struct store_snapshot_job {
    const struct store_item *item; /* NULL: a purge */
    uint64_t len;
    uint32_t crc;
    size_t snapshots;        /* after the write */
    uint64_t newest_zxid;
    uint64_t compacted_zxid; /* 0: no compaction */
    size_t dropped;          /* older snapshots whose records went (their files go after) */
};

/*
 * Keeps the newest `keep` snapshot records (an older one's record goes
 * here, its file after the transaction commits: store_snapfiles_tidy) and,
 * with compact, moves the compaction point to the oldest kept one, only
 * once an older snapshot backs the newest (or when keep is 1, for a
 * leader's snapshot): if the newest is ever found damaged, recovery falls
 * back to the oldest kept, whose later log entries are all still here.  The
 * log's segments wholly at or below the point are unlinked afterwards
 * (store_retain_finish).  Segments left there by a crash are harmless
 * (recovery reads only above a snapshot at or above the point) and go with
 * the next compaction.
 */
static int store_retain(struct store *s, MDB_txn *txn, size_t keep, bool compact,
                        struct store_snapshot_job *job)
{
    uint64_t zxids[ZN_STORE_SNAPSHOTS_KEPT_MAX + 1];
    size_t count;
    uint64_t newest;
    int rc;
    for (;;) {
        if ((rc = store_snap_list(s, txn, zxids, ZN_STORE_SNAPSHOTS_KEPT_MAX + 1, &count, &newest)))
            return rc;
        if (count <= keep)
            break;
        /* the oldest listed beyond keep (many at once after snapshots accumulated) */
        size_t listed = count < ZN_STORE_SNAPSHOTS_KEPT_MAX + 1 ? count : ZN_STORE_SNAPSHOTS_KEPT_MAX + 1;
        size_t drop = count - keep < listed ? count - keep : listed;
        for (size_t i = 0; i < drop; i++) {
            if ((rc = store_snap_delete(s, txn, zxids[i])))
                return rc;
            job->dropped++;
        }
    }
    job->snapshots = count;
    job->newest_zxid = newest;
    if (compact && count >= 1 && (count >= 2 || keep == 1)) {
        uint64_t oldest = zxids[0];
        if ((rc = store_put_meta_value(s, txn, STORE_META_COMPACTED, oldest)))
            return rc;
        job->compacted_zxid = oldest;
    }
    return 0;
}

/* The record of the new snapshot file, with (unless purge_on_call) the
 * snapshots beyond snapshots_kept dropped and the compaction point moved, in
 * one transaction (the file is durable under its final name by now). */
static int store_put_snapshot(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_snapshot_job *job = arg;
    const struct store_item *item = job->item;
    job->compacted_zxid = 0;
    job->dropped = 0;
    /* (a leftover at this zxid: only a format 2 snapshot's chunks could be) */
    int rc = store_snap_delete(s, txn, item->zxid);
    if (rc)
        return rc;
    unsigned char record[STORE_SNAP_HEADER_BYTES];
    store_snap_record_encode(record, item->zxid, job->len, job->crc);
    unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
    store_snap_key(key_bytes, item->zxid, 0);
    MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value = {sizeof record, record};
    if ((rc = mdb_put(txn, s->dbi_snap, &key, &value, 0)))
        return rc;
    /* A leader's snapshot (install) keeps none older, whatever the purge
     * mode: the log does not hold the transactions between them and it, so
     * recovery must never fall back to one and replay the log across that
     * gap (a fault run's member did, after its installed snapshot's file
     * was cut, and its tree differed from the leader's). */
    if (item->install)
        rc = store_retain(s, txn, 1, true, job);
    else if (!s->opts.purge_on_call)
        rc = store_retain(s, txn, s->opts.snapshots_kept, true, job);
    else /* everything kept until store_purge: only counted */
        rc = store_retain(s, txn, SIZE_MAX, false, job);
    if (rc)
        return rc;
    ZN_ASSERT(job->snapshots >= 1); /* (this one's record, at least) */
    return 0;
}

/* A purge's transaction: the newest snapshots_kept stay. */
static int store_purge_txn(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_snapshot_job *job = arg;
    job->compacted_zxid = 0;
    job->dropped = 0;
    return store_retain(s, txn, s->opts.snapshots_kept, true, job);
}

/* After a retain step committed: the dropped snapshots' files go (one
 * unlink each), and the log's segments wholly at or below the compaction
 * point (unlinked: a directory fsync, not a transaction).  Returns the
 * compaction's duration; *deleted_entries the log entries it dropped. */
static int64_t store_retain_finish(struct store *s, const struct store_snapshot_job *job,
                                   uint64_t *deleted_entries);

/* True (once) when a test asked the snapshot write to stop at stage. */
static bool store_test_snapshot_crashes(struct store *s, unsigned stage)
{
    pthread_mutex_lock(&s->mutex);
    bool crash = s->crash_snapshot_at == stage;
    if (crash)
        s->crash_snapshot_at = 0;
    pthread_mutex_unlock(&s->mutex);
    return crash;
}

/* Gives back the part of item's blob below upto that went not yet back:
 * whole pages only, unless upto is the blob's end (see store_blob_release_fn).
 * A blob from malloc goes in one free() at the end instead. */
void store_release_blob_upto(struct store_item *item, size_t upto)
{
    if (!item->release) {
        if (upto == item->len && item->blob) {
            free(item->blob);
            item->blob = NULL;
        }
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

/* Between two chunks of a snapshot file the writer thread writes: the
 * written part of the blob goes back, and (see store_write_snapshot) log
 * entries queued meanwhile are committed. */
struct store_snapshot_progress {
    struct store *s;
    struct store_item *item;
    struct store_item **rest;
};

static void store_snapshot_progress(void *ctx, size_t done)
{
    struct store_snapshot_progress *p = ctx;
    store_release_blob_upto(p->item, done);
    /* Log entries may overtake this snapshot only if the log already holds
     * its zxid: a snapshot of our own tree (standalone, or a leader's or
     * follower's periodic one) then only repeats what the log has, and a
     * crash before its record leaves the older snapshot and the log to
     * recover from.  A snapshot installed from a leader (SNAP sync) is the
     * only record of the state up to its zxid: an entry after it reported
     * durable, and acknowledged, before it is recorded would after a crash
     * be replayed on the wrong tree. */
    if (!p->item->install)
        store_writer_interleave(p->s, p->rest);
}

static int64_t store_us_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* Maps store_snapfile's negative errno to a ZN_ code, logging what failed. */
static int store_snapfile_error(struct store *s, int rc, uint64_t zxid, const char *what)
{
    ZN_ERROR("store: %s snapshot.%" PRIx64 " in %s failed: %s", what, zxid, s->snap_dir,
             strerror(-rc));
    return rc == -ENOSPC || rc == -EDQUOT ? ZN_NOSPACE : rc == -ENOMEM ? ZN_NOMEMORY : ZN_IO;
}

/* Writes item's snapshot file (unless a child wrote it), publishes and
 * records it; rest is what the writer took after it, to which entries
 * queued meanwhile are added and from which the leading log entries are
 * written while the file is written and while the log is compacted. */
int store_write_snapshot(struct store *s, struct store_item *item, struct store_item **rest)
{
    struct store_snapshot_job job = {.item = item};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t write_us = 0, publish_us = 0, record_us = 0, compact_us = 0;
    int rc;
    if (item->from_file) {
        /* A child wrote and fsync'd it; its header says what the record
         * will (the whole file is checked at recovery, not read here). */
        struct store_snapfile_facts facts;
        rc = store_snapfile_check_header(s->snap_dir, item->zxid, STORE_SNAPFILE_TMP, &facts);
        if (rc == 1) {
            ZN_ERROR("store: the snapshot file %s/snapshot.%" PRIx64 ".tmp is damaged at offset "
                     "%" PRIu64 ": %s; not recorded, removed",
                     s->snap_dir, item->zxid, facts.offset, facts.problem);
            store_snapfile_remove(s->snap_dir, item->zxid);
            rc = ZN_CORRUPT;
        } else if (rc) {
            rc = store_snapfile_error(s, rc, item->zxid, "checking");
        }
        job.len = facts.len;
        job.crc = facts.crc;
    } else {
        struct store_snapshot_progress progress = {s, item, rest};
        rc = store_snapfile_write(s->snap_dir, item->zxid, STORE_SNAPFILE_TMP_STORE, item->blob,
                                  item->len, s->opts.snapshot_write_bytes,
                                  store_snapshot_progress, &progress,
                                  &job.crc);
        if (rc)
            rc = store_snapfile_error(s, rc, item->zxid, "writing");
        job.len = item->len;
    }
    write_us = store_us_since(&t0);
    if (rc == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int which = item->from_file ? STORE_SNAPFILE_TMP : STORE_SNAPFILE_TMP_STORE;
        rc = store_snapfile_publish(s->snap_dir, item->zxid, which);
        if (rc) {
            rc = store_snapfile_error(s, rc, item->zxid, "renaming");
            store_snapfile_remove(s->snap_dir, item->zxid);
        }
        publish_us = store_us_since(&t0);
    }
    bool crashed = rc == 0 && store_test_snapshot_crashes(s, 1);
    if (rc == 0 && !crashed) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = store_write_txn(s, store_put_snapshot, &job, false);
        record_us = store_us_since(&t0);
        if (rc) {
            rc = store_error(store_classify_failure(s, rc, STORE_SNAP_HEADER_BYTES),
                             "recording a snapshot");
            store_snapfile_remove(s->snap_dir, item->zxid);
        }
    }
    crashed = crashed || (rc == 0 && store_test_snapshot_crashes(s, 2));
    pthread_mutex_lock(&s->mutex);
    uint64_t replaced_zxid = s->stats.snapshot_zxid; /* the newest until now, or 0 */
    if (rc == 0 && !crashed) {
        s->stats.snapshot_count = job.snapshots;
        s->stats.snapshot_zxid = job.newest_zxid;
    } else {
        s->stats.snapshots_failed++;
    }
    pthread_mutex_unlock(&s->mutex);
    if (crashed) {
        ZN_WARN("store: test: snapshot write stopped as if by a crash zxid=0x%" PRIx64, item->zxid);
        return ZN_IO;
    }
    if (rc)
        return rc;
    /* The page cache keeps the snapshot a restart reads (the newest), not
     * the one it replaces (if that one is still kept). */
    if (replaced_zxid && replaced_zxid != job.newest_zxid && job.newest_zxid == item->zxid)
        (void)store_snapfile_uncache(s->snap_dir, replaced_zxid);
    uint64_t deleted_entries = 0;
    compact_us = store_retain_finish(s, &job, &deleted_entries);
    ZN_INFO("store: snapshot written zxid=0x%" PRIx64 " bytes=%" PRIu64 " file=%s/snapshot.%" PRIx64
            " %s_us=%" PRId64 " publish_us=%" PRId64 " record_txn_us=%" PRId64
            " longest_compaction_txn_us=%" PRId64 " snapshots=%zu compacted_to=0x%" PRIx64
            " log_entries_deleted=%" PRIu64,
            item->zxid, job.len, s->snap_dir, item->zxid, item->from_file ? "check" : "write",
            write_us, publish_us, record_us, compact_us, job.snapshots, job.compacted_zxid,
            deleted_entries);
    return 0;
}

static int64_t store_retain_finish(struct store *s, const struct store_snapshot_job *job,
                                   uint64_t *deleted_entries)
{
    if (job->dropped)
        store_snapfiles_tidy(s, false);
    struct store_deleted deleted = {0};
    int64_t us = 0;
    if (job->compacted_zxid) {
        struct timespec c0;
        clock_gettime(CLOCK_MONOTONIC, &c0);
        int crc = wal_compact(s->wal, job->compacted_zxid, &deleted.entries, &deleted.bytes);
        us = store_us_since(&c0);
        if (crc)
            store_error(crc, "compacting the log (the segments are left for the next compaction)");
        pthread_mutex_lock(&s->mutex);
        s->stats.fsyncs += deleted.entries > 0; /* the directory's, after the unlinks */
        ZN_ASSERT(s->stats.log_entries >= deleted.entries);
        s->stats.log_entries -= deleted.entries;
        s->stats.log_bytes -= deleted.bytes;
        pthread_mutex_unlock(&s->mutex);
    }
    *deleted_entries = deleted.entries;
    return us;
}

int store_write_purge(struct store *s)
{
    struct store_snapshot_job job = {0};
    int rc = store_write_txn(s, store_purge_txn, &job, false);
    if (rc)
        return store_error(rc, "purging old snapshots");
    pthread_mutex_lock(&s->mutex);
    s->stats.snapshot_count = job.snapshots;
    pthread_mutex_unlock(&s->mutex);
    uint64_t deleted_entries = 0;
    int64_t us = store_retain_finish(s, &job, &deleted_entries);
    ZN_INFO("store: purged snapshots_dropped=%zu snapshots=%zu compacted_to=0x%" PRIx64
            " log_entries_deleted=%" PRIu64 " compaction_us=%" PRId64,
            job.dropped, job.snapshots, job.compacted_zxid, deleted_entries, us);
    return 0;
}
