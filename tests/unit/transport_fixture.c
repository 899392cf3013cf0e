/*
 * The peer transport tests' fixture (transport_fixture.h says what it
 * holds).  Called by test_transport.c.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "transport.h"
#include "transport_fixture.h"
#include "znode/errors.h"

/* A port free on host now (bound and released; the kernel does not hand it
 * out again at once). */
static int free_port(const char *host)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, host, &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void on_freed(void *arg);

void on_recv(void *ctx, uint32_t from_id, const uint8_t *frame, size_t len)
{
    struct member *m = ctx;
    if (m->t == NULL) {
        m->recv_calls_after_stop++;
        return;
    }
    assert_true(from_id >= 1 && from_id <= MEMBERS_MAX);
    if (len >= FRAME_HEADER_BYTES) {
        uint32_t from, to, seq;
        memcpy(&from, frame, 4);
        memcpy(&to, frame + 4, 4);
        memcpy(&seq, frame + 8, 4);
        /* Raw test peers send frames without this header; only check ours. */
        if (from == from_id && to == m->id) {
            if (seq < m->next_seq[from_id])
                m->order_broken = true;
            else if (seq > m->next_seq[from_id])
                m->gaps++;
            m->next_seq[from_id] = seq + 1;
            /* The payload pattern proves no byte was lost or moved. */
            for (size_t i = FRAME_HEADER_BYTES; i < len; i++)
                if (frame[i] != (uint8_t)(seq + i))
                    m->order_broken = true;
        }
    }
    m->received[from_id]++;
    if (m->stop_on_first_recv) {
        m->stop_on_first_recv = false;
        struct transport *t = m->t;
        m->t = NULL;
        transport_stop_notify(t, on_freed, m);
    }
}

void on_peer(void *ctx, uint32_t peer_id, bool connected)
{
    struct member *m = ctx;
    assert_true(peer_id >= 1 && peer_id <= MEMBERS_MAX);
    assert_true(m->link_up[peer_id] != connected); /* calls alternate */
    m->link_up[peer_id] = connected;
    if (connected)
        m->ups[peer_id]++;
    else
        m->downs[peer_id]++;
}

static void on_freed(void *arg)
{
    struct member *m = arg;
    m->freed = true;
    m->freed_calls++;
}

void tick(uv_timer_t *timer) {}

int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    *state = fx;
    return 0;
}

/* Declares members 1..n on 127.0.0.<id> with free ports (not started). */
void members_declare(struct fixture *fx, int n)
{
    fx->n_members = n;
    for (int id = 1; id <= n; id++) {
        struct member *m = &fx->m[id];
        memset(m, 0, sizeof *m);
        m->fx = fx;
        m->id = (uint32_t)id;
        snprintf(m->host, sizeof m->host, "127.0.0.%d", id);
        m->port = free_port(m->host);
    }
}

int member_start(struct fixture *fx, int id)
{
    struct transport_peer peers[MEMBERS_MAX];
    size_t n = 0;
    for (int j = 1; j <= fx->n_members; j++) {
        if (j == id)
            continue;
        peers[n].id = (uint32_t)j;
        snprintf(peers[n].host, sizeof peers[n].host, "%s", fx->m[j].host);
        peers[n].port = fx->m[j].port;
        n++;
    }
    struct member *m = &fx->m[id];
    memset(m->link_up, 0, sizeof m->link_up);
    m->freed = false;
    m->freed_calls = 0;
    return transport_start(&m->t, &fx->loop, m->id, m->host, m->port, peers, n, on_recv, on_peer, m);
}

void member_stop(struct fixture *fx, int id)
{
    struct member *m = &fx->m[id];
    if (!m->t)
        return;
    struct transport *t = m->t;
    m->t = NULL;
    transport_stop_notify(t, on_freed, m);
}


/* Runs the loop until cond holds; fails the test with `what` after the
 * deadline. */
