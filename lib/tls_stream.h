/*
 * tls_stream: one TLS connection over two memory BIOs, for code that does
 * its own I/O on libuv (znoded's client connections, libznode's
 * connection).  OpenSSL never touches a socket: the owner feeds what it
 * read (tls_stream_feed), takes the plaintext out (tls_stream_read), seals
 * what it sends (tls_stream_write), and writes whatever ciphertext is due
 * (tls_stream_drain: handshake records, alerts, sealed data).  No call
 * blocks: "needs more input" is a return value.
 */
#ifndef ZN_TLS_STREAM_H
#define ZN_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "jute.h"

struct tls_stream;

/* A stream on ctx (borrowed; OpenSSL counts its references), in the server
 * or the client role.  For a client, host (copied; may be NULL) is the name
 * or IP address the server's certificate must carry, and is sent as SNI
 * when it is a name.  NULL when out of memory or host is unusable. */
struct tls_stream *tls_stream_new(SSL_CTX *ctx, bool server, const char *host);
void tls_stream_free(struct tls_stream *s);

/* Copies len ciphertext bytes in.  Returns 0, or -1 when out of memory. */
int tls_stream_feed(struct tls_stream *s, const uint8_t *data, size_t len);

/* Advances the handshake, then decrypts into buf (cap > 0).  Returns the
 * plaintext bytes (> 0), 0 when more ciphertext is needed, or -1 when the
 * connection is over, with why (the peer's close, a failed handshake and
 * the certificate's fault) valid until the next call on s. */
ssize_t tls_stream_read(struct tls_stream *s, uint8_t *buf, size_t cap, const char **why);

/* The handshake is done (data can be sealed). */
bool tls_stream_established(const struct tls_stream *s);

/* True exactly once: at the first call after the handshake is done. */
bool tls_stream_just_established(struct tls_stream *s);

/* Seals len bytes (the handshake must be done).  Returns 0, or -1 with why. */
int tls_stream_write(struct tls_stream *s, const uint8_t *data, size_t len, const char **why);

/* Queues the close_notify alert (once; the handshake must be done), so the
 * peer sees an orderly end rather than a truncated stream.  Drain after. */
void tls_stream_close_notify(struct tls_stream *s);

/* Appends every pending ciphertext byte to out; returns how many.
 * out->error tells of a failed allocation. */
size_t tls_stream_drain(struct tls_stream *s, struct jute_writer *out);

/* The underlying SSL, borrowed for as long as s lives (for the peer's
 * certificate). */
SSL *tls_stream_ssl(const struct tls_stream *s);

/* The last OpenSSL error as text in buf (or fallback); clears the queue. */
const char *tls_openssl_reason(char *buf, size_t cap, const char *fallback);

#endif
