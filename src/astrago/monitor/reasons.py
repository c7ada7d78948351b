"""Why a workload's or a GPU's utilisation is unknown: said in words, never shown as 0."""

from __future__ import annotations

from astrago.monitor.schemas import MIG_NOT_ATTRIBUTABLE, NO_GPUS, NO_SAMPLES, SIMULATED_NO_SOURCE


def unknown_reason(
    *, holds_gpus: bool, on_simulated_gpus: bool, source: str | None, samples: int, attributable_samples: int
) -> str | None:
    """None when utilisation is known (some sample attributes it)."""
    if attributable_samples:
        return None
    if not holds_gpus:
        return NO_GPUS
    if samples:
        return MIG_NOT_ATTRIBUTABLE
    if source is None:
        return SIMULATED_NO_SOURCE if on_simulated_gpus else "no GPU utilisation source is configured"
    return f"{NO_SAMPLES} (source: {source})"
