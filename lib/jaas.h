/*
 * jaas: the JAAS login configuration file ZooKeeper users already have
 * (java.security.auth.login.config), read as Java's ConfigFile reads it:
 *
 *   Server {
 *       org.apache.zookeeper.server.auth.DigestLoginModule required
 *       user_alice="secret"
 *       user_bob="other";
 *   };
 *
 * Sections (application names) hold entries; an entry is a login module
 * class, a control flag (required, requisite, sufficient, optional) and
 * options key=value, the value bare or double-quoted (with backslash
 * escapes), ended by ';'.  Comments are // to the end of the line and
 * slash-star blocks.  ${property} expansion is not done: a value holding
 * "${" is refused rather than taken literally.
 */
#ifndef ZNODE_JAAS_H
#define ZNODE_JAAS_H

#include <stddef.h>

/* The longest section, module, key or value accepted. */
#define JAAS_TOKEN_BYTES 1024

struct jaas_visitor {
    /* An entry begins: its section, module class and flag (borrowed for the
     * call).  Non-zero stops the parse and is returned. */
    int (*entry)(void *ctx, const char *section, const char *module, const char *flag);
    /* One option of the entry just begun. */
    int (*option)(void *ctx, const char *section, const char *key, const char *value);
    void *ctx;
};

/*
 * Parses text (len bytes, borrowed, need not be NUL-terminated), calling
 * the visitor for each entry and option in order.  Returns 0; -1 with the
 * line and what was expected in err (errlen bytes, NUL-terminated) when
 * the text is not a JAAS file; or the visitor's non-zero value.
 */
int jaas_parse(const char *text, size_t len, const struct jaas_visitor *v, char *err,
               size_t errlen);

#endif
