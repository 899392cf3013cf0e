/*
 * Unit tests of the LMDB store's refusal of damaged files (replication/store.h):
 * a bad checksum, a flipped byte, a damaged newest snapshot, a log compacted
 * past every valid snapshot, and a data file cut short anywhere (refused with
 * one clear line, never a signal) or only of free pages (still opens).
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
#include "store_wal.h"
#include "znode/errors.h"

/* ---- corruption -------------------------------------------------------- */

/* data.mdb's refusal (store_format.c). */
static void assert_one_clear_refusal(const char *dir, const char *log, const char *what)
{
    assert_one_clear_refusal_of(dir, "data.mdb is damaged: ", log, what);
}

/* The offset in the store's first log segment of the record after entries
 * first..upto (appended with payload_len each): the segment's header, then
 * each record's header and its payload padded to 8 bytes (store_wal.h). */
static uint64_t record_offset(uint64_t first, uint64_t upto)
{
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
    for (uint64_t z = first; z <= upto; z++)
        off += 24 + ((payload_len(z) + 7) & ~(uint64_t)7);
    return off;
}

static void an_entry_with_a_bad_checksum_refuses_recovery_with_a_clear_error(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 7);
    wait_durable(f, 10);
    unsigned char junk[50] = {1, 2, 3};
    assert_int_equal(store_test_append_corrupt(f->s, 11, junk, sizeof junk), 0);
    for (uint64_t z = 12; z <= 20; z++)
        append_payload(f, z, 7);
    wait_durable(f, 20);
    fixture_close(f);
    char log[8192];
    uint64_t entries;
    /* zxid 11's group commit was followed by durable ones: damage, refused
     * at open naming the segment and the record's offset */
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    char what[160];
    snprintf(what, sizeof what,
             "offset %" PRIu64 ": a record fails its check, and records of a later group commit follow it",
             record_offset(1, 10));
    assert_one_clear_refusal_of(f->dir, "log.0000000000000001 is damaged at ", log, what);
    /* refused, not repaired: the damage is still there for the operator */
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
}

/* Flips one byte at every place `marker` occurs in dir's file name (old
 * copies of a page may linger in LMDB's free pages).  Returns how many. */
static int flip_marker_in(const char *dir, const char *name, const void *marker,
                          size_t marker_len, size_t at)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    unsigned char *map = mmap(NULL, sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    int found = 0;
    unsigned char *p = map, *end = map + sb.st_size;
    while ((p = memmem(p, end - p, marker, marker_len))) {
        p[at] ^= 0x5a;
        found++;
        p += marker_len;
    }
    msync(map, sb.st_size, MS_SYNC);
    munmap(map, sb.st_size);
    close(fd);
    return found;
}

static int flip_marker_in_file(const char *dir, const void *marker, size_t marker_len, size_t at)
{
    return flip_marker_in(dir, "data.mdb", marker, marker_len, at);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

/* The snapshot's refusal names the file, the offset, what is wrong, and
 * what the operator does, on one line. */
static void assert_snapshot_refusal(const char *log, const char *file_and_offset, const char *what)
{
    const char *line = strstr(log, file_and_offset), *end = NULL;
    for (; line; line = strstr(line + 1, file_and_offset)) {
        end = strchr(line, '\n');
        const char *refusing = strstr(line, "refusing to start");
        if (end && refusing && refusing < end)
            break;
    }
    if (!line || !end || !strstr(line, what) || strstr(line, what) > end ||
        strstr(line, "refusing to start") > end || !strstr(line, "aside") ||
        strstr(line, "aside") > end) {
        fprintf(stderr, "no clear refusal naming '%s' and '%s' in:\n%s\n", file_and_offset, what,
                log);
        fail();
    }
}

static void a_byte_flipped_in_a_log_segment_is_refused_naming_the_file_and_offset(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 100; z++) {
        char text[200];
        int n = snprintf(text, sizeof text, "entry-%06" PRIu64 "-%0100d", z, 0);
        assert_int_equal(store_append(f->s, z, text, (size_t)n), 0);
        if (z % 10 == 0)
            wait_durable(f, z); /* several batches, several page versions */
    }
    wait_durable(f, 100);
    fixture_close(f);
    assert_int_equal(flip_marker_in(f->dir, "log.0000000000000001", "entry-000050-", 13, 20), 1);
    char log[8192];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
    /* records of 113 bytes: 24 + 120 each after the segment's header */
    char what[160];
    snprintf(what, sizeof what, "offset %u: a record fails its check", WAL_SEGMENT_HEADER_BYTES + 49 * (24 + 120));
    assert_one_clear_refusal_of(f->dir, "log.0000000000000001 is damaged at ", log, what);
    assert_int_equal(entries, 0); /* nothing was handed over */
}

