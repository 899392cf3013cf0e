/*
 * Unit tests of the peer transport (replication/transport.h): real TCP on
 * loopback addresses 127.0.0.1-4, several members in one libuv loop.  Frames
 * carry (from, to, seq) so the receiver checks every frame arrives exactly
 * once and in order per link.  Raw blocking sockets play misbehaving peers
 * (unknown id, wrong address, oversized and garbage frames).  Every test ends
 * by stopping what it started and proving uv_loop_close returns 0; run under
 * the ASan build, leaks fail the test.
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

/* ---- tests ---- */

struct exchange {
    int n;
    uint64_t per_link;
};

static bool exchange_done(struct fixture *fx, void *arg)
{
    struct exchange *e = arg;
    for (int i = 1; i <= e->n; i++)
        for (int j = 1; j <= e->n; j++)
            if (i != j && fx->m[j].received[i] < e->per_link)
                return false;
    return true;
}

static void three_members_exchange_frames_both_ways_each_exactly_once_in_order(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 3);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "all six links up");

    /* Sizes from tiny to larger than one read chunk, so frames split across
     * reads and several share one read. */
    static const size_t sizes[] = {12, 13, 100, 1000, 70000, 200000, 12, 4096};
    const int rounds = 300;
    for (int r = 0; r < rounds; r++)
        for (int i = 1; i <= 3; i++)
            for (int j = 1; j <= 3; j++)
                if (i != j)
                    assert_int_equal(send_one(&fx->m[i], (uint32_t)j, sizes[r % 8]), 0);
    struct exchange e = {3, (uint64_t)rounds};
    run_until(fx, exchange_done, &e, "every frame delivered");
    /* A little more loop time: a duplicate would show up as an extra count. */
    for (int k = 0; k < 20; k++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);

    uint64_t payload_per_link = 0;
    for (int r = 0; r < rounds; r++)
        payload_per_link += sizes[r % 8];
    for (int i = 1; i <= 3; i++) {
        assert_false(fx->m[i].order_broken);
        assert_int_equal(fx->m[i].gaps, 0);
        for (int j = 1; j <= 3; j++) {
            if (i == j)
                continue;
            assert_int_equal(fx->m[j].received[i], rounds);
            assert_int_equal(fx->m[j].next_seq[i], rounds);
            struct transport_peer_stats s;
            assert_int_equal(transport_peer_stats_by_id(fx->m[i].t, (uint32_t)j, &s), 0);
            assert_true(s.connected);
            assert_int_equal(s.frames_sent, rounds);
            assert_int_equal(s.bytes_sent, payload_per_link);
            assert_int_equal(s.drops, 0);
            assert_int_equal(s.queued_bytes, 0);
            assert_int_equal(s.connects, 1);
            assert_int_equal(s.reconnects, 0);
            assert_int_equal(transport_peer_stats_by_id(fx->m[j].t, (uint32_t)i, &s), 0);
            assert_true(s.incoming);
            assert_int_equal(s.frames_received, rounds);
            assert_int_equal(s.bytes_received, payload_per_link);
        }
        struct transport_stats ts;
        transport_stats(fx->m[i].t, &ts);
        assert_int_equal(ts.accepted, 2);
        assert_int_equal(ts.rejected, 0);
        assert_int_equal(transport_peer_count(fx->m[i].t), 2);
        assert_int_equal(transport_listen_port(fx->m[i].t), fx->m[i].port);
    }
}

static bool link_down_1_to_2(struct fixture *fx, void *arg) { return !fx->m[1].link_up[2]; }
static bool link_up_1_to_2(struct fixture *fx, void *arg) { return fx->m[1].link_up[2]; }

