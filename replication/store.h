/*
 * store: the durable storage of one znoded member, in one directory.
 *
 * Holds three things:
 *  - the transaction log: opaque entries in zxid order, in append-only
 *    segment files of their own (log.<first zxid>, preallocated; format and
 *    recovery rules in store_wal.h), beside an LMDB environment (data.mdb)
 *    that holds the metadata;
 *  - snapshots of the data tree: opaque blobs tagged with the zxid they
 *    reflect, each in a file of its own, snapshot.<zxid in hex>, in the
 *    snapshot directory (store_snapfile.h), named by a record in LMDB; the
 *    newest snapshots_kept are kept (at every snapshot, or only when
 *    store_purge is called: opts.purge_on_call).  A file is written paced (its
 *    writeback pushed out chunk by chunk, so it never piles up in front of a
 *    log commit) under a temporary name, fsync'd and renamed; it counts only
 *    once the LMDB record naming it commits;
 *  - small metadata: named uint64 values (Zab's acceptedEpoch, currentEpoch).
 * Every record carries a CRC32C over its bytes and its zxid; recovery checks
 * it and never hands over a record that fails.
 *
 * Write path (group commit): store_append() copies an entry into a queue and
 * returns at once.  One writer thread (never the event-loop thread) takes
 * everything queued and appends it to the log's current segment in ONE
 * pwritev followed by ONE fdatasync, which covers the whole batch.  The writer
 * then wakes the loop (uv_async_send) and on the loop thread on_durable is
 * called once per batch, in zxid order, with the batch's last zxid.  An entry
 * may be acknowledged to a peer only after on_durable reported it with
 * status 0.
 *
 * Threads: every function here is called from the thread that runs the loop
 * given to store_open (the "loop thread"); the store is not thread-safe
 * beyond that.  Callbacks run on the loop thread.  Functions marked
 * SYNCHRONOUS block the caller (they wait for the writer thread and an
 * fsync); all others return without waiting for the disk.
 *
 * Processes: a store belongs to the process that opened it.  After fork()
 * the child must not use the parent's store; it opens its own (LMDB forbids
 * sharing an environment handle across fork).
 *
 * Errors: 0 or a negative ZN_ code from <znode/errors.h>:
 *   ZN_NOSPACE    the disk or the LMDB map is full (the map holds only records
 *                 and metadata: far below its size)
 *   ZN_IO         any other failure of the file system or of LMDB
 *   ZN_CORRUPT    LMDB reported a damaged file, or a record failed its check
 *                 where it cannot be skipped, or a log segment is damaged
 *   ZN_NOMEMORY   malloc failed
 *   ZN_THROTTLEDOP the append queue is at its bound; retry after on_durable
 *   ZN_TOOBIG     an entry over ZN_STORE_ENTRY_MAX_BYTES
 *   ZN_BADARGUMENTS a bad option or metadata key
 */
#ifndef ZN_STORE_H
#define ZN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Default virtual size of the LMDB map: address space, not disk. */
#ifndef ZN_STORE_DEFAULT_MAP_BYTES /* a build may set it: valgrind cannot map 64 GiB */
#define ZN_STORE_DEFAULT_MAP_BYTES (64ull << 30)
#endif
/* Largest single log entry or snapshot accepted. */
#define ZN_STORE_ENTRY_MAX_BYTES (64u << 20)
#define ZN_STORE_SNAPSHOT_MAX_BYTES (8ull << 30)
/* Bounds of the append queue (entries queued or being written, not yet
 * reported by on_durable); store_append returns ZN_THROTTLEDOP past them. */
#define ZN_STORE_QUEUE_MAX_BYTES (64u << 20)
#define ZN_STORE_QUEUE_MAX_ENTRIES 65536u
/* Most entries and payload bytes written in one group commit (pwritev + fdatasync). */
#define ZN_STORE_BATCH_MAX_ENTRIES 8192u
#define ZN_STORE_BATCH_MAX_BYTES (16u << 20)
/* Snapshots kept; log entries at or below the oldest kept one are deleted.
 * The most that may be asked for (snapshots_kept, znoded's
 * autopurge.snapRetainCount): recovery looks at the newest
 * ZN_STORE_SNAPSHOTS_KEPT_MAX + 8 records only, and a retain transaction
 * lists that many zxids on the writer's stack. */
#define ZN_STORE_SNAPSHOTS_KEPT 3u
#define ZN_STORE_SNAPSHOTS_KEPT_MAX 64u
/* The chunk size of format 2 snapshots (in LMDB, read only to migrate them
 * into files) and of format 1's. */
