/*
 * The store's writer thread: the only code that writes LMDB once the store
 * is open.  It takes everything queued at once, writes each run of log
 * entries to the log's segment files as one group commit, and handles
 * snapshots (with compaction), purges, truncations and metadata in queue
 * order, a snapshot's file written with queued log entries committed
 * between its chunks.  The LMDB map never grows: it holds only snapshot
 * records and metadata, far below its size (MDB_MAP_FULL is ZN_NOSPACE).
 *
 * This file is the thread itself: taking the queue the loop fills
 * (store.c), cutting it into runs of entries bounded by the batch limits,
 * committing each run, and handing the run's result back to the loop (the
 * completed list and the uv_async handle; store.c calls on_durable).  The
 * writer's other files:
 *   store_txn.c        one write transaction: commit, test faults,
 *                      disk-full classification, page unmapping
 *   store_records.c    the records it puts and deletes, and the
 *                      synchronous operations (truncation, metadata, ...)
 *   store_snapwrite.c  a snapshot, old snapshots trimmed, the log
 *                      compacted; a purge (store_purge)
 *
 * Invariants: 1 and 2 of store_internal.h (queue order; an entry stays
 * counted until the loop has reported its run); a run's result is carried
 * by its last item, the others are freed once the run is committed.
 *
 * Called by: store.c (store_writer_main, started at open);
 * store_snapwrite.c (store_writer_interleave, between a snapshot's
 * transactions).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "assert.h"
#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

/* ---- runs of log entries: group commit ----------------------------------- */