static void a_restarted_member_is_reconnected_and_later_frames_arrive(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 3);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "all six links up");
    assert_int_equal(send_one(&fx->m[1], 2, 64), 0);
    wait_counter(fx, &fx->m[2].received[1], 1, "first frame 1->2");

    member_stop(fx, 2);
    run_until(fx, link_down_1_to_2, NULL, "member 1 sees its link to 2 down");
    assert_int_equal(fx->m[1].downs[2], 1);

    /* Sends to the down link fail and are counted as drops. */
    struct transport_peer_stats before, after;
    assert_int_equal(transport_peer_stats_by_id(fx->m[1].t, 2, &before), 0);
    assert_false(before.connected);
    for (int k = 0; k < 5; k++)
        assert_int_equal(send_one(&fx->m[1], 2, 64), ZN_CONNECTIONLOSS);
    assert_int_equal(transport_peer_stats_by_id(fx->m[1].t, 2, &after), 0);
    assert_int_equal(after.drops, before.drops + 5);

    /* Member 2 comes back on the same address and port (a new process
     * would start its counters from zero). */
    uint32_t seq_kept = fx->m[2].next_seq[1];
    memset(fx->m[2].next_seq, 0, sizeof fx->m[2].next_seq);
    memset(fx->m[2].received, 0, sizeof fx->m[2].received);
    fx->m[2].next_seq[1] = seq_kept;
    assert_int_equal(member_start(fx, 2), 0);
    run_until(fx, link_up_1_to_2, NULL, "member 1 reconnects to restarted member 2");
    run_until(fx, all_links_up, NULL, "all six links up again");
    assert_int_equal(transport_peer_stats_by_id(fx->m[1].t, 2, &after), 0);
    assert_true(after.reconnects >= 1);
    assert_int_equal(fx->m[1].ups[2], 2);

    for (int k = 0; k < 10; k++) {
        assert_int_equal(send_one(&fx->m[1], 2, 100), 0);
        assert_int_equal(send_one(&fx->m[2], 1, 100), 0);
        assert_int_equal(send_one(&fx->m[3], 2, 100), 0);
    }
    wait_counter(fx, &fx->m[2].received[1], 10, "frames 1->2 after the restart");
    wait_counter(fx, &fx->m[1].received[2], 10, "frames 2->1 after the restart");
    wait_counter(fx, &fx->m[2].received[3], 10, "frames 3->2 after the restart");
    assert_false(fx->m[2].order_broken);
    assert_false(fx->m[1].order_broken);
    assert_int_equal(fx->m[1].gaps + fx->m[2].gaps, 0);
}

static void sends_are_refused_for_unknown_peers_empty_and_oversized_frames_and_down_links(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 2);
    assert_int_equal(member_start(fx, 1), 0); /* member 2 never starts */
    uint8_t byte = 7;
    assert_int_equal(transport_send(fx->m[1].t, 9, &byte, 1), ZN_BADARGUMENTS);
    assert_int_equal(transport_send(fx->m[1].t, 2, &byte, 0), ZN_BADARGUMENTS);
    assert_int_equal(transport_send(fx->m[1].t, 2, &byte, (size_t)ZN_TRANSPORT_FRAME_MAX_BYTES + 1),
                     ZN_TOOBIG);
    for (int k = 0; k < 3; k++)
        assert_int_equal(transport_send(fx->m[1].t, 2, &byte, 1), ZN_CONNECTIONLOSS);
    struct transport_peer_stats s;
    assert_int_equal(transport_peer_stats(fx->m[1].t, 0, &s), 0);
    assert_int_equal(s.id, 2);
    assert_int_equal(s.drops, 3);
    assert_int_equal(transport_peer_stats(fx->m[1].t, 1, &s), ZN_BADARGUMENTS);
    /* Its reconnect loop keeps trying (refused each time) without blocking. */
    struct transport_peer_stats live;
    uint64_t deadline = uv_hrtime() + 3000000000ull;
    uv_timer_start(&fx->tick, tick, 5, 5);
    do {
        uv_run(&fx->loop, UV_RUN_ONCE);
        transport_peer_stats(fx->m[1].t, 0, &live);
    } while (live.connect_failures < 3 && uv_hrtime() < deadline);
    uv_timer_stop(&fx->tick);
    assert_true(live.connect_failures >= 3);
    assert_int_equal(live.connects, 0);
}

