/*
 * transport_connect: the outgoing side of the member mesh (see transport.h,
 * "Reconnection").  Each link keeps one outgoing connection, used only to
 * send: tp_link_connect binds it to our address and connects; once TCP (and
 * TLS, transport_secure.c) is up the hello is queued first
 * (tp_out_link_up), SASL runs if we are a learner, and tp_out_authenticated
 * reports the link up.  The link's one timer bounds each phase (connect,
 * TLS handshake, SASL) while CONNECTING and waits out the reconnect backoff
 * while IDLE; the backoff itself grows in transport.c's close callback.
 * When a link comes up, other links stalled by a partition are reconnected
 * (kick_stalled_links).
 *
 * Invariants: 1 of transport.c (one outgoing conn per link, a new one only
 * after the old one's close callback); a link is UP only with its outgoing
 * conn up; the outgoing conn reads only what the accepting side answers
 * during setup (TLS records, SASL replies), anything else closes it.
 *
 * Called by: transport.c (start, and the close callback arming the
 * reconnect), transport_accept.c (a peer's hello reconnects an idle link at
 * once), transport_peers.c (add, reset), transport_secure.c (TLS done,
 * SASL done).
 */
#include "transport_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "tls_stream.h"

static void kick_stalled_links(struct transport *t, const struct transport_link *except);
static void link_timer_fired(uv_timer_t *timer);

/* Arms the link's one timer: the bound of a phase while CONNECTING, the
 * reconnect backoff while IDLE (link_timer_fired tells which). */
void tp_link_arm(struct transport_link *link, uint64_t delay_ms)
{
    int rc = uv_timer_start(&link->timer, link_timer_fired, delay_ms, 0);
    ZN_ASSERT(rc == 0);
}

static void out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct transport_conn *conn = handle->data;
    *buf = uv_buf_init((char *)conn->read_buf, (unsigned)conn->read_cap);
}

static void out_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct transport_conn *conn = stream->data;
    if (nread == 0 || conn->closing)
        return;
    if (nread == UV_EOF && conn->handshaking) {
        tp_tls_failed(conn, "the peer closed the connection during the TLS handshake");
    } else if (nread == UV_EOF && conn->authenticating) {
        tp_out_auth_failed(conn, "the peer closed the connection during the SASL exchange");
    } else if (nread == UV_EOF) {
        tp_conn_close(conn, ZN_LOG_INFO, "closed by peer");
    } else if (nread < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror((int)nread));
    } else if (conn->tls) {
        if (tls_stream_feed(conn->tls, (const uint8_t *)buf->base, (size_t)nread) != 0)
            tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        else
            tp_out_tls_pump(conn);
    } else if (conn->authenticating) {
        tp_in_consume(conn, (const uint8_t *)buf->base, (size_t)nread);
    } else {
        conn->t->stats.protocol_errors++;
        tp_conn_close(conn, ZN_LOG_WARN, "peer sent bytes on a send-only connection");
    }
}

static void out_connected(uv_connect_t *req, int status)
{
    struct transport_conn *conn = req->data;
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    if (conn->closing) /* timed out, or stopping: the close callback handles it */
        return;
    if (status < 0) {
        link->stats.connect_failures++;
        tp_conn_close(conn, link->failure_logged ? ZN_LOG_DEBUG : ZN_LOG_INFO, uv_strerror(status));
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"%s\" retry_ms=%llu",
                    link->cfg.id, link->addr_text, uv_strerror(status),
                    (unsigned long long)link->backoff_ms);
        link->failure_logged = true;
        return;
    }
    uv_timer_stop(&link->timer);
    tp_conn_set_options(conn);
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, out_alloc, out_read);
    if (rc < 0) {
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror(rc));
        return;
    }
    if (!t->has_tls || !t->tls.connect_tls) {
        tp_out_link_up(conn);
        return;
    }
    if (!tp_tls_begin(conn))
        return;
    conn->handshaking = true;
    tp_link_arm(link, t->tls.handshake_timeout_ms); /* still CONNECTING: the timer abandons it */
    tp_out_tls_pump(conn); /* the ClientHello */
}

/* The connection is usable (TCP connected; TLS done and accepted): the
 * hello goes first, then the link is reported up. */
void tp_out_link_up(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    uv_timer_stop(&link->timer);
    bool learner = t->has_auth && t->auth.learner;
    uint8_t hello[ZN_TRANSPORT_HELLO_BYTES];
    tp_put_be32(hello, learner ? ZN_TRANSPORT_MAGIC_AUTH : ZN_TRANSPORT_MAGIC);
    tp_put_be32(hello + 4, ZN_TRANSPORT_VERSION);
    tp_put_be32(hello + 8, t->my_id);
    struct transport_frame *f = tp_frame_new(hello, sizeof hello, true);
    if (!f) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return;
    }
    tp_conn_enqueue(conn, f);
    if (learner) {
        conn->authenticating = true;
        tp_link_arm(link, ZN_TRANSPORT_HELLO_TIMEOUT_MS); /* still CONNECTING: the timer abandons it */
        tp_out_auth_step(conn, NULL, 0);
        return;
    }
    tp_out_authenticated(conn);
}

