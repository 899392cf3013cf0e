/*
 * The store under a real crash and a real full disk.
 *
 * Crash: a forked child opens the store (after the fork, as LMDB requires),
 * appends consecutive zxids with deterministic payloads and takes snapshots,
 * and reports through a pipe each zxid it appended ('A') and each one
 * on_durable reported durable ('D').  The parent SIGKILLs it at a random
 * moment (seeded; ZN_TEST_SEED replays a run), reopens the store and checks:
 * every zxid reported durable is recovered intact; what is recovered is a
 * contiguous run after the snapshot, each entry exactly what was appended
 * for its zxid, and nothing beyond what the child could have appended.
 * Several rounds continue on the same directory.
 *
 * Disk full: a store in a 2 MiB tmpfs (root only; skipped with a message if
 * the mount fails) reports ZN_NOSPACE through on_durable and keeps every
 * entry it reported durable before.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "store.h"
#include "znode/errors.h"

#define CRASH_ROUNDS 10
#define WAIT_DEADLINE_MS 60000
#define CHILD_SNAPSHOT_EVERY 700

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t payload_len(uint64_t zxid) { return 1 + (size_t)((zxid * 2654435761u) % 900); }

static void payload_fill(unsigned char *out, size_t len, uint64_t zxid, unsigned salt)
{
    uint64_t x = zxid * 0x9E3779B97F4A7C15ull ^ salt;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (unsigned char)x;
    }
}

static size_t snapshot_len(uint64_t zxid) { return 20000 + (size_t)(zxid % 5) * 70000; }

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* ---- what recovery hands over, checked as it arrives -------------------- */

struct check {
    bool have_snapshot;
    uint64_t snapshot_zxid;
    uint64_t first, last, count;
    int bad; /* a mismatch seen: reported after recovery */
    uint64_t bad_zxid;
};

static int check_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct check *c = ctx;
    c->have_snapshot = true;
    c->snapshot_zxid = zxid;
    size_t want = snapshot_len(zxid);
    unsigned char *expected = malloc(want);
    payload_fill(expected, want, zxid, 0x5a);
    if (len != want || memcmp(expected, data, len) != 0) {
        c->bad = 1;
        c->bad_zxid = zxid;
    }
    free(expected);
    return 0;
}

static int check_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct check *c = ctx;
    unsigned char expected[1024];
    size_t want = payload_len(zxid);
    payload_fill(expected, want, zxid, 0xc3);
    uint64_t expected_zxid = c->count ? c->last + 1 : (c->have_snapshot ? c->snapshot_zxid + 1 : 1);
    if (zxid != expected_zxid || len != want || memcmp(expected, data, len) != 0) {
        if (!c->bad) {
            c->bad = 2;
            c->bad_zxid = zxid;
        }
    }
    if (!c->count)
        c->first = zxid;
    c->last = zxid;
    c->count++;
    return 0;
}

/* ---- the child ------------------------------------------------------------ */

struct child {
    uv_loop_t loop;
    struct store *s;
    int fd;
    uint64_t next_zxid;
    uint64_t durable;
    uint64_t last_snapshot;
    uint64_t rng;
    uv_idle_t idle;
};

static void child_report(struct child *c, char tag, uint64_t zxid)
{
    unsigned char record[9];
    record[0] = (unsigned char)tag;
    memcpy(record + 1, &zxid, 8);
    if (write(c->fd, record, sizeof record) != (ssize_t)sizeof record)
        _exit(4);
}

static void child_on_durable(void *ctx, uint64_t zxid, int status)
{
    struct child *c = ctx;
    if (status != 0)
        _exit(3);
    c->durable = zxid;
    child_report(c, 'D', zxid);
}