static void bad_configurations_are_refused(void **state)
{
    struct fixture *fx = *state;
    struct transport *t = (struct transport *)1;
    struct transport_peer peers[2] = {{.id = 2, .host = "127.0.0.2", .port = 5000},
                                      {.id = 2, .host = "127.0.0.3", .port = 5000}};
    assert_int_equal(transport_start(&t, &fx->loop, 1, "127.0.0.1", 0, peers, 2, on_recv, NULL, NULL),
                     ZN_CONFIG);
    assert_null(t);
    peers[1].id = 1; /* my own id */
    assert_int_equal(transport_start(&t, &fx->loop, 1, "127.0.0.1", 0, peers, 2, on_recv, NULL, NULL),
                     ZN_CONFIG);
    peers[1].id = 3;
    snprintf(peers[1].host, sizeof peers[1].host, "no-such-host.invalid");
    assert_int_equal(transport_start(&t, &fx->loop, 1, "127.0.0.1", 0, peers, 2, on_recv, NULL, NULL),
                     ZN_CONFIG);
    assert_int_equal(transport_start(&t, &fx->loop, 0, "127.0.0.1", 0, peers, 1, on_recv, NULL, NULL),
                     ZN_CONFIG);
    /* A port already listened on: ZN_IO, and the loop still closes cleanly
     * (teardown checks) once it has run the listener's close callback. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    assert_int_equal(transport_start(&t, &fx->loop, 1, "127.0.0.1", ntohs(sa.sin_port), peers, 1,
                                     on_recv, NULL, NULL),
                     ZN_IO);
    assert_null(t);
    close(fd);
}

static bool rejected_at_least(struct fixture *fx, void *arg)
{
    struct transport_stats s;
    transport_stats(fx->m[1].t, &s);
    return s.rejected >= *(uint64_t *)arg;
}

static void connections_with_an_unknown_id_or_from_the_wrong_address_are_rejected(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 3); /* 2 and 3 are played by raw sockets or absent */
    assert_int_equal(member_start(fx, 1), 0);
    const char *h1 = fx->m[1].host;
    int p1 = fx->m[1].port;

    int unknown = raw_connect("127.0.0.2", h1, p1);
    raw_hello(unknown, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 42);
    run_until(fx, raw_fd_closed, &unknown, "connection claiming id 42 closed");

    int wrong_addr = raw_connect("127.0.0.5", h1, p1);
    raw_hello(wrong_addr, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 2);
    run_until(fx, raw_fd_closed, &wrong_addr, "id 2 from 127.0.0.5 closed");

    int self_id = raw_connect("127.0.0.1", h1, p1);
    raw_hello(self_id, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 1);
    run_until(fx, raw_fd_closed, &self_id, "a connection claiming member 1's own id closed");

    int bad_version = raw_connect("127.0.0.2", h1, p1);
    raw_hello(bad_version, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION + 1, 2);
    run_until(fx, raw_fd_closed, &bad_version, "a hello of another version closed");

    uint64_t four = 4;
    run_until(fx, rejected_at_least, &four, "four rejections counted");
    struct transport_stats ts;
    transport_stats(fx->m[1].t, &ts);
    assert_int_equal(ts.rejected, 4);
    assert_int_equal(ts.accepted, 0);
    assert_int_equal(fx->m[1].received[2] + fx->m[1].received[3], 0);

    /* The same hello from the right address is accepted and its frames
     * delivered: the rejections above were for the reason tested. */
    int good = raw_connect("127.0.0.2", h1, p1);
    raw_hello(good, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 2);
    raw_prefix(good, 5);
    raw_write(good, "hello", 5);
    wait_counter(fx, &fx->m[1].received[2], 1, "frame from the accepted raw member 2");
    assert_false(raw_closed(good));
    transport_stats(fx->m[1].t, &ts);
    assert_int_equal(ts.accepted, 1);
    assert_int_equal(ts.rejected, 4);

    /* A newer connection from member 2 replaces the older one. */
    int newer = raw_connect("127.0.0.2", h1, p1);
    raw_hello(newer, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 2);
    run_until(fx, raw_fd_closed, &good, "the older connection of member 2 closed");
    raw_prefix(newer, 3);
    raw_write(newer, "abc", 3);
    wait_counter(fx, &fx->m[1].received[2], 2, "frame on the newer connection");
    assert_false(raw_closed(newer));

    close(unknown);
    close(wrong_addr);
    close(self_id);
    close(bad_version);
    close(good);
    close(newer);
}

