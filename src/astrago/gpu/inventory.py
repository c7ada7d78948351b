"""The GPUs of this machine, for the platform's local executor (and `astrago gpu ls`).

Stable interface: `local_gpus(source="auto") -> list[GpuDevice]`. A machine without an NVIDIA driver
(no `libnvidia-ml.so.1`, no `nvidia-smi`) has no GPUs: the result is `[]`, never an exception."""

from __future__ import annotations

from astrago.gpu.model import GpuDevice, MigDevice
from astrago.gpu.sources import SourceFailed, SourceUnavailable, open_source

__all__ = ["GpuDevice", "MigDevice", "SourceFailed", "local_gpus"]


def local_gpus(source: str = "auto") -> list[GpuDevice]:
    """Devices with index, UUID, model, memory and MIG devices (GI/CI, UUID, profile, memory).

    `source` is `auto`, `nvml`, `smi` or `replay:PATH`. Only a missing driver yields `[]`; an unreadable
    replay path or an unknown source name raises `ValueError`, and a driver that fails outright raises
    `SourceFailed`, because an empty inventory would silently hide a broken node."""
    try:
        opened = open_source(source)
    except SourceUnavailable:
        return []
    try:
        return opened.read().devices
    except SourceUnavailable:
        return []
    finally:
        opened.close()
