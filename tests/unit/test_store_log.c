/*
 * Unit tests of the LMDB store's log (replication/store.h): the crc32c both
 * implementations agree on, round trips, callback order and counts, group
 * commit, truncation, metadata, the queue bound, failed batches and a full
 * map.  Snapshots are in test_store_snapshot.c, damaged files in
 * test_store_corrupt.c, crashes and a full disk in test_store_crash.c.
 * Numbers (appends/s, batch sizes) are printed, never asserted.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <uv.h>

#include "crc32c.h"
#include "log.h"
#include "store.h"
#include "store_fixture.h"
#include "znode/errors.h"

/* ---- crc32c ------------------------------------------------------------ */

static void crc32c_gives_the_standard_check_value_in_both_implementations(void **state)
{
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    crc32c_force_table(1);
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    crc32c_force_table(0);
    unsigned char buf[4099];
    payload_fill(buf, sizeof buf, 7, 1);
    for (size_t offset = 0; offset < 9; offset++) {
        for (size_t len = 0; len + offset <= sizeof buf; len += 97) {
            uint32_t fast = crc32c(buf + offset, len);
            crc32c_force_table(1);
            uint32_t table = crc32c(buf + offset, len);
            uint32_t split = crc32c_extend(crc32c(buf + offset, len / 3), buf + offset + len / 3,
                                           len - len / 3);
            crc32c_force_table(0);
            assert_int_equal(fast, table);
            assert_int_equal(split, table);
        }
    }
    /* one flipped bit changes the checksum */
    uint32_t before = crc32c(buf, sizeof buf);
    buf[1000] ^= 0x10;
    assert_int_not_equal(crc32c(buf, sizeof buf), before);
}

/* ---- round trips ------------------------------------------------------- */

static void appended_entries_are_recovered_intact_and_in_order_after_reopen(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    assert_int_equal(f->nentries, 0);
    assert_false(f->have_snapshot);
    assert_int_equal(store_last_zxid(f->s), 0);
    const uint64_t n = 2000;
    for (uint64_t z = 1; z <= n; z++)
        append_payload(f, z * 3, 1); /* zxids need not be contiguous */
    /* and one entry far larger than the rest */
    size_t big_len = 3u << 20;
    unsigned char *big = malloc(big_len);
    payload_fill(big, big_len, 99, 2);
    assert_int_equal(store_append(f->s, n * 3 + 1, big, big_len), 0);
    wait_durable(f, n * 3 + 1);
    for (size_t i = 0; i < f->ncalls; i++)
        assert_int_equal(f->calls[i].status, 0);

    fixture_reopen(f);
    assert_int_equal(f->nentries, n + 1);
    for (uint64_t z = 1; z <= n; z++)
        assert_entry_is_payload(&f->entries[z - 1], z * 3, 1);
    assert_int_equal(f->entries[n].len, big_len);
    assert_memory_equal(f->entries[n].data, big, big_len);
    assert_int_equal(store_last_zxid(f->s), n * 3 + 1);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, n + 1);
    free(big);
}

/* Each durable commit of log entries leaves its duration for a metrics scrape
 * (fsynctime), taken once: a second take finds nothing new. */
static void log_commit_times_are_recorded_once_per_commit_and_taken_once(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    uint32_t us[STORE_COMMIT_TIMES_MAX];
    store_take_commit_times(f->s, us, STORE_COMMIT_TIMES_MAX); /* whatever opening left */
    struct store_stats before, after;
    store_stats(f->s, &before);
    for (uint64_t z = 1; z <= 50; z++) {
        append_payload(f, z, 1);
        wait_durable(f, z); /* one commit each */
    }
    store_stats(f->s, &after);
    size_t n = store_take_commit_times(f->s, us, STORE_COMMIT_TIMES_MAX);
    assert_int_equal(n, after.batches - before.batches);
    assert_true(n >= 50);
    for (size_t i = 0; i < n; i++)
        assert_true(us[i] < 60u * 1000 * 1000); /* a duration, not garbage */
    assert_int_equal(store_take_commit_times(f->s, us, STORE_COMMIT_TIMES_MAX), 0);
}

