/*
 * restore: a backup file written into an empty data directory.  Each of its
 * files is written beside its final name, checked against its checksum,
 * fsynced and renamed into place (store_backup_unpack: a crash leaves no
 * half file that would look like a whole one), then the store is read back record by
 * record (store_inspect) before it is accepted; log entries above the
 * backup's zxid (proposals of an ensemble member not known committed when
 * the backup was taken) are truncated through the store itself; then the
 * snapshot files, which travel beside data.mdb, move into dataDir.  The
 * directories are emptied again on any failure.
 */
#include "restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "store.h"
#include "store_backup.h"
#include "store_inspect.h"
#include "store_snapfile.h"
#include "target_dir.h"
#include "znode/errors.h"

struct restored {
    uint64_t last_zxid, log_records, snapshots;
    char damage[256];
};

static int on_record(void *ctx, const struct store_record *r)
{
    struct restored *x = ctx;
    if (r->state == STORE_RECORD_CORRUPT) {
        snprintf(x->damage, sizeof x->damage, "its %s at zxid=0x%" PRIx64 " %s",
                 r->kind == STORE_RECORD_LOG ? "log record" : "snapshot", r->zxid, r->problem);
        return ZN_CORRUPT;
    }
    if (r->kind == STORE_RECORD_META || r->state != STORE_RECORD_INTACT)
        return 0;
    x->log_records += r->kind == STORE_RECORD_LOG;
    x->snapshots += r->kind == STORE_RECORD_SNAPSHOT;
    if (r->zxid > x->last_zxid)
        x->last_zxid = r->zxid;
    return 0;
}

static void on_durable(void *ctx, uint64_t last_zxid, int status)
{
    (void)ctx;
    (void)last_zxid;
    (void)status;
}

/* Drops the log entries above zxid through the store's own truncation. */
static int truncate_above(const char *dir, uint64_t zxid)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return ZN_IO;
    struct store *s;
    int rc = store_open(&s, &loop, dir, NULL, on_durable, NULL);
    if (rc == 0) {
        rc = store_recover(s, NULL, NULL, NULL);
        if (rc == 0)
            rc = store_truncate_after(s, zxid);
        store_close(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return rc;
}

int restore_run(const char *file, const char *config_path)
{
    static struct config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "znoded: --restore: %s\n", err);
        return 2;
    }
    const char *dir = cfg.data_log_dir;
    const char *what = "a backup is restored";
    if (target_dir_check_empty("--restore", what, cfg.data_dir, true) != 0 ||
        (strcmp(dir, cfg.data_dir) != 0 &&
         target_dir_check_empty("--restore", what, dir, false) != 0))
        return 1;
    int in = open(file, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "znoded: --restore: %s: %s\n", file, strerror(errno));
        return 1;
    }
    unsigned char header[STORE_BACKUP_HEADER_BYTES];
    uint64_t zxid, copy_bytes;
    uint32_t version;
    struct stat st;
    ssize_t got = read(in, header, sizeof header);
    if (got != (ssize_t)sizeof header ||
        store_backup_header_decode(header, &version, &zxid, &copy_bytes) != 0) {
        fprintf(stderr, "znoded: --restore: %s is not a znodefs backup (no backup header)\n", file);
        close(in);
        return 1;
    }
    if (fstat(in, &st) != 0 || (uint64_t)st.st_size != sizeof header + copy_bytes) {
        fprintf(stderr, "znoded: --restore: %s is %lld bytes, its header says %" PRIu64
                ": the backup is cut short or has bytes added\n", file, (long long)st.st_size,
                (uint64_t)sizeof header + copy_bytes);
        close(in);
        return 1;
    }
    char problem[PATH_MAX + 256] = "";
    int rc = store_backup_unpack(in, version, copy_bytes, dir, problem, sizeof problem);
    close(in);
    if (rc != 0) {
        fprintf(stderr, "znoded: --restore: %s cannot be restored: %s\n", file, problem);
        target_dir_remove_store(dir);
        return 1;
    }
    struct restored x = {0};
    rc = store_inspect(dir, 0, UINT64_MAX, false, on_record, &x);
    if (rc != 0) {
        fprintf(stderr, "znoded: --restore: %s cannot be restored: %s\n", file,
                x.damage[0] ? x.damage : zn_strerror(rc));
        target_dir_remove_store(dir);
        return 1;
    }
    if (x.last_zxid > zxid && (rc = truncate_above(dir, zxid)) != 0) {
        fprintf(stderr, "znoded: --restore: cannot drop the entries above zxid=0x%" PRIx64
                ": %s\n", zxid, zn_strerror(rc));
        target_dir_remove_store(dir);
        return 1;
    }
    /* A backup carries the snapshot files beside data.mdb; znoded keeps them
     * in dataDir, the LMDB store in dataLogDir. */
    if (strcmp(dir, cfg.data_dir) != 0 &&
        (rc = store_snapfile_transfer_all(dir, cfg.data_dir, false)) != 0) {
        fprintf(stderr, "znoded: --restore: cannot move the snapshot files from %s into %s: %s\n",
                dir, cfg.data_dir, strerror(-rc));
        target_dir_remove_store(dir);
        target_dir_remove_store(cfg.data_dir);
        return 1;
    }
    printf("znoded: restored %s into %s: zxid=0x%" PRIx64 " (%" PRIu64 " snapshot%s, %" PRIu64
           " log records)\n", file, dir, zxid, x.snapshots, x.snapshots == 1 ? "" : "s",
           x.log_records);
    return 0;
}
