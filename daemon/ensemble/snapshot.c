/*
 * Snapshots of the tree without stopping the event loop.
 *
 * Serialising a tree of a million nodes takes hundreds of milliseconds; done
 * on the loop it stalls every client for that long.
 * Instead the server forks: the child has a copy-on-write image of the tree
 * exactly as it was at the fork (at a known applied zxid), serialises it
 * straight into the mapped pages of an anonymous memory file (memfd) made
 * before the fork, and writes the
 * blob's length to a pipe as its last act.  The loop keeps serving; it reads
 * only those 8 bytes.  Once the child has exited successfully and the memfd
 * holds exactly that many bytes, the loop maps the memfd read-only and hands
 * the mapping to the store, whose writer thread copies it into LMDB and
 * gives its pages back transaction by transaction (snapshot_blob_release).
 *
 * Why a memfd and not the pipe: streamed through the pipe, every byte was
 * read by the loop thread into freshly allocated (so zeroed, page-faulted)
 * and repeatedly reallocated memory; with a tree of a few hundred thousand
 * nodes that was a third of the loop's time under a create load, and it grew
 * with the tree.  Now the loop touches no byte of
 * the blob.
 *
 * The child touches nothing but the tree, malloc, the memfd and the pipe
 * (glibc's malloc is safe after fork(); LMDB and libuv are never used in the
 * child), and leaves with _exit().  If fork() or the memfd fails, the caller
 * falls back to serialising on the loop.  One snapshot is taken at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "log.h"
#include "server.h"
#include "snapshot.h"
#include "tree.h"

/* How much lower than the server the child runs (see nice(2)). */
#define SNAPSHOT_CHILD_NICE 10

/* The child's descriptors: the pipe's write end and the memfd. */
enum { CHILD_PIPE_FD = 3, CHILD_BLOB_FD = 4 };

struct snapshot_job {
    struct server *srv;
    uv_pipe_t pipe;
    pid_t child;
    int memfd;
    int64_t zxid;
    unsigned char len_bytes[8]; /* the blob's length, big-endian, from the child */
    size_t len_got;
    bool failed;
    uint64_t started_ms;
    uint64_t fork_us;
    snapshot_ready_fn on_ready;
};

bool snapshot_in_progress(const struct server *srv) { return srv->snapshots.job != NULL; }

/* A piece of the mapping (page-aligned; see store_blob_release_fn): its pages
 * of the memory file are freed (MADV_REMOVE punches them out of the file, as
 * munmap alone would not while the rest is mapped), then unmapped.  Freeing a
 * whole 170 MB blob at once took the store's writer 12-32 ms. */
void snapshot_blob_release(void *blob, size_t len)
{
    if (!blob || !len)
        return;
    if (madvise(blob, len, MADV_REMOVE) != 0)
        ZN_DEBUG("snapshot: MADV_REMOVE: %s (the pages go with the last unmap)", strerror(errno));
    munmap(blob, len);
}

/* Serialises straight into the memfd's pages, mapped shared and sized for
 * the tree's bound (sparse: only the pages written are allocated), rather
 * than into the heap and then pwrite: that was a copy of the whole blob and
 * a fresh page for each of its pages twice.  Returns the length, or 0. */
static size_t child_serialise_mapped(struct tree *tree)
{
    size_t bound = tree_snapshot_bound(tree);
    if (bound == 0 || ftruncate(CHILD_BLOB_FD, (off_t)bound) != 0)
        return 0;
    void *p = mmap(NULL, bound, PROT_READ | PROT_WRITE, MAP_SHARED, CHILD_BLOB_FD, 0);
    if (p == MAP_FAILED)
        return 0;
    struct jute_writer w;
    jute_writer_init_fixed(&w, p, bound);
    int rc = tree_serialize(tree, &w);
    size_t len = rc == 0 && !w.error ? w.len : 0;
    munmap(p, bound);
    return len;
}

