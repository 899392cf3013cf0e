/*
 * tree_session: the replicated session table (tree.h's "sessions") and each
 * session's ephemerals.  A session is replicated state: txns create and close
 * it (tree_apply.c), a snapshot carries it (tree_snapshot.c); the live side
 * (expiry, connections) is daemon/net/session.c's.
 *
 * A session's ephemerals are an array of node pointers in the session (an
 * ephemeral knows its index there, tree_node.eph_slot, which shares the
 * place of the children an ephemeral never has), so add and remove are O(1)
 * (remove swaps the last one into the hole) and close-session is O(its
 * ephemerals), with no bytes spent on the nodes that are not ephemeral
 * (nearly all of them); tree_node_attach and tree_node_detach (tree.c) keep a node on
 * its owner's list (invariant 3, tree_internal.h).  A session moves the
 * digest by its own hash while it is in the table (invariant 4).
 */
#include <stdlib.h>

#include "assert.h"
#include "tree_internal.h"

static bool session_has_id(const struct zn_hlink *l, const void *key)
{
    return ZN_HENTRY(l, const struct tree_session, link)->id == *(const int64_t *)key;
}

struct tree_session *tree_session_find(const struct tree *t, int64_t id)
{
    struct zn_hlink *l = zn_htable_find(&t->sessions, zn_hash(&id, sizeof(id)), session_has_id, &id);
    return l ? ZN_HENTRY(l, struct tree_session, link) : NULL;
}

void tree_session_link(struct tree *t, struct tree_session *s)
{
    zn_htable_insert(&t->sessions, &s->link, zn_hash(&s->id, sizeof(s->id)));
    t->digest += tree_session_digest(s->id, s->timeout_ms);
}

void tree_session_unlink(struct tree *t, struct tree_session *s)
{
    zn_htable_remove(&t->sessions, &s->link);
    t->digest -= tree_session_digest(s->id, s->timeout_ms);
}

int tree_session_insert(struct tree *t, int64_t id, int32_t timeout_ms, struct tree_session **out)
{
    if (!tree_owner_is_session(id) || tree_session_find(t, id) != NULL ||
        zn_htable_count(&t->sessions) >= TREE_MAX_SESSIONS)
        return ZN_BADARGUMENTS;
    struct tree_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ZN_NOMEMORY;
    s->id = id;
    s->timeout_ms = timeout_ms;
    tree_session_link(t, s);
    if (out)
        *out = s;
    return 0;
}

void tree_session_free(struct tree_session *s)
{
    if (s == NULL)
        return;
    free(s->eph);
    free(s);
}

int tree_ephemeral_reserve(struct tree_session *s)
{
    if (s->eph_count < s->eph_cap)
        return 0;
    size_t cap = s->eph_cap ? s->eph_cap * 2 : 4;
    struct tree_node **e = realloc(s->eph, sizeof(*e) * cap);
    if (e == NULL)
        return ZN_NOMEMORY;
    s->eph = e;
    s->eph_cap = cap;
    return 0;
}

/* Room was reserved; a node put back by an undo finds the room it left (the
 * array never shrinks). */
void tree_ephemeral_link(struct tree_session *s, struct tree_node *n)
{
    ZN_ASSERT(s->eph_count < s->eph_cap);
    n->eph_slot = s->eph_count;
    s->eph[s->eph_count++] = n;
}

void tree_ephemeral_unlink(struct tree_session *s, struct tree_node *n)
{
    ZN_ASSERT(n->eph_slot < s->eph_count && s->eph[n->eph_slot] == n);
    struct tree_node *last = s->eph[--s->eph_count];
    s->eph[n->eph_slot] = last;
    last->eph_slot = n->eph_slot;
}

bool tree_session_exists(const struct tree *t, int64_t session_id)
{
    return tree_session_find(t, session_id) != NULL;
}

int tree_session_timeout(const struct tree *t, int64_t session_id, int32_t *timeout_ms)
{
    const struct tree_session *s = tree_session_find(t, session_id);
    if (s == NULL)
        return ZN_SESSIONEXPIRED;
    *timeout_ms = s->timeout_ms;
    return 0;
}

size_t tree_session_count(const struct tree *t) { return zn_htable_count(&t->sessions); }

int tree_for_each_session(const struct tree *t, tree_session_fn fn, void *ctx)
{
    struct zn_hiter it;
    zn_hiter_init(&it, &t->sessions);
    for (const struct zn_hlink *l; (l = zn_hiter_next(&it)) != NULL;) {
        const struct tree_session *s = ZN_HENTRY(l, const struct tree_session, link);
        int rc = fn(ctx, s->id, s->timeout_ms);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tree_for_each_ephemeral(const struct tree *t, int64_t session_id, tree_path_fn fn, void *ctx)
{
    const struct tree_session *s = tree_session_find(t, session_id);
    for (size_t i = 0; s && i < s->eph_count; i++) {
        int rc = fn(ctx, tree_path_of(s->eph[i]));
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t tree_ephemeral_count(const struct tree *t) { return t->ephemeral_count; }

size_t tree_session_ephemeral_count(const struct tree *t, int64_t session_id)
{
    const struct tree_session *s = tree_session_find(t, session_id);
    return s ? s->eph_count : 0;
}
