/*
 * zab_message.c: the byte encoding of the peer messages of zab_message.h.
 * It owns nothing but the layout: big-endian integers, buffers as a u32
 * length then bytes, every length checked against what remains of the input
 * and against its named limit before anything is read.  A decoder that is
 * handed hostile bytes returns ZAB_ECORRUPT and has read nothing outside them.
 */
#include "zab.h"

#include <string.h>

struct writer {
    uint8_t *buf;
    size_t cap;
    size_t at;
    bool overflow;
};

struct reader {
    const uint8_t *buf;
    size_t len;
    size_t at;
    bool bad;
};

static void put_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->at) {
        w->overflow = true;
        return;
    }
    if (n)
        memcpy(w->buf + w->at, p, n);
    w->at += n;
}

static void put_u8(struct writer *w, uint8_t v) { put_bytes(w, &v, 1); }

static void put_u32(struct writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put_bytes(w, b, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}

static const uint8_t *get_bytes(struct reader *r, size_t n)
{
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->buf + r->at;
    r->at += n;
    return p;
}

static uint8_t get_u8(struct reader *r)
{
    const uint8_t *p = get_bytes(r, 1);
    return p ? p[0] : 0;
}

static uint32_t get_u32(struct reader *r)
{
    const uint8_t *p = get_bytes(r, 4);
    if (!p)
        return 0;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_u64(struct reader *r)
{
    uint64_t high = get_u32(r);
    return (high << 32) | get_u32(r);
}

/* A length-prefixed buffer of at most limit bytes; *data borrows the input. */
static uint32_t get_buffer(struct reader *r, uint32_t limit, const uint8_t **data)
{
    uint32_t size = get_u32(r);
    if (size > limit) {
        r->bad = true;
        *data = NULL;
        return 0;
    }
    *data = get_bytes(r, size);
    return r->bad ? 0 : size;
}

static void put_membership(struct writer *w, const struct zab_membership *m)
{
    if (m->n_voters > ZAB_MEMBERS_MAX || m->n_observers > ZAB_MEMBERSHIP_OBSERVERS_MAX) {
        w->overflow = true;
        return;
    }
    put_u64(w, m->version);
    put_u32(w, m->n_voters);
    for (uint32_t i = 0; i < m->n_voters; i++)
        put_u32(w, m->voters[i]);
    put_u32(w, m->n_observers);
    for (uint32_t i = 0; i < m->n_observers; i++)
        put_u32(w, m->observers[i]);
}

/* Reads a membership; an empty one (no voter) is allowed on the wire (a
 * SYNC from a leader with nothing to say), but ids are checked. */
static int get_membership(struct reader *r, struct zab_membership *m)
{
    memset(m, 0, sizeof *m);
    m->version = get_u64(r);
    m->n_voters = get_u32(r);
    if (r->bad || m->n_voters > ZAB_MEMBERS_MAX)
        return ZAB_ECORRUPT;
    for (uint32_t i = 0; i < m->n_voters; i++)
        m->voters[i] = get_u32(r);
    m->n_observers = get_u32(r);
    if (r->bad || m->n_observers > ZAB_MEMBERSHIP_OBSERVERS_MAX)
        return ZAB_ECORRUPT;
    for (uint32_t i = 0; i < m->n_observers; i++)
        m->observers[i] = get_u32(r);
    if (r->bad)
        return ZAB_ECORRUPT;
    uint32_t all[ZAB_MEMBERS_MAX + ZAB_MEMBERSHIP_OBSERVERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_voters; i++)
        all[n++] = m->voters[i];
    for (uint32_t i = 0; i < m->n_observers; i++)
        all[n++] = m->observers[i];
    for (uint32_t i = 0; i < n; i++) {
        if (all[i] == 0)
            return ZAB_ECORRUPT;
        for (uint32_t j = 0; j < i; j++)
            if (all[j] == all[i])
                return ZAB_ECORRUPT;
    }
    return 0;
}

static size_t membership_size(const struct zab_membership *m)
{
    return 8 + 4 + 4u * m->n_voters + 4 + 4u * m->n_observers;
}

size_t zab_membership_encoded_size(const struct zab_membership *m) { return membership_size(m); }

int64_t zab_membership_encode(const struct zab_membership *m, uint8_t *buf, size_t cap)
{
    struct writer w = {.buf = buf, .cap = cap};
    put_membership(&w, m);
    if (w.overflow)
        return ZAB_ETOOBIG;
    return (int64_t)w.at;
}

int zab_membership_decode(const uint8_t *buf, size_t len, struct zab_membership *m)
{
    int64_t used = zab_membership_decode_prefix(buf, len, m);
    if (used < 0 || (size_t)used != len)
        return ZAB_ECORRUPT;
    return 0;
}

int64_t zab_membership_decode_prefix(const uint8_t *buf, size_t len, struct zab_membership *m)
{
    struct reader r = {.buf = buf, .len = len};
    if (get_membership(&r, m) < 0 || r.bad || m->n_voters == 0)
        return ZAB_ECORRUPT;
    return (int64_t)r.at;
}

static void encode_body(struct writer *w, const struct zab_message *m)
{
    put_u8(w, m->type);
    put_u8(w, ZAB_WIRE_VERSION);
    put_u32(w, m->from);
    put_u32(w, m->to);
    switch (m->type) {
    case ZAB_MSG_NOTIFICATION:
        put_u32(w, m->u.notification.round);
        put_u8(w, m->u.notification.state);
        put_u32(w, m->u.notification.vote.leader);
        put_u32(w, m->u.notification.vote.epoch);
        put_u64(w, m->u.notification.vote.zxid);
        put_membership(w, &m->u.notification.membership);
        break;
    case ZAB_MSG_FOLLOWERINFO:
        put_u64(w, m->u.info.session);
        put_u32(w, m->u.info.accepted_epoch);
        put_u32(w, m->u.info.accepted_leader);
        put_u32(w, m->u.info.current_epoch);
        put_u64(w, m->u.info.last_zxid);
        break;
    case ZAB_MSG_ACKEPOCH:
        put_u32(w, m->epoch);
        put_u64(w, m->u.ackepoch.session);
        put_u32(w, m->u.ackepoch.current_epoch);
        put_u64(w, m->u.ackepoch.last_zxid);
        put_u64(w, m->u.ackepoch.base_zxid);
        if (m->u.ackepoch.n_epochs > ZAB_EPOCH_SUMMARY_MAX) {
            w->overflow = true;
            return;
        }
        put_u32(w, m->u.ackepoch.n_epochs);
        for (uint32_t i = 0; i < m->u.ackepoch.n_epochs; i++)
            put_u64(w, m->u.ackepoch.epoch_last[i]);
        break;
    case ZAB_MSG_SYNC:
        put_u32(w, m->epoch);
        put_u64(w, m->u.sync.session);
        put_u8(w, m->u.sync.mode);
        put_u64(w, m->u.sync.zxid);
        if (m->u.sync.size > ZAB_SNAPSHOT_BYTES_MAX) {
            w->overflow = true;
            return;
        }
        put_u32(w, m->u.sync.size);
        put_bytes(w, m->u.sync.data, m->u.sync.size);
        put_membership(w, &m->u.sync.membership);
        break;
    case ZAB_MSG_PROPOSAL:
        put_u32(w, m->epoch);
        put_u64(w, m->u.proposal.prev_zxid);
        put_u64(w, m->u.proposal.zxid);
        put_u8(w, m->u.proposal.kind);
        if (m->u.proposal.size > ZAB_ENTRY_BYTES_MAX) {
            w->overflow = true;
            return;
        }
        put_u32(w, m->u.proposal.size);
        put_bytes(w, m->u.proposal.data, m->u.proposal.size);
        break;
    case ZAB_MSG_NEWEPOCH:
        put_u32(w, m->epoch);
        put_u64(w, m->u.newepoch.session);
        break;
    case ZAB_MSG_NEWLEADER:
    case ZAB_MSG_ACKNEWLEADER:
    case ZAB_MSG_ACK:
    case ZAB_MSG_COMMIT:
    case ZAB_MSG_PING:
        put_u32(w, m->epoch);
        put_u64(w, m->u.zxid.zxid);
        break;
    default:
        w->overflow = true; /* unknown types are not encoded */
        break;
    }
}

size_t zab_message_encoded_size(const struct zab_message *msg)
{
    size_t size = ZAB_MESSAGE_HEADER_BYTES;
    switch (msg->type) {
    case ZAB_MSG_NOTIFICATION: size += 4 + 1 + 4 + 4 + 8 + membership_size(&msg->u.notification.membership); break;
    case ZAB_MSG_FOLLOWERINFO: size += 8 + 4 + 4 + 4 + 8; break;
    case ZAB_MSG_ACKEPOCH: size += 4 + 8 + 4 + 8 + 8 + 4 + 8u * msg->u.ackepoch.n_epochs; break;
    case ZAB_MSG_SYNC:
        size += 4 + 8 + 1 + 8 + 4 + (size_t)msg->u.sync.size + membership_size(&msg->u.sync.membership);
        break;
    case ZAB_MSG_PROPOSAL: size += 4 + 8 + 8 + 1 + 4 + (size_t)msg->u.proposal.size; break;
    case ZAB_MSG_NEWEPOCH: size += 4 + 8; break;
    default: size += 4 + 8; break;
    }
    return size;
}

int64_t zab_message_encode(const struct zab_message *msg, uint8_t *buf, size_t cap)
{
    struct writer w = {.buf = buf, .cap = cap};
    encode_body(&w, msg);
    if (w.overflow)
        return ZAB_ETOOBIG;
    return (int64_t)w.at;
}

int zab_message_decode(const uint8_t *buf, size_t len, struct zab_message *m)
{
    struct reader r = {.buf = buf, .len = len};
    memset(m, 0, sizeof *m);
    m->type = get_u8(&r);
    uint8_t version = get_u8(&r);
    m->from = get_u32(&r);
    m->to = get_u32(&r);
    if (r.bad || version != ZAB_WIRE_VERSION)
        return ZAB_ECORRUPT;
    switch (m->type) {
    case ZAB_MSG_NOTIFICATION:
        m->u.notification.round = get_u32(&r);
        m->u.notification.state = get_u8(&r);
        m->u.notification.vote.leader = get_u32(&r);
        m->u.notification.vote.epoch = get_u32(&r);
        m->u.notification.vote.zxid = get_u64(&r);
        if (get_membership(&r, &m->u.notification.membership) < 0)
            return ZAB_ECORRUPT;
        if (m->u.notification.state > 2)
            return ZAB_ECORRUPT;
        break;
    case ZAB_MSG_FOLLOWERINFO:
        m->u.info.session = get_u64(&r);
        m->u.info.accepted_epoch = get_u32(&r);
        m->u.info.accepted_leader = get_u32(&r);
        m->u.info.current_epoch = get_u32(&r);
        m->u.info.last_zxid = get_u64(&r);
        break;
    case ZAB_MSG_ACKEPOCH:
        m->epoch = get_u32(&r);
        m->u.ackepoch.session = get_u64(&r);
        m->u.ackepoch.current_epoch = get_u32(&r);
        m->u.ackepoch.last_zxid = get_u64(&r);
        m->u.ackepoch.base_zxid = get_u64(&r);
        m->u.ackepoch.n_epochs = get_u32(&r);
        if (m->u.ackepoch.n_epochs > ZAB_EPOCH_SUMMARY_MAX)
            return ZAB_ECORRUPT;
        for (uint32_t i = 0; i < m->u.ackepoch.n_epochs; i++)
            m->u.ackepoch.epoch_last[i] = get_u64(&r);
        break;
    case ZAB_MSG_SYNC:
        m->epoch = get_u32(&r);
        m->u.sync.session = get_u64(&r);
        m->u.sync.mode = get_u8(&r);
        m->u.sync.zxid = get_u64(&r);
        m->u.sync.size = get_buffer(&r, ZAB_SNAPSHOT_BYTES_MAX, &m->u.sync.data);
        if (get_membership(&r, &m->u.sync.membership) < 0)
            return ZAB_ECORRUPT;
        if (m->u.sync.mode < ZAB_SYNC_DIFF || m->u.sync.mode > ZAB_SYNC_SNAP)
            return ZAB_ECORRUPT;
        break;
    case ZAB_MSG_PROPOSAL:
        m->epoch = get_u32(&r);
        m->u.proposal.prev_zxid = get_u64(&r);
        m->u.proposal.zxid = get_u64(&r);
        m->u.proposal.kind = get_u8(&r);
        if (m->u.proposal.kind > 1)
            return ZAB_ECORRUPT;
        m->u.proposal.size = get_buffer(&r, ZAB_ENTRY_BYTES_MAX, &m->u.proposal.data);
        break;
    case ZAB_MSG_NEWEPOCH:
        m->epoch = get_u32(&r);
        m->u.newepoch.session = get_u64(&r);
        break;
    case ZAB_MSG_NEWLEADER:
    case ZAB_MSG_ACKNEWLEADER:
    case ZAB_MSG_ACK:
    case ZAB_MSG_COMMIT:
    case ZAB_MSG_PING:
        m->epoch = get_u32(&r);
        m->u.zxid.zxid = get_u64(&r);
        break;
    default:
        return ZAB_ECORRUPT;
    }
    if (r.bad || r.at != len)
        return ZAB_ECORRUPT;
    return 0;
}

const char *zab_message_type_name(uint8_t type)
{
    static const char *const names[] = {
        "?",       "NOTIFICATION", "FOLLOWERINFO", "NEWEPOCH", "ACKEPOCH", "SYNC",
        "PROPOSAL", "NEWLEADER",   "ACKNEWLEADER", "ACK",      "COMMIT",   "PING",
    };
    return type <= ZAB_MSG_TYPE_MAX ? names[type] : "?";
}
