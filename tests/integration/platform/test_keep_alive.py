"""A kept-alive connection outlives client pools' idle expiry (httpx: 5 s), so that the client closes
it first: a server closing it at the same moment races a client's next request on it, which then fails
without an answer."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.support.raw_http import http_exchange
from tests.support.server import User

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: astrago\r\nConnection: keep-alive\r\n\r\n"


def test_an_idle_connection_is_still_served_after_six_seconds(module_admin: User) -> None:
    address = urlsplit(module_admin.server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        assert http_exchange(connection, REQUEST).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # past httpx's 5 s pool expiry, and past uvicorn's default keep-alive of 5 s
        assert http_exchange(connection, REQUEST).startswith(b"HTTP/1.1 200")
