/*
 * config_sasl: the zoo.cfg keys and the JAAS file of SASL for clients, as
 * ZooKeeper 3.8 takes them.
 *
 *   - The JAAS file is named by java.security.auth.login.config, as a zoo.cfg
 *     key or as -Djava.security.auth.login.config=PATH in SERVER_JVMFLAGS
 *     (where zkServer.sh users put it).  Both naming different files is an
 *     error; of SERVER_JVMFLAGS nothing else is read (other -Dzookeeper.*
 *     flags there are logged as not read).
 *   - Its Server section must exist and hold DigestLoginModule entries: each
 *     user_NAME="password" option is a DIGEST-MD5 user.  Krb5LoginModule
 *     (GSSAPI) is refused, as is any other module.
 *   - authProvider.N=...SASLAuthenticationProvider registers the sasl: ACL
 *     scheme.  enforce.auth.enabled/enforce.auth.schemes (and
 *     sessionRequireClientSASLAuth, which means enforce.auth.schemes=sasl)
 *     are checked as AuthenticationHelper checks them: the schemes must be
 *     given, and each must have a provider.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "jaas.h"
#include "log.h"

#define CONFIG_SASL_PROVIDER "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
#define CONFIG_DIGEST_LOGIN_MODULE "org.apache.zookeeper.server.auth.DigestLoginModule"
#define CONFIG_KRB5_LOGIN_MODULE "com.sun.security.auth.module.Krb5LoginModule"
#define CONFIG_JAAS_KEY "java.security.auth.login.config"
#define CONFIG_JAAS_SECTION "Server"
/* The largest JAAS file read. */
#define CONFIG_JAAS_MAX_BYTES (256 * 1024)

static int set_boolean(const char *key, const char *value, bool *out, char *err, size_t errlen)
{
    if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
        return config_fail(err, errlen, "%s: expected true or false, got '%s'", key, value);
    *out = strcasecmp(value, "true") == 0;
    return 0;
}

static int scheme_bit(const char *name)
{
    if (strcmp(name, "ip") == 0)
        return CONFIG_SCHEME_IP;
    if (strcmp(name, "digest") == 0)
        return CONFIG_SCHEME_DIGEST;
    if (strcmp(name, "x509") == 0)
        return CONFIG_SCHEME_X509;
    if (strcmp(name, "sasl") == 0)
        return CONFIG_SCHEME_SASL;
    return 0;
}

static int set_schemes(struct config_sasl *sasl, const char *key, const char *value, char *err,
                       size_t errlen)
{
    char copy[512];
    if (snprintf(copy, sizeof copy, "%s", value) >= (int)sizeof copy)
        return config_fail(err, errlen, "%s: value too long", key);
    sasl->enforce_schemes = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        for (char *end = tok + strlen(tok); end > tok && end[-1] == ' ';)
            *--end = '\0';
        int bit = scheme_bit(tok);
        if (bit == 0) /* AuthenticationHelper: "Authentication scheme X is not available." */
            return config_fail(err, errlen, "%s: authentication scheme '%s' is not available (ip, digest, "
                                            "x509 and sasl are)", key, tok);
        sasl->enforce_schemes |= (unsigned)bit;
    }
    return 0;
}

