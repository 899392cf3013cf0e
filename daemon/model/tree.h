/*
 * tree: the in-memory znode tree and the replicated session table.
 *
 * A pure data model: no I/O, no clock, no libuv, no logging.  Every change
 * comes from applying a committed transaction (txn.h) with tree_apply, so
 * members that apply the same transactions in the same order hold equal trees
 * and equal digests.
 *
 * Semantics are ZooKeeper's DataTree: nodes by full path, children as a set
 * (getChildren order is unspecified), the persisted cversion counts creates
 * of children and the client sees cversion * 2 - numChildren (DataNode
 * .copyStat), a delete sets the parent's pzxid but not its cversion, and the
 * initial tree holds "/", "/zookeeper", "/zookeeper/quota" and
 * "/zookeeper/config" (the last with ACL world:anyone READ and aversion -1),
 * all with zeroed stats.
 *
 * Ownership: the tree owns every node, its path, data and ACL.  Pointers the
 * accessors return (nodes, paths, names, data, ACLs) are borrowed until the
 * next tree_apply, tree_deserialize or tree_free on that tree.
 * Not thread-safe: one thread applies and reads (or the caller locks).
 */
#ifndef ZNODED_TREE_H
#define ZNODED_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jute.h"
#include "txn.h"

/* Most children one node may have; a create past it is refused by prep with
 * ZN_BADARGUMENTS (ZooKeeper has no limit; ours keeps counts in 32 bits). */
#define TREE_MAX_CHILDREN (INT32_MAX / 2)
/* Most sessions the table holds. */
#define TREE_MAX_SESSIONS (1 << 24)

/* Ephemeral-owner encodings ZooKeeper persists (EphemeralType.java). */
#define TREE_CONTAINER_OWNER INT64_MIN
#define TREE_TTL_OWNER_MASK ((int64_t)0xff00000000000000ull)
#define TREE_TTL_MAX_MS ((int64_t)0x000000ffffffffffll)

struct tree;
struct tree_node;

/*
 * A watch trigger: event_type is ZN_EVENT_CREATED, ZN_EVENT_DELETED,
 * ZN_EVENT_CHANGED or ZN_EVENT_CHILD; path is borrowed for the call only.
 * The watch manager is expected to do what ZooKeeper's does with each:
 * NodeDeleted fires data and child watches on the path.
 */
typedef void (*tree_event_fn)(void *ctx, int32_t event_type, const char *path);

/* A new tree holding ZooKeeper's initial nodes; NULL when out of memory. */
struct tree *tree_new(void);
void tree_free(struct tree *t);

/* The node at `path` (borrowed, see above), or NULL. */
const struct tree_node *tree_get(const struct tree *t, const char *path);

/* The stat a client sees (ZooKeeper's DataNode.copyStat): cversion as a count
 * of changes, ephemeral_owner 0 for containers and TTL nodes. */
void tree_node_stat(const struct tree_node *n, struct zn_stat *out);
/* The stored ephemeral owner (session id, TREE_CONTAINER_OWNER, or a TTL
 * encoding), as ZooKeeper persists it. */
int64_t tree_node_raw_owner(const struct tree_node *n);
bool tree_node_is_container(const struct tree_node *n);
/* The TTL of a TTL node, or -1. */
int64_t tree_node_ttl_ms(const struct tree_node *n);
/* The node's full path. */
const char *tree_node_path(const struct tree_node *n);
/* data.len is -1 for null data (created with null), else the length. */
struct jute_buf tree_node_data(const struct tree_node *n);
struct zn_acl_vec tree_node_acl(const struct tree_node *n);
int32_t tree_node_kind(const struct tree_node *n);
/* znodefs extension: the time (ms) of the txn that last made or deleted a
 * child (the one that set pzxid), the node's creation time if none did; 0 when
 * unknown (loaded from a format 2 snapshot).  Not part of the digest. */
int64_t tree_node_ptime(const struct tree_node *n);
uint32_t tree_node_child_count(const struct tree_node *n);
/* The index-th child's name (last component), 0 <= index < child count. */
const char *tree_node_child_name(const struct tree_node *n, uint32_t index);
const struct tree_node *tree_node_child(const struct tree_node *n, uint32_t index);

