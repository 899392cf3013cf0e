/* SASL for clients: the JAAS file reader, the zoo.cfg and SERVER_JVMFLAGS
 * keys that name it, and a DIGEST-MD5 exchange with Cyrus's own client
 * against saslauth (the server side znoded runs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sasl/sasl.h>

#include "config.h"
#include "jaas.h"
#include "saslauth.h"

/* ---- jaas_parse ---- */

struct collected {
    char text[2048];
};

static int on_entry(void *ctx, const char *section, const char *module, const char *flag)
{
    struct collected *c = ctx;
    size_t n = strlen(c->text);
    snprintf(c->text + n, sizeof c->text - n, "[%s] %s %s\n", section, module, flag);
    return 0;
}

static int on_option(void *ctx, const char *section, const char *key, const char *value)
{
    struct collected *c = ctx;
    size_t n = strlen(c->text);
    snprintf(c->text + n, sizeof c->text - n, "  %s=<%s>\n", key, value);
    return 0;
}

static int parse(const char *text, struct collected *out, char *err, size_t errlen)
{
    out->text[0] = '\0';
    struct jaas_visitor v = {.entry = on_entry, .option = on_option, .ctx = out};
    return jaas_parse(text, strlen(text), &v, err, errlen);
}

static void a_jaas_file_is_read_as_javas_config_file_reads_it(void **state)
{
    (void)state;
    struct collected c;
    char err[256];
    const char *text =
        "/* ZooKeeper's server */\n"
        "Server {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required // users\n"
        "  user_alice=\"a \\\"quoted\\\" secret\"\n"
        "  user_bob=plain;\n"
        "};\n"
        "Client{org.apache.zookeeper.server.auth.DigestLoginModule optional username=\"bob\" password=\"x\";};\n";
    assert_int_equal(parse(text, &c, err, sizeof err), 0);
    assert_string_equal(c.text,
                        "[Server] org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                        "  user_alice=<a \"quoted\" secret>\n"
                        "  user_bob=<plain>\n"
                        "[Client] org.apache.zookeeper.server.auth.DigestLoginModule optional\n"
                        "  username=<bob>\n"
                        "  password=<x>\n");
}

static void a_malformed_jaas_file_is_refused_with_its_line(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Server {\n  M required user_a=\"x\"\n};\n", "line 3: expected an option or ';', got '}'"},
        {"Server {\n  M mandatory;\n};", "line 2: 'mandatory' is not a control flag (required, requisite, sufficient or optional)"},
        {"Server {\n M required user_a=\"open\n", "line 2: a quoted value runs past the end of its line"},
        {"Server {\n M required user_a=\"${x}\";\n};", "line 2: user_a: ${...} property expansion is not supported"},
        {"Server { M required; }", "line 1: expected ';', got 'the end of the file'"},
        {"Server M required;", "line 1: expected '{', got 'M'"},
        {"/* never closed\nServer {};", "line 2: a /* comment is not closed"},
        {"= {};", "line 1: expected a section name, got '='"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct collected c;
        char err[256];
        assert_int_equal(parse(cases[i][0], &c, err, sizeof err), -1);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, err, cases[i][1]);
    }
}

static void nul_bytes_and_long_tokens_are_refused_not_cut(void **state)
{
    (void)state;
    struct collected c;
    char err[256];
    static const char with_nul[] = "Server { M required user_a=\"x\0y\"; };";
    struct jaas_visitor v = {.entry = on_entry, .option = on_option, .ctx = &c};
    c.text[0] = '\0';
    assert_int_equal(jaas_parse(with_nul, sizeof with_nul - 1, &v, err, sizeof err), -1);
    assert_string_equal(err, "line 1: a NUL byte in a quoted value");
    char *long_name = malloc(JAAS_TOKEN_BYTES + 64);
    memset(long_name, 'a', JAAS_TOKEN_BYTES + 10);
    strcpy(long_name + JAAS_TOKEN_BYTES + 10, " {};");
    assert_int_equal(parse(long_name, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "a name longer than"));
    free(long_name);
}

/* ---- zoo.cfg and SERVER_JVMFLAGS ---- */

static char jaas_path[64], cfg_path[64];

