#!/usr/bin/python3
"""In-process checks of the znodefs mount: programs that make several calls in a row.

A shell starts a process per command, which outlasts the races a program hits at once
(rename, then stat the new name within microseconds). Each check runs in one process,
prints one summary line, and exits 1 on any deviation, naming the first few.

    inprocess.py rename-then-use DIR N     write a temp file, fsync, rename it into place,
                                           then stat/open/truncate the new name, N times
    inprocess.py data-limit DIR MAX        the exact errno around the data limit MAX
    inprocess.py dir-nlink DIR             a directory's st_nlink is 2 plus its subdirectories,
                                           right after each mkdir, rmdir, rename and create
    inprocess.py tree-rename DIR N         rename a tree of N nodes (one multi), then use every
                                           node under the new name at once; N past the limit
                                           must fail with EXDEV and move nothing
    inprocess.py unlinked-open DIR OTHER   an open file outlives its unlink (OTHER: the same
                                           directory on a second mount)
    inprocess.py dir-times DIR N           a directory's mtime and ctime move to now right after
                                           each create, mkdir, unlink, rmdir and rename in it
                                           (set to the past before each), N rounds
    inprocess.py listing DIR OTHER N       a directory listed over and over (the kernel keeps the
                                           listing) shows each change at once when this mount made
                                           it, and soon when another mount (OTHER: the same
                                           directory there) did: creates, deletes and renames that
                                           keep the count, N rounds
    inprocess.py listing-writes DIR N      the mount answers a listing of an unchanged directory
                                           from its cache: each change this mount makes in it
                                           (create, mkdir, unlink, rmdir, rename within, in and out,
                                           a directory renamed, .data written and removed, a .clone
                                           create) shows in the very next listing, N rounds
    inprocess.py python-idioms DIR SRC     the standard library's usual file idioms (tempfile
                                           and os.replace, pathlib, open modes "x" and "a",
                                           shutil.copy2/copytree/move/rmtree of the local tree
                                           SRC), each without an error; leaves DIR/tree (a copy
                                           of SRC) and DIR/config.json for a second mount
    inprocess.py torn-read FILE ZPATH HOSTS N
                                           a writer through kazoo (HOSTS, a process of its own)
                                           rewrites FILE's node ZPATH in a tight loop with self-checking
                                           values of varying lengths (1 to 4 pages); this process
                                           opens, reads (whole, or in 1000-byte reads) and closes
                                           FILE N times or more (until 50 values were seen): every
                                           value must be whole, one the writer wrote, and never
                                           older than one read before
    inprocess.py read-your-writes FILE N   write a value of varying length through the mount,
                                           read it back at once, N times: always the value written
"""
import collections
import errno
import filecmp
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time


def fail_report(name, done, failures, unit="iterations"):
    print("%s: %d %s, %d failures" % (name, done, unit, len(failures)))
    for f in failures[:10]:
        print("  " + f)
    return 1 if failures else 0


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def rename_then_use(d, n):
    """Both shapes programs use: a fresh name each time, and over an existing target (an
    editor's save). Every call on the new name must work at once; the old name must be gone."""
    failures = []
    target = os.path.join(d, "target")
    for i in range(n):
        value = b"value %d\n" % i
        tmp = os.path.join(d, ".target.tmp%d" % i)
        fresh = os.path.join(d, "moved%d" % i)
        for dst in (fresh, target):
            step = "write"
            try:
                write_file(tmp, value)
                step = "rename"
                os.rename(tmp, dst)
                step = "stat"
                st = os.stat(dst)
                if st.st_size != len(value):
                    failures.append("%d %s: st_size %d, want %d" % (i, dst, st.st_size, len(value)))
                step = "read"
                got = read_file(dst)
                if got != value:
                    failures.append("%d %s: read %r, want %r" % (i, dst, got, value))
                step = "truncate"
                os.truncate(dst, 1)
                step = "stat after truncate"
                if os.stat(dst).st_size != 1:
                    failures.append("%d %s: st_size after truncate %d" % (i, dst, os.stat(dst).st_size))
            except OSError as e:
                failures.append("%d %s: %s: %s" % (i, dst, step, errno.errorcode.get(e.errno, e.errno)))
            if os.path.lexists(tmp):
                failures.append("%d: the old name %s still exists" % (i, tmp))
    return fail_report("rename-then-use", n, failures)


