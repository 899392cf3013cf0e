#!/usr/bin/python3
"""Reads and writes through the mount in a loop while a test kills members under it.

    readloop.py DIR STOP PROGRESS

Four reader threads read DIR/f, stat it and list DIR, over and over, so that some read is in
flight whenever a member dies; the main thread writes its iteration number to DIR/w (a failed
write is retried until it is stored: the contract lets a write in flight fail with EIO when its
member dies). PROGRESS holds the write loop's iteration count; everything stops once STOP
exists. Prints `reads N, read errors {...}, writes N, write errors {...}, last write ok|BAD`.
"""
import errno
import os
import sys
import threading

READERS = 4


def count(table, key, lock):
    with lock:
        table[key] = table.get(key, 0) + 1


def reader(d, stop, want, totals, errors, lock):
    while not os.path.exists(stop):
        for what in ("read", "stat", "list"):
            try:
                if what == "read":
                    with open(os.path.join(d, "f"), "rb") as f:
                        if f.read() != want:
                            count(errors, "wrong data", lock)
                            continue
                elif what == "stat":
                    os.stat(os.path.join(d, "f"))
                else:
                    os.listdir(d)
                count(totals, "reads", lock)
            except OSError as e:
                count(errors, "%s %s" % (what, errno.errorcode.get(e.errno, e.errno)), lock)


def main():
    d, stop, progress = sys.argv[1:4]
    want = open(os.path.join(d, "f"), "rb").read()
    totals, read_errors, write_errors = {}, {}, {}
    lock = threading.Lock()
    threads = [threading.Thread(target=reader, args=(d, stop, want, totals, read_errors, lock))
               for _ in range(READERS)]
    for t in threads:
        t.start()
    writes = i = 0
    last = None
    while not os.path.exists(stop):
        i += 1
        value = b"%d" % i
        while not os.path.exists(stop):  # until stored: a failed write is run again
            try:
                with open(os.path.join(d, "w"), "wb") as f:
                    f.write(value)
                writes += 1
                last = value
                break
            except OSError as e:
                count(write_errors, errno.errorcode.get(e.errno, e.errno), lock)
        with open(progress + ".tmp", "w") as p:
            p.write("%d\n" % i)
        os.replace(progress + ".tmp", progress)
    for t in threads:
        t.join()
    final = open(os.path.join(d, "w"), "rb").read()
    print("reads %d, read errors %s, writes %d, write errors %s, last write %s"
          % (totals.get("reads", 0), read_errors, writes, write_errors,
             "ok" if final == last else "BAD %r != %r" % (final, last)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
