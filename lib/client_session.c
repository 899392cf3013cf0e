/*
 * libznode's session state machine: resolve -> connect -> handshake
 * [-> SASL] -> connected -> lost -> next host, until the session ends
 * (expired, auth failed) or is closed.
 *
 * Owns the ConnectResponse, the SASL exchange (options.sasl_*, opcode 102,
 * after the ConnectResponse; the mechanisms are client_sasl.c's), what
 * follows an established session (watches and credentials re-sent before
 * any queued request), the session events, connection loss, the timers
 * (connect timeout, dead-server detection, pings, queue deadlines, reconnect
 * delay) and the close sequence.  The connection itself is client_conn.c's,
 * the request queues client_request.c's.
 *
 * Invariants:
 *  1. `unsent` is non-empty only while not CONNECTED (on connection every
 *     queued request is written at once, client_session_ready).
 *  2. In CLIENT_ENDED both queues are empty and no new request is accepted.
 *  3. Callbacks never run inside a public call that was given them: a write
 *     failing there is handled from the timer (write_failed).
 * Timing as ZooKeeper's Java client: connect timeout = session timeout /
 * hosts; once connected, a ping after a third of the negotiated timeout of
 * silence on our side, and the server is declared dead after two thirds of
 * it without a byte from it.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "client_sasl.h"

static void client_session_ready(struct zn_client *c);
static void client_sasl_begin(struct zn_client *c);

static void session_event(struct zn_client *c, int event)
{
    c->last_event = event;
    CLIENT_LOG(c, ZN_LOG_INFO, "session event=%s sid=0x%" PRIx64 " server=%s",
               zn_session_event_name(event), (uint64_t)c->session_id, c->current_server);
    if (c->options.session_cb)
        c->options.session_cb(c, event, c->options.session_arg);
}

/* The current connection failed or timed out: fail what was sent, try the next host. */
void client_connection_lost(struct zn_client *c, const char *why)
{
    snprintf(c->last_failure, sizeof c->last_failure, "%s: %s", c->current_server, why);
    if (c->state == CLIENT_ENDED || c->finishing)
        return;
    CLIENT_LOG(c, ZN_LOG_WARN, "connection lost server=%s state=%d reason=%s", c->current_server,
               (int)c->state, why);
    bool was_connected = c->state == CLIENT_CONNECTED || c->state == CLIENT_CLOSING;
    client_conn_close(c);
    if (c->close_requested) {
        client_finish_close(c);
        return;
    }
    c->state = CLIENT_WAITING;
    if (was_connected) {
        session_event(c, ZN_SESSION_DISCONNECTED);
    } else {
        c->failed_attempts++;
    }
    client_fail_queue(c, &c->inflight, ZN_CONNECTIONLOSS);
    /* auth waits stay: every credential is re-sent after the reconnect and answered then. */
    if (c->state != CLIENT_WAITING) /* a callback closed the client */
        return;
    if (c->failed_attempts >= c->host_count) {
        /* Every host failed in a row: pause before the next round, as ZooKeeper's clients do. */
        c->failed_attempts = 0;
        c->reconnect_at_ms = uv_now(c->loop) + CLIENT_RECONNECT_DELAY_MS;
        client_arm_timer(c);
        return;
    }
    client_connect_next(c);
}

void client_handle_connect_response(struct zn_client *c, const uint8_t *body, size_t len)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, body, len, &arena);
    struct zn_connect_response resp;
    memset(&resp, 0, sizeof resp);
    if (jute_read_connect_response(&r, &resp) != 0) {
        zn_arena_free(&arena);
        client_connection_lost(c, "bad ConnectResponse");
        return;
    }
    if (resp.timeout_ms <= 0) {
        zn_arena_free(&arena);
        CLIENT_LOG(c, ZN_LOG_WARN, "session expired sid=0x%" PRIx64, (uint64_t)c->session_id);
        client_end_session(c, ZN_SESSION_EXPIRED, ZN_SESSIONEXPIRED);
        return;
    }
    c->session_id = resp.session_id;
    memset(c->passwd, 0, ZN_PASSWD_BYTES);
    if (resp.passwd.len > 0)
        memcpy(c->passwd, resp.passwd.data,
               resp.passwd.len < ZN_PASSWD_BYTES ? (size_t)resp.passwd.len : ZN_PASSWD_BYTES);
    c->negotiated_timeout_ms = resp.timeout_ms;
    c->read_only_server = resp.has_read_only && resp.read_only;
    zn_arena_free(&arena);
    if (c->sasl) {
        client_sasl_begin(c);
        return;
    }
    client_session_ready(c);
}

