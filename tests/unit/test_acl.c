/*
 * ACL logic (daemon/net/acl.c, daemon/sha1.c) against ZooKeeper's providers:
 * SHA-1 test vectors, DigestAuthenticationProvider.generateDigest,
 * IPAuthenticationProvider.matches, and checkACL's rules; and the
 * identities a write is judged by (acl_caller).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "sha1.h"
#include "znode/errors.h"
#include "znode/proto.h"

static void sha1_matches_the_fips_vectors(void **state)
{
    (void)state;
    uint8_t d[SHA1_DIGEST_BYTES];
    char b64[SHA1_BASE64_BYTES];
    sha1("abc", 3, d);
    sha1_base64(d, sizeof d, b64);
    assert_string_equal(b64, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="); /* a9993e36...d89d */
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1(two_blocks, strlen(two_blocks), d);
    sha1_base64(d, sizeof d, b64);
    assert_string_equal(b64, "hJg+RBw70m66rkqh+VEp5eVGcPE="); /* 84983e44...e546 70f1 */
    sha1("", 0, d);
    sha1_base64(d, sizeof d, b64);
    assert_string_equal(b64, "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
}

static void digest_is_user_and_base64_sha1_of_user_password(void **state)
{
    (void)state;
    char out[128];
    /* The value zkCli's docs and kazoo's make_digest_acl_credential give. */
    assert_int_equal(acl_digest("super:test", 10, out, sizeof out), 0);
    assert_string_equal(out, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    assert_int_equal(acl_digest("nocolon", 7, out, sizeof out), 0);
    assert_memory_equal(out, "nocolon:", 8);
    assert_int_equal(acl_digest("user:pw", 7, out, 10), ZN_BADARGUMENTS);
}

static void ip_matches_addresses_inside_the_mask_only(void **state)
{
    (void)state;
    assert_true(acl_ip_matches("127.0.0.1", "127.0.0.1"));
    assert_false(acl_ip_matches("127.0.0.2", "127.0.0.1"));
    assert_true(acl_ip_matches("127.9.8.7", "127.0.0.0/8"));
    assert_true(acl_ip_matches("127.1.2.3", "127.1.0.0/15"));
    assert_false(acl_ip_matches("127.3.2.3", "127.0.0.1/15"));
    assert_true(acl_ip_matches("127.200.3.4", "127.0.0.1/0")); /* /0: every address */
    assert_true(acl_ip_matches("::1", "::1"));
    assert_true(acl_ip_matches("fe80::1", "fe80::/64"));
    assert_false(acl_ip_matches("127.0.0.1", "::1"));
    assert_false(acl_ip_matches("127.0.0.1", "127.0.0.1/33"));
    assert_false(acl_ip_matches("127.0.0.1", "127.0.0.1/"));
    assert_false(acl_ip_matches("127.0.0.1", "not-an-address"));
}

static struct zn_acl entry(int32_t perms, const char *scheme, const char *id)
{
    return (struct zn_acl){perms, {(char *)scheme, (char *)id}};
}

static void check_needs_a_matching_entry_with_a_shared_bit(void **state)
{
    (void)state;
    struct zn_acl items[] = {entry(ZN_PERM_READ, "digest", "u:h"), entry(ZN_PERM_ALL, "ip", "127.2.0.0/16")};
    struct zn_acl_vec acl = {2, items};
    struct zn_id user = {"digest", "u:h"}, local = {"ip", "127.0.0.1"}, lan = {"ip", "127.2.3.4"};
    assert_int_equal(acl_check(&acl, ZN_PERM_READ, &user, 1, false), 0);
    assert_int_equal(acl_check(&acl, ZN_PERM_WRITE, &user, 1, false), ZN_NOAUTH);
    assert_int_equal(acl_check(&acl, ZN_PERM_READ | ZN_PERM_ADMIN, &user, 1, false), 0);
    assert_int_equal(acl_check(&acl, ZN_PERM_WRITE, &local, 1, false), ZN_NOAUTH);
    assert_int_equal(acl_check(&acl, ZN_PERM_WRITE, &lan, 1, false), 0);
    assert_int_equal(acl_check(&acl, ZN_PERM_READ, NULL, 0, false), ZN_NOAUTH);
}

static void world_empty_super_and_skip_allow(void **state)
{
    (void)state;
    struct zn_acl world[] = {entry(ZN_PERM_READ, "world", "anyone")};
    struct zn_acl_vec world_acl = {1, world}, empty = {0, NULL};
    struct zn_acl locked[] = {entry(ZN_PERM_READ, "digest", "x:y")};
    struct zn_acl_vec locked_acl = {1, locked};
    struct zn_id super = {"super", ""};
    assert_int_equal(acl_check(&world_acl, ZN_PERM_READ, NULL, 0, false), 0);
    assert_int_equal(acl_check(&world_acl, ZN_PERM_WRITE, NULL, 0, false), ZN_NOAUTH);
    assert_int_equal(acl_check(&empty, ZN_PERM_ADMIN, NULL, 0, false), 0);
    assert_int_equal(acl_check(&locked_acl, ZN_PERM_DELETE, &super, 1, false), 0);
    assert_int_equal(acl_check(&locked_acl, ZN_PERM_DELETE, NULL, 0, true), 0);
    /* An unknown scheme matches nobody, even with the same id. */
    struct zn_acl odd[] = {entry(ZN_PERM_ALL, "nosuch", "cn")};
    struct zn_acl_vec odd_acl = {1, odd};
    struct zn_id odd_id = {"nosuch", "cn"};
    assert_int_equal(acl_check(&odd_acl, ZN_PERM_READ, &odd_id, 1, false), ZN_NOAUTH);
}

static void x509_matches_exactly_the_subject_it_names(void **state)
{
    (void)state;
    struct zn_acl cert[] = {entry(ZN_PERM_ALL, "x509", "CN=app,O=Example")};
    struct zn_acl_vec cert_acl = {1, cert};
    struct zn_id same = {"x509", "CN=app,O=Example"}, other = {"x509", "CN=app,O=Example2"},
                 digest = {"digest", "CN=app,O=Example"};
    assert_int_equal(acl_check(&cert_acl, ZN_PERM_READ, &same, 1, false), 0);
    assert_int_equal(acl_check(&cert_acl, ZN_PERM_READ, &other, 1, false), ZN_NOAUTH);
    assert_int_equal(acl_check(&cert_acl, ZN_PERM_READ, &digest, 1, false), ZN_NOAUTH);
}

/* What acl_caller allocates in the request's arena for n ids, after the
 * digest buffer of each queued addAuth (8-byte rounded, as the arena). */
#define ROUND8(x) (((x) + 7) & ~(size_t)7)
#define DIGEST_BUFFER_BYTES ROUND8(ACL_MAX_AUTH_BYTES + SHA1_BASE64_BYTES + 2)

static void assert_id(const struct zn_id *id, const char *scheme, const char *value)
{
    assert_string_equal(id->scheme, scheme);
    assert_string_equal(id->id, value);
}

/* A server with no superDigest and a connection from
 * 127.0.0.9 holding no identity yet (too large for the stack). */
static struct server srv;
static struct conn c;

static void a_connection_from_127_0_0_9(void)
{
    memset(&srv, 0, sizeof srv);
    memset(&c, 0, sizeof c);
    strcpy(c.peer_ip, "127.0.0.9");
}

static void a_plain_connection_write_keeps_only_its_ip(void **state)
{
    (void)state;
    a_connection_from_127_0_0_9();
    struct request w = {.conn = &c, .session_id = 0x42, .hdr = {.xid = 7, .type = ZN_OP_CREATE}};
    zn_arena_init(&w.arena);
    c.queue_head = c.queue_tail = &w;

    struct prep_caller who;
    acl_caller(&srv, &w, &who);
    assert_int_equal(who.session_id, 0x42);
    assert_int_equal(who.cxid, 7);
    assert_int_equal(who.id_count, 1);
    assert_id(&who.ids[0], "ip", "127.0.0.9");
    assert_true(w.has_ids);
    assert_ptr_equal(who.ids, w.ids);
    /* one id, not room for ACL_MAX_HELD_IDS */
    assert_int_equal(w.arena.used_bytes, ROUND8(sizeof(struct zn_id)));
    zn_arena_free(&w.arena);
}

static void a_write_is_judged_by_every_id_its_connection_holds_or_has_queued(void **state)
{
    (void)state;
    a_connection_from_127_0_0_9();
    char bob[128];
    assert_int_equal(acl_digest("bob:pw", 6, bob, sizeof bob), 0);
    strcpy(srv.cfg.super_digest, bob); /* bob is also super */
    struct conn_auth held[] = {{"digest", "alice:abc="}, {"x509", "CN=app"}, {"sasl", "carol"}};
    c.auth = held; /* the connection's array: room for what it holds */
    c.auth_count = c.auth_cap = 3;
    /* queued ahead of the write: an addAuth still to run (counts), one
     * already answered and one of a scheme with no provider (do not) */
    struct request answered = {.hdr = {.type = ZN_OP_AUTH}, .done = true,
                               .req = {.scheme = "digest", .auth = {(const uint8_t *)"dave:pw", 7}}};
    struct request unknown = {.hdr = {.type = ZN_OP_AUTH},
                              .req = {.scheme = "nosuch", .auth = {(const uint8_t *)"erin:pw", 7}}};
    struct request pending = {.hdr = {.type = ZN_OP_AUTH},
                              .req = {.scheme = "digest", .auth = {(const uint8_t *)"bob:pw", 6}}};
    struct request w = {.conn = &c, .session_id = 0x42, .hdr = {.xid = 8, .type = ZN_OP_SETDATA}};
    zn_arena_init(&w.arena);
    answered.next = &unknown;
    unknown.next = &pending;
    pending.next = &w;
    c.queue_head = &answered;
    c.queue_tail = &w;

    struct prep_caller who;
    acl_caller(&srv, &w, &who);
    assert_int_equal(who.id_count, 6);
    assert_id(&who.ids[0], "ip", "127.0.0.9");
    assert_id(&who.ids[1], "digest", "alice:abc=");
    assert_id(&who.ids[2], "x509", "CN=app");
    assert_id(&who.ids[3], "sasl", "carol");
    assert_id(&who.ids[4], "super", "");
    assert_id(&who.ids[5], "digest", bob);
    size_t used = DIGEST_BUFFER_BYTES + ROUND8(6 * sizeof(struct zn_id));
    assert_int_equal(w.arena.used_bytes, used);

    /* asked again (the write is prepared again), it keeps what it has */
    struct prep_caller again;
    acl_caller(&srv, &w, &again);
    assert_ptr_equal(again.ids, who.ids);
    assert_int_equal(again.id_count, 6);
    assert_int_equal(w.arena.used_bytes, used);
    zn_arena_free(&w.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1_matches_the_fips_vectors),
        cmocka_unit_test(digest_is_user_and_base64_sha1_of_user_password),
        cmocka_unit_test(ip_matches_addresses_inside_the_mask_only),
        cmocka_unit_test(check_needs_a_matching_entry_with_a_shared_bit),
        cmocka_unit_test(world_empty_super_and_skip_allow),
        cmocka_unit_test(x509_matches_exactly_the_subject_it_names),
        cmocka_unit_test(a_plain_connection_write_keeps_only_its_ip),
        cmocka_unit_test(a_write_is_judged_by_every_id_its_connection_holds_or_has_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
