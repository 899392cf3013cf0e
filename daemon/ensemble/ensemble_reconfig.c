/*
 * The ensemble driver, reconfiguration (ZooKeeper 3.5's reconfig; the
 * design is in ensemble.c's notes): the leader turns a reconfig request into
 * a CONFIG entry, every member reaches the servers of a CONFIG entry as soon
 * as it is in its log, and its commit activates the new membership (dynamic
 * file, /zookeeper/config, the transport's peers, a removed member stops
 * serving).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "assert.h"
#include "check.h"
#include "ensemble_internal.h"
#include "log.h"
#include "prep.h"
#include "request.h"
#include "saslauth.h"
#include "snapshot.h"
#include "store.h"
#include "tls.h"
#include "transport.h"
#include "tree.h"
#include "txn.h"

/* ---- reconfig ---- */

/* Splits a CONFIG entry's data into its membership and attachment (the
 * arena holds the text).  Returns 0 or ZN_MARSHALLINGERROR. */
int ens_config_entry_parse(struct zn_arena *arena, const uint8_t *data, size_t len,
                              struct zab_membership *m, struct config_attachment *out)
{
    int64_t used = zab_membership_decode_prefix(data, len, m);
    if (used < 0)
        return ZN_MARSHALLINGERROR;
    struct jute_reader rd;
    jute_reader_init(&rd, data + used, len - (size_t)used, arena);
    struct jute_buf text;
    jute_read_long(&rd, &out->session_id);
    jute_read_int(&rd, &out->cxid);
    jute_read_buffer(&rd, &text);
    if (rd.error || text.len < 0 || text.len > RECONFIG_TEXT_MAX_BYTES)
        return ZN_MARSHALLINGERROR;
    char *copy = zn_arena_alloc(arena, (size_t)text.len + 1);
    if (!copy)
        return ZN_NOMEMORY;
    memcpy(copy, text.data, (size_t)text.len);
    copy[text.len] = '\0';
    out->text = copy;
    return 0;
}

/* Makes every server of cfg (but me and members a reconfig removed) a
 * transport peer; with prune, drops the transport peers cfg does not name
 * (at commit: ZooKeeper closes its connections to removed servers). */
void ens_peers_reconcile(struct ensemble *e, const struct config *cfg, bool prune)
{
    e->peers_dirty = false;
    if (!e->tp)
        return;
    for (int i = 0; i < cfg->server_count; i++) {
        const struct config_server *s = &cfg->servers[i];
        if (s->id == (int)e->my_id || s->not_member)
            continue;
        struct transport_peer p = {.id = (uint32_t)s->id, .port = s->peer_port};
        snprintf(p.host, sizeof p.host, "%s", s->host);
        int rc = transport_add_peer(e->tp, &p);
        if (rc == ZN_THROTTLEDOP)
            e->peers_dirty = true; /* its old connections still closing */
        else if (rc != 0)
            ZN_WARN("reconfig: cannot add peer id=%d %s:%d: %s", s->id, s->host, s->peer_port,
                    zn_strerror(rc));
    }
    if (!prune)
        return;
    for (size_t i = 0; i < transport_peer_count(e->tp); i++) {
        struct transport_peer_stats ps;
        if (transport_peer_stats(e->tp, i, &ps) != 0)
            continue;
        bool named = false;
        for (int k = 0; k < cfg->server_count; k++)
            named |= cfg->servers[k].id == (int)ps.id && !cfg->servers[k].not_member;
        if (!named)
            transport_remove_peer(e->tp, ps.id); /* ZN_BADARGUMENTS if already removed */
    }
}


/* A CONFIG entry reached the log (appended or recovered): remember its
 * server lines for its commit, and reach its new servers now.  If it is the
 * config already active from ids alone (a member that learned it from a
 * vote, then synced the entry), its server lines replace the guessed ones. */
