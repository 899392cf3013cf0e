/* The events of the simulated world: deliveries, disk writes, crashes, partitions, proposals; what scripts and runs call (sim_internal.h). */
#include "sim_internal.h"

/* ---- events ------------------------------------------------------------ */

void deliver(struct sim_world *w, struct sim_msg *sm)
{
    struct sim_member *m = &w->m[sm->to];

    if (m->up && !connected(w, sm->from, sm->to) && w->o.manual)
        trace(w, "lost %d->%d (partition)", sm->from, sm->to);
    if (m->up && connected(w, sm->from, sm->to)) {
        struct zab_message msg;
        int rc = zab_message_decode(sm->bytes, sm->len, &msg);
        if (rc < 0) {
            violate(w, "decode of a message from %d failed: %s", sm->from, zab_strerror(rc));
        } else {
            if (w->o.trace) {
                char line[256];
                format_message(&msg, line, sizeof line);
                trace(w, "deliver %s", line);
            }
            zab_step(m->z, &msg);
            w->stats_delivered++;
            drive(w, m);
        }
    }
    free(sm->bytes);
}

void complete_writes(struct sim_world *w, struct sim_member *m, uint64_t upto_time)
{
    size_t k = 0;
    while (k < m->pending.n && m->pending.items[k].done_at <= upto_time)
        k++;
    if (!k)
        return;
    uint64_t last = m->pending.items[k - 1].zxid;
    for (size_t i = 0; i < k; i++)
        vec_push(&m->durable, m->pending.items[i]);
    memmove(m->pending.items, m->pending.items + k, (m->pending.n - k) * sizeof *m->pending.items);
    m->pending.n -= k;
    if (w->o.manual && w->o.trace) {
        char a[24];
        trace(w, "  %d durable to %s", m->id, zxid_str(a, last));
    }
    zab_persisted(m->z, last);
    drive(w, m);
}

/* Member `id`'s driver reports its link to `peer` up (zab_peer_connected). */
static void links_up(struct sim_world *w, int id, int peer)
{
    struct sim_member *m = &w->m[id];
    zab_peer_connected(m->z, (uint32_t)peer);
    drive(w, m);
}

/* A member (re)started: its links to every reachable member come up, both ways. */
static void links_up_with_all(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++)
        if (i != id && w->m[i].up && w->group[i] == w->group[id]) {
            links_up(w, id, i);
            links_up(w, i, id);
        }
}

/* The crashed member's peers see its links close (EOF, as after kill -9) at
 * once: before a restart, which may come in the same chaos step and brings
 * the links up again, as a reconnect follows the close in the daemon. */
static void crash_links_close(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++) {
        if (i == id || !w->m[i].up || !connected(w, id, i))
            continue;
        trace(w, "link %d->%d closed", i, id);
        zab_peer_disconnected(w->m[i].z, (uint32_t)id);
        drive(w, &w->m[i]);
    }
}

void sim_crash(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return;
    bool silent = w->o.manual || sim_chance(w, w->o.silent_crash_percent * 10);
    w->last_crash_silent = silent;
    trace(w, "crash %d%s", id, silent && !w->o.manual ? " (silent)" : "");
    zab_free(m->z);
    m->z = NULL;
    m->up = false;
    vec_clear(&m->pending); /* not reported durable: lost */
    if (!silent)
        crash_links_close(w, id);
}

void sim_restart(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (m->up || stays_down(w, id) || m->idle)
        return;
    trace(w, "restart %d", id);
    member_start(w, m);
    check_leaders(w);
    if (!w->o.manual) /* random runs: its links to the others come up */
        links_up_with_all(w, id);
}

void sim_partition(struct sim_world *w, const int *group)
{
    for (int i = 1; i <= slots(w); i++)
        w->group[i] = group[i];
    if (w->o.trace) {
        char line[64] = "";
        for (int i = 1; i <= slots(w); i++) {
            size_t len = strlen(line);
            snprintf(line + len, sizeof line - len, "%s%d:%d", i > 1 ? " " : "", i, group[i]);
        }
        trace(w, "partition %s", line);
    }
}

