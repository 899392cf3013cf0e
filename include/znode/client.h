/*
 * libznode: an asynchronous ZooKeeper client on libuv.
 *
 * This header is the manual.  A client (struct zn_client) holds one ZooKeeper
 * session, reached through one TCP connection at a time to one server of an
 * ensemble, and runs on a libuv loop that the caller owns and runs.  Every
 * operation is asynchronous and completes through a callback called from
 * that loop.  A blocking layer (zn_sync_*) runs the loop on the calling
 * thread until one operation completes, for command-line tools and tests.
 *
 * Threads: a client is not thread-safe.  Every function taking a client must
 * be called on the thread that runs its loop.
 *
 * Errors: functions return 0 or a negative code of znode/errors.h
 * (zn_strerror() describes any of them).  ZooKeeper's own codes (ZN_NONODE,
 * ZN_NODEEXISTS, ...) arrive in result->rc of callbacks.
 *
 * Callback rule (libuv's): if a function that takes a callback returns an
 * error, the callback is never called; otherwise it is called exactly once,
 * never from inside the function that took it (always later, from the loop).
 *
 * Connection and session lifecycle:
 *   - zn_client_new() starts connecting at once (on the next loop turn).
 *   - Requests submitted before the session is established, or while the
 *     client is reconnecting, are queued and sent once connected; a queued
 *     request fails with ZN_CONNECTIONLOSS if it has waited
 *     options.queue_timeout_ms without a connection.
 *   - A request already sent when the connection is lost fails with
 *     ZN_CONNECTIONLOSS (it may or may not have been applied: the caller
 *     decides whether to retry).  The client then reconnects to the next
 *     server, presenting its session id and password, so ephemeral nodes and
 *     watches survive, and re-registers its watches (SetWatches).
 *   - If a server answers that the session is gone, the client reports
 *     ZN_SESSION_EXPIRED, fails everything with ZN_SESSIONEXPIRED and stops
 *     for good; a new client must be created.  The same holds for
 *     ZN_SESSION_AUTH_FAILED (with ZN_AUTHFAILED).
 *   - zn_client_close() ends the session and frees the client.
 *
 * Paths given to and returned by this API are relative to the chroot of the
 * connect string, if any: the chroot is prepended to every path sent and
 * stripped from every path received (created paths, sync, watch events).
 */
#ifndef ZNODE_CLIENT_H
#define ZNODE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "znode/errors.h"
#include "znode/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's loop; the client runs on one owned by the caller */
struct zn_client;

/* ---- limits and defaults ---- */

#define ZN_CLIENT_DEFAULT_SESSION_TIMEOUT_MS 30000
/* Largest frame accepted or sent, and largest znode data: jute.maxbuffer. */
#define ZN_CLIENT_DEFAULT_MAX_PACKET_BYTES ZN_DEFAULT_MAX_PACKET_BYTES
#define ZN_CLIENT_DEFAULT_MAX_DATA_BYTES ZN_DEFAULT_MAX_PACKET_BYTES
/* Bytes a frame from the server may carry beyond max_packet_bytes (a reply's
 * header and stat around data of the largest size; ZooKeeper's servers take
 * jute.maxbuffer.extrasize, 1024 by default, in the same way). */
#define ZN_CLIENT_REPLY_SLACK_BYTES 1024
/* Requests queued or in flight at once; past it, submission fails. */
#define ZN_CLIENT_DEFAULT_MAX_PENDING 100000
/* Servers in one connect string and bytes in one connect string. */
#define ZN_CLIENT_MAX_HOSTS 64
#define ZN_CLIENT_MAX_CONNECT_STRING_BYTES 4096
/* Longest path accepted from the caller (after the chroot is prepended): what
 * a server takes (znoded's limit, and ZooKeeper's jute.maxbuffer bounds the
 * request the same way); a request too big for a packet still fails TOOBIG. */
#define ZN_CLIENT_MAX_PATH_BYTES (1024 * 1024)
/* Ops in one multi. */
#define ZN_CLIENT_MAX_MULTI_OPS 1000
/* SetWatches packets are split once their paths pass this many bytes (as Java's client). */
#define ZN_CLIENT_SET_WATCHES_MAX_BYTES (128 * 1024)

/* ---- session events ---- */

