/*
 * Unit tests of the store's snapshots (replication/store.h): compaction
 * keeping the log bounded, recovery from a snapshot, snapshots written into
 * files of their own with only a record in LMDB, replaced ones unlinked,
 * their blobs given back through their release function as they are
 * written, format 1 migrated into a file, a snapshot from a leader the log
 * does not hold, and log appends queued behind a big snapshot.
 */

#include <dirent.h>
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
#include "store_backup.h"
#include "store_fixture.h"
#include "store_snapfile.h"
#include "znode/errors.h"

/* ---- snapshots --------------------------------------------------------- */

static void *snapshot_blob(uint64_t zxid, size_t len)
{
    unsigned char *blob = malloc(len);
    payload_fill(blob, len, zxid, 77);
    return blob;
}

static void snapshots_and_compaction_keep_the_log_bounded(void **state)
{
    struct fixture *f = *state;
    /* 4 KB segments; compaction drops whole ones, and a group commit (here
     * up to a round) never spans two */
    f->opts.segment_bytes = 4096;
    fixture_open(f);
    const uint64_t per_round = 300, rounds = 40;
    uint64_t z = 0;
    struct store_stats st;
    for (uint64_t r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < per_round; i++)
            append_payload(f, ++z, 5);
        /* the tree as of a little before the last append */
        uint64_t snap_zxid = z - 10;
        size_t len = 100000 + (size_t)r * 1000;
        assert_int_equal(store_snapshot(f->s, snap_zxid, snapshot_blob(snap_zxid, len), len), 0);
        wait_durable(f, z);
        store_stats(f->s, &st);
        /* every entry reported durable: at most snapshots_kept rounds of log
         * remain (plus the tail after the newest snapshot) */
        assert_true(st.snapshot_count <= ZN_STORE_SNAPSHOTS_KEPT);
    }
    /* ensure the last snapshot is on disk: a synchronous op runs after it */
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    store_stats(f->s, &st);
    printf("# compaction: appended=%" PRIu64 " log_entries=%" PRIu64 " snapshots=%" PRIu64 "\n", z,
           st.log_entries, st.snapshot_count);
    assert_int_equal(st.snapshot_count, ZN_STORE_SNAPSHOTS_KEPT);
    assert_true(st.log_entries <= ZN_STORE_SNAPSHOTS_KEPT * per_round + 10);
    assert_true(st.log_entries >= (ZN_STORE_SNAPSHOTS_KEPT - 1) * per_round);
    uint64_t on_disk = st.log_entries;

    fixture_reopen(f);
    store_stats(f->s, &st); /* counted from disk at open */
    assert_int_equal(st.log_entries, on_disk);
    assert_int_equal(st.snapshot_count, ZN_STORE_SNAPSHOTS_KEPT);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, z - 10);
    void *expected = snapshot_blob(z - 10, f->snapshot_len);
    assert_int_equal(f->snapshot_len, 100000 + (rounds - 1) * 1000);
    assert_memory_equal(f->snapshot, expected, f->snapshot_len);
    free(expected);
    assert_int_equal(f->nentries, 10);
    for (uint64_t i = 0; i < 10; i++)
        assert_entry_is_payload(&f->entries[i], z - 9 + i, 5);
}

static void recovery_after_a_snapshot_hands_over_the_snapshot_then_only_later_entries(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 100; z++)
        append_payload(f, z, 6);
    size_t len = 3 * ZN_STORE_SNAPSHOT_CHUNK_BYTES + 12345; /* several chunks */
    assert_int_equal(store_snapshot(f->s, 60, snapshot_blob(60, len), len), 0);
    for (uint64_t z = 101; z <= 150; z++)
        append_payload(f, z, 6);
    wait_durable(f, 150);
    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 60);
    assert_int_equal(f->snapshot_len, len);
    void *expected = snapshot_blob(60, len);
    assert_memory_equal(f->snapshot, expected, len);
    free(expected);
    assert_int_equal(f->nentries, 90);
    for (uint64_t i = 0; i < 90; i++)
        assert_entry_is_payload(&f->entries[i], 61 + i, 6);
    assert_int_equal(store_last_zxid(f->s), 150);
    /* an empty snapshot is a valid snapshot */
    assert_int_equal(store_snapshot(f->s, 150, malloc(1), 0), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 150);
    assert_int_equal(f->snapshot_len, 0);
    assert_int_equal(f->nentries, 0);
}

/* ---- snapshot files ------------------------------------------------------ */

/* Counts the records of dir's (closed) store under snapshot zxid: the
 * record of its file (or, before migration, a header and chunks).  Reads
 * LMDB directly, so leftovers the store hides are seen. */
static size_t snapshot_records_on_disk(const char *dir, uint64_t zxid)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "snap", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    size_t n = 0;
    MDB_val key, value;
    for (int rc = mdb_cursor_get(cur, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &value, MDB_NEXT)) {
        assert_int_equal(key.mv_size, 12);
        uint64_t z = 0;
        for (int i = 0; i < 8; i++)
            z = (z << 8) | ((unsigned char *)key.mv_data)[i];
        n += z == zxid;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* The size of dir/snapshot.<zxid>'s name which (STORE_SNAPFILE_FINAL, or a
 * temporary name), or -1. */
static long long snapshot_file_bytes(const char *dir, uint64_t zxid, int which)
{
    char path[4096];
    assert_int_equal(store_snapfile_path(path, sizeof path, dir, zxid, which), 0);
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The size of dir/snapshot.<zxid>, or -1; a file of a blob of n bytes is HDR + n. */
#define HDR STORE_SNAPFILE_HEADER_BYTES
static long long final_bytes(const char *dir, uint64_t zxid)
{
    return snapshot_file_bytes(dir, zxid, STORE_SNAPFILE_FINAL);
}

/* A snapshot file written, as a snapshot child (STORE_SNAPFILE_TMP) or the
 * store's writer (_TMP_STORE) writes one. */
static int write_tmp(const char *dir, uint64_t zxid, int which, const void *blob, size_t len)
{
    return store_snapfile_write(dir, zxid, which, blob, len, 0, NULL, NULL, NULL);
}

/* Resident bytes of this process's map of data.mdb in dir (from smaps). */
static uint64_t mapped_rss_bytes(const char *dir)
{
    char want[4096];
    snprintf(want, sizeof want, "%s/data.mdb", dir);
    FILE *smaps = fopen("/proc/self/smaps", "r");
    assert_non_null(smaps);
    char line[4096];
    bool in = false;
    uint64_t rss = 0;
    while (fgets(line, sizeof line, smaps)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            size_t n = strlen(line), w = strlen(want);
            in = n >= w && strcmp(line + n - w, want) == 0;
            continue;
        }
        unsigned long kb;
        if (in && sscanf(line, "Rss: %lu kB", &kb) == 1)
            rss += (uint64_t)kb * 1024;
    }
    fclose(smaps);
    return rss;
}

