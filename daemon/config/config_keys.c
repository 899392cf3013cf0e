/*
 * config_keys: the zoo.cfg keys ZooKeeper knows and znoded does not act on.
 *
 * config.c acts on a key or hands it here, where it meets one of four fates:
 *   - harmless to ignore: what it tunes exists only inside ZooKeeper's JVM
 *     or its own file formats (a thread pool, the size of a log file).  The
 *     key is recorded in cfg->ignored, and --check-config prints it.
 *   - accepted only at the value that describes what znoded does anyway
 *     (forceSync=yes, ssl.crl=false), refused at any other;
 *   - refused with the reason (not supported, or not supported yet);
 *   - unknown: refused.  ZooKeeper turns an unknown key into a system
 *     property and carries on; a misspelt key would then be a setting the
 *     user believes in and does not have.
 * Nothing is accepted and then quietly not done.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct ignored_key {
    const char *key;
    const char *why;
};

/* The short list: keep it to keys whose effect cannot exist outside ZooKeeper's JVM or files. */
static const struct ignored_key ignored_keys[] = {
    {"serverCnxnFactory", "a Java class; znoded has one connection layer"},
    {"quorum.cnxn.threads.size", "a JVM thread pool"},
    {"metricsProvider.exportJvmInfo", "JVM metrics; znoded runs no JVM"},
    {"metricsProvider.numWorkerThreads", "a JVM thread pool"},
    {"metricsProvider.maxQueueSize", "a JVM thread pool's queue"},
    {"metricsProvider.workerShutdownTimeoutMs", "a JVM thread pool"},
    {"jvm.pause.monitor", "the JVM pause monitor"},
    {"jvm.pause.info-threshold.ms", "the JVM pause monitor"},
    {"jvm.pause.warn-threshold.ms", "the JVM pause monitor"},
    {"jvm.pause.sleep.time.ms", "the JVM pause monitor"},
};

struct fixed_key {
    const char *key;
    const char *value; /* the one value accepted (compared without case) */
    const char *why;   /* why any other is refused */
};

static const struct fixed_key fixed_keys[] = {
    {"standaloneEnabled", "true", "a server without server.N lines is standalone; false is not supported"},
    {"syncEnabled", "true", "znoded's observers always write the log to disk"},
    {"forceSync", "yes", "znoded always fsyncs the log before it acknowledges a write"},
    {"leaderServes", "yes", "znoded's leader always serves clients"},
    {"electionAlg", "3", "fast leader election (3) is the only one, as in ZooKeeper 3.6+"},
    {"quorumListenOnAllIPs", "false", "members listen on their server.N address only"},
    {"localSessionsEnabled", "false", "local sessions are not supported"},
    {"localSessionsUpgradingEnabled", "false", "local sessions are not supported"},
    {"audit.enable", "false", "audit logging is not supported"},
    {"multiAddress.enabled", "false", "several addresses per member are not supported"},
    {"ssl.crl", "false", "certificate revocation lists are not supported yet"},
    {"ssl.ocsp", "false", "OCSP is not supported yet"},
    {"ssl.quorum.crl", "false", "certificate revocation lists are not supported yet"},
    {"ssl.quorum.ocsp", "false", "OCSP is not supported yet"},
};

struct refused_key {
    const char *key;
    bool prefix; /* key names every key that starts with it */
    const char *why;
};

