/*
 * Unit tests of the scan of one log segment (wal_scan_segment,
 * replication/store_wal_internal.h) on segments built in memory: the
 * look-ahead after the chain of valid records finds a later group commit
 * after a gap (and gives the torn/damaged verdicts store_wal.h documents)
 * with its checksum taken from prefix checksums (crc32c_shift), and its work
 * stays linear in the segment when the region after the gap is full of
 * headers claiming tens of megabytes each.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_wal.h"
#include "store_wal_internal.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(rng() >> 24) | 1; /* no zero bytes: padding is the only zeros */
}

/* A segment of size bytes in memory, its header for first. */
struct seg {
    unsigned char *m;
    uint64_t size, first, off;
    uint32_t key; /* the life's (wal_key of its header's secret) */
};

static void seg_init(struct seg *s, uint64_t size, uint64_t first)
{
    s->m = calloc(1, size);
    assert_non_null(s->m);
    s->size = size;
    s->first = first;
    uint64_t secret = 0x5ec2e75ec2e7ull ^ first;
    wal_put_header(s->m, first, size, secret, 0);
    s->key = wal_key(true, secret);
    s->off = WAL_SEGMENT_HEADER_BYTES;
}

/* Appends a record (random payload of len bytes); corrupt: its crc is wrong.
 * Returns its offset. */
static uint64_t seg_put(struct seg *s, uint64_t zxid, uint64_t batch, uint32_t len, bool corrupt)
{
    uint64_t at = s->off;
    assert_true(at + WAL_RECORD_HEADER_BYTES + wal_align8(len) <= s->size);
    fill_random(s->m + at + WAL_RECORD_HEADER_BYTES, len);
    wal_record_head(s->m + at, zxid, batch, s->m + at + WAL_RECORD_HEADER_BYTES, len, corrupt, s->key);
    s->off += WAL_RECORD_HEADER_BYTES + wal_align8(len);
    return at;
}

static void seg_scan(const struct seg *s, struct wal_scan *sc, uint64_t prev, bool last)
{
    *sc = (struct wal_scan){.map = s->m, .size = s->size, .name_zxid = s->first, .prev_zxid = prev,
                            .last_segment = last};
    int unused = 0;
    wal_scan_segment(sc, 0, 0, NULL, NULL, &unused);
    assert_false(sc->nomem);
}

/* The look-ahead's work is one pass over the region after the chain and a
 * bounded amount per candidate, whatever the candidates claim. */
static void assert_bounded(const struct wal_scan *sc)
{
    uint64_t region = sc->size - sc->bad_at;
    assert_true(sc->ahead_crc_bytes <= region + sc->ahead_candidates * WAL_AHEAD_CANDIDATE_BYTES);
}

/* Scans s (the segment before it ending at 0) and checks the chain's
 * length, the verdict and (torn) where the tail ends. */
static void assert_verdict(const struct seg *s, struct wal_scan *sc, bool last, uint64_t entries,
                           enum wal_outcome outcome, uint64_t bad_at, uint64_t torn_to, const char *what)
{
    seg_scan(s, sc, 0, last);
    assert_int_equal(sc->seg.entries, entries);
    assert_int_equal(sc->outcome, outcome);
    assert_int_equal(sc->bad_at, bad_at);
    if (outcome == WAL_TORN)
        assert_int_equal(sc->torn_to, torn_to);
    assert_string_equal(sc->what, what);
    assert_bounded(sc);
}

#define OUT_OF_ORDER "the last group commit's pages reached the disk out of order"
#define NOTHING_AFTER "a record cut short or failing its check, nothing valid after it"

#define BIG (300u << 10) /* a payload the prefix checksums check, not a direct pass */

/* crc(m[x, y)) == P(y) ^ shift(P(x), y - x) for random cuts, and
 * shift(a, n) ^ b == combine(a, b, n), on both crc paths and across the
 * shift tables' boundaries. */
