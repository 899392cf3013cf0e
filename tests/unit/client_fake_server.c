/*
 * The fake ZooKeeper server client_fake_server.h describes: the handshake,
 * SASL, requests and replies, and the listener.  Called by test_client.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client_fake_server.h"
#include "config.h"
#include "jute.h"
#include "log.h"
#include "saslauth.h"
#include "znode/client.h"

static void fake_on_closed(uv_handle_t *h)
{
    struct fake_conn *fc = h->data;
    saslauth_session_free(fc->sasl);
    free(fc->in);
    free(fc);
}

void fake_drop(struct fake_server *srv)
{
    struct fake_conn *fc = srv->conn;
    if (!fc)
        return;
    srv->conn = NULL;
    fc->closing = true;
    uv_close((uv_handle_t *)&fc->tcp, fake_on_closed);
}

static void fake_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void fake_send(struct fake_conn *fc, struct jute_writer *w)
{
    uv_write_t *req = malloc(sizeof *req);
    size_t len;
    uint8_t *bytes = jute_writer_take(w, &len);
    req->data = bytes;
    uv_buf_t buf = uv_buf_init((char *)bytes, (unsigned)len);
    assert_int_equal(uv_write(req, (uv_stream_t *)&fc->tcp, &buf, 1, fake_write_done), 0);
}

static void fake_put_event(struct fake_server *srv, struct jute_writer *w, int type,
                           const char *path)
{
    struct zn_reply_header h = {ZN_XID_NOTIFICATION, -1, 0};
    struct zn_watcher_event ev = {type, ZN_STATE_SYNC_CONNECTED, (char *)path};
    size_t f = jute_frame_begin(w);
    jute_write_reply_header(w, &h);
    jute_write_watcher_event(w, &ev);
    jute_frame_end(w, f);
}

void fake_send_event(struct fake_server *srv, int type, const char *path)
{
    assert_non_null(srv->conn);
    struct jute_writer w;
    jute_writer_init(&w);
    fake_put_event(srv, &w, type, path);
    fake_send(srv->conn, &w);
    jute_writer_free(&w);
}

static void fake_handshake(struct fake_server *srv, struct fake_conn *fc, struct jute_reader *r)
{
    struct zn_connect_request creq;
    memset(&creq, 0, sizeof creq);
    assert_int_equal(jute_read_connect_request(r, &creq), 0);
    srv->connects++;
    srv->connect_session_id = creq.session_id;
    srv->connect_last_zxid = creq.last_zxid_seen;
    srv->connect_protocol = creq.protocol_version;
    if (creq.passwd.len == 16)
        memcpy(srv->connect_passwd, creq.passwd.data, 16);
    uint8_t passwd[16];
    for (int i = 0; i < 16; i++)
        passwd[i] = (uint8_t)(i + 1);
    struct zn_connect_response resp = {0};
    resp.protocol_version = 0;
    resp.timeout_ms = srv->expire && creq.session_id ? 0 : srv->timeout_ms;
    resp.session_id = srv->expire ? 0 : creq.session_id ? creq.session_id : FAKE_SESSION_ID;
    resp.passwd.data = passwd;
    resp.passwd.len = 16;
    resp.has_read_only = true;
    struct jute_writer w;
    jute_writer_init(&w);
    size_t f = jute_frame_begin(&w);
    jute_write_connect_response(&w, &resp);
    jute_frame_end(&w, f);
    fake_send(fc, &w);
    jute_writer_free(&w);
    fc->handshaken = true;
}

/* A SASL packet: answered by znoded's saslauth (or AUTHFAILED when scripted so). */
static void fake_sasl(struct fake_server *srv, struct fake_conn *fc, const struct zn_request_header *h,
                      const struct zn_request *req)
{
    const char *out = NULL;
    unsigned outlen = 0;
    char user[CONFIG_SASL_NAME_BYTES] = "", why[256];
    enum saslauth_result res =
        srv->sasl_reject ? SASLAUTH_FAILED
                         : saslauth_step(&fc->sasl, req->auth.data, req->auth.len > 0 ? (size_t)req->auth.len : 0,
                                         &out, &outlen, user, sizeof user, why, sizeof why);
    if (res == SASLAUTH_DONE)
        snprintf(srv->sasl_user, sizeof srv->sasl_user, "%s", user);
    struct zn_reply_header rh = {h->xid, 0, res == SASLAUTH_FAILED ? ZN_AUTHFAILED : 0};
    struct zn_response resp;
    memset(&resp, 0, sizeof resp);
    resp.type = ZN_OP_SASL;
    resp.data.data = (uint8_t *)out;
    resp.data.len = (int32_t)outlen;
    struct jute_writer w;
    jute_writer_init(&w);
    size_t f = jute_frame_begin(&w);
    jute_write_reply_header(&w, &rh);
    if (rh.err == 0)
        jute_write_response(&w, &resp);
    jute_frame_end(&w, f);
    fake_send(fc, &w);
    jute_writer_free(&w);
}