/*
 * Applies a committed transaction.  The txn is borrowed for the call.
 * Fires on_event (may be NULL) for every watch trigger, in ZooKeeper's order,
 * after the whole txn is applied: create: NodeCreated(path),
 * NodeChildrenChanged(parent); delete: NodeDeleted(path),
 * NodeChildrenChanged(parent); setData: NodeDataChanged(path); multi: each
 * op's in order; close session: the deletes of its ephemerals.
 * Fills *result when non-NULL with the client's reply (type, err, and path,
 * stat, per-op results for a multi); strings and vectors go to `arena`, which
 * must then be non-NULL.  An ERROR txn, or a failed multi (prep made all its
 * ops ERROR), is applied: it changes nothing but the last zxid, and
 * result->err carries the client's error.
 * Returns 0, or ZN_DATAINCONSISTENCY when the txn does not fit the tree (a bug
 * or a corrupt log; the tree is then unchanged and no event fired), or
 * ZN_NOMEMORY (the tree is then unchanged too).
 */
int tree_apply(struct tree *t, const struct txn *txn, tree_event_fn on_event, void *ctx,
               struct zn_arena *arena, struct zn_response *result);

/* The zxid of the last applied txn (or of the snapshot). */
int64_t tree_last_zxid(const struct tree *t);
/* Number of nodes, the root included (ZooKeeper's node count minus its "" alias). */
size_t tree_node_count(const struct tree *t);
/* Sum over nodes of path length + data length (ZooKeeper's approximateDataSize). */
size_t tree_data_bytes(const struct tree *t);
/* A 64-bit digest of the whole state: the sum of per-node hashes (path, stat
 * as persisted, data, acl, kind) and per-session hashes (id, timeout),
 * maintained incrementally; equal trees have equal digests whatever order the
 * operations took. */
uint64_t tree_digest(const struct tree *t);

/* ---- quotas and the config node ---- */

/* The deepest path with a quota (a /zookeeper/quota/<path>/zookeeper_limits
 * node exists) that is `path` or an ancestor of it, never "/": ZooKeeper's
 * getMaxPrefixWithQuota.  Borrowed until the next change of the tree; NULL
 * when there is none.  The tree keeps each quota's zookeeper_stats node
 * current as it applies txns (see tree_quota.c). */
const char *tree_quota_prefix(const struct tree *t, const char *path);
/* Number of paths with a quota. */
size_t tree_quota_count(const struct tree *t);

/* Largest /zookeeper/config text tree_set_config takes. */
#define TREE_CONFIG_MAX_BYTES (1024 * 1024)
/*
 * Sets /zookeeper/config to `text` (len bytes, copied), as ZooKeeper's
 * initConfigInZKDatabase: dataVersion -1, mzxid = config_version, mtime =
 * now_ms.  This is member-local state, not a txn: the digest does not change
 * (the config node's contents are not part of it), tree_serialize writes it
 * but tree_deserialize keeps the loading tree's own, and no watch fires.
 * Call it on every member after tree_new.  Returns 0, ZN_BADARGUMENTS when
 * len > TREE_CONFIG_MAX_BYTES, or ZN_NOMEMORY (the node is then unchanged).
 */
int tree_set_config(struct tree *t, const char *text, size_t len, int64_t config_version, int64_t now_ms);

/* ---- sessions ---- */

bool tree_session_exists(const struct tree *t, int64_t session_id);
/* 0 and *timeout_ms, or ZN_SESSIONEXPIRED if there is no such session. */
int tree_session_timeout(const struct tree *t, int64_t session_id, int32_t *timeout_ms);
size_t tree_session_count(const struct tree *t);
/* Calls fn for every session, in no particular order, until fn returns
 * non-zero; returns that value or 0.  fn must not change the tree. */
typedef int (*tree_session_fn)(void *ctx, int64_t session_id, int32_t timeout_ms);
int tree_for_each_session(const struct tree *t, tree_session_fn fn, void *ctx);
/* Same for the ephemeral nodes of one session (paths borrowed for the call). */
typedef int (*tree_path_fn)(void *ctx, const char *path);
int tree_for_each_ephemeral(const struct tree *t, int64_t session_id, tree_path_fn fn, void *ctx);
size_t tree_session_ephemeral_count(const struct tree *t, int64_t session_id);
/* Ephemeral nodes of all sessions (ZooKeeper's zk_ephemerals_count). */
size_t tree_ephemeral_count(const struct tree *t);

