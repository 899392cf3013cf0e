/*
 * The SASL credentials of a JAAS file's Client section, as zkCli.sh takes
 * them from -Djava.security.auth.login.config=FILE (section "Client", or the
 * one zookeeper.sasl.clientconfig names).  The file is read with the
 * server's parser (lib/jaas.c); what the section may hold:
 *   org.apache.zookeeper.server.auth.DigestLoginModule  username="U" password="P"
 *       -> DIGEST-MD5 as U
 *   com.sun.security.auth.module.Krb5LoginModule  useTicketCache=true [doNotPrompt=true]
 *       -> GSSAPI with the ticket cache of the environment (kinit first)
 * Anything else (a key table, a principal, another module, an option the
 * module does not read, two entries) is refused with the reason, never
 * ignored.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jaas.h"
#include "znode/client.h"

#define JAAS_DIGEST_MODULE "org.apache.zookeeper.server.auth.DigestLoginModule"
#define JAAS_KRB5_MODULE "com.sun.security.auth.module.Krb5LoginModule"
/* Largest JAAS file read. */
#define JAAS_MAX_FILE_BYTES (1024 * 1024)

struct jaas_client_reader {
    const char *section;
    struct zn_jaas_client *out;
    int entries;
    bool ticket_cache;
    char *err;
    size_t errlen;
};

static int fail(struct jaas_client_reader *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->err, rd->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int on_entry(void *ctx, const char *section, const char *module, const char *flag)
{
    (void)flag;
    struct jaas_client_reader *rd = ctx;
    if (strcmp(section, rd->section) != 0)
        return 0;
    if (++rd->entries > 1)
        return fail(rd, "section %s has more than one login module entry (only one is used)", section);
    if (strcmp(module, JAAS_DIGEST_MODULE) == 0)
        snprintf(rd->out->mechanism, sizeof rd->out->mechanism, "DIGEST-MD5");
    else if (strcmp(module, JAAS_KRB5_MODULE) == 0)
        snprintf(rd->out->mechanism, sizeof rd->out->mechanism, "GSSAPI");
    else
        return fail(rd, "section %s: login module %s is not supported (DigestLoginModule or Krb5LoginModule)",
                    section, module);
    return 0;
}

static int on_option(void *ctx, const char *section, const char *key, const char *value)
{
    struct jaas_client_reader *rd = ctx;
    if (strcmp(section, rd->section) != 0)
        return 0;
    struct zn_jaas_client *out = rd->out;
    if (strcmp(out->mechanism, "DIGEST-MD5") == 0) {
        char *dst = strcmp(key, "username") == 0 ? out->user : strcmp(key, "password") == 0 ? out->password : NULL;
        if (!dst)
            return fail(rd, "section %s: DigestLoginModule option %s is not read (username, password)", section,
                        key);
        if (strlen(value) >= ZN_JAAS_VALUE_BYTES)
            return fail(rd, "section %s: %s is longer than %d bytes", section, key, ZN_JAAS_VALUE_BYTES - 1);
        snprintf(dst, ZN_JAAS_VALUE_BYTES, "%s", value);
        return 0;
    }
    bool is_true = strcmp(value, "true") == 0;
    if (strcmp(key, "useTicketCache") == 0 && is_true)
        rd->ticket_cache = true;
    else if (!(strcmp(key, "doNotPrompt") == 0 && is_true) &&
             !(strcmp(key, "useKeyTab") == 0 && strcmp(value, "false") == 0))
        return fail(rd, "section %s: Krb5LoginModule option %s=%s is not supported (useTicketCache=true: "
                        "the ticket cache of the environment, after kinit)", section, key, value);
    return 0;
}

int zn_jaas_client_parse(const char *text, size_t len, const char *section, struct zn_jaas_client *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct jaas_client_reader rd = {.section = section ? section : "Client", .out = out, .err = err, .errlen = errlen};
    struct jaas_visitor v = {.entry = on_entry, .option = on_option, .ctx = &rd};
    int rc = jaas_parse(text, len, &v, err, errlen);
    if (rc != 0)
        goto bad;
    if (rd.entries == 0) {
        fail(&rd, "no %s section (the client's login module entry)", rd.section);
        goto bad;
    }
    if (strcmp(out->mechanism, "DIGEST-MD5") == 0 && (!out->user[0] || !out->password[0])) {
        fail(&rd, "section %s: DigestLoginModule needs username and password", rd.section);
        goto bad;
    }
    if (strcmp(out->mechanism, "GSSAPI") == 0 && !rd.ticket_cache) {
        fail(&rd, "section %s: Krb5LoginModule needs useTicketCache=true (kinit first)", rd.section);
        goto bad;
    }
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return -1;
}

int zn_jaas_client_read(const char *path, const char *section, struct zn_jaas_client *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(JAAS_MAX_FILE_BYTES + 1);
    size_t n = text ? fread(text, 1, JAAS_MAX_FILE_BYTES + 1, f) : 0;
    bool bad = !text || ferror(f) || n > JAAS_MAX_FILE_BYTES;
    fclose(f);
    if (bad) {
        free(text);
        snprintf(err, errlen, "%s: unreadable or larger than %d bytes", path, JAAS_MAX_FILE_BYTES);
        return -1;
    }
    char why[400];
    int rc = zn_jaas_client_parse(text, n, section, out, why, sizeof why);
    free(text);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}

int zn_read_password_file(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    bool ok = fgets(out, (int)outlen, f) != NULL;
    fclose(f);
    size_t n = ok ? strcspn(out, "\r\n") : 0;
    if (!ok || n == 0 || (out[n] == '\0' && n == outlen - 1)) {
        memset(out, 0, outlen);
        snprintf(err, errlen, "%s: no password on its first line (or over %zu bytes)", path, outlen - 2);
        return -1;
    }
    out[n] = '\0';
    return 0;
}
