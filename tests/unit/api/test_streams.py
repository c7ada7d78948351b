"""A stream's first chunk is awaited before its headers: a source that fails at once raises to the caller
(who answers a 4xx), a slow one streams without it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from astrago.api.streams import primed


async def _chunks(*chunks: bytes, delay: float = 0.0, fail: Exception | None = None) -> AsyncIterator[bytes]:
    await asyncio.sleep(delay)
    if fail is not None:
        raise fail
    for chunk in chunks:
        yield chunk


async def _all(source: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in source]


async def test_a_source_that_fails_at_once_raises_before_streaming() -> None:
    with pytest.raises(LookupError, match="no log file"):
        await primed(_chunks(fail=LookupError("no log file")))


async def test_a_source_is_streamed_whole() -> None:
    assert await _all(await primed(_chunks(b"a", b"b", b"c"))) == [b"a", b"b", b"c"]
    assert await _all(await primed(_chunks())) == []


async def test_a_slow_source_starts_streaming_without_its_first_chunk() -> None:
    stream = await asyncio.wait_for(primed(_chunks(b"late", delay=0.3), wait_s=0.05), timeout=0.2)
    assert await _all(stream) == [b"late"]


async def test_a_slow_source_that_fails_later_fails_the_stream() -> None:
    stream = await primed(_chunks(delay=0.2, fail=LookupError("gone")), wait_s=0.01)
    with pytest.raises(LookupError):
        await _all(stream)
