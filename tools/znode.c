/*
 * znode: the command-line client.  One command per run, on one session, over
 * libznode's blocking layer (zn_sync_*), against any ZooKeeper-protocol
 * server (znoded or Apache ZooKeeper).
 *
 * Exit codes are part of the interface (scripts test them):
 *   0 ok, 1 the server answered with an error (NONODE, NODEEXISTS, ...),
 *   2 usage error, 3 connection failure or timeout (or session lost).
 * Errors are one line on stderr: "znode: CMD PATH: message".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "backup.h"
#include "log.h"
#include "znode/client.h"

#define CLI_DEFAULT_SERVER "127.0.0.1:2181"
#define CLI_DEFAULT_TIMEOUT_MS 10000
/* Session timeout requested; the CLI closes its session on exit, so this only bounds
 * how long the server keeps it if we are killed. */
#define CLI_SESSION_TIMEOUT_MS 10000
/* Depth limit of rm -r (ZooKeeper paths are bounded, but be explicit). */
#define CLI_MAX_RM_DEPTH 1000

enum { EXIT_OK = 0, EXIT_ZK = 1, EXIT_USAGE = 2, EXIT_CONN = 3 };

static const char *usage_text =
    "usage: znode [--server HOSTS] [--timeout MS] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
    "             [--sasl-user NAME --sasl-password-file FILE | --sasl-mech GSSAPI [--sasl-service S]\n"
    "              | --jaas FILE]\n"
    "             COMMAND ARGS\n"
    "\n"
    "  HOSTS is host:port[,host:port...][/chroot] (default $ZNODE_SERVER or " CLI_DEFAULT_SERVER ")\n"
    "  MS bounds connecting and each operation (default 10000)\n"
    "  --tls-ca FILE     connect with TLS (a server's secureClientPort); the server's certificate\n"
    "                    must chain to the PEM CAs in FILE and name the host as HOSTS does\n"
    "  --tls-cert FILE   the client's PEM certificate, for servers with ssl.clientAuth=need;\n"
    "  --tls-key FILE    its unencrypted PEM key (default: in the --tls-cert file)\n"
    "  --sasl-user NAME  authenticate with SASL DIGEST-MD5 as NAME (a user_NAME entry of the\n"
    "                    server's JAAS Server section); the session is then sasl:NAME\n"
    "  --sasl-password-file FILE  NAME's password: FILE's first line\n"
    "  --sasl-mech MECH  DIGEST-MD5 (default with --sasl-user) or GSSAPI (Kerberos, with the\n"
    "                    ticket cache of the environment; server principal zookeeper/HOST)\n"
    "  --sasl-service S  GSSAPI: the server principal's service, S/HOST (default zookeeper)\n"
    "  --jaas FILE       take the SASL credentials from FILE's Client section, as zkCli.sh does\n"
    "                    with -Djava.security.auth.login.config=FILE\n"
    "\n"
    "commands:\n"
    "  ls PATH                          list children, one per line, sorted\n"
    "  get PATH                         write the node's data to stdout, byte for byte\n"
    "  set PATH DATA|- [--version N]    set data (- reads stdin); N must match the version\n"
    "  create [-e] [-s] PATH [DATA|-]   create a node (-e ephemeral, -s sequential); prints its path\n"
    "  rm [-r] PATH [--version N]       delete a node (-r: with its descendants)\n"
    "  stat PATH                        print the node's stat, one field per line\n"
    "  watch PATH [--count N]           print events on PATH as 'EventType PATH', re-arming,\n"
    "                                   until the node is deleted or N events were printed\n"
    "  backup FILE [--admin-port P] [--auth USER:PASSWORD]\n"
    "                                   save a consistent backup of the first member of HOSTS\n"
    "                                   that answers on its AdminServer port P (default 8080),\n"
    "                                   as USER (a digest identity with ALL on /, or super);\n"
    "                                   prints the zxid it holds (znoded --restore reads it)\n"
    "\n"
    "exit status: 0 ok, 1 ZooKeeper error (e.g. no node), 2 usage, 3 connection failure/timeout\n"
    "environment: ZNODE_SERVER, ZNODE_LOG_LEVEL (debug|info|warn|error|off, default off)\n";

