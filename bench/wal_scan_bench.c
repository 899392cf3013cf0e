/*
 * The log's scan at open on the worst segment for its look-ahead: after a
 * few valid records, every 8-byte offset holds a header that can follow
 * them and claims the rest of the segment (up to 64 MB) as its payload, with
 * a wrong checksum (stale records, or headers planted in client data).
 *
 *   wal_scan_bench SEGMENT_BYTES ROUNDS [DIR]
 *
 * Prints, per round, the seconds of wal_scan_segment on the segment in
 * memory; with DIR (an empty directory), also the seconds of wal_open on
 * it written as DIR/log.0000000000000001, which includes zeroing the torn
 * tail it finds (a write and an fdatasync of the region).  Timings are data
 * (bench/PROFILE.md), never test assertions.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "store_io.h"
#include "store_wal.h"
#include "store_wal_internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *planted_segment(uint64_t size)
{
    unsigned char *m = calloc(1, size);
    if (!m)
        return NULL;
    wal_put_header(m, 1, size, 0x5ec2e7, 0);
    uint32_t key = wal_key(true, 0x5ec2e7);
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
    unsigned char payload[300];
    memset(payload, 0x5a, sizeof payload);
    for (uint64_t z = 1; z <= 4; z++) {
        memcpy(m + off + WAL_RECORD_HEADER_BYTES, payload, sizeof payload);
        wal_record_head(m + off, z, 1, payload, sizeof payload, false, key);
        off += WAL_RECORD_HEADER_BYTES + wal_align8(sizeof payload);
    }
    /* non-increasing words: at a, zxid = w(a) >= batch = w(a + 8), and
     * w(a + 16)'s high half, the length, is what is left after the header */
    for (uint64_t q = off; q + 8 <= size; q += 8) {
        uint64_t left = size - q >= 32 ? size - q - 32 : 0;
        if (left > ZN_STORE_ENTRY_MAX_BYTES)
            left = ZN_STORE_ENTRY_MAX_BYTES;
        store_put_be64(m + q, left << 32 | 0x5eed1234u);
    }
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SEGMENT_BYTES ROUNDS [DIR]\n", argv[0]);
        return 2;
    }
    uint64_t size = strtoull(argv[1], NULL, 0);
    int rounds = atoi(argv[2]);
    const char *dir = argc > 3 ? argv[3] : NULL;
    if (size < WAL_MIN_SEGMENT_BYTES || rounds < 1) {
        fprintf(stderr, "SEGMENT_BYTES at least %llu, ROUNDS at least 1\n",
                (unsigned long long)WAL_MIN_SEGMENT_BYTES);
        return 2;
    }
    unsigned char *m = planted_segment(size);
    if (!m) {
        fprintf(stderr, "no memory for %" PRIu64 " bytes\n", size);
        return 1;
    }
    for (int r = 0; r < rounds; r++) {
        struct wal_scan sc = {.map = m, .size = size, .name_zxid = 1, .last_segment = true};
        int unused = 0;
        double t0 = now();
        wal_scan_segment(&sc, 0, 0, NULL, NULL, &unused);
        double scan = now() - t0;
        printf("round %d segment_bytes %" PRIu64 " scan_s %.4f outcome %d torn_to %" PRIu64, r, size, scan,
               (int)sc.outcome, sc.torn_to);
        if (dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/log.0000000000000001", dir);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || store_pwrite_all(fd, m, size, 0) != 0 || fsync(fd) != 0) {
                fprintf(stderr, "\ncannot write %s: %s\n", path, strerror(errno));
                return 1;
            }
            close(fd);
            struct wal *w;
            t0 = now();
            int rc = wal_open(&w, dir, size);
            double open_s = now() - t0;
            if (rc) {
                fprintf(stderr, "\nwal_open: %d\n", rc);
                return 1;
            }
            struct wal_counts c;
            wal_counts(w, &c);
            wal_close(w);
            printf(" open_s %.4f entries %" PRIu64, open_s, c.entries);
            uint64_t removed;
            wal_remove_segments(dir, &removed);
        }
        printf("\n");
        fflush(stdout);
    }
    free(m);
    return 0;
}
