/*
 * The HTTP server of the metrics page and the AdminServer: the request-head
 * parser and the libuv listener with its connections.  It owns every handle it opens and frees
 * itself once the last one has closed after httpd_stop.
 *
 * A connection's life (each step bounded by the one timer armed at accept):
 *   reading the head -> responding (one uv_write) -> shutdown of our side ->
 *   draining the client's side until EOF -> closed.
 * Draining before close is what makes the client see the whole response:
 * closing a socket with unread input sends RST, which can discard the
 * response still in flight.
 */
#include "httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "assert.h"
#include "log.h"
#include "znode/errors.h"

/* ---- parser ---- */

/* RFC 9110 tchar: the characters a method name may use. */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds the end of the head: the first empty line.  Returns the bytes up to
 * and including it, or 0 if there is none yet. */
static size_t head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* One line of the head starting at *pos, without its CRLF or LF. */
static bool next_line(const char *buf, size_t end, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= end)
        return false;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', end - *pos);
    size_t linelen = nl ? (size_t)(nl - start) : end - *pos;
    *pos += linelen + (nl ? 1 : 0);
    if (linelen > 0 && start[linelen - 1] == '\r')
        linelen--;
    *line = start;
    *n = linelen;
    return true;
}

static int parse_request_line(const char *line, size_t n, struct httpd_request *out)
{
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof out->method)
        return HTTPD_PARSE_BAD;
    for (const char *p = line; p < sp1; p++)
        if (!is_tchar(*p))
            return HTTPD_PARSE_BAD;
    const char *target = sp1 + 1;
    const char *end = line + n;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (!sp2 || sp2 == target)
        return HTTPD_PARSE_BAD;
    const char *version = sp2 + 1;
    size_t vlen = (size_t)(end - version);
    if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.')
        return HTTPD_PARSE_BAD;
    if (version[5] == '1' && (version[7] == '0' || version[7] == '1'))
        out->minor_version = version[7] - '0';
    else if (version[5] >= '2' && version[5] <= '9')
        return HTTPD_PARSE_VERSION;
    else
        return HTTPD_PARSE_BAD;

    memcpy(out->method, line, (size_t)(sp1 - line));
    out->method[sp1 - line] = '\0';
    /* absolute-form (proxies send it): keep only the path */
    size_t tlen = (size_t)(sp2 - target);
    if (tlen > 7 && strncmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', tlen - 7);
        if (!slash) {
            target = "/"; /* "http://host" names the root */
            tlen = 1;
        } else {
            tlen -= (size_t)(slash - target);
            target = slash;
        }
    }
    if (target[0] != '/')
        return HTTPD_PARSE_BAD;
    size_t plen = 0;
    while (plen < tlen && target[plen] != '?' && target[plen] != '#')
        plen++;
    if (plen >= sizeof out->path)
        return HTTPD_PARSE_URI_TOO_LONG;
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)target[i] <= ' ' || (unsigned char)target[i] == 0x7f)
            return HTTPD_PARSE_BAD;
    memcpy(out->path, target, plen);
    out->path[plen] = '\0';
    return HTTPD_PARSE_DONE;
}

int httpd_parse_request(const char *buf, size_t len, size_t max_bytes, struct httpd_request *out)
{
    ZN_ASSERT(buf || len == 0);
    ZN_ASSERT(out && max_bytes > 0);
    memset(out, 0, sizeof *out);
    /* RFC 9112 2.2: ignore empty lines before the request line. */
    size_t skip = 0;
    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    size_t window = len > max_bytes ? max_bytes : len;
    size_t head = skip < window ? head_length(buf + skip, window - skip) : 0;
    if (head == 0)
        return len >= max_bytes ? HTTPD_PARSE_TOO_LARGE : HTTPD_PARSE_INCOMPLETE;
    size_t end = skip + head;
    size_t pos = skip;
    const char *line;
    size_t n;
    if (!next_line(buf, end, &pos, &line, &n))
        return HTTPD_PARSE_BAD;
    int rc = parse_request_line(line, n, out);
    if (rc != HTTPD_PARSE_DONE)
        return rc;
    /* Header fields are not used, but a head that is not made of them is
     * not HTTP, and answering it as if it were would hide a broken client. */
    while (next_line(buf, end, &pos, &line, &n) && n > 0) {
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line)
            return HTTPD_PARSE_BAD;
        for (const char *p = line; p < colon; p++)
            if (!is_tchar(*p))
                return HTTPD_PARSE_BAD;
        static const char authorization[] = "Authorization";
        if ((size_t)(colon - line) == sizeof authorization - 1 &&
            strncasecmp(line, authorization, sizeof authorization - 1) == 0) {
            const char *value = colon + 1, *value_end = line + n;
            while (value < value_end && (*value == ' ' || *value == '\t'))
                value++;
            while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
                value_end--;
            if ((size_t)(value_end - value) >= sizeof out->authorization)
                return HTTPD_PARSE_FIELD_TOO_LARGE;
            memcpy(out->authorization, value, (size_t)(value_end - value));
            out->authorization[value_end - value] = '\0';
        }
    }
    out->head_bytes = end;
    return HTTPD_PARSE_DONE;
}

