/*
 * SNAP sync from the leader's snapshot file, for a member too far behind
 * for a DIFF (the leader's log in memory starts at its newest snapshot).
 *
 * The core's SYNC message can carry the tree itself, which bounds it
 * (ZAB_SNAPSHOT_BYTES_MAX, 64 MB: about 250,000 znodes of 100 bytes), and
 * the leader would serialise the whole tree in its loop to make it.  A member
 * behind a larger tree could never come back, and a new member could never
 * join.  So when the core asks for a snapshot (zab_ready.snapshot_wanted) and
 * the store has one on disk, the leader offers the core a reference to its
 * newest snapshot file instead (struct snapxfer_ref: zxid, length,
 * checksum), which the core sends in SYNC as it would the tree; the entries
 * after that zxid follow from the core's log, as after any SNAP.
 *
 * The learner's driver does not hand such a SYNC to its core at once.  It
 * holds it, with every later core message from the leader, and pulls the
 * file from the leader in chunks (CHANNEL_SNAP_REQ, CHANNEL_SNAP_DATA), at
 * most SNAPXFER_WINDOW_BYTES in flight, written as they come into
 * snapshot.<zxid>.tmp by the store's own snapshot writer (paced writeback,
 * the checksum computed on the way).  When the last byte is in and its
 * checksum is the leader's, it loads the tree from the file and replays the
 * held messages into the core: the SYNC makes the core install
 * (ens_install_snapshot takes the loaded tree and hands the file to the
 * store), and the rest are the entries and NEWLEADER that followed.  While
 * bytes arrive the core is told (zab_snapshot_transfer_progress), so that
 * initLimit bounds the transfer, as ZooKeeper's initLimit does.  Anything
 * else (the leader's link drops, the role changes, a gap, a checksum that
 * differs, a disk error, nothing for syncLimit, too much held) abandons the
 * transfer and drops what it held: to the core those messages were lost,
 * and it retries as it would then.
 *
 * The leader reads the file with pread as requests come (the newest snapshot
 * stays in the page cache: store_snapfile_uncache), through one descriptor
 * kept open while requests for that zxid come, so a purge that unlinks the
 * file meanwhile does not cut a transfer short.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ensemble_internal.h"
#include "log.h"
#include "store.h"
#include "store_snapfile.h"
#include "tree.h"

/* A reference's bytes (big-endian): magic, version, zxid, blob length, blob
 * checksum (store_snapfile's).  No tree serialisation is this short or
 * starts with this magic (a tree's starts with "ZNT1"). */
#define SNAPXFER_REF_MAGIC 0x5a4e5352u /* "ZNSR" */
#define SNAPXFER_REF_VERSION 1u
#define SNAPXFER_REF_BYTES 28u
/* Bytes of one CHANNEL_SNAP_DATA frame, and in flight at once. */
#define SNAPXFER_CHUNK_BYTES (1u << 20)
#define SNAPXFER_WINDOW_BYTES (8u * SNAPXFER_CHUNK_BYTES)
/* Core messages held while a file comes: the entries the leader ships
 * after the SYNC (its send window) and its resends. */
#define SNAPXFER_HELD_MAX_BYTES ((size_t)256u << 20)

struct snapxfer_held {
    struct snapxfer_held *next;
    size_t len;
    uint8_t frame[];
};

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

bool ens_snapxfer_parse_ref(const uint8_t *data, size_t size, struct snapxfer_ref *out)
{
    if (!data || size != SNAPXFER_REF_BYTES || get_be32(data) != SNAPXFER_REF_MAGIC ||
        get_be32(data + 4) != SNAPXFER_REF_VERSION)
        return false;
    out->zxid = get_be64(data + 8);
    out->len = get_be64(data + 16);
    out->crc = get_be32(data + 24);
    return true;
}

void ens_snapxfer_init(struct ensemble *e)
{
    memset(&e->xfer, 0, sizeof e->xfer);
    e->xfer.src_fd = -1;
    e->xfer.out.fd = -1;
}

/* ---- leader: offering and serving the file ---- */