static void write_file(char *path, const char *pattern, const char *text)
{
    strcpy(path, pattern);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads "dataDir=/tmp/x\nclientPort=1\n" + extra, with a JAAS file holding jaas
 * (when not NULL; %J in extra and in SERVER_JVMFLAGS names it). */
static int load(struct config *cfg, const char *jaas, const char *extra, const char *jvmflags,
                char *err, size_t errlen)
{
    jaas_path[0] = '\0';
    if (jaas)
        write_file(jaas_path, "/tmp/zn-test-jaas-XXXXXX", jaas);
    char text[1024], flags[256];
    snprintf(text, sizeof text, "dataDir=/tmp/x\nclientPort=1\n");
    for (const char *p = extra; p && *p; p++) {
        size_t n = strlen(text);
        if (p[0] == '%' && p[1] == 'J') {
            snprintf(text + n, sizeof text - n, "%s", jaas_path);
            p++;
        } else {
            text[n] = *p;
            text[n + 1] = '\0';
        }
    }
    if (jvmflags) {
        snprintf(flags, sizeof flags, jvmflags, jaas_path);
        setenv("SERVER_JVMFLAGS", flags, 1);
    } else {
        unsetenv("SERVER_JVMFLAGS");
    }
    write_file(cfg_path, "/tmp/zn-test-cfg-XXXXXX", text);
    config_defaults(cfg);
    int rc = config_load(cfg, cfg_path, err, errlen);
    unlink(cfg_path);
    if (jaas)
        unlink(jaas_path);
    unsetenv("SERVER_JVMFLAGS");
    return rc;
}

#define PROVIDER "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
#define DIGEST_SERVER                                                                          \
    "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"                \
    " user_super=\"adminsecret\"\n user_bob=\"bobsecret\";\n};\n"

static void the_server_sections_users_come_from_the_zoo_cfg_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, DIGEST_SERVER, PROVIDER "java.security.auth.login.config=%J\nzookeeper.superUser=super\n",
                          NULL, err, sizeof err), 0);
    assert_string_equal(cfg.sasl.super_user, "super");
    assert_true(cfg.sasl.enabled);
    assert_true(cfg.sasl.provider);
    assert_false(cfg.sasl.login_config_from_env);
    assert_int_equal(cfg.sasl.user_count, 2);
    assert_string_equal(cfg.sasl.users[0].name, "super");
    assert_string_equal(cfg.sasl.users[0].password, "adminsecret");
    assert_string_equal(cfg.sasl.users[1].name, "bob");
    assert_string_equal(cfg.sasl.users[1].password, "bobsecret");
}

static void the_jaas_file_may_come_from_server_jvmflags_as_zkserver_sh_passes_it(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, DIGEST_SERVER, PROVIDER, "-Xmx1g -Djava.security.auth.login.config=%s -Dx=y",
                          err, sizeof err), 0);
    assert_true(cfg.sasl.enabled);
    assert_true(cfg.sasl.login_config_from_env);
    assert_string_equal(cfg.sasl.login_config, jaas_path);
    assert_int_equal(cfg.sasl.user_count, 2);
    /* no JAAS anywhere: no SASL */
    assert_int_equal(load(&cfg, NULL, PROVIDER, "-Xmx1g", err, sizeof err), 0);
    assert_false(cfg.sasl.enabled);
}

