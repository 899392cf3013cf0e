/*
 * jute_testkit.c: deep equality of decoded jute records and the catalogue of
 * sample requests/responses used by the codec's unit test, its fuzz targets
 * and the seed-corpus generator.  Samples look like what real clients send
 * (kazoo, zkCli, the C client): digest and world ACLs, sequential ephemeral
 * creates, multi transactions with a failed op, and so on.
 */
#include <string.h>

#include "jute_testkit.h"

const char *jute_testkit_mismatch = "";

#define CHECK(cond, field)                 \
    do {                                   \
        if (!(cond)) {                     \
            jute_testkit_mismatch = field; \
            return false;                  \
        }                                  \
    } while (0)

static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool buf_equal(struct jute_buf a, struct jute_buf b)
{
    if (a.len != b.len)
        return false;
    return a.len <= 0 || memcmp(a.data, b.data, (size_t)a.len) == 0;
}

static bool stat_equal(const struct zn_stat *a, const struct zn_stat *b)
{
    return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
           a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
           a->aversion == b->aversion && a->ephemeral_owner == b->ephemeral_owner &&
           a->data_length == b->data_length && a->num_children == b->num_children &&
           a->pzxid == b->pzxid;
}

static bool acl_vec_equal(const struct zn_acl_vec *a, const struct zn_acl_vec *b)
{
    if (a->count != b->count)
        return false;
    for (int32_t i = 0; i < a->count; i++) {
        if (a->items[i].perms != b->items[i].perms ||
            !str_equal(a->items[i].id.scheme, b->items[i].id.scheme) ||
            !str_equal(a->items[i].id.id, b->items[i].id.id))
            return false;
    }
    return true;
}

static bool string_vec_equal(const struct zn_string_vec *a, const struct zn_string_vec *b)
{
    if (a->count != b->count)
        return false;
    for (int32_t i = 0; i < a->count; i++)
        if (!str_equal(a->items[i], b->items[i]))
            return false;
    return true;
}

bool jute_request_equal(const struct zn_request *a, const struct zn_request *b)
{
    CHECK(a->type == b->type, "type");
    CHECK(str_equal(a->path, b->path), "path");
    CHECK(buf_equal(a->data, b->data), "data");
    CHECK(acl_vec_equal(&a->acl, &b->acl), "acl");
    CHECK(a->flags == b->flags, "flags");
    CHECK(a->version == b->version, "version");
    CHECK(a->ttl == b->ttl, "ttl");
    CHECK(a->watch == b->watch, "watch");
    CHECK(a->auth_type == b->auth_type, "auth_type");
    CHECK(str_equal(a->scheme, b->scheme), "scheme");
    CHECK(buf_equal(a->auth, b->auth), "auth");
    CHECK(a->relative_zxid == b->relative_zxid, "relative_zxid");
    for (int k = 0; k < ZN_WATCHES_KINDS; k++)
        CHECK(string_vec_equal(&a->watches[k], &b->watches[k]), "watches");
    CHECK(a->op_count == b->op_count, "op_count");
    for (int32_t i = 0; i < a->op_count; i++)
        if (!jute_request_equal(&a->ops[i], &b->ops[i]))
            return false;
    CHECK(str_equal(a->joining, b->joining), "joining");
    CHECK(str_equal(a->leaving, b->leaving), "leaving");
    CHECK(str_equal(a->new_members, b->new_members), "new_members");
    CHECK(a->config_id == b->config_id, "config_id");
    return true;
}

bool jute_response_equal(const struct zn_response *a, const struct zn_response *b)
{
    CHECK(a->type == b->type, "type");
    CHECK(a->err == b->err, "err");
    CHECK(str_equal(a->path, b->path), "path");
    CHECK(buf_equal(a->data, b->data), "data");
    CHECK(stat_equal(&a->stat, &b->stat), "stat");
    CHECK(string_vec_equal(&a->children, &b->children), "children");
    CHECK(acl_vec_equal(&a->acl, &b->acl), "acl");
    CHECK(a->number == b->number, "number");
    CHECK(a->client_info_count == b->client_info_count, "client_info_count");
    for (int32_t i = 0; i < a->client_info_count; i++) {
        CHECK(str_equal(a->client_info[i].auth_scheme, b->client_info[i].auth_scheme), "client_info");
        CHECK(str_equal(a->client_info[i].user, b->client_info[i].user), "client_info");
    }
    CHECK(a->result_count == b->result_count, "result_count");
    for (int32_t i = 0; i < a->result_count; i++)
        if (!jute_response_equal(&a->results[i], &b->results[i]))
            return false;
    return true;
}

