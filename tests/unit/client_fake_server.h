/*
 * A fake ZooKeeper server for libznode's client tests (test_client.c),
 * written with libuv + jute on the same loop as the client.  It is scripted by
 * flags (expire sessions, go silent, drop on a request, push an event before a
 * reply) and records what it received (ConnectRequest fields, SetWatches
 * contents, pings, paths), so a test can assert the wire behaviour.  Its SASL
 * side is znoded's own (daemon/net/saslauth.c, Cyrus's DIGEST-MD5 server).
 * Invariant: one client connection at a time; a new one drops the old.
 */
#ifndef ZN_TEST_CLIENT_FAKE_SERVER_H
#define ZN_TEST_CLIENT_FAKE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "saslauth.h"

#define FAKE_MAX_PATHS 8
#define FAKE_PATH_BYTES 128

struct fake_server;

struct fake_conn {
    uv_tcp_t tcp;
    struct fake_server *srv;
    bool handshaken;
    bool closing;
    uint8_t *in;
    size_t len, cap;
    struct saslauth_session *sasl; /* this connection's SASL exchange */
};

struct fake_server {
    uv_tcp_t listener;
    int port;
    struct fake_conn *conn;
    /* script */
    bool expire;            /* answer resumes with timeout 0 */
    bool silent;            /* read but never answer (a dead server) */
    bool drop_on_request;   /* close the connection when a request (not a ping) arrives */
    int32_t timeout_ms;     /* negotiated timeout granted */
    int64_t zxid;           /* put in every reply header */
    char event_before_reply[FAKE_PATH_BYTES]; /* if set: push NodeDataChanged on it before the next reply */
    /* records */
    int connects;
    int64_t connect_session_id;
    int64_t connect_last_zxid;
    int32_t connect_protocol;
    uint8_t connect_passwd[16];
    int pings;
    int requests;
    char last_path[FAKE_PATH_BYTES];
    int set_watches;
    int64_t set_watches_zxid;
    int set_watches_count[3];
    int set_watches_total; /* paths over every SetWatches packet */
    char set_watches_paths[3][FAKE_MAX_PATHS][FAKE_PATH_BYTES];
    int close_sessions;
    bool sasl_reject;       /* answer every SASL packet AUTHFAILED */
    char log[32];           /* one letter per packet after the handshake: S sasl, W SetWatches,
                             * A auth, R any other request (pings and CloseSession left out) */
    int log_len;
    char sasl_user[64];     /* who the last completed SASL exchange authenticated */
};

static const int64_t FAKE_SESSION_ID = 0x1234abcd5678LL;

/* Listens on 127.0.0.1, on a port the system picks (srv->port). */
void fake_start(uv_loop_t *loop, struct fake_server *srv);
/* Stops listening and refuses further connections (new connects are refused). */
void fake_stop(struct fake_server *srv);
/* Closes the client's connection, if there is one. */
void fake_drop(struct fake_server *srv);
/* Pushes a watch notification to the connected client. */
void fake_send_event(struct fake_server *srv, int type, const char *path);

#endif
