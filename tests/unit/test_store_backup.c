/*
 * Unit tests of the backup file's payload (replication/store_backup.h): a
 * running store's copy packed and unpacked into a store that recovers the
 * same entries; files in subdirectories; every kind of damage refused with
 * ZN_CORRUPT (a flipped byte, a cut, a name that climbs out, a file twice);
 * a version 1 payload (a bare data.mdb) still unpacked; the removal of what
 * a failed restore left.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "crc32c.h"
#include "store.h"
#include "store_backup.h"
#include "store_fixture.h"
#include "store_internal.h"
#include "znode/errors.h"

#define ENTRIES 300

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static char *read_text(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    static char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void make_dir(char *out, size_t len, const char *base, const char *name)
{
    assert_true(snprintf(out, len, "%s/%s", base, name) < (int)len);
    assert_int_equal(mkdir(out, 0700), 0);
}

/* A payload file in f's directory, packed from src. */
static int pack_into(struct fixture *f, const char *src, uint64_t *bytes)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/payload", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    char problem[512] = "";
    assert_int_equal(store_backup_pack(src, fd, bytes, problem, sizeof problem), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static int unpack_from(int fd, uint32_t version, uint64_t bytes, const char *dir, char *problem,
                       size_t problem_len)
{
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return store_backup_unpack(fd, version, bytes, dir, problem, problem_len);
}

static void a_running_store_copied_packed_and_unpacked_recovers_every_entry(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    for (uint64_t z = 1; z <= ENTRIES; z++)
        append_payload(f, z, 7);
    wait_durable(f, ENTRIES);
    char copy[PATH_MAX], out[PATH_MAX];
    make_dir(copy, sizeof copy, f->dir, "copy");
    make_dir(out, sizeof out, f->dir, "out");
    assert_int_equal(store_copy(f->s, copy), 0);
    uint64_t bytes = 0;
    int fd = pack_into(f, copy, &bytes);
    char problem[512] = "";
    assert_int_equal(unpack_from(fd, STORE_BACKUP_VERSION, bytes, out, problem, sizeof problem), 0);
    close(fd);

    /* The unpacked store recovers exactly what was durable. */
    struct fixture g = {0};
    assert_int_equal(uv_loop_init(&g.loop), 0);
    assert_int_equal(store_open(&g.s, &g.loop, out, NULL, on_durable, &g), 0);
    assert_int_equal(store_recover(g.s, on_snapshot, on_entry, &g), 0);
    assert_int_equal(g.nentries, ENTRIES);
    for (size_t i = 0; i < g.nentries; i++)
        assert_entry_is_payload(&g.entries[i], i + 1, 7);
    store_close(g.s);
    assert_int_equal(uv_run(&g.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&g.loop), 0);
    forget_recovered(&g);
    free(g.entries);
    free(g.calls);
}

static void files_in_subdirectories_travel_with_their_names_and_bytes(void **state)
{
    struct fixture *f = *state;
    char src[PATH_MAX], sub[PATH_MAX], out[PATH_MAX];
    make_dir(src, sizeof src, f->dir, "src");
    make_dir(sub, sizeof sub, src, "snapshots");
    make_dir(out, sizeof out, f->dir, "out");
    write_file(src, "b", "second");
    write_file(src, "a.log", "first");
    write_file(sub, "snapshot.1f", "deep");
    write_file(src, "empty", "");
    uint64_t bytes = 0;
    int fd = pack_into(f, src, &bytes);
    char problem[512] = "";
    assert_int_equal(unpack_from(fd, 2, bytes, out, problem, sizeof problem), 0);
    close(fd);
    assert_string_equal(read_text(out, "a.log"), "first");
    assert_string_equal(read_text(out, "b"), "second");
    assert_string_equal(read_text(out, "snapshots/snapshot.1f"), "deep");
    assert_string_equal(read_text(out, "empty"), "");
    assert_null(read_text(out, "a.log.restoring"));
}

/* Packs one small file and returns the payload's bytes in *buf. */
static size_t one_file_payload(struct fixture *f, unsigned char *buf, size_t cap)
{
    char src[PATH_MAX];
    make_dir(src, sizeof src, f->dir, "one");
    write_file(src, "data.mdb", "0123456789abcdef");
    uint64_t bytes = 0;
    int fd = pack_into(f, src, &bytes);
    assert_true(bytes <= cap);
    assert_int_equal(read(fd, buf, (size_t)bytes), (ssize_t)bytes);
    close(fd);
    return (size_t)bytes;
}

static int unpack_bytes(struct fixture *f, const unsigned char *buf, size_t len, char *problem,
                        size_t problem_len)
{
    char path[PATH_MAX], out[PATH_MAX];
    snprintf(path, sizeof path, "%s/crafted", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    snprintf(out, sizeof out, "%s/crafted-out", f->dir);
    assert_int_equal(store_backup_remove_tree(out, NULL, 1), 0);
    assert_int_equal(mkdir(out, 0700), 0);
    int rc = unpack_from(fd, 2, len, out, problem, problem_len);
    close(fd);
    return rc;
}

/* Rewrites the file header's CRC after a crafted change of its fields. */
static void reseal(unsigned char *h)
{
    uint32_t name_len = store_get_be32(h + 4);
    store_put_be32(h + 20, crc32c_extend(crc32c(h, 20), h + 24, name_len));
}

static void damage_anywhere_is_refused_as_corrupt(void **state)
{
    struct fixture *f = *state;
    unsigned char good[256], buf[512];
    size_t len = one_file_payload(f, good, sizeof good);
    char problem[512];

    /* Every single flipped byte: header, name or data. */
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, good, len);
        buf[i] ^= 0x01;
        problem[0] = '\0';
        assert_int_equal(unpack_bytes(f, buf, len, problem, sizeof problem), ZN_CORRUPT);
        assert_true(problem[0] != '\0');
    }
    /* Cut anywhere. */
    for (size_t cut = 1; cut < len; cut++)
        assert_int_equal(unpack_bytes(f, good, cut, problem, sizeof problem), ZN_CORRUPT);
    /* The same file twice. */
    memcpy(buf, good, len);
    memcpy(buf + len, good, len);
    assert_int_equal(unpack_bytes(f, buf, 2 * len, problem, sizeof problem), ZN_CORRUPT);
    assert_non_null(strstr(problem, "out of order or twice"));
    /* The untouched payload unpacks. */
    assert_int_equal(unpack_bytes(f, good, len, problem, sizeof problem), 0);
}

