/*
 * znodefs: mounts a ZooKeeper tree (served by znoded or ZooKeeper) with FUSE.
 *
 * This file owns the program: the start-up (options read (options.c), then
 * connect (session.c), so a wrong HOSTS fails the mount command, then mount,
 * then detach, the parent exiting with the child's verdict), the FUSE
 * operation table, and the one libuv loop that runs everything: it polls
 * the FUSE session fd and the ZooKeeper connection alike, so a reply that
 * waits on the network (a blocking flock, an @wait read) is answered later
 * from a callback without holding a thread.  At the end it unmounts and
 * closes the session, so the mount's ephemeral files and locks vanish at
 * once.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "znodefs.h"

struct fs *fs_global;

/* ---- the FUSE side of the loop ---- */

/*
 * How long the loop keeps polling /dev/fuse after answering requests from
 * the cache, before it sleeps in epoll.  A `cat` is five FUSE requests in a
 * row (GETATTR, OPEN, READ, READ at EOF, RELEASE), each sent only after the
 * previous one is answered; on an idle virtual machine every sleep and
 * wake-up of the mount between them costs 10-25 us, more than a cached
 * answer.  Polling for the next request for a few tens of microseconds
 * (only when every request was answered without a server round trip, so a
 * request to the server is never held back) removes the mount's wake-ups
 * from the chain (bench/mount-bench.sh measures it).  The cost: up to
 * spin_us of CPU after each burst (sched_yield lets a runnable thread on the
 * core go first), which a script that spawns many processes on a 2-core
 * machine pays as ~0.1 ms more per `cat`.  -o spin_us=0 turns it off.
 * Bounded per turn, so an idle mount costs nothing.
 */
#define FS_FUSE_SPIN_TURN_NS 2000000u

static void on_fuse_readable(uv_poll_t *handle, int status, int events)
{
    struct fs *fs = handle->data;
    uint64_t turn_start = uv_hrtime(), last = turn_start;
    uint64_t spin_ns = fs->config.spin_us > 0 ? (uint64_t)fs->config.spin_us * 1000u : 0;
    /* Drain what the kernel queued; EAGAIN ends the round, unless every
     * request was answered from the cache: then wait a little for the next. */
    for (int i = 0; i < 256 && !fuse_session_exited(fs->session); i++) {
        int res = fuse_session_receive_buf(fs->session, &fs->fuse_buf);
        if (res == -EINTR)
            continue;
        if (res == -EAGAIN && spin_ns && fs->client && zn_client_outstanding(fs->client) == 0) {
            uint64_t now = uv_hrtime();
            if (now - last < spin_ns && now - turn_start < FS_FUSE_SPIN_TURN_NS) {
                sched_yield(); /* a runnable thread on this core goes first */
                i--;
                continue;
            }
        }
        if (res <= 0)
            break;
        fuse_session_process_buf(fs->session, &fs->fuse_buf);
        last = uv_hrtime();
    }
    if (fuse_session_exited(fs->session)) {
        uv_poll_stop(handle);
        uv_stop(fs->loop);
    }
}

static void on_kick(uv_async_t *a)
{
    struct fs *fs = a->data;
    fs_wait_kick(fs);
    fs_lock_kick(fs);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct fs *fs = s->data;
    ZN_INFO("signal=%d: unmounting", signum);
    fuse_session_exit(fs->session);
    uv_stop(fs->loop);
}

static void init_op(void *userdata, struct fuse_conn_info *conn)
{
    /* O_TRUNC arrives with OPEN, so it is published with the data that follows. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* A writeback cache would lose write errors: never. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    conn->time_gran = 1000000; /* ZooKeeper's times are in ms (times.c) */
    /* POSIX locks stay local (only flock is distributed). */
    conn->want &= ~FUSE_CAP_POSIX_LOCKS;
    if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
        conn->want |= FUSE_CAP_FLOCK_LOCKS;
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = init_op,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .setattr = fs_op_setattr,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .releasedir = fs_op_releasedir,
    .mkdir = fs_op_mkdir,
    .mknod = fs_op_mknod,
    .unlink = fs_op_unlink,
    .rmdir = fs_op_rmdir,
    .rename = fs_op_rename,
    .symlink = fs_op_symlink,
    .link = fs_op_link,
    .create = fs_op_create,
    .open = fs_op_open,
    .read = fs_op_read,
    .write = fs_op_write,
    /* No .flush: every write(2) is stored before it returns and POSIX locks stay local, so
     * FLUSH has nothing to do; left unset, the kernel learns that (ENOSYS) once and stops
     * sending one per close(2): a round trip less per `cat` (bench/mount-bench.sh). */
    .release = fs_op_release,
    .getxattr = fs_op_getxattr,
    .setxattr = fs_op_setxattr,
    .listxattr = fs_op_listxattr,
    .removexattr = fs_op_removexattr,
    .flock = fs_op_flock,
    .poll = fs_op_poll,
};
/* Forks; the parent waits for the child's verdict on the mount and exits with it. */
static int detach(int *status_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char verdict = 1;
        if (read(p[0], &verdict, 1) != 1)
            verdict = 1;
        _exit(verdict);
    }
    close(p[0]);
    setsid();
    *status_fd = p[1];
    return 0;
}