enum zn_session_event {
    ZN_SESSION_CONNECTED = 1,           /* session established or resumed (read-write) */
    ZN_SESSION_CONNECTED_READ_ONLY = 2, /* connected to a read-only server */
    ZN_SESSION_DISCONNECTED = 3,        /* connection lost; the client is reconnecting */
    ZN_SESSION_EXPIRED = 4,             /* terminal: the server no longer knows the session */
    ZN_SESSION_AUTH_FAILED = 5,         /* terminal: add_auth or SASL credentials were rejected */
    ZN_SESSION_CLOSED = 6,              /* terminal: zn_client_close() finished the session */
};

/* Returns "CONNECTED", "DISCONNECTED", ... for a zn_session_event. */
const char *zn_session_event_name(int event);

/*
 * Called on every change of session state.  Called from the loop; it may
 * submit requests (asynchronous ones) but must not call zn_sync_* functions
 * or free the client (zn_client_close() is allowed).
 */
typedef void (*zn_session_cb)(struct zn_client *client, int event, void *arg);

/* ---- options ---- */

struct zn_client_options {
    int32_t session_timeout_ms;   /* requested; the server negotiates it. 0: default */
    bool read_only;               /* accept read-only servers (canBeReadOnly) */
    bool keep_host_order;         /* try servers in the given order instead of shuffled */
    int64_t session_id;           /* non-zero: resume this session ... */
    uint8_t session_passwd[ZN_PASSWD_BYTES]; /* ... with this password */
    zn_session_cb session_cb;     /* may be NULL */
    void *session_arg;
    int log_level;                /* ZN_LOG_* of lib/log.h (0 debug .. 4 off); -1: global threshold */
    int32_t queue_timeout_ms;     /* how long a request may wait for a connection. 0: session timeout */
    int32_t sync_timeout_ms;      /* deadline of each zn_sync_* call. 0: session timeout */
    int32_t max_packet_bytes;     /* 0: default */
    int32_t max_data_bytes;       /* 0: default */
    int32_t max_pending;          /* 0: default */
    /* TLS, for a server's secureClientPort.  With tls_ca_file set every
     * connection is TLS: the server's certificate must chain to these CAs
     * and name the host it was reached by (an IP address or a DNS name).
     * tls_cert_file and tls_key_file (PEM, the key unencrypted; the key may
     * be in the certificate's file) are the client's certificate, for a
     * server with ssl.clientAuth=need.  The files are read by zn_client_new;
     * the strings are not kept.  NULL: plain TCP / no client certificate. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    /* SASL, for a server with a JAAS Server section (ZooKeeper's
     * SASLAuthenticationProvider, znoded's the same).  With sasl_mechanism
     * set the client authenticates right after each session is established
     * or resumed, before SetWatches, add_auth credentials and any request:
     * ZN_SESSION_CONNECTED comes once the server accepted it, and the
     * session's ACL identity is then sasl:USER (DIGEST-MD5) or sasl:PRINCIPAL
     * (GSSAPI).  A rejection (AUTHFAILED: wrong password, unknown user) or a
     * local failure (no Kerberos ticket, no Cyrus plugin) ends the session
     * with ZN_SESSION_AUTH_FAILED; zn_client_last_failure() says which.
     *   sasl_mechanism  "DIGEST-MD5" or "GSSAPI"; NULL: no SASL
     *   sasl_user, sasl_password  DIGEST-MD5's user and password (both required;
     *                   not taken with GSSAPI)
     *   sasl_service    GSSAPI: the service of the server's principal (NULL:
     *                   "zookeeper", ZooKeeper's default)
     *   sasl_host       GSSAPI: its host (NULL: the host of the connect string
     *                   being tried, as kazoo does)
     * GSSAPI uses the Kerberos credentials of the environment (the ticket
     * cache KRB5CCNAME, or MIT's client key table KRB5_CLIENT_KTNAME).  The
     * strings are copied; anything else is ZN_BADARGUMENTS from zn_client_new. */
    const char *sasl_mechanism;
    const char *sasl_user;
    const char *sasl_password;
    const char *sasl_service;
    const char *sasl_host;
};

/*
 * SASL credentials from a JAAS file's Client section, as zkCli.sh reads
 * them (-Djava.security.auth.login.config=FILE): DigestLoginModule's
 * username and password give DIGEST-MD5; Krb5LoginModule with
 * useTicketCache=true gives GSSAPI with the environment's ticket cache.
 * Anything else the section holds (a key table, another module, an option
 * the module does not read) is refused, not ignored.  section NULL means
 * "Client".  Returns 0, or -1 with the reason (the file, and the line for
 * syntax errors) in err.  _parse takes the text (len bytes) instead.
 */
