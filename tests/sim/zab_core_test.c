/*
 * Unit tests of the replication core's edges that the simulator does not
 * aim at: the message codec (round trips, every truncation, limits, random
 * bytes) and the configuration and API contracts of zab_new/zab_propose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zab.h"

static const uint8_t payload[] = "set /a 1";

static size_t sample_messages(struct zab_message *out)
{
    size_t n = 0;
    struct zab_message m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_NOTIFICATION, m.from = 1, m.to = 2;
    m.u.notification.round = 7, m.u.notification.state = ZAB_FOLLOWING;
    m.u.notification.vote = (struct zab_vote){.leader = 3, .epoch = 4, .zxid = 0x400000009ull};
    m.u.notification.membership = (struct zab_membership){
        .version = 0x300000002ull, .n_voters = 3, .voters = {1, 2, 3}, .n_observers = 1, .observers = {9}};
    out[n++] = m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_FOLLOWERINFO, m.from = 2, m.to = 3;
    m.u.info.session = 0xdeadbeefcafef00dull, m.u.info.accepted_epoch = 5, m.u.info.accepted_leader = 3;
    m.u.info.current_epoch = 4, m.u.info.last_zxid = 0x400000002ull;
    out[n++] = m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_NEWEPOCH, m.from = 3, m.to = 2, m.epoch = 6, m.u.newepoch.session = 41;
    out[n++] = m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_ACKEPOCH, m.from = 2, m.to = 3, m.epoch = 6;
    m.u.ackepoch.session = 99, m.u.ackepoch.current_epoch = 4, m.u.ackepoch.last_zxid = 0x400000002ull;
    m.u.ackepoch.base_zxid = 0x200000001ull, m.u.ackepoch.n_epochs = 2;
    m.u.ackepoch.epoch_last[0] = 0x400000002ull, m.u.ackepoch.epoch_last[1] = 0x300000007ull;
    out[n++] = m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_SYNC, m.from = 3, m.to = 2, m.epoch = 6;
    m.u.sync.session = 77, m.u.sync.mode = ZAB_SYNC_SNAP, m.u.sync.zxid = 0x500000001ull;
    m.u.sync.data = payload, m.u.sync.size = sizeof payload;
    m.u.sync.membership = (struct zab_membership){.version = 0x500000001ull, .n_voters = 2, .voters = {2, 3}};
    out[n++] = m;

    memset(&m, 0, sizeof m);
    m.type = ZAB_MSG_PROPOSAL, m.from = 3, m.to = 1, m.epoch = 6;
    m.u.proposal.prev_zxid = 0x600000001ull, m.u.proposal.zxid = 0x600000002ull;
    m.u.proposal.data = payload, m.u.proposal.size = sizeof payload;
    m.u.proposal.kind = ZAB_ENTRY_CONFIG;
    out[n++] = m;

    const uint8_t zxid_types[] = {ZAB_MSG_NEWLEADER, ZAB_MSG_ACKNEWLEADER, ZAB_MSG_ACK, ZAB_MSG_COMMIT,
                                  ZAB_MSG_PING};
    for (size_t i = 0; i < sizeof zxid_types; i++) {
        memset(&m, 0, sizeof m);
        m.type = zxid_types[i], m.from = 1, m.to = 3, m.epoch = 6;
        m.u.zxid.zxid = 0x600000000ull + i;
        out[n++] = m;
    }
    return n;
}

static void assert_same_message(const struct zab_message *a, const struct zab_message *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->epoch, b->epoch);
    switch (a->type) {
    case ZAB_MSG_SYNC:
        assert_int_equal(a->u.sync.session, b->u.sync.session);
        assert_int_equal(a->u.sync.mode, b->u.sync.mode);
        assert_int_equal(a->u.sync.zxid, b->u.sync.zxid);
        assert_int_equal(a->u.sync.size, b->u.sync.size);
        assert_memory_equal(a->u.sync.data, b->u.sync.data, a->u.sync.size);
        assert_memory_equal(&a->u.sync.membership, &b->u.sync.membership, sizeof a->u.sync.membership);
        break;
    case ZAB_MSG_PROPOSAL:
        assert_int_equal(a->u.proposal.prev_zxid, b->u.proposal.prev_zxid);
        assert_int_equal(a->u.proposal.zxid, b->u.proposal.zxid);
        assert_int_equal(a->u.proposal.kind, b->u.proposal.kind);
        assert_int_equal(a->u.proposal.size, b->u.proposal.size);
        assert_memory_equal(a->u.proposal.data, b->u.proposal.data, a->u.proposal.size);
        break;
    default:
        /* the union holds no pointers for the other types */
        assert_memory_equal(&a->u, &b->u, sizeof a->u);
        break;
    }
}

