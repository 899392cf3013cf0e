/*
 * Unit tests of daemon/model/prep.c, one request at a time: every error ZooKeeper's
 * PrepRequestProcessor returns for a write, in its order; permissions;
 * sequential names; and quotas (ZooKeeperServer.checkQuota).  The overlay of
 * pending changes, multi, sessions and determinism are in
 * test_prep_overlay.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prep.h"
#include "prep_fixture.h"

/* ---- create ---- */

static void create_fails_with_badarguments_for_invalid_paths(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    const char *bad[] = {"a", "", "/a/", "/a/.", "/a/..", "/a/b\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct zn_request r = create_req(bad[i], NULL, ZN_CREATE_PERSISTENT);
        struct zn_response res;
        struct txn t;
        assert_int_equal(prepare(h, SID, &r, &t, &res), ZN_BADARGUMENTS);
        assert_int_equal(res.err, ZN_BADARGUMENTS);
        assert_int_equal(t.hdr.type, ZN_OP_ERROR);
        assert_int_equal(t.op.err, ZN_BADARGUMENTS);
    }
    struct zn_request r = create_req(NULL, NULL, ZN_CREATE_PERSISTENT);
    struct txn t;
    assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_BADARGUMENTS);
    /* ZooKeeper looks the parent up before validating the full path. */
    r = create_req("/missing/.", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_NONODE);
    assert_int_equal(prep_pending_count(h->prep), 0);
}

static void create_fails_with_badarguments_for_unknown_flags(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/a", NULL, 7);
    struct txn t;
    assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_BADARGUMENTS);
    r.flags = -1;
    assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_BADARGUMENTS);
}

static void create_fails_with_nonode_when_the_parent_is_missing(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/no/child", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
}

static void create_fails_with_nodeexists_when_path_exists(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request r = create_req("/a", NULL, ZN_CREATE_PERSISTENT);
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &r, &res), ZN_NODEEXISTS);
    assert_int_equal(res.err, ZN_NODEEXISTS);
    r = create_req("/", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NODEEXISTS);
    r = create_req("/zookeeper", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NODEEXISTS);
}

static void create_fails_with_nochildrenforephemerals_under_an_ephemeral(void **state)
{
    struct harness *h = *state;
    open_session(h, SID);
    must_create(h, SID, "/e", ZN_CREATE_EPHEMERAL);
    struct zn_request r = create_req("/e/child", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NOCHILDRENFOREPHEMERALS);
    /* ZooKeeper checks existence first */
    must_create(h, SID, "/p", ZN_CREATE_PERSISTENT);
    r = create_req("/e", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NODEEXISTS);
}

static void create_fails_with_invalidacl_for_empty_null_or_unknown_acls(void **state)
{
    struct harness *h = *state;
    struct zn_acl bad[] = {
        {ZN_PERM_ALL, {"world", "bob"}},      {ZN_PERM_ALL, {"nosuch", "x"}},
        {ZN_PERM_ALL, {"digest", "nocolon"}}, {ZN_PERM_ALL, {"digest", "user:"}},
        {ZN_PERM_ALL, {"digest", "a:b:c"}},   {ZN_PERM_ALL, {"ip", "300.1.1.1"}},
        {ZN_PERM_ALL, {"ip", "127.0.0.0/33"}}, {ZN_PERM_ALL, {"auth", ""}},
        {ZN_PERM_ALL, {NULL, "x"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct zn_request r = create_req("/a", NULL, ZN_CREATE_PERSISTENT);
        r.acl = (struct zn_acl_vec){1, &bad[i]};
        if (write_op(h, SID, &r, NULL) != ZN_INVALIDACL)
            fail_msg("acl #%zu accepted", i);
    }
    struct zn_request r = create_req("/a", NULL, ZN_CREATE_PERSISTENT);
    r.acl = (struct zn_acl_vec){0, NULL};
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_INVALIDACL);
    r.acl = (struct zn_acl_vec){-1, NULL};
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_INVALIDACL);
    /* ZooKeeper checks the ACL before the parent */
    r = create_req("/missing/a", NULL, ZN_CREATE_PERSISTENT);
    r.acl = (struct zn_acl_vec){0, NULL};
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_INVALIDACL);

    struct zn_acl good[] = {{ZN_PERM_READ, {"digest", "user:hash="}}, {ZN_PERM_ALL, {"ip", "127.0.0.0/8"}},
                            {ZN_PERM_ALL, {"ip", "::1"}}, {ZN_PERM_READ, {"digest", "user:hash="}}};
    r = create_req("/a", NULL, ZN_CREATE_PERSISTENT);
    r.acl = (struct zn_acl_vec){4, good};
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    /* duplicates are dropped, as ZooKeeper's removeDuplicates */
    assert_int_equal(tree_node_acl(tree_get(h->tree, "/a")).count, 3);
}