static void the_checksum_of_a_range_follows_from_two_prefix_checksums(void **state)
{
    (void)state;
    size_t n = (3u << 20) + 13;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(rng() >> 32);
    for (int table = 0; table < 2; table++) {
        crc32c_force_table(table);
        for (int round = 0; round < 200; round++) {
            size_t x = (size_t)(rng() % n), y = (size_t)(rng() % n);
            if (round % 10 == 0)
                x = 0;
            if (round % 10 == 1)
                y = n;
            if (x > y) {
                size_t t = x;
                x = y;
                y = t;
            }
            uint32_t px = crc32c(buf, x), py = crc32c(buf, y);
            assert_int_equal(crc32c(buf + x, y - x), py ^ crc32c_shift(px, y - x));
        }
    }
    crc32c_force_table(0);
    const uint64_t lens[] = {0,         1,          7,         8191,       8192,       8193,
                             1u << 20,  (1u << 26), (1u << 26) + 5, (1u << 27) - 1, 1u << 27,
                             (1ull << 33) + 77};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (int round = 0; round < 20; round++) {
            uint32_t a = (uint32_t)rng(), b = (uint32_t)rng(), c = (uint32_t)rng();
            assert_int_equal(crc32c_shift(a, lens[i]) ^ b, crc32c_combine(a, b, lens[i]));
            assert_int_equal(crc32c_shift(a ^ c, lens[i]), crc32c_shift(a, lens[i]) ^ crc32c_shift(c, lens[i]));
        }
    free(buf);
}

/* The last group commit's first record is the gap, its long later records
 * are found after it: a torn tail to their end.  The same records in a
 * segment a later one follows, or after a whole later group commit: damage. */
static void a_later_group_commit_after_a_gap_is_found_torn_or_damaged(void **state)
{
    (void)state;
    const uint64_t size = 4u << 20;
    /* the gap is the group commit's first record (6..8) */
    struct seg s;
    seg_init(&s, size, 1);
    for (uint64_t z = 1; z <= 5; z++)
        seg_put(&s, z, z <= 3 ? 1 : 4, 1000, false);
    uint64_t gap = seg_put(&s, 6, 6, BIG, true);
    seg_put(&s, 7, 6, BIG + 3, false);
    seg_put(&s, 8, 6, BIG + 5, false);
    uint64_t end = s.off;
    struct wal_scan sc;
    assert_verdict(&s, &sc, true, 5, WAL_TORN, gap, end, OUT_OF_ORDER);
    assert_true(sc.ahead_candidates >= 2);
    /* far less than the payloads: their checksums came from the prefixes */
    assert_true(sc.ahead_crc_bytes < (size - gap) + 3 * WAL_AHEAD_CANDIDATE_BYTES);
    assert_verdict(&s, &sc, false, 5, WAL_DAMAGED, gap, 0,
                   "a record fails its check in a segment a later one follows");

    /* one flipped byte in record 8's payload: only 7 is found, still torn,
     * the tail now ending at the last non-zero word */
    s.m[end - 16] ^= 0x40;
    assert_verdict(&s, &sc, true, 5, WAL_TORN, gap, end, OUT_OF_ORDER);
    s.m[end - 16] ^= 0x40;

    /* a whole later group commit (9..10) after it: damage */
    seg_put(&s, 9, 9, BIG, false);
    seg_put(&s, 10, 9, 2000, false);
    assert_verdict(&s, &sc, true, 5, WAL_DAMAGED, gap, 0,
                   "a record fails its check, and records of a later group commit follow it");
    free(s.m);

    /* the gap inside the chain's own group commit (4..7): torn */
    seg_init(&s, size, 1);
    seg_put(&s, 1, 1, 100, false);
    for (uint64_t z = 2; z <= 4; z++)
        seg_put(&s, z, 2, BIG, false);
    gap = seg_put(&s, 5, 2, BIG, true);
    seg_put(&s, 6, 2, BIG, false);
    seg_put(&s, 7, 2, 9, false);
    end = s.off;
    assert_verdict(&s, &sc, true, 4, WAL_TORN, gap, end, OUT_OF_ORDER);
    /* a group commit that starts after the gap (8, its first record): damage */
    seg_put(&s, 8, 8, BIG, false);
    assert_verdict(&s, &sc, true, 4, WAL_DAMAGED, gap, 0,
                   "a record fails its check, and records of a later group commit follow it");
    free(s.m);

    /* a segment whose header is gone, a valid group commit after it: damage;
     * prev_zxid is the segment before's last */
    seg_init(&s, size, 21);
    seg_put(&s, 21, 21, BIG, false);
    seg_put(&s, 22, 21, BIG, false);
    memset(s.m, 0, 8);
    seg_scan(&s, &sc, 20, true);
    assert_int_equal(sc.outcome, WAL_DAMAGED);
    assert_int_equal(sc.bad_at, 0);
    assert_string_equal(sc.what, "the segment header is wrong, with valid records after it");
    free(s.m);
}

