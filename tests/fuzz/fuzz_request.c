/*
 * fuzz_request: the server side of the wire codec under libFuzzer.  The input
 * is a byte stream as a client would send it: 4-byte big-endian length
 * frames, the first holding a ConnectRequest, each later one a RequestHeader
 * and a body decoded by its opcode.  As znoded does, a frame longer than
 * ZN_DEFAULT_MAX_PACKET_BYTES, a negative length, a malformed connect or a
 * malformed request ends the stream (the connection would be closed); an
 * unknown opcode only skips its frame (it would get an error reply).
 *
 * Whatever decodes is re-encoded and decoded again: the two decodings must be
 * equal and the second encoding byte-identical to the first.  Any mismatch,
 * or an encoder refusing what the decoder accepted, aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "jute.h"
#include "jute_testkit.h"

/* Packets that decoded and round-tripped, for the replay driver's summary. */
size_t jute_fuzz_packets_decoded;

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Returns false when the connection would be closed. */
static bool check_connect(const uint8_t *frame, size_t len)
{
    struct zn_arena arena, arena2;
    zn_arena_init(&arena);
    zn_arena_init(&arena2);
    struct jute_reader r;
    jute_reader_init(&r, frame, len, &arena);
    struct zn_connect_request c;
    bool ok = jute_read_connect_request(&r, &c) == 0;
    if (ok) {
        struct jute_writer w;
        jute_writer_init(&w);
        ZN_ASSERT(jute_write_connect_request(&w, &c) == 0);
        struct jute_reader r2;
        jute_reader_init(&r2, w.data, w.len, &arena2);
        struct zn_connect_request c2;
        ZN_ASSERT(jute_read_connect_request(&r2, &c2) == 0);
        ZN_ASSERT(jute_remaining(&r2) == 0);
        ZN_ASSERT(jute_connect_request_equal(&c, &c2));
        jute_writer_free(&w);
        jute_fuzz_packets_decoded++;
    }
    zn_arena_free(&arena);
    zn_arena_free(&arena2);
    return ok;
}

/* Encodes header + body in a frame, the way a client sends it. */
static void encode_framed(struct jute_writer *w, const struct zn_request_header *h, const struct zn_request *req)
{
    jute_writer_reset(w);
    size_t frame = jute_frame_begin(w);
    jute_write_request_header(w, h);
    int rc = jute_write_request(w, req);
    if (rc != 0) {
        fprintf(stderr, "re-encoding %s failed: %s\n", zn_op_name(req->type), zn_strerror(rc));
        abort();
    }
    ZN_ASSERT(jute_frame_end(w, frame) == 0);
    ZN_ASSERT(be32(w->data) == w->len - 4);
}

static void decode_framed(const struct jute_writer *w, struct zn_arena *arena, struct zn_request *req)
{
    struct jute_reader r;
    jute_reader_init(&r, w->data + 4, w->len - 4, arena);
    struct zn_request_header h;
    ZN_ASSERT(jute_read_request_header(&r, &h) == 0);
    ZN_ASSERT(jute_read_request(&r, h.type, req) == 0);
    ZN_ASSERT(jute_remaining(&r) == 0);
}

static bool check_request(const uint8_t *frame, size_t len, struct zn_arena *arena)
{
    struct jute_reader r;
    jute_reader_init(&r, frame, len, arena);
    struct zn_request_header h;
    if (jute_read_request_header(&r, &h) != 0)
        return false;
    struct zn_request req;
    int rc = jute_read_request(&r, h.type, &req);
    if (rc == ZN_UNIMPLEMENTED)
        return true;
    if (rc != 0)
        return false;
    ZN_ASSERT(req.type == h.type);

    struct jute_writer w1, w2;
    jute_writer_init(&w1);
    jute_writer_init(&w2);
    struct zn_arena arena2;
    zn_arena_init(&arena2);
    encode_framed(&w1, &h, &req);
    struct zn_request again;
    decode_framed(&w1, &arena2, &again);
    if (!jute_request_equal(&req, &again)) {
        fprintf(stderr, "%s: round trip changed %s\n", zn_op_name(req.type), jute_testkit_mismatch);
        abort();
    }
    encode_framed(&w2, &h, &again);
    ZN_ASSERT(w1.len == w2.len && (w1.len == 0 || memcmp(w1.data, w2.data, w1.len) == 0));
    jute_fuzz_packets_decoded++;
    jute_writer_free(&w1);
    jute_writer_free(&w2);
    zn_arena_free(&arena2);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    size_t pos = 0;
    bool connected = false;
    while (size - pos >= 4) {
        int32_t len = (int32_t)be32(data + pos);
        pos += 4;
        if (len < 0 || len > ZN_DEFAULT_MAX_PACKET_BYTES || (size_t)len > size - pos)
            break;
        const uint8_t *frame = data + pos;
        pos += (size_t)len;
        bool keep = connected ? check_request(frame, (size_t)len, &arena) : check_connect(frame, (size_t)len);
        if (!keep)
            break;
        connected = true;
        zn_arena_reset(&arena);
    }
    zn_arena_free(&arena);
    return 0;
}