static void every_message_type_round_trips(void **state)
{
    struct zab_message msgs[16];
    size_t n = sample_messages(msgs);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[256];
        size_t size = zab_message_encoded_size(&msgs[i]);
        assert_true(size <= sizeof buf);
        assert_int_equal(zab_message_encode(&msgs[i], buf, sizeof buf), (int64_t)size);
        struct zab_message back;
        assert_int_equal(zab_message_decode(buf, size, &back), 0);
        assert_same_message(&msgs[i], &back);
    }
}

static void decode_rejects_every_truncation_and_trailing_bytes(void **state)
{
    struct zab_message msgs[16];
    size_t n = sample_messages(msgs);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[256];
        size_t size = (size_t)zab_message_encode(&msgs[i], buf, sizeof buf);
        for (size_t len = 0; len < size; len++) {
            /* a heap copy of exactly len bytes, so ASan sees any over-read */
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, buf, len);
            struct zab_message back;
            assert_int_equal(zab_message_decode(cut, len, &back), ZAB_ECORRUPT);
            free(cut);
        }
        buf[size] = 0;
        struct zab_message back;
        assert_int_equal(zab_message_decode(buf, size + 1, &back), ZAB_ECORRUPT);
    }
}

static void encode_refuses_a_buffer_one_byte_short(void **state)
{
    struct zab_message msgs[16];
    size_t n = sample_messages(msgs);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[256];
        size_t size = zab_message_encoded_size(&msgs[i]);
        assert_int_equal(zab_message_encode(&msgs[i], buf, size - 1), ZAB_ETOOBIG);
    }
}

static void decode_rejects_unknown_type_version_and_lengths_over_limits(void **state)
{
    struct zab_message msgs[16];
    sample_messages(msgs);
    uint8_t buf[512];
    struct zab_message back;

    size_t size = (size_t)zab_message_encode(&msgs[2], buf, sizeof buf); /* NEWEPOCH */
    buf[0] = 0;
    assert_int_equal(zab_message_decode(buf, size, &back), ZAB_ECORRUPT);
    buf[0] = ZAB_MSG_TYPE_MAX + 1;
    assert_int_equal(zab_message_decode(buf, size, &back), ZAB_ECORRUPT);
    buf[0] = ZAB_MSG_NEWEPOCH, buf[1] = ZAB_WIRE_VERSION + 1;
    assert_int_equal(zab_message_decode(buf, size, &back), ZAB_ECORRUPT);

    /* PROPOSAL: header 10, epoch 4, prev 8, zxid 8, kind 1, then the u32
     * size.  The bytes are really there, so only the limit can refuse them. */
    uint32_t too_big = ZAB_ENTRY_BYTES_MAX + 1;
    uint8_t *huge = calloc(1, 35 + (size_t)too_big);
    assert_non_null(huge);
    zab_message_encode(&msgs[5], huge, 35);
    huge[31] = (uint8_t)(too_big >> 24), huge[32] = (uint8_t)(too_big >> 16);
    huge[33] = (uint8_t)(too_big >> 8), huge[34] = (uint8_t)too_big;
    assert_int_equal(zab_message_decode(huge, 35 + (size_t)too_big, &back), ZAB_ECORRUPT);
    huge[34]--; /* exactly at the limit: accepted */
    assert_int_equal(zab_message_decode(huge, 34 + (size_t)too_big, &back), 0);
    huge[30] = 2; /* an unknown entry kind */
    assert_int_equal(zab_message_decode(huge, 34 + (size_t)too_big, &back), ZAB_ECORRUPT);
    free(huge);

    /* A membership naming an id twice, or with too many voters, is refused. */
    struct zab_membership dup = {.version = 1, .n_voters = 2, .voters = {4, 4}};
    uint8_t mb[ZAB_MEMBERSHIP_BYTES_MAX];
    int64_t mlen = zab_membership_encode(&dup, mb, sizeof mb);
    assert_true(mlen > 0);
    struct zab_membership mback;
    assert_int_equal(zab_membership_decode(mb, (size_t)mlen, &mback), ZAB_ECORRUPT);
    dup.voters[1] = 5;
    mlen = zab_membership_encode(&dup, mb, sizeof mb);
    assert_int_equal(zab_membership_decode(mb, (size_t)mlen, &mback), 0);
    assert_memory_equal(&dup, &mback, sizeof dup);
    assert_int_equal(zab_membership_decode(mb, (size_t)mlen - 1, &mback), ZAB_ECORRUPT);
    dup.n_voters = ZAB_MEMBERS_MAX + 1;
    assert_int_equal(zab_membership_encode(&dup, mb, sizeof mb), ZAB_ETOOBIG);

    /* ACKEPOCH: header 10, epoch 4, session 8, current 4, last 8, base 8, then
     * n and n zxids: one summary entry too many, all bytes present. */
    size = (size_t)zab_message_encode(&msgs[3], buf, sizeof buf);
    size_t over = 46 + 8u * (ZAB_EPOCH_SUMMARY_MAX + 1);
    assert_true(over <= sizeof buf);
    memset(buf + 46, 0, over - 46);
    buf[45] = ZAB_EPOCH_SUMMARY_MAX + 1;
    assert_int_equal(zab_message_decode(buf, over, &back), ZAB_ECORRUPT);
    buf[45] = ZAB_EPOCH_SUMMARY_MAX;
    assert_int_equal(zab_message_decode(buf, over - 8, &back), 0);

    struct zab_message big = msgs[3];
    big.u.ackepoch.n_epochs = ZAB_EPOCH_SUMMARY_MAX + 1;
    assert_int_equal(zab_message_encode(&big, buf, sizeof buf), ZAB_ETOOBIG);
}