void ens_config_entry_seen(struct ensemble *e, const struct zab_entry *entry)
{
    struct zn_arena arena;
    zn_arena_init(&arena);
    struct zab_membership m;
    struct config_attachment att;
    struct config *next = malloc(sizeof *next);
    char err[256];
    if (next && ens_config_entry_parse(&arena, entry->data, entry->size, &m, &att) == 0) {
        char *copy = strdup(att.text);
        if (copy) {
            free(e->config_text);
            e->config_text = copy;
            e->config_text_zxid = entry->zxid;
        }
        *next = e->srv->cfg;
        if (config_set_membership(next, att.text, err, sizeof err) == 0)
            ens_peers_reconcile(e, next, false);
        else
            ZN_WARN("reconfig: entry zxid=0x%" PRIx64 " has bad server lines: %s", entry->zxid, err);
    }
    free(next);
    zn_arena_free(&arena);
    if (e->config_ids_only && e->config_text_zxid == entry->zxid &&
        entry->zxid == e->srv->cfg.config_version) {
        m.version = entry->zxid;
        ens_config_activate(e, &m, e->removed);
    }
}

/* ready.config_changed: the membership m is committed.  Durable before the
 * batch's messages go out (the dynamic file), then the server list, the
 * transport and /zookeeper/config follow it. */
void ens_config_activate(struct ensemble *e, const struct zab_membership *m, bool removed)
{
    struct server *srv = e->srv;
    struct config *next = malloc(sizeof *next);
    if (!next)
        ens_fatal("out of memory activating a configuration", ZN_NOMEMORY);
    *next = srv->cfg;
    char err[256];
    bool have_text = e->config_text && e->config_text_zxid == m->version;
    if (have_text && config_set_membership(next, e->config_text, err, sizeof err) != 0) {
        ZN_ERROR("reconfig: committed config version=0x%" PRIx64 " has bad server lines: %s",
                 m->version, err);
        have_text = false;
        *next = srv->cfg;
    }
    e->config_ids_only = !have_text;
    if (!have_text) {
        /* Learned from the leader's SYNC or a vote (ids only): keep the
         * servers we know the addresses of. */
        int n = 0;
        for (int i = 0; i < next->server_count; i++) {
            struct config_server s = next->servers[i];
            bool voter = false, observer = false;
            for (uint32_t k = 0; k < m->n_voters; k++)
                voter |= m->voters[k] == (uint32_t)s.id;
            for (uint32_t k = 0; k < m->n_observers; k++)
                observer |= m->observers[k] == (uint32_t)s.id;
            if (!voter && !observer)
                continue;
            s.observer = observer;
            s.not_member = false;
            next->servers[n++] = s;
        }
        next->server_count = n;
        if ((uint32_t)n != m->n_voters + m->n_observers)
            ZN_WARN("reconfig: config version=0x%" PRIx64 " names %u servers, %d of them with a known address",
                    m->version, m->n_voters + m->n_observers, n);
    }
    bool named = false;
    for (int i = 0; i < next->server_count; i++)
        named |= next->servers[i].id == (int)e->my_id;
    if (!named) {
        /* keep my own line for my peer address; it is no part of the config */
        for (int i = 0; i < srv->cfg.server_count; i++)
            if (srv->cfg.servers[i].id == (int)e->my_id && next->server_count < CONFIG_MAX_SERVERS) {
                next->servers[next->server_count] = srv->cfg.servers[i];
                next->servers[next->server_count++].not_member = true;
            }
    }
    next->config_version = m->version;
    next->dynamic_loaded = true;
    char *text = malloc(ZKCONFIG_TEXT_MAX_BYTES);
    if (!text)
        ens_fatal("out of memory activating a configuration", ZN_NOMEMORY);
    int len = zkconfig_text(next, text, ZKCONFIG_TEXT_MAX_BYTES);
    ZN_ASSERT(len >= 0);
    int rc = config_write_dynamic(next, m->version, text, (size_t)len);
    free(text);
    if (rc != 0)
        ens_fatal("cannot write the dynamic configuration file", rc);
    srv->cfg = *next;
    free(next);
    rc = zkconfig_install(srv);
    if (rc != 0)
        ZN_ERROR("reconfig: cannot update /zookeeper/config: %s", zn_strerror(rc));
    /* ZooKeeper's reconfig is a setData of /zookeeper/config: its watches
     * fire (clients that follow the membership rely on it). */
    ens_tree_event(srv, ZN_EVENT_CHANGED, "/zookeeper/config");
    /* New servers now; those that left only after a grace period, so that
     * this batch's COMMIT reaches them and their votes are answered with
     * the membership that removed them (R6) until they learn it. */
    ens_peers_reconcile(e, &srv->cfg, false);
    e->prune_at_tick = e->tick_count + ENSEMBLE_PRUNE_GRACE_SYNC_LIMITS * e->sync_limit_ticks;
    ZN_INFO("reconfig: config version=0x%" PRIx64 " active: voters=%u observers=%u", m->version,
            m->n_voters, m->n_observers);
    if (removed && !e->removed) {
        /* Its clients are closed once this batch's commits are answered
         * (the reconfig's own client among them): ens_process_ready. */
        e->removed = true;
        ZN_WARN("reconfig: this member (id=%u) was removed from the ensemble by config version=0x%" PRIx64
                "; it stops serving clients and takes no further part (stop it)",
                e->my_id, m->version);
    }
}

