/*
 * libznode's SASL client over Cyrus SASL (lib/client_sasl.c): one mechanism
 * and its credentials per client, one exchange at a time (one per
 * connection).  Internal to lib/client*.c.
 */
#ifndef ZNODE_CLIENT_SASL_H
#define ZNODE_CLIENT_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_sasl;

enum client_sasl_result {
    CLIENT_SASL_SEND = 0,      /* send the token (may be empty) and step with the reply */
    CLIENT_SASL_SEND_LAST = 1, /* send the token; the exchange is complete once it is answered */
    CLIENT_SASL_DONE = 2,      /* complete: nothing more to send */
    CLIENT_SASL_FAILED = -1,   /* why says why */
};

/*
 * mechanism NULL: no SASL (*out = NULL; the other arguments must be NULL).
 * "DIGEST-MD5" needs user and password and takes no service/host; "GSSAPI"
 * takes neither user nor password.  Strings are copied.  Returns 0,
 * ZN_BADARGUMENTS or ZN_NOMEMORY.
 */
int client_sasl_new(const char *mechanism, const char *user, const char *password, const char *service,
                    const char *host, struct client_sasl **out);
void client_sasl_free(struct client_sasl *s);
const char *client_sasl_mechanism(const struct client_sasl *s);
/* "SASL DIGEST-MD5 as alice" / "SASL GSSAPI to zookeeper/host", for messages. */
void client_sasl_describe(const struct client_sasl *s, const char *host, char *buf, size_t len);

/*
 * Starts an exchange with the server reached as host (ending any earlier
 * one).  *token (borrowed until the next call) is the first token to send.
 * Returns a client_sasl_result (never DONE).
 */
int client_sasl_start(struct client_sasl *s, const char *host, const uint8_t **token, unsigned *token_len,
                      char *why, size_t whylen);
/* Takes the server's token; returns what to do next. */
int client_sasl_step(struct client_sasl *s, const uint8_t *in, size_t in_len, const uint8_t **token,
                     unsigned *token_len, char *why, size_t whylen);
/* Ends the exchange in progress (if any). */
void client_sasl_end(struct client_sasl *s);

#endif
