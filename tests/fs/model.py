#!/usr/bin/python3
"""Randomized model test of the znodefs mount: many operations from one process on one mount,
each checked at once against an in-memory model (read-your-writes, right after a rename too),
then the whole tree compared with a second mount on another member.

    model.py SEED OPS DIR OTHER

DIR is an empty directory on the mount under test, OTHER the same directory on a second mount.
The same SEED replays the same operations. Prints one summary line; exits 1 on the first
deviation, naming the seed, the step and the operation.
"""
import errno
import os
import random
import sys
import time

# Bounds that keep a run short and every rename of a tree under the mount's 400-node limit.
MAX_NODES = 120
MAX_DATA_BYTES = 3000


class Deviation(Exception):
    pass


def parent(rel):
    """The model's parent of a relative path ("" is the root)."""
    return rel.rsplit("/", 1)[0]


class Model:
    """The tree as the mount must show it: relative path -> bytes (a file) or None (a directory)."""

    def __init__(self):
        self.nodes = {"": None}

    def children(self, d):
        prefix = d + "/"
        return sorted(p[len(prefix):] for p in self.nodes
                      if p.startswith(prefix) and "/" not in p[len(prefix):])

    def dirs(self):
        return [p for p, v in self.nodes.items() if v is None]

    def files(self):
        return [p for p, v in self.nodes.items() if v is not None]

    def subtree(self, p):
        return [q for q in self.nodes if q == p or q.startswith(p + "/")]


def write_all(path, data, flags):
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