/* Random bytes never crash the decoder; what decodes re-encodes identically. */
static void decode_survives_random_bytes(void **state)
{
    uint64_t x = 12345;
    uint8_t buf[128], again[256];
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        if (len >= 2 && round % 2 == 0) {
            buf[0] = (uint8_t)(1 + x % ZAB_MSG_TYPE_MAX); /* reach the bodies more often */
            buf[1] = ZAB_WIRE_VERSION;
        }
        struct zab_message m;
        if (zab_message_decode(buf, len, &m) == 0) {
            assert_int_equal(zab_message_encode(&m, again, sizeof again), (int64_t)len);
            assert_memory_equal(buf, again, len);
        }
    }
}

static void zab_new_rejects_bad_configurations(void **state)
{
    uint32_t voters[] = {1, 2, 3};
    uint32_t duplicates[] = {1, 2, 2};
    struct zab_config good = {.id = 1, .voters = voters, .n_voters = 3, .heartbeat_ticks = 2,
                              .init_limit_ticks = 10, .sync_limit_ticks = 5};
    struct zab *z = NULL;
    assert_int_equal(zab_new(&good, &z), 0);
    zab_free(z);

    struct zab_config c = good;
    c.id = 4;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL);
    assert_null(z);
    c = good, c.voters = duplicates;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL);
    c = good, c.heartbeat_ticks = 0;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL);
    c = good, c.n_voters = ZAB_MEMBERS_MAX + 1;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL);
    c = good, c.n_voters = 0;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL);

    struct zab_entry entries[] = {{.zxid = 0x100000002ull, .size = 1, .data = (uint8_t *)"a"},
                                  {.zxid = 0x100000001ull, .size = 1, .data = (uint8_t *)"b"}};
    struct zab_restored restored = {.accepted_epoch = 1, .current_epoch = 1, .entries = entries, .n_entries = 2};
    c = good, c.restored = &restored;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL); /* out of order */
    restored.current_epoch = 2;
    restored.n_entries = 0;
    assert_int_equal(zab_new(&c, &z), ZAB_EINVAL); /* currentEpoch above acceptedEpoch */
}

/* Drains ready batches, reporting every append durable at once (a disk with
 * no latency); returns how many entries were committed. */
