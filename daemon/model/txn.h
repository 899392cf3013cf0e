/*
 * txn: the transaction records of the durable log, applied to the tree.
 *
 * A transaction is what the leader's prep stage (prep.h) makes of a write
 * request: every value is fixed at prep time (the final sequential name, the
 * new version, the parent's cversion after the create, the ephemeral owner,
 * the time), so applying it is deterministic and every member that applies
 * the same transactions in the same order has the same tree.
 *
 * Types are ZooKeeper's opcodes (as ZooKeeper's TxnHeader.type):
 *   ZN_OP_CREATE, ZN_OP_CREATE2        path data acl ephemeral_owner parent_cversion kind
 *   ZN_OP_CREATECONTAINER              same; the node is a container
 *   ZN_OP_CREATETTL                    same plus ttl_ms
 *   ZN_OP_DELETE                       path
 *   ZN_OP_SETDATA                      path data version (the new version)
 *   ZN_OP_SETACL                       path acl version (the new aversion)
 *   ZN_OP_CHECK                        path version (only inside a multi)
 *   ZN_OP_MULTI                        ops[] (each one of the above, or ERROR)
 *   ZN_OP_CREATESESSION                timeout_ms (the session id is hdr.session_id)
 *   ZN_OP_CLOSESESSION                 paths: the ephemerals prep saw; apply
 *                                      deletes these, then any other ephemeral
 *                                      of the session, in path order
 *   ZN_OP_ERROR                        err (a failed request still takes a zxid)
 * The create opcode is kept (not folded into one CREATE) because the reply
 * differs: create answers with the path only, create2/TTL/container with path
 * and stat.
 *
 * Wire form (jute primitives, big-endian): int format version, then the
 * header (long session_id, int cxid, long zxid, long time_ms, int type), then
 * the body of the type; a multi body is int count then per op: int type and
 * the op's body.
 *
 * Ownership: a struct txn never owns anything.  Built by prep, its strings,
 * buffers and vectors live in the arena prep was given (or are borrowed from
 * the request); decoded, its strings and vectors live in the reader's arena
 * and its byte buffers point into the reader's input.
 */
#ifndef ZNODED_TXN_H
#define ZNODED_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "jute.h"

#define TXN_FORMAT_VERSION 1
/* Most ops a multi may carry (ZooKeeper has no explicit limit; the packet
 * limit bounds it.  A multi of empty ops is at least 12 bytes each). */
#define TXN_MAX_MULTI_OPS (ZN_DEFAULT_MAX_PACKET_BYTES / 12)
/* Most ephemerals one close-session record may list. */
#define TXN_MAX_CLOSE_PATHS (1 << 24)

/* The kind of a node: a znodefs extension stored with the node, invisible to
 * ZooKeeper clients. */
enum tree_node_kind {
    ZN_NODE_KIND_UNKNOWN = 0,
    ZN_NODE_KIND_FILE = 1,
    ZN_NODE_KIND_DIRECTORY = 2,
};

struct txn_header {
    int64_t session_id;
    int32_t cxid;
    int64_t zxid;
    int64_t time_ms; /* wall clock of the leader at prep time */
    int32_t type;    /* ZN_OP_* */
};

/* One operation: the fields that matter depend on type (see above). */
struct txn_op {
    int32_t type;
    char *path;
    struct jute_buf data;         /* len -1: null data */
    struct zn_acl_vec acl;
    int32_t version;              /* SETDATA new version, SETACL new aversion, CHECK version */
    int32_t parent_cversion;      /* CREATE*: the parent's (persisted) cversion after the create */
    int64_t ephemeral_owner;      /* CREATE, CREATE2: owning session, 0 if persistent */
    int32_t kind;                 /* CREATE*: enum tree_node_kind */
    int64_t ttl_ms;               /* CREATETTL: time to live, > 0 */
    int32_t err;                  /* ERROR */
    int32_t timeout_ms;           /* CREATESESSION */
    struct zn_string_vec paths;   /* CLOSESESSION */
};

struct txn {
    struct txn_header hdr;
    struct txn_op op;      /* the body, when hdr.type != ZN_OP_MULTI (op.type == hdr.type) */
    int32_t op_count;      /* MULTI */
    struct txn_op *ops;    /* MULTI: op_count ops */
};

/* Appends the txn to the writer.  Returns 0, ZN_BADARGUMENTS for a type that
 * is not a transaction (or a multi op that may not be in a multi), or the
 * writer's error. */
int txn_encode(struct jute_writer *w, const struct txn *t);

/* Reads one txn.  Returns 0, ZN_MARSHALLINGERROR on truncated or malformed
 * input (unknown type or format version, counts over the limits), or
 * ZN_NOMEMORY.  *t is zeroed first; see the ownership note above. */
int txn_decode(struct jute_reader *r, struct txn *t);

/* Reads only the format version and the header of a txn (the rest of the
 * input is not looked at): 0, or ZN_MARSHALLINGERROR on a truncated header
 * or an unknown format version.  For whoever needs to know which request a
 * txn answers before it needs the txn (ensemble_apply.c). */
int txn_decode_header(struct jute_reader *r, struct txn_header *hdr);

/* Reads the rest of a txn after txn_decode_header read hdr from r: *t is
 * zeroed, then its header set to *hdr; returns as txn_decode. */
int txn_decode_body(struct jute_reader *r, const struct txn_header *hdr, struct txn *t);

/* True for the opcodes a multi may contain as transactions. */
bool txn_op_allowed_in_multi(int32_t type);

#endif