static int usage_error(const char *msg)
{
    if (msg)
        fprintf(stderr, "znode: %s\n", msg);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static int is_connection_error(int rc)
{
    return rc == ZN_CONNECTIONLOSS || rc == ZN_OPERATIONTIMEOUT || rc == ZN_SESSIONEXPIRED ||
           rc == ZN_CLOSING || rc == ZN_AUTHFAILED;
}

static int report(const char *cmd, const char *path, int rc)
{
    fprintf(stderr, "znode: %s %s: %s\n", cmd, path, zn_strerror(rc));
    return is_connection_error(rc) ? EXIT_CONN : EXIT_ZK;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Reads all of stdin up to max bytes; returns -1 if larger or unreadable. */
static int read_stdin(int32_t max, uint8_t **out, int32_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                return -1;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (n > (size_t)max) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = (int32_t)n;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_ls(struct zn_client *c, const char *path)
{
    char **children = NULL;
    int32_t count = 0;
    int rc = zn_sync_get_children(c, path, NULL, NULL, &children, &count, NULL);
    if (rc)
        return report("ls", path, rc);
    qsort(children, (size_t)count, sizeof *children, cmp_str);
    for (int32_t i = 0; i < count; i++)
        printf("%s\n", children[i]);
    zn_strings_free(children, count);
    return EXIT_OK;
}

static int cmd_get(struct zn_client *c, const char *path)
{
    uint8_t *data = NULL;
    int32_t len = -1;
    int rc = zn_sync_get(c, path, NULL, NULL, &data, &len, NULL);
    if (rc)
        return report("get", path, rc);
    if (len > 0 && fwrite(data, 1, (size_t)len, stdout) != (size_t)len) {
        free(data);
        fprintf(stderr, "znode: get %s: cannot write stdout\n", path);
        return EXIT_ZK;
    }
    free(data);
    return EXIT_OK;
}

/* DATA argument: literal, or "-" for stdin. */
static int data_arg(const char *arg, uint8_t **data, int32_t *len)
{
    if (strcmp(arg, "-") == 0)
        return read_stdin(ZN_CLIENT_DEFAULT_MAX_DATA_BYTES, data, len);
    size_t n = strlen(arg);
    if (n > ZN_CLIENT_DEFAULT_MAX_DATA_BYTES)
        return -1;
    *data = (uint8_t *)strdup(arg);
    *len = (int32_t)n;
    return *data ? 0 : -1;
}

static int cmd_set(struct zn_client *c, const char *path, const char *arg, int32_t version)
{
    uint8_t *data;
    int32_t len;
    if (data_arg(arg, &data, &len) != 0) {
        fprintf(stderr, "znode: set %s: data unreadable or over %d bytes\n", path,
                ZN_CLIENT_DEFAULT_MAX_DATA_BYTES);
        return EXIT_USAGE;
    }
    int rc = zn_sync_set(c, path, data, len, version, NULL);
    free(data);
    return rc ? report("set", path, rc) : EXIT_OK;
}

static int cmd_create(struct zn_client *c, const char *path, const char *arg, int flags)
{
    uint8_t *data = NULL;
    int32_t len = 0;
    if (arg && data_arg(arg, &data, &len) != 0) {
        fprintf(stderr, "znode: create %s: data unreadable or over %d bytes\n", path,
                ZN_CLIENT_DEFAULT_MAX_DATA_BYTES);
        return EXIT_USAGE;
    }
    char *created = NULL;
    int rc = zn_sync_create(c, path, data, len, flags, &created);
    free(data);
    if (rc)
        return report("create", path, rc);
    printf("%s\n", created);
    free(created);
    return EXIT_OK;
}

static int rm_tree(struct zn_client *c, const char *path, int32_t version, int depth)
{
    if (depth > CLI_MAX_RM_DEPTH)
        return ZN_BADARGUMENTS;
    char **children = NULL;
    int32_t count = 0;
    int rc = zn_sync_get_children(c, path, NULL, NULL, &children, &count, NULL);
    if (rc)
        return rc;
    for (int32_t i = 0; i < count && rc == 0; i++) {
        size_t n = strlen(path) + strlen(children[i]) + 2;
        char *child = malloc(n);
        if (!child) {
            rc = ZN_NOMEMORY;
            break;
        }
        snprintf(child, n, "%s/%s", strcmp(path, "/") == 0 ? "" : path, children[i]);
        rc = rm_tree(c, child, -1, depth + 1);
        if (rc == ZN_NONODE) /* deleted meanwhile by someone else: fine */
            rc = 0;
        if (rc && rc != ZN_NOMEMORY)
            fprintf(stderr, "znode: rm %s: %s\n", child, zn_strerror(rc));
        free(child);
    }
    zn_strings_free(children, count);
    if (rc == 0 && strcmp(path, "/") != 0)
        rc = zn_sync_delete(c, path, version);
    return rc;
}

static int cmd_rm(struct zn_client *c, const char *path, int recursive, int32_t version)
{
    int rc = recursive ? rm_tree(c, path, version, 0) : zn_sync_delete(c, path, version);
    return rc ? report("rm", path, rc) : EXIT_OK;
}

static void print_time(const char *name, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[64];
    localtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%a %b %d %H:%M:%S %Z %Y", &tm);
    printf("%s = %s\n", name, buf);
}

static int cmd_stat(struct zn_client *c, const char *path)
{
    struct zn_stat st;
    int rc = zn_sync_exists(c, path, NULL, NULL, &st);
    if (rc)
        return report("stat", path, rc);
    printf("cZxid = 0x%" PRIx64 "\n", (uint64_t)st.czxid);
    print_time("ctime", st.ctime);
    printf("mZxid = 0x%" PRIx64 "\n", (uint64_t)st.mzxid);
    print_time("mtime", st.mtime);
    printf("pZxid = 0x%" PRIx64 "\n", (uint64_t)st.pzxid);
    printf("cversion = %d\n", st.cversion);
    printf("dataVersion = %d\n", st.version);
    printf("aclVersion = %d\n", st.aversion);
    printf("ephemeralOwner = 0x%" PRIx64 "\n", (uint64_t)st.ephemeral_owner);
    printf("dataLength = %d\n", st.data_length);
    printf("numChildren = %d\n", st.num_children);
    return EXIT_OK;
}

/* ---- watch ---- */

#define CLI_MAX_QUEUED_EVENTS 64

struct watch_state {
    int count;
    int types[CLI_MAX_QUEUED_EVENTS];
    int states[CLI_MAX_QUEUED_EVENTS];
    char *paths[CLI_MAX_QUEUED_EVENTS];
};

static const char *event_name(int type)
{
    switch (type) {
    case ZN_EVENT_CREATED: return "NodeCreated";
    case ZN_EVENT_DELETED: return "NodeDeleted";
    case ZN_EVENT_CHANGED: return "NodeDataChanged";
    case ZN_EVENT_CHILD: return "NodeChildrenChanged";
    }
    return "None";
}

static void on_watch(struct zn_client *c, int type, int state, const char *path, void *arg)
{
    struct watch_state *w = arg;
    /* One watcher per path: at most a few events are pending at once; drop past the bound. */
    if (w->count == CLI_MAX_QUEUED_EVENTS)
        return;
    w->types[w->count] = type;
    w->states[w->count] = state;
    w->paths[w->count] = strdup(path);
    w->count++;
}

/* Sets the watches on path: exists (data or creation), and children if it exists. */
static int watch_arm(struct zn_client *c, const char *path, struct watch_state *w)
{
    for (;;) {
        int rc = zn_sync_exists(c, path, on_watch, w, NULL);
        if (rc == ZN_NONODE)
            return 0; /* an exists watch now waits for its creation */
        if (rc)
            return rc;
        char **children = NULL;
        int32_t count = 0;
        rc = zn_sync_get_children(c, path, on_watch, w, &children, &count, NULL);
        zn_strings_free(children, count);
        if (rc != ZN_NONODE)
            return rc;
        /* Deleted between the two calls: the data watch reports it. */
        return 0;
    }
}

static int cmd_watch(struct zn_client *c, const char *path, long max_events)
{
    struct watch_state w;
    memset(&w, 0, sizeof w);
    long printed = 0;
    int rc = watch_arm(c, path, &w);
    if (rc)
        return report("watch", path, rc);
    for (;;) {
        while (w.count == 0) {
            rc = zn_sync_run_once(c);
            if (rc && w.count == 0)
                return report("watch", path, rc);
        }
        bool deleted = false, ended = false;
        for (int i = 0; i < w.count; i++) {
            if (w.types[i] == ZN_EVENT_NONE) {
                ended = true;
            } else if (max_events == 0 || printed < max_events) {
                printf("%s %s\n", event_name(w.types[i]), w.paths[i] ? w.paths[i] : path);
                printed++;
                if (w.types[i] == ZN_EVENT_DELETED)
                    deleted = true;
            }
            free(w.paths[i]);
        }
        w.count = 0;
        fflush(stdout);
        if (ended)
            return report("watch", path, ZN_SESSIONEXPIRED);
        if (deleted || (max_events > 0 && printed >= max_events))
            return EXIT_OK;
        rc = watch_arm(c, path, &w);
        if (rc)
            return report("watch", path, rc);
    }
}

/* ---- main ---- */

struct cli {
    const char *server;
    long timeout_ms;
    const char *tls_ca, *tls_cert, *tls_key;
    const char *sasl_user, *sasl_password_file, *sasl_mech, *sasl_service, *jaas;
    const char *cmd;
    const char *args[3]; /* positional arguments after the command */
    int nargs;
    bool ephemeral, sequential, recursive;
    long version;
    long count;
    long admin_port;
    const char *auth;
};

/* ---- SASL ---- */

/* --sasl-* / --jaas into opts (strings in *jaas).  Returns 0 or EXIT_USAGE (said why). */
static int sasl_options(const struct cli *cli, struct zn_jaas_client *jaas, struct zn_client_options *opts)
{
    bool flags = cli->sasl_user || cli->sasl_password_file || cli->sasl_mech;
    if (cli->sasl_service && !flags && !cli->jaas)
        return usage_error("--sasl-service belongs to GSSAPI");
    if (cli->jaas) {
        if (flags)
            return usage_error("--jaas takes the place of --sasl-user, --sasl-password-file and --sasl-mech");
        char err[600];
        if (zn_jaas_client_read(cli->jaas, NULL, jaas, err, sizeof err) != 0) {
            fprintf(stderr, "znode: --jaas %s\n", err);
            return EXIT_USAGE;
        }
    } else if (flags) {
        const char *mech = cli->sasl_mech ? cli->sasl_mech : "DIGEST-MD5";
        if (strcmp(mech, "DIGEST-MD5") != 0 && strcmp(mech, "GSSAPI") != 0)
            return usage_error("--sasl-mech is DIGEST-MD5 or GSSAPI");
        bool digest = strcmp(mech, "DIGEST-MD5") == 0;
        if (digest && (!cli->sasl_user || !cli->sasl_password_file))
            return usage_error("SASL DIGEST-MD5 needs --sasl-user and --sasl-password-file");
        if (!digest && (cli->sasl_user || cli->sasl_password_file))
            return usage_error("SASL GSSAPI takes its identity from Kerberos: no --sasl-user or --sasl-password-file");
        snprintf(jaas->mechanism, sizeof jaas->mechanism, "%s", mech);
        if (digest) {
            snprintf(jaas->user, sizeof jaas->user, "%s", cli->sasl_user);
            char err[600];
            if (zn_read_password_file(cli->sasl_password_file, jaas->password, sizeof jaas->password, err,
                                      sizeof err) != 0) {
                fprintf(stderr, "znode: --sasl-password-file %s\n", err);
                return EXIT_USAGE;
            }
        }
    } else {
        return 0;
    }
    opts->sasl_mechanism = jaas->mechanism;
    if (cli->sasl_service && strcmp(jaas->mechanism, "GSSAPI") != 0)
        return usage_error("--sasl-service belongs to GSSAPI");
    opts->sasl_service = cli->sasl_service;
    if (strcmp(jaas->mechanism, "DIGEST-MD5") == 0) {
        opts->sasl_user = jaas->user;
        opts->sasl_password = jaas->password;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
    cli->server = getenv("ZNODE_SERVER");
    if (!cli->server || !*cli->server)
        cli->server = CLI_DEFAULT_SERVER;
    cli->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    cli->version = -1;
    cli->admin_port = 8080;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        } else if (strcmp(a, "--server") == 0) {
            if (!has_value)
                return usage_error("--server needs HOSTS");
            cli->server = argv[++i];
        } else if (strcmp(a, "--tls-ca") == 0 || strcmp(a, "--tls-cert") == 0 ||
                   strcmp(a, "--tls-key") == 0) {
            if (!has_value)
                return usage_error("--tls-ca, --tls-cert and --tls-key need a FILE");
            const char **file = strcmp(a, "--tls-ca") == 0     ? &cli->tls_ca
                                : strcmp(a, "--tls-cert") == 0 ? &cli->tls_cert
                                                               : &cli->tls_key;
            *file = argv[++i];
        } else if (strcmp(a, "--sasl-user") == 0 || strcmp(a, "--sasl-password-file") == 0 ||
                   strcmp(a, "--sasl-mech") == 0 || strcmp(a, "--sasl-service") == 0 ||
                   strcmp(a, "--jaas") == 0) {
            if (!has_value)
                return usage_error(strcmp(a, "--sasl-user") == 0      ? "--sasl-user needs a NAME"
                                   : strcmp(a, "--sasl-mech") == 0    ? "--sasl-mech needs DIGEST-MD5 or GSSAPI"
                                   : strcmp(a, "--sasl-service") == 0 ? "--sasl-service needs a service name"
                                                                      : "--sasl-password-file and --jaas need a FILE");
            const char **value = strcmp(a, "--sasl-user") == 0      ? &cli->sasl_user
                                 : strcmp(a, "--sasl-mech") == 0    ? &cli->sasl_mech
                                 : strcmp(a, "--sasl-service") == 0 ? &cli->sasl_service
                                 : strcmp(a, "--jaas") == 0         ? &cli->jaas
                                                                    : &cli->sasl_password_file;
            *value = argv[++i];
        } else if (strcmp(a, "--timeout") == 0) {
            if (!has_value || parse_int(argv[++i], 1, 3600 * 1000, &cli->timeout_ms) != 0)
                return usage_error("--timeout needs a number of milliseconds (1..3600000)");
        } else if (strcmp(a, "--version") == 0 && cli->cmd) {
            if (!has_value || parse_int(argv[++i], -1, INT32_MAX, &cli->version) != 0)
                return usage_error("--version needs a version number");
        } else if (strcmp(a, "--admin-port") == 0 && cli->cmd) {
            if (!has_value || parse_int(argv[++i], 1, 65535, &cli->admin_port) != 0)
                return usage_error("--admin-port needs a port number");
        } else if (strcmp(a, "--auth") == 0 && cli->cmd) {
            if (!has_value || !strchr(argv[i + 1], ':'))
                return usage_error("--auth needs USER:PASSWORD");
            cli->auth = argv[++i];
        } else if (strcmp(a, "--count") == 0 && cli->cmd) {
            if (!has_value || parse_int(argv[++i], 1, INT32_MAX, &cli->count) != 0)
                return usage_error("--count needs a positive number");
        } else if (cli->cmd && strcmp(a, "-e") == 0) {
            cli->ephemeral = true;
        } else if (cli->cmd && strcmp(a, "-s") == 0) {
            cli->sequential = true;
        } else if (cli->cmd && strcmp(a, "-r") == 0) {
            cli->recursive = true;
        } else if (a[0] == '-' && a[1] != '\0' && !(cli->cmd && cli->nargs >= 1)) {
            fprintf(stderr, "znode: unknown option %s\n", a);
            return usage_error(NULL);
        } else if (!cli->cmd) {
            cli->cmd = a;
        } else if (cli->nargs < 3) {
            cli->args[cli->nargs++] = a;
        } else {
            return usage_error("too many arguments");
        }
    }
    if (!cli->cmd)
        return usage_error("no command");
    return 0;
}

/* Checks the command's arity and flags.  Returns 0 or EXIT_USAGE. */
static int check_command(const struct cli *cli)
{
    struct {
        const char *name;
        int min, max;
        bool create_flags, r_flag, version, count;
    } table[] = {
        {"backup", 1, 1, false, false, false, false},
        {"ls", 1, 1, false, false, false, false},   {"get", 1, 1, false, false, false, false},
        {"set", 2, 2, false, false, true, false},   {"create", 1, 2, true, false, false, false},
        {"rm", 1, 1, false, true, true, false},     {"stat", 1, 1, false, false, false, false},
        {"watch", 1, 1, false, false, false, true},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(cli->cmd, table[i].name) != 0)
            continue;
        if (cli->nargs < table[i].min || cli->nargs > table[i].max)
            return usage_error("wrong number of arguments");
        if ((cli->ephemeral || cli->sequential) && !table[i].create_flags)
            return usage_error("-e and -s belong to create");
        if (cli->recursive && !table[i].r_flag)
            return usage_error("-r belongs to rm");
        if (cli->version != -1 && !table[i].version)
            return usage_error("--version belongs to set and rm");
        if (cli->count && !table[i].count)
            return usage_error("--count belongs to watch");
        if ((cli->admin_port != 8080 || cli->auth) && strcmp(cli->cmd, "backup") != 0)
            return usage_error("--admin-port and --auth belong to backup");
        if (strcmp(cli->cmd, "backup") != 0 && cli->args[0][0] != '/')
            return usage_error("PATH must start with '/'");
        return 0;
    }
    fprintf(stderr, "znode: unknown command %s\n", cli->cmd);
    return usage_error(NULL);
}

static int run(struct zn_client *c, const struct cli *cli)
{
    const char *path = cli->args[0];
    int32_t version = (int32_t)cli->version;
    if (strcmp(cli->cmd, "ls") == 0)
        return cmd_ls(c, path);
    if (strcmp(cli->cmd, "get") == 0)
        return cmd_get(c, path);
    if (strcmp(cli->cmd, "set") == 0)
        return cmd_set(c, path, cli->args[1], version);
    if (strcmp(cli->cmd, "create") == 0)
        return cmd_create(c, path, cli->nargs > 1 ? cli->args[1] : NULL,
                          (cli->ephemeral ? ZN_FLAG_EPHEMERAL : 0) |
                              (cli->sequential ? ZN_FLAG_SEQUENTIAL : 0));
    if (strcmp(cli->cmd, "rm") == 0)
        return cmd_rm(c, path, cli->recursive, version);
    if (strcmp(cli->cmd, "stat") == 0)
        return cmd_stat(c, path);
    return cmd_watch(c, path, cli->count);
}

int main(int argc, char **argv)
{
    struct cli cli;
    memset(&cli, 0, sizeof cli);
    int rc = parse_args(argc, argv, &cli);
    if (rc)
        return rc;
    rc = check_command(&cli);
    if (rc)
        return rc;

    if (strcmp(cli.cmd, "backup") == 0)
        return cli_backup(cli.server, (int)cli.admin_port, cli.auth, cli.args[0], cli.timeout_ms);

    zn_log_set_program("znode");
    const char *level = getenv("ZNODE_LOG_LEVEL");
    zn_log_threshold = level && zn_log_level_parse(level) >= 0 ? zn_log_level_parse(level)
                                                                : ZN_LOG_OFF;

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct zn_client_options opts;
    zn_client_options_init(&opts);
    opts.session_timeout_ms = CLI_SESSION_TIMEOUT_MS;
    opts.queue_timeout_ms = (int32_t)cli.timeout_ms;
    opts.sync_timeout_ms = (int32_t)cli.timeout_ms;
    opts.tls_ca_file = cli.tls_ca;
    opts.tls_cert_file = cli.tls_cert;
    opts.tls_key_file = cli.tls_key;
    if ((cli.tls_cert || cli.tls_key) && !cli.tls_ca) {
        uv_loop_close(&loop);
        return usage_error("--tls-cert and --tls-key need --tls-ca");
    }
    static struct zn_jaas_client sasl;
    rc = sasl_options(&cli, &sasl, &opts);
    if (rc) {
        uv_loop_close(&loop);
        return rc;
    }
    struct zn_client *client;
    if (cli.tls_ca && zn_log_threshold > ZN_LOG_ERROR)
        zn_log_threshold = ZN_LOG_ERROR; /* a TLS file that cannot be used says why */
    rc = zn_client_new(&loop, cli.server, &opts, &client);
    if (rc) {
        fprintf(stderr, "znode: bad server list '%s'%s: %s\n", cli.server,
                cli.tls_ca ? " or TLS files" : "", zn_strerror(rc));
        uv_loop_close(&loop);
        return EXIT_USAGE;
    }
    rc = zn_sync_wait_connected(client);
    memset(sasl.password, 0, sizeof sasl.password);
    if (rc == ZN_AUTHFAILED) {
        /* "host:port: SASL DIGEST-MD5 as NAME: rejected by the server (AUTHFAILED)" */
        fprintf(stderr, "znode: authentication failed: %s\n", zn_client_last_failure(client));
        rc = EXIT_CONN;
    } else if (rc) {
        const char *last = zn_client_last_failure(client);
        fprintf(stderr, "znode: cannot connect to %s: %s%s%s%s\n", cli.server,
                rc == ZN_OPERATIONTIMEOUT ? "timed out" : zn_strerror(rc), last[0] ? " (last: " : "",
                last, last[0] ? ")" : "");
        rc = EXIT_CONN;
    } else {
        rc = run(client, &cli);
    }
    fflush(stdout);
    zn_sync_close(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}
