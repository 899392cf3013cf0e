/*
 * store: the public API of the LMDB store and its loop side.  Owns opening
 * and closing the environment, the append queue and its bounds, the handing
 * of synchronous operations to the writer thread, and the delivery of batch
 * results (on_durable) on the loop thread through a uv_async handle.  The
 * writer thread lives in store_writer.c (with store_txn.c, store_records.c
 * and store_snapwrite.c), recovery and reads in store_recover.c, record
 * layouts in store_format.c; the design notes and invariants are in
 * store_internal.h.
 *
 * Life of an appended entry:
 *   store_append (loop)  -> queue            [counted in queued_*]
 *   writer takes queue   -> one LMDB txn per run of entries, commit = fsync
 *   writer               -> completed list (the run's last item carries the
 *                           result), uv_async_send
 *   store_on_async (loop)-> on_durable(last_zxid, status), uncounted, freed
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "log.h"
#include "store_internal.h"
#include "store_snapfile.h"
#include "znode/errors.h"

int store_error(int mdb_rc, const char *what)
{
    int code;
    switch (mdb_rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
        code = ZN_NOSPACE;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        code = ZN_CORRUPT;
        break;
    case ENOMEM:
        code = ZN_NOMEMORY;
        break;
    default:
        code = ZN_IO;
        break;
    }
    ZN_ERROR("store: %s failed: %s (lmdb_rc=%d) error=%s", what, mdb_strerror(mdb_rc), mdb_rc,
             zn_errname(code));
    return code;
}

static void store_queue_push(struct store_queue *q, struct store_item *item)
{
    item->next = NULL;
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
}

static int store_options_resolve(struct store_options *o, const struct store_options *in)
{
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof *o);
    if (!o->map_bytes)
        o->map_bytes = ZN_STORE_DEFAULT_MAP_BYTES;
    if (!o->queue_max_bytes)
        o->queue_max_bytes = ZN_STORE_QUEUE_MAX_BYTES;
    if (!o->queue_max_entries)
        o->queue_max_entries = ZN_STORE_QUEUE_MAX_ENTRIES;
    if (!o->batch_max_bytes)
        o->batch_max_bytes = ZN_STORE_BATCH_MAX_BYTES;
    if (!o->batch_max_entries)
        o->batch_max_entries = ZN_STORE_BATCH_MAX_ENTRIES;
    if (!o->snapshots_kept)
        o->snapshots_kept = ZN_STORE_SNAPSHOTS_KEPT;
    if (!o->snapshot_write_bytes)
        o->snapshot_write_bytes = STORE_SNAPFILE_CHUNK_BYTES;
    if (!o->segment_bytes)
        o->segment_bytes = ZN_STORE_SEGMENT_BYTES;
    if (o->snapshots_kept < 2 || o->segment_bytes < ZN_STORE_SEGMENT_MIN_BYTES ||
        o->snapshots_kept > ZN_STORE_SNAPSHOTS_KEPT_MAX ||
        (o->purge_on_call != 0 && o->purge_on_call != 1)) {
        ZN_ERROR("store: bad options snapshots_kept=%u (2..%u) segment_bytes=%" PRIu64
                 " purge_on_call=%d",
                 o->snapshots_kept, ZN_STORE_SNAPSHOTS_KEPT_MAX, o->segment_bytes,
                 o->purge_on_call);
        return ZN_BADARGUMENTS;
    }
    return 0;
}

/* LMDB's own consistency checks: it aborts right after this (the crash
 * handler then logs the signal); the line says which check failed. */
static void store_lmdb_assert(MDB_env *env, const char *msg)
{
    (void)env;
    ZN_ERROR("store: LMDB assertion failed: %s; this process stops", msg);
}

