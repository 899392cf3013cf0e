#!/usr/bin/python3
"""Sets a file's mtime on one mount while another mount writes it, and checks that no write
is undone (fs/times.c: an explicit mtime is a write of the data the node has, at its version).

    times.py PATH_A PATH_B N

PATH_A and PATH_B are the same file on two mounts. A thread sets PATH_A's mtime over and over
(os.utime, distinct past times) while the main thread writes 0..N-1 to PATH_B, each followed by
a read on PATH_B, which must never go back to an older value (a time set from data read before
the write would put the old data back). At the end both mounts must hold N-1, and a last
os.utime must show its mtime to the millisecond. Prints `times: N writes, L lost` (L the reads that went back, plus 1
if the final data is wrong); exits 1 if L > 0 or a call failed.
"""
import os
import sys
import threading
import time


def main():
    path_a, path_b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path_a, "w") as f:
        f.write("-1")
    deadline = time.monotonic() + 20
    while not os.path.exists(path_b):
        if time.monotonic() > deadline:
            sys.exit("times: %s never appeared" % path_b)
        time.sleep(0.01)
    stop = threading.Event()
    failures = []

    def setter():
        t = 1000000000  # 2001-09-09, then a millisecond later each time
        while not stop.is_set():
            try:
                os.utime(path_a, ns=(t * 10**9, t * 10**9))
            except OSError as e:
                failures.append("utime: %s" % e)
                return
            t += 1

    thread = threading.Thread(target=setter)
    thread.start()
    lost = 0
    try:
        for i in range(n):
            with open(path_b, "w") as f:
                f.write(str(i))
            with open(path_b) as f:
                got = f.read()
            if got != str(i) and (not got.lstrip("-").isdigit() or int(got) < i):
                lost += 1
                print("after writing %d, read %r" % (i, got), file=sys.stderr)
    finally:
        stop.set()
        thread.join()
    for path in (path_a, path_b):
        deadline = time.monotonic() + 20
        while True:
            with open(path) as f:
                got = f.read()
            if got == str(n - 1) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if got != str(n - 1):
            lost += 1
            print("%s holds %r at the end, not %d" % (path, got, n - 1), file=sys.stderr)
    os.utime(path_a, ns=(123 * 10**9, 123456 * 10**6))
    if os.stat(path_a).st_mtime_ns != 123456 * 10**6:
        failures.append("mtime %d ns after setting 123456 ms" % os.stat(path_a).st_mtime_ns)
    for f in failures:
        print(f, file=sys.stderr)
    print("times: %d writes, %d lost" % (n, lost))
    sys.exit(1 if lost or failures else 0)


main()