#define ZN_STORE_SNAPSHOT_CHUNK_BYTES 2000u
#define ZN_STORE_SNAPSHOT_CHUNK_BYTES_V1 (256u << 10)
/* The log's segment files: each is preallocated (zeros written) to this size,
 * ZooKeeper's preAllocSize default (64 MB); a group commit that does not fit
 * starts the next one. */
#define ZN_STORE_SEGMENT_BYTES (64ull << 20)
#define ZN_STORE_SEGMENT_MIN_BYTES (4ull << 10)
/* Metadata keys: 1..ZN_STORE_META_KEY_MAX bytes, NUL-terminated. */
#define ZN_STORE_META_KEY_MAX 64u

struct store;

/* Options of store_open.  Zero in any field means "the default" named beside
 * it, so `struct store_options o = {0}` (or a NULL pointer) gives defaults. */
struct store_options {
    uint64_t map_bytes;          /* LMDB map size; ZN_STORE_DEFAULT_MAP_BYTES.  It never
                                    grows: LMDB holds only snapshot records and metadata
                                    (the log and snapshots are files of their own) */
    size_t queue_max_bytes;      /* ZN_STORE_QUEUE_MAX_BYTES */
    size_t queue_max_entries;    /* ZN_STORE_QUEUE_MAX_ENTRIES */
    size_t batch_max_bytes;      /* ZN_STORE_BATCH_MAX_BYTES */
    size_t batch_max_entries;    /* ZN_STORE_BATCH_MAX_ENTRIES */
    unsigned snapshots_kept;     /* ZN_STORE_SNAPSHOTS_KEPT; 2..ZN_STORE_SNAPSHOTS_KEPT_MAX, so
                                    that a damaged newest snapshot has an older one (whose log
                                    entries are kept) to fall back to */
    int purge_on_call;           /* 0: after every snapshot, only the newest snapshots_kept
                                    stay and the log below the oldest of them goes;
                                    1: snapshots and log accumulate until store_purge
                                    (znoded: autopurge.purgeInterval given) */
    size_t snapshot_write_bytes; /* STORE_SNAPFILE_CHUNK_BYTES: bytes of a snapshot file
                                    written and flushed at a time; between two, the writer
                                    commits queued log entries */
    const char *snap_dir;        /* where snapshot files go (copied); NULL: dir itself.
                                    znoded: dataDir, with the LMDB store in dataLogDir */
    uint64_t segment_bytes;      /* the log's segment files' preallocated size (ZooKeeper's
                                    preAllocSize); ZN_STORE_SEGMENT_BYTES, at least
                                    ZN_STORE_SEGMENT_MIN_BYTES */
};

/*
 * Called on the loop thread once per committed (or failed) batch, in order.
 * last_zxid is the highest zxid of the batch.  status is 0 when every entry
 * of the batch, and of every earlier batch reported with 0, is durable; or a
 * negative code (ZN_NOSPACE, ZN_IO) when the batch's fdatasync did not
 * succeed: none of its entries counts as written (bytes of it that reached
 * the segment are overwritten by the next batch, or read as a torn tail).  Never called after store_close returns.
 */
typedef void (*store_durable_fn)(void *ctx, uint64_t last_zxid, int status);

/*
 * Recovery callbacks.  data is borrowed for the duration of the call only.
 * A non-zero return stops store_recover, which returns that value.
 */
typedef int (*store_snapshot_fn)(void *ctx, uint64_t zxid, const void *data, size_t len);
typedef int (*store_entry_fn)(void *ctx, uint64_t zxid, const void *data, size_t len);

/* Counters for the four-letter words.  A snapshot, not kept up to date. */
struct store_stats {
    uint64_t log_entries;        /* entries in the log on disk */
    uint64_t log_bytes;          /* payload bytes of those entries */
    uint64_t snapshot_count;     /* snapshots on disk */
    uint64_t snapshot_zxid;      /* zxid of the newest snapshot, 0 if none */
    uint64_t snapshot_zxid_queued; /* zxid of the newest snapshot handed to the store
                                      (written or not yet), 0 if none */
    uint64_t snapshots_failed;   /* snapshot writes that failed (logged) */
    uint64_t last_zxid;          /* see store_last_zxid */
    uint64_t durable_zxid;       /* highest zxid reported durable */
    uint64_t batches;            /* append batches committed successfully */
    uint64_t batches_failed;     /* append batches that failed */
    uint64_t entries_written;    /* entries in those committed batches */
    uint64_t last_batch_entries; /* entries in the most recent committed batch */
    uint64_t fsyncs;             /* durable sync points: LMDB commits of any kind (data
                                    pages, then the meta page), the log's group commits
                                    (one fdatasync each), truncations and compactions */
    uint64_t log_writes;         /* write calls of the log's group commits (pwritev) */
    uint64_t log_segments;       /* the log's segment files */
    uint64_t log_segments_recycled; /* next segments made of compacted ones (no zeros written) */
    uint64_t log_segments_zeroed;   /* segments made of written zeros (ahead or when needed) */
    uint64_t queued_entries;     /* appended, not yet reported by on_durable */
    uint64_t queued_bytes;
    uint64_t map_bytes;          /* current LMDB map size */
    double average_batch_entries;/* entries_written / batches */
};

