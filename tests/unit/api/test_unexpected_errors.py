"""An unexpected error becomes a problem+json 500 on a connection that stays usable (uvicorn closes the
connection whenever an exception escapes the application, even after the 500 was sent)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from astrago.api.problems import install_problem_handlers
from tests.support.postgres import free_port


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/cut")
    async def cut() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("the source broke mid-stream")

        return StreamingResponse(chunks())

    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=chosen, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(10)


def _exchange(sock: socket.socket, path: str) -> tuple[bytes, bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_a_500_is_problem_json_and_keeps_the_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head, body = _exchange(sock, "/boom")
        assert head.startswith(b"HTTP/1.1 500")
        assert b"content-type: application/problem+json" in head.lower()
        assert b'"status":500' in body
        assert b"a bug" not in body  # internals stay in the server log
        for _ in range(2):
            head, body = _exchange(sock, "/ok")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body == b'{"status":"ok"}'


def test_a_stream_that_breaks_after_its_headers_is_cut_not_completed(port: int) -> None:
    """Once a 200 is on the wire, closing the connection is the only honest way to say the body is
    incomplete: a terminated chunked body would look like the whole output."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        assert b"partial" in data
        assert not data.endswith(b"0\r\n\r\n")
