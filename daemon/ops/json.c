/*
 * json: the writer of json.h.  Layout as Jackson's default pretty printer,
 * which ZooKeeper's AdminServer uses: two spaces per level, "key" : value.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "assert.h"

/* Starts an item at the current depth: a comma after an earlier one, then
 * the new line and indentation; nothing when it is the value of a key. */
static void item(struct json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        metrics_text_printf(&j->text, "%s\n%*s", j->has_items[j->depth] ? "," : "",
                            2 * j->depth, "");
        j->has_items[j->depth] = true;
    }
}

static void open_level(struct json *j, char bracket)
{
    item(j);
    ZN_ASSERT(j->depth + 1 < JSON_MAX_DEPTH);
    metrics_text_printf(&j->text, "%c", bracket);
    j->depth++;
    j->has_items[j->depth] = false;
}

static void close_level(struct json *j, char bracket)
{
    ZN_ASSERT(j->depth > 0 && !j->after_key);
    bool had_items = j->has_items[j->depth];
    j->depth--;
    if (had_items)
        metrics_text_printf(&j->text, "\n%*s%c", 2 * j->depth, "", bracket);
    else
        metrics_text_printf(&j->text, " %c", bracket);
    if (j->depth == 0)
        metrics_text_printf(&j->text, "\n");
}

void json_begin_object(struct json *j) { open_level(j, '{'); }
void json_end_object(struct json *j) { close_level(j, '}'); }
void json_begin_array(struct json *j) { open_level(j, '['); }
void json_end_array(struct json *j) { close_level(j, ']'); }

/* The length of the UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf8 || (s[0] >= 0x80 && s[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static void quoted(struct json *j, const char *value)
{
    metrics_text_printf(&j->text, "\"");
    for (const unsigned char *p = (const unsigned char *)value; *p;) {
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > 0) {
            metrics_text_printf(&j->text, "%.*s", (int)run, (const char *)p);
            p += run;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            metrics_text_printf(&j->text, "\\%c", *p++);
        } else if (*p == '\n') {
            metrics_text_printf(&j->text, "\\n");
            p++;
        } else if (*p < 0x20) {
            metrics_text_printf(&j->text, "\\u%04x", *p++);
        } else {
            size_t n = utf8_sequence(p);
            if (n == 0) {
                metrics_text_printf(&j->text, "\\u%04x", *p++);
            } else {
                metrics_text_printf(&j->text, "%.*s", (int)n, (const char *)p);
                p += n;
            }
        }
    }
    metrics_text_printf(&j->text, "\"");
}

void json_key(struct json *j, const char *key)
{
    ZN_ASSERT(j->depth > 0 && !j->after_key);
    item(j);
    quoted(j, key);
    metrics_text_printf(&j->text, " : ");
    j->after_key = true;
}

void json_string(struct json *j, const char *value)
{
    item(j);
    if (value)
        quoted(j, value);
    else
        metrics_text_printf(&j->text, "null");
}

void json_u64(struct json *j, uint64_t value)
{
    item(j);
    metrics_text_printf(&j->text, "%" PRIu64, value);
}

void json_i64(struct json *j, int64_t value)
{
    item(j);
    metrics_text_printf(&j->text, "%" PRId64, value);
}

void json_double(struct json *j, double value)
{
    item(j);
    if (isfinite(value))
        metrics_text_printf(&j->text, "%.4f", value);
    else
        metrics_text_printf(&j->text, "null");
}

void json_bool(struct json *j, bool value)
{
    item(j);
    metrics_text_printf(&j->text, value ? "true" : "false");
}

void json_null(struct json *j)
{
    item(j);
    metrics_text_printf(&j->text, "null");
}

void json_member_string(struct json *j, const char *key, const char *value)
{
    json_key(j, key);
    json_string(j, value);
}

void json_member_u64(struct json *j, const char *key, uint64_t value)
{
    json_key(j, key);
    json_u64(j, value);
}

void json_member_i64(struct json *j, const char *key, int64_t value)
{
    json_key(j, key);
    json_i64(j, value);
}

void json_member_double(struct json *j, const char *key, double value)
{
    json_key(j, key);
    json_double(j, value);
}

void json_member_bool(struct json *j, const char *key, bool value)
{
    json_key(j, key);
    json_bool(j, value);
}