static void a_damaged_newest_snapshot_falls_back_to_the_older_one_and_its_later_log(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    char blob_a[] = "snapshot-A-contents", blob_b[] = "snapshot-B-contents";
    for (uint64_t z = 1; z <= 30; z++)
        append_payload(f, z, 9);
    assert_int_equal(store_snapshot(f->s, 10, strdup(blob_a), sizeof blob_a), 0);
    assert_int_equal(store_snapshot(f->s, 20, strdup(blob_b), sizeof blob_b), 0);
    wait_durable(f, 30);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 2);
    assert_int_equal(st.log_entries, 30); /* compaction drops whole segments: none here */
    fixture_close(f);
    assert_false(flip_marker_in_file(f->dir, "snapshot-B", 10, 3) >= 1); /* not in LMDB */
    assert_int_equal(flip_marker_in(f->dir, "snapshot.14", "snapshot-B", 10, 3), 1);
    fixture_open(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 10);
    assert_memory_equal(f->snapshot, blob_a, sizeof blob_a);
    assert_int_equal(f->nentries, 20);
    for (uint64_t i = 0; i < 20; i++)
        assert_entry_is_payload(&f->entries[i], 11 + i, 9);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 1);
    /* the damaged file is kept aside for the operator, never read again */
    assert_false(file_exists(f->dir, "snapshot.14"));
    assert_true(file_exists(f->dir, "snapshot.14.damaged"));
    fixture_reopen(f);
    assert_int_equal(f->snapshot_zxid, 10);
    assert_int_equal(f->nentries, 20);
}

static void recovery_refuses_a_log_compacted_past_every_valid_snapshot(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    char blob_a[] = "snapshot-C-contents", blob_b[] = "snapshot-D-contents";
    for (uint64_t z = 1; z <= 30; z++)
        append_payload(f, z, 9);
    assert_int_equal(store_snapshot(f->s, 10, strdup(blob_a), sizeof blob_a), 0);
    assert_int_equal(store_snapshot(f->s, 20, strdup(blob_b), sizeof blob_b), 0);
    wait_durable(f, 30);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    fixture_close(f);
    assert_int_equal(flip_marker_in(f->dir, "snapshot.a", "snapshot-C", 10, 3), 1);
    assert_int_equal(flip_marker_in(f->dir, "snapshot.14", "snapshot-D", 10, 3), 1);
    char log[8192], where[160];
    uint64_t entries;
    /* entries 11..30 alone would build a tree missing 1..10 */
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), RECOVER_REFUSED);
    assert_int_equal(entries, 0);
    snprintf(where, sizeof where, "%s/snapshot.14 is damaged at offset 40", f->dir);
    assert_snapshot_refusal(log, where, "fail their checksum");
    /* refused, not repaired: both files are still there for the operator */
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), RECOVER_REFUSED);
    assert_true(file_exists(f->dir, "snapshot.a") && file_exists(f->dir, "snapshot.14"));
    assert_int_equal(store_open(&f->s, &f->loop, f->dir, &f->opts, on_durable, f), 0);
    forget_recovered(f);
    assert_int_equal(store_recover(f->s, on_snapshot, on_entry, f), ZN_CORRUPT);
    assert_false(f->have_snapshot);
    assert_int_equal(f->nentries, 0);
}

/* A leader's snapshot is the only record of the state up to its zxid: cut,
 * or gone, it is refused by name and offset, never replaced by an empty
 * tree and the log after it. */
/* A leader's snapshot, installed over a log that stops short of it, is not
 * fallen back from when its file is damaged: the snapshots before it and
 * the log would skip every transaction between (a fault run's member did,
 * and its tree differed from the leader's).  Refused by name instead. */