static void oversized_empty_or_garbage_frames_close_only_that_connection(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 3);
    assert_int_equal(member_start(fx, 1), 0);
    assert_int_equal(member_start(fx, 3), 0); /* a real member beside the raw ones */
    const char *h1 = fx->m[1].host;
    int p1 = fx->m[1].port;
    struct member *m1 = &fx->m[1], *m3 = &fx->m[3];
    struct transport_peer_stats s;
    /* Wait for both directions between 1 and 3 (2 is never started). */
    uv_timer_start(&fx->tick, tick, 5, 5);
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_DEADLINE_MS * 1000000u;
    while (!(m1->link_up[3] && m3->link_up[1]) && uv_hrtime() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->tick);
    assert_true(m1->link_up[3] && m3->link_up[1]);

    /* Oversized: a good hello and frame, then a length past the maximum. */
    int big = raw_connect("127.0.0.2", h1, p1);
    raw_hello(big, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 2);
    raw_prefix(big, 4);
    raw_write(big, "good", 4);
    wait_counter(fx, &m1->received[2], 1, "the good frame before the oversized one");
    raw_prefix(big, ZN_TRANSPORT_FRAME_MAX_BYTES + 1);
    raw_write(big, "xxxx", 4);
    run_until(fx, raw_fd_closed, &big, "connection with an oversized frame closed");

    /* Empty frame after a good hello. */
    int empty = raw_connect("127.0.0.2", h1, p1);
    raw_hello(empty, ZN_TRANSPORT_MAGIC, ZN_TRANSPORT_VERSION, 2);
    raw_prefix(empty, 0);
    run_until(fx, raw_fd_closed, &empty, "connection with an empty frame closed");

    /* Garbage instead of a hello: an HTTP request, and a hello-sized frame
     * with the wrong magic. */
    int http = raw_connect("127.0.0.2", h1, p1);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_write(http, req, strlen(req));
    run_until(fx, raw_fd_closed, &http, "an HTTP request closed");
    int magic = raw_connect("127.0.0.2", h1, p1);
    raw_hello(magic, 0xdeadbeef, ZN_TRANSPORT_VERSION, 2);
    run_until(fx, raw_fd_closed, &magic, "a hello with a bad magic closed");

    struct transport_stats ts;
    transport_stats(m1->t, &ts);
    assert_int_equal(ts.protocol_errors, 2);
    assert_int_equal(ts.rejected, 2);
    assert_int_equal(m1->received[2], 1);

    /* Member 3's links to and from 1 were untouched and still carry frames. */
    assert_true(m1->link_up[3] && m3->link_up[1]);
    for (int k = 0; k < 20; k++) {
        assert_int_equal(send_one(m3, 1, 50), 0);
        assert_int_equal(send_one(m1, 3, 50), 0);
    }
    wait_counter(fx, &m1->received[3], 20, "frames 3->1 after the bad connections");
    wait_counter(fx, &m3->received[1], 20, "frames 1->3 after the bad connections");
    assert_int_equal(transport_peer_stats_by_id(m1->t, 3, &s), 0);
    assert_int_equal(s.connects, 1);
    assert_int_equal(m1->downs[3], 0);
    assert_int_equal(m3->downs[1], 0);
    assert_false(m1->order_broken || m3->order_broken);
    assert_int_equal(m1->gaps + m3->gaps, 0);

    close(big);
    close(empty);
    close(http);
    close(magic);
}

static void the_send_queue_refuses_frames_past_its_byte_bound_and_drains(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 2);
    for (int id = 1; id <= 2; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "both links up");
    struct member *m1 = &fx->m[1];

    /* Without running the loop nothing is released, so the bound is hit
     * at an exact count: 15 frames of 16 MiB (+4 prefix) fit in 256 MiB,
     * the 16th does not. */
    const size_t frame_bytes = (size_t)16 << 20;
    int accepted = 0, refused = 0;
    assert_int_equal(send_one(m1, 2, 64), 0);
    for (int k = 0; k < 17; k++) {
        int rc = send_one(m1, 2, frame_bytes);
        if (rc == 0) {
            accepted++;
        } else {
            assert_int_equal(rc, ZN_THROTTLEDOP);
            refused++;
        }
    }
    /* One 64-byte frame went first (above); 64+4 bytes leave room for
     * exactly 15 of the big ones. */
    assert_int_equal(accepted, 15);
    assert_int_equal(refused, 2);
    struct transport_peer_stats s;
    assert_int_equal(transport_peer_stats_by_id(m1->t, 2, &s), 0);
    assert_int_equal(s.drops, 2);
    assert_int_equal(s.queued_bytes, 68 + 15 * (frame_bytes + 4));
    assert_true(s.queued_bytes <= ZN_TRANSPORT_QUEUE_MAX_BYTES);

    wait_counter(fx, &fx->m[2].received[1], 16, "the queued frames drain to member 2");
    assert_false(fx->m[2].order_broken);
    assert_int_equal(fx->m[2].gaps, 0);
    assert_int_equal(transport_peer_stats_by_id(m1->t, 2, &s), 0);
    assert_int_equal(s.queued_bytes, 0);
    assert_int_equal(s.frames_sent, 16);
    assert_int_equal(send_one(m1, 2, 100), 0);
    wait_counter(fx, &fx->m[2].received[1], 17, "a frame after the queue drained");
}

