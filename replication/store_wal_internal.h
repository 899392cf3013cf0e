/*
 * store_wal_internal: what store_wal.c (the live log) and store_wal_format.c
 * (the segment format, the scan, file helpers, the offline walk) share.  Not
 * a public header: only those two include it.  The format is in store_wal.h.
 */
#ifndef ZN_STORE_WAL_INTERNAL_H
#define ZN_STORE_WAL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "store_wal.h"

#define WAL_SPARE "log.spare"
#define WAL_SPARE2 "log.spare.1"
#define WAL_SPARES 2 /* spare slots: log.spare, log.spare.1 */
#define WAL_SPARE_TMP "log.spare.tmp"
#define WAL_NEW_TMP "log.new.tmp"
#define WAL_RECYCLE_TMP "log.recycle.tmp" /* a compacted segment on its way to log.spare */
#define WAL_NAME_BYTES 21 /* "log." + 16 hex digits + NUL */
#define WAL_ZERO_CHUNK (1u << 20)

struct wal_segment {
    uint64_t first;      /* from its name: the zxid of its first record */
    uint64_t last;       /* of its last record */
    uint64_t last_batch; /* the group commit of its last record */
    uint64_t end;        /* offset after its last record (0: nothing written yet) */
    uint64_t size;       /* the file's size (preallocated) */
    uint64_t entries, bytes;
    /* the highest zxid ever written into the file in this life, a group
     * commit that failed or was truncated away included: what its next
     * life's names must be above (store_wal.h, recycling) */
    uint64_t high;
    /* its format: version 2 (keyed: records' crc over the secret first) or
     * 1 (read only, never appended to); hdr: its header's bytes */
    bool keyed;
    uint32_t hdr;
    uint64_t secret;  /* this life's, from getrandom (version 2) */
    uint32_t key;     /* wal_key(keyed, secret) */
    uint64_t earlier; /* the highest zxid of the file's earlier lives (0: none) */
};

struct wal {
    char *dir;
    int dirfd;
    uint64_t segment_bytes;
    /* Guards segs, n and counts against wal_files (a backup's copy). */
    pthread_mutex_t lock;
    struct wal_segment *segs;
    size_t n, cap;
    int fd; /* the last segment's, -1 when there is none */
    struct wal_counts counts;
    uint64_t writes, syncs;
    uint64_t truncations; /* that zeroed or unlinked records (wal_copy's check) */
    /* copies between wal_copy_begin and wal_copy_finish: their descriptors
     * read segments compaction drops, so none is recycled meanwhile */
    unsigned copying;
    /* the writer's scratch for one group commit */
    unsigned char *heads;
    size_t heads_cap;
    struct iovec *iov;
    size_t iov_cap;
    /* the spare segment's preparer */
    pthread_t prep;
    bool prep_started;
    pthread_mutex_t pm;
    pthread_cond_t pc;
    bool want, busy, stop, failed;
    /* Two spare slots (wal_spare_name): ready[i] when made; the earlier
     * lives of slot i's file hold zxids up to spare_high[i] (0: zeros).
     * The preparer fills slot job_slot: of WAL_RECYCLE_TMP (recycle; its
     * records go up to recycle_high), or of written zeros.  Two, so that a
     * segment compaction drops after the current one's zeros were made is
     * still kept: from then on each segment change finds a recycled one. */
    bool ready[WAL_SPARES];
    uint64_t spare_high[WAL_SPARES], recycle_high;
    int job_slot;
    bool recycle;
    uint64_t recycled, zeroed; /* spares made each way (tests, PROFILE) */
};

struct wal_rec {
    uint64_t zxid, batch;
    uint32_t len;
    uint64_t span; /* header + payload + padding */
};

enum wal_outcome { WAL_CLEAN, WAL_TORN, WAL_DAMAGED };

struct wal_scan {
    /* in */
    const unsigned char *map;
    uint64_t size, name_zxid, prev_zxid;
    bool last_segment;
    /* out */
    struct wal_segment seg;
    enum wal_outcome outcome;
    uint64_t bad_at, torn_to;
    const char *what;
    /* no memory for the look-ahead's prefix checksums: outcome is
     * WAL_DAMAGED (nothing dropped), and wal_open says ZN_NOMEMORY */
    bool nomem;
    /* the look-ahead's work (tests, PROFILE): headers that passed the
     * filter and were checksummed, and the bytes crc32c went over for them
     * (the prefix pass over the region included) */
    uint64_t ahead_candidates, ahead_crc_bytes;
};

