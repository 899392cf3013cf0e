/*
 * The mount's inode table: which FUSE node id stands for which znode (or
 * special name), and how many lookups the kernel holds on each.
 *
 * A node id is never reused for a different znode: it is keyed by the name
 * (path plus special suffix), the znode's czxid and its kind, so a delete and
 * recreate, or a file that became a directory, gets a fresh node id and the
 * kernel never sees an inode change type (which it would mark bad).  Entries
 * live until the kernel FORGETs them; the by-name table points at the newest
 * entry for a name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "znodefs.h"

#define INODE_OF_ID(l) ZN_HENTRY(l, struct fs_inode, by_id)

/* Node ids are handed out in sequence: the id itself spreads them evenly. */
static uint64_t id_hash(fuse_ino_t nodeid) { return (uint64_t)nodeid; }

static bool has_id(const struct zn_hlink *l, const void *key)
{
    return INODE_OF_ID(l)->nodeid == *(const fuse_ino_t *)key;
}

static bool has_key(const struct zn_hlink *l, const void *key)
{
    return strcmp(ZN_HENTRY(l, const struct fs_inode, by_key)->key, key) == 0;
}

static void link_key(struct fs *fs, struct fs_inode *inode)
{
    zn_htable_insert(&fs->by_key, &inode->by_key, zn_hash_str(inode->key));
}

static void link_id(struct fs *fs, struct fs_inode *inode)
{
    zn_htable_insert(&fs->by_id, &inode->by_id, id_hash(inode->nodeid));
}

void fs_inodes_init(struct fs *fs)
{
    int rc = zn_htable_init(&fs->by_id, FS_INODE_BUCKETS);
    if (rc == 0)
        rc = zn_htable_init(&fs->by_key, FS_INODE_BUCKETS);
    ZN_ASSERT(rc == 0); /* at start, as the root's calloc below */
    fs->next_nodeid = FUSE_ROOT_ID + 1;
    struct fs_inode *root = calloc(1, sizeof *root);
    ZN_ASSERT(root);
    root->nodeid = FUSE_ROOT_ID;
    root->nlookup = 1; /* never forgotten */
    root->path = strdup("/");
    root->key = strdup("/");
    ZN_ASSERT(root->path && root->key);
    root->kind = FS_KIND_DIR;
    link_id(fs, root);
    link_key(fs, root);
}

struct fs_inode *fs_inode_get(struct fs *fs, fuse_ino_t nodeid)
{
    struct zn_hlink *l = zn_htable_find(&fs->by_id, id_hash(nodeid), has_id, &nodeid);
    return l ? INODE_OF_ID(l) : NULL;
}

static struct fs_inode *find_key(struct fs *fs, const char *key)
{
    struct zn_hlink *l = zn_htable_find(&fs->by_key, zn_hash_str(key), has_key, key);
    return l ? ZN_HENTRY(l, struct fs_inode, by_key) : NULL;
}

struct fs_inode *fs_inode_find(struct fs *fs, const char *key)
{
    return find_key(fs, key);
}

/* Takes inode off the by-name table, if it is there (the name may mean a newer inode). */
static void unlink_key(struct fs *fs, struct fs_inode *inode)
{
    if (find_key(fs, inode->key) == inode)
        zn_htable_remove(&fs->by_key, &inode->by_key);
}

void fs_inode_saw(struct fs_inode *inode, const struct zn_stat *st)
{
    if (inode->unlinked)
        return;
    inode->last_stat = *st;
    inode->have_last_stat = true;
}

void fs_inode_orphan(struct fs *fs, struct fs_inode *inode, const uint8_t *data, int32_t len,
                     bool have_data)
{
    ZN_ASSERT(inode->nodeid != FUSE_ROOT_ID);
    if (!inode->unlinked)
        unlink_key(fs, inode); /* a node made at the name later is another inode */
    inode->unlinked = true;
    if (!have_data || inode->have_orphan_data)
        return;
    int32_t n = len > 0 ? len : 0;
    uint8_t *copy = n > 0 ? malloc((size_t)n) : NULL;
    if (n > 0 && !copy)
        return; /* its fds read what their own snapshots hold */
    if (n > 0)
        memcpy(copy, data, (size_t)n);
    inode->orphan_data = copy;
    inode->orphan_len = n;
    inode->have_orphan_data = true;
    inode->last_stat.data_length = n;
}

struct fs_inode *fs_inode_lookup(struct fs *fs, const char *path, const char *key,
                                 enum fs_kind kind, enum fs_virt virt, int64_t version_arg,
                                 int64_t czxid)
{
    if (strcmp(key, "/") == 0) {
        struct fs_inode *root = fs_inode_get(fs, FUSE_ROOT_ID);
        root->nlookup++;
        return root;
    }
    struct fs_inode *old = find_key(fs, key);
    if (old && old->czxid == 0 && old->kind == kind)
        old->czxid = czxid; /* moved by a rename, which did not learn its new czxid */
    if (old && old->czxid == czxid && old->kind == kind) {
        old->nlookup++;
        return old;
    }
    if (zn_htable_count(&fs->by_id) >= FS_MAX_INODES)
        return NULL;
    struct fs_inode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->path = strdup(path);
    n->key = strdup(key);
    if (!n->path || !n->key) {
        free(n->path);
        free(n->key);
        free(n);
        return NULL;
    }
    if (old)
        unlink_key(fs, old); /* the name now means the new node */
    n->nodeid = fs->next_nodeid++;
    n->nlookup = 1;
    n->kind = kind;
    n->virt = virt;
    n->version_arg = version_arg;
    n->czxid = czxid;
    link_id(fs, n);
    link_key(fs, n);
    return n;
}

