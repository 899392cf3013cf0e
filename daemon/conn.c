/*
 * Client connections: the listener, accepting under maxClientCnxns, framing
 * (4-byte big-endian length, at most jute.maxbuffer), the four-letter-word
 * sniff on a new connection, output batching and backpressure, and closing.
 *
 * Output: replies and events are appended to conn.out and the conn is put
 * on the server's dirty list; server_flush() hands each dirty conn's bytes
 * to libuv in one write.  A conn whose unsent output passes
 * CONN_OUTPUT_SOFT_LIMIT_BYTES is not read from until it drains; past
 * CONN_OUTPUT_HARD_LIMIT_BYTES it is dropped: a client that never reads must
 * not make the server grow without bound.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "server.h"

struct write_req {
    uv_write_t req;
    uint8_t *data;
    size_t len;
    struct conn *conn;
};

/* Bytes of replies and events this conn owes its client and has not sent. */
static size_t pending_output(const struct conn *c) { return c->writes_in_flight_bytes + c->out.len; }


static void on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    for (int i = 0; i < c->auth_count; i++) {
        free(c->auth[i].scheme);
        free(c->auth[i].id);
    }
    jute_writer_free(&c->out);
    free(c->rbuf);
    free(c);
}

void conn_close(struct conn *c, const char *why)
{
    if (c->state == CONN_CLOSING)
        return;
    struct server *srv = c->server;
    if (why)
        ZN_INFO("closing connection peer=%s sid=0x%" PRIx64 " reason=\"%s\"", c->peer,
                c->session ? (uint64_t)c->session->id : 0, why);
    c->state = CONN_CLOSING;
    request_conn_closed(c);
    watch_remove_owner(srv->watches, &c->watches);
    struct session *s = c->session;
    if (s && s->conn == c)
        s->conn = NULL;
    c->session = NULL;
    if (s && s->local_read_only && !s->conn)
        session_remove(srv, s->id); /* never replicated: nobody else can resume it */
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->conn_count--;
    /* Pending uv_write requests complete with UV_ECANCELED before on_close. */
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_mark_dirty(struct conn *c)
{
    if (c->dirty || c->state == CONN_CLOSING)
        return;
    c->dirty = true;
    c->next_dirty = c->server->dirty;
    c->server->dirty = c;
}

/* Bytes reserved for the frame length in conn_frame_begin. */
#define CONN_FRAME_LENGTH_BYTES 4

struct jute_writer *conn_frame_begin(struct conn *c, size_t *start)
{
    if (c->state == CONN_CLOSING || c->output_overflow)
        return NULL;
    if (c->out.error != 0) {
        conn_close(c, "out of memory buffering replies");
        return NULL;
    }
    *start = c->out.len;
    static const uint8_t placeholder[CONN_FRAME_LENGTH_BYTES];
    jute_write_raw(&c->out, placeholder, CONN_FRAME_LENGTH_BYTES);
    return &c->out;
}

void conn_frame_end(struct conn *c, size_t start)
{
    ZN_ASSERT(c->out.len >= start + CONN_FRAME_LENGTH_BYTES);
    if (c->out.error != 0) {
        /* Out of memory half-way: the client would wait for this reply
         * forever, and the stream holds a partial frame.  Drop both. */
        c->out.len = start;
        c->out.error = 0;
        conn_close(c, "out of memory encoding a reply");
        return;
    }
    if (pending_output(c) > CONN_OUTPUT_HARD_LIMIT_BYTES) {
        /* A client that does not read: drop it (at the next flush) rather
         * than buffer without bound. */
        c->out.len = start;
        c->output_overflow = true;
        conn_mark_dirty(c);
        return;
    }
    size_t body_len = c->out.len - start - CONN_FRAME_LENGTH_BYTES;
    ZN_ASSERT(body_len <= UINT32_MAX);
    uint32_t n = htonl((uint32_t)body_len);
    memcpy(c->out.data + start, &n, CONN_FRAME_LENGTH_BYTES);
    c->stats.packets_sent++;
    c->server->stats.packets_sent++;
    conn_mark_dirty(c);
}

void conn_send_frame(struct conn *c, const struct jute_writer *body)
{
    if (c->state == CONN_CLOSING || c->output_overflow)
        return;
    if (pending_output(c) + 4 + body->len > CONN_OUTPUT_HARD_LIMIT_BYTES) {
        /* A client that does not read: drop it (at the next flush) rather
         * than buffer without bound. */
        c->output_overflow = true;
        conn_mark_dirty(c);
        return;
    }
    uint8_t len_be[4];
    uint32_t n = htonl((uint32_t)body->len);
    memcpy(len_be, &n, 4);
    jute_write_raw(&c->out, len_be, 4);
    jute_write_raw(&c->out, body->data, body->len);
    c->stats.packets_sent++;
    c->server->stats.packets_sent++;
    conn_mark_dirty(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static bool process_frames(struct conn *c);


static void update_backpressure(struct conn *c)
{
    bool want_pause = pending_output(c) > CONN_OUTPUT_SOFT_LIMIT_BYTES ||
                      c->queued >= CONN_MAX_QUEUED_REQUESTS;
    if (want_pause && !c->reading_paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading_paused = true;
    } else if (!want_pause && c->reading_paused && c->state != CONN_CLOSING) {
        c->reading_paused = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        /* Requests already read but left while the output drained. */
        if (c->rlen >= 4)
            process_frames(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    c->writes_in_flight_bytes -= w->len;
    free(w->data);
    free(w);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    if (c->close_after_flush && c->writes_in_flight_bytes == 0 && c->out.len == 0) {
        conn_close(c, NULL);
        return;
    }
    update_backpressure(c);
}

static void conn_flush(struct conn *c)
{
    c->dirty = false;
    if (c->state == CONN_CLOSING)
        return;
    if (c->out.len == 0) {
        if (c->close_after_flush && c->writes_in_flight_bytes == 0)
            conn_close(c, NULL);
        return;
    }
    if (c->output_overflow || pending_output(c) > CONN_OUTPUT_HARD_LIMIT_BYTES) {
        conn_close(c, "client does not read its replies: output over the limit");
        return;
    }
    if (c->writes_in_flight_bytes == 0) {
        /* The socket usually takes everything at once: then no write request
         * is allocated and the output buffer is kept for the next turn.
         * Only what it does not take is queued (in order: nothing else is). */
        uv_buf_t now = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c, uv_strerror(n));
            return;
        }
        if (n > 0) {
            memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
            c->out.len -= (size_t)n;
        }
        if (c->out.len == 0) {
            if (c->close_after_flush)
                conn_close(c, NULL);
            else
                update_backpressure(c);
            return;
        }
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w) {
        conn_close(c, "out of memory");
        return;
    }
    w->conn = c;
    w->data = jute_writer_take(&c->out, &w->len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    c->writes_in_flight_bytes += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->writes_in_flight_bytes -= w->len;
        free(w->data);
        free(w);
        conn_close(c, uv_strerror(rc));
        return;
    }
    update_backpressure(c);
}

void server_flush(struct server *srv)
{
    while (srv->dirty) {
        struct conn *c = srv->dirty;
        srv->dirty = c->next_dirty;
        c->next_dirty = NULL;
        conn_flush(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    if (c->rcap - c->rlen < SERVER_READ_CHUNK_BYTES / 4) {
        size_t cap = c->rcap ? c->rcap * 2 : SERVER_READ_CHUNK_BYTES;
        size_t max = c->server->cfg.jute_max_buffer + 4 + SERVER_READ_CHUNK_BYTES;
        if (cap > max)
            cap = max;
        if (cap > c->rcap) {
            uint8_t *p = realloc(c->rbuf, cap);
            if (p) {
                c->rbuf = p;
                c->rcap = cap;
            }
        }
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static uint32_t read_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Handles every complete frame in rbuf; returns false if the conn was closed. */
static bool process_frames(struct conn *c)
{
    struct server *srv = c->server;
    size_t off = 0;
    while (c->state != CONN_CLOSING && !c->close_after_flush && c->rlen - off >= 4) {
        if (pending_output(c) > CONN_OUTPUT_SOFT_LIMIT_BYTES)
            break; /* the rest waits in rbuf until the client reads (update_backpressure) */
        const uint8_t *p = c->rbuf + off;
        if (c->state == CONN_HANDSHAKE && c->stats.packets_received == 0) {
            unsigned bit = config_4lw_bit((const char *)p);
            if (bit) {
                char word[4];
                memcpy(word, p, 4);
                fourlw_handle(c, word);
                return false;
            }
        }
        uint32_t len = read_be32(p);
        if (len > srv->cfg.jute_max_buffer) {
            char why[128];
            snprintf(why, sizeof why, "packet length %u is out of the range [0, %zu] (jute.maxbuffer)",
                     len, srv->cfg.jute_max_buffer);
            srv->stats.malformed_packets++;
            conn_close(c, why);
            return false;
        }
        if (c->rlen - off - 4 < len)
            break;
        c->stats.packets_received++;
        srv->stats.packets_received++;
        if (c->state == CONN_HANDSHAKE)
            request_handle_connect(c, p + 4, len);
        else
            request_handle_packet(c, p + 4, len);
        off += 4 + len;
    }
    if (c->state == CONN_CLOSING)
        return false;
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return true;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    struct server *srv = c->server;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "client closed the connection" : uv_strerror((int)nread));
        server_flush(srv);
        return;
    }
    c->rlen += (size_t)nread;
    if (process_frames(c))
        update_backpressure(c);
    server_flush(srv);
}

static size_t count_from(struct server *srv, const char *ip)
{
    size_t n = 0;
    for (struct conn *c = srv->conns; c; c = c->next)
        n += strcmp(c->peer_ip, ip) == 0;
    return n;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *srv = listener->data;
    if (status < 0) {
        ZN_WARN("accept failed error=\"%s\"", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->server = srv;
    jute_writer_init(&c->out);
    watch_owner_init(&c->watches);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    strcpy(c->peer_ip, "?");
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            uv_ip4_name(in, c->peer_ip, sizeof c->peer_ip);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(in6, c->peer_ip, sizeof c->peer_ip);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", c->peer_ip, port);
    uv_tcp_nodelay(&c->tcp, 1);
    size_t from_ip = count_from(srv, c->peer_ip);
    bool over_total = srv->conn_count >= SERVER_MAX_CONNECTIONS ||
                      (srv->cfg.max_cnxns > 0 && srv->conn_count >= (size_t)srv->cfg.max_cnxns);
    if ((srv->cfg.max_client_cnxns > 0 && from_ip >= (size_t)srv->cfg.max_client_cnxns) || over_total) {
        srv->stats.connections_refused++;
        if (over_total)
            ZN_WARN("too many connections: %zu open, maxCnxns is %d; refusing %s", srv->conn_count,
                    srv->cfg.max_cnxns, c->peer);
        else
            ZN_WARN("too many connections from %s - max is %d", c->peer_ip, srv->cfg.max_client_cnxns);
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    c->stats.established_ms = server_now_ms();
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->conn_count++;
    c->state = CONN_HANDSHAKE;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int server_listen(struct server *srv)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(srv->cfg.client_port_address, srv->cfg.client_port,
                         (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(srv->cfg.client_port_address, srv->cfg.client_port,
                         (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        ZN_ERROR("clientPortAddress %s is not an IP address", srv->cfg.client_port_address);
        return ZN_CONFIG;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, srv->cfg.listen_backlog, on_connection);
    if (rc != 0) {
        ZN_ERROR("cannot listen on %s:%d: %s", srv->cfg.client_port_address, srv->cfg.client_port,
                 uv_strerror(rc));
        return ZN_IO;
    }
    ZN_INFO("serving clients on %s:%d", srv->cfg.client_port_address, srv->cfg.client_port);
    return 0;
}
