/*
 * The znoded server: what the client listener, the connections, the
 * sessions, the write path and the four-letter words share.
 *
 * One libuv loop thread owns everything here; only the store's writer thread
 * runs elsewhere, and it talks back through on_durable on this loop.
 *
 * Request flow (one path, standalone being an ensemble of one member):
 *   conn reads a frame -> request decoded -> appended to its conn's FIFO
 *   read:  executed when it reaches the head of the FIFO (so it sees the
 *          client's own earlier writes) and answered at once;
 *   write: forwarded to the leader (a member's own when it leads), which
 *          preps it (validated against the tree as it will be) and proposes
 *          its txn -> the replication core -> appended to the store in
 *          batches (group commit) -> durable on a quorum (a single voter:
 *          its own fsync) -> committed -> applied to the tree in zxid order
 *          on every member (watches fire, their notifications queued before
 *          any reply) -> answered, by the member holding the connection,
 *          when it reaches the head of its conn's FIFO.
 * Invariants:
 *   1. Nothing is applied to the tree before the core reported it committed.
 *   2. Txns are applied in zxid order, each exactly once.
 *   3. Each conn's replies leave in the order of its requests (FIFO).
 *   4. A watch notification is queued on a conn before any reply carrying
 *      the state that triggered it.
 */
#ifndef ZNODED_SERVER_H
#define ZNODED_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "htable.h"
#include "jute.h"
#include "watch.h"

struct tree;
struct prep;
struct store;
struct request;
struct session;
struct ensemble;
struct tls_stream;
struct tls_server;
struct admin;
struct saslauth_session;

#define SERVER_READ_CHUNK_BYTES (64 * 1024)
/* A client that does not read its replies: past the soft limit we stop reading
 * its requests; past the hard limit it is disconnected. */
#define CONN_OUTPUT_SOFT_LIMIT_BYTES (4u * 1024 * 1024)
#define CONN_OUTPUT_HARD_LIMIT_BYTES (64u * 1024 * 1024)
/* Requests of one connection not yet answered before we stop reading from it. */
#define CONN_MAX_QUEUED_REQUESTS 1000
/* The most auth ids one connection may add. */
#define CONN_MAX_AUTH_IDS 16
#define SERVER_MAX_CONNECTIONS 60000

enum conn_state {
    CONN_HANDSHAKE,  /* waiting for the ConnectRequest */
    CONN_OPENING,    /* createSession txn on its way */
    CONN_READY,
    CONN_CLOSING,    /* uv_close issued; freed in the close callback */
};

struct conn_auth {
    char *scheme;
    char *id;
};

struct conn_stats {
    uint64_t packets_received;
    uint64_t packets_sent;
    uint64_t established_ms;
    int32_t last_cxid;
    int64_t last_zxid;
    int32_t last_op;
    uint64_t last_response_ms;
    uint64_t last_latency_ms;
    uint64_t latency_min_ms;
    uint64_t latency_max_ms;
    uint64_t latency_total_ms;
    uint64_t latency_count;
};

struct conn {
    uv_tcp_t tcp;
    struct server *server;
    struct conn *prev, *next;       /* server.conns */
    struct conn *next_dirty;        /* server.dirty, when output waits */
    bool dirty;
    bool reading_paused;
    bool close_after_flush;
    bool output_overflow;           /* past CONN_OUTPUT_HARD_LIMIT_BYTES: closed at the next flush */
    enum conn_state state;
    char peer[64];                  /* "127.0.0.1:5555" */
    char peer_ip[48];
    uint8_t *rbuf;                  /* a partial frame, or frames held back (conn.c); NULL when idle */
    size_t rlen, rcap;
    struct jute_writer out;         /* replies and events not yet handed to libuv; none when idle */
    size_t writes_in_flight_bytes;
    struct session *session;
    bool read_only;                 /* a read-only session: this member had no quorum */
    /* Its ConnectRequest waits in rbuf until this member serves (it has no
     * leader now), or until parked_until_ms (conn_unpark_all).  Closing it
     * at once, as before, made every client retry here in a loop. */
    bool parked;
    bool handling_frames;           /* conn.c handles its frames: a nested call leaves them to it */
    uint64_t parked_until_ms;
    int32_t timeout_ms;             /* negotiated */
    struct watch_owner watches;
    struct request *queue_head, *queue_tail; /* FIFO of unanswered requests */
    uint32_t queued;
    struct conn_auth *auth;         /* auth_count of them, room for auth_cap; malloc'd (acl.c) */
    int auth_count, auth_cap;
    struct conn_stats stats;
    struct tls_stream *tls;         /* on the secure port: its TLS stream (owned); else NULL */
    bool sniffing;                  /* client.portUnification: TLS or plain is told by the first byte */
    struct jute_writer tls_wire;    /* TLS: sealed bytes not yet handed to libuv */
    struct saslauth_session *sasl;  /* its SASL exchange (owned); NULL before the first token */
};