static const struct refused_key refused_keys[] = {
    {"ssl.quorum.", true, "not supported (between members znoded reads ssl.quorum.keyStore.*, "
                          "ssl.quorum.trustStore.*, ssl.quorum.clientAuth, ssl.quorum.protocol, "
                          "ssl.quorum.enabledProtocols, ssl.quorum.ciphersuites, "
                          "ssl.quorum.hostnameVerification, ssl.quorum.handshakeDetectionTimeoutMillis)"},
    {"ssl.", true, "not supported yet (the client port's TLS keys are ssl.keyStore.*, "
                   "ssl.trustStore.*, ssl.clientAuth, ssl.protocol, ssl.enabledProtocols, "
                   "ssl.ciphersuites, ssl.handshakeDetectionTimeoutMillis)"},
    {"kerberos.", true, "not supported (of Kerberos, znoded reads kerberos.removeHostFromPrincipal and "
                        "kerberos.removeRealmFromPrincipal)"},
    {"quorum.auth.kerberos.", true, "Kerberos between members is not supported (members authenticate "
                                    "with DIGEST-MD5 from the JAAS file's quorum sections)"},
    {"quorum.auth.", true, "not supported (between members znoded reads quorum.auth.enableSasl, "
                           "quorum.auth.learnerRequireSasl, quorum.auth.serverRequireSasl, "
                           "quorum.auth.learner.saslLoginContext, quorum.auth.server.saslLoginContext)"},
    {"sasl.", true, "not supported (znoded's SASL reads the JAAS file's Server section)"},
    {"multiAddress.", true, "several addresses per member are not supported"},
    {"observerMasterPort", false, "observers syncing from followers are not supported"},
    {"connectToLearnerMasterLimit", false, "observers syncing from followers are not supported"},
    {"oraclePath", false, "the quorum oracle is not supported"},
    {"group.", true, "hierarchical quorums are not supported"},
    {"weight.", true, "hierarchical quorums are not supported"},
};

#define CONFIG_DIGEST_PROVIDER "org.apache.zookeeper.server.auth.DigestAuthenticationProvider"
#define CONFIG_IP_PROVIDER "org.apache.zookeeper.server.auth.IPAuthenticationProvider"


static bool key_matches(const char *key, const char *name, bool prefix)
{
    return prefix ? strncmp(key, name, strlen(name)) == 0 : strcmp(key, name) == 0;
}

/* authProvider.N=CLASS: ZooKeeper's digest and ip providers are built in;
 * any other provider is Java code znoded cannot run. */
static int check_auth_provider(const char *key, const char *value, char *err, size_t errlen)
{
    if (strcmp(value, CONFIG_DIGEST_PROVIDER) == 0 || strcmp(value, CONFIG_IP_PROVIDER) == 0)
        return 0;
    return config_fail(err, errlen, "%s: '%s' is not a provider znoded has (digest and ip are built in)",
                key, value);
}

static void record_ignored(struct config *cfg, const struct ignored_key *k)
{
    for (int i = 0; i < cfg->ignored_count; i++)
        if (cfg->ignored[i].key == k->key)
            return;
    if (cfg->ignored_count < CONFIG_MAX_IGNORED) {
        cfg->ignored[cfg->ignored_count].key = k->key;
        cfg->ignored[cfg->ignored_count++].why = k->why;
    }
}

int config_key_other(struct config *cfg, const char *key, const char *value, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < sizeof ignored_keys / sizeof ignored_keys[0]; i++)
        if (strcmp(key, ignored_keys[i].key) == 0) {
            ZN_INFO("config: %s ignored: %s", key, ignored_keys[i].why);
            record_ignored(cfg, &ignored_keys[i]);
            return 0;
        }
    for (size_t i = 0; i < sizeof fixed_keys / sizeof fixed_keys[0]; i++)
        if (strcmp(key, fixed_keys[i].key) == 0) {
            if (strcasecmp(value, fixed_keys[i].value) == 0)
                return 0;
            return config_fail(err, errlen, "%s=%s: %s (only %s=%s is accepted)", key, value,
                        fixed_keys[i].why, key, fixed_keys[i].value);
        }
    if (strncmp(key, "authProvider.", 13) == 0)
        return check_auth_provider(key, value, err, errlen);
    /* ZooKeeper reads a zoo.cfg key k as the system property zookeeper.k:
     * a refused key is refused in both spellings. */
    const char *bare = strncmp(key, "zookeeper.", 10) == 0 ? key + 10 : key;
    for (size_t i = 0; i < sizeof refused_keys / sizeof refused_keys[0]; i++)
        if (key_matches(bare, refused_keys[i].key, refused_keys[i].prefix))
            return config_fail(err, errlen, "%s: %s", key, refused_keys[i].why);
    return config_fail(err, errlen, "%s: unknown key (ZooKeeper would pass it on as a system property; "
                             "znoded acts on every key it accepts)", key);
}