static size_t drain(struct zab *z, uint64_t *last_committed)
{
    size_t committed = 0;
    while (zab_has_ready(z)) {
        struct zab_ready rd;
        zab_ready(z, &rd);
        uint64_t durable = rd.n_entries ? rd.entries[rd.n_entries - 1].zxid : 0;
        assert_int_equal(rd.n_messages, 0); /* nobody to talk to */
        committed += rd.n_committed;
        if (rd.n_committed)
            *last_committed = rd.committed[rd.n_committed - 1].zxid;
        zab_advance(z);
        if (durable)
            zab_persisted(z, durable);
    }
    return committed;
}

/* An ensemble of one (id 7), drained: it leads epoch 1. */
static struct zab *leader_of_one(uint64_t *last)
{
    uint32_t voters[] = {7};
    struct zab_config c = {.id = 7, .voters = voters, .n_voters = 1, .heartbeat_ticks = 2,
                           .init_limit_ticks = 10, .sync_limit_ticks = 5};
    struct zab *z;
    assert_int_equal(zab_new(&c, &z), 0);
    drain(z, last);
    return z;
}

static void an_ensemble_of_one_leads_and_commits_once_durable(void **state)
{
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    struct zab_status s;
    zab_status(z, &s);
    assert_int_equal(s.role, ZAB_LEADING);
    assert_int_equal(s.phase, ZAB_PHASE_BROADCAST);
    assert_int_equal(s.epoch, 1);
    assert_int_equal(s.current_epoch, 1);

    uint64_t next = zab_next_zxid(z);
    int64_t zxid = zab_propose(z, payload, sizeof payload);
    assert_int_equal(next, (uint64_t)zxid);
    assert_int_equal(zxid, (int64_t)zab_zxid_make(1, 1));
    /* handed out for writing but not durable: not committed */
    struct zab_ready rd;
    zab_ready(z, &rd);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.n_committed, 0);
    zab_advance(z);
    zab_status(z, &s);
    assert_int_equal(s.committed_zxid, 0);
    zab_persisted(z, (uint64_t)zxid);
    assert_int_equal(drain(z, &last), 1);
    assert_int_equal(last, (uint64_t)zxid);

    assert_int_equal(zab_propose(z, NULL, ZAB_ENTRY_BYTES_MAX + 1), ZAB_ETOOBIG);
    zab_free(z);
}

/* Compaction takes the entries out of the log at once, and frees their
 * buffers only as the driver asks with zab_collect, a bounded number at a
 * time; zab_advance frees none (it runs once per event). */
static void compaction_frees_the_entries_buffers_a_bounded_number_at_a_time(void **state)
{
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    const size_t n = 3000;
    for (size_t i = 0; i < n; i++) {
        assert_true(zab_propose(z, payload, sizeof payload) > 0);
        if (i % 1000 == 999)
            drain(z, &last);
    }
    drain(z, &last);
    struct zab_status s;
    zab_status(z, &s);
    assert_int_equal(s.log_entries, n);
    assert_int_equal(s.retired_entries, 0);
    zab_compact(z, last);
    zab_status(z, &s);
    assert_int_equal(s.log_entries, 0);
    assert_int_equal(s.retired_entries, n);
    struct zab_ready rd;
    zab_ready(z, &rd);
    zab_advance(z);
    assert_int_equal(zab_collect(z, 0), n);
    assert_int_equal(zab_collect(z, 10), n - 10);
    assert_int_equal(zab_collect(z, 1000), n - 1010);
    assert_int_equal(zab_collect(z, SIZE_MAX), 0);
    zab_status(z, &s);
    assert_int_equal(s.retired_entries, 0);
    /* a second compaction reuses the emptied list */
    for (int i = 0; i < 5; i++)
        assert_true(zab_propose(z, payload, sizeof payload) > 0);
    drain(z, &last);
    zab_compact(z, last);
    assert_int_equal(zab_collect(z, 0), 5);
    zab_free(z); /* frees what is left (ASan builds check) */
}

/* A snapshot and compaction free the memory they make useless at once: the
 * log up to the snapshot, and a snapshot copy that can no longer seed a SNAP
 * (it held a whole tree until the next one); an offered snapshot no peer
 * waits for goes at the end of the ready batch. */
