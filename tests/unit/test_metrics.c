/* Metrics: histograms, the Prometheus text format, the HTTP request parser,
 * and the metrics HTTP server on a real libuv loop with a real client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "config.h"
#include "httpd.h"
#include "metrics.h"
#include "server.h"
#include "tree.h"
#include "watch.h"
#include "znode/errors.h"
#include "znode/proto.h"

/* ---- histograms ---- */

static void histogram_puts_each_value_in_the_bucket_of_its_upper_bound(void **state)
{
    (void)state;
    struct metrics_histogram h = {0};
    metrics_histogram_observe(&h, 0);
    metrics_histogram_observe(&h, 25);       /* le=25us is inclusive */
    metrics_histogram_observe(&h, 26);
    metrics_histogram_observe(&h, 10000000); /* the last bound */
    metrics_histogram_observe(&h, 10000001); /* +Inf */
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[METRICS_LATENCY_BOUNDS - 1], 1);
    assert_int_equal(h.buckets[METRICS_LATENCY_BOUNDS], 1);
    assert_int_equal(h.count, 5);
    assert_int_equal(h.sum_us, 0 + 25 + 26 + 10000000 + 10000001);
    assert_int_equal(h.max_us, 10000001);
}

static void quantiles_interpolate_within_a_bucket_and_never_exceed_the_largest_value(void **state)
{
    (void)state;
    struct metrics_histogram h = {0};
    assert_true(metrics_histogram_quantile(&h, 0.5) == 0.0);
    for (int i = 0; i < 100; i++)
        metrics_histogram_observe(&h, 300); /* bucket (250, 500] */
    double p50 = metrics_histogram_quantile(&h, 0.5);
    assert_true(p50 > 250.0 && p50 <= 300.0);
    assert_true(metrics_histogram_quantile(&h, 0.99) <= 300.0);
    /* one slow outlier past the last bound: p99 stays in the common bucket, max is the outlier */
    metrics_histogram_observe(&h, 60000000);
    double p99 = metrics_histogram_quantile(&h, 0.99);
    assert_true(p99 > 250.0 && p99 <= 500.0);
    assert_true(metrics_histogram_quantile(&h, 1.0) == 60000000.0);
    /* a histogram of zeros (ms-resolution clocks) reports zero, not half a bucket */
    struct metrics_histogram z = {0};
    metrics_histogram_observe(&z, 0);
    assert_true(metrics_histogram_quantile(&z, 0.5) == 0.0);
}

static void every_known_opcode_has_its_own_slot_and_others_share_unknown(void **state)
{
    (void)state;
    size_t create = metrics_op_slot(ZN_OP_CREATE);
    size_t get = metrics_op_slot(ZN_OP_GETDATA);
    size_t unknown = metrics_op_slot(4242);
    assert_true(create < METRICS_OP_SLOTS && get < METRICS_OP_SLOTS);
    assert_int_not_equal(create, get);
    assert_int_equal(metrics_op_slot(-7777), unknown);
    assert_int_equal(metrics_slot_op(get), ZN_OP_GETDATA);
    assert_int_equal(metrics_slot_op(unknown), INT32_MIN);
    for (size_t s = 0; s < METRICS_OP_SLOTS; s++)
        if (s != unknown)
            assert_int_equal(metrics_op_slot(metrics_slot_op(s)), s);
}

/* ---- text format ---- */

static void help_and_label_values_are_escaped_as_the_text_format_requires(void **state)
{
    (void)state;
    struct metrics_text t = {0};
    metrics_family(&t, "x_total", "counter", "a \\ b\nc \"q\"");
    const char *labels[] = {"path", "/a\"b\\c\nd", "op", "get", NULL};
    metrics_sample_u64(&t, "x_total", labels, 18446744073709551615ull);
    assert_int_equal(t.error, 0);
    assert_string_equal(t.data, "# HELP x_total a \\\\ b\\nc \"q\"\n"
                                "# TYPE x_total counter\n"
                                "x_total{path=\"/a\\\"b\\\\c\\nd\",op=\"get\"} 18446744073709551615\n");
    metrics_text_free(&t);
}