def expect_errno(failures, what, want, fn):
    try:
        fn()
    except OSError as e:
        if e.errno != want:
            failures.append("%s: %s, want %s" % (what, errno.errorcode.get(e.errno), errno.errorcode[want]))
        return
    failures.append("%s: succeeded, want %s" % (what, errno.errorcode[want]))


def data_limit(d, limit):
    """Data up to the limit is stored and read back whole; one byte more is EFBIG from the call
    that would pass it (write, truncate, append); never EIO."""
    failures = []
    try:
        return data_limit_steps(d, limit, failures)
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
        return fail_report("data-limit", 0, failures, "checks")


def data_limit_steps(d, limit, failures):
    f = os.path.join(d, "big")
    checks = 0

    def check_size(what, want):
        nonlocal checks
        checks += 1
        try:
            got = read_file(f)
        except OSError as e:
            failures.append("%s: read: %s" % (what, errno.errorcode.get(e.errno)))
            return
        if len(got) != want or os.stat(f).st_size != want:
            failures.append("%s: read %d bytes, st_size %d, want %d" % (what, len(got), os.stat(f).st_size, want))

    write_file(f, b"a" * limit)
    check_size("write of exactly the limit", limit)

    def write_one_more():
        fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
        try:
            # One write(2) the kernel passes whole (under max_write): stored at once or refused.
            written = 0
            chunk = b"b" * (limit + 1)
            written = os.write(fd, chunk)
            if written != len(chunk):
                os.write(fd, chunk[written:])
        finally:
            os.close(fd)
    checks += 1
    expect_errno(failures, "write of limit+1 bytes", errno.EFBIG, write_one_more)

    write_file(f, b"c" * (limit - 1))
    with open(f, "ab", buffering=0) as a:
        a.write(b"d")  # reaches the limit exactly
    check_size("append up to the limit", limit)

    def append_past():
        with open(f, "ab", buffering=0) as a:
            a.write(b"e")
    checks += 1
    expect_errno(failures, "append past the limit", errno.EFBIG, append_past)
    check_size("after the refused append", limit)

    os.truncate(f, 10)
    os.truncate(f, limit)
    check_size("truncate -s limit", limit)
    for size in (limit + 1, 1048500, 1048575, 1048576):
        checks += 1
        expect_errno(failures, "truncate -s %d" % size, errno.EFBIG, lambda: os.truncate(f, size))
    check_size("after the refused truncates", limit)
    return fail_report("data-limit", checks, failures, "checks")


def unlinked_open(d, other):
    """POSIX: unlink removes the name; the file lives on for the fds open on it: fstat works
    (st_nlink 0), reads return its data, writes go to it and not to a file later made at the
    name; the name is free at once, on this mount and on another."""
    failures = []
    checks = 0

    def check(what, got, want):
        nonlocal checks
        checks += 1
        if got != want:
            failures.append("%s: %r, want %r" % (what, got, want))

    try:
        f = os.path.join(d, "f")
        write_file(f, b"hello")
        reader = os.open(f, os.O_RDONLY)             # never read before the unlink
        early = os.open(f, os.O_RDONLY)
        check("read before unlink", os.read(early, 100), b"hello")
        rw = os.open(f, os.O_RDWR)
        os.unlink(f)
        check("the name is gone", os.path.lexists(f), False)
        st = os.fstat(reader)
        check("fstat st_nlink", st.st_nlink, 0)
        check("fstat st_size", st.st_size, 5)
        check("read after unlink", os.read(reader, 100), b"hello")
        check("pread of a reader that read before", os.pread(early, 100, 0), b"hello")
        write_file(f, b"a new file")                 # the name is free: another file
        check("the new file", read_file(f), b"a new file")
        check("the old fd still reads the old file", os.pread(reader, 100, 0), b"hello")
        check("write to the unlinked file", os.pwrite(rw, b"J", 0), 1)
        check("its fds see the write", os.pread(reader, 100, 0), b"Jello")
        check("the new file is untouched", read_file(f), b"a new file")
        os.ftruncate(rw, 2)
        check("ftruncate of the unlinked file", os.fstat(reader).st_size, 2)
        for fd in (reader, early, rw):
            os.close(fd)
        check("after close, the new file still", read_file(f), b"a new file")
        of = os.path.join(other, "f")
        for _ in range(200):                          # replication to the other member
            try:
                if read_file(of) == b"a new file":
                    break
            except OSError:
                pass
            time.sleep(0.05)
        check("the other mount reads the new file", read_file(of), b"a new file")
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("unlinked-open", checks, failures, "checks")


