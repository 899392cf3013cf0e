/*
 * Internals of libznode's client, shared by lib/client*.c only.  The public
 * contract is include/znode/client.h; nothing here is API.
 */
#ifndef ZNODE_CLIENT_INTERNAL_H
#define ZNODE_CLIENT_INTERNAL_H

#include <uv.h>

#include "htable.h"
#include "jute.h"

struct tls_stream;
struct client_sasl;
#include "log.h"
#include "znode/client.h"

/* Connection state of a client (not the session events it reports). */
enum client_state {
    CLIENT_RESOLVING,  /* looking up the current host */
    CLIENT_CONNECTING, /* TCP connect in progress */
    CLIENT_HANDSHAKE,  /* ConnectRequest sent, waiting for the ConnectResponse */
    CLIENT_AUTHENTICATING, /* session established, SASL exchange in progress (options.sasl_*) */
    CLIENT_CONNECTED,
    CLIENT_WAITING,    /* between attempts, after every host failed */
    CLIENT_CLOSING,    /* CloseSession sent, waiting for its reply */
    CLIENT_ENDED,      /* session over (expired, auth failed, closed): refuses work */
};

/* After trying every host without success, wait this long before the next round. */
#define CLIENT_RECONNECT_DELAY_MS 200
/* Upper bound on waiting for the reply to CloseSession. */
#define CLIENT_CLOSE_WAIT_MS 3000
/* Read buffer growth step. */
#define CLIENT_READ_CHUNK_BYTES (64 * 1024)

struct client_request {
    struct client_request *next;
    int32_t xid;
    int32_t type;
    uint8_t *frame; /* encoded, framed; owned until written */
    size_t frame_len;
    uint64_t deadline_ms; /* when an unsent request gives up (loop time) */
    zn_result_cb cb;
    void *arg;
    zn_watch_cb watch_cb;
    void *watch_arg;
    char *watch_path; /* client-relative path the watch is set on (malloc'd) */
};

struct client_queue {
    struct client_request *head;
    struct client_request *tail;
    int32_t count;
};

struct client_host {
    char *name;
    char port[8];
};

/* One registered watcher (callback + arg), in a path's list for one kind. */
struct client_watcher {
    zn_watch_cb cb;
    void *arg;
};

struct client_watch_entry {
    struct zn_hlink link;            /* in client_watch_table.entries */
    char *path;                      /* client-relative */
    struct client_watcher *list[3];  /* by ZN_WATCHES_DATA, _EXIST, _CHILD */
    int32_t count[3];
    int32_t cap[3];
};

struct client_watch_table {
    struct zn_htable entries; /* by path; nbuckets 0 before the first watch */
};

struct client_auth {
    struct client_auth *next;
    char *scheme;
    uint8_t *cert;
    int32_t cert_len;
};

/* A pending add_auth completion; replies to xid -4 come in order. */
struct client_auth_wait {
    struct client_auth_wait *next;
    zn_result_cb cb;
    void *arg;
};

struct client_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    struct zn_client *client;
    bool closing;
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
    /* Frames written since the last flush: sent as one write from the loop's
     * prepare phase (or at once past CLIENT_OUT_FLUSH_BYTES), so requests
     * submitted in one loop turn cost one syscall, not one each. */
    uint8_t *out;
    size_t out_len;
    size_t out_cap;
    struct tls_stream *tls;  /* with options.tls_ca_file: this connection's TLS (owned) */
    struct jute_writer wire; /* TLS: sealed bytes and handshake records not yet written */
};

/* Pending output that is written at once instead of waiting for the prepare phase. */
#define CLIENT_OUT_FLUSH_BYTES (64 * 1024)

struct zn_client {
    uv_loop_t *loop;
    struct ssl_ctx_st *tls_ctx; /* from options.tls_*_file (owned); NULL: plain TCP */
    struct client_sasl *sasl;   /* from options.sasl_* (owned); NULL: no SASL */
    int32_t sasl_xid;           /* AUTHENTICATING: the xid of the SASL packet awaiting its reply */
    bool sasl_last_sent;        /* AUTHENTICATING: that packet was the exchange's last */
    enum client_state state;
    int last_event; /* last zn_session_event delivered */
    struct zn_client_options options;
    int log_level;

    char *chroot; /* NULL or "/a/b" */
    size_t chroot_len;
    struct client_host hosts[ZN_CLIENT_MAX_HOSTS];
    int host_count;
    int host_cursor;        /* index of the host being tried / connected */
    int failed_attempts;    /* consecutive failed attempts since the last connection */
    char current_server[300];
    char last_failure[400];  /* "host:port: why" of the last connection lost; "" if none */

    int64_t session_id;
    uint8_t passwd[ZN_PASSWD_BYTES];
    int32_t negotiated_timeout_ms;
    int64_t last_zxid;
    bool ever_connected;
    bool read_only_server;

    int32_t next_xid;
    struct client_queue unsent;   /* submitted, not yet written */
    struct client_queue inflight; /* written, waiting for their reply, FIFO */
    struct client_watch_table watches;
    struct client_auth *auths;
    struct client_auth_wait *auth_waits;

    struct client_conn *conn; /* current connection, or NULL */
    uv_getaddrinfo_t gai_req;
    bool gai_active;
    uv_timer_t timer;       /* connect/read timeouts, pings, queue deadlines, reconnect delay */
    uv_timer_t sync_timer;  /* wakes zn_sync_* calls at their deadline */
    uv_prepare_t flush_prepare; /* active while conn->out holds bytes: writes them before the loop blocks */
    uint64_t attempt_started_ms;
    uint64_t last_send_ms;
    uint64_t last_recv_ms;
    uint64_t reconnect_at_ms;
    uint64_t close_deadline_ms;
    int32_t close_xid;

