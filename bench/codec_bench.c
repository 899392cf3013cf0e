/*
 * codec_bench: the wire codec's hot path, one record at a time (request
 * decode, reply encode), in ns per record, best of 7
 * rounds of N.  The machine is often shared: compare builds by interleaving
 * runs, or count instructions, which load does not change:
 *   valgrind --tool=callgrind build/bench/codec_bench INDEX N
 * runs benchmark INDEX (0-based, in the order printed) once for N records;
 * subtract the count for N = 0 and divide by N.
 */
#include "jute.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
static volatile int sink;
static uint8_t data100[100];
static struct zn_acl world = {31, {"world", "anyone"}};
static struct zn_stat st = {1, 2, 3, 4, 5, 6, 7, 8, 100, 10, 11};
static char *kids[10] = {"child-0000000000", "child-0000000001", "child-0000000002", "child-0000000003",
                         "child-0000000004", "child-0000000005", "child-0000000006", "child-0000000007",
                         "child-0000000008", "child-0000000009"};

static int N = 500000, SEL = -1, IDX = 0, ROUNDS = 7;
#define BENCH(label, setup, body)                                                                            \
    do {                                                                                                     \
        int me = IDX++;                                                                                      \
        if (SEL >= 0 && SEL != me)                                                                           \
            break;                                                                                           \
        setup;                                                                                               \
        double best = 1e18;                                                                                  \
        for (int k = 0; k < ROUNDS; k++) {                                                                   \
            double t0 = now();                                                                               \
            for (int i = 0; i < N; i++) {                                                                    \
                body;                                                                                        \
            }                                                                                                \
            double dt = (now() - t0) / N;                                                                    \
            if (dt < best)                                                                                   \
                best = dt;                                                                                   \
        }                                                                                                    \
        printf("%-28s %7.1f ns\n", label, best);                                                             \
    } while (0)

static int decode(struct zn_arena *arena, const uint8_t *buf, size_t len, int32_t type)
{
    struct jute_reader r;
    struct zn_request q;
    zn_arena_reset(arena);
    jute_reader_init(&r, buf, len, arena);
    return jute_read_request(&r, type, &q);
}

static int encode_reply(struct jute_writer *w, const struct zn_reply_header *h, const struct zn_response *resp)
{
    jute_writer_reset(w);
    jute_write_reply_header(w, h);
    return jute_write_response(w, resp);
}

int main(int argc, char **argv)
{
    if (argc == 3) {
        SEL = atoi(argv[1]);
        N = atoi(argv[2]);
        ROUNDS = 1;
    }
    struct jute_writer w;
    jute_writer_init(&w);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    /* wire inputs */
    struct zn_request_header rh = {7, ZN_OP_GETDATA};
    struct zn_request getreq = {.type = ZN_OP_GETDATA, .path = "/bench/node-0000000042", .watch = true};
    struct zn_request createreq = {.type = ZN_OP_CREATE2,
                                   .path = "/bench/node-0000000042",
                                   .data = {data100, 100},
                                   .acl = {1, &world},
                                   .flags = 0};
    struct zn_request setreq = {
        .type = ZN_OP_SETDATA, .path = "/bench/node-0000000042", .data = {data100, 100}, .version = -1};
    struct zn_request ops[3] = {createreq, setreq, {.type = ZN_OP_DELETE, .path = "/bench/x", .version = -1}};
    ops[0].type = ZN_OP_CREATE;
    struct zn_request multireq = {.type = ZN_OP_MULTI, .op_count = 3, .ops = ops};
    uint8_t getbuf[256], createbuf[512], setbuf[512], multibuf[1024];
    size_t getlen, createlen, setlen, multilen;
#define SNAP(buf, L, stmt)                                                                                   \
    do {                                                                                                     \
        jute_writer_reset(&w);                                                                               \
        stmt;                                                                                                \
        memcpy(buf, w.data, w.len);                                                                          \
        L = w.len;                                                                                           \
    } while (0)
    SNAP(getbuf, getlen, (jute_write_request_header(&w, &rh), jute_write_request(&w, &getreq)));
    SNAP(createbuf, createlen, jute_write_request(&w, &createreq));
    SNAP(setbuf, setlen, jute_write_request(&w, &setreq));
    SNAP(multibuf, multilen, jute_write_request(&w, &multireq));
    struct zn_reply_header ph = {7, 0x100000042LL, 0};
    struct zn_response dataresp = {.type = ZN_OP_GETDATA, .data = {data100, 100}, .stat = st};
    struct zn_response kidsresp = {.type = ZN_OP_GETCHILDREN2, .children = {10, kids}, .stat = st};
    struct zn_response c2resp = {.type = ZN_OP_CREATE2, .path = "/bench/node-0000000042", .stat = st};

    BENCH("decode getData request", , {
        zn_arena_reset(&arena);
        jute_reader_init(&r, getbuf, getlen, &arena);
        struct zn_request_header h;
        jute_read_request_header(&r, &h);
        struct zn_request q;
        sink += jute_read_request(&r, h.type, &q);
    });
    BENCH("decode create2 request", , sink += decode(&arena, createbuf, createlen, ZN_OP_CREATE2));
    BENCH("decode setData request", , sink += decode(&arena, setbuf, setlen, ZN_OP_SETDATA));
    BENCH("decode multi(3) request", , sink += decode(&arena, multibuf, multilen, ZN_OP_MULTI));
    BENCH("encode getData reply", , sink += encode_reply(&w, &ph, &dataresp));
    BENCH("encode getChildren2(10) reply", , sink += encode_reply(&w, &ph, &kidsresp));
    BENCH("encode create2 reply", , sink += encode_reply(&w, &ph, &c2resp));
    BENCH("encode create2 request", , {
        jute_writer_reset(&w);
        sink += jute_write_request(&w, &createreq);
    });
    return 0;
}
