/*
 * Test helpers for the jute codec, shared by tests/unit/test_jute.c, the
 * fuzz targets and the corpus generator: deep equality of decoded records,
 * and a catalogue of realistic sample requests and responses, at least one
 * per opcode the codec handles.
 */
#ifndef ZNODE_JUTE_TESTKIT_H
#define ZNODE_JUTE_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>

#include "jute.h"

/* Deep equality: every field, strings by content (NULL equals only NULL),
 * buffers by length and bytes, vectors by count (-1 and 0 differ) and items,
 * multi ops/results recursively.  On a mismatch, the name of the first field
 * that differs is left in jute_testkit_mismatch (static string). */
extern const char *jute_testkit_mismatch;
bool jute_request_equal(const struct zn_request *a, const struct zn_request *b);
bool jute_response_equal(const struct zn_response *a, const struct zn_response *b);
bool jute_connect_request_equal(const struct zn_connect_request *a, const struct zn_connect_request *b);
bool jute_connect_response_equal(const struct zn_connect_response *a, const struct zn_connect_response *b);

/* The sample catalogues: static, read-only, valid for the program's life. */
size_t jute_sample_request_count(void);
const struct zn_request *jute_sample_request(size_t i);
size_t jute_sample_response_count(void);
const struct zn_response *jute_sample_response(size_t i);
/* A short file-name-safe label for sample i ("create", "multi_failed", ...). */
const char *jute_sample_request_label(size_t i);
const char *jute_sample_response_label(size_t i);

extern const struct zn_connect_request jute_sample_connect_request;
extern const struct zn_connect_response jute_sample_connect_response;

#endif