/* Opens the environment and its three databases; on error closes it. */
static int store_env_open(struct store *s, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        ZN_ERROR("store: cannot create dir=%s: %s", dir, strerror(errno));
        return errno == ENOSPC ? ZN_NOSPACE : ZN_IO;
    }
    /* Before anything is mapped: a file cut short raises SIGBUS on the first
     * read of a missing page, or opens without its last pages. */
    struct store_file_facts facts;
    int rc = store_file_check(dir, &facts);
    if (rc)
        return rc;
    rc = mdb_env_create(&s->env);
    if (rc)
        return store_error(rc, "mdb_env_create");
    (void)mdb_env_set_assert(s->env, store_lmdb_assert);
    if ((rc = mdb_env_set_maxdbs(s->env, 3)) || (rc = mdb_env_set_mapsize(s->env, s->opts.map_bytes)))
        goto fail;
    /* MDB_NOTLS: read transactions are opened on the loop thread and must not
     * be tied to it through thread-local reader slots. */
    if ((rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0644)))
        goto fail;
    /* LMDB must have opened the commit that was checked (another process
     * writing meanwhile would be the only way it did not). */
    MDB_envinfo opened;
    MDB_stat stat;
    mdb_env_info(s->env, &opened);
    mdb_env_stat(s->env, &stat);
    if (facts.exists && (opened.me_last_pgno != facts.last_pgno || stat.ms_psize != facts.page_bytes)) {
        rc = store_refuse_damaged(dir,
                                  "LMDB opened last page %zu (page size %u), the check read last "
                                  "page %" PRIu64 " (page size %u)",
                                  opened.me_last_pgno, stat.ms_psize, facts.last_pgno,
                                  facts.page_bytes);
        mdb_env_close(s->env);
        s->env = NULL;
        return rc;
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        goto fail;
    if ((rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->dbi_log)) ||
        (rc = mdb_dbi_open(txn, "snap", MDB_CREATE, &s->dbi_snap)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta))) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)))
        goto fail;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_bytes = info.me_mapsize;
    return 0;
fail:
    rc = store_error(rc, "opening the LMDB environment");
    mdb_env_close(s->env);
    s->env = NULL;
    return rc;
}

static void store_on_async(uv_async_t *handle);

int store_open(struct store **out, uv_loop_t *loop, const char *dir,
               const struct store_options *opts, store_durable_fn on_durable, void *ctx)
{
    ZN_ASSERT(out && loop && dir && on_durable);
    *out = NULL;
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return ZN_NOMEMORY;
    int rc = store_options_resolve(&s->opts, opts);
    if (rc) {
        free(s);
        return rc;
    }
    s->loop = loop;
    s->on_durable = on_durable;
    s->ctx = ctx;
    s->pid = getpid();
    /* Snapshot files: in opts.snap_dir (znoded's dataDir), else beside LMDB. */
    s->snap_dir = strdup(opts && opts->snap_dir ? opts->snap_dir : dir);
    if (!s->snap_dir) {
        free(s);
        return ZN_NOMEMORY;
    }
    s->opts.snap_dir = s->snap_dir;
    if (mkdir(s->snap_dir, 0755) != 0 && errno != EEXIST) {
        ZN_ERROR("store: cannot create the snapshot dir=%s: %s", s->snap_dir, strerror(errno));
        rc = errno == ENOSPC ? ZN_NOSPACE : ZN_IO;
        free(s->snap_dir);
        free(s);
        return rc;
    }
    zn_fifo_init(&s->entries, 0);
    if ((rc = store_env_open(s, dir))) {
        free(s->snap_dir);
        free(s);
        return rc;
    }
    /* (Before the scan, which used to come first: the migration of
     * snapshots out of LMDB writes through store_write_txn, which takes
     * them; no writer thread exists yet.) */
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    /* The log's segment files (store_wal.c), a log still in LMDB moved into
     * them, and the snapshot files, before the counters are read. */
    if ((rc = store_wal_open(s, dir)) || (rc = store_snapfiles_open(s)) || (rc = store_scan(s)))
        goto fail_thread;
    s->stats.map_bytes = s->map_bytes;
    if ((rc = pthread_create(&s->thread, NULL, store_writer_main, s))) {
        ZN_ERROR("store: cannot start the writer thread: %s", strerror(rc));
        rc = ZN_IO;
        goto fail_thread;
    }
    if ((rc = uv_async_init(loop, &s->async, store_on_async))) {
        ZN_ERROR("store: uv_async_init: %s", uv_strerror(rc));
        pthread_mutex_lock(&s->mutex);
        s->stopping = true;
        pthread_cond_signal(&s->work_cond);
        pthread_mutex_unlock(&s->mutex);
        pthread_join(s->thread, NULL);
        rc = ZN_IO;
        goto fail_thread;
    }
    s->async.data = s;
    ZN_INFO("store: opened dir=%s snap_dir=%s last_zxid=0x%" PRIx64 " log_entries=%" PRIu64
            " snapshots=%" PRIu64 " map_bytes=%" PRIu64,
            dir, s->snap_dir, s->last_zxid, s->stats.log_entries, s->stats.snapshot_count,
            s->map_bytes);
    *out = s;
    return 0;
fail_thread:
    pthread_cond_destroy(&s->done_cond);
    pthread_cond_destroy(&s->work_cond);
    pthread_mutex_destroy(&s->mutex);
    wal_close(s->wal);
    mdb_env_close(s->env);
    free(s->snap_dir);
    free(s);
    return rc;
}

