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
 *
 * Input: reads of a connection with no partial frame land in one buffer
 * the whole server shares (read_buffer: libuv calls on_read right after
 * on_alloc, on this thread) and every complete frame is handled from
 * there; only what is left (a frame not complete yet, or frames held back
 * by backpressure or parking) is copied into the connection's rbuf, which
 * grows as the rest arrives (up to one largest frame and a chunk).  The output buffer is kept from one
 * turn to the next while requests are outstanding.  An idle connection's
 * buffers are freed: a small output buffer at once (release_idle_output),
 * the rest by conn_release_idle (the session timer's sweep).  So an idle
 * session costs its struct conn and its session records, not buffers:
 * about 0.9 KB of RSS, where a 64 KiB read buffer per connection (one page
 * of it resident) and a kept output buffer made 5.3 KB.
 *
 * TLS (secureClientPort): the same connections, with tls.c between the
 * socket and the buffers.  What uv_read brings is fed to the connection's
 * TLS state and the plaintext is read out as above (into read_buffer, or
 * rbuf after a partial frame), so framing and everything above it are the
 * same for both ports; at flush, conn.out is sealed into conn.tls_wire,
 * which is what libuv writes.  Nothing waits: a handshake that needs more
 * bytes simply returns until the next read.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "assert.h"
#include "log.h"
#include "saslauth.h"
#include "server.h"
#include "tls.h"
#include "tls_stream.h"

struct write_req {
    uv_write_t req;
    uint8_t *data;
    size_t len;
    struct conn *conn;
};

/* Bytes of replies and events this conn owes its client and has not sent. */
static size_t pending_output(const struct conn *c)
{
    return c->writes_in_flight_bytes + c->out.len + c->tls_wire.len;
}


static void on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    for (int i = 0; i < c->auth_count; i++) {
        free(c->auth[i].scheme);
        free(c->auth[i].id);
    }
    free(c->auth);
    jute_writer_free(&c->out);
    jute_writer_free(&c->tls_wire);
    tls_stream_free(c->tls);
    saslauth_session_free(c->sasl);
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

void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len)
{
    ZN_ASSERT(len >= CONN_FRAME_LENGTH_BYTES);
    if (c->state == CONN_CLOSING || c->output_overflow)
        return;
    if (pending_output(c) + len > CONN_OUTPUT_HARD_LIMIT_BYTES) {
        /* A client that does not read: drop it (at the next flush) rather
         * than buffer without bound. */
        c->output_overflow = true;
        conn_mark_dirty(c);
        return;
    }
    if (c->out.error != 0 || jute_write_raw(&c->out, frame, len) != 0) {
        conn_mark_dirty(c); /* closed there (conn_flush), not under the caller's loop */
        return;
    }
    c->stats.packets_sent++;
    c->server->stats.packets_sent++;
    conn_mark_dirty(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static bool process_frames(struct conn *c);
static bool tls_pump(struct conn *c);


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
        /* Requests already read (or still sealed, with TLS) but left while
         * the output drained. */
        if (c->tls)
            tls_pump(c);
        else if (c->rlen >= 4)
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

/* TLS: seals the plaintext output once the handshake is done, and collects
 * every ciphertext byte due (handshake records too) in c->tls_wire.  Returns
 * the buffer libuv is to write: c->out, or c->tls_wire; NULL when c was closed. */
static struct jute_writer *wire_output(struct conn *c)
{
    if (!c->tls)
        return &c->out;
    const char *why = NULL;
    if (c->out.len > 0 && tls_stream_established(c->tls)) {
        if (tls_stream_write(c->tls, c->out.data, c->out.len, &why) != 0) {
            conn_close(c, why);
            return NULL;
        }
        c->out.len = 0;
    }
    if (c->close_after_flush && c->out.len == 0 && tls_stream_established(c->tls))
        tls_stream_close_notify(c->tls); /* as the last bytes before the close */
    tls_stream_drain(c->tls, &c->tls_wire);
    if (c->tls_wire.error != 0) {
        conn_close(c, "out of memory sealing replies");
        return NULL;
    }
    return &c->tls_wire;
}

/* Output buffers no larger than this are freed as soon as a flush leaves the
 * connection idle: what one small reply takes (a ConnectResponse, a ping's),
 * so a session that went idle after one holds none, and taking such a buffer
 * again costs a round trip through malloc's per-thread cache.  A buffer
 * grown under load is kept from turn to turn (growing it again would cost
 * reallocs and copies per flush) and freed by conn_release_idle. */
#define CONN_IDLE_OUTPUT_BYTES 256

static bool conn_idle(const struct conn *c)
{
    return c->state != CONN_CLOSING && c->queued == 0 && c->out.len == 0 && c->tls_wire.len == 0;
}

static void release_idle_output(struct conn *c)
{
    if (conn_idle(c) && c->out.cap <= CONN_IDLE_OUTPUT_BYTES && c->tls_wire.cap <= CONN_IDLE_OUTPUT_BYTES) {
        jute_writer_free(&c->out);
        jute_writer_free(&c->tls_wire);
    }
}

void conn_release_idle(struct server *srv)
{
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (!conn_idle(c))
            continue;
        jute_writer_free(&c->out);
        jute_writer_free(&c->tls_wire);
        if (c->rlen == 0 && !c->handling_frames) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
}

static void conn_flush(struct conn *c)
{
    c->dirty = false;
    if (c->state == CONN_CLOSING)
        return;
    if (c->out.error != 0) {
        /* conn_send_frame ran out of memory: a frame (a watch event) is lost */
        conn_close(c, "out of memory buffering replies");
        return;
    }
    struct jute_writer *wire = wire_output(c);
    if (!wire)
        return;
    if (wire->len == 0) {
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
        uv_buf_t now = uv_buf_init((char *)wire->data, (unsigned)wire->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c, uv_strerror(n));
            return;
        }
        if (n > 0) {
            memmove(wire->data, wire->data + n, wire->len - (size_t)n);
            wire->len -= (size_t)n;
        }
        if (wire->len == 0) {
            if (c->close_after_flush) {
                conn_close(c, NULL);
                return;
            }
            release_idle_output(c);
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
    w->data = jute_writer_take(wire, &w->len);
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
    release_idle_output(c);
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

/* Makes room in rbuf for the next read (up to one largest frame and a
 * chunk); returns the room, which may be 0 when rbuf holds that much. */
static size_t read_room(struct conn *c)
{
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
    return c->rcap - c->rlen;
}

/* Reads of connections with no partial frame (rlen == 0) land here, and
 * TLS ciphertext, fed to the connection's TLS state at once: libuv calls
 * on_read right after on_alloc, on this thread, so one buffer serves every
 * connection.  read_buffer_busy while frames are handled from it: a TLS
 * pump nested in that handling (a flush) decrypts into its own rbuf. */
static uint8_t read_buffer[SERVER_READ_CHUNK_BYTES];
static bool read_buffer_busy;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    ZN_ASSERT(!read_buffer_busy);
    if (c->tls || c->rlen == 0)
        *buf = uv_buf_init((char *)read_buffer, sizeof read_buffer);
    else
        *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)read_room(c));
}

static uint32_t read_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Handles every complete frame of buf[0, len) (c's rbuf, or read_buffer);
 * *used is how many bytes it handled.  Returns false if the conn was closed
 * (or a four-letter word answered).  Nothing a frame's handling borrows
 * from buf outlives the call (request_handle_packet). */
static bool handle_frames(struct conn *c, const uint8_t *buf, size_t len, size_t *used)
{
    struct server *srv = c->server;
    size_t off = 0;
    *used = 0;
    while (c->state != CONN_CLOSING && !c->close_after_flush && len - off >= 4) {
        if (pending_output(c) > CONN_OUTPUT_SOFT_LIMIT_BYTES)
            break; /* the rest waits in rbuf until the client reads (update_backpressure) */
        const uint8_t *p = buf + off;
        if (c->state == CONN_HANDSHAKE && c->stats.packets_received == 0) {
            unsigned bit = config_4lw_bit((const char *)p);
            if (bit) {
                char word[4];
                memcpy(word, p, 4);
                fourlw_handle(c, word);
                return false;
            }
        }
        uint32_t frame = read_be32(p);
        if (frame > srv->cfg.jute_max_buffer) {
            char why[128];
            snprintf(why, sizeof why, "packet length %u is out of the range [0, %zu] (jute.maxbuffer)",
                     frame, srv->cfg.jute_max_buffer);
            srv->stats.malformed_packets++;
            conn_close(c, why);
            return false;
        }
        if (len - off - 4 < frame)
            break;
        c->stats.packets_received++;
        srv->stats.packets_received++;
        if (c->state == CONN_HANDSHAKE) {
            request_handle_connect(c, p + 4, frame);
            if (c->parked) { /* the frame stays in rbuf until conn_unpark_all */
                c->stats.packets_received--;
                srv->stats.packets_received--;
                break;
            }
        } else
            request_handle_packet(c, p + 4, frame);
        off += 4 + frame;
    }
    *used = off;
    return c->state != CONN_CLOSING;
}

/* Handles every complete frame in rbuf (kept when that empties it: the next
 * partial frame reuses it; conn_release_idle frees it); returns false if the
 * conn was closed. */
static bool process_frames(struct conn *c)
{
    if (c->handling_frames)
        return true; /* nested in its own handling (a flush): that one goes on */
    c->handling_frames = true;
    size_t used;
    bool open = handle_frames(c, c->rbuf, c->rlen, &used);
    c->handling_frames = false;
    if (!open)
        return false;
    c->rlen -= used;
    if (c->rlen > 0 && used > 0)
        memmove(c->rbuf, c->rbuf + used, c->rlen);
    return true;
}

/* Handles the frames of n bytes read into read_buffer for a conn that held
 * none (rlen == 0) straight from there; only what is left is copied into
 * its rbuf.  Returns false if the conn was closed. */
static bool process_read(struct conn *c, size_t n)
{
    ZN_ASSERT(c->rlen == 0 && !read_buffer_busy && n <= sizeof read_buffer);
    read_buffer_busy = true;
    c->handling_frames = true;
    size_t used;
    bool open = handle_frames(c, read_buffer, n, &used);
    c->handling_frames = false;
    read_buffer_busy = false;
    if (!open || used == n)
        return open;
    if (read_room(c) < n - used) { /* rbuf's first size is read_buffer's */
        conn_close(c, "out of memory buffering a request");
        return false;
    }
    memcpy(c->rbuf, read_buffer + used, n - used);
    c->rlen = n - used;
    return true;
}

/* TLS: a verified client certificate gives the connection its x509
 * identity, as ZooKeeper's X509AuthenticationProvider does at the end of
 * the handshake.  Returns false if c was closed. */
static bool tls_take_identity(struct conn *c)
{
    char dn[TLS_DN_MAX_BYTES];
    int rc = tls_peer_dn(c->tls, dn, sizeof dn);
    if (rc < 0) {
        conn_close(c, "the client certificate's subject is longer than we keep");
        return false;
    }
    if (rc == 0 && acl_add_x509(c->server, c, dn) != 0) {
        conn_close(c, "out of memory keeping the client's identity");
        return false;
    }
    ZN_INFO("tls: handshake done peer=%s identity=%s%s", c->peer, rc == 0 ? "x509:" : "",
            rc == 0 ? dn : "(no client certificate)");
    return true;
}

/* TLS: decrypts what has arrived (into read_buffer, or after a partial
 * frame into rbuf) and handles its frames, until more ciphertext is needed,
 * rbuf is full, or the output passed its soft limit (update_backpressure
 * calls again once it drained).  Returns false if c was closed. */
static bool tls_pump(struct conn *c)
{
    while (c->state != CONN_CLOSING) {
        bool shared = c->rlen == 0 && !read_buffer_busy;
        size_t room = shared ? sizeof read_buffer : read_room(c);
        if (room == 0)
            break;
        const char *why = NULL;
        ssize_t n = tls_stream_read(c->tls, shared ? read_buffer : c->rbuf + c->rlen, room, &why);
        if (tls_stream_just_established(c->tls) && !tls_take_identity(c))
            return false;
        if (n < 0) {
            conn_close(c, why);
            return false;
        }
        if (n == 0)
            break;
        if (shared) {
            if (!process_read(c, (size_t)n))
                return false;
        } else {
            c->rlen += (size_t)n;
            if (!process_frames(c))
                return false;
        }
        if (pending_output(c) > CONN_OUTPUT_SOFT_LIMIT_BYTES)
            break;
    }
    if (c->state == CONN_CLOSING)
        return false;
    conn_mark_dirty(c); /* handshake records may be due */
    return true;
}

/*
 * client.portUnification: the first byte a client sends on clientPort tells
 * TLS from plain, as ZooKeeper's DualModeSslHandler does (SslHandler's
 * isEncrypted): 0x16 opens a TLS handshake record, and no plain client
 * starts with it (a ConnectRequest's length would be over 369 MB; a
 * four-letter word is letters).  The bytes read so far (in read_buffer:
 * on_alloc gave it while undecided) become the TLS stream's first input.
 * Returns false if c was closed.
 */
static bool conn_sniff(struct conn *c, const uint8_t *first)
{
    c->sniffing = false;
    if (first[0] != 0x16)
        return true;
    c->tls = tls_server_stream(c->server->tls);
    if (!c->tls) {
        conn_close(c, "out of memory starting TLS");
        return false;
    }
    ZN_DEBUG("tls: peer=%s starts a TLS handshake on the client port (client.portUnification)", c->peer);
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
    if (c->sniffing && nread > 0 && !conn_sniff(c, (const uint8_t *)buf->base)) {
        server_flush(srv);
        return;
    }
    if (c->tls) {
        if (tls_stream_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread) != 0)
            conn_close(c, "out of memory reading TLS records");
        else if (tls_pump(c))
            update_backpressure(c);
        server_flush(srv);
        return;
    }
    bool open;
    if (buf->base == (char *)read_buffer) {
        open = process_read(c, (size_t)nread);
    } else {
        c->rlen += (size_t)nread;
        open = process_frames(c);
    }
    if (open)
        update_backpressure(c);
    server_flush(srv);
}

void conn_unpark_all(struct server *srv)
{
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next; /* process_frames may close c, never another connection */
        if (!c->parked || c->state == CONN_CLOSING)
            continue;
        c->parked = false;
        if (process_frames(c))
            update_backpressure(c);
        if (c->parked)
            break; /* it parked again: the member lost its leader meanwhile */
    }
    server_flush(srv);
}

