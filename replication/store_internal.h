/*
 * Internals shared by store.c (API, queue, loop side), the writer thread
 * and every LMDB write (store_writer.c, with store_txn.c, store_records.c
 * and store_snapwrite.c) and store_recover.c (recovery and reads).  Not a
 * public header: nothing outside replication/store*.c includes it.
 *
 * On-disk format (all integers big-endian, except where said):
 *   The log is in segment files of its own beside data.mdb (store_wal.h);
 *   LMDB's "log" database is only read, to migrate a store written before
 *   them (store_walmigrate.c), and is empty afterwards:
 *   log   key: zxid (8 bytes)
 *         value: crc32c (4) | payload length (4) | payload
 *                crc32c covers key || length || payload
 *   snap  key: zxid (8) | chunk index (4)
 *         Since format 3 a snapshot lives in a file of its own
 *         (store_snapfile.h, in the snapshot directory: dataDir) and LMDB
 *         holds only the record naming it, at chunk 0: the header below with
 *         version 3, chunk count 0 and chunk size 0: zxid, the blob's length
 *         and crc32c, which the file's header and bytes must match.  The
 *         record is put only once the file is fsync'd under its final name
 *         (and its directory fsync'd).  Formats 1 and 2 (the blob in chunks
 *         in LMDB, below) are moved into files when the store opens
 *         (store_snapmigrate.c).
 *         chunk 0, the header: magic "ZNSN" (4) | version (4) | zxid (8) |
 *                blob length (8) | chunk count (4) | blob crc32c (4) |
 *                chunk size (4; 0 in version 1, which means 256 KB) |
 *                header crc32c (4, over the preceding 36 bytes)
 *         chunks 1..count: the blob's bytes, the chunk size each but the
 *                last; blob crc32c covers zxid || blob
 *         Chunks 1..count may be committed over several transactions; the
 *         header (chunk 0) is written in the last one, so it is the
 *         completion marker: a zxid with chunks but no header is an
 *         incomplete snapshot (a crash between transactions), never used,
 *         deleted by recovery or by the next snapshot's last transaction.
 *         Stores written before chunked writes (header and chunks in one
 *         transaction) read the same way.
 *   meta  key: the name's bytes
 *         value: crc32c (4, over name || value) | value (8)
 *
 * Invariants (checked by store_check_invariants in assertions):
 *  1. Items leave the queue in the order they entered it; log entries are
 *     queued with strictly increasing zxids.
 *  2. queued_entries/queued_bytes count exactly the entries appended and not
 *     yet reported by on_durable (queue + being written + completed list).
 *  3. Only the writer thread opens LMDB write transactions once the store is
 *     open; other threads open only read transactions.
 *  4. The LMDB map is never resized (it holds only snapshot records and
 *     metadata): a reader needs no lock against a remap.
 */
#ifndef ZN_STORE_INTERNAL_H
#define ZN_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "fifo_arena.h"
#include "store.h"
#include "store_wal.h"

#define STORE_LOG_HEADER_BYTES 8u
#define STORE_SNAP_KEY_BYTES 12u
#define STORE_SNAP_HEADER_BYTES 40u
#define STORE_SNAP_MAGIC 0x5a4e534eu /* "ZNSN" */
#define STORE_SNAP_VERSION 2u /* 1: chunks of ZN_STORE_SNAPSHOT_CHUNK_BYTES_V1, no chunk size field */
#define STORE_SNAP_VERSION_FILE 3u /* the record of a snapshot file */
#define STORE_META_VALUE_BYTES 12u
/* Most keys of a replaced snapshot deleted in one write transaction (~1-2 ms):
 * log batches queued meanwhile are committed between such transactions. */
#define STORE_COMPACT_TXN_ENTRIES 4096u