def dir_nlink(d):
    failures = []
    checks = 0
    want = 2

    def check(what):
        nonlocal checks
        checks += 1
        got = os.stat(d).st_nlink
        if got != want:
            failures.append("after %s: st_nlink %d, want %d" % (what, got, want))

    try:
        check("nothing")
        for i in range(5):
            os.mkdir(os.path.join(d, "sub%d" % i))
            want += 1
            check("mkdir sub%d" % i)
        write_file(os.path.join(d, "file"), b"x")
        check("creating a file")
        os.mkdir(os.path.join(d, "sub0", "inner"))
        check("mkdir in a subdirectory")
        os.rename(os.path.join(d, "sub1"), os.path.join(d, "moved"))
        check("renaming a subdirectory")
        os.rename(os.path.join(d, "sub2"), os.path.join(d, "sub0", "sub2"))
        want -= 1
        check("moving a subdirectory out")
        os.rmdir(os.path.join(d, "sub3"))
        want -= 1
        check("rmdir")
        os.unlink(os.path.join(d, "file"))
        check("unlinking a file")
        checks += 1
        if os.stat(os.path.join(d, "sub0")).st_nlink != 4:
            failures.append("sub0: st_nlink %d, want 4" % os.stat(os.path.join(d, "sub0")).st_nlink)
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("dir-nlink", checks, failures, "checks")


def dir_times(d, n):
    """Before each change the directory's mtime is set to 2001; right after it, stat must show
    the change's time (at least the wall clock before it, less a millisecond of rounding)."""
    failures = []
    checks = 0
    past = 981173106  # 2001-02-03
    other = os.path.join(d, "other")
    os.mkdir(other)
    sub = os.path.join(d, "sub")
    os.mkdir(sub)

    def change(what, fn, where=(sub,)):
        nonlocal checks
        for p in where:
            os.utime(p, (past, past))
        before = time.time() - 0.002
        fn()
        for p in where:
            checks += 1
            st = os.stat(p)
            if st.st_mtime < before or st.st_ctime < st.st_mtime:
                failures.append("after %s: %s mtime %.3f ctime %.3f, want >= %.3f" %
                                (what, p, st.st_mtime, st.st_ctime, before))

    try:
        for i in range(n):
            f = os.path.join(sub, "f%d" % i)
            change("create %d" % i, lambda: write_file(f, b"x"))
            change("unlink %d" % i, lambda: os.unlink(f))
            change("mkdir %d" % i, lambda: os.mkdir(f))
            change("rmdir %d" % i, lambda: os.rmdir(f))
            write_file(f, b"y")
            g = os.path.join(other, "g%d" % i)
            change("rename out %d" % i, lambda: os.rename(f, g), (sub, other))
            change("rename in %d" % i, lambda: os.rename(g, f), (sub, other))
            checks += 1
            os.utime(sub, (past, past + 0.5))
            if os.stat(sub).st_mtime != past + 0.5:
                failures.append("utime: mtime %.3f, want %.3f" % (os.stat(sub).st_mtime, past + 0.5))
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("dir-times", checks, failures, "checks")