int httpd_route(const struct httpd_request *req)
{
    if (strcmp(req->path, "/metrics") != 0 && strcmp(req->path, "/") != 0)
        return 404;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return 405;
    return 200;
}

/* ---- server ---- */

struct httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct httpd *server;
    struct httpd_conn *prev, *next;
    int handles_open;           /* tcp and timer: freed when both closed */
    bool responded;             /* the response was handed to libuv; now draining */
    bool closing;
    size_t len;
    char buf[HTTPD_MAX_REQUEST_BYTES];
    char head[512];
    char *body;                 /* malloc'd page, or a static string for errors */
    bool body_owned;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    uint64_t ticket;            /* names the connection to httpd_finish */
    bool deferred;              /* waiting for httpd_finish */
    bool head_only;             /* a HEAD: the answer has no body */
    int stream_fd;              /* a body still being read from this file, or -1 */
    uint64_t stream_left;       /* its bytes not yet sent */
    char *stream_buf;           /* one chunk of it */
};

/* The chunk read from a streamed file per write. */
#define HTTPD_STREAM_CHUNK_BYTES (256u * 1024)

struct httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    httpd_render_fn render;
    httpd_handler_fn handler;
    void *ctx;
    char name[32];
    const char *content_type;
    uint32_t max_connections;
    uint64_t timeout_ms;
    int port;
    bool stopping;
    int handles_open;           /* listener + conns + refused sockets */
    uint64_t next_ticket;
    struct httpd_conn *conns;
    struct httpd_stats stats;
};

static void server_release(struct httpd *h)
{
    ZN_ASSERT(h->handles_open > 0);
    if (--h->handles_open == 0 && h->stopping)
        free(h);
}

static void on_file_closed(uv_fs_t *req)
{
    uv_fs_req_cleanup(req);
    free(req);
}

/* Closes a streamed file on the loop's thread pool: the last close of a
 * large unlinked file frees its blocks, which took 60-100 ms for a 160 MB
 * backup, a stall of every client had it run on the loop. */
static void close_file(uv_loop_t *loop, int fd)
{
    uv_fs_t *req = malloc(sizeof *req);
    if (!req || uv_fs_close(loop, req, fd, on_file_closed) != 0) {
        free(req);
        close(fd);
    }
}

static void conn_free_when_closed(uv_handle_t *handle)
{
    struct httpd_conn *c = handle->data;
    if (--c->handles_open > 0)
        return;
    struct httpd *h = c->server;
    if (c->body_owned)
        free(c->body);
    if (c->stream_fd >= 0)
        close_file(h->loop, c->stream_fd);
    free(c->stream_buf);
    free(c);
    server_release(h);
}

static void conn_close(struct httpd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct httpd *h = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->stats.open--;
    uv_close((uv_handle_t *)&c->timer, conn_free_when_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_free_when_closed);
}

static void on_timeout(uv_timer_t *timer)
{
    struct httpd_conn *c = timer->data;
    c->server->stats.timed_out++;
    ZN_DEBUG("%s: connection timed out responded=%d bytes=%zu", c->server->name, c->responded,
             c->len);
    conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct httpd_conn *c = req->data;
    if (status < 0)
        conn_close(c); /* (after ECANCELED the conn is closing already: a no-op) */
    /* otherwise on_read closes it at the client's EOF, or the timer does */
}

static void on_written(uv_write_t *req, int status);

/* Sends the next chunk of a streamed body; false when there is none left. */
static bool stream_next(struct httpd_conn *c)
{
    if (c->stream_fd < 0 || c->stream_left == 0)
        return false;
    size_t want = c->stream_left < HTTPD_STREAM_CHUNK_BYTES ? (size_t)c->stream_left
                                                             : HTTPD_STREAM_CHUNK_BYTES;
    ssize_t got;
    do
        got = read(c->stream_fd, c->stream_buf, want);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        /* the length was promised in the head: the client sees a short body */
        ZN_ERROR("%s: a streamed body ended early: %s", c->server->name,
                 got < 0 ? strerror(errno) : "the file is shorter than said");
        conn_close(c);
        return true;
    }
    c->stream_left -= (uint64_t)got;
    uv_timer_again(&c->timer);
    uv_buf_t buf = uv_buf_init(c->stream_buf, (unsigned)got);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
    return true;
}