/* The session is established (and authenticated when SASL is configured):
 * re-registers watches and credentials, reports it, sends what is queued. */
static void client_session_ready(struct zn_client *c)
{
    c->state = CLIENT_CONNECTED;
    c->failed_attempts = 0;
    bool reconnect = c->ever_connected;
    c->ever_connected = true;

    /* Re-register watches and credentials before any queued request, so a
     * request sent now cannot miss an event its watch would have reported. */
    struct jute_writer w;
    jute_writer_init(&w);
    int packets = client_watch_encode_set_watches(c, &w);
    for (struct client_auth *a = c->auths; a; a = a->next) {
        struct zn_request_header hdr = {ZN_XID_AUTH, ZN_OP_AUTH};
        struct zn_request req;
        memset(&req, 0, sizeof req);
        req.type = ZN_OP_AUTH;
        req.scheme = a->scheme;
        req.auth.data = a->cert;
        req.auth.len = a->cert_len;
        size_t f = jute_frame_begin(&w);
        jute_write_request_header(&w, &hdr);
        jute_write_request(&w, &req);
        jute_frame_end(&w, f);
    }
    int rc = packets < 0 ? packets : w.error;
    if (rc == 0 && w.len > 0)
        rc = client_conn_write(c, w.data, w.len);
    jute_writer_free(&w);
    if (rc) {
        client_connection_lost(c, "cannot write SetWatches/auth");
        return;
    }
    CLIENT_LOG(c, ZN_LOG_INFO,
               "session established sid=0x%" PRIx64 " timeout_ms=%d server=%s reconnect=%d "
               "set_watches_packets=%d",
               (uint64_t)c->session_id, c->negotiated_timeout_ms, c->current_server, reconnect,
               packets);
    session_event(c, c->read_only_server ? ZN_SESSION_CONNECTED_READ_ONLY : ZN_SESSION_CONNECTED);
    if (c->state != CLIENT_CONNECTED)
        return;
    client_flush_unsent(c);
    client_arm_timer(c);
}

/* ---- SASL (options.sasl_*): the exchange after the ConnectResponse ---- */

/* Local failure or rejection: terminal, as in ZooKeeper's clients. */
static void client_sasl_failed(struct zn_client *c, const char *why)
{
    char host[sizeof c->current_server], what[160];
    client_current_host(c, host, sizeof host);
    client_sasl_describe(c->sasl, host, what, sizeof what);
    snprintf(c->last_failure, sizeof c->last_failure, "%.60s: %s: %.170s", c->current_server, what, why);
    CLIENT_LOG(c, ZN_LOG_ERROR, "sasl: %s server=%s: %s", what, c->current_server, why);
    client_sasl_end(c->sasl);
    client_end_session(c, ZN_SESSION_AUTH_FAILED, ZN_AUTHFAILED);
}

/* Acts on client_sasl_start/step's verdict: sends the token, or the session is ready. */
static void client_sasl_next(struct zn_client *c, int verdict, const uint8_t *token, unsigned token_len,
                             const char *why)
{
    if (verdict == CLIENT_SASL_FAILED) {
        client_sasl_failed(c, why);
        return;
    }
    if (verdict == CLIENT_SASL_DONE) {
        client_sasl_end(c->sasl);
        CLIENT_LOG(c, ZN_LOG_DEBUG, "sasl: authenticated server=%s", c->current_server);
        client_session_ready(c);
        return;
    }
    int32_t xid = c->next_xid;
    c->next_xid = xid == INT32_MAX ? 1 : xid + 1;
    struct zn_request req;
    memset(&req, 0, sizeof req);
    req.type = ZN_OP_SASL;
    req.auth.data = (uint8_t *)token;
    req.auth.len = (int32_t)token_len;
    if (client_write_request(c, xid, &req) != 0) {
        client_connection_lost(c, "cannot write the SASL packet");
        return;
    }
    c->sasl_xid = xid;
    c->sasl_last_sent = verdict == CLIENT_SASL_SEND_LAST;
}

