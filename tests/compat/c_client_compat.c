/* Compatibility tests through the official ZooKeeper C client (libzookeeper_mt, Debian's
 * libzookeeper-mt-dev): the operations an application built on that library performs, against
 * the server at HOST:PORT, with the results it relies on (return codes, stat fields, sequence
 * suffixes, watch event types). Prints TAP: one `ok N name` / `not ok N name` line per case,
 * with the reason as a `#` comment, so the same program run against Apache ZooKeeper and
 * against znoded shows exactly where they differ. Every case works under its own path below
 * /compat-c-<pid>, so runs never see each other's nodes.
 *
 * Usage: c_client_compat HOST:PORT [CASE_NAME_SUBSTRING]
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define COMPAT_SESSION_TIMEOUT_MS 10000
#define COMPAT_WAIT_MS 15000       /* deadline for a connection or a watch event */
#define COMPAT_PATH_MAX 512
#define COMPAT_DATA_MAX 4096
#define COMPAT_EVENTS_MAX 64

/* Watch events recorded by compat_watcher, read by wait_event. */
struct compat_event {
  int type;
  char path[COMPAT_PATH_MAX];
};

struct compat_events {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int count;
  struct compat_event events[COMPAT_EVENTS_MAX];
  int connected;
};

static struct compat_events compat_events = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
static zhandle_t *compat_zh;
static const char *compat_hosts;
static char compat_root[COMPAT_PATH_MAX];
static char compat_failure[1024];

/* fail_with: record why the current case failed (first reason wins) and return -1. */
static int fail_with(const char *fmt, ...) {
  if (compat_failure[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(compat_failure, sizeof compat_failure, fmt, ap);
    va_end(ap);
  }
  return -1;
}

#define CHECK(cond, fmt, ...)                                                    \
  do {                                                                           \
    if (!(cond)) return fail_with("line %d: " fmt, __LINE__, ##__VA_ARGS__);     \
  } while (0)

#define CHECK_RC(expr, want)                                                         \
  do {                                                                               \
    int rc_ = (expr);                                                                \
    if (rc_ != (want))                                                               \
      return fail_with("line %d: %s returned %d (%s), expected %d (%s)", __LINE__, #expr, \
                       rc_, zerror(rc_), (want), zerror(want));                      \
  } while (0)

static void deadline_after(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Records every watch event (context NULL) and session state changes of compat_zh. */
static void compat_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  pthread_mutex_lock(&compat_events.lock);
  if (type == ZOO_SESSION_EVENT) {
    if (zh == compat_zh || compat_zh == NULL) compat_events.connected = (state == ZOO_CONNECTED_STATE);
  } else if (compat_events.count < COMPAT_EVENTS_MAX) {
    struct compat_event *event = &compat_events.events[compat_events.count++];
    event->type = type;
    snprintf(event->path, sizeof event->path, "%s", path ? path : "");
  }
  pthread_cond_broadcast(&compat_events.changed);
  pthread_mutex_unlock(&compat_events.lock);
}

/* Session watcher of extra handles: only tracks the connected flag passed as context. */
static void flag_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&compat_events.lock);
  *(int *)ctx = (state == ZOO_CONNECTED_STATE);
  pthread_cond_broadcast(&compat_events.changed);
  pthread_mutex_unlock(&compat_events.lock);
}

static void events_clear(void) {
  pthread_mutex_lock(&compat_events.lock);
  compat_events.count = 0;
  pthread_mutex_unlock(&compat_events.lock);
}

/* wait_event: wait for the next unread event; 0 and *out on success, -1 on timeout. */
static int wait_event(int *next_index, struct compat_event *out) {
  struct timespec deadline;
  int rc = 0;
  deadline_after(&deadline, COMPAT_WAIT_MS);
  pthread_mutex_lock(&compat_events.lock);
  while (compat_events.count <= *next_index && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&compat_events.changed, &compat_events.lock, &deadline);
  if (compat_events.count > *next_index) {
    *out = compat_events.events[(*next_index)++];
    rc = 0;
  } else {
    rc = -1;
  }
  pthread_mutex_unlock(&compat_events.lock);
  return rc;
}

