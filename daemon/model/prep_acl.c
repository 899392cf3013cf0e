/*
 * prep_acl: the ACL rules of the prep stage.  prep_check_acl is
 * ZooKeeper's checkACL for the caller's identities (struct prep_caller);
 * prep_fixup_acl is its fixupACL: the ACL a create or setACL stores, with
 * duplicates dropped, "auth" expanded to the caller's authenticated ids and
 * every id checked by its provider's isValid.
 *
 * Invariant: a fixed-up ACL is never empty and borrows nothing from the
 * request or the caller (its strings are copied into the arena).
 * Called by the rules in prep.c.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "acl_match.h"
#include "prep_internal.h"

/* zks.checkACL for the caller (none for the server's own writes). */
int prep_check_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl, int32_t perm)
{
    if (!p->options.enforce_acl || who->session_id == 0)
        return 0;
    return acl_check(acl, perm, who->ids, who->id_count, false);
}

/* DigestAuthenticationProvider.isValid: "user:hash", exactly two parts after
 * Java's split(":"), which drops trailing empty parts. */
static bool digest_id_valid(const char *id)
{
    const char *colon = strchr(id, ':');
    return colon != NULL && strchr(colon + 1, ':') == NULL && colon[1] != '\0';
}

/* SASLAuthenticationProvider.isValid: new KerberosName(id) does not throw,
 * that is, a name without '@', or "primary[/instance]@REALM" with no
 * further '/' or '@'. */
static bool sasl_id_valid(const char *id)
{
    const char *at = strchr(id, '@');
    if (at == NULL)
        return true;
    if (strchr(at + 1, '@') || strchr(at + 1, '/'))
        return false;
    const char *slash = memchr(id, '/', (size_t)(at - id));
    return slash == NULL || memchr(slash + 1, '/', (size_t)(at - slash - 1)) == NULL;
}

/* IPAuthenticationProvider.isValid: an address, optionally "/bits". */
static bool ip_id_valid(const char *id)
{
    char addr[64];
    const char *slash = strchr(id, '/');
    size_t len = slash ? (size_t)(slash - id) : strlen(id);
    if (len == 0 || len >= sizeof(addr))
        return false;
    memcpy(addr, id, len);
    addr[len] = '\0';
    unsigned char buf[16];
    int max_bits;
    if (inet_pton(AF_INET, addr, buf) == 1)
        max_bits = 32;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        max_bits = 128;
    else
        return false;
    if (slash == NULL)
        return true;
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    return slash[1] != '\0' && *end == '\0' && bits >= 0 && bits <= max_bits;
}

static bool acl_equal(const struct zn_acl *a, const struct zn_acl *b)
{
    if (a->perms != b->perms)
        return false;
    if ((a->id.scheme == NULL) != (b->id.scheme == NULL) || (a->id.id == NULL) != (b->id.id == NULL))
        return false;
    return (!a->id.scheme || strcmp(a->id.scheme, b->id.scheme) == 0) &&
           (!a->id.id || strcmp(a->id.id, b->id.id) == 0);
}

static bool authenticated_scheme(const char *scheme)
{
    /* ip is not "authenticated", and super has no provider */
    return strcmp(scheme, "digest") == 0 || strcmp(scheme, "x509") == 0 || strcmp(scheme, "sasl") == 0;
}

/* The caller's authenticated ids, each once (by id), into the arena: what
 * fixupACL expands the "auth" scheme to. */
static int auth_ids(const struct prep_caller *who, struct zn_arena *arena, struct zn_id **out, int32_t *count)
{
    *count = 0;
    *out = NULL;
    if (who->id_count == 0)
        return 0;
    *out = zn_arena_alloc(arena, sizeof **out * who->id_count);
    if (*out == NULL)
        return ZN_NOMEMORY;
    for (size_t i = 0; i < who->id_count; i++) {
        if (!authenticated_scheme(who->ids[i].scheme))
            continue;
        bool seen = false;
        for (int32_t k = 0; k < *count && !seen; k++)
            seen = strcmp((*out)[k].id, who->ids[i].id) == 0;
        if (!seen)
            (*out)[(*count)++] = who->ids[i];
    }
    return 0;
}

/* ZooKeeper's fixupACL: drop duplicates, refuse null or empty lists and
 * unknown schemes or malformed ids, expand "auth" to the caller's
 * authenticated ids.  The result lives in the arena. */
int prep_fixup_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl,
                   struct zn_arena *arena, struct zn_acl_vec *out)
{
    if (acl->count <= 0 || acl->items == NULL)
        return ZN_INVALIDACL;
    struct zn_id *auth = NULL;
    int32_t auth_count = 0;
    if (auth_ids(who, arena, &auth, &auth_count) != 0)
        return ZN_NOMEMORY;
    size_t cap = (size_t)acl->count * (size_t)(auth_count > 0 ? auth_count : 1);
    out->items = zn_arena_alloc(arena, sizeof(*out->items) * cap);
    if (out->items == NULL)
        return ZN_NOMEMORY;
    out->count = 0;
    for (int32_t i = 0; i < acl->count; i++) {
        const struct zn_acl *a = &acl->items[i];
        bool duplicate = false;
        for (int32_t j = 0; j < i && !duplicate; j++)
            duplicate = acl_equal(a, &acl->items[j]);
        if (duplicate)
            continue;
        /* ZooKeeper refuses a null scheme; "auth" ignores its id, which
         * clients (kazoo) send as a null string. */
        if (a->id.scheme == NULL || (a->id.id == NULL && strcmp(a->id.scheme, "auth") != 0))
            return ZN_INVALIDACL;
        if (strcmp(a->id.scheme, "world") == 0 && strcmp(a->id.id, "anyone") == 0) {
            out->items[out->count++] = *a;
        } else if (strcmp(a->id.scheme, "auth") == 0) {
            if (auth_count == 0)
                return ZN_INVALIDACL;
            for (int32_t k = 0; k < auth_count; k++) {
                out->items[out->count].perms = a->perms;
                out->items[out->count].id = auth[k];
                out->count++;
            }
        } else if (strcmp(a->id.scheme, "digest") == 0 ? digest_id_valid(a->id.id)
                   : strcmp(a->id.scheme, "ip") == 0   ? ip_id_valid(a->id.id)
                   : strcmp(a->id.scheme, "x509") == 0 ? p->options.x509_enabled && strchr(a->id.id, '=')
                   : strcmp(a->id.scheme, "sasl") == 0 ? p->options.sasl_enabled && sasl_id_valid(a->id.id)
                                                       : false) {
            out->items[out->count++] = *a;
        } else {
            return ZN_INVALIDACL; /* no such provider, or an id it refuses */
        }
    }
    /* The ids must outlive the caller's borrow: copy every string in. */
    for (int32_t i = 0; i < out->count; i++) {
        struct zn_id *id = &out->items[i].id;
        id->scheme = arena_strndup(arena, id->scheme, strlen(id->scheme));
        id->id = arena_strndup(arena, id->id, strlen(id->id));
        if (id->scheme == NULL || id->id == NULL)
            return ZN_NOMEMORY;
    }
    return 0;
}