void sim_heal(struct sim_world *w)
{
    int group[SIM_MEMBERS_MAX + 1] = {0};
    int was[SIM_MEMBERS_MAX + 1];
    memcpy(was, w->group, sizeof was);
    memcpy(w->group, group, sizeof group);
    trace(w, "heal");
    if (!w->o.manual) /* random runs: the links cut by the partition come up */
        for (int i = 1; i <= slots(w); i++)
            for (int j = 1; j <= slots(w); j++)
                if (i != j && was[i] != was[j] && w->m[i].up && w->m[j].up)
                    links_up(w, i, j);
}

void sim_link(struct sim_world *w, int id, int peer, bool up)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return;
    trace(w, "link %d->%d %s", id, peer, up ? "up" : "closed");
    if (up)
        zab_peer_connected(m->z, (uint32_t)peer);
    else
        zab_peer_disconnected(m->z, (uint32_t)peer);
    drive(w, m);
    check_leaders(w);
}

void sim_tick(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++) {
        if ((id && i != id) || !w->m[i].up)
            continue;
        zab_tick(w->m[i].z);
        drive(w, &w->m[i]);
    }
    check_leaders(w);
}

int sim_deliver(struct sim_world *w, int from, int to, int max)
{
    /* In manual mode all messages have at == 0, so heap order is send order;
     * pick matching ones in seq order. */
    int n = 0;
    while (max == 0 || n < max) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < w->n_net; i++) {
            if ((from && w->net[i].from != from) || (to && w->net[i].to != to))
                continue;
            if (best == SIZE_MAX || w->net[i].seq < w->net[best].seq)
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        struct sim_msg sm = w->net[best];
        net_remove_at(w, best);
        deliver(w, &sm);
        check_leaders(w);
        n++;
    }
    return n;
}

int sim_drop(struct sim_world *w, int from, int to)
{
    int n = 0;
    for (size_t i = 0; i < w->n_net;) {
        if ((from && w->net[i].from != from) || (to && w->net[i].to != to)) {
            i++;
            continue;
        }
        free(w->net[i].bytes);
        net_remove_at(w, i);
        n++;
        i = 0; /* the heap reshuffled */
    }
    return n;
}

void sim_persist(struct sim_world *w, int id)
{
    for (int i = 1; i <= slots(w); i++)
        if ((!id || i == id) && w->m[i].up)
            complete_writes(w, &w->m[i], SIM_NEVER);
    check_leaders(w);
}

/* Member id's disk fails every write not yet durable (a full disk): they are
 * gone, and the driver asks the core to withdraw them (zab_persist_failed). */
int sim_persist_fail(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    vec_clear(&m->pending);
    int rc = zab_persist_failed(m->z);
    if (w->o.manual)
        trace(w, "  %d persist failed: %s", id, rc == 0 ? "withdrawn" : zab_strerror(rc));
    drive(w, m);
    return rc;
}

int64_t sim_propose(struct sim_world *w, int id, const char *data)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    int64_t zxid = zab_propose(m->z, (const uint8_t *)data, (uint32_t)strlen(data));
    char a[24];
    if (zxid > 0)
        trace(w, "%s%d propose %s %s", w->o.manual ? "  " : "", id, zxid_str(a, (uint64_t)zxid), data);
    else if (w->o.manual)
        trace(w, "  %d propose refused: %s", id, zab_strerror((int)zxid));
    drive(w, m);
    return zxid;
}

void sim_stabilize(struct sim_world *w, int max_rounds)
{
    for (int r = 0; r < max_rounds; r++) {
        int moved = sim_deliver(w, 0, 0, 0);
        bool wrote = false;
        for (int i = 1; i <= slots(w); i++)
            if (w->m[i].up && w->m[i].pending.n)
                wrote = true;
        sim_persist(w, 0);
        if (!moved && !wrote)
            return;
    }
}

int sim_join(struct sim_world *w, int id, int from)
{
    if (id < 1 || id > slots(w) || !w->m[id].idle || from < 1 || from > slots(w) || !w->m[from].up)
        return -1;
    struct sim_member *m = &w->m[id];
    struct zab_status st;
    zab_status(w->m[from].z, &st);
    trace(w, "%sjoin %d knowing membership of %d", w->o.manual ? "" : "", id, from);
    m->idle = false;
    m->joining = true;
    m->join_membership = st.config;
    member_start(w, m);
    check_leaders(w);
    if (!w->o.manual && m->up) /* random runs: its links come up, as on a restart */
        links_up_with_all(w, id);
    return m->up ? 0 : -1;
}

