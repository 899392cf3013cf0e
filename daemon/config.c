/*
 * zoo.cfg parsing.  Owns the meaning of every key znoded accepts and the
 * defaults ZooKeeper gives them.  The grammar is Java's Properties as
 * ZooKeeper uses it: "key=value" per line, '#' or '!' comments, blanks
 * around both sides trimmed.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "znode/errors.h"
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
static int parse_long(const char *value, long min, long max, long *out)
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
    if (parse_long(value, min, max, &v) != 0)
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

/* server.N=host:peerPort:electionPort[:participant|:observer][;clientAddr:clientPort] */
static int set_server(struct config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    long id;
    /* ZooKeeper's ids are longs; a member's own id (myid) is at most 255
     * here (it is the top byte of its session ids), but a server line may
     * name any id, as kazoo's reconfig test does with server.999. */
    if (parse_long(key + strlen("server."), 0, INT32_MAX, &id) != 0)
        return config_fail(err, errlen, "%s: server id must be an integer in [0, %d]", key, INT32_MAX);
    if (cfg->server_count >= CONFIG_MAX_SERVERS)
        return config_fail(err, errlen, "%s: more than %d servers", key, CONFIG_MAX_SERVERS);
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->servers[i].id == id)
            return config_fail(err, errlen, "%s: server id %ld given twice", key, id);

    char copy[CONFIG_LINE_BYTES];
    snprintf(copy, sizeof copy, "%s", value);
    char *semicolon = strchr(copy, ';'); /* the 3.5 client address part: not used here */
    if (semicolon)
        *semicolon = '\0';
    char *fields[4] = {0};
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok && n < 4;
         tok = strtok_r(NULL, ":", &save))
        fields[n++] = tok;
    if (n < 3)
        return config_fail(err, errlen, "%s: expected host:peerPort:electionPort[:observer], got '%s'",
                    key, value);
    struct config_server *s = &cfg->servers[cfg->server_count];
    memset(s, 0, sizeof *s);
    s->id = (int)id;
    if (strlen(fields[0]) >= sizeof s->host || fields[0][0] == '\0')
        return config_fail(err, errlen, "%s: bad host '%s'", key, fields[0]);
    strcpy(s->host, fields[0]);
    long port;
    if (parse_long(fields[1], 1, 65535, &port) != 0)
        return config_fail(err, errlen, "%s: bad peer port '%s'", key, fields[1]);
    s->peer_port = (int)port;
    if (parse_long(fields[2], 1, 65535, &port) != 0)
        return config_fail(err, errlen, "%s: bad election port '%s'", key, fields[2]);
    s->election_port = (int)port;
    if (n == 4) {
        if (strcmp(fields[3], "observer") == 0)
            s->observer = true;
        else if (strcmp(fields[3], "participant") != 0)
            return config_fail(err, errlen, "%s: role must be participant or observer, got '%s'", key,
                        fields[3]);
    }
    if (semicolon) {
        const char *client = value + (semicolon - copy) + 1;
        const char *colon = strrchr(client, ':');
        int w = colon ? snprintf(s->client_address, sizeof s->client_address, "%s", client)
                      : snprintf(s->client_address, sizeof s->client_address, "0.0.0.0:%s", client);
        if (w < 0 || (size_t)w >= sizeof s->client_address)
            return config_fail(err, errlen, "%s: client address too long in '%s'", key, value);
    }
    cfg->server_count++;
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
    if (strcmp(key, "znode.container.checkIntervalMs") == 0)
        return set_int(key, value, 1, INT_MAX, &cfg->container_check_interval_ms, err, errlen);
    if (strcmp(key, "znode.container.maxPerMinute") == 0)
        return set_int(key, value, 1, INT_MAX, &cfg->container_max_per_minute, err, errlen);
    if (strcmp(key, "znode.container.maxNeverUsedIntervalMs") == 0) {
        if (parse_long(value, 0, LONG_MAX, &v) != 0)
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
        if (parse_long(value, 1024, 256L * 1024 * 1024, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not a size in [1024, 268435456]", key, value);
        cfg->jute_max_buffer = (size_t)v;
        return 0;
    }
    if (strcmp(key, "snapCount") == 0) {
        if (parse_long(value, 2, 1L << 40, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not an integer >= 2", key, value);
        cfg->snap_count = v;
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
        return set_server(cfg, key, value, err, errlen);
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

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int read_myid(struct config *cfg, char *err, size_t errlen)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/myid", cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return config_fail(err, errlen, "%s: cannot read (%s); an ensemble member needs its id there",
                    path, strerror(errno));
    char line[64] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    long id;
    if (parse_long(trim(line), 0, 255, &id) != 0)
        return config_fail(err, errlen, "%s: expected an integer in [0, 255]", path);
    cfg->my_id = (int)id;
    return 0;
}

int config_parse_server(const char *key, const char *value, struct config_server *out, char *err,
                        size_t errlen)
{
    struct config *scratch = calloc(1, sizeof *scratch);
    if (!scratch)
        return config_fail(err, errlen, "out of memory");
    int rc = set_server(scratch, key, value, err, errlen);
    if (rc == 0)
        *out = scratch->servers[0];
    free(scratch);
    return rc;
}

int config_set_membership(struct config *cfg, const char *text, char *err, size_t errlen)
{
    struct config *next = calloc(1, sizeof *next);
    char *copy = strdup(text);
    if (!next || !copy) {
        free(next);
        free(copy);
        return config_fail(err, errlen, "out of memory");
    }
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, "\n,", &save); item && rc == 0;
         item = strtok_r(NULL, "\n,", &save)) {
        char *s = trim(item);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = config_fail(err, errlen, "expected server.N=... or version=..., got '%s'", s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (strcmp(key, "version") == 0)
            continue; /* the file name and the caller carry it */
        if (strncmp(key, "server.", 7) != 0) {
            rc = config_fail(err, errlen, "%s: only server.N lines belong in a dynamic configuration", key);
            break;
        }
        rc = set_server(next, key, value, err, errlen);
    }
    if (rc == 0 && next->server_count == 0)
        rc = config_fail(err, errlen, "no server.N line");
    if (rc == 0) {
        memcpy(cfg->servers, next->servers, sizeof cfg->servers);
        cfg->server_count = next->server_count;
    }
    free(copy);
    free(next);
    return rc;
}

/* dir/name is the user's dynamicConfigFile (which may live in dataDir, and
 * may be named as the files a reconfig writes there): the initial
 * membership, never taken for a committed one nor removed as superseded. */
static bool is_user_dynamic_file(const struct config *cfg, const char *dir, const char *name)
{
    struct stat user, other;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cfg->dynamic_config_file[0] && stat(cfg->dynamic_config_file, &user) == 0 &&
           stat(path, &other) == 0 && user.st_dev == other.st_dev && user.st_ino == other.st_ino;
}

/* The highest version among dataDir's dynamic configuration files, 0 if none. */
static uint64_t newest_dynamic(const struct config *cfg)
{
    const char *dir = cfg->data_dir;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t best = 0;
    const size_t plen = strlen(CONFIG_DYNAMIC_PREFIX);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strncmp(de->d_name, CONFIG_DYNAMIC_PREFIX, plen) != 0 ||
            is_user_dynamic_file(cfg, dir, de->d_name))
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(de->d_name + plen, &end, 16);
        if (errno == 0 && *end == '\0' && end != de->d_name + plen && v > best)
            best = v;
    }
    closedir(d);
    return best;
}

