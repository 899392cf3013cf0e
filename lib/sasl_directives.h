/*
 * A guard in front of Cyrus's DIGEST-MD5 parser (lib/sasl_directives.c),
 * used by the server (daemon/net/saslauth.c) on a client's response and by
 * libznode's client (lib/client_sasl.c) on a server's challenge.
 */
#ifndef ZNODE_SASL_DIRECTIVES_H
#define ZNODE_SASL_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More directives than any DIGEST-MD5 token has. */
#define SASL_MAX_DIRECTIVES 24

/* The directives a DIGEST-MD5 server writes in a challenge or its rspauth
 * (NULL-terminated): all a challenge may hold, since Cyrus's client leaks on
 * the error paths of others (found by tests/fuzz/fuzz_sasl). */
extern const char *const sasl_challenge_directives[];

/* True when a directive of token (len bytes) appears twice (but may_repeat,
 * NULL for none), when there are more than SASL_MAX_DIRECTIVES, or when
 * known (NULL: any name) does not list one. */
bool sasl_directive_repeated(const uint8_t *token, size_t len, const char *may_repeat,
                             const char *const *known);

#endif