static const struct zn_id session_ids[] = {{"ip", "127.0.0.1"},  {"digest", "alice:xyz="}, {"super", ""},
                                           {"x509", "CN=alice"}, {"sasl", "alice"},        {"digest", "alice:xyz="}};

static void auth_acl_expands_to_the_callers_authenticated_ids(void **state)
{
    struct harness *h = *state;
    h->ids = session_ids;
    h->id_count = sizeof session_ids / sizeof session_ids[0];
    struct prep_options o = {.x509_enabled = true, .sasl_enabled = true};
    prep_set_options(h->prep, &o);
    struct zn_acl auth = {ZN_PERM_READ | ZN_PERM_WRITE, {"auth", ""}};
    struct zn_request r = create_req("/mine", NULL, ZN_CREATE_PERSISTENT);
    r.acl = (struct zn_acl_vec){1, &auth};
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    /* digest, x509 and sasl, each once; not ip (unauthenticated) nor super */
    struct zn_acl_vec acl = tree_node_acl(tree_get(h->tree, "/mine"));
    assert_int_equal(acl.count, 3);
    assert_string_equal(acl.items[0].id.scheme, "digest");
    assert_string_equal(acl.items[0].id.id, "alice:xyz=");
    assert_int_equal(acl.items[0].perms, ZN_PERM_READ | ZN_PERM_WRITE);
    assert_string_equal(acl.items[1].id.scheme, "x509");
    assert_string_equal(acl.items[2].id.scheme, "sasl");
    /* a caller with no authenticated id gets INVALIDACL, as in ZooKeeper */
    h->id_count = 1;
    r.path = "/theirs";
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_INVALIDACL);
}

/* An ACL granting alice everything but `perm`, and one granting only `perm`. */
static struct zn_acl alice_acl[1];
static void alice_may(int32_t perms) { alice_acl[0] = (struct zn_acl){perms, {"digest", "alice:xyz="}}; }

static int write_as(struct harness *h, const struct zn_id *ids, size_t n, struct zn_request *r)
{
    h->ids = ids;
    h->id_count = n;
    int rc = write_op(h, SID, r, NULL);
    h->ids = NULL;
    h->id_count = 0;
    return rc;
}

/* A write of the server's own (session 0), applied when prep takes it. */
static void prepare_and_apply_as_server(struct harness *h, const struct zn_request *req)
{
    static const struct prep_caller server = {0};
    struct txn t;
    h->now_ms += 10;
    if (prep_request(h->prep, &server, req, ++h->zxid, h->now_ms, &h->arena, &t, NULL) == 0)
        apply(h, &t, NULL);
}

