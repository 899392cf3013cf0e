/* Compatibility tests of the official ZooKeeper C client (libzookeeper_mt) for multi and ACLs:
 * zoo_multi's success and failure with its per-op results, digest ACLs set explicitly and
 * through the "auth" scheme after zoo_add_auth, and NOAUTH / INVALIDACL where ZooKeeper 3.8
 * returns them. Prints TAP, one line per case with the reason as a `#` comment, so a run against
 * Apache ZooKeeper and one against znoded show where they differ. Every case works under its
 * own path below /compat-cf-<pid>.
 *
 * Usage: c_client_features HOST:PORT [CASE_NAME_SUBSTRING]
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define FEATURES_SESSION_TIMEOUT_MS 10000
#define FEATURES_WAIT_MS 15000
#define FEATURES_PATH_MAX 512
/* base64(sha1("alice:pw")): the digest id ZooKeeper derives from alice's password. */
#define ALICE_CREDENTIAL "alice:pw"
#define ALICE_DIGEST_ID "alice:V55/p2T0OpjQ+low3NVAH4aLvm0="

static const char *features_hosts;
static zhandle_t *features_zh;
static char features_root[FEATURES_PATH_MAX];
static char features_failure[1024];

static int fail_with(const char *fmt, ...) {
  if (features_failure[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(features_failure, sizeof features_failure, fmt, ap);
    va_end(ap);
  }
  return -1;
}

#define CHECK(cond, fmt, ...)                                                \
  do {                                                                       \
    if (!(cond)) return fail_with("line %d: " fmt, __LINE__, ##__VA_ARGS__); \
  } while (0)

#define CHECK_RC(expr, want)                                                                     \
  do {                                                                                           \
    int rc_ = (expr);                                                                            \
    if (rc_ != (want))                                                                           \
      return fail_with("line %d: %s returned %d (%s), expected %d (%s)", __LINE__, #expr, rc_, \
                       zerror(rc_), (want), zerror(want));                                       \
  } while (0)

/* A connection whose watcher signals when the session is connected. */
struct session_wait {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int connected;
};

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)zh;
  (void)path;
  struct session_wait *w = ctx;
  if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
    pthread_mutex_lock(&w->lock);
    w->connected = 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
  }
}

static struct session_wait main_wait = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static struct session_wait other_wait = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static zhandle_t *connect_session(struct session_wait *w) {
  pthread_mutex_lock(&w->lock);
  w->connected = 0;
  pthread_mutex_unlock(&w->lock);
  zhandle_t *zh = zookeeper_init2(features_hosts, session_watcher, FEATURES_SESSION_TIMEOUT_MS, NULL, w, 0, NULL);
  if (zh == NULL) return NULL;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += FEATURES_WAIT_MS / 1000;
  pthread_mutex_lock(&w->lock);
  while (!w->connected && pthread_cond_timedwait(&w->changed, &w->lock, &deadline) == 0) {
  }
  int ok = w->connected;
  pthread_mutex_unlock(&w->lock);
  if (!ok) {
    zookeeper_close(zh);
    return NULL;
  }
  return zh;
}

/* zoo_add_auth's result, waited for. */
struct auth_wait {
  pthread_mutex_t lock;
  pthread_cond_t done;
  int finished;
  int rc;
};

static void auth_completion(int rc, const void *data) {
  struct auth_wait *w = (struct auth_wait *)data;
  pthread_mutex_lock(&w->lock);
  w->rc = rc;
  w->finished = 1;
  pthread_cond_broadcast(&w->done);
  pthread_mutex_unlock(&w->lock);
}

static int add_auth(zhandle_t *zh, const char *credential) {
  static struct auth_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_mutex_lock(&w.lock);
  w.finished = 0;
  pthread_mutex_unlock(&w.lock);
  int rc = zoo_add_auth(zh, "digest", credential, (int)strlen(credential), auth_completion, &w);
  if (rc != ZOK) return rc;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += FEATURES_WAIT_MS / 1000;
  pthread_mutex_lock(&w.lock);
  while (!w.finished && pthread_cond_timedwait(&w.done, &w.lock, &deadline) == 0) {
  }
  rc = w.finished ? w.rc : ZOPERATIONTIMEOUT;
  pthread_mutex_unlock(&w.lock);
  return rc;
}

static const char *path_of(const char *fmt, ...) {
  static char buf[4][FEATURES_PATH_MAX];
  static int next;
  char *out = buf[next++ % 4];
  int n = snprintf(out, FEATURES_PATH_MAX, "%s", features_root);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out + n, (size_t)(FEATURES_PATH_MAX - n), fmt, ap);
  va_end(ap);
  return out;
}

