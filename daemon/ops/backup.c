/*
 * backup: the snapshot command's worker (backup.h).
 *
 * On a pool thread: a temporary directory in dataLogDir (the same file
 * system as the store, so the copy has room where the store had), a
 * consistent copy of the store's files into it (store_copy: one read
 * transaction, writers go on), then a read-only walk of the copy
 * (store_inspect) that checks every record and finds the last zxid it
 * holds, then the copy packed into the backup's payload (store_backup_pack)
 * and removed.  Back on the loop:
 * the backup's zxid is the lower of that and the zxid this member has
 * applied now (everything applied is committed; an ensemble member's log
 * may hold proposals above it, which a restore truncates), and the file is
 * streamed from its descriptor after its directory is removed, so nothing
 * is left behind whatever the client does.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "store_backup.h"
#include "store_inspect.h"
#include "tree.h"
#include "znode/errors.h"

struct backup {
    uv_work_t work;
    struct server *srv;
    struct httpd *httpd;
    uint64_t ticket;
    struct backup **slot;
    char dir[PATH_MAX];          /* the temporary directory, "" once removed */
    int fd;                      /* the copy, open for reading */
    int status;                  /* the worker's result */
    char problem[PATH_MAX + 256]; /* what went wrong, for the answer */
    uint64_t last_zxid;          /* the highest zxid in the copy */
    uint64_t bytes;
    pthread_mutex_t mutex;
    pthread_cond_t done_cond;
    bool worker_done;
    bool abandoned;
};

static int on_copied_record(void *ctx, const struct store_record *r)
{
    struct backup *b = ctx;
    if (r->state == STORE_RECORD_CORRUPT) {
        snprintf(b->problem, sizeof b->problem, "the copy holds a damaged record at zxid=0x%" PRIx64
                 ": %s; check this member's store with znoded --dump", r->zxid, r->problem);
        return ZN_CORRUPT;
    }
    if (r->kind != STORE_RECORD_META && r->state == STORE_RECORD_INTACT && r->zxid > b->last_zxid)
        b->last_zxid = r->zxid;
    return 0;
}

static void remove_dir(struct backup *b)
{
    if (!b->dir[0])
        return;
    store_backup_remove_tree(b->dir, NULL, 1);
    b->dir[0] = '\0';
}

/* The store copied into dir/copy, read back, and packed into dir/payload
 * (the backup's payload, left open in b->fd); the copy is removed. */
