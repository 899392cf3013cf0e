/*
 * transport: the peer mesh of one ensemble member, on libuv, carrying opaque
 * frames between members.
 *
 * Shape of the mesh.  Every member listens on my_host:listen_port and keeps
 * ONE OUTGOING TCP connection to every other configured member, used only to
 * send; the connections it accepts are used only to receive (but for what the
 * accepting side answers while a connection is set up: TLS handshake records
 * and its acceptance byte, SASL answers; see "TLS" and "SASL" below).  So between two
 * members there are two connections, one per direction, and a frame sent to
 * peer P always travels on my outgoing connection to P.  Outgoing connections
 * are bound to my_host (port 0) before connecting, so a peer sees them coming
 * from my configured address; tests cut members apart with iptables rules
 * between loopback addresses (127.0.0.1, 127.0.0.2, ...).
 *
 * Wire format (version ZN_TRANSPORT_VERSION):
 *   frame = length u32 big-endian, then `length` payload bytes
 *           (1 <= length <= ZN_TRANSPORT_FRAME_MAX_BYTES)
 *   the first frame on a connection is the hello, 12 payload bytes:
 *           magic u32 ZN_TRANSPORT_MAGIC (ZN_TRANSPORT_MAGIC_AUTH: SASL
 *           frames follow, see struct transport_auth), version u32, sender
 *           id u32 (all big-endian).
 *   over TLS, the same bytes inside the TLS stream.
 * The receiver accepts the connection only if the hello is well-formed, the
 * version is its own, the id is a configured peer (not its own), and the
 * connection's source address is that peer's configured address; otherwise
 * it logs the reason and closes the connection.  A newer accepted connection
 * from a peer replaces (closes) the older one.  A frame longer than the
 * maximum, an empty frame, or a connection that sends no hello within
 * ZN_TRANSPORT_HELLO_TIMEOUT_MS is closed with a log line; it affects only
 * that connection.
 *
 * Delivery.  Frames sent on one outgoing connection arrive in order and at
 * most once.  Nothing is retransmitted here: when a link goes down, frames
 * queued on it are discarded (counted in drops), and transport_send fails
 * until the link is up again.  The protocol above (Zab) retransmits and
 * detects silent peers with its own heartbeats; TCP keepalive is on as a
 * backstop for dead connections.
 *
 * TLS (transport_start_tls; zoo.cfg's sslQuorum, portUnification and
 * ssl.quorum.*).  Each connection may run TLS 1.2/1.3 (lib/tls_stream.c:
 * OpenSSL over memory BIOs, so nothing blocks the loop), the frames above
 * then travel inside it unchanged.  An outgoing connection does its
 * handshake first, checking the peer's certificate against the trust store
 * and (verify_host) its configured address, and only then sends its hello
 * and reports the link up; an incoming one is accepted only after its
 * handshake verified the connecting member's certificate (the context's
 * verify mode) and, once the hello names the member, that the certificate
 * names its configured address (verify_host).  A handshake not done within
 * handshake_timeout_ms is abandoned.  With accept_plain as well as TLS, the
 * first byte tells them apart: 0x16 opens a TLS handshake record, a plain
 * hello starts with its length's zero high byte.  A failed handshake is
 * logged on both sides with OpenSSL's reason (once per run of failures on
 * the connecting side, and at most once per TRANSPORT_TLS_LOG_MS per
 * address on the accepting side).
 *
 * Reconnection.  A down outgoing link is retried forever, without blocking,
 * after a backoff that starts at ZN_TRANSPORT_BACKOFF_MIN_MS and doubles up
 * to ZN_TRANSPORT_BACKOFF_MAX_MS (reset once a connection has stayed up for
 * ZN_TRANSPORT_BACKOFF_MAX_MS).  A connection attempt that has not completed
 * within ZN_TRANSPORT_CONNECT_TIMEOUT_MS is aborted and retried, so a SYN
 * into a partition never waits for the kernel's own timeout.
 *
 * Threads: every function is called from the thread that runs the loop given
 * to transport_start; callbacks run on that thread.  Not thread-safe beyond
 * that.
 *
 * Callbacks: on_recv and on_peer are never called from inside
 * transport_start, transport_send, transport_reset_peer or transport_stop,
 * only from the loop.
 * They may call transport_send and transport_stop (after transport_stop no
 * further callback of any kind is made, even for frames already read).
 *
 * Errors: 0 or a negative ZN_ code from <znode/errors.h>:
 *   ZN_BADARGUMENTS   an unknown peer id, an empty frame
 *   ZN_CONFIG         a bad configuration: duplicate or zero ids, my id among
 *                     the peers, a host that does not resolve to IPv4, a
 *                     port out of range
 *   ZN_CONNECTIONLOSS the outgoing link to the peer is not up
 *   ZN_THROTTLEDOP    the peer's send queue is at ZN_TRANSPORT_QUEUE_MAX_BYTES
 *   ZN_TOOBIG         a frame over ZN_TRANSPORT_FRAME_MAX_BYTES
 *   ZN_NOMEMORY       malloc failed
 *   ZN_IO             libuv refused to bind or listen (the log line names
 *                     libuv's reason, e.g. EADDRINUSE)
 */
