/*
 * acl: ZooKeeper's access control (ZooKeeperServer.checkACL, the digest, ip
 * and world providers, the "super" identity) for znoded.
 *
 * A connection's identities are ZooKeeper's authInfo: ("ip", its address),
 * then what addAuth added, kept in conn->auth[] in the form the providers
 * match: ("digest", "user:base64(sha1(user:password))"), preceded by
 * ("super", "") when that digest is the configured superDigest.
 *
 * Checks (ZooKeeper 3.8): skipACL=yes allows everything; an empty ACL allows
 * everything; a "super" identity allows everything; otherwise some entry
 * must share a bit with the wanted permission and match an identity:
 * world:anyone matches all, digest matches an equal id, ip matches an
 * address inside "addr[/bits]".  The reads are checked by read.c with
 * acl_check_conn, the writes by prep with the identities acl_caller gives.
 */
#ifndef ZNODED_ACL_H
#define ZNODED_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl_match.h"
#include "jute.h"

struct server;
struct conn;
struct request;
struct prep_caller;

/* checkACL for a connection's identities and the server's skipACL (c may be
 * NULL: the server itself, always allowed). */
int acl_check_conn(const struct server *srv, const struct conn *c, const struct zn_acl_vec *acl,
                   int32_t perm);

/*
 * addAuth: adds the identities ZooKeeper's provider for `scheme` gives
 * `auth` (len bytes, borrowed) to c->auth[].  Returns 0, ZN_AUTHFAILED for a
 * scheme with no provider (the caller then closes the connection, as
 * ZooKeeper does), ZN_BADARGUMENTS past CONN_MAX_AUTH_IDS or
 * ACL_MAX_AUTH_BYTES, or ZN_NOMEMORY.
 */
int acl_add_auth(const struct server *srv, struct conn *c, const char *scheme, const void *auth,
                 size_t len);

/* The identity a verified client certificate gives (x509:<subject DN>, as
 * ZooKeeper's X509AuthenticationProvider, and super:<subject DN> too when it
 * is X509AuthenticationProvider.superUser); subject_dn is copied.  Returns
 * 0, ZN_BADARGUMENTS past CONN_MAX_AUTH_IDS, or ZN_NOMEMORY. */
int acl_add_x509(const struct server *srv, struct conn *c, const char *subject_dn);

/* The identity a completed SASL exchange gives: sasl:<user> (copied), as
 * ZooKeeperServer.processSasl adds it, and super too when user is the
 * configured superUser.  Same returns as acl_add_x509. */
int acl_add_sasl(const struct server *srv, struct conn *c, const char *user);

/* Sets the prep's options from the configuration (ACL checks unless skipACL,
 * extendedTypesEnabled, the x509 and sasl providers, enforceQuota).  Call
 * once, right after prep_new. */
void acl_install(struct server *srv);

/* The identities a write from connection c is judged by (its ip, its auth
 * ids, and those of addAuth requests still queued ahead): what a member
 * forwards to the leader with the write.  ids[] borrow from c and from
 * digests allocated in `arena`.  Returns how many (at most ACL_MAX_HELD_IDS). */
#define ACL_MAX_HELD_IDS (1 + 2 * CONN_MAX_AUTH_IDS)
size_t acl_held_ids(const struct server *srv, const struct conn *c, struct zn_arena *arena, struct zn_id *ids);

/* Who r is from, for prep: its session and xid, and the identities it is
 * judged by: those a member forwarded with it (r->ids), or, for a client of
 * this member, its connection's, kept in r->ids (r's arena) from then on.
 * *who borrows from r. */
void acl_caller(const struct server *srv, struct request *r, struct prep_caller *who);

#endif
