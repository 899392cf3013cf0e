/*
 * znodefs's command line: the -o options (fuse_opt), --help, --version, and
 * the checks of the whole (TLS and SASL options complete and consistent, the
 * SASL password file read) before anything connects or mounts.  What the
 * options mean for users is docs/filesystem.md and `znodefs --help`.
 * Called once by main (main.c): fs_options_parse.
 * Invariant: an option is acted on or refused (exit status 2 with the
 * reason); FUSE's own -o options pass through to libfuse.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "znodefs.h"

/* ---- options ---- */

/* -o spin_us's default (see on_fuse_readable, main.c). */
#define FS_DEFAULT_SPIN_US 30

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG, KEY_RO };

#define FS_OPT(t, p) {t, offsetof(struct fs_config, p), 1}
static const struct fuse_opt fs_opts[] = {
    FS_OPT("session_timeout=%d", session_timeout_ms),
    FS_OPT("auth=%s", auth),
    FS_OPT("tls", tls),
    FS_OPT("cafile=%s", tls_ca),
    FS_OPT("certfile=%s", tls_cert),
    FS_OPT("keyfile=%s", tls_key),
    FS_OPT("sasl=%s", sasl),
    FS_OPT("sasl_user=%s", sasl_user),
    FS_OPT("sasl_password_file=%s", sasl_password_file),
    FS_OPT("sasl_service=%s", sasl_service),
    FS_OPT("entry_timeout=%lf", entry_timeout_s),
    FS_OPT("attr_timeout=%lf", attr_timeout_s),
    FS_OPT("spin_us=%d", spin_us),
    FS_OPT("log=%s", log_file),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("foreground", KEY_FOREGROUND),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_END,
};