#ifndef ZN_TRANSPORT_H
#define ZN_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Largest frame payload sent or accepted (room for a whole snapshot). */
#define ZN_TRANSPORT_FRAME_MAX_BYTES (512u << 20)
/* Bytes (payload plus the 4-byte prefix) queued or being written on one
 * outgoing link.  Past it transport_send refuses with ZN_THROTTLEDOP; an
 * empty queue always takes one frame, so a frame up to the frame maximum can
 * always be sent on an idle link. */
#define ZN_TRANSPORT_QUEUE_MAX_BYTES ((size_t)256u << 20)
/* Most frames handed to one uv_write (one batch). */
#define ZN_TRANSPORT_BATCH_MAX_FRAMES 64u
/* Most members in the mesh, this one included. */
#define ZN_TRANSPORT_PEERS_MAX 255u
/* Accepted connections that have not yet sent their hello. */
#define ZN_TRANSPORT_PENDING_MAX 64u
#define ZN_TRANSPORT_HELLO_TIMEOUT_MS 5000u
/* Reconnection is what a member that was cut off waits for before it can
 * rejoin, so both bounds are short: a healed member used to spend up to
 * 1 s + 1 s in an aborted connect and the backoff after it (0.7-1.7 s to
 * serve again after a 5 s isolation).  A failed attempt to a live address
 * costs one SYN; to a dead one, a refusal. */
#define ZN_TRANSPORT_CONNECT_TIMEOUT_MS 500u
#define ZN_TRANSPORT_BACKOFF_MIN_MS 50u
#define ZN_TRANSPORT_BACKOFF_MAX_MS 250u
#define ZN_TRANSPORT_KEEPALIVE_DELAY_S 10u
/* An outgoing connection with data unacknowledged this long, when another
 * link comes up, is taken for one a partition stalled and reconnected. */
#define ZN_TRANSPORT_STALLED_MS 500u
/* TCP_USER_TIMEOUT: a connection whose sent data stays unacknowledged this
 * long is aborted by the kernel (link down, then reconnect).  Without it a
 * partitioned link would look up while TCP retransmits for ~15 minutes, and
 * after the partition heals the old connection could wait minutes of
 * retransmission backoff before moving again. */
#define ZN_TRANSPORT_USER_TIMEOUT_MS 3000u
#define ZN_TRANSPORT_HOST_MAX 256u

#define ZN_TRANSPORT_MAGIC 0x5A4E5450u /* "ZNTP" */
#define ZN_TRANSPORT_VERSION 1u
#define ZN_TRANSPORT_HELLO_BYTES 12u

struct transport;

/* One other member of the ensemble. */
struct transport_peer {
    uint32_t id;                          /* > 0, distinct, not my_id */
    char host[ZN_TRANSPORT_HOST_MAX];     /* IPv4 literal or a name (resolved once, at start) */
    int port;                             /* its listen port, 1..65535 */
};

/* A frame arrived from peer from_id.  frame is borrowed for the duration of
 * the call only (copy what you keep); len >= 1. */
typedef void (*transport_recv_fn)(void *ctx, uint32_t from_id, const uint8_t *frame, size_t len);

/* The OUTGOING link to peer_id went up (connected: frames to it are now
 * accepted) or down (frames queued to it were dropped).  Calls alternate,
 * starting with an "up"; a link that never came up gives no "down". */
typedef void (*transport_peer_fn)(void *ctx, uint32_t peer_id, bool connected);

/* Counters of one peer, for the four-letter words.  Monotonic except
 * connected and queued_bytes. */
struct transport_peer_stats {
    uint32_t id;
    bool connected;            /* outgoing link up */
    bool incoming;             /* an accepted, identified connection from it exists */
    uint64_t frames_sent;      /* frames written to the socket (hello excluded) */
    uint64_t bytes_sent;       /* their payload bytes */
    uint64_t frames_received;  /* frames delivered to on_recv (hello excluded) */
    uint64_t bytes_received;   /* their payload bytes */
    uint64_t connects;         /* times the outgoing link came up */
    uint64_t reconnects;       /* of those, the ones after the first */
    uint64_t connect_failures; /* attempts that failed or timed out */
    uint64_t drops;            /* frames refused by transport_send (link down, queue
                                * full) or discarded from the queue when the link
                                * went down */
    uint64_t queued_bytes;     /* bytes queued or being written now */
};

