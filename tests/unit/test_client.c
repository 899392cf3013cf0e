/*
 * Unit tests of libznode's client against a fake ZooKeeper server
 * (client_fake_server.c) on the same loop as the client: each test asserts
 * the wire behaviour the fake recorded (ConnectRequest fields, SetWatches
 * contents, pings, chroot prefixes) and counts every callback exactly.
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

/* ---- harness ---- */

struct counts {
    int events[8];      /* by zn_session_event */
    int results;
    int last_rc;
    int32_t last_data_len;
    char last_path[FAKE_PATH_BYTES];
    int watch_calls;
    int watch_type;
    int watch_state;
    char watch_path[FAKE_PATH_BYTES];
    char order[16];     /* 'W' watcher, 'R' result, in call order */
    int order_len;
    int closed;
};

static struct counts counts;

static void on_session(struct zn_client *c, int event, void *arg)
{
    (void)c;
    (void)arg;
    counts.events[event]++;
}

static void on_result(struct zn_client *c, const struct zn_result *res, void *arg)
{
    (void)c;
    (void)arg;
    counts.results++;
    counts.last_rc = res->rc;
    counts.last_data_len = res->data_len;
    snprintf(counts.last_path, sizeof counts.last_path, "%s", res->path ? res->path : "");
    if (counts.order_len < 15)
        counts.order[counts.order_len++] = 'R';
}

static void on_watch(struct zn_client *c, int type, int state, const char *path, void *arg)
{
    (void)c;
    (void)arg;
    counts.watch_calls++;
    counts.watch_type = type;
    counts.watch_state = state;
    snprintf(counts.watch_path, sizeof counts.watch_path, "%s", path);
    if (counts.order_len < 15)
        counts.order[counts.order_len++] = 'W';
}

static void on_closed(void *arg)
{
    (void)arg;
    counts.closed++;
}

