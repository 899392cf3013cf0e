/* The logger's last words: zn_log_exit's line is the last the process writes,
 * even while another thread is logging as fast as it can (the store's writer
 * reporting one failed batch after another when a member stops on a full
 * disk: the fault harness took such a later line for the reason it stopped). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static void *chatter(void *arg)
{
    (void)arg;
    for (;;)
        ZN_ERROR("store: committing a log batch failed: No space left on device");
    return NULL;
}

/* In a child whose stderr is a pipe: a thread logs without pause, then the
 * main thread calls zn_log_exit.  Returns the child's output. */
static char *child_output(int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        zn_log_set_program("znoded");
        pthread_t t;
        if (pthread_create(&t, NULL, chatter, NULL) != 0)
            _exit(90);
        usleep(2000);
        zn_log_exit(7, "FATAL: the log could not be written: no space left on device");
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

static void the_exit_line_is_the_last_line_and_the_status_is_kept(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        int status;
        char *out = child_output(&status);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 7);
        size_t len = strlen(out);
        assert_true(len > 0 && out[len - 1] == '\n');
        out[len - 1] = '\0';
        const char *last = strrchr(out, '\n');
        last = last ? last + 1 : out;
        assert_non_null(strstr(last, " ERROR znoded: FATAL: the log could not be written"));
        free(out);
    }
}

static void the_exit_line_has_the_logger_format(void **state)
{
    (void)state;
    int status;
    char *out = child_output(&status);
    const char *fatal = strstr(out, "FATAL: the log");
    assert_non_null(fatal);
    const char *start = fatal;
    while (start > out && start[-1] != '\n')
        start--;
    /* 2026-11-27T03:04:05.678Z ERROR znoded: FATAL: ... */
    assert_true(fatal - start == (ptrdiff_t)strlen("2026-11-27T03:04:05.678Z ERROR znoded: "));
    assert_int_equal(start[4], '-');
    assert_int_equal(start[10], 'T');
    assert_int_equal(start[23], 'Z');
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_exit_line_is_the_last_line_and_the_status_is_kept),
        cmocka_unit_test(the_exit_line_has_the_logger_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
