/*
 * zab_log.c: the in-memory window of the log a member holds, as ZooKeeper's
 * committedLog: entries with zxids strictly increasing after base_zxid (the
 * point of the driver's last snapshot).  It owns the entry copies and keeps
 * the bookkeeping zxids (persisted, committed, applied, unstable index)
 * consistent when the window is truncated, reset or compacted.
 */
#include "zab_internal.h"

#include <string.h>

uint64_t zab_log_last(const struct zab *z)
{
    return z->n_entries ? z->entries[z->n_entries - 1].zxid : z->base_zxid;
}

uint64_t zab_log_prev(const struct zab *z, size_t index)
{
    ZAB_ASSERT(index <= z->n_entries);
    return index == 0 ? z->base_zxid : z->entries[index - 1].zxid;
}

/* The index of the first entry at or above zxid (n_entries: none), by
 * bisection: zxids increase along the window.  Within one epoch they are
 * consecutive counters, so the index is first guessed from the last entry
 * (the leader asks for the first uncommitted one before every proposal, and
 * a bisection over thousands in flight cost as much as the proposal). */
size_t zab_log_first_from(const struct zab *z, uint64_t zxid)
{
    size_t n = z->n_entries;
    if (n > 0) {
        uint64_t last = z->entries[n - 1].zxid;
        if (zxid > last)
            return n;
        if (zab_zxid_epoch(last) == zab_zxid_epoch(zxid)) {
            uint64_t back = zab_zxid_counter(last) - zab_zxid_counter(zxid);
            if (back < n) {
                size_t i = n - 1 - (size_t)back;
                if (z->entries[i].zxid == zxid) /* the first: zxids increase */
                    return i;
            }
        }
    }
    size_t low = 0, high = n;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (z->entries[mid].zxid < zxid)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

ptrdiff_t zab_log_find(const struct zab *z, uint64_t zxid)
{
    size_t low = zab_log_first_from(z, zxid);
    if (low < z->n_entries && z->entries[low].zxid == zxid)
        return (ptrdiff_t)low;
    return -1;
}

bool zab_log_contains(const struct zab *z, uint64_t zxid)
{
    return zxid == z->base_zxid || zab_log_find(z, zxid) >= 0;
}

int zab_log_append(struct zab *z, uint64_t zxid, const uint8_t *data, uint32_t size, uint8_t kind)
{
    ZAB_ASSERT(zxid > zab_log_last(z));
    ZAB_ASSERT(zab_zxid_counter(zxid) != 0);
    if (size > ZAB_ENTRY_BYTES_MAX)
        return ZAB_ETOOBIG;
    if (z->n_entries >= ZAB_LOG_ENTRIES_MAX)
        return ZAB_EBUSY;
    if (z->n_entries == z->cap_entries) {
        size_t cap = z->cap_entries ? z->cap_entries * 2 : 64;
        struct zab_entry *grown = realloc(z->entries, cap * sizeof *grown);
        if (!grown)
            return ZAB_ENOMEM;
        z->entries = grown;
        z->cap_entries = cap;
    }
    uint8_t *copy = zab_entry_alloc(z, size ? size : 1);
    if (!copy)
        return ZAB_ENOMEM;
    if (size)
        memcpy(copy, data, size);
    z->entries[z->n_entries++] = (struct zab_entry){.zxid = zxid, .size = size, .data = copy, .kind = kind};
    if (kind == ZAB_ENTRY_CONFIG)
        zab_membership_scan(z); /* R2: pending from now on */
    return 0;
}

static void clamp_marks(struct zab *z)
{
    uint64_t last = zab_log_last(z);
    if (z->persisted_zxid > last)
        z->persisted_zxid = last;
    if (z->committed_zxid > last)
        z->committed_zxid = last;
    if (z->unstable_index > z->n_entries)
        z->unstable_index = z->n_entries;
}

/* Drops entries with zxid > zxid.  Committed entries are never dropped:
 * invariant 4 of zab.c. */
void zab_log_truncate(struct zab *z, uint64_t zxid)
{
    ZAB_ASSERT(zxid >= z->committed_zxid);
    ZAB_ASSERT(zxid >= z->base_zxid);
    while (z->n_entries && z->entries[z->n_entries - 1].zxid > zxid) {
        zab_entry_free(z, z->entries[z->n_entries - 1].data);
        z->n_entries--;
    }
    clamp_marks(z);
    zab_membership_scan(z); /* a pending CONFIG entry may be gone */
}

/* Empties the window: the driver installs a snapshot at base_zxid. */
void zab_log_reset(struct zab *z, uint64_t base_zxid)
{
    for (size_t i = 0; i < z->n_entries; i++)
        zab_entry_free(z, z->entries[i].data);
    z->n_entries = 0;
    z->unstable_index = 0;
    z->base_zxid = base_zxid;
    z->persisted_zxid = base_zxid;
    z->committed_zxid = base_zxid;
    z->applied_zxid = base_zxid;
    zab_membership_scan(z);
}

/* Keeps a compacted entry's buffer for zab_collect; frees it at once only
 * if the list cannot grow. */
static void zab_log_retire(struct zab *z, void *data)
{
    if (!data)
        return;
    if (z->n_retired == z->cap_retired) {
        if (z->retired_head > 0) {
            /* the freed front makes room */
            memmove(z->retired, z->retired + z->retired_head,
                    (z->n_retired - z->retired_head) * sizeof *z->retired);
            z->n_retired -= z->retired_head;
            z->retired_head = 0;
        } else {
            size_t cap = z->cap_retired ? 2 * z->cap_retired : 1024;
            void **grown = realloc(z->retired, cap * sizeof *grown);
            if (!grown) {
                zab_entry_free(z, data);
                return;
            }
            z->retired = grown;
            z->cap_retired = cap;
        }
    }
    z->retired[z->n_retired++] = data;
}

size_t zab_collect(struct zab *z, size_t max)
{
    while (max > 0 && z->retired_head < z->n_retired) {
        zab_entry_free(z, z->retired[z->retired_head++]);
        max--;
    }
    if (z->retired_head == z->n_retired)
        z->retired_head = z->n_retired = 0;
    return z->n_retired - z->retired_head;
}

void zab_log_compact(struct zab *z, uint64_t zxid)
{
    if (zxid > z->applied_zxid)
        zxid = z->applied_zxid;
    if (zxid > z->persisted_zxid)
        zxid = z->persisted_zxid;
    size_t drop = 0;
    while (drop < z->n_entries && z->entries[drop].zxid <= zxid && drop < z->unstable_index)
        drop++;
    if (!drop)
        return;
    z->base_zxid = z->entries[drop - 1].zxid;
    for (size_t i = 0; i < drop; i++)
        zab_log_retire(z, z->entries[i].data);
    memmove(z->entries, z->entries + drop, (z->n_entries - drop) * sizeof *z->entries);
    z->n_entries -= drop;
    z->unstable_index -= drop;
}

/* The last zxid of each epoch in the window, newest first, then the base. */
uint32_t zab_log_epoch_summary(const struct zab *z, uint64_t *out, uint32_t max)
{
    uint32_t n = 0;
    for (size_t i = z->n_entries; i > 0 && n < max; i--) {
        uint64_t zxid = z->entries[i - 1].zxid;
        if (n == 0 || zab_zxid_epoch(out[n - 1]) != zab_zxid_epoch(zxid))
            out[n++] = zxid;
    }
    return n;
}

/* The last zxid of epoch in the window.  *known is false when the window
 * cannot tell (the epoch may end inside the compacted part). */
uint64_t zab_log_last_of_epoch(const struct zab *z, uint32_t epoch, bool *known)
{
    for (size_t i = z->n_entries; i > 0; i--) {
        uint64_t zxid = z->entries[i - 1].zxid;
        if (zab_zxid_epoch(zxid) == epoch) {
            *known = true;
            return zxid;
        }
        if (zab_zxid_epoch(zxid) < epoch)
            break;
    }
    /* No entry of that epoch in the window. */
    if (zab_zxid_epoch(z->base_zxid) == epoch) {
        *known = true;
        return z->base_zxid;
    }
    *known = epoch > zab_zxid_epoch(z->base_zxid) || z->base_zxid == 0;
    return 0;
}
