/*
 * gen_decoder_corpus: writes the seed corpora of fuzz_peer, fuzz_records and
 * fuzz_config (issue 6) from the real encoders, so every seed is a valid
 * record the fuzzer then mutates.  Run: gen_decoder_corpus tests/fuzz/corpus
 * (the seeds are committed; regenerate them when a format changes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jute.h"
#include "store_internal.h"
#include "tree.h"
#include "txn.h"
#include "zab_message.h"
#include "znode/proto.h"

static const char *root;

static void put(const char *target, const char *name, uint8_t selector, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&selector, 1, 1, f) != 1 || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_raw(const char *target, const char *name, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    if (len > 0)
        put(target, name, bytes[0], bytes + 1, len - 1);
}

static void peer_seeds(const char *prefix)
{
    uint8_t buf[4096];
    static const uint8_t payload[] = "a txn";
    for (uint8_t type = 1; type <= ZAB_MSG_TYPE_MAX; type++) {
        struct zab_message msg;
        memset(&msg, 0, sizeof msg);
        msg.type = type;
        msg.from = 1;
        msg.to = 2;
        msg.epoch = type == ZAB_MSG_NOTIFICATION || type == ZAB_MSG_FOLLOWERINFO ? 0 : 3;
        if (type == ZAB_MSG_NOTIFICATION) {
            msg.u.notification.vote.leader = 2;
            msg.u.notification.vote.zxid = 0x300000007ull;
        } else if (type == ZAB_MSG_SYNC) {
            msg.u.sync.mode = ZAB_SYNC_DIFF;
            msg.u.sync.zxid = 0x300000002ull;
        } else if (type == ZAB_MSG_PROPOSAL) {
            msg.u.proposal.prev_zxid = 0x300000001ull;
            msg.u.proposal.zxid = 0x300000002ull;
            msg.u.proposal.size = sizeof payload;
            msg.u.proposal.data = payload;
        } else if (type == ZAB_MSG_ACKEPOCH) {
            msg.u.ackepoch.n_epochs = 1;
            msg.u.ackepoch.epoch_last[0] = 0x200000009ull;
        }
        int64_t n = zab_message_encode(&msg, buf, sizeof buf);
        if (n < 0)
            continue; /* a zeroed body the encoder refuses is no seed */
        char name[64];
        snprintf(name, sizeof name, "%smessage-%02u", prefix, type);
        put_raw("fuzz_peer", name, buf, (size_t)n);
    }
}

static void records_seeds(void)
{
    struct jute_writer w;
    jute_writer_init(&w);
    struct txn t;
    memset(&t, 0, sizeof t);
    t.hdr.session_id = 0x100;
    t.hdr.cxid = 7;
    t.hdr.zxid = 0x100000005;
    t.hdr.type = ZN_OP_CREATE;
    t.op.type = ZN_OP_CREATE;
    t.op.path = "/a";
    t.op.data.data = (uint8_t *)"hello";
    t.op.data.len = 5;
    t.op.parent_cversion = 1;
    t.op.kind = ZN_NODE_KIND_FILE;
    if (txn_encode(&w, &t) == 0)
        put("fuzz_records", "txn-create", 0, w.data, w.len);
    jute_writer_reset(&w);
    memset(&t, 0, sizeof t);
    t.hdr.type = ZN_OP_SETDATA;
    t.hdr.zxid = 0x100000006;
    t.op.type = ZN_OP_SETDATA;
    t.op.path = "/a";
    t.op.data.data = (uint8_t *)"v2";
    t.op.data.len = 2;
    t.op.version = 1;
    if (txn_encode(&w, &t) == 0)
        put("fuzz_records", "txn-setdata", 0, w.data, w.len);

    /* a log record: zxid key, then crc, length, payload */
    uint8_t rec[8 + STORE_LOG_HEADER_BYTES + 64];
    size_t len = w.len < 64 ? w.len : 64;
    uint64_t zxid = 0x100000006ull;
    store_put_be64(rec, zxid);
    store_put_be32(rec + 8, store_log_crc(zxid, w.data, len));
    store_put_be32(rec + 12, (uint32_t)len);
    memcpy(rec + 16, w.data, len);
    put("fuzz_records", "log-record", 1, rec, 16 + len);

    /* a snapshot of a small tree, and its header */
    struct tree *tree = tree_new();
    jute_writer_reset(&w);
    if (tree && tree_serialize(tree, &w) == 0) {
        put("fuzz_records", "snapshot-empty-tree", 3, w.data, w.len);
        unsigned char hdr[STORE_SNAP_HEADER_BYTES];
        store_snap_header_encode(hdr, 0x100000006ull, w.data, w.len, 1);
        put("fuzz_records", "snapshot-header", 2, hdr, sizeof hdr);
    }
    tree_free(tree);
    jute_writer_free(&w);
}

static void config_seeds(void)
{
    static const char standalone[] =
        "tickTime=2000\ndataDir=/tmp/zn-fuzz-nonexistent\nclientPort=2181\nmaxClientCnxns=60\n"
        "4lw.commands.whitelist=srvr, ruok,mntr\njute.maxbuffer=1048576\n";
    static const char ensemble[] =
        "# an ensemble\ntickTime=500\ninitLimit=10\nsyncLimit=4\ndataDir=/tmp/zn-fuzz-nonexistent\n"
        "clientPort=2181\nclientPortAddress=127.0.0.1\nserver.1=127.0.0.1:2888:3888\n"
        "server.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888:observer\n"
        "snapCount=1000\nskipACL=no\nznodefs.testOnly.plantedBug=none\n";
    /* fuzz_config takes the whole input as text: the "selector" is the first character */
    put("fuzz_config", "standalone", (uint8_t)standalone[0], standalone + 1, sizeof standalone - 2);
    put("fuzz_config", "ensemble", (uint8_t)ensemble[0], ensemble + 1, sizeof ensemble - 2);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR [PEER_SEED_PREFIX]\n", argv[0]);
        return 2;
    }
    root = argv[1];
    /* The prefix keeps seeds of an older message format beside the current ones. */
    peer_seeds(argc == 3 ? argv[2] : "");
    records_seeds();
    config_seeds();
    return 0;
}
