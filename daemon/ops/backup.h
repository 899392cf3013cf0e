/*
 * backup: the AdminServer's snapshot command: a consistent copy of this
 * member's store streamed to the client as a backup file
 * (replication/store_backup.h), with the zxid it holds in the last_zxid
 * header.  The copy is made and checked on a worker thread of the loop's
 * pool, never on the loop; at most one runs at a time.
 */
#ifndef ZNODED_BACKUP_H
#define ZNODED_BACKUP_H

#include <stdint.h>

struct server;
struct httpd;
struct backup;

/*
 * Starts a backup of srv's store answered through httpd_finish(httpd,
 * ticket, ...).  *slot (borrowed until the backup ends) must be NULL; it
 * holds the running backup and is set back to NULL when it ends.  Returns 0,
 * ZN_THROTTLEDOP while another backup runs, ZN_NOMEMORY, or ZN_IO when no
 * worker could be started; httpd_finish is then not called.
 */
int backup_start(struct server *srv, struct httpd *httpd, uint64_t ticket, struct backup **slot);

/* Called when the server stops: waits for the worker to finish its copy
 * (blocking the loop for that long), drops its answer and its files.  The
 * backup frees itself when the loop runs its completion.  b may be NULL. */
void backup_abandon(struct backup *b);

#endif
