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

/* A directory with dataDir/myid = id, and a dynamic file named name in it holding text. */
static char scratch_dir[64];

static void make_member_dir(int id, const char *dyn_name, const char *dyn_text, char *dyn_path,
                            size_t cap)
{
    strcpy(scratch_dir, "/tmp/zn-test-dyn-XXXXXX");
    assert_non_null(mkdtemp(scratch_dir));
    char path[256];
    snprintf(path, sizeof path, "%s/myid", scratch_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%d\n", id);
    fclose(f);
    snprintf(dyn_path, cap, "%s/%s", scratch_dir, dyn_name);
    f = fopen(dyn_path, "w");
    assert_non_null(f);
    fputs(dyn_text, f);
    fclose(f);
}

static void remove_member_dir(const char *dyn_path)
{
    char path[256];
    unlink(dyn_path);
    snprintf(path, sizeof path, "%s/myid", scratch_dir);
    unlink(path);
    rmdir(scratch_dir);
}

static int load_with_dynamic(struct config *cfg, const char *extra, const char *dyn_path, char *err,
                             size_t errlen)
{
    char text[1024];
    snprintf(text, sizeof text, "tickTime=1000\ndataDir=%s\ndynamicConfigFile=%s\n%s", scratch_dir,
             dyn_path, extra);
    return load(cfg, text, err, errlen);
}

static void dynamic_config_file_holds_the_membership_and_this_members_client_port(void **state)
{
    (void)state;
    char dyn[256], err[512];
    make_member_dir(2, "zoo.cfg.dynamic.100000000",
                    "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"
                    "server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2182\n"
                    "server.3=127.0.0.3:2888:3888:observer;2183\n",
                    dyn, sizeof dyn);
    struct config cfg;
    assert_int_equal(load_with_dynamic(&cfg, "", dyn, err, sizeof err), 0);
    assert_int_equal(cfg.server_count, 3);
    assert_int_equal(cfg.my_id, 2);
    assert_true(cfg.servers[2].observer);
    assert_int_equal(cfg.client_port, 2182);
    assert_string_equal(cfg.client_port_address, "127.0.0.2");
    /* the file's version is reported, but the membership starts at 0 */
    assert_true(cfg.dynamic_file_version == 0x100000000ull);
    assert_true(cfg.config_version == 0);
    assert_false(cfg.dynamic_loaded);
    remove_member_dir(dyn);
}

static void dynamic_config_file_version_line_must_agree_with_its_name(void **state)
{
    (void)state;
    char dyn[256], err[512];
    make_member_dir(1, "zoo.cfg.dynamic.200000000",
                    "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nversion=100000000\n",
                    dyn, sizeof dyn);
    struct config cfg;
    assert_int_equal(load_with_dynamic(&cfg, "clientPort=2181\n", dyn, err, sizeof err), -1);
    assert_non_null(strstr(err, "its version line (100000000) disagrees with its name (200000000)"));
    remove_member_dir(dyn);
    /* without a version in its name, the line gives it */
    make_member_dir(1, "zoo.cfg.dynamic",
                    "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nversion=1a\n", dyn,
                    sizeof dyn);
    assert_int_equal(load_with_dynamic(&cfg, "clientPort=2181\n", dyn, err, sizeof err), 0);
    assert_true(cfg.dynamic_file_version == 0x1a);
    remove_member_dir(dyn);
}

static void dynamic_config_file_refuses_what_is_not_a_server_line(void **state)
{
    (void)state;
    char dyn[256], err[512];
    make_member_dir(1, "zoo.cfg.dynamic", "server.1=127.0.0.1:2888:3888\ngroup.1=1:2:3\n", dyn,
                    sizeof dyn);
    struct config cfg;
    assert_int_equal(load_with_dynamic(&cfg, "clientPort=2181\n", dyn, err, sizeof err), -1);
    assert_non_null(strstr(err, "group.1: only server.N lines belong in a dynamic configuration"));
    remove_member_dir(dyn);
}

static void server_lines_in_zoo_cfg_beside_a_dynamic_file_are_refused(void **state)
{
    (void)state;
    char dyn[256], err[512];
    make_member_dir(1, "zoo.cfg.dynamic", "server.1=127.0.0.1:2888:3888\n", dyn, sizeof dyn);
    struct config cfg;
    assert_int_equal(load_with_dynamic(&cfg, "clientPort=2181\nserver.2=127.0.0.2:2888:3888\n", dyn,
                                       err, sizeof err), -1);
    assert_non_null(strstr(err, "server.N lines must be in the dynamic configuration file"));
    remove_member_dir(dyn);
}

static void a_missing_dynamic_file_is_an_error_naming_it(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\ndynamicConfigFile=/nonexistent/zoo.cfg.dynamic\n",
                          err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/zoo.cfg.dynamic: No such file or directory"));
}

static void client_port_must_agree_with_the_server_line(void **state)
{
    (void)state;
    char dyn[256], err[512];
    make_member_dir(1, "zoo.cfg.dynamic", "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"
                    "server.2=127.0.0.2:2888:3888;127.0.0.2:2181\n", dyn, sizeof dyn);
    struct config cfg;
    assert_int_equal(load_with_dynamic(&cfg, "clientPortAddress=127.0.0.1\nclientPort=2999\n", dyn, err,
                                       sizeof err), -1);
    assert_non_null(strstr(err, "clientPort 127.0.0.1:2999 differs from the client address 127.0.0.1:2181"));
    assert_int_equal(load_with_dynamic(&cfg, "clientPort=2181\n", dyn, err, sizeof err), 0);
    assert_string_equal(cfg.client_port_address, "127.0.0.1");
    remove_member_dir(dyn);
}

static void server_lines_may_name_ids_above_255(void **state)
{
    (void)state;
    struct config_server s;
    char err[256];
    /* kazoo's reconfig test joins server.999 */
    assert_int_equal(config_parse_server("server.999", "127.0.0.9:1234:2345:observer;3456", &s, err,
                                         sizeof err), 0);
    assert_int_equal(s.id, 999);
    assert_true(s.observer);
    assert_int_equal(config_parse_server("server.-1", "a:1:2", &s, err, sizeof err), -1);
}

/* Each case: zoo.cfg text appended to head, and a part of the refusal it must get. */
static void expect_refusals(const char *head, const char *const cases[][2], size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct config cfg;
        char text[512], err[512];
        snprintf(text, sizeof text, "%s%s\n", head, cases[i][0]);
        assert_int_equal(load(&cfg, text, err, sizeof err), -1);
        if (!strstr(err, cases[i][1]))
            fail_msg("%s: got '%s'", cases[i][0], err);
    }
}

