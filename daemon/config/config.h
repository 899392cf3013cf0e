/*
 * znoded's configuration: a zoo.cfg with ZooKeeper's keys and meanings.
 *
 * A user with a working zoo.cfg changes nothing but paths.  Every key is
 * acted on or refused (config_keys.c), but for a short list of keys that
 * only tune ZooKeeper's JVM, which are recorded in config.ignored; malformed
 * values and contradictions are errors that name the key and the line.
 */
#ifndef ZNODED_CONFIG_H
#define ZNODED_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_SERVERS 32
#define CONFIG_HOST_BYTES 256
#define CONFIG_LINE_BYTES 4096
#define CONFIG_SUPER_DIGEST_BYTES 256
/* Distinct ignored keys remembered for --check-config. */
#define CONFIG_MAX_IGNORED 32
/* The largest dynamic configuration file read (a few lines per member). */
#define CONFIG_DYNAMIC_MAX_BYTES (CONFIG_MAX_SERVERS * (CONFIG_LINE_BYTES / 4) + 64)
#define CONFIG_ADMIN_URL_BYTES 128

/* The four-letter words, as bits of config.four_letter_words. */
enum config_4lw {
    CONFIG_4LW_RUOK = 1 << 0,
    CONFIG_4LW_SRVR = 1 << 1,
    CONFIG_4LW_STAT = 1 << 2,
    CONFIG_4LW_CONF = 1 << 3,
    CONFIG_4LW_ENVI = 1 << 4,
    CONFIG_4LW_MNTR = 1 << 5,
    CONFIG_4LW_CONS = 1 << 6,
    CONFIG_4LW_WCHS = 1 << 7,
    CONFIG_4LW_DUMP = 1 << 8,
    CONFIG_4LW_WCHC = 1 << 9,
    CONFIG_4LW_WCHP = 1 << 10,
    CONFIG_4LW_ISRO = 1 << 11,
    CONFIG_4LW_DIRS = 1 << 12,
    CONFIG_4LW_CRST = 1 << 13,
    CONFIG_4LW_SRST = 1 << 14,
    CONFIG_4LW_HASH = 1 << 15,
    CONFIG_4LW_ALL = (1 << 16) - 1,
};

struct config_server {
    int id;
    char host[CONFIG_HOST_BYTES];
    int peer_port;
    int election_port;
    bool observer;
    /* The client address of a 3.5-style line (";[host:]port"), as
     * "host:port" (host 0.0.0.0 when only a port is given); "" when none. */
    char client_address[CONFIG_HOST_BYTES + 8];
    /* This member's own zoo.cfg line kept while the dynamic configuration
     * (which removed it) does not name it: it gives the member its peer
     * address, and is no part of the membership. */
    bool not_member;
};

/* TLS on the client port (config_tls.c): ZooKeeper's secureClientPort and ssl.* keys. */
#define CONFIG_TLS_PASSWORD_BYTES 256
#define CONFIG_TLS_CIPHERS_BYTES 2048
#define CONFIG_TLS_DN_BYTES 1024
/* The most snapshots autopurge.snapRetainCount may keep: the store's
 * ZN_STORE_SNAPSHOTS_KEPT_MAX (server.c checks they agree). */
#define CONFIG_SNAP_RETAIN_MIN 3
#define CONFIG_SNAP_RETAIN_MAX 64
#define CONFIG_PURGE_INTERVAL_MAX_HOURS 1000000L

