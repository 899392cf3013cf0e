/*
 * store_snapmigrate: the snapshot files' side of opening a store.
 *
 * Migration: a store written before snapshots had files of their own holds
 * them in LMDB (formats 1 and 2: a header and chunks).  At open, before
 * the writer thread starts, each is read, checked, written into its file
 * (fsync'd, renamed, the directory fsync'd), and only then, in one LMDB
 * transaction, its chunks are replaced by the record naming the file.  A
 * crash between the two leaves the old snapshot in LMDB and a file no record
 * names: the next open removes the file and migrates again, to the same
 * state.  An incomplete format 2 snapshot (a write a crash cut short) or
 * one that fails its checksum is dropped as recovery always dropped it
 * (recovery then falls back to an older one, or refuses when the log was
 * compacted past every good one).
 *
 * Tidying: a file no record names (a crash between its rename and its
 * record, or after a record was dropped but before its file went) and, at
 * open only, a temporary file (a crash while one was written) is removed.
 *
 * Copying: a store copy (store_copy, for backups) takes the snapshot files
 * its LMDB copy's records name (store_snapfiles_copy).
 *
 * Called by: store.c (store_snapfiles_open, at open), the writer thread
 * (store_snapfiles_tidy, after records are dropped), store_backup.c
 * (store_snapfiles_copy).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

/* The zxids of the snapshot records, as many as there are (with
 * autopurge.purgeInterval set snapshots accumulate between purges). */
struct store_record_set {
    uint64_t *zxids;
    size_t count, cap;
};

static void store_record_set_free(struct store_record_set *set)
{
    free(set->zxids);
    set->zxids = NULL;
    set->count = set->cap = 0;
}

/* Every zxid with a header or record (chunk 0) from cur on, into set.
 * Returns 0, ENOMEM or an LMDB code. */
static int store_collect_records(MDB_cursor *cur, struct store_record_set *set)
{
    MDB_val key, value;
    int get;
    for (get = mdb_cursor_get(cur, &key, &value, MDB_FIRST); get == 0;
         get = mdb_cursor_get(cur, &key, &value, MDB_NEXT)) {
        if (key.mv_size != STORE_SNAP_KEY_BYTES || store_get_be32((unsigned char *)key.mv_data + 8))
            continue;
        if (set->count == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 16;
            uint64_t *grown = realloc(set->zxids, cap * sizeof *grown);
            if (!grown)
                return ENOMEM;
            set->zxids = grown;
            set->cap = cap;
        }
        set->zxids[set->count++] = store_get_be64(key.mv_data);
    }
    return get == MDB_NOTFOUND ? 0 : get;
}

static bool store_record_named(void *ctx, uint64_t zxid)
{
    const struct store_record_set *set = ctx;
    for (size_t i = 0; i < set->count; i++)
        if (set->zxids[i] == zxid)
            return true;
    return false;
}