#define ZN_JAAS_VALUE_BYTES 1024
struct zn_jaas_client {
    char mechanism[16]; /* "DIGEST-MD5" or "GSSAPI": options.sasl_mechanism */
    char user[ZN_JAAS_VALUE_BYTES];     /* DIGEST-MD5: options.sasl_user */
    char password[ZN_JAAS_VALUE_BYTES]; /* DIGEST-MD5: options.sasl_password */
};
int zn_jaas_client_read(const char *path, const char *section, struct zn_jaas_client *out, char *err,
                        size_t errlen);
int zn_jaas_client_parse(const char *text, size_t len, const char *section, struct zn_jaas_client *out,
                         char *err, size_t errlen);

/* A password kept in a file (options.sasl_password): its first line, without
 * the line end, into out (outlen bytes).  Returns 0, or -1 with the reason
 * (the file's error, or no password / longer than outlen - 2) in err. */
int zn_read_password_file(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Fills *options with the defaults (all zero but log_level = -1). */
void zn_client_options_init(struct zn_client_options *options);

/* ---- client lifecycle ---- */

/*
 * Creates a client and starts connecting.
 *
 * loop: borrowed; must outlive the client (until the close callback ran).
 * connect_string: "host:port[,host:port...][/chroot]"; copied.  Hosts are
 *   IPv4 addresses or names (resolved on each attempt, IPv4).  A missing
 *   port means 2181.  The chroot must start with '/' and not end with one.
 * options: copied; NULL means defaults.
 * out: receives the client on success.
 *
 * Returns 0, ZN_BADARGUMENTS (malformed connect string or options, or TLS
 * files that cannot be used: logged), or ZN_NOMEMORY.  On error nothing is
 * allocated and no callback is ever called.
 */
int zn_client_new(struct uv_loop_s *loop, const char *connect_string,
                  const struct zn_client_options *options, struct zn_client **out);

typedef void (*zn_close_cb)(void *arg);

/*
 * Ends the session (sends CloseSession if connected and waits, boundedly,
 * for its answer), then frees the client.  Requests already sent complete
 * normally if the server answers them before the close; requests not yet
 * sent fail with ZN_CLOSING; every registered watcher is called once with
 * ZN_EVENT_NONE and ZN_STATE_CLOSED; the session callback gets
 * ZN_SESSION_CLOSED (unless the session had already ended); then close_cb
 * (may be NULL) is called and the client pointer becomes invalid.  The loop
 * must keep running until then.  Calling it twice is a programmer error.
 * When the client is not connected, pending callbacks (ZN_CLOSING) and the
 * session callback run from inside this call; close_cb always runs later,
 * from the loop.  It may be called from any callback of the client.
 */
void zn_client_close(struct zn_client *client, zn_close_cb close_cb, void *arg);

/* The session id (0 before the first connection). */
int64_t zn_client_session_id(const struct zn_client *client);
/* Copies the 16-byte session password into passwd. */
void zn_client_session_passwd(const struct zn_client *client, uint8_t passwd[ZN_PASSWD_BYTES]);
/* The timeout the server granted (0 before the first connection). */
int32_t zn_client_negotiated_timeout_ms(const struct zn_client *client);
/* True while a connection is established (read-write or read-only). */
bool zn_client_is_connected(const struct zn_client *client);
/* The last session event delivered (0 before any). */
int zn_client_state(const struct zn_client *client);
/* The largest zxid seen in any reply. */
int64_t zn_client_last_zxid(const struct zn_client *client);
/* Requests submitted and not yet answered (queued or in flight). */
int32_t zn_client_outstanding(const struct zn_client *client);
/* "host:port" of the server currently connected or being tried; borrowed until the next loop turn. */
const char *zn_client_current_server(const struct zn_client *client);
/* Why the last connection (or attempt) was lost, as "host:port: reason"
 * (a refused connection, a failed TLS handshake and the certificate's
 * fault, ...); "" when none was.  Owned by the client, valid until its next
 * loop callback. */
const char *zn_client_last_failure(const struct zn_client *client);

/* ---- results ---- */

/* An ACL entry.  In results, strings are borrowed for the callback's duration. */
struct zn_acl_entry {
    int32_t perms;      /* ZN_PERM_* bits */
    const char *scheme; /* "world", "digest", "ip", "auth", ... */
    const char *id;     /* "anyone", "user:base64hash", ... */
};

/* world:anyone with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE). */
extern const struct zn_acl_entry zn_acl_open_unsafe[1];
/* world:anyone read-only (ZooDefs.Ids.READ_ACL_UNSAFE). */
extern const struct zn_acl_entry zn_acl_read_unsafe[1];

struct zn_op_result;

/*
 * What a completed operation returns.  Everything it points to is borrowed
 * and valid only during the callback: copy what you keep.  Which fields are
 * set, when rc == 0 (otherwise only rc, and op_results for multi):
 *   create        path (the created path, chroot stripped; sequential suffix included)
 *   create2       path, stat
 *   delete        -
 *   exists        stat (rc == ZN_NONODE when the node does not exist)
 *   get           data, data_len (-1 for null data), stat
 *   set           stat
 *   get_children  children, child_count
 *   get_children2 children, child_count, stat
 *   get_acl       acl, acl_count, stat
 *   set_acl       stat
 *   sync          path
 *   multi         op_results, op_count (also when rc != 0: the per-op codes)
 *   add_auth      -
 */
struct zn_result {
    int rc;
    const char *path;
    const struct zn_stat *stat; /* NULL when not set */
    const uint8_t *data;
    int32_t data_len;
    char *const *children;
    int32_t child_count;
    const struct zn_acl_entry *acl;
    int32_t acl_count;
    const struct zn_op_result *op_results;
    int32_t op_count;
};

/* A multi op's own result: rc, and for create its path, for set its stat. */
struct zn_op_result {
    int rc;
    int32_t type;               /* ZN_OP_CREATE, ZN_OP_DELETE, ZN_OP_SETDATA, ZN_OP_CHECK, or ZN_OP_ERROR */
    const char *path;           /* create */
    const struct zn_stat *stat; /* set (and create2-style creates) */
};

typedef void (*zn_result_cb)(struct zn_client *client, const struct zn_result *result, void *arg);

/*
 * A watcher: called once for the event it was set for (type ZN_EVENT_*,
 * state ZN_STATE_SYNC_CONNECTED, path relative to the chroot), or once with
 * type ZN_EVENT_NONE and state ZN_STATE_EXPIRED / ZN_STATE_AUTH_FAILED /
 * ZN_STATE_CLOSED if the session ends first.  One (callback, arg) pair set on
 * one path several times, or for both data and children, is one watcher and
 * is called once per event.  Watches survive reconnects.  path is borrowed for
 * the call.  It may submit asynchronous requests (to re-arm), not zn_sync_*.
 */
typedef void (*zn_watch_cb)(struct zn_client *client, int type, int state, const char *path,
                            void *arg);

/*
 * Common to every operation below:
 *   client: the client.  path: copied; must start with '/'.
 *   cb: required; called exactly once with the result if 0 is returned.
 *   arg: passed to cb untouched.
 * Synchronous errors (the callback is then never called):
 *   ZN_BADARGUMENTS  path empty, not absolute, too long, ends with '/' (but "/"),
 *                    or another argument out of range;
 *   ZN_TOOBIG        data or the whole request over the size limits;
 *   ZN_SESSIONEXPIRED, ZN_AUTHFAILED  the session has ended;
 *   ZN_CLOSING       zn_client_close() was called;
 *   ZN_NOMEMORY, and ZN_APIERROR when max_pending requests are outstanding.
 * Asynchronous errors in result->rc: ZooKeeper's codes from the server,
 * ZN_CONNECTIONLOSS (connection lost with the request sent, or no connection
 * within queue_timeout_ms), ZN_SESSIONEXPIRED, ZN_CLOSING, ZN_MARSHALLINGERROR.
 */

/* Create flags, combinable: ephemeral, sequential, container, ttl (ttl_ms > 0). */
#define ZN_FLAG_EPHEMERAL 1
#define ZN_FLAG_SEQUENTIAL 2
#define ZN_FLAG_CONTAINER 4
#define ZN_FLAG_TTL 8

/*
 * Creates a node.  data/data_len: copied (data NULL with len -1 is null data).
 * acl/acl_count: copied; NULL means zn_acl_open_unsafe.  flags: ZN_FLAG_*;
 * container excludes ephemeral and sequential; ttl needs ttl_ms > 0 and
 * excludes ephemeral and container (ZN_BADARGUMENTS otherwise).
 * zn_create returns path; zn_create2 returns path and stat.
 */
int zn_create(struct zn_client *client, const char *path, const void *data, int32_t data_len,
              const struct zn_acl_entry *acl, int acl_count, int flags, int64_t ttl_ms,
              zn_result_cb cb, void *arg);
int zn_create2(struct zn_client *client, const char *path, const void *data, int32_t data_len,
               const struct zn_acl_entry *acl, int acl_count, int flags, int64_t ttl_ms,
               zn_result_cb cb, void *arg);
/* Deletes a node if its version matches (-1: any). */
int zn_delete(struct zn_client *client, const char *path, int32_t version, zn_result_cb cb,
              void *arg);
/*
 * exists/get/get_children/get_children2: watch_cb may be NULL (no watch).
 * Otherwise the watcher is set when the reply arrives: exists sets a data
 * watch if the node exists and an exists watch if not (fires on created,
 * changed, deleted); get sets a data watch (changed, deleted) only on
 * success; get_children a child watch (children changed, deleted) only on
 * success.  watch_arg is passed to watch_cb.
 */
int zn_exists(struct zn_client *client, const char *path, zn_watch_cb watch_cb, void *watch_arg,
              zn_result_cb cb, void *arg);
int zn_get(struct zn_client *client, const char *path, zn_watch_cb watch_cb, void *watch_arg,
           zn_result_cb cb, void *arg);
int zn_get_children(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                    void *watch_arg, zn_result_cb cb, void *arg);
int zn_get_children2(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                     void *watch_arg, zn_result_cb cb, void *arg);
/* Sets data (copied) if the version matches (-1: any). */
int zn_set(struct zn_client *client, const char *path, const void *data, int32_t data_len,
           int32_t version, zn_result_cb cb, void *arg);
int zn_get_acl(struct zn_client *client, const char *path, zn_result_cb cb, void *arg);
/* acl copied; version is the aversion to match (-1: any). */
int zn_set_acl(struct zn_client *client, const char *path, const struct zn_acl_entry *acl,
               int acl_count, int32_t version, zn_result_cb cb, void *arg);
/* Brings the connected server up to date with the leader for path. */
int zn_sync(struct zn_client *client, const char *path, zn_result_cb cb, void *arg);

/* One op of a multi.  Pointers are borrowed only during zn_multi (copied). */
struct zn_op {
    int32_t type;   /* ZN_OP_CREATE, ZN_OP_DELETE, ZN_OP_SETDATA, ZN_OP_CHECK */
    const char *path;
    const void *data;   /* create, set */
    int32_t data_len;
    const struct zn_acl_entry *acl; /* create; NULL: open */
    int acl_count;
    int flags;          /* create: ZN_FLAG_EPHEMERAL/SEQUENTIAL/CONTAINER */
    int32_t version;    /* delete, set, check */
    int kind;           /* create, znodefs extension: ZN_KIND_FILE / ZN_KIND_DIRECTORY stored
                         * with the node (see zn_ext_create2_kind); 0: none.  A server
                         * without the extension fails the multi with ZN_BADARGUMENTS. */
};

/* Runs ops atomically.  result->rc is 0 or the first failing op's code;
 * result->op_results holds one entry per op either way (when the server
 * answered the multi). */
int zn_multi(struct zn_client *client, const struct zn_op *ops, int op_count, zn_result_cb cb,
             void *arg);

/*
 * Adds credentials (scheme "digest", cert "user:password"; copied) to the
 * session; they are re-sent after every reconnect.  cb (may be NULL here,
 * unlike elsewhere) gets 0 or ZN_AUTHFAILED; a rejection is terminal for the
 * session (ZN_SESSION_AUTH_FAILED), as in ZooKeeper's clients.
 */
int zn_add_auth(struct zn_client *client, const char *scheme, const void *cert, int32_t cert_len,
                zn_result_cb cb, void *arg);

/* ---- blocking layer ----
 *
 * Each zn_sync_* call runs the client's loop (uv_run ONCE at a time) on the
 * calling thread until its operation completes or options.sync_timeout_ms
 * passes (then ZN_OPERATIONTIMEOUT; the operation itself still completes
 * later, its result discarded).  Other callbacks of the loop run meanwhile.
 * Not thread-safe; must never be called from any callback of the loop (it
 * would re-enter uv_run).  Results are copied into memory owned by the caller.
 * Return value: 0 or the operation's code (ZN_NONODE, ZN_CONNECTIONLOSS, ...)
 * or a synchronous error of the asynchronous variant.
 */

/* Waits until the session is connected: 0, ZN_SESSIONEXPIRED, ZN_AUTHFAILED or ZN_OPERATIONTIMEOUT. */
int zn_sync_wait_connected(struct zn_client *client);
/* created_path (may be NULL): receives a malloc'd copy the caller frees. */
int zn_sync_create(struct zn_client *client, const char *path, const void *data, int32_t data_len,
                   int flags, char **created_path);
int zn_sync_delete(struct zn_client *client, const char *path, int32_t version);
/* stat may be NULL.  Returns ZN_NONODE if the node does not exist. */
int zn_sync_exists(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                   void *watch_arg, struct zn_stat *stat);
/* *data: malloc'd (caller frees; NULL when null), *data_len: its length (-1 for null). */
int zn_sync_get(struct zn_client *client, const char *path, zn_watch_cb watch_cb, void *watch_arg,
                uint8_t **data, int32_t *data_len, struct zn_stat *stat);
int zn_sync_set(struct zn_client *client, const char *path, const void *data, int32_t data_len,
                int32_t version, struct zn_stat *stat);
/* *children: malloc'd array of malloc'd strings, freed with zn_strings_free(). stat may be NULL. */
int zn_sync_get_children(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                         void *watch_arg, char ***children, int32_t *count, struct zn_stat *stat);
int zn_sync_sync(struct zn_client *client, const char *path);
/* Runs the loop one round (uv_run ONCE: blocks until some event), for
 * loops that wait on watchers.  Returns 0, or the code new requests would
 * get if the session has ended (ZN_SESSIONEXPIRED, ...). */
int zn_sync_run_once(struct zn_client *client);
/* Closes the client and runs the loop until it is freed (bounded by the session close). */
void zn_sync_close(struct zn_client *client);

void zn_strings_free(char **strings, int32_t count);

/*
 * znodefs extension: node kinds (lib/client_ext.c).  znoded stores with each
 * node whether it is a file or a directory (ZN_KIND_*, proto.h), so a mount
 * can show an empty directory as a directory; ZooKeeper clients never see it.
 * A server without the extension (Apache ZooKeeper) answers
 * zn_ext_create2_kind with ZN_BADARGUMENTS (an unknown create mode) and
 * zn_ext_get_children_kinds with ZN_UNIMPLEMENTED: callers fall back to
 * zn_create2 / zn_get_children2 and the children rule.
 */
/* zn_create2 with the open ACL, flags ZN_FLAG_EPHEMERAL/SEQUENTIAL only,
 * storing kind (ZN_KIND_FILE or ZN_KIND_DIRECTORY; else ZN_BADARGUMENTS at
 * once).  Result: path, stat. */
int zn_ext_create2_kind(struct zn_client *client, const char *path, const void *data,
                        int32_t data_len, int flags, int kind, zn_result_cb cb, void *arg);
/* zn_get_children2 (same watch rule) whose result also has data/data_len:
 * child_count + 1 ZN_KIND_* bytes, one per child in the order of children,
 * then the node's own. */
int zn_ext_get_children_kinds(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                              void *watch_arg, zn_result_cb cb, void *arg);
/* zn_ext_get_children_kinds whose data then ends with the node's ptime
 * (ZN_KINDS_PTIME_BYTES, GETCHILDRENKINDSTIME in proto.h): the time of the
 * txn that last made or deleted a child.  A server without it answers
 * ZN_UNIMPLEMENTED. */
int zn_ext_get_children_kinds_ptime(struct zn_client *client, const char *path, zn_watch_cb watch_cb,
                                    void *watch_arg, zn_result_cb cb, void *arg);
/*
 * znodefs extension: explicit times (ZN_OP_SETDATATIME, proto.h).  zn_set
 * whose transaction takes mtime_ms (ms since the epoch, >= 0; else
 * ZN_BADARGUMENTS at once) as its time, so the node's mtime becomes mtime_ms
 * (version + 1 and NodeDataChanged as any setData).  To set only the time,
 * pass the data the node has with its version: a concurrent write then makes
 * it fail with ZN_BADVERSION instead of being undone.  Result: stat.  A
 * server without the extension answers ZN_UNIMPLEMENTED.
 */
int zn_ext_set_with_mtime(struct zn_client *client, const char *path, const void *data,
                          int32_t data_len, int32_t version, int64_t mtime_ms, zn_result_cb cb,
                          void *arg);

#ifdef __cplusplus
}
#endif
#endif
