/*
 * Reading the store: the counters at open, metadata lookups, and recovery
 * (the newest valid snapshot, then the log after it from its segment files,
 * which wal_open checked record by record; an incomplete snapshot, whose chunked write a crash cut short, is
 * dropped like a damaged one).  Every read transaction here is short and taken under the resize
 * lock held for reading (store_internal.h, invariant 3); records are copied
 * out before any callback runs, so no transaction is open while the caller
 * applies them.  Deletions that recovery decides on (a corrupt tail, a
 * corrupt snapshot) go through the writer thread like any other write.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

static int store_read_begin(struct store *s, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc)
        pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

static void store_read_end(struct store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
}

/* Called from store_open before the writer thread exists, so no other
 * transaction can be open and the resize lock (not yet initialised) is not
 * needed. */
int store_scan(struct store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    MDB_cursor *cur = NULL;
    uint64_t snapshots = 0, newest_snapshot = 0;
    MDB_val key, value;
    /* The log: its segment files, scanned by wal_open. */
    struct wal_counts log;
    wal_counts(s->wal, &log);
    uint64_t entries = log.entries, bytes = log.bytes, last_log = log.last_zxid;
    if ((rc = mdb_cursor_open(txn, s->dbi_snap, &cur)))
        goto done;
    uint64_t next = 0;
    for (;;) {
        unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
        store_snap_key(key_bytes, next, 0);
        key.mv_size = STORE_SNAP_KEY_BYTES;
        key.mv_data = key_bytes;
        rc = mdb_cursor_get(cur, &key, &value, MDB_SET_RANGE);
        if (rc)
            break;
        if (key.mv_size != STORE_SNAP_KEY_BYTES) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t zxid = store_get_be64(key.mv_data);
        /* No header (chunk 0): an incomplete snapshot, which neither counts
         * nor raises last_zxid; store_recover deletes it. */
        if (store_get_be32((unsigned char *)key.mv_data + 8) == 0) {
            newest_snapshot = zxid;
            snapshots++;
        }
        if (zxid == UINT64_MAX)
            break;
        next = zxid + 1;
    }
done:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return store_error(rc, "scanning the store");
    s->stats.log_entries = entries;
    s->stats.log_bytes = bytes;
    s->stats.snapshot_count = snapshots;
    s->stats.snapshot_zxid = newest_snapshot;
    s->last_zxid = last_log > newest_snapshot ? last_log : newest_snapshot;
    s->last_snapshot_zxid_queued = newest_snapshot;
    return 0;
}

/* Reads key (user or internal); the caller validated it. */
static int store_meta_lookup(struct store *s, const char *name, uint64_t *value)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    size_t name_len = strlen(name);
    MDB_val key = {name_len, (void *)name}, val;
    rc = mdb_get(txn, s->dbi_meta, &key, &val);
    int result;
    if (rc == MDB_NOTFOUND) {
        result = ZN_NONODE;
    } else if (rc) {
        result = store_error(rc, "reading metadata");
    } else if (val.mv_size != STORE_META_VALUE_BYTES ||
               store_get_be32(val.mv_data) !=
                   crc32c_extend(crc32c(name, name_len), (unsigned char *)val.mv_data + 4, 8)) {
        ZN_ERROR("store: metadata record fails its checksum key=%s", name);
        result = ZN_CORRUPT;
    } else {
        *value = store_get_be64((unsigned char *)val.mv_data + 4);
        result = 0;
    }
    store_read_end(s, txn);
    return result;
}

int store_meta_read(struct store *s, const char *key, uint64_t *value)
{
    return store_meta_lookup(s, key, value);
}

/* ---- snapshot ---------------------------------------------------------- */

/*
 * Finds the newest snapshot whose zxid is below `below` and copies it out.
 * Returns 0 with *blob set (malloc'd, may be NULL for an empty blob) and
 * *found true, 0 with *found false when there is none, ZN_CORRUPT with
 * *zxid set when the newest one fails its checks (*incomplete also true when
 * it has no header: its chunked write never finished), or another error.
 */
