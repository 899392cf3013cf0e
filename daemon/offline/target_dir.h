/*
 * target_dir: the empty data directory a store is written into from outside
 * (`znoded --restore`, `znoded --import-zookeeper`), and its removal when
 * that fails.
 */
#ifndef ZNODED_TARGET_DIR_H
#define ZNODED_TARGET_DIR_H

#include <stdbool.h>

/*
 * Checks that dir holds nothing (a member's myid aside, when allow_myid),
 * creating it when it does not exist.  Returns 0, or -1 after printing one
 * line on stderr, prefixed "znoded: FLAG: ", naming what it holds; what
 * says what is written ("a backup is restored").
 */
int target_dir_check_empty(const char *flag, const char *what, const char *dir, bool allow_myid);

/* Removes what a failed restore or import may have left in dir: every
 * file and directory in it but a member's myid. */
void target_dir_remove_store(const char *dir);

#endif