static void connect_attempts_to_a_peer_that_never_answers_time_out_and_retry(void **state)
{
    struct fixture *fx = *state;
    /* A listener with a full accept queue drops SYNs (as a partition would):
     * connect() to it neither succeeds nor fails for minutes. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.4", &sa.sin_addr);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    int fillers[3];
    for (int k = 0; k < 3; k++) {
        fillers[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[k], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(50000); /* let the fillers' handshakes fill the queue */

    struct transport_peer peer = {.id = 2, .port = ntohs(sa.sin_port)};
    snprintf(peer.host, sizeof peer.host, "127.0.0.4");
    struct member *m = &fx->m[1];
    memset(m, 0, sizeof *m);
    m->id = 1;
    assert_int_equal(transport_start(&m->t, &fx->loop, 1, "127.0.0.1", 0, &peer, 1, on_recv,
                                     on_peer, m),
                     0);
    /* Without the connect timeout no attempt would end within the deadline. */
    struct transport_peer_stats s = {0};
    uv_timer_start(&fx->tick, tick, 5, 5);
    uint64_t deadline = uv_hrtime() + 4000000000ull;
    while (s.connect_failures < 2 && uv_hrtime() < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        transport_peer_stats_by_id(m->t, 2, &s);
    }
    uv_timer_stop(&fx->tick);
    assert_true(s.connect_failures >= 2);
    assert_int_equal(s.connects, 0);
    assert_false(m->link_up[2]);
    for (int k = 0; k < 3; k++)
        close(fillers[k]);
    close(lfd);
}

static void a_reset_peer_is_disconnected_and_reconnected(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 2);
    for (int id = 1; id <= 2; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "both links up");
    assert_int_equal(transport_reset_peer(fx->m[1].t, 7, "test"), ZN_BADARGUMENTS);
    assert_int_equal(transport_reset_peer(fx->m[1].t, 2, "test"), 0);
    /* Down at once for senders; on_peer reports it from the loop. */
    assert_int_equal(send_one(&fx->m[1], 2, 20), ZN_CONNECTIONLOSS);
    assert_int_equal(fx->m[1].downs[2], 0);
    struct transport_stats before;
    transport_stats(fx->m[2].t, &before);
    run_until(fx, link_down_1_to_2, NULL, "link 1->2 reported down");
    run_until(fx, all_links_up, NULL, "both links up again");
    assert_int_equal(fx->m[1].downs[2], 1);
    assert_int_equal(fx->m[1].ups[2], 2);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(send_one(&fx->m[1], 2, 20), 0);
        assert_int_equal(send_one(&fx->m[2], 1, 20), 0);
    }
    wait_counter(fx, &fx->m[2].received[1], 5, "frames 1->2 after the reset");
    wait_counter(fx, &fx->m[1].received[2], 5, "frames 2->1 after the reset");
    struct transport_stats after;
    transport_stats(fx->m[2].t, &after);
    assert_int_equal(after.accepted, before.accepted + 1);
    /* Member 1 also closed its incoming connection from 2: 2 reconnected. */
    struct transport_peer_stats s;
    assert_int_equal(transport_peer_stats_by_id(fx->m[2].t, 1, &s), 0);
    assert_int_equal(s.connects, 2);
    assert_false(fx->m[1].order_broken || fx->m[2].order_broken);
    assert_int_equal(fx->m[1].gaps + fx->m[2].gaps, 0);
}

/* Runs the loop, sending a frame 1->2 whenever the link is up, until the
 * link is in the wanted state. */
static void run_sending_until_link(struct fixture *fx, bool want_up, const char *what)
{
    uv_timer_start(&fx->tick, tick, 20, 20);
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_DEADLINE_MS * 1000000u;
    while (fx->m[1].link_up[2] != want_up) {
        if (uv_hrtime() > deadline) {
            uv_timer_stop(&fx->tick);
            fail_msg("timed out waiting for: %s", what);
        }
        if (fx->m[1].link_up[2])
            send_one(&fx->m[1], 2, 100);
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->tick);
}