/*
 * Opens (creating when missing) the store in directory dir, which is created
 * if it does not exist, and starts its writer thread.  The log's segments
 * are scanned (a torn tail dropped, damage refused); a log still kept in
 * data.mdb by an older version is moved into segments first, crash-safely.
 *   out        receives the store; set to NULL on error.
 *   loop       the loop on_durable runs on; borrowed, must outlive the store
 *              (until store_close's close callback has run).
 *   dir        copied.
 *   opts       copied; NULL means defaults.
 *   on_durable required; ctx is passed to it unchanged (borrowed).
 * SYNCHRONOUS.  Call store_recover next, before any append.
 * Returns 0, ZN_BADARGUMENTS, ZN_NOMEMORY, ZN_IO, ZN_NOSPACE, ZN_CORRUPT.
 * ZN_CORRUPT (with one logged line naming the file, what is wrong and what to
 * do) also when data.mdb is shorter than the pages its newest commit uses or
 * its meta pages are damaged: checked with pread before LMDB maps the file,
 * so a cut file never raises SIGBUS.  On error nothing needs closing.
 */
int store_open(struct store **out, uv_loop_t *loop, const char *dir,
               const struct store_options *opts, store_durable_fn on_durable, void *ctx);

/*
 * Hands over what the store holds, in order: the newest snapshot that passes
 * its checksum (on_snapshot, at most once; not called when there is none),
 * then every log entry with a higher zxid, in zxid order (on_entry).  The
 * log's records were checked by store_open, which drops a torn tail (the
 * last group commit, cut by a crash before its fdatasync returned, so never
 * reported durable) and refuses damage (a bad record with a later group
 * commit after it, a cut segment: ZN_CORRUPT, after one logged line naming
 * the file and offset and telling the operator to move the directory
 * aside), since dropping it could lose writes this member acknowledged.
 * The snapshot is the newest recorded one whose file
 * passes every check (header, length, CRC, and against its record; the file
 * is mapped, its data handed over from the mapping).  A damaged or missing
 * newer one is logged with its file name and offset and fallen back from
 * when an older one at or above the compaction point exists (its record is
 * dropped, its file renamed snapshot.<zxid>.damaged); when none does, nothing
 * is changed and ZN_CORRUPT is returned after a line naming the file (a
 * leader's snapshot keeps no older one, so a damaged one is always refused).
 * Afterwards store_last_zxid() is the last zxid handed over (or the
 * snapshot's).  Read transactions are kept short: entries are copied
 * out in slices, and no LMDB transaction is open while a callback runs.
 * SYNCHRONOUS.  Call once, after store_open and before store_append.
 * on_snapshot and on_entry may be NULL (the data is then only checked).
 * Returns 0, a callback's non-zero return, ZN_NOMEMORY, ZN_IO, or
 * ZN_CORRUPT when LMDB reports a damaged file or when no valid snapshot is
 * left at or above the point the log was compacted to (the tree cannot be
 * rebuilt from this store: close it, move the directory aside and start
 * empty, fetching a snapshot from a peer).  After an error only
 * store_close may be called.
 */
int store_recover(struct store *s, store_snapshot_fn on_snapshot, store_entry_fn on_entry,
                  void *ctx);

/*
 * Queues one log entry; data (len bytes, 0 < len <= ZN_STORE_ENTRY_MAX_BYTES)
 * is copied, so the caller keeps ownership.  zxid must be greater than
 * store_last_zxid() (asserted: a programmer error).  Durability is reported
 * later by on_durable.  Does not block.
 * Returns 0 (on_durable will report this entry exactly once),
 * ZN_THROTTLEDOP (queue at its bound: nothing queued, on_durable will not
 * report it), ZN_TOOBIG, ZN_NOMEMORY.
 */