static void an_unknown_key_is_refused_naming_it(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nsnapCont=5\n", err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: snapCont: unknown key"));
}

static void unsupported_security_keys_are_refused_as_not_supported_yet(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"secureClientPort=2182", "secureClientPort=2182 needs ssl.keyStore.location"},
        {"ssl.keyStore.location=/k.pem", "ssl.* keys are set but neither secureClientPort nor client.portUnification=true is"},
        {"ssl.quorum.keyStore.location=/k", "ssl.quorum.* keys are set but neither sslQuorum=true nor "
                                            "portUnification=true"},
        {"ssl.quorum.authProvider=x509", "ssl.quorum.authProvider: not supported (between members"},
        {"zookeeper.ssl.quorum.keyStore.location=/k", "not supported (between members znoded reads"},
        {"ssl.context.supplier.class=x", "ssl.context.supplier.class: not supported yet"},
        {"sslQuorum=true", "sslQuorum=true: there are no server.N lines"},
        {"sslQuorumReloadCertFiles=true", "sslQuorumReloadCertFiles=true but neither sslQuorum=true"},
        {"quorum.auth.learnerRequireSasl=true", "quorum.auth.enableSasl is disabled, so cannot enable "
                                                "quorum.auth.learnerRequireSasl"},
        {"quorum.auth.enableSasl=true", "quorum.auth.enableSasl=true: there are no server.N lines"},
        {"kerberos.removeRealmFromPrincipal=true", "without a Krb5LoginModule in the JAAS Server section"},
        {"sasl.serverconfig=Other", "sasl.serverconfig: not supported"},
        {"authProvider.2=com.example.Custom", "'com.example.Custom' is not a provider znoded has"},
    };
    expect_refusals("dataDir=/tmp/x\nclientPort=1\n", cases, sizeof cases / sizeof cases[0]);
}

