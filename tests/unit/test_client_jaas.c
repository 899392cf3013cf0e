/* libznode's reading of a JAAS file's Client section (lib/client_jaas.c):
 * what zkCli.sh's -Djava.security.auth.login.config file gives the CLI and
 * the mount, what is refused rather than ignored, and password files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "znode/client.h"

static int parse(const char *text, const char *section, struct zn_jaas_client *out, char *err, size_t errlen)
{
    err[0] = '\0';
    return zn_jaas_client_parse(text, strlen(text), section, out, err, errlen);
}

static void a_digest_client_section_gives_digest_md5_with_its_user(void **state)
{
    (void)state;
    struct zn_jaas_client c;
    char err[512];
    const char *text = "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required user_x=\"y\";\n};\n"
                       "// the client's\n"
                       "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                       "  username=\"bob\"\n  password=\"a \\\"quoted\\\" secret\";\n};\n";
    assert_int_equal(parse(text, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c.mechanism, "DIGEST-MD5");
    assert_string_equal(c.user, "bob");
    assert_string_equal(c.password, "a \"quoted\" secret");
    /* another section name, as zookeeper.sasl.clientconfig names it */
    const char *other = "Kafka { org.apache.zookeeper.server.auth.DigestLoginModule required username=k password=p; };";
    assert_int_equal(parse(other, "Kafka", &c, err, sizeof err), 0);
    assert_string_equal(c.user, "k");
    assert_string_equal(c.password, "p");
}

static void a_krb5_client_section_with_the_ticket_cache_gives_gssapi(void **state)
{
    (void)state;
    struct zn_jaas_client c;
    char err[512];
    const char *text = "Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                       "  useTicketCache=true doNotPrompt=true useKeyTab=false;\n};\n";
    assert_int_equal(parse(text, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c.mechanism, "GSSAPI");
    assert_string_equal(c.user, "");
}

static void what_the_client_would_not_honour_is_refused_with_the_reason(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_a=b; };",
         "no Client section (the client's login module entry)"},
        {"Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=bob; };",
         "section Client: DigestLoginModule needs username and password"},
        {"Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=b password=p user_x=y; };",
         "section Client: DigestLoginModule option user_x is not read (username, password)"},
        {"Client { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\"; };",
         "section Client: Krb5LoginModule option useKeyTab=true is not supported (useTicketCache=true: the ticket "
         "cache of the environment, after kinit)"},
        {"Client { com.sun.security.auth.module.Krb5LoginModule required principal=\"c@R\" useTicketCache=true; };",
         "section Client: Krb5LoginModule option principal=c@R is not supported (useTicketCache=true: the ticket "
         "cache of the environment, after kinit)"},
        {"Client { com.sun.security.auth.module.Krb5LoginModule required doNotPrompt=true; };",
         "section Client: Krb5LoginModule needs useTicketCache=true (kinit first)"},
        {"Client { org.example.Other required; };",
         "section Client: login module org.example.Other is not supported (DigestLoginModule or Krb5LoginModule)"},
        {"Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=a password=b;\n"
         "  org.apache.zookeeper.server.auth.DigestLoginModule required username=c password=d; };",
         "section Client has more than one login module entry (only one is used)"},
        {"Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required username=\"a\n};",
         "line 2: a quoted value runs past the end of its line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct zn_jaas_client c;
        char err[512];
        assert_int_equal(parse(cases[i][0], NULL, &c, err, sizeof err), -1);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, err, cases[i][1]);
        assert_string_equal(c.mechanism, ""); /* nothing half-read is left behind */
        assert_string_equal(c.password, "");
    }
}

static void a_jaas_file_is_read_and_a_missing_one_named(void **state)
{
    (void)state;
    char path[] = "/tmp/test_client_jaas.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=u password=p; };";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct zn_jaas_client c;
    char err[512];
    assert_int_equal(zn_jaas_client_read(path, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c.user, "u");
    unlink(path);
    assert_int_equal(zn_jaas_client_read(path, NULL, &c, err, sizeof err), -1);
    char expected[600];
    snprintf(expected, sizeof expected, "%s: No such file or directory", path);
    assert_string_equal(err, expected);
}

static void a_password_file_gives_its_first_line(void **state)
{
    (void)state;
    char path[] = "/tmp/test_client_pw.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char pw[16], err[512], expected[600];
    static const char *const cases[][2] = {
        {"secret\n", "secret"}, {"secret", "secret"}, {"se cret\r\nsecond line\n", "se cret"}, {"12345678901234\n", "12345678901234"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i][0], f);
        fclose(f);
        assert_int_equal(zn_read_password_file(path, pw, sizeof pw, err, sizeof err), 0);
        assert_string_equal(pw, cases[i][1]);
    }
    /* empty, an empty first line, one byte too long: refused */
    static const char *const bad[] = {"", "\nsecret\n", "123456789012345\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(zn_read_password_file(path, pw, sizeof pw, err, sizeof err), -1);
        snprintf(expected, sizeof expected, "%s: no password on its first line (or over 14 bytes)", path);
        assert_string_equal(err, expected);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_digest_client_section_gives_digest_md5_with_its_user),
        cmocka_unit_test(a_krb5_client_section_with_the_ticket_cache_gives_gssapi),
        cmocka_unit_test(what_the_client_would_not_honour_is_refused_with_the_reason),
        cmocka_unit_test(a_jaas_file_is_read_and_a_missing_one_named),
        cmocka_unit_test(a_password_file_gives_its_first_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
