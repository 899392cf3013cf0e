/*
 * acl_match: whether identities pass an ACL (ZooKeeper's checkACL) and what
 * the digest and ip providers compute.  Pure functions of their arguments,
 * part of the model (prep uses them); the identities a connection holds are
 * acl.h's.
 */
#ifndef ZNODED_ACL_MATCH_H
#define ZNODED_ACL_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jute.h"

/* Longest "user:password" addAuth digest accepts (ZooKeeper has no limit
 * but the packet's). */
#define ACL_MAX_AUTH_BYTES 4096

/*
 * ZooKeeper's DigestAuthenticationProvider.generateDigest: "user:" and the
 * base64 of sha1(user_password), user being what precedes the first ':'
 * (all of it when there is none).  Writes into out (outlen bytes, NUL
 * terminated).  Returns 0, or ZN_BADARGUMENTS when it does not fit.
 */
int acl_digest(const char *user_password, size_t len, char *out, size_t outlen);

/* IPAuthenticationProvider.matches: is `address` (IPv4 or IPv6 text) inside
 * `expression` ("addr" or "addr/bits")?  False for anything malformed. */
bool acl_ip_matches(const char *address, const char *expression);

/*
 * checkACL over an explicit identity list (borrowed for the call): 0 when
 * allowed, ZN_NOAUTH otherwise.  `perm` may hold several bits: an entry
 * granting any of them is enough, as in ZooKeeper.
 */
int acl_check(const struct zn_acl_vec *acl, int32_t perm, const struct zn_id *ids, size_t count,
              bool skip_acl);

#endif