static void fake_request(struct fake_server *srv, struct fake_conn *fc, struct jute_reader *r)
{
    struct zn_request_header h;
    assert_int_equal(jute_read_request_header(r, &h), 0);
    struct zn_request req;
    memset(&req, 0, sizeof req);
    if (h.type != ZN_OP_PING && h.type != ZN_OP_CLOSESESSION)
        assert_int_equal(jute_read_request(r, h.type, &req), 0);
    if (h.type != ZN_OP_PING && h.type != ZN_OP_CLOSESESSION && srv->log_len < (int)sizeof srv->log - 1)
        srv->log[srv->log_len++] = h.type == ZN_OP_SASL          ? 'S'
                                   : h.type == ZN_OP_SETWATCHES ? 'W'
                                   : h.type == ZN_OP_AUTH       ? 'A'
                                                                : 'R';
    if (h.type == ZN_OP_SASL) {
        fake_sasl(srv, fc, &h, &req);
        return;
    }
    if (h.type == ZN_OP_PING) {
        srv->pings++;
    } else if (h.type == ZN_OP_SETWATCHES) {
        srv->set_watches++;
        srv->set_watches_zxid = req.relative_zxid;
        for (int k = 0; k < 3; k++) {
            srv->set_watches_count[k] = req.watches[k].count;
            srv->set_watches_total += req.watches[k].count;
            for (int i = 0; i < req.watches[k].count && i < FAKE_MAX_PATHS; i++)
                snprintf(srv->set_watches_paths[k][i], FAKE_PATH_BYTES, "%s",
                         req.watches[k].items[i]);
        }
    } else if (h.type == ZN_OP_CLOSESESSION) {
        srv->close_sessions++;
    } else {
        srv->requests++;
        snprintf(srv->last_path, sizeof srv->last_path, "%s", req.path ? req.path : "");
        if (srv->drop_on_request) {
            fake_drop(srv);
            return;
        }
    }
    if (srv->silent)
        return;
    struct zn_reply_header rh = {h.xid, srv->zxid, 0};
    struct zn_response resp;
    memset(&resp, 0, sizeof resp);
    resp.type = h.type;
    bool missing = req.path && strstr(req.path, "missing");
    char *children[2] = {"a", "b"};
    uint8_t value[1] = {'v'};
    switch (h.type) {
    case ZN_OP_GETDATA:
    case ZN_OP_EXISTS:
        if (missing)
            rh.err = ZN_NONODE;
        resp.data.data = value;
        resp.data.len = 1;
        resp.stat.version = 7;
        resp.stat.data_length = 1;
        break;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETCHILDREN2:
        resp.children.count = 2;
        resp.children.items = children;
        break;
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
        resp.path = req.path;
        break;
    }
    struct jute_writer w;
    jute_writer_init(&w);
    if (srv->event_before_reply[0]) {
        fake_put_event(srv, &w, ZN_EVENT_CHANGED, srv->event_before_reply);
        srv->event_before_reply[0] = '\0';
    }
    size_t f = jute_frame_begin(&w);
    jute_write_reply_header(&w, &rh);
    if (rh.err == 0 && h.type != ZN_OP_PING && h.type != ZN_OP_SETWATCHES &&
        h.type != ZN_OP_CLOSESESSION && h.type != ZN_OP_DELETE && h.type != ZN_OP_SETDATA)
        jute_write_response(&w, &resp);
    jute_frame_end(&w, f);
    assert_int_equal(w.error, 0);
    fake_send(fc, &w);
    jute_writer_free(&w);
    if (h.type == ZN_OP_CLOSESESSION)
        fake_drop(srv);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fake_conn *fc = h->data;
    if (fc->cap - fc->len < 65536) {
        fc->cap = fc->cap ? fc->cap * 2 : 131072;
        fc->in = realloc(fc->in, fc->cap);
    }
    *buf = uv_buf_init((char *)fc->in + fc->len, (unsigned)(fc->cap - fc->len));
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fake_conn *fc = s->data;
    struct fake_server *srv = fc->srv;
    if (fc->closing)
        return;
    if (nread < 0) {
        if (srv->conn == fc)
            fake_drop(srv);
        return;
    }
    fc->len += (size_t)nread;
    size_t pos = 0;
    while (!fc->closing && fc->len - pos >= 4) {
        const uint8_t *p = fc->in + pos;
        uint32_t flen = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        if (fc->len - pos - 4 < flen)
            break;
        struct zn_arena arena;
        zn_arena_init(&arena);
        struct jute_reader r;
        jute_reader_init(&r, p + 4, flen, &arena);
        pos += 4 + flen;
        if (!fc->handshaken)
            fake_handshake(srv, fc, &r);
        else
            fake_request(srv, fc, &r);
        zn_arena_free(&arena);
    }
    if (!fc->closing) {
        memmove(fc->in, fc->in + pos, fc->len - pos);
        fc->len -= pos;
    }
}

static void fake_accept(uv_stream_t *listener, int status)
{
    struct fake_server *srv = listener->data;
    assert_int_equal(status, 0);
    struct fake_conn *fc = calloc(1, sizeof *fc);
    fc->srv = srv;
    uv_tcp_init(listener->loop, &fc->tcp);
    fc->tcp.data = fc;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&fc->tcp), 0);
    fake_drop(srv); /* one client connection at a time */
    srv->conn = fc;
    uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_read);
}

void fake_start(uv_loop_t *loop, struct fake_server *srv)
{
    memset(srv, 0, sizeof *srv);
    srv->timeout_ms = 3000;
    srv->zxid = 0x10;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 8, fake_accept), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    srv->port = ntohs(bound.sin_port);
}

void fake_stop(struct fake_server *srv)
{
    fake_drop(srv);
    if (!uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
}