/* LMDB maps every log page it appends to; the store drops those mappings
 * every 256 commits, so the log does not stay in the process's RSS. */
static void the_log_does_not_stay_mapped_in_the_processs_rss(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    uint64_t z = 0;
    /* What stays mapped is what the commits since the last drop touched (up
     * to 256 commits, about 1 MB here): the log must be several times that,
     * or the test only measures where the last drop fell (it failed 1 run in
     * 5 with 700 commits). */
    for (unsigned commit = 0; commit < 2000; commit++) {
        for (unsigned i = 0; i < 8; i++)
            append_payload(f, ++z, 9);
        wait_durable(f, z);
    }
    struct store_stats st;
    store_stats(f->s, &st);
    assert_true(st.log_bytes > 4500000); /* 16,000 entries of 1-700 bytes */
    uint64_t rss = mapped_rss_bytes(f->dir);
    if (rss * 2 > st.log_bytes)
        fail_msg("data.mdb keeps %" PRIu64 " bytes mapped for a log of %" PRIu64 " bytes", rss,
                 st.log_bytes);
}

/* A blob handed over with store_snapshot_release goes back through its
 * release function, once, with its length, and only after it is written. */
static unsigned released_count;
static size_t released_len;
static void *released_blob;
static void count_release(void *blob, size_t len)
{
    released_count++;
    released_len = len;
    released_blob = blob;
    free(blob);
}

static void a_snapshot_blob_is_given_back_through_its_release_function_once(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    released_count = 0;
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 6);
    size_t len = 2 * ZN_STORE_SNAPSHOT_CHUNK_BYTES + 7;
    void *blob = snapshot_blob(10, len);
    assert_int_equal(store_snapshot_release(f->s, 10, blob, len, count_release), 0);
    /* a synchronous call queued after it returns once the snapshot is written */
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    assert_int_equal(released_count, 1);
    assert_int_equal(released_len, len);
    assert_ptr_equal(released_blob, blob);
    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 10);
    assert_int_equal(f->snapshot_len, len);
    void *expected = snapshot_blob(10, len);
    assert_memory_equal(f->snapshot, expected, len);
    free(expected);
    assert_int_equal(released_count, 1);
}

/* A blob written in several chunks goes back in pieces, each once the
 * chunk that held it is written: in order, page-aligned, whole
 * pages but the last, covering the blob once.  The pieces are unmapped for
 * real, so a piece given back while the store still reads it would fault. */
static struct released_piece {
    unsigned char *ptr;
    size_t len;
} released_pieces[32];
static size_t released_piece_count;
static void unmap_piece(void *piece, size_t len)
{
    assert_true(released_piece_count < sizeof released_pieces / sizeof released_pieces[0]);
    released_pieces[released_piece_count++] = (struct released_piece){piece, len};
    assert_int_equal(munmap(piece, len), 0);
}

static void a_snapshot_blob_goes_back_in_pieces_as_it_is_written(void **state)
{
    struct fixture *f = *state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    f->opts.snapshot_write_bytes = page + page / 2;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 6);
    size_t len = 5 * page + 123; /* 4 writes of 1.5 pages */
    unsigned char *blob = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
    assert_true(blob != MAP_FAILED);
    void *content = snapshot_blob(10, len);
    memcpy(blob, content, len);
    released_piece_count = 0;
    assert_int_equal(store_snapshot_release(f->s, 10, blob, len, unmap_piece), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0); /* runs after the snapshot */
    /* more than one piece: the pages went while the rest was being written */
    assert_true(released_piece_count >= 3);
    size_t covered = 0;
    for (size_t i = 0; i < released_piece_count; i++) {
        assert_ptr_equal(released_pieces[i].ptr, blob + covered);
        assert_int_equal((uintptr_t)released_pieces[i].ptr % page, 0);
        assert_true(released_pieces[i].len > 0);
        if (i + 1 < released_piece_count)
            assert_int_equal(released_pieces[i].len % page, 0);
        covered += released_pieces[i].len;
    }
    assert_int_equal(covered, len);
    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 10);
    assert_int_equal(f->snapshot_len, len);
    assert_memory_equal(f->snapshot, content, len);
    free(content);
}

static void snapshot_blob_check(struct fixture *f, uint64_t zxid, size_t len);

/* A snapshot goes into its own file, written in chunks, and LMDB gets one
 * record (one commit); no temporary file is left. */
static void a_snapshot_is_written_into_its_own_file_with_one_record(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshot_write_bytes = 4096;
    fixture_open(f);
    for (uint64_t z = 1; z <= 100; z++)
        append_payload(f, z, 20);
    wait_durable(f, 100);
    struct store_stats before, after;
    store_stats(f->s, &before);
    size_t len = 8 * 4096 + 321; /* 9 chunks */
    assert_int_equal(store_snapshot(f->s, 100, snapshot_blob(100, len), len), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0); /* runs after the snapshot */
    store_stats(f->s, &after);
    assert_int_equal(after.fsyncs - before.fsyncs, 1 + 1); /* its record + the barrier */
    assert_int_equal(after.snapshot_count, 1);
    assert_int_equal(after.snapshot_zxid, 100);
    assert_int_equal(after.snapshots_failed, 0);
    assert_string_equal(store_snapshot_dir(f->s), f->dir);
    for (uint64_t z = 101; z <= 120; z++)
        append_payload(f, z, 20);
    wait_durable(f, 120);
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 100), 1);
    assert_int_equal(final_bytes(f->dir, 100), HDR + len);
    assert_int_equal(snapshot_file_bytes(f->dir, 100, STORE_SNAPFILE_TMP_STORE), -1);
    fixture_open(f);
    snapshot_blob_check(f, 100, len);
    assert_int_equal(f->nentries, 20);
    for (uint64_t i = 0; i < 20; i++)
        assert_entry_is_payload(&f->entries[i], 101 + i, 20);
}

