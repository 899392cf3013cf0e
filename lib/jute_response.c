/*
 * jute_response.c: the bodies of replies (what follows the ReplyHeader),
 * both directions, by the opcode of the request they answer.  Layouts are
 * zookeeper.jute's; multi results follow MultiResponse.java:
 *
 *   { MultiHeader{type, done=false, err} result-body }*  MultiHeader{-1, true, -1}
 *
 * where the result body depends on the header's type, not on the request's
 * op: create -> CreateResponse, create2 -> Create2Response, setData ->
 * SetDataResponse (stat), delete and check -> nothing, getChildren ->
 * GetChildrenResponse, getData -> GetDataResponse, error (-1) ->
 * ErrorResponse{err}.  Any other type there is ZN_MARSHALLINGERROR, as in
 * MultiResponse.deserialize, except that the encoder writes a createTTL or
 * createContainer result as create2, which is what ZooKeeper sends for them.
 */
#include <string.h>

#include "assert.h"
#include "jute.h"
#include "jute_internal.h"

/* Smallest ClientInfo on the wire: two empty strings. */
#define JUTE_CLIENT_INFO_MIN_BYTES 8

/* ---- encode ---- */

static int write_multi(struct jute_writer *w, const struct zn_response *resp);

static int write_client_info(struct jute_writer *w, const struct zn_response *resp)
{
    ZN_ASSERT(resp->client_info_count >= -1);
    ZN_ASSERT(resp->client_info_count <= 0 || resp->client_info != NULL);
    jute_write_int(w, resp->client_info_count);
    for (int32_t i = 0; i < resp->client_info_count; i++) {
        jute_write_string(w, resp->client_info[i].auth_scheme);
        jute_write_string(w, resp->client_info[i].user);
    }
    return w->error;
}

int jute_write_response(struct jute_writer *w, const struct zn_response *resp)
{
    ZN_ASSERT(w != NULL && resp != NULL);
    if (w->error != 0)
        return w->error;
    switch (resp->type) {
    case ZN_OP_CREATE:
    case ZN_OP_SYNC:
        jute_write_string(w, resp->path);
        break;
    case ZN_OP_CREATE2:
    case ZN_OP_CREATETTL:
    case ZN_OP_CREATECONTAINER: /* FinalRequestProcessor: Create2Response, which Java's client reads */
        jute_write_string(w, resp->path);
        jute_write_stat(w, &resp->stat);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
    case ZN_OP_SETACL:
        jute_write_stat(w, &resp->stat);
        break;
    case ZN_OP_GETDATA:
    case ZN_OP_RECONFIG:
        jute_write_buffer(w, resp->data.data, resp->data.len);
        jute_write_stat(w, &resp->stat);
        break;
    case ZN_OP_GETACL:
        jute_write_acl_vec(w, &resp->acl);
        jute_write_stat(w, &resp->stat);
        break;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETEPHEMERALS:
        jute_write_string_vec(w, &resp->children);
        break;
    case ZN_OP_GETCHILDREN2:
        jute_write_string_vec(w, &resp->children);
        jute_write_stat(w, &resp->stat);
        break;
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_write_string_vec(w, &resp->children);
        jute_write_stat(w, &resp->stat);
        jute_write_buffer(w, resp->data.data, resp->data.len);
        break;
    case ZN_OP_GETALLCHILDRENNUMBER:
        jute_write_int(w, resp->number);
        break;
    case ZN_OP_WHOAMI:
        write_client_info(w, resp);
        break;
    case ZN_OP_SASL: /* SetSASLResponse: the server's token (null: -1) */
        jute_write_buffer(w, resp->data.data, resp->data.len);
        break;
    case ZN_OP_MULTI:
    case ZN_OP_MULTIREAD:
        return write_multi(w, resp);
    case ZN_OP_DELETE:
    case ZN_OP_DELETECONTAINER:
    case ZN_OP_CHECK:
    case ZN_OP_PING:
    case ZN_OP_AUTH:
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2:
    case ZN_OP_REMOVEWATCHES:
    case ZN_OP_CHECKWATCHES:
    case ZN_OP_CLOSESESSION:
        break;
    case ZN_OP_ADDWATCH:
        /* ZooKeeper answers addWatch with ErrorResponse(0), and its Java
         * client reads that int: without it the client drops the connection. */
        jute_write_int(w, 0);
        break;
    default:
        return jute_writer_fail(w, ZN_UNIMPLEMENTED);
    }
    return w->error;
}

