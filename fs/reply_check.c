/*
 * reply_check: every FUSE request answered exactly once (see reply_check.h).  The mount runs
 * FUSE on its one libuv thread, so the table needs no lock.  A handler added to fs_ops without
 * a trampoline here aborts at its first reply ("not open"), which names it.
 */
#define REPLY_CHECK_NO_REDEFINE
#include "znodefs.h" /* FUSE_USE_VERSION, then reply_check.h */

#ifdef ZN_CHECK_INVARIANTS
#include <stdio.h>
#include <stdlib.h>

struct open_request {
    fuse_req_t req;
    const char *op;
};

static struct open_request *open_reqs;
static unsigned open_count, open_cap;
static struct fuse_lowlevel_ops real;

static void begin(fuse_req_t req, const char *op)
{
    for (unsigned i = 0; i < open_count; i++) {
        if (open_reqs[i].req == req) {
            fprintf(stderr, "znodefs: FATAL: FUSE request %p (%s) was freed unanswered: %s reuses it\n",
                    (void *)req, open_reqs[i].op, op);
            abort();
        }
    }
    if (open_count == open_cap) {
        unsigned cap = open_cap ? open_cap * 2 : 64;
        struct open_request *r = realloc(open_reqs, cap * sizeof *r);
        if (r == NULL) {
            fprintf(stderr, "znodefs: FATAL: out of memory in reply_check\n");
            abort();
        }
        open_reqs = r;
        open_cap = cap;
    }
    open_reqs[open_count++] = (struct open_request){req, op};
}

int reply_check_answer(fuse_req_t req, const char *reply_fn)
{
    for (unsigned i = 0; i < open_count; i++) {
        if (open_reqs[i].req == req) {
            open_reqs[i] = open_reqs[--open_count];
            return 0;
        }
    }
    fprintf(stderr, "znodefs: FATAL: %s(%p): the request is not open (answered twice, or never received)\n",
            reply_fn, (void *)req);
    abort();
}

/* name, (parameters), (arguments) of each handler fs_ops sets. */
#define TRAMPOLINES(X)                                                                                       \
    X(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))                   \
    X(forget, (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup), (req, ino, nlookup))                       \
    X(forget_multi, (fuse_req_t req, size_t count, struct fuse_forget_data *forgets), (req, count, forgets)) \
    X(getattr, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))                  \
    X(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi),   \
      (req, ino, attr, to_set, fi))                                                                          \
    X(opendir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))                  \
    X(readdir, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),          \
      (req, ino, size, off, fi))                                                                             \
    X(releasedir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))               \
    X(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode), (req, parent, name, mode))  \
    X(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),                 \
      (req, parent, name, mode, rdev))                                                                       \
    X(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))                   \
    X(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))                    \
    X(rename,                                                                                                \
      (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,       \
       unsigned int flags),                                                                                  \
      (req, parent, name, newparent, newname, flags))                                                        \
    X(symlink, (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name), (req, link, parent, name)) \
    X(link, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),                     \
      (req, ino, newparent, newname))                                                                        \
    X(create, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi), \
      (req, parent, name, mode, fi))                                                                         \
    X(open, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))                     \
    X(read, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),             \
      (req, ino, size, off, fi))                                                                             \
    X(write,                                                                                                 \
      (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi),  \
      (req, ino, buf, size, off, fi))                                                                        \
    X(release, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))                  \
    X(getxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size), (req, ino, name, size))     \
    X(setxattr,                                                                                              \
      (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags),         \
      (req, ino, name, value, size, flags))                                                                  \
    X(listxattr, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))                           \
    X(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))                    \
    X(flock, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op), (req, ino, fi, op))        \
    X(poll, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph),         \
      (req, ino, fi, ph))

#define DEFINE_TRAMPOLINE(name, params, args)                                                                \
    static void checked_##name params                                                                        \
    {                                                                                                        \
        begin(req, #name);                                                                                   \
        real.name args;                                                                                      \
    }
TRAMPOLINES(DEFINE_TRAMPOLINE)

void reply_check_wrap_ops(struct fuse_lowlevel_ops *ops)
{
    real = *ops;
#define SET_TRAMPOLINE(name, params, args)                                                                   \
    if (ops->name)                                                                                           \
        ops->name = checked_##name;
    TRAMPOLINES(SET_TRAMPOLINE)
}
#endif
