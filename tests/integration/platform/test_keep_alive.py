"""A kept-alive connection outlives client pools' idle expiry (httpx: 5 s), so that the client closes
it first: a server closing it at the same moment races a client's next request on it, which then fails
without an answer."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.support.server import User

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: astrago\r\nConnection: keep-alive\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    """Send one request and read its whole answer (head and a Content-Length body); b"" if closed."""
    connection.sendall(REQUEST)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head


def test_an_idle_connection_is_still_served_after_six_seconds(module_admin: User) -> None:
    address = urlsplit(module_admin.server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # past httpx's 5 s pool expiry, and past uvicorn's default keep-alive of 5 s
        assert _answer(connection).startswith(b"HTTP/1.1 200")
