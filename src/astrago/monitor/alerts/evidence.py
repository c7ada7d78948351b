"""What alerts and idle reclaim read of GPU telemetry (the telemetry service provides it)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Utilisation(Protocol):
    """One workload's GPU use over a window."""

    @property
    def gpu_util_mean_percent(self) -> float | None: ...

    @property
    def samples(self) -> int: ...

    @property
    def attributable(self) -> bool: ...


class UtilisationReader(Protocol):
    async def utilisation(self, workload_id: str, since: datetime, until: datetime) -> Utilisation | None: ...


def mean_percent(use: Utilisation | None) -> tuple[float | None, int]:
    """The window's mean GPU % and sample count; (None, 0) when the use cannot be attributed."""
    if use is None or not use.attributable or use.samples == 0:
        return None, 0
    return use.gpu_util_mean_percent, use.samples
