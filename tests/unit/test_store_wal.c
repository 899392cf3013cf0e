/*
 * Unit tests of the log's segment files (replication/store_wal.h): one write
 * and one fdatasync per group commit, preallocated segments, a torn tail
 * dropped and overwritten, damage refused naming the file and offset,
 * truncation and compaction across segments, and a store whose log is still
 * in LMDB moved into segments at open, crash-safely.
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
#include <signal.h>
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

#define SEG1 "log.0000000000000001"

static void seg_path(const struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

/* Offset after the records first..upto of a segment starting at first. */
static uint64_t records_end(uint64_t first, uint64_t upto)
{
    uint64_t off = 24;
    for (uint64_t z = first; z <= upto; z++)
        off += 24 + ((payload_len(z) + 7) & ~(uint64_t)7);
    return off;
}

/* pwrite (write) or pread len bytes at off of the store's file name. */
static void file_io(const struct fixture *f, const char *name, void *buf, size_t len, uint64_t off,
                    bool write)
{
    char path[128];
    seg_path(f, name, path, sizeof path);
    int fd = open(path, write ? O_RDWR : O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
    assert_int_equal(n, (ssize_t)len);
    close(fd);
}

static void pwrite_file(const struct fixture *f, const char *name, const void *buf, size_t len,
                        uint64_t off)
{
    file_io(f, name, (void *)buf, len, off, true);
}

static void pread_file(const struct fixture *f, const char *name, void *buf, size_t len, uint64_t off)
{
    file_io(f, name, buf, len, off, false);
}

/* Removes the store and opens an empty one in its place. */
static void start_empty(struct fixture *f)
{
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(f->dir, 0700);
    f->ncalls = 0;
    fixture_open(f);
}

static void append_range(struct fixture *f, uint64_t from, uint64_t to, bool one_group)
{
    if (one_group)
        store_test_pause_writer(f->s, 1);
    for (uint64_t z = from; z <= to; z++)
        append_payload(f, z, 3);
    if (one_group)
        store_test_pause_writer(f->s, 0);
    wait_durable(f, to);
}

/* Opens the store with segments of segment_bytes and appends 1..last in
 * group commits of group entries. */
static void open_in_groups(struct fixture *f, uint64_t segment_bytes, uint64_t last, uint64_t group)
{
    f->opts.segment_bytes = segment_bytes;
    fixture_open(f);
    for (uint64_t z = 1; z <= last; z += group)
        append_range(f, z, z + group - 1, true);
}

static void assert_recovered(struct fixture *f, uint64_t last)
{
    assert_int_equal(f->nentries, last);
    for (uint64_t i = 0; i < last; i++)
        assert_entry_is_payload(&f->entries[i], i + 1, 3);
}

static void a_group_commit_is_one_write_and_one_fdatasync_into_a_preallocated_file(void **state)
{
    struct fixture *f = *state;
    f->opts.segment_bytes = 512u << 10;
    fixture_open(f);
    append_range(f, 1, 10, true);
    struct store_stats before, after;
    store_stats(f->s, &before);
    char path[128];
    seg_path(f, SEG1, path, sizeof path);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    /* preallocated: its whole size written (allocated), before any record */
    assert_int_equal(st0.st_size, 512u << 10);
    assert_true((uint64_t)st0.st_blocks * 512 >= (uint64_t)st0.st_size);
    append_range(f, 11, 500, true); /* one group of 490 entries */
    store_stats(f->s, &after);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.log_writes - before.log_writes, 1);
    assert_int_equal(after.fsyncs - before.fsyncs, 1);
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st1.st_size, st0.st_size);
    assert_int_equal(st1.st_blocks, st0.st_blocks);
    /* past half of the segment: the next one is prepared apart (log.spare) */
    append_range(f, 501, 700, false);
    char spare[128];
    seg_path(f, "log.spare", spare, sizeof spare);
    struct stat sp;
    uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
    while (stat(spare, &sp) != 0 && now_ms() < deadline)
        usleep(10000);
    assert_int_equal(stat(spare, &sp), 0);
    assert_int_equal(sp.st_size, 512u << 10);
    /* a second name keeps its inode from being reused by another file */
    char keep[128];
    seg_path(f, "kept-spare", keep, sizeof keep);
    fixture_close(f);
    assert_int_equal(link(spare, keep), 0);
    fixture_open(f);
    assert_recovered(f, 700);
    /* kept across the restart, it becomes the next segment */
    uint64_t z = 700;
    struct store_stats st;
    do {
        append_range(f, z + 1, z + 50, true);
        z += 50;
        store_stats(f->s, &st);
    } while (st.log_segments == 1 && z < 5000);
    assert_int_equal(st.log_segments, 2);
    char next[128], name[32];
    snprintf(name, sizeof name, "log.%016" PRIx64, z - 49);
    seg_path(f, name, next, sizeof next);
    assert_int_equal(stat(next, &st1), 0);
    assert_int_equal(st1.st_ino, sp.st_ino);
    assert_int_equal(st1.st_nlink, 2);
    fixture_reopen(f);
    assert_recovered(f, z);
}

