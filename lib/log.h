/*
 * Logging: one macro, levels, key=value fields.
 *
 *   ZN_LOG(ZN_LOG_INFO, "session created sid=0x%" PRIx64 " timeout_ms=%d", sid, t);
 *
 * The arguments are not evaluated when the level is below the threshold.
 * Lines go to the current sink (stderr by default) as
 *   2026-11-26T03:18:30.123Z INFO znoded: session created sid=0x... timeout_ms=...
 * Modules that must be deterministic under simulation (the replication core,
 * the data tree) do not call this; they log through an injected callback.
 */
#ifndef ZNODE_LOG_H
#define ZNODE_LOG_H

#include <stdarg.h>

enum zn_log_level {
    ZN_LOG_DEBUG = 0,
    ZN_LOG_INFO = 1,
    ZN_LOG_WARN = 2,
    ZN_LOG_ERROR = 3,
    ZN_LOG_OFF = 4,
};

extern int zn_log_threshold; /* lines below it are dropped; default INFO */

/* Sets the program name shown on each line ("znoded"); borrowed, must outlive logging. */
void zn_log_set_program(const char *name);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int zn_log_level_parse(const char *name);
void zn_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs one ERROR line (when ERROR is not below the threshold) and ends the
 * process with status at once (_exit): no other thread's line comes after
 * it, so it stays the process's last words. */
void zn_log_exit(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#define ZN_LOG(level, ...)                          \
    do {                                            \
        if ((level) >= zn_log_threshold)            \
            zn_log_write((level), __VA_ARGS__);     \
    } while (0)

#define ZN_DEBUG(...) ZN_LOG(ZN_LOG_DEBUG, __VA_ARGS__)
#define ZN_INFO(...) ZN_LOG(ZN_LOG_INFO, __VA_ARGS__)
#define ZN_WARN(...) ZN_LOG(ZN_LOG_WARN, __VA_ARGS__)
#define ZN_ERROR(...) ZN_LOG(ZN_LOG_ERROR, __VA_ARGS__)

#endif
