/*
 * check: invariant checkers for the server's state, run after every apply in
 * debug and sanitizer builds (ZN_CHECK_INVARIANTS, set by CMake for Debug and
 * ZN_SANITIZE builds; release builds skip them for their cost).
 *
 * They read each module through its public functions and iteration helpers,
 * not its internals, so they hold whatever the module's tables are made of:
 *  tree    every child's path is its parent's path and its name; the path
 *          index finds every node reached from the root, and only those
 *          (the node count); each node's stat agrees with its children and
 *          data; node count and data bytes match the counters; an ephemeral
 *          node's owner is a session of the table, and each session's
 *          ephemeral list holds exactly its ephemeral nodes; ephemerals have
 *          no children; the quota set holds exactly the limit nodes' paths;
 *          plus tree_check (links, digests) inside tree.c;
 *  prep    the overlay's FIFO is in zxid order and holds nothing the tree
 *          has applied; a record hides only an older record of its key, both
 *          ways; a lookup of a key finds its newest record and nothing else;
 *  watches every registration is seen from both sides (the path's entry
 *          lists the owner, the owner lists the path) exactly once, and the
 *          counts agree.
 * Each returns 0, or ZN_DATAINCONSISTENCY with a one-line reason in why.
 */
#ifndef ZNODED_CHECK_H
#define ZNODED_CHECK_H

#include <stddef.h>
#include <stdint.h>

struct tree;
struct prep;
struct watch_manager;
struct watch_owner;
struct server;

#define CHECK_WHY_BYTES 256

int check_tree(const struct tree *t, char why[CHECK_WHY_BYTES]);
/* applied_zxid: the last zxid the tree applied (prep_applied was told). */
int check_prep(const struct prep *p, int64_t applied_zxid, char why[CHECK_WHY_BYTES]);
/* owners: the owners the caller knows of (may be NULL when count is 0);
 * owners found in the manager's entries are checked too. */
int check_watches(const struct watch_manager *wm, struct watch_owner *const *owners, size_t count,
                  char why[CHECK_WHY_BYTES]);

/* After an apply at zxid: runs the three over the server's state and stops
 * the process with the reason when one fails.  A no-op unless built with
 * ZN_CHECK_INVARIANTS.  On trees of more than CHECK_FULL_NODES nodes it
 * checks once per node_count / CHECK_FULL_NODES applies, so the checks cost
 * about as much per apply whatever the tree's size. */
#define CHECK_FULL_NODES 4096
void check_after_apply(struct server *srv, int64_t zxid);

#endif