static void usage(FILE *out)
{
    fprintf(out,
"usage: znodefs [-f] [-d] [-o OPT[,OPT...]] HOSTS MOUNTPOINT\n"
"\n"
"Mounts the znode tree of a ZooKeeper ensemble (znoded or Apache ZooKeeper).\n"
"HOSTS is a connect string: host:port[,host:port...][/chroot]; the mount fails\n"
"over between the hosts.  Also usable as `mount -t fuse.znodefs HOSTS DIR`.\n"
"Unmount with `fusermount3 -u MOUNTPOINT`.\n"
"\n"
"Options:\n"
"  -o session_timeout=MS  ZooKeeper session timeout (default %d); ephemeral files and\n"
"                         locks outlive a server crash for this long\n"
"  -o auth=USER:PASSWORD  add digest credentials to the session\n"
"  -o tls,cafile=CA.pem   connect with TLS (a server's secureClientPort), checking the\n"
"                         server's certificate against CA.pem and the host in HOSTS\n"
"  -o certfile=C.pem[,keyfile=K.pem]  with tls: the client's certificate and key (PEM,\n"
"                         the key unencrypted; default: in certfile), for\n"
"                         ssl.clientAuth=need and the x509: identity\n"
"  -o sasl=DIGEST-MD5,sasl_user=NAME,sasl_password_file=FILE  authenticate with SASL\n"
"                         as NAME (a user_NAME entry of the server's JAAS Server\n"
"                         section; the password is FILE's first line): the mount is\n"
"                         then sasl:NAME, again after every reconnect\n"
"  -o sasl=GSSAPI[,sasl_service=S]  Kerberos, with the ticket cache of the environment;\n"
"                         the server's principal is S/HOST (S default zookeeper)\n"
"  -o entry_timeout=S     how long the kernel caches names (default 1.0)\n"
"  -o attr_timeout=S      how long the kernel caches attributes (default 1.0); remote\n"
"                         changes also invalidate the caches as soon as a watch fires\n"
"  -o spin_us=US          after answering from the cache, poll for the next request\n"
"                         this long before sleeping (default %d; 0: never)\n"
"  -o ro                  read-only mount\n"
"  -o log=FILE            in the background, log to FILE instead of syslog (daemon facility)\n"
"  -f, -o foreground      stay in the foreground\n"
"  -d, -o debug           foreground, and log every request and watch event\n"
"  -h, --help             this text;  -V, --version  the version\n"
"  Other -o options are FUSE's (allow_other, default_permissions, ...).\n"
"\n"
"What you see: directories are znodes with children (or made with mkdir), files\n"
"are znodes' data; DIR/.data is a directory node's data; xattrs user.zk.* carry\n"
"the stat and ACL; `setfattr -n user.zk.data@V -v NEW f` and writes to \"f@v=V\"\n"
"are compare-and-write (ECANCELED when the version moved); reading \"f@wait=V\"\n"
"blocks until f's version passes V; flock(1) is a distributed lock (kazoo's\n"
"layout); `setfattr -n user.zk.child_mode -v ephemeral DIR` makes files created\n"
"in DIR through this mount ephemeral (a setting of this mount only, not stored\n"
"with the node: other mounts create persistent files there); DIR/.clone creates\n"
"sequential children (write \"PREFIX\\nDATA\", read back the name).  Mode bits show\n"
"the node's ACL for this mount's identity (world, and digest with auth=).\n"
"poll/select: POLLPRI once the file changed since it was last read at offset 0.\n"
"If the session expires, the mount opens a new one; files that held ephemeral\n"
"nodes of the old session then fail with EIO.\n",
            ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS, FS_DEFAULT_SPIN_US);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct fs_config *c = data;
    switch (key) {
    case FUSE_OPT_KEY_NONOPT:
        if (!c->hosts) {
            c->hosts = strdup(arg);
            return 0;
        }
        if (!c->mountpoint) {
            c->mountpoint = realpath(arg, NULL);
            if (!c->mountpoint) {
                fprintf(stderr, "znodefs: bad mount point %s: %s\n", arg, strerror(errno));
                return -1;
            }
            return 0;
        }
        fprintf(stderr, "znodefs: unexpected argument %s\n", arg);
        return -1;
    case KEY_HELP:
        usage(stdout);
        exit(0);
    case KEY_VERSION:
        printf("znodefs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
        exit(0);
    case KEY_FOREGROUND:
        c->foreground = true;
        return 0;
    case KEY_DEBUG:
        c->foreground = true;
        c->debug = true;
        return 0;
    case KEY_RO:
        c->read_only = true;
        return 1; /* FUSE mounts read-only too */
    default:
        return 1;
    }
}

/* -o sasl=...: complete and consistent, the password read.  0, or -1 (said why). */
static int check_sasl_options(struct fs *fs)
{
    const struct fs_config *cfg = &fs->config;
    bool digest = cfg->sasl && strcmp(cfg->sasl, "DIGEST-MD5") == 0;
    if (cfg->sasl && !digest && strcmp(cfg->sasl, "GSSAPI") != 0) {
        fprintf(stderr, "znodefs: -o sasl= is DIGEST-MD5 or GSSAPI\n");
        return -1;
    }
    if (!digest && (cfg->sasl_user || cfg->sasl_password_file)) {
        fprintf(stderr, "znodefs: sasl_user= and sasl_password_file= need -o sasl=DIGEST-MD5\n");
        return -1;
    }
    if (cfg->sasl_service && !(cfg->sasl && !digest)) {
        fprintf(stderr, "znodefs: sasl_service= needs -o sasl=GSSAPI\n");
        return -1;
    }
    if (digest && (!cfg->sasl_user || !cfg->sasl_password_file)) {
        fprintf(stderr, "znodefs: -o sasl=DIGEST-MD5 needs sasl_user=NAME and sasl_password_file=FILE\n");
        return -1;
    }
    char err[600];
    if (digest && zn_read_password_file(cfg->sasl_password_file, fs->sasl_password, sizeof fs->sasl_password, err,
                                        sizeof err) != 0) {
        fprintf(stderr, "znodefs: sasl_password_file=%s\n", err);
        return -1;
    }
    return 0;
}

/* mount, df and findmnt name the ensemble (fsname) and the filesystem (fuse.znodefs), as sshfs
 * does; the user's own -o fsname=/subtype= come later and win. */
static int add_mount_names(struct fuse_args *args, const char *hosts)
{
    char *names = NULL, *fsname = malloc(strlen("fsname=") + strlen(hosts) + 1);
    if (!fsname)
        return -1;
    strcpy(fsname, "fsname=");
    strcat(fsname, hosts);
    /* A connect string has commas, which separate -o options unless escaped. */
    int rc = fuse_opt_add_opt_escaped(&names, fsname);
    free(fsname);
    if (rc == 0)
        rc = fuse_opt_add_opt(&names, "subtype=znodefs");
    if (rc == 0)
        rc = fuse_opt_insert_arg(args, 1, "-o");
    if (rc == 0)
        rc = fuse_opt_insert_arg(args, 2, names);
    free(names);
    return rc;
}

/* Parses argv (args) into fs->config and checks it as a whole: HOSTS and MOUNTPOINT given,
 * the TLS and SASL options complete and consistent; adds the mount's names (and -d) to args.
 * 0, or -1 after saying why on stderr. */
int fs_options_parse(struct fs *fs, struct fuse_args *args)
{
    fs->config.session_timeout_ms = ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS;
    fs->config.entry_timeout_s = 1.0;
    fs->config.attr_timeout_s = 1.0;
    fs->config.spin_us = FS_DEFAULT_SPIN_US;
    if (fuse_opt_parse(args, &fs->config, fs_opts, opt_proc) != 0)
        return -1;
    if (!fs->config.hosts || !fs->config.mountpoint) {
        usage(stderr);
        return -1;
    }
    if (fs->config.tls && !fs->config.tls_ca) {
        fprintf(stderr, "znodefs: -o tls needs cafile=FILE (the CAs the server's certificate must "
                        "chain to)\n");
        return -1;
    }
    if (!fs->config.tls && (fs->config.tls_ca || fs->config.tls_cert || fs->config.tls_key)) {
        fprintf(stderr, "znodefs: cafile=, certfile= and keyfile= need -o tls\n");
        return -1;
    }
    if (fs->config.tls_key && !fs->config.tls_cert) {
        fprintf(stderr, "znodefs: keyfile= needs certfile=\n");
        return -1;
    }
    if (check_sasl_options(fs) != 0)
        return -1;
    const char *chroot = strchr(fs->config.hosts, '/');
    fs->config.chroot_bytes = chroot && strcmp(chroot, "/") != 0 ? strlen(chroot) : 0;
    if (add_mount_names(args, fs->config.hosts) != 0)
        return -1;
    if (fs->config.debug) {
        zn_log_threshold = ZN_LOG_DEBUG;
        /* libfuse's own trace of every request (bench/mount-bench.sh counts them). */
        if (fuse_opt_add_arg(args, "-d") != 0)
            return -1;
    }
    return 0;
}