static void a_damaged_leaders_snapshot_is_refused_not_fallen_back_from_across_the_gap(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    char own_a[] = "snapshot-F-own", own_b[] = "snapshot-G-own", leader[] = "snapshot-H-leader";
    for (uint64_t z = 1; z <= 50; z++)
        append_payload(f, z, 9);
    assert_int_equal(store_snapshot(f->s, 20, strdup(own_a), sizeof own_a), 0);
    assert_int_equal(store_snapshot(f->s, 40, strdup(own_b), sizeof own_b), 0);
    wait_durable(f, 50);
    assert_int_equal(store_truncate_after(f->s, 1000), 0);
    assert_int_equal(store_snapshot(f->s, 1000, strdup(leader), sizeof leader), 0);
    for (uint64_t z = 1001; z <= 1010; z++)
        append_payload(f, z, 9);
    wait_durable(f, 1010);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 1); /* the older two are of no use any more */
    fixture_reopen(f);
    assert_int_equal(f->snapshot_zxid, 1000);
    assert_int_equal(f->nentries, 10);
    fixture_close(f);
    assert_false(file_exists(f->dir, "snapshot.14") || file_exists(f->dir, "snapshot.28"));
    assert_int_equal(flip_marker_in(f->dir, "snapshot.3e8", "snapshot-H", 10, 3), 1);
    char log[8192], where[160];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), RECOVER_REFUSED);
    snprintf(where, sizeof where, "%s/snapshot.3e8 is damaged at offset 40", f->dir);
    assert_snapshot_refusal(log, where, "fail their checksum");
}

static void a_cut_or_missing_only_snapshot_is_refused_naming_the_file(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    char blob[] = "snapshot-E-contents, a leader's";
    assert_int_equal(store_snapshot(f->s, 100, strdup(blob), sizeof blob), 0);
    for (uint64_t z = 101; z <= 110; z++)
        append_payload(f, z, 9);
    wait_durable(f, 110);
    fixture_close(f);
    char path[128], log[8192], where[160];
    snprintf(path, sizeof path, "%s/snapshot.64", f->dir);
    assert_int_equal(truncate(path, 40 + sizeof blob - 5), 0);
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), RECOVER_REFUSED);
    snprintf(where, sizeof where, "%s/snapshot.64 is damaged at offset %zu", f->dir,
             40 + sizeof blob - 5);
    assert_snapshot_refusal(log, where, "cut short");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), RECOVER_REFUSED);
    snprintf(where, sizeof where, "%s/snapshot.64 is damaged at offset 0", f->dir);
    assert_snapshot_refusal(log, where, "missing");
}

/* ---- a data file cut short ------------------------------------------------ */

/* A store of 400 log entries of 1-3 KiB in several batches, a snapshot,
 * and data.mdb grown past 20 pages with metadata (the log and the snapshot
 * are in files of their own). */
static uint64_t build_store_to_cut(struct fixture *f)
{
    fixture_open(f);
    unsigned char buf[3072];
    for (uint64_t z = 1; z <= 400; z++) {
        size_t len = 1024 + (size_t)(z * 37 % 2048);
        payload_fill(buf, len, z, 3);
        assert_int_equal(store_append(f->s, z, buf, len), 0);
        if (z % 50 == 0)
            wait_durable(f, z);
        if (z == 200)
            assert_int_equal(store_snapshot(f->s, 200, strdup("a-snapshot"), 11), 0);
    }
    wait_durable(f, 400);
    /* The log and the snapshot are files of their own: what fills data.mdb's
     * pages is metadata (some 1,200 values, about 30 pages). */
    for (int i = 0; i < 1200; i++) {
        char key[48];
        snprintf(key, sizeof key, "filler-%04d-%032d", i, 0);
        assert_int_equal(store_meta_put(f->s, key, (uint64_t)i), 0);
    }
    fixture_close(f);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

static void cut_data_file(struct fixture *f, uint64_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(truncate(path, (off_t)size), 0);
}

/* Reads the whole data.mdb (to restore it byte for byte before each cut). */
static unsigned char *read_data_file(struct fixture *f, uint64_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    unsigned char *bytes = malloc(size);
    assert_non_null(bytes);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    assert_int_equal(fread(bytes, 1, size, in), size);
    fclose(in);
    return bytes;
}

static void write_data_file(struct fixture *f, const unsigned char *bytes, uint64_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(bytes, 1, size, out), size);
    assert_int_equal(fclose(out), 0);
}