static void doubles_use_prometheus_spellings_for_infinities_and_nan(void **state)
{
    (void)state;
    struct metrics_text t = {0};
    metrics_sample_double(&t, "a", NULL, 0.25);
    metrics_sample_double(&t, "b", NULL, 1.0 / 0.0);
    metrics_sample_double(&t, "c", NULL, -1.0 / 0.0);
    metrics_sample_double(&t, "d", NULL, 0.0 / 0.0);
    assert_string_equal(t.data, "a 0.25\nb +Inf\nc -Inf\nd NaN\n");
    metrics_text_free(&t);
}

static void text_past_its_limit_fails_with_toobig_and_keeps_refusing(void **state)
{
    (void)state;
    struct metrics_text t = {0};
    char line[1024];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    for (size_t i = 0; i <= METRICS_TEXT_MAX_BYTES / (sizeof line - 1) && !t.error; i++)
        metrics_text_printf(&t, "%s", line);
    assert_int_equal(t.error, ZN_TOOBIG);
    assert_true(t.len < METRICS_TEXT_MAX_BYTES);
    size_t len = t.len;
    metrics_text_printf(&t, "y");
    assert_int_equal(t.len, len);
    metrics_text_free(&t);
}

static void request_families_count_by_op_with_cumulative_buckets(void **state)
{
    (void)state;
    static struct metrics_histogram by_op[METRICS_OP_SLOTS];
    memset(by_op, 0, sizeof by_op);
    uint64_t errors[METRICS_OP_SLOTS] = {0};
    size_t get = metrics_op_slot(ZN_OP_GETDATA), create = metrics_op_slot(ZN_OP_CREATE);
    metrics_histogram_observe(&by_op[get], 40);
    metrics_histogram_observe(&by_op[get], 40);
    metrics_histogram_observe(&by_op[get], 3000);
    metrics_histogram_observe(&by_op[create], 20000000);
    errors[create] = 1;
    struct metrics_text t = {0};
    metrics_render_requests(&t, by_op, errors);
    assert_int_equal(t.error, 0);
    const char *s = t.data;
    assert_non_null(strstr(s, "# TYPE znodefs_requests_total counter\n"));
    assert_non_null(strstr(s, "znodefs_requests_total{op=\"getData\"} 3\n"));
    assert_non_null(strstr(s, "znodefs_requests_total{op=\"create\"} 1\n"));
    assert_non_null(strstr(s, "znodefs_request_errors_total{op=\"getData\"} 0\n"));
    assert_non_null(strstr(s, "znodefs_request_errors_total{op=\"create\"} 1\n"));
    assert_null(strstr(s, "op=\"setData\""));  /* never seen: no series */
    assert_non_null(strstr(s, "# TYPE znodefs_request_latency_seconds histogram\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"getData\",le=\"2.5e-05\"} 0\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"getData\",le=\"5e-05\"} 2\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"getData\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"getData\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"getData\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_count{op=\"getData\"} 3\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_sum{op=\"getData\"} 0.00308\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"create\",le=\"10\"} 0\n"));
    assert_non_null(strstr(s, "znodefs_request_latency_seconds_bucket{op=\"create\",le=\"+Inf\"} 1\n"));
    metrics_text_free(&t);
}

static void summaries_are_in_milliseconds_with_zookeepers_quantiles(void **state)
{
    (void)state;
    struct metrics_histogram h = {0};
    metrics_histogram_observe(&h, 2000);
    metrics_histogram_observe(&h, 4000);
    struct metrics_text t = {0};
    metrics_render_summary_ms(&t, "readlatency", "Read latency", &h);
    const char *s = t.data;
    assert_non_null(strstr(s, "# TYPE readlatency summary\n"));
    assert_non_null(strstr(s, "readlatency{quantile=\"0.5\"} "));
    assert_non_null(strstr(s, "readlatency{quantile=\"0.9\"} "));
    /* 0.99 of 2 values: 98% into (2500, 5000], clamped at the largest value seen (4000us) */
    assert_non_null(strstr(s, "readlatency{quantile=\"0.99\"} 3.97\n"));
    assert_non_null(strstr(s, "readlatency_count 2\n"));
    assert_non_null(strstr(s, "readlatency_sum 6\n"));
    metrics_text_free(&t);
}

/* ---- HTTP request parser ---- */

static int parse(const char *text, struct httpd_request *req)
{
    return httpd_parse_request(text, strlen(text), HTTPD_MAX_REQUEST_BYTES, req);
}

static void a_get_of_metrics_parses_with_or_without_carriage_returns(void **state)
{
    (void)state;
    struct httpd_request req;
    const char *crlf = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    assert_int_equal(parse(crlf, &req), HTTPD_PARSE_DONE);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.path, "/metrics");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.head_bytes, strlen(crlf));
    assert_int_equal(httpd_route(&req), 200);
    assert_int_equal(parse("\r\nHEAD / HTTP/1.0\n\n", &req), HTTPD_PARSE_DONE);
    assert_string_equal(req.method, "HEAD");
    assert_string_equal(req.path, "/");
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(httpd_route(&req), 200);
    assert_int_equal(parse("GET http://h:7000/metrics HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_DONE);
    assert_string_equal(req.path, "/metrics");
    assert_int_equal(parse("GET http://h:7000 HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_DONE);
    assert_string_equal(req.path, "/");
}

static void a_head_without_its_blank_line_is_incomplete_until_the_limit(void **state)
{
    (void)state;
    struct httpd_request req;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n", &req), HTTPD_PARSE_INCOMPLETE);
    assert_int_equal(parse("", &req), HTTPD_PARSE_INCOMPLETE);
    char big[HTTPD_MAX_REQUEST_BYTES];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    assert_int_equal(httpd_parse_request(big, sizeof big, sizeof big, &req), HTTPD_PARSE_TOO_LARGE);
    /* a blank line past the limit does not count */
    assert_int_equal(httpd_parse_request("GET / HTTP/1.1\r\n\r\n", 18, 10, &req),
                     HTTPD_PARSE_TOO_LARGE);
}

static void the_authorization_header_is_kept_and_an_oversized_one_refused(void **state)
{
    (void)state;
    struct httpd_request req;
    assert_int_equal(parse("GET /c HTTP/1.1\r\nauthorization:  digest a:b \r\n\r\n", &req),
                     HTTPD_PARSE_DONE);
    assert_string_equal(req.authorization, "digest a:b");
    assert_int_equal(parse("GET /c HTTP/1.1\r\nHost: x\r\n\r\n", &req), HTTPD_PARSE_DONE);
    assert_string_equal(req.authorization, "");
    char big[HTTPD_AUTHORIZATION_BYTES + 64];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nAuthorization: ");
    memset(big + n, 'x', HTTPD_AUTHORIZATION_BYTES);
    strcpy(big + n + HTTPD_AUTHORIZATION_BYTES, "\r\n\r\n");
    assert_int_equal(parse(big, &req), HTTPD_PARSE_FIELD_TOO_LARGE);
}

static void malformed_heads_are_refused(void **state)
{
    (void)state;
    struct httpd_request req;
    assert_int_equal(parse("GET /metrics\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("GET metrics HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("G(T /metrics HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("GET /metrics FTP/1.1\r\n\r\n", &req), HTTPD_PARSE_BAD);
    assert_int_equal(parse("\x16\x03\x01\x02\x01\n\n", &req), HTTPD_PARSE_BAD); /* TLS hello */
    assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n", &req), HTTPD_PARSE_VERSION);
    char longpath[HTTPD_PATH_BYTES + 64];
    int n = snprintf(longpath, sizeof longpath, "GET /");
    memset(longpath + n, 'p', HTTPD_PATH_BYTES);
    strcpy(longpath + n + HTTPD_PATH_BYTES, " HTTP/1.1\r\n\r\n");
    assert_int_equal(parse(longpath, &req), HTTPD_PARSE_URI_TOO_LONG);
}

static void other_paths_are_not_found_and_other_methods_not_allowed(void **state)
{
    (void)state;
    struct httpd_request req;
    assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_DONE);
    assert_int_equal(httpd_route(&req), 404);
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req),
                     HTTPD_PARSE_DONE);
    assert_int_equal(httpd_route(&req), 405);
    assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n", &req), HTTPD_PARSE_DONE);
    assert_int_equal(httpd_route(&req), 405); /* methods are case-sensitive */
}

/* ---- the server, with a client on another thread ---- */

struct exchange {
    int port;
    const char *request;     /* NULL: send nothing */
    int connections;         /* >1: open that many, the last one reads */
    char response[65536];
    ssize_t response_len;    /* -1: error */
    double elapsed_s;
    uv_async_t done;
};

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *client_main(void *arg)
{
    struct exchange *x = arg;
    struct timeval start, end;
    gettimeofday(&start, NULL);
    int fds[8];
    int n = x->connections > 0 ? x->connections : 1;
    x->response_len = -1;
    for (int i = 0; i < n; i++)
        fds[i] = dial(x->port);
    int fd = fds[n - 1];
    if (fd >= 0) {
        if (x->request)
            (void)!write(fd, x->request, strlen(x->request));
        size_t got = 0;
        ssize_t r;
        while (got < sizeof x->response - 1 &&
               (r = read(fd, x->response + got, sizeof x->response - 1 - got)) > 0)
            got += (size_t)r;
        x->response[got] = '\0';
        x->response_len = (ssize_t)got;
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    gettimeofday(&end, NULL);
    x->elapsed_s = (double)(end.tv_sec - start.tv_sec) + (end.tv_usec - start.tv_usec) / 1e6;
    uv_async_send(&x->done);
    return NULL;
}

static void on_exchange_done(uv_async_t *a) { uv_stop(a->loop); }

/* Runs one client exchange against the loop's servers; returns the response. */
static struct exchange *run_exchange(uv_loop_t *loop, int port, const char *request, int conns)
{
    struct exchange *x = calloc(1, sizeof *x);
    x->port = port;
    x->request = request;
    x->connections = conns;
    uv_async_init(loop, &x->done, on_exchange_done);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, x), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    uv_close((uv_handle_t *)&x->done, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return x;
}

static int render_calls;

static int render_hello(void *ctx, char **body, size_t *len)
{
    (void)ctx;
    render_calls++;
    *body = strdup("hello 1\n");
    *len = strlen(*body);
    return 0;
}

static void the_server_answers_get_head_404_405_and_400_and_closes_each_connection(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpd *h;
    struct httpd_options opts = {.host = "127.0.0.1", .port = 0, .content_type = "text/x-test"};
    assert_int_equal(httpd_start(&h, &loop, &opts, render_hello, NULL), 0);
    int port = httpd_port(h);
    assert_true(port > 0);
    render_calls = 0;

    struct exchange *x = run_exchange(&loop, port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(x->response, "Content-Type: text/x-test\r\n"));
    assert_non_null(strstr(x->response, "Content-Length: 8\r\n"));
    assert_non_null(strstr(x->response, "Connection: close\r\n"));
    assert_non_null(strstr(x->response, "\r\n\r\nhello 1\n"));
    free(x);

    x = run_exchange(&loop, port, "HEAD / HTTP/1.0\r\n\r\n", 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(x->response, "Content-Length: 8\r\n"));
    assert_int_equal(strlen(strstr(x->response, "\r\n\r\n")), 4); /* no body */
    free(x);

    x = run_exchange(&loop, port, "GET /other HTTP/1.1\r\n\r\n", 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 404 Not Found\r\n"));
    free(x);
    x = run_exchange(&loop, port, "DELETE /metrics HTTP/1.1\r\n\r\n", 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(x->response, "Allow: GET, HEAD\r\n"));
    free(x);
    x = run_exchange(&loop, port, "hello there\r\n\r\n", 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 400 Bad Request\r\n"));
    free(x);
    assert_int_equal(render_calls, 2); /* only the GET and the HEAD rendered */

    struct httpd_stats st;
    httpd_get_stats(h, &st);
    assert_int_equal(st.requests, 5);
    httpd_stop(h);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void an_oversized_head_gets_431(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpd *h;
    struct httpd_options opts = {.host = "127.0.0.1"};
    assert_int_equal(httpd_start(&h, &loop, &opts, render_hello, NULL), 0);
    char *req = malloc(HTTPD_MAX_REQUEST_BYTES + 100);
    strcpy(req, "GET /metrics HTTP/1.1\r\nX-Big: ");
    size_t n = strlen(req);
    memset(req + n, 'b', HTTPD_MAX_REQUEST_BYTES + 50 - n);
    req[HTTPD_MAX_REQUEST_BYTES + 50] = '\0';
    struct exchange *x = run_exchange(&loop, httpd_port(h), req, 1);
    assert_non_null(strstr(x->response, "HTTP/1.1 431 "));
    free(x);
    free(req);
    httpd_stop(h);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void a_silent_client_is_closed_by_the_timeout_and_extra_connections_are_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpd *h;
    struct httpd_options opts = {.host = "127.0.0.1", .timeout_ms = 300, .max_connections = 1};
    assert_int_equal(httpd_start(&h, &loop, &opts, render_hello, NULL), 0);
    /* silent: sends nothing; the server closes it after the timeout (EOF, no response) */
    struct exchange *x = run_exchange(&loop, httpd_port(h), NULL, 1);
    assert_int_equal(x->response_len, 0);
    assert_true(x->elapsed_s >= 0.25 && x->elapsed_s < 9.0);
    free(x);
    struct httpd_stats st;
    httpd_get_stats(h, &st);
    assert_int_equal(st.timed_out, 1);
    /* two at once with a limit of one: the second is closed at once, unanswered */
    x = run_exchange(&loop, httpd_port(h), "GET / HTTP/1.1\r\n\r\n", 2);
    assert_int_equal(x->response_len, 0);
    free(x);
    httpd_get_stats(h, &st);
    assert_int_equal(st.refused, 1);
    httpd_stop(h);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void a_port_in_use_is_an_error_and_leaves_nothing_open(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpd *a, *b;
    struct httpd_options opts = {.host = "127.0.0.1"};
    assert_int_equal(httpd_start(&a, &loop, &opts, render_hello, NULL), 0);
    opts.port = httpd_port(a);
    assert_int_equal(httpd_start(&b, &loop, &opts, render_hello, NULL), ZN_IO);
    assert_null(b);
    opts.host = "not-an-address";
    assert_int_equal(httpd_start(&b, &loop, &opts, render_hello, NULL), ZN_BADARGUMENTS);
    httpd_stop(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the registry on a server (no store, no clients) ---- */

static void no_notify(void *ctx, struct watch_owner *o, const struct watch_event *ev)
{
    (void)ctx, (void)o, (void)ev;
}

static void a_server_with_the_prometheus_provider_serves_its_counts(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static struct server srv;
    memset(&srv, 0, sizeof srv);
    srv.loop = &loop;
    config_defaults(&srv.cfg);
    srv.cfg.metrics_prometheus = true;
    srv.cfg.metrics_http_port = 0; /* any free port */
    strcpy(srv.cfg.metrics_http_host, "127.0.0.1");
    srv.tree = tree_new();
    srv.watches = watch_manager_new(no_notify, NULL);

    /* before metrics_start every hook is a no-op */
    metrics_observe_request(&srv, ZN_OP_GETDATA, 0, 10);
    char *page;
    size_t len;
    assert_int_equal(metrics_render(&srv, &page, &len), ZN_BADARGUMENTS);
    assert_int_equal(metrics_http_port(&srv), -1);

    assert_int_equal(metrics_start(&srv), 0);
    assert_int_equal(metrics_start(&srv), 0); /* again: no change */
    int port = metrics_http_port(&srv);
    assert_true(port > 0);
    metrics_observe_request(&srv, ZN_OP_GETDATA, 0, 120);
    metrics_observe_request(&srv, ZN_OP_GETDATA, ZN_NONODE, 80);
    metrics_observe_request(&srv, ZN_OP_CREATE, 0, 5000);
    metrics_observe_fsync(&srv, 3000);

    struct exchange *x = run_exchange(&loop, port, "GET /metrics HTTP/1.1\r\n\r\n", 1);
    const char *s = x->response;
    assert_non_null(strstr(s, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(s, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    char expect[64];
    snprintf(expect, sizeof expect, "\nznode_count %zu\n", tree_node_count(srv.tree));
    assert_true(tree_node_count(srv.tree) >= 1); /* the root, and /zookeeper's nodes */
    assert_non_null(strstr(s, expect));
    assert_non_null(strstr(s, "\nwatch_count 0\n"));
    assert_non_null(strstr(s, "\nnum_alive_connections 0\n"));
    assert_non_null(strstr(s, "\nreadlatency_count 2\n"));
    assert_non_null(strstr(s, "\nupdatelatency_count 1\n"));
    assert_non_null(strstr(s, "\nupdatelatency_sum 5\n"));
    assert_non_null(strstr(s, "\nfsynctime_count 1\n"));
    assert_non_null(strstr(s, "\nznodefs_server_state{state=\"standalone\"} 1\n"));
    assert_non_null(strstr(s, "\nznodefs_requests_total{op=\"getData\"} 2\n"));
    assert_non_null(strstr(s, "\nznodefs_request_errors_total{op=\"getData\"} 1\n"));
    assert_non_null(strstr(s, "\nznodefs_requests_total{op=\"create\"} 1\n"));
    assert_null(strstr(s, "quorum_size")); /* standalone */
    free(x);

    metrics_stop(&srv);
    metrics_observe_request(&srv, ZN_OP_GETDATA, 0, 10); /* after stop: a no-op */
    assert_int_equal(metrics_http_port(&srv), -1);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* without the provider: counted, rendered on demand, not served */
    srv.cfg.metrics_prometheus = false;
    uv_loop_init(&loop);
    assert_int_equal(metrics_start(&srv), 0);
    assert_int_equal(metrics_http_port(&srv), -1);
    metrics_observe_request(&srv, ZN_OP_EXISTS, 0, 10);
    assert_int_equal(metrics_render(&srv, &page, &len), 0);
    assert_int_equal(strlen(page), len);
    assert_non_null(strstr(page, "znodefs_requests_total{op=\"exists\"} 1\n"));
    assert_null(strstr(page, "op=\"getData\"")); /* a fresh registry */
    free(page);
    metrics_stop(&srv);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    watch_manager_free(srv.watches);
    tree_free(srv.tree);
}

/* ---- zoo.cfg keys ---- */

static void metrics_provider_keys_turn_the_page_on_with_zookeepers_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_false(cfg.metrics_prometheus);
    assert_int_equal(cfg.metrics_http_port, 7000);
    /* ZooKeeper's default httpHost: the IPv4 wildcard address */
    struct in_addr any;
    assert_int_equal(inet_pton(AF_INET, cfg.metrics_http_host, &any), 1);
    assert_int_equal(any.s_addr, htonl(INADDR_ANY));
    assert_int_equal(config_set(&cfg, "metricsProvider.className",
                                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                                err, sizeof err), 0);
    assert_true(cfg.metrics_prometheus);
    assert_int_equal(config_set(&cfg, "metricsProvider.httpPort", "9141", err, sizeof err), 0);
    assert_int_equal(cfg.metrics_http_port, 9141);
    assert_int_equal(config_set(&cfg, "metricsProvider.httpHost", "127.0.0.1", err, sizeof err), 0);
    assert_string_equal(cfg.metrics_http_host, "127.0.0.1");
    assert_int_equal(config_set(&cfg, "metricsProvider.httpPort", "70000", err, sizeof err), -1);
    assert_non_null(strstr(err, "metricsProvider.httpPort"));
    assert_int_equal(config_set(&cfg, "metricsProvider.httpHost", "", err, sizeof err), -1);
    /* another provider class: no page */
    assert_int_equal(config_set(&cfg, "metricsProvider.className",
                                "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider", err,
                                sizeof err), 0);
    assert_false(cfg.metrics_prometheus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_provider_keys_turn_the_page_on_with_zookeepers_defaults),
        cmocka_unit_test(histogram_puts_each_value_in_the_bucket_of_its_upper_bound),
        cmocka_unit_test(quantiles_interpolate_within_a_bucket_and_never_exceed_the_largest_value),
        cmocka_unit_test(every_known_opcode_has_its_own_slot_and_others_share_unknown),
        cmocka_unit_test(help_and_label_values_are_escaped_as_the_text_format_requires),
        cmocka_unit_test(doubles_use_prometheus_spellings_for_infinities_and_nan),
        cmocka_unit_test(text_past_its_limit_fails_with_toobig_and_keeps_refusing),
        cmocka_unit_test(request_families_count_by_op_with_cumulative_buckets),
        cmocka_unit_test(summaries_are_in_milliseconds_with_zookeepers_quantiles),
        cmocka_unit_test(a_get_of_metrics_parses_with_or_without_carriage_returns),
        cmocka_unit_test(a_head_without_its_blank_line_is_incomplete_until_the_limit),
        cmocka_unit_test(malformed_heads_are_refused),
        cmocka_unit_test(other_paths_are_not_found_and_other_methods_not_allowed),
        cmocka_unit_test(the_server_answers_get_head_404_405_and_400_and_closes_each_connection),
        cmocka_unit_test(an_oversized_head_gets_431),
        cmocka_unit_test(the_authorization_header_is_kept_and_an_oversized_one_refused),
        cmocka_unit_test(a_silent_client_is_closed_by_the_timeout_and_extra_connections_are_refused),
        cmocka_unit_test(a_port_in_use_is_an_error_and_leaves_nothing_open),
        cmocka_unit_test(a_server_with_the_prometheus_provider_serves_its_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
