/*
 * transport_internal: the mesh's objects and the functions the transport's
 * files share (transport.c lists them and holds the invariants).  Not for
 * use outside replication/transport*.c.
 */
#ifndef ZN_TRANSPORT_INTERNAL_H
#define ZN_TRANSPORT_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "jute.h"
#include "transport.h"

/* Bytes read from a socket at a time; frames that fit are delivered from it
 * without a copy. */
#define TRANSPORT_READ_CHUNK_BYTES (64u << 10)
/* A payload buffer larger than this is freed after its frame is delivered
 * rather than kept for the next frame (one snapshot must not pin 512 MiB). */
#define TRANSPORT_PAYLOAD_KEEP_BYTES (1u << 20)
#define TRANSPORT_SWEEP_INTERVAL_MS 1000u
#define TRANSPORT_PREFIX_BYTES 4u
#define TRANSPORT_ADDR_TEXT_MAX 32u /* "255.255.255.255:65535" */
/* The first byte of a TLS handshake record (a plain hello starts with 0). */
#define TRANSPORT_TLS_RECORD_HANDSHAKE 0x16u
/* On a TLS connection the accepting member sends this one byte, sealed,
 * once the handshake verified the connecting member: with TLS 1.3 the
 * connecting side finishes its handshake before the other has checked its
 * certificate, so without it a refused member would see its link up. */
#define TRANSPORT_TLS_ACCEPTED 0x01u
/* The accepting side logs a failed handshake from one address at WARN at
 * most this often (a refused member retries every 250 ms). */
#define TRANSPORT_TLS_LOG_MS 10000u
#define TRANSPORT_TLS_LOG_ADDRS 8u

enum transport_conn_kind { CONN_OUTGOING, CONN_INCOMING };
enum transport_link_state { LINK_IDLE, LINK_CONNECTING, LINK_UP };

struct transport_frame {
    struct transport_frame *next;
    uint32_t len;  /* payload bytes */
    bool hello;
    uint8_t bytes[]; /* prefix + payload */
};

struct transport_conn;

struct transport_write {
    uv_write_t req;
    struct transport_conn *conn;
    struct jute_writer wire; /* TLS: the sealed frames */
    unsigned n_frames;
    struct transport_frame *frames[ZN_TRANSPORT_BATCH_MAX_FRAMES];
};

struct transport_conn {
    uv_tcp_t tcp;
    struct transport *t;
    struct transport_link *link; /* NULL for an incoming conn before its hello */
    enum transport_conn_kind kind;
    bool closing;
    bool up;         /* outgoing: connected and reported to on_peer */
    bool identified; /* incoming: hello accepted */
    struct tls_stream *tls; /* NULL: plain */
    bool detect;     /* incoming: TLS or plain, told by the first byte (portUnification) */
    bool handshaking; /* outgoing TLS: waiting for the handshake and TRANSPORT_TLS_ACCEPTED */
    struct sockaddr_in from; /* incoming: the peer's address */
    bool authenticating; /* outgoing learner: SASL exchange under way (the link is not up yet) */
    bool auth_running;   /* incoming: the hello said SASL follows, and it is not done */
    void *auth_session;  /* the SASL exchange (struct transport_auth's) */
    size_t read_cap;
    uint64_t opened_ms;
    char addr[TRANSPORT_ADDR_TEXT_MAX];
    uv_connect_t connect_req;
    /* send side */
    struct transport_frame *queue_head, *queue_tail;
    size_t queued_bytes;
    struct transport_write *writing;
    /* receive side */
    uint8_t prefix[TRANSPORT_PREFIX_BYTES];
    unsigned prefix_have;
    uint32_t payload_len, payload_have, payload_cap;
    uint8_t *payload;
    uint8_t *read_buf;
    struct transport_conn *prev, *next; /* t->conns */
};

