/*
 * dump: `znoded --dump`, what an operator reaches for after an incident
 * (ZooKeeper's zkTxnLogToolkit.sh and zkSnapShotToolkit.sh): every record of
 * a store, offline, one line each, with every checksum checked, through
 * store_inspect.  A damaged record is printed whatever the filters say (its
 * contents cannot be trusted to decide), so a filter never hides damage.
 *
 *   meta acceptedEpoch=1
 *   snapshot zxid=0x100000a2c bytes=5120 file=/var/lib/zk/snapshot.100000a2c nodes=41 data_bytes=300
 *   log zxid=0x100000a2d time=2026-12-06T16:04:54.123Z session=0x1000... type=create path=/a size=61
 *   log zxid=0x100000a2e CORRUPT: fails its checksum (size=58)
 */
#include "dump.h"
#include "ensemble.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "jute.h"
#include "store_inspect.h"
#include "tree.h"
#include "txn.h"
#include "zkdata.h"
#include "znode/errors.h"

/* A CONFIG entry of an ensemble's log starts with these bytes. */
static const uint8_t DUMP_CONFIG_MAGIC[8] = ENSEMBLE_CONFIG_ENTRY_MAGIC;

struct dump {
    const struct dump_options *o;
    uint64_t records, damaged;
    char first_damage[256];
};