/*
 * Delivers every completed batch, in order (loop thread).  One batch is taken
 * off the completed list at a time, its counts settled, and only then is its
 * callback run: on_durable may call back into the store (a synchronous
 * truncation checks the queue invariants), and every batch not yet delivered
 * must still be on the list and counted then.
 */
static void store_deliver(struct store *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mutex);
        struct store_item *item = s->completed.head;
        if (!item) {
            pthread_mutex_unlock(&s->mutex);
            return;
        }
        s->completed.head = item->next;
        if (!s->completed.head)
            s->completed.tail = NULL;
        item->next = NULL;
        ZN_ASSERT(item->op == STORE_OP_ENTRY);
        ZN_ASSERT(s->stats.queued_entries >= item->batch_entries);
        ZN_ASSERT(s->stats.queued_bytes >= item->batch_bytes);
        s->stats.queued_entries -= item->batch_entries;
        s->stats.queued_bytes -= item->batch_bytes;
        if (item->status == 0)
            s->stats.durable_zxid = item->zxid;
        pthread_mutex_unlock(&s->mutex);
        s->on_durable(s->ctx, item->zxid, item->status);
        zn_fifo_free(item);
    }
}

static void store_on_async(uv_async_t *handle)
{
    store_deliver(handle->data);
}

int store_append(struct store *s, uint64_t zxid, const void *data, size_t len)
{
    ZN_ASSERT(s && s->recovered && !s->closing);
    ZN_ASSERT(zxid > s->last_zxid);
    ZN_ASSERT(data || len == 0);
    if (len == 0 || len > ZN_STORE_ENTRY_MAX_BYTES)
        return len == 0 ? ZN_BADARGUMENTS : ZN_TOOBIG;
    pthread_mutex_lock(&s->mutex);
    bool full = s->stats.queued_entries + 1 > s->opts.queue_max_entries ||
                s->stats.queued_bytes + len > s->opts.queue_max_bytes;
    pthread_mutex_unlock(&s->mutex);
    if (full)
        return ZN_THROTTLEDOP;
    struct store_item *item = zn_fifo_alloc(&s->entries, sizeof *item + len);
    if (!item)
        return ZN_NOMEMORY;
    memset(item, 0, sizeof *item);
    item->op = STORE_OP_ENTRY;
    item->zxid = zxid;
    item->len = len;
    memcpy(item->data, data, len);
    pthread_mutex_lock(&s->mutex);
    s->stats.queued_entries++;
    s->stats.queued_bytes += len;
    store_queue_push(&s->queue, item);
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mutex);
    s->last_zxid = zxid;
    return 0;
}

/* Hands an asynchronous snapshot or purge to the writer, in order with the
 * items queued before it; a snapshot's zxid becomes the newest queued. */
static void store_queue_item(struct store *s, struct store_item *item)
{
    /* (read before the push: once unlocked, the writer may have freed item) */
    bool snapshot = item->op == STORE_OP_SNAPSHOT;
    uint64_t zxid = item->zxid;
    pthread_mutex_lock(&s->mutex);
    store_queue_push(&s->queue, item);
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mutex);
    if (snapshot)
        s->last_snapshot_zxid_queued = zxid;
}

int store_snapshot(struct store *s, uint64_t zxid, void *blob, size_t len)
{
    return store_snapshot_release(s, zxid, blob, len, NULL);
}

int store_snapshot_release(struct store *s, uint64_t zxid, void *blob, size_t len,
                           store_blob_release_fn release)
{
    ZN_ASSERT(s && s->recovered && !s->closing);
    ZN_ASSERT(zxid > s->last_snapshot_zxid_queued);
    ZN_ASSERT(blob || len == 0);
    if (len > ZN_STORE_SNAPSHOT_MAX_BYTES)
        return ZN_TOOBIG;
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_SNAPSHOT;
    item->zxid = zxid;
    item->install = zxid > s->last_zxid; /* a snapshot of our own tree is of logged txns */
    item->blob = blob;
    item->release = release;
    item->len = len;
    store_queue_item(s, item);
    if (zxid > s->last_zxid)
        s->last_zxid = zxid;
    return 0;
}