bool jute_connect_request_equal(const struct zn_connect_request *a, const struct zn_connect_request *b)
{
    CHECK(a->protocol_version == b->protocol_version, "protocol_version");
    CHECK(a->last_zxid_seen == b->last_zxid_seen, "last_zxid_seen");
    CHECK(a->timeout_ms == b->timeout_ms, "timeout_ms");
    CHECK(a->session_id == b->session_id, "session_id");
    CHECK(buf_equal(a->passwd, b->passwd), "passwd");
    CHECK(a->has_read_only == b->has_read_only, "has_read_only");
    CHECK(a->read_only == b->read_only, "read_only");
    return true;
}

bool jute_connect_response_equal(const struct zn_connect_response *a, const struct zn_connect_response *b)
{
    CHECK(a->protocol_version == b->protocol_version, "protocol_version");
    CHECK(a->timeout_ms == b->timeout_ms, "timeout_ms");
    CHECK(a->session_id == b->session_id, "session_id");
    CHECK(buf_equal(a->passwd, b->passwd), "passwd");
    CHECK(a->has_read_only == b->has_read_only, "has_read_only");
    CHECK(a->read_only == b->read_only, "read_only");
    return true;
}

/* ---- samples ---- */

#define S(literal) ((char *)(literal))
#define BUF(literal) ((struct jute_buf){(const uint8_t *)(literal), (int32_t)(sizeof(literal) - 1)})
#define NULLBUF ((struct jute_buf){NULL, -1})

static const uint8_t passwd16[ZN_PASSWD_BYTES] = {0x5a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f};

const struct zn_connect_request jute_sample_connect_request = {
    .protocol_version = 0,
    .last_zxid_seen = 0x100000004LL,
    .timeout_ms = 30000,
    .session_id = 0x10000a1b2c3d4LL,
    .passwd = {passwd16, ZN_PASSWD_BYTES},
    .read_only = false,
    .has_read_only = true,
};

const struct zn_connect_response jute_sample_connect_response = {
    .protocol_version = 0,
    .timeout_ms = 30000,
    .session_id = 0x10000a1b2c3d4LL,
    .passwd = {passwd16, ZN_PASSWD_BYTES},
    .read_only = false,
    .has_read_only = true,
};

static struct zn_acl world_acl[] = {{ZN_PERM_ALL, {S("world"), S("anyone")}}};
static struct zn_acl digest_acls[] = {
    {ZN_PERM_ALL, {S("digest"), S("alice:XDkd2dsEuhc9ImU3q8pa8UOdtpI=")}},
    {ZN_PERM_READ, {S("ip"), S("127.0.0.1")}},
    {ZN_PERM_READ | ZN_PERM_CREATE, {S("sasl"), S("")}},
};
#define ACLS(array) ((struct zn_acl_vec){(int32_t)(sizeof(array) / sizeof(array[0])), array})

static char *data_watches[] = {S("/config"), S("/app/leader")};
static char *exist_watches[] = {S("/lock/n-0000000007")};
static char *child_watches[] = {S("/"), S("/queue")};
static char *persistent_watches[] = {S("/services")};
static char *recursive_watches[] = {S("/app")};
#define STRS(array) ((struct zn_string_vec){(int32_t)(sizeof(array) / sizeof(array[0])), array})

