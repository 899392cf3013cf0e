/*
 * znoded: the program.  Parses the command line and zoo.cfg, sets up
 * logging, and runs the server's loop until SIGTERM or SIGINT.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crash.h"
#include "dump.h"
#include "restore.h"
#include "log.h"
#include "saslauth.h"
#include "server.h"
#include "tls.h"
#include "zkimport.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: znoded [options] CONFIG\n"
            "       znoded --dump [--zxid FROM:TO] [--path PATH] CONFIG|STORE_DIR\n"
            "       znoded --restore BACKUP_FILE CONFIG\n"
            "       znoded --import-zookeeper ZK_DATADIR[:ZK_DATALOGDIR] CONFIG\n"
            "       znoded --version\n"
            "\n"
            "Runs one member of a znodefs ensemble, or a standalone server, speaking the\n"
            "ZooKeeper client protocol.  CONFIG is a ZooKeeper zoo.cfg; with no server.N\n"
            "lines the server is standalone.\n"
            "\n"
            "options:\n"
            "  --id N           this member's id (instead of dataDir/myid)\n"
            "  --set KEY=VALUE  override one zoo.cfg setting (repeatable)\n"
            "  --log-level L    debug, info, warn or error (default: logLevel or info)\n"
            "  --check-config   parse CONFIG, print the effective settings and the keys\n"
            "                   ignored, and exit (0: good, 2: refused)\n"
            "  --dump           print the store's records offline (of CONFIG's dataLogDir and the\n"
            "                   snapshot files in its dataDir, or of STORE_DIR holding both),\n"
            "                   checking every checksum, and exit: 0 all intact,\n"
            "                   1 a record is damaged (each named), 2 the store cannot be read;\n"
            "                   a ZooKeeper dataDir or dataLogDir (with version-2/) is read as\n"
            "                   ZooKeeper wrote it: its snapshots and transaction logs\n"
            "  --zxid FROM:TO   --dump: only records in this zxid range (0x hex or decimal; a\n"
            "                   side may be left empty)\n"
            "  --path PATH      --dump: only log records that touch PATH or a node below it\n"
            "  --restore FILE   write the backup FILE (znode backup, or the AdminServer's\n"
            "                   snapshot command) into CONFIG's empty data directory and\n"
            "                   exit: 0 restored, 1 refused (the reason on stderr)\n"
            "  --import-zookeeper ZK_DATADIR[:ZK_DATALOGDIR]\n"
            "                   build the tree Apache ZooKeeper would load from its data\n"
            "                   directory (newest snapshot, plain, .gz or .snappy, then its\n"
            "                   logs) and write it into CONFIG's empty data directory; exit:\n"
            "                   0 imported, 1 refused (the reason and file on stderr)\n"
            "  --version        print the version and exit\n"
            "  -h, --help       this text\n"
            "\n"
            "zoo.cfg keys (ZooKeeper's names and meanings):\n"
            "  tickTime=2000                  the basic time unit in ms\n"
            "  dataDir=/var/lib/znodefs       snapshots and (by default) the log; required\n"
            "  dataLogDir=DIR                 the transaction log, if apart from dataDir\n"
            "  preAllocSize=65536             KB each log segment file is preallocated to\n"
            "  txnLogSizeLimitInKb=-1         KB no log segment file exceeds (<= 0: off)\n"
            "  clientPort=2181                the client port; required\n"
            "  clientPortAddress=0.0.0.0      the address to listen on\n"
            "  maxClientCnxns=60              connections per client address (0: no limit)\n"
            "  minSessionTimeout=2*tickTime   session timeouts are clamped into\n"
            "  maxSessionTimeout=20*tickTime  [min, max]\n"
            "  4lw.commands.whitelist=srvr    four-letter words allowed (comma list, or *):\n"
            "                                 ruok srvr stat conf envi mntr cons wchs wchc\n"
            "                                 wchp dirs isro crst srst hash\n"
            "  jute.maxbuffer=1048575         the largest packet (and so znode data) in bytes\n"
            "  snapCount=100000               transactions between snapshots (in an ensemble\n"
            "                                 drawn per member from [snapCount/2+1, snapCount];\n"
            "                                 at most 8388608)\n"
            "  snapSizeLimitInKb=4194304      also a snapshot once the log since the last one\n"
            "                                 holds this many KB (drawn as snapCount; <= 0: off)\n"
            "  autopurge.snapRetainCount=3    snapshots kept, with the log from the oldest (3..64)\n"
            "  autopurge.purgeInterval        hours between purges; 0: never; absent: after\n"
            "                                 every snapshot\n"
            "  globalOutstandingLimit=1000    queued requests before reads are throttled\n"
            "  initLimit=10, syncLimit=5      ensemble timing, in ticks\n"
            "  server.N=host:peerPort:electionPort[:observer][;[host:]clientPort]   members\n"
            "  dynamicConfigFile=PATH         the server.N lines in a file of their own (as\n"
            "                                 ZooKeeper 3.5+); zoo.cfg then holds none\n"
            "  maxCnxns=0                     client connections in all (0: no limit)\n"
            "  secureClientPort=PORT          TLS clients (with ssl.keyStore.location, ...\n"
            "                                 ssl.trustStore.*, ssl.clientAuth=need|want|none,\n"
            "                                 ssl.enabledProtocols, ssl.ciphersuites)\n"
            "  java.security.auth.login.config=PATH  SASL: the JAAS file whose Server\n"
            "                                 section lists user_NAME=\"password\" (DIGEST-MD5)\n"
            "                                 or names principal= and keyTab= (GSSAPI); also\n"
            "                                 -D...=PATH in SERVER_JVMFLAGS; with\n"
            "                                 authProvider.1=...SASLAuthenticationProvider\n"
            "                                 for sasl:NAME ACLs\n"
            "  enforce.auth.enabled=false     with enforce.auth.schemes=sasl,...: refuse\n"
            "                                 clients that did not authenticate\n"
            "  clientPortListenBacklog=1024   the client listener's backlog\n"
            "  logLevel=info                  znoded's own: log verbosity\n"
            "  readonlymode.enabled=false     serve read-only sessions without a quorum\n"
            "  reconfigEnabled=false          allow reconfig (super user only), as in ZooKeeper\n"
            "  joinEnsemble=false             znoded's own: a new server that joins by reconfig;\n"
            "                                 dataDir/zoo.cfg.dynamic.V overrides server.N lines\n"
            "  metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
            "  metricsProvider.httpPort=7000  Prometheus metrics at http://HOST:PORT/metrics\n"
            "  admin.enableServer=true        the AdminServer: ZooKeeper's admin commands as JSON\n"
            "  admin.serverPort=8080          at http://ADDRESS:PORT/commands/NAME\n"
            "  admin.serverAddress=0.0.0.0\n"
            "  admin.commandURL=/commands\n"
            "Every key is acted on or refused: an unknown key, or one for a feature\n"
            "znoded does not have (SASL or TLS between members, local sessions, ...), stops\n"
            "the start with a line naming it (exit status 2).  Only keys that tune\n"
            "ZooKeeper's JVM (serverCnxnFactory, jvm.pause.*, ...) are ignored;\n"
            "--check-config lists them.\n"
            "\n"
            "Every write is in the log on disk, fsynced, before it is answered.\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"id", required_argument, NULL, 'i'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"check-config", no_argument, NULL, 'c'},
        {"dump", no_argument, NULL, 'd'},
        {"zxid", required_argument, NULL, 'z'},
        {"path", required_argument, NULL, 'p'},
        {"restore", required_argument, NULL, 'r'},
        {"import-zookeeper", required_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    zn_log_set_program("znoded");
    /* A client or peer that closes its socket while a reply is being written
     * must cost that connection an EPIPE, not the whole server its life. */
    signal(SIGPIPE, SIG_IGN);
    /* A crash must leave its signal and backtrace in the log, not silence.
     * (Not under AddressSanitizer, whose own report says more.) */