static void compaction_frees_the_log_and_a_stale_snapshot_copy(void **state)
{
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    int64_t zxid[3];
    for (int i = 0; i < 3; i++) {
        zxid[i] = zab_propose(z, payload, sizeof payload);
        assert_true(zxid[i] > 0);
    }
    drain(z, &last);
    assert_int_equal(last, (uint64_t)zxid[2]);
    struct zab_status s;
    zab_status(z, &s);
    assert_int_equal(s.log_entries, 3);

    static const uint8_t blob[] = "the tree at the first entry";
    assert_int_equal(zab_snapshot_offer(z, (uint64_t)zxid[0], blob, sizeof blob), 0);
    zab_status(z, &s);
    assert_int_equal(s.snapshot_bytes, sizeof blob);
    /* no peer waits for it: gone once the ready batch is done */
    struct zab_ready rd;
    zab_ready(z, &rd);
    zab_advance(z);
    zab_status(z, &s);
    assert_int_equal(s.snapshot_bytes, 0);

    assert_int_equal(zab_snapshot_offer(z, (uint64_t)zxid[0], blob, sizeof blob), 0);
    zab_compact(z, (uint64_t)zxid[0]); /* the offered snapshot still seeds a SNAP */
    zab_status(z, &s);
    assert_int_equal(s.log_entries, 2);
    assert_int_equal(s.snapshot_bytes, sizeof blob);
    zab_compact(z, (uint64_t)zxid[2]); /* it no longer can: its copy goes */
    zab_status(z, &s);
    assert_int_equal(s.log_entries, 0);
    assert_int_equal(s.snapshot_bytes, 0);
    assert_int_equal(s.last_zxid, (uint64_t)zxid[2]);
    /* the log goes on from there */
    int64_t next = zab_propose(z, payload, sizeof payload);
    assert_int_equal(next, zxid[2] + 1);
    assert_int_equal(drain(z, &last), 1);
    zab_free(z);
}

static void a_follower_refuses_proposals_from_clients(void **state)
{
    uint32_t voters[] = {1, 2, 3};
    struct zab_config c = {.id = 1, .voters = voters, .n_voters = 3, .heartbeat_ticks = 2,
                           .init_limit_ticks = 10, .sync_limit_ticks = 5};
    struct zab *z;
    assert_int_equal(zab_new(&c, &z), 0);
    assert_int_equal(zab_propose(z, payload, sizeof payload), ZAB_ENOTLEADER);
    assert_int_equal(zab_next_zxid(z), 0);
    zab_free(z);
}

static void observers_are_configured_apart_from_voters(void **state)
{
    uint32_t voters[] = {1, 2};
    uint32_t observers[] = {3};
    uint32_t overlapping[] = {2};
    struct zab_config c = {.id = 3, .voters = voters, .n_voters = 2, .observers = observers,
                           .n_observers = 1, .heartbeat_ticks = 2, .init_limit_ticks = 10,
                           .sync_limit_ticks = 5};
    struct zab *z = NULL;
    assert_int_equal(zab_new(&c, &z), 0);
    struct zab_status s;
    zab_status(z, &s);
    assert_true(s.observer);
    assert_int_equal(s.role, ZAB_LOOKING);
    /* an observer never leads: no proposal, no zxid to stamp */
    assert_int_equal(zab_propose(z, payload, sizeof payload), ZAB_ENOTLEADER);
    assert_int_equal(zab_next_zxid(z), 0);
    zab_free(z);

    struct zab_config v = c;
    v.id = 1;
    assert_int_equal(zab_new(&v, &z), 0);
    zab_status(z, &s);
    assert_false(s.observer);
    zab_free(z);

    v = c, v.observers = overlapping; /* an id both voter and observer */
    assert_int_equal(zab_new(&v, &z), ZAB_EINVAL);
    assert_null(z);
    v = c, v.n_observers = ZAB_OBSERVERS_MAX + 1;
    assert_int_equal(zab_new(&v, &z), ZAB_EINVAL);
    v = c, v.observers = NULL;
    assert_int_equal(zab_new(&v, &z), ZAB_EINVAL);
    v = c, v.id = 4;
    assert_int_equal(zab_new(&v, &z), ZAB_EINVAL);
}

/* Two voters and an observer, voter 2 silent: voter 1 plus the observer
 * look like two members, but the observer counts in no quorum, so voter 1
 * is never elected, picks no epoch and commits nothing. */
