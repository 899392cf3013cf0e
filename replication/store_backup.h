/*
 * store_backup: a consistent copy of a running store, and the file a backup
 * travels in.
 *
 * A backup file is a header, then a compacted copy of the store's LMDB file
 * (data.mdb) as LMDB's mdb_env_copyfd2 writes it:
 *   magic "ZNBACKUP" (8) | version (4) | crc32c (4, over the other 28 bytes) |
 *   zxid (8) | copy length (8), integers big-endian
 * zxid is the last transaction the backup holds: the copy may hold log
 * entries above it (an ensemble member's proposals not yet known committed
 * when it was taken); restoring truncates them.
 */
#ifndef ZN_STORE_BACKUP_H
#define ZN_STORE_BACKUP_H

#include <stdint.h>

#include "store.h"

#define STORE_BACKUP_HEADER_BYTES 32u
#define STORE_BACKUP_VERSION 1u

void store_backup_header_encode(unsigned char out[STORE_BACKUP_HEADER_BYTES], uint64_t zxid,
                                uint64_t copy_bytes);
/* Returns 0, or ZN_CORRUPT when in is not a backup header this version reads. */
int store_backup_header_decode(const unsigned char in[STORE_BACKUP_HEADER_BYTES], uint64_t *zxid,
                               uint64_t *copy_bytes);

/*
 * Writes a consistent, compacted copy of s's LMDB file to fd (a regular
 * file, at its current offset): one read transaction's view, taken while
 * writers go on.  Safe on any thread (meant for a worker: it reads the whole
 * store); holds the resize lock for reading meanwhile, so a map resize waits
 * for it.  Returns 0 or ZN_IO (logged).
 */
int store_copy(struct store *s, int fd);

#endif
