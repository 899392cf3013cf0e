/* Logging sink: formats one line per call with a UTC timestamp and the level. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int zn_log_threshold = ZN_LOG_INFO;
static const char *log_program = "znode";

void zn_log_set_program(const char *name) { log_program = name; }

int zn_log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Formats one line (timestamp, level, program, message, newline) into line;
 * returns its length. */
static size_t log_format(char *line, size_t cap, int level, const char *fmt, va_list ap)
{
    static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    struct timeval now;
    struct tm tm;
    gettimeofday(&now, NULL);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now.tv_usec / 1000),
                     level_names[level < 0 ? 0 : level > 4 ? 4 : level], log_program);
    if (n > 0 && (size_t)n < cap)
        vsnprintf(line + n, cap - (size_t)n, fmt, ap);
    size_t len = strnlen(line, cap - 2);
    line[len++] = '\n';
    return len;
}

void zn_log_write(int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(line, sizeof line, level, fmt, ap);
    va_end(ap);
    /* One write per line so lines from several threads do not interleave. */
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}

void zn_log_exit(int status, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(line, sizeof line, ZN_LOG_ERROR, fmt, ap);
    va_end(ap);
    /* The stream stays locked to the end: another thread's line (a store
     * writer reporting its next failed batch) would otherwise land after
     * this one and read as the reason the process stopped.  _exit, not exit:
     * nothing is left to flush, and exit handlers would run while the other
     * threads go on. */
    flockfile(stderr);
    if (ZN_LOG_ERROR >= zn_log_threshold) {
        fwrite_unlocked(line, 1, len, stderr);
        fflush_unlocked(stderr);
    }
    _exit(status);
}
