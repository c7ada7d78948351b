"""The web app the gateway benchmark runs as an interactive workload (listens on $PORT)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, StreamingResponse

app = FastAPI()
BLOCK = b"x" * (1 << 20)


@app.get("/small")
async def small() -> PlainTextResponse:
    return PlainTextResponse("ok")


@app.get("/bytes/{size}")
async def download(size: int) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < size:
            piece = BLOCK[: min(len(BLOCK), size - sent)]
            sent += len(piece)
            yield piece

    return StreamingResponse(
        body(), media_type="application/octet-stream", headers={"content-length": str(size)}
    )


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_bytes(await websocket.receive_bytes())
    except WebSocketDisconnect:
        return


if __name__ == "__main__":
    print(f"listening on {os.environ['PORT']}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