/* The store opens (in a child first: no signal) with entries 1..last. */
static void assert_opens_with(struct fixture *f, uint64_t last)
{
    char log[8192];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
    assert_int_equal(entries, last);
    fixture_open(f);
    assert_recovered(f, last);
}

/* Writes garbage after the end of the log; the store must open with every
 * entry, drop the garbage and write over it. */
static void assert_tail_dropped(struct fixture *f, const void *junk, size_t len, uint64_t at)
{
    pwrite_file(f, SEG1, junk, len, at);
    assert_opens_with(f, 20);
    /* zeroed: nothing of it is left after what is appended next */
    unsigned char back[64];
    pread_file(f, SEG1, back, len, at);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(back[i], 0);
    append_range(f, 21, 22, true);
    fixture_reopen(f);
    assert_recovered(f, 22);
    assert_int_equal(store_truncate_after(f->s, 20), 0);
    fixture_close(f);
}

static void a_torn_tail_after_the_last_record_is_dropped_and_overwritten(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    append_range(f, 1, 10, true);
    append_range(f, 11, 20, true);
    fixture_close(f);
    uint64_t end = records_end(1, 20);
    /* a record cut short: the header of a valid-looking one, its payload missing */
    unsigned char head[24];
    pread_file(f, SEG1, head, sizeof head, records_end(1, 19));
    assert_tail_dropped(f, head, sizeof head, end);
    /* garbage failing its check, nothing after it */
    unsigned char junk[40];
    memset(junk, 0xa5, sizeof junk);
    assert_tail_dropped(f, junk, sizeof junk, end);
    /* one stray byte further on */
    assert_tail_dropped(f, "x", 1, end + 4096);
}

static void a_last_group_commit_whose_pages_landed_out_of_order_is_dropped_whole(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    append_range(f, 1, 10, true);
    append_range(f, 11, 20, true);
    append_range(f, 21, 30, true); /* the last group commit: its first record lost */
    fixture_close(f);
    unsigned char zeros[24] = {0};
    pwrite_file(f, SEG1, zeros, sizeof zeros, records_end(1, 20));
    assert_opens_with(f, 20);
    append_range(f, 21, 21, true); /* shorter than what it overwrites */
    fixture_reopen(f);
    assert_recovered(f, 21);
}

/* A child appends 1..10 (acknowledged), then a group 11..30 and dies by
 * SIGKILL between the write (pieces iovecs of it) and its fdatasync. */
static void die_in_a_group_commit(struct fixture *f, int pieces)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uv_loop_init(&f->loop);
        fixture_open(f);
        append_range(f, 1, 10, true);
        store_test_die_in_group_commit(pieces);
        append_range(f, 11, 30, true);
        _exit(99); /* not reached */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void a_kill_between_a_group_commits_write_and_its_fdatasync_loses_nothing_acknowledged(void **state)
{
    struct fixture *f = *state;
    /* the whole group written: all of it is in the page cache, and read back */
    die_in_a_group_commit(f, -1);
    assert_opens_with(f, 30);
    fixture_close(f);
    /* cut after the header and payload of 11 and the header of 12 (pieces: a
     * record's header and its payload each): 11 is whole, 12 torn, dropped */
    start_empty(f);
    fixture_close(f);
    die_in_a_group_commit(f, 3);
    assert_opens_with(f, 11);
    append_range(f, 12, 14, true); /* written over the torn tail */
    fixture_reopen(f);
    assert_recovered(f, 14);
}