/* ---- multi ---- */

static int multi_success_returns_each_ops_result(void) {
  char base[FEATURES_PATH_MAX], a[FEATURES_PATH_MAX + 8];
  snprintf(base, sizeof base, "%s", path_of("/multi-ok"));
  snprintf(a, sizeof a, "%s/a", base);
  char created0[FEATURES_PATH_MAX], created1[FEATURES_PATH_MAX];
  struct Stat set_stat;
  zoo_op_t ops[4];
  zoo_op_result_t results[4];
  zoo_create_op_init(&ops[0], base, "p", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created0, sizeof created0);
  zoo_create_op_init(&ops[1], a, "one", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created1, sizeof created1);
  zoo_set_op_init(&ops[2], a, "two", 3, 0, &set_stat);
  zoo_check_op_init(&ops[3], a, 1);
  CHECK_RC(zoo_multi(features_zh, 4, ops, results), ZOK);
  for (int i = 0; i < 4; i++) CHECK(results[i].err == ZOK, "op %d err %d", i, results[i].err);
  CHECK(strcmp(created0, base) == 0, "create 0 returned %s", created0);
  CHECK(strcmp(created1, a) == 0, "create 1 returned %s", created1);
  CHECK(set_stat.version == 1 && set_stat.dataLength == 3, "set stat version %d length %d", set_stat.version,
        set_stat.dataLength);
  char buf[16];
  int len = sizeof buf;
  CHECK_RC(zoo_get(features_zh, a, 0, buf, &len, NULL), ZOK);
  CHECK(len == 3 && memcmp(buf, "two", 3) == 0, "data of %s is %.*s", a, len, buf);
  return 0;
}