struct transport_link {
    struct transport *t;
    struct transport_peer cfg;
    struct sockaddr_in addr;
    char addr_text[TRANSPORT_ADDR_TEXT_MAX];
    uv_timer_t timer; /* reconnect backoff, or connect timeout */
    enum transport_link_state state;
    struct transport_conn *out;
    struct transport_conn *in;
    uint64_t backoff_ms;
    uint64_t up_since_ms;
    bool failure_logged; /* the first failure of a run of failures is logged at INFO */
    bool tls_failure_logged; /* ... and the first failed TLS handshake of the run at WARN */
    bool removed;        /* transport_remove_peer: no longer a peer; the slot is kept
                          * (connections and timers point at it) and reused if the
                          * id is added again */
    struct transport_peer_stats stats;
};

struct transport {
    uv_loop_t *loop;
    uint32_t my_id;
    struct sockaddr_in my_addr;
    char my_addr_text[TRANSPORT_ADDR_TEXT_MAX];
    int listen_port;
    uv_tcp_t listener;
    bool listener_open;
    uv_timer_t sweep;
    bool sweep_open;
    struct transport_link *links;
    size_t n_links;
    struct transport_conn *conns;
    size_t pending_incoming;
    transport_recv_fn on_recv;
    transport_peer_fn on_peer;
    void *ctx;
    struct transport_stats stats;
    bool has_tls;
    struct transport_tls tls;
    bool has_auth;
    struct transport_auth auth;
    struct {
        uint32_t ip;
        uint64_t ms;
    } tls_logged[TRANSPORT_TLS_LOG_ADDRS]; /* the accepting side's last WARN per address */
    bool stopping;
    unsigned handles_open;
    void (*on_freed)(void *arg);
    void *on_freed_arg;
};

static inline uint32_t tp_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void tp_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* transport.c: the member, its handles and connections */
void tp_addr_format(const struct sockaddr_in *sa, char out[TRANSPORT_ADDR_TEXT_MAX]);
int tp_resolve_ipv4(const char *host, int port, struct sockaddr_in *out);
void tp_check_link(const struct transport_link *link);
void tp_conn_set_options(struct transport_conn *conn);
void tp_dropped_closed(uv_handle_t *handle);
struct transport_conn *tp_conn_new(struct transport *t, enum transport_conn_kind kind);
void tp_conn_close(struct transport_conn *conn, int level, const char *reason);
void tp_reject(struct transport_conn *conn, const char *reason);

/* transport_frame.c: send queues, the receive parser */
struct transport_frame *tp_frame_new(const uint8_t *payload, uint32_t len, bool hello);
void tp_conn_enqueue(struct transport_conn *conn, struct transport_frame *f);
void tp_conn_flush(struct transport_conn *conn);
void tp_in_consume(struct transport_conn *conn, const uint8_t *p, size_t n);

/* transport_connect.c: the outgoing side and the link timer */
void tp_link_arm(struct transport_link *link, uint64_t delay_ms);
void tp_link_connect(struct transport_link *link);
void tp_out_link_up(struct transport_conn *conn);
void tp_out_authenticated(struct transport_conn *conn);

/* transport_accept.c: the listening side */
void tp_on_connection(uv_stream_t *server, int status);
void tp_in_hello(struct transport_conn *conn, const uint8_t *p);
void tp_sweep_fired(uv_timer_t *timer);

/* transport_peers.c: the peer table */
struct transport_link *tp_link_find(const struct transport *t, uint32_t id);

/* transport_secure.c: TLS and SASL on a connection */
bool tp_tls_begin(struct transport_conn *conn);
void tp_tls_failed(struct transport_conn *conn, const char *why);
void tp_out_tls_pump(struct transport_conn *conn);
void tp_in_tls_pump(struct transport_conn *conn);
void tp_out_auth_step(struct transport_conn *conn, const uint8_t *in, size_t len);
void tp_out_auth_reply(struct transport_conn *conn, const uint8_t *p, size_t len);
void tp_in_auth_token(struct transport_conn *conn, const uint8_t *p, size_t len);
void tp_out_auth_failed(struct transport_conn *conn, const char *why);

#endif