/* Transport-wide counters. */
struct transport_stats {
    uint64_t accepted;         /* incoming connections accepted (hello good) */
    uint64_t rejected;         /* incoming connections closed for a bad hello,
                                * unknown id, wrong address, or hello timeout */
    uint64_t tls_failures;     /* TLS handshakes that failed or timed out, either side */
    uint64_t protocol_errors;  /* identified connections closed for an oversized
                                * or empty frame, or (outgoing) for bytes the
                                * receiver must never send */
};

/*
 * Starts the member's transport: listens on my_host:listen_port and begins
 * connecting to every peer.  Returns before any connection is made; on_peer
 * reports each link as it comes up.
 *
 * out:      receives the transport on success; set to NULL on error.
 * loop:     borrowed; must outlive the transport (until it is freed, see
 *           transport_stop).
 * my_host:  copied; IPv4 literal or name, resolved once here (a name may
 *           block on the resolver; ZooKeeper also resolves at config time).
 *           A port of 0 for listen_port picks a free port (see
 *           transport_listen_port).
 * peers:    copied; the OTHER members (n_peers may be 0).  Names are resolved
 *           here; the address found is used both to connect and to check
 *           the source address of that peer's incoming connections.
 * on_recv:  required.  on_peer: optional (NULL).  ctx: passed back as is.
 *
 * Errors: ZN_CONFIG, ZN_NOMEMORY, ZN_IO (bind/listen failed, e.g. the port is
 * in use).  On error no callback is ever called.  If the error came after the
 * listening socket was created (ZN_IO), that handle is already closing: the
 * loop frees it on its next run, and uv_loop_close returns UV_EBUSY until then.
 */
int transport_start(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                    int listen_port, const struct transport_peer *peers, size_t n_peers,
                    transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx);

/* TLS on the mesh; see "TLS" above. */
struct ssl_ctx_st;
struct transport_tls {
    /* The context a new connection gets, in either role (a TLS_method
     * context, verify mode set for the accepting side); called at each new
     * connection, so a context reloaded from changed files is picked up. */
    struct ssl_ctx_st *(*context)(void *arg);
    void *arg;
    bool connect_tls;  /* outgoing connections run TLS (else plain) */
    bool accept_tls;   /* incoming connections may run TLS */
    bool accept_plain; /* incoming connections may be plain */
    bool verify_host;  /* a peer's certificate must name its configured host */
    unsigned handshake_timeout_ms;
};

/*
 * SASL between members (zoo.cfg's quorum.auth.*), as ZooKeeper's learner
 * and server roles: the connecting member is the learner, the accepting one
 * the server.  A learner that authenticates (learner) sends the hello with
 * ZN_TRANSPORT_MAGIC_AUTH instead of ZN_TRANSPORT_MAGIC, then token frames;
 * the server answers each on the same connection with an auth reply frame
 * (transport_auth_decode) until SUCCESS or ERROR; only after SUCCESS is the
 * link reported up.  The server (server_enabled) answers such a learner; one
 * that fails is refused when server_require, else let in with a warning (as
 * ZooKeeper's SaslQuorumAuthServer); a learner that does not authenticate
 * is refused when server_require.  The mechanism is the caller's: the
 * exchange is opaque tokens through the step functions.
 */
struct transport_auth {
    bool learner;        /* authenticate to every member connected to (learnerRequireSasl) */
    bool server_enabled; /* answer a member that authenticates (enableSasl) */
    bool server_require; /* refuse a member that does not (serverRequireSasl) */
    /* One step of an exchange: session is NULL at the first step (the
     * function creates it in *session), in is the peer's token (NULL at the
     * learner's first step).  *out / *outlen: the token to send, valid until
     * the next call on the session.  Returns 0 to go on, 1 when done (the
     * server writes the authenticated name into who), -1 when failed (why). */
    int (*step)(void *arg, bool server, void **session, const uint8_t *in, size_t inlen, const uint8_t **out,
                size_t *outlen, char *who, size_t wholen, char *why, size_t whylen);
    void (*session_free)(void *arg, void *session);
    void *arg;
};

/* An auth reply frame from the server: status, then a token (CONTINUE,
 * SUCCESS) or the reason as text (ERROR). */
enum transport_auth_status { TRANSPORT_AUTH_CONTINUE = 0, TRANSPORT_AUTH_SUCCESS = 1, TRANSPORT_AUTH_ERROR = 2 };
#define ZN_TRANSPORT_MAGIC_AUTH 0x5A4E5441u /* "ZNTA" */
#define ZN_TRANSPORT_AUTH_MAX_BYTES 16384u  /* the largest token or reply frame */
struct transport_auth_msg {
    enum transport_auth_status status;
    const uint8_t *data; /* borrowed from the frame */
    size_t len;
};
/* Decodes an auth reply frame's payload.  Returns 0, or -1 when it is not one. */
int transport_auth_decode(const uint8_t *p, size_t len, struct transport_auth_msg *out);