/* The look-ahead checksums a candidate whose payload is at most this many
 * bytes directly; a longer one from the prefix checksums of the region
 * after the gap, kept every WAL_AHEAD_STRIDE bytes (region / 16 bytes of
 * memory), with at most 2 * WAL_AHEAD_STRIDE bytes of crc32c past them.
 * So one candidate costs at most WAL_AHEAD_CANDIDATE_BYTES of crc32c plus
 * two multiplications mod P, whatever length it claims. */
#define WAL_AHEAD_DIRECT_BYTES 256u
#define WAL_AHEAD_STRIDE 64u
#define WAL_AHEAD_CANDIDATE_BYTES (20u + WAL_AHEAD_DIRECT_BYTES)

extern const unsigned char wal_zeros[8];

static inline uint64_t wal_align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

void wal_name(char out[WAL_NAME_BYTES], uint64_t first);
/* Parses "log.<16 hex>"; false for anything else. */
bool wal_parse_name(const char *name, uint64_t *first);
/* A segment's key: crc32c of its secret (8 bytes, big-endian) when keyed
 * (version 2), 0 when not (version 1); never 0 for a secret written
 * (wal_new_segment draws again). */
uint32_t wal_key(bool keyed, uint64_t secret);
/* A record's crc32c: over the secret (its key continued), then the
 * record's first 20 bytes, then the payload; the secret's bytes cost no
 * instruction per record. */
uint32_t wal_record_crc(uint32_t key, const unsigned char head20[20], const void *data, uint32_t len);
/* Whether p holds a whole valid record (its crc checked with the segment's
 * key), described in *r. */
bool wal_record_at(const unsigned char *p, uint64_t avail, uint32_t key, struct wal_rec *r);
void wal_record_head(unsigned char out[WAL_RECORD_HEADER_BYTES], uint64_t zxid, uint64_t batch,
                     const void *data, uint32_t len, bool corrupt, uint32_t key);
/* A version 2 segment header: first (the name's zxid, or a spare's high),
 * size, the life's secret (0 in a spare's) and its earlier lives' high. */
void wal_put_header(unsigned char out[WAL_SEGMENT_HEADER_BYTES], uint64_t first, uint64_t size,
                    uint64_t secret, uint64_t earlier);
/* Walks one segment's records and decides what its first invalid place is
 * (store_wal.h's rules); fn (optional) gets the records from..to. */
void wal_scan_segment(struct wal_scan *sc, uint64_t from, uint64_t to, wal_record_fn fn, void *ctx,
                      int *fn_rc);
int wal_write_zeros(int fd, uint64_t off, uint64_t len);
/* dir/name as bytes of written zeros, fdatasync'd, out of the page cache;
 * ECANCELED (and no file) when *stop (if given) turns true meanwhile. */
int wal_zero_file(int dirfd, const char *name, uint64_t bytes, const bool *stop);
const char *wal_spare_name(int slot);
/* Whether the 40 bytes at the head of a spare are one: zeros (*high 0) or
 * the header a recycled segment gets (WAL_MAGIC, WAL_VERSION, the highest
 * zxid of its earlier lives, its size, secret 0, that high again). */
bool wal_spare_header(const unsigned char head[WAL_SEGMENT_HEADER_BYTES], uint64_t size, uint64_t *high);
/* Maps name read-only (*map NULL for an empty file); *fd_out stays open. */
int wal_map(int dirfd, const char *name, int *fd_out, const unsigned char **map, uint64_t *size,
            bool writable);
int wal_errno_code(int e);
/* The sorted first zxids of dir's segments (malloc'd); with remove_leftovers
 * a spare or half-made file is unlinked. */
int wal_list(int dirfd, uint64_t **out, size_t *count, bool remove_leftovers);
/* Logs the one line of a damaged segment and returns ZN_CORRUPT. */
int wal_refuse(const char *dir, const char *name, uint64_t offset, const char *what);

#endif
