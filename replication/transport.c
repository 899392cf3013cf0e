/*
 * transport: the TCP mesh between ensemble members (see transport.h for the
 * contract and the wire format).  This file is the member itself: starting
 * it (checking the configured peers, resolving addresses, the listener, the
 * sweep timer, one link and its timer per peer) and stopping it, and the
 * life of every uv handle and connection: a connection is made by
 * tp_conn_new and every way down goes through tp_conn_close, whose close
 * callback frees it, reports the link down and arms the reconnect.  The
 * mesh knows nothing of what the frames mean.
 *
 * Files of the mesh, around transport_internal.h (the objects they share):
 *   transport.c          the member: start/stop, handle and connection
 *                        lifecycle, teardown
 *   transport_frame.c    framing: per-connection send queues and batched
 *                        writes, the receive parser and frame delivery
 *   transport_connect.c  the outgoing side: connect, hello, link up, the
 *                        link timer (connect timeout, reconnect backoff)
 *   transport_accept.c   the listening side: accept, TLS or plain, the hello
 *                        check, the sweep of connections that stay silent
 *   transport_peers.c    the peer table: lookup, membership changes, counters
 *   transport_secure.c   TLS and SASL on one connection
 *
 * Objects:
 *   struct transport        the member: listener, sweep timer, links, all conns
 *   struct transport_link   one configured peer: its reconnect timer, its
 *                           outgoing conn (send side) and its identified
 *                           incoming conn (receive side), its counters
 *   struct transport_conn   one TCP connection, either direction
 *
 * Invariants (checked by tp_check_link in assertions):
 *   1. link->out, when set, is an outgoing conn whose link is this link; at
 *      most one outgoing conn per link exists (a new one is created only
 *      after the old one's close callback ran).
 *   2. link->in, when set, is an identified incoming conn of this link.
 *   3. conn->queued_bytes is the sum over conn's queued and in-flight frames
 *      (hello excluded) of 4 + payload length.
 *   4. t->handles_open counts the uv handles initialised and not yet closed;
 *      t is freed when it reaches 0 after stopping, never earlier.
 *
 * Outgoing link states: IDLE (reconnect timer armed with the backoff) ->
 * CONNECTING (connect timer armed) -> UP (hello queued, sends accepted) ->
 * closing -> IDLE.  Every way down goes through tp_conn_close; the conn's close
 * callback reports "down" and arms the reconnect, so callbacks never run
 * from inside transport_send.
 */
#include "transport_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "tls_stream.h"
#include <znode/errors.h>

/* ---- small helpers ---- */