int config_sasl_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    struct config_sasl *sasl = &cfg->sasl;
    if (strncmp(key, "authProvider.", 13) == 0 && strcmp(value, CONFIG_SASL_PROVIDER) == 0) {
        sasl->provider = true;
        return 0;
    }
    if (strcmp(key, CONFIG_JAAS_KEY) == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof sasl->login_config)
            return config_fail(err, errlen, "%s: bad path '%s'", key, value);
        strcpy(sasl->login_config, value);
        return 0;
    }
    const char *bare = strncmp(key, "zookeeper.", 10) == 0 ? key + 10 : key;
    if (strcmp(bare, "enforce.auth.enabled") == 0)
        return set_boolean(key, value, &sasl->enforce_auth, err, errlen);
    if (strcmp(bare, "enforce.auth.schemes") == 0)
        return set_schemes(sasl, key, value, err, errlen);
    if (strcmp(bare, "sessionRequireClientSASLAuth") == 0)
        return set_boolean(key, value, &sasl->require_sasl, err, errlen);
    if (strcmp(bare, "superUser") == 0) { /* ZooKeeperServer.isSaslSuperUser */
        if (value[0] == '\0' || strlen(value) >= sizeof sasl->super_user)
            return config_fail(err, errlen, "%s: bad user name '%s'", key, value);
        strcpy(sasl->super_user, value);
        return 0;
    }
    if (strcmp(bare, "quorum.auth.enableSasl") == 0)
        return set_boolean(key, value, &sasl->quorum_enable, err, errlen);
    if (strcmp(bare, "quorum.auth.learnerRequireSasl") == 0)
        return set_boolean(key, value, &sasl->quorum_learner_require, err, errlen);
    if (strcmp(bare, "quorum.auth.serverRequireSasl") == 0)
        return set_boolean(key, value, &sasl->quorum_server_require, err, errlen);
    if (strcmp(bare, "quorum.auth.learner.saslLoginContext") == 0 ||
        strcmp(bare, "quorum.auth.server.saslLoginContext") == 0) {
        char *out = bare[12] == 'l' ? sasl->quorum_learner_context : sasl->quorum_server_context;
        if (value[0] == '\0' || strlen(value) >= CONFIG_SASL_NAME_BYTES)
            return config_fail(err, errlen, "%s: bad section name '%s'", key, value);
        strcpy(out, value);
        return 0;
    }
    if (strcmp(bare, "kerberos.removeHostFromPrincipal") == 0)
        return set_boolean(key, value, &sasl->remove_host_from_principal, err, errlen);
    if (strcmp(bare, "kerberos.removeRealmFromPrincipal") == 0)
        return set_boolean(key, value, &sasl->remove_realm_from_principal, err, errlen);
    return 1;
}

/* The JAAS file named in SERVER_JVMFLAGS, into out ("" when none). */
static int jaas_from_environment(char *out, size_t outlen, char *err, size_t errlen)
{
    static const char flag[] = "-D" CONFIG_JAAS_KEY "=";
    out[0] = '\0';
    const char *flags = getenv("SERVER_JVMFLAGS");
    if (flags == NULL)
        return 0;
    char copy[8192];
    if (snprintf(copy, sizeof copy, "%s", flags) >= (int)sizeof copy)
        return config_fail(err, errlen, "SERVER_JVMFLAGS: longer than %zu bytes", sizeof copy - 1);
    for (char *save = NULL, *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        size_t len = strlen(tok);
        if (len >= 2 && (tok[0] == '"' || tok[0] == '\'') && tok[len - 1] == tok[0]) {
            tok[len - 1] = '\0';
            tok++;
        }
        if (strncmp(tok, flag, sizeof flag - 1) == 0) {
            if (tok[sizeof flag - 1] == '\0' ||
                snprintf(out, outlen, "%s", tok + sizeof flag - 1) >= (int)outlen)
                return config_fail(err, errlen, "SERVER_JVMFLAGS: bad %s", tok);
        } else if (strncmp(tok, "-Dzookeeper.", 12) == 0) {
            ZN_WARN("config: SERVER_JVMFLAGS: %s is not read by znoded (only %s is; put ZooKeeper's "
                    "keys in zoo.cfg)", tok, flag);
        }
    }
    return 0;
}

struct jaas_reading {
    struct config_sasl *sasl;
    const char *path;
    bool server_section;
    bool quorum_server_section, quorum_learner_section;
    int quorum_entry;       /* the current entry: 1 of the quorum server section, 2 of the learner's */
    bool digest_entry;      /* the current Server entry is DigestLoginModule */
    bool krb5_entry;        /* ... Krb5LoginModule */
    bool use_key_tab;
    char *err;
    size_t errlen;
};

