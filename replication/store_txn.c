/*
 * store_txn: one LMDB write transaction of the writer thread, and what
 * comes with it: a test fault injected in place of a commit
 * (store_test_fail_batches), the fsync counter, the page unmapping that
 * keeps the member's RSS down, and telling a full disk from an I/O error.
 * The map is never grown: LMDB holds only snapshot records and metadata
 * since the log and the snapshots moved into files of their own, so nothing
 * can fill the default map (a full one is ZN_NOSPACE).
 *
 * Invariants: 3 and 4 of store_internal.h (only the writer thread writes;
 * the map is never resized).
 *
 * Called by: the writer's files (store_write_txn, store_classify_failure);
 * store_unmap_pages also by store_recover.c, while the writer is idle.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "store_internal.h"

/*
 * LMDB reads pages through its read-only map of data.mdb: appending to the
 * log touches the last leaf page on every commit, so over time nearly every
 * log page written was mapped into this process once, and stayed counted in
 * its RSS (100k znodes: ~24 MB of a member's ~80 MB) though nothing reads it
 * again until compaction.  Every STORE_UNMAP_EVERY_COMMITS commits, after a
 * snapshot and after recovery, the map's page table entries are dropped
 * (MADV_DONTNEED on a shared file mapping): the pages stay in the page cache,
 * no byte changes, and a page LMDB needs again is mapped back by a minor
 * fault.  Safe beside read transactions on the loop thread (a dropped page
 * faults back with the same bytes); the map is only resized on this thread.
 */
#define STORE_UNMAP_EVERY_COMMITS 256u

/* The address and length of this process's map of data.mdb (LMDB does not
 * tell it: MDB_envinfo.me_mapaddr is only set with MDB_FIXEDMAP), found in
 * /proc/self/maps by the file's inode.  Returns 0 when found. */
static int store_find_map(struct store *s, uintptr_t *start, uintptr_t *end)
{
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0)
        return -1;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return -1;
    char line[512];
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, offset, inode;
        char perms[8];
        unsigned dev_major, dev_minor;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &offset, &dev_major,
                   &dev_minor, &inode) == 7 &&
            inode == (unsigned long)st.st_ino && offset == 0 && perms[3] == 's') {
            *start = lo;
            *end = hi;
            found = 0;
        }
    }
    fclose(maps);
    return found;
}

void store_unmap_pages(struct store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    uintptr_t start, end;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return;
    if (store_find_map(s, &start, &end) == 0) {
        uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0) {
            used = (used + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
            if (used > end - start)
                used = end - start;
            (void)madvise((void *)start, (size_t)used, MADV_DONTNEED);
        }
    }
}

/*
 * Runs fn in a write transaction and commits it.  With injectable, a
 * pending test fault replaces the commit.  Returns an LMDB or errno code.
 */
int store_write_txn(struct store *s, store_txn_fn fn, void *arg, bool injectable)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    rc = fn(s, txn, arg);
    if (rc == 0 && injectable) {
        pthread_mutex_lock(&s->mutex);
        if (s->fail_batches) {
            s->fail_batches--;
            rc = s->fail_error;
        }
        pthread_mutex_unlock(&s->mutex);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)))
        return rc;
    pthread_mutex_lock(&s->mutex);
    s->stats.fsyncs++;
    pthread_mutex_unlock(&s->mutex);
    if (++s->commits_since_unmap >= STORE_UNMAP_EVERY_COMMITS) {
        s->commits_since_unmap = 0;
        store_unmap_pages(s);
    }
    return 0;
}

/*
 * LMDB turns a short pwrite into EIO ("TODO: Use which error code?"), which
 * is what a disk that fills up in the middle of a write produces.  Reports
 * ENOSPC instead when the file system has less room than the failed write
 * needed plus a margin, so the daemon sees "disk full", not "I/O error".
 */
#define STORE_NOSPACE_MARGIN_BYTES (1u << 20)

int store_classify_failure(struct store *s, int rc, uint64_t bytes_needed)
{
    if (rc != EIO)
        return rc;
    mdb_filehandle_t fd;
    struct statvfs fs;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &fs) != 0)
        return rc;
    uint64_t available = (uint64_t)fs.f_bavail * fs.f_frsize;
    return available < bytes_needed + STORE_NOSPACE_MARGIN_BYTES ? ENOSPC : rc;
}