/* A snapshot file snapshot.<zxid>.tmp to record: our own (a child's), or a
 * leader's received whole (an install when the log does not reach it). */
static int queue_snapshot_file(struct store *s, uint64_t zxid)
{
    ZN_ASSERT(s && s->recovered && !s->closing);
    ZN_ASSERT(zxid > s->last_snapshot_zxid_queued);
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_SNAPSHOT;
    item->zxid = zxid;
    item->from_file = true;
    item->install = zxid > s->last_zxid; /* as store_snapshot_release decides it */
    store_queue_item(s, item);
    if (zxid > s->last_zxid)
        s->last_zxid = zxid;
    return 0;
}

int store_snapshot_file(struct store *s, uint64_t zxid)
{
    ZN_ASSERT(zxid <= s->last_zxid); /* of this member's own tree */
    return queue_snapshot_file(s, zxid);
}

int store_install_snapshot_file(struct store *s, uint64_t zxid)
{
    return queue_snapshot_file(s, zxid);
}

int store_purge(struct store *s)
{
    ZN_ASSERT(s && s->recovered && !s->closing);
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_PURGE;
    store_queue_item(s, item);
    return 0;
}

const char *store_snapshot_dir(const struct store *s)
{
    return s->snap_dir;
}

void store_check_invariants(struct store *s)
{
    pthread_mutex_lock(&s->mutex);
    uint64_t entries = 0, bytes = 0, previous = 0;
    for (const struct store_item *item = s->queue.head; item; item = item->next) {
        if (item->op != STORE_OP_ENTRY)
            continue;
        ZN_ASSERT(entries == 0 || item->zxid > previous); /* invariant 1 */
        previous = item->zxid;
        entries++;
        bytes += item->len;
    }
    for (const struct store_item *item = s->completed.head; item; item = item->next) {
        ZN_ASSERT(item->op == STORE_OP_ENTRY && item->batch_entries > 0);
        entries += item->batch_entries;
        bytes += item->batch_bytes;
    }
    /* invariant 2: what is visible never exceeds the count; with the writer
     * idle, nothing is invisible */
    ZN_ASSERT(entries <= s->stats.queued_entries && bytes <= s->stats.queued_bytes);
    if (!s->writer_busy)
        ZN_ASSERT(entries == s->stats.queued_entries && bytes == s->stats.queued_bytes);
    ZN_ASSERT(s->stats.queued_entries <= s->opts.queue_max_entries);
    pthread_mutex_unlock(&s->mutex);
}

int store_run_sync(struct store *s, struct store_item *item, struct store_waiter *waiter)
{
    ZN_ASSERT(getpid() == s->pid);
    memset(waiter, 0, sizeof *waiter);
    item->waiter = waiter;
    pthread_mutex_lock(&s->mutex);
    store_queue_push(&s->queue, item);
    pthread_cond_signal(&s->work_cond);
    while (!waiter->done)
        pthread_cond_wait(&s->done_cond, &s->mutex);
    pthread_mutex_unlock(&s->mutex);
    store_check_invariants(s);
    return waiter->status;
}

int store_truncate_after(struct store *s, uint64_t zxid)
{
    ZN_ASSERT(s && !s->closing);
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_TRUNCATE;
    item->zxid = zxid;
    struct store_waiter waiter;
    int rc = store_run_sync(s, item, &waiter);
    if (rc == 0) {
        ZN_ASSERT(waiter.zxid <= zxid);
        s->last_zxid = waiter.zxid;
        if (s->last_snapshot_zxid_queued > zxid)
            s->last_snapshot_zxid_queued = waiter.zxid;
    }
    return rc;
}

/* User keys may not start with '.', which marks the store's own keys. */
static bool store_meta_key_valid(const char *key, bool internal)
{
    if (!key)
        return false;
    size_t n = strnlen(key, ZN_STORE_META_KEY_MAX + 1);
    return n > 0 && n <= ZN_STORE_META_KEY_MAX && (internal || key[0] != '.');
}

