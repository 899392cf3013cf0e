/*
 * gen_corpus: writes the seed corpus of the fuzz targets from the sample
 * catalogue of jute_testkit.c, in the stream formats the targets read:
 *
 *   corpus/fuzz_request/<label>   frame(ConnectRequest) frame(RequestHeader + body)
 *   corpus/fuzz_response/<label>  frame(ConnectResponse) opcode frame(ReplyHeader + body)
 *
 * plus a few streams that cover more than one packet: every request in one
 * session, an old client's connect without the readOnly byte, watch events,
 * error replies.  Usage: gen_corpus CORPUS_DIR (the directory holding
 * fuzz_request/ and fuzz_response/, which must exist).  The output is
 * deterministic, so regenerating and committing shows real changes only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "jute.h"
#include "jute_testkit.h"

static const char *corpus_dir;

static void save(const char *target, const char *label, const struct jute_writer *w)
{
    ZN_ASSERT(w->error == 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", corpus_dir, target, label);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(w->data, 1, w->len, f) != w->len || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void put_connect_request(struct jute_writer *w, const struct zn_connect_request *c)
{
    size_t frame = jute_frame_begin(w);
    jute_write_connect_request(w, c);
    jute_frame_end(w, frame);
}

static void put_request(struct jute_writer *w, int32_t xid, const struct zn_request *req)
{
    size_t frame = jute_frame_begin(w);
    struct zn_request_header h = {xid, req->type};
    jute_write_request_header(w, &h);
    jute_write_request(w, req);
    jute_frame_end(w, frame);
}

static void put_connect_response(struct jute_writer *w)
{
    size_t frame = jute_frame_begin(w);
    jute_write_connect_response(w, &jute_sample_connect_response);
    jute_frame_end(w, frame);
}

static void put_reply(struct jute_writer *w, int32_t opcode, int32_t xid, int32_t err, const struct zn_response *resp)
{
    jute_write_int(w, opcode);
    size_t frame = jute_frame_begin(w);
    struct zn_reply_header h = {xid, 0x100000010LL, err};
    jute_write_reply_header(w, &h);
    if (resp != NULL)
        jute_write_response(w, resp);
    jute_frame_end(w, frame);
}

static void put_event(struct jute_writer *w, int32_t type, const char *path)
{
    jute_write_int(w, ZN_OP_NOTIFICATION);
    size_t frame = jute_frame_begin(w);
    struct zn_reply_header h = {ZN_XID_NOTIFICATION, -1, 0};
    jute_write_reply_header(w, &h);
    struct zn_watcher_event e = {type, ZN_STATE_SYNC_CONNECTED, (char *)path};
    jute_write_watcher_event(w, &e);
    jute_frame_end(w, frame);
}

static void gen_requests(void)
{
    struct jute_writer w, all;
    jute_writer_init(&w);
    jute_writer_init(&all);
    put_connect_request(&all, &jute_sample_connect_request);
    for (size_t i = 0; i < jute_sample_request_count(); i++) {
        const struct zn_request *req = jute_sample_request(i);
        int32_t xid = req->type == ZN_OP_PING ? ZN_XID_PING : req->type == ZN_OP_AUTH ? ZN_XID_AUTH
                      : req->type == ZN_OP_SETWATCHES || req->type == ZN_OP_SETWATCHES2 ? ZN_XID_SETWATCHES
                      : (int32_t)i + 1;
        jute_writer_reset(&w);
        put_connect_request(&w, &jute_sample_connect_request);
        put_request(&w, xid, req);
        save("fuzz_request", jute_sample_request_label(i), &w);
        put_request(&all, xid, req);
    }
    save("fuzz_request", "session_all_ops", &all);

    /* A 3.3-era client: no readOnly byte, then a getData. */
    struct zn_connect_request old = jute_sample_connect_request;
    old.has_read_only = false;
    old.session_id = 0;
    old.last_zxid_seen = 0;
    jute_writer_reset(&w);
    put_connect_request(&w, &old);
    put_request(&w, 1, jute_sample_request(7));
    save("fuzz_request", "old_client_connect", &w);

    /* An unknown opcode is skipped, the stream continues. */
    jute_writer_reset(&w);
    put_connect_request(&w, &jute_sample_connect_request);
    size_t frame = jute_frame_begin(&w);
    struct zn_request_header h = {1, 999};
    jute_write_request_header(&w, &h);
    jute_write_buffer(&w, "token", 5);
    jute_frame_end(&w, frame);
    put_request(&w, 2, jute_sample_request(0));
    save("fuzz_request", "unknown_opcode_then_create", &w);
    jute_writer_free(&w);
    jute_writer_free(&all);
}

static void gen_responses(void)
{
    struct jute_writer w, all;
    jute_writer_init(&w);
    jute_writer_init(&all);
    put_connect_response(&all);
    for (size_t i = 0; i < jute_sample_response_count(); i++) {
        const struct zn_response *resp = jute_sample_response(i);
        jute_writer_reset(&w);
        put_connect_response(&w);
        put_reply(&w, resp->type, (int32_t)i + 1, 0, resp);
        save("fuzz_response", jute_sample_response_label(i), &w);
        put_reply(&all, resp->type, (int32_t)i + 1, 0, resp);
    }
    save("fuzz_response", "session_all_replies", &all);

    jute_writer_reset(&w);
    put_connect_response(&w);
    put_event(&w, ZN_EVENT_CHANGED, "/config");
    put_event(&w, ZN_EVENT_CHILD, "/queue");
    put_event(&w, ZN_EVENT_NONE, NULL);
    put_reply(&w, ZN_OP_GETDATA, 3, ZN_NONODE, NULL);
    put_reply(&w, ZN_OP_PING, ZN_XID_PING, 0, NULL);
    save("fuzz_response", "events_and_errors", &w);

    /* A pre-3.4 server: no readOnly byte in the ConnectResponse. */
    jute_writer_reset(&w);
    size_t frame = jute_frame_begin(&w);
    struct zn_connect_response old = jute_sample_connect_response;
    old.has_read_only = false;
    jute_write_connect_response(&w, &old);
    jute_frame_end(&w, frame);
    put_reply(&w, ZN_OP_EXISTS, 1, 0, jute_sample_response(4));
    save("fuzz_response", "old_server_connect", &w);
    jute_writer_free(&w);
    jute_writer_free(&all);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
        return 2;
    }
    corpus_dir = argv[1];
    gen_requests();
    gen_responses();
    return 0;
}
