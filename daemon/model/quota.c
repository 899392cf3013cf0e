/*
 * quota: ZooKeeper's StatsTrack record format and the quota path mapping
 * (see quota.h).  This file owns parsing and formatting only; the tree keeps
 * the stats and prep enforces the limits.
 */
#include "quota.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "znode/errors.h"

/* Java's Long.parseLong: an optional sign, then one or more decimal digits,
 * within the range of a long. */
static int parse_java_long(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool negative = false;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return ZN_BADARGUMENTS;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ZN_BADARGUMENTS;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (limit - digit) / 10)
            return ZN_BADARGUMENTS;
        v = v * 10 + digit;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int find_key(const struct quota_record *r, const char *key, size_t len)
{
    for (int i = 0; i < r->count; i++) {
        if (strlen(r->items[i].key) == len && memcmp(r->items[i].key, key, len) == 0)
            return i;
    }
    return -1;
}

static int set_key(struct quota_record *r, const char *key, size_t len, int64_t value)
{
    if (len > QUOTA_KEY_MAX_BYTES)
        return ZN_BADARGUMENTS;
    int i = find_key(r, key, len);
    if (i < 0) {
        if (r->count >= QUOTA_MAX_KEYS)
            return ZN_BADARGUMENTS;
        i = r->count++;
        memcpy(r->items[i].key, key, len);
        r->items[i].key[len] = '\0';
    }
    r->items[i].value = value;
    return 0;
}

static bool is_pair_separator(char c) { return c == ',' || c == ';'; }

/* One "k=v" pair as StatsTrack reads it: kv = pair.split("="), which drops
 * trailing empty parts; kv[1] must exist; an empty kv[1] is -1. */
static int parse_pair(struct quota_record *r, const char *pair, size_t len)
{
    size_t end = len;
    while (end > 0 && pair[end - 1] == '=')
        end--; /* trailing empty parts are dropped */
    const char *eq = memchr(pair, '=', end);
    if (eq == NULL)
        return ZN_BADARGUMENTS; /* kv[1] does not exist */
    size_t key_len = (size_t)(eq - pair);
    const char *value = eq + 1;
    const char *value_end = memchr(value, '=', end - key_len - 1);
    size_t value_len = value_end ? (size_t)(value_end - value) : end - key_len - 1;
    int64_t v = -1;
    if (value_len > 0 && parse_java_long(value, value_len, &v) != 0)
        return ZN_BADARGUMENTS;
    return set_key(r, pair, key_len, v);
}

int quota_record_parse(const uint8_t *data, int32_t len, struct quota_record *out)
{
    ZN_ASSERT(out != NULL);
    out->count = 0;
    if (len <= 0)
        return 0;
    const char *s = (const char *)data;
    size_t n = (size_t)len;
    /* Pattern.split drops trailing empty strings but keeps a leading one,
     * which then has no '=' and makes StatsTrack throw. */
    while (n > 0 && is_pair_separator(s[n - 1]))
        n--;
    size_t start = 0;
    while (start < n) {
        size_t end = start;
        while (end < n && !is_pair_separator(s[end]))
            end++;
        if (memchr(s + start, '\0', end - start) != NULL || parse_pair(out, s + start, end - start) != 0) {
            out->count = 0;
            return ZN_BADARGUMENTS;
        }
        start = end;
        while (start < n && is_pair_separator(s[start]))
            start++;
    }
    return 0;
}

int64_t quota_record_get(const struct quota_record *r, const char *key)
{
    int i = find_key(r, key, strlen(key));
    return i < 0 ? -1 : r->items[i].value;
}

int quota_record_set(struct quota_record *r, const char *key, int64_t value)
{
    return set_key(r, key, strlen(key), value);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int quota_record_format(const struct quota_record *r, char *buf, size_t cap)
{
    ZN_ASSERT(r != NULL && buf != NULL);
    int used = snprintf(buf, cap, "count=%" PRId64 ",bytes=%" PRId64, quota_record_get(r, QUOTA_KEY_COUNT),
                        quota_record_get(r, QUOTA_KEY_BYTES));
    if (used < 0 || (size_t)used >= cap)
        return ZN_BADARGUMENTS;
    const char *others[QUOTA_MAX_KEYS];
    int other_count = 0;
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->items[i].key, QUOTA_KEY_COUNT) != 0 && strcmp(r->items[i].key, QUOTA_KEY_BYTES) != 0)
            others[other_count++] = r->items[i].key;
    }
    if (other_count == 0)
        return used;
    /* Java's String.compareTo orders by UTF-16 unit; for the ASCII keys
     * ZooKeeper writes that is strcmp's byte order. */
    qsort(others, (size_t)other_count, sizeof(others[0]), compare_keys);
    int n = snprintf(buf + used, cap - (size_t)used, "=");
    used += n;
    for (int i = 0; i < other_count; i++) {
        if ((size_t)used >= cap)
            return ZN_BADARGUMENTS;
        n = snprintf(buf + used, cap - (size_t)used, ";%s=%" PRId64, others[i], quota_record_get(r, others[i]));
        if (n < 0 || (size_t)(used + n) >= cap)
            return ZN_BADARGUMENTS;
        used += n;
    }
    return used;
}

const char *quota_real_path(const char *quota_dir)
{
    size_t root_len = strlen(QUOTA_ROOT);
    if (strncmp(quota_dir, QUOTA_ROOT "/", root_len + 1) != 0 || quota_dir[root_len + 1] == '\0')
        return NULL;
    return quota_dir + root_len;
}