static void a_data_file_cut_anywhere_is_refused_with_a_clear_error_and_no_signal(void **state)
{
    struct fixture *f = *state;
    uint64_t size = build_store_to_cut(f);
    long page = sysconf(_SC_PAGESIZE); /* LMDB's page size is the OS page size */
    /* Up to the newest commit's last page: the file's pages after it are
     * free (metadata commits reuse pages), and a file short of only those
     * opens (the test below). */
    unsigned char *mark = calloc(1u << 17, 1);
    uint64_t in_use, last;
    assert_int_equal(store_test_pages_in_use(f->dir, mark, 1u << 20, &in_use, &last), 0);
    uint64_t highest = 1; /* the meta pages */
    for (uint64_t p = 2; p <= last; p++)
        if (mark[p / 8] & (1u << (p % 8)))
            highest = p;
    free(mark);
    size = (highest + 1) * (uint64_t)page;
    /* every cut starts from these same bytes (a rebuild need not give the
     * same file: its size depends on how the appends happened to batch) */
    unsigned char *intact = read_data_file(f, size);
    assert_true(size > 20u * (uint64_t)page && size % (uint64_t)page == 0);
    char log[8192];
    uint64_t entries;
    /* intact, it opens with everything */
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
    assert_int_equal(entries, 200);
    struct {
        uint64_t cut;
        const char *what;
    } cuts[] = {
        {1, "pages"},                            /* mid-page: the last page torn */
        {100, "pages"},
        {12305, "pages"},                        /* the fault harness's odd cut */
        {(uint64_t)page, "pages"},               /* one whole page */
        {3u * (uint64_t)page, "pages"},          /* a few pages */
        {size - 2u * (uint64_t)page, "pages"},   /* only the meta pages left */
        {size - (uint64_t)page - 100, "shorter than its two meta pages"},
        {size - 100, "shorter than its first meta page"},
        {size, "shorter than its first meta page"}, /* an empty file */
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint64_t now = size - cuts[i].cut;
        /* each cut from the same intact bytes */
        write_data_file(f, intact, size);
        cut_data_file(f, now);
        printf("# cut %" PRIu64 " of %" PRIu64 " bytes\n", cuts[i].cut, size);
        assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPEN_REFUSED);
        assert_one_clear_refusal(f->dir, log, cuts[i].what);
    }
    free(intact);
}

/* Reads LMDB's free list (the free database, dbi 0: records of page-number
 * lists, count first) of the closed store in dir: a bit per free page in
 * free_map (pages below map_pages), their number in *count, and the pages
 * the databases use by LMDB's own counts (mdb_stat of each) in *used. */
static void read_free_list(const char *dir, unsigned char *free_map, size_t map_pages,
                           uint64_t *count, uint64_t *used)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
    MDB_txn *txn;
    MDB_cursor *cur;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, 0, &cur), 0);
    MDB_val key, value;
    *count = 0;
    for (int rc = mdb_cursor_get(cur, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &value, MDB_NEXT)) {
        size_t n;
        memcpy(&n, value.mv_data, sizeof n);
        assert_true((n + 1) * sizeof(size_t) <= value.mv_size);
        for (size_t i = 1; i <= n; i++) {
            size_t id;
            memcpy(&id, (const char *)value.mv_data + i * sizeof(size_t), sizeof id);
            if (id < map_pages)
                free_map[id / 8] |= (unsigned char)(1u << (id % 8));
            (*count)++;
        }
    }
    mdb_cursor_close(cur);
    /* LMDB's audit: free + branch + leaf + overflow pages of every database
     * + the two meta pages = the next page number. */
    *used = 0;
    const char *names[] = {NULL, "log", "snap", "meta"};
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, 0, &st), 0);
    *used += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    for (size_t i = 0; i < 4; i++) {
        MDB_dbi dbi;
        assert_int_equal(mdb_dbi_open(txn, names[i], 0, &dbi), 0);
        assert_int_equal(mdb_stat(txn, dbi, &st), 0);
        *used += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static bool bit(const unsigned char *map, uint64_t p) { return map[p / 8] & (1u << (p % 8)); }

/* Whether the last whole page of dir's data.mdb is on LMDB's free list. */
static bool last_page_is_free(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    size_t pages = (size_t)sb.st_size / (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *free_map = calloc(pages / 8 + 1, 1);
    uint64_t count, used;
    read_free_list(dir, free_map, pages, &count, &used);
    bool last_free = bit(free_map, pages - 1);
    free(free_map);
    return last_free;
}

/* The walk at open reaches exactly the pages LMDB counts in use: with the
 * free list and the meta pages they make up every page up to the last. */
static void assert_walk_partitions_the_file(const char *dir)
{
    const uint64_t max_pages = 1u << 20;
    unsigned char *in_use = calloc(max_pages / 8, 1), *free_map = calloc(max_pages / 8, 1);
    uint64_t reached, last, free_count, used;
    assert_int_equal(store_test_pages_in_use(dir, in_use, max_pages, &reached, &last), 0);
    assert_true(last < max_pages);
    read_free_list(dir, free_map, max_pages, &free_count, &used);
    printf("# last page %" PRIu64 ": %" PRIu64 " in use (LMDB counts %" PRIu64 "), %" PRIu64 " free\n",
           last, reached, used, free_count);
    assert_int_equal(reached, used);
    assert_false(bit(in_use, 0) || bit(in_use, 1) || bit(free_map, 0) || bit(free_map, 1));
    uint64_t either = 0;
    for (uint64_t p = 2; p <= last; p++) {
        assert_false(bit(in_use, p) && bit(free_map, p));
        either += bit(in_use, p) || bit(free_map, p);
    }
    assert_int_equal(either + 2, last + 1);
    assert_int_equal(reached + free_count + 2, last + 1);
    free(in_use);
    free(free_map);
}

static void a_data_file_short_only_of_free_pages_still_opens_with_everything(void **state)
{
    /* LMDB never shrinks its file: after a truncation the pages at its end
     * are often free, and a file that lost only those is intact (the check
     * walks the B-trees to tell). */
    struct fixture *f = *state;
    fixture_open(f);
    unsigned char buf[3072];
    uint64_t z = 0;
    bool found = false;
    for (int round = 0; round < 20 && !found; round++) {
        for (int i = 0; i < 200; i++) {
            size_t len = 512 + (size_t)(z * 131 % 2500);
            payload_fill(buf, len, ++z, 6);
            assert_int_equal(store_append(f->s, z, buf, len), 0);
            if (i % 40 == 39)
                wait_durable(f, z);
        }
        wait_durable(f, z);
        assert_int_equal(store_truncate_after(f->s, z - 180), 0);
        z -= 180;
        assert_int_equal(store_meta_put(f->s, "barrier", (uint64_t)round), 0);
        fixture_close(f);
        assert_walk_partitions_the_file(f->dir);
        found = last_page_is_free(f->dir);
        if (!found)
            fixture_open(f);
    }
    assert_true(found);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - sysconf(_SC_PAGESIZE)), 0);
    char log[8192];
    uint64_t entries;
    assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
    assert_int_equal(entries, z);
    /* and it keeps working: new entries after it */
    fixture_open(f);
    assert_int_equal(store_last_zxid(f->s), z);
    for (int i = 0; i < 300; i++) {
        payload_fill(buf, 2000, ++z, 7);
        assert_int_equal(store_append(f->s, z, buf, 2000), 0);
    }
    wait_durable(f, z);
    fixture_reopen(f);
    assert_int_equal(f->nentries, z);
    assert_int_equal(f->entries[0].zxid, 1);
    assert_int_equal(f->entries[0].len, 512);
    payload_fill(buf, 512, 1, 6);
    assert_memory_equal(f->entries[0].data, buf, 512);
}

