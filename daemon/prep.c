/*
 * prep: the leader's prep stage (see prep.h).  This file owns the overlay of
 * pending changes and ZooKeeper's validation rules for every write request
 * (PrepRequestProcessor.pRequest2Txn and pRequest2TxnCreate), in ZooKeeper's
 * order, so each failing request reports the same error ZooKeeper would.
 *
 * The overlay.  A record is the state a node (or a session) will have after
 * one pending txn: stat as persisted, child count, ACL, or "deleted".
 * Records are kept in zxid order in a FIFO (so prep_applied drops from the
 * head) and the newest record of each key is in a hash map; a record
 * remembers the one it shadows, so a failed multi can pop its own records off
 * the tail and put the shadowed ones back (ZooKeeper's
 * rollbackPendingChanges).  Keys are node paths ("/...") or, for sessions,
 * "#" and the id in hex, which no path can be.
 *
 * Invariants:
 *  1. FIFO zxids never decrease; the map holds exactly the records with no
 *     newer record of the same key;
 *  2. a record's shadowed record is older and still in the FIFO, or NULL.
 */
#include "prep.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl_match.h"
#include "assert.h"
#include "log.h"
#include "htable.h"
#include "path.h"
#include "quota.h"

#define PREP_INITIAL_BUCKETS 256
/* Room for "%010d" of any int32 plus the NUL. */
#define PREP_SEQUENCE_BYTES 12
/* ZooKeeper logs quota warnings through a RateLogger: a warning equal to the
 * previous one is held back for this long. */
#define PREP_QUOTA_LOG_INTERVAL_MS 100
/* Longest quota warning kept for that comparison (longer ones are cut). */
#define PREP_QUOTA_MESSAGE_BYTES 512

/* What a node will be: the fields prep needs, as ZooKeeper's ChangeRecord. */
struct node_view {
    bool exists;
    int64_t ephemeral_owner; /* as persisted */
    int32_t version, cversion, aversion;
    int64_t pzxid;
    int64_t mzxid, mtime; /* kept for completeness of the view */
    int32_t child_count;
    int32_t data_bytes;   /* length of the data (0 for null), for quotas */
    struct zn_acl_vec acl; /* borrowed from the record or the tree */
};

struct prep_record {
    struct zn_hlink link; /* in prep.map while in_map */
    struct prep_record *fifo_prev, *fifo_next;
    struct prep_record *shadowed;    /* older record of the same key */
    struct prep_record *shadowed_by; /* newer record of the same key */
    bool in_map;
    int64_t zxid;
    struct node_view view;
    int32_t session_timeout_ms;      /* session records */
    struct zn_acl *acl_items;        /* owned copy behind view.acl */
    size_t key_len;
    char key[];
};

struct prep {
    const struct tree *tree;
    struct prep_options options;
    struct zn_htable map; /* the newest record of each key */
    size_t record_count;
    struct prep_record *head, *tail;
    int64_t last_zxid;
    char last_quota_message[PREP_QUOTA_MESSAGE_BYTES];
    int64_t last_quota_message_ms;
    uint64_t quota_messages_held;
    bool reconfig_enabled;     /* reconfigEnabled (prep_set_reconfig_enabled) */
};

/* ------------------------------------------------------------------ overlay */

static bool record_has_key(const struct zn_hlink *l, const void *key)
{
    return zn_hkey_is(key, ZN_HENTRY(l, const struct prep_record, link)->key,
                      ZN_HENTRY(l, const struct prep_record, link)->key_len);
}

/* The newest record of the key, or NULL. */
static struct prep_record *map_find(const struct prep *p, const char *key, size_t len)
{
    struct zn_hlink *l = zn_htable_find(&p->map, zn_hash(key, len), record_has_key, &(struct zn_hkey){key, len});
    return l ? ZN_HENTRY(l, struct prep_record, link) : NULL;
}

static void map_remove(struct prep *p, struct prep_record *r)
{
    zn_htable_remove(&p->map, &r->link);
    r->in_map = false;
}

static void map_insert(struct prep *p, struct prep_record *r)
{
    zn_htable_insert(&p->map, &r->link, r->link.hash);
    r->in_map = true;
}

static void record_free(struct prep_record *r)
{
    free(r->acl_items);
    free(r);
}

/* Deep copy of an ACL into one malloc'd block (items then strings). */
static int acl_dup(const struct zn_acl_vec *src, struct zn_acl **items_out, struct zn_acl_vec *dst)
{
    *items_out = NULL;
    dst->count = src->count;
    dst->items = NULL;
    if (src->count <= 0)
        return 0;
    size_t size = sizeof(struct zn_acl) * (size_t)src->count;
    for (int32_t i = 0; i < src->count; i++) {
        const struct zn_id *id = &src->items[i].id;
        size += (id->scheme ? strlen(id->scheme) + 1 : 0) + (id->id ? strlen(id->id) + 1 : 0);
    }
    struct zn_acl *items = malloc(size);
    if (items == NULL)
        return ZN_NOMEMORY;
    char *s = (char *)(items + src->count);
    for (int32_t i = 0; i < src->count; i++) {
        const struct zn_id *id = &src->items[i].id;
        items[i].perms = src->items[i].perms;
        items[i].id.scheme = items[i].id.id = NULL;
        if (id->scheme) {
            items[i].id.scheme = strcpy(s, id->scheme);
            s += strlen(s) + 1;
        }
        if (id->id) {
            items[i].id.id = strcpy(s, id->id);
            s += strlen(s) + 1;
        }
    }
    *items_out = items;
    dst->items = items;
    return 0;
}