/* A committed CONFIG entry: no tree txn; the member holding the client
 * that asked for it answers with the new config and its stat. */
void ens_config_entry_applied(struct ensemble *e, const struct zab_entry *entry)
{
    struct server *srv = e->srv;
    e->config_applied_zxid = entry->zxid;
    /* The tree's last zxid moves to it, as ZooKeeper applies reconfig as a
     * txn: a client that saw this zxid (the reconfig's reply) is refused by
     * any member whose tree is behind what it saw.  An ERROR txn changes
     * nothing else (nor the digest). */
    zn_arena_reset(&e->scratch);
    struct txn marker;
    memset(&marker, 0, sizeof marker);
    marker.hdr.type = ZN_OP_ERROR;
    marker.hdr.zxid = (int64_t)entry->zxid;
    marker.hdr.time_ms = server_wall_ms();
    marker.op.type = ZN_OP_ERROR;
    struct zn_response ignored;
    int rc = tree_apply(srv->tree, &marker, ens_tree_event, srv, &e->scratch, &ignored);
    if (rc != 0)
        ZN_ERROR("reconfig: cannot mark config zxid=0x%" PRIx64 " applied: %s", entry->zxid, zn_strerror(rc));
    prep_applied(srv->prep, (int64_t)entry->zxid);
    check_after_apply(srv, (int64_t)entry->zxid);
    zn_arena_reset(&e->scratch);
    struct zab_membership m;
    struct config_attachment att;
    if (ens_config_entry_parse(&e->scratch, entry->data, entry->size, &m, &att) != 0 || att.session_id == 0)
        return;
    struct session *s = session_find(srv, att.session_id);
    if (!s || !s->conn)
        return;
    for (struct request *r = s->conn->queue_head; r; r = r->next) {
        if (!r->is_write || r->done || r->hdr.type != ZN_OP_RECONFIG || r->hdr.xid != att.cxid)
            continue;
        const struct tree_node *n = tree_get(srv->tree, "/zookeeper/config");
        memset(&r->resp, 0, sizeof r->resp);
        r->resp.type = ZN_OP_RECONFIG;
        if (n) {
            struct jute_buf data = tree_node_data(n);
            uint8_t *copy = zn_arena_alloc(&r->arena, data.len > 0 ? (size_t)data.len : 1);
            if (copy && data.len > 0)
                memcpy(copy, data.data, (size_t)data.len);
            r->resp.data = (struct jute_buf){copy, copy ? data.len : -1};
            tree_node_stat(n, &r->resp.stat);
        }
        r->zxid = (int64_t)entry->zxid;
        r->err = ZN_OK;
        request_finish(srv, r);
        return;
    }
}