enum config_store_type { CONFIG_STORE_NONE = 0, CONFIG_STORE_PEM, CONFIG_STORE_PKCS12 };
enum config_client_auth { CONFIG_CLIENT_AUTH_NEED = 0, CONFIG_CLIENT_AUTH_WANT, CONFIG_CLIENT_AUTH_NONE };
struct config_tls {
    int secure_client_port;                   /* secureClientPort; 0: no TLS listener */
    char secure_client_port_address[CONFIG_HOST_BYTES]; /* secureClientPortAddress; default 0.0.0.0 */
    char key_store[PATH_MAX];                 /* ssl.keyStore.location: key and certificate chain */
    char key_store_password[CONFIG_TLS_PASSWORD_BYTES];
    enum config_store_type key_store_type;    /* ssl.keyStore.type, else from the file's extension */
    char trust_store[PATH_MAX];               /* ssl.trustStore.location: the CAs clients are checked
                                               * against; "" = the system's */
    char trust_store_password[CONFIG_TLS_PASSWORD_BYTES];
    enum config_store_type trust_store_type;
    enum config_client_auth client_auth;      /* ssl.clientAuth; default need, as in ZooKeeper */
    /* ssl.protocol and ssl.enabledProtocols: the versions allowed, as a
     * range of CONFIG_TLS_1_2 / CONFIG_TLS_1_3 (TLS's own version numbers). */
    int min_version, max_version;
    bool protocols_listed;                    /* ssl.enabledProtocols was given (ssl.protocol then only
                                               * names the context, as in Java) */
    char ciphersuites[CONFIG_TLS_CIPHERS_BYTES]; /* ssl.ciphersuites as given (IANA names, Java's),
                                                  * mapped to OpenSSL's when the context is built */
    int handshake_timeout_ms;                 /* ssl.handshakeDetectionTimeoutMillis: a connection on the
                                               * TLS port whose handshake is not done by then is closed;
                                               * default 5000, as ZooKeeper's */
    bool ssl_keys_set;                        /* an ssl.* key was given (they need secureClientPort or
                                               * client.portUnification) */
    bool port_unification;                    /* client.portUnification: clientPort takes TLS clients
                                               * too, told from plain ones by their first byte */
    bool x509_provider;                       /* authProvider.N names X509AuthenticationProvider */
    char x509_super_user[CONFIG_TLS_DN_BYTES]; /* X509AuthenticationProvider.superUser: the subject
                                                * (RFC 2253) whose certificate makes a super user */
    /* Between members (cfg->quorum_tls, the ssl.quorum.* keys): */
    bool quorum;                              /* this is the quorum's set: its keys are ssl.quorum.* */
    bool hostname_verification;               /* ssl.quorum.hostnameVerification (default true): a
                                               * member's certificate must name its server.N address */
};
#define CONFIG_TLS_1_2 0x0303
/* ssl.handshakeDetectionTimeoutMillis's default (X509Util's) */
#define CONFIG_TLS_HANDSHAKE_TIMEOUT_MS 5000
#define CONFIG_TLS_1_3 0x0304

/* SASL for clients (config_sasl.c): the JAAS file's Server section, as ZooKeeper reads it. */
#define CONFIG_SASL_MAX_USERS 64
#define CONFIG_SASL_NAME_BYTES 256
#define CONFIG_SASL_PASSWORD_BYTES 256
struct config_sasl_user {
    char name[CONFIG_SASL_NAME_BYTES];         /* user_NAME=... */
    char password[CONFIG_SASL_PASSWORD_BYTES];
};
/* The schemes of enforce.auth.schemes, as bits. */
enum config_auth_scheme {
    CONFIG_SCHEME_IP = 1 << 0,
    CONFIG_SCHEME_DIGEST = 1 << 1,
    CONFIG_SCHEME_X509 = 1 << 2,
    CONFIG_SCHEME_SASL = 1 << 3,
};
struct config_sasl {
    char login_config[PATH_MAX];    /* the JAAS file: java.security.auth.login.config in zoo.cfg,
                                     * else -Djava.security.auth.login.config= in SERVER_JVMFLAGS */
    bool login_config_from_env;     /* ... it came from SERVER_JVMFLAGS */
    bool provider;                  /* authProvider.N names SASLAuthenticationProvider: the
                                     * sasl: ACL scheme is valid */
    bool enabled;                   /* the JAAS file has a Server section: SASL is served */
    int user_count;                 /* its user_NAME entries (DIGEST-MD5) */
    struct config_sasl_user users[CONFIG_SASL_MAX_USERS];
    bool enforce_auth;              /* enforce.auth.enabled (or sessionRequireClientSASLAuth) */
    unsigned enforce_schemes;       /* enforce.auth.schemes: config_auth_scheme bits */
    bool require_sasl;              /* sessionRequireClientSASLAuth=true */
    char super_user[CONFIG_SASL_NAME_BYTES];   /* superUser: the SASL id that is also "super" */
    /* GSSAPI: the Server section's Krb5LoginModule entry instead of users */
    bool gssapi;
    char keytab[PATH_MAX];                     /* keyTab= */
    char principal[CONFIG_SASL_NAME_BYTES];    /* principal="service/host@REALM" */
    bool remove_host_from_principal;           /* kerberos.removeHostFromPrincipal */
    bool remove_realm_from_principal;          /* kerberos.removeRealmFromPrincipal */
    /* Between members (quorum.auth.*; DIGEST-MD5 from the JAAS file's quorum sections) */
    bool quorum_enable;                        /* quorum.auth.enableSasl */
    bool quorum_learner_require;               /* quorum.auth.learnerRequireSasl: authenticate to each
                                                * member connected to, drop it if that fails */
    bool quorum_server_require;                /* quorum.auth.serverRequireSasl: refuse a member that
                                                * does not authenticate */
    char quorum_learner_context[CONFIG_SASL_NAME_BYTES]; /* quorum.auth.learner.saslLoginContext
                                                          * (QuorumLearner) */
    char quorum_server_context[CONFIG_SASL_NAME_BYTES];  /* quorum.auth.server.saslLoginContext
                                                          * (QuorumServer) */
    int quorum_user_count;                     /* the server context's user_NAME entries */
    struct config_sasl_user quorum_users[CONFIG_SASL_MAX_USERS];
    struct config_sasl_user quorum_learner;    /* the learner context's username and password */
};