int store_append(struct store *s, uint64_t zxid, const void *data, size_t len);

/*
 * Queues a snapshot of the tree as of zxid (after appends already queued, so
 * the writer handles it in order with them).  blob must come from malloc;
 * ownership passes to the store on success (it is freed after writing), and
 * stays with the caller on error.  zxid must be greater than the zxid of
 * every earlier snapshot (asserted).  The writer thread writes the blob into
 * its file snapshot_write_bytes at a time; unless the snapshot is a leader's
 * (above store_last_zxid()), log entries queued meanwhile are written (and
 * reported durable) between them, which is safe because the snapshot only
 * counts, and compaction only happens, once its record commits.  A crash
 * before that leaves a file no record names, which the next open removes.
 * After writing, only the newest
 * snapshots_kept snapshots remain, and log entries at or below the oldest
 * kept snapshot's zxid are deleted (their segment files unlinked), unless
 * opts.purge_on_call: then that happens only at store_purge, except after a
 * leader's snapshot (install), which always replaces every older one (the
 * log does not hold the transactions between them and it).  A failed snapshot write is logged and
 * counted; the log is then left untouched.  If zxid is above
 * store_last_zxid(), it becomes store_last_zxid() (a snapshot received from
 * a leader).  Does not block the disk.
 * Returns 0, ZN_TOOBIG, ZN_NOMEMORY.
 */
int store_snapshot(struct store *s, uint64_t zxid, void *blob, size_t len);

/*
 * How a snapshot blob not from malloc is given back: in pieces, on the writer
 * thread, as the store is done with them.  release(piece, n) is called for
 * successive ranges that together cover [blob, blob + len) exactly once, in
 * order; every piece starts on a page boundary (blob must be page-aligned)
 * and every piece but the last is whole pages.  A piece goes once it is
 * written to the file, so the memory is returned while the rest is written:
 * a 170 MB mapping released in one piece at the end held the writer thread,
 * and every log commit queued behind it, for 12-32 ms.  When store_snapshot_release
 * fails, the blob stays with the caller, as store_snapshot leaves it.
 */
typedef void (*store_blob_release_fn)(void *blob, size_t len);

/* store_snapshot for a blob released with release (e.g. a mapping of the
 * file a snapshot child wrote) instead of one free() after the last
 * transaction; NULL means free(). */
int store_snapshot_release(struct store *s, uint64_t zxid, void *blob, size_t len,
                           store_blob_release_fn release);

/*
 * Queues a snapshot the caller wrote itself (a forked child, with
 * store_snapfile_write) as store_snapshot_dir(s)/snapshot.<zxid>.tmp,
 * complete and fsync'd.  The writer checks its header, renames it, fsyncs
 * the directory, records it, and then trims and compacts as store_snapshot
 * does.  A file that fails its check is removed, logged and counted failed.
 * zxid must be greater than every earlier snapshot's and at most
 * store_last_zxid() (asserted: a snapshot of this member's own tree).
 * Returns 0 or ZN_NOMEMORY.
 */
int store_snapshot_file(struct store *s, uint64_t zxid);

/*
 * store_snapshot_file for a leader's snapshot this member received whole
 * (SNAP sync streamed from the leader's file, daemon/ensemble/snapxfer.c),
 * written and fsync'd as store_snapshot_dir(s)/snapshot.<zxid>.tmp: recorded
 * as store_snapshot records a leader's blob (an install when zxid is above
 * store_last_zxid(), which it then becomes; every older snapshot goes).
 * zxid must be greater than every earlier snapshot's.  Returns 0 or
 * ZN_NOMEMORY.
 */
int store_install_snapshot_file(struct store *s, uint64_t zxid);

/*
 * Queues a purge (ZooKeeper's PurgeTxnLog): after everything queued before
 * it, only the newest snapshots_kept snapshots remain (the older ones'
 * records go in one transaction, then their files), and when at least two
 * remain the log's segments wholly at or below the oldest kept one are
 * unlinked, so that a damaged newest snapshot still has an older one and the
 * log after it to recover from.  With one snapshot, the log is kept.  Does
 * not block; failures are logged (what failed stays for the next purge).
 * Meant for opts.purge_on_call; harmless otherwise.  Returns 0 or ZN_NOMEMORY.
 */
int store_purge(struct store *s);

/* The directory snapshot files go in (opts.snap_dir, or the store's dir). */
const char *store_snapshot_dir(const struct store *s);

