/*
 * Last words on a fatal signal (see crash.c): one log line naming the signal,
 * the faulting address (or the
 * sender's pid) and the thread, then a backtrace, on stderr.
 */
#ifndef ZNODED_CRASH_H
#define ZNODED_CRASH_H

#include <signal.h>
#include <stddef.h>
#include <time.h>

/* Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT, with
 * an alternate stack for the calling thread.  0, or -1 with errno. */
int crash_handler_install(const char *program);

/* The handler's log line (in the logger's format, newline-terminated) into
 * buf; returns its length.  Async-signal-safe; exposed for its unit test. */
size_t crash_format_line(char *buf, size_t cap, const char *program, int sig,
                         const siginfo_t *info, long tid, const struct timespec *now);

#endif
