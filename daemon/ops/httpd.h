/*
 * A small HTTP/1.1 server on the daemon's libuv loop, for the Prometheus
 * metrics page (metricsProvider.httpPort) and the AdminServer (admin.c).
 * Either it serves one page: GET or HEAD of /metrics (and /) answer 200
 * with the text a render callback produces, other paths 404, other methods
 * 405; or a handler callback answers every well-formed request (status,
 * type and body its own).  Malformed requests get 400, requests over
 * HTTPD_MAX_REQUEST_BYTES 431, whatever the mode.  Every response closes its connection
 * ("Connection: close"), which keeps each connection's life to one request
 * and its memory bounded.
 *
 * Limits: at most opts.max_connections open at once (more are accepted and
 * closed at once, so the listen backlog never fills); each connection lives
 * at most opts.timeout_ms from accept to close, whatever the client does.
 * Nothing here blocks: reads, writes and the render callback run on the loop.
 */
#ifndef ZNODED_HTTPD_H
#define ZNODED_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTPD_MAX_REQUEST_BYTES 8192
#define HTTPD_DEFAULT_MAX_CONNECTIONS 16
#define HTTPD_DEFAULT_TIMEOUT_MS 10000
#define HTTPD_METHOD_BYTES 16
#define HTTPD_PATH_BYTES 1024
#define HTTPD_AUTHORIZATION_BYTES 1024
#define HTTPD_PEER_BYTES 48

/* ---- the request parser (pure: no I/O, for the unit tests) ---- */

enum httpd_parse_result {
    HTTPD_PARSE_DONE = 0,        /* a whole request head was read */
    HTTPD_PARSE_INCOMPLETE = 1,  /* no blank line yet: read more */
    HTTPD_PARSE_BAD = -1,        /* not an HTTP/1.x request: answer 400 */
    HTTPD_PARSE_TOO_LARGE = -2,  /* no end of head within max bytes: answer 431 */
    HTTPD_PARSE_VERSION = -3,    /* HTTP/2 or later on this port: answer 505 */
    HTTPD_PARSE_URI_TOO_LONG = -4, /* path over HTTPD_PATH_BYTES: answer 414 */
    HTTPD_PARSE_FIELD_TOO_LARGE = -5, /* Authorization over HTTPD_AUTHORIZATION_BYTES: answer 431 */
};

struct httpd_request {
    char method[HTTPD_METHOD_BYTES]; /* "GET", "HEAD", ... as sent */
    char path[HTTPD_PATH_BYTES];     /* the target up to '?' or '#' */
    int minor_version;               /* HTTP/1.0 or HTTP/1.1 */
    size_t head_bytes;               /* length of the request head, blank line included */
    char authorization[HTTPD_AUTHORIZATION_BYTES]; /* the Authorization header's value, or "" */
    char peer[HTTPD_PEER_BYTES];     /* the client's address (set by the server, not the parser) */
};

/*
 * Parses the request head in buf[0, len) (not NUL-terminated), copying what
 * it returns into *out.  Lines may end in CRLF or LF.  Returns an
 * enum httpd_parse_result; *out is meaningful only for HTTPD_PARSE_DONE.
 * max_bytes bounds the head: INCOMPLETE becomes TOO_LARGE once len reaches it.
 */
int httpd_parse_request(const char *buf, size_t len, size_t max_bytes, struct httpd_request *out);

/* The status code the server answers a parsed request with: 200, 404 or 405. */
int httpd_route(const struct httpd_request *req);

/* ---- the server ---- */

/*
 * Produces the page for one GET/HEAD: on success returns 0 and hands over a
 * malloc'd body in *body (ownership passes to httpd, which frees it) of *len
 * bytes; on failure returns a negative code and the client gets 500.
 */
typedef int (*httpd_render_fn)(void *ctx, char **body, size_t *len);

/*
 * Answers one well-formed request (any method; the path without its query).
 * On success returns 0 and fills *reply: status (200, 404, 405, ...), the
 * content type (borrowed, must outlive the server: a string literal), and a
 * malloc'd body whose ownership passes to httpd; a NULL body with len 0 is an
 * empty one.  On failure returns a negative code and the client gets 500.
 */
struct httpd_reply {
    int status;
    const char *content_type;
    char *body;
    size_t len;
    /* A reply that takes time (work off the loop): the handler sets deferred
     * and keeps ticket (which httpd fills in before calling it), then answers
     * with httpd_finish.  status, type and body are then unused. */
    bool deferred;
    uint64_t ticket;
};
typedef int (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
                                struct httpd_reply *reply);

struct httpd_options {
    const char *name;          /* for the log lines ("metrics http"); borrowed; NULL: "http" */
    const char *host;          /* address to listen on; copied */
    int port;                  /* 0: any free port (see httpd_port) */
    uint32_t max_connections;  /* 0: HTTPD_DEFAULT_MAX_CONNECTIONS */
    uint64_t timeout_ms;       /* 0: HTTPD_DEFAULT_TIMEOUT_MS */
    const char *content_type;  /* of the 200 page; borrowed, must outlive the server */
    httpd_handler_fn handler;  /* when set, answers every request; render is then unused */
};

struct httpd_stats {
    uint64_t requests;         /* request heads answered, any status */
    uint64_t refused;          /* connections closed at once: over max_connections */
    uint64_t timed_out;        /* connections closed by the timeout */
    uint32_t open;             /* connections open now */
};

struct httpd;

/*
 * Binds opts->host:opts->port and starts serving on loop.  render (or
 * opts->handler) and ctx are borrowed until httpd_stop; render may be NULL
 * when opts->handler is set.  Returns 0 and the server in *out, or a
 * negative code (ZN_BADARGUMENTS for an unparsable host, ZN_IO when the
 * address cannot be bound, ZN_NOMEMORY) with the reason logged; *out is
 * then NULL and nothing needs closing.
 */
int httpd_start(struct httpd **out, uv_loop_t *loop, const struct httpd_options *opts,
                httpd_render_fn render, void *ctx);

/*
 * Answers the deferred request of ticket: status and type as in a reply,
 * extra_headers ("Name: value\r\n" lines, copied; NULL for none), then a body
 * of prefix (copied) followed by fd_bytes read from fd (ownership of fd passes
 * to httpd, which reads it on the loop a chunk per write and closes it; -1 for
 * none).  The connection's timeout is restarted at each chunk, so a large
 * body takes as long as the client keeps reading.  Returns 0, or ZN_NONODE
 * when the connection is gone (the client left, the timeout, httpd_stop; fd
 * is closed then too), ZN_BADARGUMENTS when the headers do not fit.
 */
int httpd_finish(struct httpd *h, uint64_t ticket, int status, const char *content_type,
                 const char *extra_headers, const void *prefix, size_t prefix_len, int fd,
                 uint64_t fd_bytes);

/* The port the server is bound to (useful after port 0). */
int httpd_port(const struct httpd *h);

void httpd_get_stats(const struct httpd *h, struct httpd_stats *out);

/*
 * Closes the listener and every connection.  The memory is freed in the
 * close callbacks, so the loop must run once more; render is never called
 * after this returns.  h may be NULL.
 */
void httpd_stop(struct httpd *h);

#endif