int store_meta_put(struct store *s, const char *key, uint64_t value)
{
    ZN_ASSERT(s && !s->closing);
    if (!store_meta_key_valid(key, false))
        return ZN_BADARGUMENTS;
    struct store_item *item = calloc(1, sizeof *item);
    if (!item)
        return ZN_NOMEMORY;
    item->op = STORE_OP_META;
    strcpy(item->meta_key, key);
    item->meta_value = value;
    struct store_waiter waiter;
    return store_run_sync(s, item, &waiter);
}

int store_meta_get(struct store *s, const char *key, uint64_t *value)
{
    ZN_ASSERT(s && value && !s->closing);
    if (!store_meta_key_valid(key, false))
        return ZN_BADARGUMENTS;
    return store_meta_read(s, key, value);
}

uint64_t store_last_zxid(const struct store *s)
{
    return s->last_zxid;
}

void store_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->mutex);
    *out = s->stats;
    out->last_zxid = s->last_zxid;
    out->snapshot_zxid_queued = s->last_snapshot_zxid_queued;
    out->map_bytes = s->map_bytes;
    if (s->wal) { /* the log's own counters (its lock nests inside the store's mutex) */
        struct wal_counts log;
        uint64_t syncs;
        wal_counts(s->wal, &log);
        wal_io_counts(s->wal, &out->log_writes, &syncs);
        out->log_segments = log.segments;
        wal_spare_counts(s->wal, &out->log_segments_recycled, &out->log_segments_zeroed);
    }
    out->average_batch_entries =
        s->stats.batches ? (double)s->stats.entries_written / (double)s->stats.batches : 0.0;
    pthread_mutex_unlock(&s->mutex);
}

size_t store_take_commit_times(struct store *s, uint32_t *out, size_t max)
{
    pthread_mutex_lock(&s->mutex);
    size_t n = s->commit_times < max ? s->commit_times : max;
    memcpy(out, s->commit_us, n * sizeof *out);
    memmove(s->commit_us, s->commit_us + n, (s->commit_times - n) * sizeof *out);
    s->commit_times -= n;
    pthread_mutex_unlock(&s->mutex);
    return n;
}

static void store_on_closed(uv_handle_t *handle)
{
    struct store *s = handle->data;
    free(s->snap_dir);
    free(s);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    ZN_ASSERT(!s->closing);
    ZN_ASSERT(getpid() == s->pid);
    s->closing = true;
    pthread_mutex_lock(&s->mutex);
    s->stopping = true;
    s->paused = false;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mutex);
    pthread_join(s->thread, NULL);
    store_check_invariants(s);
    store_deliver(s);
    ZN_ASSERT(s->queue.head == NULL && s->completed.head == NULL);
    ZN_ASSERT(s->stats.queued_entries == 0 && s->stats.queued_bytes == 0);
    zn_fifo_destroy(&s->entries);
    wal_close(s->wal);
    s->wal = NULL;
    free(s->run_entries);
    mdb_env_close(s->env);
    s->env = NULL;
    pthread_cond_destroy(&s->done_cond);
    pthread_cond_destroy(&s->work_cond);
    pthread_mutex_destroy(&s->mutex);
    uv_close((uv_handle_t *)&s->async, store_on_closed);
}

void store_test_pause_writer(struct store *s, int paused)
{
    pthread_mutex_lock(&s->mutex);
    s->paused = paused != 0;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mutex);
}

void store_test_fail_batches(struct store *s, unsigned count, int mdb_error)
{
    pthread_mutex_lock(&s->mutex);
    s->fail_batches = count;
    s->fail_error = mdb_error;
    pthread_mutex_unlock(&s->mutex);
}

void store_test_crash_snapshot_at(struct store *s, unsigned stage)
{
    pthread_mutex_lock(&s->mutex);
    s->crash_snapshot_at = stage;
    pthread_mutex_unlock(&s->mutex);
}

int store_test_append_corrupt(struct store *s, uint64_t zxid, const void *data, size_t len)
{
    ZN_ASSERT(s && zxid > s->last_zxid && len > 0 && len <= ZN_STORE_ENTRY_MAX_BYTES);
    struct store_item *item = malloc(sizeof *item + len);
    if (!item)
        return ZN_NOMEMORY;
    memset(item, 0, sizeof *item);
    item->op = STORE_OP_CORRUPT_ENTRY;
    item->zxid = zxid;
    item->len = len;
    memcpy(item->data, data, len);
    struct store_waiter waiter;
    int rc = store_run_sync(s, item, &waiter);
    if (rc == 0)
        s->last_zxid = zxid;
    return rc;
}
