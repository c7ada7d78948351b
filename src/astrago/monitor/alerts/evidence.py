"""What alerts and idle reclaim read of GPU telemetry (the telemetry service provides it)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Utilisation(Protocol):
    """One workload's GPU use over a window."""

    @property
    def mean_gpu_percent(self) -> float | None: ...

    @property
    def sample_count(self) -> int: ...

    @property
    def attributable(self) -> bool: ...


class UtilisationReader(Protocol):
    async def utilisation(self, workload_id: str, since: datetime, until: datetime) -> Utilisation | None: ...


def mean_percent(use: Utilisation | None) -> tuple[float | None, int]:
    """The window's mean GPU % and sample count; (None, 0) when the use cannot be attributed."""
    if use is None or not use.attributable or use.sample_count == 0:
        return None, 0
    return use.mean_gpu_percent, use.sample_count