/* Records how long a log commit took, for store_take_commit_times. */
static void store_note_commit_time(struct store *s, const struct timespec *t0,
                                   const struct timespec *t1)
{
    int64_t us = (int64_t)(t1->tv_sec - t0->tv_sec) * 1000000 + (t1->tv_nsec - t0->tv_nsec) / 1000;
    pthread_mutex_lock(&s->mutex);
    if (s->commit_times < STORE_COMMIT_TIMES_MAX)
        s->commit_us[s->commit_times++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    pthread_mutex_unlock(&s->mutex);
}

/* Writes the run of count entries starting at run as one group commit of
 * the log's segment files (one pwritev, one fdatasync); a pending test
 * fault (store_test_fail_batches) replaces it.  Returns 0 or an errno code. */
int store_wal_write_run(struct store *s, const struct store_item *run, uint64_t count, bool corrupt)
{
    pthread_mutex_lock(&s->mutex);
    int fault = 0;
    if (s->fail_batches && !corrupt) {
        s->fail_batches--;
        fault = s->fail_error;
    }
    pthread_mutex_unlock(&s->mutex);
    if (fault)
        return fault;
    if (count > s->run_cap) {
        struct wal_entry *bigger = realloc(s->run_entries, count * sizeof *bigger);
        if (!bigger)
            return ENOMEM;
        s->run_entries = bigger;
        s->run_cap = count;
    }
    size_t n = 0;
    for (const struct store_item *item = run; n < count; item = item->next)
        s->run_entries[n++] = (struct wal_entry){item->zxid, item->data, item->len};
    int rc = wal_append(s->wal, s->run_entries, n, corrupt);
    if (rc == 0) {
        pthread_mutex_lock(&s->mutex);
        s->stats.fsyncs++;
        pthread_mutex_unlock(&s->mutex);
    }
    return rc;
}

/* Writes one run of entries (run..last, already detached) and queues the
 * result for the loop, carried by last. */
static void store_write_entries(struct store *s, struct store_item *run, struct store_item *last,
                                uint64_t count, uint64_t bytes)
{
    struct timespec t0, t1;
    int status;
    if (s->install_failed) {
        status = s->install_failed;
        ZN_ERROR("store: not writing log entries zxid=0x%" PRIx64 "..0x%" PRIx64
                 ": the leader's snapshot before them could not be stored (%s)",
                 run->zxid, last->zxid, zn_strerror(status));
    } else if (s->log_failed) {
        status = s->log_failed;
        ZN_ERROR("store: not writing log entries zxid=0x%" PRIx64 "..0x%" PRIx64
                 ": an earlier batch failed and the log was not truncated since (%s)",
                 run->zxid, last->zxid, zn_strerror(status));
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = store_wal_write_run(s, run, count, false);
        if (rc)
            rc = store_classify_failure(s, rc, bytes + count * STORE_LOG_HEADER_BYTES);
        else
            store_note_commit_time(s, &t0, (clock_gettime(CLOCK_MONOTONIC, &t1), &t1));
        status = rc ? store_error(rc, "committing a log batch") : 0;
        s->log_failed = status;
    }
    while (run != last) {
        struct store_item *next = run->next;
        zn_fifo_free(run); /* store_append's */
        run = next;
    }
    last->status = status;
    last->batch_entries = count;
    last->batch_bytes = bytes;
    pthread_mutex_lock(&s->mutex);
    if (status == 0) {
        s->stats.batches++;
        s->stats.entries_written += count;
        s->stats.last_batch_entries = count;
        s->stats.log_entries += count;
        s->stats.log_bytes += bytes;
    } else {
        s->stats.batches_failed++;
    }
    last->next = NULL;
    if (s->completed.tail)
        s->completed.tail->next = last;
    else
        s->completed.head = last;
    s->completed.tail = last;
    pthread_mutex_unlock(&s->mutex);
    uv_async_send(&s->async);
}

/* ---- the thread ------------------------------------------------------- */

/* Splits the taken list into runs of entries (bounded by the batch limits)
 * and single other items, in order.  A snapshot may write log entries that
 * follow it (and entries queued while it is written) before it completes. */
static void store_writer_process(struct store *s, struct store_item *list)
{
    while (list) {
        if (list->op == STORE_OP_SNAPSHOT) {
            struct store_item *item = list;
            list = list->next;
            item->next = NULL;
            int rc = store_write_snapshot(s, item, &list);
            if (item->install)
                s->install_failed = rc;
            store_release_blob_upto(item, item->len);
            free(item);
            continue;
        }
        if (list->op != STORE_OP_ENTRY) {
            struct store_item *item = list;
            list = list->next;
            item->next = NULL;
            store_write_other(s, item);
            continue;
        }
        struct store_item *run = list, *last = list;
        uint64_t count = 1, bytes = list->len;
        while (last->next && last->next->op == STORE_OP_ENTRY && count < s->opts.batch_max_entries &&
               bytes + last->next->len <= s->opts.batch_max_bytes) {
            last = last->next;
            count++;
            bytes += last->len;
        }
        list = last->next;
        last->next = NULL;
        store_write_entries(s, run, last, count, bytes);
    }
}

/*
 * Between two transactions of a snapshot: takes what was queued meanwhile
 * (appended to *rest, keeping queue order; not while paused) and writes the
 * log entries at the head of *rest.  It stops at the first other item
 * (truncation, metadata, another snapshot): those keep their order after the
 * snapshot.  Entries may overtake the snapshot they follow because it counts
 * only at its last transaction and compacts nothing before then.
 */
void store_writer_interleave(struct store *s, struct store_item **rest)
{
    pthread_mutex_lock(&s->mutex);
    if (!s->paused && s->queue.head) {
        struct store_item **tail = rest;
        while (*tail)
            tail = &(*tail)->next;
        *tail = s->queue.head;
        s->queue.head = s->queue.tail = NULL;
    }
    pthread_mutex_unlock(&s->mutex);
    struct store_item *entries = *rest, **end = rest;
    while (*end && (*end)->op == STORE_OP_ENTRY)
        end = &(*end)->next;
    if (end == rest)
        return;
    *rest = *end;
    *end = NULL;
    store_writer_process(s, entries);
}

void *store_writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mutex);
    for (;;) {
        while (!s->stopping && (s->paused || !s->queue.head))
            pthread_cond_wait(&s->work_cond, &s->mutex);
        if (!s->queue.head) {
            ZN_ASSERT(s->stopping);
            break;
        }
        if (s->paused)
            continue;
        struct store_item *list = s->queue.head;
        s->queue.head = s->queue.tail = NULL;
        s->writer_busy = true;
        pthread_mutex_unlock(&s->mutex);
        store_writer_process(s, list);
        pthread_mutex_lock(&s->mutex);
        s->writer_busy = false;
    }
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}
