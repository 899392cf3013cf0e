/*
 * prep: the leader's prep stage (ZooKeeper's PrepRequestProcessor).
 *
 * Turns a write request into a transaction (txn.h), checking it against the
 * tree *as it will be* once every transaction already prepared has applied:
 * prep keeps an overlay of pending changes by path (ZooKeeper's
 * outstandingChanges), each tagged with its zxid and dropped by prep_applied
 * once the tree has applied that zxid.  Checks and error codes are
 * ZooKeeper's, in its order (see prep.c for each request type).
 *
 * Prep reads the tree (borrowed: it must outlive the prep, and it is only
 * read between calls) and owns its overlay.  It does no I/O but the quota
 * warnings it logs (as ZooKeeper does) and reads no clock: the zxid and the
 * time come in as arguments.
 *
 * Output ownership: the txn written to *out (path, data, ACL, close-session
 * path list, multi ops) lives in `arena` and borrows nothing from the
 * request; the per-op results written to *error_result live in `arena` too.
 */
#ifndef ZNODED_PREP_H
#define ZNODED_PREP_H

#include <stdbool.h>
#include <stdint.h>

#include "jute.h"
#include "tree.h"
#include "txn.h"

/* Largest data a create or setData may carry.  The packet limit of the
 * connection normally stops larger data first; this is the last line. */
#define PREP_MAX_DATA_BYTES ZN_DEFAULT_MAX_PACKET_BYTES

/*
 * Who asks for a write, built by whoever received it: the member holding the
 * client's connection, or the leader from what a member forwarded with it.
 * ids are every identity the caller holds (ip, digest, x509, sasl, super),
 * borrowed for the call; prep judges ACLs by them and expands the "auth"
 * scheme to the authenticated ones (digest, x509, sasl), as ZooKeeper's
 * checkACL and fixupACL use the request's authInfo.  Session 0 is the server
 * itself (container and TTL cleanup): no ACL is checked.
 */
struct prep_caller {
    int64_t session_id;
    int32_t cxid;
    const struct zn_id *ids;
    size_t id_count;
};

struct prep_options {
    bool ttl_enabled;               /* zookeeper.extendedTypesEnabled: createTTL allowed */
    bool x509_enabled;              /* the x509 scheme has a provider (secureClientPort is set) */
    bool sasl_enabled;              /* the sasl scheme has a provider (authProvider.N names
                                     * SASLAuthenticationProvider) */
    bool enforce_quota;             /* zookeeper.enforceQuota: creates and setData past a hard
                                     * quota fail with QUOTAEXCEEDED, and passing any quota
                                     * logs a warning (ZooKeeper 3.7+ checkQuota) */
    bool enforce_acl;               /* check the caller's permissions (CREATE and DELETE on
                                     * the parent, WRITE for setData, ADMIN for setACL, READ
                                     * for check); off: skipACL, or a test of other rules */
};

struct prep;

/* A prep over `tree` with default options (TTL off, no ACL checked);
 * NULL when out of memory. */
struct prep *prep_new(const struct tree *tree);
void prep_free(struct prep *p);
/* Copies the options in. */
void prep_set_options(struct prep *p, const struct prep_options *options);
/* reconfigEnabled: a standalone server answers reconfig with UNIMPLEMENTED
 * when it is set, RECONFIGDISABLED otherwise (as ZooKeeper).  Default off. */
void prep_set_reconfig_enabled(struct prep *p, bool enabled);

/*
 * Prepares a write request: create, create2, createContainer, createTTL,
 * delete, deleteContainer (the container cleaner's: no ACL check, NOTEMPTY
 * if it has children, BADVERSION for a session's ephemeral; its txn is a
 * DELETE), setData, setACL, check, multi.  `req` is borrowed for the call.
 * On success returns 0, fills *out with the txn (header: session_id, cxid,
 * zxid, now_ms, type) and records its changes in the overlay.
 * On failure returns ZooKeeper's error (BADARGUMENTS, NONODE, NODEEXISTS,
 * NOCHILDRENFOREPHEMERALS, BADVERSION, NOTEMPTY, INVALIDACL, NOAUTH,
 * QUOTAEXCEEDED (enforce_quota, against the applied tree's quota stats),
 * UNIMPLEMENTED, SESSIONEXPIRED for an ephemeral of an unknown or closing
 * session) or ZN_NOMEMORY; the overlay is unchanged; *out holds the ERROR txn
 * ZooKeeper would log (for a multi: a MULTI of ERROR ops); *error_result
 * (when non-NULL) holds the reply: type and err, and for a multi the per-op
 * results (ops before the failing one: err 0; the failing one: its error;
 * the rest: RUNTIMEINCONSISTENCY; every result of type ZN_OP_ERROR).
 * zxid must be larger than that of any request prepared successfully since
 * the last reset; a failed request leaves no record, so its zxid may be
 * given to the next request (the caller logs nothing for it).
 * A create's flags may carry the znodefs kind (ZN_CREATE_KIND_FILE or
 * ZN_CREATE_KIND_DIRECTORY, proto.h): stored with the node through its txn
 * op; both bits at once are BADARGUMENTS, as any unknown create mode.
 */
int prep_request(struct prep *p, const struct prep_caller *who, const struct zn_request *req, int64_t zxid,
                 int64_t now_ms, struct zn_arena *arena, struct txn *out, struct zn_response *error_result);

/* A CREATESESSION txn.  ZN_BADARGUMENTS if the session exists (or is being
 * created) or the id is 0 or reserved. */
int prep_create_session(struct prep *p, int64_t session_id, int32_t timeout_ms, int64_t zxid,
                        int64_t now_ms, struct zn_arena *arena, struct txn *out);
/* A CLOSESESSION txn listing the session's ephemerals as they will be (in
 * path order); from then on the overlay sees them deleted and the session
 * closing.  ZN_SESSIONEXPIRED if there is no such session or it is already
 * closing. */
int prep_close_session(struct prep *p, int64_t session_id, int64_t zxid, int64_t now_ms,
                       struct zn_arena *arena, struct txn *out);

/* The tree has applied every txn up to `zxid`: drops their overlay records. */
void prep_applied(struct prep *p, int64_t zxid);
/* Drops the whole overlay (after a leader change or a failed proposal). */
void prep_reset(struct prep *p);
/* Records in the overlay (for tests and metrics). */
size_t prep_pending_count(const struct prep *p);

/* One overlay record as the invariant checker (check.h) sees it: borrowed for
 * the call; ids are opaque and stable while the record lives. */
struct prep_record_info {
    const void *id;
    const void *shadowed_id;    /* the older record of the key it hides, or NULL */
    const void *shadowed_by_id; /* the newer record hiding it, or NULL */
    const char *key;            /* a path, or "#" and a session id in hex */
    size_t key_len;
    int64_t zxid;
    bool newest;                /* the record a lookup of its key finds */
};
/* Calls fn for every record, oldest first (FIFO order), until it returns
 * non-zero; returns that value or 0.  fn must not change the prep. */
typedef int (*prep_record_fn)(void *ctx, const struct prep_record_info *info);
int prep_for_each_record(const struct prep *p, prep_record_fn fn, void *ctx);
/* The id of the record a lookup of key finds, or NULL. */
const void *prep_find_record(const struct prep *p, const char *key, size_t len);

#endif