/* A snapshot written by someone else (the snapshot child) as its temporary
 * file is renamed and recorded; one whose header lies is refused and
 * removed, and counted failed. */
static void a_snapshot_file_written_by_a_child_is_recorded_and_a_bad_one_removed(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 30; z++)
        append_payload(f, z, 20);
    wait_durable(f, 30);
    size_t len = 5000;
    void *blob = snapshot_blob(20, len);
    assert_int_equal(write_tmp(f->dir, 20, STORE_SNAPFILE_TMP, blob, len), 0);
    free(blob);
    assert_int_equal(store_snapshot_file(f->s, 20), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_zxid, 20);
    assert_int_equal(st.snapshots_failed, 0);
    assert_int_equal(snapshot_file_bytes(f->dir, 20, STORE_SNAPFILE_TMP), -1);
    assert_int_equal(final_bytes(f->dir, 20), HDR + len);
    /* a cut temporary file */
    blob = snapshot_blob(30, len);
    assert_int_equal(write_tmp(f->dir, 30, STORE_SNAPFILE_TMP, blob, len), 0);
    free(blob);
    char path[4096];
    assert_int_equal(store_snapfile_path(path, sizeof path, f->dir, 30, STORE_SNAPFILE_TMP), 0);
    assert_int_equal(truncate(path, HDR + len - 1), 0);
    assert_int_equal(store_snapshot_file(f->s, 30), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 2), 0);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_zxid, 20);
    assert_int_equal(st.snapshots_failed, 1);
    assert_int_equal(snapshot_file_bytes(f->dir, 30, STORE_SNAPFILE_TMP), -1);
    assert_int_equal(final_bytes(f->dir, 30), -1);
    fixture_reopen(f);
    snapshot_blob_check(f, 20, len);
    assert_int_equal(f->nentries, 10);
}

/* A replaced snapshot goes with its record, in the new one's transaction,
 * and its file with one unlink after it. */
static void a_replaced_snapshot_goes_with_its_record_and_its_file(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshots_kept = 2;
    fixture_open(f);
    for (uint64_t z = 1; z <= 100; z++)
        append_payload(f, z, 20);
    wait_durable(f, 100);
    size_t big = 3u << 20;
    assert_int_equal(store_snapshot(f->s, 100, snapshot_blob(100, big), big), 0);
    for (uint64_t z = 101; z <= 120; z++)
        append_payload(f, z, 20);
    wait_durable(f, 120);
    assert_int_equal(store_snapshot(f->s, 110, snapshot_blob(110, 1000), 1000), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    assert_int_equal(final_bytes(f->dir, 100), HDR + big);
    struct store_stats before, after;
    store_stats(f->s, &before);
    assert_int_equal(store_snapshot(f->s, 120, snapshot_blob(120, 1000), 1000), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 2), 0);
    store_stats(f->s, &after);
    /* the new one's record (1), the barrier (1); the log's compaction up to
     * 110 unlinks nothing (its 120 entries are in one segment) */
    assert_int_equal(after.fsyncs - before.fsyncs, 1 + 1);
    assert_int_equal(after.snapshot_count, 2);
    assert_int_equal(after.snapshot_zxid, 120);
    assert_int_equal(final_bytes(f->dir, 100), -1);
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 100), 0);
    assert_int_equal(snapshot_records_on_disk(f->dir, 110), 1);
    assert_int_equal(snapshot_records_on_disk(f->dir, 120), 1);
    fixture_open(f);
    snapshot_blob_check(f, 120, 1000);
}