/* Appends "server.N=..." strings separated by commas to next (bulk form
 * adds them all to an empty list; incremental form replaces same ids).
 * ZooKeeper demands the client port of each joiner (need_client), not of the
 * members of a bulk list. */
static int reconfig_add_servers(struct config *next, const char *list, bool need_client)
{
    char *copy = strdup(list);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq) {
            ZN_WARN("reconfig refused: wrong format of server string '%s'", item);
            rc = ZN_BADARGUMENTS;
            break;
        }
        *eq = '\0';
        struct config_server s;
        char err[256];
        if (strncmp(item, "server.", 7) != 0 ||
            config_parse_server(item, eq + 1, &s, err, sizeof err) != 0) {
            ZN_WARN("reconfig refused: %s", strncmp(item, "server.", 7) ? "expected server.N=..." : err);
            rc = ZN_BADARGUMENTS;
            break;
        }
        if (need_client && s.client_address[0] == '\0') {
            ZN_WARN("reconfig refused: server.%d: each server should have 3 ports specified", s.id);
            rc = ZN_BADARGUMENTS;
            break;
        }
        int at = next->server_count;
        for (int i = 0; i < next->server_count; i++)
            if (next->servers[i].id == s.id)
                at = i;
        if (at == next->server_count && next->server_count >= CONFIG_MAX_SERVERS) {
            rc = ZN_BADARGUMENTS;
            break;
        }
        next->servers[at] = s;
        if (at == next->server_count)
            next->server_count++;
    }
    free(copy);
    return rc;
}

static int reconfig_remove_servers(struct config *next, const char *list)
{
    char *copy = strdup(list);
    if (!copy)
        return ZN_NOMEMORY;
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *end;
        long id = strtol(item, &end, 10);
        while (*end == ' ')
            end++;
        if (end == item || *end != '\0' || id <= 0) {
            ZN_WARN("reconfig refused: '%s' is not a server id", item);
            rc = ZN_BADARGUMENTS;
            break;
        }
        int n = 0;
        for (int i = 0; i < next->server_count; i++)
            if (next->servers[i].id != id)
                next->servers[n++] = next->servers[i];
        next->server_count = n;
    }
    free(copy);
    return rc;
}

static int reconfig_errno(int zab_rc)
{
    switch (zab_rc) {
    case ZAB_ENOQUORUM: return ZN_NEWCONFIGNOQUORUM;
    case ZAB_EBUSY: return ZN_RECONFIGINPROGRESS;
    case ZAB_EINVAL: return ZN_BADARGUMENTS;
    case ZAB_ENOMEM: return ZN_NOMEMORY;
    case ZAB_ENOTLEADER: return ZN_CONNECTIONLOSS;
    default: return ZN_SYSTEMERROR;
    }
}

/* ZooKeeper's PrepRequestProcessor for reconfig, in its order of checks;
 * on success proposes the CONFIG entry (zxid expected) and returns 0. */