void run_until(struct fixture *fx, condition_fn cond, void *arg, const char *what)
{
    uv_timer_start(&fx->tick, tick, 5, 5);
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_DEADLINE_MS * 1000000u;
    while (!cond(fx, arg)) {
        if (uv_hrtime() > deadline) {
            uv_timer_stop(&fx->tick);
            fail_msg("timed out waiting for: %s", what);
        }
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->tick);
}

/* Every running member's outgoing link to every other running member is up,
 * and the receiving side has accepted its hello. */
bool all_links_up(struct fixture *fx, void *arg)
{
    for (int i = 1; i <= fx->n_members; i++)
        for (int j = 1; j <= fx->n_members; j++) {
            if (i == j || !fx->m[i].t || !fx->m[j].t)
                continue;
            struct transport_peer_stats s;
            assert_int_equal(transport_peer_stats_by_id(fx->m[j].t, (uint32_t)i, &s), 0);
            if (!fx->m[i].link_up[j] || !s.incoming)
                return false;
        }
    return true;
}

int iptables(const char *op, const char *rule)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "iptables -w %s %s >/dev/null 2>&1", op, rule);
    return system(cmd);
}

/* Stops every member, runs the loop dry, and proves it closes cleanly. */
int teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->iptables_rule[0] && iptables("-D", fx->iptables_rule) != 0)
        fprintf(stderr, "could not remove iptables rule: %s\n", fx->iptables_rule);
    for (int id = 1; id <= MEMBERS_MAX; id++)
        member_stop(fx, id);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    int rc = uv_run(&fx->loop, UV_RUN_DEFAULT);
    for (int id = 1; id <= MEMBERS_MAX; id++)
        assert_true(fx->m[id].freed_calls <= 1);
    int close_rc = uv_loop_close(&fx->loop);
    free(fx);
    assert_int_equal(rc, 0);
    assert_int_equal(close_rc, 0);
    return 0;
}

/* Builds a frame of len bytes from -> to with the next seq and a pattern. */
static uint8_t *frame_make(struct member *from, uint32_t to, size_t len)
{
    uint8_t *f = malloc(len);
    assert_non_null(f);
    uint32_t seq = from->send_seq[to];
    memcpy(f, &from->id, 4);
    memcpy(f + 4, &to, 4);
    memcpy(f + 8, &seq, 4);
    for (size_t i = FRAME_HEADER_BYTES; i < len; i++)
        f[i] = (uint8_t)(seq + i);
    return f;
}

int send_one(struct member *from, uint32_t to, size_t len)
{
    uint8_t *f = frame_make(from, to, len);
    int rc = transport_send(from->t, to, f, len);
    if (rc == 0)
        from->send_seq[to]++;
    free(f);
    return rc;
}

/* ---- raw sockets playing misbehaving peers ---- */

int raw_connect(const char *from_host, const char *to_host, int to_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, from_host, &local.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&local, sizeof local), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to_port)};
    inet_pton(AF_INET, to_host, &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

void raw_write(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

void raw_prefix(int fd, uint32_t len)
{
    uint8_t b[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    raw_write(fd, b, 4);
}

void raw_hello(int fd, uint32_t magic, uint32_t version, uint32_t id)
{
    raw_prefix(fd, ZN_TRANSPORT_HELLO_BYTES);
    uint32_t words[3] = {htonl(magic), htonl(version), htonl(id)};
    raw_write(fd, words, sizeof words);
}

/* True once the other side closed fd (EOF or reset), without blocking. */
bool raw_closed(int fd)
{
    char b[64];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

bool raw_fd_closed(struct fixture *fx, void *arg) { return raw_closed(*(int *)arg); }

struct counter_wait {
    const uint64_t *counter;
    uint64_t target;
};

static bool counter_reached(struct fixture *fx, void *arg)
{
    struct counter_wait *w = arg;
    return *w->counter >= w->target;
}

void wait_counter(struct fixture *fx, const uint64_t *counter, uint64_t target, const char *what)
{
    struct counter_wait w = {counter, target};
    run_until(fx, counter_reached, &w, what);
}