static int on_entry(void *ctx, const char *section, const char *module, const char *flag)
{
    struct jaas_reading *rd = ctx;
    rd->digest_entry = rd->krb5_entry = false;
    rd->quorum_entry = 0;
    const struct config_sasl *sasl = rd->sasl;
    if (sasl->quorum_enable && (strcmp(section, sasl->quorum_server_context) == 0 ||
                                strcmp(section, sasl->quorum_learner_context) == 0)) {
        if (strcmp(module, CONFIG_DIGEST_LOGIN_MODULE) != 0)
            return config_fail(rd->err, rd->errlen, "%s=%s: section %s uses %s: between members znoded "
                               "authenticates with DIGEST-MD5 only (%s)", CONFIG_JAAS_KEY, rd->path, section,
                               module, CONFIG_DIGEST_LOGIN_MODULE);
        rd->quorum_entry = strcmp(section, sasl->quorum_server_context) == 0 ? 1 : 2;
        *(rd->quorum_entry == 1 ? &rd->quorum_server_section : &rd->quorum_learner_section) = true;
        return 0;
    }
    if (strcmp(section, CONFIG_JAAS_SECTION) != 0)
        return 0; /* sections of clients (Client), of members when quorum.auth.enableSasl is false */
    rd->server_section = true;
    if (strcmp(module, CONFIG_DIGEST_LOGIN_MODULE) == 0) {
        rd->digest_entry = true;
        return 0;
    }
    if (strcmp(module, CONFIG_KRB5_LOGIN_MODULE) == 0) {
        rd->krb5_entry = true;
        rd->sasl->gssapi = true;
        return 0;
    }
    return config_fail(rd->err, rd->errlen, "%s=%s: section %s uses %s, which znoded does not have "
                       "(%s for DIGEST-MD5, %s for GSSAPI)", CONFIG_JAAS_KEY, rd->path, section, module,
                       CONFIG_DIGEST_LOGIN_MODULE, CONFIG_KRB5_LOGIN_MODULE);
}

/* Krb5LoginModule's options as a server (acceptor) uses them: the key table
 * and the principal are read; the options that only steer Java's login
 * (storeKey, doNotPrompt, isInitiator, debug, refreshKrb5Config) are logged as
 * not read; any other is refused. */
static int on_krb5_option(struct jaas_reading *rd, const char *section, const char *key, const char *value)
{
    struct config_sasl *sasl = rd->sasl;
    if (strcmp(key, "keyTab") == 0) {
        if (snprintf(sasl->keytab, sizeof sasl->keytab, "%s", value) >= (int)sizeof sasl->keytab)
            return config_fail(rd->err, rd->errlen, "%s=%s: %s.keyTab: path too long", CONFIG_JAAS_KEY,
                               rd->path, section);
        return 0;
    }
    if (strcmp(key, "principal") == 0) {
        if (snprintf(sasl->principal, sizeof sasl->principal, "%s", value) >= (int)sizeof sasl->principal)
            return config_fail(rd->err, rd->errlen, "%s=%s: %s.principal: too long", CONFIG_JAAS_KEY,
                               rd->path, section);
        return 0;
    }
    if (strcmp(key, "useKeyTab") == 0) {
        rd->use_key_tab = strcasecmp(value, "true") == 0;
        return 0;
    }
    if (strcmp(key, "useTicketCache") == 0 && strcasecmp(value, "false") == 0)
        return 0;
    static const char *const java_only[] = {"storeKey", "doNotPrompt", "isInitiator", "debug",
                                            "refreshKrb5Config"};
    for (size_t i = 0; i < sizeof java_only / sizeof java_only[0]; i++)
        if (strcmp(key, java_only[i]) == 0) {
            ZN_DEBUG("config: %s: %s.%s only steers Java's Kerberos login: not read", rd->path, section, key);
            return 0;
        }
    return config_fail(rd->err, rd->errlen, "%s=%s: %s: Krb5LoginModule option %s=%s is not supported "
                       "(a server reads keyTab, principal, useKeyTab=true)", CONFIG_JAAS_KEY, rd->path,
                       section, key, value);
}

static int add_user(struct jaas_reading *rd, const char *section, const char *key, const char *value,
                    struct config_sasl_user *users, int *count);

/* An option of a quorum section: user_NAME in the server's, username and
 * password in the learner's. */
