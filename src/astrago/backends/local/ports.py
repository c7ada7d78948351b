"""Host ports for the ports a workload asks for: two workloads that both ask for 8000 get different
host ports, and learn theirs from `$PORT` (the first) and `ASTRAGO_PORTS` (all, in `--port` order)."""

from __future__ import annotations

import socket
from collections.abc import Collection

from astrago.backends.base import BackendError

MAX_TRIES = 64


def allocate_host_ports(count: int, taken: Collection[int]) -> tuple[int, ...]:
    """`count` distinct loopback ports that are free now and not `taken` by another replica's record.

    The kernel picks each (bind to port 0). A process on this machine could still take one before the
    workload binds it; the workload then fails to listen and its readiness check says so."""
    chosen: list[int] = []
    for _ in range(MAX_TRIES):
        if len(chosen) == count:
            return tuple(chosen)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in taken and port not in chosen:
            chosen.append(port)
    if len(chosen) == count:
        return tuple(chosen)
    raise BackendError(f"could not find {count} free ports on this machine")
