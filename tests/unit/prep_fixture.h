/*
 * The harness shared by the unit tests that drive daemon/model/prep.c (test_prep.c,
 * test_prep_overlay.c, test_check.c): a tree and the prep stage over it, a zxid and a clock
 * that move forward with every request, and requests built the way a client
 * sends them.  Invariant: every txn applied goes through apply(), which tells
 * prep it was applied and checks the tree.
 */
#ifndef ZN_TEST_PREP_FIXTURE_H
#define ZN_TEST_PREP_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "prep.h"

#define SID 0x1000000000000001LL
#define OTHER_SID 0x1000000000000002LL

struct harness {
    struct tree *tree;
    struct prep *prep;
    struct zn_arena arena;
    int64_t zxid;
    int64_t now_ms;
    const struct zn_id *ids; /* the caller's identities (none by default) */
    size_t id_count;
};

int setup(void **state);
int teardown(void **state);
void apply(struct harness *h, const struct txn *t, struct zn_response *res);
/* Prepares without applying. */
int prepare(struct harness *h, int64_t sid, const struct zn_request *req, struct txn *out,
            struct zn_response *err);
/* Prepares and, on success, applies; returns prep's result.  *res gets the
 * reply either way. */
int write_op(struct harness *h, int64_t sid, const struct zn_request *req, struct zn_response *res);
struct zn_request create_req(const char *path, const char *data, int32_t flags);
struct zn_request path_req(int32_t type, const char *path, int32_t version);
void must_create(struct harness *h, int64_t sid, const char *path, int32_t flags);
void open_session(struct harness *h, int64_t sid);
struct zn_stat stat_of(struct harness *h, const char *path);

#endif