/* Reads the dynamic configuration file at path into text (CONFIG_DYNAMIC_MAX_BYTES + 1
 * bytes), NUL terminated.  Returns 0, or -1 with the reason in err. */
static int read_dynamic_text(const char *path, char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return config_fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t n = fread(text, 1, CONFIG_DYNAMIC_MAX_BYTES, f);
    bool truncated = n == CONFIG_DYNAMIC_MAX_BYTES && fgetc(f) != EOF;
    bool failed = ferror(f);
    fclose(f);
    if (failed)
        return config_fail(err, errlen, "%s: cannot read it", path);
    if (truncated)
        return config_fail(err, errlen, "%s: larger than %d bytes", path, CONFIG_DYNAMIC_MAX_BYTES);
    text[n] = '\0';
    if (memchr(text, '\0', n))
        return config_fail(err, errlen, "%s: not a text file (it holds a NUL byte)", path);
    return 0;
}

/* ZooKeeper reads the dynamic file in preference to the static server
 * lines: it is the last membership this member saw committed. */
static int load_dynamic(struct config *cfg, char *err, size_t errlen)
{
    uint64_t version = newest_dynamic(cfg);
    if (version == 0)
        return 0;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/" CONFIG_DYNAMIC_PREFIX "%" PRIx64, cfg->data_dir, version);
    char text[CONFIG_DYNAMIC_MAX_BYTES + 1];
    if (read_dynamic_text(path, text, err, errlen) != 0)
        return -1;
    struct config_server self = {0};
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->servers[i].id == cfg->my_id)
            self = cfg->servers[i];
    char msg[512];
    if (config_set_membership(cfg, text, msg, sizeof msg) != 0)
        return config_fail(err, errlen, "%s: %s", path, msg);
    bool named = false;
    for (int i = 0; i < cfg->server_count; i++)
        named |= cfg->servers[i].id == cfg->my_id;
    if (!named && self.id == cfg->my_id && self.id != 0 && cfg->server_count < CONFIG_MAX_SERVERS) {
        self.not_member = true; /* removed by a reconfig: it restarts removed */
        cfg->servers[cfg->server_count++] = self;
    }
    cfg->config_version = version;
    cfg->dynamic_loaded = true;
    ZN_INFO("config: membership from %s version=0x%" PRIx64 " servers=%d", path, version,
            cfg->server_count);
    return 0;
}

