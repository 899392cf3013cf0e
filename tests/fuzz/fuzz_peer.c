/*
 * fuzz_peer: the decoders of what one member receives from another, under
 * libFuzzer.  The input is one peer frame body, a Zab message
 * (zab_message_decode, which also decodes the membership records some
 * messages carry).  Whatever decodes must
 * re-encode (zab_message_encode) into exactly zab_message_encoded_size bytes
 * and decode again to the same type and header: a decoder that accepts what
 * the encoder cannot write would let one member crash another.  Any mismatch
 * aborts; the sanitizers catch over-reads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zab_message.h"

/* Inputs that decoded, for the replay driver's summary. */
size_t jute_fuzz_packets_decoded;

/* Largest re-encoding tried; a decoded message cannot be bigger than its input plus headers. */
#define FUZZ_PEER_MAX_BYTES (8u << 20)

static void check_message(const uint8_t *data, size_t size)
{
    struct zab_message msg;
    if (zab_message_decode(data, size, &msg) != 0)
        return;
    jute_fuzz_packets_decoded++;
    size_t need = zab_message_encoded_size(&msg);
    if (need == 0 || need > FUZZ_PEER_MAX_BYTES)
        abort();
    uint8_t *buf = malloc(need);
    if (!buf)
        return;
    int64_t n = zab_message_encode(&msg, buf, need);
    if (n < 0 || (size_t)n != need)
        abort();
    struct zab_message again;
    if (zab_message_decode(buf, (size_t)n, &again) != 0)
        abort();
    if (again.type != msg.type || again.from != msg.from || again.to != msg.to ||
        again.epoch != msg.epoch)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_message(data, size);
    return 0;
}