static int on_quorum_option(struct jaas_reading *rd, const char *section, const char *key, const char *value)
{
    struct config_sasl *sasl = rd->sasl;
    if (rd->quorum_entry == 1 && strncmp(key, "user_", 5) == 0)
        return add_user(rd, section, key, value, sasl->quorum_users, &sasl->quorum_user_count);
    if (rd->quorum_entry == 2 && (strcmp(key, "username") == 0 || strcmp(key, "password") == 0)) {
        char *out = key[0] == 'u' ? sasl->quorum_learner.name : sasl->quorum_learner.password;
        if (strlen(value) >= CONFIG_SASL_NAME_BYTES)
            return config_fail(rd->err, rd->errlen, "%s=%s: %s.%s: longer than %d bytes", CONFIG_JAAS_KEY,
                               rd->path, section, key, CONFIG_SASL_NAME_BYTES - 1);
        strcpy(out, value);
        return 0;
    }
    ZN_INFO("config: %s: %s.%s is not read (a quorum server section holds user_NAME entries, a learner "
            "section username and password)", rd->path, section, key);
    return 0;
}

static int on_option(void *ctx, const char *section, const char *key, const char *value)
{
    struct jaas_reading *rd = ctx;
    if (rd->quorum_entry)
        return on_quorum_option(rd, section, key, value);
    if (rd->krb5_entry)
        return on_krb5_option(rd, section, key, value);
    if (!rd->digest_entry)
        return 0;
    struct config_sasl *sasl = rd->sasl;
    if (strncmp(key, "user_", 5) != 0) {
        /* DigestLoginModule's username/password are a client's (QuorumLearner, Client):
         * ZooKeeper's server side does not read them in Server either. */
        ZN_INFO("config: %s: %s.%s is not read by the server side (only user_NAME entries are)",
                rd->path, section, key);
        return 0;
    }
    return add_user(rd, section, key, value, sasl->users, &sasl->user_count);
}

static int add_user(struct jaas_reading *rd, const char *section, const char *key, const char *value,
                    struct config_sasl_user *users, int *count)
{
    const char *name = key + 5;
    if (name[0] == '\0')
        return config_fail(rd->err, rd->errlen, "%s=%s: %s: user_ without a user name",
                           CONFIG_JAAS_KEY, rd->path, section);
    if (strlen(name) >= CONFIG_SASL_NAME_BYTES || strlen(value) >= CONFIG_SASL_PASSWORD_BYTES)
        return config_fail(rd->err, rd->errlen, "%s=%s: %s: %s: name or password longer than %d bytes",
                           CONFIG_JAAS_KEY, rd->path, section, key, CONFIG_SASL_NAME_BYTES - 1);
    for (int i = 0; i < *count; i++)
        if (strcmp(users[i].name, name) == 0) { /* a Java map: the last one wins */
            strcpy(users[i].password, value);
            return 0;
        }
    if (*count == CONFIG_SASL_MAX_USERS)
        return config_fail(rd->err, rd->errlen, "%s=%s: more than %d users", CONFIG_JAAS_KEY, rd->path,
                           CONFIG_SASL_MAX_USERS);
    struct config_sasl_user *u = &users[(*count)++];
    strcpy(u->name, name);
    strcpy(u->password, value);
    return 0;
}

/* GSSAPI: ZooKeeper's server takes one mechanism, GSSAPI when its login has a
 * Kerberos principal; a Server section with both kinds of entry is refused. */
static int check_gssapi(struct config_sasl *sasl, bool use_key_tab, char *err, size_t errlen)
{
    const char *path = sasl->login_config;
    if (sasl->user_count > 0)
        return config_fail(err, errlen, "%s=%s: section %s has both Krb5LoginModule and DigestLoginModule "
                           "entries: ZooKeeper would serve GSSAPI only; keep one", CONFIG_JAAS_KEY, path,
                           CONFIG_JAAS_SECTION);
    if (!use_key_tab || sasl->keytab[0] == '\0')
        return config_fail(err, errlen, "%s=%s: Krb5LoginModule needs useKeyTab=true and keyTab=PATH (the "
                           "server's key)", CONFIG_JAAS_KEY, path);
    const char *slash = strchr(sasl->principal, '/'), *at = strchr(sasl->principal, '@');
    if (!slash || !at || at < slash || slash == sasl->principal || at == slash + 1 || at[1] == '\0' ||
        strchr(at + 1, '@') || strchr(slash + 1, '/'))
        return config_fail(err, errlen, "%s=%s: Krb5LoginModule principal '%s' is not SERVICE/HOST@REALM",
                           CONFIG_JAAS_KEY, path, sasl->principal);
    FILE *f = fopen(sasl->keytab, "r");
    if (!f)
        return config_fail(err, errlen, "%s=%s: keyTab %s: %s", CONFIG_JAAS_KEY, path, sasl->keytab,
                           strerror(errno));
    fclose(f);
    sasl->enabled = true;
    return 0;
}

