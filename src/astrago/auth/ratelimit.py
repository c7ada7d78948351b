"""Failed-login limits: per account and per client address, over a sliding window.

Kept in the server's memory: each API replica counts on its own (with N replicas an attacker gets at most
N times the limit), and a restart forgets the counts; both are far below what brute force needs."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SlidingWindowLimiter:
    """At most `limit` events per key within `window_s` seconds."""

    limit: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        events = self._recent(key)
        if len(events) < self.limit:
            return 0
        return max(1, math.ceil(events[0] + self.window_s - self.clock()))

    def record(self, key: str) -> None:
        self._recent(key).append(self.clock())

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        events = self._events.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while events and events[0] <= cutoff:
            events.popleft()
        if len(self._events) > 100_000:  # bound memory under a spray of distinct keys
            self._prune(cutoff)
        return events

    def _prune(self, cutoff: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= cutoff]:
            del self._events[key]


@dataclass
class LoginThrottle:
    per_account: SlidingWindowLimiter
    per_address: SlidingWindowLimiter

    def retry_after(self, username: str, address: str) -> int:
        return max(self.per_account.retry_after(username.lower()), self.per_address.retry_after(address))

    def failed(self, username: str, address: str) -> None:
        self.per_account.record(username.lower())
        self.per_address.record(address)

    def succeeded(self, username: str) -> None:
        self.per_account.clear(username.lower())
