/*
 * Shared by daemon/config*.c only: the parsing helpers of config.c and the
 * membership steps (config_membership.c) config_set and config_finish call.
 * The configuration's interface is config.h.  Each function returning int
 * returns 0, or -1 with the reason in err (config_fail).
 */
#ifndef ZNODED_CONFIG_INTERNAL_H
#define ZNODED_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"

/* ---- config.c ---- */
/* Parses a whole decimal integer in [min, max]: 0, or -1 (err untouched). */
int config_parse_long(const char *value, long min, long max, long *out);
/* s without its leading and trailing blanks (cut in place). */
char *config_trim(char *s);

/* ---- config_membership.c ---- */
/* A server.N=... line (key "server.N") added to cfg->servers. */
int config_set_server(struct config *cfg, const char *key, const char *value, char *err,
                      size_t errlen);
/* dataDir/myid into cfg->my_id (an ensemble member's id, 0 to 255). */
int config_read_myid(struct config *cfg, char *err, size_t errlen);
/* dynamicConfigFile=: its server.N lines, and its version. */
int config_load_dynamic_config_file(struct config *cfg, char *err, size_t errlen);
/* The client address of this member's server line, as its clientPort. */
int config_client_port_from_server_line(struct config *cfg, char *err, size_t errlen);
/* The newest dynamic file reconfig wrote to dataDir, if any, as the membership. */
int config_load_dynamic(struct config *cfg, char *err, size_t errlen);
/* Warns when peerType disagrees with this member's server line. */
void config_check_peer_type(const struct config *cfg);

#endif
