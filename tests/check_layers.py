#!/usr/bin/env python3
"""The include rules between the project's layers, checked (CTest: `layers`).

Each source file belongs to one layer; it may include the project headers of
the layers listed for it, and nothing above.  A pure layer may also include no
header of an I/O library.  Lowest first:

  codec       lib/ jute*, errors, log, sha1, assert; include/znode/{proto,errors}.h
              the wire records and what every program shares
  client      lib/ client*, tls_stream; include/znode/client.h: libznode
  core        replication/core/: the replication state machine (pure: no I/O)
  model       daemon/model/: path, tree, txn, prep, quota, acl matching, watches
              (pure: no I/O)
  replication replication/: the store (LMDB) and the member transport
  server      daemon/ and its other folders (net/, ensemble/, config/, ops/, offline/):
              connections, sessions, the write path, configuration, operations
  fs          fs/: the FUSE mount, a client of libznode only
  tools       tools/ and bench/: command-line programs on libznode
  model-bench bench/tree_mem.c: measures the tree's memory from inside (it
              prints struct tree_node's layout), so it may include the model
  store-bench bench/wal_scan_bench.c: times the log's scan of one segment
              (wal_scan_segment, an internal of the store), so it may include
              the replication layer

Tests (tests/) may include anything.  Usage: check_layers.py [ROOT]; prints
each violation as `file:line: <layer> may not include "<header>" (<layer>)`
and exits 1 when there is any.
"""
import os
import re
import sys

ALLOWED = {
    "codec": {"codec"},
    "client": {"codec", "client"},
    "core": {"core"},
    "model": {"codec", "model"},
    "replication": {"codec", "client", "core", "replication"},
    "server": {"codec", "client", "core", "model", "replication", "server"},
    "fs": {"codec", "client", "fs"},
    "tools": {"codec", "client", "tools"},
    "model-bench": {"codec", "model"},
    "store-bench": {"codec", "client", "core", "replication"},
}
PURE = {"core", "model"}
IMPURE_SYSTEM = re.compile(r"^(uv\.h|lmdb\.h|fuse.*|openssl/.*|sasl/.*|pthread\.h|sys/socket\.h|netdb\.h)$")
SEARCH = ["include", "lib", "daemon", "daemon/model", "daemon/net", "daemon/ensemble", "daemon/config",
          "daemon/ops", "daemon/offline", "replication", "replication/core", "fs", "tools", "bench"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_of(rel):
    d, name = os.path.split(rel)
    if d == "include/znode":
        return "client" if name == "client.h" else "codec"
    if d == "lib":
        return "client" if name.startswith(("client", "tls_stream")) else "codec"
    if d == "replication/core":
        return "core"
    if d == "replication":
        return "replication"
    if d == "daemon/model":
        return "model"
    if d == "daemon" or d.startswith("daemon/"):
        return "server"
    if d == "fs":
        return "fs"
    if rel == "bench/tree_mem.c":
        return "model-bench"
    if rel == "bench/wal_scan_bench.c":
        return "store-bench"
    if d in ("tools", "bench"):
        return "tools"
    return None  # tests, examples, build: unchecked


def resolve(root, rel, header):
    here = os.path.join(os.path.dirname(rel), header)
    if os.path.isfile(os.path.join(root, here)):
        return os.path.normpath(here)
    for d in SEARCH:
        p = os.path.join(d, header)
        if os.path.isfile(os.path.join(root, p)):
            return os.path.normpath(p)
    return None  # a system header


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    problems = []
    checked = 0
    for top in ["include", "lib", "replication", "daemon", "fs", "tools", "bench"]:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                layer = layer_of(rel)
                if layer is None:
                    continue
                checked += 1
                for n, line in enumerate(open(os.path.join(root, rel), errors="replace"), 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    header = m.group(2)
                    target = resolve(root, rel, header) if m.group(1) == '"' or header.startswith("znode/") else None
                    if target is None:
                        if layer in PURE and IMPURE_SYSTEM.match(header):
                            problems.append(f"{rel}:{n}: {layer} is pure and may not include <{header}>")
                        continue
                    to = layer_of(target)
                    if to is not None and to not in ALLOWED[layer]:
                        problems.append(f'{rel}:{n}: {layer} may not include "{header}" ({to}: {target})')
    for p in problems:
        print(p)
    print(f"check_layers: {checked} files, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
