/*
 * zoo.cfg parsing.  Owns the meaning of every key znoded accepts and the
 * defaults ZooKeeper gives them.  The grammar is Java's Properties as
 * ZooKeeper uses it: "key=value" per line, '#' or '!' comments, blanks
 * around both sides trimmed.
 *
 * config_set is the key table: each key is acted on here, or handed to
 * config_membership.c (server.N), config_tls.c, config_sasl.c, and last to
 * config_keys.c, which refuses or records what nobody acted on.
 * config_finish checks the settings as a whole once every line is read.
 * Invariant: every key is acted on, refused, or (config_keys.c's short list
 * of JVM-only tuning) recorded as harmless to ignore; none is taken and
 * quietly not done.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "log.h"
#include "znode/proto.h"

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tick_time_ms = 2000;
    cfg->init_limit = 10;
    cfg->sync_limit = 5;
    strcpy(cfg->client_port_address, "0.0.0.0");
    cfg->max_client_cnxns = 60;
    cfg->listen_backlog = 1024;
    cfg->min_session_timeout_ms = -1;
    cfg->max_session_timeout_ms = -1;
    cfg->four_letter_words = CONFIG_4LW_SRVR;
    cfg->quorum_tls.quorum = true;
    strcpy(cfg->sasl.quorum_learner_context, "QuorumLearner");
    strcpy(cfg->sasl.quorum_server_context, "QuorumServer");
    cfg->quorum_tls.hostname_verification = true; /* as ZooKeeper's default */
    cfg->jute_max_buffer = ZN_DEFAULT_MAX_PACKET_BYTES;
    cfg->snap_count = 100000;
    cfg->snap_retain_count = CONFIG_SNAP_RETAIN_MIN;
    cfg->purge_interval_hours = -1;
    cfg->snap_size_limit = 4194304LL * 1024; /* ZooKeeper's default: 4 GB */
    cfg->global_outstanding_limit = 1000;
    strcpy(cfg->log_level, "info");
    cfg->container_check_interval_ms = 60000;
    cfg->container_max_per_minute = 10000;
    cfg->metrics_http_port = 7000;
    strcpy(cfg->metrics_http_host, "0.0.0.0");
    cfg->admin_enabled = true;
    cfg->admin_port = 8080;
    strcpy(cfg->admin_address, "0.0.0.0");
    strcpy(cfg->admin_command_url, "/commands");
    cfg->admin_idle_timeout_ms = 30000;
}