static void report(int status_fd, char verdict)
{
    if (status_fd < 0)
        return;
    if (write(status_fd, &verdict, 1) != 1) {
        /* the parent is gone: nobody to tell */
    }
    close(status_fd);
}

/* stdin and stdout to /dev/null, stderr (every log line) to the log sink: once mounted in
 * the background, nothing more reaches the terminal the mount came from. */
static void detach_stdio(const struct fs_config *config)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    if (fs_log_sink_start(config->log_file) != 0)
        dup2(fd, 2);
    if (fd > 2)
        close(fd);
}
static void on_client_closed(void *arg) { *(bool *)arg = true; }

int main(int argc, char **argv)
{
    static struct fs fs_storage;
    struct fs *fs = &fs_storage;
    fs_global = fs;
    zn_log_set_program("znodefs");
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    if (fs_options_parse(fs, &args) != 0)
        return 2;
    fs->uid = getuid();
    fs->gid = getgid();
    fs_acl_set_identity(fs->config.auth);
    fs_acl_set_sasl_identity(fs->config.sasl_user);
    fs_inodes_init(fs);

    int status_fd = -1;
    if (!fs->config.foreground && detach(&status_fd) != 0) {
        perror("znodefs: fork");
        return 1;
    }
    /* Until it is mounted, the terminal gets only what makes the mount fail (a member that
     * is down while another answers is not worth a line there). */
    int threshold = zn_log_threshold;
    if (status_fd >= 0 && zn_log_threshold < ZN_LOG_ERROR)
        zn_log_threshold = ZN_LOG_ERROR;
    static uv_loop_t loop;
    uv_loop_init(&loop);
    fs->loop = &loop;
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(fs->loop, &fs->renew_timer);
    fs->renew_timer.data = fs;
    if (fs_session_connect(fs) != 0) {
        report(status_fd, 1);
        return 1;
    }
    struct fuse_lowlevel_ops ops = fs_ops; /* fuse_session_new copies it */
    reply_check_wrap_ops(&ops);            /* debug and sanitizer builds: one reply per request */
    fs->session = fuse_session_new(&args, &ops, sizeof ops, fs);
    if (!fs->session) {
        report(status_fd, 1);
        return 1;
    }
    if (fuse_session_mount(fs->session, fs->config.mountpoint) != 0) {
        fprintf(stderr, "znodefs: cannot mount on %s\n", fs->config.mountpoint);
        report(status_fd, 1);
        return 1;
    }
    int fd = fuse_session_fd(fs->session);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (fs_notify_start(fs) != 0) {
        fuse_session_unmount(fs->session);
        report(status_fd, 1);
        return 1;
    }
    uv_poll_init(fs->loop, &fs->fuse_poll, fd);
    fs->fuse_poll.data = fs;
    uv_poll_start(&fs->fuse_poll, UV_READABLE, on_fuse_readable);
    uv_async_init(fs->loop, &fs->kick, on_kick);
    fs->kick.data = fs;
    uv_signal_t sigs[3];
    int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(fs->loop, &sigs[i]);
        sigs[i].data = fs;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    report(status_fd, 0);
    if (status_fd >= 0)
        detach_stdio(&fs->config);
    else if (fs->config.log_file && fs_log_sink_start(fs->config.log_file) != 0)
        ZN_WARN("cannot log to %s: logging to stderr", fs->config.log_file);
    zn_log_threshold = threshold;
    ZN_INFO("mounted hosts=%s mountpoint=%s sid=0x%" PRIx64 " server=%s", fs->config.hosts,
            fs->config.mountpoint, (uint64_t)zn_client_session_id(fs->client),
            zn_client_current_server(fs->client));

    uv_run(fs->loop, UV_RUN_DEFAULT);

    uv_poll_stop(&fs->fuse_poll);
    uv_close((uv_handle_t *)&fs->fuse_poll, NULL);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_close((uv_handle_t *)&fs->kick, NULL);
    uv_timer_stop(&fs->renew_timer);
    uv_close((uv_handle_t *)&fs->renew_timer, NULL);
    fs_notify_stop();
    fuse_session_unmount(fs->session);
    /* End the session now, so its ephemeral files and locks vanish at once. */
    bool closed = false;
    zn_client_close(fs->client, on_client_closed, &closed);
    while (!closed && uv_run(fs->loop, UV_RUN_ONCE) != 0) {
    }
    fuse_session_destroy(fs->session);
    free(fs->fuse_buf.mem);
    fuse_opt_free_args(&args);
    ZN_INFO("unmounted mountpoint=%s", fs->config.mountpoint);
    fs_log_sink_stop();
    return 0;
}
