/*
 * fuzz_sasl_client: what a server can make libznode's SASL client read, and
 * the JAAS Client section reader, under libFuzzer.  The input's first byte
 * selects:
 *   'J'  the rest is a JAAS file for zn_jaas_client_parse (section Client);
 *   else the rest is up to SASL_CLIENT_FUZZ_MAX_TOKENS server tokens (each a
 *        big-endian u16 length and its bytes; a length past the end takes
 *        what is left) answering one DIGEST-MD5 exchange of the client
 *        (client_sasl_start, then client_sasl_step per token) as the
 *        SetSASLResponse packets of one connection would.
 * Any input must end in SEND, SEND_LAST, DONE or FAILED with a reason;
 * never crash or over-read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_sasl.h"
#include "log.h"
#include "znode/client.h"

size_t jute_fuzz_packets_decoded;

#define SASL_CLIENT_FUZZ_MAX_TOKENS 4

static void fuzz_jaas(const uint8_t *data, size_t size)
{
    struct zn_jaas_client c;
    char err[256];
    err[0] = '\0';
    if (zn_jaas_client_parse((const char *)data, size, NULL, &c, err, sizeof err) == 0) {
        jute_fuzz_packets_decoded++;
        if (!c.mechanism[0])
            abort(); /* a section read gives a mechanism */
    } else if (err[0] == '\0') {
        abort(); /* a refusal must say why */
    }
}

static void fuzz_exchange(const uint8_t *data, size_t size)
{
    struct client_sasl *s = NULL;
    if (client_sasl_new("DIGEST-MD5", "bob", "bob-secret", NULL, NULL, &s) != 0)
        abort();
    const uint8_t *out;
    unsigned outlen;
    char why[256];
    why[0] = '\0';
    int res = client_sasl_start(s, "127.0.0.1", &out, &outlen, why, sizeof why);
    if (res == CLIENT_SASL_FAILED)
        abort(); /* no DIGEST-MD5 plugin: nothing would be fuzzed */
    size_t pos = 0;
    for (int i = 0; i < SASL_CLIENT_FUZZ_MAX_TOKENS && res == CLIENT_SASL_SEND && pos + 2 <= size; i++) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        /* a copy of exactly len bytes, so an over-read is caught */
        uint8_t *token = malloc(len ? len : 1);
        if (!token)
            abort();
        memcpy(token, data + pos, len);
        pos += len;
        why[0] = '\0';
        res = client_sasl_step(s, token, len, &out, &outlen, why, sizeof why);
        free(token);
        if (res == CLIENT_SASL_FAILED && why[0] == '\0')
            abort(); /* a failure must say why */
        if (res != CLIENT_SASL_FAILED)
            jute_fuzz_packets_decoded++;
    }
    client_sasl_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zn_log_threshold = ZN_LOG_OFF;
    if (size == 0)
        return 0;
    if (data[0] == 'J')
        fuzz_jaas(data + 1, size - 1);
    else
        fuzz_exchange(data + 1, size - 1);
    return 0;
}
