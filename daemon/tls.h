/*
 * tls: TLS for client connections with OpenSSL 3, driven from the loop.
 *
 * OpenSSL never touches a socket here: each connection has two memory BIOs.
 * conn.c feeds what uv_read brought (tls_conn_feed), takes the plaintext
 * out (tls_conn_read), seals replies (tls_conn_write) and hands whatever
 * ciphertext is pending (handshake records, alerts, sealed replies) to
 * uv_write (tls_conn_drain).  No call blocks: "needs more input" is a return
 * value, never a wait.
 *
 * The client's certificate, once the handshake verified it, gives the
 * connection the ACL identity x509:<subject DN> in RFC 2253 form, as
 * ZooKeeper's X509AuthenticationProvider does (X500Principal.getName()).
 */
#ifndef ZNODED_TLS_H
#define ZNODED_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "jute.h"

struct tls_server;
struct tls_conn;

/* The largest subject DN tls_conn_peer_dn writes (with its NUL). */
#define TLS_DN_MAX_BYTES 1024

/* Builds the server's TLS context from cfg (key store, trust store,
 * client auth, protocols, cipher suites).  Returns 0 and *out (owned by the
 * caller, freed with tls_server_free), or ZN_CONFIG after logging one line
 * naming the key and file at fault, or ZN_NOMEMORY. */
int tls_server_new(struct tls_server **out, const struct config_tls *cfg);
void tls_server_free(struct tls_server *t);

/* A connection's TLS state, server side.  NULL when out of memory.  t must
 * outlive it. */
struct tls_conn *tls_conn_new(struct tls_server *t);
void tls_conn_free(struct tls_conn *c);

/* Hands ciphertext read from the socket to the connection (copied).
 * Returns 0 or ZN_NOMEMORY. */
int tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len);

/* Advances the handshake, then decrypts into buf (cap > 0 bytes).  Returns
 * the plaintext bytes written (> 0), 0 when more ciphertext is needed, or -1
 * when the connection must be closed, with the reason (the peer's close, a
 * failed handshake, an untrusted certificate) in *why, valid until the next
 * call on c. */
ssize_t tls_conn_read(struct tls_conn *c, uint8_t *buf, size_t cap, const char **why);

/* The handshake is done: replies can be sealed. */
bool tls_conn_established(const struct tls_conn *c);

/* True exactly once: at the first call after the handshake is done (when
 * the client's identity is to be taken). */
bool tls_conn_just_established(struct tls_conn *c);

/* Seals len plaintext bytes (the handshake must be done).  Returns 0, or -1
 * with the reason in *why. */
int tls_conn_write(struct tls_conn *c, const uint8_t *data, size_t len, const char **why);

/* Appends every pending ciphertext byte to out.  Returns the bytes moved;
 * out->error tells of a failed allocation. */
size_t tls_conn_drain(struct tls_conn *c, struct jute_writer *out);

/* The verified client certificate's subject, as ZooKeeper names it
 * (RFC 2253: "CN=app,O=Example", most specific first; attribute types
 * without a keyword as "1.2.840.113549.1.9.1=#16..." hex DER).  Returns 0,
 * 1 when the client sent no certificate, or -1 when it does not fit. */
int tls_conn_peer_dn(const struct tls_conn *c, char *out, size_t cap);

#endif