/* Fraction (0..1) of dir/snapshot.<zxid>'s pages in the page cache (mincore). */
static double snapshot_file_cached(const char *dir, uint64_t zxid, int which)
{
    char path[4096];
    assert_int_equal(store_snapfile_path(path, sizeof path, dir, zxid, which), 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = ((size_t)st.st_size + page - 1) / page;
    unsigned char *vec = malloc(pages);
    assert_int_equal(mincore(p, (size_t)st.st_size, vec), 0);
    size_t in = 0;
    for (size_t i = 0; i < pages; i++)
        in += vec[i] & 1;
    free(vec);
    munmap(p, (size_t)st.st_size);
    close(fd);
    return (double)in / (double)pages;
}

/* The snapshot child's way of writing a file (store_snapfile_begin, append
 * in pieces of any size, finish) makes the same file as store_snapfile_write;
 * abort leaves none; a snapshot's pages stay in the page cache (a restart
 * reads it from there) until a newer one is recorded. */
static void a_streamed_snapshot_file_is_the_same_file_and_stays_cached_until_replaced(void **state)
{
    struct fixture *f = *state;
    size_t len = (3u << 20) + 123;
    uint8_t *blob = malloc(len);
    for (size_t i = 0; i < len; i++)
        blob[i] = (uint8_t)(i * 2654435761u >> 13);
    struct store_snapfile_out out;
    assert_int_equal(store_snapfile_begin(&out, f->dir, 7, STORE_SNAPFILE_TMP, 64u << 10), 0);
    const size_t pieces[] = {1, 1000, 200000, 65536, 65535};
    size_t done = 0;
    for (size_t i = 0; done < len; i++) {
        size_t n = i < sizeof pieces / sizeof pieces[0] ? pieces[i] : 300000;
        if (n > len - done)
            n = len - done;
        assert_int_equal(store_snapfile_append(&out, blob + done, n), 0);
        done += n;
    }
    uint32_t crc = 0, whole_crc = 0;
    assert_int_equal(store_snapfile_finish(&out, &crc), 0);
    assert_int_equal(crc, store_snapfile_blob_crc(7, blob, len));
    /* written, fsync'd and still in the page cache (before anything reads it) */
    assert_true(snapshot_file_cached(f->dir, 7, STORE_SNAPFILE_TMP) > 0.9);
    assert_int_equal(store_snapfile_write(f->dir, 7, STORE_SNAPFILE_TMP_STORE, blob, len, 64u << 10,
                                          NULL, NULL, &whole_crc), 0);
    assert_int_equal(whole_crc, crc);
    /* byte for byte the same file, header included */
    char a[4096], b[4096];
    assert_int_equal(store_snapfile_path(a, sizeof a, f->dir, 7, STORE_SNAPFILE_TMP), 0);
    assert_int_equal(store_snapfile_path(b, sizeof b, f->dir, 7, STORE_SNAPFILE_TMP_STORE), 0);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    uint8_t *ba = malloc(HDR + len + 1), *bb = malloc(HDR + len + 1);
    assert_int_equal(fread(ba, 1, HDR + len + 1, fa), HDR + len);
    assert_int_equal(fread(bb, 1, HDR + len + 1, fb), HDR + len);
    assert_memory_equal(ba, bb, HDR + len);
    assert_memory_equal(ba + HDR, blob, len);
    fclose(fa);
    fclose(fb);
    free(ba);
    free(bb);
    struct store_snapfile_facts facts;
    assert_int_equal(store_snapfile_check_header(f->dir, 7, STORE_SNAPFILE_TMP, &facts), 0);
    assert_int_equal(facts.len, len);
    /* abort: nothing left under the temporary name */
    assert_int_equal(store_snapfile_begin(&out, f->dir, 8, STORE_SNAPFILE_TMP, 0), 0);
    assert_int_equal(store_snapfile_append(&out, blob, 4096), 0);
    store_snapfile_abort(&out);
    assert_int_equal(snapshot_file_bytes(f->dir, 8, STORE_SNAPFILE_TMP), -1);
    free(blob);

    /* through the store: the newest stays cached, the one it replaces not */
    f->opts.snapshots_kept = 2;
    fixture_open(f);
    for (uint64_t z = 1; z <= 120; z++)
        append_payload(f, z, 20);
    wait_durable(f, 120);
    size_t big = 3u << 20;
    assert_int_equal(store_snapshot(f->s, 100, snapshot_blob(100, big), big), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    assert_true(snapshot_file_cached(f->dir, 100, STORE_SNAPFILE_FINAL) > 0.9);
    assert_int_equal(store_snapshot(f->s, 110, snapshot_blob(110, big), big), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 2), 0);
    assert_int_equal(final_bytes(f->dir, 100), HDR + big); /* kept (snapshots_kept 2) ... */
    assert_true(snapshot_file_cached(f->dir, 100, STORE_SNAPFILE_FINAL) < 0.1); /* ... not cached */
    assert_true(snapshot_file_cached(f->dir, 110, STORE_SNAPFILE_FINAL) > 0.9);
    fixture_close(f);
    fixture_open(f);
    snapshot_blob_check(f, 110, big);
}

/* A big blob is checksummed in two halves on two threads: the same checksum
 * as one pass; crc32c_combine joins any two parts. */
static void a_big_blobs_checksum_on_two_threads_is_the_one_pass_checksum(void **state)
{
    (void)state;
    size_t len = (40u << 20) + 5;
    uint8_t *blob = malloc(len);
    for (size_t i = 0; i < len; i++)
        blob[i] = (uint8_t)(i * 2654435761u >> 11);
    unsigned char zxid_be[8] = {0, 0, 0, 1, 0, 0, 0x12, 0x34};
    uint32_t one = crc32c_extend(crc32c(zxid_be, 8), blob, len);
    assert_int_equal(store_snapfile_blob_crc(0x100001234ull, blob, len), one);
    blob[len - 1] ^= 1; /* a flipped bit in the second half shows */
    assert_int_not_equal(store_snapfile_blob_crc(0x100001234ull, blob, len), one);
    blob[len - 1] ^= 1;
    const size_t cuts[] = {0, 1, 7, 8, 4096, len / 2, len - 1, len};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        uint32_t a = crc32c_extend(crc32c(zxid_be, 8), blob, cuts[c]);
        uint32_t b = crc32c(blob + cuts[c], len - cuts[c]);
        assert_int_equal(crc32c_combine(a, b, len - cuts[c]), one);
    }
    free(blob);
}

/* Writes a snapshot as builds before snapshot files did, into dir's
 * (closed) LMDB: format 1 (256 KB chunks, no chunk size in the header) or 2
 * (2,000-byte chunks).  Returns the chunk count. */
static uint32_t write_lmdb_snapshot(const char *dir, uint32_t version, uint64_t zxid,
                                    const uint8_t *blob, size_t len)
{
    size_t chunk = version == 1 ? 256u << 10 : ZN_STORE_SNAPSHOT_CHUNK_BYTES;
    uint32_t chunks = (uint32_t)((len + chunk - 1) / chunk);
    unsigned char zxid_be[8], h[40];
    for (int b = 0; b < 8; b++)
        zxid_be[b] = (unsigned char)(zxid >> (56 - 8 * b));
    uint32_t words[] = {0x5a4e534eu, version};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 4; b++)
            h[i * 4 + b] = (unsigned char)(words[i] >> (24 - 8 * b));
    for (int b = 0; b < 8; b++) {
        h[8 + b] = zxid_be[b];
        h[16 + b] = (unsigned char)((uint64_t)len >> (56 - 8 * b));
    }
    uint32_t blob_crc = crc32c_extend(crc32c(zxid_be, 8), blob, len);
    uint32_t tail[] = {chunks, blob_crc, version == 1 ? 0 /* reserved */ : (uint32_t)chunk};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++)
            h[24 + i * 4 + b] = (unsigned char)(tail[i] >> (24 - 8 * b));
    uint32_t hcrc = crc32c(h, 36);
    for (int b = 0; b < 4; b++)
        h[36 + b] = (unsigned char)(hcrc >> (24 - 8 * b));
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0644), 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "snap", MDB_CREATE, &dbi), 0);
    for (uint32_t i = 0; i <= chunks; i++) {
        unsigned char k[12];
        memcpy(k, zxid_be, 8);
        for (int b = 0; b < 4; b++)
            k[8 + b] = (unsigned char)(i >> (24 - 8 * b));
        size_t off = i ? (size_t)(i - 1) * chunk : 0;
        MDB_val key = {12, k};
        MDB_val value = i ? (MDB_val){len - off < chunk ? len - off : chunk, (void *)(blob + off)}
                          : (MDB_val){40, h};
        assert_int_equal(mdb_put(txn, dbi, &key, &value, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return chunks;
}

/* A snapshot written by a build with 256 KB chunks (format 1: no chunk size
 * in the header) is moved into its file at open and recovers. */
static void a_format_1_snapshot_is_moved_into_a_file_and_recovers(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 20);
    wait_durable(f, 10);
    fixture_close(f);
    size_t len = (256u << 10) * 2 + 99;
    uint8_t *blob = snapshot_blob(10, len);
    uint32_t chunks = write_lmdb_snapshot(f->dir, 1, 10, blob, len);
    free(blob);
    assert_int_equal(snapshot_records_on_disk(f->dir, 10), 1 + chunks);
    fixture_open(f);
    snapshot_blob_check(f, 10, len);
    /* moved into its file: LMDB holds only the record now */
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 10), 1);
    assert_int_equal(final_bytes(f->dir, 10), HDR + len);
    fixture_open(f);
    snapshot_blob_check(f, 10, len);
}

