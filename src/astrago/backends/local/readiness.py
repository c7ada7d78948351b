"""Is a replica ready to serve? Its ports accept TCP connections and, with a health path, that path answers
with a success (2xx/3xx) on the first port. A replica that asked for ports is RUNNING only once ready."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import httpx

PROBE_EVERY_S = 0.25
PROBE_TIMEOUT_S = 2.0
LAST_LOG_LINES = 20


@dataclass(frozen=True, slots=True)
class Probe:
    host_ports: tuple[int, ...]
    health_path: str | None = None  # an HTTP path on the first port, e.g. /healthz
    host: str = "127.0.0.1"


async def is_ready(probe: Probe) -> str | None:
    """None when ready, else why not (for the reason of a replica that never becomes ready)."""
    for port in probe.host_ports:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(probe.host, port), PROBE_TIMEOUT_S)
        except (OSError, TimeoutError):
            return f"nothing accepts connections on port {port}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if probe.health_path and probe.host_ports:
        url = f"http://{probe.host}:{probe.host_ports[0]}{probe.health_path}"
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            return f"GET {probe.health_path} failed: {exc or type(exc).__name__}"
        if response.status_code >= 400:
            return f"GET {probe.health_path} answered {response.status_code}"
    return None


async def wait_until_ready(probe: Probe, deadline: float, ended: asyncio.Event) -> str | None:
    """Probe until ready (None), the replica ends (None: its end is reported instead), or `deadline`
    (time.time()) passes: then the last reason it was not ready."""
    why = "not probed yet"
    while not ended.is_set():
        why_not = await is_ready(probe)
        if why_not is None:
            return None
        why = why_not
        if time.time() >= deadline:
            return why
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), PROBE_EVERY_S)
    return None


def last_lines(path: Path, count: int = LAST_LOG_LINES, max_bytes: int = 16384) -> str:
    """The last `count` lines of a log, for a reason a user reads without opening the log."""
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - max_bytes))
            tail = file.read()
    except OSError:
        return ""
    lines = deque(tail.decode("utf-8", "replace").splitlines(), maxlen=count)
    return "\n".join(lines)
