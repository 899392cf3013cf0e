/*
 * The ensemble's membership in the configuration: server.N lines (in zoo.cfg
 * or a dynamicConfigFile), this member's myid, and the dynamic configuration
 * files reconfig writes to dataDir (zoo.cfg.dynamic.<version>), read back
 * at start in preference to the static lines, as ZooKeeper does.
 *
 * Called by config.c (config_set for server.N lines, config_finish for the
 * rest) and by the ensemble (config_parse_server, config_set_membership,
 * config_write_dynamic on a reconfig).
 *
 * Invariants:
 *  1. A membership is taken whole or not at all: config_set_membership
 *     parses into a scratch config and copies only when every line is good.
 *  2. A dynamic file is written to a temporary name, fsynced and renamed
 *     (the directory fsynced too) before older ones are removed; the user's
 *     own dynamicConfigFile is never taken for a committed one nor removed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "log.h"
#include "znode/errors.h"

/* server.N=host:peerPort:electionPort[:participant|:observer][;clientAddr:clientPort] */
int config_set_server(struct config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    long id;
    /* ZooKeeper's ids are longs; a member's own id (myid) is at most 255
     * here (it is the top byte of its session ids), but a server line may
     * name any id, as kazoo's reconfig test does with server.999. */
    if (config_parse_long(key + strlen("server."), 0, INT32_MAX, &id) != 0)
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
    if (config_parse_long(fields[1], 1, 65535, &port) != 0)
        return config_fail(err, errlen, "%s: bad peer port '%s'", key, fields[1]);
    s->peer_port = (int)port;
    if (config_parse_long(fields[2], 1, 65535, &port) != 0)
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

int config_read_myid(struct config *cfg, char *err, size_t errlen)
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
    if (config_parse_long(config_trim(line), 0, 255, &id) != 0)
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
    int rc = config_set_server(scratch, key, value, err, errlen);
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
        char *s = config_trim(item);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = config_fail(err, errlen, "expected server.N=... or version=..., got '%s'", s);
            break;
        }
        *eq = '\0';
        char *key = config_trim(s), *value = config_trim(eq + 1);
        if (strcmp(key, "version") == 0)
            continue; /* the file name and the caller carry it */
        if (strncmp(key, "server.", 7) != 0) {
            rc = config_fail(err, errlen, "%s: only server.N lines belong in a dynamic configuration", key);
            break;
        }
        rc = config_set_server(next, key, value, err, errlen);
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
int config_load_dynamic(struct config *cfg, char *err, size_t errlen)
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
int config_load_dynamic_config_file(struct config *cfg, char *err, size_t errlen)
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
            if (strcmp(config_trim(line), "version") != 0)
                continue;
            if (!parse_hex(config_trim(eq + 1), &line_version))
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
int config_client_port_from_server_line(struct config *cfg, char *err, size_t errlen)
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
    if (!colon || config_parse_long(colon + 1, 1, 65535, &port) != 0 || colon == host ||
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
void config_check_peer_type(const struct config *cfg)
{
    for (int i = 0; i < cfg->server_count; i++)
        if (cfg->peer_type_set && cfg->servers[i].id == cfg->my_id &&
            cfg->servers[i].observer != cfg->peer_type_observer)
            ZN_WARN("config: peerType=%s disagrees with server.%d's line, which makes it %s: "
                    "the line wins, as in ZooKeeper",
                    cfg->peer_type_observer ? "observer" : "participant", cfg->my_id,
                    cfg->servers[i].observer ? "an observer" : "a participant");
}
