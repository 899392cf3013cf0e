/*
 * kind: the znodefs kind extension on the leader's write path (kind.c).
 */
#ifndef ZNODED_KIND_H
#define ZNODED_KIND_H

#include <stdint.h>

struct server;
struct request;

/*
 * The kind (enum tree_node_kind) the flags of a request of `type` ask for:
 * 0 with *kind set (ZN_NODE_KIND_UNKNOWN when no kind bit is set), or
 * ZN_BADARGUMENTS when both kind bits are set or the request is no create.
 */
int kind_from_flags(int32_t type, int32_t flags, int32_t *kind);

/*
 * prep_request for a client write: strips the kind bits of its creates
 * (top-level and in a multi) and stores each create's kind with its node.
 * r->req is read, not changed; the txn, the error reply and any copies go
 * to r->txn, r->resp and r->arena as prep_request puts them.  Returns
 * prep_request's result (BADARGUMENTS for misplaced kind bits).
 */
int kind_prep_request(struct server *srv, struct request *r, int64_t zxid, int64_t now_ms);

#endif