static void wake(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag reaches want (ints), failing after 5 s of loop time. */
#define RUN_UNTIL(loop, cond)                                                        \
    do {                                                                             \
        uv_timer_t guard;                                                            \
        uv_timer_init((loop), &guard);                                               \
        uv_timer_start(&guard, wake, 50, 50);                                        \
        uv_update_time(loop);                                                        \
        uint64_t deadline = uv_now(loop) + 5000;                                     \
        while (!(cond) && uv_now(loop) < deadline)                                   \
            uv_run((loop), UV_RUN_ONCE);                                             \
        uv_close((uv_handle_t *)&guard, NULL);                                       \
        uv_run((loop), UV_RUN_NOWAIT);                                               \
        if (!(cond))                                                                 \
            fail_msg("timed out waiting for: %s", #cond);                            \
    } while (0)

static struct zn_client *new_client(uv_loop_t *loop, const char *connect_string, int32_t timeout_ms)
{
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.keep_host_order = true;
    o.session_timeout_ms = timeout_ms;
    o.session_cb = on_session;
    o.log_level = ZN_LOG_OFF;
    struct zn_client *c = NULL;
    assert_int_equal(zn_client_new(loop, connect_string, &o, &c), 0);
    return c;
}

/* Closes the client and the servers and proves the loop has nothing left open. */
static void finish(uv_loop_t *loop, struct zn_client *c, struct fake_server *a,
                   struct fake_server *b)
{
    if (c) {
        zn_client_close(c, on_closed, NULL);
        RUN_UNTIL(loop, counts.closed == 1);
    }
    if (a)
        fake_stop(a);
    if (b)
        fake_stop(b);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static int setup(void **state)
{
    (void)state;
    memset(&counts, 0, sizeof counts);
    return 0;
}

/* ---- tests ---- */

static void connects_and_gets_data_with_the_chroot_prepended(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a;
    fake_start(&loop, &a);
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d/app", a.port);
    struct zn_client *c = new_client(&loop, cs, 3000);
    assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), 0);
    assert_int_equal(counts.results, 0); /* never called from inside the call */
    RUN_UNTIL(&loop, counts.results == 1);
    assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 1);
    assert_int_equal(a.connect_protocol, 0);
    assert_int_equal(a.connect_session_id, 0);
    assert_string_equal(a.last_path, "/app/x");
    assert_int_equal(counts.last_rc, 0);
    assert_int_equal(counts.last_data_len, 1);
    assert_int_equal(zn_client_session_id(c), FAKE_SESSION_ID);
    assert_int_equal(zn_client_negotiated_timeout_ms(c), 3000);
    assert_int_equal(zn_client_last_zxid(c), 0x10);

    /* created paths come back with the chroot stripped */
    assert_int_equal(zn_create(c, "/n", "d", 1, NULL, 0, 0, 0, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 2);
    assert_string_equal(a.last_path, "/app/n");
    assert_string_equal(counts.last_path, "/n");
    /* the chroot root itself maps to "/" */
    assert_int_equal(zn_create(c, "/", "d", 1, NULL, 0, 0, 0, on_result, NULL), ZN_BADARGUMENTS);
    assert_int_equal(zn_get(c, "relative", NULL, NULL, on_result, NULL), ZN_BADARGUMENTS);
    /* A whole path may pass Linux's 4096 bytes (the server takes up to 1 MiB); with the chroot
     * it may not reach ZN_CLIENT_MAX_PATH_BYTES. */
    char *long_path = malloc(ZN_CLIENT_MAX_PATH_BYTES);
    assert_non_null(long_path);
    memset(long_path, 'p', ZN_CLIENT_MAX_PATH_BYTES);
    long_path[0] = '/';
    long_path[5000] = '\0';
    assert_int_equal(zn_get(c, long_path, NULL, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 3);
    assert_int_equal(strlen(a.last_path), FAKE_PATH_BYTES - 1); /* the fake keeps a prefix */
    long_path[5000] = 'p';
    long_path[ZN_CLIENT_MAX_PATH_BYTES - strlen("/app")] = '\0';
    assert_int_equal(zn_get(c, long_path, NULL, NULL, on_result, NULL), ZN_BADARGUMENTS);
    /* one byte shorter it is a path, but no packet carries it */
    long_path[ZN_CLIENT_MAX_PATH_BYTES - strlen("/app") - 1] = '\0';
    assert_int_equal(zn_get(c, long_path, NULL, NULL, on_result, NULL), ZN_TOOBIG);
    free(long_path);
    finish(&loop, c, &a, NULL);
    assert_int_equal(a.close_sessions, 1);
    assert_int_equal(counts.events[ZN_SESSION_CLOSED], 1);
    assert_int_equal(counts.results, 3);
}

static void pings_when_idle_at_a_third_of_the_timeout(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a;
    fake_start(&loop, &a);
    a.timeout_ms = 300; /* ping every 100 ms of idleness */
    char cs[64];
    snprintf(cs, sizeof cs, "127.0.0.1:%d", a.port);
    struct zn_client *c = new_client(&loop, cs, 300);
    RUN_UNTIL(&loop, a.pings >= 3);
    /* pings answered: the session never dropped */
    assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 1);
    assert_int_equal(counts.events[ZN_SESSION_DISCONNECTED], 0);
    finish(&loop, c, &a, NULL);
}

static void reconnects_to_the_next_host_keeping_session_and_watches(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a, b;
    fake_start(&loop, &a);
    fake_start(&loop, &b);
    a.zxid = 0x20;
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d,127.0.0.1:%d/app", a.port, b.port);
    struct zn_client *c = new_client(&loop, cs, 3000);
    assert_int_equal(zn_get(c, "/w", on_watch, NULL, on_result, NULL), 0);
    assert_int_equal(zn_exists(c, "/missing", on_watch, NULL, on_result, NULL), 0);
    assert_int_equal(zn_get_children(c, "/c", on_watch, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 3);
    assert_int_equal(counts.last_rc, 0);
    assert_int_equal(a.connects, 1);
    assert_int_equal(b.connects, 0);

    /* A drops the connection on the next request: it fails with CONNECTIONLOSS, once. */
    a.drop_on_request = true;
    assert_int_equal(zn_get(c, "/lost", NULL, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 4);
    assert_int_equal(counts.last_rc, ZN_CONNECTIONLOSS);
    RUN_UNTIL(&loop, counts.events[ZN_SESSION_CONNECTED] == 2);
    assert_int_equal(counts.events[ZN_SESSION_DISCONNECTED], 1);
    assert_int_equal(b.connects, 1);
    assert_int_equal(b.connect_session_id, FAKE_SESSION_ID);
    assert_int_equal(b.connect_last_zxid, 0x20);
    for (int i = 0; i < 16; i++)
        assert_int_equal(b.connect_passwd[i], i + 1);

    RUN_UNTIL(&loop, b.set_watches == 1);
    assert_int_equal(b.set_watches_zxid, 0x20);
    assert_int_equal(b.set_watches_count[ZN_WATCHES_DATA], 1);
    assert_string_equal(b.set_watches_paths[ZN_WATCHES_DATA][0], "/app/w");
    assert_int_equal(b.set_watches_count[ZN_WATCHES_EXIST], 1);
    assert_string_equal(b.set_watches_paths[ZN_WATCHES_EXIST][0], "/app/missing");
    assert_int_equal(b.set_watches_count[ZN_WATCHES_CHILD], 1);
    assert_string_equal(b.set_watches_paths[ZN_WATCHES_CHILD][0], "/app/c");

    /* An event arriving just before a reply is delivered first, path chroot-stripped. */
    strcpy(b.event_before_reply, "/app/w");
    counts.order_len = 0;
    assert_int_equal(zn_get(c, "/other", NULL, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 5);
    assert_int_equal(counts.watch_calls, 1);
    assert_int_equal(counts.watch_type, ZN_EVENT_CHANGED);
    assert_string_equal(counts.watch_path, "/w");
    assert_memory_equal(counts.order, "WR", 2);

    /* One-shot: the same event again reaches nobody. A child event fires the child watch. */
    fake_send_event(&b, ZN_EVENT_CHANGED, "/app/w");
    fake_send_event(&b, ZN_EVENT_CHILD, "/app/c");
    RUN_UNTIL(&loop, counts.watch_calls == 2);
    assert_int_equal(counts.watch_type, ZN_EVENT_CHILD);
    assert_string_equal(counts.watch_path, "/c");
    /* The exists watch is the only one left; closing ends it with a NONE/CLOSED call. */
    finish(&loop, c, &a, &b);
    assert_int_equal(counts.watch_calls, 3);
    assert_int_equal(counts.watch_type, ZN_EVENT_NONE);
    assert_int_equal(counts.watch_state, ZN_STATE_CLOSED);
    assert_string_equal(counts.watch_path, "/missing");
    assert_int_equal(counts.results, 5);
}

static void a_silent_server_is_declared_dead_and_the_next_host_used(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a, b;
    fake_start(&loop, &a);
    fake_start(&loop, &b);
    a.timeout_ms = 300;
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct zn_client *c = new_client(&loop, cs, 300);
    RUN_UNTIL(&loop, counts.events[ZN_SESSION_CONNECTED] == 1);
    a.silent = true; /* no more replies, not even to pings */
    RUN_UNTIL(&loop, counts.events[ZN_SESSION_CONNECTED] == 2);
    assert_int_equal(counts.events[ZN_SESSION_DISCONNECTED], 1);
    assert_true(a.pings >= 1);
    assert_int_equal(b.connect_session_id, FAKE_SESSION_ID);
    finish(&loop, c, &a, &b);
}

static void an_expired_session_is_reported_and_fails_everything(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a, b;
    fake_start(&loop, &a);
    fake_start(&loop, &b);
    b.expire = true;
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct zn_client *c = new_client(&loop, cs, 3000);
    assert_int_equal(zn_exists(c, "/missing", on_watch, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 1);
    assert_int_equal(counts.last_rc, ZN_NONODE);
    fake_stop(&a); /* A goes away for good; B says the session expired */
    RUN_UNTIL(&loop, counts.events[ZN_SESSION_EXPIRED] == 1);
    assert_int_equal(counts.events[ZN_SESSION_DISCONNECTED], 1);
    assert_int_equal(b.connect_session_id, FAKE_SESSION_ID);
    assert_int_equal(counts.watch_calls, 1);
    assert_int_equal(counts.watch_type, ZN_EVENT_NONE);
    assert_int_equal(counts.watch_state, ZN_STATE_EXPIRED);
    assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), ZN_SESSIONEXPIRED);
    finish(&loop, c, NULL, &b);
    assert_int_equal(counts.events[ZN_SESSION_EXPIRED], 1);
    assert_int_equal(counts.events[ZN_SESSION_CLOSED], 0);
    assert_int_equal(counts.results, 1);
    assert_int_equal(counts.watch_calls, 1);
}

static void queued_request_fails_with_connectionloss_when_no_server_answers(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a;
    fake_start(&loop, &a);
    int port = a.port;
    fake_stop(&a); /* nothing listens there any more */
    uv_run(&loop, UV_RUN_DEFAULT);
    char cs[64];
    snprintf(cs, sizeof cs, "127.0.0.1:%d", port);
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.queue_timeout_ms = 300;
    o.log_level = ZN_LOG_OFF;
    o.session_cb = on_session;
    struct zn_client *c;
    assert_int_equal(zn_client_new(&loop, cs, &o, &c), 0);
    assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 1);
    assert_int_equal(counts.last_rc, ZN_CONNECTIONLOSS);
    assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 0);
    finish(&loop, c, NULL, NULL);
    assert_int_equal(counts.results, 1);
}

static void bad_connect_strings_are_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct zn_client *c = NULL;
    assert_int_equal(zn_client_new(&loop, "", NULL, &c), ZN_BADARGUMENTS);
    assert_int_equal(zn_client_new(&loop, "host:0", NULL, &c), ZN_BADARGUMENTS);
    assert_int_equal(zn_client_new(&loop, "host:99999", NULL, &c), ZN_BADARGUMENTS);
    assert_int_equal(zn_client_new(&loop, "host:2181/app/", NULL, &c), ZN_BADARGUMENTS);
    assert_int_equal(zn_client_new(&loop, ":2181", NULL, &c), ZN_BADARGUMENTS);
    assert_null(c);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void unusable_tls_files_are_refused_before_anything_starts(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct zn_client *c = NULL;
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.log_level = ZN_LOG_OFF;
    o.tls_cert_file = "/etc/hostname"; /* a certificate without CAs to check the server with */
    assert_int_equal(zn_client_new(&loop, "127.0.0.1:2281", &o, &c), ZN_BADARGUMENTS);
    o.tls_cert_file = NULL;
    o.tls_ca_file = "/nonexistent/ca.pem";
    assert_int_equal(zn_client_new(&loop, "127.0.0.1:2281", &o, &c), ZN_BADARGUMENTS);
    o.tls_ca_file = "/etc/hostname"; /* not PEM */
    assert_int_equal(zn_client_new(&loop, "127.0.0.1:2281", &o, &c), ZN_BADARGUMENTS);
    assert_null(c);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- SASL ---- */

static struct zn_client *new_sasl_client(uv_loop_t *loop, const char *connect_string, const char *password)
{
    static struct config_sasl users = {.enabled = true, .user_count = 1};
    strcpy(users.users[0].name, "bob");
    strcpy(users.users[0].password, "bob-secret");
    assert_int_equal(saslauth_init(&users), 0);
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.keep_host_order = true;
    o.session_timeout_ms = 3000;
    o.session_cb = on_session;
    o.log_level = ZN_LOG_OFF;
    o.sasl_mechanism = "DIGEST-MD5";
    o.sasl_user = "bob";
    o.sasl_password = password;
    struct zn_client *c = NULL;
    assert_int_equal(zn_client_new(loop, connect_string, &o, &c), 0);
    return c;
}

static void sasl_runs_first_on_every_connection_and_connected_means_authenticated(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a, b;
    fake_start(&loop, &a);
    fake_start(&loop, &b);
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct zn_client *c = new_sasl_client(&loop, cs, "bob-secret");
    /* queued before the session exists: sent only once SASL is done */
    assert_int_equal(zn_get(c, "/x", on_watch, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 1);
    assert_int_equal(counts.last_rc, 0);
    assert_string_equal(a.log, "SSR"); /* DIGEST-MD5: an empty opening token, then the response */
    assert_string_equal(a.sasl_user, "bob");
    assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 1);
    fake_stop(&a); /* the session moves to B: authenticated again before its watches are re-set */
    RUN_UNTIL(&loop, counts.events[ZN_SESSION_CONNECTED] == 2);
    assert_string_equal(b.log, "SSW");
    assert_string_equal(b.sasl_user, "bob");
    assert_int_equal(b.connect_session_id, FAKE_SESSION_ID);
    assert_int_equal(zn_get(c, "/y", NULL, NULL, on_result, NULL), 0);
    RUN_UNTIL(&loop, counts.results == 2);
    assert_string_equal(b.log, "SSWR");
    finish(&loop, c, NULL, &b);
}

static void a_rejected_sasl_exchange_ends_the_session_and_says_why(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a;
    fake_start(&loop, &a);
    char cs[64], expected[160];
    snprintf(cs, sizeof cs, "127.0.0.1:%d", a.port);
    /* the server rejects it (a wrong password to saslauth; a scripted AUTHFAILED) */
    for (int scripted = 0; scripted < 2; scripted++) {
        memset(&counts, 0, sizeof counts);
        a.log_len = 0;
        memset(a.log, 0, sizeof a.log);
        a.sasl_reject = scripted;
        struct zn_client *c = new_sasl_client(&loop, cs, "not-bobs");
        assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), 0);
        RUN_UNTIL(&loop, counts.events[ZN_SESSION_AUTH_FAILED] == 1);
        assert_int_equal(counts.results, 1);
        assert_int_equal(counts.last_rc, ZN_AUTHFAILED);
        assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 0);
        assert_string_equal(a.log, scripted ? "S" : "SS"); /* the get never went out */
        snprintf(expected, sizeof expected, "127.0.0.1:%d: SASL DIGEST-MD5 as bob: rejected by the server (AUTHFAILED)",
                 a.port);
        assert_string_equal(zn_client_last_failure(c), expected);
        assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), ZN_AUTHFAILED);
        zn_client_close(c, on_closed, NULL);
        RUN_UNTIL(&loop, counts.closed == 1);
    }
    finish(&loop, NULL, &a, NULL);
}

