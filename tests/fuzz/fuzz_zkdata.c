/*
 * fuzz_zkdata: the reader of Apache ZooKeeper's snapshot and log files
 * (daemon/offline/zkdata.c: what `znoded --import-zookeeper` and `znoded --dump`
 * read) under libFuzzer.  The first byte chooses what the rest is read as:
 * a plain, gzip or snappy snapshot, or the newest or an older log; any
 * bytes must be read or refused with one of the reader's results and a
 * message, never crash, over-read or inflate past the limit.  The file is
 * written to a temporary path because the reader maps files by name (and
 * tells the compressed kinds by the name's suffix, as ZooKeeper does).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zkdata.h"
#include "znode/errors.h"

size_t jute_fuzz_packets_decoded;

static int on_session(void *ctx, int64_t id, int32_t timeout_ms)
{
    (void)ctx, (void)id, (void)timeout_ms;
    return 0;
}

static int on_acl(void *ctx, int64_t index, const struct zn_acl_vec *acl)
{
    (void)ctx, (void)index;
    for (int32_t i = 0; i < acl->count; i++)
        if (acl->items[i].id.scheme && strlen(acl->items[i].id.scheme) > (size_t)1 << 30)
            abort();
    return 0;
}

static int on_node(void *ctx, const char *path, struct jute_buf data, int64_t acl_index,
                   const struct zkdata_stat *stat)
{
    (void)ctx, (void)acl_index, (void)stat;
    if (path[0] != '/' || data.len < -1)
        abort();
    return 0;
}

static int on_txn(void *ctx, int64_t session, int32_t cxid, int64_t zxid, int64_t time_ms,
                  int32_t type, const uint8_t *record, size_t record_len)
{
    (void)ctx, (void)session, (void)cxid, (void)zxid, (void)time_ms, (void)type;
    if (record_len > 0 && record == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *suffix[] = {"snapshot.1", "snapshot.1.gz", "snapshot.1.snappy", "log.1",
                                   "log.1"};
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 5;
    char dir[] = "/tmp/fuzz_zkdata.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, suffix[mode]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f) != 0)
        abort();
    struct zkdata_visitor v = {on_session, on_acl, on_node, on_txn, NULL};
    struct zkdata_error err = {{0}};
    int rc;
    if (mode < 3) {
        int64_t digest_zxid;
        rc = zkdata_read_snapshot(path, &v, &digest_zxid, &err);
    } else {
        bool torn;
        rc = zkdata_read_log(path, mode == 3, &v, &torn, &err);
    }
    if (rc != 0 && rc != ZKDATA_CUT_SHORT && rc != ZN_CORRUPT && rc != ZN_TOOBIG &&
        rc != ZN_NOMEMORY)
        abort();
    if (rc != 0 && rc != ZN_NOMEMORY && err.what[0] == '\0')
        abort(); /* every refusal says why */
    if (rc == 0)
        jute_fuzz_packets_decoded++;
    unlink(path);
    rmdir(dir);
    return 0;
}