bool ens_snapxfer_offer(struct ensemble *e)
{
    struct server *srv = e->srv;
    struct store_stats st;
    store_stats(srv->store, &st);
    e->xfer.offer_pending = false;
    if (st.snapshot_zxid_queued > st.snapshot_zxid) {
        /* The core dropped its log up to a snapshot the store has not
         * recorded yet (snapshot_handed_over): offer that one once it is,
         * from the tick, rather than the tree in the loop. */
        e->xfer.offer_pending = true;
        return true;
    }
    if (st.snapshot_zxid == 0)
        return false;
    struct store_snapfile_facts facts;
    int rc = store_snapfile_check_header(store_snapshot_dir(srv->store), st.snapshot_zxid,
                                         STORE_SNAPFILE_FINAL, &facts);
    if (rc != 0) {
        ZN_WARN("snapshot transfer: the newest snapshot zxid=0x%" PRIx64 " cannot be offered: %s",
                st.snapshot_zxid, rc == 1 ? facts.problem : strerror(-rc));
        return false;
    }
    uint8_t ref[SNAPXFER_REF_BYTES];
    put_be32(ref, SNAPXFER_REF_MAGIC);
    put_be32(ref + 4, SNAPXFER_REF_VERSION);
    put_be64(ref + 8, st.snapshot_zxid);
    put_be64(ref + 16, facts.len);
    put_be32(ref + 24, facts.crc);
    rc = zab_snapshot_offer(e->zab, st.snapshot_zxid, ref, sizeof ref);
    if (rc != 0) {
        /* below the core's log (compacted further than the newest file):
         * the tree itself, as before */
        ZN_WARN("snapshot transfer: the core did not take the snapshot file zxid=0x%" PRIx64 ": %s",
                st.snapshot_zxid, zab_strerror(rc));
        return false;
    }
    e->xfer.pin_zxid = st.snapshot_zxid;
    e->xfer.pin_idle_ticks = 0;
    ZN_INFO("snapshot transfer: offering the snapshot file zxid=0x%" PRIx64 " bytes=%" PRIu64
            " to the members behind the log",
            st.snapshot_zxid, facts.len);
    return true;
}

static void send_data(struct ensemble *e, uint32_t to, uint64_t zxid, uint64_t off, int32_t status,
                      const uint8_t *bytes, size_t n)
{
    jute_writer_reset(&e->out);
    uint8_t channel = CHANNEL_SNAP_DATA;
    jute_write_raw(&e->out, &channel, 1);
    jute_write_long(&e->out, (int64_t)zxid);
    jute_write_long(&e->out, (int64_t)off);
    jute_write_int(&e->out, status);
    if (n)
        jute_write_raw(&e->out, bytes, n);
    if (!e->out.error)
        ens_send_bytes(e, to, e->out.data, e->out.len);
}