static void child_on_idle(uv_idle_t *idle)
{
    struct child *c = idle->data;
    c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
    unsigned burst = 1 + (unsigned)((c->rng >> 33) % 64);
    for (unsigned i = 0; i < burst; i++) {
        unsigned char buf[1024];
        size_t len = payload_len(c->next_zxid);
        payload_fill(buf, len, c->next_zxid, 0xc3);
        int rc = store_append(c->s, c->next_zxid, buf, len);
        if (rc == ZN_THROTTLEDOP)
            break;
        if (rc != 0)
            _exit(5);
        child_report(c, 'A', c->next_zxid);
        c->next_zxid++;
    }
    /* a snapshot of "the tree" as of what is durable, in order with appends */
    if (c->durable >= c->last_snapshot + CHILD_SNAPSHOT_EVERY) {
        size_t len = snapshot_len(c->durable);
        unsigned char *blob = malloc(len);
        payload_fill(blob, len, c->durable, 0x5a);
        if (store_snapshot(c->s, c->durable, blob, len) != 0)
            _exit(6);
        c->last_snapshot = c->durable;
    }
}

static void child_main(const char *dir, int fd, uint64_t seed)
{
    zn_log_threshold = ZN_LOG_OFF;
    struct child c = {.fd = fd, .rng = seed};
    if (uv_loop_init(&c.loop))
        _exit(7);
    if (store_open(&c.s, &c.loop, dir, NULL, child_on_durable, &c))
        _exit(8);
    if (store_recover(c.s, NULL, NULL, NULL))
        _exit(9);
    c.next_zxid = store_last_zxid(c.s) + 1;
    c.durable = store_last_zxid(c.s);
    struct store_stats st;
    store_stats(c.s, &st);
    c.last_snapshot = st.snapshot_zxid;
    uv_idle_init(&c.loop, &c.idle);
    c.idle.data = &c;
    uv_idle_start(&c.idle, child_on_idle);
    uv_run(&c.loop, UV_RUN_DEFAULT); /* until SIGKILL */
    _exit(10);
}

/* ---- the parent ------------------------------------------------------------ */

struct reports {
    uint64_t max_appended, max_durable;
    size_t records;
};

/* Reads whole records from fd for up to ms (or to EOF when ms < 0). */
static void read_reports(int fd, struct reports *r, int64_t ms, unsigned char *pending, size_t *npending)
{
    uint64_t deadline = ms >= 0 ? now_ms() + (uint64_t)ms : 0;
    for (;;) {
        int timeout = -1;
        if (ms >= 0) {
            uint64_t t = now_ms();
            if (t >= deadline)
                return;
            timeout = (int)(deadline - t);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail_msg("poll: %s", strerror(errno));
        }
        ssize_t got = read(fd, pending + *npending, 4096 - *npending);
        if (got == 0)
            return; /* EOF */
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fail_msg("read: %s", strerror(errno));
        }
        *npending += (size_t)got;
        size_t off = 0;
        while (*npending - off >= 9) {
            uint64_t zxid;
            memcpy(&zxid, pending + off + 1, 8);
            if (pending[off] == 'A' && zxid > r->max_appended)
                r->max_appended = zxid;
            else if (pending[off] == 'D' && zxid > r->max_durable)
                r->max_durable = zxid;
            r->records++;
            off += 9;
        }
        memmove(pending, pending + off, *npending - off);
        *npending -= off;
    }
}

static void on_durable_unexpected(void *ctx, uint64_t zxid, int status)
{
    fail_msg("no appends in the verifying parent, yet on_durable zxid=%" PRIu64, zxid);
}

