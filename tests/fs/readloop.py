#!/usr/bin/python3
"""Reads and changes the tree through the mount in a loop while a test kills members under it.

    readloop.py DIR STOP PROGRESS [SECOND]

Three reader threads read DIR/f, stat it, read its user.zk.version and list DIR, over and over, so that some read is in
flight whenever a member dies. Three writer threads change the tree, each the only writer of its
own names (so that some change is in flight at most kills); writer k's iteration i: mkdir
DIR/k-n<i>, an exclusive create of DIR/k-n<i>/f with its data, rename it to DIR/k-n<i>/g,
setfattr user.zk.data@<version> (a conditional write) of DIR/x<k>, unlink DIR/k-n<i-1>/g and
rmdir DIR/k-n<i-1>, a write of DIR/w<k> and an explicit mtime of it (utimensat). Every failed change must fail with the errno
docs/filesystem.md ("Failures") gives a change whose outcome the mount cannot learn, EIO; the
writer then learns the outcome itself (it is the only writer of its names: EEXIST from mkdir
after an EIO means the mkdir applied) and goes on, so the tree always matches the model.
PROGRESS holds writer 0's iteration count;
everything stops once STOP exists. At the end the tree is checked against the model and printed
(`tree ...`); with SECOND (DIR on another mount) that mount's tree must become the same within
20 s (`second mount ok|BAD`). Prints
`reads N, read errors {...}, changes N, eio {...}, unexpected {...}, longest gap N ms, model ok|BAD ...`.
"""
import errno
import os
import sys
import threading
import time

READERS = 3
WRITERS = 3


def count(table, key, lock):
    with lock:
        table[key] = table.get(key, 0) + 1


def reader(d, stop, want, totals, errors, lock):
    while not os.path.exists(stop):
        for what in ("read", "stat", "list", "xattr"):
            try:
                if what == "read":
                    with open(os.path.join(d, "f"), "rb") as f:
                        if f.read() != want:
                            count(errors, "wrong data", lock)
                            continue
                elif what == "stat":
                    os.stat(os.path.join(d, "f"))
                elif what == "xattr":
                    os.getxattr(os.path.join(d, "f"), "user.zk.version")
                else:
                    os.listdir(d)
                count(totals, "reads", lock)
            except OSError as e:
                count(errors, "%s %s" % (what, errno.errorcode.get(e.errno, e.errno)), lock)


class Changes:
    """Runs each change until its outcome is known, and tallies its errors."""

    def __init__(self, lock):
        self.lock = lock
        self.eio = {}
        self.unexpected = {}
        self.done = 0
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0

    def ok(self):
        now = time.monotonic()
        self.longest_gap = max(self.longest_gap, now - self.last_ok)
        self.last_ok = now
        self.done += 1

    def run(self, name, call, applied_errno=None, applied=None):
        """call() until it succeeds or fails with an errno it may not. After an EIO, applied_errno (EEXIST, ENOENT) from the retry
        means the first try applied, if applied() (a check of the tree) agrees."""
        had_eio = False
        while True:
            try:
                call()
                self.ok()
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    had_eio = True
                    count(self.eio, name, self.lock)
                    continue
                if had_eio and e.errno == applied_errno and (applied is None or applied()):
                    self.ok()
                    return
                # Not what the contract allows: tallied, and this change given up (the tree
                # then differs from the model too).
                count(self.unexpected, "%s %s" % (name, errno.errorcode.get(e.errno, e.errno)),
                      self.lock)
                return


def write_file(path, value, flags):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)


def conditional_set(path, value, read_errors, lock):
    """setfattr user.zk.data@<version>: conditional on the version just read (a read: its
    failures are read errors, and it is asked again)."""
    while True:
        try:
            v = os.getxattr(path, "user.zk.version").decode()
            break
        except OSError as e:
            count(read_errors, "getxattr %s" % errno.errorcode.get(e.errno, e.errno), lock)
    os.setxattr(path, "user.zk.data@" + v, value)


def mtime_ns(i):
    """Iteration i's explicit mtime: a past time, in whole milliseconds (the mount's grain)."""
    return (1000000000 + i) * 1000000000 + 123000000


