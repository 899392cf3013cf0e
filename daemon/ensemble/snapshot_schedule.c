/*
 * When a snapshot is taken and where it goes: every snapCount txns, or
 * snapSizeLimitInKb of log (each drawn per member in an ensemble, below),
 * serialised by a forked child (snapshot.c), handed to the store, and then
 * the replication core may drop its log up to it (ensemble_snapshot_stored).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include "ensemble.h"
#include "log.h"
#include "server.h"
#include "snapshot.h"
#include "store.h"
#include "store_snapfile.h"
#include "tree.h"

/* The snapshot is with the store (recorded once its writer gets to it):
 * the replication core may drop its log up to it. */
static void snapshot_handed_over(struct server *srv, int64_t zxid)
{
    srv->snapshots.stored_zxid = zxid;
    srv->snapshots.stored_s = (int64_t)time(NULL);
    ensemble_snapshot_stored(srv, zxid);
}

/* A snapshot written by a child (snapshot.c) is ready: record it. */
static void on_snapshot_ready(struct server *srv, int64_t zxid, int status)
{
    if (status != 0)
        return;
    if (!srv->store) /* the server is stopping: the next open removes the file */
        return;
    struct store_stats st;
    store_stats(srv->store, &st);
    if ((uint64_t)zxid <= st.snapshot_zxid || (uint64_t)zxid <= st.snapshot_zxid_queued ||
        (uint64_t)zxid > store_last_zxid(srv->store)) {
        /* A newer snapshot was stored, or handed to the store, meanwhile: the
         * leader's, installed while this one was being serialised (a fault
         * run's member died on the store's assertion when only stored ones
         * were compared); or the log was truncated below it.  Its file may
         * share the leader's snapshot's name: only its temporary one goes. */
        char path[PATH_MAX];
        if (store_snapfile_path(path, sizeof path, store_snapshot_dir(srv->store), (uint64_t)zxid,
                                STORE_SNAPFILE_TMP) == 0)
            unlink(path);
        return;
    }
    int rc = store_snapshot_file(srv->store, (uint64_t)zxid);
    if (rc != 0) {
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed: %s", (uint64_t)zxid, zn_strerror(rc));
        return;
    }
    snapshot_handed_over(srv, zxid);
}

/*
 * How many txns (or log bytes) until the next snapshot, given the limit
 * (snapCount, snapSizeLimitInKb): in an ensemble, as ZooKeeper does, a
 * number drawn anew after every snapshot from [limit/2 + 1, limit], so that
 * the members, which apply the same txns, do not all take their snapshots at
 * the same zxid (standalone: the limit).  A snapshot costs its member a fork
 * and the writing of the blob; when every member paid that at once, a write
 * waited for the slowest of a quorum.
 */
static int64_t snapshot_threshold(struct server *srv, int64_t count)
{
    /* Standalone there are no members to keep apart, and a smaller draw would
     * only mean more snapshots: every snapCount txns, the top of the range. */
    if (count < 2 || config_standalone(&srv->cfg))
        return count;
    if (srv->snapshots.rng == 0) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
            seed = uv_hrtime();
        srv->snapshots.rng = seed ^ ((uint64_t)srv->cfg.my_id << 32) ^ 0x9e3779b97f4a7c15ull;
        if (srv->snapshots.rng == 0)
            srv->snapshots.rng = 1;
    }
    /* xorshift64 */
    uint64_t x = srv->snapshots.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    srv->snapshots.rng = x;
    int64_t half = count / 2;
    return half + 1 + (int64_t)(x % (uint64_t)(count - half));
}

/*
 * Every snapshot_threshold txns, or log bytes when snapSizeLimitInKb is on,
 * a snapshot; serialised by a forked child so the loop never stalls for it,
 * or on the loop if no child can be started.
 */
void snapshot_maybe_take(struct server *srv)
{
    struct snapshots *sn = &srv->snapshots;
    if (sn->threshold == 0) {
        sn->threshold = snapshot_threshold(srv, srv->cfg.snap_count);
        sn->bytes_threshold = snapshot_threshold(srv, (int64_t)srv->cfg.snap_size_limit);
    }
    bool by_count = sn->txns_since >= sn->threshold;
    bool by_size = sn->bytes_threshold > 0 && sn->bytes_since >= sn->bytes_threshold;
    if ((!by_count && !by_size) || snapshot_in_progress(srv))
        return;
    if (by_size && !by_count)
        ZN_INFO("snapshot: the log since the last one holds %" PRId64 " bytes (snapSizeLimitInKb "
                "draw %" PRId64 ")", sn->bytes_since, sn->bytes_threshold);
    sn->txns_since = 0;
    sn->bytes_since = 0;
    sn->threshold = snapshot_threshold(srv, srv->cfg.snap_count);
    sn->bytes_threshold = snapshot_threshold(srv, (int64_t)srv->cfg.snap_size_limit);
    if (snapshot_start(srv, on_snapshot_ready) == 0)
        return;
    struct jute_writer w;
    jute_writer_init(&w);
    uint64_t start = server_now_ms();
    if (tree_serialize(srv->tree, &w) != 0 || w.error) {
        ZN_ERROR("snapshot: cannot serialise the tree");
        jute_writer_free(&w);
        return;
    }
    size_t len;
    uint8_t *blob = jute_writer_take(&w, &len);
    jute_writer_free(&w);
    int64_t zxid = tree_last_zxid(srv->tree);
    ZN_INFO("snapshot serialised on the loop zxid=0x%" PRIx64 " bytes=%zu ms=%" PRIu64
            " (its file is written by the store's writer)",
            (uint64_t)zxid, len, server_now_ms() - start);
    struct store_stats st;
    store_stats(srv->store, &st);
    if ((uint64_t)zxid <= st.snapshot_zxid_queued) {
        free(blob);
        return;
    }
    int rc = store_snapshot(srv->store, (uint64_t)zxid, blob, len);
    if (rc != 0) {
        free(blob);
        ZN_ERROR("snapshot at zxid=0x%" PRIx64 " failed: %s", (uint64_t)zxid, zn_strerror(rc));
        return;
    }
    snapshot_handed_over(srv, zxid);
}