static void the_default_values_of_unsupported_features_are_accepted(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nsslQuorum=false\nforceSync=YES\n"
                                "quorum.auth.enableSasl=false\nelectionAlg=3\nadmin.enableServer=false\n"
                                "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.ignored_count, 0);
}

static void jvm_only_keys_are_ignored_and_recorded_once(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\njvm.pause.monitor=true\n"
                                "serverCnxnFactory=org.apache.zookeeper.server.NIOServerCnxnFactory\n"
                                "jvm.pause.monitor=false\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.ignored_count, 2);
    assert_string_equal(cfg.ignored[0].key, "jvm.pause.monitor");
    assert_string_equal(cfg.ignored[1].key, "serverCnxnFactory");
}

/* autopurge.*: acted on, with ZooKeeper's meaning (never listed as ignored):
 * snapRetainCount below 3 keeps 3 (ZooKeeper warns and does the same),
 * above what the store keeps is refused; purgeInterval is hours, 0 never
 * purges, absent purges at every snapshot (-1). */
static void autopurge_keys_are_acted_on(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\n", err, sizeof err), 0);
    assert_int_equal(cfg.snap_retain_count, 3);
    assert_int_equal(cfg.purge_interval_hours, -1);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nautopurge.snapRetainCount=5\n"
                                "autopurge.purgeInterval=24\n", err, sizeof err), 0);
    assert_int_equal(cfg.snap_retain_count, 5);
    assert_int_equal(cfg.purge_interval_hours, 24);
    assert_int_equal(cfg.ignored_count, 0);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nautopurge.snapRetainCount=1\n"
                                "autopurge.purgeInterval=0\n", err, sizeof err), 0);
    assert_int_equal(cfg.snap_retain_count, 3);
    assert_int_equal(cfg.purge_interval_hours, 0);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nautopurge.snapRetainCount=-7\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.snap_retain_count, 3);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nautopurge.snapRetainCount=64\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.snap_retain_count, 64);
    static const char *const cases[][2] = {
        {"autopurge.snapRetainCount=65\n",
         "autopurge.snapRetainCount: '65' is not an integer <= 64 (the most snapshots znoded keeps)"},
        {"autopurge.snapRetainCount=three\n",
         "autopurge.snapRetainCount: 'three' is not an integer <= 64 (the most snapshots znoded keeps)"},
        {"autopurge.purgeInterval=-1\n",
         "autopurge.purgeInterval: '-1' is not a number of hours in [0, 1000000] (0: never purge)"},
        {"autopurge.purgeInterval=1h\n",
         "autopurge.purgeInterval: '1h' is not a number of hours in [0, 1000000] (0: never purge)"},
        {"autopurge.purgeInterval=1000001\n",
         "autopurge.purgeInterval: '1000001' is not a number of hours in [0, 1000000] (0: never purge)"},
    };
    expect_refusals("dataDir=/tmp/x\nclientPort=1\n", cases, sizeof cases / sizeof cases[0]);
}

/* The log and snapshot size limits are acted on now that the log and the
 * snapshots are files: read in bytes, non-positive is off, bad is refused. */
static void log_and_snapshot_size_limits_are_read(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\n", err, sizeof err), 0);
    assert_int_equal(cfg.log_size_limit, 0);
    assert_int_equal(cfg.snap_size_limit, 4194304LL * 1024);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\ntxnLogSizeLimitInKb=16\n"
                                "snapSizeLimitInKb=-1\n", err, sizeof err), 0);
    assert_int_equal(cfg.log_size_limit, 16 << 10);
    assert_int_equal(cfg.snap_size_limit, 0);
    assert_int_equal(cfg.ignored_count, 0);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\ntxnLogSizeLimitInKb=1\n"
                                "snapSizeLimitInKb=100\n", err, sizeof err), 0);
    assert_int_equal(cfg.log_size_limit, 4 << 10); /* at least 4 KB */
    assert_int_equal(cfg.snap_size_limit, 100 << 10);
    assert_int_not_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\ntxnLogSizeLimitInKb=lots\n",
                              err, sizeof err), 0);
    assert_non_null(strstr(err, "txnLogSizeLimitInKb"));
    assert_int_not_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nsnapSizeLimitInKb=4GB\n",
                              err, sizeof err), 0);
    assert_non_null(strstr(err, "snapSizeLimitInKb"));
}

