/*
 * The fixture shared by the peer transport's unit tests (test_transport.c):
 * up to MEMBERS_MAX members on loopback addresses 127.0.0.1-4 in one libuv
 * loop, whose frames carry (from, to, seq) so the receiver checks that every
 * frame arrives exactly once and in order per link; the loop run until a
 * condition holds; and raw blocking sockets that play misbehaving peers.
 * Invariant: teardown stops every member, removes the iptables rule a test
 * added, and proves uv_loop_close returns 0.
 */
#ifndef ZN_TEST_TRANSPORT_FIXTURE_H
#define ZN_TEST_TRANSPORT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "transport.h"

#define MEMBERS_MAX 4
#define WAIT_DEADLINE_MS 8000
#define FRAME_HEADER_BYTES 12 /* from, to, seq */

struct member {
    struct fixture *fx;
    uint32_t id;
    char host[16];
    int port;
    struct transport *t;
    bool freed;  /* transport_stop_notify's callback ran */
    int freed_calls;
    /* receive side: next expected seq and frames counted, per sender id */
    uint32_t next_seq[MEMBERS_MAX + 1];
    uint64_t received[MEMBERS_MAX + 1];
    uint64_t recv_calls_after_stop;
    bool order_broken; /* a frame repeated, reordered or corrupted */
    uint64_t gaps;     /* frames skipped (dropped on a link that went down) */
    /* outgoing link state as reported by on_peer, per peer id */
    bool link_up[MEMBERS_MAX + 1];
    int ups[MEMBERS_MAX + 1], downs[MEMBERS_MAX + 1];
    /* send side: next seq per receiver id */
    uint32_t send_seq[MEMBERS_MAX + 1];
    bool stop_on_first_recv;
};

struct fixture {
    char iptables_rule[256]; /* the rule a test added, removed in teardown */
    uv_loop_t loop;
    uv_timer_t tick; /* keeps uv_run(ONCE) returning while we poll */
    struct member m[MEMBERS_MAX + 1]; /* index = id */
    int n_members;
};

typedef bool (*condition_fn)(struct fixture *fx, void *arg);

void on_recv(void *ctx, uint32_t from_id, const uint8_t *frame, size_t len);
void on_peer(void *ctx, uint32_t peer_id, bool connected);
void tick(uv_timer_t *timer);
int setup(void **state);
void members_declare(struct fixture *fx, int n);
int member_start(struct fixture *fx, int id);
void member_stop(struct fixture *fx, int id);
void run_until(struct fixture *fx, condition_fn cond, void *arg, const char *what);
bool all_links_up(struct fixture *fx, void *arg);
int iptables(const char *op, const char *rule);
int teardown(void **state);
int send_one(struct member *from, uint32_t to, size_t len);
int raw_connect(const char *from_host, const char *to_host, int to_port);
void raw_write(int fd, const void *p, size_t n);
void raw_prefix(int fd, uint32_t len);
void raw_hello(int fd, uint32_t magic, uint32_t version, uint32_t id);
bool raw_closed(int fd);
bool raw_fd_closed(struct fixture *fx, void *arg);
void wait_counter(struct fixture *fx, const uint64_t *counter, uint64_t target, const char *what);

#endif
