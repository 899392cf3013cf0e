/*
 * json: writes one JSON document into a growing text (metrics_text, so the
 * same bound, METRICS_TEXT_MAX_BYTES, and the same sticky error apply),
 * indented as ZooKeeper's AdminServer indents its answers.  The writer puts
 * the commas and the nesting; the caller says what comes: a key, then its
 * value or a nested object or array.  Nesting deeper than JSON_MAX_DEPTH is
 * a programmer error (asserted).  Strings are escaped as RFC 8259 asks;
 * bytes that are not valid UTF-8 are written as \u00XX of the byte, so the
 * document stays valid whatever a znode path holds.
 */
#ifndef ZNODED_JSON_H
#define ZNODED_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

#define JSON_MAX_DEPTH 8

struct json {
    struct metrics_text text;      /* the document; owned (metrics_text_free) */
    int depth;
    bool has_items[JSON_MAX_DEPTH]; /* an item was written at this depth: the next needs a comma */
    bool after_key;                 /* a key was written: its value comes next */
};

void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *value); /* NULL writes null */
void json_u64(struct json *j, uint64_t value);
void json_i64(struct json *j, int64_t value);
void json_double(struct json *j, double value);      /* non-finite values write null */
void json_bool(struct json *j, bool value);
void json_null(struct json *j);

/* A key and its value in one call. */
void json_member_string(struct json *j, const char *key, const char *value);
void json_member_u64(struct json *j, const char *key, uint64_t value);
void json_member_i64(struct json *j, const char *key, int64_t value);
void json_member_double(struct json *j, const char *key, double value);
void json_member_bool(struct json *j, const char *key, bool value);

#endif
