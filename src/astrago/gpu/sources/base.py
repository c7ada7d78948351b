"""The one interface every GPU source implements."""

from __future__ import annotations

from typing import Protocol

from astrago.gpu.model import SourceReading


class SourceUnavailable(RuntimeError):
    """No driver here (no `libnvidia-ml.so.1`, no `nvidia-smi`, driver not loaded): inventory says no GPUs."""


class SourceFailed(RuntimeError):
    """The source exists but this reading failed as a whole (nvidia-smi timed out, a file is unreadable)."""


class GpuSource(Protocol):
    """Reads devices, MIG devices and processes. `read()` reports per-device failures inside the reading
    (`SourceReading.errors`) and raises `SourceFailed` only when nothing could be read at all."""

    @property
    def name(self) -> str: ...

    def read(self) -> SourceReading: ...

    def close(self) -> None: ...