int config_write_dynamic(const struct config *cfg, uint64_t version, const char *text, size_t len)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/" CONFIG_DYNAMIC_PREFIX "%" PRIx64, cfg->data_dir, version);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        done += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    ok = ok && rename(tmp, path) == 0;
    if (ok) {
        int dfd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = dfd >= 0 && fsync(dfd) == 0;
        if (dfd >= 0)
            close(dfd);
    }
    if (!ok) {
        ZN_ERROR("config: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return ZN_IO;
    }
    /* The older files are superseded (ZooKeeper keeps only the current one). */
    DIR *d = opendir(cfg->data_dir);
    const size_t plen = strlen(CONFIG_DYNAMIC_PREFIX);
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        if (strncmp(de->d_name, CONFIG_DYNAMIC_PREFIX, plen) != 0 ||
            is_user_dynamic_file(cfg, cfg->data_dir, de->d_name))
            continue;
        char *end;
        unsigned long long v = strtoull(de->d_name + plen, &end, 16);
        if (*end == '\0' && v < version) {
            char old[PATH_MAX + 300];
            snprintf(old, sizeof old, "%s/%s", cfg->data_dir, de->d_name);
            unlink(old);
        }
    }
    if (d)
        closedir(d);
    ZN_INFO("config: wrote %s", path);
    return 0;
}

/* A hex number, whole, into *out. */
static bool parse_hex(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || end == s || *end != '\0' || *s == '-' || *s == '+')
        return false;
    *out = v;
    return true;
}

/*
 * dynamicConfigFile: where ZooKeeper 3.5+ keeps the server.N lines
 * (QuorumPeerConfig.parse), read in place of zoo.cfg's own, which must then
 * hold none.  Its version is the hex after the name's last '.'
 * ("zoo.cfg.dynamic.100000000"), 0 without one.  ZooKeeper refuses a
 * version line inside; znoded accepts one that agrees with the name, since
 * the files znoded writes on reconfig (dataDir/zoo.cfg.dynamic.<version>)
 * carry one.  The file is this ensemble's first membership: its version is
 * reported but the membership's history starts at 0, as with server lines
 * in zoo.cfg (a reconfig's zxids must order after it).
 */