enum store_op {
    STORE_OP_ENTRY,        /* a log entry (asynchronous, reported by on_durable) */
    STORE_OP_SNAPSHOT,     /* a snapshot blob (asynchronous, no callback) */
    STORE_OP_TRUNCATE,     /* synchronous: delete log and snapshots above zxid */
    STORE_OP_META,         /* synchronous: put a metadata value */
    STORE_OP_DROP_SNAPSHOT,/* synchronous: delete one (corrupt) snapshot */
    STORE_OP_CORRUPT_ENTRY,/* synchronous, tests: a log entry with a wrong crc */
    STORE_OP_PURGE,        /* asynchronous: keep snapshots_kept, compact (store_purge) */
};

/* A caller of a synchronous operation waits on this (on its own stack). */
struct store_waiter {
    bool done;
    int status;
    uint64_t zxid; /* TRUNCATE: the highest zxid left */
};

struct store_item {
    struct store_item *next;
    enum store_op op;
    uint64_t zxid;
    int status;                  /* ENTRY: the batch's result, once completed */
    uint64_t batch_entries;      /* ENTRY carrying a result: its batch's size */
    uint64_t batch_bytes;
    struct store_waiter *waiter; /* synchronous ops */
    uint64_t meta_value;
    char meta_key[ZN_STORE_META_KEY_MAX + 1];
    void *blob;                  /* SNAPSHOT: owned */
    store_blob_release_fn release; /* SNAPSHOT: frees blob in pieces; NULL: free() */
    size_t len;
    size_t released;             /* SNAPSHOT with release: bytes given back so far */
    bool install;                /* SNAPSHOT: the log does not hold its zxid (a leader's) */
    bool from_file;              /* SNAPSHOT: no blob; a child wrote snapshot.<zxid>.tmp */
    unsigned char data[];        /* ENTRY, CORRUPT_ENTRY: the payload */
};

struct store_queue {
    struct store_item *head, *tail;
};

struct store {
    /* Set at open, read-only afterwards. */
    uv_loop_t *loop;
    store_durable_fn on_durable;
    void *ctx;
    struct store_options opts;
    char *snap_dir;              /* opts.snap_dir (owned): where snapshot files are */
    pid_t pid;
    /* The log entries' queue copies: allocated on the loop thread by
     * store_append, freed by the writer (all but a run's last) and by
     * store_deliver, in zxid order: kept out of the main heap. */
    struct zn_fifo entries;
    MDB_env *env;
    MDB_dbi dbi_log, dbi_snap, dbi_meta;
    /* The log's segment files (store_wal.c): written by the writer thread,
     * read by the loop thread at recovery while the writer is idle. */
    struct wal *wal;
    pthread_t thread;
    uv_async_t async;

    /* Writer thread only. */
    unsigned commits_since_unmap; /* see store_unmap_pages */
    struct wal_entry *run_entries; /* a run of log entries as wal_append takes them */
    size_t run_cap;

    /* Loop thread only. */
    uint64_t last_zxid;
    uint64_t last_snapshot_zxid_queued;
    bool recovered;
    bool closing;

    /* Everything below is guarded by mutex. */
    pthread_mutex_t mutex;
    pthread_cond_t work_cond;  /* writer waits: work queued, pause lifted, stop */
    pthread_cond_t done_cond;  /* synchronous callers wait: waiter->done */
    struct store_queue queue;     /* loop -> writer */
    struct store_queue completed; /* writer -> loop: carriers of batch results */
    bool stopping;
    bool paused;
    bool writer_busy;
    unsigned fail_batches;
    /* Writer thread only: the error of the last snapshot from a leader whose
     * write failed (0: none, or a later one was stored).  That snapshot was
     * the only record of the state up to its zxid: log entries after it
     * would, after a restart, be replayed on an older tree, so no batch is
     * written until one is stored (the member stops on the failed batch). */
    int install_failed;
    /* Writer thread only: the error of a log batch that failed (0: none, or
     * a truncation came since).  No later batch is written until the loop
     * truncates the log (store_truncate_after): written after a failed one,
     * its entries would follow a hole, and a member that stops on the
     * failure (its entries may be held by others) would replay them over the
     * hole after a restart, its tree no longer the ensemble's. */
    int log_failed;
    int fail_error;
    unsigned crash_snapshot_at; /* tests: see store_test_crash_snapshot_at */
    uint64_t map_bytes;
    struct store_stats stats;
    /* Durations (us) of the log commits not yet taken by store_take_commit_times;
     * past STORE_COMMIT_TIMES_MAX the newest are dropped (a scrape sees a sample). */
    uint32_t commit_us[STORE_COMMIT_TIMES_MAX];
    size_t commit_times;
};

