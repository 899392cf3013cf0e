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

static bool session_has_id(const struct zn_hlink *l, const void *key)
{
    return ZN_HENTRY(l, const struct session, link)->id == *(const int64_t *)key;
}

struct session *session_find(struct server *srv, int64_t id)
{
    struct zn_hlink *l = zn_htable_find(&srv->sessions, zn_hash(&id, sizeof(id)), session_has_id, &id);
    return l ? ZN_HENTRY(l, struct session, link) : NULL;
}

struct session *session_add(struct server *srv, int64_t id, int32_t timeout_ms)
{
    if (srv->sessions.nbuckets == 0 && zn_htable_init(&srv->sessions, SESSION_INITIAL_BUCKETS) != 0)
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
    zn_htable_insert(&srv->sessions, &s->link, zn_hash(&id, sizeof(id)));
    return s;
}

void session_remove(struct server *srv, int64_t id)
{
    struct session *s = session_find(srv, id);
    if (!s)
        return;
    zn_htable_remove(&srv->sessions, &s->link);
    if (s->conn) {
        struct conn *c = s->conn;
        c->session = NULL;
        s->conn = NULL;
        conn_close(c, "session closed or expired");
    }
    free(s);
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
    struct zn_hiter it;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;) {
        if (s->conn)
            s->conn->session = NULL;
        free(s);
    }
    zn_htable_clear(&srv->sessions);
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
    conn_release_idle(srv);
    if (srv->ens && !ensemble_is_leader(srv)) {
        server_flush(srv);
        return; /* the leader alone expires sessions */
    }
    struct zn_hiter it;
    zn_hiter_init(&it, &srv->sessions);
    for (struct session *s; (s = session_next(&it)) != NULL;) {
        if (!s->closing && now >= s->expires_at_ms) {
            ZN_INFO("session expired sid=0x%" PRIx64 " timeout_ms=%d", (uint64_t)s->id, s->timeout_ms);
            ensemble_expire_session(srv, s); /* may remove s: the iterator allows it */
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