def make_tree(root, n):
    """A directory tree of n nodes under root (root included): files with data, subdirectories
    (some empty), three levels deep. Returns {relative path: data, or None for a directory}."""
    tree = {"": None}
    os.mkdir(root)
    dirs = [""]
    i = 0
    while len(tree) < n:
        parent = dirs[i % len(dirs)]
        i += 1
        rel = "%s/n%d" % (parent, len(tree))
        if len(tree) % 4 == 1 and rel.count("/") < 3:
            os.mkdir(root + rel)
            tree[rel] = None
            dirs.append(rel)
        else:
            data = b"data of %s\n" % rel.encode()
            write_file(root + rel, data)
            tree[rel] = data
    return tree


def check_tree(root, tree, failures, what):
    for rel, data in sorted(tree.items()):
        p = root + rel
        try:
            if data is None:
                if not os.path.isdir(p):
                    failures.append("%s: %s is not a directory" % (what, p))
            elif read_file(p) != data or os.stat(p).st_size != len(data):
                failures.append("%s: %s holds %r" % (what, p, read_file(p)))
        except OSError as e:
            failures.append("%s: %s: %s" % (what, p, errno.errorcode.get(e.errno, e.errno)))


def tree_rename(d, n):
    failures = []
    try:
        src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
        tree = make_tree(src, n)
        deepest = max((rel for rel, data in tree.items() if data is not None), key=lambda r: r.count("/"))
        keep = os.open(src + deepest, os.O_RDONLY)
        try:
            os.rename(src, dst)
        except OSError as e:
            failures.append("rename: %s" % errno.errorcode.get(e.errno, e.errno))
        check_tree(dst, tree, failures, "right after the rename")
        if os.path.lexists(src):
            failures.append("the old name %s still exists" % src)
        if os.pread(keep, 100, 0) != tree[deepest]:
            failures.append("an fd opened before the rename reads %r" % os.pread(keep, 100, 0))
        os.close(keep)
        write_file(dst + deepest, b"changed")
        if read_file(dst + deepest) != b"changed":
            failures.append("a write under the new name reads back %r" % read_file(dst + deepest))
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("tree-rename", n, failures, "nodes")


def tree_rename_refused(d, n):
    failures = []
    try:
        src, dst = os.path.join(d, "big"), os.path.join(d, "big-moved")
        tree = make_tree(src, n)
        expect_errno(failures, "rename of %d nodes" % n, errno.EXDEV, lambda: os.rename(src, dst))
        check_tree(src, tree, failures, "after the refused rename")
        if os.path.lexists(dst):
            failures.append("the refused rename made %s" % dst)
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("tree-rename-refused", n, failures, "nodes")


def same_tree(a, b):
    """a and b hold the same names, kinds and data, all the way down."""
    for dirpath, dirnames, filenames in os.walk(a):
        other = os.path.join(b, os.path.relpath(dirpath, a))
        if sorted(os.listdir(other)) != sorted(dirnames + filenames):
            return False
        for name in filenames:
            if not filecmp.cmp(os.path.join(dirpath, name), os.path.join(other, name), shallow=False):
                return False
    return True


