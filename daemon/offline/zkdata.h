/*
 * zkdata: Apache ZooKeeper's data directory read as ZooKeeper writes it
 * (version-2/snapshot.<zxid> and version-2/log.<zxid>, FileSnap and
 * FileTxnLog, jute), the first step of importing a ZooKeeper ensemble's data
 * (issue 16).  Snapshots are read plain or compressed as ZooKeeper's
 * SnapStream writes them (snapshot.<zxid>.gz: gzip; snapshot.<zxid>.snappy:
 * snappy-java's stream), the kind told by the name as ZooKeeper tells it.
 *
 * A snapshot: header ("ZKSN", version 2, dbid), the sessions (id,
 * timeout), the ACL cache (index -> ACL list), the nodes in preorder (path,
 * data, ACL index, StatPersisted) up to the path "/", ZooKeeper 3.6+'s
 * zxid digest (zxid, version, digest) when it wrote one, then the Adler32 of
 * all that and the path "/".  A log: header ("ZKLG", version 2, dbid), then
 * entries (Adler32, the transaction's bytes as a jute buffer, the byte 'B')
 * until the zeros ZooKeeper preallocates.  An entry cut short at the end of
 * the last log (a torn write) ends that log, as ZooKeeper reads it; one that
 * fails its checksum anywhere else is damage.
 */
#ifndef ZNODED_ZKDATA_H
#define ZNODED_ZKDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jute.h"

#define ZKDATA_SNAPSHOT_MAGIC 0x5a4b534e /* "ZKSN" */
#define ZKDATA_LOG_MAGIC 0x5a4b4c47      /* "ZKLG" */
#define ZKDATA_VERSION 2
/* A snapshot that ends before its end marker (ZooKeeper was stopped while
 * writing it; ZooKeeper's isValidSnapshot skips it): positive, unlike the
 * ZN_ codes. */
#define ZKDATA_CUT_SHORT 1
/* Most bytes a compressed snapshot may inflate to (the store's limit). */
#define ZKDATA_INFLATED_MAX_BYTES (8ull << 30)
/* Most snapshot and log files of one directory read. */
#define ZKDATA_MAX_FILES 4096

/* ReferenceCountedACLCache's index of world:anyone with every permission. */
#define ZKDATA_OPEN_ACL_INDEX (-1L)

struct zkdata_stat {           /* ZooKeeper's StatPersisted */
    int64_t czxid, mzxid, ctime, mtime;
    int32_t version, cversion, aversion;
    int64_t ephemeral_owner, pzxid;
};

/* What a snapshot or log reader hands over; everything is borrowed for the
 * call (it points into the file or the reader's arena).  A non-zero return
 * stops the read, and zkdata_read_* returns it. */
struct zkdata_visitor {
    int (*session)(void *ctx, int64_t id, int32_t timeout_ms);
    int (*acl)(void *ctx, int64_t index, const struct zn_acl_vec *acl);
    int (*node)(void *ctx, const char *path, struct jute_buf data, int64_t acl_index,
                const struct zkdata_stat *stat);
    /* one log entry: its header and the bytes of its record (after the header) */
    int (*txn)(void *ctx, int64_t session, int32_t cxid, int64_t zxid, int64_t time_ms,
               int32_t type, const uint8_t *record, size_t record_len);
    void *ctx;
};

/* What went wrong, for the one line the operator sees. */
struct zkdata_error {
    char what[256];
};

/*
 * Reads the snapshot at path, checking its header and Adler32 checksum
 * before anything is handed over.  Sets *digest_zxid (0 when it has no
 * digest).  Returns 0, ZKDATA_CUT_SHORT (it ends before its end marker, or
 * its compressed stream ends early), ZN_CORRUPT (err says what: not a
 * snapshot, a wrong checksum, a malformed record or compressed stream),
 * ZN_TOOBIG (inflates past ZKDATA_INFLATED_MAX_BYTES), ZN_IO, ZN_NOMEMORY,
 * or a visitor's non-zero return.
 */
int zkdata_read_snapshot(const char *path, const struct zkdata_visitor *v, int64_t *digest_zxid,
                         struct zkdata_error *err);

/*
 * Reads the log at path, entry by entry.  last says whether it is the newest
 * log: only there is an entry cut short at the end read as the end (*torn
 * true, as ZooKeeper does after a crash); anywhere else it is damage.
 * Returns as zkdata_read_snapshot.
 */
int zkdata_read_log(const char *path, bool last, const struct zkdata_visitor *v, bool *torn,
                    struct zkdata_error *err);

/* One file of a version-2 directory: snapshot.<zxid>[.gz|.snappy] or log.<zxid>. */
struct zkdata_file {
    uint64_t zxid;
    bool snapshot;
    char name[256];
};

/*
 * Lists the snapshots and logs in dir (a version-2 directory) into files
 * (cap entries), sorted by zxid, a snapshot before a log of the same zxid;
 * other names are left out.  Returns the count, or -1 with errno set
 * (E2BIG: more than cap).
 */
long zkdata_list(const char *dir, struct zkdata_file *files, size_t cap);

/* Adler32 as java.util.zip.Adler32 computes it. */
uint32_t zkdata_adler32(uint32_t adler, const uint8_t *data, size_t len);

#endif
