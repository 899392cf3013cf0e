/*
 * Helpers shared by the jute codec's unit tests (test_jute.c,
 * test_jute_refuse.c): hex vectors and encoding that must succeed.
 */
#ifndef ZN_TEST_JUTE_FIXTURE_H
#define ZN_TEST_JUTE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "jute.h"

/* Parses hex digits (spaces ignored) into a malloc'd buffer of exact size. */
uint8_t *from_hex(const char *hex, size_t *len);
void assert_writer_bytes(const struct jute_writer *w, const char *hex);
void encode_request(struct jute_writer *w, const struct zn_request *req);
void encode_response(struct jute_writer *w, const struct zn_response *resp);

#endif