int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses a whole decimal integer in [min, max]. */
int config_parse_long(const char *value, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int set_int(const char *key, const char *value, long min, long max, int *out, char *err,
                   size_t errlen)
{
    long v;
    if (config_parse_long(value, min, max, &v) != 0)
        return config_fail(err, errlen, "%s: '%s' is not an integer in [%ld, %ld]", key, value, min, max);
    *out = (int)v;
    return 0;
}

static int set_path(const char *key, const char *value, char *out, char *err, size_t errlen)
{
    if (value[0] == '\0')
        return config_fail(err, errlen, "%s: empty path", key);
    if (strlen(value) >= PATH_MAX)
        return config_fail(err, errlen, "%s: path too long", key);
    strcpy(out, value);
    return 0;
}

static const char *const four_letter_words[] = {"ruok", "srvr", "stat", "conf", "envi", "mntr",
                                                "cons", "wchs", "dump", "wchc", "wchp", "isro",
                                                "dirs", "crst", "srst", "hash"};

unsigned config_4lw_bit(const char word[4])
{
    for (size_t i = 0; i < sizeof four_letter_words / sizeof four_letter_words[0]; i++)
        if (memcmp(word, four_letter_words[i], 4) == 0)
            return 1u << i;
    return 0;
}

static int set_whitelist(const char *value, unsigned *out, char *err, size_t errlen)
{
    unsigned bits = 0;
    char copy[CONFIG_LINE_BYTES];
    snprintf(copy, sizeof copy, "%s", value);
    for (char *save = NULL, *tok = strtok_r(copy, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (strcmp(tok, "*") == 0) {
            bits = CONFIG_4LW_ALL;
            continue;
        }
        unsigned bit = strlen(tok) == 4 ? config_4lw_bit(tok) : 0;
        if (!bit) {
            /* ZooKeeper ignores unknown words in the whitelist; so do we, loudly. */
            ZN_WARN("config: 4lw.commands.whitelist: unknown command '%s' ignored", tok);
            continue;
        }
        bits |= bit;
    }
    (void)err;
    (void)errlen;
    *out = bits;
    return 0;
}

/*
 * metricsProvider.*: only ZooKeeper's Prometheus provider serves anything;
 * the other providers ZooKeeper ships keep their metrics inside the JVM, so
 * naming one here turns the metrics page off.  Same contract as
 * set_acl_and_types.
 */
#define CONFIG_PROMETHEUS_PROVIDER "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
static int set_metrics(struct config *cfg, const char *key, const char *value, char *err,
                       size_t errlen)
{
    if (strcmp(key, "metricsProvider.className") == 0) {
        cfg->metrics_prometheus = strcmp(value, CONFIG_PROMETHEUS_PROVIDER) == 0;
        if (!cfg->metrics_prometheus)
            ZN_WARN("config: metricsProvider.className=%s: only %s is served by znoded", value,
                    CONFIG_PROMETHEUS_PROVIDER);
        return 0;
    }
    if (strcmp(key, "metricsProvider.httpPort") == 0)
        return set_int(key, value, 1, 65535, &cfg->metrics_http_port, err, errlen);
    if (strcmp(key, "metricsProvider.httpHost") == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof cfg->metrics_http_host)
            return config_fail(err, errlen, "%s: bad address '%s'", key, value);
        strcpy(cfg->metrics_http_host, value);
        return 0;
    }
    return 1;
}

/*
 * admin.*: the AdminServer (admin.c).  ZooKeeper reads these as system
 * properties, so "zookeeper.admin.x" is accepted as "admin.x".  A value
 * ZooKeeper would take but znoded cannot honour (HTTPS) is refused rather
 * than ignored.  Same contract as set_acl_and_types.
 */
static int set_admin(struct config *cfg, const char *key, const char *value, char *err,
                     size_t errlen)
{
    const char *k = strncmp(key, "zookeeper.", 10) == 0 ? key + 10 : key;
    if (strncmp(k, "admin.", 6) != 0)
        return 1;
    if (strcmp(k, "admin.enableServer") == 0) {
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        cfg->admin_enabled = strcasecmp(value, "true") == 0;
        cfg->admin_explicit = cfg->admin_enabled;
        return 0;
    }
    if (strcmp(k, "admin.serverPort") == 0) {
        cfg->admin_explicit = true;
        return set_int(key, value, 1, 65535, &cfg->admin_port, err, errlen);
    }
    if (strcmp(k, "admin.serverAddress") == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof cfg->admin_address)
            return config_fail(err, errlen, "%s: bad address '%s'", key, value);
        strcpy(cfg->admin_address, value);
        return 0;
    }
    if (strcmp(k, "admin.commandURL") == 0) {
        if (value[0] != '/' || strlen(value) >= sizeof cfg->admin_command_url ||
            strpbrk(value, "?# \t") != NULL)
            return config_fail(err, errlen, "%s: expected a path such as /commands, got '%s'", key, value);
        strcpy(cfg->admin_command_url, value);
        size_t n = strlen(cfg->admin_command_url);
        while (n > 1 && cfg->admin_command_url[n - 1] == '/')
            cfg->admin_command_url[--n] = '\0';
        return 0;
    }
    if (strcmp(k, "admin.idleTimeout") == 0)
        return set_int(key, value, 1, INT_MAX, &cfg->admin_idle_timeout_ms, err, errlen);
    if (strcmp(k, "admin.portUnification") == 0 || strcmp(k, "admin.forceHttps") == 0 ||
        strcmp(k, "admin.needClientAuth") == 0) {
        if (strcasecmp(value, "false") == 0)
            return 0;
        return config_fail(err, errlen, "%s=%s: the AdminServer of znoded speaks plain HTTP only", key,
                    value);
    }
    return config_fail(err, errlen, "%s: not an AdminServer setting znoded knows (admin.enableServer, "
                "admin.serverPort, admin.serverAddress, admin.commandURL, admin.idleTimeout)", key);
}