static void on_written(uv_write_t *req, int status)
{
    struct httpd_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (stream_next(c))
        return;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* What the server answers a parsed request with: the page (render's mode),
 * or the handler's reply.  Sets c's body; returns the status. */
static int answer(struct httpd_conn *c, const struct httpd_request *req, const char **type,
                  size_t *body_len)
{
    struct httpd *h = c->server;
    if (h->handler) {
        struct httpd_reply reply = {.ticket = c->ticket};
        if (h->handler(h->ctx, req, &reply) != 0) {
            free(reply.body);
            return 500;
        }
        if (reply.deferred)
            return 0;
        if (reply.status < 100 || reply.status > 599 || (!reply.body && reply.len > 0)) {
            free(reply.body);
            return 500;
        }
        c->body = reply.body;
        c->body_owned = reply.body != NULL;
        *body_len = reply.len;
        if (reply.content_type)
            *type = reply.content_type;
        return reply.status;
    }
    int status = httpd_route(req);
    if (status != 200)
        return status;
    char *page = NULL;
    if (h->render(h->ctx, &page, body_len) != 0 || !page) {
        free(page);
        return 500;
    }
    c->body = page;
    c->body_owned = true;
    *type = h->content_type ? h->content_type : *type;
    return 200;
}

/* Sends the response: req is the parsed request, or NULL when status is an
 * error found while parsing. */
static void respond(struct httpd_conn *c, const struct httpd_request *req, int status)
{
    struct httpd *h = c->server;
    h->stats.requests++;
    size_t body_len = 0;
    const char *type = "text/plain; charset=utf-8";
    if (req)
        status = answer(c, req, &type, &body_len);
    if (status == 0) {
        /* deferred: the client's further bytes are drained meanwhile, and
         * the work may take longer than a request is given */
        c->responded = true;
        c->deferred = true;
        c->head_only = strcmp(req->method, "HEAD") == 0;
        uv_timer_stop(&c->timer);
        return;
    }
    if (!c->body) {
        /* An error without a page of its own says what it is; a 200 without
         * a body is empty. */
        c->body = (char *)(status == 200 ? "" : status_text(status));
        c->body_owned = false;
        body_len = strlen(c->body);
    }
    int n = snprintf(c->head, sizeof c->head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), type, body_len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    ZN_ASSERT(n > 0 && (size_t)n < sizeof c->head);
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                        uv_buf_init(c->body, (unsigned)body_len)};
    c->responded = true;
    c->write_req.data = c;
    c->shutdown_req.data = c;
    bool head_only = req && strcmp(req->method, "HEAD") == 0;
    int nbufs = head_only || body_len == 0 ? 1 : 2;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) != 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct httpd_conn *c = handle->data;
    /* After the response the client's bytes are only drained: a scratch
     * buffer serves every connection, since all run on this one thread. */
    static char drain[4096];
    if (c->responded || c->len >= sizeof c->buf)
        *buf = uv_buf_init(drain, sizeof drain);
    else
        *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

/* The client's IP address as text ("?" when unknown). */
static void peer_address(struct httpd_conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(out, cap, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, out, cap);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, cap);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct httpd_conn *c = stream->data;
    if (c->closing)
        return;
    if (nread < 0) {
        /* EOF before a whole head, a reset, or the end of draining. */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->responded)
        return;
    c->len += (size_t)nread;
    struct httpd_request req;
    int rc = httpd_parse_request(c->buf, c->len, sizeof c->buf, &req);
    switch (rc) {
    case HTTPD_PARSE_INCOMPLETE:
        return;
    case HTTPD_PARSE_DONE:
        peer_address(c, req.peer, sizeof req.peer);
        respond(c, &req, 0);
        return;
    case HTTPD_PARSE_FIELD_TOO_LARGE:
    case HTTPD_PARSE_TOO_LARGE:
        respond(c, NULL, 431);
        return;
    case HTTPD_PARSE_URI_TOO_LONG:
        respond(c, NULL, 414);
        return;
    case HTTPD_PARSE_VERSION:
        respond(c, NULL, 505);
        return;
    default:
        respond(c, NULL, 400);
        return;
    }
}

static void on_refused_closed(uv_handle_t *handle)
{
    struct httpd *h = handle->data;
    free(handle);
    server_release(h);
}

/* Accepts and closes at once: leaving a connection unaccepted would stop
 * libuv from accepting any other until it is. */
