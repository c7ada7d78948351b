"""GPU sources behind one interface: NVML, `nvidia-smi`, recorded outputs, scripted readings."""

from __future__ import annotations

from astrago.gpu.sources.base import GpuSource, SourceFailed, SourceUnavailable
from astrago.gpu.sources.nvml import NvmlSource
from astrago.gpu.sources.replay import ReplayError, ReplaySource
from astrago.gpu.sources.scripted import ScriptedSource, ScriptError
from astrago.gpu.sources.smi import SmiSource

__all__ = [
    "GpuSource",
    "NvmlSource",
    "ReplayError",
    "ReplaySource",
    "ScriptError",
    "ScriptedSource",
    "SmiSource",
    "SourceFailed",
    "SourceUnavailable",
    "open_source",
]

SOURCE_HELP = "nvml | smi | replay:PATH | scripted:PATH | auto (NVML, else nvidia-smi)"


def open_source(spec: str = "auto", *, state: str | None = None, smi_timeout_s: float = 10.0) -> GpuSource:
    """Open a source by its CLI name. `auto` and `nvml`/`smi` raise `SourceUnavailable` where there is no
    driver; a bad spec or replay path raises `ValueError` (`ReplayError`)."""
    if spec.startswith("replay:"):
        path = spec.removeprefix("replay:")
        if not path:
            raise ReplayError("replay needs a path: replay:PATH")
        return ReplaySource(path, state=state)
    if spec.startswith("scripted:"):
        path = spec.removeprefix("scripted:")
        if not path:
            raise ScriptError("a scripted source needs a path: scripted:PATH")
        return ScriptedSource(path)
    if spec == "nvml":
        return NvmlSource()
    if spec == "smi":
        return SmiSource(timeout_s=smi_timeout_s)
    if spec == "auto":
        try:
            return NvmlSource()
        except SourceUnavailable as nvml_missing:
            try:
                return SmiSource(timeout_s=smi_timeout_s)
            except SourceUnavailable as smi_missing:
                raise SourceUnavailable(f"no NVIDIA driver: {nvml_missing}; {smi_missing}") from smi_missing
    raise ValueError(f"unknown GPU source {spec!r}; use {SOURCE_HELP}")