/* Adds a record (the key's newest state) for `zxid`. */
static int record_add(struct prep *p, int64_t zxid, const char *key, size_t len, const struct node_view *view,
                      int32_t session_timeout_ms)
{
    ZN_ASSERT(p->tail == NULL || p->tail->zxid <= zxid);
    struct prep_record *r = calloc(1, sizeof(*r) + len + 1);
    if (r == NULL)
        return ZN_NOMEMORY;
    memcpy(r->key, key, len);
    r->key[len] = '\0';
    r->key_len = len;
    r->link.hash = zn_hash(key, len);
    r->zxid = zxid;
    r->view = *view;
    r->session_timeout_ms = session_timeout_ms;
    if (acl_dup(&view->acl, &r->acl_items, &r->view.acl) != 0) {
        free(r);
        return ZN_NOMEMORY;
    }
    struct prep_record *old = map_find(p, key, len);
    if (old) {
        map_remove(p, old);
        old->shadowed_by = r;
        r->shadowed = old;
    }
    map_insert(p, r);
    r->fifo_prev = p->tail;
    if (p->tail)
        p->tail->fifo_next = r;
    else
        p->head = r;
    p->tail = r;
    p->record_count++;
    return 0;
}

/* Removes the newest record, putting back the one it shadowed. */
static void record_pop_tail(struct prep *p)
{
    struct prep_record *r = p->tail;
    ZN_ASSERT(r != NULL && r->shadowed_by == NULL && r->in_map);
    map_remove(p, r);
    if (r->shadowed) {
        r->shadowed->shadowed_by = NULL;
        map_insert(p, r->shadowed);
    }
    p->tail = r->fifo_prev;
    if (p->tail)
        p->tail->fifo_next = NULL;
    else
        p->head = NULL;
    p->record_count--;
    record_free(r);
}

static void rollback_zxid(struct prep *p, int64_t zxid)
{
    while (p->tail && p->tail->zxid == zxid)
        record_pop_tail(p);
}

void prep_applied(struct prep *p, int64_t zxid)
{
    ZN_ASSERT(p != NULL);
    while (p->head && p->head->zxid <= zxid) {
        struct prep_record *r = p->head;
        if (r->in_map)
            map_remove(p, r);
        if (r->shadowed_by)
            r->shadowed_by->shadowed = NULL;
        p->head = r->fifo_next;
        if (p->head)
            p->head->fifo_prev = NULL;
        else
            p->tail = NULL;
        p->record_count--;
        record_free(r);
    }
}

void prep_reset(struct prep *p)
{
    ZN_ASSERT(p != NULL);
    while (p->head) {
        struct prep_record *r = p->head;
        p->head = r->fifo_next;
        record_free(r);
    }
    p->tail = NULL;
    zn_htable_clear(&p->map);
    p->record_count = 0;
    p->last_zxid = 0;
}

size_t prep_pending_count(const struct prep *p) { return p->record_count; }