def python_idioms(d, src):
    failures = []
    checks = 0

    def step(what, fn):
        nonlocal checks
        checks += 1
        try:
            fn()
        except (OSError, AssertionError) as e:
            what_err = errno.errorcode.get(e.errno, e.errno) if isinstance(e, OSError) else "wrong result"
            failures.append("%s: %s %s" % (what, what_err, e))

    cfg = os.path.join(d, "config.json")

    def atomic_save():  # the usual "save a file atomically" recipe, twice (the 2nd over the 1st)
        for n in (1, 2):
            with tempfile.NamedTemporaryFile("w", dir=d, delete=False, suffix=".tmp") as f:
                json.dump({"replicas": n}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(f.name, cfg)
            with open(cfg) as f:
                assert json.load(f) == {"replicas": n}, "read back"
        assert not [x for x in os.listdir(d) if x.endswith(".tmp")], "temporary file left"

    def pathlib_rw():
        p = pathlib.Path(d) / "p.txt"
        p.write_text("hello\n")
        assert p.read_text() == "hello\n" and p.stat().st_size == 6, "read back"
        p.write_bytes(b"\x00\x01")
        assert p.read_bytes() == b"\x00\x01", "bytes read back"
        p.unlink()
        assert not p.exists(), "unlinked"

    def open_modes():
        path = os.path.join(d, "log")
        with open(path, "x") as f:
            f.write("one\n")
        try:
            open(path, "x")
            raise AssertionError("mode x on an existing file succeeded")
        except FileExistsError:
            pass
        with open(path, "a") as f:
            f.write("two\n")
        with open(path, "r+") as f:
            f.seek(0)
            f.write("ONE")
        with open(path) as f:
            assert f.read() == "ONE\ntwo\n", "r+ and a"

    def copies():
        shutil.copy2(os.path.join(src, "a"), os.path.join(d, "a"))
        assert filecmp.cmp(os.path.join(src, "a"), os.path.join(d, "a"), shallow=False), "copy2 data"
        want = os.stat(os.path.join(src, "a")).st_mtime_ns // 10**6
        assert os.stat(os.path.join(d, "a")).st_mtime_ns // 10**6 == want, "copy2 keeps the mtime"
        shutil.copytree(src, os.path.join(d, "tmptree"))
        shutil.move(os.path.join(d, "tmptree"), os.path.join(d, "tree"))
        assert same_tree(src, os.path.join(d, "tree")), "copytree + move: trees differ"
        shutil.copytree(src, os.path.join(d, "gone"))
        shutil.rmtree(os.path.join(d, "gone"))
        assert not os.path.exists(os.path.join(d, "gone")), "rmtree"

    step("tempfile + fsync + os.replace", atomic_save)
    step("pathlib write/read/unlink", pathlib_rw)
    step("open modes x, a, r+", open_modes)
    step("shutil copy2, copytree, move, rmtree", copies)
    return fail_report("python-idioms", checks, failures, "checks")


def listing(d, other, n):
    """A listing the kernel kept (opendir let it serve its copy) never hides a change: one
    made by this mount shows in the very next listing (read-your-writes), one made elsewhere
    as soon as this mount's member has it. Renames keep the count, so only the names tell."""
    failures = []
    want = set()
    checks = 0

    def listed(what, deadline_s=0.0):
        nonlocal checks
        checks += 1
        end = time.monotonic() + deadline_s
        while True:
            got = set(os.listdir(d))
            if got == want or time.monotonic() >= end:
                break
            time.sleep(0.02)
        if got != want:
            failures.append("%s: listed %s, want %s" % (what, sorted(got ^ want), "the difference"))
        os.listdir(d)  # once more: the kernel's copy of it is what the next round starts from

    try:
        for name in ("a0", "b0"):
            write_file(os.path.join(d, name), b"x")
            want.add(name)
        for i in range(n):
            listed("round %d before a change" % i)
            here, there = (d, True), (other, False)
            where, local = here if i % 2 == 0 else there
            kind = (i // 2) % 3
            victim = sorted(want)[i % len(want)]
            if kind == 0:                                   # create
                name = "c%d" % i
                write_file(os.path.join(where, name), b"x")
                want.add(name)
            elif kind == 1:                                 # rename: same count
                name = "r%d" % i
                os.rename(os.path.join(where, victim), os.path.join(where, name))
                want.discard(victim)
                want.add(name)
            else:                                           # delete, then a create: same count
                name = "d%d" % i
                os.unlink(os.path.join(where, victim))
                write_file(os.path.join(where, name), b"x")
                want.discard(victim)
                want.add(name)
            what = "round %d after a %s on %s" % (i, ("create", "rename", "delete+create")[kind],
                                                  "this mount" if local else "the other mount")
            listed(what, 0.0 if local else 10.0)
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("listing", checks, failures, "listings")


def listing_writes(d, n):
    """Read-your-writes for listings the mount keeps (fs/node_dir.c): each directory is listed
    twice before a change (the second listing is answered from the mount's cache), then the
    change is made, then the very next listing of every directory it touched must show it."""
    failures = []
    checks = 0
    want = {}  # directory -> the names it must list

    def listed(what, *dirs):
        nonlocal checks
        for x in dirs:
            checks += 1
            got = set(os.listdir(x))
            if got != want[x]:
                failures.append("%s: %s lists %s more, %s missing" % (
                    what, os.path.relpath(x, d), sorted(got - want[x]), sorted(want[x] - got)))

    def change(what, dirs, fn, add=(), remove=()):
        """Lists dirs twice (the second from the mount's cache), runs fn, and lists them again
        at once: each must show the names add ((dir, name) pairs) and not those in remove."""
        for x in dirs:
            os.listdir(x)
            os.listdir(x)
        fn()
        for x, name in remove:
            want[x].discard(name)
        for x, name in add:
            want[x].add(name)
        listed(what, *dirs)

    def clone(where):
        fd = os.open(os.path.join(where, ".clone"), os.O_RDWR)
        try:
            os.write(fd, b"job-\nx")
            return os.read(fd, 100).decode().strip()
        finally:
            os.close(fd)

    j = os.path.join
    try:
        for i in range(n):
            top = j(d, "r%d" % i)
            a, b, sub, moved = j(top, "a"), j(top, "b"), j(top, "a", "sub"), j(top, "moved")
            os.mkdir(top)
            os.mkdir(a)
            os.mkdir(b)
            want.update({top: {"a", "b"}, a: set(), b: set(), sub: set(), moved: set()})
            r = "round %d " % i
            change(r + "create", [a], lambda: write_file(j(a, "f"), b"x"), add=[(a, "f")])
            change(r + "mkdir", [a], lambda: os.mkdir(sub), add=[(a, "sub")])
            change(r + "rename within", [a], lambda: os.rename(j(a, "f"), j(a, "g")),
                   add=[(a, "g")], remove=[(a, "f")])
            change(r + "rename out of a, into b", [a, b], lambda: os.rename(j(a, "g"), j(b, "g")),
                   add=[(b, "g")], remove=[(a, "g")])
            change(r + "rename back into a", [a, b], lambda: os.rename(j(b, "g"), j(a, "h")),
                   add=[(a, "h")], remove=[(b, "g")])
            change(r + ".data written", [sub], lambda: write_file(j(sub, ".data"), b"data of a directory"),
                   add=[(sub, ".data")])
            change(r + ".data removed", [sub], lambda: os.unlink(j(sub, ".data")), remove=[(sub, ".data")])
            change(r + "directory renamed out", [a, top], lambda: os.rename(sub, moved),
                   add=[(top, "moved")], remove=[(a, "sub")])
            listed(r + "the renamed directory", moved)
            change(r + "create in the renamed directory", [moved], lambda: write_file(j(moved, "in"), b"x"),
                   add=[(moved, "in")])
            change(r + ".clone create", [b], lambda: want[b].add(clone(b)))
            change(r + "unlink", [a], lambda: os.unlink(j(a, "h")), remove=[(a, "h")])
            os.unlink(j(moved, "in"))
            change(r + "rmdir", [top], lambda: os.rmdir(moved), remove=[(top, "moved")])
    except OSError as e:
        failures.append("unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    return fail_report("listing-writes", checks, failures, "listings")


def torn_value(seq):
    """The writer's value number seq: "SEQ:LEN:" then LEN bytes of "<SEQ>" repeated."""
    body = (seq * 7919) % 16000
    unit = b"<%d>" % seq
    return b"%d:%d:" % (seq, body) + (unit * (body // len(unit) + 1))[:body]


def torn_check(data):
    """The seq of a whole written value, or None for anything else (torn, mixed, cut)."""
    try:
        seq = int(data.split(b":", 1)[0])
    except ValueError:
        return None
    return seq if seq >= 0 and data == torn_value(seq) else None


def torn_writer(path, hosts):
    """Rewrites path until stdin closes; prints "ready" after its first write, then the count."""
    import threading
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    seq = 1
    zk.set(path, torn_value(seq))
    print("ready", flush=True)
    # 16 sets outstanding (one session applies them in order): the value changes often enough
    # that some change lands inside a read
    pending = collections.deque()
    while not stop.is_set():
        if len(pending) >= 16:
            pending.popleft().get(timeout=30)
        seq += 1
        pending.append(zk.set_async(path, torn_value(seq)))
    for p in pending:
        p.get(timeout=30)
    print(seq, flush=True)
    zk.stop()
    zk.close()
    return 0


def read_chunked(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            b = os.read(fd, 1000)
            if not b:
                return b"".join(parts)
            parts.append(b)
    finally:
        os.close(fd)


def torn_read(path, zpath, hosts, n):
    """Reads path n times while a kazoo writer rewrites its node (torn_writer)."""
    import subprocess
    writer = subprocess.Popen([sys.executable, __file__, "torn-writer", zpath, hosts],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    failures, seen, last = [], set(), 0
    try:
        if writer.stdout.readline().strip() != "ready":
            return fail_report("torn-read", 0, ["the writer did not start"])
        # n reads at least, and on until 50 distinct values were read (a writer slowed by the
        # load still overlaps the reads), for 120 s at most
        deadline, i = time.monotonic() + 120, 0
        while i < n or (len(seen) < 50 and time.monotonic() < deadline):
            i += 1
            data = read_file(path) if i % 2 == 0 else read_chunked(path)
            seq = torn_check(data)
            if seq is None:
                failures.append("read %d: not a written value: %d bytes %r..%r"
                                % (i, len(data), data[:24], data[-12:]))
                continue
            if seq < last:
                failures.append("read %d: value %d after value %d" % (i, seq, last))
            last = max(last, seq)
            seen.add(seq)
    finally:
        writer.stdin.close()
        wrote = writer.stdout.read().strip()
        writer.wait(30)
    # the reads must have overlapped the writes, or they checked nothing
    if len(seen) < 50:
        failures.append("only %d distinct values read in %d reads (writer wrote %s)"
                        % (len(seen), i, wrote))
    return fail_report("torn-read", n, failures, "reads or more")


def read_your_writes(path, n):
    failures = []
    for i in range(n):
        want = torn_value(i + 1)
        write_file(path, want)
        got = read_file(path) if i % 2 == 0 else read_chunked(path)
        if got != want:
            failures.append("write %d: read back %d bytes %r.. (wrote %d bytes)"
                            % (i, len(got), got[:24], len(want)))
    return fail_report("read-your-writes", n, failures)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "rename-then-use":
        return rename_then_use(d, int(sys.argv[3]))
    if cmd == "data-limit":
        return data_limit(d, int(sys.argv[3]))
    if cmd == "tree-rename":
        return tree_rename(d, int(sys.argv[3]))
    if cmd == "tree-rename-refused":
        return tree_rename_refused(d, int(sys.argv[3]))
    if cmd == "dir-nlink":
        return dir_nlink(d)
    if cmd == "unlinked-open":
        return unlinked_open(d, sys.argv[3])
    if cmd == "dir-times":
        return dir_times(d, int(sys.argv[3]))
    if cmd == "listing":
        return listing(d, sys.argv[3], int(sys.argv[4]))
    if cmd == "listing-writes":
        return listing_writes(d, int(sys.argv[3]))
    if cmd == "torn-read":
        return torn_read(d, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    if cmd == "torn-writer":
        return torn_writer(d, sys.argv[3])
    if cmd == "read-your-writes":
        return read_your_writes(d, int(sys.argv[3]))
    if cmd == "python-idioms":
        return python_idioms(d, sys.argv[3])
    print("unknown check %s" % cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main())
