/*
 * Last words on a fatal signal.  A member that dies by SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL or SIGABRT leaves one log line saying which signal, at what
 * address and in which thread, then a backtrace (addresses; addr2line -e
 * znoded resolves them), and dies of the same signal, so a core is still
 * written where cores are enabled.  Without it such a death leaves no trace
 * in the log at all: the fault harness could only say "died without its
 * message", which is how a real crash once hid behind a full-disk test.
 *
 * Only async-signal-safe calls in the handler: the line is formatted by hand
 * (no stdio, no gmtime_r, no malloc) and written with write(2).  The one
 * exception is backtrace_symbols_fd(): it writes without malloc, and
 * backtrace() is called once at install so that its lazy load of libgcc does
 * not happen inside the handler.  The handler runs on its own stack so that a
 * stack overflow is reported too.
 */
#include "crash.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CRASH_BACKTRACE_MAX 64

static char crash_program[32] = "znoded";

/* Appends s to buf at *n (bounded by cap). */
static void put_str(char *buf, size_t cap, size_t *n, const char *s)
{
    while (*s && *n < cap)
        buf[(*n)++] = *s++;
}

/* Appends v in base (10 or 16), zero-padded to width digits. */
static void put_num(char *buf, size_t cap, size_t *n, uint64_t v, unsigned base, int width)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && k < (int)sizeof digits);
    while (k < width && k < (int)sizeof digits)
        digits[k++] = '0';
    while (k > 0 && *n < cap)
        buf[(*n)++] = digits[--k];
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400) + (*m <= 2);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error: a mapped page that cannot be read or allocated)";
    case SIGFPE: return "SIGFPE (arithmetic fault)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGABRT: return "SIGABRT (abort: an assertion or the C library found corruption)";
    default: return "a fatal signal";
    }
}

size_t crash_format_line(char *buf, size_t cap, const char *program, int sig,
                         const siginfo_t *info, long tid, const struct timespec *now)
{
    size_t n = 0;
    int64_t secs = (int64_t)now->tv_sec;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rest = secs - days * 86400;
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    put_num(buf, cap, &n, (uint64_t)(y < 0 ? 0 : y), 10, 4);
    put_str(buf, cap, &n, "-");
    put_num(buf, cap, &n, mo, 10, 2);
    put_str(buf, cap, &n, "-");
    put_num(buf, cap, &n, d, 10, 2);
    put_str(buf, cap, &n, "T");
    put_num(buf, cap, &n, (uint64_t)(rest / 3600), 10, 2);
    put_str(buf, cap, &n, ":");
    put_num(buf, cap, &n, (uint64_t)(rest / 60 % 60), 10, 2);
    put_str(buf, cap, &n, ":");
    put_num(buf, cap, &n, (uint64_t)(rest % 60), 10, 2);
    put_str(buf, cap, &n, ".");
    put_num(buf, cap, &n, (uint64_t)(now->tv_nsec / 1000000), 10, 3);
    put_str(buf, cap, &n, "Z ERROR ");
    put_str(buf, cap, &n, program);
    put_str(buf, cap, &n, ": FATAL: crashed: signal ");
    put_num(buf, cap, &n, (uint64_t)sig, 10, 1);
    put_str(buf, cap, &n, " ");
    put_str(buf, cap, &n, signal_name(sig));
    if (info && info->si_code <= 0) { /* sent by kill(2), tgkill or abort() */
        put_str(buf, cap, &n, " sent by pid=");
        put_num(buf, cap, &n, (uint64_t)(info->si_pid < 0 ? 0 : info->si_pid), 10, 1);
    } else {
        put_str(buf, cap, &n, " addr=0x");
        put_num(buf, cap, &n, (uint64_t)(uintptr_t)(info ? info->si_addr : NULL), 16, 1);
    }
    put_str(buf, cap, &n, " tid=");
    put_num(buf, cap, &n, (uint64_t)(tid < 0 ? 0 : tid), 10, 1);
    put_str(buf, cap, &n, "; backtrace follows (addr2line -e znoded)\n");
    if (n == cap && cap > 0)
        buf[cap - 1] = '\n';
    return n;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    int saved_errno = errno;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char line[512];
    size_t n = crash_format_line(line, sizeof line, crash_program, sig, info,
                                 (long)syscall(SYS_gettid), &now);
    write_all(STDERR_FILENO, line, n);
    void *frames[CRASH_BACKTRACE_MAX];
    int depth = backtrace(frames, CRASH_BACKTRACE_MAX);
    backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    errno = saved_errno;
    /* SA_RESETHAND put the default action back.  A fault raised by an
     * instruction happens again on return and kills with a core; a signal
     * sent by kill(2) or abort() is raised again (it is blocked until the
     * handler returns). */
    if (!info || info->si_code <= 0)
        raise(sig);
}

int crash_handler_install(const char *program)
{
    if (program) {
        size_t len = strnlen(program, sizeof crash_program - 1);
        memcpy(crash_program, program, len);
        crash_program[len] = '\0';
    }
    void *warm[1];
    (void)backtrace(warm, 1);
    static char alt_stack[64 * 1024];
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return -1;
    static const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(signals[i], &sa, NULL) != 0)
            return -1;
    }
    return 0;
}