/* Metadata key (not available to users) of the highest zxid compaction has
 * deleted up to: recovery needs a snapshot at or above it. */
#define STORE_META_COMPACTED ".compacted_zxid"

/* Drops this process's page table entries for data.mdb's pages (they stay in
 * the page cache); see store_txn.c.  Writer thread, or the loop thread
 * while the writer is idle (recovery). */
void store_unmap_pages(struct store *s);

/* Opens the log's segment files into s->wal, first moving a log kept in
 * LMDB (a store written before them) into segments, crash-safely
 * (store_walmigrate.c).  At open, before store_scan. */
int store_wal_open(struct store *s, const char *dir);

/* Reads the counters and last zxid from disk at open (store_recover.c). */
int store_scan(struct store *s);
/* Reads a metadata value in a short read transaction (store_recover.c).
 * Returns 0, ZN_NONODE, ZN_CORRUPT, ZN_IO. */
int store_meta_read(struct store *s, const char *key, uint64_t *value);

/* Writer thread entry point (store_writer.c). */
void *store_writer_main(void *arg);

/* Maps an LMDB or errno code to a ZN_ code, logging what failed. */
int store_error(int mdb_rc, const char *what);

/* Encoding helpers. */
static inline void store_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static inline void store_put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static inline uint64_t store_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline uint32_t store_get_be32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The checksum of a log record: over key || length || payload. */
uint32_t store_log_crc(uint64_t zxid, const void *payload, size_t len);
/* Checks a log record read from LMDB; on success points *payload and *len into it. */
int store_log_decode(const MDB_val *key, const MDB_val *value, uint64_t *zxid,
                     const void **payload, size_t *len);
/* Encodes a snapshot header for zxid and blob. */
void store_snap_header_encode(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                              const void *blob, size_t len, uint32_t chunks);
/* The same with the blob's crc32c (over zxid || blob) computed by the caller. */
void store_snap_header_encode_crc(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                                  size_t len, uint32_t chunks, uint32_t blob_crc);
/* The LMDB record of a snapshot file (format 3) and its check; the decode
 * returns 0, or ZN_CORRUPT (also for a format 1 or 2 header). */
void store_snap_record_encode(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                              uint64_t len, uint32_t blob_crc);
int store_snap_record_decode(const MDB_val *value, uint64_t *zxid, uint64_t *len,
                             uint32_t *blob_crc);
/* Parses and checks a format 1 or 2 snapshot header; returns 0 or ZN_CORRUPT. */
int store_snap_header_decode(const MDB_val *value, uint64_t *zxid, uint64_t *blob_len,
                             uint32_t *chunks, uint32_t *blob_crc);
void store_snap_key(unsigned char key[STORE_SNAP_KEY_BYTES], uint64_t zxid, uint32_t chunk);

/* What store_file_check learnt from LMDB's meta pages (exists false: no file yet). */
struct store_file_facts {
    bool exists;
    uint64_t file_bytes;
    uint32_t page_bytes;
    uint64_t last_pgno;
    uint64_t txnid;
};
/* Checks dir/data.mdb before LMDB maps it: both meta pages sound, and every
 * page the newest commit uses held whole by the file (store_format.c).
 * Returns 0 (also when there is no file yet), ZN_CORRUPT after logging
 * store_refuse_damaged's line, ZN_IO. */
int store_file_check(const char *dir, struct store_file_facts *facts);
/* Logs the one line an operator sees when the store in dir is damaged (what
 * is wrong, and what to do: move dir aside, the member rejoins empty and gets
 * a snapshot) and returns ZN_CORRUPT. */
