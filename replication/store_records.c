/*
 * store_records: the records the writer thread puts into LMDB and deletes
 * (layouts in store_internal.h, encoding in store_format.c; the log is in
 * segment files, store_wal.c): metadata values, snapshots key by key, and the list of complete snapshots (which deletes the chunks
 * of an incomplete one it meets).  On these: the synchronous operations,
 * run in the writer's queue order while their caller waits
 * (store_run_sync): truncation above a zxid, a metadata value, dropping a
 * corrupt snapshot, and a log entry with a wrong checksum for tests.
 *
 * Invariants: every record is written with its crc32c; deletions count what
 * they remove (struct store_deleted) so the store's counters stay exact;
 * a truncation leaves no snapshot above its zxid.
 *
 * Called by: the writer thread (store_writer.c: store_write_other), store_snapwrite.c (the deletion and listing
 * helpers, store_put_meta_value).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

/* ---- deletion helpers (counting what they remove) ---------------------- */

/* Deletes up to max keys of the snapshot at zxid (chunks and header);
 * *more (when not NULL) tells whether some were left for lack of max. */
int store_snap_delete_some(struct store *s, MDB_txn *txn, uint64_t zxid, uint64_t max,
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

int store_snap_delete(struct store *s, MDB_txn *txn, uint64_t zxid)
{
    return store_snap_delete_some(s, txn, zxid, UINT64_MAX, NULL);
}

/* Lists the complete snapshots' zxids oldest first: the first max into
 * zxids, the total into *count.  A zxid with chunks but no header is an
 * incomplete snapshot left by a crash (or failure) between the transactions
 * of a chunked write: it is deleted here, never listed.  Called only between
 * snapshot writes, or in a snapshot's last transaction after its header is
 * in, so no snapshot being written is mistaken for a leftover. */
int store_snap_list(struct store *s, MDB_txn *txn, uint64_t *zxids, size_t max,
                           size_t *count, uint64_t *newest)
{
    *newest = 0;
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
            *newest = zxid;
        }
        if (zxid == UINT64_MAX)
            break;
        next = zxid + 1;
    }
    mdb_cursor_close(cur);
    *count = n;
    return rc;
}

int store_put_meta_value(struct store *s, MDB_txn *txn, const char *name, uint64_t value)
{
    size_t name_len = strlen(name);
    unsigned char v[STORE_META_VALUE_BYTES];
    store_put_be64(v + 4, value);
    store_put_be32(v, crc32c_extend(crc32c(name, name_len), v + 4, 8));
    MDB_val key = {name_len, (void *)name}, val = {sizeof v, v};
    return mdb_put(txn, s->dbi_meta, &key, &val, 0);
}

/* ---- truncation, metadata, test records ---------------------------------- */

struct store_truncate_job {
    uint64_t zxid;
    struct store_deleted deleted;
    size_t snapshots;
    uint64_t newest_snapshot;
    uint64_t last_left;
};

/* The snapshots above the truncation point, in LMDB; the log's segment
 * files are truncated after this commits (store_write_truncate). */
static int store_truncate_txn(struct store *s, MDB_txn *txn, void *arg)
{
    struct store_truncate_job *job = arg;
    memset(&job->deleted, 0, sizeof job->deleted);
    int rc = 0;
    size_t count;
    uint64_t newest;
    for (;;) { /* (the newest, not the listed: snapshots may accumulate, purge_on_call) */
        if ((rc = store_snap_list(s, txn, NULL, 0, &count, &newest)))
            return rc;
        if (count == 0 || newest <= job->zxid)
            break;
        ZN_WARN("store: truncation removes snapshot zxid=0x%" PRIx64 " above zxid=0x%" PRIx64,
                newest, job->zxid);
        if ((rc = store_snap_delete(s, txn, newest)))
            return rc;
    }
    job->snapshots = count;
    job->newest_snapshot = newest;
    job->last_left = job->newest_snapshot;
    return 0;
}

static int store_write_truncate(struct store *s, struct store_item *item)
{
    struct store_truncate_job job = {.zxid = item->zxid};
    int rc = store_write_txn(s, store_truncate_txn, &job, false);
    if (rc)
        return store_error(rc, "truncating the log");
    /* The snapshots above zxid went first: a crash before the segments are
     * cut leaves the log as it was before the truncation, never a snapshot
     * holding transactions the log no longer has. */
    if ((rc = wal_truncate_after(s->wal, item->zxid, &job.deleted.entries, &job.deleted.bytes)))
        return store_error(rc, "truncating the log's segment files");
    struct wal_counts log;
    wal_counts(s->wal, &log);
    if (log.last_zxid > job.last_left)
        job.last_left = log.last_zxid;
    pthread_mutex_lock(&s->mutex);
    s->stats.fsyncs += job.deleted.entries > 0; /* the segments' zeroing or unlinking */
    ZN_ASSERT(s->stats.log_entries >= job.deleted.entries);
    s->stats.log_entries -= job.deleted.entries;
    s->stats.log_bytes -= job.deleted.bytes;
    s->stats.snapshot_count = job.snapshots;
    s->stats.snapshot_zxid = job.newest_snapshot;
    pthread_mutex_unlock(&s->mutex);
    item->waiter->zxid = job.last_left;
    store_snapfiles_tidy(s, false); /* the files of the snapshots above zxid */
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

int store_drop_snapshot_txn(struct store *s, MDB_txn *txn, void *arg)
{
    const struct store_item *item = arg;
    return store_snap_delete(s, txn, item->zxid);
}

/* A damaged snapshot file whose record went: kept for the operator as
 * snapshot.<zxid>.damaged (which nothing reads or removes). */
static void store_snapfile_keep_damaged(struct store *s, uint64_t zxid)
{
    char from[4096], to[4096 + 16];
    if (store_snapfile_path(from, sizeof from, s->snap_dir, zxid, STORE_SNAPFILE_FINAL) != 0)
        return;
    snprintf(to, sizeof to, "%s.damaged", from);
    if (rename(from, to) != 0 && errno != ENOENT)
        ZN_WARN("store: cannot rename %s to %s: %s (it goes at the next open)", from, to,
                strerror(errno));
}
/* Handles one item that is not a log entry.  Frees it; wakes its waiter. */
void store_write_other(struct store *s, struct store_item *item)
{
    int status = 0, rc;
    switch (item->op) {
    case STORE_OP_SNAPSHOT:
        ZN_ASSERT(!"snapshots are written by store_writer_process");
        break;
    case STORE_OP_TRUNCATE:
        status = store_write_truncate(s, item);
        if (status == 0)
            s->log_failed = 0; /* the log ends at a durable point again */
        break;
    case STORE_OP_META:
        rc = store_write_txn(s, store_meta_txn, item, false);
        status = rc ? store_error(rc, "writing metadata") : 0;
        break;
    case STORE_OP_DROP_SNAPSHOT:
        rc = store_write_txn(s, store_drop_snapshot_txn, item, false);
        status = rc ? store_error(rc, "deleting a snapshot") : 0;
        if (status == 0)
            store_snapfile_keep_damaged(s, item->zxid);
        break;
    case STORE_OP_CORRUPT_ENTRY:
        rc = store_wal_write_run(s, item, 1, true);
        status = rc ? store_error(rc, "writing a corrupt test entry") : 0;
        if (status == 0) {
            pthread_mutex_lock(&s->mutex);
            s->stats.log_entries++;
            s->stats.log_bytes += item->len;
            pthread_mutex_unlock(&s->mutex);
        }
        break;
    case STORE_OP_PURGE:
        status = store_write_purge(s);
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