static void an_intact_store_still_opens_after_many_reopens_and_deletions(void **state)
{
    /* Compaction and truncation free pages (the file can then be longer than
     * the pages in use, or, if freed pages at its end were never written,
     * shorter than the last page number): an intact store always opens. */
    struct fixture *f = *state;
    f->opts.snapshots_kept = 2;
    fixture_open(f);
    unsigned char buf[3072];
    uint64_t z = 0;
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 150; i++) {
            size_t len = 16 + (size_t)(z * 131 % 3000);
            payload_fill(buf, len, ++z, 5);
            assert_int_equal(store_append(f->s, z, buf, len), 0);
        }
        wait_durable(f, z);
        if (round % 3 == 1)
            assert_int_equal(store_snapshot(f->s, z - 50, strdup("snap"), 5), 0);
        if (round % 4 == 3) {
            assert_int_equal(store_truncate_after(f->s, z - 70), 0);
            z -= 70;
        }
        assert_int_equal(store_meta_put(f->s, "barrier", (uint64_t)round), 0);
        fixture_close(f);
        assert_walk_partitions_the_file(f->dir);
        char log[8192];
        uint64_t entries;
        assert_int_equal(open_in_child(f->dir, log, sizeof log, &entries), OPENED);
        fixture_open(f);
        assert_int_equal(store_last_zxid(f->s), z);
    }
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(an_entry_with_a_bad_checksum_refuses_recovery_with_a_clear_error),
        T(a_byte_flipped_in_a_log_segment_is_refused_naming_the_file_and_offset),
        T(a_damaged_newest_snapshot_falls_back_to_the_older_one_and_its_later_log),
        T(recovery_refuses_a_log_compacted_past_every_valid_snapshot),
        T(a_cut_or_missing_only_snapshot_is_refused_naming_the_file),
        T(a_damaged_leaders_snapshot_is_refused_not_fallen_back_from_across_the_gap),
        T(a_data_file_cut_anywhere_is_refused_with_a_clear_error_and_no_signal),
        T(an_intact_store_still_opens_after_many_reopens_and_deletions),
        T(a_data_file_short_only_of_free_pages_still_opens_with_everything),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
