/*
 * saslauth: SASL DIGEST-MD5 for clients, through Cyrus SASL, as ZooKeeper's
 * ZooKeeperSaslServer does it (service "zookeeper", server name and realm
 * "zk-sasl-md5", quality of protection "auth": authentication only).
 *
 * The users are the JAAS Server section's user_NAME="password" entries
 * (config_sasl.c); Cyrus reads them through an auxiliary property plugin
 * registered in this process (no sasldb file).  A client that completes the
 * exchange is known by its authentication id (ZooKeeper's
 * SaslServerCallbackHandler authorizes that id whatever authorization id
 * the client asked for): its ACL identity is sasl:<user>.
 *
 * One loop thread: Cyrus's global state is set once by saslauth_init and
 * used only from that thread.
 */
#ifndef ZNODED_SASLAUTH_H
#define ZNODED_SASLAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_sasl;
struct saslauth_session;

/* The longest token accepted from a client (a DIGEST-MD5 response is a few
 * hundred bytes; Cyrus refuses one over 4 KiB itself). */
#define SASLAUTH_MAX_TOKEN_BYTES 8192

/*
 * Starts Cyrus SASL for this process with cfg's users (borrowed until
 * saslauth_shutdown; cfg->enabled must be set).  Returns 0, or -1 with the
 * reason logged (the DIGEST-MD5 plugin missing: Debian's libsasl2-modules).
 */
int saslauth_init(const struct config_sasl *cfg);
void saslauth_shutdown(void);

enum saslauth_result {
    SASLAUTH_CONTINUE = 0, /* send *out back, wait for the next token */
    SASLAUTH_DONE = 1,     /* authenticated as user; send *out (may be empty) */
    SASLAUTH_FAILED = -1,  /* why says why (wrong password, unknown user, bad token) */
};

/*
 * Takes one client token (len bytes, borrowed) of the exchange *session
 * holds, creating the session on the first token (and again after one
 * completed).  *out / *outlen: the server's token, owned by the session,
 * valid until the next call or saslauth_session_free.  On DONE, user (userlen
 * bytes) holds the authenticated user name.  A failed session stays failed
 * until freed.
 */
enum saslauth_result saslauth_step(struct saslauth_session **session, const uint8_t *token,
                                   size_t len, const char **out, unsigned *outlen, char *user,
                                   size_t userlen, char *why, size_t whylen);

/*
 * The ACL id of a Kerberos client as ZooKeeper's SaslServerCallbackHandler
 * writes it: the principal's first component, then "/host" unless
 * remove_host, then "@REALM" unless remove_realm.  Cyrus's GSSAPI hands over
 * a principal of the default realm without its realm: default_realm (the
 * server principal's) stands in for it.  Writes user (userlen bytes); 0, or
 * -1 when it does not fit.
 */
int saslauth_principal_id(const char *name, const char *default_realm, bool remove_host, bool remove_realm,
                          char *user, size_t userlen);

/*
 * Between members (quorum.auth.*): DIGEST-MD5 with ZooKeeper's quorum names
 * (service "zookeeper-quorum", server "zk-quorum-sasl-md5"), the server
 * side's users from the quorum server section, the learner's name and
 * password from the learner section.  The step function of struct
 * transport_auth (replication/transport.h); saslauth_init must have run
 * with cfg->quorum_enable.
 */
int saslauth_quorum_step(void *arg, bool server, void **session, const uint8_t *in, size_t inlen,
                         const uint8_t **out, size_t *outlen, char *who, size_t wholen, char *why, size_t whylen);
void saslauth_quorum_free(void *arg, void *session);

/* Frees a session (NULL is fine). */
void saslauth_session_free(struct saslauth_session *session);

#endif