static void every_zxid_reported_durable_survives_sigkill_and_nothing_unappended_appears(void **state)
{
    const char *env_seed = getenv("ZN_TEST_SEED");
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0) : (uint64_t)time(NULL);
    printf("# crash test seed=%" PRIu64 " (replay with ZN_TEST_SEED=%" PRIu64 ")\n", seed, seed);
    srandom((unsigned)seed);
    char dir[] = "/tmp/zn-store-crash-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uint64_t prior_last = 0, total_durable = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, fds[1], seed + (uint64_t)round);
        }
        close(fds[1]);
        struct reports r = {.max_appended = prior_last, .max_durable = prior_last};
        unsigned char pending[4096];
        size_t npending = 0;
        /* wait until the child is writing, then let it run a random while */
        uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
        while (r.max_durable <= prior_last && now_ms() < deadline)
            read_reports(fds[0], &r, 50, pending, &npending);
        if (r.max_durable <= prior_last) {
            /* exit codes 7-9: the loop, store_open or store_recover failed (the
             * store refused what the last kill left) */
            int st = 0;
            pid_t gone = waitpid(pid, &st, WNOHANG);
            if (gone != pid) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
            }
            fail_msg("child reported nothing durable within %d ms (round %d, records=%zu, %s %d; "
                     "the store is in %s)",
                     WAIT_DEADLINE_MS, round, r.records,
                     gone == pid ? "it had exited with code" : "it was still running, signal",
                     gone == pid ? (WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st)) : SIGKILL, dir);
        }
        read_reports(fds[0], &r, random() % 400, pending, &npending);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("child exited by itself status=%d (exit code %d)", status, WEXITSTATUS(status));
        read_reports(fds[0], &r, -1, pending, &npending); /* what it wrote before dying */
        close(fds[0]);

        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct store *s;
        assert_int_equal(store_open(&s, &loop, dir, NULL, on_durable_unexpected, NULL), 0);
        struct check c = {0};
        assert_int_equal(store_recover(s, check_snapshot, check_entry, &c), 0);
        uint64_t recovered_last = store_last_zxid(s);
        struct store_stats st;
        store_stats(s, &st);
        store_close(s);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&loop), 0);

        printf("# round=%d appended<=%" PRIu64 " durable=%" PRIu64 " recovered_last=%" PRIu64
               " snapshot=%" PRIu64 " replayed=%" PRIu64 " log_entries=%" PRIu64 "\n",
               round, r.max_appended, r.max_durable, recovered_last, c.snapshot_zxid, c.count,
               st.log_entries);
        if (c.bad)
            fail_msg("recovered %s at zxid=%" PRIu64 " differs from what was appended",
                     c.bad == 1 ? "snapshot" : "entry", c.bad_zxid);
        /* durable means recovered */
        assert_true(recovered_last >= r.max_durable);
        /* nothing beyond what could have been appended: one append may have
         * happened without its report when the kill came */
        assert_true(recovered_last <= r.max_appended + 1);
        uint64_t expected_last = c.count ? c.last : c.snapshot_zxid;
        assert_int_equal(recovered_last, expected_last);
        assert_true(recovered_last >= prior_last);
        total_durable += r.max_durable - prior_last;
        prior_last = recovered_last;
    }
    printf("# crash test: rounds=%d durable_entries=%" PRIu64 "\n", CRASH_ROUNDS, total_durable);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- disk full ------------------------------------------------------------ */

struct full_fixture {
    char dir[64];
    bool mounted;
    uv_loop_t loop;
    struct store *s; /* open store, closed by teardown after a failure */
    uint64_t last_zxid;
    int last_status;
    size_t calls;
};

static int full_setup(void **state)
{
    struct full_fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/zn-store-full-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (mount("tmpfs", f->dir, "tmpfs", 0, "size=2m") == 0)
        f->mounted = true;
    else
        fprintf(stderr, "# cannot mount a 2 MiB tmpfs on %s (%s): the disk-full test needs root\n",
                f->dir, strerror(errno));
    *state = f;
    return 0;
}

static int full_teardown(void **state)
{
    struct full_fixture *f = *state;
    if (f->s) {
        store_close(f->s);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
    }
    /* detach lazily if something still holds it, so no mount is left */
    if (f->mounted && umount(f->dir) != 0 && umount2(f->dir, MNT_DETACH) != 0)
        fprintf(stderr, "# umount %s: %s\n", f->dir, strerror(errno));
    rmdir(f->dir);
    free(f);
    return 0;
}

static void full_on_durable(void *ctx, uint64_t zxid, int status)
{
    struct full_fixture *f = ctx;
    f->last_zxid = zxid;
    f->last_status = status;
    f->calls++;
}

struct full_check {
    uint64_t count, last;
    int bad;
};