static const char *event_name(int type) {
  if (type == ZOO_CREATED_EVENT) return "created";
  if (type == ZOO_DELETED_EVENT) return "deleted";
  if (type == ZOO_CHANGED_EVENT) return "changed";
  if (type == ZOO_CHILD_EVENT) return "child";
  if (type == ZOO_NOTWATCHING_EVENT) return "notwatching";
  return "other";
}

/* expect_event: the next event is `type` on `path`. */
static int expect_event(int *next_index, int type, const char *path) {
  struct compat_event event;
  if (wait_event(next_index, &event) != 0)
    return fail_with("no %s event on %s within %d ms", event_name(type), path, COMPAT_WAIT_MS);
  if (event.type != type || strcmp(event.path, path) != 0)
    return fail_with("expected %s event on %s, got %s on %s", event_name(type), path,
                     event_name(event.type), event.path);
  return 0;
}

/* wait_flag: wait until *flag == want (connection state of a handle). */
static int wait_flag(int *flag, int want) {
  struct timespec deadline;
  int rc = 0;
  deadline_after(&deadline, COMPAT_WAIT_MS);
  pthread_mutex_lock(&compat_events.lock);
  while (*flag != want && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&compat_events.changed, &compat_events.lock, &deadline);
  rc = (*flag == want) ? 0 : -1;
  pthread_mutex_unlock(&compat_events.lock);
  return rc;
}

/* path_of: compat_root/<case>/<rest> into a static rotating buffer. */
static const char *path_of(const char *fmt, ...) {
  static char buffers[8][COMPAT_PATH_MAX];
  static int next;
  char *buffer = buffers[next++ % 8];
  int used = snprintf(buffer, COMPAT_PATH_MAX, "%s/", compat_root);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buffer + used, COMPAT_PATH_MAX - used, fmt, ap);
  va_end(ap);
  return buffer;
}

static int create_node(const char *path, const char *data, int mode) {
  return zoo_create(compat_zh, path, data, data ? (int)strlen(data) : -1, &ZOO_OPEN_ACL_UNSAFE,
                    mode, NULL, 0);
}

/* ---- cases ---- */