static void sasl_settings_znoded_cannot_honour_are_refused_naming_the_key(void **state)
{
    (void)state;
    static const struct {
        const char *jaas, *extra, *jvmflags, *expected;
    } cases[] = {
        {"Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/nonexistent/k\" "
         "principal=\"zookeeper/h@R\";\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "keyTab /nonexistent/k: No such file or directory"},
        {"Server {\n com.sun.security.auth.module.Krb5LoginModule required keyTab=\"/dev/null\" "
         "principal=\"zookeeper/h@R\";\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "Krb5LoginModule needs useKeyTab=true and keyTab=PATH"},
        {"Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/dev/null\" "
         "principal=\"zookeeper@R\";\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "principal 'zookeeper@R' is not SERVICE/HOST@REALM"},
        {"Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true useTicketCache=true "
         "keyTab=\"/dev/null\" principal=\"zookeeper/h@R\";\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "Krb5LoginModule option useTicketCache=true is not supported"},
        {"Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/dev/null\" "
         "principal=\"zookeeper/h@R\";\n org.apache.zookeeper.server.auth.DigestLoginModule required user_a=b;\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "has both Krb5LoginModule and DigestLoginModule entries"},
        {"Server {\n com.example.OtherLoginModule required;\n};\n", "java.security.auth.login.config=%J\n", NULL,
         "section Server uses com.example.OtherLoginModule, which znoded does not have"},
        {"Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required username=\"a\" "
         "password=\"b\";\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "no Server section: SASL for clients would not be served"},
        {"Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required;\n};\n",
         "java.security.auth.login.config=%J\n", NULL, "section Server has no user_NAME=\"password\" entry"},
        {NULL, "java.security.auth.login.config=/nonexistent/jaas.conf\n", NULL,
         "java.security.auth.login.config=/nonexistent/jaas.conf: No such file or directory"},
        {DIGEST_SERVER, "java.security.auth.login.config=/other.conf\n", "-Djava.security.auth.login.config=%s",
         "java.security.auth.login.config=/other.conf in zoo.cfg and -Djava.security.auth.login.config="},
        {DIGEST_SERVER, "java.security.auth.login.config=%J\nenforce.auth.enabled=true\n", NULL,
         "enforce.auth.enabled=true needs enforce.auth.schemes"},
        {DIGEST_SERVER, "java.security.auth.login.config=%J\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n",
         NULL, "authentication scheme 'sasl' is not available (it needs authProvider.1="},
        {DIGEST_SERVER, PROVIDER "enforce.auth.enabled=true\nenforce.auth.schemes=sasl,kerberos\n", NULL,
         "enforce.auth.schemes: authentication scheme 'kerberos' is not available"},
        {NULL, PROVIDER "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n", NULL,
         "sasl is enforced but no client could authenticate with it"},
        {NULL, "superUser=admin\n", NULL, "superUser=admin names a SASL user, but no SASL is configured"},
        {NULL, "enforce.auth.schemes=digest\n", NULL,
         "enforce.auth.schemes is set but enforce.auth.enabled is not true"},
        {DIGEST_SERVER, "java.security.auth.login.config=%J\nkerberos.removeHostFromPrincipal=true\n", NULL,
         "kerberos.removeHostFromPrincipal=true acts on Kerberos principals: without a Krb5LoginModule"},
        {NULL, "kerberos.canonicalizeHostNames=true\n", NULL,
         "kerberos.canonicalizeHostNames: not supported (of Kerberos, znoded reads"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char err[512];
        assert_int_equal(load(&cfg, cases[i].jaas, cases[i].extra, cases[i].jvmflags, err, sizeof err), -1);
        if (!strstr(err, cases[i].expected))
            fail_msg("case %zu: got '%s', expected '%s'", i, err, cases[i].expected);
    }
}

static void a_krb5_server_section_names_the_principal_and_key_table(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg,
                          "Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true\n"
                          " keyTab=\"/dev/null\" storeKey=true isInitiator=false useTicketCache=false\n"
                          " principal=\"zookeeper/zk1.example.com@EXAMPLE.COM\";\n};\n",
                          PROVIDER "java.security.auth.login.config=%J\nkerberos.removeRealmFromPrincipal=true\n",
                          NULL, err, sizeof err), 0);
    assert_true(cfg.sasl.enabled);
    assert_true(cfg.sasl.gssapi);
    assert_string_equal(cfg.sasl.keytab, "/dev/null");
    assert_string_equal(cfg.sasl.principal, "zookeeper/zk1.example.com@EXAMPLE.COM");
    assert_true(cfg.sasl.remove_realm_from_principal);
    assert_false(cfg.sasl.remove_host_from_principal);
    assert_int_equal(cfg.sasl.user_count, 0);
}

static void enforce_auth_is_read_as_zookeeper_reads_it(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(load(&cfg, DIGEST_SERVER,
                          PROVIDER "java.security.auth.login.config=%J\nzookeeper.enforce.auth.enabled=true\n"
                                   "enforce.auth.schemes=sasl, digest\n",
                          NULL, err, sizeof err), 0);
    assert_true(cfg.sasl.enforce_auth);
    assert_int_equal(cfg.sasl.enforce_schemes, CONFIG_SCHEME_SASL | CONFIG_SCHEME_DIGEST);
    /* sessionRequireClientSASLAuth=true is enforce.auth.schemes=sasl */
    assert_int_equal(load(&cfg, DIGEST_SERVER,
                          PROVIDER "java.security.auth.login.config=%J\nsessionRequireClientSASLAuth=true\n",
                          NULL, err, sizeof err), 0);
    assert_true(cfg.sasl.enforce_auth);
    assert_int_equal(cfg.sasl.enforce_schemes, CONFIG_SCHEME_SASL);
}

/* ---- a DIGEST-MD5 exchange: Cyrus's client against saslauth ---- */

struct client_identity {
    const char *user;
    sasl_secret_t *secret;
};

static int client_simple(void *context, int id, const char **result, unsigned *len)
{
    struct client_identity *who = context;
    if (id != SASL_CB_AUTHNAME && id != SASL_CB_USER)
        return SASL_BADPARAM;
    *result = id == SASL_CB_USER ? "" : who->user; /* no authorization id asked for */
    if (len)
        *len = (unsigned)strlen(*result);
    return SASL_OK;
}

static int client_secret(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
    (void)conn;
    (void)id;
    *psecret = ((struct client_identity *)context)->secret;
    return SASL_OK;
}

/* Runs a whole exchange as kazoo does (an empty first token); returns the
 * last result and leaves the user name in user. */
static enum saslauth_result exchange(const char *user, const char *password, char *who, size_t wholen,
                                     char *why, size_t whylen)
{
    struct client_identity id = {.user = user};
    id.secret = malloc(sizeof(sasl_secret_t) + strlen(password));
    id.secret->len = strlen(password);
    memcpy(id.secret->data, password, strlen(password));
    sasl_callback_t callbacks[] = {
        {SASL_CB_AUTHNAME, (int (*)(void))(void (*)(void))client_simple, &id},
        {SASL_CB_USER, (int (*)(void))(void (*)(void))client_simple, &id},
        {SASL_CB_PASS, (int (*)(void))(void (*)(void))client_secret, &id},
        {SASL_CB_LIST_END, NULL, NULL},
    };
    sasl_conn_t *client;
    assert_int_equal(sasl_client_new("zookeeper", "zk-sasl-md5", NULL, NULL, callbacks, 0, &client), SASL_OK);
    const char *cout = NULL, *mech = NULL;
    unsigned coutlen = 0;
    assert_int_equal(sasl_client_start(client, "DIGEST-MD5", NULL, &cout, &coutlen, &mech), SASL_CONTINUE);
    struct saslauth_session *session = NULL;
    enum saslauth_result res;
    for (int round = 0;; round++) {
        assert_true(round < 4);
        const char *sout;
        unsigned soutlen;
        res = saslauth_step(&session, (const uint8_t *)cout, coutlen, &sout, &soutlen, who, wholen, why, whylen);
        if (res != SASLAUTH_CONTINUE)
            break;
        assert_int_equal(sasl_client_step(client, sout, soutlen, NULL, &cout, &coutlen), SASL_CONTINUE);
    }
    saslauth_session_free(session);
    sasl_dispose(&client);
    free(id.secret);
    return res;
}

static struct config_sasl *exchange_users;

static int setup_exchange(void **state)
{
    (void)state;
    exchange_users = calloc(1, sizeof *exchange_users);
    exchange_users->enabled = true;
    exchange_users->user_count = 1;
    strcpy(exchange_users->users[0].name, "bob");
    strcpy(exchange_users->users[0].password, "bobsecret");
    assert_int_equal(sasl_client_init(NULL), SASL_OK);
    return saslauth_init(exchange_users);
}

static int teardown_exchange(void **state)
{
    (void)state;
    saslauth_shutdown();
    free(exchange_users);
    return 0;
}

static void digest_md5_with_the_right_password_authenticates_the_user(void **state)
{
    (void)state;
    char who[64] = "", why[256] = "";
    assert_int_equal(exchange("bob", "bobsecret", who, sizeof who, why, sizeof why), SASLAUTH_DONE);
    assert_string_equal(who, "bob");
}

static void digest_md5_with_a_wrong_password_or_an_unknown_user_fails(void **state)
{
    (void)state;
    char who[64] = "", why[256] = "";
    assert_int_equal(exchange("bob", "wrong", who, sizeof who, why, sizeof why), SASLAUTH_FAILED);
    assert_non_null(strstr(why, "client response doesn't match what we generated"));
    assert_int_equal(exchange("mallory", "bobsecret", who, sizeof who, why, sizeof why), SASLAUTH_FAILED);
    assert_non_null(strstr(why, "user not found"));
}

static void garbage_tokens_fail_the_exchange_and_it_stays_failed(void **state)
{
    (void)state;
    struct saslauth_session *session = NULL;
    const char *out;
    unsigned outlen;
    char who[64], why[256];
    /* the first token of DIGEST-MD5 is empty: the challenge */
    assert_int_equal(saslauth_step(&session, NULL, 0, &out, &outlen, who, sizeof who, why, sizeof why),
                     SASLAUTH_CONTINUE);
    assert_true(outlen > 0);
    static const char garbage[] = "username=\"bob\",nonce=,,,,\"\"\"=\x01\xff";
    assert_int_equal(saslauth_step(&session, (const uint8_t *)garbage, sizeof garbage - 1, &out, &outlen, who,
                                   sizeof who, why, sizeof why),
                     SASLAUTH_FAILED);
    assert_int_equal(saslauth_step(&session, NULL, 0, &out, &outlen, who, sizeof who, why, sizeof why),
                     SASLAUTH_FAILED);
    assert_string_equal(why, "an earlier token of this exchange failed");
    saslauth_session_free(session);
    /* a directive twice (Cyrus would leak the first copy) is refused before Cyrus parses it */
    session = NULL;
    assert_int_equal(saslauth_step(&session, NULL, 0, &out, &outlen, who, sizeof who, why, sizeof why),
                     SASLAUTH_CONTINUE);
    static const char twice[] = "username=\"bob\",cnonce=\"a,b\\\"c\",nc=00000001,CNONCE=x,qop=auth";
    assert_int_equal(saslauth_step(&session, (const uint8_t *)twice, sizeof twice - 1, &out, &outlen, who,
                                   sizeof who, why, sizeof why),
                     SASLAUTH_FAILED);
    assert_string_equal(why, "a DIGEST-MD5 directive repeated, or more than 24 of them");
    saslauth_session_free(session);
        /* a token past the limit is refused before Cyrus sees it */
    session = NULL;
    static uint8_t big[SASLAUTH_MAX_TOKEN_BYTES + 1];
    assert_int_equal(saslauth_step(&session, big, sizeof big, &out, &outlen, who, sizeof who, why, sizeof why),
                     SASLAUTH_FAILED);
    assert_non_null(strstr(why, "token of 8193 bytes"));
    saslauth_session_free(session);
}

static void kerberos_principals_become_ids_as_zookeeper_writes_them(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool remove_host, remove_realm;
        const char *id;
    } cases[] = {
        {"client", false, false, "client@ZNODE.TEST"}, /* Cyrus left the default realm off */
        {"client@OTHER.REALM", false, false, "client@OTHER.REALM"},
        {"kafka/broker1", false, false, "kafka/broker1@ZNODE.TEST"},
        {"kafka/broker1", true, false, "kafka@ZNODE.TEST"},
        {"kafka/broker1@ZNODE.TEST", false, true, "kafka/broker1"},
        {"kafka/broker1", true, true, "kafka"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[64];
        assert_int_equal(saslauth_principal_id(cases[i].name, "ZNODE.TEST", cases[i].remove_host,
                                               cases[i].remove_realm, id, sizeof id), 0);
        if (strcmp(id, cases[i].id) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, id, cases[i].id);
    }
    char small[8];
    assert_int_equal(saslauth_principal_id("kafka/broker1", "ZNODE.TEST", false, false, small, sizeof small), -1);
}

int main(void)
{
    const struct CMUnitTest parsing[] = {
        cmocka_unit_test(a_jaas_file_is_read_as_javas_config_file_reads_it),
        cmocka_unit_test(a_malformed_jaas_file_is_refused_with_its_line),
        cmocka_unit_test(nul_bytes_and_long_tokens_are_refused_not_cut),
        cmocka_unit_test(the_server_sections_users_come_from_the_zoo_cfg_key),
        cmocka_unit_test(the_jaas_file_may_come_from_server_jvmflags_as_zkserver_sh_passes_it),
        cmocka_unit_test(sasl_settings_znoded_cannot_honour_are_refused_naming_the_key),
        cmocka_unit_test(a_krb5_server_section_names_the_principal_and_key_table),
        cmocka_unit_test(enforce_auth_is_read_as_zookeeper_reads_it),
        cmocka_unit_test(kerberos_principals_become_ids_as_zookeeper_writes_them),
    };
    const struct CMUnitTest exchanges[] = {
        cmocka_unit_test(digest_md5_with_the_right_password_authenticates_the_user),
        cmocka_unit_test(digest_md5_with_a_wrong_password_or_an_unknown_user_fails),
        cmocka_unit_test(garbage_tokens_fail_the_exchange_and_it_stays_failed),
    };
    int failed = cmocka_run_group_tests(parsing, NULL, NULL);
    return failed + cmocka_run_group_tests(exchanges, setup_exchange, teardown_exchange);
}
