/*
 * store_wal: the transaction log in append-only segment files of its own,
 * beside data.mdb in the store's directory (dataLogDir), as ZooKeeper's
 * log.<zxid> files.  One group commit is one pwritev and one fdatasync.
 * Not a public header: only replication/store*.c include it.
 *
 * Files (all integers big-endian):
 *   log.<first zxid, 16 hex digits>   a segment, preallocated: its whole
 *       size written (fdatasync'd, its name fsync'd into the directory)
 *       before any record goes in, so an append changes neither the file's
 *       size nor its extents and fdatasync flushes data only.  The next
 *       segment is made ready by a thread of its own, off the write path,
 *       in one of two spare slots ("log.spare", "log.spare.1"): a compacted
 *       segment of the current size (recycled, below), or segment_bytes of
 *       written zeros once the current segment is half full and no spare is
 *       ready.  Two slots, because compaction usually drops a segment after
 *       the current one is past half: the second keeps it, and from then on
 *       every segment change finds a recycled spare.
 *     header (40, version 2): magic "ZNWL" (4) | version (4) | first zxid (8) |
 *       the size it was preallocated to (8) | secret (8) | earlier (8): the
 *       highest zxid of the file's earlier lives (0: made of zeros), all
 *       written with the segment's first group commit.  A segment never
 *       grows past that size (a group commit that does not fit starts the
 *       next one, sized to hold it), so a file shorter than its header says
 *       was cut: damage, refused.
 *     records, each 8-byte aligned:
 *       zxid (8) | batch (8): the zxid of the first record of its group commit |
 *       length (4) | crc32c (4) over the secret (8, big-endian), then the 20
 *       bytes before it, then the payload |
 *       payload | padding to a multiple of 8 (zeros as written; not checked)
 *     then zeros, or a recycled file's stale bytes.
 *   Version 1 (written before the secret; still read, never appended to: the
 *   next group commit starts a version 2 segment): a 24-byte header (no
 *   secret, no earlier) and a crc32c over the 20 bytes and the payload only.
 *
 * The secret.  Each life of a segment file gets 64 bits from getrandom(2)
 * when it starts (wal_new_segment: a zeroed spare or a recycled one alike;
 * a spare's header has none, 0), kept in memory for the appends and
 * written in its header with its first group commit.  Why: a client's
 * data is written verbatim into the log (setData, create), so a client can
 * put inside a payload the bytes of a whole record, header, payload and
 * crc, of a zxid far ahead.  Recycled, the file keeps those bytes; if a
 * later life's log ended exactly where they sit, a crc over the record
 * alone would make them the next record of the chain, replayed at every
 * restart: a transaction nobody proposed.  Keyed by the life's secret, any
 * record not written by this life fails its check (the client never sees
 * the secret; without it a forged record passes with probability 2^-32
 * per attempt, the odds of a crc32c collision, and each attempt costs a
 * recycled segment's life and an exact alignment), and so does a stale
 * record of an earlier life (another secret).  The zxid rule below stays
 * as a second line.  The secret leaves the machine only with the segment
 * (a backup copies the header with the records: a restored segment still
 * checks), and --dump shows records, not headers.
 *
 * Recycling.  Compaction renames one segment it drops, of exactly the
 * current segment size, to log.recycle.tmp (when a spare slot is free, the
 * preparer idle and no copy under way) and fsyncs the directory; the
 * preparer then rewrites its header as a spare's (magic, version, the
 * highest zxid ever written into it: "high", its size, secret 0, high
 * again as its earlier lives'), fdatasyncs, and
 * renames it into the free slot.  Its old records stay:
 * stale.  A crash at any step reopens to the same log: before the
 * directory fsync the old name may still be there with its old header (a
 * segment below the compaction point, dropped again by the next
 * compaction); log.recycle.tmp is a leftover, removed at open; a spare
 * always has a whole spare header (written before the rename); a segment
 * renamed from it whose first group commit never became durable has the
 * spare's header, or a torn mix that does not match its name, or its own
 * header and a torn first record: no record of its life, so as the last
 * segment it is empty and removed (and the one before is the last again).
 *   Stale vs new: in version 2 a stale record fails this life's check
 *   (another secret), so after this life's records a file whose header
 *   names earlier lives (earlier != 0) may hold any bytes; they are read
 *   as stale unless they start as a record of this life would (below).
 *   The second line, and version 1's only one: a record whose zxid is
 *   below the segment's name (its first zxid) is stale; at or above, of
 *   this life.  That holds because a
 *   spare is only used for a segment whose first zxid is above its high
 *   (checked when the segment starts; otherwise the spare is unlinked and
 *   zeros written), and every record of this life is at or above the name.
 *   By ZAB it always is above: high is at most the compaction point (the
 *   older kept snapshot, of committed transactions), and the log never
 *   restarts at or below that: a ZAB TRUNC only removes uncommitted
 *   proposals above a member's committed history (truncating below the
 *   compaction point leaves the store unrecoverable without a peer's
 *   snapshot: store_recover refuses it), a leader's snapshot installed is
 *   at or above every committed zxid, and epochs only raise zxids.  Where
 *   the log does go back (a restore or migration into a directory a spare
 *   was left in, a peer's snapshot older than ours in a broken ensemble),
 *   the check at use keeps the spare out.  A later life's high covers the
 *   earlier ones (each was below its name).  Backups copy each segment's
 *   header and records only, then a hole (wal_copy_finish): no stale bytes
 *   travel, the secret does.
 *
 * Recovery reads every segment.  A record counts only as the next of the
 * chain: at the segment's start (the header's first zxid matching the
 * name, the first record that zxid), each next one at the offset after the
 * last, above it, of its group commit or starting a later one; stale
 * records can never continue the chain (they are below the name).  At the
 * first place that is not (zeros, a record cut short, a bad crc, a zxid
 * out of order, a stale record, the remnant of one), it looks at the rest
 * of the segment for valid records of this life that can follow the last
 * good one (at or above the name, a later zxid of no earlier epoch, of its
 * group commit or a later one; anything else there, a stale record
 * included, is only non-zero bytes), checking each in bounded time
 * whatever length it claims (one crc32c pass over the rest and a bounded
 * check per candidate: 64 MB of an earlier life's payloads, or of headers
 * a client planted in its data, cannot make the open quadratic):
 *   - nothing of this life after it: the end of the log.  In a file
 *     never recycled, anything non-zero there is the torn tail of a
 *     group commit a crash cut short (never acknowledged: on_durable runs
 *     after the fdatasync), zeroed and overwritten.  In a recycled one,
 *     only a torn record (a header of this life: zxid above the last, at
 *     or above the name, a plausible group and length) is zeroed, up to
 *     its length or the first stale record; other bytes are the remnant of
 *     a stale record the last new one ended inside: the end, nothing
 *     zeroed (they can never become a record of the chain: a next append
 *     writes whole records over them);
 *   - in the last segment, valid records of this life all of ONE group
 *     commit whose first record is the last good record's group or is
 *     missing (the gap is inside that group commit): its pages reached
 *     the disk out of order before its fdatasync returned, so it too is a
 *     torn tail, dropped whole (zeroed up to its last record);
 *   - anything else (a valid record of this life of a later group commit,
 *     or after the gap in a segment that is not the last): damage.  Every
 *     group commit before the last was durable before the next was
 *     written, so dropping would lose acknowledged writes: refused, naming
 *     the file and offset.
 * The offline walk (wal_inspect) reads the same way: stale records are
 * neither shown nor called damage.  A client payload crafted to be a valid
 * record of a future zxid, left as stale bytes exactly where a later life's
 * chain ends, fails that life's keyed check (the secret, above): never
 * replayed; if it starts as a record of this life would, it is zeroed as a
 * torn tail.
 */
