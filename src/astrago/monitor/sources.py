"""The GPU source the server samples, from the `gpu_source` setting."""

from __future__ import annotations

from astrago.config import Settings
from astrago.gpu.sources import GpuSource, SourceUnavailable, open_source
from astrago.monitor.schemas import SampleSource

NONE = "none"


class GpuSourceError(ValueError):
    """The `gpu_source` setting names a source that cannot be opened (unknown kind, missing or invalid
    file): the server refuses to start rather than sample nothing in silence."""


def configured_source_kind(settings: Settings) -> str | None:
    """What kind of source the server samples (a SampleSource value), or None when it samples nothing."""
    spec = settings.gpu_source
    if settings.backend == "kubernetes":
        return SampleSource.PROMETHEUS.value if settings.telemetry_prometheus_url else None
    if spec is None:
        # Simulated GPUs have no utilisation: a source must be given for them (replay or scripted).
        return None if settings.simulate_gpus else SampleSource.NVML.value
    if spec == NONE:
        return None
    kind = spec.partition(":")[0]
    return kind if kind in {s.value for s in SampleSource} else None


def open_configured_source(settings: Settings) -> GpuSource | None:
    """The source to sample on this machine; None when there is none (simulated GPUs without a script,
    no driver). A bad spec or script raises ValueError, a usage error at start."""
    if settings.backend == "kubernetes":
        return None
    spec = settings.gpu_source
    if spec == NONE or (spec is None and settings.simulate_gpus):
        return None
    try:
        return open_source(spec or "auto")
    except SourceUnavailable as exc:
        if spec is None:  # no driver here: nothing to sample, as on a CPU-only machine
            return None
        raise GpuSourceError(f"gpu_source {spec!r}: {exc}") from exc
    except ValueError as exc:  # unknown kind, a replay or script that cannot be read
        raise GpuSourceError(f"gpu_source {spec!r}: {exc}") from exc
