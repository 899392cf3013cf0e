/*
 * path: the znode path rules of ZooKeeper's PathUtils.validatePath, applied
 * to UTF-8 bytes, and the string helpers the tree and prep share (parent,
 * last component, special nodes, the hash used by every table and digest).
 *
 * Java validates UTF-16 chars; we decode UTF-8 and reject the same set:
 * every code point Java would see as a forbidden char, every code point above
 * U+FFFF (Java sees surrogates, which are in the forbidden D800-F8FF range),
 * and malformed or overlong sequences (Java decodes them to U+FFFD, which is
 * in the forbidden FFF0-FFFF range).
 */
#include "path.h"

#include <string.h>

#include "znode/errors.h"

/* Decodes one UTF-8 sequence at s[0..len).  Returns its byte length and the
 * code point in *cp, or 0 when the sequence is malformed, overlong, or a
 * UTF-8-encoded surrogate. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        need = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        need = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        need = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (need > len)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need;
}

static bool forbidden_code_point(uint32_t c)
{
    return (c > 0x0000 && c <= 0x001f) || (c >= 0x007f && c <= 0x009f) ||
           (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff) ||
           c > 0xffff;
}

/* Validates the components of p[0..len), which starts with '/'.  With
 * `completed`, a sequence number will be appended to the last component, so
 * that one may be empty, "." or ".." (ZooKeeper validates path + "1"). */
static int validate_components(const unsigned char *p, size_t len, bool completed)
{
    size_t i = 1;
    for (;;) {
        /* p[i - 1] == '/': a component starts at i */
        size_t start = i;
        while (i < len && p[i] != '/') {
            if (p[i] > 0x1f && p[i] < 0x7f) {
                i++; /* printable ASCII, the common case: allowed */
                continue;
            }
            uint32_t cp;
            size_t n = utf8_decode(p + i, len - i, &cp);
            if (n == 0 || forbidden_code_point(cp))
                return ZN_BADARGUMENTS;
            i += n;
        }
        size_t comp = i - start;
        bool last = i >= len;
        if (!(last && completed)) {
            if (comp == 0)
                return ZN_BADARGUMENTS; /* empty node name ("//" or trailing '/') */
            if ((comp == 1 && p[start] == '.') ||
                (comp == 2 && p[start] == '.' && p[start + 1] == '.'))
                return ZN_BADARGUMENTS; /* relative paths not allowed */
        }
        if (last)
            return 0;
        i++; /* skip the '/' */
    }
}

int path_validate(const char *path, bool sequential)
{
    if (path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(path, PATH_MAX_BYTES + 1);
    if (len == 0 || len > PATH_MAX_BYTES || path[0] != '/')
        return ZN_BADARGUMENTS;
    if (len == 1)
        return 0; /* the root; "/" + "1" is valid too */
    return validate_components((const unsigned char *)path, len, sequential);
}

long path_parent_len(const char *path, size_t len)
{
    for (size_t i = len; i > 0; i--) {
        if (path[i - 1] == '/')
            return (long)(i - 1);
    }
    return -1;
}

const char *path_last_component(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

bool path_is_special(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/zookeeper") == 0 ||
           strcmp(path, "/zookeeper/quota") == 0 || strcmp(path, "/zookeeper/config") == 0;
}
