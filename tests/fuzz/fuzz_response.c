/*
 * fuzz_response: the client side of the wire codec under libFuzzer.  A
 * client decodes a reply body by the opcode of the request it is waiting
 * for, which is not on the wire; so each reply in the input is preceded by
 * that opcode:
 *
 *   frame(ConnectResponse) { int32 opcode, frame(ReplyHeader body) }*
 *
 * (frame = 4-byte big-endian length + bytes).  A reply with xid -1 is a
 * WatcherEvent whatever the opcode; a reply with a non-zero err has no body
 * unless it answers a multi.  Whatever decodes is re-encoded and decoded
 * again and must come back equal, with a byte-identical second encoding.
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

static bool check_connect(const uint8_t *frame, size_t len)
{
    struct zn_arena arena, arena2;
    zn_arena_init(&arena);
    zn_arena_init(&arena2);
    struct jute_reader r;
    jute_reader_init(&r, frame, len, &arena);
    struct zn_connect_response c;
    bool ok = jute_read_connect_response(&r, &c) == 0;
    if (ok) {
        struct jute_writer w;
        jute_writer_init(&w);
        ZN_ASSERT(jute_write_connect_response(&w, &c) == 0);
        struct jute_reader r2;
        jute_reader_init(&r2, w.data, w.len, &arena2);
        struct zn_connect_response c2;
        ZN_ASSERT(jute_read_connect_response(&r2, &c2) == 0);
        ZN_ASSERT(jute_remaining(&r2) == 0);
        ZN_ASSERT(jute_connect_response_equal(&c, &c2));
        jute_writer_free(&w);
        jute_fuzz_packets_decoded++;
    }
    zn_arena_free(&arena);
    zn_arena_free(&arena2);
    return ok;
}

static void check_event(const struct zn_watcher_event *e)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_writer w;
    jute_writer_init(&w);
    ZN_ASSERT(jute_write_watcher_event(&w, e) == 0);
    struct jute_reader r;
    jute_reader_init(&r, w.data, w.len, &arena);
    struct zn_watcher_event e2;
    ZN_ASSERT(jute_read_watcher_event(&r, &e2) == 0);
    ZN_ASSERT(jute_remaining(&r) == 0);
    ZN_ASSERT(e->type == e2.type && e->state == e2.state);
    ZN_ASSERT((e->path == NULL) == (e2.path == NULL));
    ZN_ASSERT(e->path == NULL || strcmp(e->path, e2.path) == 0);
    jute_writer_free(&w);
    zn_arena_free(&arena);
}

static void encode_body(struct jute_writer *w, const struct zn_response *resp)
{
    jute_writer_reset(w);
    int rc = jute_write_response(w, resp);
    if (rc != 0) {
        fprintf(stderr, "re-encoding %s reply failed: %s\n", zn_op_name(resp->type), zn_strerror(rc));
        abort();
    }
}

static bool check_reply(int32_t opcode, const uint8_t *frame, size_t len, struct zn_arena *arena)
{
    struct jute_reader r;
    jute_reader_init(&r, frame, len, arena);
    struct zn_reply_header h;
    if (jute_read_reply_header(&r, &h) != 0)
        return false;
    if (h.xid == ZN_XID_NOTIFICATION) {
        struct zn_watcher_event e;
        if (jute_read_watcher_event(&r, &e) != 0)
            return false;
        check_event(&e);
        jute_fuzz_packets_decoded++;
        return true;
    }
    if (h.err != 0 && opcode != ZN_OP_MULTI && opcode != ZN_OP_MULTIREAD)
        return true;
    struct zn_response resp;
    int rc = jute_read_response(&r, opcode, &resp);
    if (rc == ZN_UNIMPLEMENTED)
        return true;
    if (rc != 0)
        return false;

    struct jute_writer w1, w2;
    jute_writer_init(&w1);
    jute_writer_init(&w2);
    struct zn_arena arena2;
    zn_arena_init(&arena2);
    encode_body(&w1, &resp);
    struct jute_reader r2;
    jute_reader_init(&r2, w1.data, w1.len, &arena2);
    struct zn_response again;
    ZN_ASSERT(jute_read_response(&r2, opcode, &again) == 0);
    ZN_ASSERT(jute_remaining(&r2) == 0);
    if (!jute_response_equal(&resp, &again)) {
        fprintf(stderr, "%s reply: round trip changed %s\n", zn_op_name(opcode), jute_testkit_mismatch);
        abort();
    }
    encode_body(&w2, &again);
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
    for (;;) {
        int32_t opcode = 0;
        if (connected) {
            if (size - pos < 4)
                break;
            opcode = (int32_t)be32(data + pos);
            pos += 4;
        }
        if (size - pos < 4)
            break;
        int32_t len = (int32_t)be32(data + pos);
        pos += 4;
        if (len < 0 || len > ZN_DEFAULT_MAX_PACKET_BYTES || (size_t)len > size - pos)
            break;
        const uint8_t *frame = data + pos;
        pos += (size_t)len;
        bool keep = connected ? check_reply(opcode, frame, (size_t)len, &arena) : check_connect(frame, (size_t)len);
        if (!keep)
            break;
        connected = true;
        zn_arena_reset(&arena);
    }
    zn_arena_free(&arena);
    return 0;
}
