/*
 * store_snapfile: snapshots in files of their own, as ZooKeeper keeps them.
 *
 * A snapshot of the tree at zxid Z is the file snapshot.<Z in lowercase hex,
 * no leading zeros> in the store's snapshot directory (dataDir; the LMDB
 * store with the log and the metadata is in dataLogDir):
 *   magic "ZNSF" (4) | version (4) | zxid (8) | blob length (8) |
 *   blob crc32c (4, over zxid (8, big-endian) || blob) | reserved (8, zero) |
 *   header crc32c (4, over the preceding 36 bytes) | the blob
 * integers big-endian.  The blob crc32c is the one the legacy LMDB snapshot
 * headers carried, so a snapshot migrated from LMDB keeps its checksum.
 *
 * A file is written under a temporary name (snapshot.<Z>.tmp by a snapshot
 * child, snapshot.<Z>.store.tmp by the store's writer): blob first, in chunks, each
 * pushed to the disk as it goes (sync_file_range), so that at most two chunks
 * of writeback stand in the disk's queue in front of a log fdatasync (a whole
 * snapshot of 150-275 MB written at once made log commits wait 100-400 ms);
 * then the header; then fsync.  Its pages stay in the page cache, where a
 * restart finds them, until a newer snapshot is recorded
 * (store_snapfile_uncache).  Whoever
 * records it renames it to its final name and fsyncs the directory
 * (store_snapfile_publish) before the LMDB record naming it (zxid, length,
 * crc) commits: a file with a final name and no record, or a .tmp file, is a
 * crash's leftover, and store_open removes it (store_snapfile_sweep).
 *
 * No LMDB and no logging here: the snapshot child (daemon/ensemble/
 * snapshot.c), which must not touch either after fork, writes its file with
 * store_snapfile_write.  Errors are negative errno values.
 */
#ifndef ZN_STORE_SNAPFILE_H
#define ZN_STORE_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SNAPFILE_HEADER_BYTES 40u
#define STORE_SNAPFILE_MAGIC 0x5a4e5346u /* "ZNSF" */
#define STORE_SNAPFILE_VERSION 1u
/* Bytes of a snapshot written before they are pushed to the disk and the
 * next chunk starts: what a log fdatasync can find in the queue before it
 * (twice this at most).  1 MB takes 2-10 ms to write back on this machine's
 * disk. */
#define STORE_SNAPFILE_CHUNK_BYTES (1u << 20)
/* "snapshot." + 16 hex digits + ".tmp" + NUL */
#define STORE_SNAPFILE_NAME_MAX 32u

/* A snapshot file's names: its final one, and the temporary ones of its two
 * writers, apart so that a child's snapshot and a leader's at the same zxid
 * (installed while the child runs) never write into the same file. */
enum {
    STORE_SNAPFILE_FINAL = 0,     /* snapshot.<zxid> */
    STORE_SNAPFILE_TMP = 1,       /* snapshot.<zxid>.tmp: a snapshot child's */
    STORE_SNAPFILE_TMP_STORE = 2, /* snapshot.<zxid>.store.tmp: the store's writer's */
};

/* Writes dir/snapshot.<zxid>'s name `which` (above) into out. */
int store_snapfile_path(char *out, size_t cap, const char *dir, uint64_t zxid, int which);

/* Parses a directory entry's name: 1 with *zxid and *tmp set when it is a
 * snapshot file's final or a temporary name, 0 otherwise. */
int store_snapfile_parse_name(const char *name, uint64_t *zxid, bool *tmp);

/* The blob's checksum as the header and the LMDB record carry it (a big
 * blob's on two threads). */
uint32_t store_snapfile_blob_crc(uint64_t zxid, const void *blob, size_t len);

/* Called after each chunk is written and flushed: done bytes of the blob are
 * on their way to the disk (the caller may give those pages back, commit log
 * entries, ...).  */
typedef void (*store_snapfile_progress_fn)(void *ctx, size_t done);

/*
 * Writes blob (len bytes, the tree at zxid) as dir/snapshot.<zxid>'s
 * temporary name which (STORE_SNAPFILE_TMP or _TMP_STORE), in
 * chunks of chunk_bytes (0: STORE_SNAPFILE_CHUNK_BYTES), paced as above,
 * then its header, then fsync.  progress may be NULL.  *blob_crc receives
 * the blob's checksum.  On failure the temporary file is removed.
 * Returns 0 or a negative errno.
 */
