/*
 * SHA-1 (FIPS 180-4), for ZooKeeper's digest ACL scheme only: an id is
 * "user:" followed by base64(sha1("user:password")).  Not for anything that
 * needs collision resistance.
 */
#ifndef ZN_SHA1_H
#define ZN_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_BYTES 20
/* base64 of 20 bytes: 28 characters and the NUL. */
#define SHA1_BASE64_BYTES 29

/* The digest of len bytes at data (borrowed for the call) into out. */
void sha1(const void *data, size_t len, uint8_t out[SHA1_DIGEST_BYTES]);

/* Standard base64 (RFC 4648, with padding) of len bytes into out, which must
 * hold 4 * ceil(len / 3) + 1 bytes; returns the length written (without the NUL). */
size_t sha1_base64(const uint8_t *data, size_t len, char *out);

/* ZooKeeper's digest id of "user:password" (len bytes; borrowed): "user:"
 * followed by base64(sha1("user:password")), NUL-terminated into out (outlen
 * bytes).  Without a colon the whole input is the user.  Returns 0, or -1
 * when out is too small. */
int sha1_digest_id(const char *user_password, size_t len, char *out, size_t outlen);

#endif
