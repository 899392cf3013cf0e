/*
 * fuzz_http: the HTTP request-head parser of the metrics page and the
 * AdminServer (daemon/ops/httpd.c) under libFuzzer.  Any bytes a client sends
 * must be parsed or refused with one of the parser's results, never crash
 * or over-read; a parsed head must hold what the server relies on: a method
 * and a path starting with '/', both NUL-terminated within their arrays, an
 * Authorization value that fits, and a head no longer than the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

size_t jute_fuzz_packets_decoded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct httpd_request req;
    int rc = httpd_parse_request((const char *)data, size, HTTPD_MAX_REQUEST_BYTES, &req);
    if (rc != HTTPD_PARSE_DONE) {
        if (rc != HTTPD_PARSE_INCOMPLETE && rc != HTTPD_PARSE_BAD && rc != HTTPD_PARSE_TOO_LARGE &&
            rc != HTTPD_PARSE_VERSION && rc != HTTPD_PARSE_URI_TOO_LONG &&
            rc != HTTPD_PARSE_FIELD_TOO_LARGE)
            abort();
        return 0;
    }
    if (memchr(req.method, '\0', sizeof req.method) == NULL || req.method[0] == '\0' ||
        memchr(req.path, '\0', sizeof req.path) == NULL || req.path[0] != '/' ||
        memchr(req.authorization, '\0', sizeof req.authorization) == NULL ||
        req.head_bytes == 0 || req.head_bytes > size)
        abort();
    jute_fuzz_packets_decoded++;
    return 0;
}
