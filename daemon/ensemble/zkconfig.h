/*
 * zkconfig: /zookeeper/config as ZooKeeper 3.8 presents it.
 *
 * In an ensemble the node holds the membership in ZooKeeper's dynamic-config
 * format (QuorumMaj.toString): one line per member, in id order,
 *   server.1=127.0.0.1:2888:3888:participant
 *   server.2=127.0.0.2:2888:3888:observer;0.0.0.0:2181
 * (the ";client" part only when the zoo.cfg line has one), then
 * "version=" and the config version in hex (0 for a static zoo.cfg, else
 * the zxid of the reconfig that made it).  A member joining with
 * joinEnsemble shows the ensemble it joins, without itself, until a
 * reconfig names it; a member a reconfig removed leaves itself out.  A
 * standalone server leaves the node as it starts: empty, dataVersion 0.
 */
#ifndef ZNODED_ZKCONFIG_H
#define ZNODED_ZKCONFIG_H

#include <stddef.h>

#include "config.h"

struct server;

/* Largest text zkconfig_text writes. */
#define ZKCONFIG_TEXT_MAX_BYTES (CONFIG_MAX_SERVERS * (CONFIG_HOST_BYTES * 2 + 64) + 64)

/* Writes cfg's membership text into buf (cap bytes, NUL terminated).
 * Returns its length; 0 for a standalone config; ZN_BADARGUMENTS when cap is
 * too small (ZKCONFIG_TEXT_MAX_BYTES always suffices). */
int zkconfig_text(const struct config *cfg, char *buf, size_t cap);

/* Sets srv->tree's /zookeeper/config from srv->cfg (tree_set_config), and
 * tells srv->prep whether reconfig is enabled; sets no node standalone.  Call after every tree_new and before serving: it is
 * kept across tree_deserialize.  Returns 0 or ZN_NOMEMORY. */
int zkconfig_install(struct server *srv);

#endif