/* preAllocSize (KB) sizes the log's segment files; out of range is refused. */
static void prealloc_size_sets_the_log_segment_size(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\n", err, sizeof err), 0);
    assert_int_equal(cfg.log_segment_bytes, 0);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\npreAllocSize=4096\n", err, sizeof err), 0);
    assert_int_equal(cfg.log_segment_bytes, 4096u << 10);
    assert_int_equal(cfg.ignored_count, 0);
    assert_int_not_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\npreAllocSize=2\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "preAllocSize: '2' is not a size in KB in [4, 1048576]"));
}

static void connection_limits_are_read(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nmaxCnxns=7\nclientPortListenBacklog=-1\n",
                          err, sizeof err), 0);
    assert_int_equal(cfg.max_cnxns, 7);
    assert_int_equal(cfg.listen_backlog, 1024);
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=1\nclientPortListenBacklog=64\n", err,
                          sizeof err), 0);
    assert_int_equal(cfg.listen_backlog, 64);
}

static int load_tls(struct config *cfg, const char *extra, char *err, size_t errlen)
{
    char text[1024];
    snprintf(text, sizeof text, "dataDir=/tmp/x\nclientPort=2181\nsecureClientPort=2182\n%s", extra);
    return load(cfg, text, err, errlen);
}

static void tls_keys_are_read_with_zookeepers_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/etc/zk/server.pem\n", err, sizeof err), 0);
    assert_int_equal(cfg.tls.secure_client_port, 2182);
    /* unset: every address, ZooKeeper's default, the same as the plain client port's */
    assert_string_equal(cfg.tls.secure_client_port_address, cfg.client_port_address);
    assert_int_equal(cfg.tls.key_store_type, CONFIG_STORE_PEM);
    assert_int_equal(cfg.tls.client_auth, CONFIG_CLIENT_AUTH_NEED);
    assert_int_equal(cfg.tls.min_version, CONFIG_TLS_1_2);
    assert_int_equal(cfg.tls.max_version, CONFIG_TLS_1_3);
    assert_int_equal(cfg.tls.handshake_timeout_ms, 5000);
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.pem\nsecureClientPortAddress=127.0.0.2\n",
                              err, sizeof err), 0);
    assert_string_equal(cfg.tls.secure_client_port_address, "127.0.0.2");
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.pem\nssl.handshakeDetectionTimeoutMillis=750\n",
                              err, sizeof err), 0);
    assert_int_equal(cfg.tls.handshake_timeout_ms, 750);
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.p12\nssl.trustStore.location=/t\n"
                                    "ssl.trustStore.type=pkcs12\nssl.clientAuth=Want\n"
                                    "ssl.protocol=TLSv1.3\n",
                              err, sizeof err), 0);
    assert_int_equal(cfg.tls.key_store_type, CONFIG_STORE_PKCS12);
    assert_int_equal(cfg.tls.trust_store_type, CONFIG_STORE_PKCS12);
    assert_int_equal(cfg.tls.client_auth, CONFIG_CLIENT_AUTH_WANT);
    assert_int_equal(cfg.tls.min_version, CONFIG_TLS_1_3);
    assert_int_equal(cfg.tls.max_version, CONFIG_TLS_1_3);
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.pem\n"
                                    "zookeeper.X509AuthenticationProvider.superUser=CN=admin,O=Example\n",
                              err, sizeof err), 0);
    assert_string_equal(cfg.tls.x509_super_user, "CN=admin,O=Example");
}

static void enabled_protocols_win_over_the_protocol(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.pem\nssl.enabledProtocols=TLSv1.2\n"
                                    "ssl.protocol=TLSv1.3\n",
                              err, sizeof err), 0);
    assert_int_equal(cfg.tls.min_version, CONFIG_TLS_1_2);
    assert_int_equal(cfg.tls.max_version, CONFIG_TLS_1_2);
    assert_int_equal(load_tls(&cfg, "ssl.keyStore.location=/k.pem\nssl.enabledProtocols=TLSv1.1\n",
                              err, sizeof err), -1);
    assert_non_null(strstr(err, "ssl.enabledProtocols: 'TLSv1.1' is not supported (TLSv1.2 and TLSv1.3 are)"));
}

