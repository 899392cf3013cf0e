/*
 * ACL enforcement: the identities a connection holds, ZooKeeper's checkACL
 * over them, and the hooks that let prep check writes (see acl.h for the
 * rules, taken from ZooKeeperServer.checkACL, DigestAuthenticationProvider,
 * IPAuthenticationProvider and PrepRequestProcessor.fixupACL of 3.8).
 */
#include "acl.h"

#include <arpa/inet.h>
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

int acl_digest(const char *user_password, size_t len, char *out, size_t outlen)
{
    return sha1_digest_id(user_password, len, out, outlen) == 0 ? 0 : ZN_BADARGUMENTS;
}

/* The bytes of an IPv4 or IPv6 address in text; returns their count or 0. */
static size_t address_bytes(const char *text, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, buf, out) == 1)
        return 16;
    return 0;
}

static void mask_bits(uint8_t *bytes, size_t count, long bits)
{
    for (size_t i = 0; i < count; i++) {
        long keep = bits - (long)i * 8;
        if (keep >= 8)
            continue;
        bytes[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

bool acl_ip_matches(const char *address, const char *expression)
{
    uint8_t want[16], have[16];
    const char *slash = strchr(expression, '/');
    size_t want_len = address_bytes(expression, slash ? (size_t)(slash - expression) : strlen(expression), want);
    if (want_len == 0)
        return false;
    long bits = (long)want_len * 8;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > (long)want_len * 8)
            return false;
    }
    size_t have_len = address_bytes(address, strlen(address), have);
    if (have_len != want_len)
        return false;
    mask_bits(want, want_len, bits);
    mask_bits(have, have_len, bits);
    return memcmp(want, have, want_len) == 0;
}

static bool id_matches(const struct zn_id *entry, const struct zn_id *held)
{
    if (strcmp(entry->scheme, held->scheme) != 0)
        return false;
    if (strcmp(entry->scheme, "digest") == 0)
        return strcmp(entry->id, held->id) == 0;
    if (strcmp(entry->scheme, "ip") == 0)
        return acl_ip_matches(held->id, entry->id);
    if (strcmp(entry->scheme, "x509") == 0) /* X509AuthenticationProvider.matches: equal DNs */
        return strcmp(entry->id, held->id) == 0;
    if (strcmp(entry->scheme, "sasl") == 0) /* SASLAuthenticationProvider.matches: equal names */
        return strcmp(entry->id, held->id) == 0;
    return false; /* no provider for the scheme: it matches nobody */
}

int acl_check(const struct zn_acl_vec *acl, int32_t perm, const struct zn_id *ids, size_t count,
              bool skip_acl)
{
    ZN_ASSERT(perm != 0 && (ids != NULL || count == 0));
    if (skip_acl || acl == NULL || acl->count <= 0)
        return 0;
    for (size_t i = 0; i < count; i++)
        if (strcmp(ids[i].scheme, "super") == 0)
            return 0;
    for (int32_t i = 0; i < acl->count; i++) {
        const struct zn_acl *a = &acl->items[i];
        if ((a->perms & perm) == 0 || a->id.scheme == NULL || a->id.id == NULL)
            continue;
        if (strcmp(a->id.scheme, "world") == 0 && strcmp(a->id.id, "anyone") == 0)
            return 0;
        for (size_t k = 0; k < count; k++)
            if (id_matches(&a->id, &ids[k]))
                return 0;
    }
    return ZN_NOAUTH;
}

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

/* ---- prep's hooks ---- */

/*
 * ZooKeeper handles addAuth the moment it arrives (processPacket), ahead of
 * anything queued, while here it waits its turn in the connection's FIFO.  A
 * write is prepared when it arrives, so an addAuth sent before it may still
 * be queued: its identities count for the write, as in ZooKeeper.  Their
 * digest strings live here, valid for one hook call (the loop thread's).
 */
static char pending_digest[CONN_MAX_AUTH_IDS][ACL_MAX_AUTH_BYTES + SHA1_BASE64_BYTES + 2];

size_t acl_held_ids(const struct server *srv, const struct conn *c, struct zn_id *ids)
{
    size_t n = conn_ids(c, ids);
    int pending = 0;
    for (const struct request *r = c->queue_head; r; r = r->next) {
        if (r->hdr.type != ZN_OP_AUTH || r->done || pending == CONN_MAX_AUTH_IDS)
            continue;
        if (!r->req.scheme || strcmp(r->req.scheme, "digest") != 0 || r->req.auth.len < 0)
            continue; /* ip adds the address already held; others fail and close */
        char *digest = pending_digest[pending];
        if (acl_digest((const char *)r->req.auth.data, (size_t)r->req.auth.len, digest,
                       sizeof pending_digest[0]) != 0)
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

static const struct conn *session_conn(const struct server *srv, int64_t session_id)
{
    struct session *s = session_find((struct server *)srv, session_id);
    return s ? s->conn : NULL;
}

static int hook_check_acl(void *ctx, int64_t session_id, const struct zn_acl_vec *acl, int32_t perm,
                          const char *path)
{
    const struct server *srv = ctx;
    (void)path;
    if (session_id == 0)
        return 0; /* the server's own writes (container and TTL cleanup) */
    if (srv->forwarded_ids_active) /* a write another member forwarded, with its ids */
        return acl_check(acl, perm, srv->forwarded_ids, srv->forwarded_id_count, srv->cfg.skip_acl);
    const struct conn *c = session_conn(srv, session_id);
    if (c == NULL)
        return acl_check(acl, perm, NULL, 0, srv->cfg.skip_acl);
    struct zn_id ids[ACL_MAX_HELD_IDS];
    size_t n = acl_held_ids(srv, c, ids);
    return acl_check(acl, perm, ids, n, srv->cfg.skip_acl);
}

/* fixupACL's "auth": the session's authenticated ids, which are the digest,
 * x509 and sasl ones (ip is not "authenticated" and super has no provider). */
static void hook_auth_ids(void *ctx, int64_t session_id, const struct zn_id **ids, int32_t *count)
{
    static struct zn_id digest_ids[ACL_MAX_HELD_IDS]; /* valid for one prep call */
    const struct server *srv = ctx;
    *ids = digest_ids;
    *count = 0;
    struct zn_id held[ACL_MAX_HELD_IDS];
    size_t n = 0;
    if (srv->forwarded_ids_active) {
        n = srv->forwarded_id_count < ACL_MAX_HELD_IDS ? srv->forwarded_id_count : ACL_MAX_HELD_IDS;
        memcpy(held, srv->forwarded_ids, n * sizeof *held);
    } else {
        const struct conn *c = session_id ? session_conn(srv, session_id) : NULL;
        if (c == NULL)
            return;
        n = acl_held_ids(srv, c, held);
    }
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (int32_t k = 0; k < *count && !seen; k++)
            seen = strcmp(digest_ids[k].id, held[i].id) == 0;
        bool authenticated = strcmp(held[i].scheme, "digest") == 0 || strcmp(held[i].scheme, "x509") == 0 ||
                             strcmp(held[i].scheme, "sasl") == 0;
        if (authenticated && !seen)
            digest_ids[(*count)++] = held[i];
    }
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
        .check_acl = hook_check_acl,
        .auth_ids = hook_auth_ids,
        .ctx = srv,
    };
    prep_set_options(srv->prep, &options);
    /* Runs wherever a tree and its prep are (re)made, which is where
     * /zookeeper/config must be set too (zkconfig.h). */
    if (zkconfig_install(srv) != 0)
        ZN_ERROR("out of memory setting /zookeeper/config");
    if (srv->cfg.skip_acl)
        ZN_WARN("skipACL=yes: no ACL is checked");
}
