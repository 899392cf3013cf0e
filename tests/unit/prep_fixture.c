/*
 * The harness prep_fixture.h declares, for daemon/model/prep.c's unit tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prep.h"
#include "prep_fixture.h"

static struct zn_acl world_all = {ZN_PERM_ALL, {"world", "anyone"}};
static const struct zn_acl_vec open_acl = {1, &world_all};

int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    h->tree = tree_new();
    h->prep = prep_new(h->tree);
    zn_arena_init(&h->arena);
    h->zxid = 0x100000000LL;
    h->now_ms = 1700000000000LL;
    *state = h;
    return 0;
}

int teardown(void **state)
{
    struct harness *h = *state;
    prep_free(h->prep);
    tree_free(h->tree);
    zn_arena_free(&h->arena);
    free(h);
    return 0;
}

void apply(struct harness *h, const struct txn *t, struct zn_response *res)
{
    int rc = tree_apply(h->tree, t, NULL, NULL, &h->arena, res);
    if (rc != 0)
        fail_msg("apply of zxid 0x%llx failed: %d", (long long)t->hdr.zxid, rc);
    prep_applied(h->prep, t->hdr.zxid);
    assert_int_equal(tree_check(h->tree), 0);
}

int prepare(struct harness *h, int64_t sid, const struct zn_request *req, struct txn *out,
            struct zn_response *err)
{
    h->now_ms += 10;
    struct prep_caller who = {sid, 1, h->ids, h->id_count};
    return prep_request(h->prep, &who, req, ++h->zxid, h->now_ms, &h->arena, out, err);
}

int write_op(struct harness *h, int64_t sid, const struct zn_request *req, struct zn_response *res)
{
    struct txn t;
    struct zn_response local;
    if (res == NULL)
        res = &local;
    int rc = prepare(h, sid, req, &t, res);
    if (rc == 0)
        apply(h, &t, res);
    return rc;
}

struct zn_request create_req(const char *path, const char *data, int32_t flags)
{
    struct zn_request r;
    memset(&r, 0, sizeof(r));
    r.type = ZN_OP_CREATE2;
    r.path = (char *)path;
    r.data = data ? (struct jute_buf){(const uint8_t *)data, (int32_t)strlen(data)} : (struct jute_buf){NULL, -1};
    r.acl = open_acl;
    r.flags = flags;
    return r;
}

struct zn_request path_req(int32_t type, const char *path, int32_t version)
{
    struct zn_request r;
    memset(&r, 0, sizeof(r));
    r.type = type;
    r.path = (char *)path;
    r.version = version;
    r.data = (struct jute_buf){NULL, -1};
    r.acl = open_acl;
    return r;
}

void must_create(struct harness *h, int64_t sid, const char *path, int32_t flags)
{
    struct zn_request r = create_req(path, "d", flags);
    int rc = write_op(h, sid, &r, NULL);
    if (rc != 0)
        fail_msg("create %s failed: %d", path, rc);
}

void open_session(struct harness *h, int64_t sid)
{
    struct txn t;
    assert_int_equal(prep_create_session(h->prep, sid, 30000, ++h->zxid, h->now_ms, &h->arena, &t), 0);
    apply(h, &t, NULL);
}

struct zn_stat stat_of(struct harness *h, const char *path)
{
    const struct tree_node *n = tree_get(h->tree, path);
    if (n == NULL)
        fail_msg("no node %s", path);
    struct zn_stat s;
    tree_node_stat(n, &s);
    return s;
}
