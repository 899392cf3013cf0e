/*
 * Reading the store: the counters at open, metadata lookups, and recovery
 * (the newest snapshot whose file passes its checks, then the log after it
 * from its segment files, which wal_open checked record by record; a damaged
 * snapshot file is fallen back from when an older one and the log cover it,
 * and refused, by name, when not).
 * Every read transaction here is short and taken under the resize
 * lock held for reading (store_internal.h, invariant 3); records are copied
 * out before any callback runs, so no transaction is open while the caller
 * applies them.  Deletions that recovery decides on (a corrupt tail, a
 * corrupt snapshot) go through the writer thread like any other write.
 * The reader of format 1 and 2 snapshots (in LMDB) is here too, for their
 * migration at open (store_snapmigrate.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "assert.h"
#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

/* Most snapshot records looked at, newest first (snapshots_kept are kept). */
#define STORE_RECOVER_SNAPSHOTS_MAX (ZN_STORE_SNAPSHOTS_KEPT_MAX + 8u)
static int store_read_begin(struct store *s, MDB_txn **txn)
{
    return mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
}

static void store_read_end(struct store *s, MDB_txn *txn)
{
    (void)s;
    mdb_txn_abort(txn);
}

/* Called from store_open before the writer thread exists. */
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
 * Finds the newest snapshot whose zxid is below `below` and, when it is in
 * LMDB (format 1 or 2), copies it out.
 * Returns 0 with *blob set (malloc'd, may be NULL for an empty blob) and
 * *found true, 0 with *found and *is_file true when it is the record of a
 * file (nothing is read), 0 with *found false when there is none, ZN_CORRUPT
 * with *zxid set when the newest one fails its checks (*incomplete also true
 * when it has no header: its chunked write never finished), or another error.
 */
int store_read_legacy_snapshot(struct store *s, uint64_t below, bool *found, bool *incomplete,
                               bool *is_file, uint64_t *zxid, void **blob, size_t *len)
{
    *found = false;
    *incomplete = false;
    *is_file = false;
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
    if (rc == 0 && store_snap_record_decode(&value, &header_zxid, &blob_len, &blob_crc) == 0 &&
        header_zxid == *zxid) {
        *is_file = true;
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

/* The records of snapshot files, oldest first (at most max; the older ones
 * beyond that are not looked at: far more than snapshots_kept are). */
struct store_snap_records {
    uint64_t zxid[STORE_RECOVER_SNAPSHOTS_MAX], len[STORE_RECOVER_SNAPSHOTS_MAX];
    uint32_t crc[STORE_RECOVER_SNAPSHOTS_MAX];
    size_t count;
};

static int store_list_snap_records(struct store *s, struct store_snap_records *out)
{
    out->count = 0;
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->dbi_snap, &cur))) {
        store_read_end(s, txn);
        return store_error(rc, "opening a cursor");
    }
    MDB_val key, value;
    int result = 0;
    for (rc = mdb_cursor_get(cur, &key, &value, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &value, MDB_PREV)) {
        if (key.mv_size != STORE_SNAP_KEY_BYTES || store_get_be32((unsigned char *)key.mv_data + 8))
            continue; /* (none after the migration at open) */
        uint64_t zxid = store_get_be64(key.mv_data), record_zxid, len;
        uint32_t crc;
        if (store_snap_record_decode(&value, &record_zxid, &len, &crc) || record_zxid != zxid) {
            const char *dir = "?";
            mdb_env_get_path(s->env, &dir);
            result = store_refuse_damaged(dir, "the record of snapshot zxid=0x%" PRIx64
                                          " fails its checksum", zxid);
            break;
        }
        if (out->count == STORE_RECOVER_SNAPSHOTS_MAX)
            break;
        /* newest first here; reversed below */
        out->zxid[out->count] = zxid;
        out->len[out->count] = len;
        out->crc[out->count] = crc;
        out->count++;
    }
    if (rc && rc != MDB_NOTFOUND && !result)
        result = store_error(rc, "listing the snapshots");
    mdb_cursor_close(cur);
    store_read_end(s, txn);
    return result;
}

/*
 * Hands over the newest snapshot whose file passes every check (store_
 * snapfile_map), or none.  A damaged or missing newer file is logged with
 * its name and what is wrong where; recovery then falls back to the next
 * older one, as it always did, provided that one is at or above the
 * compaction point (the log still holds everything after it): only then
 * are the damaged ones' records dropped (their files renamed to
 * snapshot.<zxid>.damaged, kept for the operator).  When no snapshot at or
 * above the compaction point is good, nothing is changed and the store is
 * refused, naming the newest damaged file.  *snapshot_zxid is 0 when there
 * is none.
 */