struct server_stats {
    uint64_t packets_received;
    uint64_t packets_sent;
    uint64_t latency_min_ms;
    uint64_t latency_max_ms;
    uint64_t latency_total_ms;
    uint64_t latency_count;
    uint64_t connections_refused;
    uint64_t malformed_packets;
    uint64_t started_ms;
    int64_t started_s;              /* wall clock, seconds */
    /* Loop turns whose callbacks (not its wait in poll) took longer than
     * SERVER_LOOP_STALL_MS, and the longest turn's work (server.c). */
    uint64_t loop_stalls;
    uint64_t loop_turn_max_us;
};

/* The loop's clock: read at most once per loop phase (server_clock_us), not
 * once per request.  prepare and check mark it stale around each poll, so a
 * value is never older than the callbacks of the phase that read it; check
 * also measures each turn's work (loop stalls). */
struct loop_clock {
    uv_prepare_t prepare;
    uv_check_t check;
    uint64_t us;
    bool fresh;
    uint64_t turn_start_ns, turn_idle_ns; /* at the last check: hrtime, loop idle time */
    uint64_t stall_logged_ms;             /* when a stall was last logged */
    uint64_t stalls_unlogged;
};

/* Snapshots: one taken every `threshold` txns applied, by a forked child. */
struct snapshots {
    struct snapshot_job *job;       /* the one being taken (snapshot.c); NULL when none */
    int64_t txns_since;             /* applied since the last one was started */
    int64_t threshold;              /* txns until the next one; 0: draw one (snapshot_schedule.c) */
    int64_t bytes_since;            /* log bytes applied since the last one was started */
    int64_t bytes_threshold;        /* log bytes until the next one (snapSizeLimitInKb); 0: none */
    uint64_t rng;                   /* state of the draw */
    /* The last one this process handed to the store, and when (wall clock,
     * seconds), for the last_snapshot admin command. */
    int64_t stored_zxid;
    int64_t stored_s;
};

struct server {
    uv_loop_t *loop;
    struct config cfg;
    struct loop_clock clock;        /* server.c: the loop's clock and stall measure */
    uv_tcp_t listener;
    uv_tcp_t secure_listener;       /* secureClientPort, when tls is set */
    struct tls_server *tls;         /* the client ports' TLS context (owned); NULL without TLS */
    uv_timer_t session_timer;
    uv_timer_t purge_timer;         /* server.c: autopurge.purgeInterval > 0 */
    bool purge_timer_on;
    uv_signal_t sigterm, sigint;
    struct tree *tree;
    struct prep *prep;
    struct ensemble *ens;           /* the write path (ensemble.c; standalone: of one member) */
    struct admin *admin;            /* the AdminServer (admin.c); NULL when not served */
    struct metrics *metrics;        /* metrics.c's; NULL until metrics_start */
    struct cleaner *cleaner;        /* the container and TTL cleaner (cleaner.c); NULL when off */
    struct request *request_pool;   /* freed requests kept for reuse (request.c) */
    size_t request_pool_count;
    struct store *store;
    struct watch_manager *watches;
    /* The frame of the event being fanned out (server_watch_notify): encoded
     * once per watch_trigger and copied to each watcher's output. */
    struct jute_writer event_frame;
    uint64_t event_frame_id;        /* watch_event.id the frame holds; 0: none */
    struct conn *conns;
    size_t conn_count;
    struct conn *dirty;
    struct zn_htable sessions;      /* struct session by id; set up by the first session_add */
    uint64_t outstanding;           /* requests in all FIFOs */
    struct snapshots snapshots;     /* snapshot_schedule.c, snapshot.c: when, and the one being taken */
    int64_t next_session_counter;
    bool stopping;
    struct server_stats stats;
};

/* Starts listening and serving; returns 0 or a negative code with a logged reason. */
int server_start(struct server *srv, uv_loop_t *loop, const struct config *cfg);
/* Stops accepting, closes every connection and the store; the loop then ends. */
void server_stop(struct server *srv);
int server_install_signals(struct server *srv);
/* autopurge.purgeInterval > 0: a store purge at once and every that many
 * hours (server.c); 0 or absent: no timer.  Returns 0 or ZN_SYSTEMERROR (logged). */