static void write_multi_header(struct jute_writer *w, int32_t type, bool done, int32_t err)
{
    jute_write_int(w, type);
    jute_write_bool(w, done);
    jute_write_int(w, err);
}

/* One result inside a multi: its header, then the body its type calls for. */
static int write_result(struct jute_writer *w, const struct zn_response *res)
{
    if (res->type == ZN_OP_ERROR || res->err != 0) {
        write_multi_header(w, ZN_OP_ERROR, false, res->err);
        return jute_write_int(w, res->err); /* ErrorResponse */
    }
    switch (res->type) {
    case ZN_OP_CREATETTL:
    case ZN_OP_CREATECONTAINER: {
        /* MultiResponse has no such result types: ZooKeeper's
         * FinalRequestProcessor answers these ops with a CreateResult
         * carrying a stat, which goes on the wire as create2. */
        struct zn_response as_create2 = *res;
        as_create2.type = ZN_OP_CREATE2;
        write_multi_header(w, ZN_OP_CREATE2, false, 0);
        return jute_write_response(w, &as_create2);
    }
    default:
        break;
    }
    write_multi_header(w, res->type, false, 0);
    switch (res->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_SETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETDATA:
        return jute_write_response(w, res);
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        return w->error;
    default:
        return jute_writer_fail(w, ZN_MARSHALLINGERROR);
    }
}

static int write_multi(struct jute_writer *w, const struct zn_response *resp)
{
    ZN_ASSERT(resp->result_count >= 0 && (resp->result_count == 0 || resp->results != NULL));
    for (int32_t i = 0; i < resp->result_count; i++)
        write_result(w, &resp->results[i]);
    write_multi_header(w, -1, true, -1);
    return w->error;
}

/* ---- decode ---- */

static int read_multi(struct jute_reader *r, struct zn_response *resp);

static int read_client_info(struct jute_reader *r, struct zn_response *resp)
{
    int32_t count = 0;
    if (jute_read_count(r, JUTE_CLIENT_INFO_MIN_BYTES, &count) != 0)
        return r->error;
    if (count > 0) {
        resp->client_info = jute_read_alloc(r, (size_t)count, sizeof(*resp->client_info));
        if (resp->client_info == NULL)
            return r->error;
        for (int32_t i = 0; i < count; i++) {
            jute_read_string(r, &resp->client_info[i].auth_scheme);
            jute_read_string(r, &resp->client_info[i].user);
        }
    }
    resp->client_info_count = count;
    return r->error;
}

/* Every body but multi; the caller has zeroed resp and set its type. */
static int read_body(struct jute_reader *r, struct zn_response *resp)
{
    switch (resp->type) {
    case ZN_OP_CREATE:
    case ZN_OP_SYNC:
        jute_read_string(r, &resp->path);
        break;
    case ZN_OP_CREATE2:
    case ZN_OP_CREATETTL:
    case ZN_OP_CREATECONTAINER:
        jute_read_string(r, &resp->path);
        jute_read_stat(r, &resp->stat);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
    case ZN_OP_SETACL:
        jute_read_stat(r, &resp->stat);
        break;
    case ZN_OP_GETDATA:
    case ZN_OP_RECONFIG:
        jute_read_buffer(r, &resp->data);
        jute_read_stat(r, &resp->stat);
        break;
    case ZN_OP_GETACL:
        jute_read_acl_vec(r, &resp->acl);
        jute_read_stat(r, &resp->stat);
        break;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETEPHEMERALS:
        jute_read_string_vec(r, &resp->children);
        break;
    case ZN_OP_GETCHILDREN2:
        jute_read_string_vec(r, &resp->children);
        jute_read_stat(r, &resp->stat);
        break;
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_read_string_vec(r, &resp->children);
        jute_read_stat(r, &resp->stat);
        jute_read_buffer(r, &resp->data);
        break;
    case ZN_OP_GETALLCHILDRENNUMBER:
        jute_read_int(r, &resp->number);
        break;
    case ZN_OP_WHOAMI:
        read_client_info(r, resp);
        break;
    case ZN_OP_SASL:
        jute_read_buffer(r, &resp->data);
        break;
    case ZN_OP_DELETE:
    case ZN_OP_DELETECONTAINER:
    case ZN_OP_CHECK:
    case ZN_OP_PING:
    case ZN_OP_AUTH:
    case ZN_OP_SETWATCHES:
    case ZN_OP_SETWATCHES2:
    case ZN_OP_REMOVEWATCHES:
    case ZN_OP_CHECKWATCHES:
    case ZN_OP_CLOSESESSION:
        break;
    case ZN_OP_ADDWATCH: {
        int32_t error_response; /* ErrorResponse(0), see jute_write_response */
        jute_read_int(r, &error_response);
        break;
    }
    default:
        return jute_reader_fail(r, ZN_UNIMPLEMENTED);
    }
    return r->error;
}