/* A store whose snapshots are in LMDB (format 2, the last before files) is
 * migrated at open: each snapshot written into its file, then its chunks
 * replaced by its record.  A crash after the file and before the record (a
 * file no record names, here with other bytes) reopens to the same state;
 * the log, the compaction point and the kept snapshots are as before. */
static void a_format_2_store_is_migrated_and_a_crash_midway_reopens_the_same(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshots_kept = 2;
    fixture_open(f);
    for (uint64_t z = 1; z <= 40; z++)
        append_payload(f, z, 24);
    wait_durable(f, 40);
    fixture_close(f);
    size_t len_a = 5 * ZN_STORE_SNAPSHOT_CHUNK_BYTES + 17;
    size_t len_b = 3 * ZN_STORE_SNAPSHOT_CHUNK_BYTES;
    uint8_t *a = snapshot_blob(20, len_a), *b = snapshot_blob(30, len_b);
    write_lmdb_snapshot(f->dir, 2, 20, a, len_a);
    write_lmdb_snapshot(f->dir, 2, 30, b, len_b);
    /* the crash: snapshot 30's file published, LMDB untouched */
    assert_int_equal(write_tmp(f->dir, 30, STORE_SNAPFILE_TMP_STORE, a, len_a), 0);
    assert_int_equal(store_snapfile_publish(f->dir, 30, STORE_SNAPFILE_TMP_STORE), 0);
    free(a);
    free(b);
    for (int pass = 0; pass < 2; pass++) {
        fixture_open(f);
        snapshot_blob_check(f, 30, len_b);
        assert_int_equal(f->nentries, 10);
        for (uint64_t i = 0; i < 10; i++)
            assert_entry_is_payload(&f->entries[i], 31 + i, 24);
        struct store_stats st;
        store_stats(f->s, &st);
        assert_int_equal(st.snapshot_count, 2);
        assert_int_equal(st.snapshot_zxid, 30);
        assert_int_equal(st.log_entries, 40);
        fixture_close(f);
        assert_int_equal(snapshot_records_on_disk(f->dir, 20), 1);
        assert_int_equal(snapshot_records_on_disk(f->dir, 30), 1);
        assert_int_equal(final_bytes(f->dir, 20), HDR + len_a);
        assert_int_equal(final_bytes(f->dir, 30), HDR + len_b);
    }
    /* and the migrated store goes on: a new snapshot replaces the older */
    fixture_open(f);
    assert_int_equal(store_snapshot(f->s, 40, snapshot_blob(40, 100), 100), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    fixture_reopen(f);
    snapshot_blob_check(f, 40, 100);
    assert_int_equal(final_bytes(f->dir, 20), -1);
}

static void snapshot_blob_check(struct fixture *f, uint64_t zxid, size_t len)
{
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, zxid);
    assert_int_equal(f->snapshot_len, len);
    void *expected = snapshot_blob(zxid, len);
    assert_memory_equal(f->snapshot, expected, len);
    free(expected);
}

/* SNAP sync: a leader's snapshot is the only record of the state up to its
 * zxid.  When it cannot be stored (here: its write stops half-way), the log
 * entries the leader sends after it must not be written either: after a
 * restart they would be replayed on the older snapshot, across the gap (a
 * 30-minute fault run's member did, and the digest check stopped it). */
static void entries_after_a_leaders_snapshot_that_was_not_stored_are_not_written(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshot_write_bytes = 4096;
    fixture_open(f);
    for (uint64_t z = 1; z <= 50; z++)
        append_payload(f, z, 21);
    wait_durable(f, 50);
    size_t big = 6 * 4096 + 7;
    store_test_crash_snapshot_at(f->s, 1); /* its file, no record */
    assert_int_equal(store_snapshot(f->s, 200, snapshot_blob(200, big), big), 0);
    for (uint64_t z = 201; z <= 210; z++)
        append_payload(f, z, 21);
    wait_durable(f, 210);
    size_t failed = 0;
    for (size_t i = 0; i < f->ncalls; i++)
        if (f->calls[i].zxid > 200)
            failed += f->calls[i].status != 0;
    assert_true(failed > 0);
    assert_int_not_equal(f->calls[f->ncalls - 1].status, 0);
    fixture_close(f);

    /* recovery: the entries before the gap, nothing after it; the file no
     * record names is gone */
    assert_true(final_bytes(f->dir, 200) > 0);
    fixture_open(f);
    assert_int_equal(f->nentries, 50);
    assert_int_equal(store_last_zxid(f->s), 50);
    assert_int_equal(final_bytes(f->dir, 200), -1);
    fixture_close(f);

    /* and a leader's snapshot that is stored lets the entries after it be written */
    fixture_open(f);
    assert_int_equal(store_snapshot(f->s, 300, snapshot_blob(300, big), big), 0);
    for (uint64_t z = 301; z <= 305; z++)
        append_payload(f, z, 21);
    wait_durable(f, 305);
    assert_int_equal(f->calls[f->ncalls - 1].status, 0);
    fixture_close(f);
    fixture_open(f);
    snapshot_blob_check(f, 300, big);
    assert_int_equal(store_last_zxid(f->s), 305);
    fixture_close(f);
}

