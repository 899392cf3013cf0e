/*
 * fuzz_sasl: what a client can make the server's SASL side read, under
 * libFuzzer.  The input's first byte selects:
 *   'J'  the rest is a JAAS file for jaas_parse (the server's own file, but
 *        its reader must not over-read whatever is in it);
 *   else the rest is up to SASL_FUZZ_MAX_TOKENS client tokens of one
 *        connection's exchange, each a big-endian u16 length and its bytes
 *        (a length past the end takes what is left), handed to saslauth_step
 *        in order as the SASL packets of one connection are: DIGEST-MD5
 *        through Cyrus with one configured user;
 *   'Q'  the same tokens from a member, to the quorum server side
 *        (saslauth_quorum_step as server: quorum.auth.*'s DIGEST-MD5);
 *   'L'  the same tokens as a member's answers, to the learner side
 *        (saslauth_quorum_step as client, after its start);
 *   'A'  the rest is an auth reply frame's payload for transport_auth_decode
 *        (what a learner reads back from the member it authenticates to).
 * Any input must end in CONTINUE, DONE or FAILED with a reason; never crash
 * or over-read.  A real exchange cannot be replayed (the server's nonce is
 * random), so seeds reach the response parser, not success.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jaas.h"
#include "log.h"
#include "saslauth.h"
#include "transport.h"

size_t jute_fuzz_packets_decoded;

#define SASL_FUZZ_MAX_TOKENS 4

static int count_entry(void *ctx, const char *section, const char *module, const char *flag)
{
    (void)section;
    (void)module;
    (void)flag;
    (*(size_t *)ctx)++;
    return 0;
}

static void fuzz_jaas(const uint8_t *data, size_t size)
{
    size_t entries = 0;
    struct jaas_visitor v = {.entry = count_entry, .ctx = &entries};
    char err[256];
    err[0] = '\0';
    int rc = jaas_parse((const char *)data, size, &v, err, sizeof err);
    if (rc == 0)
        jute_fuzz_packets_decoded++;
    else if (err[0] == '\0')
        abort(); /* a refusal must say why */
}

/* The next token at *pos (a big-endian u16 length, then its bytes; a length
 * past the end takes what is left), as a copy of exactly *len bytes so that
 * an over-read is caught.  The caller frees it. */
static uint8_t *next_token(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
    *len = (size_t)data[*pos] << 8 | data[*pos + 1];
    *pos += 2;
    if (*len > size - *pos)
        *len = size - *pos;
    uint8_t *token = malloc(*len ? *len : 1);
    if (!token)
        abort();
    memcpy(token, data + *pos, *len);
    *pos += *len;
    return token;
}

static void ensure_started(void)
{
    static struct config_sasl users;
    static bool started;
    if (started)
        return;
    users.enabled = true;
    users.user_count = 1;
    strcpy(users.users[0].name, "bob");
    strcpy(users.users[0].password, "bob-secret");
    users.quorum_enable = users.quorum_learner_require = true;
    users.quorum_user_count = 1;
    strcpy(users.quorum_users[0].name, "zkpeer");
    strcpy(users.quorum_users[0].password, "peer-secret");
    users.quorum_learner = users.quorum_users[0];
    if (saslauth_init(&users) != 0)
        abort(); /* no DIGEST-MD5 plugin: nothing would be fuzzed */
    started = true;
}

/* Tokens to one side of the members' exchange (server, or learner after its start). */
static void fuzz_quorum(const uint8_t *data, size_t size, bool server)
{
    ensure_started();
    void *session = NULL;
    const uint8_t *out;
    size_t outlen, pos = 0;
    char who[256], why[256];
    if (!server && saslauth_quorum_step(NULL, false, &session, NULL, 0, &out, &outlen, who, sizeof who, why,
                                        sizeof why) < 0)
        abort(); /* the learner's start needs nothing from the peer */
    size_t len;
    for (int i = 0; i < SASL_FUZZ_MAX_TOKENS && pos + 2 <= size; i++) {
        uint8_t *token = next_token(data, size, &pos, &len);
        why[0] = '\0';
        int rc = saslauth_quorum_step(NULL, server, &session, token, len, &out, &outlen, who, sizeof who, why,
                                      sizeof why);
        free(token);
        if (rc < 0 && why[0] == '\0')
            abort(); /* a failure must say why */
        if (rc == 0)
            jute_fuzz_packets_decoded++;
        if (rc != 0)
            break;
    }
    saslauth_quorum_free(NULL, session);
}

static void fuzz_auth_reply(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    struct transport_auth_msg m;
    if (transport_auth_decode(copy, size, &m) == 0) {
        if (m.data != copy + 1 || m.len != size - 1 || m.status > TRANSPORT_AUTH_ERROR)
            abort();
        jute_fuzz_packets_decoded++;
    }
    free(copy);
}

static void fuzz_exchange(const uint8_t *data, size_t size)
{
    ensure_started();
    struct saslauth_session *session = NULL;
    size_t pos = 0;
    size_t len;
    for (int i = 0; i < SASL_FUZZ_MAX_TOKENS && pos + 2 <= size; i++) {
        uint8_t *token = next_token(data, size, &pos, &len);
        const char *out;
        unsigned outlen;
        char user[CONFIG_SASL_NAME_BYTES], why[256];
        why[0] = '\0';
        enum saslauth_result res = saslauth_step(&session, token, len, &out, &outlen, user, sizeof user,
                                                 why, sizeof why);
        free(token);
        if (res == SASLAUTH_FAILED && why[0] == '\0')
            abort(); /* a failure must say why */
        if (res == SASLAUTH_CONTINUE)
            jute_fuzz_packets_decoded++;
        if (res != SASLAUTH_CONTINUE)
            break;
    }
    saslauth_session_free(session);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zn_log_threshold = ZN_LOG_OFF; /* failures are logged; they are not findings */
    if (size == 0)
        return 0;
    if (data[0] == 'J')
        fuzz_jaas(data + 1, size - 1);
    else if (data[0] == 'Q' || data[0] == 'L')
        fuzz_quorum(data + 1, size - 1, data[0] == 'Q');
    else if (data[0] == 'A')
        fuzz_auth_reply(data + 1, size - 1);
    else
        fuzz_exchange(data + 1, size - 1);
    return 0;
}