static void an_observer_never_makes_a_quorum_of_two(void **state)
{
    uint32_t voters[] = {1, 2};
    uint32_t observers[] = {3};
    struct zab_config c = {.id = 1, .voters = voters, .n_voters = 2, .observers = observers,
                           .n_observers = 1, .heartbeat_ticks = 2, .init_limit_ticks = 10,
                           .sync_limit_ticks = 5};
    struct zab *z;
    assert_int_equal(zab_new(&c, &z), 0);
    /* voter 2 is silent; the observer 3 answers everything it is asked */
    struct zab_message info = {.type = ZAB_MSG_FOLLOWERINFO, .from = 3, .to = 1};
    info.u.info.session = 99;
    for (int t = 0; t < 40; t++) {
        zab_tick(z);
        assert_int_equal(zab_step(z, &info), 0);
        while (zab_has_ready(z)) {
            struct zab_ready rd;
            zab_ready(z, &rd);
            assert_int_equal(rd.n_committed, 0);
            zab_advance(z);
        }
        struct zab_status s;
        zab_status(z, &s);
        assert_int_not_equal(s.role, ZAB_LEADING); /* no election without voter 2 */
        assert_int_equal(s.epoch, 0);
    }
    zab_free(z);
}

/* A leader holds at most ZAB_INFLIGHT_MAX uncommitted proposals: the next
 * one is refused until some commit, whatever was committed before them. */
static void proposals_beyond_the_inflight_window_wait_for_commits(void **state)
{
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    for (int i = 0; i < 3; i++)
        assert_true(zab_propose(z, payload, sizeof payload) > 0);
    assert_int_equal(drain(z, &last), 3); /* committed ones never count */
    int64_t first = 0;
    for (uint32_t i = 0; i < ZAB_INFLIGHT_MAX; i++) {
        int64_t zxid = zab_propose(z, payload, sizeof payload);
        assert_true(zxid > 0);
        if (i == 0)
            first = zxid;
    }
    assert_int_equal(zab_propose(z, payload, sizeof payload), ZAB_EBUSY);
    /* the first of them durable and committed: room for exactly one more */
    struct zab_ready rd;
    zab_ready(z, &rd);
    zab_advance(z);
    zab_persisted(z, (uint64_t)first);
    while (zab_has_ready(z)) {
        zab_ready(z, &rd);
        zab_advance(z);
    }
    assert_true(zab_propose(z, payload, sizeof payload) > 0);
    assert_int_equal(zab_propose(z, payload, sizeof payload), ZAB_EBUSY);
    zab_free(z);
}

/* A leader alone: a membership change is one CONFIG entry, refused while
 * another is in flight or while the new voters are not synced, active (and
 * reported in ready.config) once committed. */
static void a_membership_change_commits_then_becomes_active(void **state)
{
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    uint32_t voters[] = {7};
    uint32_t with_8[] = {7, 8}, only_8[] = {8}, observer_9[] = {9}, twice[] = {7, 7};
    /* 8 never synced with us: no quorum of {7, 8} could ack the entry */
    assert_int_equal(zab_propose_config(z, with_8, 2, NULL, 0, 0), ZAB_ENOQUORUM);
    assert_int_equal(zab_propose_config(z, only_8, 1, NULL, 0, 0), ZAB_ENOQUORUM);
    assert_int_equal(zab_propose_config(z, twice, 2, NULL, 0, 0), ZAB_EINVAL);
    assert_int_equal(zab_propose_config(z, NULL, 0, NULL, 0, 0), ZAB_EINVAL);
    assert_int_equal(zab_propose_config(z, voters, 1, observer_9, 1, 12345), ZAB_EINVAL); /* stale -v */

    int64_t zxid = zab_propose_config(z, voters, 1, observer_9, 1, 0);
    assert_true(zxid > 0);
    assert_int_equal(zab_propose_config(z, voters, 1, NULL, 0, 0), ZAB_EBUSY);
    struct zab_status s;
    zab_status(z, &s);
    assert_true(s.reconfig_pending);
    assert_int_equal(s.pending_version, (uint64_t)zxid);
    assert_int_equal(s.config.version, 0);

    bool changed = false;
    while (zab_has_ready(z)) {
        struct zab_ready rd;
        zab_ready(z, &rd);
        for (size_t i = 0; i < rd.n_entries; i++)
            assert_int_equal(rd.entries[i].kind, ZAB_ENTRY_CONFIG);
        uint64_t durable = rd.n_entries ? rd.entries[rd.n_entries - 1].zxid : 0;
        if (rd.config_changed) {
            changed = true;
            assert_int_equal(rd.config->version, (uint64_t)zxid);
            assert_int_equal(rd.config->n_observers, 1);
            assert_int_equal(rd.config->observers[0], 9);
            assert_false(rd.removed);
        }
        zab_advance(z);
        if (durable)
            zab_persisted(z, durable);
    }
    assert_true(changed);
    zab_status(z, &s);
    assert_false(s.reconfig_pending);
    assert_int_equal(s.config.version, (uint64_t)zxid);
    assert_int_equal(s.role, ZAB_LEADING);
    /* the next change must name the version it changes */
    assert_int_equal(zab_propose_config(z, voters, 1, NULL, 0, 1), ZAB_EINVAL);
    assert_true(zab_propose_config(z, voters, 1, NULL, 0, (uint64_t)zxid) > 0);
    zab_free(z);
}