/* A key harmless to ignore that the file holds (config_keys.c). */
struct config_ignored {
    const char *key; /* static */
    const char *why; /* static */
};

/* TEST ONLY: bugs tests/faults builds in on purpose to prove its checkers catch them. */
enum { CONFIG_PLANTED_BUG_NONE = 0, CONFIG_PLANTED_BUG_STALE_SYNC = 1, CONFIG_PLANTED_BUG_DIVERGED_DIGEST = 2 };

/* The largest jute.maxbuffer: a txn carries a packet's data plus its path,
 * ACL and header, and must fit in one log entry (ZAB_ENTRY_BYTES_MAX, 32 MiB). */
#define CONFIG_JUTE_MAX_BUFFER_MAX (32L * 1024 * 1024 - 64L * 1024)

/* snapCount's largest value.  A leader's replication core keeps the log since
 * its last snapshot in memory (ZAB_LOG_ENTRIES_MAX entries at most, twice
 * this: the entries that come while a snapshot is written count too); a
 * larger snapCount used to be taken and the ensemble then refused every
 * write once that many were in memory (ensemble_start.c checks the bound). */
#define CONFIG_SNAP_COUNT_MAX 8388608L

struct config {
    int tick_time_ms;            /* tickTime (required by ZooKeeper; default 2000 here) */
    int init_limit;              /* initLimit, in ticks */
    int sync_limit;              /* syncLimit, in ticks */
    char data_dir[PATH_MAX];     /* dataDir (required) */
    char data_log_dir[PATH_MAX]; /* dataLogDir; defaults to dataDir */
    int client_port;             /* clientPort (required) */
    char client_port_address[CONFIG_HOST_BYTES]; /* default 0.0.0.0 */
    int max_client_cnxns;        /* per client address; 0 = no limit; default 60 */
    int max_cnxns;               /* maxCnxns: all client connections; 0 = no limit (default) */
    int listen_backlog;          /* clientPortListenBacklog; default 1024 here (-1 in ZooKeeper: the JVM's 50) */
    int min_session_timeout_ms;  /* default 2 * tickTime */
    int max_session_timeout_ms;  /* default 20 * tickTime */
    unsigned four_letter_words;  /* whitelist; default srvr only, as ZooKeeper 3.5+ */
    size_t jute_max_buffer;      /* jute.maxbuffer; default 0xfffff */
    long snap_count;             /* snapCount: txns between snapshots; default 100000,
                                  * at most CONFIG_SNAP_COUNT_MAX */
    unsigned snap_retain_count;  /* autopurge.snapRetainCount: snapshots kept (and the log
                                    after the oldest of them); default and least 3, as
                                    ZooKeeper; at most CONFIG_SNAP_RETAIN_MAX */
    long purge_interval_hours;   /* autopurge.purgeInterval: -1 (absent): purge at every
                                    snapshot; 0: never purge; N: a purge every N hours */
    uint64_t log_segment_bytes;  /* preAllocSize (KB) in bytes: each log segment file's
                                    preallocated size; 0: the store's default (64 MB) */
    uint64_t log_size_limit;     /* txnLogSizeLimitInKb in bytes: no segment is larger;
                                    0: off (a non-positive value, the default) */
    long long snap_size_limit;   /* snapSizeLimitInKb, in bytes: log bytes between snapshots;
                                    default 4 GiB; 0: no limit (a non-positive value) */
    int global_outstanding_limit;/* globalOutstandingLimit; default 1000 */
    int my_id;                   /* from dataDir/myid or --id; 0 standalone */
    struct config_server servers[CONFIG_MAX_SERVERS];
    int server_count;            /* 0 = standalone (config_standalone) */
    bool read_only_mode;         /* readonlymode.enabled: serve read-only sessions without a quorum */
    char log_level[16];          /* znoded's own key logLevel: debug|info|warn|error */
    /* ACLs and extended node types: ZooKeeper reads these as system
     * properties, which a zoo.cfg key becomes with "zookeeper." in front;
     * both spellings are accepted. */
    bool skip_acl;               /* skipACL=yes: no ACL is checked */
    char super_digest[CONFIG_SUPER_DIGEST_BYTES]; /* DigestAuthenticationProvider.superDigest "super:base64" */
    bool extended_types_enabled; /* extendedTypesEnabled: TTL nodes allowed */
    bool enforce_quota;          /* enforceQuota: hard quotas refuse writes (QUOTAEXCEEDED) */
    /* ContainerManager's system properties (no "zookeeper." prefix in ZooKeeper). */
    int container_check_interval_ms;      /* znode.container.checkIntervalMs; default 60000 */
    int container_max_per_minute;         /* znode.container.maxPerMinute; default 10000 */
    long container_max_never_used_interval_ms; /* znode.container.maxNeverUsedIntervalMs; 0 = never */
    /* metricsProvider.*: ZooKeeper's Prometheus provider, served by metrics.c. */
    bool metrics_prometheus;     /* metricsProvider.className names PrometheusMetricsProvider */
    int metrics_http_port;       /* metricsProvider.httpPort; default 7000 */
    char metrics_http_host[CONFIG_HOST_BYTES]; /* metricsProvider.httpHost; default 0.0.0.0 */
    /* admin.*: ZooKeeper's AdminServer, served by admin.c. */
    bool admin_enabled;          /* admin.enableServer; default true, as in ZooKeeper */
    bool admin_explicit;         /* zoo.cfg set admin.enableServer=true or admin.serverPort: a port
                                  * that cannot be bound then stops the start */
    int admin_port;              /* admin.serverPort; default 8080 */
    char admin_address[CONFIG_HOST_BYTES]; /* admin.serverAddress; default 0.0.0.0 */
    char admin_command_url[CONFIG_ADMIN_URL_BYTES]; /* admin.commandURL; default /commands */
    int admin_idle_timeout_ms;   /* admin.idleTimeout; default 30000 */
    char path[PATH_MAX];         /* the zoo.cfg config_read read ("" if none): the AdminServer's
                                  * initial_configuration shows it */
    /* Dynamic reconfiguration (ZooKeeper 3.5+). */
    bool reconfig_enabled;       /* reconfigEnabled: the reconfig operation is allowed; default false */
    bool join_ensemble;          /* znoded's joinEnsemble: a new member joining a running ensemble
                                  * (its other server lines are that ensemble); ignored once a
                                  * dynamic configuration file exists */
    uint64_t config_version;     /* the membership's version: 0 for zoo.cfg's server lines, else
                                  * the zxid of the reconfig that made the dynamic file read */
    bool dynamic_loaded;         /* servers[] came from dataDir/zoo.cfg.dynamic.<version> */
    /* dynamicConfigFile: the initial membership (server.N lines) in a file of
     * its own, as ZooKeeper 3.5+ keeps it; "" when zoo.cfg holds the lines. */
    char dynamic_config_file[PATH_MAX];
    uint64_t dynamic_file_version; /* its version (name suffix or version line); not the
                                    * membership's: a new ensemble's history starts at 0 */
    bool peer_type_set;          /* peerType was given ... */
    bool peer_type_observer;     /* ... as observer */
    bool static_server_lines;    /* a server.N line came from zoo.cfg itself */
    struct config_tls tls;
    /* TLS between members (config_tls.c): sslQuorum, portUnification and the ssl.quorum.* keys */
    struct config_tls quorum_tls;
    bool ssl_quorum;             /* sslQuorum: members connect to each other over TLS */
    bool port_unification;       /* portUnification: the quorum port accepts TLS and plain members */
    bool ssl_quorum_reload;      /* sslQuorumReloadCertFiles: reload ssl.quorum.* stores on change */
    struct config_sasl sasl;
    struct config_ignored ignored[CONFIG_MAX_IGNORED];
    int ignored_count;
    /* TEST ONLY (tests/faults, issue 6): znodefs.testOnly.plantedBug; never set in production. */
    int planted_bug;                      /* CONFIG_PLANTED_BUG_*; default NONE */
    /* TEST ONLY: znodefs.testOnly.storeQueueMaxBytes, the store's append queue
     * (0: its default), so a test can fill it without a slow disk. */
    size_t store_queue_max_bytes;
};

