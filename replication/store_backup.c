/*
 * store_backup: the consistent copy of a running store, the backup file's
 * header and its payload of files (store_backup.h).
 */
#include "store_backup.h"

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

#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "store_io.h"
#include "znode/errors.h"

static const char backup_magic[8] = {'Z', 'N', 'B', 'A', 'C', 'K', 'U', 'P'};
static const char file_magic[4] = {'Z', 'N', 'B', 'F'};

#define COPY_BUF_BYTES (1u << 16)

static uint32_t header_crc(const unsigned char *h)
{
    return crc32c_extend(crc32c(h, 12), h + 16, STORE_BACKUP_HEADER_BYTES - 16);
}

void store_backup_header_encode(unsigned char out[STORE_BACKUP_HEADER_BYTES], uint64_t zxid,
                                uint64_t payload_bytes)
{
    memcpy(out, backup_magic, sizeof backup_magic);
    store_put_be32(out + 8, STORE_BACKUP_VERSION);
    store_put_be64(out + 16, zxid);
    store_put_be64(out + 24, payload_bytes);
    store_put_be32(out + 12, header_crc(out));
}

int store_backup_header_decode(const unsigned char in[STORE_BACKUP_HEADER_BYTES],
                               uint32_t *version, uint64_t *zxid, uint64_t *payload_bytes)
{
    uint32_t v = store_get_be32(in + 8);
    if (memcmp(in, backup_magic, sizeof backup_magic) != 0 || v < 1 ||
        v > STORE_BACKUP_VERSION || store_get_be32(in + 12) != header_crc(in))
        return ZN_CORRUPT;
    *version = v;
    *zxid = store_get_be64(in + 16);
    *payload_bytes = store_get_be64(in + 24);
    return 0;
}

int store_copy(struct store *s, const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path)
        return ZN_BADARGUMENTS;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        ZN_ERROR("store: copying the store: cannot create %s: %s", path, strerror(errno));
        return ZN_IO;
    }
    /* The log's segments are opened (their durable length noted) before
     * LMDB is copied: a snapshot and compaction after that leave the copy
     * a newer snapshot with the log it had, never a snapshot missing the
     * log entries after it (store_wal.h: wal_copy_begin). */
    struct wal_copy log;
    int rc = wal_copy_begin(s->wal, &log);
    if (rc) {
        close(fd);
        return rc;
    }
    /* The snapshot files the copy's records name go beside data.mdb: those
     * there are now before the copy's transaction, any recorded since after
     * it (store_snapfiles_copy). */
    rc = store_snapfiles_copy(s, dir, false);
    if (rc) {
        close(fd);
        wal_copy_finish(s->wal, &log, NULL);
        return rc;
    }
    rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    int log_rc = wal_copy_finish(s->wal, &log, rc ? NULL : dir);
    if (rc)
        return store_error(rc, "copying the store");
    return log_rc ? log_rc : store_snapfiles_copy(s, dir, true);
}

/* ---- names ---- */

