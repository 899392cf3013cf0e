/*
 * restore: `znoded --restore FILE CONFIG` (restore.c).
 */
#ifndef ZNODED_RESTORE_H
#define ZNODED_RESTORE_H

/*
 * Writes the backup in file (the snapshot command's answer, as `znode
 * backup` saves it) into the store directory of the zoo.cfg at config_path,
 * which must hold no store and nothing else (a dataDir's myid aside), and
 * leaves there exactly the transactions up to the backup's zxid.  Prints
 * one line saying what it restored.  Returns the exit status: 0 restored,
 * 1 refused or failed (one line on stderr says why, and nothing is left
 * in the directory), 2 a configuration error.
 */
int restore_run(const char *file, const char *config_path);

#endif