static void client_sasl_begin(struct zn_client *c)
{
    c->state = CLIENT_AUTHENTICATING;
    char host[sizeof c->current_server];
    client_current_host(c, host, sizeof host);
    const uint8_t *token = NULL;
    unsigned len = 0;
    char why[256] = "";
    int verdict = client_sasl_start(c->sasl, host, &token, &len, why, sizeof why);
    client_sasl_next(c, verdict, token, len, why);
}

/* The server's answer to a SASL packet: SetSASLResponse, or an error (AUTHFAILED). */
void client_handle_sasl_reply(struct zn_client *c, const struct zn_reply_header *hdr, struct jute_reader *r)
{
    if (hdr->err != 0) {
        char why[128];
        snprintf(why, sizeof why, "rejected by the server (%s)", zn_errname(hdr->err));
        client_sasl_failed(c, why);
        return;
    }
    struct zn_response resp;
    memset(&resp, 0, sizeof resp);
    if (jute_read_response(r, ZN_OP_SASL, &resp) != 0) {
        client_connection_lost(c, "bad SASL response");
        return;
    }
    if (c->sasl_last_sent) {
        client_sasl_next(c, CLIENT_SASL_DONE, NULL, 0, NULL);
        return;
    }
    const uint8_t *token = NULL;
    unsigned len = 0;
    char why[256] = "";
    int verdict = client_sasl_step(c->sasl, resp.data.data, resp.data.len > 0 ? (size_t)resp.data.len : 0,
                                   &token, &len, why, sizeof why);
    client_sasl_next(c, verdict, token, len, why);
}

/* ---- timers ---- */

static int32_t connect_timeout_ms(const struct zn_client *c)
{
    int32_t t = c->options.session_timeout_ms / c->host_count;
    return t > 0 ? t : 1;
}

static int32_t read_timeout_ms(const struct zn_client *c)
{
    return c->negotiated_timeout_ms * 2 / 3;
}

static uint64_t min_deadline(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void on_timer(uv_timer_t *t);

void client_arm_timer(struct zn_client *c)
{
    if (c->finishing)
        return;
    uint64_t next = UINT64_MAX;
    switch (c->state) {
    case CLIENT_RESOLVING:
    case CLIENT_CONNECTING:
    case CLIENT_HANDSHAKE:
    case CLIENT_AUTHENTICATING:
        next = c->attempt_started_ms + (uint64_t)connect_timeout_ms(c);
        break;
    case CLIENT_CONNECTED:
        next = min_deadline(c->last_recv_ms + (uint64_t)read_timeout_ms(c),
                            c->last_send_ms + (uint64_t)(c->negotiated_timeout_ms / 3));
        break;
    case CLIENT_WAITING:
        next = c->reconnect_at_ms;
        break;
    case CLIENT_CLOSING:
        next = c->close_deadline_ms;
        break;
    case CLIENT_ENDED:
        break;
    }
    if (c->unsent.head)
        next = min_deadline(next, c->unsent.head->deadline_ms);
    if (c->write_failed)
        next = 0;
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct zn_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->write_failed) {
        c->write_failed = false;
        if (c->state == CLIENT_CONNECTED || c->state == CLIENT_CLOSING) {
            client_connection_lost(c, "write failed");
            return;
        }
    }
    /* Queued requests that waited too long for a connection. */
    while (c->unsent.head && c->unsent.head->deadline_ms <= now && c->state != CLIENT_CONNECTED) {
        struct client_request *r = client_queue_pop(&c->unsent);
        client_fail_request(c, r, ZN_CONNECTIONLOSS);
        if (c->finishing)
            return;
    }
    switch (c->state) {
    case CLIENT_RESOLVING:
    case CLIENT_CONNECTING:
    case CLIENT_HANDSHAKE:
    case CLIENT_AUTHENTICATING:
        if (now >= c->attempt_started_ms + (uint64_t)connect_timeout_ms(c)) {
            if (c->gai_active) {
                /* The lookup cannot be abandoned safely; cancel it and wait for its callback. */
                uv_cancel((uv_req_t *)&c->gai_req);
                c->attempt_started_ms = now; /* re-check after another period */
                break;
            }
            client_connection_lost(c, "connect timeout");
            return;
        }
        break;
    case CLIENT_CONNECTED:
        if (now >= c->last_recv_ms + (uint64_t)read_timeout_ms(c)) {
            client_connection_lost(c, "no bytes from the server for 2/3 of the session timeout");
            return;
        }
        if (now >= c->last_send_ms + (uint64_t)(c->negotiated_timeout_ms / 3)) {
            uint8_t ping[12] = {0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, ZN_OP_PING};
            if (client_conn_write(c, ping, sizeof ping) != 0) {
                client_connection_lost(c, "cannot write ping");
                return;
            }
        }
        break;
    case CLIENT_WAITING:
        if (now >= c->reconnect_at_ms && !c->close_requested) {
            client_connect_next(c);
            return;
        }
        break;
    case CLIENT_CLOSING:
        if (now >= c->close_deadline_ms) {
            client_finish_close(c);
            return;
        }
        break;
    case CLIENT_ENDED:
        break;
    }
    client_arm_timer(c);
}