/* Java's Boolean.parseBoolean, as ZooKeeper reads extendedTypesEnabled:
 * "true" in any case is true, anything else false. */
static bool java_boolean(const char *value) { return strcasecmp(value, "true") == 0; }

/*
 * The ACL, extended-type and container keys.  Returns 0 when the key was one
 * of them and its value is good, -1 with err set when its value is bad, 1
 * when the key is not one of them.  ZooKeeper turns a zoo.cfg key k into the
 * system property "zookeeper.k", so the documented property names are
 * accepted with and without that prefix.
 */
static int set_acl_and_types(struct config *cfg, const char *key, const char *value, char *err,
                             size_t errlen)
{
    const char *k = strncmp(key, "zookeeper.", 10) == 0 ? key + 10 : key;
    long v;
    if (strcmp(k, "skipACL") == 0) {
        /* ZooKeeperServer: System.getProperty("zookeeper.skipACL", "no").equals("yes") */
        cfg->skip_acl = strcmp(value, "yes") == 0;
        return 0;
    }
    if (strcmp(k, "DigestAuthenticationProvider.superDigest") == 0) {
        const char *colon = strchr(value, ':');
        if (!colon || colon == value || colon[1] == '\0' || strlen(value) >= sizeof cfg->super_digest)
            return config_fail(err, errlen, "%s: expected user:base64(sha1(user:password)), got '%s'", key,
                        value);
        strcpy(cfg->super_digest, value);
        return 0;
    }
    if (strcmp(k, "extendedTypesEnabled") == 0) {
        cfg->extended_types_enabled = java_boolean(value);
        return 0;
    }
    if (strcmp(k, "enforceQuota") == 0) {
        cfg->enforce_quota = java_boolean(value);
        return 0;
    }
    /* TEST ONLY: planted bug for tests/faults (issue 6) */
    if (strcmp(key, "znodefs.testOnly.plantedBug") == 0) {
        if (strcmp(value, "none") == 0)
            cfg->planted_bug = CONFIG_PLANTED_BUG_NONE;
        else if (strcmp(value, "stale-sync") == 0)
            cfg->planted_bug = CONFIG_PLANTED_BUG_STALE_SYNC;
        else if (strcmp(value, "diverged-digest") == 0)
            cfg->planted_bug = CONFIG_PLANTED_BUG_DIVERGED_DIGEST;
        else
            return config_fail(err, errlen, "%s: expected none, stale-sync or diverged-digest, got '%s'", key, value);
        ZN_WARN("config: TEST ONLY planted bug '%s' is on", value);
        return 0;
    }
    /* TEST ONLY: a small store queue, to test what happens when it is full */
    if (strcmp(key, "znodefs.testOnly.storeQueueMaxBytes") == 0) {
        if (config_parse_long(value, 1024, 1L << 30, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a size in [1024, 1073741824]", key, value);
        cfg->store_queue_max_bytes = (size_t)v;
        ZN_WARN("config: TEST ONLY store queue of %ld bytes", v);
        return 0;
    }
    if (strcmp(key, "znode.container.checkIntervalMs") == 0)
        return set_int(key, value, 1, INT_MAX, &cfg->container_check_interval_ms, err, errlen);
    if (strcmp(key, "znode.container.maxPerMinute") == 0)
        return set_int(key, value, 1, INT_MAX, &cfg->container_max_per_minute, err, errlen);
    if (strcmp(key, "znode.container.maxNeverUsedIntervalMs") == 0) {
        if (config_parse_long(value, 0, LONG_MAX, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a number of ms >= 0", key, value);
        cfg->container_max_never_used_interval_ms = v;
        return 0;
    }
    return 1;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    long v;
    if (strcmp(key, "tickTime") == 0)
        return set_int(key, value, 1, 600000, &cfg->tick_time_ms, err, errlen);
    if (strcmp(key, "initLimit") == 0)
        return set_int(key, value, 1, 100000, &cfg->init_limit, err, errlen);
    if (strcmp(key, "syncLimit") == 0)
        return set_int(key, value, 1, 100000, &cfg->sync_limit, err, errlen);
    if (strcmp(key, "dataDir") == 0)
        return set_path(key, value, cfg->data_dir, err, errlen);
    if (strcmp(key, "dataLogDir") == 0)
        return set_path(key, value, cfg->data_log_dir, err, errlen);
    if (strcmp(key, "clientPort") == 0)
        return set_int(key, value, 0, 65535, &cfg->client_port, err, errlen);
    if (strcmp(key, "clientPortAddress") == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof cfg->client_port_address)
            return config_fail(err, errlen, "%s: bad address '%s'", key, value);
        strcpy(cfg->client_port_address, value);
        return 0;
    }
    if (strcmp(key, "maxClientCnxns") == 0)
        return set_int(key, value, 0, 1000000, &cfg->max_client_cnxns, err, errlen);
    if (strcmp(key, "minSessionTimeout") == 0)
        return set_int(key, value, -1, INT_MAX, &cfg->min_session_timeout_ms, err, errlen);
    if (strcmp(key, "maxSessionTimeout") == 0)
        return set_int(key, value, -1, INT_MAX, &cfg->max_session_timeout_ms, err, errlen);
    if (strcmp(key, "4lw.commands.whitelist") == 0)
        return set_whitelist(value, &cfg->four_letter_words, err, errlen);
    if (strcmp(key, "jute.maxbuffer") == 0) {
        if (config_parse_long(value, 1024, CONFIG_JUTE_MAX_BUFFER_MAX, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a size in [1024, %ld] (a txn carrying "
                               "that much data must fit in one log entry)", key, value,
                               (long)CONFIG_JUTE_MAX_BUFFER_MAX);
        cfg->jute_max_buffer = (size_t)v;
        return 0;
    }
    if (strcmp(key, "snapCount") == 0) {
        if (config_parse_long(value, 2, CONFIG_SNAP_COUNT_MAX, &v) != 0)
            return config_fail(err, errlen,
                               "%s: '%s' is not an integer from 2 to %ld (a leader keeps the "
                               "transactions since its last snapshot in memory, to bring members "
                               "behind up to date)",
                               key, value, (long)CONFIG_SNAP_COUNT_MAX);
        cfg->snap_count = v;
        return 0;
    }
    /* ZooKeeper's autopurge.snapRetainCount: below 3 ZooKeeper warns and
     * keeps 3 (DatadirCleanupManager), so a zoo.cfg moves over unchanged;
     * more than the store can keep is refused. */
    if (strcmp(key, "autopurge.snapRetainCount") == 0) {
        if (config_parse_long(value, LONG_MIN, CONFIG_SNAP_RETAIN_MAX, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not an integer <= %d (the most snapshots "
                               "znoded keeps)", key, value, CONFIG_SNAP_RETAIN_MAX);
        if (v < CONFIG_SNAP_RETAIN_MIN) {
            ZN_WARN("config: %s=%ld is below %d; keeping %d snapshots, as ZooKeeper does", key, v,
                    CONFIG_SNAP_RETAIN_MIN, CONFIG_SNAP_RETAIN_MIN);
            v = CONFIG_SNAP_RETAIN_MIN;
        }
        cfg->snap_retain_count = (unsigned)v;
        return 0;
    }
    /* ZooKeeper's autopurge.purgeInterval, in hours: 0 never purges (its
     * default: snapshots and log accumulate); N purges every N hours (and at
     * the start, as ZooKeeper's first run).  Absent, znoded purges after
     * every snapshot. */
    if (strcmp(key, "autopurge.purgeInterval") == 0) {
        if (config_parse_long(value, 0, CONFIG_PURGE_INTERVAL_MAX_HOURS, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a number of hours in [0, %ld] (0: never "
                               "purge)", key, value, CONFIG_PURGE_INTERVAL_MAX_HOURS);
        cfg->purge_interval_hours = v;
        return 0;
    }
    /* ZooKeeper's preAllocSize (KB): here the size each log segment file is
     * preallocated to (replication/store_wal.h); 4 KB .. 1 GB. */
    if (strcmp(key, "preAllocSize") == 0) {
        if (config_parse_long(value, 4, 1L << 20, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a size in KB in [4, 1048576]", key, value);
        cfg->log_segment_bytes = (uint64_t)v << 10;
        return 0;
    }
    /* ZooKeeper's txnLogSizeLimitInKb: its log file is rolled once it holds
     * this much; here no segment is made larger (preAllocSize or this,
     * whichever is smaller; at least 4 KB); non-positive: off. */
    if (strcmp(key, "txnLogSizeLimitInKb") == 0) {
        if (config_parse_long(value, -(1L << 40), 1L << 20, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not an integer <= 1048576 (KB; <= 0 "
                               "turns the limit off)", key, value);
        cfg->log_size_limit = v > 0 ? (uint64_t)(v < 4 ? 4 : v) << 10 : 0;
        return 0;
    }
    if (strcmp(key, "snapSizeLimitInKb") == 0) {
        /* ZooKeeper's: a snapshot also once the log since the last one holds
         * this many KB (in an ensemble drawn per member from [half, all]); a
         * non-positive value turns it off. */
        if (config_parse_long(value, -(1L << 40), 1L << 40, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not an integer (KB; <= 0 turns the "
                               "limit off)", key, value);
        cfg->snap_size_limit = v > 0 ? (long long)v * 1024 : 0;
        return 0;
    }
    if (strcmp(key, "globalOutstandingLimit") == 0)
        return set_int(key, value, 1, 1000000, &cfg->global_outstanding_limit, err, errlen);
    if (strcmp(key, "readonlymode.enabled") == 0 ||
        strcmp(key, "zookeeper.readonlymode.enabled") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        cfg->read_only_mode = strcmp(value, "true") == 0;
        return 0;
    }
    if (strcmp(key, "logLevel") == 0) {
        if (zn_log_level_parse(value) < 0)
            return config_fail(err, errlen, "%s: expected debug, info, warn or error, got '%s'", key,
                        value);
        snprintf(cfg->log_level, sizeof cfg->log_level, "%s", value);
        return 0;
    }
    if (strncmp(key, "server.", 7) == 0) {
        cfg->static_server_lines = true;
        return config_set_server(cfg, key, value, err, errlen);
    }
    if (strcmp(key, "dynamicConfigFile") == 0)
        return set_path(key, value, cfg->dynamic_config_file, err, errlen);
    if (strcmp(key, "peerType") == 0) {
        /* ZooKeeper warns when it disagrees with the server line, which wins
         * (QuorumPeerConfig.setupPeerType); config_finish does the same. */
        if (strcasecmp(value, "observer") != 0 && strcasecmp(value, "participant") != 0)
            return config_fail(err, errlen, "%s: expected participant or observer, got '%s'", key, value);
        cfg->peer_type_observer = strcasecmp(value, "observer") == 0;
        cfg->peer_type_set = true;
        return 0;
    }
    if (strcmp(key, "maxCnxns") == 0)
        return set_int(key, value, 0, 1000000, &cfg->max_cnxns, err, errlen);
    if (strcmp(key, "clientPortListenBacklog") == 0) {
        int rc = set_int(key, value, -1, 65535, &cfg->listen_backlog, err, errlen);
        if (rc == 0 && cfg->listen_backlog <= 0)
            cfg->listen_backlog = 1024; /* -1 and 0: the default, as in ZooKeeper */
        return rc;
    }
    if (strcmp(key, "reconfigEnabled") == 0 || strcmp(key, "joinEnsemble") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        *(key[0] == 'r' ? &cfg->reconfig_enabled : &cfg->join_ensemble) = strcmp(value, "true") == 0;
        return 0;
    }
    int rc = set_acl_and_types(cfg, key, value, err, errlen);
    if (rc <= 0)
        return rc;
    rc = set_metrics(cfg, key, value, err, errlen);
    if (rc <= 0)
        return rc;
    rc = set_admin(cfg, key, value, err, errlen);
    if (rc <= 0)
        return rc;
    rc = config_tls_set(cfg, key, value, err, errlen);
    if (rc <= 0)
        return rc;
    rc = config_sasl_set(cfg, key, value, err, errlen);
    if (rc <= 0)
        return rc;
    return config_key_other(cfg, key, value, err, errlen);
}

char *config_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
    if (cfg->data_dir[0] == '\0')
        return config_fail(err, errlen, "dataDir is not set");
    if (cfg->dynamic_config_file[0] && config_load_dynamic_config_file(cfg, err, errlen) != 0)
        return -1;
    if (cfg->data_log_dir[0] == '\0')
        strcpy(cfg->data_log_dir, cfg->data_dir);
    if (cfg->min_session_timeout_ms <= 0)
        cfg->min_session_timeout_ms = 2 * cfg->tick_time_ms;
    if (cfg->max_session_timeout_ms <= 0)
        cfg->max_session_timeout_ms = 20 * cfg->tick_time_ms;
    if (cfg->min_session_timeout_ms > cfg->max_session_timeout_ms)
        return config_fail(err, errlen, "minSessionTimeout (%d) is larger than maxSessionTimeout (%d)",
                    cfg->min_session_timeout_ms, cfg->max_session_timeout_ms);
    if (cfg->server_count > 0 && cfg->my_id == 0 && config_read_myid(cfg, err, errlen) != 0)
        return -1;
    if (config_client_port_from_server_line(cfg, err, errlen) != 0)
        return -1;
    if (cfg->client_port == 0 && cfg->server_count == 0)
        return config_fail(err, errlen, "clientPort is not set");
    if (cfg->server_count > 0 && config_load_dynamic(cfg, err, errlen) != 0)
        return -1;
    config_check_peer_type(cfg);
    if (config_tls_finish(cfg, err, errlen) != 0)
        return -1;
    if (config_sasl_finish(cfg, err, errlen) != 0)
        return -1;
    if (cfg->server_count > 0) {
        bool found = false;
        for (int i = 0; i < cfg->server_count; i++)
            found |= cfg->servers[i].id == cfg->my_id;
        if (!found)
            return config_fail(err, errlen, "myid %d has no server.%d line", cfg->my_id, cfg->my_id);
    }
    return 0;
}

int config_read(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return config_fail(err, errlen, "%s: %s", path, strerror(errno));
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    char line[CONFIG_LINE_BYTES];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = config_fail(err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
                      CONFIG_LINE_BYTES - 1);
            break;
        }
        char *s = config_trim(line);
        if (*s == '\0' || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = config_fail(err, errlen, "%s:%d: expected key=value, got '%s'", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *key = config_trim(s), *value = config_trim(eq + 1);
        char msg[512];
        if (config_set(cfg, key, value, msg, sizeof msg) != 0) {
            rc = config_fail(err, errlen, "%s:%d: %s", path, lineno, msg);
            break;
        }
    }
    fclose(f);
    return rc;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    if (config_read(cfg, path, err, errlen) != 0)
        return -1;
    char msg[512];
    if (config_finish(cfg, msg, sizeof msg) != 0)
        return config_fail(err, errlen, "%s: %s", path, msg);
    return 0;
}
