/*
 * transport_secure: TLS and SASL on one connection of the member mesh (see
 * transport.h, "TLS" and "SASL between members"): the handshake driven
 * through lib/tls_stream.c, its failures and bound, the accepting side's
 * acceptance byte and host check, and both roles of the SASL exchange.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "assert.h"
#include "log.h"
#include "tls_stream.h"
#include "transport_internal.h"
#include <znode/errors.h>

/* ---- TLS ---- */

struct transport_raw_write {
    uv_write_t req;
    struct transport_conn *conn;
    uint8_t *data;
};

static void raw_write_done(uv_write_t *req, int status)
{
    struct transport_raw_write *w = req->data;
    struct transport_conn *conn = w->conn;
    free(w->data);
    free(w);
    if (status < 0)
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror(status));
}

/* Writes the ciphertext the stream has due outside of frames (handshake
 * records, alerts).  Returns false when conn is closed (or closing). */
static bool tls_send_pending(struct transport_conn *conn)
{
    if (conn->closing)
        return false;
    struct jute_writer out;
    jute_writer_init(&out);
    tls_stream_drain(conn->tls, &out);
    struct transport_raw_write *w = out.error || out.len == 0 ? NULL : malloc(sizeof *w);
    if (!w) {
        bool nothing = out.error == 0 && out.len == 0;
        jute_writer_free(&out);
        if (!nothing)
            tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return nothing;
    }
    size_t len;
    w->conn = conn;
    w->data = jute_writer_take(&out, &len);
    w->req.data = w;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, raw_write_done);
    if (rc < 0) {
        free(w->data);
        free(w);
        tp_conn_close(conn, ZN_LOG_INFO, uv_strerror(rc));
        return false;
    }
    return true;
}

/* A handshake failed or timed out: the alert that tells the peer why goes
 * out, then conn closes with one line saying why (see transport.h). */
void tp_tls_failed(struct transport_conn *conn, const char *why)
{
    struct transport *t = conn->t;
    t->stats.tls_failures++;
    tls_send_pending(conn);
    if (conn->kind == CONN_OUTGOING) {
        struct transport_link *link = conn->link;
        link->stats.connect_failures++;
        if (!link->tls_failure_logged)
            ZN_WARN("transport: TLS with peer=%u addr=%s failed reason=\"%s\"%s", link->cfg.id,
                    link->addr_text, why,
                    strstr(why, "alert") ? " (the peer ended the handshake: its log says why)" : "");
        link->failure_logged = true;
        link->tls_failure_logged = true;
        tp_conn_close(conn, ZN_LOG_DEBUG, why);
        return;
    }
    uint64_t now = uv_now(t->loop);
    int level = ZN_LOG_WARN;
    unsigned slot = 0; /* this address's, else the oldest */
    for (unsigned i = 0; i < TRANSPORT_TLS_LOG_ADDRS; i++) {
        if (t->tls_logged[i].ip == conn->from.sin_addr.s_addr && t->tls_logged[i].ms != 0) {
            slot = i;
            if (now - t->tls_logged[i].ms < TRANSPORT_TLS_LOG_MS)
                level = ZN_LOG_DEBUG;
            break;
        }
        if (t->tls_logged[i].ms < t->tls_logged[slot].ms)
            slot = i;
    }
    if (level == ZN_LOG_WARN) {
        t->tls_logged[slot].ip = conn->from.sin_addr.s_addr;
        t->tls_logged[slot].ms = now ? now : 1;
    }
    t->stats.rejected++;
    tp_conn_close(conn, level, why);
}

/* Advances conn's TLS stream and reads plaintext into read_buf (the
 * ciphertext was copied into the stream).  Returns the bytes, 0 when more
 * ciphertext is needed, or -1 when it failed and conn is closed (as a failed
 * handshake while that is not done). */
static ssize_t tls_read_plain(struct transport_conn *conn)
{
    const char *why = NULL;
    ssize_t got = tls_stream_read(conn->tls, conn->read_buf, conn->read_cap, &why);
    if (got >= 0)
        return got;
    bool handshake = conn->kind == CONN_OUTGOING ? conn->handshaking : !tls_stream_established(conn->tls);
    if (handshake)
        tp_tls_failed(conn, why);
    else
        tp_conn_close(conn, ZN_LOG_INFO, why);
    return -1;
}

/* Gives conn its TLS stream, in the accepting or the connecting role.
 * Returns false when conn was closed. */