/* Replaces the old_path prefix of s with new_path; NULL when out of memory. */
static char *moved(const char *s, const char *old_path, const char *new_path)
{
    const char *rest = s + strlen(old_path);
    size_t new_len = strlen(new_path);
    char *out = malloc(new_len + strlen(rest) + 1);
    if (out) {
        memcpy(out, new_path, new_len);
        strcpy(out + new_len, rest);
    }
    return out;
}

/* Points inode, at old_path or under it, at the same place under new_path (its key keeps its
 * special suffix); false when out of memory. */
static bool inode_repath(struct fs *fs, struct fs_inode *inode, const char *old_path, const char *new_path)
{
    char *path = moved(inode->path, old_path, new_path), *key = moved(inode->key, old_path, new_path);
    if (!path || !key) {
        free(path);
        free(key);
        return false;
    }
    unlink_key(fs, inode);
    struct fs_inode *displaced = find_key(fs, key);
    if (displaced && displaced != inode)
        fs_inode_orphan(fs, displaced, NULL, 0, false); /* renamed over: its fds keep what they read */
    free(inode->path);
    free(inode->key);
    inode->path = path;
    inode->key = key;
    link_key(fs, inode);
    return true;
}

int fs_inode_move(struct fs *fs, const char *old_path, const char *new_path, int64_t czxid)
{
    ZN_ASSERT(strcmp(old_path, "/") != 0 && strcmp(new_path, "/") != 0);
    size_t old_len = strlen(old_path);
    int failed = 0;
    struct zn_hiter it;
    zn_hiter_init(&it, &fs->by_id);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        struct fs_inode *i = INODE_OF_ID(l);
        /* An unlinked inode's path is only a memory. */
        bool at = strcmp(i->path, old_path) == 0;
        bool under = strncmp(i->path, old_path, old_len) == 0 && i->path[old_len] == '/';
        if (i->unlinked || (!at && !under))
            continue;
        ZN_ASSERT(strncmp(i->key, old_path, old_len) == 0);
        if (!inode_repath(fs, i, old_path, new_path)) {
            failed = ZN_NOMEMORY;
            continue;
        }
        i->czxid = at ? czxid : 0;
    }
    return failed;
}

void fs_inode_forget(struct fs *fs, fuse_ino_t nodeid, uint64_t nlookup)
{
    if (nodeid == FUSE_ROOT_ID)
        return;
    struct fs_inode *i = fs_inode_get(fs, nodeid);
    if (i == NULL)
        return;
    ZN_ASSERT(i->nlookup >= nlookup);
    i->nlookup -= nlookup;
    if (i->nlookup > 0)
        return;
    zn_htable_remove(&fs->by_id, &i->by_id);
    unlink_key(fs, i);
    /* What the mount keeps per path lives as long as the kernel holds a node of it
     * (another inode of the same path only misses once). */
    if (!i->unlinked) {
        fs_acl_forget(i->path);
        fs_cache_drop(i->path);
    }
    free(i->orphan_data);
    fs_listing_put(i->listing);
    free(i->path);
    free(i->key);
    free(i);
}

void fs_inode_for_all(struct fs *fs, void (*fn)(struct fs *, struct fs_inode *, void *), void *arg)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &fs->by_id);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        fn(fs, INODE_OF_ID(l), arg);
}

void fs_inode_for_path(struct fs *fs, const char *path,
                       void (*fn)(struct fs *, struct fs_inode *, void *), void *arg)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &fs->by_id);
    for (struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;)
        if (strcmp(INODE_OF_ID(l)->path, path) == 0)
            fn(fs, INODE_OF_ID(l), arg);
}

/* Parses "<digits>" (optionally negative) fully; false otherwise. */
static bool parse_int64(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

enum fs_virt fs_parse_name(const char *name, char *base, int64_t *version_arg)
{
    *version_arg = 0;
    strcpy(base, name);
    if (strcmp(name, ".data") == 0)
        return FS_VIRT_DATA;
    if (strcmp(name, ".clone") == 0)
        return FS_VIRT_CLONE;
    const char *at = strrchr(name, '@');
    if (!at || at == name)
        return FS_VIRT_NONE;
    if (strncmp(at, "@v=", 3) == 0 && parse_int64(at + 3, version_arg)) {
        base[at - name] = '\0';
        return FS_VIRT_VERSIONED;
    }
    if (strncmp(at, "@wait=", 6) == 0 && parse_int64(at + 6, version_arg)) {
        base[at - name] = '\0';
        return FS_VIRT_WAIT;
    }
    return FS_VIRT_NONE;
}

bool fs_name_reserved(const char *name)
{
    char base[NAME_MAX + 1];
    int64_t v;
    if (strlen(name) > NAME_MAX)
        return true;
    return fs_parse_name(name, base, &v) != FS_VIRT_NONE;
}

bool fs_is_lock_contender(const char *name)
{
    const char *m = strstr(name, "__lock__");
    size_t marker = 8;
    if (!m) {
        m = strstr(name, "__rlock__");
        marker = 9;
    }
    if (!m)
        return false;
    const char *seq = m + marker;
    if (*seq == '-')
        seq++;
    if (strlen(seq) != ZN_SEQUENCE_DIGITS)
        return false;
    for (const char *p = seq; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}