static void each_write_checks_the_permission_zookeeper_checks(void **state)
{
    struct harness *h = *state;
    static const struct zn_id alice[] = {{"ip", "127.0.0.1"}, {"digest", "alice:xyz="}};
    static const struct zn_id root[] = {{"ip", "127.0.0.1"}, {"super", ""}};
    struct prep_options o = {.enforce_acl = true};
    prep_set_options(h->prep, &o);
    struct zn_request r = create_req("/a", "d", ZN_CREATE_PERSISTENT);
    r.acl = (struct zn_acl_vec){1, alice_acl};
    const struct {
        int32_t type;  /* the write */
        int32_t perm;  /* what ZooKeeper checks, on /a itself or (create, delete) on it as parent */
        bool on_child;
    } cases[] = {{ZN_OP_CREATE2, ZN_PERM_CREATE, true}, {ZN_OP_SETDATA, ZN_PERM_WRITE, false},
                 {ZN_OP_SETACL, ZN_PERM_ADMIN, false},   {ZN_OP_CHECK, ZN_PERM_READ, false},
                 {ZN_OP_DELETE, ZN_PERM_DELETE, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int allowed = 0; allowed <= 1; allowed++) {
            alice_may(allowed ? cases[i].perm : ZN_PERM_ALL & ~cases[i].perm);
            assert_int_equal(write_as(h, root, 2, &r), 0); /* super passes any ACL */
            struct zn_request child = create_req("/a/b", NULL, ZN_CREATE_PERSISTENT);
            if (cases[i].type == ZN_OP_DELETE)
                assert_int_equal(write_as(h, root, 2, &child), 0);
            struct zn_request w = cases[i].on_child ? create_req("/a/b", NULL, ZN_CREATE_PERSISTENT)
                                                    : path_req(cases[i].type, "/a", -1);
            if (cases[i].on_child && cases[i].type == ZN_OP_DELETE)
                w = path_req(ZN_OP_DELETE, "/a/b", -1);
            int rc = write_as(h, alice, 2, &w);
            if (rc != (allowed ? 0 : ZN_NOAUTH))
                fail_msg("op %d with perms %d: %d", cases[i].type, alice_acl[0].perms, rc);
            /* the server's own writes (session 0) are never checked */
            struct zn_request d = path_req(ZN_OP_DELETE, "/a/b", -1);
            prepare_and_apply_as_server(h, &d);
            d = path_req(ZN_OP_DELETE, "/a", -1);
            prepare_and_apply_as_server(h, &d);
        }
    }
}

static void createttl_fails_with_unimplemented_unless_ttl_is_enabled(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/t", NULL, ZN_CREATE_PERSISTENT_WITH_TTL);
    r.type = ZN_OP_CREATETTL;
    r.ttl = 1000;
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_UNIMPLEMENTED);
    struct prep_options o = {.ttl_enabled = true};
    prep_set_options(h->prep, &o);
    r.ttl = 0;
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r.ttl = TREE_TTL_MAX_MS + 1;
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r.flags = ZN_CREATE_PERSISTENT; /* a TTL with a mode that has none */
    r.ttl = 1000;
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r.flags = ZN_CREATE_PERSISTENT_WITH_TTL;
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_int_equal(tree_node_ttl_ms(tree_get(h->tree, "/t")), 1000);
    assert_int_equal(res.type, ZN_OP_CREATETTL);
    assert_int_equal(res.stat.ephemeral_owner, 0);
}

static void create_container_makes_a_container(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/c", NULL, ZN_CREATE_CONTAINER);
    r.type = ZN_OP_CREATECONTAINER;
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    assert_true(tree_node_is_container(tree_get(h->tree, "/c")));
    /* a container may have children */
    must_create(h, SID, "/c/x", ZN_CREATE_PERSISTENT);
}

static void create_stat_follows_zookeepers_rules(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/s", "12345", ZN_CREATE_PERSISTENT);
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    int64_t zxid = h->zxid;
    assert_int_equal(res.type, ZN_OP_CREATE2);
    assert_string_equal(res.path, "/s");
    assert_int_equal(res.stat.czxid, zxid);
    assert_int_equal(res.stat.mzxid, zxid);
    assert_int_equal(res.stat.pzxid, zxid);
    assert_int_equal(res.stat.ctime, h->now_ms);
    assert_int_equal(res.stat.mtime, h->now_ms);
    assert_int_equal(res.stat.version, 0);
    assert_int_equal(res.stat.cversion, 0);
    assert_int_equal(res.stat.aversion, 0);
    assert_int_equal(res.stat.data_length, 5);
    assert_int_equal(res.stat.num_children, 0);
    struct zn_stat root = stat_of(h, "/");
    assert_int_equal(root.pzxid, zxid);
    assert_int_equal(root.num_children, 2);
    assert_int_equal(root.cversion, 0);
}