static struct zn_request multi_ops[] = {
    {.type = ZN_OP_CREATE, .path = S("/txn"), .data = BUF("payload"), .acl = ACLS(world_acl), .flags = ZN_CREATE_PERSISTENT},
    {.type = ZN_OP_CREATE2, .path = S("/txn/seq-"), .data = BUF(""), .acl = ACLS(digest_acls), .flags = ZN_CREATE_EPHEMERAL_SEQUENTIAL},
    {.type = ZN_OP_CREATETTL, .path = S("/txn/ttl"), .data = NULLBUF, .acl = ACLS(world_acl), .flags = ZN_CREATE_PERSISTENT_WITH_TTL, .ttl = 60000},
    {.type = ZN_OP_CREATECONTAINER, .path = S("/txn/box"), .data = BUF(""), .acl = ACLS(world_acl), .flags = ZN_CREATE_CONTAINER},
    {.type = ZN_OP_SETDATA, .path = S("/txn"), .data = BUF("v2"), .version = 0},
    {.type = ZN_OP_CHECK, .path = S("/config"), .version = 7},
    {.type = ZN_OP_DELETE, .path = S("/old"), .version = -1},
};

static struct zn_request multiread_ops[] = {
    {.type = ZN_OP_GETDATA, .path = S("/config")},
    {.type = ZN_OP_GETCHILDREN, .path = S("/queue")},
    {.type = ZN_OP_GETDATA, .path = S("/missing")},
};

static const struct zn_request sample_requests[] = {
    {.type = ZN_OP_CREATE, .path = S("/app"), .data = BUF("hello"), .acl = ACLS(world_acl), .flags = ZN_CREATE_PERSISTENT},
    {.type = ZN_OP_CREATE, .path = S("/nulldata"), .data = NULLBUF, .acl = ACLS(world_acl), .flags = ZN_CREATE_EPHEMERAL},
    {.type = ZN_OP_CREATE2, .path = S("/lock/n-"), .data = BUF(""), .acl = ACLS(digest_acls), .flags = ZN_CREATE_EPHEMERAL_SEQUENTIAL},
    {.type = ZN_OP_CREATECONTAINER, .path = S("/box"), .data = BUF("c"), .acl = ACLS(world_acl), .flags = ZN_CREATE_CONTAINER},
    {.type = ZN_OP_CREATETTL, .path = S("/ttl"), .data = BUF("t"), .acl = ACLS(world_acl), .flags = ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL, .ttl = 3600000},
    {.type = ZN_OP_DELETE, .path = S("/app"), .version = -1},
    {.type = ZN_OP_EXISTS, .path = S("/app"), .watch = true},
    {.type = ZN_OP_GETDATA, .path = S("/config"), .watch = true},
    {.type = ZN_OP_SETDATA, .path = S("/config"), .data = BUF("{\"k\":1}"), .version = 3},
    {.type = ZN_OP_GETACL, .path = S("/secure")},
    {.type = ZN_OP_SETACL, .path = S("/secure"), .acl = ACLS(digest_acls), .version = 0},
    {.type = ZN_OP_GETCHILDREN, .path = S("/queue"), .watch = false},
    {.type = ZN_OP_SYNC, .path = S("/")},
    {.type = ZN_OP_PING},
    {.type = ZN_OP_GETCHILDREN2, .path = S("/queue"), .watch = true},
    {.type = ZN_OP_CHECK, .path = S("/config"), .version = 4},
    {.type = ZN_OP_MULTI, .op_count = (int32_t)(sizeof(multi_ops) / sizeof(multi_ops[0])), .ops = multi_ops},
    {.type = ZN_OP_MULTI},
    {.type = ZN_OP_RECONFIG, .joining = S("server.4=127.0.0.4:2888:3888;2181"), .leaving = S("2"), .new_members = NULL, .config_id = -1},
    {.type = ZN_OP_CHECKWATCHES, .path = S("/config"), .flags = ZN_WATCHER_DATA},
    {.type = ZN_OP_REMOVEWATCHES, .path = S("/config"), .flags = ZN_WATCHER_ANY},
    {.type = ZN_OP_DELETECONTAINER, .path = S("/box")},
    {.type = ZN_OP_MULTIREAD, .op_count = (int32_t)(sizeof(multiread_ops) / sizeof(multiread_ops[0])), .ops = multiread_ops},
    {.type = ZN_OP_AUTH, .auth_type = 0, .scheme = S("digest"), .auth = BUF("alice:secret")},
    {.type = ZN_OP_SETWATCHES, .relative_zxid = 0x200000011LL, .watches = {STRS(data_watches), STRS(exist_watches), STRS(child_watches)}},
    {.type = ZN_OP_GETEPHEMERALS, .path = S("/lock")},
    {.type = ZN_OP_GETALLCHILDRENNUMBER, .path = S("/queue")},
    {.type = ZN_OP_SETWATCHES2,
     .relative_zxid = 0x200000011LL,
     .watches = {STRS(data_watches), STRS(exist_watches), STRS(child_watches), STRS(persistent_watches), STRS(recursive_watches)}},
    {.type = ZN_OP_ADDWATCH, .path = S("/app"), .flags = ZN_WATCH_PERSISTENT_RECURSIVE},
    {.type = ZN_OP_WHOAMI},
    {.type = ZN_OP_CLOSESESSION},
    {.type = ZN_OP_SASL, .auth = BUF("charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"n\"")},
    {.type = ZN_OP_SASL},
};

