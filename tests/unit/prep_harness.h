/*
 * The harness of the unit tests that drive daemon/prep.c (test_prep.c,
 * test_check.c): a tree, its prep overlay and an arena; writes prepared as a
 * caller would and applied as a member would, zxids and times counted up from
 * fixed values so that runs are alike.  Linked into those tests only
 * (tests/CMakeLists.txt); cmocka's headers come first in the including file.
 */
#ifndef ZN_TESTS_PREP_HARNESS_H
#define ZN_TESTS_PREP_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "prep.h"

struct harness {
    struct tree *tree;
    struct prep *prep;
    struct zn_arena arena;
    int64_t zxid;             /* the last zxid given out */
    int64_t now_ms;           /* the time of the last write */
    const struct zn_id *ids;  /* the caller's identities (none by default) */
    size_t id_count;
};

/* world:anyone, all permissions. */
extern const struct zn_acl_vec harness_open_acl;

/* cmocka setup and teardown: *state is a new harness, freed after the test. */
int harness_setup(void **state);
int harness_teardown(void **state);

/* Prepares req for session sid without applying it (next zxid, 10 ms later). */
int harness_prepare(struct harness *h, int64_t sid, const struct zn_request *req, struct txn *out,
                    struct zn_response *err);
/* Applies t to the tree and tells prep; fails the test if the tree refuses it
 * or its check fails after. */
void harness_apply(struct harness *h, const struct txn *t, struct zn_response *res);
/* Prepares and, on success, applies; returns prep's result.  *res (when not
 * NULL) gets the reply either way. */
int harness_write(struct harness *h, int64_t sid, const struct zn_request *req, struct zn_response *res);

/* A create2 of path with data (NULL: none) and flags, open ACL. */
struct zn_request harness_create_req(const char *path, const char *data, int32_t flags);
/* Creates path (data "d") or fails the test. */
void harness_must_create(struct harness *h, int64_t sid, const char *path, int32_t flags);
/* Opens session sid (timeout 30 s) through prep and the tree. */
void harness_open_session(struct harness *h, int64_t sid);

#endif
