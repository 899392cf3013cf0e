/* Last words.  The crash handler's: the line's format (the logger's, so the
 * fault harness reads it as an ERROR), and a real crash in a child process:
 * the line and a backtrace on stderr, and death by the same signal.  And
 * zn_log_exit's: its line is the last the process writes, even while another
 * thread logs as fast as it can (the store's writer reporting one failed
 * batch after another when a member stops on a full disk: the fault harness
 * took such a later line for the reason it stopped). */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "crash.h"
#include "log.h"

static void the_line_has_the_loggers_timestamp_and_names_the_fault(void **state)
{
    (void)state;
    /* 2026-11-27T03:04:05.678Z */
    struct timespec t = {.tv_sec = 1795748645, .tv_nsec = 678900000};
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGBUS;
    info.si_code = BUS_ADRERR;
    info.si_addr = (void *)0x7f00dead0000;
    char buf[512];
    size_t n = crash_format_line(buf, sizeof buf, "znoded", SIGBUS, &info, 4242, &t);
    buf[n] = '\0';
    assert_string_equal(buf, "2026-11-27T03:04:05.678Z ERROR znoded: FATAL: crashed: signal 7 "
                             "SIGBUS (bus error: a mapped page that cannot be read or allocated) "
                             "addr=0x7f00dead0000 tid=4242; backtrace follows (addr2line -e znoded)\n");
}

static void a_signal_sent_by_kill_names_its_sender(void **state)
{
    (void)state;
    struct timespec t = {.tv_sec = 951782400, .tv_nsec = 0}; /* 2000-02-29T00:00:00 */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGSEGV;
    info.si_code = SI_USER;
    info.si_pid = 77;
    char buf[512];
    size_t n = crash_format_line(buf, sizeof buf, "znoded", SIGSEGV, &info, 1, &t);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "2000-02-29T00:00:00.000Z ERROR znoded: FATAL: crashed: signal 11 "));
    assert_non_null(strstr(buf, " sent by pid=77 tid=1;"));
    assert_null(strstr(buf, "addr="));
}

static void a_short_buffer_still_ends_the_line(void **state)
{
    (void)state;
    struct timespec t = {.tv_sec = 0, .tv_nsec = 0};
    char buf[40];
    size_t n = crash_format_line(buf, sizeof buf, "znoded", SIGABRT, NULL, 1, &t);
    assert_int_equal(n, sizeof buf);
    assert_int_equal(buf[n - 1], '\n');
    assert_memory_equal(buf, "1970-01-01T00:00:00.000Z ERROR", 30);
}

/* Runs fn in a child whose stderr goes to a pipe (with the crash handler
 * when asked); returns the tail of what it wrote (up to 2 MB) and its wait
 * status. */
static char *run_child(void (*fn)(void), bool crash_handler, int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        /* no core file from a test's deliberate crash */
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        zn_log_set_program("znoded");
        if (crash_handler && crash_handler_install("znoded") != 0)
            _exit(90);
        fn();
        _exit(91);
    }
    close(fds[1]);
    size_t cap = 1 << 22, len = 0;
    char *out = malloc(cap + 1);
    ssize_t r;
    while ((r = read(fds[0], out + len, cap - len)) > 0) {
        len += (size_t)r;
        if (len == cap) { /* keep the tail only */
            memmove(out, out + cap / 2, cap / 2);
            len = cap / 2;
        }
    }
    out[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return out;
}

static void touch_a_null_pointer(void)
{
    volatile int *p = NULL;
    *p = 1;
}

static void fail_an_assertion(void) { abort(); }

static void a_segfault_leaves_its_line_and_a_backtrace_and_dies_of_it(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer keeps SIGSEGV for its own report (znoded does not
     * install the handler in that build either); the release build runs this. */
    skip();
#endif
    int status;
    char *out = run_child(touch_a_null_pointer, true, &status);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_non_null(strstr(out, " ERROR znoded: FATAL: crashed: signal 11 SIGSEGV"));
    assert_non_null(strstr(out, " addr=0x0 "));
    /* backtrace_symbols_fd: one "binary(+offset)[address]" line per frame */
    assert_non_null(strstr(out, "test_last_words("));
    free(out);
}

static void an_abort_leaves_its_line_and_dies_of_sigabrt(void **state)
{
    (void)state;
    int status;
    char *out = run_child(fail_an_assertion, true, &status);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(out, " ERROR znoded: FATAL: crashed: signal 6 SIGABRT"));
    assert_non_null(strstr(out, " sent by pid="));
    free(out);
}

static void *chatter(void *arg)
{
    (void)arg;
    for (;;)
        ZN_ERROR("store: committing a log batch failed: No space left on device");
    return NULL;
}

/* A thread logs without pause; the main thread stops with zn_log_exit. */
static void stop_while_another_thread_logs(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, chatter, NULL) != 0)
        _exit(92);
    usleep(2000);
    zn_log_exit(7, "FATAL: the log could not be written: no space left on device");
}

static void the_exit_line_is_the_last_line_and_the_status_is_kept(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        int status;
        char *out = run_child(stop_while_another_thread_logs, false, &status);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 7);
        size_t len = strlen(out);
        assert_true(len > 0 && out[len - 1] == '\n');
        out[len - 1] = '\0';
        const char *last = strrchr(out, '\n');
        last = last ? last + 1 : out;
        /* 2026-11-27T03:04:05.678Z ERROR znoded: FATAL: ... */
        assert_non_null(strstr(last, " ERROR znoded: FATAL: the log could not be written"));
        assert_true(strstr(last, " ERROR znoded: ") - last == 24);
        assert_int_equal(last[10], 'T');
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_line_has_the_loggers_timestamp_and_names_the_fault),
        cmocka_unit_test(a_signal_sent_by_kill_names_its_sender),
        cmocka_unit_test(a_short_buffer_still_ends_the_line),
        cmocka_unit_test(a_segfault_leaves_its_line_and_a_backtrace_and_dies_of_it),
        cmocka_unit_test(an_abort_leaves_its_line_and_dies_of_sigabrt),
        cmocka_unit_test(the_exit_line_is_the_last_line_and_the_status_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
