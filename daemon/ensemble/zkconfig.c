/*
 * zkconfig: builds /zookeeper/config's text from zoo.cfg and puts it in the
 * tree (see zkconfig.h).  ZooKeeper sets that node on every member from its
 * own quorum configuration (ZKDatabase.initConfigInZKDatabase); the tree
 * keeps it out of the digest, so members agree however their texts differ.
 */
#include "zkconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "assert.h"
#include "prep.h"
#include "request.h"
#include "server.h"
#include "tree.h"
#include "znode/errors.h"

static int compare_ids(const void *a, const void *b)
{
    const struct config_server *x = *(const struct config_server *const *)a;
    const struct config_server *y = *(const struct config_server *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

int zkconfig_text(const struct config *cfg, char *buf, size_t cap)
{
    ZN_ASSERT(cfg != NULL && buf != NULL && cap > 0);
    buf[0] = '\0';
    if (cfg->server_count == 0)
        return 0;
    /* QuorumMaj keeps its members in a HashMap keyed by a Long id, which
     * iterates small ids in ascending order. */
    const struct config_server *sorted[CONFIG_MAX_SERVERS];
    int count = 0;
    for (int i = 0; i < cfg->server_count; i++)
        if (!cfg->servers[i].not_member && !(cfg->join_ensemble && !cfg->dynamic_loaded &&
                                             cfg->servers[i].id == cfg->my_id))
            sorted[count++] = &cfg->servers[i];
    qsort(sorted, (size_t)count, sizeof(sorted[0]), compare_ids);
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        const struct config_server *s = sorted[i];
        int n = snprintf(buf + used, cap - used, "server.%d=%s:%d:%d:%s%s%s\n", s->id, s->host, s->peer_port,
                         s->election_port, s->observer ? "observer" : "participant",
                         s->client_address[0] ? ";" : "", s->client_address);
        if (n < 0 || (size_t)n >= cap - used)
            return ZN_BADARGUMENTS;
        used += (size_t)n;
    }
    /* A static zoo.cfg is config version 0 (QuorumVerifier.getVersion);
     * after a reconfig, the zxid that committed it. */
    int n = snprintf(buf + used, cap - used, "version=%" PRIx64, cfg->config_version);
    if (n < 0 || (size_t)n >= cap - used)
        return ZN_BADARGUMENTS;
    return (int)(used + (size_t)n);
}

int zkconfig_install(struct server *srv)
{
    ZN_ASSERT(srv != NULL && srv->tree != NULL);
    if (srv->prep)
        prep_set_reconfig_enabled(srv->prep, srv->cfg.reconfig_enabled);
    if (srv->cfg.server_count == 0)
        return 0;
    char *text = malloc(ZKCONFIG_TEXT_MAX_BYTES);
    if (text == NULL)
        return ZN_NOMEMORY;
    int len = zkconfig_text(&srv->cfg, text, ZKCONFIG_TEXT_MAX_BYTES);
    ZN_ASSERT(len >= 0);
    int rc = tree_set_config(srv->tree, text, (size_t)len, (int64_t)srv->cfg.config_version,
                             server_wall_ms());
    free(text);
    return rc;
}
