/*
 * zkimport: an Apache ZooKeeper data directory made into a znoded store
 * (zkimport.h).  It does what a ZooKeeper member does when it starts
 * (FileTxnSnapLog.restore): load the newest complete snapshot, then replay
 * every logged transaction after it; and then writes the tree it built as
 * the snapshot of a new store, with the zxid and epoch to continue from.
 *
 * ZooKeeper's tree and ours agree on every stat field (both persist
 * StatPersisted: cversion as a count of creates, the container and TTL
 * owner encodings), and its transaction records carry what our txns carry
 * (the parent's cversion after a create, the new version after a set), so
 * each logged record becomes one txn applied with tree_apply.
 *
 * ZooKeeper's snapshots are fuzzy: written while transactions are applied,
 * so the ones logged after the snapshot's zxid up to the zxid of its digest
 * (written when the tree was done) may already be in it.  ZooKeeper replays
 * them and ignores what does not fit (a create of a node already there, a
 * delete of one already gone); so does this, inside that window only.  A
 * transaction after the window that does not fit is damage, and refused.
 *
 * What is refused, with one line naming the file: a snapshot that fails
 * its checksum or is malformed (ZooKeeper would fall back to an older one;
 * an import should not silently start from older data), a log entry that
 * fails its checksum or is cut short anywhere but at the end of the newest
 * log, a gap in the zxids within an epoch, a record of a type no ZooKeeper
 * writes.  A snapshot cut short (ZooKeeper stopped while writing it) is
 * skipped, as ZooKeeper's isValidSnapshot skips it, and said so.
 */
#include "zkimport.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "store.h"
#include "target_dir.h"
#include "tree.h"
#include "txn.h"
#include "zkdata.h"
#include "znode/errors.h"
#include "znode/proto.h"

/* The session timeout given to a session that owns an ephemeral in a fuzzy
 * snapshot but was created after the snapshot listed its sessions and whose
 * createSession is not in the logs either: ZooKeeper's default
 * maxSessionTimeout (20 ticks of 2000 ms). */
#define ZKIMPORT_UNLISTED_SESSION_TIMEOUT_MS 40000

struct acl_entry {
    int64_t index;
    struct zn_acl_vec acl;
};

struct import {
    struct tree *tree;
    struct zn_arena acl_arena; /* the snapshot's ACL cache, copied */
    struct acl_entry *acls;
    size_t acl_count, acl_cap;
    bool acls_sorted;
    const char *file;          /* the file being read, for messages */
    int64_t fuzzy_end_zxid;    /* the snapshot's digest zxid: the fuzzy window's end */
    uint64_t applied, fuzzy_skipped, reconfigs, unlisted_sessions; /* fuzzy_skipped: ops */
    char why[512];
};

