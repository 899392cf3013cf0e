/*
 * Constants of the ZooKeeper client protocol: opcodes, special xids, create
 * flags, permissions, watch event types and keeper states, and limits.
 * Values are ZooKeeper's (see zookeeper.jute and ZooDefs.java); they travel on
 * the wire and must never change.
 */
#ifndef ZNODE_PROTO_H
#define ZNODE_PROTO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes (RequestHeader.type). */
enum zn_opcode {
    ZN_OP_NOTIFICATION = 0,
    ZN_OP_CREATE = 1,
    ZN_OP_DELETE = 2,
    ZN_OP_EXISTS = 3,
    ZN_OP_GETDATA = 4,
    ZN_OP_SETDATA = 5,
    ZN_OP_GETACL = 6,
    ZN_OP_SETACL = 7,
    ZN_OP_GETCHILDREN = 8,
    ZN_OP_SYNC = 9,
    ZN_OP_PING = 11,
    ZN_OP_GETCHILDREN2 = 12,
    ZN_OP_CHECK = 13,
    ZN_OP_MULTI = 14,
    ZN_OP_CREATE2 = 15,
    ZN_OP_RECONFIG = 16,
    ZN_OP_CHECKWATCHES = 17,
    ZN_OP_REMOVEWATCHES = 18,
    ZN_OP_CREATECONTAINER = 19,
    ZN_OP_DELETECONTAINER = 20,
    ZN_OP_CREATETTL = 21,
    ZN_OP_MULTIREAD = 22,
    ZN_OP_AUTH = 100,
    ZN_OP_SETWATCHES = 101,
    ZN_OP_SASL = 102,
    ZN_OP_GETEPHEMERALS = 103,
    ZN_OP_GETALLCHILDRENNUMBER = 104,
    ZN_OP_SETWATCHES2 = 105,
    ZN_OP_ADDWATCH = 106,
    ZN_OP_WHOAMI = 107,
    ZN_OP_CREATESESSION = -10,
    ZN_OP_CLOSESESSION = -11,
    ZN_OP_ERROR = -1,
    /* znodefs extension (not ZooKeeper's): getChildren2 that also answers the
     * kind of every child and of the node.  Request: GetChildren2Request
     * {path, watch}; response: {children, stat, data}, data holding one
     * ZN_KIND_* byte per child (in the order of children) and then one for
     * the node itself.  ZooKeeper answers it UNIMPLEMENTED. */
    ZN_OP_GETCHILDRENKINDS = 5001,
    /* znodefs extension: GETCHILDRENKINDS whose data ends with the node's
     * ptime: ZN_KINDS_PTIME_BYTES, a big-endian long, the time in ms of the
     * txn that set its pzxid (0: unknown).  A znoded before it (and
     * ZooKeeper) answers UNIMPLEMENTED. */
    ZN_OP_GETCHILDRENKINDSTIME = 5003,
    /* znodefs extension (not ZooKeeper's): setData whose transaction carries
     * the client's time, so the node's mtime is the one a program set
     * (utimensat: touch -d, cp -p, tar, rsync -t).  Request: SetDataRequest
     * {path, data, version} then a long, the mtime in ms since the epoch
     * (>= 0); response: as setData's (stat).  It is a setData in every other
     * way: same checks, version + 1, NodeDataChanged.  ZooKeeper answers it
     * UNIMPLEMENTED. */
    ZN_OP_SETDATATIME = 5002,
};

/* Special xids. */
enum zn_special_xid {
    ZN_XID_NOTIFICATION = -1,
    ZN_XID_PING = -2,
    ZN_XID_AUTH = -4,
    ZN_XID_SETWATCHES = -8,
};

/* CreateMode flags (CreateRequest.flags). */
enum zn_create_mode {
    ZN_CREATE_PERSISTENT = 0,
    ZN_CREATE_EPHEMERAL = 1,
    ZN_CREATE_SEQUENTIAL = 2,
    ZN_CREATE_EPHEMERAL_SEQUENTIAL = 3,
    ZN_CREATE_CONTAINER = 4,
    ZN_CREATE_PERSISTENT_WITH_TTL = 5,
    ZN_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL = 6,
};