static void damage_before_a_later_group_commit_or_segment_is_refused_with_file_and_offset(void **state)
{
    struct fixture *f = *state;
    open_in_groups(f, 4096, 60, 5);
    fixture_close(f);
    /* the second group commit's first record, in the first segment */
    unsigned char zeros[24] = {0};
    pwrite_file(f, SEG1, zeros, sizeof zeros, records_end(1, 5));
    char log[8192], what[160];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    snprintf(what, sizeof what, "offset %" PRIu64 ": a record fails its check", records_end(1, 5));
    assert_one_clear_refusal_of(f->dir, SEG1 " is damaged at ", log, what);
    /* the same place, with only the group commit's own records after it,
     * but a later segment: damage too (every segment but the last was
     * durable before the next was begun) */
    start_empty(f);
    append_range(f, 1, 5, true);
    append_range(f, 6, 10, true);
    unsigned char big[3000];
    memset(big, 1, sizeof big);
    assert_int_equal(store_append(f->s, 11, big, sizeof big), 0); /* does not fit: a new segment */
    wait_durable(f, 11);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.log_segments, 2);
    fixture_close(f);
    pwrite_file(f, SEG1, zeros, sizeof zeros, records_end(1, 5));
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    snprintf(what, sizeof what, "offset %" PRIu64 ": a record fails its check in a segment a later one follows",
             records_end(1, 5));
    assert_one_clear_refusal_of(f->dir, SEG1 " is damaged at ", log, what);
}

static void a_whole_group_commit_after_a_bad_one_or_a_cut_file_is_refused(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    append_range(f, 1, 5, true);
    unsigned char junk[50] = {1, 2, 3};
    assert_int_equal(store_test_append_corrupt(f->s, 6, junk, sizeof junk), 0); /* a group of its own */
    append_range(f, 7, 10, true); /* one whole group commit after it: 6 was durable */
    fixture_close(f);
    char log[8192], what[160];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    snprintf(what, sizeof what, "offset %" PRIu64 ": a record fails its check, and records of a later group commit follow it",
             records_end(1, 5));
    assert_one_clear_refusal_of(f->dir, SEG1 " is damaged at ", log, what);

    /* a segment cut short, even only of its preallocated zeros */
    char path[128];
    seg_path(f, SEG1, path, sizeof path);
    start_empty(f);
    append_range(f, 1, 10, true);
    fixture_close(f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 100), 0);
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    snprintf(what, sizeof what, "offset %" PRIu64 ": the file is cut short", (uint64_t)st.st_size - 100);
    assert_one_clear_refusal_of(f->dir, SEG1 " is damaged at ", log, what);
    /* and into its records */
    assert_int_equal(truncate(path, (off_t)records_end(1, 9) + 10), 0);
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
}

static void truncation_across_segments_unlinks_the_later_ones_and_appends_follow(void **state)
{
    struct fixture *f = *state;
    open_in_groups(f, 4096, 200, 4);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_true(st.log_segments > 10);
    uint64_t before = st.log_segments;
    assert_int_equal(store_truncate_after(f->s, 37), 0);
    assert_int_equal(store_last_zxid(f->s), 37);
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, 37);
    assert_true(st.log_segments < before);
    append_range(f, 38, 60, false);
    fixture_reopen(f);
    assert_recovered(f, 60);
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, 60);
    /* and to nothing at all */
    assert_int_equal(store_truncate_after(f->s, 0), 0);
    assert_int_equal(store_last_zxid(f->s), 0);
    append_range(f, 1, 3, true);
    fixture_reopen(f);
    assert_recovered(f, 3);
}

/* ---- migration of a log kept in LMDB --------------------------------------- */

/* Writes a store as the code before segment files did: its log in LMDB's
 * "log" database (key: zxid; value: crc32c | length | payload). */
/* A crash after a segment was started (made of zeros, renamed in) but before
 * its first group commit leaves an empty last segment: the open removes it,
 * and the segment before it takes the appends again. */