/* Every zxid with a header or record (chunk 0), into set (freed by the caller). */
static int store_record_zxids(struct store *s, struct store_record_set *set)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_snap, &cur)) == 0) {
        rc = store_collect_records(cur, set);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

void store_snapfiles_tidy(struct store *s, bool tmp_too)
{
    struct store_record_set set = {0};
    int rc = store_record_zxids(s, &set);
    if (rc) {
        store_error(rc, "listing the snapshot records (leftover files stay)");
        store_record_set_free(&set);
        return;
    }
    unsigned removed = 0;
    /* Without tmp_too, not the temporary files: a snapshot child may be
     * writing one. */
    rc = store_snapfile_sweep(s->snap_dir, tmp_too, store_record_named, &set, &removed);
    if (rc)
        ZN_WARN("store: removing leftover snapshot files in %s: %s (they go at the next open)",
                s->snap_dir, strerror(-rc));
    if (removed)
        ZN_INFO("store: removed %u snapshot file%s no record names (replaced, or left by a "
                "crash)%s in %s",
                removed, removed == 1 ? "" : "s", tmp_too ? " (or temporary)" : "", s->snap_dir);
    store_record_set_free(&set);
}

/* The transaction of one migrated snapshot: its chunks out, its record in
 * (or, for a damaged one, only its chunks out). */
struct store_migrate_job {
    uint64_t zxid, len;
    uint32_t crc;
    bool record;
};

static int store_migrate_txn(struct store *s, MDB_txn *txn, void *arg)
{
    const struct store_migrate_job *job = arg;
    int rc = store_snap_delete(s, txn, job->zxid);
    if (rc || !job->record)
        return rc;
    unsigned char record[STORE_SNAP_HEADER_BYTES], key_bytes[STORE_SNAP_KEY_BYTES];
    store_snap_record_encode(record, job->zxid, job->len, job->crc);
    store_snap_key(key_bytes, job->zxid, 0);
    MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value = {sizeof record, record};
    return mdb_put(txn, s->dbi_snap, &key, &value, 0);
}

/* Moves one format 1 or 2 snapshot into its file; blob is freed. */
static int store_migrate_one(struct store *s, uint64_t zxid, void *blob, size_t len)
{
    struct store_migrate_job job = {.zxid = zxid, .len = len, .record = true};
    int rc = store_snapfile_write(s->snap_dir, zxid, STORE_SNAPFILE_TMP_STORE, blob, len,
                                  s->opts.snapshot_write_bytes, NULL, NULL, &job.crc);
    free(blob);
    if (rc == 0)
        rc = store_snapfile_publish(s->snap_dir, zxid, STORE_SNAPFILE_TMP_STORE);
    if (rc) {
        ZN_ERROR("store: moving the snapshot zxid=0x%" PRIx64 " from LMDB into %s/snapshot.%" PRIx64
                 " failed: %s (the store is left as it was)",
                 zxid, s->snap_dir, zxid, strerror(-rc));
        store_snapfile_remove(s->snap_dir, zxid);
        return rc == -ENOSPC ? ZN_NOSPACE : ZN_IO;
    }
    if ((rc = store_write_txn(s, store_migrate_txn, &job, false)))
        return store_error(rc, "recording a snapshot moved out of LMDB");
    return 0;
}

int store_snapfiles_open(struct store *s)
{
    unsigned migrated = 0, dropped = 0;
    for (uint64_t below = UINT64_MAX;;) {
        bool found, incomplete, is_file;
        uint64_t zxid = 0;
        void *blob = NULL;
        size_t len = 0;
        int rc = store_read_legacy_snapshot(s, below, &found, &incomplete, &is_file, &zxid, &blob,
                                            &len);
        if (!found)
            break;
        if (rc == 0 && !is_file) {
            if ((rc = store_migrate_one(s, zxid, blob, len)))
                return rc;
            migrated++;
        } else if (rc == ZN_CORRUPT) {
            ZN_ERROR("store: the %s snapshot zxid=0x%" PRIx64 " in LMDB (format 2) is dropped, "
                     "not moved into a file; recovery falls back to an older one",
                     incomplete ? "incomplete" : "damaged", zxid);
            struct store_migrate_job job = {.zxid = zxid};
            if ((rc = store_write_txn(s, store_migrate_txn, &job, false)))
                return store_error(rc, "dropping a damaged snapshot");
            dropped++;
        } else if (rc) {
            return rc;
        }
        if (zxid == 0)
            break;
        below = zxid;
    }
    if (migrated || dropped)
        ZN_INFO("store: moved %u snapshot%s out of LMDB into files in %s (%u dropped as damaged)",
                migrated, migrated == 1 ? "" : "s", s->snap_dir, dropped);
    store_snapfiles_tidy(s, true);
    return 0;
}

/* ---- the snapshot files of a store copy (store_copy) -------------------- */

/* The zxids the records of the LMDB copy dir/data.mdb name (closed). */
static int store_copy_records(const char *dir, struct store_record_set *set)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc)
        return rc;
    if ((rc = mdb_env_set_maxdbs(env, 3)) == 0 &&
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0644)) == 0 &&
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) == 0 &&
        (rc = mdb_dbi_open(txn, "snap", 0, &dbi)) == 0 &&
        (rc = mdb_cursor_open(txn, dbi, &cur)) == 0)
        rc = store_collect_records(cur, set);
    if (rc == MDB_NOTFOUND)
        rc = 0; /* no snap database: no snapshot */
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

/*
 * store_copy's part (store_backup.c): around LMDB's copy of one read
 * transaction, the snapshot files its records name, into dir beside
 * data.mdb.  before: every final file there is now is cloned (so that one
 * the copy names cannot go before it is cloned: a replaced file is
 * unlinked only after the record dropping it commits, and that
 * transaction is then newer than the copy's).  after: a file recorded
 * between the two is cloned now, and the files the copy does not name go.
 * Returns 0, or ZN_IO (logged).
 */
int store_snapfiles_copy(struct store *s, const char *dir, bool after)
{
    int rc;
    if (!after) {
        if ((rc = store_snapfile_transfer_all(s->snap_dir, dir, true)) == 0)
            return 0;
        ZN_ERROR("store: copying the snapshot files of %s into %s: %s", s->snap_dir, dir,
                 strerror(-rc));
        return ZN_IO;
    }
    struct store_record_set set = {0};
    if ((rc = store_copy_records(dir, &set))) {
        store_record_set_free(&set);
        return store_error(rc, "reading the snapshot records of the copy");
    }
    int result = 0;
    for (size_t i = 0; i < set.count && result == 0; i++) {
        if ((rc = store_snapfile_transfer(s->snap_dir, dir, set.zxids[i], true))) {
            ZN_ERROR("store: copying %s/snapshot.%" PRIx64 " into %s: %s (a snapshot replaced "
                     "while the store was copied: try again)",
                     s->snap_dir, set.zxids[i], dir, strerror(-rc));
            result = ZN_IO;
        }
    }
    unsigned removed;
    if (result == 0 && (rc = store_snapfile_sweep(dir, true, store_record_named, &set, &removed))) {
        ZN_ERROR("store: tidying the copy's snapshot files in %s: %s", dir, strerror(-rc));
        result = ZN_IO;
    }
    store_record_set_free(&set);
    return result;
}