int jute_read_response(struct jute_reader *r, int32_t type, struct zn_response *resp)
{
    ZN_ASSERT(r != NULL && resp != NULL);
    memset(resp, 0, sizeof(*resp));
    resp->type = type;
    if (r->error != 0)
        return r->error;
    int rc;
    if (type == ZN_OP_MULTI || type == ZN_OP_MULTIREAD)
        rc = read_multi(r, resp);
    else
        rc = read_body(r, resp);
    if (rc != 0) {
        memset(resp, 0, sizeof(*resp));
        resp->type = type;
    }
    return rc;
}

/* One result inside a multi, after its header. */
static int read_result(struct jute_reader *r, int32_t type, struct zn_response *res)
{
    memset(res, 0, sizeof(*res));
    res->type = type;
    switch (type) {
    case ZN_OP_ERROR:
        return jute_read_int(r, &res->err); /* ErrorResponse */
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_SETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETDATA:
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        return read_body(r, res);
    default:
        return jute_reader_fail(r, ZN_MARSHALLINGERROR);
    }
}

/* Reads one MultiHeader and, unless it ends the list, the result after it
 * into *res.  Returns 0 with *done set, or the sticky error. */
static int read_multi_result(struct jute_reader *r, struct zn_response *res, bool *done)
{
    int32_t type = 0, err = 0;
    jute_read_int(r, &type);
    jute_read_bool(r, done);
    if (jute_read_int(r, &err) != 0 || *done)
        return r->error;
    return read_result(r, type, res);
}

/*
 * As for multi requests (jute_request.c), the result count is not on the
 * wire: a first pass validates and counts the results with their strings in a
 * scratch arena, the second decodes them into an array of exactly that size.
 */
static int read_multi(struct jute_reader *r, struct zn_response *resp)
{
    size_t start = r->pos;
    struct zn_arena *arena = r->arena;
    struct zn_arena scratch;
    zn_arena_init(&scratch);
    r->arena = &scratch;
    size_t count = 0;
    for (;;) {
        struct zn_response res;
        bool done = false;
        if (read_multi_result(r, &res, &done) != 0 || done)
            break;
        zn_arena_reset(&scratch);
        if (++count > INT32_MAX)
            jute_reader_fail(r, ZN_MARSHALLINGERROR);
    }
    r->arena = arena;
    zn_arena_free(&scratch);
    if (r->error != 0)
        return r->error;

    r->pos = start;
    if (count > 0) {
        resp->results = jute_read_alloc(r, count, sizeof(*resp->results));
        if (resp->results == NULL)
            return r->error;
    }
    for (size_t i = 0; i < count; i++) {
        bool done = false;
        if (read_multi_result(r, &resp->results[i], &done) != 0)
            return r->error;
        ZN_ASSERT(!done);
    }
    struct zn_response terminator;
    bool done = false;
    read_multi_result(r, &terminator, &done);
    ZN_ASSERT(r->error != 0 || done);
    if (r->error != 0)
        return r->error;
    resp->result_count = (int32_t)count;
    return 0;
}