static void an_empty_last_segment_is_removed_and_appends_go_on_into_the_one_before(void **state)
{
    struct fixture *f = *state;
    open_in_groups(f, 65536, 20, 5);
    fixture_close(f);
    char path[128];
    seg_path(f, "log.0000000000000015", path, sizeof path); /* the next one: zxid 21 */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    assert_true(fd >= 0);
    static const unsigned char zeros[65536];
    assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    fixture_open(f);
    assert_recovered(f, 20);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    append_range(f, 21, 25, true);
    for (size_t i = 0; i < f->ncalls; i++)
        assert_int_equal(f->calls[i].status, 0);
    fixture_reopen(f);
    assert_recovered(f, 25);
}

static void write_lmdb_store(const char *dir, uint64_t entries)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0644), 0);
    MDB_txn *txn;
    MDB_dbi log, snap, meta;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "log", MDB_CREATE, &log), 0);
    assert_int_equal(mdb_dbi_open(txn, "snap", MDB_CREATE, &snap), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    unsigned char value[8 + 1024];
    for (uint64_t z = 1; z <= entries; z++) {
        unsigned char key[8];
        for (int i = 0; i < 8; i++)
            key[i] = (unsigned char)(z >> (56 - 8 * i));
        size_t len = payload_len(z);
        payload_fill(value + 8, len, z, 3);
        unsigned char prefix[12];
        memcpy(prefix, key, 8);
        for (int i = 0; i < 4; i++)
            prefix[8 + i] = value[4 + i] = (unsigned char)(len >> (24 - 8 * i));
        uint32_t crc = crc32c_extend(crc32c(prefix, sizeof prefix), value + 8, len);
        for (int i = 0; i < 4; i++)
            value[i] = (unsigned char)(crc >> (24 - 8 * i));
        MDB_val k = {8, key}, v = {8 + len, value};
        assert_int_equal(mdb_put(txn, log, &k, &v, MDB_APPEND), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static uint64_t lmdb_log_entries(const char *dir)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
    MDB_txn *txn;
    MDB_dbi log;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "log", 0, &log), 0);
    assert_int_equal(mdb_stat(txn, log, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}

static void a_log_kept_in_lmdb_moves_into_segments_at_open_crash_safely(void **state)
{
    struct fixture *f = *state;
    f->opts.segment_bytes = 64u << 10;
    write_lmdb_store(f->dir, 3000);
    assert_int_equal(lmdb_log_entries(f->dir), 3000);
    char seg[128];
    seg_path(f, SEG1, seg, sizeof seg);
    /* a crash after the segments are written, before LMDB's copy is emptied */
    store_test_stop_migration_before_drop(1);
    struct store *s;
    assert_int_equal(store_open(&s, &f->loop, f->dir, &f->opts, on_durable, f), ZN_IO);
    store_test_stop_migration_before_drop(0);
    assert_int_equal(access(seg, F_OK), 0);
    assert_int_equal(lmdb_log_entries(f->dir), 3000);
    /* the leftovers give way to a fresh migration */
    pwrite_file(f, SEG1, "junk", 4, 100);
    fixture_open(f);
    assert_recovered(f, 3000);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, 3000);
    assert_true(st.log_segments > 1);
    append_range(f, 3001, 3010, true);
    fixture_close(f);
    assert_int_equal(lmdb_log_entries(f->dir), 0);
    fixture_open(f);
    assert_recovered(f, 3010);
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(an_empty_last_segment_is_removed_and_appends_go_on_into_the_one_before),
        T(a_group_commit_is_one_write_and_one_fdatasync_into_a_preallocated_file),
        T(a_torn_tail_after_the_last_record_is_dropped_and_overwritten),
        T(a_last_group_commit_whose_pages_landed_out_of_order_is_dropped_whole),
        T(a_kill_between_a_group_commits_write_and_its_fdatasync_loses_nothing_acknowledged),
        T(damage_before_a_later_group_commit_or_segment_is_refused_with_file_and_offset),
        T(a_whole_group_commit_after_a_bad_one_or_a_cut_file_is_refused),
        T(truncation_across_segments_unlinks_the_later_ones_and_appends_follow),
        T(a_log_kept_in_lmdb_moves_into_segments_at_open_crash_safely),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