/* ---- snapshots ---- */

/* The snapshot format tree_serialize writes and tree_deserialize reads (it
 * reads 2 as well).  2: node digests hash 8-byte words (1 hashed byte by
 * byte); 3: each node's ptime after its kind. */
#define TREE_SNAPSHOT_VERSION 3
#define TREE_SNAPSHOT_OLDEST_VERSION 2

/* The format version of a serialised tree, or -1 if data is not one. */
int32_t tree_snapshot_format(const void *data, size_t len);

/* Appends the whole state (nodes, parents before children; sessions; last
 * zxid; digest) to w.  Returns 0 or the writer's error. */
int tree_serialize(const struct tree *t, struct jute_writer *w);
/* The same bytes, handed to flush a piece at a time: whenever w holds at
 * least flush_bytes (after a node), and once at the end, flush(ctx, bytes,
 * len) gets them and w is emptied (its memory kept), so w never holds much
 * more than flush_bytes and one node.  A nonzero return from flush stops
 * the walk and is returned.  Returns 0, the writer's error or flush's. */
typedef int (*tree_serialize_flush_fn)(void *ctx, const uint8_t *bytes, size_t len);
int tree_serialize_stream(const struct tree *t, struct jute_writer *w, size_t flush_bytes,
                          tree_serialize_flush_fn flush, void *ctx);
/* Loads a snapshot into `fresh`, a tree straight from tree_new (nothing
 * applied; a config set with tree_set_config is kept).  data is borrowed for
 * the call.  Returns 0, ZN_CORRUPT when the bytes are malformed or the digest
 * does not match (fresh is then back to its initial state), or ZN_NOMEMORY. */
int tree_deserialize(struct tree *fresh, const void *data, size_t len);

/* ---- import (another implementation's tree, node by node) ---- */

/* A node's stat as ZooKeeper persists it (StatPersisted): cversion counts
 * the creates of children, ephemeral_owner holds the container and TTL
 * encodings. */
struct tree_persisted_stat {
    int64_t czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner;
    int32_t version, cversion, aversion;
};

/* Empties t (a tree straight from tree_new) to be filled by the calls below:
 * sessions first, then nodes with parents before children, the root first;
 * then tree_import_end.  A failed call leaves t to be freed, nothing else. */
void tree_import_begin(struct tree *t);
/* Adds a session.  Returns 0, ZN_BADARGUMENTS (not a session id, or one
 * already there), or ZN_NOMEMORY. */
int tree_import_session(struct tree *t, int64_t id, int32_t timeout_ms);
/* Adds a node with this stat, data and ACL (copied), of kind UNKNOWN.
 * Returns 0, ZN_BADARGUMENTS (path not canonical or already there, the
 * root not first, no parent, an ephemeral parent, an owner session not
 * added), or ZN_NOMEMORY. */
int tree_import_node(struct tree *t, const char *path, struct jute_buf data,
                     const struct zn_acl_vec *acl, const struct tree_persisted_stat *stat);
/*
 * Applies a txn as ZooKeeper replays one over a fuzzy snapshot (a txn logged
 * after the snapshot's zxid that may already be in it): a close-session
 * first moves the parent pzxid of each path it lists that is gone; then the
 * txn is applied whole, or when it does not fit, op by op, skipping the ops
 * that do not fit (*skipped_ops counts them), where a delete of a node
 * already gone still moves its parent's pzxid (DataTree.deleteNode).
 * Returns 0, ZN_DATAINCONSISTENCY (zxid not above the last), ZN_NOMEMORY.
 */
int tree_import_replay(struct tree *t, const struct txn *txn, uint64_t *skipped_ops);
/* Ends an import at last_zxid: adds /zookeeper, /zookeeper/quota and
 * /zookeeper/config when they were not imported, rebuilds the quota set and
 * checks the invariants.  Returns 0, ZN_BADARGUMENTS (no root), or
 * ZN_NOMEMORY. */
int tree_import_end(struct tree *t, int64_t last_zxid);

/* Checks the invariants (links, counts, digest, session index); for tests and
 * assertions.  Returns 0 or ZN_DATAINCONSISTENCY.  O(nodes). */
int tree_check(const struct tree *t);

#endif