/* ---- ending ---- */

/* The session is over for good (expired or auth failed): report, fail everything, stop. */
void client_end_session(struct zn_client *c, int event, int rc)
{
    client_conn_close(c);
    c->state = CLIENT_ENDED;
    uv_timer_stop(&c->timer);
    session_event(c, event);
    client_watch_end_all(c, event == ZN_SESSION_EXPIRED ? ZN_STATE_EXPIRED : ZN_STATE_AUTH_FAILED);
    client_fail_queue(c, &c->inflight, rc);
    client_fail_queue(c, &c->unsent, rc);
    client_fail_auth_waits(c, rc);
}

static void on_handle_closed(uv_handle_t *h) { client_release(h->data); }

/* Fails what is left, releases every handle; the client is freed once they all called back. */
void client_finish_close(struct zn_client *c)
{
    if (c->finishing)
        return;
    c->finishing = true;
    bool session_was_live = c->state != CLIENT_ENDED;
    client_conn_close(c);
    c->state = CLIENT_ENDED;
    if (session_was_live) {
        session_event(c, ZN_SESSION_CLOSED);
        client_watch_end_all(c, ZN_STATE_CLOSED);
    }
    client_fail_queue(c, &c->inflight, ZN_CLOSING);
    client_fail_queue(c, &c->unsent, ZN_CLOSING);
    client_fail_auth_waits(c, ZN_CLOSING);
    if (c->gai_active)
        uv_cancel((uv_req_t *)&c->gai_req);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->sync_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->flush_prepare, on_handle_closed);
}

void zn_client_close(struct zn_client *c, zn_close_cb close_cb, void *arg)
{
    ZN_ASSERT(c && !c->close_requested);
    c->close_requested = true;
    c->close_cb = close_cb;
    c->close_arg = arg;
    if (c->state != CLIENT_CONNECTED) {
        client_finish_close(c);
        return;
    }
    client_fail_queue(c, &c->unsent, ZN_CLOSING);
    uint8_t frame[12];
    int32_t xid = c->next_xid;
    c->next_xid = xid == INT32_MAX ? 1 : xid + 1;
    frame[0] = 0, frame[1] = 0, frame[2] = 0, frame[3] = 8;
    frame[4] = (uint8_t)((uint32_t)xid >> 24), frame[5] = (uint8_t)((uint32_t)xid >> 16);
    frame[6] = (uint8_t)((uint32_t)xid >> 8), frame[7] = (uint8_t)xid;
    uint32_t op = (uint32_t)ZN_OP_CLOSESESSION;
    frame[8] = (uint8_t)(op >> 24), frame[9] = (uint8_t)(op >> 16);
    frame[10] = (uint8_t)(op >> 8), frame[11] = (uint8_t)op;
    struct client_request *r = calloc(1, sizeof *r);
    if (!r || client_conn_write(c, frame, sizeof frame) != 0) {
        free(r);
        client_finish_close(c);
        return;
    }
    r->xid = xid;
    r->type = ZN_OP_CLOSESESSION;
    client_queue_push(&c->inflight, r);
    c->close_xid = xid;
    c->state = CLIENT_CLOSING;
    int32_t wait = read_timeout_ms(c);
    c->close_deadline_ms =
        uv_now(c->loop) + (uint64_t)(wait < CLIENT_CLOSE_WAIT_MS ? wait : CLIENT_CLOSE_WAIT_MS);
    client_arm_timer(c);
}
