"""The body limit and its per-route opt-out, which upload routes use to stream large bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from astrago.api.body_limit import BodyLimitMiddleware, body_limit
from astrago.api.problems import install_problem_handlers

LIMIT = 1024


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT)
    install_problem_handlers(app)

    @app.post("/default")
    async def default(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @app.post("/upload")
    @body_limit(None)
    async def upload(request: Request) -> dict[str, int]:
        return {"read": sum([len(chunk) async for chunk in request.stream()])}

    @app.post("/small")
    @body_limit(16)
    async def small(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        yield client


async def _chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_the_default_limit_refuses_announced_and_streamed_bodies(client: httpx.AsyncClient) -> None:
    assert (await client.post("/default", content=b"x" * LIMIT)).json() == {"read": LIMIT}
    announced = await client.post("/default", content=b"x" * (LIMIT + 1))
    assert announced.status_code == 413
    assert announced.headers["content-type"] == "application/problem+json"
    assert f"({LIMIT} bytes)" in announced.json()["detail"]
    streamed = await client.post("/default", content=_chunks(LIMIT + 1))  # chunked: no Content-Length
    assert streamed.status_code == 413


async def test_a_route_can_opt_out_or_set_its_own_limit(client: httpx.AsyncClient) -> None:
    big = 10 * LIMIT
    assert (await client.post("/upload", content=b"x" * big)).json() == {"read": big}
    assert (await client.post("/upload", content=_chunks(big))).json() == {"read": big}
    assert (await client.post("/small", content=b"x" * 16)).json() == {"read": 16}
    assert (await client.post("/small", content=b"x" * 17)).status_code == 413
