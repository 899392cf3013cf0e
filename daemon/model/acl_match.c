/*
 * ZooKeeper's checkACL and its digest and ip providers' matching (see
 * acl_match.h; taken from ZooKeeperServer.checkACL, DigestAuthentication-
 * Provider and IPAuthenticationProvider of 3.8).  Pure: part of the model,
 * which prep judges writes with.
 */
#include "acl_match.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "sha1.h"
#include "znode/errors.h"

int acl_digest(const char *user_password, size_t len, char *out, size_t outlen)
{
    return sha1_digest_id(user_password, len, out, outlen) == 0 ? 0 : ZN_BADARGUMENTS;
}

/* The bytes of an IPv4 or IPv6 address in text; returns their count or 0. */
static size_t address_bytes(const char *text, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, buf, out) == 1)
        return 16;
    return 0;
}

static void mask_bits(uint8_t *bytes, size_t count, long bits)
{
    for (size_t i = 0; i < count; i++) {
        long keep = bits - (long)i * 8;
        if (keep >= 8)
            continue;
        bytes[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

bool acl_ip_matches(const char *address, const char *expression)
{
    uint8_t want[16], have[16];
    const char *slash = strchr(expression, '/');
    size_t want_len = address_bytes(expression, slash ? (size_t)(slash - expression) : strlen(expression), want);
    if (want_len == 0)
        return false;
    long bits = (long)want_len * 8;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > (long)want_len * 8)
            return false;
    }
    size_t have_len = address_bytes(address, strlen(address), have);
    if (have_len != want_len)
        return false;
    mask_bits(want, want_len, bits);
    mask_bits(have, have_len, bits);
    return memcmp(want, have, want_len) == 0;
}

static bool id_matches(const struct zn_id *entry, const struct zn_id *held)
{
    if (strcmp(entry->scheme, held->scheme) != 0)
        return false;
    if (strcmp(entry->scheme, "digest") == 0)
        return strcmp(entry->id, held->id) == 0;
    if (strcmp(entry->scheme, "ip") == 0)
        return acl_ip_matches(held->id, entry->id);
    if (strcmp(entry->scheme, "x509") == 0) /* X509AuthenticationProvider.matches: equal DNs */
        return strcmp(entry->id, held->id) == 0;
    if (strcmp(entry->scheme, "sasl") == 0) /* SASLAuthenticationProvider.matches: equal names */
        return strcmp(entry->id, held->id) == 0;
    return false; /* no provider for the scheme: it matches nobody */
}

int acl_check(const struct zn_acl_vec *acl, int32_t perm, const struct zn_id *ids, size_t count,
              bool skip_acl)
{
    ZN_ASSERT(perm != 0 && (ids != NULL || count == 0));
    if (skip_acl || acl == NULL || acl->count <= 0)
        return 0;
    for (size_t i = 0; i < count; i++)
        if (strcmp(ids[i].scheme, "super") == 0)
            return 0;
    for (int32_t i = 0; i < acl->count; i++) {
        const struct zn_acl *a = &acl->items[i];
        if ((a->perms & perm) == 0 || a->id.scheme == NULL || a->id.id == NULL)
            continue;
        if (strcmp(a->id.scheme, "world") == 0 && strcmp(a->id.id, "anyone") == 0)
            return 0;
        for (size_t k = 0; k < count; k++)
            if (id_matches(&a->id, &ids[k]))
                return 0;
    }
    return ZN_NOAUTH;
}
