/*
 * jaas: a reader of JAAS login configuration files (see jaas.h for the
 * grammar).  A tokenizer over the bytes and a parser that walks
 * section { entry; ... }; calling the visitor; nothing is allocated.
 */
#include "jaas.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "assert.h"

enum token_kind { TOKEN_END, TOKEN_WORD, TOKEN_QUOTED, TOKEN_PUNCT, TOKEN_ERROR };

struct lexer {
    const char *p, *end;
    int line;
    char text[JAAS_TOKEN_BYTES];
    enum token_kind kind;
    char *err;
    size_t errlen;
};

static int fail(struct lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct lexer *lx, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(lx->err, lx->errlen, "line %d: %s", lx->line, what);
    lx->kind = TOKEN_ERROR;
    return -1;
}

/* Skips blanks and comments; -1 on a comment left open. */
static int skip_space(struct lexer *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->p++;
        } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
            lx->p += 2;
            while (lx->p + 1 < lx->end && !(lx->p[0] == '*' && lx->p[1] == '/')) {
                lx->line += *lx->p == '\n';
                lx->p++;
            }
            if (lx->p + 1 >= lx->end)
                return fail(lx, "a /* comment is not closed");
            lx->p += 2;
        } else {
            return 0;
        }
    }
    return 0;
}

static bool is_punct(char c)
{
    return c == '{' || c == '}' || c == ';' || c == '=';
}

static int read_quoted(struct lexer *lx)
{
    size_t n = 0;
    lx->p++; /* the opening quote */
    for (;;) {
        if (lx->p >= lx->end)
            return fail(lx, "a quoted value is not closed");
        char c = *lx->p++;
        if (c == '"')
            break;
        if (c == '\n')
            return fail(lx, "a quoted value runs past the end of its line");
        if (c == '\\') {
            if (lx->p >= lx->end)
                return fail(lx, "a quoted value is not closed");
            c = *lx->p++;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        if (c == '\0')
            return fail(lx, "a NUL byte in a quoted value");
        if (n + 1 >= sizeof lx->text)
            return fail(lx, "a value longer than %d bytes", JAAS_TOKEN_BYTES - 1);
        lx->text[n++] = c;
    }
    lx->text[n] = '\0';
    lx->kind = TOKEN_QUOTED;
    return 0;
}

/* The next token into lx->kind and lx->text; -1 (kind TOKEN_ERROR) on error. */
static int next(struct lexer *lx)
{
    if (skip_space(lx) != 0)
        return -1;
    if (lx->p >= lx->end) {
        lx->kind = TOKEN_END;
        lx->text[0] = '\0';
        return 0;
    }
    char c = *lx->p;
    if (is_punct(c)) {
        lx->text[0] = c;
        lx->text[1] = '\0';
        lx->kind = TOKEN_PUNCT;
        lx->p++;
        return 0;
    }
    if (c == '"')
        return read_quoted(lx);
    size_t n = 0;
    while (lx->p < lx->end) {
        c = *lx->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' || c == '"' ||
            is_punct(c) || (c == '/' && lx->p + 1 < lx->end && (lx->p[1] == '/' || lx->p[1] == '*')))
            break;
        if (c == '\0')
            return fail(lx, "a NUL byte");
        if (n + 1 >= sizeof lx->text)
            return fail(lx, "a name longer than %d bytes", JAAS_TOKEN_BYTES - 1);
        lx->text[n++] = c;
        lx->p++;
    }
    lx->text[n] = '\0';
    lx->kind = TOKEN_WORD;
    return 0;
}

static bool is(const struct lexer *lx, char punct)
{
    return lx->kind == TOKEN_PUNCT && lx->text[0] == punct;
}

static const char *shown(const struct lexer *lx)
{
    return lx->kind == TOKEN_END ? "the end of the file" : lx->text;
}

static int expect(struct lexer *lx, char punct)
{
    if (next(lx) != 0)
        return -1;
    if (!is(lx, punct))
        return fail(lx, "expected '%c', got '%s'", punct, shown(lx));
    return 0;
}

/* One entry after its module class (in lx->text): flag, options, ';'. */
static int parse_entry(struct lexer *lx, const char *section, const struct jaas_visitor *v)
{
    char module[JAAS_TOKEN_BYTES];
    snprintf(module, sizeof module, "%s", lx->text);
    if (next(lx) != 0)
        return -1;
    if (lx->kind != TOKEN_WORD)
        return fail(lx, "expected the control flag of %s, got '%s'", module, shown(lx));
    const char *flags[] = {"required", "requisite", "sufficient", "optional"};
    bool known = false;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        known |= strcasecmp(lx->text, flags[i]) == 0;
    if (!known)
        return fail(lx, "'%s' is not a control flag (required, requisite, sufficient or optional)",
                    lx->text);
    int rc = v->entry ? v->entry(v->ctx, section, module, lx->text) : 0;
    if (rc != 0)
        return rc;
    for (;;) {
        if (next(lx) != 0)
            return -1;
        if (is(lx, ';'))
            return 0;
        if (lx->kind != TOKEN_WORD)
            return fail(lx, "expected an option or ';', got '%s'", shown(lx));
        char key[JAAS_TOKEN_BYTES];
        snprintf(key, sizeof key, "%s", lx->text);
        if (expect(lx, '=') != 0)
            return -1;
        if (next(lx) != 0)
            return -1;
        if (lx->kind != TOKEN_WORD && lx->kind != TOKEN_QUOTED)
            return fail(lx, "expected the value of %s, got '%s'", key, shown(lx));
        if (strstr(lx->text, "${"))
            return fail(lx, "%s: ${...} property expansion is not supported", key);
        rc = v->option ? v->option(v->ctx, section, key, lx->text) : 0;
        if (rc != 0)
            return rc;
    }
}

int jaas_parse(const char *text, size_t len, const struct jaas_visitor *v, char *err, size_t errlen)
{
    ZN_ASSERT(v != NULL && err != NULL && errlen > 0 && (text != NULL || len == 0));
    struct lexer lx = {.p = text, .end = text + len, .line = 1, .err = err, .errlen = errlen};
    err[0] = '\0';
    for (;;) {
        if (next(&lx) != 0)
            return -1;
        if (lx.kind == TOKEN_END)
            return 0;
        if (lx.kind != TOKEN_WORD)
            return fail(&lx, "expected a section name, got '%s'", lx.text);
        char section[JAAS_TOKEN_BYTES];
        snprintf(section, sizeof section, "%s", lx.text);
        if (expect(&lx, '{') != 0)
            return -1;
        for (;;) {
            if (next(&lx) != 0)
                return -1;
            if (is(&lx, '}'))
                break;
            if (lx.kind != TOKEN_WORD)
                return fail(&lx, "expected a login module or '}' in %s, got '%s'", section,
                            shown(&lx));
            int rc = parse_entry(&lx, section, v);
            if (rc != 0)
                return rc;
        }
        if (expect(&lx, ';') != 0)
            return -1;
    }
}
