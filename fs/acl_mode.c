/*
 * Mode bits from ACLs: what the mount's identity may do with a node, as
 * ZooKeeper's ACL check would decide it, shown as the permission bits of
 * `ls -l` (filesystem.md "Mapping": mode bits reflect the node's ACL for the
 * mounting user).
 *
 * The identity: world:anyone always; digest:USER:base64(sha1(USER:PASSWORD))
 * when mounted with auth=USER:PASSWORD (or digest:USER:x, the redacted form
 * servers give clients without ADMIN: matched on the user name); sasl:USER
 * when mounted with sasl=DIGEST-MD5,sasl_user=USER.  Entries of other schemes (ip,
 * x509, a Kerberos principal's sasl) are not evaluated here and grant nothing in the bits shown;
 * the server's own check still decides every operation.
 *
 * The bits: READ gives r (owner, group, other); WRITE gives the owner w on a
 * file; CREATE or DELETE give the owner w on a directory; directories keep x
 * (ZooKeeper's exists and lookup need no permission).  A read-only mount
 * shows no w.
 *
 * The perms of a path are kept with the (czxid, aversion) they were read at:
 * a stat with another aversion means the ACL changed and is read again.
 * ZooKeeper fires no watch for setACL, so a change made elsewhere shows when
 * the mount next reads the node's stat from the server (its cached stat goes
 * with the next data change or after the kernel's attribute timeout passes
 * on a node without a cached stat).  Limits: FS_ACL_MAX_ENTRIES paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "sha1.h"
#include "znodefs.h"

/* The table's first size; it grows with the entries (FS_ACL_MAX_ENTRIES). */
#define FS_ACL_BUCKETS 4096

struct acl_perms {
    struct zn_hlink link; /* in acls.paths */
    char *path;
    int64_t czxid;
    int32_t aversion;
    int32_t perms;
};

static struct {
    struct zn_htable paths; /* struct acl_perms by path; set up on first use */
    char digest_id[NAME_MAX + 64]; /* "user:base64hash", or "" without auth */
    char sasl_id[ZN_JAAS_VALUE_BYTES]; /* the DIGEST-MD5 user, or "" */
} acls;

void fs_acl_set_identity(const char *auth)
{
    acls.digest_id[0] = '\0';
    if (!auth)
        return;
    const char *colon = strchr(auth, ':');
    size_t user_len = colon ? (size_t)(colon - auth) : 0;
    if (!colon || user_len > NAME_MAX)
        return; /* not user:password: the server refuses it too */
    if (sha1_digest_id(auth, strlen(auth), acls.digest_id, sizeof acls.digest_id) != 0)
        acls.digest_id[0] = '\0';
}

void fs_acl_set_sasl_identity(const char *user)
{
    snprintf(acls.sasl_id, sizeof acls.sasl_id, "%s", user ? user : "");
}

/* ZooKeeper (3.7 on) and znoded redact digest hashes in getACL replies to
 * clients without ADMIN ("user:x"): such an entry is taken as the mount's
 * when the user name is its own (the hash cannot be compared). */
static bool digest_matches(const char *id)
{
    if (!acls.digest_id[0])
        return false;
    if (strcmp(id, acls.digest_id) == 0)
        return true;
    size_t user_len = (size_t)(strchr(acls.digest_id, ':') - acls.digest_id);
    return strncmp(id, acls.digest_id, user_len + 1) == 0 && strcmp(id + user_len + 1, "x") == 0;
}

int32_t fs_acl_perms_of(const struct zn_acl_entry *acl, int32_t count)
{
    int32_t perms = 0;
    for (int32_t i = 0; i < count; i++) {
        if (strcmp(acl[i].scheme, "world") == 0 && strcmp(acl[i].id, "anyone") == 0)
            perms |= acl[i].perms;
        else if (strcmp(acl[i].scheme, "digest") == 0 && digest_matches(acl[i].id))
            perms |= acl[i].perms;
        else if (strcmp(acl[i].scheme, "sasl") == 0 && acls.sasl_id[0] && strcmp(acl[i].id, acls.sasl_id) == 0)
            perms |= acl[i].perms;
    }
    return perms;
}

/* ---- the per-path table ---- */

static bool perms_have_path(const struct zn_hlink *l, const void *path)
{
    return strcmp(ZN_HENTRY(l, const struct acl_perms, link)->path, path) == 0;
}

static struct acl_perms *find(const char *path)
{
    struct zn_hlink *l = zn_htable_find(&acls.paths, zn_hash_str(path), perms_have_path, path);
    return l ? ZN_HENTRY(l, struct acl_perms, link) : NULL;
}

bool fs_acl_known(const char *path, const struct zn_stat *st, int32_t *perms)
{
    const struct acl_perms *a = find(path);
    if (!a || a->czxid != st->czxid || a->aversion != st->aversion)
        return false;
    if (perms)
        *perms = a->perms;
    return true;
}

void fs_acl_remember(const char *path, const struct zn_stat *st, int32_t perms)
{
    ZN_ASSERT(path && st);
    struct acl_perms *a = find(path);
    if (!a) {
        if (acls.paths.nbuckets == 0 && zn_htable_init(&acls.paths, FS_ACL_BUCKETS) != 0)
            return;
        if (zn_htable_count(&acls.paths) >= FS_ACL_MAX_ENTRIES)
            return; /* shown as the defaults until entries are forgotten */
        if (!(a = calloc(1, sizeof *a)) || !(a->path = strdup(path))) {
            free(a);
            return;
        }
        zn_htable_insert(&acls.paths, &a->link, zn_hash_str(path));
    }
    a->czxid = st->czxid;
    a->aversion = st->aversion;
    a->perms = perms;
}

void fs_acl_forget(const char *path)
{
    struct acl_perms *a = find(path);
    if (!a)
        return;
    zn_htable_remove(&acls.paths, &a->link);
    free(a->path);
    free(a);
}

mode_t fs_acl_mode_bits(const char *path, const struct zn_stat *st, bool dir, bool read_only)
{
    int32_t perms;
    if (!fs_acl_known(path, st, &perms))
        perms = ZN_PERM_ALL; /* not read yet: what the mount showed before ACLs were read */
    mode_t mode = 0;
    if (perms & ZN_PERM_READ)
        mode |= 0444;
    if (!read_only && (dir ? (perms & (ZN_PERM_CREATE | ZN_PERM_DELETE)) : (perms & ZN_PERM_WRITE)))
        mode |= 0200;
    if (dir)
        mode |= 0111;
    return mode;
}
