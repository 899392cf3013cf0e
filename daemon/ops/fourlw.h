/*
 * What the four-letter words report, gathered once for both of their forms:
 * the text answers on the client port (fourlw.c) and the JSON answers of
 * the AdminServer (admin.c).  Each figure is read or derived here, in one
 * place; the two front ends only lay it out.  Everything runs on the loop
 * thread and reads the server as it is at the call.
 */
#ifndef ZNODED_FOURLW_H
#define ZNODED_FOURLW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct conn;
struct watch_owner;

#define ZNODED_VERSION "0.1.0"
/* The ZooKeeper version we are compatible with, as clients and tools parse it. */
#define FOURLW_ZK_VERSION "3.8.4-znodefs-" ZNODED_VERSION ", built on " __DATE__

/* One figure of mntr / monitor.  ZXID is a zxid: hex in text, a number in JSON. */
enum fourlw_value_kind { FOURLW_U64, FOURLW_DOUBLE, FOURLW_STRING, FOURLW_ZXID };
struct fourlw_value {
    enum fourlw_value_kind kind;
    uint64_t u64;           /* U64, ZXID */
    double dbl;             /* DOUBLE */
    int precision;          /* DOUBLE: digits after the point in text */
    const char *str;        /* STRING: borrowed for the call */
};
/* key is ZooKeeper's monitor name, without mntr's "zk_" prefix; borrowed for the call. */
typedef void (*fourlw_put_fn)(void *ctx, const char *key, const struct fourlw_value *value);

/* Every figure of mntr, in its order. */
void fourlw_monitor(const struct server *srv, fourlw_put_fn put, void *ctx);

/* envi's key=value pairs, in order (value borrowed for the call). */
typedef void (*fourlw_put_string_fn)(void *ctx, const char *key, const char *value);
void fourlw_environment(fourlw_put_string_fn put, void *ctx);

/* "standalone", "leader", "follower", "observer", "read-only", ... */
const char *fourlw_mode(const struct server *srv);
/* True while this member serves read-only sessions (it has no quorum). */
bool fourlw_read_only(const struct server *srv);

struct fourlw_latency {
    uint64_t min_ms, max_ms;
    double avg_ms;
};
void fourlw_server_latency(const struct server *srv, struct fourlw_latency *out);

/* One client connection, as cons and stat describe it. */
struct fourlw_conn_info {
    const char *peer;          /* "127.0.0.1:5555"; borrowed from the conn */
    bool ready;                /* the handshake is done */
    unsigned interest_ops;     /* as Java NIO's: 1 reading, 4 writing */
    uint32_t queued;           /* requests received, not answered */
    uint64_t packets_received, packets_sent;
    bool has_session;          /* the fields below are meaningful */
    uint64_t session_id;
    const char *last_operation; /* "NA" before the first */
    uint64_t established_ms;
    int32_t timeout_ms;
    int32_t last_cxid;
    int64_t last_zxid;
    uint64_t last_response_ms, last_latency_ms;
    struct fourlw_latency latency;
};
void fourlw_conn_info(const struct conn *c, struct fourlw_conn_info *out);

/* The session that holds a watch owner (0 for a connection without one). */
uint64_t fourlw_watch_owner_session(const struct watch_owner *owner);
/* Connections with at least one watch. */
size_t fourlw_watching_connections(const struct server *srv);
/* Distinct paths watched, whatever the kind of watch (a path watched for its
 * data and its children counts once, as in ZooKeeper's wchs). */
size_t fourlw_watched_paths(const struct server *srv);

/* One watched path of one session, whatever the kinds of watch on it. */
struct fourlw_watch {
    uint64_t session;
    const char *path; /* borrowed from the watch table until the loop turn ends */
};
/* Every (session, path) watched, each once, sorted by path then session
 * (by_path) or by session then path.  *out is malloc'd (the caller frees it).
 * Returns how many, or -1 when out of memory. */
long fourlw_watches(const struct server *srv, bool by_path, struct fourlw_watch **out);

/* Bytes of the regular files directly in dir (0 if it cannot be read), as
 * ZooKeeper sums its snapshot and log directories. */
uint64_t fourlw_dir_bytes(const char *dir);
/* The store's directory (dataLogDir) and the data directory's own files. */
uint64_t fourlw_data_dir_bytes(const struct server *srv);
uint64_t fourlw_log_dir_bytes(const struct server *srv);

/* srst and crst. */
void fourlw_reset_server_stats(struct server *srv);
void fourlw_reset_conn_stats(struct server *srv);

#endif
