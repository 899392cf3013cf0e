/*
 * cleaner: ZooKeeper's ContainerManager for znoded.  Every
 * znode.container.checkIntervalMs it deletes, through the write path
 * as the server's own deleteContainer requests:
 *   - a container node with no children that has had one (its cversion is
 *     past 0), or, when znode.container.maxNeverUsedIntervalMs is set, one
 *     that never had a child and is older than that;
 *   - a TTL node with no children unchanged (mtime) for longer than its TTL.
 * Prep re-checks each (a child may have appeared since): the delete then
 * fails and nothing happens.
 */
#ifndef ZNODED_CLEANER_H
#define ZNODED_CLEANER_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct tree;

/* Most candidates one check collects; the rest wait for the next check. */
#define CLEANER_MAX_CANDIDATES_PER_CHECK 100000

/* Starts the periodic check on srv's loop.  Returns 0 or a libuv error. */
int cleaner_start(struct server *srv);
/* Stops it (closes its timer); safe to call when it was never started. */
void cleaner_stop(struct server *srv);

/*
 * The paths the check would delete now (now_ms is the wall clock), in no
 * particular order: calls fn for each (path borrowed for the call) until fn
 * returns non-zero.  Returns the number of candidates visited.  Pure: for
 * tests and for cleaner_check.
 */
size_t cleaner_candidates(const struct tree *t, int64_t now_ms, int64_t max_never_used_ms,
                          int (*fn)(void *ctx, const char *path), void *ctx);

/* Runs one check now (what the timer does); returns how many deletes were
 * submitted. */
size_t cleaner_check(struct server *srv);

#endif