static void create_with_kind_stores_the_kind(void **state)
{
    struct harness *h = *state;
    struct zn_request r = create_req("/dir", NULL, ZN_CREATE_PERSISTENT | ZN_CREATE_KIND_DIRECTORY);
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    assert_int_equal(tree_node_kind(tree_get(h->tree, "/dir")), ZN_NODE_KIND_DIRECTORY);
    /* each create of a multi keeps its own kind */
    struct zn_request ops[3] = {create_req("/dir/f", NULL, ZN_CREATE_PERSISTENT | ZN_CREATE_KIND_FILE),
                                create_req("/dir/d", NULL, ZN_CREATE_EPHEMERAL_SEQUENTIAL | ZN_CREATE_KIND_DIRECTORY),
                                path_req(ZN_OP_SETDATA, "/dir", -1)};
    open_session(h, SID);
    struct zn_request multi = {.type = ZN_OP_MULTI, .op_count = 3, .ops = ops};
    assert_int_equal(write_op(h, SID, &multi, NULL), 0);
    assert_int_equal(tree_node_kind(tree_get(h->tree, "/dir/f")), ZN_NODE_KIND_FILE);
    assert_int_equal(tree_node_kind(tree_get(h->tree, "/dir/d0000000001")), ZN_NODE_KIND_DIRECTORY);
    assert_int_equal(stat_of(h, "/dir/d0000000001").ephemeral_owner, SID);
    /* both kinds at once are no create mode */
    r = create_req("/both", NULL, ZN_CREATE_PERSISTENT | ZN_CREATE_KIND_MASK);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    must_create(h, SID, "/plain", ZN_CREATE_PERSISTENT);
    assert_int_equal(tree_node_kind(tree_get(h->tree, "/plain")), ZN_NODE_KIND_UNKNOWN);
}

/* ---- sequential ---- */

static void sequential_names_use_the_parents_cversion_in_ten_digits(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/q", ZN_CREATE_PERSISTENT);
    struct zn_response res;
    struct zn_request r = create_req("/q/lock-", NULL, ZN_CREATE_SEQUENTIAL);
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_string_equal(res.path, "/q/lock-0000000000");
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_string_equal(res.path, "/q/lock-0000000001");
    /* a delete does not make a number reusable */
    struct zn_request d = path_req(ZN_OP_DELETE, "/q/lock-0000000001", -1);
    assert_int_equal(write_op(h, SID, &d, NULL), 0);
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_string_equal(res.path, "/q/lock-0000000002");
    /* other creates count too, and a trailing slash is allowed */
    must_create(h, SID, "/q/plain", ZN_CREATE_PERSISTENT);
    r = create_req("/q/", NULL, ZN_CREATE_SEQUENTIAL);
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_string_equal(res.path, "/q/0000000004");
    assert_int_equal(stat_of(h, "/q").cversion, 5 * 2 - 4);
}

/* ---- delete, setData, setACL, check ---- */

