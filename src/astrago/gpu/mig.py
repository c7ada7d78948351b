"""MIG naming: profiles ("3g.40gb") from NVML names or attributes, and joining `nvidia-smi -L` onto readings.

A MIG device is a (GPU instance, compute instance) pair. `nvidia-smi -q -x` lists MIG devices with their
index, GI and CI but no UUID or profile; `nvidia-smi -L` lists index, profile and UUID. The MIG device index
is the join key between the two."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from astrago.gpu.model import GpuDevice, SourceReading

_PROFILE_IN_NAME = re.compile(r"\bMIG\s+(\S+)\s*$")


def profile_from_name(name: str) -> str | None:
    """NVML names a MIG device after its parent plus the profile: "NVIDIA A100-SXM4-40GB MIG 1g.5gb"."""
    match = _PROFILE_IN_NAME.search(name)
    return match.group(1) if match else None


def profile_from_attributes(gpu_slices: int, compute_slices: int, memory_mib: int) -> str:
    """The profile name NVIDIA derives from a MIG device's attributes: `[<c>c.]<g>g.<mem>gb`."""
    memory_gb = round(memory_mib / 1024)
    prefix = f"{compute_slices}c." if compute_slices and compute_slices != gpu_slices else ""
    return f"{prefix}{gpu_slices}g.{memory_gb}gb"


@dataclass(frozen=True, slots=True)
class ListedMig:
    index: int
    profile: str
    uuid: str


@dataclass(frozen=True, slots=True)
class ListedGpu:
    index: int
    name: str
    uuid: str
    migs: tuple[ListedMig, ...]


def apply_listing(reading: SourceReading, listing: list[ListedGpu]) -> SourceReading:
    """Fill MIG UUIDs and profiles (and any missing GPU UUID) from `nvidia-smi -L`, matching MIG index."""
    by_index = {gpu.index: gpu for gpu in listing}
    devices: list[GpuDevice] = []
    for device in reading.devices:
        listed = by_index.get(device.index)
        if listed is None:
            devices.append(device)
            continue
        migs_by_index = {mig.index: mig for mig in listed.migs}
        migs = [
            replace(mig, uuid=migs_by_index[mig.index].uuid, profile=migs_by_index[mig.index].profile)
            if mig.index in migs_by_index
            else mig
            for mig in device.mig_devices
        ]
        devices.append(replace(device, uuid=device.uuid or listed.uuid, mig_devices=migs))
    return replace(reading, devices=devices)
