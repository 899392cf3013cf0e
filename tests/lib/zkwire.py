#!/usr/bin/python3
"""Raw ZooKeeper wire-protocol prober for the limits and SASL tests.

It speaks just enough of the jute protocol (connect handshake, exists, ping, SASL) to open sessions
by hand and then misbehave on purpose: oversized frames, malformed requests, too many
connections from one address. Each command prints one `name: result` line per observation so a
bats test can assert on what a user of the server would see (their connection closed, another
client unaffected). Exit status is 0 when the probe ran, 2 on usage errors; the verdict is in
the output, not the exit status.
"""
import socket
import struct
import sys
import time

OP_CREATE = 1
OP_EXISTS = 3
OP_GETDATA = 4
OP_PING = 11
OP_SASL = 102
IO_TIMEOUT_S = 10.0


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def jute_string(text):
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Closed(str(exc))
        if not chunk:
            raise Closed("eof")
        data += chunk
    return data


def recv_frame(sock):
    (length,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, length)


def connect(host, port, source=None, session_timeout_ms=10000):
    """Open a TCP connection and complete the session handshake; raise Closed if refused."""
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT_S,
                                    source_address=(source, 0) if source else None)
    request = struct.pack(">iqiq", 0, 0, session_timeout_ms, 0) + struct.pack(">i", 16) + b"\0" * 16
    request += b"\0"  # readOnly=false
    sock.sendall(frame(request))
    reply = recv_frame(sock)
    _, timeout_ms, session_id = struct.unpack(">iiq", reply[:16])
    if session_id == 0:
        raise Closed("handshake refused (session id 0)")
    return sock


def exists(sock, path, xid=1):
    """Send exists(path); return the error code of the reply (0 = exists, -101 = no node)."""
    sock.sendall(frame(struct.pack(">ii", xid, OP_EXISTS) + jute_string(path) + b"\0"))
    while True:
        reply = recv_frame(sock)
        rxid, _zxid, err = struct.unpack(">iqi", reply[:16])
        if rxid == xid:
            return err


def wait_closed(sock, timeout_s=IO_TIMEOUT_S):
    """True when the server closes sock within timeout_s (reading and discarding any replies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def send_quietly(sock, data):
    """Send data, ignoring a server that already closed on us."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def bystander_report(sock):
    try:
        err = exists(sock, "/")
        return "ok" if err == 0 else "error %d" % err
    except (Closed, OSError) as exc:
        return "failed (%s)" % exc


def cmd_oversize(host, port, length):
    """A frame that declares `length` bytes: the server must close that connection only."""
    bystander = connect(host, port)
    offender = connect(host, port)
    header = struct.pack(">i", length) + struct.pack(">ii", 7, OP_CREATE)
    send_quietly(offender, header + b"x" * min(length, 256 * 1024))
    print("offender: %s" % ("closed" if wait_closed(offender) else "open"))
    print("bystander: %s" % bystander_report(bystander))


def create_request(xid, path, data):
    body = struct.pack(">ii", xid, OP_CREATE) + jute_string(path)
    body += struct.pack(">i", len(data)) + data
    body += struct.pack(">i", 1) + struct.pack(">i", 31) + jute_string("world") + jute_string("anyone")
    return frame(body + struct.pack(">i", 0))  # persistent


def cmd_create_size(host, port, size):
    """A real create request carrying `size` bytes of data: print what the server did."""
    bystander = connect(host, port)
    sock = connect(host, port)
    path = "/zkwire-size-%d-%d" % (size, time.monotonic_ns())
    send_quietly(sock, create_request(9, path, b"d" * size))
    try:
        reply = recv_frame(sock)
        _xid, _zxid, err = struct.unpack(">iqi", reply[:16])
        print("create: %s" % ("ok" if err == 0 else "error %d" % err))
    except (Closed, OSError):
        print("create: closed")
    print("bystander: %s" % bystander_report(bystander))


