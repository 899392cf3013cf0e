/*
 * store_io: whole reads and writes at an offset, retried across short
 * transfers and EINTR, and a directory's fsync (what makes a rename,
 * create or unlink in it durable).  Pure (no logging, no allocation): the snapshot
 * child calls them after fork.  Not a public header.
 */
#ifndef ZN_STORE_IO_H
#define ZN_STORE_IO_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, or the errno of the failure (EIO when a write moved nothing). */
int store_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);
/* Returns 0, or the errno of the failure; ENODATA when the file ends first. */
int store_pread_all(int fd, void *buf, size_t len, uint64_t offset);
/* fsync of the directory open as dfd.  Returns 0 or the errno. */
int store_fsync_dirfd(int dfd);
/* The same for the directory at path dir (opened and closed here). */
int store_fsync_dir(const char *dir);

#endif