/*
 * Removes every log entry with a zxid above zxid (Zab TRUNC), and every
 * snapshot above it.  SYNCHRONOUS: waits until everything queued before it is
 * written, then deletes and commits.  On return store_last_zxid() is the
 * highest zxid left (log or snapshot), which may be below zxid.  on_durable
 * calls for batches written before the truncation are still delivered later,
 * by the loop, even though those entries may now be gone.
 * Returns 0, ZN_NOMEMORY, ZN_IO, ZN_NOSPACE.
 */
int store_truncate_after(struct store *s, uint64_t zxid);

/*
 * Stores value under key (copied; 1..ZN_STORE_META_KEY_MAX bytes) durably:
 * SYNCHRONOUS, written after everything queued before it, committed (fsynced)
 * before returning.  Returns 0, ZN_BADARGUMENTS, ZN_NOMEMORY, ZN_IO, ZN_NOSPACE.
 */
int store_meta_put(struct store *s, const char *key, uint64_t value);

/*
 * Reads key's value into *value.  SYNCHRONOUS (a short read transaction).
 * Returns 0, ZN_NONODE when the key was never stored, ZN_BADARGUMENTS,
 * ZN_CORRUPT when the record fails its checksum, ZN_IO.
 */
int store_meta_get(struct store *s, const char *key, uint64_t *value);

/* Highest zxid recovered, queued by store_append, or of a queued snapshot
 * (0 when empty), lowered by store_truncate_after. */
uint64_t store_last_zxid(const struct store *s);

/* Copies the current counters into *out. */
void store_stats(struct store *s, struct store_stats *out);

/* How many log commit durations the store keeps between two takes. */
#define STORE_COMMIT_TIMES_MAX 1024

/* Moves the durations (microseconds, one per durable commit of log entries:
 * the write and its fsync) recorded since the last call into out (at most
 * max of them, the oldest first) and returns how many.  Thread-safe; meant
 * for a metrics scrape (ZooKeeper's fsynctime). */
size_t store_take_commit_times(struct store *s, uint32_t *out, size_t max);

/*
 * Stops the store: the writer finishes everything queued, every pending
 * on_durable is delivered (synchronously, from inside this call), the thread
 * is joined and LMDB is closed.  The uv_async handle is then closed; the
 * store's memory is freed in its close callback, so the loop must run once
 * more (uv_run) before it is closed.  s must not be used after this call.
 * SYNCHRONOUS.
 */
void store_close(struct store *s);

/* ---- for tests only ---------------------------------------------------- */

/* While paused (1), the writer takes no new work; resuming (0) lets it take
 * everything queued at once.  store_close resumes it; a synchronous call
 * made while paused waits for the resume (so never make one then). */
void store_test_pause_writer(struct store *s, int paused);

/* The next count append batches fail with LMDB error mdb_error (e.g. EIO,
 * ENOSPC) instead of committing. */
void store_test_fail_batches(struct store *s, unsigned count, int mdb_error);

/* The next snapshot write stops as if the process died at stage: 1 once
 * its file has its final name but no record names it, 2 once the record has
 * committed but neither the replaced snapshots' files nor the log entries
 * below the new compaction point are gone (the write is counted as failed
 * either way).  0 turns this off. */
void store_test_crash_snapshot_at(struct store *s, unsigned stage);

/* SYNCHRONOUS: writes a log entry whose stored checksum is wrong, as a torn
 * or corrupted record would be.  zxid must be above store_last_zxid(). */
int store_test_append_corrupt(struct store *s, uint64_t zxid, const void *data, size_t len);

/* The next group commit writes only its first pieces iovecs (all of them when
 * pieces < 0) and then the process kills itself (SIGKILL) before the
 * fdatasync: a crash between a write and its sync.  0 turns this off.  For a
 * child process of a test. */
void store_test_die_in_group_commit(int pieces);

/* With stop set, opening a store whose log is still in data.mdb stops (ZN_IO)
 * after the log is written into segment files and before data.mdb's copy is
 * emptied, as a crash there would. */
void store_test_stop_migration_before_drop(int stop);

/* Walks the B-trees of dir/data.mdb (closed) as the check at open does, and
 * sets a bit in mark for each page it reaches (pages below mark_pages);
 * *in_use counts them, *last_pgno is the newest meta page's last page.
 * Returns 0, or what the check at open returns. */
int store_test_pages_in_use(const char *dir, unsigned char *mark, uint64_t mark_pages,
                            uint64_t *in_use, uint64_t *last_pgno);

#endif