static int parse_zxid(const char *text, size_t len, uint64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 0);
    if (errno || *end != '\0' || buf[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int dump_parse_range(const char *text, struct dump_options *o)
{
    const char *colon = strchr(text, ':');
    if (!colon)
        return -1;
    o->from_zxid = 0;
    o->to_zxid = UINT64_MAX;
    if (colon > text && parse_zxid(text, (size_t)(colon - text), &o->from_zxid) != 0)
        return -1;
    if (colon[1] && parse_zxid(colon + 1, strlen(colon + 1), &o->to_zxid) != 0)
        return -1;
    return o->from_zxid <= o->to_zxid ? 0 : -1;
}

static bool under(const char *path, const char *prefix)
{
    if (!prefix)
        return true;
    size_t n = strlen(prefix);
    if (n > 1 && prefix[n - 1] == '/')
        n--;
    if (n == 1 && prefix[0] == '/')
        return path && path[0] == '/';
    return path && strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void utc_time(int64_t ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm)) {
        snprintf(out, cap, "-");
        return;
    }
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

static void damaged(struct dump *d, const struct store_record *r, const char *what)
{
    d->damaged++;
    if (d->damaged == 1)
        snprintf(d->first_damage, sizeof d->first_damage, "the %s at zxid=0x%" PRIx64 " %s", what,
                 r->zxid, r->problem);
}

static void print_snapshot(struct dump *d, const struct store_record *r)
{
    if (r->state != STORE_RECORD_INTACT) {
        printf("snapshot zxid=0x%" PRIx64 " %s: %s\n", r->zxid,
               r->state == STORE_RECORD_INCOMPLETE ? "INCOMPLETE" : "CORRUPT", r->problem);
        if (r->state == STORE_RECORD_CORRUPT)
            damaged(d, r, "snapshot");
        return;
    }
    struct tree *t = tree_new();
    int rc = t ? tree_deserialize(t, r->data ? r->data : "", r->len) : ZN_NOMEMORY;
    /* A snapshot in its own file names it; one still in LMDB (migrated when
     * a znoded opens the store) its chunks. */
    char where[4200];
    if (r->file)
        snprintf(where, sizeof where, "file=%s", r->file);
    else
        snprintf(where, sizeof where, "chunks=%u", r->chunks);
    if (rc == 0)
        printf("snapshot zxid=0x%" PRIx64 " bytes=%zu %s nodes=%zu data_bytes=%zu\n", r->zxid,
               r->len, where, tree_node_count(t), tree_data_bytes(t));
    else
        printf("snapshot zxid=0x%" PRIx64 " bytes=%zu %s (intact, but this znoded cannot "
               "load it: %s)\n", r->zxid, r->len, where, zn_strerror(rc));
    tree_free(t);
}

/* The path a txn op names, for the line and the filter. */
static const char *op_path(const struct txn_op *op)
{
    return op->type == ZN_OP_CLOSESESSION || op->type == ZN_OP_CREATESESSION ||
                   op->type == ZN_OP_ERROR
               ? NULL
               : op->path;
}

static void print_log(struct dump *d, const struct store_record *r)
{
    if (r->state == STORE_RECORD_INCOMPLETE) { /* a torn tail, dropped by recovery */
        printf("log zxid=0x%" PRIx64 " INCOMPLETE: %s\n", r->zxid, r->problem);
        return;
    }
    if (r->state != STORE_RECORD_INTACT) {
        printf("log zxid=0x%" PRIx64 " CORRUPT: %s (size=%zu)\n", r->zxid, r->problem, r->len);
        damaged(d, r, "log record");
        return;
    }
    if (r->len > sizeof DUMP_CONFIG_MAGIC &&
        memcmp(r->data, DUMP_CONFIG_MAGIC, sizeof DUMP_CONFIG_MAGIC) == 0) {
        if (!d->o->path)
            printf("log zxid=0x%" PRIx64 " type=reconfig size=%zu\n", r->zxid, r->len);
        return;
    }
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct jute_reader rd;
    jute_reader_init(&rd, r->data, r->len, &arena);
    struct txn t;
    if (txn_decode(&rd, &t) != 0) {
        if (!d->o->path)
            printf("log zxid=0x%" PRIx64 " type=? size=%zu (intact, but not a transaction this "
                   "znoded reads)\n", r->zxid, r->len);
        zn_arena_free(&arena);
        return;
    }
    const char *path = t.hdr.type == ZN_OP_MULTI ? (t.op_count > 0 ? op_path(&t.ops[0]) : NULL)
                                                 : op_path(&t.op);
    bool wanted = under(path, d->o->path);
    for (int32_t i = 1; t.hdr.type == ZN_OP_MULTI && i < t.op_count && !wanted; i++)
        wanted = under(op_path(&t.ops[i]), d->o->path);
    if (wanted) {
        char when[40];
        utc_time(t.hdr.time_ms, when, sizeof when);
        printf("log zxid=0x%" PRIx64 " time=%s session=0x%" PRIx64 " type=%s path=%s size=%zu",
               r->zxid, when, (uint64_t)t.hdr.session_id, zn_op_name(t.hdr.type),
               path ? path : "-", r->len);
        if (t.hdr.type == ZN_OP_MULTI)
            printf(" ops=%d", (int)t.op_count);
        printf("\n");
    }
    zn_arena_free(&arena);
}

static int on_record(void *ctx, const struct store_record *r)
{
    struct dump *d = ctx;
    d->records++;
    switch (r->kind) {
    case STORE_RECORD_META:
        if (r->state != STORE_RECORD_INTACT) {
            printf("meta %s CORRUPT: %s\n", r->name, r->problem);
            d->damaged++;
            if (d->damaged == 1)
                snprintf(d->first_damage, sizeof d->first_damage, "the metadata record %s %s",
                         r->name, r->problem);
        } else if (!d->o->path && d->o->from_zxid == 0 && d->o->to_zxid == UINT64_MAX) {
            /* store-wide, at no zxid: shown when nothing is filtered */
            printf("meta %s=%" PRIu64 "\n", r->name, r->value);
        }
        break;
    case STORE_RECORD_SNAPSHOT:
        print_snapshot(d, r);
        break;
    case STORE_RECORD_LOG:
        print_log(d, r);
        break;
    }
    return 0;
}

/* ---- a ZooKeeper data directory (zkdata.h) ---- */

struct zk_dump {
    struct dump *d;
    uint64_t sessions, nodes, acls, entries;
    int64_t first_zxid, last_zxid;
};

static int zk_session(void *ctx, int64_t id, int32_t timeout_ms)
{
    (void)id;
    (void)timeout_ms;
    ((struct zk_dump *)ctx)->sessions++;
    return 0;
}

static int zk_acl(void *ctx, int64_t index, const struct zn_acl_vec *acl)
{
    (void)index;
    (void)acl;
    ((struct zk_dump *)ctx)->acls++;
    return 0;
}

static int zk_node(void *ctx, const char *path, struct jute_buf data, int64_t acl_index,
                   const struct zkdata_stat *stat)
{
    struct zk_dump *z = ctx;
    (void)acl_index;
    z->nodes++;
    if (z->d->o->path && under(path, z->d->o->path))
        printf("node path=%s czxid=0x%" PRIx64 " mzxid=0x%" PRIx64 " version=%d cversion=%d "
               "aversion=%d ephemeralOwner=0x%" PRIx64 " size=%d\n", path, (uint64_t)stat->czxid,
               (uint64_t)stat->mzxid, (int)stat->version, (int)stat->cversion,
               (int)stat->aversion, (uint64_t)stat->ephemeral_owner, data.len < 0 ? 0 : data.len);
    return 0;
}

/* The path a ZooKeeper transaction record starts with, for the types whose
 * record does (CreateTxn, DeleteTxn, SetDataTxn, SetACLTxn, CheckVersionTxn,
 * CreateTTLTxn: the ZN_OPF_TXN_PATH opcodes); NULL for the others. */
static const char *zk_record_path(int32_t type, const uint8_t *record, size_t len,
                                  struct zn_arena *arena)
{
    /* ZooKeeper logs a deleteContainer as a DeleteTxn too. */
    if (!(zn_op_flags(type) & ZN_OPF_TXN_PATH) && type != ZN_OP_DELETECONTAINER)
        return NULL;
    struct jute_reader r;
    jute_reader_init(&r, record, len, arena);
    char *path = NULL;
    jute_read_string(&r, &path);
    return r.error ? NULL : path;
}

static int zk_txn(void *ctx, int64_t session, int32_t cxid, int64_t zxid, int64_t time_ms,
                  int32_t type, const uint8_t *record, size_t record_len)
{
    struct zk_dump *z = ctx;
    (void)cxid;
    z->entries++;
    if (z->first_zxid == 0)
        z->first_zxid = zxid;
    z->last_zxid = zxid;
    if ((uint64_t)zxid < z->d->o->from_zxid || (uint64_t)zxid > z->d->o->to_zxid)
        return 0;
    struct zn_arena arena;
    zn_arena_init(&arena);
    const char *path = zk_record_path(type, record, record_len, &arena);
    if (under(path, z->d->o->path)) {
        char when[40];
        utc_time(time_ms, when, sizeof when);
        printf("log zxid=0x%" PRIx64 " time=%s session=0x%" PRIx64 " type=%s path=%s size=%zu\n",
               (uint64_t)zxid, when, (uint64_t)session, zn_op_name(type), path ? path : "-",
               record_len);
    }
    zn_arena_free(&arena);
    return 0;
}

/* Prints the snapshots and logs of a ZooKeeper data directory's version-2. */
static int dump_zookeeper(struct dump *d, const char *dir)
{
    static struct zkdata_file files[ZKDATA_MAX_FILES];
    long listed = zkdata_list(dir, files, ZKDATA_MAX_FILES);
    if (listed < 0) {
        fprintf(stderr, "znoded: --dump: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    size_t count = (size_t)listed;
    size_t last_log = count;
    for (size_t i = 0; i < count; i++)
        if (!files[i].snapshot)
            last_log = i;
    for (size_t i = 0; i < count; i++) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        struct zk_dump z = {.d = d};
        struct zkdata_visitor v = {zk_session, zk_acl, zk_node, zk_txn, &z};
        struct zkdata_error err = {{0}};
        int rc;
        d->records++;
        if (files[i].snapshot) {
            int64_t digest_zxid;
            rc = zkdata_read_snapshot(path, &v, &digest_zxid, &err);
            if (rc == 0)
                printf("zookeeper snapshot file=%s zxid=0x%" PRIx64 " sessions=%" PRIu64
                       " acls=%" PRIu64 " nodes=%" PRIu64 "\n", files[i].name, files[i].zxid,
                       z.sessions, z.acls, z.nodes);
        } else {
            bool torn;
            rc = zkdata_read_log(path, i == last_log, &v, &torn, &err);
            if (rc == 0)
                printf("zookeeper log file=%s entries=%" PRIu64 " first=0x%" PRIx64
                       " last=0x%" PRIx64 "%s\n", files[i].name, z.entries,
                       (uint64_t)z.first_zxid, (uint64_t)z.last_zxid,
                       torn ? " (its last entry is cut short: read as the end, as ZooKeeper does)" : "");
        }
        if (rc == ZN_CORRUPT || rc == ZKDATA_CUT_SHORT) {
            printf("zookeeper %s CORRUPT: %s\n", files[i].name, err.what);
            if (++d->damaged == 1)
                snprintf(d->first_damage, sizeof d->first_damage, "%s", err.what);
        } else if (rc != 0) {
            fprintf(stderr, "znoded: --dump: %s\n", err.what[0] ? err.what : zn_strerror(rc));
            return 2;
        }
    }
    fflush(stdout);
    if (d->damaged > 0) {
        fprintf(stderr, "znoded: --dump: %s: %" PRIu64 " damaged file%s of %" PRIu64
                "; the first: %s\n", dir, d->damaged, d->damaged == 1 ? "" : "s", d->records,
                d->first_damage);
        return 1;
    }
    return 0;
}

/* The store's directory: target itself, or the dataLogDir of the zoo.cfg it
 * names; and where its snapshot files are: the same directory, or dataDir. */
static int store_dir(const char *target, char *out, size_t cap, char *snap_out)
{
    struct stat st;
    if (stat(target, &st) != 0) {
        fprintf(stderr, "znoded: --dump: %s: %s\n", target, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s", target);
        snprintf(snap_out, cap, "%s", target);
        return 0;
    }
    static struct config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (config_load(&cfg, target, err, sizeof err) != 0) {
        fprintf(stderr, "znoded: --dump: %s\n", err);
        return -1;
    }
    snprintf(out, cap, "%s", cfg.data_log_dir);
    snprintf(snap_out, cap, "%s", cfg.data_dir);
    return 0;
}

int dump_run(const struct dump_options *o)
{
    char dir[PATH_MAX], snap_dir[PATH_MAX];
    if (store_dir(o->target, dir, sizeof dir, snap_dir) != 0)
        return 2;
    struct dump d = {.o = o};
    char zk_dir[PATH_MAX + 16];
    struct stat st;
    snprintf(zk_dir, sizeof zk_dir, "%s/version-2", dir);
    if (stat(zk_dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dump_zookeeper(&d, zk_dir); /* Apache ZooKeeper's data directory */
    int rc = store_inspect_dirs(dir, snap_dir, o->from_zxid, o->to_zxid, true, on_record, &d);
    fflush(stdout);
    if (rc == ZN_NONODE) {
        fprintf(stderr, "znoded: --dump: %s holds no store (no data.mdb)\n", dir);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "znoded: --dump: %s cannot be read: %s (see the log line above)\n", dir,
                zn_strerror(rc));
        return 2;
    }
    if (d.damaged > 0) {
        fprintf(stderr, "znoded: --dump: %s: %" PRIu64 " damaged record%s of %" PRIu64
                " checked; the first: %s\n", dir, d.damaged, d.damaged == 1 ? "" : "s", d.records,
                d.first_damage);
        return 1;
    }
    return 0;
}