static int read_jaas(struct config_sasl *sasl, char *err, size_t errlen)
{
    const char *path = sasl->login_config;
    FILE *f = fopen(path, "r");
    if (!f)
        return config_fail(err, errlen, "%s=%s: %s", CONFIG_JAAS_KEY, path, strerror(errno));
    char *text = malloc(CONFIG_JAAS_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return config_fail(err, errlen, "%s: out of memory", CONFIG_JAAS_KEY);
    }
    size_t len = fread(text, 1, CONFIG_JAAS_MAX_BYTES + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || len > CONFIG_JAAS_MAX_BYTES) {
        free(text);
        return config_fail(err, errlen, "%s=%s: %s", CONFIG_JAAS_KEY, path,
                           failed ? "cannot be read" : "larger than 256 KiB");
    }
    struct jaas_reading rd = {.sasl = sasl, .path = path, .err = err, .errlen = errlen};
    struct jaas_visitor v = {.entry = on_entry, .option = on_option, .ctx = &rd};
    char why[256];
    sasl->user_count = 0;
    int rc = jaas_parse(text, len, &v, why, sizeof why);
    free(text);
    if (rc == -1 && why[0])
        return config_fail(err, errlen, "%s=%s: %s", CONFIG_JAAS_KEY, path, why);
    if (rc != 0)
        return -1; /* a visitor's refusal, already in err */
    if (sasl->quorum_enable && !rd.quorum_server_section)
        return config_fail(err, errlen, "%s=%s: quorum.auth.enableSasl=true but the file has no %s section (the "
                           "members this one accepts, as user_NAME entries)", CONFIG_JAAS_KEY, path,
                           sasl->quorum_server_context);
    if (sasl->quorum_enable && sasl->quorum_user_count == 0)
        return config_fail(err, errlen, "%s=%s: section %s has no user_NAME=\"password\" entry", CONFIG_JAAS_KEY,
                           path, sasl->quorum_server_context);
    if (sasl->quorum_learner_require && (!rd.quorum_learner_section || !sasl->quorum_learner.name[0]))
        return config_fail(err, errlen, "%s=%s: quorum.auth.learnerRequireSasl=true but the file has no %s "
                           "section with a username (and password)", CONFIG_JAAS_KEY, path,
                           sasl->quorum_learner_context);
    if (!rd.server_section && sasl->quorum_enable)
        return 0; /* the file is for members only: no SASL for clients */
    if (!rd.server_section)
        return config_fail(err, errlen, "%s=%s: no %s section: SASL for clients would not be served",
                           CONFIG_JAAS_KEY, path, CONFIG_JAAS_SECTION);
    if (sasl->gssapi)
        return check_gssapi(sasl, rd.use_key_tab, err, errlen);
    if (sasl->user_count == 0)
        return config_fail(err, errlen, "%s=%s: section %s has no user_NAME=\"password\" entry",
                           CONFIG_JAAS_KEY, path, CONFIG_JAAS_SECTION);
    sasl->enabled = true;
    return 0;
}