/* The driver's attachment travels in the CONFIG entry after the membership:
 * the entry still counts as a membership change, and the attachment comes
 * back byte for byte where zab_membership_decode_prefix says it starts. */
static void a_membership_change_carries_its_attachment(void **state)
{
    (void)state;
    uint64_t last = 0;
    struct zab *z = leader_of_one(&last);
    uint32_t voters[] = {7};
    static const uint8_t text[] = "server.7=127.0.0.1:2888:3888:participant";
    uint32_t observer_9[] = {9};
    int64_t zxid = zab_propose_config_attached(z, voters, 1, observer_9, 1, 0, text, sizeof text);
    assert_true(zxid > 0);
    bool seen = false, changed = false;
    while (zab_has_ready(z)) {
        struct zab_ready rd;
        zab_ready(z, &rd);
        for (size_t i = 0; i < rd.n_entries; i++) {
            struct zab_membership m;
            int64_t used = zab_membership_decode_prefix(rd.entries[i].data, rd.entries[i].size, &m);
            assert_true(used > 0);
            assert_int_equal(rd.entries[i].size - (uint32_t)used, sizeof text);
            assert_memory_equal(rd.entries[i].data + used, text, sizeof text);
            assert_int_equal(m.n_observers, 1);
            /* the strict decoder refuses the attached bytes */
            assert_int_equal(zab_membership_decode(rd.entries[i].data, rd.entries[i].size, &m),
                             ZAB_ECORRUPT);
            seen = true;
        }
        changed |= rd.config_changed;
        uint64_t durable = rd.n_entries ? rd.entries[rd.n_entries - 1].zxid : 0;
        zab_advance(z);
        if (durable)
            zab_persisted(z, durable);
    }
    assert_true(seen && changed);
    struct zab_status s;
    zab_status(z, &s);
    assert_int_equal(s.config.version, (uint64_t)zxid);
    assert_int_equal(s.config.n_observers, 1);
    zab_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_message_type_round_trips),
        cmocka_unit_test(decode_rejects_every_truncation_and_trailing_bytes),
        cmocka_unit_test(encode_refuses_a_buffer_one_byte_short),
        cmocka_unit_test(decode_rejects_unknown_type_version_and_lengths_over_limits),
        cmocka_unit_test(decode_survives_random_bytes),
        cmocka_unit_test(zab_new_rejects_bad_configurations),
        cmocka_unit_test(an_ensemble_of_one_leads_and_commits_once_durable),
        cmocka_unit_test(compaction_frees_the_log_and_a_stale_snapshot_copy),
        cmocka_unit_test(compaction_frees_the_entries_buffers_a_bounded_number_at_a_time),
        cmocka_unit_test(a_follower_refuses_proposals_from_clients),
        cmocka_unit_test(observers_are_configured_apart_from_voters),
        cmocka_unit_test(an_observer_never_makes_a_quorum_of_two),
        cmocka_unit_test(proposals_beyond_the_inflight_window_wait_for_commits),
        cmocka_unit_test(a_membership_change_commits_then_becomes_active),
        cmocka_unit_test(a_membership_change_carries_its_attachment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