static int store_read_snapshot(struct store *s, uint64_t below, bool *found, bool *incomplete,
                               uint64_t *zxid, void **blob, size_t *len)
{
    *found = false;
    *incomplete = false;
    *blob = NULL;
    *len = 0;
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    MDB_cursor *cur;
    int result = 0;
    unsigned char *buffer = NULL;
    if ((rc = mdb_cursor_open(txn, s->dbi_snap, &cur))) {
        store_read_end(s, txn);
        return store_error(rc, "opening a cursor");
    }
    unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
    MDB_val key, value;
    if (below == UINT64_MAX) {
        rc = mdb_cursor_get(cur, &key, &value, MDB_LAST);
    } else {
        store_snap_key(key_bytes, below, 0);
        key.mv_size = STORE_SNAP_KEY_BYTES;
        key.mv_data = key_bytes;
        rc = mdb_cursor_get(cur, &key, &value, MDB_SET_RANGE);
        rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &key, &value, MDB_LAST)
                                : (rc ? rc : mdb_cursor_get(cur, &key, &value, MDB_PREV));
    }
    if (rc == MDB_NOTFOUND)
        goto out;
    if (rc) {
        result = store_error(rc, "reading snapshots");
        goto out;
    }
    if (key.mv_size != STORE_SNAP_KEY_BYTES) {
        result = store_error(MDB_CORRUPTED, "reading a snapshot key");
        goto out;
    }
    *found = true;
    *zxid = store_get_be64(key.mv_data);
    store_snap_key(key_bytes, *zxid, 0);
    key.mv_size = STORE_SNAP_KEY_BYTES;
    key.mv_data = key_bytes;
    uint64_t header_zxid, blob_len;
    uint32_t chunks, blob_crc;
    rc = mdb_cursor_get(cur, &key, &value, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
        ZN_WARN("store: snapshot without its header (a write cut short) zxid=0x%" PRIx64, *zxid);
        *incomplete = true;
        result = ZN_CORRUPT;
        goto out;
    }
    if (rc ||
        store_snap_header_decode(&value, &header_zxid, &blob_len, &chunks, &blob_crc) ||
        header_zxid != *zxid) {
        ZN_ERROR("store: snapshot header missing or corrupt zxid=0x%" PRIx64, *zxid);
        result = ZN_CORRUPT;
        goto out;
    }
    buffer = blob_len ? malloc(blob_len) : NULL;
    if (blob_len && !buffer) {
        result = ZN_NOMEMORY;
        goto out;
    }
    uint64_t copied = 0;
    for (uint32_t i = 1; i <= chunks; i++) {
        rc = mdb_cursor_get(cur, &key, &value, MDB_NEXT);
        if (rc || key.mv_size != STORE_SNAP_KEY_BYTES ||
            store_get_be64(key.mv_data) != *zxid || store_get_be32((unsigned char *)key.mv_data + 8) != i ||
            value.mv_size > blob_len - copied) {
            ZN_ERROR("store: snapshot chunk missing or out of place zxid=0x%" PRIx64 " chunk=%u",
                     *zxid, i);
            result = ZN_CORRUPT;
            goto out;
        }
        memcpy(buffer + copied, value.mv_data, value.mv_size);
        copied += value.mv_size;
    }
    unsigned char zxid_be[8];
    store_put_be64(zxid_be, *zxid);
    if (copied != blob_len || crc32c_extend(crc32c(zxid_be, 8), buffer, blob_len) != blob_crc) {
        ZN_ERROR("store: snapshot fails its checksum zxid=0x%" PRIx64 " bytes=%" PRIu64, *zxid,
                 blob_len);
        result = ZN_CORRUPT;
        goto out;
    }
    *blob = buffer;
    *len = blob_len;
    buffer = NULL;
out:
    mdb_cursor_close(cur);
    store_read_end(s, txn);
    free(buffer);
    return result;
}

static int store_drop_snapshot(struct store *s, uint64_t zxid)
{
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_DROP_SNAPSHOT;
    item->zxid = zxid;
    struct store_waiter waiter;
    return store_run_sync(s, item, &waiter);
}

/* Hands over the newest valid snapshot, deleting newer corrupt ones.
 * *snapshot_zxid is 0 when there is none. */
