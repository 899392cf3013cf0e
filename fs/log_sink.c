/*
 * Where a mount running in the background logs: the file given with -o log=FILE, or syslog.
 *
 * Every log line of the process (the mount's, libznode's, libfuse's) is written to stderr, so
 * the sink takes over fd 2: a file is simply opened there; for syslog, fd 2 becomes a pipe
 * whose lines a thread of this file hands to syslog(3), each once, with the priority of its
 * level word and without the timestamp syslog adds itself.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "znodefs.h"

/* Longest line handed to syslog; the rest of a longer one follows as its own message. */
#define FS_LOG_LINE_MAX_BYTES 4096

/* The thread handing lines to syslog, joined by fs_log_sink_stop. */
static pthread_t pump_thread;
static bool pump_running;

static int priority_of(const char *level)
{
    if (strncmp(level, "DEBUG ", 6) == 0)
        return LOG_DEBUG;
    if (strncmp(level, "WARN ", 5) == 0)
        return LOG_WARNING;
    if (strncmp(level, "ERROR ", 6) == 0)
        return LOG_ERR;
    if (strncmp(level, "INFO ", 5) == 0)
        return LOG_INFO;
    return LOG_NOTICE; /* libfuse's own lines carry no level */
}

/* "2026-12-06T15:49:28.787Z INFO znodefs: text" gives priority INFO and "text". */
static void send_line(char *line)
{
    line[strcspn(line, "\n")] = '\0';
    if (!*line)
        return;
    char *level = strchr(line, ' ');
    int priority = LOG_NOTICE;
    const char *text = line;
    if (level && level - line == 24 && line[23] == 'Z') {
        priority = priority_of(level + 1);
        const char *colon = strstr(level, ": ");
        text = colon ? colon + 2 : level + 1;
    }
    syslog(priority, "%s", text);
}

static void *pump(void *arg)
{
    FILE *in = arg;
    char line[FS_LOG_LINE_MAX_BYTES];
    while (fgets(line, sizeof line, in))
        send_line(line);
    fclose(in);
    return NULL;
}

int fs_log_sink_start(const char *file)
{
    int fd;
    if (file) {
        fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    } else {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            return -1;
        FILE *in = fdopen(p[0], "r");
        if (!in || pthread_create(&pump_thread, NULL, pump, in) != 0) {
            if (in)
                fclose(in);
            else
                close(p[0]);
            close(p[1]);
            return -1;
        }
        pump_running = true;
        openlog("znodefs", LOG_PID, LOG_DAEMON);
        fd = p[1];
    }
    if (dup2(fd, STDERR_FILENO) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* At exit: every line written so far reaches syslog before the process ends (the last ones,
 * "unmounted" among them, were lost when exit took the pump thread with them).  fd 2 becomes
 * /dev/null, closing the pipe's write end; the pump drains it, reads end of file and returns. */
void fs_log_sink_stop(void)
{
    if (!pump_running)
        return;
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0)
        return;
    fflush(stderr);
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
    pthread_join(pump_thread, NULL);
    pump_running = false;
}
