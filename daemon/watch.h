/*
 * The watch manager: which clients wait for which one-shot events on which
 * paths, with ZooKeeper's trigger rules.
 *
 * Two tables, as ZooKeeper's WatchManager pair: data watches (set by
 * getData, and by exists whether or not the node exists) and child watches
 * (set by getChildren).  Triggers:
 *   NodeCreated(p)          data watches on p
 *   NodeDataChanged(p)      data watches on p
 *   NodeDeleted(p)          data and child watches on p (one event per client)
 *   NodeChildrenChanged(p)  child watches on p
 * A client registered several times on one path and table gets one event.
 * Every watch is one-shot: it is removed as it fires.
 *
 * Clients are struct watch_owner, embedded by the caller in its connection;
 * the manager keeps O(1) back-links so removing an owner (a closed
 * connection) costs only its own registrations.
 */
#ifndef ZNODED_WATCH_H
#define ZNODED_WATCH_H

#include <stddef.h>
#include <stdint.h>

enum watch_kind { WATCH_DATA = 0, WATCH_CHILD = 1, WATCH_KINDS = 2 };

struct watch_registration;

struct watch_owner {
    struct watch_registration *regs; /* owned by the manager */
    uint32_t count;
    uint32_t cap;
    uint64_t last_event_mark; /* the manager's: suppresses a second NodeDeleted */
};

/* Called once per (owner, event); path is borrowed for the call. */
typedef void (*watch_notify_fn)(void *ctx, struct watch_owner *owner, int32_t event_type,
                                const char *path);

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
