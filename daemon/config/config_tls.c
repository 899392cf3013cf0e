/*
 * config_tls: the zoo.cfg keys of TLS on the client port, with ZooKeeper's
 * names (X509Util's "zookeeper.ssl.*" properties, which a zoo.cfg key
 * becomes with "zookeeper." in front) and meanings.  Owns what a store's
 * type is and which protocol versions are allowed; tls.c loads the stores.
 * Java-only stores (JKS, BCFKS) are refused with the way to convert them.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static int copy_value(const char *key, const char *value, char *out, size_t cap, char *err,
                      size_t errlen)
{
    if (strlen(value) >= cap)
        return config_fail(err, errlen, "%s: longer than %zu bytes", key, cap - 1);
    strcpy(out, value);
    return 0;
}

/* JKS and BCFKS are Java's own formats. */
static int java_store(const char *key, const char *path, char *err, size_t errlen)
{
    return config_fail(err, errlen,
                "%s: %s is a Java key store (JKS or BCFKS), which znoded cannot read; convert it to "
                "PKCS12 with: keytool -importkeystore -srckeystore %s -destkeystore %s.p12 "
                "-deststoretype PKCS12, and name the .p12 file (or use PEM files)",
                key, path[0] ? path : "the store", path[0] ? path : "STORE.jks",
                path[0] ? path : "STORE");
}

/* ssl.keyStore.type / ssl.trustStore.type: PEM or PKCS12 (case as Java ignores it). */
static int set_store_type(const char *key, const char *value, const char *path,
                          enum config_store_type *out, char *err, size_t errlen)
{
    if (strcasecmp(value, "PEM") == 0)
        *out = CONFIG_STORE_PEM;
    else if (strcasecmp(value, "PKCS12") == 0)
        *out = CONFIG_STORE_PKCS12;
    else if (strcasecmp(value, "JKS") == 0 || strcasecmp(value, "BCFKS") == 0)
        return java_store(key, path, err, errlen);
    else
        return config_fail(err, errlen, "%s: expected PEM or PKCS12, got '%s'", key, value);
    return 0;
}

/* X509Util.detectStoreType: from the file's extension when no type is given. */
static int store_type_from_name(const char *key, const char *path, enum config_store_type *out,
                                char *err, size_t errlen)
{
    const char *dot = strrchr(path, '.');
    const char *ext = dot ? dot + 1 : "";
    if (strcasecmp(ext, "pem") == 0 || strcasecmp(ext, "crt") == 0)
        *out = CONFIG_STORE_PEM;
    else if (strcasecmp(ext, "p12") == 0 || strcasecmp(ext, "pfx") == 0)
        *out = CONFIG_STORE_PKCS12;
    else if (strcasecmp(ext, "jks") == 0 || strcasecmp(ext, "bcfks") == 0)
        return java_store(key, path, err, errlen);
    else
        return config_fail(err, errlen, "%s: cannot tell the type of %s from its name; set its .type "
                                 "to PEM or PKCS12", key, path);
    return 0;
}

static int protocol_version(const char *name, int *out)
{
    if (strcmp(name, "TLSv1.2") == 0)
        *out = CONFIG_TLS_1_2;
    else if (strcmp(name, "TLSv1.3") == 0)
        *out = CONFIG_TLS_1_3;
    else
        return -1;
    return 0;
}

