/*
 * store_walmigrate: a store written before the log's segment files kept its
 * log in LMDB's "log" database.  At open, before anything else reads the
 * log, its records are checked and copied into segment files (each group
 * of them fdatasync'd, each segment's name fsync'd into the directory) and
 * only then is the LMDB database emptied, in one transaction.  A crash in
 * between leaves both: LMDB's log is then still the whole truth (nothing is
 * ever appended to segments before the migration finishes), so the
 * segments found beside a non-empty LMDB log are a migration's leftovers,
 * removed and written again.
 *
 * Called by: store_open (store.c: store_wal_open), on the loop thread,
 * before the writer starts and before store_scan.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

/* Entries per group commit while migrating. */
#define STORE_MIGRATE_BATCH_ENTRIES 4096u

static int store_test_migration_stop;

void store_test_stop_migration_before_drop(int stop)
{
    store_test_migration_stop = stop;
}

static int store_migrate_flush(struct store *s, struct wal_entry *batch, size_t *n)
{
    if (*n == 0)
        return 0;
    int rc = wal_append(s->wal, batch, *n, false);
    *n = 0;
    return rc ? store_error(rc, "writing the migrated log into segment files") : 0;
}

/* In one transaction (store_write_txn needs the writer's locks, which do
 * not exist yet). */
static int store_drop_lmdb_log(struct store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_drop(txn, s->dbi_log, 0))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Whether LMDB's log database holds any record. */
static int store_lmdb_log_pending(struct store *s, bool *pending)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key, value;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    if ((rc = mdb_cursor_open(txn, s->dbi_log, &cur)) == 0) {
        rc = mdb_cursor_get(cur, &key, &value, MDB_FIRST);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    *pending = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_error(rc, "reading the log in data.mdb");
}

static int store_wal_migrate(struct store *s, const char *dir);

int store_wal_open(struct store *s, const char *dir)
{
    bool pending = false;
    int rc = store_lmdb_log_pending(s, &pending);
    if (rc)
        return rc;
    if (pending) {
        /* Segments beside a log still in LMDB are what a migration cut short
         * by a crash left: not trusted (not even scanned), written again. */
        uint64_t removed = 0;
        if ((rc = wal_remove_segments(dir, &removed)))
            return store_error(rc, "removing the segments of a cut-short migration");
        if (removed)
            ZN_WARN("store: an earlier migration of the log out of data.mdb in dir=%s was cut "
                    "short; its %" PRIu64 " segment files are written again",
                    dir, removed);
    }
    if ((rc = wal_open(&s->wal, dir, s->opts.segment_bytes)))
        return rc;
    return pending ? store_wal_migrate(s, dir) : 0;
}

static int store_wal_migrate(struct store *s, const char *dir)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->dbi_log, &cur))) {
        mdb_txn_abort(txn);
        return store_error(rc, "opening a cursor");
    }
    MDB_val key, value;
    rc = mdb_cursor_get(cur, &key, &value, MDB_FIRST);
    int result = 0;
    struct wal_entry *batch = malloc(STORE_MIGRATE_BATCH_ENTRIES * sizeof *batch);
    if (!batch)
        result = ZN_NOMEMORY;
    size_t n = 0;
    uint64_t moved = 0, last = 0, batch_bytes = 0;
    for (; rc == 0 && result == 0; rc = mdb_cursor_get(cur, &key, &value, MDB_NEXT)) {
        uint64_t zxid;
        const void *payload;
        size_t len;
        if (store_log_decode(&key, &value, &zxid, &payload, &len) != 0 || zxid <= last) {
            result = store_refuse_damaged(dir,
                                          "the log record at zxid=0x%" PRIx64 " fails its checksum "
                                          "or order (the last good one before it: zxid=0x%" PRIx64 ")",
                                          key.mv_size == 8 ? store_get_be64(key.mv_data) : 0, last);
            break;
        }
        batch[n++] = (struct wal_entry){zxid, payload, len};
        batch_bytes += len + WAL_RECORD_HEADER_BYTES;
        last = zxid;
        moved++;
        /* groups of a quarter segment at most: a group never spans two */
        if (n == STORE_MIGRATE_BATCH_ENTRIES || batch_bytes >= s->opts.segment_bytes / 4) {
            result = store_migrate_flush(s, batch, &n);
            batch_bytes = 0;
        }
    }
    if (result == 0 && rc != MDB_NOTFOUND)
        result = store_error(rc, "reading the log in data.mdb");
    if (result == 0)
        result = store_migrate_flush(s, batch, &n);
    free(batch);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (result)
        return result;
    if (store_test_migration_stop) {
        ZN_WARN("store: test: migration stopped before emptying data.mdb's log");
        return ZN_IO;
    }
    /* Everything is durable in the segments: now the LMDB copy goes. */
    if ((rc = store_drop_lmdb_log(s)))
        return store_error(rc, "emptying the log in data.mdb after its migration");
    ZN_INFO("store: moved the log out of data.mdb into segment files dir=%s entries=%" PRIu64
            " last_zxid=0x%" PRIx64,
            dir, moved, last);
    return 0;
}