def tree_of(d):
    """{relative path: data} of the files under d, {relative path + "/": None} of directories."""
    tree = {}
    for root, dirs, files in os.walk(d):
        rel = os.path.relpath(root, d)
        for name in dirs:
            tree[os.path.normpath(os.path.join(rel, name)) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                tree[os.path.normpath(os.path.join(rel, name))] = fh.read()
            if rel == "." and name.startswith("w"):
                tree["mtime " + name] = os.stat(path).st_mtime_ns
    return tree


def second_tree(d, model):
    """d's tree once it equals model (replication to another member is asynchronous), or the
    last one read after 20 s."""
    deadline = time.monotonic() + 20
    while True:
        try:
            tree = tree_of(d)
        except OSError as e:
            tree = {"error": str(e)}
        if tree == model or time.monotonic() > deadline:
            return tree
        time.sleep(0.1)


def writer(k, d, stop, progress, changes, lock, models, read_errors):
    """Writer k's loop, on its own names (k-n<i>, w<k>, x<k>); its part of the model in models."""
    ch = changes[k] = Changes(lock)
    models[k] = {}
    w, x = os.path.join(d, "w%d" % k), os.path.join(d, "x%d" % k)
    open(x, "wb").close()
    i = 0
    last = None
    while not os.path.exists(stop):
        i += 1
        n, prev = os.path.join(d, "%d-n%d" % (k, i)), os.path.join(d, "%d-n%d" % (k, i - 1))
        value = b"%d" % i
        f, g = os.path.join(n, "f"), os.path.join(n, "g")
        ch.run("mkdir", lambda: os.mkdir(n), errno.EEXIST, lambda: os.path.isdir(n))
        # O_EXCL: an EIO may leave the node made, empty; EEXIST then, and the data is written.
        ch.run("create", lambda: write_file(f, value, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
               errno.EEXIST, lambda: write_file(f, value, os.O_WRONLY | os.O_TRUNC) is None)
        ch.run("rename", lambda: os.rename(f, g), errno.ENOENT,
               lambda: os.path.exists(g) and not os.path.exists(f))
        ch.run("setxattr", lambda: conditional_set(x, value, read_errors, lock))
        if i > 1:
            pg = os.path.join(prev, "g")
            ch.run("unlink", lambda: os.unlink(pg), errno.ENOENT, lambda: not os.path.exists(pg))
            ch.run("rmdir", lambda: os.rmdir(prev), errno.ENOENT, lambda: not os.path.exists(prev))
        ch.run("write", lambda: write_file(w, value, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        # an explicit time (touch -d): a conditional setDataTime, learned as a write is
        ch.run("utime", lambda: os.utime(w, ns=(mtime_ns(i), mtime_ns(i))))
        last = value
        if progress:
            with open(progress + ".tmp", "w") as p:
                p.write("%d\n" % i)
            os.replace(progress + ".tmp", progress)
    models[k]["mtime w%d" % k] = mtime_ns(i)
    # w<k> and x<k> hold the last value, k-n<last>/g holds it, nothing else of k's is left.
    models[k].update({"w%d" % k: last, "x%d" % k: last, "%d-n%d/" % (k, i): None,
                 "%d-n%d/g" % (k, i): last})


def main():
    d, stop, progress = sys.argv[1:4]
    second = sys.argv[4] if len(sys.argv) > 4 else None
    want = open(os.path.join(d, "f"), "rb").read()
    totals, read_errors = {}, {}
    lock = threading.Lock()
    threads = [threading.Thread(target=reader, args=(d, stop, want, totals, read_errors, lock))
               for _ in range(READERS)]
    changes, models = [None] * WRITERS, [None] * WRITERS
    writers = [threading.Thread(target=writer, args=(k, d, stop, progress if k == 0 else None,
                                                     changes, lock, models, read_errors))
               for k in range(WRITERS)]
    for t in threads + writers:
        t.start()
    for t in threads + writers:
        t.join()
    model = {"f": want}
    for m in models:
        model.update(m or {"writer ended": "early"})
    eio, unexpected = {}, {}
    for ch in changes:
        for k, v in ch.eio.items():
            eio[k] = eio.get(k, 0) + v
        unexpected.update(ch.unexpected)
    tree = tree_of(d)
    print("tree %s" % sorted(tree.items()))
    if second:
        other = second_tree(second, model)
        print("second mount %s" % ("ok" if other == model else "BAD %r" % sorted(other.items())))
    print("reads %d, read errors %s, changes %d, eio %s, unexpected %s, longest gap %d ms, model %s"
          % (totals.get("reads", 0), read_errors, sum(ch.done for ch in changes), eio, unexpected,
             max(ch.longest_gap for ch in changes) * 1000,
             "ok" if tree == model else "BAD %r" % tree))
    return 0


if __name__ == "__main__":
    sys.exit(main())