static bool name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* A relative name the format carries: see store_backup.h. */
static bool name_ok(const char *name, size_t len)
{
    if (len == 0 || len > STORE_BACKUP_NAME_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/') {
            if (!name_char_ok((unsigned char)name[i]))
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || (n == 1 && name[start] == '.') ||
            (n == 2 && name[start] == '.' && name[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

/* ---- pack ---- */

struct names {
    char **v;
    size_t n, cap;
};

static int names_add(struct names *ns, const char *name)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (!v)
            return ZN_NOMEMORY;
        ns->v = v;
        ns->cap = cap;
    }
    if (!(ns->v[ns->n] = strdup(name)))
        return ZN_NOMEMORY;
    ns->n++;
    return 0;
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the regular files under root/rel (rel "" for root itself). */
static int collect(const char *root, const char *rel, struct names *ns, char *problem,
                   size_t problem_len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(problem, problem_len, "cannot read %s: %s", path, strerror(errno));
        return ZN_IO;
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof sub ||
            !name_ok(sub, strlen(sub))) {
            snprintf(problem, problem_len, "%s/%s: a name a backup cannot carry", path,
                     de->d_name);
            rc = ZN_BADARGUMENTS;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(problem, problem_len, "cannot stat %s/%s: %s", path, de->d_name,
                     strerror(errno));
            rc = ZN_IO;
        } else if (S_ISDIR(st.st_mode)) {
            rc = collect(root, sub, ns, problem, problem_len);
        } else if (S_ISREG(st.st_mode)) {
            rc = names_add(ns, sub);
        } else {
            snprintf(problem, problem_len, "%s/%s: neither a file nor a directory", path,
                     de->d_name);
            rc = ZN_BADARGUMENTS;
        }
    }
    closedir(d);
    return rc;
}

/* Appends one file at *off: its header (written last, with the CRC) and bytes. */
static int pack_file(const char *root, const char *name, int out_fd, uint64_t *off, char *buf,
                     char *problem, size_t problem_len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, name);
    int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0) {
        snprintf(problem, problem_len, "cannot read %s: %s", path, strerror(errno));
        if (in >= 0)
            close(in);
        return ZN_IO;
    }
    size_t name_len = strlen(name);
    uint64_t start = *off, pos = start + STORE_BACKUP_FILE_HEADER_BYTES + name_len;
    uint64_t left = (uint64_t)st.st_size;
    uint32_t crc = 0;
    int err = 0;
    while (left > 0 && err == 0) {
        ssize_t got = read(in, buf, left < COPY_BUF_BYTES ? (size_t)left : COPY_BUF_BYTES);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            err = got < 0 ? errno : EIO; /* shorter than it was: the copy changed */
            break;
        }
        crc = crc32c_extend(crc, buf, (size_t)got);
        err = store_pwrite_all(out_fd, buf, (size_t)got, pos);
        pos += (uint64_t)got;
        left -= (uint64_t)got;
    }
    close(in);
    unsigned char h[STORE_BACKUP_FILE_HEADER_BYTES];
    memcpy(h, file_magic, sizeof file_magic);
    store_put_be32(h + 4, (uint32_t)name_len);
    store_put_be64(h + 8, (uint64_t)st.st_size);
    store_put_be32(h + 16, crc);
    store_put_be32(h + 20, crc32c_extend(crc32c(h, 20), name, name_len));
    if (err == 0)
        err = store_pwrite_all(out_fd, h, sizeof h, start);
    if (err == 0)
        err = store_pwrite_all(out_fd, name, name_len, start + sizeof h);
    if (err) {
        snprintf(problem, problem_len, "cannot pack %s: %s", path, strerror(err));
        return ZN_IO;
    }
    *off = pos;
    return 0;
}

int store_backup_pack(const char *dir, int out_fd, uint64_t *bytes, char *problem,
                      size_t problem_len)
{
    struct names ns = {0};
    int rc = collect(dir, "", &ns, problem, problem_len);
    char *buf = rc == 0 ? malloc(COPY_BUF_BYTES) : NULL;
    if (rc == 0 && !buf)
        rc = ZN_NOMEMORY;
    if (rc == 0)
        qsort(ns.v, ns.n, sizeof *ns.v, name_cmp);
    uint64_t off = 0;
    for (size_t i = 0; rc == 0 && i < ns.n; i++)
        rc = pack_file(dir, ns.v[i], out_fd, &off, buf, problem, problem_len);
    free(buf);
    names_free(&ns);
    if (rc == ZN_NOMEMORY)
        snprintf(problem, problem_len, "out of memory");
    *bytes = off;
    return rc;
}

/* ---- unpack ---- */

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t got = read(fd, p, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

/* Opens (creating) the directory that holds name under dir; *base is the
 * last component.  Returns the directory's descriptor or -errno. */
static int open_parent(const char *dir, char *name, const char **base)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    char *p = name;
    for (char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        *slash = '\0';
        int made = mkdirat(dfd, p, 0755);
        int err = made != 0 && errno != EEXIST ? errno : 0;
        int sub = err ? -1 : openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (!err && sub < 0)
            err = errno;
        if (!err && made == 0)
            err = store_fsync_dirfd(dfd);
        *slash = '/';
        close(dfd);
        if (err) {
            if (sub >= 0)
                close(sub);
            return -err;
        }
        dfd = sub;
    }
    *base = p;
    return dfd;
}

/* Writes len bytes of in_fd as name under dir: a temporary name, checked
 * (crc, when check), fsynced and renamed into place.  Returns 0, ZN_CORRUPT
 * or ZN_IO with problem set. */