/* A crash between a snapshot file's rename and its record (stage 1), or
 * between its record and the removal of the files it replaced (stage 2),
 * loses nothing, and the next open removes the files no record names. */
static void a_crash_around_a_snapshots_record_loses_nothing_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshots_kept = 2;
    fixture_open(f);
    size_t small = 1000, big = 6 * 4096 + 7;
    for (uint64_t z = 1; z <= 50; z++)
        append_payload(f, z, 21);
    assert_int_equal(store_snapshot(f->s, 50, snapshot_blob(50, small), small), 0);
    for (uint64_t z = 51; z <= 100; z++)
        append_payload(f, z, 21);
    assert_int_equal(store_snapshot(f->s, 100, snapshot_blob(100, small), small), 0);
    for (uint64_t z = 101; z <= 150; z++)
        append_payload(f, z, 21);
    wait_durable(f, 150);
    /* two snapshots: the log is compacted up to the older, 50 */
    struct store_stats st;
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, 150); /* compaction drops whole segments: one here */

    /* the write of snapshot 150 stops once its file is renamed, unrecorded */
    store_test_crash_snapshot_at(f->s, 1);
    assert_int_equal(store_snapshot(f->s, 150, snapshot_blob(150, big), big), 0);
    for (uint64_t z = 151; z <= 160; z++)
        append_payload(f, z, 21);
    wait_durable(f, 160);
    assert_int_equal(store_meta_put(f->s, "barrier", 2), 0);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshots_failed, 1);
    assert_int_equal(st.snapshot_count, 2);
    assert_int_equal(st.snapshot_zxid, 100);
    assert_int_equal(st.log_entries, 160); /* nothing compacted for the cut snapshot */
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 150), 0);
    assert_int_equal(final_bytes(f->dir, 150), HDR + big);
    /* and a temporary file a crash left while writing one */
    char path[4096];
    assert_int_equal(store_snapfile_path(path, sizeof path, f->dir, 155, STORE_SNAPFILE_TMP_STORE),
                     0);
    FILE *tmp = fopen(path, "w");
    assert_non_null(tmp);
    fclose(tmp);

    /* recovery: the previous snapshot and every durable entry after it */
    fixture_open(f);
    snapshot_blob_check(f, 100, small);
    assert_int_equal(f->nentries, 60);
    for (uint64_t i = 0; i < 60; i++)
        assert_entry_is_payload(&f->entries[i], 101 + i, 21);
    assert_int_equal(store_last_zxid(f->s), 160);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 2);
    assert_int_equal(final_bytes(f->dir, 150), -1); /* removed by the open */
    assert_int_equal(snapshot_file_bytes(f->dir, 155, STORE_SNAPFILE_TMP_STORE), -1);

    /* stage 2: recorded, but the replaced file and the log below the new
     * compaction point are still there */
    store_test_crash_snapshot_at(f->s, 2);
    assert_int_equal(store_snapshot(f->s, 160, snapshot_blob(160, big), big), 0);
    for (uint64_t z = 161; z <= 170; z++)
        append_payload(f, z, 21);
    wait_durable(f, 170);
    assert_int_equal(store_meta_put(f->s, "barrier", 3), 0);
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 50), 0);
    assert_int_equal(final_bytes(f->dir, 50), HDR + small);
    fixture_open(f);
    snapshot_blob_check(f, 160, big);
    assert_int_equal(f->nentries, 10);
    for (uint64_t i = 0; i < 10; i++)
        assert_entry_is_payload(&f->entries[i], 161 + i, 21);
    assert_int_equal(final_bytes(f->dir, 50), -1);
    assert_true(final_bytes(f->dir, 100) > 0);
    assert_true(final_bytes(f->dir, 160) > 0);
}

static void a_compaction_unlinks_whole_segments_below_the_snapshot_and_loses_nothing(void **state)
{
    struct fixture *f = *state;
    /* 64 KB segments: about 170 records of 1-700 bytes each */
    f->opts.segment_bytes = 64u << 10;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10000; z++) {
        append_payload(f, z, 23);
        if (z % 20 == 0) /* group commits of at most 20 */
            wait_durable(f, z);
    }
    assert_int_equal(store_snapshot(f->s, 5000, snapshot_blob(5000, 100), 100), 0);
    wait_durable(f, 10000);
    assert_int_equal(store_meta_put(f->s, "barrier", 1), 0);
    struct store_stats before, after;
    store_stats(f->s, &before);
    assert_int_equal(before.log_entries, 10000);
    assert_true(before.log_segments >= 40);
    /* a second snapshot backs the first: the segments wholly at or below
     * 5000 go, in one directory fsync */
    assert_int_equal(store_snapshot(f->s, 8000, snapshot_blob(8000, 100), 100), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 2), 0);
    store_stats(f->s, &after);
    printf("# compaction: %" PRIu64 " segments -> %" PRIu64 ", entries %" PRIu64 "\n",
           before.log_segments, after.log_segments, after.log_entries);
    assert_true(after.log_entries >= 5000 && after.log_entries <= 5000 + 400);
    assert_true(after.log_segments < before.log_segments);
    assert_int_equal(after.fsyncs - before.fsyncs, 1 + 1 + 1); /* snapshot, unlinks, barrier */
    fixture_close(f);
    fixture_open(f);
    snapshot_blob_check(f, 8000, 100);
    assert_int_equal(f->nentries, 2000);
    for (uint64_t i = 0; i < 2000; i++)
        assert_entry_is_payload(&f->entries[i], 8001 + i, 23);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.log_entries, after.log_entries);
    assert_int_equal(st.log_segments, after.log_segments);
}

/* While the snapshot is unfinished (no snapshot counted yet), each durable
 * report is noted and the next entry appended at once. */