bool tp_tls_begin(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    bool server = conn->kind == CONN_INCOMING;
    const char *host = !server && t->tls.verify_host ? conn->link->cfg.host : NULL;
    conn->tls = tls_stream_new(t->tls.context(t->tls.arg), server, host);
    if (!conn->tls) {
        tp_conn_close(conn, ZN_LOG_ERROR, "cannot start TLS (out of memory, or an unusable host name)");
        return false;
    }
    if (!server) /* the member connected to is always checked, whatever ssl.quorum.clientAuth says */
        SSL_set_verify(tls_stream_ssl(conn->tls), SSL_VERIFY_PEER, NULL);
    return true;
}

/* The accepting side's handshake is done: the connecting member's
 * certificate (if it sent one) must name the address it connects from, as
 * an IP address or as the configured host of a member at that address.
 * Then TRANSPORT_TLS_ACCEPTED tells it so.  Returns false if conn closed. */
static bool in_tls_established(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    X509 *cert = SSL_get0_peer_certificate(tls_stream_ssl(conn->tls));
    if (t->tls.verify_host && cert) {
        char ip[INET_ADDRSTRLEN] = "?";
        uv_ip4_name(&conn->from, ip, sizeof ip);
        bool named = X509_check_ip_asc(cert, ip, 0) == 1;
        for (size_t i = 0; i < t->n_links && !named; i++)
            named = !t->links[i].removed && t->links[i].addr.sin_addr.s_addr == conn->from.sin_addr.s_addr &&
                    X509_check_host(cert, t->links[i].cfg.host, 0, 0, NULL) == 1;
        if (!named) {
            char why[160];
            snprintf(why, sizeof why, "the member's certificate does not name its address %s "
                                      "(ssl.quorum.hostnameVerification)", ip);
            tp_tls_failed(conn, why);
            return false;
        }
    }
    const char *why = NULL;
    uint8_t accepted = TRANSPORT_TLS_ACCEPTED;
    if (tls_stream_write(conn->tls, &accepted, 1, &why) != 0) {
        tp_conn_close(conn, ZN_LOG_INFO, why);
        return false;
    }
    return tls_send_pending(conn);
}

/* ---- SASL between members ---- */

/* Queues one control frame (not counted as a Zab frame): a byte, then data. */
static bool send_auth_frame(struct transport_conn *conn, uint8_t first, const uint8_t *data, size_t len)
{
    if (len + 1 > ZN_TRANSPORT_AUTH_MAX_BYTES) {
        tp_conn_close(conn, ZN_LOG_WARN, "SASL token too large");
        return false;
    }
    uint8_t buf[ZN_TRANSPORT_AUTH_MAX_BYTES];
    buf[0] = first;
    if (len)
        memcpy(buf + 1, data, len);
    struct transport_frame *f = tp_frame_new(buf, (uint32_t)len + 1, true);
    if (!f) {
        tp_conn_close(conn, ZN_LOG_ERROR, "out of memory");
        return false;
    }
    tp_conn_enqueue(conn, f);
    tp_conn_flush(conn);
    return !conn->closing;
}

/* The learner's exchange failed: one line per run of failures, then the
 * connection closes and is retried. */
void tp_out_auth_failed(struct transport_conn *conn, const char *why)
{
    struct transport_link *link = conn->link;
    link->stats.connect_failures++;
    if (!link->tls_failure_logged)
        ZN_WARN("transport: SASL with peer=%u addr=%s failed reason=\"%s\"", link->cfg.id, link->addr_text, why);
    link->failure_logged = true;
    link->tls_failure_logged = true;
    tp_conn_close(conn, ZN_LOG_DEBUG, why);
}


/* One learner step with the server's token (none at the start). */
void tp_out_auth_step(struct transport_conn *conn, const uint8_t *in, size_t len)
{
    struct transport *t = conn->t;
    const uint8_t *out = NULL;
    size_t outlen = 0;
    char who[8], why[256] = "";
    int rc = t->auth.step(t->auth.arg, false, &conn->auth_session, in, len, &out, &outlen, who, sizeof who, why,
                          sizeof why);
    if (rc < 0)
        tp_out_auth_failed(conn, why[0] ? why : "SASL failed");
    else if (rc == 0)
        send_auth_frame(conn, 0, out, outlen);
    else /* done on our side: the server's SUCCESS still ends it */
        tp_conn_flush(conn);
}