void conn_expire_parked(struct server *srv, uint64_t now_ms)
{
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->parked && c->state != CONN_CLOSING && now_ms >= c->parked_until_ms)
            conn_close(c, "no leader within the session timeout; reconnect to another member");
    }
}

void conn_expire_tls_handshakes(struct server *srv, uint64_t now_ms)
{
    if (!srv->tls)
        return;
    uint64_t bound = (uint64_t)srv->cfg.tls.handshake_timeout_ms;
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next; /* conn_close unlinks c only */
        if (c->tls && c->state != CONN_CLOSING && !tls_stream_established(c->tls) &&
            now_ms - c->stats.established_ms >= bound) {
            conn_close(c, "TLS handshake not done within ssl.handshakeDetectionTimeoutMillis");
        }
    }
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
    jute_writer_init(&c->tls_wire);
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
    c->sniffing = listener == (uv_stream_t *)&srv->listener && srv->cfg.tls.port_unification;
    if (listener == (uv_stream_t *)&srv->secure_listener && (c->tls = tls_server_stream(srv->tls)) == NULL) {
        ZN_WARN("tls: out of memory for a connection from %s", c->peer);
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

/* Binds handle to address:port and listens.  Returns 0, ZN_CONFIG (not an
 * IP address) or ZN_IO, logged. */
static int listen_on(struct server *srv, uv_tcp_t *handle, const char *address, int port)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(address, port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(address, port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        ZN_ERROR("%s is not an IP address", address);
        return ZN_CONFIG;
    }
    uv_tcp_init(srv->loop, handle);
    handle->data = srv;
    rc = uv_tcp_bind(handle, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)handle, srv->cfg.listen_backlog, on_connection);
    if (rc != 0) {
        ZN_ERROR("cannot listen on %s:%d: %s", address, port, uv_strerror(rc));
        return ZN_IO;
    }
    return 0;
}

