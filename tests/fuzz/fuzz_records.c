/*
 * fuzz_records: the decoders of what a member reads back from its own disk,
 * under libFuzzer: a transaction as stored in a log entry (txn_decode), a log
 * record with its checksum (store_log_decode) and the same bytes as a log
 * segment file (wal_scan_segment, the scan at open), a snapshot header
 * (store_snap_header_decode) and a snapshot of the tree (tree_deserialize).
 * Byte 0 chooses the decoder; the rest is the record.  A torn or corrupt
 * record must be refused with an error, never crash or over-read; a snapshot
 * that loads must pass tree_check, and a txn that decodes must re-encode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jute.h"
#include "store_internal.h"
#include "store_wal_internal.h"
#include "tree.h"
#include "txn.h"

size_t jute_fuzz_packets_decoded;

static void check_txn(const uint8_t *data, size_t size)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, data, size, &arena);
    struct txn t;
    if (txn_decode(&r, &t) == 0) {
        jute_fuzz_packets_decoded++;
        struct jute_writer w;
        jute_writer_init(&w);
        /* ZN_BADARGUMENTS is allowed only for what the decoder also refuses: none. */
        if (txn_encode(&w, &t) != 0)
            abort();
        jute_writer_free(&w);
    }
    zn_arena_free(&arena);
}

static void check_log_record(const uint8_t *data, size_t size)
{
    if (size < 8)
        return;
    MDB_val key = {.mv_size = 8, .mv_data = (void *)data};
    MDB_val value = {.mv_size = size - 8, .mv_data = (void *)(data + 8)};
    uint64_t zxid;
    const void *payload;
    size_t len;
    if (store_log_decode(&key, &value, &zxid, &payload, &len) == 0) {
        jute_fuzz_packets_decoded++;
        const uint8_t *p = payload;
        if (p < data + 8 || p + len > data + size)
            abort(); /* the payload must lie inside the record */
    }
}

struct segment_bounds {
    const uint8_t *start, *end;
};

static int segment_record(void *ctx, uint64_t zxid, const void *payload, size_t len)
{
    const struct segment_bounds *b = ctx;
    const uint8_t *p = payload;
    (void)zxid;
    if (p < b->start || p + len > b->end)
        abort(); /* a record handed over must lie inside the file */
    jute_fuzz_packets_decoded++;
    return 0;
}

/* The same bytes as a log segment file (store_wal.h), zero-padded to the
 * smallest segment: the scan at open must decide (the end, a torn tail,
 * damage) without reading past them, as the last segment and as an earlier
 * one, and again with the header's size made the file's (a fuzzed size
 * would stop most inputs at that check); the name's zxid is taken from the
 * header, so a header can match, then from the first record's (plus a
 * little), so the records are a recycled file's stale ones.  Both formats:
 * version 2 (a 40-byte header whose secret keys every record's crc) and
 * version 1 (24 bytes, no secret). */
static void check_log_segment(const uint8_t *data, size_t size)
{
    size_t n = size > WAL_MIN_SEGMENT_BYTES ? size : WAL_MIN_SEGMENT_BYTES;
    uint8_t *map = calloc(1, n);
    if (!map)
        return;
    memcpy(map, data, size);
    struct segment_bounds b = {map, map + n};
    for (int pass = 0; pass < 6; pass++) {
        int last = pass & 1;
        if (pass == 2 && size >= 24) /* past the header's size check, to the records */
            store_put_be64(map + 16, n);
        uint64_t name = size >= 16 ? store_get_be64(map + 8) : 1;
        /* a recycled file's: named above the records at its start, which
         * are stale then, with its header the spare's or this life's */
        size_t hdr = size >= 8 && store_get_be32(map + 4) == WAL_VERSION_V1
                         ? WAL_SEGMENT_HEADER_V1_BYTES : WAL_SEGMENT_HEADER_BYTES;
        if (pass >= 4 && size >= hdr + 8) {
            name = store_get_be64(map + hdr) + 1 + (uint64_t)(data[0] & 0x0f);
            if (pass == 5)
                store_put_be64(map + 8, name);
        }
        struct wal_scan sc = {.map = map, .size = n, .prev_zxid = 0, .last_segment = last,
                              .name_zxid = name ? name : 1};
        int rc = 0;
        wal_scan_segment(&sc, 0, UINT64_MAX, segment_record, &b, &rc);
        if (sc.bad_at > n || sc.seg.end > n || (sc.outcome == WAL_TORN && sc.torn_to > n))
            abort();
    }
    free(map);
}

static void check_snap_header(const uint8_t *data, size_t size)
{
    MDB_val value = {.mv_size = size, .mv_data = (void *)data};
    uint64_t zxid, blob_len;
    uint32_t chunks, crc;
    if (store_snap_header_decode(&value, &zxid, &blob_len, &chunks, &crc) == 0)
        jute_fuzz_packets_decoded++;
}

static void check_snapshot(const uint8_t *data, size_t size)
{
    struct tree *t = tree_new();
    if (!t)
        return;
    if (tree_deserialize(t, data, size) == 0) {
        jute_fuzz_packets_decoded++;
        if (tree_check(t) != 0)
            abort();
    }
    tree_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0: check_txn(data + 1, size - 1); break;
    case 1:
        check_log_record(data + 1, size - 1);
        check_log_segment(data + 1, size - 1);
        break;
    case 2: check_snap_header(data + 1, size - 1); break;
    default: check_snapshot(data + 1, size - 1); break;
    }
    return 0;
}