/* The server's answer on the learner's connection. */
void tp_out_auth_reply(struct transport_conn *conn, const uint8_t *p, size_t len)
{
    struct transport *t = conn->t;
    struct transport_auth_msg m;
    char why[320];
    if (!conn->authenticating || transport_auth_decode(p, len, &m) != 0) {
        t->stats.protocol_errors++;
        tp_conn_close(conn, ZN_LOG_WARN, "peer sent bytes on a send-only connection");
        return;
    }
    if (m.status == TRANSPORT_AUTH_ERROR) {
        snprintf(why, sizeof why, "the member refused this one: %.*s", (int)(m.len > 256 ? 256 : m.len),
                 (const char *)m.data);
        tp_out_auth_failed(conn, why);
        return;
    }
    if (m.status == TRANSPORT_AUTH_CONTINUE) {
        tp_out_auth_step(conn, m.data, m.len);
        return;
    }
    if (m.len > 0) { /* the server's proof that it knows the password too (DIGEST-MD5's rspauth) */
        const uint8_t *out;
        size_t outlen;
        char who[8];
        if (t->auth.step(t->auth.arg, false, &conn->auth_session, m.data, m.len, &out, &outlen, who, sizeof who,
                         why, sizeof why) < 0) {
            tp_out_auth_failed(conn, why[0] ? why : "the member's SASL answer does not verify");
            return;
        }
    }
    conn->authenticating = false;
    t->auth.session_free(t->auth.arg, conn->auth_session);
    conn->auth_session = NULL;
    tp_out_authenticated(conn);
}

/* A token from a learner on an incoming connection: answer it. */
void tp_in_auth_token(struct transport_conn *conn, const uint8_t *p, size_t len)
{
    struct transport *t = conn->t;
    uint32_t id = conn->link->cfg.id;
    const uint8_t *out = NULL;
    size_t outlen = 0;
    char who[256] = "", why[256] = "";
    int rc = t->auth.step(t->auth.arg, true, &conn->auth_session, p, len, &out, &outlen, who, sizeof who, why,
                          sizeof why);
    if (rc == 0) {
        send_auth_frame(conn, TRANSPORT_AUTH_CONTINUE, out, outlen);
        return;
    }
    if (rc < 0 && t->auth.server_require) {
        char reason[320];
        snprintf(reason, sizeof reason, "SASL authentication of member id %u failed: %s", id,
                 why[0] ? why : "failed");
        send_auth_frame(conn, TRANSPORT_AUTH_ERROR, (const uint8_t *)reason, strlen(reason));
        t->stats.rejected++;
        tp_conn_close(conn, ZN_LOG_WARN, reason);
        return;
    }
    if (rc < 0) {
        ZN_WARN("transport: SASL authentication of member id %u failed (%s): let in all the same, as "
                "quorum.auth.serverRequireSasl is false", id, why[0] ? why : "failed");
        outlen = 0;
    } else {
        ZN_INFO("transport: member id %u authenticated with SASL as %s", id, who);
    }
    conn->auth_running = false;
    send_auth_frame(conn, TRANSPORT_AUTH_SUCCESS, out, rc < 0 ? 0 : outlen); /* out is the session's */
    t->auth.session_free(t->auth.arg, conn->auth_session);
    conn->auth_session = NULL;
}

/* TLS on an outgoing connection: advances the handshake with what was
 * fed, then expects TRANSPORT_TLS_ACCEPTED and nothing else. */
void tp_out_tls_pump(struct transport_conn *conn)
{
    for (;;) {
        ssize_t got = tls_read_plain(conn);
        if (got < 0)
            return;
        if (got == 0)
            break;
        if (conn->authenticating) {
            tp_in_consume(conn, conn->read_buf, (size_t)got);
            if (conn->closing)
                return;
            continue;
        }
        if (!conn->handshaking || got != 1 || conn->read_buf[0] != TRANSPORT_TLS_ACCEPTED) {
            conn->t->stats.protocol_errors++;
            tp_conn_close(conn, ZN_LOG_WARN, "peer sent bytes on a send-only connection");
            return;
        }
        conn->handshaking = false;
        tp_out_link_up(conn);
        if (conn->closing)
            return;
    }
    tls_send_pending(conn);
}

/* The receiver never writes on our outgoing connection: reading only tells
 * us when it closed (or misbehaves). */
/* TLS on an incoming connection: advances the handshake with what was fed
 * and hands the plaintext to the frame parser. */
void tp_in_tls_pump(struct transport_conn *conn)
{
    struct transport *t = conn->t;
    for (;;) {
        ssize_t got = tls_read_plain(conn);
        if (got < 0 || (tls_stream_just_established(conn->tls) && !in_tls_established(conn)))
            return;
        if (got == 0)
            break;
        tp_in_consume(conn, conn->read_buf, (size_t)got);
        if (conn->closing || t->stopping)
            return;
    }
    tls_send_pending(conn);
}