static void delete_fails_with_zookeepers_errors_in_its_order(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    must_create(h, SID, "/a/b", ZN_CREATE_PERSISTENT);
    struct zn_request r = path_req(ZN_OP_DELETE, "/zookeeper", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r = path_req(ZN_OP_DELETE, "/", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r = path_req(ZN_OP_DELETE, "nopath", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r = path_req(ZN_OP_DELETE, "/x/y", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
    r = path_req(ZN_OP_DELETE, "/a/nope", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
    r = path_req(ZN_OP_DELETE, "/a", 5);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADVERSION); /* before NOTEMPTY */
    r = path_req(ZN_OP_DELETE, "/a", 0);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NOTEMPTY);
    r = path_req(ZN_OP_DELETE, "/a/b", 0);
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    r = path_req(ZN_OP_DELETE, "/a", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    assert_null(tree_get(h->tree, "/a"));
}

static void set_data_checks_and_increments_the_version(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    int64_t czxid = h->zxid;
    struct zn_request r = path_req(ZN_OP_SETDATA, "/a", 3);
    r.data = (struct jute_buf){(const uint8_t *)"v1", 2};
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADVERSION);
    r.version = 0;
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_int_equal(res.type, ZN_OP_SETDATA);
    assert_int_equal(res.stat.version, 1);
    assert_int_equal(res.stat.mzxid, h->zxid);
    assert_int_equal(res.stat.czxid, czxid);
    assert_int_equal(res.stat.mtime, h->now_ms);
    assert_int_equal(res.stat.data_length, 2);
    r.version = -1;
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_int_equal(res.stat.version, 2);
    r = path_req(ZN_OP_SETDATA, "/missing", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
    r = path_req(ZN_OP_SETDATA, "/a/", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    r = path_req(ZN_OP_SETDATA, "/a", -1);
    r.data.len = PREP_MAX_DATA_BYTES + 1;
    r.data.data = (const uint8_t *)"";
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
}

/* setData and check look the node up before validating its path (a node
 * that exists was validated at its create): every invalid path is still
 * BADARGUMENTS, a pending session's overlay key ("#...") and "" (the root
 * to the overlay) included, and a node only the overlay holds is found. */
static void set_data_and_check_refuse_invalid_paths_found_or_not(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    const int64_t pending_sid = 0x1000000000000077LL;
    struct txn t;
    assert_int_equal(prep_create_session(h->prep, pending_sid, 30000, ++h->zxid, h->now_ms, &h->arena, &t), 0);
    char session_key[20];
    snprintf(session_key, sizeof session_key, "#%016llx", (unsigned long long)pending_sid);
    const char *bad[] = {"", "a", session_key, "/a/", "/a//b", "/a/.", "/a/b\x01"};
    static const int32_t types[] = {ZN_OP_SETDATA, ZN_OP_CHECK};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct zn_request r = path_req(types[k], bad[i], -1);
            assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_BADARGUMENTS);
        }
        struct zn_request r = path_req(types[k], NULL, -1);
        assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_BADARGUMENTS);
        r = path_req(types[k], "/missing", -1);
        assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_NONODE);
    }
    /* created, not yet applied: the overlay has it */
    struct zn_request c = create_req("/pending", NULL, ZN_CREATE_PERSISTENT);
    assert_int_equal(prepare(h, SID, &c, &t, NULL), 0);
    struct zn_request r = path_req(ZN_OP_SETDATA, "/pending", 0);
    assert_int_equal(prepare(h, SID, &r, &t, NULL), 0);
}

/* znodefs extension: setDataTime is a setData whose txn (hence the node's
 * mtime) has the client's time; a negative time and a use inside a multi are
 * refused, and a version check guards it as setData's does. */
static void set_data_time_is_a_set_data_at_the_clients_time(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request r = path_req(ZN_OP_SETDATATIME, "/a", 0);
    r.data = (struct jute_buf){(const uint8_t *)"d", 1};
    r.mtime_ms = 981173106789LL;
    struct txn t;
    struct zn_response res;
    assert_int_equal(prepare(h, SID, &r, &t, &res), 0);
    assert_int_equal(t.hdr.type, ZN_OP_SETDATA);
    assert_int_equal(t.hdr.time_ms, 981173106789LL);
    apply(h, &t, &res);
    assert_int_equal(res.stat.version, 1);
    assert_int_equal(res.stat.mtime, 981173106789LL);
    assert_int_equal(res.stat.mzxid, h->zxid);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADVERSION);
    r.version = 1;
    r.mtime_ms = -1;
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADARGUMENTS);
    struct zn_request multi;
    memset(&multi, 0, sizeof(multi));
    multi.type = ZN_OP_MULTI;
    r.mtime_ms = 0;
    multi.op_count = 1;
    multi.ops = &r;
    assert_int_equal(write_op(h, SID, &multi, NULL), ZN_BADARGUMENTS);
    /* A plain setData after it is at the server's time again. */
    r = path_req(ZN_OP_SETDATA, "/a", -1);
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_int_equal(res.stat.mtime, h->now_ms);
}