/* A learner asks for [off, off + len) of the blob of snapshot.<zxid>. */
void ens_snapxfer_serve(struct ensemble *e, uint32_t from, struct jute_reader *rd)
{
    int64_t zxid = 0, off = 0;
    int32_t len = 0;
    if (jute_read_long(rd, &zxid) || jute_read_long(rd, &off) || jute_read_int(rd, &len) ||
        zxid <= 0 || off < 0 || len <= 0 || (uint32_t)len > SNAPXFER_WINDOW_BYTES) {
        ZN_WARN("malformed snapshot request from=%u", from);
        return;
    }
    struct snapxfer *x = &e->xfer;
    x->src_idle_ticks = 0;
    if (x->pin_zxid == 0 || (uint64_t)zxid < x->pin_zxid)
        x->pin_zxid = (uint64_t)zxid;
    x->pin_idle_ticks = 0;
    if (x->src_fd < 0 || x->src_zxid != (uint64_t)zxid) {
        if (x->src_fd >= 0)
            close(x->src_fd);
        x->src_fd = -1;
        char path[4096];
        int rc = store_snapfile_path(path, sizeof path, store_snapshot_dir(e->srv->store),
                                     (uint64_t)zxid, STORE_SNAPFILE_FINAL);
        if (rc == 0 && (x->src_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            rc = -errno;
        if (rc != 0) {
            ZN_WARN("snapshot transfer: cannot open snapshot zxid=0x%" PRIx64 " for member %u: %s",
                    (uint64_t)zxid, from, strerror(-rc));
            send_data(e, from, (uint64_t)zxid, (uint64_t)off, -rc, NULL, 0);
            return;
        }
        x->src_zxid = (uint64_t)zxid;
        ZN_INFO("snapshot transfer: sending snapshot zxid=0x%" PRIx64 " to member %u",
                (uint64_t)zxid, from);
    }
    uint8_t *buf = malloc(SNAPXFER_CHUNK_BYTES);
    if (!buf) {
        send_data(e, from, (uint64_t)zxid, (uint64_t)off, ENOMEM, NULL, 0);
        return;
    }
    for (uint64_t at = (uint64_t)off, end = (uint64_t)off + (uint64_t)len; at < end;) {
        size_t want = end - at < SNAPXFER_CHUNK_BYTES ? (size_t)(end - at) : SNAPXFER_CHUNK_BYTES;
        ssize_t n = pread(x->src_fd, buf, want, (off_t)(STORE_SNAPFILE_HEADER_BYTES + at));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ESPIPE; /* short: not the file the reference named */
            ZN_WARN("snapshot transfer: cannot read snapshot zxid=0x%" PRIx64 " at %" PRIu64 ": %s",
                    (uint64_t)zxid, at, strerror(err));
            send_data(e, from, (uint64_t)zxid, at, err, NULL, 0);
            break;
        }
        send_data(e, from, (uint64_t)zxid, at, 0, buf, (size_t)n);
        at += (uint64_t)n;
    }
    free(buf);
}

/* ---- learner: receiving ---- */

/* Would the core take a SYNC naming this file from `from`?  Only from the
 * leader it follows, and, once synced, only beyond its log (else a resend it
 * ignores: fetching the file would hold up what follows for nothing). */
static bool core_takes(struct ensemble *e, uint32_t from, const struct snapxfer_ref *ref)
{
    if ((e->role != ZAB_FOLLOWING && e->role != ZAB_OBSERVING) || e->leader_id != from)
        return false;
    struct zab_status st;
    zab_status(e->zab, &st);
    bool synced = st.phase == ZAB_PHASE_SYNC || st.phase == ZAB_PHASE_BROADCAST;
    return !(synced && ref->zxid <= st.last_zxid);
}

static void drop_held(struct snapxfer *x)
{
    for (struct snapxfer_held *h = x->held_head, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    x->held_head = x->held_tail = NULL;
    x->held_bytes = 0;
}

static bool hold(struct snapxfer *x, const uint8_t *frame, size_t len)
{
    if (x->held_bytes + len > SNAPXFER_HELD_MAX_BYTES)
        return false;
    struct snapxfer_held *h = malloc(sizeof *h + len);
    if (!h)
        return false;
    h->next = NULL;
    h->len = len;
    memcpy(h->frame, frame, len);
    if (x->held_tail)
        x->held_tail->next = h;
    else
        x->held_head = h;
    x->held_tail = h;
    x->held_bytes += len;
    return true;
}

void ens_snapxfer_abandon(struct ensemble *e, const char *why)
{
    struct snapxfer *x = &e->xfer;
    if (!x->active && !x->tree)
        return;
    if (x->active)
        ZN_WARN("snapshot transfer: abandoned snapshot zxid=0x%" PRIx64 " from member %u after %" PRIu64
                " of %" PRIu64 " bytes: %s",
                x->zxid, x->from, x->received, x->len, why);
    if (x->out.fd >= 0)
        store_snapfile_abort(&x->out);
    x->out.fd = -1;
    if (x->tree) {
        /* only the received file: a snapshot of that zxid this member
         * recorded before (its final name) stays */
        char path[4096];
        tree_free(x->tree);
        x->tree = NULL;
        if (store_snapfile_path(path, sizeof path, store_snapshot_dir(e->srv->store), x->zxid,
                                STORE_SNAPFILE_TMP) == 0)
            unlink(path);
    }
    drop_held(x);
    x->active = false;
}

static void request_more(struct ensemble *e)
{
    struct snapxfer *x = &e->xfer;
    while (x->requested < x->len && x->requested - x->received < SNAPXFER_WINDOW_BYTES) {
        uint64_t n = x->len - x->requested;
        if (n > SNAPXFER_CHUNK_BYTES)
            n = SNAPXFER_CHUNK_BYTES;
        jute_writer_reset(&e->out);
        uint8_t channel = CHANNEL_SNAP_REQ;
        jute_write_raw(&e->out, &channel, 1);
        jute_write_long(&e->out, (int64_t)x->zxid);
        jute_write_long(&e->out, (int64_t)x->requested);
        jute_write_int(&e->out, (int32_t)n);
        if (e->out.error)
            return;
        ens_send_bytes(e, x->from, e->out.data, e->out.len);
        x->requested += n;
    }
}

bool ens_snapxfer_hold(struct ensemble *e, uint32_t from, const uint8_t *frame, size_t len)
{
    struct snapxfer *x = &e->xfer;
    if (!x->active)
        return false;
    if (from != x->from)
        return false; /* not the leader we sync with: the core decides */
    if (!hold(x, frame, len))
        ens_snapxfer_abandon(e, "too much held from the leader meanwhile");
    return true;
}

bool ens_snapxfer_start(struct ensemble *e, uint32_t from, const struct snapxfer_ref *ref,
                        const uint8_t *frame, size_t len)
{
    struct snapxfer *x = &e->xfer;
    ens_snapxfer_abandon(e, "a new transfer starts");
    const char *dir = store_snapshot_dir(e->srv->store);
    int rc = store_snapfile_begin(&x->out, dir, ref->zxid, STORE_SNAPFILE_TMP, 0);
    if (rc != 0) {
        ZN_ERROR("snapshot transfer: cannot create %s/snapshot.%" PRIx64 ".tmp: %s", dir, ref->zxid,
                 strerror(-rc));
        store_snapfile_abort(&x->out);
        x->out.fd = -1;
        return false;
    }
    x->active = true;
    x->from = from;
    x->zxid = ref->zxid;
    x->len = ref->len;
    x->crc = ref->crc;
    x->received = x->requested = 0;
    x->started_ms = x->progress_ms = server_now_ms();
    if (!hold(x, frame, len)) {
        ens_snapxfer_abandon(e, "no memory to hold the leader's SYNC");
        return true; /* dropped, as a lost message */
    }
    ZN_INFO("snapshot transfer: receiving snapshot zxid=0x%" PRIx64 " bytes=%" PRIu64
            " from member %u",
            x->zxid, x->len, from);
    request_more(e);
    if (x->len == 0)
        ens_snapxfer_abandon(e, "an empty snapshot named"); /* a tree has a header */
    return true;
}

bool ens_snapxfer_step(struct ensemble *e, uint32_t from, const uint8_t *frame, size_t len)
{
    struct zab_message m;
    if (zab_message_decode(frame + 1, len - 1, &m) != 0 || m.from != from) {
        ZN_WARN("malformed peer message from=%u bytes=%zu", from, len);
        return false;
    }
    struct snapxfer_ref ref;
    if (m.type == ZAB_MSG_SYNC && m.u.sync.mode == ZAB_SYNC_SNAP &&
        ens_snapxfer_parse_ref(m.u.sync.data, m.u.sync.size, &ref)) {
        struct snapxfer *x = &e->xfer;
        if (!(x->tree && x->zxid == ref.zxid)) {
            /* Not the tree loaded for it: fetch the file first, holding
             * this and what follows; or, when the core would ignore it,
             * drop it (were it taken, there would be no tree to install).
             * Not started (no file could be made): dropped, as a lost
             * message. */
            if (core_takes(e, from, &ref))
                return ens_snapxfer_start(e, from, &ref, frame, len);
            return false;
        }
    }
    zab_step(e->zab, &m);
    ens_process_ready(e);
    return false;
}

/* The whole blob is in: check it, load the tree, replay the held messages. */
static void complete(struct ensemble *e)
{
    struct snapxfer *x = &e->xfer;
    uint32_t crc = 0;
    int rc = store_snapfile_finish(&x->out, &crc);
    x->out.fd = -1;
    if (rc != 0) {
        ZN_ERROR("snapshot transfer: cannot write snapshot zxid=0x%" PRIx64 ": %s", x->zxid,
                 strerror(-rc));
        ens_snapxfer_abandon(e, "the file could not be written");
        return;
    }
    char path[4096];
    const char *dir = store_snapshot_dir(e->srv->store);
    store_snapfile_path(path, sizeof path, dir, x->zxid, STORE_SNAPFILE_TMP);
    if (crc != x->crc) {
        unlink(path);
        ens_snapxfer_abandon(e, "its checksum is not the leader's");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    void *map = MAP_FAILED;
    size_t map_len = (size_t)(STORE_SNAPFILE_HEADER_BYTES + x->len);
    if (fd >= 0) {
        map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
    }
    struct tree *fresh = map == MAP_FAILED ? NULL : tree_new();
    rc = fresh ? tree_deserialize(fresh, (const uint8_t *)map + STORE_SNAPFILE_HEADER_BYTES,
                                  (size_t)x->len)
               : ZN_NOMEMORY;
    if (map != MAP_FAILED)
        munmap(map, map_len);
    if (rc != 0) {
        if (fresh)
            tree_free(fresh);
        unlink(path);
        ZN_ERROR("snapshot transfer: the snapshot zxid=0x%" PRIx64 " does not load: %s", x->zxid,
                 zn_strerror(rc));
        ens_snapxfer_abandon(e, "the tree does not load");
        return;
    }
    x->tree = fresh;
    x->active = false;
    ZN_INFO("snapshot transfer: received snapshot zxid=0x%" PRIx64 " bytes=%" PRIu64 " nodes=%zu in %" PRIu64
            " ms",
            x->zxid, x->len, tree_node_count(fresh), server_now_ms() - x->started_ms);
    /* The held messages, in order, as if they came now: the SYNC installs
     * (ens_snapxfer_take_tree). */
    struct snapxfer_held *list = x->held_head;
    uint32_t from = x->from;
    x->held_head = x->held_tail = NULL;
    x->held_bytes = 0;
    for (struct snapxfer_held *h = list, *next; h; h = next) {
        next = h->next;
        if (e->zab && ens_snapxfer_step(e, from, h->frame, h->len)) {
            /* A later SYNC named a newer file (the leader took another
             * snapshot and synced us again): fetch it, the rest held
             * behind that SYNC as before. */
            for (struct snapxfer_held *r = next, *rnext; r; r = rnext) {
                rnext = r->next;
                if (x->active && !hold(x, r->frame, r->len))
                    ens_snapxfer_abandon(e, "too much held from the leader meanwhile");
                free(r);
            }
            free(h);
            return;
        }
        free(h);
    }
    if (x->tree) /* the core did not take it (a SYNC of an attempt it had left) */
        ens_snapxfer_abandon(e, "the core did not install it");
}

void ens_snapxfer_receive(struct ensemble *e, uint32_t from, struct jute_reader *rd)
{
    struct snapxfer *x = &e->xfer;
    int64_t zxid = 0, off = 0;
    int32_t status = 0;
    if (jute_read_long(rd, &zxid) || jute_read_long(rd, &off) || jute_read_int(rd, &status)) {
        ZN_WARN("malformed snapshot data from=%u", from);
        return;
    }
    if (!x->active || from != x->from || (uint64_t)zxid != x->zxid)
        return; /* of a transfer already abandoned */
    if (status != 0) {
        ZN_WARN("snapshot transfer: the leader could not send snapshot zxid=0x%" PRIx64 ": %s",
                x->zxid, strerror(status > 0 ? status : -status));
        ens_snapxfer_abandon(e, "the leader could not send it");
        return;
    }
    size_t n = rd->len - rd->pos;
    if ((uint64_t)off != x->received || n == 0 || x->received + n > x->len) {
        ens_snapxfer_abandon(e, "bytes out of order");
        return;
    }
    int rc = store_snapfile_append(&x->out, rd->data + rd->pos, n);
    if (rc != 0) {
        ZN_ERROR("snapshot transfer: cannot write snapshot zxid=0x%" PRIx64 ": %s", x->zxid,
                 strerror(-rc));
        ens_snapxfer_abandon(e, "the file could not be written");
        return;
    }
    x->received += n;
    x->progress_ms = server_now_ms();
    if (e->zab)
        zab_snapshot_transfer_progress(e->zab, from);
    if (x->received == x->len)
        complete(e);
    else
        request_more(e);
}

void ens_snapxfer_tick(struct ensemble *e)
{
    struct snapxfer *x = &e->xfer;
    if (x->offer_pending && e->role == ZAB_LEADING && !ens_snapxfer_offer(e))
        ZN_WARN("snapshot transfer: no snapshot file to offer the members behind the log");
    if (x->active && server_now_ms() - x->progress_ms > (uint64_t)e->sync_limit_ticks * ENSEMBLE_TICK_MS)
        ens_snapxfer_abandon(e, "no bytes from the leader for syncLimit");
    /* The leader's descriptor goes once no transfer has asked for a while:
     * the file may have been purged. */
    if (x->pin_zxid && ++x->pin_idle_ticks > e->sync_limit_ticks)
        x->pin_zxid = 0; /* no member asked for syncLimit: none is fetching */
    if (x->src_fd >= 0 && ++x->src_idle_ticks > e->sync_limit_ticks) {
        close(x->src_fd);
        x->src_fd = -1;
        x->src_zxid = 0;
    }
}

uint64_t ens_snapxfer_compact_bound(const struct ensemble *e, uint64_t zxid)
{
    return e->xfer.pin_zxid && e->xfer.pin_zxid < zxid ? e->xfer.pin_zxid : zxid;
}

struct tree *ens_snapxfer_take_tree(struct ensemble *e, uint64_t zxid)
{
    struct snapxfer *x = &e->xfer;
    if (!x->tree || x->zxid != zxid)
        return NULL;
    struct tree *t = x->tree;
    x->tree = NULL;
    return t;
}

void ens_snapxfer_free(struct ensemble *e)
{
    struct snapxfer *x = &e->xfer;
    if (x->out.fd >= 0)
        store_snapfile_abort(&x->out); /* its .tmp; a loaded tree's file is swept at the next open */
    x->out.fd = -1;
    if (x->tree)
        tree_free(x->tree);
    x->tree = NULL;
    drop_held(x);
    x->active = false;
    if (x->src_fd >= 0)
        close(x->src_fd);
    x->src_fd = -1;
}