static int copy_and_check(struct backup *b)
{
    if (snprintf(b->dir, sizeof b->dir, "%s/.backup-XXXXXX", b->srv->cfg.data_log_dir) >=
            (int)sizeof b->dir ||
        !mkdtemp(b->dir)) {
        snprintf(b->problem, sizeof b->problem, "cannot make a directory for the copy in %s: %s",
                 b->srv->cfg.data_log_dir, strerror(errno));
        b->dir[0] = '\0';
        return ZN_IO;
    }
    char copy[PATH_MAX + 16], payload[PATH_MAX + 16];
    snprintf(copy, sizeof copy, "%s/copy", b->dir);
    snprintf(payload, sizeof payload, "%s/payload", b->dir);
    if (mkdir(copy, 0700) != 0) {
        snprintf(b->problem, sizeof b->problem, "cannot create %s: %s", copy, strerror(errno));
        return ZN_IO;
    }
    int rc = store_copy(b->srv->store, copy);
    if (rc) {
        snprintf(b->problem, sizeof b->problem, "the copy failed (%s): see the server's log",
                 zn_strerror(rc));
        return rc;
    }
    rc = store_inspect(copy, 0, UINT64_MAX, false, on_copied_record, b);
    if (rc) {
        if (!b->problem[0])
            snprintf(b->problem, sizeof b->problem, "the copy cannot be read back: %s",
                     zn_strerror(rc));
        return rc;
    }
    b->fd = open(payload, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (b->fd < 0) {
        snprintf(b->problem, sizeof b->problem, "cannot create %s: %s", payload, strerror(errno));
        return ZN_IO;
    }
    rc = store_backup_pack(copy, b->fd, &b->bytes, b->problem, sizeof b->problem);
    store_backup_remove_tree(copy, NULL, 1);
    if (rc == 0 && lseek(b->fd, 0, SEEK_SET) != 0) {
        snprintf(b->problem, sizeof b->problem, "cannot read the copy: %s", strerror(errno));
        rc = ZN_IO;
    }
    return rc;
}

static void work(uv_work_t *req)
{
    struct backup *b = req->data;
    b->status = copy_and_check(b);
    pthread_mutex_lock(&b->mutex);
    b->worker_done = true;
    pthread_cond_signal(&b->done_cond);
    pthread_mutex_unlock(&b->mutex);
}

static void answer_error(struct backup *b, int status, const char *problem)
{
    struct json j = {0};
    json_begin_object(&j);
    admin_answer_end(&j, "snapshot", problem);
    httpd_finish(b->httpd, b->ticket, j.text.error ? 500 : status, "application/json", NULL,
                 j.text.data, j.text.error ? 0 : j.text.len, -1, 0);
    metrics_text_free(&j.text);
}

static void after_work(uv_work_t *req, int status)
{
    struct backup *b = req->data;
    if (!b->abandoned) {
        *b->slot = NULL;
        if (status != 0 || b->status != 0) {
            ZN_ERROR("admin: snapshot: %s", b->problem[0] ? b->problem : "cancelled");
            answer_error(b, 500, b->problem[0] ? b->problem : "cancelled");
        } else {
            uint64_t applied = (uint64_t)tree_last_zxid(b->srv->tree);
            uint64_t zxid = b->last_zxid < applied ? b->last_zxid : applied;
            unsigned char header[STORE_BACKUP_HEADER_BYTES];
            store_backup_header_encode(header, zxid, b->bytes);
            char headers[256];
            snprintf(headers, sizeof headers,
                     "last_zxid: 0x%" PRIx64 "\r\nContent-Disposition: attachment; "
                     "filename=\"znodefs-backup-0x%" PRIx64 "\"\r\n", zxid, zxid);
            ZN_INFO("admin: snapshot: streaming a backup zxid=0x%" PRIx64 " bytes=%" PRIu64, zxid,
                    b->bytes + sizeof header);
            remove_dir(b); /* the descriptor keeps the copy until it is sent */
            httpd_finish(b->httpd, b->ticket, 200, "application/octet-stream", headers, header,
                         sizeof header, b->fd, b->bytes);
            b->fd = -1; /* httpd's now */
        }
    }
    if (b->fd >= 0)
        close(b->fd);
    remove_dir(b);
    pthread_mutex_destroy(&b->mutex);
    pthread_cond_destroy(&b->done_cond);
    free(b);
}

int backup_start(struct server *srv, struct httpd *httpd, uint64_t ticket, struct backup **slot)
{
    if (*slot)
        return ZN_THROTTLEDOP;
    struct backup *b = calloc(1, sizeof *b);
    if (!b)
        return ZN_NOMEMORY;
    b->srv = srv;
    b->httpd = httpd;
    b->ticket = ticket;
    b->slot = slot;
    b->fd = -1;
    b->work.data = b;
    pthread_mutex_init(&b->mutex, NULL);
    pthread_cond_init(&b->done_cond, NULL);
    if (uv_queue_work(srv->loop, &b->work, work, after_work) != 0) {
        pthread_mutex_destroy(&b->mutex);
        pthread_cond_destroy(&b->done_cond);
        free(b);
        return ZN_IO;
    }
    *slot = b;
    return 0;
}

void backup_abandon(struct backup *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mutex);
    while (!b->worker_done && uv_cancel((uv_req_t *)&b->work) != 0)
        pthread_cond_wait(&b->done_cond, &b->mutex);
    b->abandoned = true;
    pthread_mutex_unlock(&b->mutex);
    *b->slot = NULL;
}
