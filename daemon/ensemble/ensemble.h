/*
 * The ensemble driver: znoded as one member of a replicated ensemble.
 *
 * It connects the pure replication core (replication/core/zab.h) to the
 * world: the peer transport, the LMDB store, the tick timer, the data tree
 * and the client connections.  See ensemble.c for the design notes.
 */
#ifndef ZNODED_ENSEMBLE_H
#define ZNODED_ENSEMBLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct request;
struct session;

/* The driver's clock: the core counts time in these ticks. */
#define ENSEMBLE_TICK_MS 50

/* In the store, a CONFIG entry of the log is kept behind these 8 bytes, so
 * recovery (and znoded --dump) can tell it from a txn. */
#define ENSEMBLE_CONFIG_ENTRY_MAGIC {0x80, 'Z', 'N', 'C', 'O', 'N', 'F', 0x01}
/* Buffers of compacted log entries freed per loop turn, and per tick for an
 * idle loop (see zab_collect): about 0.1-2 ms of work, 2.5 when every free
 * takes a write-protect fault after a snapshot's fork. */
#define ENSEMBLE_COLLECT_PER_TURN 256u
#define ENSEMBLE_COLLECT_PER_TICK 512u
/* A request forwarded to the leader and not committed within this many
 * ticks of syncLimit x tickTime gets its client disconnected (it reconnects
 * elsewhere) rather than waiting forever for a lost forward. */
#define ENSEMBLE_FORWARD_TIMEOUT_FACTOR 2
/* Writes a leader holds back while the core's window of uncommitted
 * proposals is full. */
#define ENSEMBLE_BACKLOG_MAX 100000

/* Opens the member's state (after store_open): recovers the tree from the
 * snapshot, hands the durable log to the core, starts the transport and the
 * tick.  Returns 0 or a negative code (logged). */
int ensemble_start(struct server *srv);
void ensemble_stop(struct server *srv);

/* True when clients may be served: following or leading an established
 * leader (broadcast phase). */
bool ensemble_serving(const struct server *srv);
/* A reconfiguration left this member out: it will never serve again. */
bool ensemble_removed(const struct server *srv);
bool ensemble_is_leader(const struct server *srv);
/* "leader", "follower", or "looking"; and the epoch of the leadership. */
const char *ensemble_role_name(const struct server *srv);
uint32_t ensemble_epoch(const struct server *srv);
uint32_t ensemble_leader_id(const struct server *srv);
/* Followers in sync with this leader (0 on a follower). */
int ensemble_synced_followers(const struct server *srv);
/* On the leader: the observers (server.N=...:observer) whose link is up, their ids in ids
 * (at most cap written); returns how many there are (0 when not leading). */
size_t ensemble_synced_observers(const struct server *srv, uint32_t *ids, size_t cap);

/* A local client's write (including closeSession), new session, or sync.
 * The request stays in its conn's FIFO and finishes when the txn that
 * answers it commits and is applied here. */
void ensemble_submit_write(struct server *srv, struct request *r);
void ensemble_submit_connect(struct server *srv, struct request *r);
void ensemble_submit_sync(struct server *srv, struct request *r);
/* Leader only: a cleanup write of the server's own (session 0); req is
 * borrowed for the call.  Returns 0 or an error (not leader, window full). */
struct zn_request;
int ensemble_submit_system(struct server *srv, const struct zn_request *req);
/* Leader only: expire a silent session. */
void ensemble_expire_session(struct server *srv, struct session *s);
/* A snapshot at zxid is in the store: the core may compact its log. */
void ensemble_snapshot_stored(struct server *srv, int64_t zxid);
/* At the end of each loop turn (server.c): bounded housekeeping. */
void ensemble_turn_done(struct server *srv);
/* The store's durable callback in ensemble mode. */
void ensemble_durable(void *srv, uint64_t last_zxid, int status);

#endif
