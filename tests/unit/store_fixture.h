/*
 * The fixture shared by the LMDB store's unit tests (test_store_log.c,
 * test_store_snapshot.c, test_store_corrupt.c): a temporary directory and a
 * libuv loop per test, a store opened on them whose on_durable calls and
 * recovered snapshot and entries are recorded, and entries whose payload
 * follows from their zxid and a salt so a recovered one is checked without a
 * copy.  Invariant: teardown closes the store, proves the loop has nothing
 * left and removes the directory.
 */
#ifndef ZN_TEST_STORE_FIXTURE_H
#define ZN_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <uv.h>

#include "store.h"

#define WAIT_DEADLINE_MS 60000

struct durable_call {
    uint64_t zxid;
    int status;
};

struct recovered_entry {
    uint64_t zxid;
    size_t len;
    unsigned char *data;
};

struct fixture {
    uv_loop_t loop;
    struct store *s;
    char dir[64];
    struct store_options opts;
    /* on_durable calls, in order */
    struct durable_call *calls;
    size_t ncalls, calls_capacity;
    /* what store_recover handed over */
    bool have_snapshot;
    uint64_t snapshot_zxid;
    unsigned char *snapshot;
    size_t snapshot_len;
    struct recovered_entry *entries;
    size_t nentries, entries_capacity;
    /* optional hook run inside on_durable */
    void (*after_durable)(struct fixture *f, uint64_t zxid, int status);
    uint64_t next_zxid;
    uint64_t target_zxid;
};

uint64_t now_ms(void);
size_t payload_len(uint64_t zxid);
void payload_fill(unsigned char *out, size_t len, uint64_t zxid, unsigned salt);
/* The store's callbacks, recording into the fixture (ctx). */
void on_durable(void *ctx, uint64_t zxid, int status);
int on_snapshot(void *ctx, uint64_t zxid, const void *data, size_t len);
int on_entry(void *ctx, uint64_t zxid, const void *data, size_t len);
void forget_recovered(struct fixture *f);
/* nftw callback removing one file or (FTW_DEPTH) directory. */
int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw);
int setup(void **state);
int teardown(void **state);
void fixture_open(struct fixture *f);
void fixture_close(struct fixture *f);
void fixture_reopen(struct fixture *f);
void wait_durable(struct fixture *f, uint64_t zxid);
void append_payload(struct fixture *f, uint64_t zxid, unsigned salt);
void assert_entry_is_payload(const struct recovered_entry *e, uint64_t zxid, unsigned salt);

/*
 * Opens and recovers the store in dir in a child process (1 MB segments, as
 * setup's), so that a crash (SIGBUS from a page past the end of a file) is
 * seen as a signal instead of killing the test, and the child's log is
 * captured (errors only) into log.  Returns how it ended: OPENED (opened and
 * recovered), OPEN_REFUSED or RECOVER_REFUSED (ZN_CORRUPT), OTHER_ERROR; a
 * signal fails the test.  *entries gets the number of entries recovered.
 */
enum child_outcome { OPENED = 10, OPEN_REFUSED, RECOVER_REFUSED, OTHER_ERROR };
int open_in_child(const char *dir, char *log, size_t log_size, uint64_t *entries);
int count_entry(void *ctx, uint64_t zxid, const void *data, size_t len);
/* The refusal is one line that names dir/name (name: the file and the start
 * of what follows it, e.g. "data.mdb is damaged: "), says what is wrong
 * (what) and what the operator does. */
void assert_one_clear_refusal_of(const char *dir, const char *name, const char *log, const char *what);

#endif
