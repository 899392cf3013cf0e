/*
 * target_dir: the empty directory a restore or an import writes a store
 * into (target_dir.h).
 */
#include "target_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_backup.h"

int target_dir_check_empty(const char *flag, const char *what, const char *dir, bool allow_myid)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT && mkdir(dir, 0755) == 0)
            return 0;
        fprintf(stderr, "znoded: %s: cannot use %s: %s\n", flag, dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (allow_myid && strcmp(de->d_name, "myid") == 0))
            continue;
        fprintf(stderr, "znoded: %s: %s is not empty (it holds %s); %s only into an empty "
                "data directory\n", flag, dir, de->d_name, what);
        rc = -1;
    }
    closedir(d);
    return rc;
}

void target_dir_remove_store(const char *dir)
{
    /* The directory was checked empty (a member's myid aside) before
     * anything was written into it, so everything else in it is ours. */
    store_backup_remove_tree(dir, "myid", 0);
}