#ifndef ZN_STORE_WAL_H
#define ZN_STORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* the header segments are written with (version 2); version 1's was 24 */
#define WAL_SEGMENT_HEADER_BYTES 40u
#define WAL_SEGMENT_HEADER_V1_BYTES 24u
#define WAL_RECORD_HEADER_BYTES 24u
#define WAL_MAGIC 0x5a4e574cu /* "ZNWL" */
#define WAL_VERSION 2u    /* records' crc keyed by the life's secret */
#define WAL_VERSION_V1 1u /* read, never written: no secret */
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

/* Drops the segments whose records are all at or below zxid (never the
 * last one): one of the current size becomes the next spare when none is
 * ready (store_wal.h, recycling), the others are unlinked.  Returns 0 or an
 * errno code. */
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
 * (which zeroes durable bytes in place) fails the copy: ZN_IO, logged.
 * Meanwhile compaction unlinks segments, never recycles one. */
struct wal_copy {
    size_t n;
    int *fds;
    uint64_t *firsts, *ends, *sizes;
    uint64_t truncations;
    bool counted; /* in the log's copies under way (no recycling meanwhile) */
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
/* Next segments made of compacted ones, and of written zeros (the spare or
 * one made when needed; tests, PROFILE). */
void wal_spare_counts(struct wal *w, uint64_t *recycled, uint64_t *zeroed);

#endif
