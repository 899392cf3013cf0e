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

JUTE_IO_INLINE int io_client_info(struct jute_io *io, struct zn_response *resp)
{
    JUTE_IO_VEC(io, &resp->client_info_count, resp->client_info, JUTE_CLIENT_INFO_MIN_BYTES);
    for (int32_t i = 0; i < resp->client_info_count; i++) {
        jute_io_string(io, &resp->client_info[i].auth_scheme);
        jute_io_string(io, &resp->client_info[i].user);
    }
    return jute_io_error(io);
}

/* Every body but multi, both directions.  Decoding, the caller has zeroed
 * resp and set its type. */
JUTE_IO_INLINE int io_body(struct jute_io *io, struct zn_response *resp)
{
    switch (resp->type) {
    case ZN_OP_CREATE:
    case ZN_OP_SYNC:
        jute_io_string(io, &resp->path);
        break;
    case ZN_OP_CREATE2:
    case ZN_OP_CREATETTL:
    case ZN_OP_CREATECONTAINER: /* FinalRequestProcessor: Create2Response, which Java's client reads */
        jute_io_string(io, &resp->path);
        jute_io_stat(io, &resp->stat);
        break;
    case ZN_OP_EXISTS:
    case ZN_OP_SETDATA:
    case ZN_OP_SETDATATIME:
    case ZN_OP_SETACL:
        jute_io_stat(io, &resp->stat);
        break;
    case ZN_OP_GETDATA:
    case ZN_OP_RECONFIG:
        jute_io_buffer(io, &resp->data);
        jute_io_stat(io, &resp->stat);
        break;
    case ZN_OP_GETACL:
        jute_io_acl_vec(io, &resp->acl);
        jute_io_stat(io, &resp->stat);
        break;
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETEPHEMERALS:
        jute_io_string_vec(io, &resp->children);
        break;
    case ZN_OP_GETCHILDREN2:
        jute_io_string_vec(io, &resp->children);
        jute_io_stat(io, &resp->stat);
        break;
    case ZN_OP_GETCHILDRENKINDS:
    case ZN_OP_GETCHILDRENKINDSTIME:
        jute_io_string_vec(io, &resp->children);
        jute_io_stat(io, &resp->stat);
        jute_io_buffer(io, &resp->data);
        break;
    case ZN_OP_GETALLCHILDRENNUMBER:
        jute_io_int(io, &resp->number);
        break;
    case ZN_OP_WHOAMI:
        io_client_info(io, resp);
        break;
    case ZN_OP_SASL: /* SetSASLResponse: the server's token (null: -1) */
        jute_io_buffer(io, &resp->data);
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
        /* ZooKeeper answers addWatch with ErrorResponse(0), and its Java
         * client reads that int: without it the client drops the connection. */
        int32_t error_response = 0;
        jute_io_int(io, &error_response);
        break;
    }
    default:
        return jute_io_fail(io, ZN_UNIMPLEMENTED);
    }
    return jute_io_error(io);
}

/* The types a result may have inside a multi (MultiResponse.java): anything
 * else there is refused both ways. */
static bool result_type_valid(int32_t type)
{
    switch (type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_SETDATA:
    case ZN_OP_GETCHILDREN:
    case ZN_OP_GETDATA:
    case ZN_OP_DELETE:
    case ZN_OP_CHECK:
        return true;
    default:
        return false;
    }
}

/* ---- encode ---- */

/* One result inside a multi: its header, then the body its type calls for. */
JUTE_IO_INLINE int write_result(struct jute_io *io, const struct zn_response *res)
{
    bool done = false;
    if (res->type == ZN_OP_ERROR || res->err != 0) {
        int32_t type = ZN_OP_ERROR, err = res->err;
        jute_io_multi_header(io, &type, &done, &err);
        return jute_io_int(io, &err); /* ErrorResponse */
    }
    /* MultiResponse has no createTTL/createContainer result types: ZooKeeper's
     * FinalRequestProcessor answers these ops with a CreateResult carrying a
     * stat, which goes on the wire as create2. */
    struct zn_response as_sent = *res;
    if (res->type == ZN_OP_CREATETTL || res->type == ZN_OP_CREATECONTAINER)
        as_sent.type = ZN_OP_CREATE2;
    int32_t err = 0;
    jute_io_multi_header(io, &as_sent.type, &done, &err);
    if (!result_type_valid(as_sent.type))
        return jute_io_fail(io, ZN_MARSHALLINGERROR);
    return io_body(io, &as_sent);
}

int jute_write_response(struct jute_writer *w, const struct zn_response *resp)
{
    ZN_ASSERT(w != NULL && resp != NULL);
    if (w->error != 0)
        return w->error;
    struct jute_io io = jute_io_writer(w);
    if (resp->type != ZN_OP_MULTI && resp->type != ZN_OP_MULTIREAD)
        return io_body(&io, (struct zn_response *)resp); /* encoding only reads it */
    ZN_ASSERT(resp->result_count >= 0 && (resp->result_count == 0 || resp->results != NULL));
    for (int32_t i = 0; i < resp->result_count; i++)
        write_result(&io, &resp->results[i]);
    int32_t type = -1, err = -1;
    bool done = true;
    return jute_io_multi_header(&io, &type, &done, &err);
}

/* ---- decode ---- */

static int read_multi(struct jute_reader *r, struct zn_response *resp);

int jute_read_response(struct jute_reader *r, int32_t type, struct zn_response *resp)
{
    ZN_ASSERT(r != NULL && resp != NULL);
    memset(resp, 0, sizeof(*resp));
    resp->type = type;
    if (r->error != 0)
        return r->error;
    int rc;
    struct jute_io io = jute_io_reader(r);
    if (type == ZN_OP_MULTI || type == ZN_OP_MULTIREAD)
        rc = read_multi(r, resp);
    else
        rc = io_body(&io, resp);
    if (rc != 0) {
        memset(resp, 0, sizeof(*resp));
        resp->type = type;
    }
    return rc;
}

/* Reads one MultiHeader and, unless it ends the list, the result after it
 * into *res (jute_read_one_fn). */
static int read_multi_result(struct jute_reader *r, void *ctx, void *elem, bool *done)
{
    int32_t type = 0, err = 0;
    struct zn_response *res = elem;
    struct jute_io io = jute_io_reader(r);
    if (jute_io_multi_header(&io, &type, done, &err) != 0 || *done)
        return r->error;
    memset(res, 0, sizeof(*res));
    res->type = type;
    if (type == ZN_OP_ERROR)
        return jute_io_int(&io, &res->err); /* ErrorResponse */
    if (!result_type_valid(type))
        return jute_reader_fail(r, ZN_MARSHALLINGERROR);
    return io_body(&io, res);
}

/* As for multi requests, the result count is not on the wire. */
static int read_multi(struct jute_reader *r, struct zn_response *resp)
{
    void *results = NULL;
    int rc = jute_read_unsized_list(r, sizeof(*resp->results), read_multi_result, NULL, &results,
                                    &resp->result_count);
    resp->results = results;
    return rc;
}
