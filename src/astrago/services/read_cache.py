"""A small cache of rows the API reads on every request but that rarely change (the caller behind a token,
the node list, a workspace's quota), so that a submission is not a dozen database round trips.

An entry is dropped as soon as this process commits a write to a table it was read from (see
`store.write_tracking`), and in any case after `max_age_s`, which bounds how long a change made by another
process (a second replica, an admin command beside the server) can go unseen."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from astrago.store.write_tracking import GENERATIONS

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Stamp:
    generations: tuple[int, ...]
    taken_at: float


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    generations: tuple[int, ...]
    expires_at: float


class ReadCache(Generic[K, V]):
    def __init__(self, tables: tuple[str, ...], max_age_s: float, max_entries: int = 4096) -> None:
        self.tables = tables
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()

    def stamp(self) -> Stamp:
        """Take it before reading what will be cached: a write committed meanwhile makes the entry stale."""
        return Stamp(GENERATIONS.of(self.tables), time.monotonic())

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic() or entry.generations != GENERATIONS.of(self.tables):
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: K, value: V, stamp: Stamp, max_age_s: float | None = None) -> None:
        """Keep `value` read after `stamp` (for at most `max_age_s`, never longer than the cache's own)."""
        age = self.max_age_s if max_age_s is None else min(max_age_s, self.max_age_s)
        if age <= 0:
            return
        self._entries[key] = _Entry(value, stamp.generations, stamp.taken_at + age)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
