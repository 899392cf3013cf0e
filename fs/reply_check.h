/*
 * reply_check: in debug and sanitizer builds (ZN_CHECK_INVARIANTS), every FUSE request is
 * answered exactly once.  Each handler of the ops table runs behind a trampoline that records
 * its request as open with its operation's name; each fuse_reply_* call (redefined below for
 * the files that include this header) closes it.  A reply to a request that is not open (a
 * second reply) aborts naming the reply function; a new request arriving at the address of one
 * still open (it was freed unanswered) aborts naming that one's operation.  Release builds
 * compile none of it.
 */
#ifndef ZNODEFS_REPLY_CHECK_H
#define ZNODEFS_REPLY_CHECK_H

#include <fuse_lowlevel.h> /* included through znodefs.h, which sets FUSE_USE_VERSION */

#ifdef ZN_CHECK_INVARIANTS
/* Puts a trampoline in front of each handler ops has (copied: the real ones are kept). */
void reply_check_wrap_ops(struct fuse_lowlevel_ops *ops);
/* Closes req's record; aborts when req is not open. */
int reply_check_answer(fuse_req_t req, const char *reply_fn);

#ifndef REPLY_CHECK_NO_REDEFINE
#define REPLY_CHECKED(fn, req, ...) (reply_check_answer((req), #fn), (fn)((req), __VA_ARGS__))
#define fuse_reply_err(req, ...) REPLY_CHECKED(fuse_reply_err, req, __VA_ARGS__)
#define fuse_reply_none(req) (reply_check_answer((req), "fuse_reply_none"), (fuse_reply_none)(req))
#define fuse_reply_entry(req, ...) REPLY_CHECKED(fuse_reply_entry, req, __VA_ARGS__)
#define fuse_reply_create(req, ...) REPLY_CHECKED(fuse_reply_create, req, __VA_ARGS__)
#define fuse_reply_attr(req, ...) REPLY_CHECKED(fuse_reply_attr, req, __VA_ARGS__)
#define fuse_reply_open(req, ...) REPLY_CHECKED(fuse_reply_open, req, __VA_ARGS__)
#define fuse_reply_write(req, ...) REPLY_CHECKED(fuse_reply_write, req, __VA_ARGS__)
#define fuse_reply_buf(req, ...) REPLY_CHECKED(fuse_reply_buf, req, __VA_ARGS__)
#define fuse_reply_xattr(req, ...) REPLY_CHECKED(fuse_reply_xattr, req, __VA_ARGS__)
#define fuse_reply_poll(req, ...) REPLY_CHECKED(fuse_reply_poll, req, __VA_ARGS__)
#define fuse_reply_readlink(req, ...) REPLY_CHECKED(fuse_reply_readlink, req, __VA_ARGS__)
#define fuse_reply_statfs(req, ...) REPLY_CHECKED(fuse_reply_statfs, req, __VA_ARGS__)
#define fuse_reply_data(req, ...) REPLY_CHECKED(fuse_reply_data, req, __VA_ARGS__)
#define fuse_reply_iov(req, ...) REPLY_CHECKED(fuse_reply_iov, req, __VA_ARGS__)
#define fuse_reply_lock(req, ...) REPLY_CHECKED(fuse_reply_lock, req, __VA_ARGS__)
#define fuse_reply_bmap(req, ...) REPLY_CHECKED(fuse_reply_bmap, req, __VA_ARGS__)
#define fuse_reply_ioctl(req, ...) REPLY_CHECKED(fuse_reply_ioctl, req, __VA_ARGS__)
#define fuse_reply_lseek(req, ...) REPLY_CHECKED(fuse_reply_lseek, req, __VA_ARGS__)
#endif
#else
static inline void reply_check_wrap_ops(struct fuse_lowlevel_ops *ops) { (void)ops; }
#endif

#endif
