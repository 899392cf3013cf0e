/*
 * store_inspect: reads a store's records offline, as an operator does after an
 * incident (znoded --dump), checking every checksum and changing nothing.
 *
 * Unlike store_recover, which stops at the first damaged record and deletes
 * damaged snapshots, this walks everything in a zxid range and reports each
 * record with its state, damaged ones included, so the operator learns
 * exactly which record is damaged and what is still good around it.  The
 * store may belong to a running member: the environment is opened read-only
 * with LMDB's reader lock, so the member goes on writing meanwhile (the walk
 * then sees one consistent moment).  One read transaction per part (the
 * metadata, the snapshots, a log still in LMDB); then the log's segment
 * files, read-only (a member appending meanwhile may show a last group
 * commit half written: a torn tail).
 */
#ifndef ZN_STORE_INSPECT_H
#define ZN_STORE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_record_kind {
    STORE_RECORD_META,      /* a named value (epochs, the compaction point) */
    STORE_RECORD_SNAPSHOT,  /* one snapshot of the tree */
    STORE_RECORD_LOG,       /* one log entry */
};

enum store_record_state {
    STORE_RECORD_INTACT,
    STORE_RECORD_CORRUPT,     /* fails its checksum, framing or place */
    STORE_RECORD_INCOMPLETE,  /* a snapshot whose write a crash cut short (no header), or
                                 the log's torn tail after a crash (recovery drops both) */
};

struct store_record {
    enum store_record_kind kind;
    enum store_record_state state;
    const char *problem;      /* what is wrong when not intact; borrowed for the call */
    uint64_t zxid;            /* SNAPSHOT, LOG */
    const char *name;         /* META: the key, borrowed for the call */
    uint64_t value;           /* META */
    const void *data;         /* LOG: the payload; SNAPSHOT: the blob when asked for and
                                 intact, else NULL; borrowed for the call */
    size_t len;               /* LOG: payload bytes; SNAPSHOT: blob bytes (from its header) */
    uint32_t chunks;          /* SNAPSHOT: chunks after the header (0 for a file) */
    const char *file;         /* SNAPSHOT in a file of its own: its path, borrowed for the
                                 call (NULL: in LMDB, formats 1 and 2, migrated at open) */
};

/* Called once per record, in order: metadata, snapshots by zxid, log by
 * zxid.  A non-zero return stops the walk, and store_inspect returns it. */
typedef int (*store_record_fn)(void *ctx, const struct store_record *record);

/*
 * Walks the store in dir: every metadata value, then the snapshots and log
 * entries with from_zxid <= zxid <= to_zxid.  With snapshot_blobs, an intact
 * snapshot is handed over with its blob (read whole into memory).
 * Returns 0 when the walk finished (damaged records were reported through
 * fn, not as an error), ZN_NONODE when dir holds no store (no data.mdb),
 * ZN_CORRUPT when LMDB's own file is damaged (logged: no record can be
 * trusted then), ZN_IO, ZN_NOMEMORY, or fn's non-zero return.
 */
int store_inspect(const char *dir, uint64_t from_zxid, uint64_t to_zxid, bool snapshot_blobs,
                  store_record_fn fn, void *ctx);

/* store_inspect with the snapshot files in snap_dir (znoded's dataDir; the
 * LMDB store in dir is dataLogDir's); store_inspect looks for them in dir.
 * A snapshot's file is checked whole (header, length, checksum, and against
 * its record); a missing or damaged one is reported CORRUPT with the file
 * name and the offset in problem. */
int store_inspect_dirs(const char *dir, const char *snap_dir, uint64_t from_zxid, uint64_t to_zxid,
                       bool snapshot_blobs, store_record_fn fn, void *ctx);

#endif