static void sasl_options_are_checked(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct zn_client *c = NULL;
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.log_level = ZN_LOG_OFF;
    const char *cases[][3] = {
        {"PLAIN", "bob", "pw"}, {"DIGEST-MD5", "bob", NULL}, {"DIGEST-MD5", NULL, "pw"},
        {"DIGEST-MD5", "", "pw"}, {"GSSAPI", "bob", NULL}, {NULL, "bob", "pw"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o.sasl_mechanism = cases[i][0];
        o.sasl_user = cases[i][1];
        o.sasl_password = cases[i][2];
        assert_int_equal(zn_client_new(&loop, "127.0.0.1:2181", &o, &c), ZN_BADARGUMENTS);
    }
    o.sasl_mechanism = "DIGEST-MD5";
    o.sasl_user = "bob";
    o.sasl_password = "pw";
    o.sasl_host = "zk1"; /* a GSSAPI setting */
    assert_int_equal(zn_client_new(&loop, "127.0.0.1:2181", &o, &c), ZN_BADARGUMENTS);
    assert_null(c);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void data_over_the_limit_is_refused_at_the_edge(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct zn_client *c = new_client(&loop, "127.0.0.1:1", 3000);
    size_t big = ZN_CLIENT_DEFAULT_MAX_DATA_BYTES + 1;
    char *data = calloc(1, big);
    assert_int_equal(zn_set(c, "/x", data, (int32_t)big, -1, on_result, NULL), ZN_TOOBIG);
    assert_int_equal(zn_create(c, "/x", data, (int32_t)big, NULL, 0, 0, 0, on_result, NULL),
                     ZN_TOOBIG);
    /* container excludes ephemeral; ttl needs a ttl */
    assert_int_equal(zn_create(c, "/x", "", 0, NULL, 0, ZN_FLAG_CONTAINER | ZN_FLAG_EPHEMERAL, 0,
                               on_result, NULL),
                     ZN_BADARGUMENTS);
    assert_int_equal(zn_create(c, "/x", "", 0, NULL, 0, ZN_FLAG_TTL, 0, on_result, NULL),
                     ZN_BADARGUMENTS);
    free(data);
    finish(&loop, c, NULL, NULL);
    assert_int_equal(counts.results, 0);
}


static void set_watches_over_the_packet_limit_are_split(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a, b;
    fake_start(&loop, &a);
    fake_start(&loop, &b);
    char cs[128];
    snprintf(cs, sizeof cs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct zn_client *c = new_client(&loop, cs, 3000);
    /* 2000 watches of ~100-byte paths: about 200 KB, more than one 128 KB packet */
    enum { WATCHES = 2000 };
    char path[128];
    for (int i = 0; i < WATCHES; i++) {
        snprintf(path, sizeof path, "/%090d", i);
        assert_int_equal(zn_get(c, path, on_watch, NULL, on_result, NULL), 0);
    }
    RUN_UNTIL(&loop, counts.results == WATCHES);
    fake_drop(&a);
    fake_stop(&a);
    RUN_UNTIL(&loop, b.set_watches_total == WATCHES);
    assert_int_equal(b.set_watches, 2);
    assert_int_equal(counts.events[ZN_SESSION_CONNECTED], 2);
    finish(&loop, c, NULL, &b);
    assert_int_equal(counts.watch_calls, WATCHES); /* each ended once by the close */
}

static void a_session_given_in_the_options_is_resumed(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_server a;
    fake_start(&loop, &a);
    char cs[64];
    snprintf(cs, sizeof cs, "127.0.0.1:%d", a.port);
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.session_id = 0x77;
    for (int i = 0; i < 16; i++)
        o.session_passwd[i] = (uint8_t)(100 + i);
    o.session_cb = on_session;
    o.log_level = ZN_LOG_OFF;
    o.max_pending = 2;
    struct zn_client *c;
    assert_int_equal(zn_client_new(&loop, cs, &o, &c), 0);
    /* the queue bound is checked at submission */
    assert_int_equal(zn_get(c, "/x", NULL, NULL, on_result, NULL), 0);
    assert_int_equal(zn_get(c, "/y", NULL, NULL, on_result, NULL), 0);
    assert_int_equal(zn_get(c, "/z", NULL, NULL, on_result, NULL), ZN_APIERROR);
    RUN_UNTIL(&loop, counts.results == 2);
    assert_int_equal(a.connect_session_id, 0x77);
    for (int i = 0; i < 16; i++)
        assert_int_equal(a.connect_passwd[i], 100 + i);
    assert_int_equal(zn_client_session_id(c), 0x77);
    finish(&loop, c, &a, NULL);
    assert_int_equal(counts.results, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(connects_and_gets_data_with_the_chroot_prepended, setup),
        cmocka_unit_test_setup(pings_when_idle_at_a_third_of_the_timeout, setup),
        cmocka_unit_test_setup(reconnects_to_the_next_host_keeping_session_and_watches, setup),
        cmocka_unit_test_setup(a_silent_server_is_declared_dead_and_the_next_host_used, setup),
        cmocka_unit_test_setup(an_expired_session_is_reported_and_fails_everything, setup),
        cmocka_unit_test_setup(queued_request_fails_with_connectionloss_when_no_server_answers,
                               setup),
        cmocka_unit_test_setup(set_watches_over_the_packet_limit_are_split, setup),
        cmocka_unit_test_setup(a_session_given_in_the_options_is_resumed, setup),
        cmocka_unit_test_setup(bad_connect_strings_are_refused, setup),
        cmocka_unit_test_setup(unusable_tls_files_are_refused_before_anything_starts, setup),
        cmocka_unit_test_setup(sasl_runs_first_on_every_connection_and_connected_means_authenticated, setup),
        cmocka_unit_test_setup(a_rejected_sasl_exchange_ends_the_session_and_says_why, setup),
        cmocka_unit_test_setup(sasl_options_are_checked, setup),
        cmocka_unit_test_setup(data_over_the_limit_is_refused_at_the_edge, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
