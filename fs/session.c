/*
 * The mount's ZooKeeper session: the client made from the options
 * (credentials, TLS, SASL, read-only-capable), the first connection (which
 * fails the mount command when it fails), the session events, and the new
 * session opened when the ensemble expires the mount's own: the old client
 * closed, its locks, cache and ephemeral handles dropped, the kernel's
 * attributes invalidated and the watches armed again.
 * Invariant: fs->client is the only client whose events act; the events of
 * an expired client being closed are ignored.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "log.h"
#include "znodefs.h"

static void on_session_event(struct zn_client *client, int event, void *arg)
{
    struct fs *fs = arg;
    if (client != fs->client)
        return; /* the client of an expired session, being closed */
    /* libznode logs each event itself: logged here too, it showed twice. */
    /* Events may be missed or late until the watches are back (cache.c invariant 3). */
    if (event != ZN_SESSION_CONNECTED && event != ZN_SESSION_CONNECTED_READ_ONLY)
        fs_cache_drop_all();
    if (event == ZN_SESSION_EXPIRED) {
        ZN_ERROR("session expired sid=0x%" PRIx64 ": its ephemeral files and locks are gone; "
                 "their open files now fail with EIO; opening a new session",
                 (uint64_t)zn_client_session_id(client));
        /* Later, from the loop: the expired client is still inside its own callbacks. */
        uv_timer_start(&fs->renew_timer, fs_session_renew, 0, 0);
    } else if (event == ZN_SESSION_AUTH_FAILED) {
        ZN_ERROR("the ensemble rejected %s: every operation fails with EACCES; remount with "
                 "the right credentials",
                 fs->config.sasl ? zn_client_last_failure(client) : "auth=<user:password>");
    }
}

/* Makes a client in *out and starts connecting (requests queue until connected). */
static int new_client(struct fs *fs, struct zn_client **out)
{
    struct zn_client_options o;
    zn_client_options_init(&o);
    o.session_timeout_ms = fs->config.session_timeout_ms;
    o.session_cb = on_session_event;
    o.session_arg = fs;
    /* Every mount allows read-only members (canBeReadOnly): without a quorum, a member in
     * read-only mode serves its reads and answers its writes NOTREADONLY (EROFS, at once);
     * znoded keeps the session, and closes the connection when the quorum is back. */
    o.read_only = true;
    if (fs->config.tls) {
        o.tls_ca_file = fs->config.tls_ca;
        o.tls_cert_file = fs->config.tls_cert;
        o.tls_key_file = fs->config.tls_key;
    }
    o.sasl_mechanism = fs->config.sasl;
    o.sasl_service = fs->config.sasl_service;
    if (fs->config.sasl_user) {
        o.sasl_user = fs->config.sasl_user;
        o.sasl_password = fs->sasl_password;
    }
    struct zn_client *client;
    int rc = zn_client_new(fs->loop, fs->config.hosts, &o, &client);
    if (rc)
        return rc;
    if (fs->config.auth &&
        (rc = zn_add_auth(client, "digest", fs->config.auth, (int32_t)strlen(fs->config.auth),
                          NULL, NULL)) != 0) {
        zn_client_close(client, NULL, NULL);
        return rc;
    }
    *out = client;
    return 0;
}

static void invalidate_inode(struct fs *fs, struct fs_inode *inode, void *arg)
{
    (void)fs;
    (void)arg;
    fs_notify_inval_inode(inode->nodeid);
}

struct rearm_ctx {
    size_t sent;
};

static void rearm_children_done(struct zn_client *c, const struct zn_result *r, void *arg)
{
    (void)c;
    (void)r;
    (void)arg;
}

/* Arms again, in the new session, the watches the kernel's cached nodes relied on: a data watch
 * on every node (so a remote change or delete is told to the kernel, inotify's IN_DELETE_SELF
 * included, without waiting for the kernel to ask) and a child watch on every directory. */
static void rearm_inode(struct fs *fs, struct fs_inode *inode, void *arg)
{
    struct rearm_ctx *ctx = arg;
    if (inode->virt != FS_VIRT_NONE || inode->unlinked || ctx->sent >= FS_REARM_MAX_WATCHES)
        return;
    if (fs_cache_watch(fs->client, inode->path) != 0)
        return;
    ctx->sent++;
    if (inode->kind == FS_KIND_DIR &&
        zn_get_children(fs->client, inode->path, fs_watch_cb, NULL, rearm_children_done, NULL) == 0)
        ctx->sent++;
}

void fs_session_renew(uv_timer_t *timer)
{
    struct fs *fs = timer->data;
    struct zn_client *old = fs->client, *fresh = NULL;
    ZN_ASSERT(old != NULL);
    int rc = new_client(fs, &fresh);
    if (rc) {
        /* Out of memory: try again shortly rather than serve nothing forever; meanwhile
         * every call on the expired client fails cleanly (EIO). */
        ZN_ERROR("cannot open a new session: %s; retrying in %d ms", zn_strerror(rc), FS_RENEW_RETRY_MS);
        uv_timer_start(&fs->renew_timer, fs_session_renew, FS_RENEW_RETRY_MS, 0);
        return;
    }
    fs->client = fresh;
    zn_client_close(old, NULL, NULL);
    /* Handles that depended on the old session (ephemeral files) see it (EIO). */
    fs->session_gen++;
    fs->sessions_renewed++;
    fs_lock_session_lost(fs);
    fs_cache_drop_all();
    /* The kernel's attributes were kept valid by the old session's watches: ask again, which
     * arms them on the new one. */
    fs_inode_for_all(fs, invalidate_inode, NULL);
    struct rearm_ctx ctx = {0};
    fs_inode_for_all(fs, rearm_inode, &ctx);
    fs_wait_rearm(fs);
    if (ctx.sent >= FS_REARM_MAX_WATCHES)
        ZN_WARN("re-armed only %d watches; the rest are armed as the kernel asks again",
                FS_REARM_MAX_WATCHES);
    ZN_INFO("new session requested (renewal %" PRIu64 "); watches re-armed=%zu", fs->sessions_renewed,
            ctx.sent);
}

/* Connects, authenticates, and waits for the session: errors here fail the mount. */
int fs_session_connect(struct fs *fs)
{
    int rc = new_client(fs, &fs->client);
    if (rc) {
        fprintf(stderr, "znodefs: bad HOSTS %s, auth or TLS files: %s\n", fs->config.hosts, zn_strerror(rc));
        return rc;
    }
    rc = zn_sync_wait_connected(fs->client);
    if (rc == ZN_AUTHFAILED && fs->config.sasl) {
        fprintf(stderr, "znodefs: authentication failed: %s\n", zn_client_last_failure(fs->client));
        return rc;
    }
    if (rc) {
        fprintf(stderr, "znodefs: cannot reach %s: %s\n", fs->config.hosts, zn_strerror(rc));
        return rc;
    }
    return 0;
}
