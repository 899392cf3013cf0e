/*
 * transport_auth: the decoder of an auth reply frame between members (see
 * transport.h, "SASL between members"), apart from transport.c so that the
 * fuzz targets take it without libuv.
 */
#include "transport.h"

int transport_auth_decode(const uint8_t *p, size_t len, struct transport_auth_msg *out)
{
    if (len < 1 || len > ZN_TRANSPORT_AUTH_MAX_BYTES || p[0] > TRANSPORT_AUTH_ERROR)
        return -1;
    out->status = (enum transport_auth_status)p[0];
    out->data = p + 1;
    out->len = len - 1;
    return 0;
}
