"""One HTTP/1.1 exchange on a raw socket, for tests that must control the bytes or the connection."""

from __future__ import annotations

import socket


def http_exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request and read exactly one response (by Content-Length) from a raw socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body
