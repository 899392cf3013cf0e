/*
 * Snapshots of the tree without stopping the event loop.
 *
 * Serialising a tree of a million nodes takes hundreds of milliseconds; done
 * on the loop it stalls every client for that long (bench/PROFILE.md item 4).
 * Instead the server forks: the child has a copy-on-write image of the tree
 * exactly as it was at the fork (at a known applied zxid), serialises it and
 * streams the bytes back through a pipe; the loop keeps serving and reads the
 * pipe as data arrives.  Once the child has sent everything and exited
 * successfully, the blob goes to the caller, which hands it to the store.
 *
 * The child touches nothing but the tree, malloc and the pipe (glibc's malloc
 * is safe after fork(); LMDB and libuv are never used in the child), and
 * leaves with _exit().  If fork() fails, the caller falls back to
 * serialising on the loop.  One snapshot is taken at a time.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "log.h"
#include "server.h"
#include "snapshot.h"
#include "tree.h"

struct snapshot_job {
    struct server *srv;
    uv_pipe_t pipe;
    pid_t child;
    int64_t zxid;
    uint8_t *data;
    size_t len, cap;
    bool failed;
    uint64_t started_ms;
    snapshot_ready_fn on_ready;
};

static struct snapshot_job *current; /* the loop thread's only job */

bool snapshot_in_progress(void) { return current != NULL; }

/* In the child: serialise and write everything to fd, then leave. */
static void child_main(struct tree *tree, int fd)
{
    struct jute_writer w;
    jute_writer_init(&w);
    int rc = tree_serialize(tree, &w);
    if (rc != 0 || w.error)
        _exit(2);
    size_t off = 0;
    while (off < w.len) {
        ssize_t n = write(fd, w.data + off, w.len - off);
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
    bool ok = !job->failed && got == job->child && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0 && job->len > 0;
    current = NULL;
    if (!ok) {
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed in its child (status=%d); the next one "
                 "will try again", (uint64_t)job->zxid, status);
        free(job->data);
        job->on_ready(srv, job->zxid, NULL, 0);
    } else {
        ZN_INFO("snapshot serialised zxid=0x%" PRIx64 " bytes=%zu ms=%" PRIu64 " (in a child)",
                (uint64_t)job->zxid, job->len, server_now_ms() - job->started_ms);
        job->on_ready(srv, job->zxid, job->data, job->len); /* ownership passes */
    }
    free(job);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct snapshot_job *job = h->data;
    (void)suggested;
    if (job->cap - job->len < 64 * 1024) {
        size_t cap = job->cap ? job->cap * 2 : 1024 * 1024;
        uint8_t *p = realloc(job->data, cap);
        if (!p) {
            job->failed = true;
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        job->data = p;
        job->cap = cap;
    }
    *buf = uv_buf_init((char *)job->data + job->len, (unsigned)(job->cap - job->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct snapshot_job *job = s->data;
    (void)buf;
    if (nread > 0) {
        job->len += (size_t)nread;
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
    if (current)
        return ZN_THROTTLEDOP;
    int fds[2];
    if (pipe(fds) != 0)
        return ZN_IO;
    struct snapshot_job *job = calloc(1, sizeof *job);
    if (!job) {
        close(fds[0]);
        close(fds[1]);
        return ZN_NOMEMORY;
    }
    job->srv = srv;
    job->zxid = tree_last_zxid(srv->tree);
    job->on_ready = on_ready;
    job->started_ms = server_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(job);
        return ZN_IO;
    }
    if (pid == 0) {
        /* Keep only the pipe (as fd 3): the child must not hold clients'
         * sockets open after the server closes them. */
        close(fds[0]);
        if (fds[1] != 3) {
            dup2(fds[1], 3);
            close(fds[1]);
        }
        close_range(4, ~0U, 0);
        child_main(srv->tree, 3);
    }
    close(fds[1]);
    job->child = pid;
    uv_pipe_init(srv->loop, &job->pipe, 0);
    job->pipe.data = job;
    if (uv_pipe_open(&job->pipe, fds[0]) != 0 ||
        uv_read_start((uv_stream_t *)&job->pipe, on_alloc, on_read) != 0) {
        kill(pid, SIGKILL);
        job->failed = true;
        uv_close((uv_handle_t *)&job->pipe, on_pipe_closed);
        current = job;
        return 0; /* on_ready reports the failure */
    }
    current = job;
    return 0;
}