/* Records that cannot follow the chain (a zxid at or below its last, a
 * group commit neither the chain's nor later) are not looked at: what
 * they occupy is the torn tail, dropped. */
static void stale_records_after_the_gap_are_a_torn_tail(void **state)
{
    (void)state;
    struct seg s;
    seg_init(&s, 1u << 20, 1);
    for (uint64_t z = 1; z <= 10; z++)
        seg_put(&s, z, z, 500, false);
    uint64_t gap = seg_put(&s, 11, 11, 500, true);
    seg_put(&s, 3, 3, 4000, false);   /* stale: below the chain's last */
    seg_put(&s, 12, 9, 700, false);  /* zxid later, batch neither the chain's nor later */
    uint64_t end = s.off;
    struct wal_scan sc;
    assert_verdict(&s, &sc, false, 10, WAL_TORN, gap, end, NOTHING_AFTER);
    /* the filter is what lets them go: the chain cut before 3, record 3
     * can follow it, and is damage in a segment a later one follows */
    uint64_t third = WAL_SEGMENT_HEADER_BYTES + 2 * (WAL_RECORD_HEADER_BYTES + 504);
    s.m[third + 30] ^= 1;
    assert_verdict(&s, &sc, false, 2, WAL_DAMAGED, third, 0,
                   "a record fails its check in a segment a later one follows");
    free(s.m);
}

struct shown {
    uint64_t zxids[16];
    size_t n, problems;
};

static int show_record(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct shown *sh = ctx;
    (void)data;
    (void)len;
    assert_true(sh->n < 16);
    sh->zxids[sh->n++] = zxid;
    return 0;
}

static int show_problem(void *ctx, const char *file, uint64_t offset, uint64_t zxid, const char *what,
                        bool torn)
{
    (void)file, (void)offset, (void)zxid, (void)what;
    struct shown *sh = ctx;
    assert_false(torn);
    sh->problems++;
    return 0;
}

/* The offline walk (znoded --dump) shows the valid records after damage,
 * long ones included (checked from the prefix checksums), stale ones too. */
static void the_offline_walk_shows_the_records_after_damage(void **state)
{
    (void)state;
    struct seg s;
    seg_init(&s, 4u << 20, 1);
    seg_put(&s, 1, 1, 100, false);
    seg_put(&s, 2, 2, BIG, true);
    seg_put(&s, 3, 3, BIG, false);
    seg_put(&s, 1, 1, BIG + 1, false); /* stale */
    seg_put(&s, 4, 3, 77, false);
    char dir[] = "/tmp/test_store_wal_scan.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/log.0000000000000001", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(s.m, 1, s.size, f), s.size);
    assert_int_equal(fclose(f), 0);
    struct shown sh = {0};
    assert_int_equal(wal_inspect(dir, 0, UINT64_MAX, show_record, show_problem, &sh), 0);
    assert_int_equal(sh.problems, 1);
    assert_int_equal(sh.n, 4);
    const uint64_t want[] = {1, 3, 1, 4};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sh.zxids[i], want[i]);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(s.m);
}

/* store_wal.h's verdict on what follows the chain the scan found, the slow
 * way: each header that may follow the chain checksummed over its whole
 * length (wal_record_at), as the look-ahead did before prefix checksums. */
