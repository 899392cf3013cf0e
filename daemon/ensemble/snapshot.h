/*
 * Snapshots of the tree taken in a forked child, so the event loop never
 * stops to serialise it.  See snapshot.c.
 */
#ifndef ZNODED_SNAPSHOT_H
#define ZNODED_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct server;

/* Called once on the loop: status 0 when the child wrote the tree at zxid
 * into store_snapshot_dir()/snapshot.<zxid>.tmp (complete and fsync'd, for
 * store_snapshot_file), or ZN_IO when it failed (no file is left). */
typedef void (*snapshot_ready_fn)(struct server *srv, int64_t zxid, int status);

/* Starts serialising the tree as it is now (at tree_last_zxid).  Returns 0
 * (on_ready will be called exactly once), ZN_THROTTLEDOP if one is already
 * running, or ZN_IO / ZN_NOMEMORY if no child could be started (on_ready is
 * then never called: serialise on the loop instead). */
int snapshot_start(struct server *srv, snapshot_ready_fn on_ready);

bool snapshot_in_progress(const struct server *srv);

/* The server is stopping: a running child is killed rather than waited
 * for (with 10M znodes it writes for ~10 s, and the snapshot would be
 * thrown away: on_ready then sees no store).  on_ready still runs, with
 * ZN_IO, once the child is reaped; its temporary file goes. */
void snapshot_abandon(struct server *srv);

#endif