static int store_recover_snapshot(struct store *s, store_snapshot_fn on_snapshot, void *ctx,
                                  uint64_t compacted, uint64_t *snapshot_zxid)
{
    *snapshot_zxid = 0;
    struct store_snap_records rec;
    int rc = store_list_snap_records(s, &rec);
    if (rc)
        return rc;
    struct store_snapfile_facts first_damage = {0};
    uint64_t first_damaged = 0;
    size_t damaged = 0;
    for (size_t i = 0; i < rec.count; i++) {
        void *map;
        size_t map_len;
        struct store_snapfile_facts facts;
        rc = store_snapfile_map(s->snap_dir, rec.zxid[i], rec.len[i], rec.crc[i], &map, &map_len,
                                &facts);
        if (rc == -ENOENT) {
            snprintf(facts.problem, sizeof facts.problem, "it is missing");
            facts.offset = 0;
            rc = 1;
        }
        if (rc == 1) {
            ZN_ERROR("store: the snapshot file %s/snapshot.%" PRIx64 " is damaged at offset %" PRIu64
                     ": %s",
                     s->snap_dir, rec.zxid[i], facts.offset, facts.problem);
            if (damaged++ == 0) {
                first_damage = facts;
                first_damaged = rec.zxid[i];
            }
            continue;
        }
        if (rc < 0) {
            ZN_ERROR("store: cannot read %s/snapshot.%" PRIx64 ": %s", s->snap_dir, rec.zxid[i],
                     strerror(-rc));
            return rc == -ENOMEM ? ZN_NOMEMORY : ZN_IO;
        }
        if (rec.zxid[i] < compacted) {
            munmap(map, map_len);
            break; /* too old: the log after it is gone */
        }
        for (size_t d = 0; d < i; d++) {
            ZN_ERROR("store: dropping the damaged snapshot file %s/snapshot.%" PRIx64
                     " (renamed .damaged); recovering from snapshot.%" PRIx64
                     " and the log after it",
                     s->snap_dir, rec.zxid[d], rec.zxid[i]);
            if ((rc = store_drop_snapshot(s, rec.zxid[d]))) {
                munmap(map, map_len);
                return rc;
            }
            pthread_mutex_lock(&s->mutex);
            s->stats.snapshot_count--;
            pthread_mutex_unlock(&s->mutex);
        }
        rc = on_snapshot ? on_snapshot(ctx, rec.zxid[i],
                                       (unsigned char *)map + STORE_SNAPFILE_HEADER_BYTES,
                                       (size_t)rec.len[i])
                         : 0;
        munmap(map, map_len);
        if (rc)
            return rc;
        *snapshot_zxid = rec.zxid[i];
        pthread_mutex_lock(&s->mutex);
        s->stats.snapshot_zxid = rec.zxid[i];
        pthread_mutex_unlock(&s->mutex);
        ZN_INFO("store: recovered snapshot zxid=0x%" PRIx64 " bytes=%" PRIu64
                " file=%s/snapshot.%" PRIx64,
                rec.zxid[i], rec.len[i], s->snap_dir, rec.zxid[i]);
        return 0;
    }
    if (damaged) {
        const char *dir = "?";
        mdb_env_get_path(s->env, &dir);
        bool same_dir = strcmp(dir, s->snap_dir) == 0;
        ZN_ERROR("store: the snapshot file %s/snapshot.%" PRIx64 " is damaged at offset %" PRIu64
                 ": %s, and no older good snapshot is at or above the point the log was "
                 "compacted to (0x%" PRIx64 "); refusing to start on %s%s%s. Move %s aside "
                 "and start this member again: in an ensemble it rejoins empty and the leader "
                 "sends it a snapshot (a standalone server has no other copy: restore a backup)",
                 s->snap_dir, first_damaged, first_damage.offset, first_damage.problem, compacted,
                 dir, same_dir ? "" : " and ", same_dir ? "" : s->snap_dir,
                 same_dir ? "it" : "both (the log's and the snapshots' directories)");
        return ZN_CORRUPT;
    }
    return 0;
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

    /* (The compaction point first: which snapshot may be fallen back to.) */
    uint64_t compacted = 0;
    int rc = store_meta_lookup(s, STORE_META_COMPACTED, &compacted);
    if (rc && rc != ZN_NONODE)
        return rc;
    uint64_t snapshot_zxid;
    if ((rc = store_recover_snapshot(s, on_snapshot, ctx, compacted, &snapshot_zxid)))
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
