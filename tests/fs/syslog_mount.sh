#!/bin/bash
# Mounts znodefs in the background with no -o log=, so that it logs to syslog, and records
# what reaches syslog. Run inside a private mount namespace (unshare -m --propagation private):
# /dev there is a fresh tmpfs holding null, fuse and a /dev/log socket that a listener
# started here reads, so the machine's own /dev and syslog are left alone.
#
#   unshare -m --propagation private syslog_mount.sh ZNODEFS HOSTS MOUNTPOINT OUT
#
# Prints what the mount command itself printed (the terminal's share, which must be nothing)
# and leaves in OUT one line per syslog message received, "<PRI>..." as sent. Unmounts before
# it returns; exits non-zero if the mount or the unmount failed.
set -eu
znodefs="$1" hosts="$2" dir="$3" out="$4"
fuse_dev="$(stat -c '%t %T' /dev/fuse)"
mount -t tmpfs -o mode=755 znodefs-test-dev /dev
mknod -m 666 /dev/null c 1 3
# shellcheck disable=SC2086 # major and minor, in hex
mknod -m 600 /dev/fuse c $((0x${fuse_dev% *})) $((0x${fuse_dev#* }))
: > "$out"
/usr/bin/python3 - "$out" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "a") as out:
    while True:
        msg = s.recv(65536).decode(errors="replace")
        if msg == "stop":
            break
        out.write(msg.rstrip("\n") + "\n")
        out.flush()
PY
listener=$!
for _ in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
[ -S /dev/log ]
"$znodefs" "$hosts" "$dir"
echo x > "$dir/f"
umount "$dir"
for _ in $(seq 200); do grep -q "unmounted mountpoint=$dir" "$out" && break; sleep 0.05; done
/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"stop", "/dev/log")'
wait "$listener"