static int create_then_get_returns_the_data(void) {
  const char *path = path_of("create-get");
  char buffer[COMPAT_DATA_MAX];
  int length = sizeof buffer;
  struct Stat stat;
  CHECK_RC(create_node(path, "hello", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_get(compat_zh, path, 0, buffer, &length, &stat), ZOK);
  CHECK(length == 5 && memcmp(buffer, "hello", 5) == 0, "got %d bytes '%.*s'", length, length, buffer);
  CHECK(stat.dataLength == 5, "dataLength %d", stat.dataLength);
  return 0;
}

static int create_returns_the_created_path(void) {
  const char *path = path_of("created-path");
  char created[COMPAT_PATH_MAX];
  CHECK_RC(zoo_create(compat_zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created,
                      sizeof created), ZOK);
  CHECK(strcmp(created, path) == 0, "created path %s, expected %s", created, path);
  return 0;
}

static int create_with_null_data_gives_an_empty_node(void) {
  const char *path = path_of("null-data");
  char buffer[16];
  int length = sizeof buffer;
  struct Stat stat;
  CHECK_RC(create_node(path, NULL, ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_get(compat_zh, path, 0, buffer, &length, &stat), ZOK);
  CHECK(length == -1 || length == 0, "length %d for a node created with no data", length);
  CHECK(stat.dataLength == 0, "dataLength %d", stat.dataLength);
  return 0;
}

static int create_fails_with_nodeexists_when_path_exists(void) {
  const char *path = path_of("exists-twice");
  CHECK_RC(create_node(path, "a", ZOO_PERSISTENT), ZOK);
  CHECK_RC(create_node(path, "b", ZOO_PERSISTENT), ZNODEEXISTS);
  return 0;
}

static int create_fails_with_nonode_when_parent_is_missing(void) {
  CHECK_RC(create_node(path_of("no-parent/child"), "a", ZOO_PERSISTENT), ZNONODE);
  return 0;
}

static int get_fails_with_nonode_for_a_missing_node(void) {
  char buffer[16];
  int length = sizeof buffer;
  struct Stat stat;
  CHECK_RC(zoo_get(compat_zh, path_of("missing"), 0, buffer, &length, &stat), ZNONODE);
  return 0;
}

static int set_updates_data_and_version(void) {
  const char *path = path_of("set");
  char buffer[COMPAT_DATA_MAX];
  int length = sizeof buffer;
  struct Stat stat, set_stat;
  CHECK_RC(create_node(path, "one", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_set2(compat_zh, path, "second", 6, 0, &set_stat), ZOK);
  CHECK(set_stat.version == 1, "version after one set is %d", set_stat.version);
  CHECK_RC(zoo_get(compat_zh, path, 0, buffer, &length, &stat), ZOK);
  CHECK(length == 6 && memcmp(buffer, "second", 6) == 0, "got '%.*s'", length, buffer);
  CHECK(stat.version == 1 && stat.mzxid == set_stat.mzxid, "version %d mzxid %lld vs %lld",
        stat.version, (long long)stat.mzxid, (long long)set_stat.mzxid);
  CHECK(stat.mzxid > stat.czxid, "mzxid %lld not after czxid %lld", (long long)stat.mzxid,
        (long long)stat.czxid);
  CHECK_RC(zoo_set(compat_zh, path, "any", 3, -1), ZOK);
  return 0;
}

static int set_fails_with_badversion_on_a_stale_version(void) {
  const char *path = path_of("set-stale");
  CHECK_RC(create_node(path, "one", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "two", 3, 0), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "three", 5, 0), ZBADVERSION);
  return 0;
}

static int set_fails_with_nonode_for_a_missing_node(void) {
  CHECK_RC(zoo_set(compat_zh, path_of("set-missing"), "x", 1, -1), ZNONODE);
  return 0;
}

static int delete_removes_the_node(void) {
  const char *path = path_of("delete");
  struct Stat stat;
  CHECK_RC(create_node(path, "x", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_delete(compat_zh, path, 0), ZOK);
  CHECK_RC(zoo_exists(compat_zh, path, 0, &stat), ZNONODE);
  CHECK_RC(zoo_delete(compat_zh, path, -1), ZNONODE);
  return 0;
}

static int delete_fails_with_badversion_on_a_stale_version(void) {
  const char *path = path_of("delete-stale");
  CHECK_RC(create_node(path, "x", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_delete(compat_zh, path, 3), ZBADVERSION);
  CHECK_RC(zoo_delete(compat_zh, path, -1), ZOK);
  return 0;
}

static int delete_fails_with_notempty_when_children_exist(void) {
  const char *parent = path_of("notempty");
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(create_node(path_of("notempty/child"), "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_delete(compat_zh, parent, -1), ZNOTEMPTY);
  return 0;
}

static int exists_reports_the_stat_of_a_node(void) {
  const char *path = path_of("exists");
  struct Stat stat, get_stat;
  char buffer[16];
  int length = sizeof buffer;
  time_t now = time(NULL);
  CHECK_RC(create_node(path, "abc", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_exists(compat_zh, path, 0, &stat), ZOK);
  CHECK_RC(zoo_get(compat_zh, path, 0, buffer, &length, &get_stat), ZOK);
  CHECK(stat.czxid == get_stat.czxid && stat.mzxid == get_stat.mzxid &&
            stat.pzxid == get_stat.pzxid && stat.version == get_stat.version &&
            stat.dataLength == get_stat.dataLength && stat.ctime == get_stat.ctime,
        "exists and get disagree on the stat");
  CHECK(stat.czxid == stat.mzxid && stat.czxid == stat.pzxid, "czxid %lld mzxid %lld pzxid %lld",
        (long long)stat.czxid, (long long)stat.mzxid, (long long)stat.pzxid);
  CHECK(stat.version == 0 && stat.cversion == 0 && stat.aversion == 0, "versions %d/%d/%d",
        stat.version, stat.cversion, stat.aversion);
  CHECK(stat.ephemeralOwner == 0 && stat.numChildren == 0 && stat.dataLength == 3,
        "owner %lld children %d length %d", (long long)stat.ephemeralOwner, stat.numChildren,
        stat.dataLength);
  CHECK(stat.ctime == stat.mtime, "ctime %lld mtime %lld", (long long)stat.ctime, (long long)stat.mtime);
  CHECK(llabs(stat.ctime / 1000 - (long long)now) < 300, "ctime %lld ms is not near now (%lld s)",
        (long long)stat.ctime, (long long)now);
  CHECK_RC(zoo_exists(compat_zh, path_of("exists-missing"), 0, &stat), ZNONODE);
  return 0;
}

static int children_are_listed_with_the_parent_stat(void) {
  const char *parent = path_of("children");
  struct String_vector children = {0};
  struct Stat stat, before;
  int found_a = 0, found_b = 0;
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_exists(compat_zh, parent, 0, &before), ZOK);
  CHECK_RC(create_node(path_of("children/a"), "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(create_node(path_of("children/b"), "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_get_children(compat_zh, parent, 0, &children), ZOK);
  CHECK(children.count == 2, "%d children", children.count);
  for (int i = 0; i < children.count; i++) {
    found_a |= strcmp(children.data[i], "a") == 0;
    found_b |= strcmp(children.data[i], "b") == 0;
  }
  deallocate_String_vector(&children);
  CHECK(found_a && found_b, "children are not named a and b");
  CHECK_RC(zoo_get_children2(compat_zh, parent, 0, &children, &stat), ZOK);
  deallocate_String_vector(&children);
  CHECK(stat.numChildren == 2 && stat.cversion == 2, "numChildren %d cversion %d", stat.numChildren,
        stat.cversion);
  CHECK(stat.pzxid > before.pzxid && stat.version == 0, "pzxid %lld (was %lld) version %d",
        (long long)stat.pzxid, (long long)before.pzxid, stat.version);
  CHECK_RC(zoo_get_children(compat_zh, path_of("children-missing"), 0, &children), ZNONODE);
  return 0;
}

static int sequential_nodes_get_ten_digit_suffixes_from_the_parent_cversion(void) {
  const char *parent = path_of("seq");
  char created[COMPAT_PATH_MAX];
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_create(compat_zh, path_of("seq/n-"), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_PERSISTENT_SEQUENTIAL, created, sizeof created), ZOK);
  CHECK(strcmp(created, path_of("seq/n-0000000000")) == 0, "first sequential node is %s", created);
  CHECK_RC(zoo_create(compat_zh, path_of("seq/n-"), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_PERSISTENT_SEQUENTIAL, created, sizeof created), ZOK);
  CHECK(strcmp(created, path_of("seq/n-0000000001")) == 0, "second sequential node is %s", created);
  /* A plain create bumps the parent's cversion, and so the next suffix. (What a delete does to
   * the counter is left out: ZooKeeper 3.8 bumps cversion on delete but not the next suffix.) */
  CHECK_RC(create_node(path_of("seq/plain"), "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_create(compat_zh, path_of("seq/"), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_PERSISTENT_SEQUENTIAL, created, sizeof created), ZOK);
  CHECK(strcmp(created, path_of("seq/0000000003")) == 0, "sequential node after a plain create is %s",
        created);
  return 0;
}

static int ephemeral_node_is_owned_by_the_session(void) {
  const char *path = path_of("eph");
  struct Stat stat;
  CHECK_RC(create_node(path, "e", ZOO_EPHEMERAL), ZOK);
  CHECK_RC(zoo_exists(compat_zh, path, 0, &stat), ZOK);
  CHECK(stat.ephemeralOwner == zoo_client_id(compat_zh)->client_id,
        "ephemeralOwner 0x%llx, session 0x%llx", (long long)stat.ephemeralOwner,
        (long long)zoo_client_id(compat_zh)->client_id);
  return 0;
}

static int ephemeral_node_cannot_have_children(void) {
  CHECK_RC(create_node(path_of("eph-parent"), "e", ZOO_EPHEMERAL), ZOK);
  CHECK_RC(create_node(path_of("eph-parent/child"), "", ZOO_PERSISTENT), ZNOCHILDRENFOREPHEMERALS);
  return 0;
}

static int ephemeral_sequential_node_gets_a_suffix_and_an_owner(void) {
  const char *parent = path_of("eph-seq");
  char created[COMPAT_PATH_MAX];
  struct Stat stat;
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_create(compat_zh, path_of("eph-seq/lock-"), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_EPHEMERAL_SEQUENTIAL, created, sizeof created), ZOK);
  CHECK(strcmp(created, path_of("eph-seq/lock-0000000000")) == 0, "created %s", created);
  CHECK_RC(zoo_exists(compat_zh, created, 0, &stat), ZOK);
  CHECK(stat.ephemeralOwner == zoo_client_id(compat_zh)->client_id, "ephemeralOwner 0x%llx",
        (long long)stat.ephemeralOwner);
  return 0;
}

static int ephemeral_nodes_vanish_when_their_session_closes(void) {
  const char *path = path_of("eph-close");
  struct Stat stat;
  int connected = 0;
  zhandle_t *other = zookeeper_init(compat_hosts, flag_watcher, COMPAT_SESSION_TIMEOUT_MS, NULL,
                                    &connected, 0);
  CHECK(other != NULL, "zookeeper_init failed: %s", strerror(errno));
  if (wait_flag(&connected, 1) != 0) {
    zookeeper_close(other);
    return fail_with("second session did not connect");
  }
  int rc = zoo_create(other, path, "e", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
  if (rc != ZOK) {
    zookeeper_close(other);
    return fail_with("create by the second session returned %s", zerror(rc));
  }
  CHECK_RC(zoo_exists(compat_zh, path, 0, &stat), ZOK);
  CHECK(stat.ephemeralOwner == zoo_client_id(other)->client_id, "owner is not the second session");
  CHECK_RC(zookeeper_close(other), ZOK);
  CHECK_RC(zoo_exists(compat_zh, path, 0, &stat), ZNONODE);
  return 0;
}

static int bad_paths_are_rejected_with_badarguments(void) {
  const char *bad[] = {"no-slash", "/trailing/", "/double//slash", "/dot/./x", "/dot/../x", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = create_node(bad[i], "", ZOO_PERSISTENT);
    CHECK(rc == ZBADARGUMENTS, "create '%s' returned %d (%s)", bad[i], rc, zerror(rc));
  }
  return 0;
}

static int data_watch_fires_changed_then_deleted(void) {
  const char *path = path_of("data-watch");
  char buffer[16];
  int length = sizeof buffer, next = 0;
  struct Stat stat;
  events_clear();
  CHECK_RC(create_node(path, "v0", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_wget(compat_zh, path, compat_watcher, NULL, buffer, &length, &stat), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "v1", 2, -1), ZOK);
  if (expect_event(&next, ZOO_CHANGED_EVENT, path) != 0) return -1;
  /* Watches are one-shot: set it again to see the delete. */
  length = sizeof buffer;
  CHECK_RC(zoo_wget(compat_zh, path, compat_watcher, NULL, buffer, &length, &stat), ZOK);
  CHECK_RC(zoo_delete(compat_zh, path, -1), ZOK);
  if (expect_event(&next, ZOO_DELETED_EVENT, path) != 0) return -1;
  return 0;
}

static int data_watch_fires_once_per_registration(void) {
  const char *path = path_of("one-shot");
  const char *marker = path_of("one-shot-marker");
  char buffer[16];
  int length = sizeof buffer, next = 0;
  struct Stat stat;
  events_clear();
  CHECK_RC(create_node(path, "v0", ZOO_PERSISTENT), ZOK);
  CHECK_RC(create_node(marker, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_wget(compat_zh, path, compat_watcher, NULL, buffer, &length, &stat), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "v1", 2, -1), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "v2", 2, -1), ZOK);
  /* A later watch on the marker: its event must come next, with no second event between. */
  CHECK_RC(zoo_wexists(compat_zh, marker, compat_watcher, NULL, &stat), ZOK);
  CHECK_RC(zoo_delete(compat_zh, marker, -1), ZOK);
  if (expect_event(&next, ZOO_CHANGED_EVENT, path) != 0) return -1;
  if (expect_event(&next, ZOO_DELETED_EVENT, marker) != 0) return -1;
  return 0;
}

static int exists_watch_on_a_missing_node_fires_created(void) {
  const char *path = path_of("exists-watch");
  struct Stat stat;
  int next = 0;
  events_clear();
  CHECK_RC(zoo_wexists(compat_zh, path, compat_watcher, NULL, &stat), ZNONODE);
  CHECK_RC(create_node(path, "", ZOO_PERSISTENT), ZOK);
  if (expect_event(&next, ZOO_CREATED_EVENT, path) != 0) return -1;
  CHECK_RC(zoo_wexists(compat_zh, path, compat_watcher, NULL, &stat), ZOK);
  CHECK_RC(zoo_set(compat_zh, path, "x", 1, -1), ZOK);
  if (expect_event(&next, ZOO_CHANGED_EVENT, path) != 0) return -1;
  return 0;
}

static int child_watch_fires_child_on_create_and_delete(void) {
  const char *parent = path_of("child-watch");
  struct String_vector children = {0};
  int next = 0;
  events_clear();
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_wget_children(compat_zh, parent, compat_watcher, NULL, &children), ZOK);
  deallocate_String_vector(&children);
  CHECK_RC(create_node(path_of("child-watch/kid"), "", ZOO_PERSISTENT), ZOK);
  if (expect_event(&next, ZOO_CHILD_EVENT, parent) != 0) return -1;
  CHECK_RC(zoo_wget_children(compat_zh, parent, compat_watcher, NULL, &children), ZOK);
  deallocate_String_vector(&children);
  /* A data change of the parent is not a child event. */
  CHECK_RC(zoo_set(compat_zh, parent, "x", 1, -1), ZOK);
  CHECK_RC(zoo_delete(compat_zh, path_of("child-watch/kid"), -1), ZOK);
  if (expect_event(&next, ZOO_CHILD_EVENT, parent) != 0) return -1;
  return 0;
}

static int child_watch_fires_deleted_when_the_parent_goes(void) {
  const char *parent = path_of("child-watch-parent");
  struct String_vector children = {0};
  int next = 0;
  events_clear();
  CHECK_RC(create_node(parent, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_wget_children(compat_zh, parent, compat_watcher, NULL, &children), ZOK);
  deallocate_String_vector(&children);
  CHECK_RC(zoo_delete(compat_zh, parent, -1), ZOK);
  if (expect_event(&next, ZOO_DELETED_EVENT, parent) != 0) return -1;
  return 0;
}

static int get_children2_with_a_watch_returns_the_stat(void) {
  const char *parent = path_of("children2-watch");
  struct String_vector children = {0};
  struct Stat stat;
  int next = 0;
  events_clear();
  CHECK_RC(create_node(parent, "p", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_wget_children2(compat_zh, parent, compat_watcher, NULL, &children, &stat), ZOK);
  deallocate_String_vector(&children);
  CHECK(stat.numChildren == 0 && stat.dataLength == 1, "numChildren %d dataLength %d",
        stat.numChildren, stat.dataLength);
  CHECK_RC(create_node(path_of("children2-watch/c"), "", ZOO_PERSISTENT), ZOK);
  if (expect_event(&next, ZOO_CHILD_EVENT, parent) != 0) return -1;
  return 0;
}

static int acl_of_an_open_node_is_world_anyone_all(void) {
  const char *path = path_of("acl");
  struct ACL_vector acl = {0};
  struct Stat stat;
  CHECK_RC(create_node(path, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_get_acl(compat_zh, path, &acl, &stat), ZOK);
  int ok = acl.count == 1 && acl.data[0].perms == ZOO_PERM_ALL &&
           strcmp(acl.data[0].id.scheme, "world") == 0 && strcmp(acl.data[0].id.id, "anyone") == 0;
  deallocate_ACL_vector(&acl);
  CHECK(ok, "acl is not a single world:anyone with all permissions");
  return 0;
}

struct sync_result {
  int done;
  int rc;
  char value[COMPAT_PATH_MAX];
};

static void sync_completion(int rc, const char *value, const void *data) {
  struct sync_result *result = (struct sync_result *)data;
  pthread_mutex_lock(&compat_events.lock);
  result->rc = rc;
  snprintf(result->value, sizeof result->value, "%s", value ? value : "");
  result->done = 1;
  pthread_cond_broadcast(&compat_events.changed);
  pthread_mutex_unlock(&compat_events.lock);
}

static int sync_completes_for_an_existing_path(void) {
  const char *path = path_of("sync");
  struct sync_result result = {0};
  CHECK_RC(create_node(path, "", ZOO_PERSISTENT), ZOK);
  CHECK_RC(zoo_async(compat_zh, path, sync_completion, &result), ZOK);
  CHECK(wait_flag(&result.done, 1) == 0, "sync did not complete within %d ms", COMPAT_WAIT_MS);
  CHECK(result.rc == ZOK, "sync completed with %d (%s)", result.rc, zerror(result.rc));
  CHECK(strcmp(result.value, path) == 0, "sync returned path '%s'", result.value);
  return 0;
}

static int writes_of_one_client_are_seen_in_order(void) {
  const char *path = path_of("fifo");
  char buffer[32];
  int length;
  struct Stat stat;
  CHECK_RC(create_node(path, "0", ZOO_PERSISTENT), ZOK);
  for (int i = 1; i <= 50; i++) {
    char value[16];
    snprintf(value, sizeof value, "%d", i);
    CHECK_RC(zoo_set(compat_zh, path, value, (int)strlen(value), i - 1), ZOK);
  }
  length = sizeof buffer;
  CHECK_RC(zoo_get(compat_zh, path, 0, buffer, &length, &stat), ZOK);
  CHECK(length == 2 && memcmp(buffer, "50", 2) == 0 && stat.version == 50, "got '%.*s' version %d",
        length, buffer, stat.version);
  return 0;
}

static int large_data_round_trips_intact(void) {
  const char *path = path_of("large");
  enum { LARGE_BYTES = 512 * 1024 };
  char *data = malloc(LARGE_BYTES), *back = malloc(LARGE_BYTES);
  int length = LARGE_BYTES, rc_create, rc_get;
  struct Stat stat;
  CHECK(data && back, "out of memory");
  for (int i = 0; i < LARGE_BYTES; i++) data[i] = (char)(i * 7 + 3);
  rc_create = zoo_create(compat_zh, path, data, LARGE_BYTES, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                         NULL, 0);
  rc_get = rc_create == ZOK ? zoo_get(compat_zh, path, 0, back, &length, &stat) : rc_create;
  int same = rc_get == ZOK && length == LARGE_BYTES && memcmp(data, back, LARGE_BYTES) == 0;
  free(data);
  free(back);
  CHECK_RC(rc_create, ZOK);
  CHECK_RC(rc_get, ZOK);
  CHECK(same, "512 KiB came back as %d different bytes", length);
  return 0;
}

struct compat_case {
  const char *name;
  int (*run)(void);
};

#define CASE(fn) {#fn, fn}
static const struct compat_case compat_cases[] = {
    CASE(create_then_get_returns_the_data),
    CASE(create_returns_the_created_path),
    CASE(create_with_null_data_gives_an_empty_node),
    CASE(create_fails_with_nodeexists_when_path_exists),
    CASE(create_fails_with_nonode_when_parent_is_missing),
    CASE(get_fails_with_nonode_for_a_missing_node),
    CASE(set_updates_data_and_version),
    CASE(set_fails_with_badversion_on_a_stale_version),
    CASE(set_fails_with_nonode_for_a_missing_node),
    CASE(delete_removes_the_node),
    CASE(delete_fails_with_badversion_on_a_stale_version),
    CASE(delete_fails_with_notempty_when_children_exist),
    CASE(exists_reports_the_stat_of_a_node),
    CASE(children_are_listed_with_the_parent_stat),
    CASE(sequential_nodes_get_ten_digit_suffixes_from_the_parent_cversion),
    CASE(ephemeral_node_is_owned_by_the_session),
    CASE(ephemeral_node_cannot_have_children),
    CASE(ephemeral_sequential_node_gets_a_suffix_and_an_owner),
    CASE(ephemeral_nodes_vanish_when_their_session_closes),
    CASE(bad_paths_are_rejected_with_badarguments),
    CASE(data_watch_fires_changed_then_deleted),
    CASE(data_watch_fires_once_per_registration),
    CASE(exists_watch_on_a_missing_node_fires_created),
    CASE(child_watch_fires_child_on_create_and_delete),
    CASE(child_watch_fires_deleted_when_the_parent_goes),
    CASE(get_children2_with_a_watch_returns_the_stat),
    CASE(acl_of_an_open_node_is_world_anyone_all),
    CASE(sync_completes_for_an_existing_path),
    CASE(writes_of_one_client_are_seen_in_order),
    CASE(large_data_round_trips_intact),
};

int main(int argc, char **argv) {
  const size_t case_count = sizeof compat_cases / sizeof compat_cases[0];
  const char *filter = argc > 2 ? argv[2] : NULL;
  int failed = 0, number = 0, selected = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s HOST:PORT [CASE_NAME_SUBSTRING]\n", argv[0]);
    return 2;
  }
  compat_hosts = argv[1];
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  for (size_t i = 0; i < case_count; i++) selected += !filter || strstr(compat_cases[i].name, filter);
  printf("1..%d\n", selected);
  fflush(stdout);

  compat_zh = zookeeper_init(compat_hosts, compat_watcher, COMPAT_SESSION_TIMEOUT_MS, NULL, NULL, 0);
  int connected = compat_zh != NULL && wait_flag(&compat_events.connected, 1) == 0;
  snprintf(compat_root, sizeof compat_root, "/compat-c-%ld", (long)getpid());
  int root_rc = connected ? zoo_create(compat_zh, compat_root, "", 0, &ZOO_OPEN_ACL_UNSAFE,
                                       ZOO_PERSISTENT, NULL, 0)
                          : ZCONNECTIONLOSS;

  for (size_t i = 0; i < case_count; i++) {
    if (filter && !strstr(compat_cases[i].name, filter)) continue;
    number++;
    compat_failure[0] = '\0';
    int rc;
    if (!connected) {
      rc = fail_with("could not connect to %s within %d ms", compat_hosts, COMPAT_WAIT_MS);
    } else if (root_rc != ZOK) {
      rc = fail_with("could not create %s: %s", compat_root, zerror(root_rc));
    } else {
      rc = compat_cases[i].run();
    }
    if (rc == 0) {
      printf("ok %d %s\n", number, compat_cases[i].name);
    } else {
      failed++;
      printf("not ok %d %s\n# %s\n", number, compat_cases[i].name, compat_failure);
    }
    fflush(stdout);
  }
  if (compat_zh) zookeeper_close(compat_zh);
  return failed ? 1 : 0;
}
