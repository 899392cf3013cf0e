/*
 * The watch manager: which clients wait for which events on which paths,
 * with ZooKeeper's trigger rules (WatchManager, 3.8).
 *
 * ZooKeeper keeps two tables, data watches and child watches, each entry
 * holding a mode (standard one-shot, persistent, persistent-recursive).  We
 * keep one entry per (kind, path), the kinds being those (table, mode)
 * pairs:
 *   WATCH_DATA                data table, one-shot (getData, exists)
 *   WATCH_CHILD               child table, one-shot (getChildren)
 *   WATCH_PERSISTENT_DATA     data table, persistent     } addWatch PERSISTENT
 *   WATCH_PERSISTENT_CHILD    child table, persistent    } adds both
 *   WATCH_RECURSIVE           data table, persistent-recursive (addWatch
 *                             PERSISTENT_RECURSIVE adds only this, as
 *                             DataTree.addWatch does)
 * Triggers:
 *   NodeCreated(p), NodeDataChanged(p)  DATA(p), PERSISTENT_DATA(p),
 *                                       RECURSIVE(p and every ancestor)
 *   NodeDeleted(p)                      the same, plus CHILD(p),
 *                                       PERSISTENT_CHILD(p)
 *   NodeChildrenChanged(p)              CHILD(p), PERSISTENT_CHILD(p)
 * A client gets at most one notification per event, whatever number of its
 * watches match.  One-shot watches are removed as they fire; persistent
 * ones stay until removeWatches or the connection goes.
 *
 * Clients are struct watch_owner, embedded by the caller in its connection;
 * the manager keeps O(1) back-links so removing an owner (a closed
 * connection) costs only its own registrations.
 */
#ifndef ZNODED_WATCH_H
#define ZNODED_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum watch_kind {
    WATCH_DATA = 0,
    WATCH_CHILD = 1,
    WATCH_PERSISTENT_DATA = 2,
    WATCH_PERSISTENT_CHILD = 3,
    WATCH_RECURSIVE = 4,
    WATCH_KINDS = 5,
};

/* Which table a kind belongs to, as ZooKeeper's removeWatches and
 * checkWatches see them (enum zn_watcher_type: CHILDREN or DATA). */
int32_t watch_kind_table(enum watch_kind kind);

struct watch_registration;

struct watch_owner {
    struct watch_registration *regs; /* owned by the manager */
    uint32_t count;
    uint32_t cap;
    uint64_t last_event_mark; /* the manager's: suppresses a second NodeDeleted */
};

/* One event as the manager tells it.  Every owner told of one trigger gets
 * the same type, path and id, so the callback may encode it once and copy
 * the bytes to each owner (the watch fan-out). */
struct watch_event {
    int32_t type;
    const char *path; /* borrowed for the call */
    uint64_t id;      /* > 0, new at each watch_trigger; 0: an event of its own (setWatches) */
};

/* Called once per (owner, event). */
typedef void (*watch_notify_fn)(void *ctx, struct watch_owner *owner, const struct watch_event *ev);

struct watch_manager;

struct watch_manager *watch_manager_new(watch_notify_fn notify, void *ctx);
void watch_manager_free(struct watch_manager *wm);

/* Initialises an owner with no watches. */
void watch_owner_init(struct watch_owner *owner);

/* Registers owner for the next event of kind on path (path is copied).
 * Returns 0 or ZN_NOMEMORY.  Registering twice is one registration. */
int watch_add(struct watch_manager *wm, enum watch_kind kind, const char *path,
              struct watch_owner *owner);

/* Fires the watches that event_type on path triggers, removing them.
 * Returns how many notifications were sent. */
size_t watch_trigger(struct watch_manager *wm, int32_t event_type, const char *path);

/* removeWatches: removes owner's watches on path in the tables of
 * watcher_type (ZN_WATCHER_CHILDREN, ZN_WATCHER_DATA or ZN_WATCHER_ANY),
 * every mode.  Returns how many were removed (0: ZooKeeper's NOWATCHER). */
size_t watch_remove(struct watch_manager *wm, const char *path, int32_t watcher_type,
                    struct watch_owner *owner);

/* checkWatches: does owner have a watch on path in the tables of
 * watcher_type? */
bool watch_contains(const struct watch_manager *wm, const char *path, int32_t watcher_type,
                    const struct watch_owner *owner);

/* Removes every registration of owner (a closed connection). */
void watch_remove_owner(struct watch_manager *wm, struct watch_owner *owner);

/* Counts for the four-letter words. */
size_t watch_count(const struct watch_manager *wm);       /* registrations */
size_t watch_path_count(const struct watch_manager *wm);  /* distinct (kind, path) */

/* Visits every path the owner watches (for wchc); path borrowed for the call. */
void watch_owner_foreach(const struct watch_owner *owner,
                         void (*fn)(void *ctx, enum watch_kind kind, const char *path), void *ctx);

/* Visits every watched path with its owners (for wchp). */
void watch_foreach_path(const struct watch_manager *wm,
                        void (*fn)(void *ctx, enum watch_kind kind, const char *path,
                                   struct watch_owner *const *owners, size_t count),
                        void *ctx);

#endif
