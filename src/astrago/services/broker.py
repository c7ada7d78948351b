"""The in-process broker that wakes live event streams when this process commits a change.

It carries no data: the change feed in the database is the source of truth (durable ids, resumable
after a restart), the broker only says "look now" so that streams need not poll. Changes committed by
another process (an API-only server beside a controllers-only one) are found by the streams' periodic
re-check instead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class ChangeBroker:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Event] = set()

    def publish(self) -> None:
        for wakeup in self._subscribers:
            wakeup.set()

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        """An event set on every publish until the block ends (then it is forgotten: nothing leaks)."""
        wakeup = asyncio.Event()
        self._subscribers.add(wakeup)
        try:
            yield wakeup
        finally:
            self._subscribers.discard(wakeup)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
