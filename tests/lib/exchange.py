"""One raw exchange with a server port, for tests that speak below any client library.

exchange(addr, payload) connects, sends payload, half-closes, and returns every byte the server
sent before it closed: b"" when it closed at once or refused the connection (a connection over a
limit may be reset while it is being made, even before the payload could be sent).
"""
import socket


def exchange(addr, payload, timeout_s=10):
    try:
        sock = socket.create_connection(addr, timeout=timeout_s)
    except OSError:
        return b""
    reply = b""
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass  # reset, broken pipe, not connected: the server closed first
    sock.close()
    return reply