static void set_acl_checks_the_aversion_and_validates_the_acl(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request r = path_req(ZN_OP_SETACL, "/a", 1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADVERSION);
    r.acl = (struct zn_acl_vec){0, NULL};
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_INVALIDACL); /* before NONODE and BADVERSION */
    r = path_req(ZN_OP_SETACL, "/missing", -1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
    r = path_req(ZN_OP_SETACL, "/a", 0);
    struct zn_response res;
    assert_int_equal(write_op(h, SID, &r, &res), 0);
    assert_int_equal(res.stat.aversion, 1);
    assert_int_equal(res.stat.version, 0);
}

static void check_outside_a_multi_checks_the_version(void **state)
{
    struct harness *h = *state;
    must_create(h, SID, "/a", ZN_CREATE_PERSISTENT);
    struct zn_request r = path_req(ZN_OP_CHECK, "/a", 1);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_BADVERSION);
    r.version = 0;
    assert_int_equal(write_op(h, SID, &r, NULL), 0);
    r = path_req(ZN_OP_CHECK, "/nope", 0);
    assert_int_equal(write_op(h, SID, &r, NULL), ZN_NONODE);
}

static void reads_are_not_prepared(void **state)
{
    struct harness *h = *state;
    struct zn_request r = path_req(ZN_OP_GETDATA, "/", 0);
    struct txn t;
    assert_int_equal(prepare(h, SID, &r, &t, NULL), ZN_UNIMPLEMENTED);
}

static void a_failed_request_leaves_its_zxid_free_for_the_next(void **state)
{
    struct harness *h = *state;
    struct zn_request bad = create_req("/no/parent", NULL, ZN_CREATE_PERSISTENT);
    struct zn_request good = create_req("/ok", NULL, ZN_CREATE_PERSISTENT);
    struct txn t;
    int64_t zxid = ++h->zxid;
    struct prep_caller first = {SID, 1, NULL, 0}, second = {SID, 2, NULL, 0};
    assert_int_equal(prep_request(h->prep, &first, &bad, zxid, h->now_ms, &h->arena, &t, NULL), ZN_NONODE);
    /* the caller logs nothing for a failure and hands the same zxid on */
    assert_int_equal(prep_request(h->prep, &second, &good, zxid, h->now_ms, &h->arena, &t, NULL), 0);
    assert_int_equal(t.hdr.zxid, zxid);
    assert_int_equal(t.hdr.cxid, 2);
    apply(h, &t, NULL);
    assert_int_equal(stat_of(h, "/ok").czxid, zxid);
}

/* ---- quotas (ZooKeeperServer.checkQuota, enforceQuota on) ---- */

static void enforce_quota(struct harness *h, bool on)
{
    struct prep_options o;
    memset(&o, 0, sizeof(o));
    o.enforce_quota = on;
    prep_set_options(h->prep, &o);
}

/* The nodes zkCli's setquota makes for /app with the given limit record. */
static void set_quota(struct harness *h, const char *limits)
{
    must_create(h, 0, "/zookeeper/quota/app", 0);
    struct zn_request r = create_req("/zookeeper/quota/app/zookeeper_limits", limits, 0);
    assert_int_equal(write_op(h, 0, &r, NULL), 0);
    r = create_req("/zookeeper/quota/app/zookeeper_stats", "count=0,bytes=0", 0);
    assert_int_equal(write_op(h, 0, &r, NULL), 0);
}

