/*
 * tls_stream: a TLS connection over memory BIOs (see tls_stream.h).  Owns
 * the SSL object and its two BIOs; the context belongs to the caller.
 */
#include "tls_stream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "assert.h"

struct tls_stream {
    SSL *ssl;
    BIO *in;  /* ciphertext from the peer, read by OpenSSL */
    BIO *out; /* ciphertext to the peer, written by OpenSSL */
    bool established_reported;
    bool close_notify_sent;
    char why[256];
};

const char *tls_openssl_reason(char *buf, size_t cap, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, cap, "%s", fallback);
    else
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

/* A client checks the server's certificate names host: an IP address
 * against its IP entries, a name against its DNS names (and sends SNI). */
static bool expect_host(SSL *ssl, const char *host)
{
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    return SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
}

struct tls_stream *tls_stream_new(SSL_CTX *ctx, bool server, const char *host)
{
    struct tls_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ssl = SSL_new(ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->in || !s->out) {
        SSL_free(s->ssl);
        BIO_free(s->in);
        BIO_free(s->out);
        free(s);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(s->ssl, s->in, s->out); /* the SSL owns both BIOs from here */
    if (server) {
        SSL_set_accept_state(s->ssl);
        return s;
    }
    SSL_set_connect_state(s->ssl);
    if (host && !expect_host(s->ssl, host)) {
        tls_stream_free(s);
        ERR_clear_error();
        return NULL;
    }
    return s;
}

void tls_stream_free(struct tls_stream *s)
{
    if (!s)
        return;
    SSL_free(s->ssl);
    free(s);
}

int tls_stream_feed(struct tls_stream *s, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = BIO_write(s->in, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Why the stream failed, after an SSL call returned err. */
static const char *failure(struct tls_stream *s, int err)
{
    if (err == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return "the peer closed the TLS session";
    }
    long verify = SSL_get_verify_result(s->ssl);
    char reason[200];
    tls_openssl_reason(reason, sizeof reason, "TLS error");
    if (verify != X509_V_OK)
        snprintf(s->why, sizeof s->why, "TLS handshake failed: %s (certificate: %s)", reason,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(s->why, sizeof s->why, "TLS %s failed: %s",
                 SSL_is_init_finished(s->ssl) ? "read" : "handshake", reason);
    return s->why;
}

ssize_t tls_stream_read(struct tls_stream *s, uint8_t *buf, size_t cap, const char **why)
{
    ZN_ASSERT(cap > 0);
    int n = SSL_read(s->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    int err = SSL_get_error(s->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    *why = failure(s, err);
    return -1;
}

bool tls_stream_established(const struct tls_stream *s) { return SSL_is_init_finished(s->ssl); }

bool tls_stream_just_established(struct tls_stream *s)
{
    if (s->established_reported || !SSL_is_init_finished(s->ssl))
        return false;
    s->established_reported = true;
    return true;
}

int tls_stream_write(struct tls_stream *s, const uint8_t *data, size_t len, const char **why)
{
    ZN_ASSERT(tls_stream_established(s));
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(s->ssl, data, chunk); /* into a memory BIO: all of it, or an error */
        if (n <= 0) {
            *why = failure(s, SSL_get_error(s->ssl, n));
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void tls_stream_close_notify(struct tls_stream *s)
{
    ZN_ASSERT(tls_stream_established(s));
    if (s->close_notify_sent)
        return;
    s->close_notify_sent = true;
    SSL_shutdown(s->ssl); /* 0: our alert is in the out BIO; the peer's is not awaited */
    ERR_clear_error();
}

size_t tls_stream_drain(struct tls_stream *s, struct jute_writer *out)
{
    size_t moved = 0;
    uint8_t chunk[16384];
    int n;
    while ((n = BIO_read(s->out, chunk, sizeof chunk)) > 0) {
        jute_write_raw(out, chunk, (size_t)n);
        moved += (size_t)n;
    }
    return moved;
}

SSL *tls_stream_ssl(const struct tls_stream *s) { return s->ssl; }