int prep_for_each_record(const struct prep *p, prep_record_fn fn, void *ctx)
{
    for (const struct prep_record *r = p->head; r; r = r->fifo_next) {
        struct prep_record_info info = {r, r->shadowed, r->shadowed_by, r->key, r->key_len, r->zxid, r->in_map};
        int rc = fn(ctx, &info);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const void *prep_find_record(const struct prep *p, const char *key, size_t len) { return map_find(p, key, len); }

struct prep *prep_new(const struct tree *tree)
{
    ZN_ASSERT(tree != NULL);
    struct prep *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tree = tree;
    if (zn_htable_init(&p->map, PREP_INITIAL_BUCKETS) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void prep_free(struct prep *p)
{
    if (p == NULL)
        return;
    prep_reset(p);
    zn_htable_free(&p->map);
    free(p);
}

void prep_set_options(struct prep *p, const struct prep_options *options)
{
    ZN_ASSERT(p != NULL && options != NULL);
    p->options = *options;
}

/* ------------------------------------------------------------------- views */

/* The node at path[0..len) as it will be (ZooKeeper's getRecordForPath);
 * len 0 is ZooKeeper's "" alias of the root. */
static struct node_view lookup(const struct prep *p, const char *path, size_t len)
{
    struct node_view v;
    memset(&v, 0, sizeof(v));
    if (len == 0) {
        path = "/";
        len = 1;
    }
    const struct prep_record *r = map_find(p, path, len);
    if (r)
        return r->view;
    char small[256];
    char *copy = len < sizeof(small) ? small : malloc(len + 1);
    if (copy == NULL)
        return v; /* out of memory reads as absent; callers then fail the request */
    memcpy(copy, path, len);
    copy[len] = '\0';
    const struct tree_node *n = tree_get(p->tree, copy);
    if (copy != small)
        free(copy);
    if (n == NULL)
        return v;
    struct zn_stat st;
    tree_node_stat(n, &st);
    v.exists = true;
    v.ephemeral_owner = tree_node_raw_owner(n);
    v.version = st.version;
    v.aversion = st.aversion;
    v.child_count = st.num_children;
    /* The persisted cversion (creates), not the client's view. */
    v.cversion = (int32_t)(((int64_t)st.cversion + st.num_children) / 2);
    v.pzxid = st.pzxid;
    v.mzxid = st.mzxid;
    v.mtime = st.mtime;
    v.data_bytes = st.data_length;
    v.acl = tree_node_acl(n);
    return v;
}

static void session_key(int64_t session_id, char key[20])
{
    snprintf(key, 20, "#%016llx", (unsigned long long)session_id);
}

/* 1: the session exists and is not closing; 0: it does not or is closing. */
static bool session_live(const struct prep *p, int64_t session_id)
{
    char key[20];
    session_key(session_id, key);
    const struct prep_record *r = map_find(p, key, strlen(key));
    if (r)
        return r->view.exists;
    return tree_session_exists(p->tree, session_id);
}

static bool owner_is_session(int64_t owner)
{
    return owner != 0 && owner != TREE_CONTAINER_OWNER &&
           (owner & TREE_TTL_OWNER_MASK) != TREE_TTL_OWNER_MASK;
}

/* ----------------------------------------------------------------- helpers */

static char *arena_strndup(struct zn_arena *arena, const char *s, size_t len)
{
    char *copy = zn_arena_alloc(arena, len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static int copy_data(struct zn_arena *arena, const struct jute_buf *src, struct jute_buf *dst)
{
    dst->len = src->len < 0 ? -1 : src->len;
    dst->data = (const uint8_t *)"";
    if (src->len > 0) {
        uint8_t *d = zn_arena_alloc(arena, (size_t)src->len);
        if (d == NULL)
            return ZN_NOMEMORY;
        memcpy(d, src->data, (size_t)src->len);
        dst->data = d;
    }
    return 0;
}

/* zks.checkACL for the caller (none for the server's own writes). */
static int check_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl,
                     int32_t perm)
{
    if (!p->options.enforce_acl || who->session_id == 0)
        return 0;
    return acl_check(acl, perm, who->ids, who->id_count, false);
}

/* ZooKeeper's checkAndIncVersion: -1 matches any; the new version skips -1
 * when it wraps (ZOOKEEPER-4743). */
static int check_and_inc_version(int32_t current, int32_t expected, int32_t *next)
{
    if (expected != -1 && expected != current)
        return ZN_BADVERSION;
    int32_t v = (int32_t)((uint32_t)current + 1u);
    *next = v == -1 ? 0 : v;
    return 0;
}

/* DigestAuthenticationProvider.isValid: "user:hash", exactly two parts after
 * Java's split(":"), which drops trailing empty parts. */
static bool digest_id_valid(const char *id)
{
    const char *colon = strchr(id, ':');
    return colon != NULL && strchr(colon + 1, ':') == NULL && colon[1] != '\0';
}

/* SASLAuthenticationProvider.isValid: new KerberosName(id) does not throw,
 * that is, a name without '@', or "primary[/instance]@REALM" with no
 * further '/' or '@'. */
static bool sasl_id_valid(const char *id)
{
    const char *at = strchr(id, '@');
    if (at == NULL)
        return true;
    if (strchr(at + 1, '@') || strchr(at + 1, '/'))
        return false;
    const char *slash = memchr(id, '/', (size_t)(at - id));
    return slash == NULL || memchr(slash + 1, '/', (size_t)(at - slash - 1)) == NULL;
}

/* IPAuthenticationProvider.isValid: an address, optionally "/bits". */
static bool ip_id_valid(const char *id)
{
    char addr[64];
    const char *slash = strchr(id, '/');
    size_t len = slash ? (size_t)(slash - id) : strlen(id);
    if (len == 0 || len >= sizeof(addr))
        return false;
    memcpy(addr, id, len);
    addr[len] = '\0';
    unsigned char buf[16];
    int max_bits;
    if (inet_pton(AF_INET, addr, buf) == 1)
        max_bits = 32;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        max_bits = 128;
    else
        return false;
    if (slash == NULL)
        return true;
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    return slash[1] != '\0' && *end == '\0' && bits >= 0 && bits <= max_bits;
}

static bool acl_equal(const struct zn_acl *a, const struct zn_acl *b)
{
    if (a->perms != b->perms)
        return false;
    if ((a->id.scheme == NULL) != (b->id.scheme == NULL) || (a->id.id == NULL) != (b->id.id == NULL))
        return false;
    return (!a->id.scheme || strcmp(a->id.scheme, b->id.scheme) == 0) &&
           (!a->id.id || strcmp(a->id.id, b->id.id) == 0);
}

/* ZooKeeper's fixupACL: drop duplicates, refuse null or empty lists and
 * unknown schemes or malformed ids, expand "auth" to the session's ids.
 * The result lives in the arena. */
static bool authenticated_scheme(const char *scheme)
{
    /* ip is not "authenticated", and super has no provider */
    return strcmp(scheme, "digest") == 0 || strcmp(scheme, "x509") == 0 || strcmp(scheme, "sasl") == 0;
}

/* The caller's authenticated ids, each once (by id), into the arena: what
 * fixupACL expands the "auth" scheme to. */
static int auth_ids(const struct prep_caller *who, struct zn_arena *arena, struct zn_id **out, int32_t *count)
{
    *count = 0;
    *out = NULL;
    if (who->id_count == 0)
        return 0;
    *out = zn_arena_alloc(arena, sizeof **out * who->id_count);
    if (*out == NULL)
        return ZN_NOMEMORY;
    for (size_t i = 0; i < who->id_count; i++) {
        if (!authenticated_scheme(who->ids[i].scheme))
            continue;
        bool seen = false;
        for (int32_t k = 0; k < *count && !seen; k++)
            seen = strcmp((*out)[k].id, who->ids[i].id) == 0;
        if (!seen)
            (*out)[(*count)++] = who->ids[i];
    }
    return 0;
}

/* ZooKeeper's fixupACL: drop duplicates, refuse null or empty lists and
 * unknown schemes or malformed ids, expand "auth" to the caller's
 * authenticated ids.  The result lives in the arena. */
static int fixup_acl(const struct prep *p, const struct prep_caller *who, const struct zn_acl_vec *acl,
                     struct zn_arena *arena, struct zn_acl_vec *out)
{
    if (acl->count <= 0 || acl->items == NULL)
        return ZN_INVALIDACL;
    struct zn_id *auth = NULL;
    int32_t auth_count = 0;
    if (auth_ids(who, arena, &auth, &auth_count) != 0)
        return ZN_NOMEMORY;
    size_t cap = (size_t)acl->count * (size_t)(auth_count > 0 ? auth_count : 1);
    out->items = zn_arena_alloc(arena, sizeof(*out->items) * cap);
    if (out->items == NULL)
        return ZN_NOMEMORY;
    out->count = 0;
    for (int32_t i = 0; i < acl->count; i++) {
        const struct zn_acl *a = &acl->items[i];
        bool duplicate = false;
        for (int32_t j = 0; j < i && !duplicate; j++)
            duplicate = acl_equal(a, &acl->items[j]);
        if (duplicate)
            continue;
        /* ZooKeeper refuses a null scheme; "auth" ignores its id, which
         * clients (kazoo) send as a null string. */
        if (a->id.scheme == NULL || (a->id.id == NULL && strcmp(a->id.scheme, "auth") != 0))
            return ZN_INVALIDACL;
        if (strcmp(a->id.scheme, "world") == 0 && strcmp(a->id.id, "anyone") == 0) {
            out->items[out->count++] = *a;
        } else if (strcmp(a->id.scheme, "auth") == 0) {
            if (auth_count == 0)
                return ZN_INVALIDACL;
            for (int32_t k = 0; k < auth_count; k++) {
                out->items[out->count].perms = a->perms;
                out->items[out->count].id = auth[k];
                out->count++;
            }
        } else if (strcmp(a->id.scheme, "digest") == 0 ? digest_id_valid(a->id.id)
                   : strcmp(a->id.scheme, "ip") == 0   ? ip_id_valid(a->id.id)
                   : strcmp(a->id.scheme, "x509") == 0 ? p->options.x509_enabled && strchr(a->id.id, '=')
                   : strcmp(a->id.scheme, "sasl") == 0 ? p->options.sasl_enabled && sasl_id_valid(a->id.id)
                                                       : false) {
            out->items[out->count++] = *a;
        } else {
            return ZN_INVALIDACL; /* no such provider, or an id it refuses */
        }
    }
    /* The ids must outlive the caller's borrow: copy every string in. */
    for (int32_t i = 0; i < out->count; i++) {
        struct zn_id *id = &out->items[i].id;
        id->scheme = arena_strndup(arena, id->scheme, strlen(id->scheme));
        id->id = arena_strndup(arena, id->id, strlen(id->id));
        if (id->scheme == NULL || id->id == NULL)
            return ZN_NOMEMORY;
    }
    return 0;
}

/* ---------------------------------------------------------- request types */

struct prep_call {
    struct prep *p;
    const struct prep_caller *who;
    int64_t zxid;
    int64_t now_ms;
    struct zn_arena *arena;
    int64_t txn_time_ms; /* the txn header's time: now_ms, or setDataTime's mtime */
};

/* RateLogger.rateLimitLog: a warning equal to the last one within the
 * interval is counted, not logged. */
static void quota_warn(struct prep_call *c, const char *message)
{
    struct prep *p = c->p;
    if (strcmp(message, p->last_quota_message) == 0 &&
        c->now_ms - p->last_quota_message_ms < PREP_QUOTA_LOG_INTERVAL_MS) {
        p->quota_messages_held++;
        return;
    }
    if (p->quota_messages_held > 0)
        ZN_WARN("%s (and %llu more like it)", p->last_quota_message, (unsigned long long)p->quota_messages_held);
    snprintf(p->last_quota_message, sizeof(p->last_quota_message), "%s", message);
    p->last_quota_message_ms = c->now_ms;
    p->quota_messages_held = 0;
    ZN_WARN("%s", message);
}

/* One dimension of ZooKeeper's checkQuota: warns past the limit, and refuses
 * past a hard one. */
static int quota_check_one(struct prep_call *c, const char *prefix, const char *what, int64_t current,
                           int64_t diff, int64_t soft, int64_t hard)
{
    int64_t now = current + diff;
    bool is_hard = hard > -1;
    int64_t limit = is_hard ? hard : soft;
    if (now <= limit)
        return 0;
    char message[PREP_QUOTA_MESSAGE_BYTES];
    snprintf(message, sizeof(message), "Quota exceeded: %s [current %s=%lld, %s%sLimit=%lld]", prefix,
             what, (long long)now, is_hard ? "hard" : "soft", strcmp(what, "count") == 0 ? "Count" : "Byte",
             (long long)limit);
    quota_warn(c, message);
    return is_hard ? ZN_QUOTAEXCEEDED : 0;
}

/* ZooKeeperServer.checkQuota (enforceQuota only): against the committed
 * tree's limits and stats, as ZooKeeper reads them, not the overlay. */
static int check_quota(struct prep_call *c, const char *path, int64_t bytes_diff, int64_t count_diff)
{
    const struct prep *p = c->p;
    if (!p->options.enforce_quota)
        return 0;
    const char *prefix = tree_quota_prefix(p->tree, path);
    if (prefix == NULL)
        return 0;
    size_t len = strlen(QUOTA_ROOT) + strlen(prefix) + 1 + strlen(QUOTA_LIMIT_NODE);
    char *node_path = malloc(len + 1);
    if (node_path == NULL)
        return ZN_NOMEMORY;
    struct quota_record limits, stats;
    snprintf(node_path, len + 1, "%s%s/%s", QUOTA_ROOT, prefix, QUOTA_LIMIT_NODE);
    const struct tree_node *limit_node = tree_get(p->tree, node_path);
    snprintf(node_path, len + 1, "%s%s/%s", QUOTA_ROOT, prefix, QUOTA_STAT_NODE);
    const struct tree_node *stat_node = tree_get(p->tree, node_path);
    free(node_path);
    /* ZooKeeper logs a missing node and lets the write through; an
     * unparsable one would throw there, and lets it through here. */
    if (limit_node == NULL)
        return 0;
    struct jute_buf data = tree_node_data(limit_node);
    if (quota_record_parse(data.data, data.len, &limits) != 0)
        return 0;
    int64_t count_soft = quota_record_get(&limits, QUOTA_KEY_COUNT);
    int64_t count_hard = quota_record_get(&limits, QUOTA_KEY_COUNT_HARD);
    int64_t bytes_soft = quota_record_get(&limits, QUOTA_KEY_BYTES);
    int64_t bytes_hard = quota_record_get(&limits, QUOTA_KEY_BYTES_HARD);
    bool check_count = count_diff != 0 && (count_soft > -1 || count_hard > -1);
    bool check_bytes = bytes_diff != 0 && (bytes_soft > -1 || bytes_hard > -1);
    if (!check_count && !check_bytes)
        return 0;
    if (stat_node == NULL)
        return 0;
    data = tree_node_data(stat_node);
    if (quota_record_parse(data.data, data.len, &stats) != 0)
        return 0;
    int rc = 0;
    if (check_count)
        rc = quota_check_one(c, prefix, "count", quota_record_get(&stats, QUOTA_KEY_COUNT), count_diff, count_soft,
                             count_hard);
    if (rc == 0 && check_bytes)
        rc = quota_check_one(c, prefix, "bytes", quota_record_get(&stats, QUOTA_KEY_BYTES), bytes_diff, bytes_soft,
                             bytes_hard);
    return rc;
}

static bool create_mode_valid(int32_t flags) { return flags >= ZN_CREATE_PERSISTENT && flags <= ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL; }
static bool mode_sequential(int32_t f)
{
    return f == ZN_CREATE_SEQUENTIAL || f == ZN_CREATE_EPHEMERAL_SEQUENTIAL || f == ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
}
static bool mode_ephemeral(int32_t f) { return f == ZN_CREATE_EPHEMERAL || f == ZN_CREATE_EPHEMERAL_SEQUENTIAL; }
static bool mode_ttl(int32_t f) { return f == ZN_CREATE_PERSISTENT_WITH_TTL || f == ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL; }

/*
 * The znodefs "kind" extension: a create may carry ZN_CREATE_KIND_FILE or
 * ZN_CREATE_KIND_DIRECTORY in its flags (proto.h).  Prep takes the bits off
 * and stores the kind with the node through the txn op (every member applies
 * the same txn, and snapshots carry the kind).  ZooKeeper clients never see
 * it: only GETCHILDRENKINDS (read.c) answers it.  Both bits at once are no
 * kind and no create mode: BADARGUMENTS, as any unknown mode; on any other
 * request the bits are refused by its decoder (opcodes without flags).
 */
_Static_assert((int)ZN_KIND_UNKNOWN == (int)ZN_NODE_KIND_UNKNOWN && (int)ZN_KIND_FILE == (int)ZN_NODE_KIND_FILE &&
                   (int)ZN_KIND_DIRECTORY == (int)ZN_NODE_KIND_DIRECTORY,
               "the wire's kind bytes are the stored kinds");

/* The kind a create's flags carry (ZN_NODE_KIND_UNKNOWN when none). */
static int kind_from_flags(int32_t flags, int32_t *kind)
{
    int32_t bits = flags & ZN_CREATE_KIND_MASK;
    *kind = bits == 0                      ? ZN_NODE_KIND_UNKNOWN
            : bits == ZN_CREATE_KIND_FILE   ? ZN_NODE_KIND_FILE
            : bits == ZN_CREATE_KIND_DIRECTORY ? ZN_NODE_KIND_DIRECTORY
                                             : -1;
    return *kind < 0 ? ZN_BADARGUMENTS : 0;
}

/* pRequest2TxnCreate */
static int prep_create(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    int32_t kind;
    if (kind_from_flags(req->flags, &kind) != 0)
        return ZN_BADARGUMENTS;
    int32_t flags = req->flags & ~ZN_CREATE_KIND_MASK;
    if (!create_mode_valid(flags))
        return ZN_BADARGUMENTS; /* CreateMode.fromFlag */
    int64_t ttl = req->type == ZN_OP_CREATETTL ? req->ttl : -1;
    /* validateCreateRequest */
    if (mode_ttl(flags) && !p->options.ttl_enabled)
        return ZN_UNIMPLEMENTED;
    if (mode_ttl(flags) ? (ttl <= 0 || ttl > TREE_TTL_MAX_MS) : ttl >= 0)
        return ZN_BADARGUMENTS;
    if (mode_ephemeral(flags) && c->who->session_id != 0 && !session_live(p, c->who->session_id))
        return ZN_SESSIONEXPIRED;
    /* validatePathForCreate */
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0)
        return ZN_BADARGUMENTS;
    struct zn_acl_vec acl;
    int rc = fixup_acl(p, c->who, &req->acl, c->arena, &acl);
    if (rc != 0)
        return rc;
    struct node_view parent = lookup(p, req->path, (size_t)parent_len);
    if (!parent.exists)
        return ZN_NONODE;
    char *path = arena_strndup(c->arena, req->path, len);
    if (path == NULL)
        return ZN_NOMEMORY;
    rc = check_acl(p, c->who, &parent.acl, ZN_PERM_CREATE);
    if (rc != 0)
        return rc;
    if (mode_sequential(flags)) {
        char *full = zn_arena_alloc(c->arena, len + PREP_SEQUENCE_BYTES);
        if (full == NULL)
            return ZN_NOMEMORY;
        snprintf(full, len + PREP_SEQUENCE_BYTES, "%s%010d", path, parent.cversion);
        path = full;
        len = strlen(full);
    }
    if (path_validate(path, false) != 0)
        return ZN_BADARGUMENTS;
    if (lookup(p, path, len).exists)
        return ZN_NODEEXISTS;
    if (owner_is_session(parent.ephemeral_owner))
        return ZN_NOCHILDRENFOREPHEMERALS;
    if (req->data.len > PREP_MAX_DATA_BYTES || parent.child_count >= TREE_MAX_CHILDREN)
        return ZN_BADARGUMENTS;
    rc = check_quota(c, path, req->data.len > 0 ? req->data.len : 0, 1);
    if (rc != 0)
        return rc;
    int32_t new_cversion = parent.cversion + 1;

    op->type = req->type;
    op->path = path;
    if (copy_data(c->arena, &req->data, &op->data) != 0)
        return ZN_NOMEMORY;
    op->acl = acl;
    op->parent_cversion = new_cversion;
    op->kind = kind;
    op->ttl_ms = req->type == ZN_OP_CREATETTL ? ttl : -1;
    op->ephemeral_owner = 0;
    int64_t owner = 0;
    if (req->type == ZN_OP_CREATECONTAINER) {
        owner = TREE_CONTAINER_OWNER;
    } else if (req->type == ZN_OP_CREATETTL) {
        owner = TREE_TTL_OWNER_MASK | ttl;
    } else if (mode_ephemeral(flags)) {
        owner = op->ephemeral_owner = c->who->session_id;
    }

    /* The parent's record, then the node's (ZooKeeper's order). */
    long pl = path_parent_len(path, len);
    parent.child_count++;
    parent.cversion = new_cversion;
    parent.pzxid = c->zxid;
    rc = record_add(p, c->zxid, pl == 0 ? "/" : path, pl == 0 ? 1 : (size_t)pl, &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view node;
    memset(&node, 0, sizeof(node));
    node.exists = true;
    node.ephemeral_owner = owner;
    node.pzxid = node.mzxid = c->zxid;
    node.mtime = c->now_ms;
    node.data_bytes = req->data.len > 0 ? req->data.len : 0;
    node.acl = acl;
    return record_add(p, c->zxid, path, len, &node, 0);
}

/* The parent path of a delete (getParentPathAndValidate). */
static int prep_delete(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0 || path_is_special(req->path))
        return ZN_BADARGUMENTS;
    struct node_view parent = lookup(p, req->path, (size_t)parent_len);
    if (!parent.exists)
        return ZN_NONODE;
    int rc = check_acl(p, c->who, &parent.acl, ZN_PERM_DELETE);
    if (rc != 0)
        return rc;
    struct node_view node = lookup(p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    int32_t unused;
    rc = check_and_inc_version(node.version, req->version, &unused);
    if (rc != 0)
        return rc;
    if (node.child_count > 0)
        return ZN_NOTEMPTY;
    op->type = ZN_OP_DELETE;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    parent.child_count--;
    parent.pzxid = c->zxid;
    rc = record_add(p, c->zxid, parent_len == 0 ? "/" : req->path, parent_len == 0 ? 1 : (size_t)parent_len,
                    &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view gone;
    memset(&gone, 0, sizeof(gone));
    return record_add(p, c->zxid, req->path, len, &gone, 0);
}

/* deleteContainer, as the container manager sends it (session 0): no ACL
 * check, NOTEMPTY when a child appeared meanwhile, BADVERSION when the node
 * is a session's ephemeral (EphemeralType NORMAL).  Logged as a delete. */
static int prep_delete_container(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct prep *p = c->p;
    if (req->path == NULL)
        return ZN_BADARGUMENTS;
    size_t len = strnlen(req->path, PATH_MAX_BYTES + 1);
    long parent_len = path_parent_len(req->path, len);
    if (len > PATH_MAX_BYTES || parent_len < 0 || path_is_special(req->path))
        return ZN_BADARGUMENTS;
    struct node_view node = lookup(p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    if (node.child_count > 0)
        return ZN_NOTEMPTY;
    if (owner_is_session(node.ephemeral_owner))
        return ZN_BADVERSION;
    struct node_view parent = lookup(p, req->path, (size_t)parent_len);
    ZN_ASSERT(parent.exists);
    op->type = ZN_OP_DELETE;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    parent.child_count--;
    parent.pzxid = c->zxid;
    int rc = record_add(p, c->zxid, parent_len == 0 ? "/" : req->path, parent_len == 0 ? 1 : (size_t)parent_len,
                        &parent, 0);
    if (rc != 0)
        return rc;
    struct node_view gone;
    memset(&gone, 0, sizeof(gone));
    return record_add(p, c->zxid, req->path, len, &gone, 0);
}

/* setData, setACL and check share: validatePath, then the node. */
static int prep_existing(struct prep_call *c, const struct zn_request *req, struct node_view *node, size_t *len)
{
    if (path_validate(req->path, false) != 0)
        return ZN_BADARGUMENTS;
    *len = strlen(req->path);
    *node = lookup(c->p, req->path, *len);
    return node->exists ? 0 : ZN_NONODE;
}

static int prep_set_data(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct node_view node;
    size_t len;
    int rc = prep_existing(c, req, &node, &len);
    if (rc == 0)
        rc = check_acl(c->p, c->who, &node.acl, ZN_PERM_WRITE);
    if (rc == 0 && req->data.len > PREP_MAX_DATA_BYTES)
        rc = ZN_BADARGUMENTS;
    int32_t new_bytes = req->data.len > 0 ? req->data.len : 0;
    if (rc == 0)
        rc = check_quota(c, req->path, (int64_t)new_bytes - node.data_bytes, 0);
    int32_t version = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.version, req->version, &version);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_SETDATA;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL || copy_data(c->arena, &req->data, &op->data) != 0)
        return ZN_NOMEMORY;
    op->version = version;
    node.version = version;
    node.mtime = c->txn_time_ms;
    node.mzxid = c->zxid;
    node.data_bytes = new_bytes;
    return record_add(c->p, c->zxid, req->path, len, &node, 0);
}

static int prep_set_acl(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    if (path_validate(req->path, false) != 0)
        return ZN_BADARGUMENTS;
    struct zn_acl_vec acl;
    int rc = fixup_acl(c->p, c->who, &req->acl, c->arena, &acl);
    if (rc != 0)
        return rc;
    size_t len = strlen(req->path);
    struct node_view node = lookup(c->p, req->path, len);
    if (!node.exists)
        return ZN_NONODE;
    rc = check_acl(c->p, c->who, &node.acl, ZN_PERM_ADMIN);
    int32_t aversion = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.aversion, req->version, &aversion);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_SETACL;
    op->path = arena_strndup(c->arena, req->path, len);
    if (op->path == NULL)
        return ZN_NOMEMORY;
    op->acl = acl;
    op->version = aversion;
    node.aversion = aversion;
    /* The new ACL goes on the record, so requests prepared before this one
     * applies are checked against it (ZooKeeper does the same). */
    node.acl = acl;
    return record_add(c->p, c->zxid, req->path, len, &node, 0);
}

static int prep_check(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    struct node_view node;
    size_t len;
    int rc = prep_existing(c, req, &node, &len);
    if (rc == 0)
        rc = check_acl(c->p, c->who, &node.acl, ZN_PERM_READ);
    int32_t next = 0;
    if (rc == 0)
        rc = check_and_inc_version(node.version, req->version, &next);
    if (rc != 0)
        return rc;
    op->type = ZN_OP_CHECK;
    op->path = arena_strndup(c->arena, req->path, len);
    op->version = next; /* as ZooKeeper's CheckVersionTxn */
    return op->path ? 0 : ZN_NOMEMORY;
}

static int prep_one(struct prep_call *c, const struct zn_request *req, struct txn_op *op)
{
    memset(op, 0, sizeof(*op));
    op->data.len = -1;
    op->ttl_ms = -1;
    switch (req->type) {
    case ZN_OP_CREATE:
    case ZN_OP_CREATE2:
    case ZN_OP_CREATECONTAINER:
    case ZN_OP_CREATETTL:
        return prep_create(c, req, op);
    case ZN_OP_DELETE:
        return prep_delete(c, req, op);
    case ZN_OP_DELETECONTAINER:
        return prep_delete_container(c, req, op);
    case ZN_OP_SETDATA:
        return prep_set_data(c, req, op);
    case ZN_OP_SETDATATIME:
        /* znodefs extension: the txn's time (the node's mtime) is the client's
         * (c->txn_time_ms); never inside a multi. */
        return req->mtime_ms >= 0 ? prep_set_data(c, req, op) : ZN_BADARGUMENTS;
    case ZN_OP_SETACL:
        return prep_set_acl(c, req, op);
    case ZN_OP_CHECK:
        return prep_check(c, req, op);
    case ZN_OP_RECONFIG:
        /* Reached only standalone (an ensemble's leader prepares reconfig
         * itself, ensemble.c): ZooKeeper refuses it as disabled first, then
         * as unimplemented in standalone mode. */
        if (!c->p->reconfig_enabled) {
            ZN_ERROR("Reconfig operation requested but reconfig feature is disabled.");
            return ZN_RECONFIGDISABLED;
        }
        return ZN_UNIMPLEMENTED;
    default:
        return ZN_UNIMPLEMENTED;
    }
}

void prep_set_reconfig_enabled(struct prep *p, bool enabled)
{
    ZN_ASSERT(p != NULL);
    p->reconfig_enabled = enabled;
}

static void error_op(struct txn_op *op, int32_t err)
{
    memset(op, 0, sizeof(*op));
    op->type = ZN_OP_ERROR;
    op->err = err;
}

/* The ops of a multi, in order, against the overlay; on the first failure,
 * this multi's records are popped and every op becomes an ERROR. */
static int prep_multi(struct prep_call *c, const struct zn_request *req, struct txn *out,
                      struct zn_response *error_result)
{
    if (req->op_count < 0 || req->op_count > TXN_MAX_MULTI_OPS || (req->op_count > 0 && req->ops == NULL))
        return ZN_BADARGUMENTS;
    out->op_count = req->op_count;
    out->ops = NULL;
    if (req->op_count > 0) {
        out->ops = zn_arena_alloc(c->arena, sizeof(*out->ops) * (size_t)req->op_count);
        if (out->ops == NULL)
            return ZN_NOMEMORY;
    }
    int failed_at = -1, failure = 0;
    for (int32_t i = 0; i < req->op_count; i++) {
        const struct zn_request *sub = &req->ops[i];
        int rc = txn_op_allowed_in_multi(sub->type) && sub->type != ZN_OP_ERROR ? prep_one(c, sub, &out->ops[i])
                                                                                : ZN_BADARGUMENTS;
        if (rc != 0) {
            failed_at = i;
            failure = rc;
            break;
        }
    }
    if (failed_at < 0)
        return 0;
    rollback_zxid(c->p, c->zxid);
    for (int32_t i = 0; i < req->op_count; i++)
        error_op(&out->ops[i], i < failed_at ? ZN_OK : i == failed_at ? failure : ZN_RUNTIMEINCONSISTENCY);
    if (error_result) {
        memset(error_result, 0, sizeof(*error_result));
        error_result->type = ZN_OP_MULTI;
        error_result->err = failure;
        error_result->result_count = req->op_count;
        if (req->op_count > 0) {
            error_result->results = zn_arena_alloc(c->arena, sizeof(*error_result->results) * (size_t)req->op_count);
            if (error_result->results == NULL)
                return failure;
            for (int32_t i = 0; i < req->op_count; i++) {
                memset(&error_result->results[i], 0, sizeof(error_result->results[i]));
                error_result->results[i].type = ZN_OP_ERROR;
                error_result->results[i].err = out->ops[i].err;
            }
        }
    }
    return failure;
}

static void header(struct txn *out, int64_t session_id, int32_t cxid, int64_t zxid, int64_t now_ms, int32_t type)
{
    memset(out, 0, sizeof(*out));
    out->hdr.session_id = session_id;
    out->hdr.cxid = cxid;
    out->hdr.zxid = zxid;
    out->hdr.time_ms = now_ms;
    out->hdr.type = type;
}

int prep_request(struct prep *p, const struct prep_caller *who, const struct zn_request *req, int64_t zxid,
                 int64_t now_ms, struct zn_arena *arena, struct txn *out, struct zn_response *error_result)
{
    ZN_ASSERT(p != NULL && who != NULL && req != NULL && arena != NULL && out != NULL);
    ZN_ASSERT(who->id_count == 0 || who->ids != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    /* The znodefs extension setDataTime names the txn's time (the node's mtime). */
    int64_t txn_time_ms = req->type == ZN_OP_SETDATATIME && req->mtime_ms >= 0 ? req->mtime_ms : now_ms;
    struct prep_call c = {p, who, zxid, now_ms, arena, txn_time_ms};
    header(out, who->session_id, who->cxid, zxid, txn_time_ms, req->type);
    int rc;
    if (req->type == ZN_OP_MULTI) {
        rc = prep_multi(&c, req, out, error_result);
        if (rc == 0)
            p->last_zxid = zxid;
        return rc;
    }
    rc = prep_one(&c, req, &out->op);
    if (rc == 0) {
        p->last_zxid = zxid;
        out->hdr.type = out->op.type; /* deleteContainer is logged as the delete it is */
    } else {
        rollback_zxid(p, zxid); /* a create may have added its parent's record */
        out->hdr.type = ZN_OP_ERROR;
        error_op(&out->op, rc);
        if (error_result) {
            memset(error_result, 0, sizeof(*error_result));
            error_result->type = req->type;
            error_result->err = rc;
        }
    }
    return rc;
}

/* ----------------------------------------------------------------- sessions */

int prep_create_session(struct prep *p, int64_t session_id, int32_t timeout_ms, int64_t zxid, int64_t now_ms,
                        struct zn_arena *arena, struct txn *out)
{
    ZN_ASSERT(p != NULL && out != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    if (!owner_is_session(session_id) || session_live(p, session_id))
        return ZN_BADARGUMENTS;
    char key[20];
    session_key(session_id, key);
    struct node_view v;
    memset(&v, 0, sizeof(v));
    v.exists = true;
    int rc = record_add(p, zxid, key, strlen(key), &v, timeout_ms);
    if (rc != 0)
        return rc;
    p->last_zxid = zxid;
    header(out, session_id, 0, zxid, now_ms, ZN_OP_CREATESESSION);
    out->op.type = ZN_OP_CREATESESSION;
    out->op.timeout_ms = timeout_ms;
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The session's ephemerals as they will be: the tree's, and any path a
 * pending record gives to the session; each kept if its newest state is an
 * existing node owned by the session.  Sorted, without duplicates. */
struct ephemeral_list {
    char **items;
    size_t count, cap;
    struct zn_arena *arena;
};

static int ephemeral_push(void *ctx, const char *path)
{
    struct ephemeral_list *l = ctx;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **items = realloc(l->items, sizeof(*items) * cap);
        if (items == NULL)
            return ZN_NOMEMORY;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count] = arena_strndup(l->arena, path, strlen(path));
    if (l->items[l->count] == NULL)
        return ZN_NOMEMORY;
    l->count++;
    return 0;
}

static int collect_ephemerals(struct prep *p, int64_t session_id, struct ephemeral_list *l)
{
    int rc = tree_for_each_ephemeral(p->tree, session_id, ephemeral_push, l);
    for (const struct prep_record *r = p->head; r && rc == 0; r = r->fifo_next) {
        if (r->key[0] == '/' && r->view.exists && r->view.ephemeral_owner == session_id)
            rc = ephemeral_push(l, r->key);
    }
    if (rc != 0)
        return rc;
    if (l->count > 0)
        qsort(l->items, l->count, sizeof(*l->items), compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (kept > 0 && strcmp(l->items[kept - 1], l->items[i]) == 0)
            continue;
        struct node_view v = lookup(p, l->items[i], strlen(l->items[i]));
        if (v.exists && v.ephemeral_owner == session_id)
            l->items[kept++] = l->items[i];
    }
    l->count = kept;
    return l->count > TXN_MAX_CLOSE_PATHS ? ZN_BADARGUMENTS : 0;
}

int prep_close_session(struct prep *p, int64_t session_id, int64_t zxid, int64_t now_ms, struct zn_arena *arena,
                       struct txn *out)
{
    ZN_ASSERT(p != NULL && arena != NULL && out != NULL);
    ZN_ASSERT(zxid > p->last_zxid);
    if (!session_live(p, session_id))
        return ZN_SESSIONEXPIRED;
    struct ephemeral_list l = {NULL, 0, 0, arena};
    int rc = collect_ephemerals(p, session_id, &l);
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const char *path = l.items[i];
        size_t len = strlen(path);
        long pl = path_parent_len(path, len);
        struct node_view parent = lookup(p, path, (size_t)pl);
        /* Unlike ZooKeeper (which leaves the parent's child count alone
         * here), the overlay shows the parent as it will be, so a delete of
         * the parent prepared after the close is not refused NOTEMPTY. */
        parent.child_count--;
        parent.pzxid = zxid;
        rc = record_add(p, zxid, pl == 0 ? "/" : path, pl == 0 ? 1 : (size_t)pl, &parent, 0);
        if (rc == 0) {
            struct node_view gone;
            memset(&gone, 0, sizeof(gone));
            rc = record_add(p, zxid, path, len, &gone, 0);
        }
    }
    if (rc == 0) {
        char key[20];
        session_key(session_id, key);
        struct node_view closing;
        memset(&closing, 0, sizeof(closing));
        rc = record_add(p, zxid, key, strlen(key), &closing, 0);
    }
    if (rc != 0) {
        rollback_zxid(p, zxid);
        free(l.items);
        return rc;
    }
    p->last_zxid = zxid;
    header(out, session_id, 0, zxid, now_ms, ZN_OP_CLOSESESSION);
    out->op.type = ZN_OP_CLOSESESSION;
    out->op.paths.count = (int32_t)l.count;
    out->op.paths.items = NULL;
    if (l.count > 0) {
        out->op.paths.items = zn_arena_alloc(arena, sizeof(char *) * l.count);
        if (out->op.paths.items == NULL) {
            rollback_zxid(p, zxid);
            free(l.items);
            return ZN_NOMEMORY;
        }
        memcpy(out->op.paths.items, l.items, sizeof(char *) * l.count);
    }
    free(l.items);
    return 0;
}
