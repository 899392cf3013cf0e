/*
 * quota: ZooKeeper's quota records (StatsTrack) and quota paths (Quotas).
 *
 * A quota on /a lives in two nodes ZooKeeper clients (zkCli's setquota,
 * listquota, delquota) create and read themselves:
 *   /zookeeper/quota/a/zookeeper_limits   the limits, e.g.
 *       "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"
 *   /zookeeper/quota/a/zookeeper_stats    what /a's subtree holds, e.g.
 *       "count=3,bytes=17"
 * The tree keeps the stats current as it applies txns (tree_quota.c, as
 * ZooKeeper's DataTree.updateQuotaStat); prep refuses a write that would pass
 * a hard limit when enforceQuota is on (prep_quota.c, as ZooKeeperServer.checkQuota).
 *
 * A record is "key=value" pairs separated by ',' or ';'.  Formatting is
 * StatsTrack.toString's: count and bytes first, and when any other key is
 * present a spurious '=' after bytes (so 3.4 parsers ignore the rest) and the
 * other keys sorted, each after ';'.  A missing key reads as -1.
 *
 * Pure functions: no I/O, no allocation.
 */
#ifndef ZNODED_QUOTA_H
#define ZNODED_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_ROOT "/zookeeper/quota"
#define QUOTA_LIMIT_NODE "zookeeper_limits"
#define QUOTA_STAT_NODE "zookeeper_stats"

#define QUOTA_KEY_COUNT "count"
#define QUOTA_KEY_BYTES "bytes"
#define QUOTA_KEY_COUNT_HARD "countHardLimit"
#define QUOTA_KEY_BYTES_HARD "byteHardLimit"

/* Most distinct keys one record may hold (ZooKeeper writes four). */
#define QUOTA_MAX_KEYS 16
/* Longest key kept (ZooKeeper's longest is 14 bytes). */
#define QUOTA_KEY_MAX_BYTES 64
/* Longest formatted record: every key at its longest with a 20-digit value. */
#define QUOTA_RECORD_MAX_BYTES (QUOTA_MAX_KEYS * (QUOTA_KEY_MAX_BYTES + 24) + 8)

struct quota_record {
    int count;
    struct {
        char key[QUOTA_KEY_MAX_BYTES + 1];
        int64_t value;
    } items[QUOTA_MAX_KEYS];
};

/*
 * Parses a record as StatsTrack(String) does: an empty or null (len <= 0)
 * record has no keys; an empty value reads as -1; a repeated key keeps its
 * last value.  Returns 0, or ZN_BADARGUMENTS where StatsTrack would throw (a
 * pair without '=' and value, a value that is not a Java long) or a key or
 * key count is over the limits above; *out is then empty.
 */
int quota_record_parse(const uint8_t *data, int32_t len, struct quota_record *out);

/* The value of key, or -1 when absent. */
int64_t quota_record_get(const struct quota_record *r, const char *key);

/* Sets key; ZN_BADARGUMENTS when the key is too long or the record full. */
int quota_record_set(struct quota_record *r, const char *key, int64_t value);

/* Writes the record as StatsTrack.toString into buf (cap bytes, NUL
 * terminated); returns its length, or ZN_BADARGUMENTS when cap is too small
 * (QUOTA_RECORD_MAX_BYTES always suffices). */
int quota_record_format(const struct quota_record *r, char *buf, size_t cap);

/*
 * The real path a node under /zookeeper/quota/ stands for: for
 * "/zookeeper/quota/a/b" it is "/a/b" (a pointer into quota_dir).  NULL when
 * quota_dir is not strictly below "/zookeeper/quota/".
 */
const char *quota_real_path(const char *quota_dir);

#endif
