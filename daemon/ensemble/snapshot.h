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

/* Called once on the loop: blob holds the tree serialised at zxid, or is
 * NULL if the child failed.  Ownership passes: release gives it back, whole
 * or in page-aligned pieces (a mapping; see snapshot_blob_release). */
typedef void (*snapshot_ready_fn)(struct server *srv, int64_t zxid, uint8_t *blob, size_t len,
                                  store_blob_release_fn release);

/* Frees and unmaps a blob snapshot_start's on_ready was given, or a
 * page-aligned piece of it; safe on any thread. */
void snapshot_blob_release(void *blob, size_t len);

/* Starts serialising the tree as it is now (at tree_last_zxid).  Returns 0
 * (on_ready will be called exactly once), ZN_THROTTLEDOP if one is already
 * running, or ZN_IO / ZN_NOMEMORY if no child could be started (on_ready is
 * then never called: serialise on the loop instead). */
int snapshot_start(struct server *srv, snapshot_ready_fn on_ready);

bool snapshot_in_progress(const struct server *srv);

#endif