static int check_enforce(const struct config *cfg, char *err, size_t errlen)
{
    const struct config_sasl *sasl = &cfg->sasl;
    if (!sasl->enforce_auth && sasl->enforce_schemes)
        return config_fail(err, errlen, "enforce.auth.schemes is set but enforce.auth.enabled is not true: "
                                        "it would have no effect");
    if (!sasl->enforce_auth)
        return 0;
    if (sasl->enforce_schemes == 0)
        return config_fail(err, errlen, "enforce.auth.enabled=true needs enforce.auth.schemes (the schemes a "
                                        "client must have authenticated with)");
    if ((sasl->enforce_schemes & CONFIG_SCHEME_SASL) && !sasl->provider)
        return config_fail(err, errlen, "enforce.auth.schemes: authentication scheme 'sasl' is not available "
                                        "(it needs authProvider.1=%s)", CONFIG_SASL_PROVIDER);
    if ((sasl->enforce_schemes & CONFIG_SCHEME_X509) && cfg->tls.secure_client_port == 0 &&
        !cfg->tls.x509_provider)
        return config_fail(err, errlen, "enforce.auth.schemes: authentication scheme 'x509' is not available "
                                        "(it needs secureClientPort or the X509AuthenticationProvider)");
    if ((sasl->enforce_schemes & CONFIG_SCHEME_SASL) && !sasl->enabled)
        return config_fail(err, errlen, "enforce.auth.schemes: sasl is enforced but no client could "
                                        "authenticate with it (no %s with a %s section)",
                           CONFIG_JAAS_KEY, CONFIG_JAAS_SECTION);
    return 0;
}

int config_sasl_finish(struct config *cfg, char *err, size_t errlen)
{
    struct config_sasl *sasl = &cfg->sasl;
    char from_env[PATH_MAX];
    if (jaas_from_environment(from_env, sizeof from_env, err, errlen) != 0)
        return -1;
    if (from_env[0] && sasl->login_config[0] && strcmp(from_env, sasl->login_config) != 0)
        return config_fail(err, errlen, "%s=%s in zoo.cfg and -D%s=%s in SERVER_JVMFLAGS name different "
                                        "files", CONFIG_JAAS_KEY, sasl->login_config, CONFIG_JAAS_KEY, from_env);
    if (from_env[0] && !sasl->login_config[0]) {
        strcpy(sasl->login_config, from_env);
        sasl->login_config_from_env = true;
    }
    if (sasl->require_sasl) { /* AuthenticationHelper: the same as enforcing sasl */
        sasl->enforce_auth = true;
        sasl->enforce_schemes |= CONFIG_SCHEME_SASL;
    }
    /* QuorumPeerConfig's checks */
    if (!sasl->quorum_enable && (sasl->quorum_learner_require || sasl->quorum_server_require))
        return config_fail(err, errlen, "quorum.auth.enableSasl is disabled, so cannot enable "
                           "quorum.auth.%sRequireSasl", sasl->quorum_learner_require ? "learner" : "server");
    if (sasl->quorum_server_require && !sasl->quorum_learner_require)
        return config_fail(err, errlen, "quorum.auth.learnerRequireSasl is disabled, so cannot enable "
                           "quorum.auth.serverRequireSasl (this member could not join the others)");
    if (sasl->quorum_enable && cfg->server_count == 0)
        return config_fail(err, errlen, "quorum.auth.enableSasl=true: there are no server.N lines (a standalone "
                           "server has no members to authenticate)");
    if (sasl->quorum_enable && !sasl->login_config[0])
        return config_fail(err, errlen, "quorum.auth.enableSasl=true needs the JAAS file (%s) with its %s section",
                           CONFIG_JAAS_KEY, sasl->quorum_server_context);
    if (sasl->login_config[0] && read_jaas(sasl, err, errlen) != 0)
        return -1;
    if (sasl->super_user[0] && !sasl->enabled)
        return config_fail(err, errlen, "superUser=%s names a SASL user, but no SASL is configured (%s): it "
                           "would have no effect", sasl->super_user, CONFIG_JAAS_KEY);
    if (!sasl->gssapi && (sasl->remove_host_from_principal || sasl->remove_realm_from_principal))
        return config_fail(err, errlen, "kerberos.remove%sFromPrincipal=true acts on Kerberos principals: without "
                           "a Krb5LoginModule in the JAAS Server section it would have no effect",
                           sasl->remove_host_from_principal ? "Host" : "Realm");
    return check_enforce(cfg, err, errlen);
}