/* znodefs extension: the kind of the node a create makes, ORed into
 * CreateRequest.flags (create, create2, createContainer, createTTL, and the
 * creates of a multi).  znoded strips the bits, stores the kind with the
 * node and never shows it to ZooKeeper clients; ZooKeeper answers
 * BADARGUMENTS (an unknown CreateMode), which is how a client learns that
 * the server has no extension. */
#define ZN_CREATE_KIND_FILE 0x10000
#define ZN_CREATE_KIND_DIRECTORY 0x20000
#define ZN_CREATE_KIND_MASK (ZN_CREATE_KIND_FILE | ZN_CREATE_KIND_DIRECTORY)

/* znodefs extension: the kind bytes of a GETCHILDRENKINDS reply (the values
 * znoded stores with each node). */
/* The ptime at the end of a GETCHILDRENKINDS reply's data. */
#define ZN_KINDS_PTIME_BYTES 8

enum zn_kind {
    ZN_KIND_UNKNOWN = 0,   /* made by a ZooKeeper client: the children rule decides */
    ZN_KIND_FILE = 1,
    ZN_KIND_DIRECTORY = 2,
};

/* ACL permission bits. */
enum zn_perm {
    ZN_PERM_READ = 1,
    ZN_PERM_WRITE = 2,
    ZN_PERM_CREATE = 4,
    ZN_PERM_DELETE = 8,
    ZN_PERM_ADMIN = 16,
    ZN_PERM_ALL = 31,
};

/* WatcherEvent.type */
enum zn_event_type {
    ZN_EVENT_NONE = -1,
    ZN_EVENT_CREATED = 1,
    ZN_EVENT_DELETED = 2,
    ZN_EVENT_CHANGED = 3,
    ZN_EVENT_CHILD = 4,
    ZN_EVENT_DATA_WATCH_REMOVED = 5,
    ZN_EVENT_CHILD_WATCH_REMOVED = 6,
    ZN_EVENT_PERSISTENT_WATCH_REMOVED = 7,
};

/* WatcherEvent.state (KeeperState) */
enum zn_keeper_state {
    ZN_STATE_DISCONNECTED = 0,
    ZN_STATE_SYNC_CONNECTED = 3,
    ZN_STATE_AUTH_FAILED = 4,
    ZN_STATE_CONNECTED_READ_ONLY = 5,
    ZN_STATE_SASL_AUTHENTICATED = 6,
    ZN_STATE_EXPIRED = -112,
    ZN_STATE_CLOSED = 7,
};

/* addWatch modes and removeWatches/checkWatches watcher types. */
enum zn_add_watch_mode { ZN_WATCH_PERSISTENT = 0, ZN_WATCH_PERSISTENT_RECURSIVE = 1 };
enum zn_watcher_type { ZN_WATCHER_CHILDREN = 1, ZN_WATCHER_DATA = 2, ZN_WATCHER_ANY = 3 };

/* Limits. */
#define ZN_DEFAULT_MAX_PACKET_BYTES (1024 * 1024 - 1) /* jute.maxbuffer default: 0xfffff */
#define ZN_PASSWD_BYTES 16
#define ZN_SEQUENCE_DIGITS 10
#define ZN_PROTOCOL_VERSION 0

/* Stat, exactly the fields of ZooKeeper's data.Stat, in wire order. */
struct zn_stat {
    int64_t czxid;
    int64_t mzxid;
    int64_t ctime;           /* ms since the epoch */
    int64_t mtime;           /* ms since the epoch */
    int32_t version;
    int32_t cversion;
    int32_t aversion;
    int64_t ephemeral_owner; /* session id, 0 if persistent */
    int32_t data_length;
    int32_t num_children;
    int64_t pzxid;
};

#ifdef __cplusplus
}
#endif
#endif
