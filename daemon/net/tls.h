/*
 * tls: TLS for client connections with OpenSSL 3, driven from the loop.
 *
 * OpenSSL never touches a socket here: each connection is a tls_stream
 * (lib/tls_stream.h) over two memory BIOs.  conn.c feeds what uv_read
 * brought, takes the plaintext out, seals replies and hands whatever
 * ciphertext is pending (handshake records, alerts, sealed replies) to
 * uv_write.  No call blocks: "needs more input" is a return value.
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

#include <uv.h>

#include "config.h"
#include "jute.h"
#include "transport.h"

struct tls_server;
struct tls_stream;

/* The largest subject DN tls_conn_peer_dn writes (with its NUL). */
#define TLS_DN_MAX_BYTES 1024

/* Builds the server's TLS context from cfg (cfg->quorum: the one between
 * members, which both accepts and connects) (key store, trust store,
 * client auth, protocols, cipher suites).  Returns 0 and *out (owned by the
 * caller, freed with tls_server_free), or ZN_CONFIG after logging one line
 * naming the key and file at fault, or ZN_NOMEMORY. */
int tls_server_new(struct tls_server **out, const struct config_tls *cfg);

/* Watches the key and trust store files (libuv's stat polling, once a
 * second): when one changes, new connections get a context rebuilt from
 * them; open connections keep theirs; a store that does not load is logged
 * and the current context kept.  Returns 0, or ZN_IO (logged).  t must then
 * be freed with tls_server_free while loop runs. */
int tls_server_watch(struct tls_server *t, uv_loop_t *loop);

/* Frees t: at once when it watches nothing, else once its handles closed. */
void tls_server_free(struct tls_server *t);

/* A connection's TLS stream on t, server side (lib/tls_stream.h: feed,
 * read, write, drain).  NULL when out of memory.  t must outlive it. */
struct tls_stream *tls_server_stream(struct tls_server *t);

/* The context new connections get now (it changes when the stores are
 * reloaded); borrowed.  t is a struct tls_server (void for the transport's
 * callback, struct transport_tls.context). */
struct ssl_ctx_st *tls_server_context(void *t);

/* TLS between members (sslQuorum, portUnification, ssl.quorum.*): when cfg
 * asks for it, builds the context (*out, watched for changed files when
 * sslQuorumReloadCertFiles=true) and fills *tt for transport_start_tls;
 * else *out is NULL.  Returns 0, or ZN_CONFIG / ZN_IO / ZN_NOMEMORY (logged). */
int tls_quorum_new(struct tls_server **out, struct transport_tls *tt, const struct config *cfg, uv_loop_t *loop);

/* The verified client certificate's subject, as ZooKeeper names it
 * (RFC 2253: "CN=app,O=Example", most specific first; attribute types
 * without a keyword as "1.2.840.113549.1.9.1=#16..." hex DER).  Returns 0,
 * 1 when the client sent no certificate, or -1 when it does not fit. */
int tls_peer_dn(const struct tls_stream *s, char *out, size_t cap);

#endif