static int unpack_file(int in_fd, const char *dir, char *name, uint64_t len, bool check,
                       uint32_t want_crc, char *buf, char *problem, size_t problem_len)
{
    const char *base = NULL;
    int dfd = open_parent(dir, name, &base);
    if (dfd < 0) {
        snprintf(problem, problem_len, "cannot make the directory of %s in %s: %s", name, dir,
                 strerror(-dfd));
        return ZN_IO;
    }
    char tmp[NAME_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.restoring", base);
    int out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int err = out < 0 ? errno : 0, rc = 0;
    uint32_t crc = 0;
    for (uint64_t left = len; err == 0 && left > 0;) {
        size_t n = left < COPY_BUF_BYTES ? (size_t)left : COPY_BUF_BYTES;
        if (read_all(in_fd, buf, n) != 0) {
            snprintf(problem, problem_len, "the backup ends inside %s", name);
            rc = ZN_CORRUPT;
            break;
        }
        crc = crc32c_extend(crc, buf, n);
        err = store_pwrite_all(out, buf, n, len - left);
        left -= n;
    }
    if (rc == 0 && err == 0 && check && crc != want_crc) {
        snprintf(problem, problem_len, "%s does not match its checksum: the backup is damaged",
                 name);
        rc = ZN_CORRUPT;
    }
    if (rc == 0 && err == 0 && fsync(out) != 0)
        err = errno;
    if (out >= 0 && close(out) != 0 && rc == 0 && err == 0)
        err = errno;
    if (rc == 0 && err == 0 && renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) != 0)
        err = errno;
    if (rc == 0 && err == 0)
        err = store_fsync_dirfd(dfd);
    close(dfd);
    if (rc == 0 && err) {
        snprintf(problem, problem_len, "cannot write %s into %s: %s", name, dir, strerror(err));
        rc = ZN_IO;
    }
    return rc;
}

int store_backup_unpack(int in_fd, uint32_t version, uint64_t payload_bytes, const char *dir,
                        char *problem, size_t problem_len)
{
    char *buf = malloc(COPY_BUF_BYTES);
    if (!buf) {
        snprintf(problem, problem_len, "out of memory");
        return ZN_NOMEMORY;
    }
    int rc = 0;
    if (version == 1) {
        char name[] = "data.mdb";
        rc = unpack_file(in_fd, dir, name, payload_bytes, false, 0, buf, problem, problem_len);
        free(buf);
        return rc;
    }
    char prev[STORE_BACKUP_NAME_MAX + 1] = "";
    char name[STORE_BACKUP_NAME_MAX + 1];
    for (uint64_t left = payload_bytes; rc == 0 && left > 0;) {
        unsigned char h[STORE_BACKUP_FILE_HEADER_BYTES];
        uint32_t name_len = 0;
        uint64_t len = 0;
        if (left < sizeof h || read_all(in_fd, h, sizeof h) != 0 ||
            memcmp(h, file_magic, sizeof file_magic) != 0 ||
            (name_len = store_get_be32(h + 4)) == 0 || name_len > STORE_BACKUP_NAME_MAX ||
            left - sizeof h < name_len || read_all(in_fd, name, name_len) != 0 ||
            store_get_be32(h + 20) != crc32c_extend(crc32c(h, 20), name, name_len)) {
            snprintf(problem, problem_len, "no valid file header at payload offset %" PRIu64,
                     payload_bytes - left);
            rc = ZN_CORRUPT;
            break;
        }
        name[name_len] = '\0';
        left -= sizeof h + name_len;
        len = store_get_be64(h + 8);
        if (!name_ok(name, name_len) || strcmp(name, prev) <= 0 || len > left) {
            snprintf(problem, problem_len, "the file header at payload offset %" PRIu64
                     " names %s: %s", payload_bytes - left - sizeof h - name_len, name,
                     !name_ok(name, name_len) ? "not a name a store holds"
                     : len > left             ? "longer than what is left of the backup"
                                              : "out of order or twice");
            rc = ZN_CORRUPT;
            break;
        }
        memcpy(prev, name, name_len + 1);
        rc = unpack_file(in_fd, dir, name, len, true, store_get_be32(h + 16), buf, problem,
                         problem_len);
        left -= len;
    }
    free(buf);
    return rc;
}

/* ---- removal ---- */

static int remove_under(int dfd, const char *keep, bool *kept)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        return -err;
    }
    int first = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (keep && strcmp(de->d_name, keep) == 0) {
            *kept = true;
            continue;
        }
        struct stat st;
        int err = 0;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            err = errno;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            err = sub < 0 ? errno : -remove_under(sub, NULL, kept);
            if (err == 0 && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
                err = errno;
        } else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
            err = errno;
        }
        if (err && !first)
            first = -err;
    }
    closedir(d);
    return first;
}

int store_backup_remove_tree(const char *dir, const char *keep, int remove_dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : -errno;
    bool kept = false;
    int rc = remove_under(dfd, keep, &kept);
    if (rc == 0 && remove_dir && !kept && rmdir(dir) != 0)
        rc = -errno;
    return rc;
}