int store_refuse_damaged(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Asserts invariants 1 and 2 over what is visible: the queue and the
 * completed list (items the writer holds are counted as the difference).
 * O(queue length): called at recovery, after synchronous operations and at
 * close, not on every append. */
void store_check_invariants(struct store *s);

/* Runs one synchronous operation through the writer and waits for it. */
int store_run_sync(struct store *s, struct store_item *item, struct store_waiter *waiter);

/* ---- the writer thread's files (writer thread only) ---- */

/* store_txn.c.  A transaction function: puts or deletes in txn, returns an
 * LMDB or errno code; it must start from scratch on each call. */
typedef int (*store_txn_fn)(struct store *s, MDB_txn *txn, void *arg);
/* Runs fn in a write transaction and commits it; with injectable, a
 * pending test fault replaces the commit.  Returns an LMDB or errno code
 * (MDB_MAP_FULL: ZN_NOSPACE to the caller's store_error). */
int store_write_txn(struct store *s, store_txn_fn fn, void *arg, bool injectable);
/* ENOSPC instead of EIO when the disk lacks room for bytes_needed. */
int store_classify_failure(struct store *s, int rc, uint64_t bytes_needed);

/* store_records.c */
struct store_deleted {
    uint64_t entries, bytes;
};
int store_snap_delete_some(struct store *s, MDB_txn *txn, uint64_t zxid, uint64_t max,
                           bool *more);
int store_snap_delete(struct store *s, MDB_txn *txn, uint64_t zxid);
/* The snapshot records' zxids, oldest first: the first max into zxids,
 * every one counted in *count, the newest in *newest (0: none).  Deletes the
 * chunks of an incomplete format 2 snapshot met on the way. */
int store_snap_list(struct store *s, MDB_txn *txn, uint64_t *zxids, size_t max,
                    size_t *count, uint64_t *newest);
int store_put_meta_value(struct store *s, MDB_txn *txn, const char *name, uint64_t value);
/* A store_txn_fn: deletes the snapshot at ((struct store_item *)arg)->zxid. */
int store_drop_snapshot_txn(struct store *s, MDB_txn *txn, void *arg);
/* Handles one item that is neither a log entry nor a snapshot. */
void store_write_other(struct store *s, struct store_item *item);

/* store_snapmigrate.c.  At open, before the writer thread starts (the loop
 * thread writes then): format 1 and 2 snapshots moved from LMDB into files,
 * then leftover files removed (store_snapfiles_tidy with tmp_too). */
int store_snapfiles_open(struct store *s);
/* Removes the snapshot files that no record names (and, with tmp_too, every
 * temporary one: only at open, when no child can be writing one).  Writer
 * thread, or open.  Failures are logged: a leftover goes at the next open. */
void store_snapfiles_tidy(struct store *s, bool tmp_too);
/* store_copy's snapshot files, into dir beside the LMDB copy: before it
 * (after false) and after it (after true).  Returns 0 or ZN_IO. */
int store_snapfiles_copy(struct store *s, const char *dir, bool after);
/* Reads a format 1 or 2 snapshot (store_recover.c): the newest below
 * `below`; *is_file set (and nothing read) when that one is a record of a
 * file instead. */
int store_read_legacy_snapshot(struct store *s, uint64_t below, bool *found, bool *incomplete,
                               bool *is_file, uint64_t *zxid, void **blob, size_t *len);

/* store_snapwrite.c */
int store_write_snapshot(struct store *s, struct store_item *item, struct store_item **rest);
/* A purge (store_purge): the snapshots beyond snapshots_kept and the log
 * below the oldest kept one go.  Returns 0 or a ZN_ code (logged). */
int store_write_purge(struct store *s);
void store_release_blob_upto(struct store_item *item, size_t upto);

/* store_writer.c: one run of count log entries (linked from run) written
 * as one group commit of the segment files; corrupt (tests): the first
 * record's crc is wrong.  Returns 0 or an errno code. */
int store_wal_write_run(struct store *s, const struct store_item *run, uint64_t count, bool corrupt);

/* store_writer.c: between two transactions of a snapshot, commits the log
 * entries queued meanwhile. */
void store_writer_interleave(struct store *s, struct store_item **rest);

#endif