static int load_dynamic_config_file(struct config *cfg, char *err, size_t errlen)
{
    const char *path = cfg->dynamic_config_file;
    if (cfg->static_server_lines)
        return config_fail(err, errlen, "server.N lines must be in the dynamic configuration file %s, "
                                 "not in zoo.cfg, as in ZooKeeper", path);
    char *text = malloc(CONFIG_DYNAMIC_MAX_BYTES + 1);
    char *copy = malloc(CONFIG_DYNAMIC_MAX_BYTES + 1);
    int rc = text && copy ? read_dynamic_text(path, text, err, errlen)
                          : config_fail(err, errlen, "out of memory");
    const char *dot = strrchr(path, '.');
    uint64_t name_version = 0, line_version = 0;
    bool named = dot && parse_hex(dot + 1, &name_version), lined = false;
    if (rc == 0) {
        strcpy(copy, text);
        for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && rc == 0;
             line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (!eq)
                continue; /* config_set_membership names the bad line */
            *eq = '\0';
            if (strcmp(trim(line), "version") != 0)
                continue;
            if (!parse_hex(trim(eq + 1), &line_version))
                rc = config_fail(err, errlen, "%s: version: expected a hex number", path);
            lined = true;
        }
    }
    if (rc == 0 && named && lined && name_version != line_version)
        rc = config_fail(err, errlen, "%s: its version line (%" PRIx64 ") disagrees with its name (%" PRIx64 ")",
                  path, line_version, name_version);
    char msg[512];
    if (rc == 0 && config_set_membership(cfg, text, msg, sizeof msg) != 0)
        rc = config_fail(err, errlen, "%s: %s", path, msg);
    if (rc == 0) {
        cfg->dynamic_file_version = named ? name_version : line_version;
        ZN_INFO("config: membership from dynamicConfigFile %s (its version 0x%" PRIx64
                "; a new ensemble's membership starts at version 0) servers=%d",
                path, cfg->dynamic_file_version, cfg->server_count);
    }
    free(copy);
    free(text);
    return rc;
}

/* A 3.5-style server line may carry its member's client address
 * (";[host:]port"): that is the member's client port, as in ZooKeeper
 * (QuorumPeerConfig.setupClientPort), and zoo.cfg's clientPort, if given
 * too, must agree with it. */
static int client_port_from_server_line(struct config *cfg, char *err, size_t errlen)
{
    const struct config_server *me = NULL;
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->servers[i].id == cfg->my_id)
            me = &cfg->servers[i];
    if (!me || me->client_address[0] == '\0')
        return 0;
    char host[sizeof me->client_address];
    snprintf(host, sizeof host, "%s", me->client_address);
    char *colon = strrchr(host, ':');
    long port;
    if (!colon || parse_long(colon + 1, 1, 65535, &port) != 0 || colon == host ||
        (size_t)(colon - host) >= sizeof cfg->client_port_address)
        return config_fail(err, errlen, "server.%d: bad client address '%s'", me->id, me->client_address);
    *colon = '\0';
    if (cfg->client_port != 0) {
        bool any = strcmp(cfg->client_port_address, "0.0.0.0") == 0;
        if (port != cfg->client_port || (!any && strcmp(host, cfg->client_port_address) != 0))
            return config_fail(err, errlen, "clientPort %s:%d differs from the client address %s in "
                                     "server.%d's line (they must agree, as in ZooKeeper)",
                        cfg->client_port_address, cfg->client_port, me->client_address, me->id);
    }
    cfg->client_port = (int)port;
    strcpy(cfg->client_port_address, host);
    return 0;
}

/* peerType: as in ZooKeeper, the server line's role wins, with a warning. */
static void check_peer_type(const struct config *cfg)
{
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->peer_type_set && cfg->servers[i].id == cfg->my_id &&
            cfg->servers[i].observer != cfg->peer_type_observer)
            ZN_WARN("config: peerType=%s disagrees with server.%d's line, which makes it %s: "
                    "the line wins, as in ZooKeeper",
                    cfg->peer_type_observer ? "observer" : "participant", cfg->my_id,
                    cfg->servers[i].observer ? "an observer" : "a participant");
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
    if (cfg->data_dir[0] == '\0')
        return config_fail(err, errlen, "dataDir is not set");
    if (cfg->dynamic_config_file[0] && load_dynamic_config_file(cfg, err, errlen) != 0)
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
    if (cfg->server_count > 0 && cfg->my_id == 0 && read_myid(cfg, err, errlen) != 0)
        return -1;
    if (client_port_from_server_line(cfg, err, errlen) != 0)
        return -1;
    if (cfg->client_port == 0 && cfg->server_count == 0)
        return config_fail(err, errlen, "clientPort is not set");
    if (cfg->server_count > 0 && load_dynamic(cfg, err, errlen) != 0)
        return -1;
    check_peer_type(cfg);
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
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = config_fail(err, errlen, "%s:%d: expected key=value, got '%s'", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
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