static int reconfig_prepare(struct ensemble *e, struct request *r, uint64_t zxid,
                            struct config *next)
{
    struct server *srv = e->srv;
    if (!srv->cfg.reconfig_enabled) {
        ZN_ERROR("Reconfig operation requested but reconfig feature is disabled (reconfigEnabled=false) sid=0x%" PRIx64,
                 (uint64_t)r->session_id);
        return ZN_RECONFIGDISABLED;
    }
    struct zab_status st;
    zab_status(e->zab, &st);
    if (st.reconfig_pending)
        return ZN_RECONFIGINPROGRESS;
    if (r->req.config_id != -1 && (uint64_t)r->req.config_id != st.config.version) {
        ZN_WARN("reconfig refused: from version 0x%" PRIx64 ", the last seen version is 0x%" PRIx64,
                (uint64_t)r->req.config_id, st.config.version);
        return ZN_BADVERSION;
    }
    *next = srv->cfg;
    int n = 0; /* the membership as it is: members only */
    for (int i = 0; i < next->server_count; i++)
        if (!next->servers[i].not_member)
            next->servers[n++] = next->servers[i];
    next->server_count = n;
    int rc = 0;
    if (r->req.new_members && r->req.new_members[0]) {
        next->server_count = 0;
        rc = reconfig_add_servers(next, r->req.new_members, false);
    } else {
        if (r->req.leaving && r->req.leaving[0])
            rc = reconfig_remove_servers(next, r->req.leaving);
        if (rc == 0 && r->req.joining && r->req.joining[0])
            rc = reconfig_add_servers(next, r->req.joining, true);
    }
    if (rc != 0)
        return rc;
    uint32_t voters[CONFIG_MAX_SERVERS], observers[CONFIG_MAX_SERVERS];
    size_t n_voters = 0, n_observers = 0;
    for (int i = 0; i < next->server_count; i++) {
        if (next->servers[i].observer)
            observers[n_observers++] = (uint32_t)next->servers[i].id;
        else
            voters[n_voters++] = (uint32_t)next->servers[i].id;
    }
    /* standaloneEnabled (ZooKeeper's default): at least two voters */
    if (n_voters < 2) {
        ZN_WARN("reconfig refused: new configuration must include at least 2 followers");
        return ZN_BADARGUMENTS;
    }
    if (n_voters > ZAB_MEMBERS_MAX || n_observers > ZAB_OBSERVERS_MAX)
        return ZN_BADARGUMENTS;
    /* /zookeeper/config is READ_ACL_UNSAFE: only the super user (or
     * skipACL) passes this check, as in ZooKeeper 3.5.3+. */
    const struct tree_node *node = tree_get(srv->tree, "/zookeeper/config");
    struct zn_acl_vec acl = node ? tree_node_acl(node) : (struct zn_acl_vec){0};
    struct prep_caller who;
    acl_caller(srv, r, &who);
    if (acl_check(&acl, ZN_PERM_WRITE, who.ids, who.id_count, srv->cfg.skip_acl) != 0) {
        ZN_WARN("reconfig refused: not authorized (WRITE on /zookeeper/config) sid=0x%" PRIx64,
                (uint64_t)r->session_id);
        return ZN_NOAUTH;
    }
    next->config_version = zxid;
    char *text = malloc(ZKCONFIG_TEXT_MAX_BYTES);
    if (!text)
        return ZN_NOMEMORY;
    next->join_ensemble = false;
    int len = zkconfig_text(next, text, ZKCONFIG_TEXT_MAX_BYTES);
    ZN_ASSERT(len >= 0);
    jute_writer_reset(&e->out);
    jute_write_long(&e->out, r->session_id);
    jute_write_int(&e->out, r->hdr.xid);
    jute_write_buffer(&e->out, (const uint8_t *)text, len);
    free(text);
    if (e->out.error)
        return ZN_NOMEMORY;
    int64_t got = zab_propose_config_attached(e->zab, voters, n_voters, observers, n_observers, 0,
                                              e->out.data, (uint32_t)e->out.len);
    if (got < 0) {
        ZN_WARN("reconfig refused: %s", zab_strerror((int)got));
        return reconfig_errno((int)got);
    }
    ZN_ASSERT((uint64_t)got == zxid);
    ZN_INFO("reconfig proposed version=0x%" PRIx64 " voters=%zu observers=%zu sid=0x%" PRIx64, zxid,
            n_voters, n_observers, (uint64_t)r->session_id);
    return 0;
}

int ens_leader_reconfig(struct ensemble *e, struct request *r, uint64_t zxid)
{
    struct config *next = malloc(sizeof *next);
    if (!next)
        return ZN_NOMEMORY;
    int rc = reconfig_prepare(e, r, zxid, next);
    free(next);
    return rc;
}
