/*
 * store_wal: the transaction log in append-only segment files of its own,
 * beside data.mdb in the store's directory (dataLogDir), as ZooKeeper's
 * log.<zxid> files.  One group commit is one pwritev and one fdatasync.
 * Not a public header: only replication/store*.c include it.
 *
 * Files (all integers big-endian):
 *   log.<first zxid, 16 hex digits>   a segment, preallocated: created as
 *       segment_bytes of written zeros (fdatasync'd, its name fsync'd into
 *       the directory) before any record goes in, so an append changes
 *       neither the file's size nor its extents and fdatasync flushes data
 *       only.  The next segment ("log.spare") is prepared by a thread of its
 *       own once the current one is half full, off the write path.
 *     header (24): magic "ZNWL" (4) | version (4) | first zxid (8) |
 *       the size it was preallocated to (8), written with the segment's first
 *       group commit.  A segment never grows past that size (a group commit
 *       that does not fit starts the next one, sized to hold it), so a file
 *       shorter than its header says was cut: damage, refused.
 *     records, each 8-byte aligned:
 *       zxid (8) | batch (8): the zxid of the first record of its group commit |
 *       length (4) | crc32c (4) over the 20 bytes before it and the payload |
 *       payload | zero padding to a multiple of 8
 *     then zeros.
 *
 * Recovery reads every segment.  At the first place that is not a valid
 * record (zeros, a record cut short, a bad crc, a zxid out of order), it
 * looks at the rest of the segment (and the segments after it) for valid
 * records that can follow the last good one (a later zxid, of its group
 * commit or a later one; anything else there, a stale record included, is
 * only non-zero bytes), checking each in bounded time whatever length it
 * claims:
 *   - nothing valid after it: the end of the log; anything non-zero there is
 *     the torn tail of a group commit a crash cut short (never acknowledged:
 *     on_durable runs after the fdatasync), zeroed and overwritten;
 *   - in the last segment, valid records all of ONE group commit whose
 *     first record is the last good record's group or is missing (the gap
 *     is inside that group commit): its pages reached the disk out of order
 *     before its fdatasync returned, so it too is a torn tail, dropped whole;
 *   - anything else (a valid record of a later group commit, or after the
 *     gap in a segment that is not the last): damage.  Every group commit
 *     before the last was durable before the next was written, so dropping
 *     would lose acknowledged writes: refused, naming the file and offset.
 */
#ifndef ZN_STORE_WAL_H
#define ZN_STORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define WAL_SEGMENT_HEADER_BYTES 24u
#define WAL_RECORD_HEADER_BYTES 24u
#define WAL_MAGIC 0x5a4e574cu /* "ZNWL" */
#define WAL_VERSION 1u
/* ZooKeeper's preAllocSize default: 64 MB. */
#define WAL_DEFAULT_SEGMENT_BYTES ZN_STORE_SEGMENT_BYTES
#define WAL_MIN_SEGMENT_BYTES ZN_STORE_SEGMENT_MIN_BYTES

struct wal;

struct wal_entry {
    uint64_t zxid;
    const void *data;
    size_t len;
};

/* What wal_open and wal_inspect learn, and the counters the store reports. */
struct wal_counts {
    uint64_t entries, bytes; /* records and payload bytes in the log */
    uint64_t first_zxid, last_zxid; /* 0: empty */
    uint64_t segments;
};

/* Opens the log in dir (writable): scans every segment, drops a torn tail,
 * refuses damage (ZN_CORRUPT after one logged line naming the file and the
 * offset), removes an empty last segment and a half-made spare, and starts
 * the thread that prepares the next segment.  Returns 0, ZN_CORRUPT, ZN_IO,
 * ZN_NOMEMORY, ZN_NOSPACE. */
int wal_open(struct wal **out, const char *dir, uint64_t segment_bytes);
void wal_close(struct wal *w);
void wal_counts(struct wal *w, struct wal_counts *out);

/* Writes entries (strictly increasing zxids above the log's last) as one
 * group commit: one pwritev (more only past IOV_MAX pieces) and one
 * fdatasync.  With corrupt_first (tests) the first record's crc is wrong.
 * Returns 0 or an errno code (nothing counts as written then). */
int wal_append(struct wal *w, const struct wal_entry *entries, size_t n, bool corrupt_first);

/* Removes every record above zxid (zeroed in place, whole segments
 * unlinked), durably.  *entries, *bytes: what went.  Returns 0 or an errno code. */
int wal_truncate_after(struct wal *w, uint64_t zxid, uint64_t *entries, uint64_t *bytes);

/* Unlinks the segments whose records are all at or below zxid (never the
 * last one).  Returns 0 or an errno code. */
int wal_compact(struct wal *w, uint64_t zxid, uint64_t *entries, uint64_t *bytes);

/* Hands over every record with zxid >= from, in order.  A non-zero return
 * of fn stops the walk and is returned; ZN_IO, ZN_NOMEMORY. */
typedef int (*wal_record_fn)(void *ctx, uint64_t zxid, const void *data, size_t len);
int wal_read(struct wal *w, uint64_t from, wal_record_fn fn, void *ctx);

/* A copy of the log's durable bytes (store_copy): wal_copy_begin opens
 * every segment and notes how many bytes of it are durable, under the log's
 * lock (so a compaction cannot unlink one before it is open); then
 * wal_copy_finish writes those bytes into dir/<segment name> (then zeros, as
 * a hole, up to the segment's size), while appends go on past them, and
 * closes everything.  A truncation between the two
 * (which zeroes durable bytes in place) fails the copy: ZN_IO, logged. */
struct wal_copy {
    size_t n;
    int *fds;
    uint64_t *firsts, *ends, *sizes;
    uint64_t truncations;
};
int wal_copy_begin(struct wal *w, struct wal_copy *c);
int wal_copy_finish(struct wal *w, struct wal_copy *c, const char *dir);

/* The offline walk (znoded --dump): read-only, changes nothing.  fn gets
 * every valid record; problem gets each place that is not (the file, the
 * offset, the zxid its header claims or 0, what is wrong, and whether
 * recovery would drop it as a torn tail or refuse it as damage), and after
 * damage fn still gets the valid records that follow it.  Returns 0 or fn's/problem's non-zero return. */
typedef int (*wal_problem_fn)(void *ctx, const char *file, uint64_t offset, uint64_t zxid,
                              const char *what, bool torn);
int wal_inspect(const char *dir, uint64_t from, uint64_t to, wal_record_fn fn,
                wal_problem_fn problem, void *ctx);

/* Unlinks every segment file (and a spare) in dir, durably; *removed counts
 * the segments.  Returns 0 or an errno code. */
int wal_remove_segments(const char *dir, uint64_t *removed);

/* Counters of the write path (tests, PROFILE): pwritev and fdatasync calls
 * made by wal_append. */
void wal_io_counts(struct wal *w, uint64_t *writes, uint64_t *syncs);

#endif
