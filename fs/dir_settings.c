/*
 * Settings this mount keeps for its own directories, in its memory only (the
 * contract stores neither with the node): `user.zk.child_mode` set to
 * ephemeral (ops_xattr.c), and the directories it made with mkdir, whose
 * kind it remembers against a server without the kind extension (kind.c).
 * Both lists follow a rename (fs_move_dir_settings) and end with the mount.
 * Invariant: each list holds a path at most once, at most
 * FS_MAX_DIR_SETTINGS paths.
 */
#include <stdlib.h>
#include <string.h>

#include "znodefs.h"

/* Settings a mount keeps for its own directories (child_mode, mkdir'd kinds). */
#define FS_MAX_DIR_SETTINGS 100000

/* ---- per-directory settings of this mount ---- */

static int list_find(char **list, int count, const char *path)
{
    for (int i = 0; i < count; i++)
        if (strcmp(list[i], path) == 0)
            return i;
    return -1;
}

static int list_set(char ***list, int *count, const char *path, bool on)
{
    int i = list_find(*list, *count, path);
    if (!on) {
        if (i >= 0) {
            free((*list)[i]);
            (*list)[i] = (*list)[--*count];
        }
        return 0;
    }
    if (i >= 0)
        return 0;
    if (*count >= FS_MAX_DIR_SETTINGS)
        return ZN_NOMEMORY;
    char **grown = realloc(*list, sizeof **list * (size_t)(*count + 1));
    if (!grown)
        return ZN_NOMEMORY;
    *list = grown;
    if (!(grown[*count] = strdup(path)))
        return ZN_NOMEMORY;
    ++*count;
    return 0;
}

bool fs_dir_is_ephemeral(const struct fs *fs, const char *path)
{
    return list_find(fs->ephemeral_dirs, fs->ephemeral_dir_count, path) >= 0;
}

int fs_set_dir_ephemeral(struct fs *fs, const char *path, bool on)
{
    return list_set(&fs->ephemeral_dirs, &fs->ephemeral_dir_count, path, on);
}

bool fs_made_dir(const struct fs *fs, const char *path)
{
    return list_find(fs->made_dirs, fs->made_dir_count, path) >= 0;
}

void fs_remember_dir(struct fs *fs, const char *path, bool on)
{
    (void)list_set(&fs->made_dirs, &fs->made_dir_count, path, on);
}

/* Renames the entries at old_path and under it in place; one that cannot be renamed (out of
 * memory) is dropped: the kind stored with the node still says what it is. */
static void list_move(char **list, int *count, const char *old_path, const char *new_path)
{
    size_t old_len = strlen(old_path), new_len = strlen(new_path);
    for (int i = 0; i < *count; i++) {
        const char *p = list[i];
        if (strncmp(p, old_path, old_len) != 0 || (p[old_len] != '\0' && p[old_len] != '/'))
            continue;
        char *renamed = malloc(new_len + strlen(p + old_len) + 1);
        if (!renamed) {
            free(list[i]);
            list[i--] = list[--*count];
            continue;
        }
        memcpy(renamed, new_path, new_len);
        strcpy(renamed + new_len, p + old_len);
        free(list[i]);
        list[i] = renamed;
    }
}

void fs_move_dir_settings(struct fs *fs, const char *old_path, const char *new_path)
{
    list_move(fs->made_dirs, &fs->made_dir_count, old_path, new_path);
    list_move(fs->ephemeral_dirs, &fs->ephemeral_dir_count, old_path, new_path);
}
