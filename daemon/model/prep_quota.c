/*
 * prep_quota: ZooKeeper's checkQuota for the prep stage.  With enforceQuota
 * on, a create or setData that takes a quota's subtree past a limit is
 * warned about (rate-limited as ZooKeeper's RateLogger) and, past a hard
 * limit, refused with QUOTAEXCEEDED.
 *
 * Invariant: the limits and the stats are read from the applied tree, as
 * ZooKeeper reads them, never from the overlay.  Called by prep.c's create
 * and setData rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prep_internal.h"
#include "quota.h"

/* ZooKeeper logs quota warnings through a RateLogger: a warning equal to the
 * previous one is held back for this long. */
#define PREP_QUOTA_LOG_INTERVAL_MS 100

/* RateLogger.rateLimitLog: a warning equal to the last one within the
 * interval is counted, not logged. */
static void quota_warn(struct prep_call *c, const char *message)
{
    struct prep *p = c->p;
    if (strcmp(message, p->last_quota_message) == 0 &&
        c->now_ms - p->last_quota_message_ms < PREP_QUOTA_LOG_INTERVAL_MS) {
        p->quota_messages_held++;
        return;
    }
    if (p->quota_messages_held > 0)
        ZN_WARN("%s (and %llu more like it)", p->last_quota_message, (unsigned long long)p->quota_messages_held);
    snprintf(p->last_quota_message, sizeof(p->last_quota_message), "%s", message);
    p->last_quota_message_ms = c->now_ms;
    p->quota_messages_held = 0;
    ZN_WARN("%s", message);
}

/* One dimension of ZooKeeper's checkQuota: warns past the limit, and refuses
 * past a hard one. */
static int quota_check_one(struct prep_call *c, const char *prefix, const char *what, int64_t current,
                           int64_t diff, int64_t soft, int64_t hard)
{
    int64_t now = current + diff;
    bool is_hard = hard > -1;
    int64_t limit = is_hard ? hard : soft;
    if (now <= limit)
        return 0;
    char message[PREP_QUOTA_MESSAGE_BYTES];
    snprintf(message, sizeof(message), "Quota exceeded: %s [current %s=%lld, %s%sLimit=%lld]", prefix,
             what, (long long)now, is_hard ? "hard" : "soft", strcmp(what, "count") == 0 ? "Count" : "Byte",
             (long long)limit);
    quota_warn(c, message);
    return is_hard ? ZN_QUOTAEXCEEDED : 0;
}

/* ZooKeeperServer.checkQuota (enforceQuota only): against the committed
 * tree's limits and stats, as ZooKeeper reads them, not the overlay. */
int prep_check_quota(struct prep_call *c, const char *path, int64_t bytes_diff, int64_t count_diff)
{
    const struct prep *p = c->p;
    if (!p->options.enforce_quota)
        return 0;
    const char *prefix = tree_quota_prefix(p->tree, path);
    if (prefix == NULL)
        return 0;
    size_t len = strlen(QUOTA_ROOT) + strlen(prefix) + 1 + strlen(QUOTA_LIMIT_NODE);
    char *node_path = malloc(len + 1);
    if (node_path == NULL)
        return ZN_NOMEMORY;
    struct quota_record limits, stats;
    snprintf(node_path, len + 1, "%s%s/%s", QUOTA_ROOT, prefix, QUOTA_LIMIT_NODE);
    const struct tree_node *limit_node = tree_get(p->tree, node_path);
    snprintf(node_path, len + 1, "%s%s/%s", QUOTA_ROOT, prefix, QUOTA_STAT_NODE);
    const struct tree_node *stat_node = tree_get(p->tree, node_path);
    free(node_path);
    /* ZooKeeper logs a missing node and lets the write through; an
     * unparsable one would throw there, and lets it through here. */
    if (limit_node == NULL)
        return 0;
    struct jute_buf data = tree_node_data(limit_node);
    if (quota_record_parse(data.data, data.len, &limits) != 0)
        return 0;
    int64_t count_soft = quota_record_get(&limits, QUOTA_KEY_COUNT);
    int64_t count_hard = quota_record_get(&limits, QUOTA_KEY_COUNT_HARD);
    int64_t bytes_soft = quota_record_get(&limits, QUOTA_KEY_BYTES);
    int64_t bytes_hard = quota_record_get(&limits, QUOTA_KEY_BYTES_HARD);
    bool check_count = count_diff != 0 && (count_soft > -1 || count_hard > -1);
    bool check_bytes = bytes_diff != 0 && (bytes_soft > -1 || bytes_hard > -1);
    if (!check_count && !check_bytes)
        return 0;
    if (stat_node == NULL)
        return 0;
    data = tree_node_data(stat_node);
    if (quota_record_parse(data.data, data.len, &stats) != 0)
        return 0;
    int rc = 0;
    if (check_count)
        rc = quota_check_one(c, prefix, "count", quota_record_get(&stats, QUOTA_KEY_COUNT), count_diff, count_soft,
                             count_hard);
    if (rc == 0 && check_bytes)
        rc = quota_check_one(c, prefix, "bytes", quota_record_get(&stats, QUOTA_KEY_BYTES), bytes_diff, bytes_soft,
                             bytes_hard);
    return rc;
}