int store_snapfile_write(const char *dir, uint64_t zxid, int which, const void *blob, size_t len,
                         size_t chunk_bytes, store_snapfile_progress_fn progress, void *ctx,
                         uint32_t *blob_crc);

/*
 * The same file written as a stream, for a writer that has the blob a piece
 * at a time (the snapshot child serialises the tree into a small buffer and
 * hands it over as it fills, instead of serialising all of it first):
 * store_snapfile_begin creates the temporary file; store_snapfile_append
 * writes any number of bytes, in chunks of chunk_bytes paced as above;
 * store_snapfile_finish writes the header (the length and checksum of all
 * appended), fsyncs and closes, and on any failure (its own or an earlier
 * append's) removes the file.  store_snapfile_abort closes and removes it
 * (after a failed begin too).  The pages written stay in the page cache.
 */
struct store_snapfile_out {
    int fd;
    int rc;                /* the first append's failure, sticky */
    uint64_t zxid;
    uint64_t len;          /* bytes of blob appended */
    uint32_t crc;
    size_t chunk_bytes;
    uint64_t prev_off, prev_len; /* the chunk whose writeback is not waited for yet */
    char path[4096];
};
int store_snapfile_begin(struct store_snapfile_out *o, const char *dir, uint64_t zxid, int which,
                         size_t chunk_bytes);
int store_snapfile_append(struct store_snapfile_out *o, const void *data, size_t len);
int store_snapfile_finish(struct store_snapfile_out *o, uint32_t *blob_crc);
void store_snapfile_abort(struct store_snapfile_out *o);

/* Drops dir/snapshot.<zxid>'s pages from the page cache: called when a newer
 * snapshot replaces it as the one a restart reads.  Returns 0 or a negative
 * errno. */
int store_snapfile_uncache(const char *dir, uint64_t zxid);

/* Renames dir/snapshot.<zxid>'s temporary name which to its final name and
 * fsyncs dir: from here a crash leaves the file (removed at open unless
 * recorded).  Returns 0 or a negative errno. */
int store_snapfile_publish(const char *dir, uint64_t zxid, int which);

/* What a snapshot file's check found. */
struct store_snapfile_facts {
    uint64_t len;       /* the blob's length, from the header */
    uint32_t crc;       /* the blob's checksum, from the header */
    uint64_t offset;    /* where the damage is (bytes from the file's start) */
    char problem[200];  /* empty when intact */
};

/*
 * Reads and checks the header of dir/snapshot.<zxid>'s name which: magic,
 * version, header checksum, the zxid it names, and a file size of exactly
 * header + blob length.  Returns 0, -ENOENT when there is no such
 * file, 1 with facts->problem and facts->offset set when it is damaged, or
 * another negative errno.
 */
int store_snapfile_check_header(const char *dir, uint64_t zxid, int which,
                                struct store_snapfile_facts *facts);

/*
 * Maps dir/snapshot.<zxid> read-only and checks all of it: the header as
 * above, then the blob against its checksum, and both against what the
 * record says (len, crc).  Returns 0 with *map (the mapping, *map_len bytes;
 * the blob starts STORE_SNAPFILE_HEADER_BYTES in; release it with munmap),
 * -ENOENT, 1 with facts set when damaged, or another negative errno.
 */
int store_snapfile_map(const char *dir, uint64_t zxid, uint64_t len, uint32_t crc, void **map,
                       size_t *map_len, struct store_snapfile_facts *facts);

/* Removes dir/snapshot.<zxid> and its temporary names.  Returns 0 or a
 * negative errno (ENOENT counts as removed). */
int store_snapfile_remove(const char *dir, uint64_t zxid);

/* Removes every final snapshot file in dir for which keep(ctx, zxid)
 * returns false and, with tmp_too, every temporary one; *removed counts
 * them.  A missing dir holds nothing.  Returns 0 or a negative errno. */
int store_snapfile_sweep(const char *dir, bool tmp_too, bool (*keep)(void *ctx, uint64_t zxid),
                         void *ctx, unsigned *removed);

/* Gives dir `from`'s final snapshot file zxid a name in dir `to`: a hard
 * link (keep: a file is never written again once it has its final name) or
 * a rename (!keep), or across file systems a copy, fsync'd (the original
 * then unlinked unless keep).  Returns 0 or a negative errno. */
int store_snapfile_transfer(const char *from, const char *to, uint64_t zxid, bool keep);
/* The same for every final snapshot file in from; then to (and, moving,
 * from) fsync'd.  Returns 0 or a negative errno. */
int store_snapfile_transfer_all(const char *from, const char *to, bool keep);

#endif
