/*
 * A client request on its way through the server: what the connection FIFO
 * (request.c), the reads (read.c) and the write path (ensemble.c) share.
 */
#ifndef ZNODED_REQUEST_H
#define ZNODED_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "jute.h"
#include "txn.h"

struct conn;
struct server;
struct session;

/* Pseudo-opcode of the connect handshake inside a conn's FIFO. */
#define REQUEST_CONNECT (-1000)

struct request {
    struct request *next;          /* in its conn's FIFO */
    struct request *next_pending;  /* in the leader's backlog or the syncs waiting */
    struct conn *conn;             /* NULL once the conn is gone */
    int64_t session_id;
    struct zn_request_header hdr;
    struct zn_request req;
    struct zn_response resp;
    struct zn_arena arena;
    uint8_t *packet;               /* owned copy of header + body; req borrows from it */
    size_t packet_len;
    bool packet_in_arena;          /* packet lives in arena (else malloc'd, freed with r) */
    int64_t zxid;                  /* writes: the txn's zxid */
    struct txn txn;
    uint8_t *txn_bytes;
    size_t txn_len;
    int32_t err;
    int32_t timeout_ms;            /* CONNECT / CREATESESSION */
    uint64_t received_ms;
    uint64_t received_us;          /* for latency metrics */
    bool is_write;
    bool done;
    bool appended;                 /* given to the store (or nothing to log) */
    bool has_txn;                  /* false: a write prep refused, answered in order */
    bool expired_connect;          /* CONNECT: answer "expired" and close */
    bool close_after_reply;        /* refused (enforce.auth): close the connection once answered */
    bool in_pipeline;              /* in the backlog or the syncs: not freed with its conn */
    /* ensemble mode */
    uint32_t origin;               /* leader: the member a forwarded request came from */
    uint64_t sync_target;          /* sync: done once the tree has applied this zxid */
    uint64_t forwarded_ms;         /* when it was forwarded to the leader (0: not) */
    struct zn_id *ids;             /* the identities it is judged by (acl_caller): sent with
                                    * a forward, or its connection's when first prepared */
    size_t id_count;
    bool has_ids;
};

/* request.c */
/* A request from srv's pool of freed ones (REQUEST_POOL_MAX kept, their
 * arenas' first blocks with them), or a new one; c may be NULL (forwarded,
 * the server's own). */
struct request *request_new(struct server *srv, struct conn *c);
void request_free(struct server *srv, struct request *r);
/* Answers everything at the head of c's FIFO that can be answered now. */
void request_drain(struct conn *c);
/* A request finished (applied or failed): answer it in order, or drop it. */
void request_finish(struct server *srv, struct request *r);
int64_t server_wall_ms(void);

/* read.c: executes a read (or ping, auth, setWatches) at the head of its FIFO. */
void read_execute(struct server *srv, struct conn *c, struct request *r);

/* snapshot_schedule.c: a snapshot every snapCount txns (after applying) */
void snapshot_maybe_take(struct server *srv);

#endif
