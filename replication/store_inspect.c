/*
 * store_inspect: the offline walk of a store (store_inspect.h).  It reads
 * the records through the same decoders recovery uses (store_format.c, and
 * store_snapfile.c for the snapshot files), so a record it calls intact is
 * one recovery would accept.
 */
#include "store_inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

struct walk {
    const char *snap_dir;
    char file[4096];     /* the snapshot file of the record at hand */
    char problem[4400];  /* what is wrong with it */
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    uint64_t from, to;
    bool blobs;
    store_record_fn fn;
    void *ctx;
};

/* Opens db in a fresh read transaction; *found false when the store never
 * created it (an empty store). */
static int walk_begin(struct walk *w, const char *db, bool *found)
{
    *found = false;
    int rc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, &w->txn);
    if (rc)
        return store_error(rc, "beginning a read transaction");
    MDB_dbi dbi;
    rc = mdb_dbi_open(w->txn, db, 0, &dbi);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0)
        rc = mdb_cursor_open(w->txn, dbi, &w->cur);
    if (rc)
        return store_error(rc, "opening a database of the store");
    *found = true;
    return 0;
}

static void walk_end(struct walk *w)
{
    if (w->cur)
        mdb_cursor_close(w->cur);
    if (w->txn)
        mdb_txn_abort(w->txn);
    w->cur = NULL;
    w->txn = NULL;
}

static int walk_meta(struct walk *w)
{
    bool found;
    int rc = walk_begin(w, "meta", &found);
    MDB_val key, value;
    for (int get = found && rc == 0 ? mdb_cursor_get(w->cur, &key, &value, MDB_FIRST) : MDB_NOTFOUND;
         get == 0 && rc == 0; get = mdb_cursor_get(w->cur, &key, &value, MDB_NEXT)) {
        char name[ZN_STORE_META_KEY_MAX + 1];
        size_t n = key.mv_size < sizeof name - 1 ? key.mv_size : sizeof name - 1;
        memcpy(name, key.mv_data, n);
        name[n] = '\0';
        struct store_record r = {.kind = STORE_RECORD_META, .name = name};
        if (value.mv_size != STORE_META_VALUE_BYTES ||
            store_get_be32(value.mv_data) !=
                crc32c_extend(crc32c(key.mv_data, key.mv_size), (unsigned char *)value.mv_data + 4, 8)) {
            r.state = STORE_RECORD_CORRUPT;
            r.problem = "fails its checksum";
        } else {
            r.value = store_get_be64((unsigned char *)value.mv_data + 4);
        }
        rc = w->fn(w->ctx, &r);
    }
    walk_end(w);
    return rc;
}

/* Reads the chunks of the snapshot whose header the cursor is on, checking
 * their places and the blob's checksum; fills r's state and, when asked,
 * its data (malloc'd into *blob). */
static int snapshot_body(struct walk *w, struct store_record *r, uint32_t blob_crc, void **blob)
{
    unsigned char zxid_be[8];
    store_put_be64(zxid_be, r->zxid);
    uint32_t crc = crc32c(zxid_be, 8);
    unsigned char *buffer = w->blobs && r->len ? malloc(r->len) : NULL;
    if (w->blobs && r->len && !buffer)
        return ZN_NOMEMORY;
    uint64_t copied = 0;
    MDB_val key, value;
    for (uint32_t i = 1; i <= r->chunks; i++) {
        int rc = mdb_cursor_get(w->cur, &key, &value, MDB_NEXT);
        if (rc || key.mv_size != STORE_SNAP_KEY_BYTES || store_get_be64(key.mv_data) != r->zxid ||
            store_get_be32((unsigned char *)key.mv_data + 8) != i || value.mv_size > r->len - copied) {
            r->state = STORE_RECORD_CORRUPT;
            r->problem = "a chunk is missing or out of place";
            free(buffer);
            return 0;
        }
        crc = crc32c_extend(crc, value.mv_data, value.mv_size);
        if (buffer)
            memcpy(buffer + copied, value.mv_data, value.mv_size);
        copied += value.mv_size;
    }
    if (copied != r->len || crc != blob_crc) {
        r->state = STORE_RECORD_CORRUPT;
        r->problem = "fails its checksum";
        free(buffer);
        return 0;
    }
    *blob = buffer;
    r->data = buffer;
    return 0;
}