static void a_partitioned_link_goes_down_and_comes_back_when_the_partition_heals(void **state)
{
    struct fixture *fx = *state;
    if (geteuid() != 0 || iptables("-S", "INPUT") != 0) {
        fprintf(stderr, "skipped: needs root and iptables\n");
        skip();
    }
    members_declare(fx, 2);
    for (int id = 1; id <= 2; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "both links up");
    /* Drop what member 1 sends to member 2's peer port: its data goes
     * unacknowledged, as across a real partition. */
    snprintf(fx->iptables_rule, sizeof fx->iptables_rule,
             "INPUT -s 127.0.0.1 -d 127.0.0.2 -p tcp --dport %d -m comment --comment "
             "zn-transport-test-%d -j DROP",
             fx->m[2].port, (int)getpid());
    assert_int_equal(iptables("-I", fx->iptables_rule), 0);
    run_sending_until_link(fx, false, "link 1->2 down under the partition");
    struct transport_peer_stats s;
    assert_int_equal(transport_peer_stats_by_id(fx->m[1].t, 2, &s), 0);
    assert_true(s.drops > 0); /* frames in the aborted connection */
    assert_int_equal(send_one(&fx->m[1], 2, 100), ZN_CONNECTIONLOSS);

    assert_int_equal(iptables("-D", fx->iptables_rule), 0);
    fx->iptables_rule[0] = 0;
    uint64_t before = fx->m[2].received[1];
    run_sending_until_link(fx, true, "link 1->2 up after healing");
    assert_int_equal(send_one(&fx->m[1], 2, 100), 0);
    wait_counter(fx, &fx->m[2].received[1], before + 1, "a frame 1->2 after healing");
    assert_false(fx->m[2].order_broken);
}

static bool all_freed(struct fixture *fx, void *arg)
{
    return fx->m[1].freed && fx->m[2].freed && fx->m[3].freed;
}

static void stopping_with_frames_in_flight_frees_everything_and_makes_no_callbacks(void **state)
{
    struct fixture *fx = *state;
    members_declare(fx, 3);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(member_start(fx, id), 0);
    run_until(fx, all_links_up, NULL, "all six links up");

    /* Member 2 stops itself from inside its first on_recv, with frames from
     * member 1 still arriving. */
    fx->m[2].stop_on_first_recv = true;
    for (int k = 0; k < 100; k++)
        assert_int_equal(send_one(&fx->m[1], 2, 256 << 10), 0);
    for (int k = 0; k < 50; k++)
        assert_int_equal(send_one(&fx->m[2], 1, 1000), 0);
    wait_counter(fx, &fx->m[2].received[1], 1, "member 2's first frame");
    assert_null(fx->m[2].t); /* stopped itself */

    /* Member 1 stops with frames to member 3 queued and one write in flight
     * (the loop has not run since they were sent). */
    for (int k = 0; k < 20; k++)
        assert_int_equal(send_one(&fx->m[1], 3, 64 << 10), 0);
    struct transport_peer_stats s;
    assert_int_equal(transport_peer_stats_by_id(fx->m[1].t, 3, &s), 0);
    assert_int_equal(s.queued_bytes, 20 * ((64 << 10) + 4));
    member_stop(fx, 1);
    /* Member 3 stops while its incoming connections are still open. */
    member_stop(fx, 3);
    run_until(fx, all_freed, NULL, "all three transports freed");
    assert_int_equal(fx->m[2].received[1], 1);
    assert_int_equal(fx->m[1].recv_calls_after_stop + fx->m[2].recv_calls_after_stop +
                         fx->m[3].recv_calls_after_stop,
                     0);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(fx->m[id].freed_calls, 1);
    /* teardown proves the loop has nothing left and closes with 0 */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(three_members_exchange_frames_both_ways_each_exactly_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_restarted_member_is_reconnected_and_later_frames_arrive, setup, teardown),
        cmocka_unit_test_setup_teardown(sends_are_refused_for_unknown_peers_empty_and_oversized_frames_and_down_links, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_configurations_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(connections_with_an_unknown_id_or_from_the_wrong_address_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_empty_or_garbage_frames_close_only_that_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(the_send_queue_refuses_frames_past_its_byte_bound_and_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(connect_attempts_to_a_peer_that_never_answers_time_out_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(a_reset_peer_is_disconnected_and_reconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(a_partitioned_link_goes_down_and_comes_back_when_the_partition_heals, setup, teardown),
        cmocka_unit_test_setup_teardown(stopping_with_frames_in_flight_frees_everything_and_makes_no_callbacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
