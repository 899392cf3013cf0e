/*
 * A guard in front of Cyrus's DIGEST-MD5 parser (lib/sasl_directives.c),
 * used by the server (daemon/saslauth.c) on a client's response and by
 * libznode's client (lib/client_sasl.c) on a server's challenge.
 */
#ifndef ZNODE_SASL_DIRECTIVES_H
#define ZNODE_SASL_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More directives than any DIGEST-MD5 token has. */
#define SASL_MAX_DIRECTIVES 24

/* True when a directive of token (len bytes) appears twice (but may_repeat,
 * NULL for none), or there are more than SASL_MAX_DIRECTIVES. */
bool sasl_directive_repeated(const uint8_t *token, size_t len, const char *may_repeat);

#endif
