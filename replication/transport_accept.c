/*
 * transport_accept: the listening side of the member mesh (see transport.h,
 * "Wire format" and "TLS").  tp_on_connection accepts a connection (bounded:
 * at most ZN_TRANSPORT_PENDING_MAX wait for their hello), tells TLS from
 * plain by the first byte when both are accepted (portUnification), and
 * reads it; tp_in_hello checks the hello (magic, version, a configured peer
 * connecting from its configured address, SASL as this member requires) and
 * makes the connection the link's receive side, replacing an older one.
 * tp_sweep_fired closes accepted connections that stay silent too long (no
 * hello, no TLS handshake, no SASL result in time).
 *
 * Invariants: 2 of transport.c (link->in is an identified incoming conn of
 * its link); t->pending_incoming counts the accepted conns not yet
 * identified; an incoming conn sends nothing but what TLS and SASL answer.
 *
 * Called by: transport.c (the listener and the sweep timer it starts),
 * transport_frame.c (the first frame of an incoming conn).
 */
#include "transport_internal.h"

#include <netinet/in.h>
#include <stdlib.h>

#include "log.h"
#include "tls_stream.h"

static void in_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct transport_conn *conn = handle->data;
    *buf = uv_buf_init((char *)conn->read_buf, TRANSPORT_READ_CHUNK_BYTES);
}

void tp_in_hello(struct transport_conn *conn, const uint8_t *p)
{
    struct transport *t = conn->t;
    uint32_t magic = tp_get_be32(p), version = tp_get_be32(p + 4), id = tp_get_be32(p + 8);
    char reason[160];
    if (magic != ZN_TRANSPORT_MAGIC && magic != ZN_TRANSPORT_MAGIC_AUTH) {
        tp_reject(conn, "bad hello magic");
        return;
    }
    if (version != ZN_TRANSPORT_VERSION) {
        snprintf(reason, sizeof reason, "protocol version %u, expected %u", version,
                 ZN_TRANSPORT_VERSION);
        tp_reject(conn, reason);
        return;
    }
    struct transport_link *link = tp_link_find(t, id);
    if (!link) {
        snprintf(reason, sizeof reason, "unknown member id %u", id);
        tp_reject(conn, reason);
        return;
    }
    struct sockaddr_in from;
    int from_len = sizeof from;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&from, &from_len) != 0 ||
        from.sin_family != AF_INET || from.sin_addr.s_addr != link->addr.sin_addr.s_addr) {
        snprintf(reason, sizeof reason, "member id %u connects from the wrong address, expected %s",
                 id, link->addr_text);
        tp_reject(conn, reason);
        return;
    }
    bool sasl = magic == ZN_TRANSPORT_MAGIC_AUTH;
    if (sasl && !(t->has_auth && t->auth.server_enabled)) {
        snprintf(reason, sizeof reason, "member id %u authenticates with SASL, but quorum.auth.enableSasl is "
                 "false on this member", id);
        tp_reject(conn, reason);
        return;
    }
    if (!sasl && t->has_auth && t->auth.server_require) {
        snprintf(reason, sizeof reason, "member id %u did not authenticate with SASL "
                 "(quorum.auth.serverRequireSasl=true)", id);
        tp_reject(conn, reason);
        return;
    }
    conn->auth_running = sasl;
    conn->identified = true;
    conn->link = link;
    t->pending_incoming--;
    t->stats.accepted++;
    struct transport_conn *older = link->in;
    link->in = conn;
    if (older)
        tp_conn_close(older, ZN_LOG_INFO, "replaced by a newer connection");
    tp_conn_set_options(conn);
    ZN_INFO("transport: incoming connection accepted peer=%u addr=%s", id, conn->addr);
    if (link->state == LINK_IDLE && link->out == NULL && !link->removed) {
        /* The peer is up again (it restarted): reconnect now rather than at
         * the end of a backoff that grew while it was down (up to
         * ZN_TRANSPORT_BACKOFF_MAX_MS), which delayed every answer it waits
         * for to rejoin the ensemble. */
        link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
        tp_link_connect(link);
    }
    tp_check_link(link);
}

static void in_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct transport_conn *conn = stream->data;
    if (nread == 0 || conn->closing)
        return;
    if (nread == UV_EOF && conn->tls && !tls_stream_established(conn->tls)) {
        tp_tls_failed(conn, "the member closed the connection during the TLS handshake");
        return;
    }
    if (nread == UV_EOF) {
        tp_conn_close(conn, conn->identified ? ZN_LOG_INFO : ZN_LOG_WARN,
                   conn->identified ? "closed by peer" : "closed before hello");
        return;
    }
    if (nread < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror((int)nread));
        return;
    }
    if (conn->detect) {
        conn->detect = false;
        if ((uint8_t)buf->base[0] == TRANSPORT_TLS_RECORD_HANDSHAKE && !tp_tls_begin(conn))
            return;
    }
    if (!conn->tls) {
        tp_in_consume(conn, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (tls_stream_feed(conn->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return;
    }
    tp_in_tls_pump(conn);
}

void tp_on_connection(uv_stream_t *server, int status)
{
    struct transport *t = server->data;
    if (status < 0) {
        ZN_WARN("transport: accept failed addr=%s reason=\"%s\"", t->my_addr_text,
                uv_strerror(status));
        return;
    }
    struct transport_conn *conn = tp_conn_new(t, CONN_INCOMING);
    if (!conn) {
        /* Accept and drop, or the listener would report it again at once. */
        ZN_ERROR("transport: incoming connection dropped reason=\"out of memory\"");
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp && uv_tcp_init(t->loop, tmp) == 0) {
            tmp->data = t;
            t->handles_open++;
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, tp_dropped_closed);
        } else {
            free(tmp);
        }
        return;
    }
    t->pending_incoming++;
    snprintf(conn->addr, sizeof conn->addr, "?");
    int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc < 0) {
        tp_reject(conn, uv_strerror(rc));
        return;
    }
    int from_len = sizeof conn->from;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->from, &from_len) == 0 &&
        conn->from.sin_family == AF_INET)
        tp_addr_format(&conn->from, conn->addr);
    if (t->pending_incoming > ZN_TRANSPORT_PENDING_MAX) {
        tp_reject(conn, "too many connections waiting for their hello");
        return;
    }
    if (t->has_tls && t->tls.accept_tls) {
        if (t->tls.accept_plain)
            conn->detect = true;
        else if (!tp_tls_begin(conn))
            return;
    }
    rc = uv_read_start((uv_stream_t *)&conn->tcp, in_alloc, in_read);
    if (rc < 0)
        tp_reject(conn, uv_strerror(rc));
}

/* Closes accepted connections that sent no hello in time, so a stray client
 * cannot hold a slot forever. */
void tp_sweep_fired(uv_timer_t *timer)
{
    struct transport *t = timer->data;
    uint64_t now = uv_now(t->loop);
    for (struct transport_conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (c->kind == CONN_INCOMING && c->auth_running && !c->closing &&
            now - c->opened_ms >= 2 * ZN_TRANSPORT_HELLO_TIMEOUT_MS) {
            tp_reject(c, "SASL exchange not done in time");
            continue;
        }
        if (c->kind != CONN_INCOMING || c->identified || c->closing)
            continue;
        if (c->tls && !tls_stream_established(c->tls) && now - c->opened_ms >= t->tls.handshake_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "TLS handshake not done within %u ms", t->tls.handshake_timeout_ms);
            tp_tls_failed(c, why);
        } else if (now - c->opened_ms >= ZN_TRANSPORT_HELLO_TIMEOUT_MS) {
            tp_reject(c, "no hello in time");
        }
    }
}
