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
#include "store_wal.h"
#include "znode/errors.h"

#define SEG1 "log.0000000000000001"

static void seg_path(const struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

/* Offset after the records first..upto of a segment starting at first. */
static uint64_t records_end(uint64_t first, uint64_t upto)
{
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
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

/* ---- recycled segments ---------------------------------------------------- */

#define SEG_BYTES 4096u

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* A record's crc32c: over the life's secret first (format version 2), or
 * without one (version 1, keyed false). */
static uint32_t record_crc(bool keyed, uint64_t secret, const unsigned char *head,
                           const unsigned char *data, size_t len)
{
    unsigned char key[8];
    put_be(key, secret, 8);
    uint32_t crc = keyed ? crc32c_extend(crc32c(key, 8), head, 20) : crc32c(head, 20);
    return crc32c_extend(crc, data, len);
}

/* A whole valid record (as the log writes it into a life whose secret is
 * secret) of zxid in group batch with payload_len(zxid) bytes of salt;
 * returns its span. */
static size_t make_record(unsigned char *out, uint64_t zxid, uint64_t batch, unsigned salt,
                          uint64_t secret)
{
    size_t len = payload_len(zxid);
    put_be(out, zxid, 8);
    put_be(out + 8, batch, 8);
    put_be(out + 16, len, 4);
    payload_fill(out + 24, len, zxid, salt);
    uint32_t crc = record_crc(true, secret, out, out + 24, len);
    put_be(out + 20, crc, 4);
    size_t span = 24 + ((len + 7) & ~(size_t)7);
    memset(out + 24 + len, 0, span - 24 - len);
    return span;
}

static ino_t inode_of(const struct fixture *f, const char *name)
{
    char path[128];
    seg_path(f, name, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static bool exists(const struct fixture *f, const char *name)
{
    char path[128];
    seg_path(f, name, path, sizeof path);
    return access(path, F_OK) == 0;
}

static void name_of(char out[32], uint64_t first)
{
    snprintf(out, 32, "log.%016" PRIx64, first);
}

static void wait_recycled(struct fixture *f, uint64_t count)
{
    struct store_stats st;
    uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
    do {
        store_stats(f->s, &st);
    } while (st.log_segments_recycled < count && now_ms() < deadline && usleep(1000) == 0);
    assert_int_equal(st.log_segments_recycled, count);
}

/* What recycle_first_segment leaves: log.spare is SEG1's file (inode), its
 * records 1..seg1_last; the log has segment 2 (from seg2) up to last; a
 * snapshot at seg2 - 1 (the compaction point) and one at last. */
struct recycled {
    ino_t ino;
    uint64_t seg1_last, seg2, last, snap;
    /* after into_recycled: the segment it became, and where its records end */
    uint64_t first, end;
    char name[32];
    unsigned char old_header[WAL_SEGMENT_HEADER_BYTES];
};

static void *blob_of(uint64_t zxid, size_t len)
{
    unsigned char *b = malloc(len);
    payload_fill(b, len, zxid, 9);
    return b;
}

/* Opens the store with 4 KB segments and appends groups of 2 until a second
 * segment has begun; returns the last zxid (the second's first is z - 1). */
static uint64_t open_into_a_second_segment(struct fixture *f)
{
    f->opts.segment_bytes = SEG_BYTES;
    fixture_open(f);
    struct store_stats st;
    uint64_t z = 0;
    do {
        append_range(f, z + 1, z + 2, true);
        z += 2;
        store_stats(f->s, &st);
    } while (st.log_segments < 2);
    return z;
}

/* Snapshots at seg2 - 1 and at z: the older kept one compacts every segment
 * before seg2, the first of them recycled; waits until it is a spare. */
static void compact_before(struct fixture *f, uint64_t seg2, uint64_t z)
{
    assert_int_equal(store_snapshot(f->s, seg2 - 1, blob_of(seg2 - 1, 100), 100), 0);
    assert_int_equal(store_snapshot(f->s, z, blob_of(z, 100), 100), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    wait_recycled(f, 1);
}

/* 4 KB segments, groups of 2 entries; appends until a second segment has
 * begun, snapshots so that the first is compacted, and waits until it is
 * the spare.  The second segment is less than half full: no zeroed spare
 * is being made in its place. */
static void recycle_first_segment(struct fixture *f, struct recycled *r)
{
    uint64_t z = open_into_a_second_segment(f);
    r->seg2 = z - 1;
    r->seg1_last = z - 2;
    r->last = r->snap = z;
    r->ino = inode_of(f, SEG1);
    pread_file(f, SEG1, r->old_header, sizeof r->old_header, 0);
    /* the spare made of zeros when segment 1 was half full is now segment 2 */
    assert_false(exists(f, "log.spare"));
    compact_before(f, r->seg2, z);
    assert_false(exists(f, SEG1));
    assert_int_equal(inode_of(f, "log.spare"), r->ino);
}

/* recycle_first_segment in an emptied store, closed after. */
static void recycle_afresh(struct fixture *f, struct recycled *r)
{
    start_empty(f);
    fixture_close(f);
    recycle_first_segment(f, r);
    fixture_close(f);
}

/* Appends groups of 2 from r->last + 1 until the next segment begins;
 * returns its first zxid. */
static uint64_t append_into_next_segment(struct fixture *f, struct recycled *r)
{
    struct store_stats st;
    store_stats(f->s, &st);
    uint64_t segments = st.log_segments;
    do {
        append_range(f, r->last + 1, r->last + 2, true);
        r->last += 2;
        store_stats(f->s, &st);
    } while (st.log_segments == segments);
    return r->last - 1;
}

/* recycle_first_segment, then one group of 2 into the segment the spare
 * becomes (r->first, r->name, its records ending at r->end); closed after. */
static void into_recycled(struct fixture *f, struct recycled *r)
{
    recycle_first_segment(f, r);
    r->first = append_into_next_segment(f, r);
    name_of(r->name, r->first);
    r->end = records_end(r->first, r->last);
    fixture_close(f);
}

static void assert_recovered_after_snapshot(struct fixture *f, uint64_t snap, uint64_t last)
{
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, snap);
    assert_int_equal(f->nentries, last - snap);
    for (uint64_t i = 0; i < last - snap; i++)
        assert_entry_is_payload(&f->entries[i], snap + 1 + i, 3);
}

static void a_compacted_segment_becomes_the_next_one_without_writing_zeros(void **state)
{
    struct fixture *f = *state;
    struct recycled r;
    recycle_first_segment(f, &r);
    struct store_stats before, after;
    store_stats(f->s, &before);
    /* the spare's header: the highest zxid of its earlier life, its size */
    unsigned char head[WAL_SEGMENT_HEADER_BYTES];
    pread_file(f, "log.spare", head, sizeof head, 0);
    assert_memory_equal(head, r.old_header, 8); /* magic, version */
    assert_int_equal(get_be64(head + 8), r.seg1_last);
    assert_int_equal(get_be64(head + 16), SEG_BYTES);
    assert_int_equal(get_be64(head + 24), 0); /* no secret before its life */
    assert_int_equal(get_be64(head + 32), r.seg1_last);
    uint64_t snap = r.last;
    /* a second name keeps its inode from being reused by another file */
    char spare[128], keep[128];
    seg_path(f, "log.spare", spare, sizeof spare);
    seg_path(f, "kept-spare", keep, sizeof keep);
    assert_int_equal(link(spare, keep), 0);
    uint64_t first = append_into_next_segment(f, &r);
    char name[32];
    name_of(name, first);
    assert_int_equal(inode_of(f, name), r.ino); /* the same file, no zeros written */
    store_stats(f->s, &after);
    assert_int_equal(after.log_segments_zeroed, before.log_segments_zeroed);
    assert_int_equal(after.log_segments_recycled, 1);
    /* its records of the earlier life are still there after the new ones */
    unsigned char old[24];
    pread_file(f, name, old, 24, SEG_BYTES - 2048);
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    /* not zeroed at open: the earlier life's bytes are left as they were */
    unsigned char back[24];
    pread_file(f, name, back, 24, SEG_BYTES - 2048);
    assert_memory_equal(back, old, 24);
    /* more into it, and again across a restart */
    append_range(f, r.last + 1, r.last + 1, true);
    r.last++;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    char log[8192];
    uint64_t entries;
    fixture_close(f);
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
}

static void stale_records_after_the_new_ones_are_neither_replayed_nor_refused(void **state)
{
    struct fixture *f = *state;
    struct recycled r;
    into_recycled(f, &r);
    uint64_t snap = r.snap, first = r.first, end = r.end;
    const char *name = r.name;
    /* a valid-looking record of the earlier life right after the last new
     * one, and one of a group commit of its own */
    unsigned char rec[1024];
    uint64_t old_secret = get_be64(r.old_header + 24); /* the earlier life's */
    size_t span = make_record(rec, first - 1, first - 1, 3, old_secret);
    pwrite_file(f, name, rec, span, end);
    span = make_record(rec, r.seg1_last, r.seg1_last - 1, 4, old_secret);
    pwrite_file(f, name, rec, span, end + 1024);
    char log[8192];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    unsigned char back[1024];
    pread_file(f, name, back, span, end + 1024);
    assert_memory_equal(back, rec, span); /* stale: left alone, not zeroed */
    /* appended over it, read back */
    append_range(f, r.last + 1, r.last + 1, true);
    r.last++;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
}

static void a_torn_tail_over_stale_records_is_dropped_and_only_it_is_zeroed(void **state)
{
    struct fixture *f = *state;
    struct recycled r;
    into_recycled(f, &r);
    uint64_t snap = r.snap, end = r.end;
    const char *name = r.name;
    /* the next group commit's first record, cut short: its header and part
     * of its payload, then the earlier life's bytes */
    unsigned char rec[1024], head[WAL_SEGMENT_HEADER_BYTES];
    pread_file(f, name, head, sizeof head, 0);
    uint64_t secret = get_be64(head + 24); /* this life's */
    size_t span = make_record(rec, r.last + 1, r.last + 1, 3, secret);
    rec[20] ^= 0xff; /* its crc: the payload did not all make it */
    size_t cut = 24 + (span - 24) / 2;
    pwrite_file(f, name, rec, cut, end);
    unsigned char after[512];
    uint64_t past = end + span;
    pread_file(f, name, after, sizeof after, past);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    unsigned char back[1024];
    pread_file(f, name, back, span, end);
    for (size_t i = 0; i < span; i++)
        assert_int_equal(back[i], 0); /* the torn record zeroed */
    pread_file(f, name, back, sizeof after, past);
    assert_memory_equal(back, after, sizeof after); /* nothing past it */
    /* a torn group commit with a record of it further on, over stale bytes:
     * dropped whole, up to that record */
    fixture_close(f);
    pwrite_file(f, name, rec, cut, end);
    unsigned char rec2[1024];
    size_t span2 = make_record(rec2, r.last + 2, r.last + 1, 3, secret);
    pwrite_file(f, name, rec2, span2, end + span);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    pread_file(f, name, back, span2, end + span);
    for (size_t i = 0; i < span2; i++)
        assert_int_equal(back[i], 0);
    append_range(f, r.last + 1, r.last + 3, true);
    r.last += 3;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
}

/* A crash at each step of the recycle, as the files it leaves: the store
 * opens with the same entries each time. */
static void a_crash_at_each_step_of_the_recycle_reopens_to_the_same_state(void **state)
{
    struct fixture *f = *state;
    struct recycled r;
    recycle_first_segment(f, &r);
    uint64_t snap = r.last;
    fixture_close(f);
    char spare[128], tmp[128], seg1[128];
    seg_path(f, "log.spare", spare, sizeof spare);
    seg_path(f, "log.recycle.tmp", tmp, sizeof tmp);
    seg_path(f, SEG1, seg1, sizeof seg1);
    unsigned char spare_head[WAL_SEGMENT_HEADER_BYTES];
    pread_file(f, "log.spare", spare_head, sizeof spare_head, 0);
    char log[8192];
    uint64_t entries;

    /* 1. the rename out of the log not yet durable: the old segment is
     * back under its name, with its header */
    assert_int_equal(link(spare, seg1), 0);
    assert_int_equal(unlink(spare), 0);
    pwrite_file(f, SEG1, r.old_header, sizeof r.old_header, 0);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    fixture_close(f);
    assert_true(exists(f, SEG1));

    /* 2. renamed out, its header not yet rewritten: a leftover, removed */
    assert_int_equal(rename(seg1, tmp), 0);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    assert_false(exists(f, "log.recycle.tmp"));
    fixture_close(f);

    /* 3. its header rewritten, not yet renamed log.spare: removed too */
    recycle_afresh(f, &r);
    snap = r.last;
    assert_int_equal(rename(spare, tmp), 0);
    fixture_open(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    assert_false(exists(f, "log.recycle.tmp"));
    fixture_close(f);

    /* 4. log.spare: kept across the restart, it becomes the next segment */
    recycle_afresh(f, &r);
    snap = r.last;
    fixture_open(f);
    uint64_t first = append_into_next_segment(f, &r);
    char name[32];
    name_of(name, first);
    assert_int_equal(inode_of(f, name), r.ino);
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    fixture_close(f);

    /* 5. renamed into the log, its first group commit never written: the
     * spare's header and the earlier life's records only; an empty last
     * segment, removed */
    recycle_afresh(f, &r);
    snap = r.last;
    name_of(name, r.last + 1);
    char next[128];
    seg_path(f, name, next, sizeof next);
    assert_int_equal(rename(spare, next), 0);
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
    assert_false(exists(f, name));
    /* 6. ... with its header written but half of the first record, or the
     * header itself torn (new bytes and the spare's) */
    for (int variant = 0; variant < 3; variant++) {
        recycle_afresh(f, &r);
        snap = r.last;
        name_of(name, r.last + 1);
        seg_path(f, name, next, sizeof next);
        assert_int_equal(rename(spare, next), 0);
        unsigned char head[WAL_SEGMENT_HEADER_BYTES + 1024];
        memcpy(head, r.old_header, WAL_SEGMENT_HEADER_BYTES);
        put_be(head + 8, r.last + 1, 8);
        put_be(head + 24, 0x5ec7e7, 8);  /* the new life's secret */
        put_be(head + 32, r.seg1_last, 8); /* its earlier life's high */
        size_t span = make_record(head + WAL_SEGMENT_HEADER_BYTES, r.last + 1, r.last + 1, 3, 0x5ec7e7);
        if (variant == 0)
            pwrite_file(f, name, head, WAL_SEGMENT_HEADER_BYTES + span / 2, 0);
        else if (variant == 1)
            pwrite_file(f, name, head, 12, 0); /* 4 bytes of the new zxid */
        else
            pwrite_file(f, name, head + 12, 12, 12); /* its other 4, and the size */
        fixture_open(f);
        assert_recovered_after_snapshot(f, snap, r.last);
        assert_false(exists(f, name));
        append_range(f, r.last + 1, r.last + 2, true);
        r.last += 2;
        fixture_reopen(f);
        assert_recovered_after_snapshot(f, snap, r.last);
        fixture_close(f);
    }
}

/* A child makes a recycled spare, starts the next segment with it and dies
 * by SIGKILL in the first group commit, after pieces iovecs of it. */
static void die_writing_into_a_recycled_segment(struct fixture *f, struct recycled *r, int pieces)
{
    fflush(NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        uv_loop_init(&f->loop);
        recycle_first_segment(f, r);
        while (records_end(r->seg2, r->last + 2) <= SEG_BYTES) { /* segment 2 full */
            append_range(f, r->last + 1, r->last + 2, true);
            r->last += 2;
        }
        assert_int_equal(write(fds[1], r, sizeof *r), (ssize_t)sizeof *r);
        store_test_die_in_group_commit(pieces);
        append_range(f, r->last + 1, r->last + 2, true); /* into the recycled spare */
        _exit(99); /* not reached */
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], r, sizeof *r), (ssize_t)sizeof *r);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void a_kill_while_writing_into_a_recycled_segment_loses_nothing_acknowledged(void **state)
{
    struct fixture *f = *state;
    for (int pieces = 3; pieces >= -1; pieces -= 4) {
        start_empty(f);
        fixture_close(f);
        struct recycled r;
        die_writing_into_a_recycled_segment(f, &r, pieces);
        char name[32];
        name_of(name, r.last + 1);
        assert_int_equal(inode_of(f, name), r.ino);
        f->opts.segment_bytes = SEG_BYTES;
        fixture_open(f);
        /* -1: all of it written (the page cache survives a kill); 3: the
         * segment header and the first record whole, nothing of the second */
        uint64_t kept = pieces < 0 ? r.last + 2 : r.last + 1;
        assert_recovered_after_snapshot(f, r.snap, kept);
        append_range(f, kept + 1, kept + 2, true);
        fixture_reopen(f);
        assert_recovered_after_snapshot(f, r.snap, kept + 2);
        fixture_close(f);
    }
}

static void truncation_into_and_below_a_recycled_segment(void **state)
{
    struct fixture *f = *state;
    struct recycled r;
    recycle_first_segment(f, &r);
    uint64_t snap = r.last;
    uint64_t first = append_into_next_segment(f, &r);
    append_range(f, r.last + 1, r.last + 2, true);
    r.last += 2;
    /* into it: the records after first + 1 zeroed, the earlier life's kept */
    assert_int_equal(store_truncate_after(f->s, first + 1), 0);
    r.last = first + 1;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    append_range(f, r.last + 1, r.last + 1, true);
    r.last++;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
    fixture_close(f);

    /* a spare whose earlier life is not below where the log starts again
     * (here: left in a store emptied of everything else) is not used: its
     * records would read as the new segment's */
    recycle_afresh(f, &r);
    unsigned char spare[SEG_BYTES];
    pread_file(f, "log.spare", spare, sizeof spare, 0);
    start_empty(f);
    fixture_close(f);
    char path[128];
    seg_path(f, "log.spare", path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, spare, sizeof spare), (ssize_t)sizeof spare);
    close(fd);
    fixture_open(f);
    uint64_t last = r.seg1_last - 4; /* its earlier life's records 1..seg1_last would follow */
    for (uint64_t z = 1; z <= last; z++)
        append_payload(f, z, 5); /* other bytes than the earlier life's */
    wait_durable(f, last);
    fixture_reopen(f);
    assert_int_equal(store_last_zxid(f->s), last);
    assert_false(f->have_snapshot);
    assert_int_equal(f->nentries, last);
    for (size_t i = 0; i < f->nentries; i++)
        assert_entry_is_payload(&f->entries[i], 1 + i, 5);
}

static int no_problem(void *ctx, const char *file, uint64_t offset, uint64_t zxid, const char *what,
                      bool torn)
{
    (void)ctx, (void)zxid, (void)torn;
    fail_msg("%s at %" PRIu64 ": %s", file, offset, what);
    return -1;
}

/* The spare made of zeros when the current segment was half full does not
 * keep a segment compaction drops after that from being kept too (a second
 * slot, log.spare.1): the next two segments are made without zeros. */
static void a_segment_compacted_after_the_zeros_were_made_is_kept_too(void **state)
{
    struct fixture *f = *state;
    struct store_stats st;
    uint64_t z = open_into_a_second_segment(f);
    uint64_t seg2 = z - 1;
    while (records_end(seg2, z + 2) <= SEG_BYTES / 2 + 600) { /* past half: zeros made */
        append_range(f, z + 1, z + 2, true);
        z += 2;
    }
    uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
    while (!exists(f, "log.spare") && now_ms() < deadline)
        usleep(1000);
    assert_true(exists(f, "log.spare"));
    compact_before(f, seg2, z);
    assert_true(exists(f, "log.spare.1"));
    struct store_stats before;
    store_stats(f->s, &before);
    struct recycled r = {.last = z};
    append_into_next_segment(f, &r);
    append_into_next_segment(f, &r);
    store_stats(f->s, &st);
    assert_int_equal(st.log_segments_zeroed, before.log_segments_zeroed);
    uint64_t snap = z;
    fixture_reopen(f);
    assert_recovered_after_snapshot(f, snap, r.last);
}

/* A copy (a backup) holds descriptors of the segments it began with and
 * reads them after: compaction meanwhile unlinks, never recycles (the copy
 * would read the next life's bytes); once it is done, it recycles again. */
static void a_segment_a_copy_is_reading_is_not_recycled(void **state)
{
    struct fixture *f = *state;
    struct wal *w;
    assert_int_equal(wal_open(&w, f->dir, SEG_BYTES), 0);
    unsigned char data[600];
    memset(data, 7, sizeof data);
    uint64_t z = 0;
    struct wal_counts counts;
    uint64_t seg2 = 0;
    for (;;) { /* segments 1 and 2 full, 3 begun */
        struct wal_entry e = {++z, data, sizeof data};
        assert_int_equal(wal_append(w, &e, 1, false), 0);
        wal_counts(w, &counts);
        if (counts.segments == 2 && !seg2)
            seg2 = z;
        if (counts.segments == 3)
            break;
    }
    struct wal_copy c;
    assert_int_equal(wal_copy_begin(w, &c), 0);
    uint64_t entries, bytes;
    assert_int_equal(wal_compact(w, seg2 - 1, &entries, &bytes), 0);
    assert_true(entries > 0);
    assert_false(exists(f, SEG1));
    assert_false(exists(f, "log.recycle.tmp"));
    assert_false(exists(f, "log.spare"));
    char out[128];
    seg_path(f, "copy", out, sizeof out);
    assert_int_equal(mkdir(out, 0700), 0);
    assert_int_equal(wal_copy_finish(w, &c, out), 0);
    uint64_t recycled, zeroed;
    wal_spare_counts(w, &recycled, &zeroed);
    assert_int_equal(recycled, 0);
    /* the copy's first segment is the old one, whole */
    uint64_t seen = 0;
    assert_int_equal(wal_inspect(out, 0, UINT64_MAX, count_entry, no_problem, &seen), 0);
    assert_int_equal(seen, z);
    /* no copy under way: the next compaction recycles */
    wal_close(w);
    assert_int_equal(wal_open(&w, f->dir, SEG_BYTES), 0);
    for (;;) { /* segment 3 full, 4 begun */
        struct wal_entry e = {++z, data, sizeof data};
        assert_int_equal(wal_append(w, &e, 1, false), 0);
        wal_counts(w, &counts);
        if (counts.segments == 3)
            break;
    }
    /* the spare the preparer made of zeros is segment 4 now */
    wal_counts(w, &counts);
    assert_int_equal(wal_compact(w, counts.last_zxid - 1, &entries, &bytes), 0);
    uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
    do
        wal_spare_counts(w, &recycled, &zeroed);
    while (recycled == 0 && now_ms() < deadline && usleep(1000) == 0);
    assert_int_equal(recycled, 1);
    wal_close(w);
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

/* ---- the life's secret (format version 2) ---------------------------------- */

/* A record as format version 1 wrote it (no secret): zxid in group batch,
 * len bytes of payload_fill(zxid, salt); returns its span. */
static size_t make_v1_record(unsigned char *out, uint64_t zxid, uint64_t batch, size_t len,
                             unsigned salt)
{
    put_be(out, zxid, 8);
    put_be(out + 8, batch, 8);
    put_be(out + 16, len, 4);
    payload_fill(out + 24, len, zxid, salt);
    put_be(out + 20, record_crc(false, 0, out, out + 24, len), 4);
    size_t span = 24 + ((len + 7) & ~(size_t)7);
    memset(out + 24 + len, 0, span - 24 - len);
    return span;
}

/* Appends entries of data, one per group commit, after z until the next
 * segment starts; returns the last (the new segment's first). */
static uint64_t append_until_a_segment_starts(struct fixture *f, uint64_t z, const void *data,
                                              size_t len)
{
    struct store_stats st;
    store_stats(f->s, &st);
    uint64_t segments = st.log_segments;
    do {
        z++;
        assert_int_equal(store_append(f->s, z, data, len), 0);
        wait_durable(f, z);
        store_stats(f->s, &st);
    } while (st.log_segments == segments);
    return z;
}

/* A client's data is written verbatim into the log.  Here zxid 1's payload
 * holds a whole record of a future zxid, valid as the log wrote records
 * before the secret (crc32c over header and payload only); its segment is
 * recycled, and the new life writes one record that ends exactly where the
 * forged one sits.  It fails this life's check: never replayed. */
static void a_record_forged_in_a_payload_is_not_replayed_from_a_recycled_segment(void **state)
{
    struct fixture *f = *state;
    f->opts.segment_bytes = SEG_BYTES;
    fixture_open(f);
    enum { NEW = 200 }; /* the new life's record: WAL_SEGMENT_HEADER_BYTES + 24 + NEW */
    unsigned char payload[2000] = {0}, small[NEW];
    uint64_t forged = (uint64_t)1 << 40;
    /* at payload offset NEW: file offset WAL_SEGMENT_HEADER_BYTES + 24 + NEW */
    size_t fspan = make_v1_record(payload + NEW, forged, forged, 16, 5);
    assert_int_equal(store_append(f->s, 1, payload, sizeof payload), 0);
    wait_durable(f, 1);
    memset(small, 7, sizeof small);
    uint64_t z = append_until_a_segment_starts(f, 1, small, sizeof small);
    ino_t ino = inode_of(f, SEG1);
    compact_before(f, z, z); /* segment 1 (below z) becomes the spare */
    assert_false(exists(f, SEG1));
    uint64_t snap = z;
    z = append_until_a_segment_starts(f, z, small, sizeof small);
    char name[32];
    name_of(name, z);
    assert_int_equal(inode_of(f, name), ino); /* segment 1's file, a new life */
    unsigned char back[64];
    pread_file(f, name, back, fspan, WAL_SEGMENT_HEADER_BYTES + 24 + NEW);
    assert_memory_equal(back, payload + NEW, fspan); /* right where the log ends */
    fixture_reopen(f);
    assert_int_equal(store_last_zxid(f->s), z);
    assert_int_equal(f->snapshot_zxid, snap);
    assert_int_equal(f->nentries, z - snap);
    assert_int_equal(f->entries[f->nentries - 1].zxid, z);
    /* and still not after more of this life, a restart between */
    assert_int_equal(store_append(f->s, z + 1, small, sizeof small), 0);
    wait_durable(f, z + 1);
    fixture_reopen(f);
    assert_int_equal(store_last_zxid(f->s), z + 1);
    assert_int_equal(f->nentries, z + 1 - snap);
}

/* A segment of format version 1 (a 24-byte header, no secret), as the log
 * wrote it before: read, never appended to (the next record starts a
 * version 2 segment), and both read back together. */
static void a_segment_of_format_version_1_is_read_and_a_new_one_follows_it(void **state)
{
    struct fixture *f = *state;
    f->opts.segment_bytes = SEG_BYTES;
    fixture_open(f);
    fixture_close(f);
    unsigned char seg[SEG_BYTES] = {0};
    put_be(seg, 0x5a4e574c, 4); /* "ZNWL" */
    put_be(seg + 4, 1, 4);
    put_be(seg + 8, 1, 8);
    put_be(seg + 16, SEG_BYTES, 8);
    size_t off = 24;
    for (uint64_t z = 1; z <= 10; z++) /* groups of 2 */
        off += make_v1_record(seg + off, z, z - (z % 2 == 0), payload_len(z), 3);
    char path[128];
    seg_path(f, SEG1, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, seg, sizeof seg), (ssize_t)sizeof seg);
    close(fd);
    fixture_open(f);
    assert_recovered(f, 10);
    append_range(f, 11, 12, true);
    assert_true(exists(f, "log.000000000000000b")); /* a version 2 segment */
    unsigned char back[SEG_BYTES];
    pread_file(f, SEG1, back, sizeof back, 0);
    assert_memory_equal(back, seg, sizeof seg); /* not written into */
    unsigned char head[WAL_SEGMENT_HEADER_BYTES];
    pread_file(f, "log.000000000000000b", head, sizeof head, 0);
    assert_int_equal(get_be64(head) & 0xffffffffu, 2); /* its version */
    fixture_reopen(f);
    assert_recovered(f, 12);
    /* a version 1 torn tail is still dropped, a version 1 record after a
     * bad one in a segment a later one follows still refused */
    fixture_close(f);
    unsigned char zeros[24] = {0};
    pwrite_file(f, SEG1, zeros, sizeof zeros, records_end(1, 5) - 16);
    char log[8192], what[160];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    snprintf(what, sizeof what, "offset %" PRIu64 ": a record fails its check", records_end(1, 5) - 16);
    assert_one_clear_refusal_of(f->dir, SEG1 " is damaged at ", log, what);
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
        T(a_compacted_segment_becomes_the_next_one_without_writing_zeros),
        T(stale_records_after_the_new_ones_are_neither_replayed_nor_refused),
        T(a_torn_tail_over_stale_records_is_dropped_and_only_it_is_zeroed),
        T(a_crash_at_each_step_of_the_recycle_reopens_to_the_same_state),
        T(a_kill_while_writing_into_a_recycled_segment_loses_nothing_acknowledged),
        T(truncation_into_and_below_a_recycled_segment),
        T(a_segment_a_copy_is_reading_is_not_recycled),
        T(a_segment_compacted_after_the_zeros_were_made_is_kept_too),
        T(a_record_forged_in_a_payload_is_not_replayed_from_a_recycled_segment),
        T(a_segment_of_format_version_1_is_read_and_a_new_one_follows_it),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
