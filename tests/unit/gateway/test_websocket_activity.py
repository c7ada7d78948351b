"""The gateway's WebSocket relay reports each frame the caller sends (idle reclaim counts it as a
person's activity) and not the app's own frames: a real echo server on loopback behind the relay."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from websockets.asyncio.server import ServerConnection, serve

from astrago.gateway.proxy import forward_websocket
from astrago.services.gateway import Upstream
from tests.support.postgres import free_port


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An app that answers each frame with two (its own chatter must not count as activity)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Future[None] = loop.create_future()

    async def echo(connection: ServerConnection) -> None:
        async for frame in connection:
            await connection.send(frame)
            await connection.send("status: idle")

    async def main() -> None:
        async with serve(echo, "127.0.0.1", port):
            ready.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    yield port
    loop.call_soon_threadsafe(stop.set_result, None)
    thread.join(10)


def test_each_frame_the_caller_sends_is_activity(echo_port: int) -> None:
    inputs: list[str] = []
    upstream = Upstream("wl-1", 8000, "127.0.0.1", echo_port, None, False)

    async def relay(websocket: WebSocket) -> None:
        await forward_websocket(websocket, upstream, "", on_input=lambda: inputs.append("frame"))

    app = Starlette(routes=[WebSocketRoute("/proxy/wl-1/8000/ws", relay)])
    with TestClient(app) as client, client.websocket_connect("/proxy/wl-1/8000/ws") as websocket:
        for text in ("print(1)", "print(2)", "print(3)"):
            websocket.send_text(text)
            assert websocket.receive_text() == text
            assert websocket.receive_text() == "status: idle"
    assert len(inputs) == 3
