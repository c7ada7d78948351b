"""Resource requests per replica and their parsing from user-friendly strings."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_MIB = 1024 * 1024
# As Kubernetes: K, M, G, T (and KB, MB, ...) are decimal; Ki, Mi, Gi, Ti (and KiB, ...) are binary.
_MEMORY_UNITS = {
    "": 1 / _MIB, "b": 1 / _MIB,
    "k": 1e3 / _MIB, "kb": 1e3 / _MIB, "ki": 1 / 1024, "kib": 1 / 1024,
    "m": 1e6 / _MIB, "mb": 1e6 / _MIB, "mi": 1, "mib": 1,
    "g": 1e9 / _MIB, "gb": 1e9 / _MIB, "gi": 1024, "gib": 1024,
    "t": 1e12 / _MIB, "tb": 1e12 / _MIB, "ti": 1024 * 1024, "tib": 1024 * 1024,
}  # fmt: skip
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_CPU_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m?)\s*$")


class ResourceParseError(ValueError):
    pass


def _finite(number: float, what: str, value: object) -> float:
    """JSON readers turn 1e309 into infinity and accept NaN; a string of 400 nines is infinite too."""
    if math.isnan(number) or math.isinf(number):
        raise ResourceParseError(f"{what} must be a finite amount, not {value!r}")
    return number


def parse_memory_mib(value: str | int | float) -> int:
    """'16Gi', '512Mi', '1.5G'; bare numbers are MiB, the unit used everywhere in AstraGo."""
    if isinstance(value, bool):
        raise ResourceParseError(f"memory must be a size such as 16Gi, not {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ResourceParseError(f"memory cannot be negative: {value}")
        return int(_finite(value, "memory", value))
    match = _MEMORY_RE.match(value)
    if not match:
        raise ResourceParseError(f"cannot read memory size {value!r}; use e.g. 512Mi, 16Gi or 1Ti")
    number, unit = _finite(float(match.group(1)), "memory", value), match.group(2).lower()
    if unit == "":
        return int(number)  # bare numbers are MiB, the unit used everywhere in AstraGo
    if unit not in _MEMORY_UNITS:
        raise ResourceParseError(f"unknown memory unit {match.group(2)!r} in {value!r}; use Mi, Gi or Ti")
    return round(_finite(number * _MEMORY_UNITS[unit], "memory", value))


def parse_cpu_milli(value: str | int | float) -> int:
    """'2' → 2000, '500m' → 500, 1.5 → 1500."""
    if isinstance(value, bool):
        raise ResourceParseError(f"cpu must be a number of cores such as 2 or 500m, not {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ResourceParseError(f"cpu cannot be negative: {value}")
        return round(_finite(value * 1000, "cpu", value))
    match = _CPU_RE.match(value)
    if not match:
        raise ResourceParseError(f"cannot read cpu {value!r}; use cores (2, 0.5) or millicores (500m)")
    number = _finite(float(match.group(1)), "cpu", value)
    return round(number) if match.group(2) else round(_finite(number * 1000, "cpu", value))


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """What one replica asks for. GPU is one of: whole GPUs, a MIG profile, or a share of one GPU."""

    cpu_milli: int = 1000
    memory_mib: int = 1024
    gpus: int = 0
    gpu_model: str | None = None
    gpu_share_milli: int | None = None
    mig_profile: str | None = None

    @property
    def gpu_milli(self) -> int:
        """GPU demand in thousandths of a GPU (MIG slices count as their GPU fraction elsewhere)."""
        if self.gpu_share_milli:
            return self.gpu_share_milli
        return self.gpus * 1000

    def validate(self) -> None:
        if self.cpu_milli < 0 or self.memory_mib < 0 or self.gpus < 0:
            raise ResourceParseError("resources cannot be negative")
        chosen = sum(1 for x in (self.gpus > 0, self.gpu_share_milli is not None, self.mig_profile) if x)
        if chosen > 1:
            raise ResourceParseError("ask for whole GPUs, a MIG profile or a GPU share, not several of them")
        if self.gpu_share_milli is not None and not 1 <= self.gpu_share_milli <= 999:
            raise ResourceParseError("gpu_share_milli must be between 1 and 999 (thousandths of one GPU)")
