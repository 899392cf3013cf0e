/*
 * Sessions at run time: the table of live sessions with their expiry
 * deadlines and connections, session ids and passwords, and the expiry
 * timer.
 *
 * Which sessions exist is replicated state (created and closed by txns and
 * kept in the tree's session table, so it survives restarts); this file holds
 * only what is local: when each one was last heard from.  After a restart
 * every session gets a full timeout to reconnect, as in ZooKeeper.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assert.h"
#include "ensemble.h"
#include "log.h"
#include "server.h"

#define SESSION_INITIAL_BUCKETS 1024
/* Expiry is checked this often at least (and every tickTime/2 if smaller). */
#define SESSION_CHECK_INTERVAL_MAX_MS 500

uint64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t bucket_of(const struct server *srv, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (srv->session_buckets - 1);
}

struct session *session_find(struct server *srv, int64_t id)
{
    if (!srv->sessions)
        return NULL;
    for (struct session *s = srv->sessions[bucket_of(srv, id)]; s; s = s->next_in_bucket)
        if (s->id == id)
            return s;
    return NULL;
}

static void rehash(struct server *srv, size_t buckets)
{
    struct session **table = calloc(buckets, sizeof *table);
    if (!table)
        return; /* longer chains, still correct */
    size_t old = srv->session_buckets;
    struct session **old_table = srv->sessions;
    srv->sessions = table;
    srv->session_buckets = buckets;
    for (size_t i = 0; i < old; i++)
        for (struct session *s = old_table[i], *next; s; s = next) {
            next = s->next_in_bucket;
            size_t b = bucket_of(srv, s->id);
            s->next_in_bucket = table[b];
            table[b] = s;
        }
    free(old_table);
}

struct session *session_add(struct server *srv, int64_t id, int32_t timeout_ms)
{
    if (!srv->sessions)
        rehash(srv, SESSION_INITIAL_BUCKETS);
    if (!srv->sessions)
        return NULL;
    struct session *s = session_find(srv, id);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    s->timeout_ms = timeout_ms;
    s->expires_at_ms = server_now_ms() + (uint64_t)timeout_ms;
    size_t b = bucket_of(srv, id);
    s->next_in_bucket = srv->sessions[b];
    srv->sessions[b] = s;
    srv->session_count++;
    if (srv->session_count > srv->session_buckets)
        rehash(srv, srv->session_buckets * 2);
    return s;
}

void session_remove(struct server *srv, int64_t id)
{
    if (!srv->sessions)
        return;
    for (struct session **link = &srv->sessions[bucket_of(srv, id)]; *link;
         link = &(*link)->next_in_bucket) {
        struct session *s = *link;
        if (s->id != id)
            continue;
        *link = s->next_in_bucket;
        if (s->conn) {
            struct conn *c = s->conn;
            c->session = NULL;
            s->conn = NULL;
            conn_close(c, "session closed or expired");
        }
        srv->session_count--;
        free(s);
        return;
    }
}

void session_touch(struct server *srv, struct session *s)
{
    /* The loop turn's clock: at most one turn's work behind server_now_ms,
     * far below the tickTime granularity ZooKeeper itself expires by. */
    uint64_t now = server_clock_ms(srv);
    s->expires_at_ms = now + (uint64_t)s->timeout_ms;
    s->last_activity_ms = now;
}

void session_clear_all(struct server *srv)
{
    for (size_t b = 0; b < srv->session_buckets; b++)
        for (struct session *s = srv->sessions[b], *next; s; s = next) {
            next = s->next_in_bucket;
            if (s->conn)
                s->conn->session = NULL;
            free(s);
        }
    if (srv->sessions)
        memset(srv->sessions, 0, srv->session_buckets * sizeof *srv->sessions);
    srv->session_count = 0;
}

int session_add_recovered(void *ctx, int64_t id, int32_t timeout_ms)
{
    return session_add(ctx, id, timeout_ms) ? 0 : ZN_NOMEMORY;
}

/*
 * As ZooKeeper's SessionTrackerImpl.initializeNextSession: the server id in
 * the top byte, then the current time in ms shifted so that ids of successive
 * restarts do not collide, plus a counter.
 */
int64_t session_new_id(struct server *srv)
{
    if (srv->next_session_counter == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        uint64_t base = (ms << 24) >> 8;
        base |= (uint64_t)(srv->cfg.my_id & 0xff) << 56;
        srv->next_session_counter = (int64_t)base;
    }
    int64_t id = srv->next_session_counter++;
    while (id == 0 || session_find(srv, id))
        id = srv->next_session_counter++;
    return id;
}

/* java.util.Random's next(32): a 48-bit linear congruential generator. */
static int32_t java_random_next_int(uint64_t *seed)
{
    *seed = (*seed * 0x5DEECE66Dull + 0xBull) & ((1ull << 48) - 1);
    return (int32_t)(uint32_t)(*seed >> 16);
}

/*
 * The session password is ZooKeeper's own: new Random(sessionId ^
 * superSecret).nextBytes(16) (ZooKeeperServer.generatePasswd), a function
 * of the id and a constant every member shares, so any member can check a
 * reconnecting client without extra state, and a client whose session was
 * made by Apache ZooKeeper (an imported one) resumes it here.
 */
void session_password(int64_t id, uint8_t out[ZN_PASSWD_BYTES])
{
    /* new Random(seed) scrambles the seed; nextBytes takes each int's bytes low first. */
    uint64_t seed = (((uint64_t)id ^ 0xB3415C00ull) ^ 0x5DEECE66Dull) & ((1ull << 48) - 1);
    for (int i = 0; i < ZN_PASSWD_BYTES;) {
        uint32_t r = (uint32_t)java_random_next_int(&seed);
        for (int n = 0; n < 4 && i < ZN_PASSWD_BYTES; n++, r >>= 8)
            out[i++] = (uint8_t)r;
    }
}

static void on_session_timer(uv_timer_t *t)
{
    struct server *srv = t->data;
    uint64_t now = server_now_ms();
    conn_expire_tls_handshakes(srv, now); /* every member, for its own connections */
    if (srv->ens && !ensemble_is_leader(srv)) {
        server_flush(srv);
        return; /* the leader alone expires sessions */
    }
    for (size_t b = 0; b < srv->session_buckets; b++)
        for (struct session *s = srv->sessions[b], *next; s; s = next) {
            next = s->next_in_bucket;
            if (!s->closing && now >= s->expires_at_ms) {
                ZN_INFO("session expired sid=0x%" PRIx64 " timeout_ms=%d", (uint64_t)s->id,
                        s->timeout_ms);
                pipeline_expire_session(srv, s);
            }
        }
    server_flush(srv);
}

int session_start_timer(struct server *srv)
{
    uint64_t interval = (uint64_t)srv->cfg.tick_time_ms / 2;
    if (interval > SESSION_CHECK_INTERVAL_MAX_MS)
        interval = SESSION_CHECK_INTERVAL_MAX_MS;
    if (interval < 10)
        interval = 10;
    uv_timer_init(srv->loop, &srv->session_timer);
    srv->session_timer.data = srv;
    return uv_timer_start(&srv->session_timer, on_session_timer, interval, interval);
}
