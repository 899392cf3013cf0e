/*
 * transport_peers: the member mesh's peer table (see transport.h,
 * "Membership changes at runtime").  t->links has room for
 * ZN_TRANSPORT_PEERS_MAX links and never moves, since connections and
 * timers point into it: a removed peer keeps its slot (marked removed, its
 * connections closed) and gets it back, counters included, if its id is
 * added again.  Here: finding a link by id, adding, removing and resetting
 * a peer, and the per-peer and mesh counters.
 *
 * Invariants: at most one live (not removed) link per id; an id keeps its
 * address while it is a peer (remove it first to move it); a slot is reused
 * only once its old connections are closed.
 *
 * Called by: the daemon (membership changes, stats); every transport file
 * (tp_link_find).
 */
#include "transport_internal.h"

#include <string.h>

#include "assert.h"
#include "log.h"
#include <znode/errors.h>

struct transport_link *tp_link_find(const struct transport *t, uint32_t id)
{
    for (size_t i = 0; i < t->n_links; i++)
        if (t->links[i].cfg.id == id && !t->links[i].removed)
            return &t->links[i];
    return NULL;
}

int transport_reset_peer(struct transport *t, uint32_t peer_id, const char *reason)
{
    ZN_ASSERT(t != NULL && !t->stopping && reason != NULL);
    struct transport_link *link = tp_link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    char why[160];
    snprintf(why, sizeof why, "reset: %s", reason);
    link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
    if (link->out)
        tp_conn_close(link->out, ZN_LOG_INFO, why);
    else
        tp_link_arm(link, ZN_TRANSPORT_BACKOFF_MIN_MS); /* cut a long backoff short */
    if (link->in)
        tp_conn_close(link->in, ZN_LOG_INFO, why);
    return 0;
}

int transport_add_peer(struct transport *t, const struct transport_peer *peer)
{
    ZN_ASSERT(t != NULL && peer != NULL && !t->stopping);
    if (peer->id == 0 || peer->id == t->my_id || peer->port < 1 || peer->port > 65535 ||
        strnlen(peer->host, ZN_TRANSPORT_HOST_MAX) == ZN_TRANSPORT_HOST_MAX)
        return ZN_CONFIG;
    struct sockaddr_in addr;
    if (tp_resolve_ipv4(peer->host, peer->port, &addr) < 0) {
        ZN_ERROR("transport: cannot resolve peer address peer=%u host=%s", peer->id, peer->host);
        return ZN_CONFIG;
    }
    struct transport_link *link = tp_link_find(t, peer->id);
    if (link) {
        if (link->addr.sin_addr.s_addr == addr.sin_addr.s_addr && link->addr.sin_port == addr.sin_port)
            return 0;
        return ZN_CONFIG; /* an id keeps its address: remove it first */
    }
    for (size_t i = 0; i < t->n_links && !link; i++)
        if (t->links[i].removed && t->links[i].cfg.id == peer->id)
            link = &t->links[i]; /* back again: its slot, timer and counters */
    bool fresh = link == NULL;
    if (fresh) {
        if (t->n_links + 1 >= ZN_TRANSPORT_PEERS_MAX)
            return ZN_CONFIG;
        link = &t->links[t->n_links];
        memset(link, 0, sizeof *link);
    }
    if (link->out || link->in)
        return ZN_THROTTLEDOP; /* its old connections are still closing: try again later */
    link->cfg = *peer;
    link->addr = addr;
    tp_addr_format(&link->addr, link->addr_text);
    link->backoff_ms = ZN_TRANSPORT_BACKOFF_MIN_MS;
    link->removed = false;
    link->failure_logged = false;
    link->tls_failure_logged = false;
    link->state = LINK_IDLE;
    link->stats.id = peer->id;
    if (fresh) {
        link->t = t;
        uv_timer_init(t->loop, &link->timer);
        link->timer.data = link;
        t->handles_open++;
        t->n_links++;
    }
    ZN_INFO("transport: peer added peer=%u addr=%s", peer->id, link->addr_text);
    tp_link_connect(link);
    return 0;
}

int transport_remove_peer(struct transport *t, uint32_t peer_id)
{
    ZN_ASSERT(t != NULL && !t->stopping);
    struct transport_link *link = tp_link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    link->removed = true;
    uv_timer_stop(&link->timer);
    ZN_INFO("transport: peer removed peer=%u addr=%s", peer_id, link->addr_text);
    if (link->out)
        tp_conn_close(link->out, ZN_LOG_INFO, "peer removed from the ensemble");
    link->state = LINK_IDLE;
    if (link->in)
        tp_conn_close(link->in, ZN_LOG_INFO, "peer removed from the ensemble");
    return 0;
}

int transport_listen_port(const struct transport *t) { return t->listen_port; }

size_t transport_peer_count(const struct transport *t) { return t->n_links; }

static void link_stats(const struct transport_link *link, struct transport_peer_stats *out)
{
    *out = link->stats;
    out->connected = link->state == LINK_UP;
    out->incoming = link->in != NULL;
    out->queued_bytes = link->out ? link->out->queued_bytes : 0;
}

int transport_peer_stats(const struct transport *t, size_t index, struct transport_peer_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    if (index >= t->n_links)
        return ZN_BADARGUMENTS;
    link_stats(&t->links[index], out);
    return 0;
}

int transport_peer_stats_by_id(const struct transport *t, uint32_t peer_id,
                               struct transport_peer_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    const struct transport_link *link = tp_link_find(t, peer_id);
    if (!link)
        return ZN_BADARGUMENTS;
    link_stats(link, out);
    return 0;
}

void transport_stats(const struct transport *t, struct transport_stats *out)
{
    ZN_ASSERT(t != NULL && out != NULL);
    *out = t->stats;
}
