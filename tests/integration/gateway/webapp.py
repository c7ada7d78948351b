"""A web app run as a workload in the gateway tests: echoes what it receives (headers, bodies, WebSocket
frames) and streams server-sent events. Listens on $PORT, as an AstraGo workload does."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse, StreamingResponse

app = FastAPI()


@app.get("/hello")
async def hello(request: Request) -> dict[str, object]:
    return {"path": request.url.path, "headers": dict(request.headers), "query": request.url.query}


@app.get("/raw/{rest:path}")
async def raw(request: Request) -> str:
    return bytes(request.scope["raw_path"]).decode()


@app.post("/digest")
async def digest(request: Request) -> dict[str, object]:
    hasher, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        hasher.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": hasher.hexdigest()}


@app.get("/bytes/{size}")
async def download(size: int) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        block = b"x" * 65536
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            sent += len(piece)
            yield piece

    return StreamingResponse(
        body(), media_type="application/octet-stream", headers={"content-length": str(size)}
    )


@app.get("/events")
async def events() -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"id: {number}\ndata: tick {number}\n\n".encode()
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream")


@app.get("/away")
async def away() -> RedirectResponse:
    return RedirectResponse("/hello", status_code=302)


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text("echo: " + message["text"])
            elif message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        return


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