/* No server.N lines: one server, which runs as an ensemble of one (a single
 * voter of its own, no peers), and says "standalone" where ZooKeeper does. */
static inline bool config_standalone(const struct config *cfg) { return cfg->server_count == 0; }

/* Fills *cfg with ZooKeeper's defaults (fields that have none are zero). */
void config_defaults(struct config *cfg);

/*
 * Reads zoo.cfg at path into *cfg (call config_defaults first).  Returns 0,
 * or -1 with a message naming the file, line and key in err (errlen bytes,
 * always NUL-terminated).  Derived defaults (session timeouts, dataLogDir)
 * are filled in after the whole file is read.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* As config_load, without config_finish (so that settings can be added after). */
int config_read(struct config *cfg, const char *path, char *err, size_t errlen);

/* Parses one "key=value" setting, as a line of zoo.cfg would be. Same contract. */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Checks required keys and consistency, fills derived defaults. Same contract. */
int config_finish(struct config *cfg, char *err, size_t errlen);

/* ---- the membership (config_membership.c) ---- */

/* The dynamic configuration file of a version: dataDir/zoo.cfg.dynamic.<hex>
 * (ZooKeeper's name: the version in hex after the file's base name). */
#define CONFIG_DYNAMIC_PREFIX "zoo.cfg.dynamic."