static void slow_verdict(const struct wal_scan *sc, enum wal_outcome *outcome, uint64_t *torn_to)
{
    const unsigned char *m = sc->map;
    uint64_t off = sc->bad_at, prev = sc->seg.entries ? sc->seg.last : sc->prev_zxid;
    uint64_t batch = sc->seg.entries ? sc->seg.last_batch : 0, last_nonzero = off, first_batch = 0;
    bool found = false, several = false, starts = false, zero_here = true;
    for (uint64_t i = off; i < off + WAL_RECORD_HEADER_BYTES && i < sc->size; i++)
        zero_here = zero_here && m[i] == 0;
    for (uint64_t a = off; a + 8 <= sc->size;) {
        struct wal_rec r;
        if (memcmp(m + a, wal_zeros, 8) == 0) {
            a += 8;
            continue;
        }
        last_nonzero = a + 8;
        if (a > off && wal_record_at(m + a, sc->size - a, sc->seg.key, &r) && r.zxid > prev &&
            r.zxid >= sc->name_zxid &&
            (r.batch == batch || r.batch > prev)) {
            several |= found && r.batch != first_batch;
            first_batch = found ? first_batch : r.batch;
            starts |= r.zxid == r.batch;
            found = true;
            a += r.span;
            last_nonzero = a;
            continue;
        }
        a += 8;
    }
    *torn_to = last_nonzero;
    if (!found)
        *outcome = zero_here && last_nonzero <= off ? WAL_CLEAN : WAL_TORN;
    else if (sc->last_segment && !several && (first_batch == batch || (first_batch > prev && !starts)))
        *outcome = WAL_TORN;
    else
        *outcome = WAL_DAMAGED;
}

/* Random segments: a chain, a gap (a bad record, zeros or garbage), then a
 * mix of records of the chain's group commit and later ones, stale ones,
 * bad ones, garbage and zeros, short and long: the scan's verdict is the
 * slow one's, as the last segment and as an earlier one. */
static void the_verdicts_are_those_of_checksumming_every_candidate_whole(void **state)
{
    (void)state;
    const uint64_t size = 1u << 20;
    for (int round = 0; round < 150; round++) {
        struct seg s;
        seg_init(&s, size, 1);
        uint64_t z = 1, batch = 1;
        for (int n = (int)(rng() % 6); n >= 0; n--, z++) {
            if (rng() % 3 == 0)
                batch = z;
            seg_put(&s, z, batch, (uint32_t)(1 + rng() % 600), false);
        }
        for (int n = (int)(rng() % 8); n >= 0 && s.off + 300u * 1024 < size; n--) {
            uint32_t len = rng() % 2 ? (uint32_t)(1 + rng() % 300) : (uint32_t)(1 + rng() % (200u << 10));
            switch (rng() % 6) {
            case 0: /* the same group commit, or a later one */
            case 1:
                if (rng() % 3 == 0)
                    batch = z;
                seg_put(&s, z++, batch, len, rng() % 4 == 0);
                break;
            case 2: /* stale: an earlier zxid */
                seg_put(&s, 1 + rng() % z, 1, len, false);
                break;
            case 3: /* skipped zxids, a group commit whose first record is lost */
                z += 1 + rng() % 3;
                batch = z - 1;
                seg_put(&s, z++, batch, len, false);
                break;
            case 4: /* garbage */
                fill_random(s.m + s.off, len);
                s.off += wal_align8(len);
                break;
            default: /* zeros */
                s.off += wal_align8(len);
                break;
            }
        }
        for (int last = 0; last < 2; last++) {
            struct wal_scan sc;
            seg_scan(&s, &sc, 0, last);
            enum wal_outcome want;
            uint64_t torn_to;
            slow_verdict(&sc, &want, &torn_to);
            assert_int_equal(sc.outcome, want);
            if (want == WAL_TORN)
                assert_int_equal(sc.torn_to, torn_to);
            assert_bounded(&sc);
        }
        free(s.m);
    }
}