#ifndef __SANITIZE_ADDRESS__
    if (crash_handler_install("znoded") != 0)
        fprintf(stderr, "znoded: cannot install the crash handler (going on without it)\n");
#endif
    struct config cfg;
    config_defaults(&cfg);
    const char *overrides[64];
    int override_count = 0;
    const char *log_level = NULL;
    bool check_only = false;
    bool dump = false;
    struct dump_options dump_opts = {.to_zxid = UINT64_MAX};
    const char *restore_file = NULL;
    const char *import_dirs = NULL;
    int id = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'i':
            id = atoi(optarg);
            if (id < 0 || id > 255) {
                fprintf(stderr, "znoded: --id must be in [0, 255]\n");
                return 2;
            }
            break;
        case 's':
            if (override_count == 64 || !strchr(optarg, '=')) {
                fprintf(stderr, "znoded: --set takes KEY=VALUE (at most 64 times)\n");
                return 2;
            }
            overrides[override_count++] = optarg;
            break;
        case 'l':
            log_level = optarg;
            if (zn_log_level_parse(log_level) < 0) {
                fprintf(stderr, "znoded: --log-level must be debug, info, warn or error\n");
                return 2;
            }
            break;
        case 'c':
            check_only = true;
            break;
        case 'd':
            dump = true;
            break;
        case 'r':
            restore_file = optarg;
            break;
        case 'm':
            import_dirs = optarg;
            break;
        case 'V':
            printf("znoded %s\n", ZNODEFS_VERSION);
            return 0;
        case 'z':
            if (dump_parse_range(optarg, &dump_opts) != 0) {
                fprintf(stderr, "znoded: --zxid takes FROM:TO (0x hex or decimal, FROM <= TO), "
                        "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            if (optarg[0] != '/') {
                fprintf(stderr, "znoded: --path takes a znode path (starting with /), not '%s'\n",
                        optarg);
                return 2;
            }
            dump_opts.path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (import_dirs)
        return zkimport_run(import_dirs, argv[optind]);
    if (restore_file)
        return restore_run(restore_file, argv[optind]);
    if (dump) {
        dump_opts.target = argv[optind];
        return dump_run(&dump_opts);
    }
    char err[1024];
    if (id >= 0)
        cfg.my_id = id;
    /* Read, apply overrides, then check the whole. */
    if (config_read(&cfg, argv[optind], err, sizeof err) != 0) {
        fprintf(stderr, "znoded: %s\n", err);
        return 2;
    }
    for (int i = 0; i < override_count; i++) {
        char key[256];
        const char *eq = strchr(overrides[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - overrides[i]), overrides[i]);
        if (config_set(&cfg, key, eq + 1, err, sizeof err) != 0) {
            fprintf(stderr, "znoded: --set %s\n", err);
            return 2;
        }
    }
    if (config_finish(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "znoded: %s: %s\n", argv[optind], err);
        return 2;
    }
    zn_log_threshold = zn_log_level_parse(log_level ? log_level : cfg.log_level);
    if (check_only) {
        /* the key and trust stores too: systemd's ExecStartPre runs this check */
        struct tls_server *tls = NULL;
        if (cfg.tls.secure_client_port != 0 && tls_server_new(&tls, &cfg.tls) != 0) {
            fprintf(stderr, "znoded: %s: the TLS key or trust store cannot be used (the line above says why)\n",
                    argv[optind]);
            return 2;
        }
        tls_server_free(tls);
        tls = NULL;
        if ((cfg.ssl_quorum || cfg.port_unification) && tls_server_new(&tls, &cfg.quorum_tls) != 0) {
            fprintf(stderr, "znoded: %s: the ssl.quorum key or trust store cannot be used (the line above "
                    "says why)\n", argv[optind]);
            return 2;
        }
        tls_server_free(tls);
        /* and the SASL plugin Cyrus loads at run time (libsasl2-modules, ...-gssapi-mit) */
        if ((cfg.sasl.enabled || cfg.sasl.quorum_enable) && saslauth_init(&cfg.sasl) != 0) {
            fprintf(stderr, "znoded: %s: SASL cannot be served (the line above says why)\n", argv[optind]);
            return 2;
        }
        printf("config ok: clientPort=%d dataDir=%s dataLogDir=%s tickTime=%d servers=%d myid=%d\n",
               cfg.client_port, cfg.data_dir, cfg.data_log_dir, cfg.tick_time_ms, cfg.server_count,
               cfg.my_id);
        if (cfg.dynamic_loaded)
            printf("membership: dataDir/" CONFIG_DYNAMIC_PREFIX "%" PRIx64 " (written by a reconfig)\n",
                   cfg.config_version);
        else if (cfg.dynamic_config_file[0])
            printf("membership: dynamicConfigFile %s\n", cfg.dynamic_config_file);
        if (cfg.ssl_quorum || cfg.port_unification)
            printf("quorum tls: %s, hostnameVerification=%s%s\n",
                   !cfg.port_unification ? "members connect and accept TLS only"
                   : cfg.ssl_quorum       ? "members connect with TLS, accept TLS and plain (portUnification)"
                                          : "members connect plain, accept TLS and plain (portUnification)",
                   cfg.quorum_tls.hostname_verification ? "true" : "false",
                   cfg.ssl_quorum_reload ? ", key and trust stores reloaded when they change" : "");
        if (cfg.sasl.quorum_enable)
            printf("quorum sasl: DIGEST-MD5, users=%d (%s), learner %s (%s), serverRequireSasl=%s\n",
                   cfg.sasl.quorum_user_count, cfg.sasl.quorum_server_context,
                   cfg.sasl.quorum_learner_require ? cfg.sasl.quorum_learner.name : "does not authenticate",
                   cfg.sasl.quorum_learner_context, cfg.sasl.quorum_server_require ? "true" : "false");
        if (cfg.sasl.enabled && cfg.sasl.gssapi)
            printf("sasl: GSSAPI principal=%s keytab=%s from %s (%s)%s\n", cfg.sasl.principal, cfg.sasl.keytab,
                   cfg.sasl.login_config, cfg.sasl.login_config_from_env ? "SERVER_JVMFLAGS" : "zoo.cfg",
                   cfg.sasl.provider ? "" : "; no SASLAuthenticationProvider: sasl: ACLs are refused");
        else if (cfg.sasl.enabled)
            printf("sasl: DIGEST-MD5 users=%d from %s (%s)%s\n", cfg.sasl.user_count, cfg.sasl.login_config,
                   cfg.sasl.login_config_from_env ? "SERVER_JVMFLAGS" : "zoo.cfg",
                   cfg.sasl.provider ? "" : "; no SASLAuthenticationProvider: sasl: ACLs are refused");
        if (cfg.sasl.enforce_auth)
            printf("enforce.auth: requests need an identity of scheme%s%s%s%s\n",
                   cfg.sasl.enforce_schemes & CONFIG_SCHEME_IP ? " ip" : "",
                   cfg.sasl.enforce_schemes & CONFIG_SCHEME_DIGEST ? " digest" : "",
                   cfg.sasl.enforce_schemes & CONFIG_SCHEME_X509 ? " x509" : "",
                   cfg.sasl.enforce_schemes & CONFIG_SCHEME_SASL ? " sasl" : "");
        for (int i = 0; i < cfg.ignored_count; i++)
            printf("ignored: %s (%s)\n", cfg.ignored[i].key, cfg.ignored[i].why);
        return 0;
    }
    static struct server srv;
    uv_loop_t *loop = uv_default_loop();
    if (server_start(&srv, loop, &cfg) != 0) {
        fprintf(stderr, "znoded: could not start; see the log above\n");
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    ZN_INFO("stopped");
    return 0;
}
