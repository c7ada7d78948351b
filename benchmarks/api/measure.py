"""The measurements, each against any `ApiSystem`: submit throughput, request latencies, list throughput,
a walk through the whole store, and the server's CPU while nobody calls it."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import numpy as np
from api_system import ApiError, ApiSystem

WALK_PAGE = 50


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    samples: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        if not seconds:
            return cls(p50_ms=math.nan, p99_ms=math.nan, samples=0)
        p50, p99 = np.percentile(np.array(seconds) * 1000.0, [50, 99])
        return cls(p50_ms=float(p50), p99_ms=float(p99), samples=len(seconds))


@dataclass(frozen=True)
class SubmitResult:
    count: int  # successful submissions
    seconds: float
    latency: Latency  # of the successful ones
    failures: dict[str, int]  # refused submissions by answer

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


@dataclass(frozen=True)
class IdleResult:
    cpu_percent: float  # of one core
    seconds: float
    gauges_before: dict[str, float]
    gauges_after: dict[str, float]


@dataclass(frozen=True)
class WalkResult:
    pages: int
    items: int
    seconds: float


async def submit_load(
    system: ApiSystem,
    client: httpx.AsyncClient,
    indices: Iterator[int],
    count: int,
    concurrency: int,
    deadline: float,
) -> tuple[SubmitResult, list[str]]:
    """`count` successful submissions from `concurrency` clients at once, or fewer if `deadline`
    (a `time.perf_counter()` value) comes first; the result and the new ids.

    A refused submission is counted by its answer and replaced by another, so the store still reaches
    its size: a benchmark that stopped at the first error would hide how often errors happen."""
    ids: list[str] = []
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    unclaimed = count

    async def worker() -> None:
        nonlocal unclaimed
        while unclaimed > 0 and time.perf_counter() < deadline:
            unclaimed -= 1
            index = next(indices)  # shared: each index is taken by exactly one worker
            started = time.perf_counter()
            try:
                workload_id = await system.submit(client, index)
            except (ApiError, httpx.TransportError) as exc:
                # A dropped connection is the server failing to answer at all: count it like a refusal.
                answer = exc.summary if isinstance(exc, ApiError) else f"no answer ({type(exc).__name__})"
                failures[answer] += 1
                if failures.total() > count:
                    message = f"{system.info.name} refused more submissions than it took: {failures}"
                    raise RuntimeError(message) from exc
                unclaimed += 1
                continue
            latencies.append(time.perf_counter() - started)
            ids.append(workload_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    result = SubmitResult(
        count=len(ids), seconds=elapsed, latency=Latency.of(latencies), failures=dict(failures)
    )
    return result, ids


async def cursor_at(system: ApiSystem, client: httpx.AsyncClient, depth: int) -> object:
    """The cursor whose page starts after the `depth` newest workloads."""
    cursor: object | None = None
    skipped = 0
    while skipped < depth:
        page = await system.list_page(client, min(system.max_page, depth - skipped), cursor)
        if page.next_cursor is None:
            raise RuntimeError(f"the store ended after {skipped + len(page.ids)} items, before {depth}")
        skipped += len(page.ids)
        cursor = page.next_cursor
    return cursor


async def request_latencies(
    system: ApiSystem,
    client: httpx.AsyncClient,
    rounds: int,
    page: int,
    deep_cursor: object,
    ids: list[str],
) -> dict[str, Latency]:
    """One request at a time; the three kinds interleaved so that a noisy moment hits them alike."""
    chooser = random.Random(7)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "list_first": lambda: system.list_page(client, page, None),
        "list_deep": lambda: system.list_page(client, page, deep_cursor),
        "get": lambda: system.get(client, chooser.choice(ids)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            seconds[name].append(time.perf_counter() - started)
    return {name: Latency.of(values) for name, values in seconds.items()}


async def list_throughput(
    system: ApiSystem, client: httpx.AsyncClient, page: int, concurrency: int, duration_s: float
) -> float:
    """First pages answered per second with `concurrency` clients calling back to back."""
    done = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await system.list_page(client, page, None)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def walk(system: ApiSystem, client: httpx.AsyncClient) -> WalkResult:
    """Every workload, newest first, in pages of `WALK_PAGE` (what a UI scrolling to the end does)."""
    started = time.perf_counter()
    cursor: object | None = None
    pages = items = 0
    while True:
        page = await system.list_page(client, WALK_PAGE, cursor)
        pages += 1
        items += len(page.ids)
        if page.next_cursor is None:
            return WalkResult(pages=pages, items=items, seconds=time.perf_counter() - started)
        cursor = page.next_cursor


async def idle_cpu(system: ApiSystem, client: httpx.AsyncClient, duration_s: float) -> IdleResult:
    """The server's own CPU use while no client calls it: the cost of its background loops."""
    before = await system.server_gauges(client)
    cpu_before = system.process.cpu_seconds()
    started = time.perf_counter()
    await asyncio.sleep(duration_s)
    cpu_used = system.process.cpu_seconds() - cpu_before
    elapsed = time.perf_counter() - started
    after = await system.server_gauges(client)
    return IdleResult(
        cpu_percent=100.0 * cpu_used / elapsed, seconds=elapsed, gauges_before=before, gauges_after=after
    )