/* Entries are 32 KiB of the byte (zxid & 0xff), zxids 1, 2, ...; the one
 * small entry after the disk filled is "x". */
static int full_check_entry(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    struct full_check *c = ctx;
    const unsigned char *p = data;
    c->count++;
    if (zxid <= c->last)
        c->bad = 1;
    c->last = zxid;
    if (c->bad)
        ;
    else if (len == 1)
        c->bad |= p[0] != 'x';
    else if (len != 32 * 1024)
        c->bad = 1;
    else
        for (size_t i = 0; i < len; i++)
            c->bad |= p[i] != (unsigned char)(zxid & 0xff);
    return 0;
}

static void a_full_disk_reports_nospace_and_keeps_the_entries_already_durable(void **state)
{
    struct full_fixture *f = *state;
    if (!f->mounted)
        skip();
    char store_dir[96];
    snprintf(store_dir, sizeof store_dir, "%s/store", f->dir);
    uv_loop_t *loop = &f->loop;
    assert_int_equal(uv_loop_init(loop), 0);
    /* log segments of 64 KB: the disk fills as segments are made */
    struct store_options opts = {.segment_bytes = 64u << 10};
    assert_int_equal(store_open(&f->s, loop, store_dir, &opts, full_on_durable, f), 0);
    struct store *s = f->s;
    assert_int_equal(store_recover(s, NULL, NULL, NULL), 0);
    unsigned char buf[32 * 1024];
    uint64_t z = 0, last_ok = 0;
    bool nospace = false;
    /* 2 MiB cannot hold 200 entries of 32 KiB */
    while (!nospace && z < 200) {
        z++;
        memset(buf, (int)(z & 0xff), sizeof buf);
        assert_int_equal(store_append(s, z, buf, sizeof buf), 0);
        uint64_t deadline = now_ms() + WAIT_DEADLINE_MS;
        size_t before = f->calls;
        while (f->calls == before && now_ms() < deadline) {
            uv_run(loop, UV_RUN_NOWAIT);
            struct timespec pause = {0, 200000};
            nanosleep(&pause, NULL);
        }
        assert_int_equal(f->calls, before + 1);
        assert_int_equal(f->last_zxid, z);
        if (f->last_status == ZN_NOSPACE)
            nospace = true;
        else {
            assert_int_equal(f->last_status, 0);
            last_ok = z;
        }
    }
    printf("# disk full after entries=%" PRIu64 " of 32 KiB\n", last_ok);
    assert_true(nospace);
    assert_true(last_ok > 10);
    uint64_t ok_count = last_ok; /* zxids 1..last_ok, all reported durable */
    /* the store keeps working: a small entry may fit in the pages the
     * failed batch had claimed; either way it is reported exactly once */
    size_t before = f->calls;
    assert_int_equal(store_append(s, ++z, "x", 1), 0);
    f->s = NULL;
    store_close(s); /* delivers the pending report */
    assert_int_equal(f->calls, before + 1);
    assert_true(f->last_status == 0 || f->last_status == ZN_NOSPACE);
    if (f->last_status == 0) {
        last_ok = z;
        ok_count++;
    }
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);

    /* everything reported durable is there, intact, and nothing of a failed batch */
    assert_int_equal(store_open(&f->s, loop, store_dir, &opts, full_on_durable, f), 0);
    struct full_check fc = {0};
    assert_int_equal(store_recover(f->s, NULL, full_check_entry, &fc), 0);
    assert_int_equal(fc.bad, 0);
    assert_int_equal(fc.count, ok_count);
    assert_int_equal(store_last_zxid(f->s), last_ok);
    s = f->s;
    f->s = NULL;
    store_close(s);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

int main(void)
{
    zn_log_threshold = getenv("ZN_TEST_VERBOSE") ? ZN_LOG_DEBUG : ZN_LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_zxid_reported_durable_survives_sigkill_and_nothing_unappended_appears),
        cmocka_unit_test_setup_teardown(a_full_disk_reports_nospace_and_keeps_the_entries_already_durable,
                                        full_setup, full_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