static void create_past_a_hard_count_quota_fails_with_quotaexceeded(void **state)
{
    struct harness *h = *state;
    enforce_quota(h, true);
    must_create(h, 0, "/app", 0);
    set_quota(h, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
    must_create(h, 0, "/app/a", 0);
    struct zn_request r = create_req("/app/b", "x", 0);
    struct zn_response err;
    assert_int_equal(write_op(h, 0, &r, &err), ZN_QUOTAEXCEEDED);
    assert_int_equal(err.err, ZN_QUOTAEXCEEDED);
    assert_null(tree_get(h->tree, "/app/b"));
    /* A path outside the quota is not limited. */
    must_create(h, 0, "/apple", 0);
}

static void set_data_past_a_hard_byte_quota_fails_but_shrinking_succeeds(void **state)
{
    struct harness *h = *state;
    enforce_quota(h, true);
    struct zn_request r = create_req("/app", "abcd", 0);
    assert_int_equal(write_op(h, 0, &r, NULL), 0);
    set_quota(h, "count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=-1");
    struct zn_request set = path_req(ZN_OP_SETDATA, "/app", -1);
    set.data = (struct jute_buf){(const uint8_t *)"1234567", 7};
    assert_int_equal(write_op(h, 0, &set, NULL), ZN_QUOTAEXCEEDED);
    set.data = (struct jute_buf){(const uint8_t *)"123456", 6};
    assert_int_equal(write_op(h, 0, &set, NULL), 0);
    set.data = (struct jute_buf){(const uint8_t *)"1", 1};
    assert_int_equal(write_op(h, 0, &set, NULL), 0);
}

static void soft_quotas_and_enforcement_off_let_writes_through(void **state)
{
    struct harness *h = *state;
    enforce_quota(h, true);
    must_create(h, 0, "/app", 0);
    set_quota(h, "count=1,bytes=1");
    must_create(h, 0, "/app/a", 0);
    must_create(h, 0, "/app/b", 0);
    /* A hard limit without enforceQuota is not checked (ZooKeeper's default). */
    enforce_quota(h, false);
    struct zn_request set = path_req(ZN_OP_SETDATA, "/zookeeper/quota/app/zookeeper_limits", -1);
    set.data = (struct jute_buf){(const uint8_t *)"count=1,bytes=1=;countHardLimit=1", 33};
    assert_int_equal(write_op(h, 0, &set, NULL), 0);
    must_create(h, 0, "/app/c", 0);
}

static void a_multi_op_past_a_hard_quota_fails_the_whole_multi(void **state)
{
    struct harness *h = *state;
    enforce_quota(h, true);
    must_create(h, 0, "/app", 0);
    set_quota(h, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1");
    struct zn_request ops[2] = {create_req("/other", "x", 0), create_req("/app/x", "x", 0)};
    struct zn_request m;
    memset(&m, 0, sizeof(m));
    m.type = ZN_OP_MULTI;
    m.op_count = 2;
    m.ops = ops;
    struct zn_response err;
    assert_int_equal(write_op(h, 0, &m, &err), ZN_QUOTAEXCEEDED);
    assert_int_equal(err.result_count, 2);
    assert_int_equal(err.results[0].err, 0);
    assert_int_equal(err.results[1].err, ZN_QUOTAEXCEEDED);
    assert_null(tree_get(h->tree, "/other"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(create_fails_with_badarguments_for_invalid_paths),
        T(create_fails_with_badarguments_for_unknown_flags),
        T(create_fails_with_nonode_when_the_parent_is_missing),
        T(create_fails_with_nodeexists_when_path_exists),
        T(create_fails_with_nochildrenforephemerals_under_an_ephemeral),
        T(create_fails_with_invalidacl_for_empty_null_or_unknown_acls),
        T(auth_acl_expands_to_the_callers_authenticated_ids),
        T(each_write_checks_the_permission_zookeeper_checks),
        T(createttl_fails_with_unimplemented_unless_ttl_is_enabled),
        T(create_container_makes_a_container),
        T(create_stat_follows_zookeepers_rules),
        T(create_with_kind_stores_the_kind),
        T(sequential_names_use_the_parents_cversion_in_ten_digits),
        T(delete_fails_with_zookeepers_errors_in_its_order),
        T(set_data_checks_and_increments_the_version),
        T(set_data_and_check_refuse_invalid_paths_found_or_not),
        T(set_data_time_is_a_set_data_at_the_clients_time),
        T(set_acl_checks_the_aversion_and_validates_the_acl),
        T(check_outside_a_multi_checks_the_version),
        T(reads_are_not_prepared),
        T(a_failed_request_leaves_its_zxid_free_for_the_next),
        T(create_past_a_hard_count_quota_fails_with_quotaexceeded),
        T(set_data_past_a_hard_byte_quota_fails_but_shrinking_succeeds),
        T(soft_quotas_and_enforcement_off_let_writes_through),
        T(a_multi_op_past_a_hard_quota_fails_the_whole_multi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
