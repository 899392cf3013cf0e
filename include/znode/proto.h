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

/*
 * The opcode table (RequestHeader.type): every opcode once, with its value,
 * its name (logs, four-letter words, metrics labels) and what it is.  The
 * enum below, zn_op_name() and zn_op_flags() (lib/jute.h) are generated from
 * it, so a new opcode is one line here.  Flags:
 *   ZN_OPF_WRITE      changes state: goes through the write path (ZooKeeper's
 *                     Request.isQuorum; check, to be ordered with the writes
 *                     it guards; session create/close, sessions being global)
 *   ZN_OPF_CREATE     creates a node (its flags carry the create mode)
 *   ZN_OPF_IN_MULTI   may be an op of a multi (MultiOperationRecord.java)
 *   ZN_OPF_IN_MULTIREAD  may be an op of a multiRead
 *   ZN_OPF_TXN_PATH   its transaction names a node (txn.h): a path is mandatory
 *   ZN_OPF_METRIC     ZooKeeper's request opcode, counted per op by the metrics
 *                     (extensions and the notification/error markers are not)
 * znodefs extensions (not ZooKeeper's; ZooKeeper answers them UNIMPLEMENTED):
 *   GETCHILDRENKINDS  getChildren2 that also answers the kind of every child
 *                     and of the node.  Request: GetChildren2Request {path,
 *                     watch}; response: {children, stat, data}, data holding
 *                     one ZN_KIND_* byte per child (in the order of children)
 *                     and then one for the node itself.
 *   GETCHILDRENKINDSTIME  GETCHILDRENKINDS whose data ends with the node's
 *                     ptime: ZN_KINDS_PTIME_BYTES, a big-endian long, the time
 *                     in ms of the txn that set its pzxid (0: unknown).
 *   SETDATATIME       setData whose transaction carries the client's time, so
 *                     the node's mtime is the one a program set (utimensat:
 *                     touch -d, cp -p, tar, rsync -t).  Request: SetDataRequest
 *                     {path, data, version} then a long, the mtime in ms since
 *                     the epoch (>= 0); response: as setData's (stat).  It is
 *                     a setData in every other way: same checks, version + 1,
 *                     NodeDataChanged.
 */
#define ZN_OPF_WRITE 0x01u
#define ZN_OPF_CREATE 0x02u
#define ZN_OPF_IN_MULTI 0x04u
#define ZN_OPF_IN_MULTIREAD 0x08u
#define ZN_OPF_TXN_PATH 0x10u
#define ZN_OPF_METRIC 0x20u

/* X(NAME, value, "name", flags); in the order of the metrics' op slots. */
#define ZN_OPCODES(X)                                                                                    \
    X(NOTIFICATION, 0, "notification", 0)                                                                 \
    X(CREATE, 1, "create", ZN_OPF_WRITE | ZN_OPF_CREATE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC) \
    X(DELETE, 2, "delete", ZN_OPF_WRITE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC)              \
    X(EXISTS, 3, "exists", ZN_OPF_METRIC)                                                                 \
    X(GETDATA, 4, "getData", ZN_OPF_IN_MULTIREAD | ZN_OPF_METRIC)                                         \
    X(SETDATA, 5, "setData", ZN_OPF_WRITE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC)            \
    X(GETACL, 6, "getACL", ZN_OPF_METRIC)                                                                 \
    X(SETACL, 7, "setACL", ZN_OPF_WRITE | ZN_OPF_TXN_PATH | ZN_OPF_METRIC)                                \
    X(GETCHILDREN, 8, "getChildren", ZN_OPF_IN_MULTIREAD | ZN_OPF_METRIC)                                 \
    X(SYNC, 9, "sync", ZN_OPF_METRIC)                                                                     \
    X(PING, 11, "ping", ZN_OPF_METRIC)                                                                    \
    X(GETCHILDREN2, 12, "getChildren2", ZN_OPF_METRIC)                                                    \
    X(CHECK, 13, "check", ZN_OPF_WRITE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC)               \
    X(MULTI, 14, "multi", ZN_OPF_WRITE | ZN_OPF_METRIC)                                                   \
    X(CREATE2, 15, "create2", ZN_OPF_WRITE | ZN_OPF_CREATE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC) \
    X(RECONFIG, 16, "reconfig", ZN_OPF_WRITE | ZN_OPF_METRIC)                                             \
    X(CHECKWATCHES, 17, "checkWatches", ZN_OPF_METRIC)                                                    \
    X(REMOVEWATCHES, 18, "removeWatches", ZN_OPF_METRIC)                                                  \
    X(CREATECONTAINER, 19, "createContainer",                                                             \
      ZN_OPF_WRITE | ZN_OPF_CREATE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC)                   \
    X(DELETECONTAINER, 20, "deleteContainer", ZN_OPF_WRITE | ZN_OPF_METRIC)                               \
    X(CREATETTL, 21, "createTTL", ZN_OPF_WRITE | ZN_OPF_CREATE | ZN_OPF_IN_MULTI | ZN_OPF_TXN_PATH | ZN_OPF_METRIC) \
    X(MULTIREAD, 22, "multiRead", ZN_OPF_METRIC)                                                          \
    X(AUTH, 100, "auth", ZN_OPF_METRIC)                                                                   \
    X(SETWATCHES, 101, "setWatches", ZN_OPF_METRIC)                                                       \
    X(SASL, 102, "sasl", ZN_OPF_METRIC)                                                                   \
    X(GETEPHEMERALS, 103, "getEphemerals", ZN_OPF_METRIC)                                                 \
    X(GETALLCHILDRENNUMBER, 104, "getAllChildrenNumber", ZN_OPF_METRIC)                                   \
    X(SETWATCHES2, 105, "setWatches2", ZN_OPF_METRIC)                                                     \
    X(ADDWATCH, 106, "addWatch", ZN_OPF_METRIC)                                                           \
    X(WHOAMI, 107, "whoAmI", ZN_OPF_METRIC)                                                               \
    X(CREATESESSION, -10, "createSession", ZN_OPF_WRITE | ZN_OPF_METRIC)                                  \
    X(CLOSESESSION, -11, "closeSession", ZN_OPF_WRITE | ZN_OPF_METRIC)                                    \
    X(ERROR, -1, "error", 0)                                                                              \
    X(GETCHILDRENKINDS, 5001, "getChildrenKinds", 0)                                                      \
    X(GETCHILDRENKINDSTIME, 5003, "getChildrenKindsTime", 0)                                              \
    X(SETDATATIME, 5002, "setDataTime", ZN_OPF_WRITE)

enum zn_opcode {
#define ZN_OPCODE_ENUM(name, value, str, flags) ZN_OP_##name = value,
    ZN_OPCODES(ZN_OPCODE_ENUM)
#undef ZN_OPCODE_ENUM
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
