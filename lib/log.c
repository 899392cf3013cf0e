/* Logging sink: formats one line per call with a UTC timestamp and the level. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

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

void zn_log_write(int level, const char *fmt, ...)
{
    static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    struct timeval now;
    struct tm tm;
    char line[2048];
    gettimeofday(&now, NULL);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now.tv_usec / 1000),
                     level_names[level < 0 ? 0 : level > 4 ? 4 : level], log_program);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines from several threads do not interleave. */
    size_t len = strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}