def send_in_pieces(sock, data, sizes):
    """Send data in pieces of the given sizes (cycled), each its own segment (TCP_NODELAY and a
    pause), so the server reads it a piece at a time."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    off, i = 0, 0
    while off < len(data):
        n = sizes[i % len(sizes)]
        sock.sendall(data[off:off + n])
        off += n
        i += 1
        time.sleep(0.002)


def reply_of(sock, xid):
    """The reply to xid (events before it skipped): (err, body after the header)."""
    while True:
        reply = recv_frame(sock)
        rxid, _zxid, err = struct.unpack(">iqi", reply[:16])
        if rxid == xid:
            return err, reply[16:]


def cmd_trickle(host, port, size):
    """An idle session (its requests answered, so the server holds no buffers for it) sends a
    create of `size` bytes of data in pieces, its frame length split too, then reads the data
    back; then 200 small requests pipelined in one burst whose last frame is split. Prints
    `trickle: create=... get=... pipelined=N of 200`."""
    sock = connect(host, port)
    path = "/zkwire-trickle-%d" % time.monotonic_ns()
    data = bytes((i * 7 + i // 251) % 256 for i in range(size))
    if exists(sock, "/") != 0:
        print("trickle: no root")
        return
    try:
        send_in_pieces(sock, create_request(2, path, data), [2, 3, 1000, 65536 - 5, 70000, 131072])
        err, _ = reply_of(sock, 2)
        print("trickle: create=%s" % ("ok" if err == 0 else "error %d" % err))
        sock.sendall(frame(struct.pack(">ii", 3, OP_GETDATA) + jute_string(path) + b"\0"))
        err, body = reply_of(sock, 3)
        got = body[4:4 + struct.unpack(">i", body[:4])[0]] if err == 0 else b""
        print("trickle: get=%s" % ("match" if got == data else "error %d" % err if err else
                                   "mismatch (%d bytes)" % len(got)))
        burst = b"".join(frame(struct.pack(">ii", 100 + i, OP_EXISTS) + jute_string(path) + b"\0")
                         for i in range(200))
        send_in_pieces(sock, burst, [len(burst) - 3, 1, 2])
        answered = 0
        for i in range(200):
            err, _ = reply_of(sock, 100 + i)
            answered += err == 0
        print("trickle: pipelined=%d of 200" % answered)
    except (Closed, OSError) as exc:
        print("trickle: closed (%s)" % exc)


def cmd_malformed(host, port, kind):
    """Malformed or truncated requests: the server must close only the offending connection."""
    bystander = connect(host, port)
    offender = connect(host, port)
    if kind == "short-header":
        # A frame too short to hold a request header (xid + type).
        send_quietly(offender, frame(b"\x00\x01"))
    elif kind == "negative-length":
        send_quietly(offender, struct.pack(">i", -5) + b"\0" * 8)
    elif kind == "truncated":
        # Half a frame, then the client stops sending: the server must not wait forever on it
        # once the client closes its side, and must not disturb others meanwhile.
        send_quietly(offender, struct.pack(">i", 64) + struct.pack(">ii", 3, OP_EXISTS) + b"\0\0")
        offender.shutdown(socket.SHUT_WR)
    elif kind == "bad-handshake":
        offender.close()
        offender = socket.create_connection((host, port), timeout=IO_TIMEOUT_S)
        send_quietly(offender, frame(b"\xff" * 7))
    else:
        print("usage: unknown malformed kind %s" % kind)
        sys.exit(2)
    print("offender: %s" % ("closed" if wait_closed(offender) else "open"))
    print("bystander: %s" % bystander_report(bystander))


def sasl_request(sock, xid, token):
    """Send one GetSASLRequest; return (err, zxid, token or None) of its reply."""
    body = struct.pack(">ii", xid, OP_SASL)
    body += struct.pack(">i", -1) if token is None else struct.pack(">i", len(token)) + token
    sock.sendall(frame(body))
    while True:
        reply = recv_frame(sock)
        rxid, zxid, err = struct.unpack(">iqi", reply[:16])
        if rxid != xid:
            continue
        server_token = None
        if err == 0 and len(reply) >= 20:
            (length,) = struct.unpack(">i", reply[16:20])
            server_token = reply[20:20 + length] if length >= 0 else None
        return err, zxid, server_token


def cmd_sasl(host, port, user, password):
    """A DIGEST-MD5 exchange as kazoo runs it (service zookeeper, host zk-sasl-md5), then an
    exists: one line per SASL reply, the exists result, and whether the server closed.
    USER "-" skips SASL (an unauthenticated client)."""
    sock = connect(host, port)
    if user != "-":
        import puresasl.client
        client = puresasl.client.SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                                            username=user, password=password)
        challenge, xid = None, 0
        while not client.complete:
            response = client.process(challenge)
            if client.complete and not response:
                break
            xid += 1
            try:
                err, zxid, challenge = sasl_request(sock, xid, response or b"")
            except (Closed, OSError):
                print("sasl %d: closed" % xid)
                return
            print("sasl %d: err %d zxid %d" % (xid, err, zxid))
            if err != 0:
                break
        if client.complete:
            print("sasl: complete")
    try:
        err = exists(sock, "/", xid=100)
        print("exists: %s" % ("ok" if err == 0 else "error %d" % err))
    except (Closed, OSError):
        print("exists: closed")
    print("connection: %s" % ("closed" if wait_closed(sock, 3) else "open"))


def cmd_sasl_malformed(host, port, kind):
    """Malformed SASL packets: the offender gets an error or is closed; the server serves on."""
    bystander = connect(host, port)
    offender = connect(host, port)
    header = struct.pack(">ii", 5, OP_SASL)
    if kind == "token-past-frame":
        send_quietly(offender, frame(header + struct.pack(">i", 1000) + b"short"))
    elif kind == "negative-token":
        send_quietly(offender, frame(header + struct.pack(">i", -7)))
    elif kind == "huge-token":
        send_quietly(offender, frame(header + struct.pack(">i", 512 * 1024) + b"A" * (512 * 1024)))
    elif kind == "garbage-first":
        send_quietly(offender, frame(header + struct.pack(">i", 9) + b"\xff\x00=\",,\"=\x01"))
    elif kind == "garbage-response":
        # the challenge, then a response that is no DIGEST-MD5 response at all
        sasl_request(offender, 4, b"")
        garbage = b'username="bob",realm=,nonce="\x00",cnonce==,nc=zz,qop=auth,digest-uri="x",response=' + b"f" * 40
        send_quietly(offender, frame(header + struct.pack(">i", len(garbage)) + garbage))
    elif kind == "before-handshake":
        offender.close()
        offender = socket.create_connection((host, port), timeout=IO_TIMEOUT_S)
        send_quietly(offender, frame(header + struct.pack(">i", 0)))
    else:
        print("usage: unknown sasl-malformed kind %s" % kind)
        sys.exit(2)
    reply = ""
    try:
        offender.settimeout(5)
        data = recv_frame(offender)
        if len(data) >= 16:
            reply = " after error %d" % struct.unpack(">iqi", data[:16])[2]
    except (Closed, OSError):
        pass
    print("offender: %s%s" % ("closed" if wait_closed(offender) else "open", reply))
    print("bystander: %s" % bystander_report(bystander))


def cmd_cnxns(host, port, per_address, other_source):
    """Open per_address+1 sessions from 127.0.0.1, then one from other_source."""
    held = []
    for number in range(1, per_address + 2):
        try:
            sock = connect(host, port, source="127.0.0.1")
            # A connection the server means to keep answers requests; a refused one does not.
            err = exists(sock, "/")
            held.append(sock)
            print("conn%d from 127.0.0.1: %s" % (number, "ok" if err == 0 else "error %d" % err))
        except (Closed, OSError) as exc:
            print("conn%d from 127.0.0.1: refused" % number)
    try:
        sock = connect(host, port, source=other_source)
        exists(sock, "/")
        held.append(sock)
        print("conn from %s: ok" % other_source)
    except (Closed, OSError):
        print("conn from %s: refused" % other_source)
    print("first connection still works: %s" % (bystander_report(held[0]) if held else "none held"))


def main(argv):
    if len(argv) < 4:
        print(__doc__)
        print("usage: zkwire.py HOST PORT oversize LEN | create-size SIZE | trickle SIZE | malformed KIND"
              " | cnxns N OTHER_SOURCE"
              " | sasl USER PASSWORD | sasl-malformed KIND")
        return 2
    host, port, command = argv[1], int(argv[2]), argv[3]
    if command == "oversize":
        cmd_oversize(host, port, int(argv[4]))
    elif command == "create-size":
        cmd_create_size(host, port, int(argv[4]))
    elif command == "trickle":
        cmd_trickle(host, port, int(argv[4]))
    elif command == "malformed":
        cmd_malformed(host, port, argv[4])
    elif command == "cnxns":
        cmd_cnxns(host, port, int(argv[4]), argv[5])
    elif command == "sasl":
        cmd_sasl(host, port, argv[4], argv[5])
    elif command == "sasl-malformed":
        cmd_sasl_malformed(host, port, argv[4])
    else:
        print("unknown command %s" % command)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