static const char *const sample_request_labels[] = {
    "create", "create_null_data", "create2_ephemeral_sequential", "create_container", "create_ttl",
    "delete", "exists_watch", "get_data_watch", "set_data", "get_acl", "set_acl", "get_children",
    "sync", "ping", "get_children2", "check", "multi", "multi_empty", "reconfig", "check_watches",
    "remove_watches", "delete_container", "multi_read", "auth", "set_watches", "get_ephemerals",
    "get_all_children_number", "set_watches2", "add_watch", "who_am_i", "close_session",
    "sasl_token", "sasl_empty_token",
};

_Static_assert(sizeof(sample_requests) / sizeof(sample_requests[0]) ==
                   sizeof(sample_request_labels) / sizeof(sample_request_labels[0]),
               "one label per sample request");

/* Macros, not const objects: C wants constant expressions in static initializers. */
#define stat_a                                                                                        \
    ((struct zn_stat){.czxid = 0x100000002LL, .mzxid = 0x100000009LL, .ctime = 1700000000123LL,      \
                      .mtime = 1700000004567LL, .version = 3, .cversion = 1, .aversion = 0,         \
                      .ephemeral_owner = 0, .data_length = 5, .num_children = 2,                    \
                      .pzxid = 0x100000007LL})
#define stat_ephemeral                                                                                \
    ((struct zn_stat){.czxid = 0x20000000aLL, .mzxid = 0x20000000aLL, .ctime = 1700000100000LL,      \
                      .mtime = 1700000100000LL, .version = 0, .cversion = 0, .aversion = 0,         \
                      .ephemeral_owner = 0x10000a1b2c3d4LL, .data_length = 0, .num_children = 0,    \
                      .pzxid = 0x20000000aLL})

static char *children[] = {S("n-0000000001"), S("n-0000000002"), S("leader")};
static struct zn_client_info whoami_info[] = {{S("ip"), S("127.0.0.1")}, {S("digest"), S("alice")}};

static struct zn_response multi_results[] = {
    {.type = ZN_OP_CREATE, .path = S("/txn")},
    {.type = ZN_OP_CREATE2, .path = S("/txn/seq-0000000000"), .stat = stat_ephemeral},
    {.type = ZN_OP_SETDATA, .stat = stat_a},
    {.type = ZN_OP_CHECK},
    {.type = ZN_OP_DELETE},
};

/* A failed multi, as ZooKeeper reports it: every op an ErrorResponse, OK
 * before the failing op, the failure, then RUNTIMEINCONSISTENCY after it. */
static struct zn_response multi_failed_results[] = {
    {.type = ZN_OP_ERROR, .err = ZN_OK},
    {.type = ZN_OP_ERROR, .err = ZN_NONODE},
    {.type = ZN_OP_ERROR, .err = ZN_RUNTIMEINCONSISTENCY},
};

static struct zn_response multiread_results[] = {
    {.type = ZN_OP_GETDATA, .data = BUF("{\"k\":1}"), .stat = stat_a},
    {.type = ZN_OP_GETCHILDREN, .children = STRS(children)},
    {.type = ZN_OP_ERROR, .err = ZN_NONODE},
};

#define COUNT(array) ((int32_t)(sizeof(array) / sizeof(array[0])))

