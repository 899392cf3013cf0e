/*
 * path: znode path rules and small helpers shared by the tree and prep.
 *
 * A znode path is a NUL-terminated UTF-8 string.  The rules are exactly those
 * of ZooKeeper's PathUtils.validatePath: it starts with '/', has no empty
 * component, no "." or ".." component, no trailing '/' (except the root "/"),
 * and no character ZooKeeper forbids (U+0000-U+001F, U+007F-U+009F,
 * U+D800-U+F8FF, U+FFF0-U+FFFF; Java sees every character above U+FFFF as a
 * surrogate pair, so those are forbidden too, and so is malformed UTF-8,
 * which Java decodes to U+FFFD).
 *
 * None of these functions allocate.  Pointers passed in are borrowed for the
 * duration of the call only, except where a return value points into them.
 */
#ifndef ZNODED_PATH_H
#define ZNODED_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest path the daemon accepts anywhere (a path can never be larger than a
 * packet, ZooKeeper's jute.maxbuffer). */
#define PATH_MAX_BYTES (1024 * 1024)

/*
 * Returns 0 if `path` is a valid znode path, else ZN_BADARGUMENTS.
 * With `sequential`, `path` is the prefix a sequence number will be appended
 * to, so a trailing '/' is allowed (ZooKeeper validates path + "1").
 * A NULL path is invalid.
 */
int path_validate(const char *path, bool sequential);

/*
 * Length of the parent's path within `path`, i.e. the index of the last '/'.
 * Returns 0 for a child of the root ("/a" -> parent is the root) and for the
 * root itself, and -1 when `path` contains no '/'.  ZooKeeper's parent of
 * "/a" is "" and it aliases "" to the root; callers look up "/" for 0.
 */
long path_parent_len(const char *path, size_t len);

/* The last component of `path` (a pointer into it, after the last '/'); the
 * whole string if there is no '/'. */
const char *path_last_component(const char *path);

/* True for the nodes ZooKeeper itself owns, which clients may not delete:
 * "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config". */
bool path_is_special(const char *path);

#endif