static int store_recover_snapshot(struct store *s, store_snapshot_fn on_snapshot, void *ctx,
                                  uint64_t *snapshot_zxid)
{
    *snapshot_zxid = 0;
    uint64_t below = UINT64_MAX;
    for (;;) {
        bool found, incomplete;
        uint64_t zxid = 0;
        void *blob;
        size_t len;
        int rc = store_read_snapshot(s, below, &found, &incomplete, &zxid, &blob, &len);
        if (rc == ZN_CORRUPT && found) {
            /* An incomplete snapshot (a crash between the transactions of
             * its write) is handled as a damaged one: its log entries were
             * never compacted, so an older snapshot and the log cover it. */
            ZN_ERROR("store: dropping %s snapshot zxid=0x%" PRIx64 "; trying an older one",
                     incomplete ? "incomplete" : "corrupt", zxid);
            if ((rc = store_drop_snapshot(s, zxid)))
                return rc;
            below = zxid;
            if (!incomplete) { /* store_scan did not count an incomplete one */
                pthread_mutex_lock(&s->mutex);
                s->stats.snapshot_count--;
                pthread_mutex_unlock(&s->mutex);
            }
            continue;
        }
        if (rc)
            return rc;
        if (!found)
            return 0;
        if (on_snapshot)
            rc = on_snapshot(ctx, zxid, blob ? blob : "", len);
        free(blob);
        if (rc)
            return rc;
        *snapshot_zxid = zxid;
        pthread_mutex_lock(&s->mutex);
        s->stats.snapshot_zxid = zxid;
        pthread_mutex_unlock(&s->mutex);
        ZN_INFO("store: recovered snapshot zxid=0x%" PRIx64 " bytes=%zu", zxid, len);
        return 0;
    }
}

/* ---- log --------------------------------------------------------------- */

/* Hands the log's records over in order, checking that they follow each
 * other (wal_open checked each record's crc and order when it scanned). */
struct store_replay {
    store_entry_fn on_entry;
    void *ctx;
    uint64_t last, delivered;
};

static int store_replay_entry(void *arg, uint64_t zxid, const void *data, size_t len)
{
    struct store_replay *r = arg;
    ZN_ASSERT(zxid > r->last);
    int rc = r->on_entry ? r->on_entry(r->ctx, zxid, data, len) : 0;
    if (rc == 0) {
        r->last = zxid;
        r->delivered++;
    }
    return rc;
}

int store_recover(struct store *s, store_snapshot_fn on_snapshot, store_entry_fn on_entry,
                  void *ctx)
{
    ZN_ASSERT(s && !s->recovered && !s->closing);
    ZN_ASSERT(getpid() == s->pid);
    pthread_mutex_lock(&s->mutex);
    ZN_ASSERT(!s->queue.head && !s->writer_busy);
    pthread_mutex_unlock(&s->mutex);
    store_check_invariants(s);

    uint64_t snapshot_zxid;
    int rc = store_recover_snapshot(s, on_snapshot, ctx, &snapshot_zxid);
    if (rc)
        return rc;
    uint64_t compacted = 0;
    rc = store_meta_lookup(s, STORE_META_COMPACTED, &compacted);
    if (rc && rc != ZN_NONODE)
        return rc;
    if (compacted > snapshot_zxid) {
        /* The entries between the snapshot and the compaction point are gone:
         * replaying the log from here would build a wrong tree. */
        ZN_ERROR("store: no valid snapshot at or above the compaction point compacted_zxid=0x%" PRIx64
                 " snapshot_zxid=0x%" PRIx64 "; this member needs a snapshot from a peer",
                 compacted, snapshot_zxid);
        return ZN_CORRUPT;
    }

    struct store_replay replay = {.on_entry = on_entry, .ctx = ctx, .last = snapshot_zxid};
    if (snapshot_zxid != UINT64_MAX && (rc = wal_read(s->wal, snapshot_zxid + 1, store_replay_entry, &replay)))
        return rc;
    uint64_t last = replay.last, delivered = replay.delivered;
    s->last_zxid = last;
    s->recovered = true;
    store_unmap_pages(s); /* recovery read every page it handed over */
    store_check_invariants(s);
    ZN_INFO("store: recovered snapshot_zxid=0x%" PRIx64 " entries=%" PRIu64 " last_zxid=0x%" PRIx64,
            snapshot_zxid, delivered, last);
    return 0;
}