class Run:
    def __init__(self, seed, root):
        self.rng = random.Random(seed)
        self.root = root
        self.model = Model()
        self.counter = 0

    def real(self, rel):
        return self.root + rel

    def fresh_name(self, d):
        self.counter += 1
        return "%s/%s%d" % (d, self.rng.choice("abcdefgh"), self.counter)

    def data(self):
        n = self.rng.choice([0, 1, 7, 100, self.rng.randrange(MAX_DATA_BYTES)])
        return bytes(self.rng.randrange(256) for _ in range(n))

    # ---- operations: each returns (description, paths to check now) ----

    def op_create(self):
        p = self.fresh_name(self.rng.choice(self.model.dirs()))
        data = self.data()
        write_all(self.real(p), data, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        self.model.nodes[p] = data
        return "create %s (%d bytes)" % (p, len(data)), [p, parent(p)]

    def op_overwrite(self):
        p = self.rng.choice(self.model.files())
        data = self.data()
        write_all(self.real(p), data, os.O_WRONLY | os.O_TRUNC)
        self.model.nodes[p] = data
        return "overwrite %s (%d bytes)" % (p, len(data)), [p]

    def op_append(self):
        p = self.rng.choice(self.model.files())
        data = self.data()[:200]
        write_all(self.real(p), data, os.O_WRONLY | os.O_APPEND)
        self.model.nodes[p] += data
        return "append %d bytes to %s" % (len(data), p), [p]

    def op_pwrite(self):
        p = self.rng.choice(self.model.files())
        old = self.model.nodes[p]
        off = self.rng.randrange(len(old) + 10)
        data = self.data()[:50]
        fd = os.open(self.real(p), os.O_WRONLY)
        try:
            os.pwrite(fd, data, off)
        finally:
            os.close(fd)
        if data:
            grown = old + b"\0" * max(0, off - len(old))
            self.model.nodes[p] = grown[:off] + data + grown[off + len(data):]
        return "pwrite %d bytes at %d to %s" % (len(data), off, p), [p]

    def op_truncate(self):
        p = self.rng.choice(self.model.files())
        old = self.model.nodes[p]
        size = self.rng.randrange(len(old) + 20)
        os.truncate(self.real(p), size)
        self.model.nodes[p] = old[:size] + b"\0" * max(0, size - len(old))
        return "truncate %s to %d" % (p, size), [p]

    def op_mkdir(self):
        p = self.fresh_name(self.rng.choice(self.model.dirs()))
        os.mkdir(self.real(p))
        self.model.nodes[p] = None
        return "mkdir %s" % p, [p, parent(p)]

    def op_unlink(self):
        p = self.rng.choice(self.model.files())
        os.unlink(self.real(p))
        del self.model.nodes[p]
        return "unlink %s" % p, [p, parent(p)]

    def op_rmdir(self):
        empty = [d for d in self.model.dirs() if d and not self.model.children(d)]
        if not empty:
            return self.op_mkdir()
        p = self.rng.choice(empty)
        os.rmdir(self.real(p))
        del self.model.nodes[p]
        return "rmdir %s" % p, [p, parent(p)]

    def op_rename(self):
        src = self.rng.choice([p for p in self.model.nodes if p])
        dirs = [d for d in self.model.dirs() if d != src and not d.startswith(src + "/")]
        over = [f for f in self.model.files() if f != src]
        if self.model.nodes[src] is not None and over and self.rng.random() < 0.3:
            dst = self.rng.choice(over)  # a file renamed over a file: an editor's save
        else:
            dst = self.fresh_name(self.rng.choice(dirs))
        os.rename(self.real(src), self.real(dst))
        moved = {q: self.model.nodes[q] for q in self.model.subtree(src)}
        for q in moved:
            del self.model.nodes[q]
        for q, v in moved.items():
            self.model.nodes[dst + q[len(src):]] = v
        checks = [src, dst, parent(src), parent(dst)]
        checks += [dst + q[len(src):] for q in moved]
        return "rename %s %s (%d nodes)" % (src, dst, len(moved)), checks

    def op_read(self):
        p = self.rng.choice([q for q in self.model.nodes])
        return "check %s" % p, [p]

    def step(self):
        if len(self.model.nodes) >= MAX_NODES:
            ops = [self.op_unlink, self.op_rmdir, self.op_rename, self.op_overwrite, self.op_read]
        elif not self.model.files():
            ops = [self.op_create, self.op_mkdir]
        else:
            ops = [self.op_create, self.op_create, self.op_overwrite, self.op_append, self.op_pwrite,
                   self.op_truncate, self.op_mkdir, self.op_unlink, self.op_rmdir, self.op_rename,
                   self.op_rename, self.op_read]
        return self.rng.choice(ops)()

    # ---- checks ----

    def check(self, rel, root=None):
        """The mount shows rel as the model says: absent, a directory with these children, or a
        file with this data and st_size. Returns a description of the difference, or None."""
        path = (root or self.root) + rel
        want = self.model.nodes.get(rel, "absent")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None if want == "absent" else "%s: ENOENT" % rel
        if want == "absent":
            return "%s: exists" % rel
        if want is None:
            if not os.path.isdir(path):
                return "%s: not a directory" % rel
            got = sorted(os.listdir(path))
            if got != self.model.children(rel):
                return "%s lists %s, want %s" % (rel, got, self.model.children(rel))
            return None
        got = read_all(path)
        if got != want or st.st_size != len(want):
            return "%s: %d bytes (st_size %d), want %d" % (rel, len(got), st.st_size, len(want))
        return None


def compare_tree(run, other):
    """The second mount shows exactly the model, once it has caught up (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        diffs = []
        seen = {""}
        for dirpath, dirnames, filenames in os.walk(other):
            rel_dir = dirpath[len(other):]
            for name in dirnames + filenames:
                seen.add(rel_dir + "/" + name)
        for rel in sorted(seen | set(run.model.nodes)):
            d = run.check(rel, other)
            if d:
                diffs.append(d)
        if not diffs or time.monotonic() > deadline:
            return diffs
        time.sleep(0.2)


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    seed, ops, root, other = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    run = Run(seed, root)
    for i in range(ops):
        desc = "?"
        try:
            desc, paths = run.step()
            for p in paths:
                d = run.check(p)
                if d:
                    raise Deviation(d)
        except (OSError, Deviation) as e:
            what = errno.errorcode.get(e.errno, e.errno) if isinstance(e, OSError) else ""
            print("model: seed %d step %d: %s: %s %s" % (seed, i, desc, what, e))
            return 1
    diffs = compare_tree(run, other)
    if diffs:
        print("model: seed %d: after %d steps the other mount differs: %s" % (seed, ops, diffs[:5]))
        return 1
    print("model: seed %d: %d steps, %d nodes, 0 deviations, other mount identical"
          % (seed, ops, len(run.model.nodes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