void tp_addr_format(const struct sockaddr_in *sa, char out[TRANSPORT_ADDR_TEXT_MAX])
{
    char ip[INET_ADDRSTRLEN] = "?";
    uv_ip4_name(sa, ip, sizeof ip);
    snprintf(out, TRANSPORT_ADDR_TEXT_MAX, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* Resolves an IPv4 literal, or else a name through the system resolver
 * (blocking: called only from transport_start, see transport.h). */
int tp_resolve_ipv4(const char *host, int port, struct sockaddr_in *out)
{
    if (uv_ip4_addr(host, port, out) == 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return ZN_CONFIG;
    memcpy(out, res->ai_addr, sizeof *out);
    out->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

void tp_check_link(const struct transport_link *link)
{
    if (link->out) {
        ZN_ASSERT(link->out->kind == CONN_OUTGOING);
        ZN_ASSERT(link->out->link == link);
    }
    if (link->in) {
        ZN_ASSERT(link->in->kind == CONN_INCOMING);
        ZN_ASSERT(link->in->identified && link->in->link == link);
    }
    ZN_ASSERT(link->state != LINK_UP || (link->out && link->out->up));
}

static void frame_list_free(struct transport_frame *f, struct transport_link *link)
{
    while (f) {
        struct transport_frame *next = f->next;
        if (link && !f->hello)
            link->stats.drops++;
        free(f);
        f = next;
    }
}

/* Options of every identified connection: no Nagle delay (Zab messages are
 * small and latency-bound), keepalive, and the user timeout (see
 * ZN_TRANSPORT_USER_TIMEOUT_MS).  Failures only cost detection speed, so
 * they are logged, not fatal. */
void tp_conn_set_options(struct transport_conn *conn)
{
    uv_tcp_nodelay(&conn->tcp, 1);
    uv_tcp_keepalive(&conn->tcp, 1, ZN_TRANSPORT_KEEPALIVE_DELAY_S);
    uv_os_fd_t fd;
    unsigned timeout_ms = ZN_TRANSPORT_USER_TIMEOUT_MS;
    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms) != 0)
        ZN_WARN("transport: cannot set TCP_USER_TIMEOUT addr=%s", conn->addr);
}

/* ---- teardown ---- */

static void transport_maybe_free(struct transport *t)
{
    if (!t->stopping || t->handles_open > 0)
        return;
    ZN_ASSERT(t->conns == NULL);
    void (*on_freed)(void *) = t->on_freed;
    void *arg = t->on_freed_arg;
    free(t->links);
    free(t);
    if (on_freed)
        on_freed(arg);
}

static void handle_closed(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

/* Close callback of a connection accepted only to be dropped (no memory). */
void tp_dropped_closed(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    free(handle);
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

static void link_timer_closed(uv_handle_t *handle)
{
    struct transport_link *link = handle->data;
    struct transport *t = link->t;
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

static void conn_closed(uv_handle_t *handle)
{
    struct transport_conn *conn = handle->data;
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;

    ZN_ASSERT(conn->writing == NULL); /* write callbacks run before the close callback */
    frame_list_free(conn->queue_head, conn->kind == CONN_OUTGOING ? link : NULL);
    free(conn->payload);
    free(conn->read_buf);
    tls_stream_free(conn->tls);
    if (conn->auth_session)
        t->auth.session_free(t->auth.arg, conn->auth_session);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        t->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;

    if (conn->kind == CONN_INCOMING) {
        if (!conn->identified)
            t->pending_incoming--;
        else if (link->in == conn)
            link->in = NULL;
    } else {
        ZN_ASSERT(link->out == conn);
        link->out = NULL;
        if (!t->stopping && link->removed) {
            link->state = LINK_IDLE;
            if (conn->up && t->on_peer)
                t->on_peer(t->ctx, link->cfg.id, false);
        } else if (!t->stopping) {
            bool was_up = conn->up;
            if (was_up && uv_now(t->loop) - link->up_since_ms >= ZN_TRANSPORT_BACKOFF_MAX_MS)
                link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
            link->state = LINK_IDLE;
            tp_link_arm(link, link->backoff_ms);
            link->backoff_ms *= 2;
            if (link->backoff_ms > ZN_TRANSPORT_BACKOFF_MAX_MS)
                link->backoff_ms = ZN_TRANSPORT_BACKOFF_MAX_MS;
            if (was_up && t->on_peer)
                t->on_peer(t->ctx, link->cfg.id, false);
        }
    }
    free(conn);
    ZN_ASSERT(t->handles_open > 0);
    t->handles_open--;
    transport_maybe_free(t);
}

/* Closes conn once; every failure of a connection ends here.  reason is a
 * short key=value-friendly word or phrase for the log. */
void tp_conn_close(struct transport_conn *conn, int level, const char *reason)
{
    if (conn->closing)
        return;
    conn->closing = true;
    struct transport *t = conn->t;
    if (!t->stopping) {
        if (conn->kind == CONN_OUTGOING) {
            if (conn->up)
                ZN_LOG(level, "transport: link down peer=%u addr=%s reason=\"%s\"",
                       conn->link->cfg.id, conn->addr, reason);
        } else if (conn->identified) {
            ZN_LOG(level, "transport: incoming connection closed peer=%u addr=%s reason=\"%s\"",
                   conn->link->cfg.id, conn->addr, reason);
        } else {
            ZN_LOG(level, "transport: incoming connection rejected addr=%s reason=\"%s\"",
                   conn->addr, reason);
        }
    }
    if (conn->kind == CONN_OUTGOING && conn->link->state != LINK_IDLE) {
        conn->link->state = LINK_IDLE;
        if (!t->stopping) /* when stopping, the timer is closing already */
            uv_timer_stop(&conn->link->timer);
    }
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
}

void tp_reject(struct transport_conn *conn, const char *reason)
{
    conn->t->stats.rejected++;
    tp_conn_close(conn, ZN_LOG_WARN, reason);
}

struct transport_conn *tp_conn_new(struct transport *t, enum transport_conn_kind kind)
{
    struct transport_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->read_cap = kind == CONN_INCOMING || t->has_tls ? TRANSPORT_READ_CHUNK_BYTES : 64;
    conn->read_buf = malloc(conn->read_cap);
    if (!conn->read_buf) {
        free(conn);
        return NULL;
    }
    int rc = uv_tcp_init(t->loop, &conn->tcp);
    ZN_ASSERT(rc == 0); /* uv_tcp_init without flags cannot fail */
    t->handles_open++;
    conn->t = t;
    conn->kind = kind;
    conn->tcp.data = conn;
    conn->opened_ms = uv_now(t->loop);
    conn->next = t->conns;
    if (t->conns)
        t->conns->prev = conn;
    t->conns = conn;
    return conn;
}

/* ---- start / stop ---- */

static int transport_validate(uint32_t my_id, const char *my_host, int listen_port,
                              const struct transport_peer *peers, size_t n_peers)
{
    if (my_id == 0 || !my_host || listen_port < 0 || listen_port > 65535)
        return ZN_CONFIG;
    if (n_peers + 1 > ZN_TRANSPORT_PEERS_MAX || (n_peers > 0 && !peers))
        return ZN_CONFIG;
    for (size_t i = 0; i < n_peers; i++) {
        if (peers[i].id == 0 || peers[i].id == my_id || peers[i].port < 1 ||
            peers[i].port > 65535 || strnlen(peers[i].host, ZN_TRANSPORT_HOST_MAX) == ZN_TRANSPORT_HOST_MAX)
            return ZN_CONFIG;
        for (size_t j = 0; j < i; j++)
            if (peers[j].id == peers[i].id)
                return ZN_CONFIG;
    }
    return 0;
}

static void transport_close_all(struct transport *t)
{
    t->stopping = true;
    if (t->listener_open && !uv_is_closing((uv_handle_t *)&t->listener))
        uv_close((uv_handle_t *)&t->listener, handle_closed);
    if (t->sweep_open && !uv_is_closing((uv_handle_t *)&t->sweep))
        uv_close((uv_handle_t *)&t->sweep, handle_closed);
    for (size_t i = 0; i < t->n_links; i++) {
        uv_handle_t *h = (uv_handle_t *)&t->links[i].timer;
        if (t->links[i].t && !uv_is_closing(h))
            uv_close(h, link_timer_closed);
    }
    for (struct transport_conn *c = t->conns; c; c = c->next)
        tp_conn_close(c, ZN_LOG_DEBUG, "stopping");
}

int transport_start(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                    int listen_port, const struct transport_peer *peers, size_t n_peers,
                    transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx)
{
    return transport_start_tls(out, loop, my_id, my_host, listen_port, peers, n_peers, on_recv, on_peer,
                               ctx, NULL, NULL);
}

int transport_start_tls(struct transport **out, uv_loop_t *loop, uint32_t my_id, const char *my_host,
                        int listen_port, const struct transport_peer *peers, size_t n_peers,
                        transport_recv_fn on_recv, transport_peer_fn on_peer, void *ctx,
                        const struct transport_tls *tls, const struct transport_auth *auth)
{
    ZN_ASSERT(out != NULL && loop != NULL && on_recv != NULL);
    *out = NULL;
    int rc = transport_validate(my_id, my_host, listen_port, peers, n_peers);
    if (rc < 0) {
        ZN_ERROR("transport: bad configuration my_id=%u peers=%zu", my_id, n_peers);
        return rc;
    }
    struct transport *t = calloc(1, sizeof *t);
    if (!t)
        return ZN_NOMEMORY;
    /* Room for every peer the mesh may ever hold: connections and timers
     * point into this array, so it never moves (transport_add_peer). */
    t->links = calloc(ZN_TRANSPORT_PEERS_MAX, sizeof *t->links);
    if (!t->links) {
        free(t);
        return ZN_NOMEMORY;
    }
    t->loop = loop;
    t->my_id = my_id;
    t->on_recv = on_recv;
    t->on_peer = on_peer;
    t->ctx = ctx;
    if (tls) {
        ZN_ASSERT(tls->context != NULL && (tls->accept_tls || tls->accept_plain));
        t->has_tls = true;
        t->tls = *tls;
    }
    if (auth) {
        ZN_ASSERT(auth->step != NULL && auth->session_free != NULL);
        t->has_auth = true;
        t->auth = *auth;
    }
    if (tp_resolve_ipv4(my_host, listen_port, &t->my_addr) < 0) {
        ZN_ERROR("transport: cannot resolve my address host=%s", my_host);
        free(t->links);
        free(t);
        return ZN_CONFIG;
    }
    for (size_t i = 0; i < n_peers; i++) {
        struct transport_link *link = &t->links[i];
        link->cfg = peers[i];
        if (tp_resolve_ipv4(peers[i].host, peers[i].port, &link->addr) < 0) {
            ZN_ERROR("transport: cannot resolve peer address peer=%u host=%s", peers[i].id,
                     peers[i].host);
            free(t->links);
            free(t);
            return ZN_CONFIG;
        }
        tp_addr_format(&link->addr, link->addr_text);
        link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
        link->stats.id = peers[i].id;
    }
    t->n_links = n_peers;

    uv_tcp_init(loop, &t->listener);
    t->listener.data = t;
    t->listener_open = true;
    t->handles_open++;
    rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&t->my_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, (int)ZN_TRANSPORT_PEERS_MAX, tp_on_connection);
    if (rc < 0) {
        tp_addr_format(&t->my_addr, t->my_addr_text);
        ZN_ERROR("transport: cannot listen addr=%s reason=\"%s\"", t->my_addr_text, uv_strerror(rc));
        transport_close_all(t);
        return ZN_IO;
    }
    struct sockaddr_in bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &bound_len);
    t->my_addr.sin_port = bound.sin_port;
    t->listen_port = ntohs(bound.sin_port);
    tp_addr_format(&t->my_addr, t->my_addr_text);

    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->sweep_open = true;
    t->handles_open++;
    uv_timer_start(&t->sweep, tp_sweep_fired, TRANSPORT_SWEEP_INTERVAL_MS, TRANSPORT_SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)&t->sweep); /* never the reason the loop stays alive */

    for (size_t i = 0; i < n_peers; i++) {
        struct transport_link *link = &t->links[i];
        link->t = t;
        uv_timer_init(loop, &link->timer);
        link->timer.data = link;
        t->handles_open++;
    }
    ZN_INFO("transport: listening my_id=%u addr=%s peers=%zu tls=%s", my_id, t->my_addr_text, n_peers,
            !t->has_tls ? "no" : t->tls.accept_plain ? (t->tls.connect_tls ? "connect, accept also plain"
                                                                           : "accept also, connect plain")
                                                     : "yes");
    for (size_t i = 0; i < n_peers; i++)
        tp_link_connect(&t->links[i]);
    *out = t;
    return 0;
}

void transport_stop_notify(struct transport *t, void (*on_freed)(void *arg), void *arg)
{
    ZN_ASSERT(t != NULL && !t->stopping);
    t->on_freed = on_freed;
    t->on_freed_arg = arg;
    ZN_INFO("transport: stopping my_id=%u addr=%s", t->my_id, t->my_addr_text);
    transport_close_all(t);
}

void transport_stop(struct transport *t) { transport_stop_notify(t, NULL, NULL); }
