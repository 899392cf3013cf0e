/*
 * RFC 2831 allows each directive of a DIGEST-MD5 token once (but realm in a
 * challenge).  Cyrus's DIGEST-MD5 keeps the last of a repeated one and leaks
 * the others, on both sides (found by tests/fuzz/fuzz_sasl and
 * fuzz_sasl_client): a peer could make us leak on purpose, so a token with a
 * directive twice, or more directives than any token has, is refused before
 * Cyrus parses it.  Quoted values may hold commas and backslash escapes.
 */
#include "sasl_directives.h"

#include <string.h>
#include <strings.h>

bool sasl_directive_repeated(const uint8_t *token, size_t len, const char *may_repeat)
{
    struct {
        const uint8_t *name;
        size_t len;
    } seen[SASL_MAX_DIRECTIVES];
    size_t count = 0, i = 0;
    while (i < len) {
        while (i < len && (token[i] == ',' || token[i] == ' ' || token[i] == '\t' || token[i] == '\r' ||
                           token[i] == '\n'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        /* the name is what Cyrus's parser takes for it: the token characters up to the first
         * separator or control ("nonce:=" names nonce) */
        size_t name_len = 0;
        while (start + name_len < len && token[start + name_len] > ' ' && token[start + name_len] < 127 &&
               !strchr("()<>@,;:\\\"/[]?={}", token[start + name_len]))
            name_len++;
        while (i < len && token[i] != '=' && token[i] != ',')
            i++;
        bool free_to_repeat = may_repeat && strlen(may_repeat) == name_len &&
                              strncasecmp(may_repeat, (const char *)token + start, name_len) == 0;
        for (size_t k = 0; k < count && !free_to_repeat; k++)
            if (seen[k].len == name_len && strncasecmp((const char *)seen[k].name, (const char *)token + start,
                                                       name_len) == 0)
                return true;
        if (count == SASL_MAX_DIRECTIVES)
            return true;
        seen[count].name = token + start;
        seen[count++].len = name_len;
        if (i < len && token[i] == '=') {
            i++;
            while (i < len && (token[i] == ' ' || token[i] == '\t'))
                i++;
            if (i < len && token[i] == '"') {
                for (i++; i < len && token[i] != '"'; i++)
                    if (token[i] == '\\')
                        i++;
                i++;
            }
            while (i < len && token[i] != ',')
                i++;
        }
    }
    return false;
}

