/* zoo.cfg parsing: ZooKeeper's keys, defaults, and clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char cfg_path[64];

static void write_cfg(const char *text)
{
    strcpy(cfg_path, "/tmp/zn-test-cfg-XXXXXX");
    int fd = mkstemp(cfg_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int load(struct config *cfg, const char *text, char *err, size_t errlen)
{
    write_cfg(text);
    config_defaults(cfg);
    int rc = config_load(cfg, cfg_path, err, errlen);
    unlink(cfg_path);
    return rc;
}

static void standalone_config_gets_zookeeper_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg, "# comment\ntickTime=1000\n dataDir = /tmp/x \nclientPort=2181\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.tick_time_ms, 1000);
    assert_string_equal(cfg.data_dir, "/tmp/x");
    assert_string_equal(cfg.data_log_dir, "/tmp/x");
    assert_int_equal(cfg.client_port, 2181);
    assert_int_equal(cfg.min_session_timeout_ms, 2000);
    assert_int_equal(cfg.max_session_timeout_ms, 20000);
    assert_int_equal(cfg.max_client_cnxns, 60);
    assert_int_equal(cfg.four_letter_words, CONFIG_4LW_SRVR);
    assert_int_equal(cfg.jute_max_buffer, 0xfffff);
    assert_int_equal(cfg.server_count, 0);
}

static void whitelist_star_allows_every_word(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\n4lw.commands.whitelist=*\n", err,
                          sizeof err), 0);
    assert_int_equal(cfg.four_letter_words, CONFIG_4LW_ALL);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\n4lw.commands.whitelist=ruok, mntr\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.four_letter_words, CONFIG_4LW_RUOK | CONFIG_4LW_MNTR);
}

static void bad_value_names_the_line_and_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=seventy\n", err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));
    assert_non_null(strstr(err, "clientPort"));
}

static void missing_data_dir_is_an_error(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg, "clientPort=2181\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "dataDir"));
}

static void line_without_equals_is_an_error(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\njunk\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "key=value"));
}

static void server_lines_are_parsed_with_roles(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg,
                          "dataDir=/tmp/x\nclientPort=1\nserver.1=127.0.0.1:2888:3888\n"
                          "server.2=127.0.0.2:2888:3888:participant\n"
                          "server.3=127.0.0.3:2888:3888:observer;127.0.0.3:2181\n",
                          err, sizeof err) == 0 || strstr(err, "myid"), 1);
    config_defaults(&cfg);
    cfg.my_id = 2;
    write_cfg("dataDir=/tmp/x\nclientPort=1\nserver.1=127.0.0.1:2888:3888\n"
              "server.2=127.0.0.2:2888:3888:participant\n"
              "server.3=127.0.0.3:2888:3888:observer;127.0.0.3:2181\n");
    assert_int_equal(config_load(&cfg, cfg_path, err, sizeof err), 0);
    unlink(cfg_path);
    assert_int_equal(cfg.server_count, 3);
    assert_string_equal(cfg.servers[1].host, "127.0.0.2");
    assert_int_equal(cfg.servers[1].peer_port, 2888);
    assert_int_equal(cfg.servers[1].election_port, 3888);
    assert_false(cfg.servers[1].observer);
    assert_true(cfg.servers[2].observer);
}

static void duplicate_server_id_is_an_error(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg,
                          "dataDir=/tmp/x\nclientPort=1\nserver.1=a:1:2\nserver.1=b:1:2\n", err,
                          sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
}

static void min_session_timeout_above_max_is_an_error(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    assert_int_equal(load(&cfg,
                          "dataDir=/tmp/x\nclientPort=1\nminSessionTimeout=9000\n"
                          "maxSessionTimeout=5000\n",
                          err, sizeof err), -1);
    assert_non_null(strstr(err, "minSessionTimeout"));
}

static void four_letter_word_bits_are_found(void **state)
{
    (void)state;
    assert_int_equal(config_4lw_bit("ruok"), CONFIG_4LW_RUOK);
    assert_int_equal(config_4lw_bit("wchs"), CONFIG_4LW_WCHS);
    assert_int_equal(config_4lw_bit("\0\0\0\x2c"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(standalone_config_gets_zookeeper_defaults),
        cmocka_unit_test(whitelist_star_allows_every_word),
        cmocka_unit_test(bad_value_names_the_line_and_key),
        cmocka_unit_test(missing_data_dir_is_an_error),
        cmocka_unit_test(line_without_equals_is_an_error),
        cmocka_unit_test(server_lines_are_parsed_with_roles),
        cmocka_unit_test(duplicate_server_id_is_an_error),
        cmocka_unit_test(min_session_timeout_above_max_is_an_error),
        cmocka_unit_test(four_letter_word_bits_are_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
