/*
 * The identities a connection holds (addAuth, a client certificate, SASL)
 * and who a write is from, for prep (see acl.h; the matching itself is
 * acl_match.c's, in the pure model).
 */
#include "acl.h"

#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "sha1.h"
#include "zkconfig.h"
#include "znode/errors.h"

/* The connection's identities, borrowed from it: ip first, then auth[]. */
static size_t conn_ids(const struct conn *c, struct zn_id ids[1 + CONN_MAX_AUTH_IDS])
{
    size_t n = 0;
    ids[n].scheme = "ip";
    ids[n].id = (char *)c->peer_ip;
    n++;
    for (int i = 0; i < c->auth_count; i++) {
        ids[n].scheme = c->auth[i].scheme;
        ids[n].id = c->auth[i].id;
        n++;
    }
    return n;
}

int acl_check_conn(const struct server *srv, const struct conn *c, const struct zn_acl_vec *acl,
                   int32_t perm)
{
    if (c == NULL)
        return 0;
    struct zn_id ids[1 + CONN_MAX_AUTH_IDS];
    size_t n = conn_ids(c, ids);
    return acl_check(acl, perm, ids, n, srv->cfg.skip_acl);
}

static bool conn_has(const struct conn *c, const char *scheme, const char *id)
{
    for (int i = 0; i < c->auth_count; i++)
        if (strcmp(c->auth[i].scheme, scheme) == 0 && strcmp(c->auth[i].id, id) == 0)
            return true;
    return false;
}

/* ServerCnxn.addAuthInfo: an identity already held is not added twice. */
static int conn_add(struct conn *c, const char *scheme, const char *id)
{
    if (conn_has(c, scheme, id))
        return 0;
    if (c->auth_count == CONN_MAX_AUTH_IDS)
        return ZN_BADARGUMENTS;
    if (c->auth_count == c->auth_cap) { /* most connections add none: no room until one does */
        int cap = c->auth_cap ? c->auth_cap * 2 : 2;
        if (cap > CONN_MAX_AUTH_IDS)
            cap = CONN_MAX_AUTH_IDS;
        struct conn_auth *grown = realloc(c->auth, sizeof *grown * (size_t)cap);
        if (!grown)
            return ZN_NOMEMORY;
        c->auth = grown;
        c->auth_cap = cap;
    }
    struct conn_auth *a = &c->auth[c->auth_count];
    a->scheme = strdup(scheme);
    a->id = strdup(id);
    if (!a->scheme || !a->id) {
        free(a->scheme);
        free(a->id);
        a->scheme = a->id = NULL;
        return ZN_NOMEMORY;
    }
    c->auth_count++;
    return 0;
}

int acl_add_x509(const struct server *srv, struct conn *c, const char *subject_dn)
{
    /* X509AuthenticationProvider: the superUser's certificate is also "super" */
    const char *super = srv->cfg.tls.x509_super_user;
    if (super[0] && strcmp(super, subject_dn) == 0) {
        int rc = conn_add(c, "super", subject_dn);
        if (rc != 0)
            return rc;
        ZN_INFO("tls: peer=%s is the super user (X509AuthenticationProvider.superUser)", c->peer);
    }
    return conn_add(c, "x509", subject_dn);
}

int acl_add_sasl(const struct server *srv, struct conn *c, const char *user)
{
    /* ZooKeeperServer.isSaslSuperUser: zookeeper.superUser's id is also "super" */
    const char *super = srv->cfg.sasl.super_user;
    if (super[0] && strcmp(super, user) == 0) {
        int rc = conn_add(c, "super", "");
        if (rc != 0)
            return rc;
        ZN_INFO("sasl: peer=%s is the super user (superUser)", c->peer);
    }
    return conn_add(c, "sasl", user);
}

int acl_add_auth(const struct server *srv, struct conn *c, const char *scheme, const void *auth,
                 size_t len)
{
    if (strcmp(scheme, "ip") == 0) /* IPAuthenticationProvider: the peer's own address */
        return conn_add(c, "ip", c->peer_ip);
    if (strcmp(scheme, "digest") != 0)
        return ZN_AUTHFAILED;
    if (len > ACL_MAX_AUTH_BYTES)
        return ZN_BADARGUMENTS;
    char digest[ACL_MAX_AUTH_BYTES + SHA1_BASE64_BYTES + 2];
    int rc = acl_digest(auth, len, digest, sizeof digest);
    if (rc != 0)
        return rc;
    /* A user name with a NUL cannot be an ACL id: refuse it rather than cut it. */
    if (memchr(auth, '\0', len))
        return ZN_AUTHFAILED;
    if (srv->cfg.super_digest[0] && strcmp(digest, srv->cfg.super_digest) == 0) {
        rc = conn_add(c, "super", "");
        if (rc != 0)
            return rc;
        ZN_INFO("auth: super user authenticated peer=%s", c->peer);
    }
    return conn_add(c, "digest", digest);
}