/* As transport_start, with tls and auth (copied; NULL: plain, no SASL, as transport_start). */
int transport_start_tls(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                        int listen_port, const struct transport_peer *peers, size_t n_peers,
                        transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx,
                        const struct transport_tls *tls, const struct transport_auth *auth);

/*
 * Queues one frame to peer to_id.  The frame is copied before return; the
 * caller keeps ownership of `frame`.  Frames to one peer are written in the
 * order queued; several queued frames go out in one uv_write.
 *
 * Returns 0 when queued (it may still be dropped if the link goes down before
 * it is written: drops counts it), or
 *   ZN_BADARGUMENTS  to_id is not a configured peer, or len == 0
 *   ZN_TOOBIG        len > ZN_TRANSPORT_FRAME_MAX_BYTES
 *   ZN_CONNECTIONLOSS the outgoing link is down (frame dropped and counted)
 *   ZN_THROTTLEDOP   the queue would pass ZN_TRANSPORT_QUEUE_MAX_BYTES
 *                    (frame dropped and counted)
 *   ZN_NOMEMORY      (frame dropped and counted)
 * Must not be called after transport_stop.
 */
int transport_send(struct transport *t, uint32_t to_id, const uint8_t *frame, size_t len);

/*
 * Closes the listener and every connection and timer, discards queued frames,
 * and makes no further callback.  t must not be used after this call.
 *
 * Memory is freed asynchronously, in the close callbacks libuv runs on the
 * loop's next iteration.  How the caller knows it is done: once uv_run on the
 * loop has returned with no other active handles (UV_RUN_DEFAULT returns 0),
 * everything is freed; or use transport_stop_notify to be called back.
 */
void transport_stop(struct transport *t);

/* As transport_stop; then on_freed(arg) is called once, from the loop, after
 * the last handle is closed and all memory is freed (never from inside this
 * call).  on_freed may be NULL. */
void transport_stop_notify(struct transport *t, void (*on_freed)(void *arg), void *arg);

/*
 * Drops the connections to and from peer_id now: the outgoing link goes down
 * (on_peer reports it from the loop, queued frames are dropped) and is
 * reconnected after ZN_TRANSPORT_BACKOFF_MIN_MS; the incoming connection
 * from it is closed (the peer reconnects on its own).  For the layer above
 * when it declares a peer lost (as ZooKeeper closes a lost follower's
 * socket), so stale connections are never reused.  reason is borrowed for
 * the call and logged.  Returns 0, or ZN_BADARGUMENTS if peer_id is unknown.
 */
int transport_reset_peer(struct transport *t, uint32_t peer_id, const char *reason);

/*
 * Membership changes at runtime (ZooKeeper's reconfig).  transport_add_peer
 * makes peer (copied) a member of the mesh: frames to it are accepted once
 * its link is up, and its incoming connections are accepted from its
 * address.  Adding an id already present with the same address does
 * nothing.  transport_remove_peer closes both connections of peer_id, drops
 * what was queued to it, and from then on refuses its connections and
 * frames to it, as for an unknown id; on_peer reports its link down.
 * Returns 0, or ZN_CONFIG (a bad peer, my own id, an id present with another
 * address, more than ZN_TRANSPORT_PEERS_MAX), ZN_THROTTLEDOP (the id was
 * removed and its connections have not finished closing: retry later), or
 * ZN_BADARGUMENTS (remove: unknown id).  Indexes of transport_peer_stats
 * stay stable; a removed peer keeps its index (reported as not connected)
 * and gets it back if it is added again.
 */
int transport_add_peer(struct transport *t, const struct transport_peer *peer);
int transport_remove_peer(struct transport *t, uint32_t peer_id);

/* The port actually listened on (useful when 0 was asked for). */
int transport_listen_port(const struct transport *t);

/* Number of configured peers; indexes 0..count-1 for transport_peer_stats. */
size_t transport_peer_count(const struct transport *t);

/* Copies the counters of the index-th peer (configuration order) into *out.
 * Returns 0, or ZN_BADARGUMENTS if index >= transport_peer_count. */
int transport_peer_stats(const struct transport *t, size_t index, struct transport_peer_stats *out);

/* As transport_peer_stats, by peer id.  ZN_BADARGUMENTS if unknown. */
int transport_peer_stats_by_id(const struct transport *t, uint32_t peer_id,
                               struct transport_peer_stats *out);

/* Copies the transport-wide counters into *out. */
void transport_stats(const struct transport *t, struct transport_stats *out);

#endif
