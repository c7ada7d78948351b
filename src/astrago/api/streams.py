"""Streamed responses that fail before their headers, not after.

Once a 200 and its headers are sent, a failing stream can only be cut, and the client cannot tell what
went wrong. So the first chunk is awaited before the response starts: a source that fails at once (no
log file, no pod) becomes a 4xx problem, and only a source that is slow to produce its first chunk (a
followed log with no output yet) starts streaming without it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

FIRST_CHUNK_WAIT_S = 1.0


class _Ended(Exception):
    """The source ended without a single chunk."""


async def _first(iterator: AsyncIterator[bytes]) -> bytes:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        raise _Ended from None


async def primed(source: AsyncIterator[bytes], wait_s: float = FIRST_CHUNK_WAIT_S) -> AsyncIterator[bytes]:
    """`source`, after waiting up to `wait_s` for its first chunk; raises what the source raises in that
    time, so the caller can answer with an error instead of a cut stream."""
    iterator = aiter(source)
    first = asyncio.ensure_future(_first(iterator))
    await asyncio.wait({first}, timeout=wait_s)
    if first.done() and isinstance(first.exception(), _Ended):
        return _empty()
    if first.done() and first.exception() is not None:
        raise first.exception()  # type: ignore[misc]
    return _rest(first, iterator)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _rest(first: asyncio.Future[bytes], iterator: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        try:
            yield await first
        except _Ended:
            return
        async for chunk in iterator:
            yield chunk
    finally:
        if not first.done():
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