/* Checks the file a format 3 record names (all of it); fills r's state
 * and, when asked, its data (the file mapped into *map). */
static int snapshot_file(struct walk *w, struct store_record *r, uint64_t len, uint32_t crc,
                         void **map)
{
    r->len = len;
    store_snapfile_path(w->file, sizeof w->file, w->snap_dir, r->zxid, STORE_SNAPFILE_FINAL);
    r->file = w->file;
    void *p;
    size_t map_len;
    struct store_snapfile_facts facts;
    int rc = store_snapfile_map(w->snap_dir, r->zxid, len, crc, &p, &map_len, &facts);
    if (rc == -ENOENT) {
        snprintf(facts.problem, sizeof facts.problem, "it is missing");
        facts.offset = 0;
        rc = 1;
    }
    if (rc == 1) {
        r->state = STORE_RECORD_CORRUPT;
        snprintf(w->problem, sizeof w->problem, "its file %s is damaged at offset %" PRIu64 ": %s",
                 w->file, facts.offset, facts.problem);
        r->problem = w->problem;
        return 0;
    }
    if (rc < 0) {
        ZN_ERROR("store: cannot read %s: %s", w->file, strerror(-rc));
        return rc == -ENOMEM ? ZN_NOMEMORY : ZN_IO;
    }
    if (!w->blobs) {
        munmap(p, map_len);
        return 0;
    }
    *map = p; /* (unmapped by the caller: header + len bytes) */
    r->data = (unsigned char *)p + STORE_SNAPFILE_HEADER_BYTES;
    return 0;
}

static int walk_snapshots(struct walk *w)
{
    bool found;
    int rc = walk_begin(w, "snap", &found);
    for (uint64_t next = w->from; found && rc == 0;) {
        unsigned char key_bytes[STORE_SNAP_KEY_BYTES];
        store_snap_key(key_bytes, next, 0);
        MDB_val key = {STORE_SNAP_KEY_BYTES, key_bytes}, value;
        int get = mdb_cursor_get(w->cur, &key, &value, MDB_SET_RANGE);
        if (get == MDB_NOTFOUND)
            break;
        if (get) {
            rc = store_error(get, "reading the snapshots");
            break;
        }
        struct store_record r = {.kind = STORE_RECORD_SNAPSHOT};
        void *blob = NULL;
        if (key.mv_size != STORE_SNAP_KEY_BYTES) {
            r.state = STORE_RECORD_CORRUPT;
            r.problem = "its key is not a snapshot key";
            r.zxid = next;
        } else {
            r.zxid = store_get_be64(key.mv_data);
            if (r.zxid > w->to)
                break;
            uint64_t header_zxid, blob_len;
            uint32_t blob_crc;
            if (store_get_be32((unsigned char *)key.mv_data + 8) != 0) {
                r.state = STORE_RECORD_INCOMPLETE;
                r.problem = "it has no header: its write never finished (recovery drops it)";
            } else if (store_snap_record_decode(&value, &header_zxid, &blob_len, &blob_crc) == 0 &&
                       header_zxid == r.zxid) {
                rc = snapshot_file(w, &r, blob_len, blob_crc, &blob);
            } else if (store_snap_header_decode(&value, &header_zxid, &blob_len, &r.chunks,
                                                &blob_crc) != 0 || header_zxid != r.zxid) {
                r.state = STORE_RECORD_CORRUPT;
                r.problem = "its header fails its checksum";
            } else {
                r.len = blob_len;
                rc = snapshot_body(w, &r, blob_crc, &blob);
            }
        }
        if (rc == 0)
            rc = w->fn(w->ctx, &r);
        if (r.file && blob)
            munmap(blob, (size_t)r.len + STORE_SNAPFILE_HEADER_BYTES);
        else
            free(blob);
        if (r.zxid == UINT64_MAX)
            break;
        next = r.zxid + 1;
    }
    walk_end(w);
    return rc;
}