/* The fallback: the heap, then pwrite. */
static size_t child_serialise_heap(struct tree *tree)
{
    struct jute_writer w;
    jute_writer_init(&w);
    int rc = tree_serialize(tree, &w);
    if (rc != 0 || w.error || w.len == 0)
        return 0;
    size_t off = 0;
    while (off < w.len) {
        ssize_t n = pwrite(CHILD_BLOB_FD, w.data + off, w.len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        off += (size_t)n;
    }
    return w.len;
}

/* In the child: serialise into the memfd, then report the length and leave. */
static void child_main(struct tree *tree)
{
    size_t len = child_serialise_mapped(tree);
    if (len == 0)
        len = child_serialise_heap(tree);
    /* the loop checks the memfd holds exactly len bytes */
    if (len == 0 || ftruncate(CHILD_BLOB_FD, (off_t)len) != 0)
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

/* The blob the child reported: the memfd mapped, or NULL.  Writable only so
 * that snapshot_blob_release can punch its pages out (MADV_REMOVE needs a
 * shared writable mapping); nothing writes to it. */
static uint8_t *job_map_blob(struct snapshot_job *job, size_t *len)
{
    if (job->len_got != sizeof job->len_bytes)
        return NULL;
    uint64_t want = 0;
    for (int i = 0; i < 8; i++)
        want = want << 8 | job->len_bytes[i];
    struct stat st;
    if (want == 0 || want > SIZE_MAX || fstat(job->memfd, &st) != 0 || (uint64_t)st.st_size != want)
        return NULL;
    void *p = mmap(NULL, (size_t)want, PROT_READ | PROT_WRITE, MAP_SHARED, job->memfd, 0);
    if (p == MAP_FAILED)
        return NULL;
    *len = (size_t)want;
    return p;
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
    bool ok = !job->failed && got == job->child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    size_t len = 0;
    uint8_t *blob = ok ? job_map_blob(job, &len) : NULL;
    /* The mapping keeps the memory file alive; its pages go with the munmap. */
    close(job->memfd);
    srv->snapshots.job = NULL;
    if (!blob) {
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed in its child (status=%d); the next one "
                 "will try again", (uint64_t)job->zxid, status);
        job->on_ready(srv, job->zxid, NULL, 0, NULL);
    } else {
        ZN_INFO("snapshot serialised zxid=0x%" PRIx64 " bytes=%zu ms=%" PRIu64 " fork_us=%" PRIu64
                " (in a child)",
                (uint64_t)job->zxid, len, server_now_ms() - job->started_ms, job->fork_us);
        job->on_ready(srv, job->zxid, blob, len, snapshot_blob_release); /* ownership passes */
    }
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
    int memfd = memfd_create("znoded-snapshot", MFD_CLOEXEC);
    if (memfd < 0)
        return ZN_IO;
    int fds[2];
    if (pipe(fds) != 0) {
        close(memfd);
        return ZN_IO;
    }
    struct snapshot_job *job = calloc(1, sizeof *job);
    if (!job) {
        close(memfd);
        close(fds[0]);
        close(fds[1]);
        return ZN_NOMEMORY;
    }
    job->srv = srv;
    job->memfd = memfd;
    job->zxid = tree_last_zxid(srv->tree);
    job->on_ready = on_ready;
    job->started_ms = server_now_ms();
    uint64_t fork_start = uv_hrtime();
    pid_t pid = fork();
    if (pid < 0) {
        close(memfd);
        close(fds[0]);
        close(fds[1]);
        free(job);
        return ZN_IO;
    }
    if (pid == 0) {
        /* A snapshot is of no use once the server is gone: the child dies
         * with it (checked again after arming, in case it is gone already). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(5);
        /* Keep only the pipe and the memfd (as fds 3 and 4): the child must
         * not hold clients' sockets open after the server closes them.  Both
         * are moved above 4 first, so neither dup2 overwrites the other. */
        close(fds[0]);
        int pipe_fd = fcntl(fds[1], F_DUPFD, 16);
        int blob_fd = fcntl(memfd, F_DUPFD, 16);
        if (pipe_fd < 0 || blob_fd < 0 || dup2(pipe_fd, CHILD_PIPE_FD) < 0 ||
            dup2(blob_fd, CHILD_BLOB_FD) < 0)
            _exit(4);
        close_range(CHILD_BLOB_FD + 1, ~0U, 0);
        /* Background work: the loop and the store's writer, which answer
         * clients, come first when the cores are busy.  The failure of
         * nice() changes nothing but the priority. */
        if (nice(SNAPSHOT_CHILD_NICE) == -1)
            errno = 0;
        child_main(srv->tree);
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