/* ---- callbacks --------------------------------------------------------- */

/* Appends the next burst from inside the callback, as a daemon would. */
static void append_burst_after_durable(struct fixture *f, uint64_t zxid, int status)
{
    assert_int_equal(status, 0);
    unsigned burst = 1 + (unsigned)(zxid % 37);
    for (unsigned i = 0; i < burst && f->next_zxid <= f->target_zxid; i++)
        append_payload(f, f->next_zxid++, 3);
}

static void on_durable_is_called_once_per_batch_in_order_and_the_loop_closes_cleanly(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    f->target_zxid = 5000;
    f->next_zxid = 1;
    f->after_durable = append_burst_after_durable;
    for (int i = 0; i < 10; i++)
        append_payload(f, f->next_zxid++, 3);
    wait_durable(f, f->target_zxid);
    f->after_durable = NULL;
    struct store_stats st;
    store_stats(f->s, &st);
    /* exactly one call per committed batch, zxids strictly increasing,
     * ending at the last append */
    assert_int_equal(f->ncalls, st.batches);
    assert_int_equal(st.batches_failed, 0);
    assert_int_equal(st.entries_written, f->target_zxid);
    for (size_t i = 1; i < f->ncalls; i++)
        assert_true(f->calls[i].zxid > f->calls[i - 1].zxid);
    assert_int_equal(f->calls[f->ncalls - 1].zxid, f->target_zxid);
    assert_int_equal(st.queued_entries, 0);
    assert_int_equal(st.durable_zxid, f->target_zxid);
    printf("# callbacks: entries=%" PRIu64 " batches=%" PRIu64 " average_batch=%.1f fsyncs=%" PRIu64 "\n",
           st.entries_written, st.batches, st.average_batch_entries, st.fsyncs);

    /* appends still queued at close are written and reported from inside
     * store_close, then nothing more */
    size_t before = f->ncalls;
    store_test_pause_writer(f->s, 1);
    for (uint64_t z = f->target_zxid + 1; z <= f->target_zxid + 100; z++)
        append_payload(f, z, 3);
    assert_int_equal(f->ncalls, before);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(f->ncalls, before + 1);
    assert_int_equal(f->calls[before].zxid, f->target_zxid + 100);
    assert_int_equal(f->calls[before].status, 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->ncalls, before + 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0); /* for teardown */
}

/* ---- group commit ------------------------------------------------------ */

static void entries_queued_while_a_batch_commits_are_written_in_one_batch(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    struct store_stats before, after;
    store_stats(f->s, &before);
    /* hold the writer as if it were inside a long fsync */
    store_test_pause_writer(f->s, 1);
    for (uint64_t z = 1; z <= 1000; z++)
        append_payload(f, z, 4);
    store_test_pause_writer(f->s, 0);
    wait_durable(f, 1000);
    store_stats(f->s, &after);
    assert_int_equal(f->ncalls, 1);
    assert_int_equal(f->calls[0].zxid, 1000);
    assert_int_equal(after.fsyncs - before.fsyncs, 1);
    assert_int_equal(after.last_batch_entries, 1000);

    /* free running: as fast as the loop can append */
    const uint64_t n = 30000;
    uint64_t z = 1001, t0 = now_ms();
    size_t calls0 = f->ncalls;
    while (z <= 1000 + n) {
        unsigned char buf[128];
        payload_fill(buf, sizeof buf, z, 4);
        int rc = store_append(f->s, z, buf, sizeof buf);
        if (rc == ZN_THROTTLEDOP) {
            uv_run(&f->loop, UV_RUN_NOWAIT);
            continue;
        }
        assert_int_equal(rc, 0);
        z++;
    }
    wait_durable(f, 1000 + n);
    uint64_t elapsed = now_ms() - t0;
    struct store_stats end;
    store_stats(f->s, &end);
    uint64_t batches = f->ncalls - calls0, fsyncs = end.fsyncs - after.fsyncs;
    printf("# group commit: entries=%" PRIu64 " batches=%" PRIu64 " fsyncs=%" PRIu64
           " average_batch=%.1f elapsed_ms=%" PRIu64 " appends_per_s=%.0f\n",
           n, batches, fsyncs, (double)n / (double)batches, elapsed,
           elapsed ? (double)n * 1000.0 / (double)elapsed : 0.0);
    assert_true(fsyncs < n);
    assert_int_equal(fsyncs, batches);
}

