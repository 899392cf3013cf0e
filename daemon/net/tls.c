/*
 * tls: the OpenSSL 3 context built from ZooKeeper's ssl.* keys, a
 * connection's stream on it (lib/tls_stream.c does the memory-BIO work),
 * and the client certificate's identity (see tls.h).
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "assert.h"
#include "tls_stream.h"
#include "log.h"
#include "znode/errors.h"

/* How often the key and trust store files are checked for a change. */
#define TLS_RELOAD_POLL_MS 1000

struct tls_server {
    SSL_CTX *ctx;             /* the context new connections get */
    struct config_tls cfg;    /* what it was built from, for reloads */
    uv_fs_poll_t polls[2];    /* the key store, the trust store */
    int polls_started;
    int polls_open;           /* handles not yet closed */
};

/* The zoo.cfg key of a setting of cfg: "ssl."+name, or "ssl.quorum."+name. */
static const char *key_of(const struct config_tls *cfg, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", cfg->quorum ? "ssl.quorum." : "ssl.", name);
    return buf;
}

static int config_error(const char *key, const char *path, const char *what)
{
    char reason[256];
    ZN_ERROR("tls: %s=%s: %s: %s", key, path, what, tls_openssl_reason(reason, sizeof reason, "failed"));
    return ZN_CONFIG;
}

/* A PKCS12 file's key, certificate and other certificates (any may be NULL). */
static int read_pkcs12(const char *key, const char *path, const char *password, EVP_PKEY **pkey,
                       X509 **cert, STACK_OF(X509) **others)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ZN_ERROR("tls: %s=%s: %s", key, path, strerror(errno));
        return ZN_CONFIG;
    }
    PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    if (!p12)
        return config_error(key, path, "not a PKCS12 file");
    int ok = PKCS12_parse(p12, password, pkey, cert, others);
    PKCS12_free(p12);
    if (!ok)
        return config_error(key, path, "cannot open it (wrong ssl.*.password?)");
    return 0;
}

static int load_key_store(SSL_CTX *ctx, const struct config_tls *cfg)
{
    char kb[64];
    const char *key = key_of(cfg, "keyStore.location", kb, sizeof kb), *path = cfg->key_store;
    if (cfg->key_store_type == CONFIG_STORE_PEM) {
        /* the certificate chain and the private key in one file, as ZooKeeper's PEM key store */
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)cfg->key_store_password);
        if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
            return config_error(key, path, "no certificate");
        if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1)
            return config_error(key, path, "no private key (or a wrong keyStore.password)");
    } else {
        EVP_PKEY *pkey = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        int rc = read_pkcs12(key, path, cfg->key_store_password, &pkey, &cert, &chain);
        if (rc == 0 && (!pkey || !cert)) {
            ZN_ERROR("tls: %s=%s: holds no private key with its certificate", key, path);
            rc = ZN_CONFIG;
        }
        if (rc == 0 && (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1))
            rc = config_error(key, path, "unusable key or certificate");
        for (int i = 0; rc == 0 && chain && i < sk_X509_num(chain); i++)
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
                rc = config_error(key, path, "unusable chain certificate");
        EVP_PKEY_free(pkey);
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        if (rc != 0)
            return rc;
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return config_error(key, path, "the private key does not match the certificate");
    return 0;
}