/* Parses one ZooKeeper server string: key "server.N", value
 * "host:peerPort:electionPort[:participant|:observer][;[clientHost:]clientPort]",
 * into *out.  Returns 0, or -1 with the reason in err. */
int config_parse_server(const char *key, const char *value, struct config_server *out, char *err,
                        size_t errlen);

/* Replaces cfg's server list with the one in text (server.N=... lines and a
 * version=<hex> line, as /zookeeper/config and the dynamic file hold it;
 * newlines or commas between entries).  On error cfg is unchanged and -1 is
 * returned with the reason in err. */
int config_set_membership(struct config *cfg, const char *text, char *err, size_t errlen);

/* Writes text durably as dataDir/zoo.cfg.dynamic.<version hex>: a temporary
 * file, fsync, rename, fsync of the directory, so a crash leaves the old
 * file or the new one, whole.  Older dynamic files are then removed.
 * Returns 0 or ZN_IO (logged). */
int config_write_dynamic(const struct config *cfg, uint64_t version, const char *text, size_t len);

/* Writes the printf-style message into err (errlen bytes, NUL terminated)
 * and returns -1: the config functions' way to refuse. */
int config_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* config_keys.c: a key config_set does not act on.  Returns 0 when it is
 * harmless to ignore (recorded in cfg->ignored) or holds the one value that
 * describes what znoded does anyway; -1 with err naming the key and why
 * when it is refused (unsupported, or unknown). */
int config_key_other(struct config *cfg, const char *key, const char *value, char *err,
                     size_t errlen);

/* config_tls.c: one secureClientPort / ssl.* / authProvider key.  Returns 0
 * when it was one and its value is good, -1 with err naming the key when the
 * value is bad, 1 when the key is not one of them. */
int config_tls_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* config_tls.c: the TLS settings as a whole (a secure port needs a key
 * store, ...).  Same contract as config_finish. */
int config_tls_finish(struct config *cfg, char *err, size_t errlen);

/* config_sasl.c: one SASL key (the JAAS file, authProvider.N=...SASLAuthenticationProvider,
 * enforce.auth.*).  Same contract as config_tls_set. */
int config_sasl_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* config_sasl.c: reads the JAAS file (from zoo.cfg, else SERVER_JVMFLAGS in
 * the environment) and checks enforce.auth.*.  Same contract as config_finish. */
int config_sasl_finish(struct config *cfg, char *err, size_t errlen);

/* Maps a four-letter word to its config_4lw bit, or 0 if it is not one. */
unsigned config_4lw_bit(const char word[4]);

#endif