/* ssl.enabledProtocols=TLSv1.2,TLSv1.3: the range they span. */
static int set_enabled_protocols(struct config_tls *tls, const char *key, const char *value,
                                 char *err, size_t errlen)
{
    char copy[256];
    if (strlen(value) >= sizeof copy)
        return config_fail(err, errlen, "%s: too long", key);
    strcpy(copy, value);
    int lo = 0, hi = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int v;
        if (protocol_version(tok, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not supported (TLSv1.2 and TLSv1.3 are)", key, tok);
        lo = lo == 0 || v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (lo == 0)
        return config_fail(err, errlen, "%s: empty", key);
    tls->min_version = lo;
    tls->max_version = hi;
    tls->protocols_listed = true;
    return 0;
}

static int set_ssl_key(struct config_tls *tls, const char *key, const char *value, char *err,
                       size_t errlen);

int config_tls_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    struct config_tls *tls = &cfg->tls;
    if (strncmp(key, "authProvider.", 13) == 0 &&
        strcmp(value, "org.apache.zookeeper.server.auth.X509AuthenticationProvider") == 0) {
        tls->x509_provider = true; /* x509 ACLs are valid, as with the provider registered */
        return 0;
    }
    const char *bare = strncmp(key, "zookeeper.", 10) == 0 ? key + 10 : key;
    if (strcmp(bare, "X509AuthenticationProvider.superUser") == 0)
        return copy_value(key, value, tls->x509_super_user, sizeof tls->x509_super_user, err, errlen);
    if (strcmp(key, "sslQuorum") == 0 || strcmp(key, "portUnification") == 0 ||
        strcmp(key, "sslQuorumReloadCertFiles") == 0) {
        bool *flag = key[0] == 'p' ? &cfg->port_unification
                     : strcmp(key, "sslQuorum") == 0 ? &cfg->ssl_quorum : &cfg->ssl_quorum_reload;
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        *flag = strcasecmp(value, "true") == 0;
        return 0;
    }
    if (strncmp(key, "ssl.quorum.", 11) == 0) {
        int rc = set_ssl_key(&cfg->quorum_tls, key, value, err, errlen);
        if (rc == 0)
            cfg->quorum_tls.ssl_keys_set = true;
        return rc;
    }
    if (strncmp(key, "ssl.", 4) == 0) {
        int rc = set_ssl_key(tls, key, value, err, errlen);
        if (rc == 0)
            tls->ssl_keys_set = true;
        return rc;
    }
    if (strcmp(key, "secureClientPort") == 0) {
        long port;
        char *end;
        port = strtol(value, &end, 10);
        if (end == value || *end != '\0' || port < 0 || port > 65535)
            return config_fail(err, errlen, "%s: '%s' is not a port", key, value);
        tls->secure_client_port = (int)port;
        return 0;
    }
    if (strcmp(bare, "client.portUnification") == 0) {
        /* ZooKeeper reads it as the system property zookeeper.client.portUnification */
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        tls->port_unification = strcasecmp(value, "true") == 0;
        return 0;
    }
    if (strcmp(key, "secureClientPortAddress") == 0)
        return value[0] ? copy_value(key, value, tls->secure_client_port_address,
                                     sizeof tls->secure_client_port_address, err, errlen)
                        : config_fail(err, errlen, "%s: empty address", key);
    return 1;
}

/* The ssl.* keys of the client port, or the ssl.quorum.* keys between
 * members (tls->quorum): name is the key after that prefix.  Same contract
 * as config_tls_set. */
static int set_ssl_key(struct config_tls *tls, const char *key, const char *value, char *err,
                       size_t errlen)
{
    const char *name = key + (tls->quorum ? strlen("ssl.quorum.") : strlen("ssl."));
    if (strcmp(name, "keyStore.location") == 0)
        return copy_value(key, value, tls->key_store, sizeof tls->key_store, err, errlen);
    if (strcmp(name, "keyStore.password") == 0)
        return copy_value(key, value, tls->key_store_password, sizeof tls->key_store_password, err,
                          errlen);
    if (strcmp(name, "keyStore.type") == 0)
        return set_store_type(key, value, tls->key_store, &tls->key_store_type, err, errlen);
    if (strcmp(name, "trustStore.location") == 0)
        return copy_value(key, value, tls->trust_store, sizeof tls->trust_store, err, errlen);
    if (strcmp(name, "trustStore.password") == 0)
        return copy_value(key, value, tls->trust_store_password, sizeof tls->trust_store_password,
                          err, errlen);
    if (strcmp(name, "trustStore.type") == 0)
        return set_store_type(key, value, tls->trust_store, &tls->trust_store_type, err, errlen);
    if (strcmp(name, "clientAuth") == 0) {
        /* X509Util.ClientAuth.fromPropertyValue: case ignored */
        if (strcasecmp(value, "need") == 0)
            tls->client_auth = CONFIG_CLIENT_AUTH_NEED;
        else if (strcasecmp(value, "want") == 0)
            tls->client_auth = CONFIG_CLIENT_AUTH_WANT;
        else if (strcasecmp(value, "none") == 0)
            tls->client_auth = CONFIG_CLIENT_AUTH_NONE;
        else
            return config_fail(err, errlen, "%s: expected need, want or none, got '%s'", key, value);
        return 0;
    }
    if (strcmp(name, "protocol") == 0) {
        /* the SSLContext's protocol; it is also the one enabled unless
         * ssl.enabledProtocols lists them */
        int v;
        if (strcmp(value, "TLS") == 0) {
            if (!tls->protocols_listed) {
                tls->min_version = CONFIG_TLS_1_2;
                tls->max_version = CONFIG_TLS_1_3;
            }
            return 0;
        }
        if (protocol_version(value, &v) != 0)
            return config_fail(err, errlen, "%s: '%s' is not supported (TLSv1.2, TLSv1.3 or TLS are)", key,
                        value);
        if (!tls->protocols_listed)
            tls->min_version = tls->max_version = v;
        return 0;
    }
    if (strcmp(name, "enabledProtocols") == 0)
        return set_enabled_protocols(tls, key, value, err, errlen);
    if (strcmp(name, "ciphersuites") == 0)
        return copy_value(key, value, tls->ciphersuites, sizeof tls->ciphersuites, err, errlen);
    if (strcmp(name, "handshakeDetectionTimeoutMillis") == 0) {
        /* ZooKeeper (X509Util) bounds its TLS detection by it; znoded bounds the whole
         * handshake on the client port by it */
        long ms;
        char *end;
        ms = strtol(value, &end, 10);
        if (end == value || *end != '\0' || ms < 1 || ms > 3600000)
            return config_fail(err, errlen, "%s: expected milliseconds from 1 to 3600000, got '%s'", key,
                               value);
        tls->handshake_timeout_ms = (int)ms;
        return 0;
    }
    if (strcmp(name, "authProvider") == 0 && !tls->quorum) {
        /* the scheme a client certificate authenticates with */
        if (strcmp(value, "x509") != 0)
            return config_fail(err, errlen, "%s: only the x509 provider is built in, got '%s'", key, value);
        return 0;
    }
    if (strcmp(name, "hostnameVerification") == 0) {
        /* On the client port ZooKeeper's server never checks a client
         * certificate's host name (ClientX509Util.shouldVerifyClientHostname
         * is false): nor does znoded.  Between members both sides check it
         * (QuorumX509Util), and so does znoded (transport.c). */
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
        tls->hostname_verification = strcasecmp(value, "true") == 0;
        return 0;
    }
    return 1;
}

/* The defaults and the store types of one set of keys (ssl.* or ssl.quorum.*). */
static int finish_stores(struct config_tls *tls, char *err, size_t errlen)
{
    const char *prefix = tls->quorum ? "ssl.quorum." : "ssl.";
    char key[64];
    if (tls->handshake_timeout_ms == 0)
        tls->handshake_timeout_ms = CONFIG_TLS_HANDSHAKE_TIMEOUT_MS;
    if (tls->min_version == 0) {
        tls->min_version = CONFIG_TLS_1_2;
        tls->max_version = CONFIG_TLS_1_3;
    }
    snprintf(key, sizeof key, "%skeyStore.location", prefix);
    if (tls->key_store[0] && tls->key_store_type == CONFIG_STORE_NONE &&
        store_type_from_name(key, tls->key_store, &tls->key_store_type, err, errlen) != 0)
        return -1;
    snprintf(key, sizeof key, "%strustStore.location", prefix);
    if (tls->trust_store[0] && tls->trust_store_type == CONFIG_STORE_NONE &&
        store_type_from_name(key, tls->trust_store, &tls->trust_store_type, err, errlen) != 0)
        return -1;
    return 0;
}

/* sslQuorum, portUnification, sslQuorumReloadCertFiles and ssl.quorum.*. */
static int finish_quorum(struct config *cfg, char *err, size_t errlen)
{
    struct config_tls *q = &cfg->quorum_tls;
    bool used = cfg->ssl_quorum || cfg->port_unification;
    if (!used) {
        if (q->ssl_keys_set)
            return config_fail(err, errlen, "ssl.quorum.* keys are set but neither sslQuorum=true nor "
                                            "portUnification=true: they would have no effect");
        if (cfg->ssl_quorum_reload)
            return config_fail(err, errlen, "sslQuorumReloadCertFiles=true but neither sslQuorum=true nor "
                                            "portUnification=true: it would have no effect");
        return 0;
    }
    if (finish_stores(q, err, errlen) != 0)
        return -1;
    const char *which = cfg->ssl_quorum ? "sslQuorum=true" : "portUnification=true";
    if (cfg->server_count == 0)
        return config_fail(err, errlen, "%s: there are no server.N lines (a standalone server has no "
                                        "members to talk to)", which);
    if (q->key_store[0] == '\0')
        return config_fail(err, errlen, "%s needs ssl.quorum.keyStore.location (this member's key and "
                                        "certificate)", which);
    return 0;
}

int config_tls_finish(struct config *cfg, char *err, size_t errlen)
{
    struct config_tls *tls = &cfg->tls;
    if (tls->secure_client_port_address[0] == '\0')
        strcpy(tls->secure_client_port_address, "0.0.0.0");
    if (finish_stores(tls, err, errlen) != 0 || finish_quorum(cfg, err, errlen) != 0)
        return -1;
    if (tls->port_unification && tls->key_store[0] == '\0')
        return config_fail(err, errlen, "client.portUnification=true needs ssl.keyStore.location (the server's "
                                 "key and certificate, for the TLS clients of clientPort)");
    if (tls->secure_client_port == 0) {
        if (strcmp(tls->secure_client_port_address, "0.0.0.0") != 0)
            return config_fail(err, errlen, "secureClientPortAddress is set but secureClientPort is not");
        if (tls->ssl_keys_set && !tls->port_unification)
            return config_fail(err, errlen, "ssl.* keys are set but neither secureClientPort nor "
                                     "client.portUnification=true is: they would have no effect (between "
                                     "members, the keys are ssl.quorum.*)");
        return 0;
    }
    if (tls->key_store[0] == '\0')
        return config_fail(err, errlen, "secureClientPort=%d needs ssl.keyStore.location (the server's key "
                                 "and certificate)", tls->secure_client_port);
    if (tls->secure_client_port == cfg->client_port &&
        strcmp(tls->secure_client_port_address, cfg->client_port_address) == 0)
        return config_fail(err, errlen, "secureClientPort and clientPort are both %d: for TLS and plain "
                                 "clients on one port set client.portUnification=true and no secureClientPort",
                    cfg->client_port);
    return 0;
}
