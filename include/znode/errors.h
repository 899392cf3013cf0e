/*
 * ZooKeeper result codes, as libznode and znoded use them.
 *
 * The numeric values are ZooKeeper's own (they travel on the wire in every
 * ReplyHeader), so they are fixed.  Codes that exist only inside this project
 * live in the reserved range below -900, which ZooKeeper never uses.
 * One X-macro generates the enum, the names and the messages, as libuv does.
 */
#ifndef ZNODE_ERRORS_H
#define ZNODE_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define ZN_ERRNO_MAP(X)                                                        \
    X(OK, 0, "ok")                                                             \
    X(SYSTEMERROR, -1, "system error")                                         \
    X(RUNTIMEINCONSISTENCY, -2, "runtime inconsistency")                       \
    X(DATAINCONSISTENCY, -3, "data inconsistency")                             \
    X(CONNECTIONLOSS, -4, "connection loss")                                   \
    X(MARSHALLINGERROR, -5, "marshalling error")                               \
    X(UNIMPLEMENTED, -6, "unimplemented")                                      \
    X(OPERATIONTIMEOUT, -7, "operation timeout")                               \
    X(BADARGUMENTS, -8, "bad arguments")                                       \
    X(UNKNOWNSESSION, -12, "unknown session")                                  \
    X(NEWCONFIGNOQUORUM, -13, "new config has no quorum")                      \
    X(RECONFIGINPROGRESS, -14, "reconfig in progress")                         \
    X(APIERROR, -100, "api error")                                             \
    X(NONODE, -101, "no node")                                                 \
    X(NOAUTH, -102, "not authenticated")                                       \
    X(BADVERSION, -103, "bad version")                                         \
    X(NOCHILDRENFOREPHEMERALS, -108, "no children for ephemerals")             \
    X(NODEEXISTS, -110, "node exists")                                         \
    X(NOTEMPTY, -111, "not empty")                                             \
    X(SESSIONEXPIRED, -112, "session expired")                                 \
    X(INVALIDCALLBACK, -113, "invalid callback")                               \
    X(INVALIDACL, -114, "invalid acl")                                         \
    X(AUTHFAILED, -115, "authentication failed")                               \
    X(CLOSING, -116, "zookeeper is closing")                                   \
    X(NOTHING, -117, "(not error) no server responses to process")             \
    X(SESSIONMOVED, -118, "session moved to another server")                   \
    X(NOTREADONLY, -119, "state-changing request passed to read-only server")  \
    X(EPHEMERALONLOCALSESSION, -120, "ephemeral on local session")             \
    X(NOWATCHER, -121, "no watcher")                                           \
    X(RECONFIGDISABLED, -123, "reconfig disabled")                             \
    X(SESSIONCLOSEDREQUIRESASLAUTH, -124, "session closed requires sasl auth") \
    X(QUOTAEXCEEDED, -125, "quota exceeded")                                   \
    X(THROTTLEDOP, -127, "throttled operation")                                \
    /* project-only codes: never sent on the wire */                           \
    X(NOMEMORY, -901, "out of memory")                                         \
    X(IO, -902, "i/o error")                                                   \
    X(CONFIG, -903, "bad configuration")                                       \
    X(CORRUPT, -904, "corrupt record")                                         \
    X(NOSPACE, -905, "no space left on device")                                \
    X(TOOBIG, -906, "data or packet over the size limit")

enum zn_error {
#define ZN_ERR_ENUM(name, value, msg) ZN_##name = (value),
    ZN_ERRNO_MAP(ZN_ERR_ENUM)
#undef ZN_ERR_ENUM
};

/* Returns a static message for any code of ZN_ERRNO_MAP, or "unknown error". */
const char *zn_strerror(int code);

/* Returns the symbolic name ("NONODE") of a code, or "UNKNOWN". */
const char *zn_errname(int code);

#ifdef __cplusplus
}
#endif
#endif