int server_start_purge(struct server *srv);
/* Monotonic time (CLOCK_MONOTONIC, the base of server_now_ms) as of the
 * first call in the current loop phase: one clock read per loop turn serves
 * every request of that turn.  For request latencies and session deadlines;
 * durations measured inside one callback use server_now_ms or uv_hrtime. */
uint64_t server_clock_us(struct server *srv);
static inline uint64_t server_clock_ms(struct server *srv) { return server_clock_us(srv) / 1000; }

/* conn.c */
/* Appends a whole frame (its 4-byte length first), copied; as
 * conn_frame_end, drops it (and c) when c's output is over its limit or out
 * of memory, but never closes c itself: the next flush does (the watch
 * manager calls this while it walks a path's watchers). */
void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len);
/* Encoding a frame straight into c's output: begin reserves the length and
 * returns the writer to append the body to (borrowed until end), or NULL
 * when c takes no more output (closing, or over its limit); end writes the
 * length, or drops the frame (and c) if the writer failed or the output
 * passed CONN_OUTPUT_HARD_LIMIT_BYTES.  Nothing else may write to c between
 * the two. */
struct jute_writer *conn_frame_begin(struct conn *c, size_t *start);
void conn_frame_end(struct conn *c, size_t start);
void conn_close(struct conn *c, const char *why);
/* Frees the buffers of every idle connection (nothing queued, nothing to
 * write, no partial frame): the session timer calls it. */
void conn_release_idle(struct server *srv);
void conn_mark_dirty(struct conn *c);
/* Parked connections (struct conn.parked): handle their ConnectRequest now
 * (the member serves again), or close those whose wait is over at now_ms.
 * Not to be called from inside the ensemble's ready processing. */
void conn_unpark_all(struct server *srv);
void conn_expire_parked(struct server *srv, uint64_t now_ms);
/* Closes each connection on the TLS port whose handshake is not done
 * ssl.handshakeDetectionTimeoutMillis after it was accepted (a client that
 * connects and sends nothing, or stalls mid-handshake, holds no slot longer). */
void conn_expire_tls_handshakes(struct server *srv, uint64_t now_ms);
void server_flush(struct server *srv);
int server_listen(struct server *srv);
/* Closes the client listeners (plain and TLS). */
void server_unlisten(struct server *srv);

/* request.c */
void request_handle_packet(struct conn *c, const uint8_t *data, size_t len);
void request_handle_connect(struct conn *c, const uint8_t *data, size_t len);
void request_conn_closed(struct conn *c);
/* Queues a watch event on the owner's connection (the watch manager's
 * watch_notify_fn; ctx is the server). */
void server_watch_notify(void *ctx, struct watch_owner *owner, const struct watch_event *ev);

/* session.c */
struct session {
    struct zn_hlink link;           /* in server.sessions */
    int64_t id;
    int32_t timeout_ms;
    uint64_t expires_at_ms;
    uint64_t last_activity_ms;      /* followers report these to the leader */
    struct conn *conn;              /* NULL while disconnected */
    bool closing;                   /* closeSession txn on its way */
    bool local_read_only;           /* made by this member in read-only mode: not replicated */
};

struct session *session_find(struct server *srv, int64_t id);
/* session_find for a request's session: the connection's own session when
 * it is that one (no lookup), else the table's. */
static inline struct session *session_of(struct server *srv, const struct conn *c, int64_t id)
{
    if (c && c->session && c->session->id == id)
        return c->session;
    return session_find(srv, id);
}
/* Iteration over srv->sessions (zn_hiter_init(&it, &srv->sessions) first);
 * the session just returned may be removed. */
static inline struct session *session_next(struct zn_hiter *it)
{
    struct zn_hlink *l = zn_hiter_next(it);
    return l ? ZN_HENTRY(l, struct session, link) : NULL;
}
/* Drops every session of the runtime table (their conns must be closed). */
void session_clear_all(struct server *srv);
/* tree_for_each_session callback: adds one recovered session (ctx: the server). */
int session_add_recovered(void *ctx, int64_t id, int32_t timeout_ms);
struct session *session_add(struct server *srv, int64_t id, int32_t timeout_ms);
void session_remove(struct server *srv, int64_t id);
void session_touch(struct server *srv, struct session *s);
int64_t session_new_id(struct server *srv);
void session_password(int64_t id, uint8_t out[ZN_PASSWD_BYTES]);
int session_start_timer(struct server *srv);
uint64_t server_now_ms(void);

/* fourlw.c */
void fourlw_handle(struct conn *c, const char word[4]);

#endif