static int load_trust_store(SSL_CTX *ctx, const struct config_tls *cfg)
{
    char kb[64];
    const char *key = key_of(cfg, "trustStore.location", kb, sizeof kb), *path = cfg->trust_store;
    if (path[0] == '\0') {
        /* ZooKeeper then trusts the JVM's default CAs; these are the system's */
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            return config_error(key, "(none)", "cannot load the system's CAs");
        return 0;
    }
    if (cfg->trust_store_type == CONFIG_STORE_PEM) {
        if (SSL_CTX_load_verify_file(ctx, path) != 1)
            return config_error(key, path, "no certificate");
        return 0;
    }
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *certs = NULL;
    int rc = read_pkcs12(key, path, cfg->trust_store_password, &pkey, &cert, &certs);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    if (rc == 0 && cert)
        added += X509_STORE_add_cert(store, cert) == 1;
    for (int i = 0; rc == 0 && certs && i < sk_X509_num(certs); i++)
        added += X509_STORE_add_cert(store, sk_X509_value(certs, i)) == 1;
    if (rc == 0 && added == 0) {
        ZN_ERROR("tls: %s=%s: holds no certificate", key, path);
        rc = ZN_CONFIG;
    }
    EVP_PKEY_free(pkey);
    X509_free(cert);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

/* ssl.ciphersuites in Java's (IANA) names: TLS 1.2 suites are mapped to
 * OpenSSL's names, TLS 1.3 suites are the same in both. */
static int set_ciphersuites(SSL_CTX *ctx, const struct config_tls *cfg)
{
    if (cfg->ciphersuites[0] == '\0')
        return 0;
    char kb[64];
    const char *key = key_of(cfg, "ciphersuites", kb, sizeof kb);
    char copy[CONFIG_TLS_CIPHERS_BYTES], list12[CONFIG_TLS_CIPHERS_BYTES] = "",
                                         list13[CONFIG_TLS_CIPHERS_BYTES] = "";
    snprintf(copy, sizeof copy, "%s", cfg->ciphersuites);
    for (char *save = NULL, *name = strtok_r(copy, ", ", &save); name;
         name = strtok_r(NULL, ", ", &save)) {
        bool v12 = strstr(name, "_WITH_") != NULL;
        const char *ossl = v12 ? OPENSSL_cipher_name(name) : name;
        if (!ossl || strcmp(ossl, "(NONE)") == 0) {
            ZN_ERROR("tls: %s: '%s' is not a cipher suite OpenSSL knows", key, name);
            return ZN_CONFIG;
        }
        char *list = v12 ? list12 : list13;
        size_t used = strlen(list);
        snprintf(list + used, CONFIG_TLS_CIPHERS_BYTES - used, "%s%s", used ? ":" : "", ossl);
    }
    if (list12[0] && SSL_CTX_set_cipher_list(ctx, list12) != 1)
        return config_error(key, list12, "no usable TLS 1.2 suite");
    if (!list12[0] && SSL_CTX_get_min_proto_version(ctx) < TLS1_3_VERSION) {
        ZN_INFO("tls: %s names no TLS 1.2 suite: TLS 1.2 is off", key);
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    }
    if (list13[0] && SSL_CTX_set_ciphersuites(ctx, list13) != 1)
        return config_error(key, list13, "no usable TLS 1.3 suite");
    if (!list13[0] && SSL_CTX_get_max_proto_version(ctx) == TLS1_3_VERSION) {
        if (!list12[0])
            return config_error(key, cfg->ciphersuites, "no suite");
        ZN_INFO("tls: %s names no TLS 1.3 suite: TLS 1.3 is off", key);
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    }
    return 0;
}

/* A context from cfg: the stores, client auth, protocols, suites.  Returns
 * 0 and *out, or ZN_CONFIG (logged) / ZN_NOMEMORY. */
static int build_context(const struct config_tls *cfg, SSL_CTX **out)
{
    /* between members a context serves both roles: it accepts and connects */
    SSL_CTX *ctx = SSL_CTX_new(cfg->quorum ? TLS_method() : TLS_server_method());
    if (!ctx)
        return ZN_NOMEMORY;
    SSL_CTX_set_min_proto_version(ctx, cfg->min_version);
    SSL_CTX_set_max_proto_version(ctx, cfg->max_version);
    /* ZooKeeper's sessions move between servers, not TLS sessions: no resumption cache */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    int verify = cfg->client_auth == CONFIG_CLIENT_AUTH_NEED   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                 : cfg->client_auth == CONFIG_CLIENT_AUTH_WANT ? SSL_VERIFY_PEER
                                                               : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(ctx, verify, NULL);
    int rc = load_key_store(ctx, cfg);
    if (rc == 0)
        rc = load_trust_store(ctx, cfg);
    if (rc == 0)
        rc = set_ciphersuites(ctx, cfg);
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int tls_server_new(struct tls_server **out, const struct config_tls *cfg)
{
    ZN_ASSERT(out != NULL && cfg != NULL && cfg->key_store[0]);
    struct tls_server *t = calloc(1, sizeof *t);
    if (!t)
        return ZN_NOMEMORY;
    t->cfg = *cfg;
    int rc = build_context(cfg, &t->ctx);
    if (rc != 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* A store file changed (libuv polls its stat): new connections get a
 * context built from the files as they are now; open ones keep theirs.  A
 * store that does not load (half-written, say) keeps the current context. */
static void on_store_changed(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
    struct tls_server *t = h->data;
    const char *path = h == &t->polls[0] ? t->cfg.key_store : t->cfg.trust_store;
    if (status < 0) {
        ZN_WARN("tls: cannot read %s (%s): keeping the current certificates", path, uv_strerror(status));
        return;
    }
    SSL_CTX *ctx;
    if (build_context(&t->cfg, &ctx) != 0) {
        ZN_ERROR("tls: %s changed but does not load (the line above says why): keeping the current "
                 "certificates", path);
        return;
    }
    SSL_CTX_free(t->ctx); /* connections using it hold their own reference */
    t->ctx = ctx;
    ZN_INFO("tls: %s changed: new connections get the reloaded key and trust stores", path);
}

int tls_server_watch(struct tls_server *t, uv_loop_t *loop)
{
    const char *paths[2] = {t->cfg.key_store, t->cfg.trust_store};
    for (int i = 0; i < 2; i++) {
        if (paths[i][0] == '\0')
            continue;
        uv_fs_poll_init(loop, &t->polls[i]);
        t->polls[i].data = t;
        t->polls_open++;
        t->polls_started |= 1 << i;
        int rc = uv_fs_poll_start(&t->polls[i], on_store_changed, paths[i], TLS_RELOAD_POLL_MS);
        if (rc != 0) {
            ZN_ERROR("tls: cannot watch %s for changes: %s", paths[i], uv_strerror(rc));
            return ZN_IO;
        }
    }
    return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct tls_server *t = h->data;
    if (--t->polls_open == 0) {
        SSL_CTX_free(t->ctx);
        free(t);
    }
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    if (t->polls_open == 0) {
        SSL_CTX_free(t->ctx);
        free(t);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (t->polls_started & (1 << i))
            uv_close((uv_handle_t *)&t->polls[i], on_poll_closed);
}

struct tls_stream *tls_server_stream(struct tls_server *t) { return tls_stream_new(t->ctx, true, NULL); }

SSL_CTX *tls_server_context(void *t) { return ((struct tls_server *)t)->ctx; }

int tls_quorum_new(struct tls_server **out, struct transport_tls *tt, const struct config *cfg, uv_loop_t *loop)
{
    *out = NULL;
    if (!cfg->ssl_quorum && !cfg->port_unification)
        return 0;
    int rc = tls_server_new(out, &cfg->quorum_tls);
    if (rc == 0 && cfg->ssl_quorum_reload)
        rc = tls_server_watch(*out, loop);
    if (rc != 0) {
        tls_server_free(*out);
        *out = NULL;
        return rc;
    }
    *tt = (struct transport_tls){
        .context = tls_server_context,
        .arg = *out,
        .connect_tls = cfg->ssl_quorum,
        .accept_tls = true,
        .accept_plain = !cfg->ssl_quorum || cfg->port_unification,
        .verify_host = cfg->quorum_tls.hostname_verification,
        .handshake_timeout_ms = (unsigned)cfg->quorum_tls.handshake_timeout_ms,
    };
    return 0;
}

/* RFC 2253's keywords, the ones Java's X500Principal.getName() uses. */
static const char *rfc2253_keyword(int nid)
{
    switch (nid) {
    case NID_commonName: return "CN";
    case NID_countryName: return "C";
    case NID_localityName: return "L";
    case NID_stateOrProvinceName: return "ST";
    case NID_organizationName: return "O";
    case NID_organizationalUnitName: return "OU";
    case NID_domainComponent: return "DC";
    case NID_streetAddress: return "STREET";
    case NID_userId: return "UID";
    default: return NULL;
    }
}

/* Appends with bounds; false when out is full. */
static bool append(char *out, size_t cap, size_t *used, const char *s, size_t len)
{
    if (*used + len >= cap)
        return false;
    memcpy(out + *used, s, len);
    *used += len;
    out[*used] = '\0';
    return true;
}

/* One attribute value as RFC 2253 writes a string: \ before , + " \ < > ;
 * and before a leading '#' or space and a trailing space. */
static bool append_escaped(char *out, size_t cap, size_t *used, const unsigned char *v, int len)
{
    for (int i = 0; i < len; i++) {
        bool special = strchr(",+\"\\<>;", v[i]) != NULL && v[i] != '\0';
        special |= (i == 0 && (v[i] == '#' || v[i] == ' ')) || (i == len - 1 && v[i] == ' ');
        if ((special && !append(out, cap, used, "\\", 1)) || !append(out, cap, used, (const char *)v + i, 1))
            return false;
    }
    return true;
}

/* An attribute without a keyword: its OID, '=#', and its value's DER in hex. */
static bool append_oid_hex(char *out, size_t cap, size_t *used, const ASN1_OBJECT *obj,
                           const ASN1_STRING *value)
{
    char oid[128];
    if (OBJ_obj2txt(oid, sizeof oid, obj, 1) <= 0 || !append(out, cap, used, oid, strlen(oid)) ||
        !append(out, cap, used, "=#", 2))
        return false;
    ASN1_TYPE *type = ASN1_TYPE_new();
    unsigned char *der = NULL;
    int len = type && ASN1_TYPE_set1(type, ASN1_STRING_type(value), value) == 1 ? i2d_ASN1_TYPE(type, &der) : -1;
    ASN1_TYPE_free(type);
    bool ok = len > 0;
    for (int i = 0; ok && i < len; i++) {
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", der[i]);
        ok = append(out, cap, used, hex, 2);
    }
    OPENSSL_free(der);
    return ok;
}

int tls_peer_dn(const struct tls_stream *s, char *out, size_t cap)
{
    ZN_ASSERT(cap > 0);
    out[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(tls_stream_ssl(s));
    if (!cert)
        return 1;
    const X509_NAME *name = X509_get_subject_name(cert);
    size_t used = 0;
    int previous_set = -1;
    /* RFC 2253 writes the most specific RDN first: the reverse of the encoding */
    for (int i = X509_NAME_entry_count(name) - 1; i >= 0; i--) {
        const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, i);
        int set = X509_NAME_ENTRY_set(entry);
        if (previous_set != -1 && !append(out, cap, &used, set == previous_set ? "+" : ",", 1))
            return -1;
        previous_set = set;
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(entry);
        const ASN1_STRING *value = X509_NAME_ENTRY_get_data(entry);
        const char *keyword = rfc2253_keyword(OBJ_obj2nid(obj));
        if (!keyword) {
            if (!append_oid_hex(out, cap, &used, obj, value))
                return -1;
            continue;
        }
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, value);
        bool ok = len >= 0 && append(out, cap, &used, keyword, strlen(keyword)) &&
                  append(out, cap, &used, "=", 1) && append_escaped(out, cap, &used, utf8, len);
        OPENSSL_free(utf8);
        if (!ok)
            return -1;
    }
    return 0;
}