int64_t sim_propose_config(struct sim_world *w, int id, const uint32_t *voters, int n_voters,
                           const uint32_t *observers, int n_observers)
{
    struct sim_member *m = &w->m[id];
    if (!m->up)
        return ZAB_ENOTLEADER;
    int64_t zxid = zab_propose_config(m->z, voters, (size_t)n_voters, observers, (size_t)n_observers, 0);
    char line[128] = "", a[24];
    for (int i = 0; i < n_voters + n_observers; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%s%u%s", i ? "," : "",
                 i < n_voters ? voters[i] : observers[i - n_voters], i < n_voters ? "" : "o");
    }
    if (zxid > 0) {
        trace(w, "%s%d propose membership %s: %s", w->o.manual ? "  " : "", id, zxid_str(a, (uint64_t)zxid), line);
        w->has_proposed = true;
        w->proposed = (struct zab_membership){.n_voters = (uint32_t)n_voters, .n_observers = (uint32_t)n_observers};
        memcpy(w->proposed.voters, voters, (size_t)n_voters * sizeof *voters);
        memcpy(w->proposed.observers, observers, (size_t)n_observers * sizeof *observers);
    } else {
        trace(w, "%s%d propose membership %s refused: %s", w->o.manual ? "  " : "", id, line,
              zab_strerror((int)zxid));
    }
    drive(w, m);
    return zxid;
}

void sim_set_output(struct sim_world *w, FILE *out) { w->o.out = out; }
void sim_set_compaction(struct sim_world *w, int applies) { w->o.compact_every = applies; }

void sim_print_status(struct sim_world *w)
{
    char a[24], b[24], c[24];
    for (int i = 1; i <= slots(w); i++) {
        struct sim_member *m = &w->m[i];
        if (!m->up) {
            fprintf(w->o.out, "  %d %s\n", i, m->idle ? "idle" : "down");
            continue;
        }
        struct zab_status s;
        zab_status(m->z, &s);
        fprintf(w->o.out, "  %d %s/%s leader=%u epoch=%u accepted=%u current=%u last=%s committed=%s applied=%s\n",
                i, zab_role_name(s.role), zab_phase_name(s.phase), s.leader_id, s.epoch, s.accepted_epoch,
                s.current_epoch, zxid_str(a, s.last_zxid), zxid_str(b, s.committed_zxid),
                zxid_str(c, s.applied_zxid));
        if (w->o.reconfig || w->o.spares || s.config.version || s.reconfig_pending) {
            fprintf(w->o.out, "    membership %s voters=", zxid_str(a, s.config.version));
            for (uint32_t k = 0; k < s.config.n_voters; k++)
                fprintf(w->o.out, "%s%u", k ? "," : "", s.config.voters[k]);
            fprintf(w->o.out, " observers=");
            for (uint32_t k = 0; k < s.config.n_observers; k++)
                fprintf(w->o.out, "%s%u", k ? "," : "", s.config.observers[k]);
            if (s.reconfig_pending)
                fprintf(w->o.out, " pending=%s", zxid_str(b, s.pending_version));
            fputc('\n', w->o.out);
        }
    }
}

void sim_print_log(struct sim_world *w, int id)
{
    struct sim_member *m = &w->m[id];
    char a[24];
    fprintf(w->o.out, "  %d disk: epochs=%u/%u snapshot=%s log=", id, m->accepted_epoch, m->current_epoch,
            zxid_str(a, m->snapshot_zxid));
    for (size_t i = 0; i < m->durable.n; i++)
        fprintf(w->o.out, "%s%s", i ? "," : "", zxid_str(a, m->durable.items[i].zxid));
    if (m->pending.n) {
        fprintf(w->o.out, " pending=");
        for (size_t i = 0; i < m->pending.n; i++)
            fprintf(w->o.out, "%s%s", i ? "," : "", zxid_str(a, m->pending.items[i].zxid));
    }
    fputc('\n', w->o.out);
}
