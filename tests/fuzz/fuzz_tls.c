/*
 * fuzz_tls: what a peer on the TLS client port can make the server read
 * before it holds any key, under libFuzzer: the bytes of a connection fed
 * to a server-side tls_stream (lib/tls_stream.c, the memory-BIO path
 * znoded's conn.c drives) on a context like tls.c builds (a key and a
 * self-signed certificate made in memory, client certificates wanted).
 * The input is split into up to TLS_FUZZ_MAX_CHUNKS reads, each a
 * big-endian u16 length and its bytes (a length past the end takes what is
 * left), fed and read in turn as on_read does; whatever the server would
 * send (ServerHello, alerts) is drained after each.  Any input must end in
 * "needs more", a plaintext read or a closed stream with a reason; never a
 * crash or an over-read.  Plaintext needs the session's keys, which a
 * replayed input cannot have: the record and handshake parsers are what is
 * reached (the codec after them has its own targets, fuzz_request).
 * A seed counts as decoded when the server answered it with handshake
 * records (a ClientHello it accepted).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "jute.h"
#include "tls_stream.h"

size_t jute_fuzz_packets_decoded;

#define TLS_FUZZ_MAX_CHUNKS 8

static SSL_CTX *server_context(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    if (!key || !cert)
        abort();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        abort();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        abort();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* ssl.clientAuth=want: certificates parsed */
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static SSL_CTX *ctx;
    if (!ctx)
        ctx = server_context();
    struct tls_stream *s = tls_stream_new(ctx, true, NULL);
    if (!s)
        abort();
    struct jute_writer out;
    jute_writer_init(&out);
    uint8_t plain[4096];
    bool answered = false, over = false;
    for (int chunk = 0; chunk < TLS_FUZZ_MAX_CHUNKS && size >= 2 && !over; chunk++) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        if (tls_stream_feed(s, data, len) != 0)
            abort();
        data += len;
        size -= len;
        for (;;) {
            const char *why = NULL;
            ssize_t n = tls_stream_read(s, plain, sizeof plain, &why);
            if (n < 0) {
                if (!why)
                    abort(); /* a closed stream must say why */
                over = true;
                break;
            }
            if (n == 0)
                break;
        }
        out.len = 0;
        if (tls_stream_drain(s, &out) > 0 && !over)
            answered = true;
    }
    if (answered)
        jute_fuzz_packets_decoded++;
    jute_writer_free(&out);
    tls_stream_free(s);
    return 0;
}