static void names_that_leave_the_directory_are_refused(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"../x", "/etc/x", "a//b", "a/./b", "a/../b", "a/", ".", "sp ace"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char buf[128] = {0};
        size_t n = strlen(bad[i]);
        memcpy(buf, "ZNBF", 4);
        store_put_be32(buf + 4, (uint32_t)n);
        store_put_be64(buf + 8, 1);
        store_put_be32(buf + 16, crc32c("x", 1));
        memcpy(buf + 24, bad[i], n);
        buf[24 + n] = 'x';
        reseal(buf);
        char problem[512] = "";
        assert_int_equal(unpack_bytes(f, buf, 24 + n + 1, problem, sizeof problem), ZN_CORRUPT);
        assert_non_null(strstr(problem, "not a name a store holds"));
    }
}

static void a_version_1_payload_is_the_store_file(void **state)
{
    struct fixture *f = *state;
    char src[PATH_MAX], out[PATH_MAX], path[PATH_MAX + 64];
    make_dir(src, sizeof src, f->dir, "v1");
    make_dir(out, sizeof out, f->dir, "v1-out");
    write_file(src, "raw", "an LMDB file, as version 1 carried it");
    snprintf(path, sizeof path, "%s/raw", src);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    char problem[512] = "";
    assert_int_equal(store_backup_unpack(fd, 1, 37, out, problem, sizeof problem), 0);
    close(fd);
    assert_string_equal(read_text(out, "data.mdb"), "an LMDB file, as version 1 carried it");

    /* And the header of version 1 still decodes, with its version. */
    unsigned char h[STORE_BACKUP_HEADER_BYTES];
    store_backup_header_encode(h, 0x500000001ull, 37);
    uint32_t version = 0;
    uint64_t zxid = 0, bytes = 0;
    assert_int_equal(store_backup_header_decode(h, &version, &zxid, &bytes), 0);
    assert_int_equal(version, STORE_BACKUP_VERSION);
    store_put_be32(h + 8, 1);
    store_put_be32(h + 12, crc32c_extend(crc32c(h, 12), h + 16, STORE_BACKUP_HEADER_BYTES - 16));
    assert_int_equal(store_backup_header_decode(h, &version, &zxid, &bytes), 0);
    assert_int_equal(version, 1);
    assert_int_equal(zxid, 0x500000001ull);
    assert_int_equal(bytes, 37);
    store_put_be32(h + 8, 3);
    store_put_be32(h + 12, crc32c_extend(crc32c(h, 12), h + 16, STORE_BACKUP_HEADER_BYTES - 16));
    assert_int_equal(store_backup_header_decode(h, &version, &zxid, &bytes), ZN_CORRUPT);
}

static void removal_keeps_only_what_it_is_told_to(void **state)
{
    struct fixture *f = *state;
    char dir[PATH_MAX], sub[PATH_MAX], path[PATH_MAX + 64];
    make_dir(dir, sizeof dir, f->dir, "target");
    make_dir(sub, sizeof sub, dir, "snapshots");
    write_file(dir, "myid", "3\n");
    write_file(dir, "data.mdb", "x");
    write_file(sub, "snapshot.1", "y");
    snprintf(path, sizeof path, "%s/link", dir);
    assert_int_equal(symlink(f->dir, path), 0); /* removed, never followed */
    assert_int_equal(store_backup_remove_tree(dir, "myid", 0), 0);
    assert_string_equal(read_text(dir, "myid"), "3\n");
    assert_null(read_text(dir, "data.mdb"));
    struct stat st;
    assert_int_equal(lstat(sub, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(store_backup_remove_tree(dir, NULL, 1), 0);
    assert_int_equal(lstat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(a_running_store_copied_packed_and_unpacked_recovers_every_entry),
        T(files_in_subdirectories_travel_with_their_names_and_bytes),
        T(damage_anywhere_is_refused_as_corrupt),
        T(names_that_leave_the_directory_are_refused),
        T(a_version_1_payload_is_the_store_file),
        T(removal_keeps_only_what_it_is_told_to),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