static const struct zn_response sample_responses[] = {
    {.type = ZN_OP_CREATE, .path = S("/app")},
    {.type = ZN_OP_CREATECONTAINER, .path = S("/box")},
    {.type = ZN_OP_CREATE2, .path = S("/lock/n-0000000003"), .stat = stat_ephemeral},
    {.type = ZN_OP_CREATETTL, .path = S("/ttl0000000001"), .stat = stat_a},
    {.type = ZN_OP_EXISTS, .stat = stat_a},
    {.type = ZN_OP_SETDATA, .stat = stat_a},
    {.type = ZN_OP_SETACL, .stat = stat_a},
    {.type = ZN_OP_GETDATA, .data = BUF("hello"), .stat = stat_a},
    {.type = ZN_OP_GETDATA, .data = NULLBUF, .stat = stat_ephemeral},
    {.type = ZN_OP_RECONFIG, .data = BUF("server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000000"), .stat = stat_a},
    {.type = ZN_OP_GETACL, .acl = ACLS(digest_acls), .stat = stat_a},
    {.type = ZN_OP_GETCHILDREN, .children = STRS(children)},
    {.type = ZN_OP_GETCHILDREN, .children = {0, NULL}},
    {.type = ZN_OP_GETEPHEMERALS, .children = STRS(children)},
    {.type = ZN_OP_GETCHILDREN2, .children = STRS(children), .stat = stat_a},
    {.type = ZN_OP_SYNC, .path = S("/")},
    {.type = ZN_OP_GETALLCHILDRENNUMBER, .number = 42},
    {.type = ZN_OP_WHOAMI, .client_info_count = COUNT(whoami_info), .client_info = whoami_info},
    {.type = ZN_OP_MULTI, .result_count = COUNT(multi_results), .results = multi_results},
    {.type = ZN_OP_MULTI, .result_count = COUNT(multi_failed_results), .results = multi_failed_results},
    {.type = ZN_OP_MULTIREAD, .result_count = COUNT(multiread_results), .results = multiread_results},
    {.type = ZN_OP_DELETE},
    {.type = ZN_OP_DELETECONTAINER},
    {.type = ZN_OP_CHECK},
    {.type = ZN_OP_PING},
    {.type = ZN_OP_AUTH},
    {.type = ZN_OP_SETWATCHES},
    {.type = ZN_OP_SETWATCHES2},
    {.type = ZN_OP_ADDWATCH},
    {.type = ZN_OP_REMOVEWATCHES},
    {.type = ZN_OP_CHECKWATCHES},
    {.type = ZN_OP_CLOSESESSION},
    {.type = ZN_OP_SASL, .data = BUF("rspauth=0123456789abcdef")},
};

static const char *const sample_response_labels[] = {
    "create", "create_container", "create2", "create_ttl", "exists", "set_data", "set_acl",
    "get_data", "get_data_null", "reconfig", "get_acl", "get_children", "get_children_empty",
    "get_ephemerals", "get_children2", "sync", "get_all_children_number", "who_am_i", "multi",
    "multi_failed", "multi_read", "delete", "delete_container", "check", "ping", "auth",
    "set_watches", "set_watches2", "add_watch", "remove_watches", "check_watches", "close_session",
    "sasl",
};

_Static_assert(sizeof(sample_responses) / sizeof(sample_responses[0]) ==
                   sizeof(sample_response_labels) / sizeof(sample_response_labels[0]),
               "one label per sample response");

size_t jute_sample_request_count(void)
{
    return sizeof(sample_requests) / sizeof(sample_requests[0]);
}

const struct zn_request *jute_sample_request(size_t i)
{
    return i < jute_sample_request_count() ? &sample_requests[i] : NULL;
}

const char *jute_sample_request_label(size_t i)
{
    return i < jute_sample_request_count() ? sample_request_labels[i] : NULL;
}

size_t jute_sample_response_count(void)
{
    return sizeof(sample_responses) / sizeof(sample_responses[0]);
}

const struct zn_response *jute_sample_response(size_t i)
{
    return i < jute_sample_response_count() ? &sample_responses[i] : NULL;
}

const char *jute_sample_response_label(size_t i)
{
    return i < jute_sample_response_count() ? sample_response_labels[i] : NULL;
}
