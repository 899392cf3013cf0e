/*
 * The LMDB store tests' shared fixture (store_fixture.h says what it holds).
 * Called by test_store_log.c, test_store_snapshot.c and test_store_corrupt.c.
 */
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "store.h"
#include "store_fixture.h"

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Deterministic payload of an entry: its length and bytes follow from the
 * zxid and a salt, so a recovered entry can be checked without a copy. */
size_t payload_len(uint64_t zxid) { return 1 + (size_t)((zxid * 2654435761u) % 700); }

void payload_fill(unsigned char *out, size_t len, uint64_t zxid, unsigned salt)
{
    uint64_t x = zxid * 0x9E3779B97F4A7C15ull ^ salt;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (unsigned char)x;
    }
}

void on_durable(void *ctx, uint64_t zxid, int status)
{
    struct fixture *f = ctx;
    if (f->ncalls == f->calls_capacity) {
        f->calls_capacity = f->calls_capacity ? 2 * f->calls_capacity : 256;
        f->calls = realloc(f->calls, f->calls_capacity * sizeof *f->calls);
        assert_non_null(f->calls);
    }
    f->calls[f->ncalls++] = (struct durable_call){zxid, status};
    if (f->after_durable)
        f->after_durable(f, zxid, status);
}

int on_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct fixture *f = ctx;
    assert_false(f->have_snapshot); /* at most once */
    f->have_snapshot = true;
    f->snapshot_zxid = zxid;
    f->snapshot = malloc(len ? len : 1);
    memcpy(f->snapshot, data, len);
    f->snapshot_len = len;
    return 0;
}

int on_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct fixture *f = ctx;
    if (f->nentries == f->entries_capacity) {
        f->entries_capacity = f->entries_capacity ? 2 * f->entries_capacity : 256;
        f->entries = realloc(f->entries, f->entries_capacity * sizeof *f->entries);
    }
    struct recovered_entry *e = &f->entries[f->nentries++];
    e->zxid = zxid;
    e->len = len;
    e->data = malloc(len);
    memcpy(e->data, data, len);
    return 0;
}

void forget_recovered(struct fixture *f)
{
    for (size_t i = 0; i < f->nentries; i++)
        free(f->entries[i].data);
    f->nentries = 0;
    free(f->snapshot);
    f->snapshot = NULL;
    f->have_snapshot = false;
    f->snapshot_zxid = 0;
}

int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/zn-store-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (uv_loop_init(&f->loop))
        return -1;
    *state = f;
    return 0;
}

void fixture_open(struct fixture *f)
{
    int rc = store_open(&f->s, &f->loop, f->dir, &f->opts, on_durable, f);
    assert_int_equal(rc, 0);
    forget_recovered(f);
    assert_int_equal(store_recover(f->s, on_snapshot, on_entry, f), 0);
}

/* Closes the store and proves the loop has nothing left: libuv's rule that
 * handles are freed in their close callback. */
void fixture_close(struct fixture *f)
{
    if (!f->s)
        return;
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

void fixture_reopen(struct fixture *f)
{
    fixture_close(f);
    fixture_open(f);
}

int teardown(void **state)
{
    struct fixture *f = *state;
    fixture_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    forget_recovered(f);
    free(f->entries);
    free(f->calls);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Runs the loop until on_durable has reported zxid (or a later one), or
 * fails the test after the deadline, printing what was seen. */
void wait_durable(struct fixture *f, uint64_t zxid)
{
    uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
    while (!(f->ncalls && f->calls[f->ncalls - 1].zxid >= zxid)) {
        if (now_ms() > deadline) {
            fprintf(stderr, "timeout waiting for zxid=%" PRIu64 ": calls=%zu last=%" PRIu64 "\n",
                    zxid, f->ncalls, f->ncalls ? f->calls[f->ncalls - 1].zxid : 0);
            fail();
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
}

void append_payload(struct fixture *f, uint64_t zxid, unsigned salt)
{
    unsigned char buf[1024];
    size_t len = payload_len(zxid);
    payload_fill(buf, len, zxid, salt);
    assert_int_equal(store_append(f->s, zxid, buf, len), 0);
}

void assert_entry_is_payload(const struct recovered_entry *e, uint64_t zxid, unsigned salt)
{
    unsigned char buf[1024];
    assert_int_equal(e->zxid, zxid);
    size_t len = payload_len(zxid);
    assert_int_equal(e->len, len);
    payload_fill(buf, len, zxid, salt);
    assert_memory_equal(e->data, buf, len);
}