/* A recycled segment (what hung test_store_crash's child in wal_open for a
 * minute in session 14): an earlier life's records and payloads fill the
 * file after this life's few records.  Under another secret they fail
 * this life's check; what their bytes claim as lengths must not be
 * checksummed each: one pass, and the log ends where this life's does. */
static void a_recycled_segments_earlier_life_costs_one_pass(void **state)
{
    (void)state;
    uint64_t size = 8u << 20, z = 1;
    struct seg s;
    seg_init(&s, size, 1);
    while (s.off + WAL_RECORD_HEADER_BYTES + 4000 <= size)
        seg_put(&s, z, z, 4000, false), z++;
    uint64_t high = z - 1, secret = 0xb0b0b0b0b0ull;
    /* this life: named above the earlier one's highest, 4 records of the
     * same span over its first 4 (the chain ends at the earlier 5th) */
    wal_put_header(s.m, high + 1, size, secret, high);
    s.key = wal_key(true, secret);
    s.first = high + 1;
    s.off = WAL_SEGMENT_HEADER_BYTES;
    for (uint64_t i = 0; i < 4; i++)
        seg_put(&s, high + 1 + i, high + 1, 4000, false);
    /* past the earlier 5th record's header, any bytes (payloads are the
     * clients'): zeros too, so that some claim lengths that fit */
    for (uint64_t i = s.off + WAL_RECORD_HEADER_BYTES; i < size; i++)
        s.m[i] = (unsigned char)(rng() >> 32);
    struct wal_scan sc;
    seg_scan(&s, &sc, high, true);
    assert_int_equal(sc.seg.entries, 4);
    assert_int_equal(sc.outcome, WAL_CLEAN);
    assert_true(sc.ahead_candidates > 100); /* headers that claim lengths that fit */
    assert_bounded(&sc);
    free(s.m);
}

/* The region after the chain is a 64 MB segment's worth of headers that
 * all pass the filter, each claiming what is left of the segment (up to
 * 64 MB): every 8-byte offset a candidate.  Checksumming each over its
 * claimed length is ~2.6e14 bytes; the scan goes over the region once and a
 * bounded amount per candidate. */
static void a_region_of_planted_long_headers_costs_one_pass(void **state)
{
    (void)state;
    struct seg s;
    seg_init(&s, WAL_DEFAULT_SEGMENT_BYTES, 1);
    for (uint64_t z = 1; z <= 4; z++)
        seg_put(&s, z, 1, 300, false);
    uint64_t start = s.off;
    /* the word at q: zxid, batch or length|crc of the headers around it;
     * non-increasing, so each header's batch <= zxid; as a length word its
     * high half is what is left after the header it ends */
    for (uint64_t q = start; q + 8 <= s.size; q += 8) {
        uint64_t left = s.size - q >= 32 ? s.size - q - 32 : 0;
        if (left > ZN_STORE_ENTRY_MAX_BYTES)
            left = ZN_STORE_ENTRY_MAX_BYTES;
        store_put_be64(s.m + q, left << 32 | 0x5eed1234u);
    }
    struct wal_scan sc;
    assert_verdict(&s, &sc, true, 4, WAL_TORN, start, s.size, NOTHING_AFTER);
    uint64_t region = s.size - start;
    assert_true(sc.ahead_candidates >= region / 8 - 8);
    assert_true(sc.ahead_crc_bytes <= region + (region / 8) * WAL_AHEAD_CANDIDATE_BYTES);
    free(s.m);
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_checksum_of_a_range_follows_from_two_prefix_checksums),
        cmocka_unit_test(a_later_group_commit_after_a_gap_is_found_torn_or_damaged),
        cmocka_unit_test(stale_records_after_the_gap_are_a_torn_tail),
        cmocka_unit_test(the_verdicts_are_those_of_checksumming_every_candidate_whole),
        cmocka_unit_test(the_offline_walk_shows_the_records_after_damage),
        cmocka_unit_test(a_region_of_planted_long_headers_costs_one_pass),
        cmocka_unit_test(a_recycled_segments_earlier_life_costs_one_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