static int walk_log(struct walk *w)
{
    bool found;
    int rc = walk_begin(w, "log", &found);
    unsigned char from[8];
    store_put_be64(from, w->from);
    MDB_val key = {8, from}, value;
    int get = found && rc == 0 ? mdb_cursor_get(w->cur, &key, &value, MDB_SET_RANGE) : MDB_NOTFOUND;
    for (; get == 0 && rc == 0; get = mdb_cursor_get(w->cur, &key, &value, MDB_NEXT)) {
        struct store_record r = {.kind = STORE_RECORD_LOG};
        size_t len;
        if (key.mv_size != 8) {
            r.state = STORE_RECORD_CORRUPT;
            r.problem = "its key is not a zxid";
        } else if ((r.zxid = store_get_be64(key.mv_data)) > w->to) {
            break;
        } else if (store_log_decode(&key, &value, &r.zxid, &r.data, &len) != 0) {
            r.state = STORE_RECORD_CORRUPT;
            r.problem = "fails its checksum";
            r.len = value.mv_size >= STORE_LOG_HEADER_BYTES ? value.mv_size - STORE_LOG_HEADER_BYTES : 0;
        } else {
            r.len = len;
        }
        rc = w->fn(w->ctx, &r);
    }
    if (rc == 0 && get != 0 && get != MDB_NOTFOUND)
        rc = store_error(get, "reading the log");
    walk_end(w);
    return rc;
}

/* ---- the log's segment files (store_wal.c) ---- */

struct walk_segments {
    struct walk *w;
    uint64_t last; /* the last intact record's zxid */
    char problem[320];
};

static int segment_record(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct walk_segments *ws = ctx;
    ws->last = zxid;
    struct store_record r = {.kind = STORE_RECORD_LOG, .zxid = zxid, .data = data, .len = len};
    return ws->w->fn(ws->w->ctx, &r);
}

/* A place in a segment that is not a valid record: a torn tail recovery
 * drops (INCOMPLETE) or damage it refuses (CORRUPT), shown whatever the
 * filters, with the file and offset. */
static int segment_problem(void *ctx, const char *file, uint64_t offset, uint64_t zxid,
                           const char *what, bool torn)
{
    struct walk_segments *ws = ctx;
    snprintf(ws->problem, sizeof ws->problem, "%s at offset %" PRIu64 ", after zxid=0x%" PRIx64 ": %s (%s)",
             file, offset, ws->last, what,
             torn ? "a torn tail: recovery drops it" : "recovery refuses the store");
    struct store_record r = {.kind = STORE_RECORD_LOG,
                             .state = torn ? STORE_RECORD_INCOMPLETE : STORE_RECORD_CORRUPT,
                             .problem = ws->problem,
                             .zxid = zxid ? zxid : ws->last + 1};
    return ws->w->fn(ws->w->ctx, &r);
}

int store_inspect(const char *dir, uint64_t from_zxid, uint64_t to_zxid, bool snapshot_blobs,
                  store_record_fn fn, void *ctx)
{
    return store_inspect_dirs(dir, dir, from_zxid, to_zxid, snapshot_blobs, fn, ctx);
}

int store_inspect_dirs(const char *dir, const char *snap_dir, uint64_t from_zxid, uint64_t to_zxid,
                       bool snapshot_blobs, store_record_fn fn, void *ctx)
{
    struct store_file_facts facts;
    int rc = store_file_check(dir, &facts);
    if (rc)
        return rc;
    if (!facts.exists)
        return ZN_NONODE;
    struct walk w = {.snap_dir = snap_dir, .from = from_zxid, .to = to_zxid,
                     .blobs = snapshot_blobs, .fn = fn, .ctx = ctx};
    if ((rc = mdb_env_create(&w.env)))
        return store_error(rc, "creating an LMDB environment");
    rc = mdb_env_set_maxdbs(w.env, 3);
    if (rc == 0)
        rc = mdb_env_open(w.env, dir, MDB_RDONLY | MDB_NOTLS, 0644);
    if (rc) {
        mdb_env_close(w.env);
        return store_error(rc, "opening the store read-only");
    }
    rc = walk_meta(&w);
    if (rc == 0)
        rc = walk_snapshots(&w);
    if (rc == 0)
        rc = walk_log(&w); /* a store written before the segment files, not yet migrated */
    mdb_env_close(w.env);
    if (rc == 0) {
        struct walk_segments ws = {.w = &w};
        rc = wal_inspect(dir, from_zxid, to_zxid, segment_record, segment_problem, &ws);
    }
    return rc;
}
