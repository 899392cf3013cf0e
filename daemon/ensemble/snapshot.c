/*
 * Snapshots of the tree without stopping the event loop.
 *
 * Serialising a tree of a million nodes takes hundreds of milliseconds; done
 * on the loop it stalls every client for that long.
 * Instead the server forks: the child has a copy-on-write image of the tree
 * exactly as it was at the fork (at a known applied zxid), serialises it a
 * chunk at a time into the snapshot's own file (store_snapfile_begin/append/
 * finish: snapshot.<zxid>.tmp in the store's snapshot directory, paced so
 * its writeback never piles up in front of the log's fdatasync, then
 * fsync'd), and writes the blob's length to a pipe as its
 * last act.  The loop keeps serving; it reads only those 8 bytes.  Once the
 * child has exited successfully, the loop hands the file to the store
 * (store_snapshot_file), whose writer renames it and records it.
 *
 * Before snapshots had files of their own, the child serialised into a
 * memfd and the store's writer copied it into LMDB in 256 KB transactions:
 * the snapshot was written three times, and its writeback stalled log
 * commits for up to 400 ms with a million znodes (bench/PROFILE.md).
 *
 * The child touches nothing but the tree, malloc, its file and the pipe
 * (glibc's malloc is safe after fork(); LMDB and libuv are never used in the
 * child), and leaves with _exit().  If fork() fails, the caller falls back
 * to serialising on the loop.  One snapshot is taken at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "log.h"
#include "server.h"
#include "snapshot.h"
#include "store_snapfile.h"
#include "tree.h"

/* How much lower than the server the child runs (see nice(2)). */
#define SNAPSHOT_CHILD_NICE 10

/* The child's descriptor: the pipe's write end. */
enum { CHILD_PIPE_FD = 3 };

struct snapshot_job {
    struct server *srv;
    uv_pipe_t pipe;
    pid_t child;
    char *dir; /* the store's snapshot directory (copied) */
    int64_t zxid;
    unsigned char len_bytes[8]; /* the blob's length, big-endian, from the child */
    size_t len_got;
    bool failed;
    bool abandoned; /* killed by snapshot_abandon: the server is stopping */
    uint64_t started_ms;
    uint64_t fork_us;
    snapshot_ready_fn on_ready;
};

bool snapshot_in_progress(const struct server *srv) { return srv->snapshots.job != NULL; }

void snapshot_abandon(struct server *srv)
{
    struct snapshot_job *job = srv->snapshots.job;
    if (!job || job->abandoned)
        return;
    job->abandoned = true;
    job->failed = true;
    /* The pipe then reads EOF; on_pipe_closed reaps the child at once. */
    kill(job->child, SIGKILL);
}

/* A piece of the serialised tree goes into the file (tree_serialize_stream). */
static int child_flush(void *ctx, const uint8_t *bytes, size_t len)
{
    return store_snapfile_append(ctx, bytes, len) ? ZN_IO : 0;
}

/* Serialises the tree a chunk at a time into one reused buffer, each chunk
 * written (and checksummed) as it fills, so the child never touches more
 * fresh memory than a chunk and the bytes are read once, while still in the
 * cache.  (It serialised all of it first, into anonymous memory the size of
 * the snapshot: 530-680 MB of page faults and zeroing with 1M znodes, then a
 * second pass to write it.)  Returns the blob's length, or 0. */
static size_t child_write(struct tree *tree, const char *dir, uint64_t zxid)
{
    struct store_snapfile_out out;
    if (store_snapfile_begin(&out, dir, zxid, STORE_SNAPFILE_TMP, 0) != 0) {
        store_snapfile_abort(&out);
        return 0;
    }
    struct jute_writer w;
    jute_writer_init(&w);
    int rc = tree_serialize_stream(tree, &w, STORE_SNAPFILE_CHUNK_BYTES, child_flush, &out);
    jute_writer_free(&w);
    if (rc != 0 || out.len == 0) {
        store_snapfile_abort(&out);
        return 0;
    }
    if (store_snapfile_finish(&out, NULL) != 0)
        return 0;
    return (size_t)out.len;
}