/* ---- the identities a write is judged by ---- */

/*
 * ZooKeeper handles addAuth the moment it arrives (processPacket), ahead of
 * anything queued, while here it waits its turn in the connection's FIFO.  A
 * write is prepared when it arrives, so an addAuth sent before it may still
 * be queued: its identities count for the write, as in ZooKeeper.
 */
size_t acl_held_ids(const struct server *srv, const struct conn *c, struct zn_arena *arena, struct zn_id *ids)
{
    size_t n = conn_ids(c, ids);
    int pending = 0;
    for (const struct request *r = c->queue_head; r; r = r->next) {
        if (r->hdr.type != ZN_OP_AUTH || r->done || pending == CONN_MAX_AUTH_IDS)
            continue;
        if (!r->req.scheme || strcmp(r->req.scheme, "digest") != 0 || r->req.auth.len < 0)
            continue; /* ip adds the address already held; others fail and close */
        char *digest = zn_arena_alloc(arena, ACL_MAX_AUTH_BYTES + SHA1_BASE64_BYTES + 2);
        if (digest == NULL || acl_digest((const char *)r->req.auth.data, (size_t)r->req.auth.len, digest,
                                         ACL_MAX_AUTH_BYTES + SHA1_BASE64_BYTES + 2) != 0)
            continue;
        pending++;
        if (srv->cfg.super_digest[0] && strcmp(digest, srv->cfg.super_digest) == 0 &&
            n < ACL_MAX_HELD_IDS)
            ids[n++] = (struct zn_id){"super", ""};
        if (n < ACL_MAX_HELD_IDS)
            ids[n++] = (struct zn_id){"digest", digest};
    }
    return n;
}

void acl_caller(const struct server *srv, struct request *r, struct prep_caller *who)
{
    *who = (struct prep_caller){.session_id = r->session_id, .cxid = r->hdr.xid};
    if (r->has_ids || r->session_id == 0 || r->conn == NULL) {
        /* forwarded with its ids, or nobody's left to ask (no id: only
         * world and the server's own writes pass) */
        who->ids = r->ids;
        who->id_count = r->id_count;
        return;
    }
    /* Gathered on the stack, kept in the arena at their number: a plain
     * connection's write keeps one id, not room for the most it could hold. */
    struct zn_id held[ACL_MAX_HELD_IDS];
    size_t n = acl_held_ids(srv, r->conn, &r->arena, held);
    r->ids = zn_arena_alloc(&r->arena, sizeof *r->ids * n);
    if (r->ids == NULL)
        return; /* no memory: judged with no identity, so refused, never let through */
    memcpy(r->ids, held, sizeof *r->ids * n);
    r->id_count = n;
    r->has_ids = true;
    who->ids = r->ids;
    who->id_count = r->id_count;
}

void acl_install(struct server *srv)
{
    ZN_ASSERT(srv->prep != NULL);
    struct prep_options options = {
        .ttl_enabled = srv->cfg.extended_types_enabled,
        .enforce_quota = srv->cfg.enforce_quota,
        /* registered with the secure port, as QuorumPeerConfig.configureSSLAuth does */
        .x509_enabled = srv->cfg.tls.secure_client_port != 0 || srv->cfg.tls.x509_provider,
        .sasl_enabled = srv->cfg.sasl.provider,
        .enforce_acl = !srv->cfg.skip_acl,
    };
    prep_set_options(srv->prep, &options);
    /* Runs wherever a tree and its prep are (re)made, which is where
     * /zookeeper/config must be set too (zkconfig.h). */
    if (zkconfig_install(srv) != 0)
        ZN_ERROR("out of memory setting /zookeeper/config");
    if (srv->cfg.skip_acl)
        ZN_WARN("skipACL=yes: no ACL is checked");
}
