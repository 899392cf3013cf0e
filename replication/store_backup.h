/*
 * store_backup: a consistent copy of a running store, and the file a backup
 * travels in.
 *
 * A backup file is a header, then its payload:
 *   magic "ZNBACKUP" (8) | version (4) | crc32c (4, over the other 28 bytes) |
 *   zxid (8) | payload length (8), integers big-endian
 * zxid is the last transaction the backup holds: the copy may hold log
 * entries above it (an ensemble member's proposals not yet known committed
 * when it was taken); restoring truncates them.
 *
 * Version 1's payload is a compacted copy of the store's LMDB file (data.mdb)
 * as LMDB's mdb_env_copyfd2 writes it.  Version 2's payload is the files of
 * a store copy (store_copy), so that a store keeping some of its records in
 * files of its own outside LMDB travels whole.  Each file is
 *   magic "ZNBF" (4) | name length (4) | file length (8) | file crc32c (4) |
 *   header crc32c (4, over the preceding 20 bytes and the name) | name |
 *   the file's bytes
 * A name is relative to the copy's directory: components of [A-Za-z0-9._-],
 * separated by '/', none of them "." or "..", at most
 * STORE_BACKUP_NAME_MAX bytes.  Files come sorted by name, each once.
 * Version 1 files are still restored.
 */
#ifndef ZN_STORE_BACKUP_H
#define ZN_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_BACKUP_HEADER_BYTES 32u
#define STORE_BACKUP_VERSION 2u
#define STORE_BACKUP_FILE_HEADER_BYTES 24u
#define STORE_BACKUP_NAME_MAX 255u

void store_backup_header_encode(unsigned char out[STORE_BACKUP_HEADER_BYTES], uint64_t zxid,
                                uint64_t payload_bytes);
/* Returns 0 with *version 1 or 2, or ZN_CORRUPT when in is not a backup
 * header this code reads. */
int store_backup_header_decode(const unsigned char in[STORE_BACKUP_HEADER_BYTES],
                               uint32_t *version, uint64_t *zxid, uint64_t *payload_bytes);

/*
 * Writes a consistent copy of s's files into dir (an empty directory on the
 * same file system is best): one read transaction's view of LMDB (compacted,
 * as data.mdb), taken while writers go on, beside it the snapshot files
 * (snapshot.<zxid>) its records name, hard-linked (copied across file
 * systems) from the snapshot directory, and the log's segment files
 * (log.<zxid>: their bytes up to what was durable when the copy began,
 * opened before LMDB's view is taken).  Safe on any thread (meant for a
 * worker: it reads the whole store).  Returns 0 or ZN_IO (logged;
 * also when the log was truncated meanwhile: a copy is taken again).
 */
int store_copy(struct store *s, const char *dir);

/*
 * Writes the version 2 payload of dir's regular files (subdirectories
 * walked) to out_fd, a regular file, from its offset 0; *bytes is its
 * length.  Returns 0, or ZN_IO / ZN_BADARGUMENTS (a name the format cannot
 * carry) with the reason in problem.
 */
int store_backup_pack(const char *dir, int out_fd, uint64_t *bytes, char *problem,
                      size_t problem_len);

/*
 * Writes the payload of a backup of this version, payload_bytes read from
 * in_fd at its offset, as files into dir (which holds none of them): each
 * file is written under a temporary name, checked against its CRC, fsynced
 * and renamed into place; the directories are fsynced.  Returns 0, or
 * ZN_CORRUPT (the payload is damaged or cut short), ZN_IO, with the reason
 * in problem.  What it wrote stays on failure: see store_backup_remove_tree.
 */
int store_backup_unpack(int in_fd, uint32_t version, uint64_t payload_bytes, const char *dir,
                        char *problem, size_t problem_len);

/*
 * Removes everything under dir (files and subdirectories, never following
 * a symbolic link) except a top-level entry named keep (NULL: none), and
 * dir itself when remove_dir and nothing was kept.  For the directories a
 * copy, a failed restore or a failed import leave.  Returns 0 or -errno of
 * the first failure.
 */
int store_backup_remove_tree(const char *dir, const char *keep, int remove_dir);

#endif