    bool write_failed;   /* a write failed inside a public call: handled from the timer */
    bool close_requested;
    bool finishing;      /* teardown started; handles being closed */
    int open_handles;    /* libuv handles/requests whose callbacks are still due */
    int live_conns;      /* connections not yet freed */
    zn_close_cb close_cb;
    void *close_arg;
    unsigned int random_state;
};

/* Logs at level unless below the client's own options.log_level (or the process's threshold). */
#define CLIENT_LOG(c, level, ...)                                                         \
    do {                                                                                  \
        if ((level) >= ((c)->log_level >= 0 ? (c)->log_level : zn_log_threshold))        \
            zn_log_write((level), __VA_ARGS__);                                           \
    } while (0)

/* ---- client.c ---- */
/* Checks a caller's path; 0 or ZN_BADARGUMENTS. */
int client_check_path(const struct zn_client *c, const char *path);
/* chroot + path, malloc'd; NULL on ENOMEM. */
char *client_server_path(const struct zn_client *c, const char *path);
/* Strips the chroot from a server path in place (returns a pointer into it). */
const char *client_strip_chroot(const struct zn_client *c, const char *server_path);
/* 0 if the client accepts new requests, else the code to return. */
int client_usable(const struct zn_client *c);
/* Largest bytes of data accepted. */
int32_t client_max_data(const struct zn_client *c);
/* One handle or request called back; frees the client after the last one once closing. */
void client_release(struct zn_client *c);

/* ---- client_conn.c ---- */
/* Starts an attempt on the next host of the (shuffled) list. */
void client_connect_next(struct zn_client *c);
/* Queues bytes (copied) on the current connection; they are written before
 * the loop next waits for I/O.  Returns 0 or ZN_NOMEMORY / ZN_CONNECTIONLOSS. */
int client_conn_write(struct zn_client *c, const uint8_t *bytes, size_t len);
/* Closes the current connection, if any (freed in its close callback). */
void client_conn_close(struct zn_client *c);
/* The host of the server being tried, as the connect string names it (no port). */
void client_current_host(const struct zn_client *c, char *host, size_t len);

/* ---- client_session.c ---- */
/* The ConnectResponse in body: the session is established, expired, or the connection lost. */
void client_handle_connect_response(struct zn_client *c, const uint8_t *body, size_t len);
/* The server's answer to a SASL packet: SetSASLResponse, or an error (AUTHFAILED). */
void client_handle_sasl_reply(struct zn_client *c, const struct zn_reply_header *hdr, struct jute_reader *r);
/* The current connection failed or timed out: fail what was sent, try the next host. */
void client_connection_lost(struct zn_client *c, const char *why);
/* (Re)starts the timer at the state's next deadline. */
void client_arm_timer(struct zn_client *c);
/* The session is over for good (expired or auth failed): report, fail everything, stop. */
void client_end_session(struct zn_client *c, int event, int rc);
/* Fails what is left, releases every handle; the client is freed once they all called back. */
void client_finish_close(struct zn_client *c);

/* ---- client_request.c ---- */
/*
 * Encodes header + req (type req->type), queues it and sends it when
 * connected.  Ownership of watch_path passes to the client on success.
 * Returns 0 (cb will be called once) or a synchronous error (never called).
 */
int client_submit(struct zn_client *c, const struct zn_request *req, zn_result_cb cb, void *arg,
                  zn_watch_cb watch_cb, void *watch_arg, char *watch_path);
void client_queue_push(struct client_queue *q, struct client_request *r);
struct client_request *client_queue_pop(struct client_queue *q);
/* Frames header (xid, req->type) + req and queues it on the connection: 0, or the
 * encoder's / client_conn_write's error. */
int client_write_request(struct zn_client *c, int32_t xid, const struct zn_request *req);
/* Writes every queued request (CONNECTED only). */
void client_flush_unsent(struct zn_client *c);
/* Fails every request of q with rc. */
void client_fail_queue(struct zn_client *c, struct client_queue *q, int rc);
/* Answers every pending add_auth with rc. */
void client_fail_auth_waits(struct zn_client *c, int rc);
/* Handles one frame after the handshake.  Returns false if the connection went away. */
bool client_handle_frame(struct zn_client *c, const uint8_t *body, size_t len);

/* ---- client_ops.c ---- */
/* Decodes the body of req's reply and calls its callback (and registers its watch). */
void client_complete(struct zn_client *c, struct client_request *req,
                     const struct zn_reply_header *hdr, struct jute_reader *r);
/* Calls req's callback with only rc. */
void client_fail_request(struct zn_client *c, struct client_request *req, int rc);

/* ---- client_watch.c ---- */
int client_watch_add(struct zn_client *c, int kind, const char *path, zn_watch_cb cb, void *arg);
/* Delivers a server notification (path already relative) to the watchers it triggers. */
void client_watch_deliver(struct zn_client *c, int type, int state, const char *path);
/* Calls every watcher once with ZN_EVENT_NONE and state, and empties the table. */
void client_watch_end_all(struct zn_client *c, int state);
/*
 * Appends SetWatches packets (framed, xid -8) re-registering every watch with
 * relative_zxid to w, splitting every ZN_CLIENT_SET_WATCHES_MAX_BYTES of paths.
 * Returns the number of packets, or a negative error.
 */
int client_watch_encode_set_watches(struct zn_client *c, struct jute_writer *w);
void client_watch_table_free(struct client_watch_table *t);

#endif