/* The outgoing connection is usable (and authenticated, when SASL is on):
 * the link is up. */
void tp_out_authenticated(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    struct transport_link *link = conn->link;
    uv_timer_stop(&link->timer);
    conn->up = true;
    link->state = LINK_UP;
    link->up_since_ms = uv_now(t->loop);
    link->failure_logged = false;
    link->tls_failure_logged = false;
    link->stats.connects++;
    if (link->stats.connects > 1)
        link->stats.reconnects++;
    ZN_INFO("transport: link up peer=%u addr=%s connects=%llu%s%s", link->cfg.id, link->addr_text,
            (unsigned long long)link->stats.connects, conn->tls ? " tls=yes" : "",
            t->has_auth && t->auth.learner ? " sasl=yes" : "");
    tp_conn_flush(conn);
    tp_check_link(link);
    kick_stalled_links(t, link);
    if (!conn->closing && t->on_peer)
        t->on_peer(t->ctx, link->cfg.id, true);
}

/* A link came up: the network between us and that peer works, perhaps
 * again after a partition.  Our other outgoing connections that a partition
 * left with data unacknowledged for ZN_TRANSPORT_STALLED_MS sit in TCP's
 * retransmission backoff (200 ms, 400, 800, ... between tries), so after
 * the heal their frames (a vote, an answer) arrive a second or more late:
 * a healed member of 5 waited 1.2 s for the answers it needed to rejoin.
 * Those are closed and reconnected now; a healthy connection has its data
 * acknowledged within milliseconds and is left alone. */
static void kick_stalled_links(struct transport *t, const struct transport_link *except)
{
    for (size_t i = 0; i < t->n_links; i++) {
        struct transport_link *link = &t->links[i];
        if (link == except || link->removed || link->state != LINK_UP || !link->out || link->out->closing)
            continue;
        uv_os_fd_t fd;
        struct tcp_info info;
        socklen_t len = sizeof info;
        if (uv_fileno((uv_handle_t *)&link->out->tcp, &fd) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
            continue;
        if (info.tcpi_unacked > 0 && info.tcpi_last_ack_recv >= ZN_TRANSPORT_STALLED_MS)
            tp_conn_close(link->out, ZN_LOG_INFO, "stalled while another link came up: reconnecting");
    }
}

/* Starts one connection attempt; any failure lands in conn_closed, which
 * arms the next attempt. */
void tp_link_connect(struct transport_link *link)
{
    struct transport *t = link->t;
    ZN_ASSERT(link->out == NULL && !t->stopping);
    struct transport_conn *conn = tp_conn_new(t, CONN_OUTGOING);
    if (!conn) {
        ZN_ERROR("transport: connect failed peer=%u addr=%s reason=\"out of memory\"",
                 link->cfg.id, link->addr_text);
        tp_link_arm(link, ZN_TRANSPORT_BACKOFF_MAX_MS);
        return;
    }
    conn->link = link;
    link->out = conn;
    memcpy(conn->addr, link->addr_text, sizeof conn->addr);
    link->state = LINK_CONNECTING;
    conn->connect_req.data = conn;
    struct sockaddr_in local = t->my_addr;
    local.sin_port = 0;
    int rc = uv_tcp_bind(&conn->tcp, (const struct sockaddr *)&local, 0);
    if (rc == 0)
        rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (const struct sockaddr *)&link->addr,
                            out_connected);
    if (rc < 0) {
        link->stats.connect_failures++;
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"%s\"", link->cfg.id,
                    link->addr_text, uv_strerror(rc));
        link->failure_logged = true;
        tp_conn_close(conn, ZN_LOG_DEBUG, uv_strerror(rc));
        return;
    }
    tp_link_arm(link, ZN_TRANSPORT_CONNECT_TIMEOUT_MS);
}

static void link_timer_fired(uv_timer_t *timer)
{
    struct transport_link *link = timer->data;
    if (link->t->stopping || link->removed)
        return;
    if (link->state == LINK_CONNECTING && link->out && link->out->authenticating) {
        tp_out_auth_failed(link->out, "SASL exchange not done in time");
    } else if (link->state == LINK_CONNECTING && link->out && link->out->handshaking) {
        char why[96];
        snprintf(why, sizeof why, "TLS handshake not done within %u ms", link->t->tls.handshake_timeout_ms);
        tp_tls_failed(link->out, why);
    } else if (link->state == LINK_CONNECTING) {
        link->stats.connect_failures++;
        if (!link->failure_logged)
            ZN_INFO("transport: connect failed peer=%u addr=%s reason=\"timeout\" timeout_ms=%u",
                    link->cfg.id, link->addr_text, ZN_TRANSPORT_CONNECT_TIMEOUT_MS);
        link->failure_logged = true;
        tp_conn_close(link->out, ZN_LOG_DEBUG, "connect timeout");
    } else if (link->state == LINK_IDLE && link->out == NULL) {
        tp_link_connect(link);
    }
}
