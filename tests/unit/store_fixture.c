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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "store.h"
#include "store_fixture.h"
#include "znode/errors.h"

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
    /* 1 MB log segments, not the daemon's 64 MB of written zeros per store
     * (a test that needs the default or small ones sets its own) */
    f->opts.segment_bytes = 1u << 20;
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

/* ---- opening in a child, refusals ---------------------------------------- */

/*
 * Opens and recovers the store in dir in a child process, so that a crash
 * (SIGBUS from a page past the end of the file) is seen as a signal instead
 * of killing the test, and the child's log is captured.  Returns how it
 * ended: OPENED (opened and recovered), OPEN_REFUSED or RECOVER_REFUSED
 * (ZN_CORRUPT), OTHER_ERROR; a signal fails the test.  *entries gets the
 * number of entries recovered.
 */
int count_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    (void)zxid, (void)data, (void)len;
    (*(uint64_t *)ctx)++;
    return 0;
}

int open_in_child(const char *dir, char *log, size_t log_size, uint64_t *entries)
{
    char log_path[] = "/tmp/zn-store-log-XXXXXX";
    int log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    int count_pipe[2];
    assert_int_equal(pipe(count_pipe), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(log_fd, 2);
        zn_log_threshold = ZN_LOG_ERROR;
        uv_loop_t loop;
        uv_loop_init(&loop);
        struct store *s;
        struct store_options opts = {.segment_bytes = 1u << 20};
        int rc = store_open(&s, &loop, dir, &opts, on_durable, NULL);
        if (rc)
            _exit(rc == ZN_CORRUPT ? OPEN_REFUSED : OTHER_ERROR);
        uint64_t n = 0;
        rc = store_recover(s, NULL, count_entry, &n);
        if (write(count_pipe[1], &n, sizeof n) != (ssize_t)sizeof n)
            _exit(OTHER_ERROR);
        _exit(rc == 0 ? OPENED : rc == ZN_CORRUPT ? RECOVER_REFUSED : OTHER_ERROR);
    }
    close(count_pipe[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *entries = 0;
    if (read(count_pipe[0], entries, sizeof *entries) != (ssize_t)sizeof *entries)
        *entries = 0;
    close(count_pipe[0]);
    ssize_t n = pread(log_fd, log, log_size - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(log_fd);
    unlink(log_path);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "the store's open died by signal %d; its log:\n%s\n", WTERMSIG(status), log);
        fail();
    }
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

void assert_one_clear_refusal_of(const char *dir, const char *name, const char *log, const char *what)
{
    char file[160];
    snprintf(file, sizeof file, "%s/%s", dir, name);
    const char *line = strstr(log, file);
    if (!line || !strstr(line, what) || !strstr(line, "refusing to start") ||
        !strstr(line, "aside") || !strstr(line, "snapshot")) {
        fprintf(stderr, "no clear refusal naming %s and '%s' in:\n%s\n", file, what, log);
        fail();
    }
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    assert_true(strstr(line, "snapshot") < end); /* all on the one line */
}