/* In the child: write the snapshot's file, then report the length and leave. */
static void child_main(struct tree *tree, const char *dir, uint64_t zxid)
{
    size_t len = child_write(tree, dir, zxid);
    if (len == 0)
        _exit(2);
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    size_t off = 0;
    while (off < sizeof len_bytes) {
        ssize_t n = write(CHILD_PIPE_FD, len_bytes + off, sizeof len_bytes - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(3);
        off += (size_t)n;
    }
    _exit(0);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct snapshot_job *job = h->data;
    struct server *srv = job->srv;
    int status = 0;
    pid_t got;
    do
        got = waitpid(job->child, &status, 0);
    while (got < 0 && errno == EINTR);
    bool ok = !job->failed && got == job->child && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              job->len_got == sizeof job->len_bytes;
    uint64_t len = 0;
    for (int i = 0; i < 8; i++)
        len = len << 8 | job->len_bytes[i];
    srv->snapshots.job = NULL;
    if (!ok) {
        /* (a child killed while writing leaves its file; only that one goes:
         * the store may be writing a leader's snapshot at the same zxid) */
        char path[PATH_MAX];
        if (store_snapfile_path(path, sizeof path, job->dir, (uint64_t)job->zxid,
                                STORE_SNAPFILE_TMP) == 0)
            unlink(path);
        if (job->abandoned)
            ZN_INFO("snapshot at zxid=0x%" PRIx64 " abandoned: the server is stopping (its "
                    "child killed after %" PRIu64 " ms)",
                    (uint64_t)job->zxid, server_now_ms() - job->started_ms);
        else
            ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed in its child (status=%d); the next "
                     "one will try again", (uint64_t)job->zxid, status);
        job->on_ready(srv, job->zxid, ZN_IO);
    } else {
        ZN_INFO("snapshot serialised zxid=0x%" PRIx64 " bytes=%" PRIu64 " ms=%" PRIu64
                " fork_us=%" PRIu64 " (in a child, which wrote %s/snapshot.%" PRIx64 ".tmp)",
                (uint64_t)job->zxid, len, server_now_ms() - job->started_ms, job->fork_us,
                job->dir, (uint64_t)job->zxid);
        job->on_ready(srv, job->zxid, 0);
    }
    free(job->dir);
    free(job);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct snapshot_job *job = h->data;
    (void)suggested;
    /* Room for the rest of the length; anything more is a broken child. */
    size_t room = sizeof job->len_bytes - job->len_got;
    if (room == 0) {
        static unsigned char excess[64];
        *buf = uv_buf_init((char *)excess, sizeof excess);
        return;
    }
    *buf = uv_buf_init((char *)job->len_bytes + job->len_got, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct snapshot_job *job = s->data;
    if (nread > 0) {
        if (buf->base == (char *)job->len_bytes + job->len_got)
            job->len_got += (size_t)nread;
        else
            job->failed = true; /* more than the length */
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF || job->failed) {
        job->failed = true;
        kill(job->child, SIGKILL);
    }
    uv_read_stop(s);
    uv_close((uv_handle_t *)s, on_pipe_closed);
}

int snapshot_start(struct server *srv, snapshot_ready_fn on_ready)
{
    if (srv->snapshots.job)
        return ZN_THROTTLEDOP; /* one job at a time */
    int fds[2];
    if (pipe(fds) != 0)
        return ZN_IO;
    struct snapshot_job *job = calloc(1, sizeof *job);
    if (job)
        job->dir = strdup(store_snapshot_dir(srv->store));
    if (!job || !job->dir) {
        free(job);
        close(fds[0]);
        close(fds[1]);
        return ZN_NOMEMORY;
    }
    job->srv = srv;
    job->zxid = tree_last_zxid(srv->tree);
    job->on_ready = on_ready;
    job->started_ms = server_now_ms();
    uint64_t fork_start = uv_hrtime();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(job->dir);
        free(job);
        return ZN_IO;
    }
    if (pid == 0) {
        /* A snapshot is of no use once the server is gone: the child dies
         * with it (checked again after arming, in case it is gone already). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(5);
        /* Keep only the pipe (as fd 3): the child must not hold clients'
         * sockets open after the server closes them.  It is moved above 3
         * first, so the dup2 does not overwrite it. */
        close(fds[0]);
        int pipe_fd = fcntl(fds[1], F_DUPFD, 16);
        if (pipe_fd < 0 || dup2(pipe_fd, CHILD_PIPE_FD) < 0)
            _exit(4);
        close_range(CHILD_PIPE_FD + 1, ~0U, 0);
        /* Background work: the loop and the store's writer, which answer
         * clients, come first when the cores are busy.  The failure of
         * nice() changes nothing but the priority. */
        if (nice(SNAPSHOT_CHILD_NICE) == -1)
            errno = 0;
        child_main(srv->tree, job->dir, (uint64_t)job->zxid);
    }
    /* The loop is held for the fork (copying the page tables: 1-8 ms with
     * 300-600k znodes); reported with the snapshot. */
    job->fork_us = (uv_hrtime() - fork_start) / 1000;
    close(fds[1]);
    job->child = pid;
    uv_pipe_init(srv->loop, &job->pipe, 0);
    job->pipe.data = job;
    if (uv_pipe_open(&job->pipe, fds[0]) != 0 ||
        uv_read_start((uv_stream_t *)&job->pipe, on_alloc, on_read) != 0) {
        kill(pid, SIGKILL);
        job->failed = true;
        uv_close((uv_handle_t *)&job->pipe, on_pipe_closed);
        srv->snapshots.job = job;
        return 0; /* on_ready reports the failure */
    }
    srv->snapshots.job = job;
    return 0;
}