static int multi_failure_reports_the_failing_op_and_changes_nothing(void) {
  const char *base = path_of("/multi-fail");
  CHECK_RC(zoo_create(features_zh, base, "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  char kid[FEATURES_PATH_MAX], created[FEATURES_PATH_MAX];
  snprintf(kid, sizeof kid, "%s/kid", base);
  zoo_op_t ops[3];
  zoo_op_result_t results[3];
  zoo_create_op_init(&ops[0], kid, "k", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created, sizeof created);
  zoo_check_op_init(&ops[1], base, 7);
  zoo_set_op_init(&ops[2], base, "y", 1, -1, NULL);
  CHECK_RC(zoo_multi(features_zh, 3, ops, results), ZBADVERSION);
  CHECK(results[0].err == ZOK, "op 0 err %d (%s)", results[0].err, zerror(results[0].err));
  CHECK(results[1].err == ZBADVERSION, "op 1 err %d (%s)", results[1].err, zerror(results[1].err));
  CHECK(results[2].err == ZRUNTIMEINCONSISTENCY, "op 2 err %d (%s)", results[2].err, zerror(results[2].err));
  CHECK_RC(zoo_exists(features_zh, kid, 0, NULL), ZNONODE);
  char buf[8];
  int len = sizeof buf;
  CHECK_RC(zoo_get(features_zh, base, 0, buf, &len, NULL), ZOK);
  CHECK(len == 1 && buf[0] == 'x', "data changed to %.*s", len, buf);
  return 0;
}

static int multi_delete_of_a_missing_node_fails_with_nonode(void) {
  const char *base = path_of("/multi-nonode");
  char created[FEATURES_PATH_MAX];
  zoo_op_t ops[2];
  zoo_op_result_t results[2];
  zoo_create_op_init(&ops[0], base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created, sizeof created);
  zoo_delete_op_init(&ops[1], path_of("/multi-nonode-missing"), -1);
  CHECK_RC(zoo_multi(features_zh, 2, ops, results), ZNONODE);
  CHECK(results[0].err == ZOK && results[1].err == ZNONODE, "errs %d %d", results[0].err, results[1].err);
  CHECK_RC(zoo_exists(features_zh, base, 0, NULL), ZNONODE);
  return 0;
}

/* ---- ACLs ---- */

static int auth_acl_becomes_the_digest_id_and_locks_out_other_sessions(void) {
  zhandle_t *alice = connect_session(&other_wait);
  CHECK(alice != NULL, "second session did not connect");
  int rc = add_auth(alice, ALICE_CREDENTIAL);
  const char *path = path_of("/auth-acl");
  if (rc == ZOK) rc = zoo_create(alice, path, "s", 1, &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT, NULL, 0);
  struct ACL_vector acl = {0, NULL};
  struct Stat st;
  if (rc == ZOK) rc = zoo_get_acl(alice, path, &acl, &st);
  zookeeper_close(alice);
  CHECK_RC(rc, ZOK);
  CHECK(acl.count == 1, "%d ACL entries", acl.count);
  CHECK(strcmp(acl.data[0].id.scheme, "digest") == 0 && strcmp(acl.data[0].id.id, ALICE_DIGEST_ID) == 0 &&
            acl.data[0].perms == ZOO_PERM_ALL,
        "ACL is %s:%s perms %d", acl.data[0].id.scheme, acl.data[0].id.id, acl.data[0].perms);
  deallocate_ACL_vector(&acl);
  char buf[8];
  int len = sizeof buf;
  CHECK_RC(zoo_get(features_zh, path, 0, buf, &len, NULL), ZNOAUTH);
  CHECK_RC(zoo_set(features_zh, path, "t", 1, -1), ZNOAUTH);
  CHECK_RC(zoo_get_acl(features_zh, path, &acl, &st), ZNOAUTH);
  return 0;
}

/* The node keeps READ|WRITE for alice's digest only: no one may change its ACL again, and a
 * reader without ADMIN sees the digest's hash replaced by "x" (ZooKeeper 3.6+). */
static int explicit_digest_acl_is_kept_and_add_auth_opens_it(void) {
  const char *path = path_of("/digest-acl");
  struct ACL entry = {ZOO_PERM_READ | ZOO_PERM_WRITE, {"digest", ALICE_DIGEST_ID}};
  struct ACL_vector acl = {1, &entry};
  CHECK_RC(zoo_create(features_zh, path, "d", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  CHECK_RC(zoo_set_acl(features_zh, path, 0, &acl), ZOK);
  CHECK_RC(zoo_set_acl(features_zh, path, 0, &ZOO_OPEN_ACL_UNSAFE), ZNOAUTH); /* no ADMIN left */
  zhandle_t *other = connect_session(&other_wait);
  CHECK(other != NULL, "second session did not connect");
  char buf[8];
  int len = sizeof buf;
  int before = zoo_get(other, path, 0, buf, &len, NULL);
  int wrong = add_auth(other, "alice:wrong");
  len = sizeof buf;
  int after_wrong = zoo_get(other, path, 0, buf, &len, NULL);
  int right = add_auth(other, ALICE_CREDENTIAL);
  len = sizeof buf;
  int after_right = zoo_get(other, path, 0, buf, &len, NULL);
  struct ACL_vector got = {0, NULL};
  struct Stat st;
  int acl_rc = zoo_get_acl(other, path, &got, &st);
  zookeeper_close(other);
  CHECK_RC(before, ZNOAUTH);
  CHECK_RC(wrong, ZOK); /* a digest never fails to add; it just matches nothing */
  CHECK_RC(after_wrong, ZNOAUTH);
  CHECK_RC(right, ZOK);
  CHECK_RC(after_right, ZOK);
  CHECK(len == 1 && buf[0] == 'd', "data %.*s", len, buf);
  CHECK_RC(acl_rc, ZOK);
  CHECK(got.count == 1 && got.data[0].perms == (ZOO_PERM_READ | ZOO_PERM_WRITE) &&
            strcmp(got.data[0].id.id, "alice:x") == 0, /* without ADMIN the hash is hidden (3.6+) */
        "ACL back is %d entries, first %s:%s perms %d", got.count, got.count ? got.data[0].id.scheme : "",
        got.count ? got.data[0].id.id : "", got.count ? got.data[0].perms : 0);
  CHECK(st.aversion == 1, "aversion %d", st.aversion);
  deallocate_ACL_vector(&got);
  return 0;
}

static int delete_and_create_need_the_parents_permissions(void) {
  const char *parent = path_of("/read-only");
  char kid[FEATURES_PATH_MAX];
  snprintf(kid, sizeof kid, "%s/kid", parent);
  CHECK_RC(zoo_create(features_zh, parent, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  CHECK_RC(zoo_create(features_zh, kid, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  CHECK_RC(zoo_set_acl(features_zh, parent, -1, &ZOO_READ_ACL_UNSAFE), ZOK);
  CHECK_RC(zoo_delete(features_zh, kid, -1), ZNOAUTH);
  char other[FEATURES_PATH_MAX];
  snprintf(other, sizeof other, "%s/other", parent);
  CHECK_RC(zoo_create(features_zh, other, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZNOAUTH);
  CHECK_RC(zoo_set(features_zh, parent, "x", 1, -1), ZNOAUTH);
  CHECK_RC(zoo_exists(features_zh, kid, 0, NULL), ZOK);
  return 0;
}

static int malformed_acls_are_refused_with_invalidacl(void) {
  struct ACL bad_digest = {ZOO_PERM_ALL, {"digest", "no-colon-here"}};
  struct ACL_vector one = {1, &bad_digest};
  CHECK_RC(zoo_create(features_zh, path_of("/bad-acl-1"), "", 0, &one, ZOO_PERSISTENT, NULL, 0), ZINVALIDACL);
  struct ACL unknown = {ZOO_PERM_ALL, {"nosuchscheme", "x"}};
  struct ACL_vector two = {1, &unknown};
  CHECK_RC(zoo_create(features_zh, path_of("/bad-acl-2"), "", 0, &two, ZOO_PERSISTENT, NULL, 0), ZINVALIDACL);
  /* "auth" with no authenticated id in the session. */
  CHECK_RC(zoo_create(features_zh, path_of("/bad-acl-3"), "", 0, &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT, NULL, 0),
           ZINVALIDACL);
  return 0;
}

static int multi_with_an_unauthorized_op_fails_with_noauth(void) {
  const char *locked = path_of("/multi-noauth");
  CHECK_RC(zoo_create(features_zh, locked, "", 0, &ZOO_READ_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  char created[FEATURES_PATH_MAX];
  zoo_op_t ops[2];
  zoo_op_result_t results[2];
  zoo_create_op_init(&ops[0], path_of("/multi-noauth-free"), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created,
                     sizeof created);
  zoo_set_op_init(&ops[1], locked, "x", 1, -1, NULL);
  CHECK_RC(zoo_multi(features_zh, 2, ops, results), ZNOAUTH);
  CHECK(results[0].err == ZOK && results[1].err == ZNOAUTH, "errs %d %d", results[0].err, results[1].err);
  CHECK_RC(zoo_exists(features_zh, path_of("/multi-noauth-free"), 0, NULL), ZNONODE);
  return 0;
}

struct features_case {
  const char *name;
  int (*run)(void);
};

static const struct features_case features_cases[] = {
    {"multi success returns each op's result", multi_success_returns_each_ops_result},
    {"multi failure reports the failing op and changes nothing",
     multi_failure_reports_the_failing_op_and_changes_nothing},
    {"multi delete of a missing node fails with NONODE", multi_delete_of_a_missing_node_fails_with_nonode},
    {"auth ACL becomes the digest id and locks out other sessions",
     auth_acl_becomes_the_digest_id_and_locks_out_other_sessions},
    {"explicit digest ACL is kept and zoo_add_auth opens it", explicit_digest_acl_is_kept_and_add_auth_opens_it},
    {"delete and create need the parent's permissions", delete_and_create_need_the_parents_permissions},
    {"malformed ACLs are refused with INVALIDACL", malformed_acls_are_refused_with_invalidacl},
    {"multi with an unauthorized op fails with NOAUTH", multi_with_an_unauthorized_op_fails_with_noauth},
};

int main(int argc, char **argv) {
  const size_t case_count = sizeof features_cases / sizeof features_cases[0];
  const char *filter = argc > 2 ? argv[2] : NULL;
  int failed = 0, number = 0, selected = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s HOST:PORT [CASE_NAME_SUBSTRING]\n", argv[0]);
    return 2;
  }
  features_hosts = argv[1];
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  for (size_t i = 0; i < case_count; i++) selected += !filter || strstr(features_cases[i].name, filter);
  printf("1..%d\n", selected);
  fflush(stdout);
  features_zh = connect_session(&main_wait);
  snprintf(features_root, sizeof features_root, "/compat-cf-%ld", (long)getpid());
  int root_rc = features_zh ? zoo_create(features_zh, features_root, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                                         NULL, 0)
                            : ZCONNECTIONLOSS;
  for (size_t i = 0; i < case_count; i++) {
    if (filter && !strstr(features_cases[i].name, filter)) continue;
    number++;
    features_failure[0] = '\0';
    int rc = root_rc == ZOK ? features_cases[i].run()
                            : fail_with("could not set up %s on %s: %s", features_root, features_hosts, zerror(root_rc));
    if (rc == 0) {
      printf("ok %d %s\n", number, features_cases[i].name);
    } else {
      failed++;
      printf("not ok %d %s\n# %s\n", number, features_cases[i].name, features_failure);
    }
    fflush(stdout);
  }
  if (features_zh) zookeeper_close(features_zh);
  return failed ? 1 : 0;
}