int server_listen(struct server *srv)
{
    int rc = listen_on(srv, &srv->listener, srv->cfg.client_port_address, srv->cfg.client_port);
    if (rc != 0)
        return rc;
    const struct config_tls *tls = &srv->cfg.tls;
    ZN_INFO("serving clients on %s:%d%s", srv->cfg.client_port_address, srv->cfg.client_port,
            tls->port_unification ? " (plain and TLS: client.portUnification)" : "");
    if (tls->secure_client_port == 0 && !tls->port_unification)
        return 0;
    rc = tls_server_new(&srv->tls, tls);
    if (rc == 0)
        rc = tls_server_watch(srv->tls, srv->loop);
    if (rc == 0 && tls->secure_client_port != 0)
        rc = listen_on(srv, &srv->secure_listener, tls->secure_client_port_address,
                       tls->secure_client_port);
    if (rc != 0)
        return rc;
    if (tls->secure_client_port == 0)
        return 0;
    ZN_INFO("serving TLS clients on %s:%d clientAuth=%s", tls->secure_client_port_address,
            tls->secure_client_port,
            tls->client_auth == CONFIG_CLIENT_AUTH_NEED   ? "need"
            : tls->client_auth == CONFIG_CLIENT_AUTH_WANT ? "want"
                                                          : "none");
    return 0;
}

static void on_listener_closed(uv_handle_t *h) { (void)h; }

void server_unlisten(struct server *srv)
{
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    if (srv->tls) {
        if (srv->cfg.tls.secure_client_port != 0)
            uv_close((uv_handle_t *)&srv->secure_listener, on_listener_closed);
        /* connections still open hold their own reference to the context */
        tls_server_free(srv->tls);
        srv->tls = NULL;
    }
}