static void refuse(struct httpd *h)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) {
        ZN_ERROR("%s: out of memory refusing a connection", h->name);
        return;
    }
    uv_tcp_init(h->loop, t);
    t->data = h;
    h->handles_open++;
    (void)uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)t);
    h->stats.refused++;
    uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct httpd *h = listener->data;
    if (status < 0 || h->stopping) {
        if (status < 0)
            ZN_WARN("%s: accept failed: %s", h->name, uv_strerror(status));
        return;
    }
    if (h->stats.open >= h->max_connections) {
        ZN_WARN("%s: refused a connection: %u open, the limit", h->name, h->stats.open);
        refuse(h);
        return;
    }
    struct httpd_conn *c = calloc(1, sizeof *c);
    if (!c) {
        refuse(h);
        return;
    }
    c->server = h;
    c->ticket = ++h->next_ticket;
    c->stream_fd = -1;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    h->handles_open++;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->stats.open++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
        uv_timer_start(&c->timer, on_timeout, h->timeout_ms, 0) != 0)
        conn_close(c);
}

static void on_listener_closed(uv_handle_t *handle) { server_release(handle->data); }

int httpd_start(struct httpd **out, uv_loop_t *loop, const struct httpd_options *opts,
                httpd_render_fn render, void *ctx)
{
    ZN_ASSERT(out && loop && opts && (render || opts->handler));
    *out = NULL;
    struct sockaddr_storage addr;
    const char *host = opts->host && opts->host[0] ? opts->host : "0.0.0.0";
    if (opts->port < 0 || opts->port > 65535)
        return ZN_BADARGUMENTS;
    const char *name = opts->name ? opts->name : "http";
    if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&addr) != 0) {
        ZN_ERROR("%s: '%s' is not an IPv4 or IPv6 address", name, host);
        return ZN_BADARGUMENTS;
    }
    struct httpd *h = calloc(1, sizeof *h);
    if (!h)
        return ZN_NOMEMORY;
    h->loop = loop;
    h->render = render;
    h->handler = opts->handler;
    h->ctx = ctx;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->content_type = opts->content_type;
    h->max_connections = opts->max_connections ? opts->max_connections
                                               : HTTPD_DEFAULT_MAX_CONNECTIONS;
    h->timeout_ms = opts->timeout_ms ? opts->timeout_ms : HTTPD_DEFAULT_TIMEOUT_MS;
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->handles_open = 1;
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 64, on_connection);
    if (rc != 0) {
        ZN_ERROR("%s: cannot listen on %s:%d: %s", name, host, opts->port, uv_strerror(rc));
        /* the handle is initialised: it must be closed, and h freed after */
        h->stopping = true;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return ZN_IO;
    }
    struct sockaddr_storage bound;
    int namelen = sizeof bound;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &namelen);
    h->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = h;
    return 0;
}

int httpd_finish(struct httpd *h, uint64_t ticket, int status, const char *content_type,
                 const char *extra_headers, const void *prefix, size_t prefix_len, int fd,
                 uint64_t fd_bytes)
{
    struct httpd_conn *c = h->conns;
    while (c && (c->ticket != ticket || !c->deferred))
        c = c->next;
    char *body = prefix_len ? malloc(prefix_len) : NULL;
    char *chunk = fd >= 0 ? malloc(HTTPD_STREAM_CHUNK_BYTES) : NULL;
    if (!c || h->stopping || (prefix_len && !body) || (fd >= 0 && !chunk)) {
        free(body);
        free(chunk);
        if (fd >= 0)
            close_file(h->loop, fd);
        if (c && !h->stopping)
            conn_close(c);
        return c ? ZN_NOMEMORY : ZN_NONODE;
    }
    int n = snprintf(c->head, sizeof c->head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %llu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), content_type,
                     (unsigned long long)(prefix_len + (fd >= 0 ? fd_bytes : 0)),
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof c->head) {
        free(body);
        free(chunk);
        if (fd >= 0)
            close_file(h->loop, fd);
        conn_close(c);
        return ZN_BADARGUMENTS;
    }
    if (prefix_len)
        memcpy(body, prefix, prefix_len);
    if (c->head_only && fd >= 0) { /* the length is said, the body is not sent */
        close_file(h->loop, fd);
        fd = -1;
    }
    c->deferred = false;
    c->write_req.data = c;
    c->shutdown_req.data = c;
    c->body = body;
    c->body_owned = body != NULL;
    c->stream_fd = fd;
    c->stream_left = fd >= 0 ? fd_bytes : 0;
    c->stream_buf = chunk;
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n), uv_buf_init(body, (unsigned)prefix_len)};
    uv_timer_start(&c->timer, on_timeout, h->timeout_ms, h->timeout_ms);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, prefix_len && !c->head_only ? 2 : 1,
                 on_written) != 0)
        conn_close(c);
    return 0;
}

int httpd_port(const struct httpd *h) { return h->port; }

void httpd_get_stats(const struct httpd *h, struct httpd_stats *out) { *out = h->stats; }

void httpd_stop(struct httpd *h)
{
    if (!h || h->stopping)
        return;
    h->stopping = true;
    while (h->conns)
        conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}