static int refuse(struct import *im, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct import *im, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->why, sizeof im->why, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the snapshot ---- */

static int on_session(void *ctx, int64_t id, int32_t timeout_ms)
{
    struct import *im = ctx;
    int rc = tree_import_session(im->tree, id, timeout_ms);
    if (rc == ZN_BADARGUMENTS)
        return refuse(im, ZN_CORRUPT, "%s lists session 0x%" PRIx64 " twice, or an id no "
                      "session has", im->file, (uint64_t)id);
    return rc;
}

static char *arena_copy(struct zn_arena *arena, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *c = zn_arena_alloc(arena, n);
    if (c)
        memcpy(c, s, n);
    return c;
}

/* The ACL cache comes before the nodes; its strings live in the reader's
 * arena, which the node reader resets, so they are copied. */
static int on_acl(void *ctx, int64_t index, const struct zn_acl_vec *acl)
{
    struct import *im = ctx;
    if (im->acl_count == im->acl_cap) {
        size_t cap = im->acl_cap ? im->acl_cap * 2 : 64;
        struct acl_entry *a = realloc(im->acls, cap * sizeof *a);
        if (!a)
            return ZN_NOMEMORY;
        im->acls = a;
        im->acl_cap = cap;
    }
    struct acl_entry *e = &im->acls[im->acl_count];
    e->index = index;
    e->acl.count = acl->count;
    e->acl.items = NULL;
    if (acl->count > 0) {
        e->acl.items = zn_arena_alloc(&im->acl_arena, (size_t)acl->count * sizeof *acl->items);
        if (!e->acl.items)
            return ZN_NOMEMORY;
        for (int32_t i = 0; i < acl->count; i++) {
            struct zn_acl *to = &e->acl.items[i];
            to->perms = acl->items[i].perms;
            to->id.scheme = arena_copy(&im->acl_arena, acl->items[i].id.scheme);
            to->id.id = arena_copy(&im->acl_arena, acl->items[i].id.id);
            if ((acl->items[i].id.scheme && !to->id.scheme) || (acl->items[i].id.id && !to->id.id))
                return ZN_NOMEMORY;
        }
    }
    im->acl_count++;
    im->acls_sorted = false;
    return 0;
}

static int acl_entry_order(const void *a, const void *b)
{
    const struct acl_entry *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The ACL a node's index stands for (ReferenceCountedACLCache.convertLong). */
static const struct zn_acl_vec *acl_of(struct import *im, int64_t index)
{
    static struct zn_acl open = {ZN_PERM_ALL, {"world", "anyone"}};
    static const struct zn_acl_vec open_acl = {1, &open};
    if (index == ZKDATA_OPEN_ACL_INDEX)
        return &open_acl;
    if (!im->acls_sorted) {
        qsort(im->acls, im->acl_count, sizeof *im->acls, acl_entry_order);
        im->acls_sorted = true;
    }
    struct acl_entry key = {.index = index};
    struct acl_entry *e = bsearch(&key, im->acls, im->acl_count, sizeof *im->acls, acl_entry_order);
    return e ? &e->acl : NULL;
}

static int on_node(void *ctx, const char *path, struct jute_buf data, int64_t acl_index,
                   const struct zkdata_stat *s)
{
    struct import *im = ctx;
    const struct zn_acl_vec *acl = acl_of(im, acl_index);
    if (!acl)
        return refuse(im, ZN_CORRUPT, "%s: node %s refers to ACL %" PRId64 ", which the "
                      "snapshot's ACL cache does not hold", im->file, path, acl_index);
    struct tree_persisted_stat stat = {
        .czxid = s->czxid, .mzxid = s->mzxid, .pzxid = s->pzxid, .ctime = s->ctime,
        .mtime = s->mtime, .ephemeral_owner = s->ephemeral_owner, .version = s->version,
        .cversion = s->cversion, .aversion = s->aversion,
    };
    int rc = tree_import_node(im->tree, path, data, acl, &stat);
    if (rc == ZN_BADARGUMENTS && s->ephemeral_owner > 0 &&
        !tree_session_exists(im->tree, s->ephemeral_owner)) {
        /* The fuzzy case: a session created after the session list was written. */
        rc = tree_import_session(im->tree, s->ephemeral_owner, ZKIMPORT_UNLISTED_SESSION_TIMEOUT_MS);
        im->unlisted_sessions += rc == 0;
        if (rc == 0)
            rc = tree_import_node(im->tree, path, data, acl, &stat);
    }
    if (rc == ZN_BADARGUMENTS)
        return refuse(im, ZN_CORRUPT, "%s: node %s does not fit the tree (its parent is missing "
                      "or ephemeral, or it is listed twice)", im->file, path);
    return rc;
}

/* ---- the logs: ZooKeeper's txn records (zookeeper.jute) as our txns ---- */

/* Reads the body of one record of type into op (strings in arena). */
static int decode_record(struct jute_reader *r, int32_t type, int64_t session, struct txn_op *op,
                         struct zn_arena *arena);

static int decode_create(struct jute_reader *r, int32_t type, int64_t session, struct txn_op *op)
{
    jute_read_string(r, &op->path);
    jute_read_buffer(r, &op->data);
    jute_read_acl_vec(r, &op->acl);
    if (type == ZN_OP_CREATE || type == ZN_OP_CREATE2) { /* CreateTxn */
        bool ephemeral = false;
        jute_read_bool(r, &ephemeral);
        op->ephemeral_owner = ephemeral ? session : 0;
    }
    jute_read_int(r, &op->parent_cversion);
    if (type == ZN_OP_CREATETTL) /* CreateTTLTxn */
        jute_read_long(r, &op->ttl_ms);
    op->kind = ZN_NODE_KIND_UNKNOWN;
    return 0;
}

/* MultiTxn: a vector of Txn {int type; buffer data}. */
static int decode_multi(struct jute_reader *r, int64_t session, struct txn *t, struct zn_arena *arena)
{
    int32_t count = 0;
    jute_read_int(r, &count);
    if (r->error || count < 0 || count > TXN_MAX_MULTI_OPS || (size_t)count > jute_remaining(r) / 8)
        return ZN_CORRUPT;
    t->op_count = count;
    t->ops = count ? zn_arena_alloc(arena, (size_t)count * sizeof *t->ops) : NULL;
    if (count && !t->ops)
        return ZN_NOMEMORY;
    for (int32_t i = 0; i < count; i++) {
        struct jute_buf body = {NULL, -1};
        int32_t type = 0;
        jute_read_int(r, &type);
        jute_read_buffer(r, &body);
        if (r->error || body.len < 0 || !txn_op_allowed_in_multi(type == ZN_OP_DELETECONTAINER ? ZN_OP_DELETE : type))
            return ZN_CORRUPT;
        struct jute_reader sub;
        jute_reader_init(&sub, body.data, (size_t)body.len, arena);
        int rc = decode_record(&sub, type, session, &t->ops[i], arena);
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_record(struct jute_reader *r, int32_t type, int64_t session, struct txn_op *op,
                         struct zn_arena *arena)
{
    (void)arena;
    memset(op, 0, sizeof *op);
    op->type = type;
    op->data.len = -1;
    switch (type) {
    case ZN_OP_CREATE: case ZN_OP_CREATE2: case ZN_OP_CREATECONTAINER: case ZN_OP_CREATETTL:
        decode_create(r, type, session, op);
        break;
    case ZN_OP_DELETE: case ZN_OP_DELETECONTAINER: /* DeleteTxn */
        op->type = ZN_OP_DELETE;
        jute_read_string(r, &op->path);
        break;
    case ZN_OP_SETDATA: /* SetDataTxn */
        jute_read_string(r, &op->path);
        jute_read_buffer(r, &op->data);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_SETACL: /* SetACLTxn */
        jute_read_string(r, &op->path);
        jute_read_acl_vec(r, &op->acl);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_CHECK: /* CheckVersionTxn */
        jute_read_string(r, &op->path);
        jute_read_int(r, &op->version);
        break;
    case ZN_OP_CREATESESSION: /* CreateSessionTxn */
        jute_read_int(r, &op->timeout_ms);
        break;
    case ZN_OP_CLOSESESSION:
        /* CloseSessionTxn (3.6+, closeSessionTxn.enabled): the ephemerals
         * the leader saw.  Older records have no body (then a TxnDigest may
         * follow): every ephemeral of the session goes either way
         * (DataTree.killSession), the list only matters in a fuzzy window. */
        if (jute_read_string_vec(r, &op->paths) != 0 || r->error || op->paths.count < 0) {
            r->error = 0;
            op->paths.count = 0;
            op->paths.items = NULL;
        }
        for (int32_t i = 0; i < op->paths.count; i++) {
            if (!op->paths.items[i] || op->paths.items[i][0] != '/') {
                op->paths.count = 0;
                op->paths.items = NULL;
                break;
            }
        }
        break;
    case ZN_OP_ERROR: /* ErrorTxn */
        jute_read_int(r, &op->err);
        break;
    default:
        return ZN_CORRUPT;
    }
    return r->error ? ZN_CORRUPT : 0;
}

static int on_txn(void *ctx, int64_t session, int32_t cxid, int64_t zxid, int64_t time_ms,
                  int32_t type, const uint8_t *record, size_t record_len)
{
    struct import *im = ctx;
    int64_t last = tree_last_zxid(im->tree);
    if (zxid <= last)
        return 0; /* in the snapshot already, or in an earlier log */
    if ((zxid >> 32) == (last >> 32) && zxid != last + 1)
        return refuse(im, ZN_CORRUPT, "%s: the transactions from zxid=0x%" PRIx64 " to "
                      "zxid=0x%" PRIx64 " are missing (a log file was removed?)", im->file,
                      (uint64_t)last + 1, (uint64_t)zxid - 1);
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader r;
    jute_reader_init(&r, record, record_len, &arena);
    struct txn t = {.hdr = {session, cxid, zxid, time_ms, type}};
    int rc;
    if (type == ZN_OP_RECONFIG) {
        /* The ensemble's config is each member's own (from its zoo.cfg). */
        t.hdr.type = t.op.type = ZN_OP_ERROR;
        rc = 0;
        im->reconfigs++;
    } else if (type == ZN_OP_MULTI) {
        rc = decode_multi(&r, session, &t, &arena);
    } else {
        rc = decode_record(&r, type, session, &t.op, &arena);
        t.hdr.type = t.op.type; /* deleteContainer is applied as a delete */
    }
    if (rc == ZN_CORRUPT) {
        zn_arena_free(&arena);
        return refuse(im, rc, "%s: the transaction at zxid=0x%" PRIx64 " (type %d) is malformed "
                      "or of a type ZooKeeper does not log", im->file, (uint64_t)zxid, (int)type);
    }
    if (rc == 0 && zxid <= im->fuzzy_end_zxid)
        rc = tree_import_replay(im->tree, &t, &im->fuzzy_skipped);
    else if (rc == 0)
        rc = tree_apply(im->tree, &t, NULL, NULL, NULL, NULL);
    if (rc == ZN_DATAINCONSISTENCY) {
        rc = refuse(im, ZN_CORRUPT, "%s: the transaction at zxid=0x%" PRIx64 " (%s %s) does not "
                    "fit the tree the snapshot and the transactions before it make", im->file,
                    (uint64_t)zxid, zn_op_name(type), t.op.path ? t.op.path : "");
    }
    im->applied += rc == 0;
    zn_arena_free(&arena);
    return rc;
}

/* ---- the directory ---- */

struct zk_dirs {
    char snap_dir[PATH_MAX + 16], log_dir[PATH_MAX + 16];
    char data_dir[PATH_MAX];
};

static int split_dirs(const char *arg, struct zk_dirs *d)
{
    const char *colon = strchr(arg, ':');
    size_t data_len = colon ? (size_t)(colon - arg) : strlen(arg);
    if (data_len == 0 || data_len >= PATH_MAX - 16 || (colon && strlen(colon + 1) >= PATH_MAX - 16) ||
        (colon && !colon[1])) {
        fprintf(stderr, "znoded: --import-zookeeper takes ZK_DATADIR[:ZK_DATALOGDIR], not '%s'\n",
                arg);
        return -1;
    }
    snprintf(d->data_dir, sizeof d->data_dir, "%.*s", (int)data_len, arg);
    snprintf(d->snap_dir, sizeof d->snap_dir, "%s/version-2", d->data_dir);
    snprintf(d->log_dir, sizeof d->log_dir, "%s/version-2", colon ? colon + 1 : d->data_dir);
    return 0;
}

/* The higher of ZooKeeper's currentEpoch and acceptedEpoch files (a quorum
 * member's; a standalone server has neither), or 0. */
static uint64_t zk_epoch_files(const char *snap_dir)
{
    uint64_t epoch = 0;
    const char *names[] = {"currentEpoch", "acceptedEpoch"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", snap_dir, names[i]);
        FILE *f = fopen(path, "r");
        unsigned long long v = 0;
        if (f && fscanf(f, "%llu", &v) == 1 && v > epoch)
            epoch = v;
        if (f)
            fclose(f);
    }
    return epoch;
}

struct listing {
    struct zkdata_file snaps[ZKDATA_MAX_FILES], logs[ZKDATA_MAX_FILES];
    size_t snap_count, log_count;
};

static int list_files(const struct zk_dirs *d, struct listing *l)
{
    static struct zkdata_file all[ZKDATA_MAX_FILES];
    const char *dirs[2] = {d->snap_dir, d->log_dir};
    l->snap_count = l->log_count = 0;
    for (int k = 0; k < (strcmp(d->snap_dir, d->log_dir) == 0 ? 1 : 2); k++) {
        long n = zkdata_list(dirs[k], all, ZKDATA_MAX_FILES);
        if (n < 0) {
            fprintf(stderr, "znoded: --import-zookeeper: %s: %s\n", dirs[k], strerror(errno));
            return -1;
        }
        for (long i = 0; i < n; i++) {
            /* snapshots in dataDir, logs in dataLogDir, as ZooKeeper keeps them */
            if (all[i].snapshot && k == 0)
                l->snaps[l->snap_count++] = all[i];
            else if (!all[i].snapshot && (k == 1 || strcmp(d->snap_dir, d->log_dir) == 0))
                l->logs[l->log_count++] = all[i];
        }
    }
    if (l->snap_count == 0 && l->log_count == 0) {
        fprintf(stderr, "znoded: --import-zookeeper: %s holds no ZooKeeper snapshot and %s no "
                "log: nothing to import\n", d->snap_dir, d->log_dir);
        return -1;
    }
    return 0;
}

/* Loads the newest complete snapshot; *used is its index, or snap_count
 * when there is none (the tree is then ZooKeeper's empty one). */
static int load_snapshot(struct import *im, const struct zk_dirs *d, const struct listing *l,
                         size_t *used)
{
    *used = l->snap_count;
    for (size_t i = l->snap_count; i-- > 0;) {
        static char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", d->snap_dir, l->snaps[i].name);
        struct zkdata_error err = {{0}};
        struct zkdata_visitor v = {on_session, on_acl, on_node, NULL, im};
        int64_t digest_zxid = 0;
        im->file = path;
        tree_import_begin(im->tree);
        int rc = zkdata_read_snapshot(path, &v, &digest_zxid, &err);
        if (rc == ZKDATA_CUT_SHORT) {
            printf("znoded: --import-zookeeper: skipping %s: %s (as ZooKeeper skips it)\n",
                   l->snaps[i].name, err.what);
            continue;
        }
        if (rc == 0)
            rc = tree_import_end(im->tree, (int64_t)l->snaps[i].zxid);
        if (rc != 0) {
            if (!im->why[0])
                refuse(im, rc, "%s", err.what[0] ? err.what : zn_strerror(rc));
            return rc;
        }
        im->fuzzy_end_zxid = digest_zxid > (int64_t)l->snaps[i].zxid ? digest_zxid
                                                                     : (int64_t)l->snaps[i].zxid;
        if (digest_zxid == 0)
            im->fuzzy_end_zxid = INT64_MAX; /* no digest: the window's end is unknown */
        *used = i;
        return 0;
    }
    /* No snapshot: ZooKeeper starts from its empty tree and replays every log. */
    im->fuzzy_end_zxid = 0;
    return 0;
}

/* Replays the logs from the one holding the transaction after the snapshot's
 * zxid (FileTxnLog.getLogFiles).  Sets *logs_read. */
static int replay_logs(struct import *im, const struct zk_dirs *d, const struct listing *l,
                       uint64_t snapshot_zxid, size_t *logs_read, bool *torn_tail)
{
    size_t first = 0;
    for (size_t i = 0; i < l->log_count && l->logs[i].zxid <= snapshot_zxid; i++)
        first = i;
    *logs_read = 0;
    *torn_tail = false;
    for (size_t i = first; i < l->log_count; i++) {
        static char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", d->log_dir, l->logs[i].name);
        struct zkdata_error err = {{0}};
        struct zkdata_visitor v = {NULL, NULL, NULL, on_txn, im};
        im->file = path;
        int rc = zkdata_read_log(path, i + 1 == l->log_count, &v, torn_tail, &err);
        if (rc != 0) {
            if (!im->why[0])
                refuse(im, rc, "%s", err.what[0] ? err.what : zn_strerror(rc));
            return rc;
        }
        (*logs_read)++;
    }
    return 0;
}

/* ---- the store ---- */

static void on_durable(void *ctx, uint64_t last_zxid, int status)
{
    (void)ctx;
    (void)last_zxid;
    (void)status;
}

struct check {
    uint64_t digest;
    int rc;
};

static int on_stored_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len)
{
    (void)zxid;
    struct check *c = ctx;
    struct tree *t = tree_new();
    c->rc = t ? tree_deserialize(t, data, len) : ZN_NOMEMORY;
    if (c->rc == 0)
        c->digest = tree_digest(t);
    tree_free(t);
    return 0;
}

/* Writes the tree as the snapshot of a new store in dir, with the epochs,
 * then reads it back and compares the digest. */
static int write_store(const struct tree *tree, uint64_t epoch, const char *dir,
                       const char *snap_dir)
{
    struct jute_writer w;
    jute_writer_init(&w);
    if (tree_serialize(tree, &w) != 0 || w.error) {
        jute_writer_free(&w);
        return ZN_NOMEMORY;
    }
    size_t len;
    uint8_t *blob = jute_writer_take(&w, &len);
    jute_writer_free(&w);
    uint64_t zxid = (uint64_t)tree_last_zxid(tree);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        free(blob);
        return ZN_IO;
    }
    struct store *s;
    /* The snapshot's file in dataDir, where znoded will look for it. */
    struct store_options opts = {.snap_dir = snap_dir};
    int rc = store_open(&s, &loop, dir, &opts, on_durable, NULL);
    if (rc == 0) {
        rc = store_recover(s, NULL, NULL, NULL);
        if (rc == 0 && (rc = store_snapshot(s, zxid, blob, len)) == 0)
            blob = NULL; /* the store's now */
        /* Synchronous, and written after the snapshot queued before them. */
        if (rc == 0)
            rc = store_meta_put(s, "acceptedEpoch", epoch);
        if (rc == 0)
            rc = store_meta_put(s, "currentEpoch", epoch);
        store_close(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    free(blob);
    struct check c = {0, ZN_CORRUPT};
    if (rc == 0 && (rc = store_open(&s, &loop, dir, &opts, on_durable, NULL)) == 0) {
        rc = store_recover(s, on_stored_snapshot, NULL, &c);
        if (rc == 0 && (store_last_zxid(s) != zxid || c.rc != 0 || c.digest != tree_digest(tree)))
            rc = c.rc ? c.rc : ZN_CORRUPT;
        store_close(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return rc;
}

static int check_targets(const struct config *cfg)
{
    const char *what = "a ZooKeeper data directory is imported";
    if (target_dir_check_empty("--import-zookeeper", what, cfg->data_dir, true) != 0)
        return -1;
    if (strcmp(cfg->data_log_dir, cfg->data_dir) != 0 &&
        target_dir_check_empty("--import-zookeeper", what, cfg->data_log_dir, false) != 0)
        return -1;
    return 0;
}

static int import_tree(struct import *im, const struct zk_dirs *d, const struct listing *l)
{
    size_t used;
    int rc = load_snapshot(im, d, l, &used);
    uint64_t snapshot_zxid = used < l->snap_count ? l->snaps[used].zxid : 0;
    size_t logs_read = 0;
    bool torn = false;
    if (rc == 0)
        rc = replay_logs(im, d, l, snapshot_zxid, &logs_read, &torn);
    if (rc != 0)
        return rc;
    printf("znoded: --import-zookeeper: read %s and %zu log%s: %" PRIu64 " transactions "
           "replayed after it (%" PRIu64 " of their ops already in the fuzzy snapshot, %" PRIu64
           " reconfigs left to each member's zoo.cfg)%s\n",
           used < l->snap_count ? l->snaps[used].name : "no snapshot", logs_read,
           logs_read == 1 ? "" : "s", im->applied, im->fuzzy_skipped, im->reconfigs,
           torn ? "; the newest log's last entry is cut short and read as its end, as "
                  "ZooKeeper reads it" : "");
    if (im->unlisted_sessions)
        printf("znoded: --import-zookeeper: %" PRIu64 " session%s owning ephemerals not listed "
               "in the snapshot given a %d ms timeout\n", im->unlisted_sessions,
               im->unlisted_sessions == 1 ? "" : "s", ZKIMPORT_UNLISTED_SESSION_TIMEOUT_MS);
    if (tree_last_zxid(im->tree) == 0)
        return refuse(im, ZN_CORRUPT, "%s and %s hold no transaction: nothing to import",
                      d->snap_dir, d->log_dir);
    return 0;
}

int zkimport_run(const char *dirs, const char *config_path)
{
    static struct config cfg;
    static struct listing listing;
    char err[1024];
    struct zk_dirs d;
    if (split_dirs(dirs, &d) != 0)
        return 2;
    config_defaults(&cfg);
    if (config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "znoded: --import-zookeeper: %s\n", err);
        return 2;
    }
    if (check_targets(&cfg) != 0 || list_files(&d, &listing) != 0)
        return 1;
    struct import im = {.tree = tree_new()};
    zn_arena_init(&im.acl_arena);
    int rc = im.tree ? import_tree(&im, &d, &listing) : ZN_NOMEMORY;
    uint64_t zxid = im.tree ? (uint64_t)tree_last_zxid(im.tree) : 0;
    uint64_t epoch = zk_epoch_files(d.snap_dir);
    if (zxid >> 32 > epoch)
        epoch = zxid >> 32;
    if (rc == 0 && (rc = write_store(im.tree, epoch, cfg.data_log_dir, cfg.data_dir)) != 0) {
        refuse(&im, rc, "cannot write the store in %s: %s", cfg.data_log_dir, zn_strerror(rc));
        target_dir_remove_store(cfg.data_log_dir);
        if (strcmp(cfg.data_dir, cfg.data_log_dir) != 0)
            target_dir_remove_store(cfg.data_dir); /* the snapshot file (myid stays) */
    }
    if (rc == 0)
        printf("znoded: imported %s into %s: zxid=0x%" PRIx64 " epoch=%" PRIu64 " nodes=%zu "
               "sessions=%zu ephemerals=%zu\n", d.data_dir, cfg.data_log_dir, zxid, epoch,
               tree_node_count(im.tree), tree_session_count(im.tree),
               tree_ephemeral_count(im.tree));
    else
        fprintf(stderr, "znoded: --import-zookeeper: %s\n", im.why[0] ? im.why : zn_strerror(rc));
    if (im.tree)
        tree_free(im.tree);
    zn_arena_free(&im.acl_arena);
    free(im.acls);
    return rc == 0 ? 0 : 1;
}