/* ---- truncation and metadata --------------------------------------------- */

static void truncate_after_removes_later_entries_and_new_ones_can_follow(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 100; z++)
        append_payload(f, z, 10);
    /* no wait: truncation drains the queue first */
    assert_int_equal(store_truncate_after(f->s, 50), 0);
    assert_int_equal(store_last_zxid(f->s), 50);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, 50);
    for (uint64_t z = 51; z <= 70; z++)
        append_payload(f, z, 11);
    wait_durable(f, 70);
    fixture_reopen(f);
    assert_int_equal(f->nentries, 70);
    for (uint64_t i = 0; i < 50; i++)
        assert_entry_is_payload(&f->entries[i], i + 1, 10);
    for (uint64_t i = 50; i < 70; i++)
        assert_entry_is_payload(&f->entries[i], i + 1, 11);
    /* truncating into a gap leaves the highest zxid below it */
    assert_int_equal(store_truncate_after(f->s, 1000), 0);
    assert_int_equal(store_last_zxid(f->s), 70);
    assert_int_equal(store_truncate_after(f->s, 0), 0);
    assert_int_equal(store_last_zxid(f->s), 0);
}

static void meta_put_is_durable_and_meta_get_reads_it_back(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    uint64_t v = 0;
    assert_int_equal(store_meta_get(f->s, "acceptedEpoch", &v), ZN_NONODE);
    assert_int_equal(store_meta_put(f->s, "acceptedEpoch", 5), 0);
    assert_int_equal(store_meta_put(f->s, "currentEpoch", 4), 0);
    assert_int_equal(store_meta_put(f->s, "acceptedEpoch", 6), 0);
    assert_int_equal(store_meta_get(f->s, "acceptedEpoch", &v), 0);
    assert_int_equal(v, 6);
    fixture_reopen(f);
    assert_int_equal(store_meta_get(f->s, "acceptedEpoch", &v), 0);
    assert_int_equal(v, 6);
    assert_int_equal(store_meta_get(f->s, "currentEpoch", &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(store_meta_put(f->s, "", 1), ZN_BADARGUMENTS);
    assert_int_equal(store_meta_put(f->s, ".compacted_zxid", 1), ZN_BADARGUMENTS);
    char long_key[ZN_STORE_META_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    assert_int_equal(store_meta_put(f->s, long_key, 1), ZN_BADARGUMENTS);
}

/* ---- limits and failures ----------------------------------------------- */

static void append_is_refused_past_the_queue_bound_and_accepted_again_after_it_drains(void **state)
{
    struct fixture *f = *state;
    f->opts.queue_max_entries = 100;
    f->opts.queue_max_bytes = 64 * 1024;
    fixture_open(f);
    unsigned char buf[1024] = {0};
    store_test_pause_writer(f->s, 1);
    uint64_t z = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(store_append(f->s, ++z, buf, 10), 0);
    assert_int_equal(store_append(f->s, z + 1, buf, 10), ZN_THROTTLEDOP);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.queued_entries, 100);
    store_test_pause_writer(f->s, 0);
    wait_durable(f, z);
    /* the byte bound */
    store_test_pause_writer(f->s, 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(store_append(f->s, ++z, buf, 1024), 0);
    assert_int_equal(store_append(f->s, z + 1, buf, 1), ZN_THROTTLEDOP);
    store_test_pause_writer(f->s, 0);
    wait_durable(f, z);
    assert_int_equal(store_append(f->s, ++z, buf, 1), 0);
    wait_durable(f, z);
    /* a refused entry is never reported */
    for (size_t i = 0; i < f->ncalls; i++)
        assert_int_equal(f->calls[i].status, 0);
    assert_int_equal(f->calls[f->ncalls - 1].zxid, z);
    /* size limits */
    assert_int_equal(store_append(f->s, z + 1, buf, 0), ZN_BADARGUMENTS);
    void *huge = malloc(ZN_STORE_ENTRY_MAX_BYTES + 1);
    assert_int_equal(store_append(f->s, z + 1, huge, ZN_STORE_ENTRY_MAX_BYTES + 1), ZN_TOOBIG);
    free(huge);
}

static void a_failed_batch_is_reported_leaves_nothing_in_the_log_and_the_store_keeps_working(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 12);
    wait_durable(f, 10);
    store_test_fail_batches(f->s, 1, EIO);
    store_test_pause_writer(f->s, 1);
    for (uint64_t z = 11; z <= 20; z++)
        append_payload(f, z, 12);
    store_test_pause_writer(f->s, 0);
    wait_durable(f, 20);
    assert_int_equal(f->calls[f->ncalls - 1].zxid, 20);
    assert_int_equal(f->calls[f->ncalls - 1].status, ZN_IO);
    /* nothing is written after a failed batch until the log is truncated:
     * entry 21 would follow the hole 11..20 (a member that stops on the
     * failure would replay it over the hole after a restart) */
    append_payload(f, 21, 12);
    wait_durable(f, 21);
    assert_int_equal(f->calls[f->ncalls - 1].status, ZN_IO);
    assert_int_equal(store_truncate_after(f->s, 10), 0);
    store_test_fail_batches(f->s, 1, ENOSPC);
    append_payload(f, 22, 12);
    wait_durable(f, 22);
    assert_int_equal(f->calls[f->ncalls - 1].status, ZN_NOSPACE);
    assert_int_equal(store_truncate_after(f->s, 10), 0);
    for (uint64_t z = 23; z <= 30; z++)
        append_payload(f, z, 12);
    wait_durable(f, 30);
    assert_int_equal(f->calls[f->ncalls - 1].status, 0);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.batches_failed, 3);
    assert_int_equal(st.log_entries, 18);
    fixture_reopen(f);
    assert_int_equal(f->nentries, 18);
    for (uint64_t i = 0; i < 10; i++)
        assert_entry_is_payload(&f->entries[i], i + 1, 12);
    for (uint64_t i = 10; i < 18; i++)
        assert_entry_is_payload(&f->entries[i], i + 13, 12);
}

/* The log is in segment files of its own and snapshots in files of theirs:
 * LMDB's map holds metadata only, and a full map no longer limits the log. */
static void the_log_does_not_use_lmdbs_map(void **state)
{
    struct fixture *f = *state;
    f->opts.map_bytes = 1u << 20;
    fixture_open(f);
    unsigned char *buf = calloc(1, 256 * 1024);
    uint64_t z = 0;
    for (int i = 0; i < 32; i++) /* 8 MiB of log with a 1 MiB map (which never grows) */
        assert_int_equal(store_append(f->s, ++z, buf, 256 * 1024), 0);
    wait_durable(f, z);
    for (size_t i = 0; i < f->ncalls; i++)
        assert_int_equal(f->calls[i].status, 0);
    assert_int_equal(store_meta_put(f->s, "after", 1), 0);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.map_bytes, 1u << 20);
    assert_int_equal(st.log_bytes, 8u << 20);
    fixture_reopen(f);
    assert_int_equal(store_last_zxid(f->s), z);
    assert_int_equal(f->nentries, z);
    free(buf);
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_gives_the_standard_check_value_in_both_implementations),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(appended_entries_are_recovered_intact_and_in_order_after_reopen),
        T(log_commit_times_are_recorded_once_per_commit_and_taken_once),
        T(on_durable_is_called_once_per_batch_in_order_and_the_loop_closes_cleanly),
        T(entries_queued_while_a_batch_commits_are_written_in_one_batch),
        T(truncate_after_removes_later_entries_and_new_ones_can_follow),
        T(meta_put_is_durable_and_meta_get_reads_it_back),
        T(append_is_refused_past_the_queue_bound_and_accepted_again_after_it_drains),
        T(a_failed_batch_is_reported_leaves_nothing_in_the_log_and_the_store_keeps_working),
        T(the_log_does_not_use_lmdbs_map),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