static uint64_t during_snapshot_reports, during_snapshot_last;
static void append_while_snapshot_runs(struct fixture *f, uint64_t zxid, int status)
{
    assert_int_equal(status, 0);
    struct store_stats st;
    store_stats(f->s, &st);
    if (st.snapshot_count != 0 || zxid <= 10)
        return;
    during_snapshot_reports++;
    during_snapshot_last = zxid;
    if (zxid == f->next_zxid)
        append_payload(f, ++f->next_zxid, 22);
}

/* Counts durable reports of entries above 1000 made while no snapshot counts. */
static uint64_t reports_before_installed_snapshot;
static void count_reports_before_snapshot(struct fixture *f, uint64_t zxid, int status)
{
    assert_int_equal(status, 0);
    struct store_stats st;
    store_stats(f->s, &st);
    if (st.snapshot_count == 0 && zxid > 1000)
        reports_before_installed_snapshot++;
}

/* A snapshot above the log's last zxid (a SNAP sync from a leader, after the
 * log was truncated) is the only record of the state up to its zxid: entries
 * after it must not be reported durable (a follower would ack them) before it
 * is complete, or a crash would replay them on the older tree. */
static void entries_after_a_snapshot_the_log_does_not_hold_wait_for_it(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshot_write_bytes = 256u << 10;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 22);
    wait_durable(f, 10);
    store_test_pause_writer(f->s, 1);
    size_t len = 8u << 20; /* 32 chunks */
    assert_int_equal(store_snapshot(f->s, 1000, snapshot_blob(1000, len), len), 0);
    for (uint64_t z = 1001; z <= 1010; z++)
        append_payload(f, z, 22);
    reports_before_installed_snapshot = 0;
    f->after_durable = count_reports_before_snapshot;
    store_test_pause_writer(f->s, 0);
    wait_durable(f, 1010);
    f->after_durable = NULL;
    assert_int_equal(reports_before_installed_snapshot, 0);
    fixture_reopen(f);
    snapshot_blob_check(f, 1000, len);
    assert_int_equal(f->nentries, 10);
    for (uint64_t i = 0; i < 10; i++)
        assert_entry_is_payload(&f->entries[i], 1001 + i, 22);
}

static void log_appends_queued_during_a_big_snapshot_are_durable_before_it_completes(void **state)
{
    struct fixture *f = *state;
    f->opts.snapshot_write_bytes = 1u << 20;
    fixture_open(f);
    for (uint64_t z = 1; z <= 10; z++)
        append_payload(f, z, 22);
    wait_durable(f, 10);
    /* queue, behind the writer: a 32 MB snapshot (32 chunks), then
     * entries 11..20 */
    store_test_pause_writer(f->s, 1);
    size_t len = 32u << 20;
    assert_int_equal(store_snapshot(f->s, 10, snapshot_blob(10, len), len), 0);
    for (uint64_t z = 11; z <= 20; z++)
        append_payload(f, z, 22);
    f->next_zxid = 20;
    during_snapshot_reports = during_snapshot_last = 0;
    f->after_durable = append_while_snapshot_runs;
    uint64_t t0 = now_ms();
    store_test_pause_writer(f->s, 0);
    struct store_stats st;
    for (;;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        store_stats(f->s, &st);
        if (st.snapshot_count == 1)
            break;
        assert_true(now_ms() - t0 < WAIT_DEADLINE_MS);
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    uint64_t snapshot_ms = now_ms() - t0;
    f->after_durable = NULL;
    printf("# interleaving: snapshot of %zu bytes took %" PRIu64 " ms; %" PRIu64
           " durable reports before it completed, up to zxid %" PRIu64 "\n",
           len, snapshot_ms, during_snapshot_reports, during_snapshot_last);
    /* the entries queued behind the snapshot, and more appended while it
     * was written, were reported durable before it completed */
    assert_true(during_snapshot_last >= 20);
    assert_true(during_snapshot_reports >= 2);
    wait_durable(f, f->next_zxid);
    uint64_t last = f->next_zxid;
    fixture_reopen(f);
    snapshot_blob_check(f, 10, len);
    assert_int_equal(f->nentries, last - 10);
    for (uint64_t i = 0; i < last - 10; i++)
        assert_entry_is_payload(&f->entries[i], 11 + i, 22);
}

/* ---- retention and purging (znoded's autopurge.*) ------------------------ */

/* The final snapshot files (snapshot.<hex>, no suffix) in dir. */
static size_t snapshot_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strncmp(de->d_name, "snapshot.", 9) == 0 && strchr(de->d_name + 9, '.') == NULL;
    closedir(d);
    return n;
}

/* rounds snapshots of small blobs, each after `per` appends (4 KB segments,
 * so whole segments fall below each one); returns the last zxid appended.
 * Each append is waited for: a group commit that does not fit a segment
 * gets one of its own, sized to hold it, so appends queued faster than the
 * writer takes them (a busy machine) would make one segment of a whole
 * round, and the bounds below ("at most a segment more") would not hold. */
static uint64_t snapshot_rounds(struct fixture *f, uint64_t z, unsigned rounds, unsigned per)
{
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < per; i++) {
            append_payload(f, ++z, 5);
            wait_durable(f, z);
        }
        wait_durable(f, z);
        assert_int_equal(store_snapshot(f->s, z, snapshot_blob(z, 100), 100), 0);
    }
    assert_int_equal(store_meta_put(f->s, "barrier", z), 0); /* after the last snapshot */
    return z;
}

/* Opens f's store with 4 KB segments, keeping `kept` snapshots (0: the
 * default), trimming at every snapshot or (purge_on_call) at store_purge. */
static void open_for_retention(struct fixture *f, unsigned kept, int purge_on_call)
{
    f->opts.segment_bytes = 4096;
    f->opts.snapshots_kept = kept;
    f->opts.purge_on_call = purge_on_call;
    fixture_open(f);
}

/* A purge, waited for (a synchronous operation queued after it), and the stats after it. */
static void purge_and_wait(struct fixture *f, struct store_stats *st)
{
    assert_int_equal(store_purge(f->s), 0);
    assert_int_equal(store_meta_put(f->s, "barrier", 0), 0);
    store_stats(f->s, st);
}