static void tls_values_znoded_cannot_use_are_refused(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"ssl.keyStore.location=/k.jks\n", "convert it to PKCS12 with: keytool -importkeystore"},
        {"ssl.keyStore.location=/k\nssl.keyStore.type=BCFKS\n", "is a Java key store"},
        {"ssl.keyStore.location=/k.store\n", "cannot tell the type of /k.store from its name"},
        {"ssl.keyStore.location=/k.pem\nssl.clientAuth=maybe\n", "expected need, want or none"},
        {"ssl.keyStore.location=/k.pem\nssl.authProvider=sasl\n", "only the x509 provider is built in"},
        {"ssl.keyStore.location=/k.pem\nssl.handshakeDetectionTimeoutMillis=0\n",
         "ssl.handshakeDetectionTimeoutMillis: expected milliseconds from 1 to 3600000, got '0'"},
        {"ssl.keyStore.location=/k.pem\nclientPortAddress=127.0.0.1\nsecureClientPortAddress=127.0.0.1\nsecureClientPort=2181\n",
         "for TLS and plain clients on one port set client.portUnification=true and no secureClientPort"},
        {"client.portUnification=yes\n", "client.portUnification: expected true or false, got 'yes'"},
    };
    expect_refusals("dataDir=/tmp/x\nclientPort=2181\nsecureClientPort=2182\n", cases,
                    sizeof cases / sizeof cases[0]);
}

static void port_unification_needs_the_server_key_and_nothing_else(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"client.portUnification=true\n",
         "client.portUnification=true needs ssl.keyStore.location (the server's key and certificate, for the "
         "TLS clients of clientPort)"},
        {"ssl.keyStore.location=/k.pem\nclient.portUnification=false\n",
         "ssl.* keys are set but neither secureClientPort nor client.portUnification=true is"},
    };
    expect_refusals("dataDir=/tmp/x\nclientPort=2181\n", cases, sizeof cases / sizeof cases[0]);
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, "dataDir=/tmp/x\nclientPort=2181\nssl.keyStore.location=/k.pem\n"
                                "zookeeper.client.portUnification=true\n", err, sizeof err), 0);
    assert_true(cfg.tls.port_unification);
    assert_int_equal(cfg.tls.secure_client_port, 0);
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
        cmocka_unit_test(dynamic_config_file_holds_the_membership_and_this_members_client_port),
        cmocka_unit_test(dynamic_config_file_version_line_must_agree_with_its_name),
        cmocka_unit_test(dynamic_config_file_refuses_what_is_not_a_server_line),
        cmocka_unit_test(server_lines_in_zoo_cfg_beside_a_dynamic_file_are_refused),
        cmocka_unit_test(a_missing_dynamic_file_is_an_error_naming_it),
        cmocka_unit_test(client_port_must_agree_with_the_server_line),
        cmocka_unit_test(server_lines_may_name_ids_above_255),
        cmocka_unit_test(an_unknown_key_is_refused_naming_it),
        cmocka_unit_test(unsupported_security_keys_are_refused_as_not_supported_yet),
        cmocka_unit_test(the_default_values_of_unsupported_features_are_accepted),
        cmocka_unit_test(jvm_only_keys_are_ignored_and_recorded_once),
        cmocka_unit_test(autopurge_keys_are_acted_on),
        cmocka_unit_test(log_and_snapshot_size_limits_are_read),
        cmocka_unit_test(prealloc_size_sets_the_log_segment_size),
        cmocka_unit_test(connection_limits_are_read),
        cmocka_unit_test(tls_keys_are_read_with_zookeepers_defaults),
        cmocka_unit_test(enabled_protocols_win_over_the_protocol),
        cmocka_unit_test(tls_values_znoded_cannot_use_are_refused),
        cmocka_unit_test(port_unification_needs_the_server_key_and_nothing_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
