"""`/api/v1/workloads/{id}/exec` (WebSocket): a command, or a terminal, inside a running replica.

Query: `command` (repeated, the argv), `replica`, `tty`, `rows`, `cols`. Frames from the server: binary,
the first byte the stream (1 stdout, 2 stderr) and the rest its bytes; at the end one text frame
`{"type": "exit", "code": N}`, then a normal close. Frames from the client: binary stdin (first byte 0),
or text `{"type": "resize", "rows": R, "cols": C}` / `{"type": "eof"}`.

Authentication: the bearer header (the CLI); a browser, which cannot set headers on a WebSocket, offers
the subprotocols `astrago.exec.v1` and `astrago.bearer.<base64url token>`, or sends its session cookie
from the server's own origin (see `socket_principal`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from astrago.api.proxy_auth import chosen_subprotocol, socket_principal
from astrago.api.routers.proxy import deny
from astrago.backends.base import ExecRequest, ExecSession, ExecStream
from astrago.services.errors import ServiceError
from astrago.services.terminals import TerminalService

router = APIRouter(prefix="/api/v1/workloads", tags=["workloads"])


@router.websocket("/{workload_id}/exec")
async def exec_in_workload(
    websocket: WebSocket,
    workload_id: str,
    command: Annotated[list[str], Query()],
    replica: int = 0,
    tty: bool = False,
    rows: int = 24,
    cols: int = 80,
) -> None:
    terminals: TerminalService = websocket.app.state.terminals
    try:
        principal = await socket_principal(websocket, websocket.app.state.services)
        request = ExecRequest(argv=tuple(command), tty=tty, rows=rows, cols=cols)
        session = await terminals.open(principal, workload_id, replica, request)
    except ServiceError as exc:
        await deny(websocket, exc)
        return
    await websocket.accept(subprotocol=chosen_subprotocol(websocket))
    try:
        await _relay(websocket, session)
    finally:
        await session.kill()


async def _relay(websocket: WebSocket, session: ExecSession) -> None:
    async def to_caller() -> None:
        async for stream, data in session.output():
            await websocket.send_bytes(bytes([stream]) + data)
        code = await session.wait()
        await websocket.send_text(json.dumps({"type": "exit", "code": code}))
        await websocket.close(code=1000)

    async def from_caller() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes"):
                    frame = message["bytes"]
                    if frame[0] == ExecStream.STDIN:
                        await session.send(frame[1:])
                elif message.get("text"):
                    control = json.loads(message["text"])
                    if control.get("type") == "resize":
                        await session.resize(int(control["rows"]), int(control["cols"]))
                    elif control.get("type") == "eof":
                        await session.end_input()

    sending, receiving = asyncio.create_task(to_caller()), asyncio.create_task(from_caller())
    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
        if receiving.done() and not sending.done():  # the caller went away: the command goes too
            sending.cancel()
        elif sending.done():
            receiving.cancel()
    finally:
        await asyncio.gather(sending, receiving, return_exceptions=True)