/* snapshots_kept = N (autopurge.snapRetainCount): after every snapshot
 * exactly the newest N stay, records and files, and the log from the
 * oldest of them on. */
static void the_store_keeps_exactly_snapshots_kept_snapshots(void **state)
{
    struct fixture *f = *state;
    open_for_retention(f, 5, 0);
    uint64_t z = snapshot_rounds(f, 0, 12, 100);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 5);
    assert_int_equal(snapshot_files(f->dir), 5);
    /* the log holds the oldest kept snapshot's (zxid 800) successors, at
     * most a segment more */
    assert_true(st.log_entries >= z - 800 && st.log_entries < z - 800 + 100);
    fixture_close(f);
    assert_int_equal(snapshot_records_on_disk(f->dir, 700), 0);
    for (uint64_t k = 800; k <= 1200; k += 100)
        assert_int_equal(snapshot_records_on_disk(f->dir, k), 1);
    fixture_open(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, 1200);
}

/* purge_on_call (autopurge.purgeInterval given): snapshots and log
 * accumulate, more of them than a retain step lists at once and than
 * recovery looks at; recovery, a backup copy and a truncation still work;
 * then one purge drops all but snapshots_kept and the log below the oldest
 * kept, and recovery still works. */
static void with_purging_on_call_nothing_goes_until_a_purge(void **state)
{
    struct fixture *f = *state;
    open_for_retention(f, 3, 1);
    const unsigned rounds = ZN_STORE_SNAPSHOTS_KEPT_MAX + 20, per = 50;
    uint64_t z = snapshot_rounds(f, 0, rounds, per);
    struct store_stats st;
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, rounds);
    assert_int_equal(snapshot_files(f->dir), rounds);
    assert_int_equal(st.log_entries, z); /* nothing compacted */
    uint64_t segments = st.log_segments;
    assert_true(segments > 1);

    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, z);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, rounds);
    assert_int_equal(st.log_entries, z);

    /* a backup copy names every snapshot (more than 64 records) */
    char copy[128];
    snprintf(copy, sizeof copy, "%s/copy", f->dir);
    assert_int_equal(mkdir(copy, 0755), 0);
    assert_int_equal(store_copy(f->s, copy), 0);
    assert_int_equal(snapshot_files(copy), rounds);

    /* a truncation removes the newest snapshots above its point, though
     * more are kept than a retain step lists */
    assert_int_equal(store_truncate_after(f->s, z - 2 * per), 0);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, rounds - 2);
    assert_int_equal(st.snapshot_zxid, z - 2 * per);
    assert_int_equal(snapshot_files(f->dir), rounds - 2);
    z -= 2 * per;

    purge_and_wait(f, &st);
    assert_int_equal(st.snapshot_count, 3);
    assert_int_equal(snapshot_files(f->dir), 3);
    /* the log from the oldest kept (z - 2 * per) on, at most a segment more */
    assert_true(st.log_entries >= 2 * per && st.log_entries < 2 * per + per);
    assert_true(st.log_segments < segments);
    fixture_reopen(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, z);
    store_stats(f->s, &st);
    assert_int_equal(st.snapshot_count, 3);
    /* the newest damaged: recovery falls back to the oldest kept, whose log is here */
    fixture_close(f);
    char path[4096];
    assert_int_equal(store_snapfile_path(path, sizeof path, f->dir, z, STORE_SNAPFILE_FINAL), 0);
    assert_int_equal(truncate(path, 10), 0);
    fixture_open(f);
    assert_true(f->have_snapshot);
    assert_int_equal(f->snapshot_zxid, z - per);
    assert_int_equal(f->nentries, per);
    assert_int_equal(f->entries[per - 1].zxid, z);
}

/* With purge_on_call a purge is the only thing that trims: a purge with
 * fewer than snapshots_kept snapshots drops nothing, and with one snapshot
 * the log stays whole. */
static void a_purge_with_few_snapshots_drops_nothing(void **state)
{
    struct fixture *f = *state;
    open_for_retention(f, 0, 1);
    uint64_t z = snapshot_rounds(f, 0, 1, 300);
    struct store_stats st;
    purge_and_wait(f, &st);
    assert_int_equal(st.snapshot_count, 1);
    assert_int_equal(st.log_entries, z);
    z = snapshot_rounds(f, z, 2, 300);
    purge_and_wait(f, &st);
    assert_int_equal(st.snapshot_count, 3);
    assert_int_equal(snapshot_files(f->dir), 3);
    /* three kept: the log from the oldest (300) on */
    assert_true(st.log_entries >= z - 300 && st.log_entries < z - 300 + 100);
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(snapshots_and_compaction_keep_the_log_bounded),
        T(recovery_after_a_snapshot_hands_over_the_snapshot_then_only_later_entries),
        T(a_snapshot_is_written_into_its_own_file_with_one_record),
        T(a_snapshot_file_written_by_a_child_is_recorded_and_a_bad_one_removed),
        T(a_replaced_snapshot_goes_with_its_record_and_its_file),
        T(a_streamed_snapshot_file_is_the_same_file_and_stays_cached_until_replaced),
        T(a_big_blobs_checksum_on_two_threads_is_the_one_pass_checksum),
        T(a_format_1_snapshot_is_moved_into_a_file_and_recovers),
        T(a_format_2_store_is_migrated_and_a_crash_midway_reopens_the_same),
        T(a_snapshot_blob_is_given_back_through_its_release_function_once),
        T(a_snapshot_blob_goes_back_in_pieces_as_it_is_written),
        T(the_log_does_not_stay_mapped_in_the_processs_rss),
        T(a_crash_around_a_snapshots_record_loses_nothing_and_leaves_nothing),
        T(entries_after_a_leaders_snapshot_that_was_not_stored_are_not_written),
        T(log_appends_queued_during_a_big_snapshot_are_durable_before_it_completes),
        T(entries_after_a_snapshot_the_log_does_not_hold_wait_for_it),
        T(a_compaction_unlinks_whole_segments_below_the_snapshot_and_loses_nothing),
        T(the_store_keeps_exactly_snapshots_kept_snapshots),
        T(with_purging_on_call_nothing_goes_until_a_purge),
        T(a_purge_with_few_snapshots_drops_nothing),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
