"""One name per GPU model, whatever reported it.

NVML says `NVIDIA A100-SXM4-80GB`, GPU feature discovery labels nodes `NVIDIA-A100-SXM4-80GB` (spaces become
dashes, `-SHARED` is appended under time-slicing), users type `A100-80GB` or `a100`. Scheduling, quotas and
errors compare one canonical name, `<family>-<memory>GB` (`A100-80GB`, `H100-80GB`, `H200-141GB`); the raw
product name stays with the device for display. Pure: no I/O, used by both backends, the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from astrago.domain.suggest import did_you_mean

# Family → the memory sizes (GB, as NVIDIA names them) it ships with. The first is the one meant when a
# name says no size and the device's memory cannot tell (e.g. "NVIDIA H200" is always 141 GB).
KNOWN_FAMILIES: dict[str, tuple[int, ...]] = {
    "B200": (180,),
    "H200": (141,),
    "H100": (80, 94),
    "H800": (80,),
    "GH200": (96, 144),
    "A100": (80, 40),
    "A800": (80, 40),
    "A40": (48,),
    "A30": (24,),
    "A10": (24,),
    "A10G": (24,),
    "L40S": (48,),
    "L40": (48,),
    "L4": (24,),
    "V100": (32, 16),
    "T4": (16,),
    "RTX-A6000": (48,),
    "RTX-6000-ADA": (48,),
}
# Words in product names that say how a GPU is built, not which model it is.
_NOISE = {
    "NVIDIA", "TESLA", "SXM", "SXM2", "SXM4", "SXM5", "PCIE", "HBM2", "HBM2E", "HBM3", "HBM3E", "NVL",
    "GENERATION", "SHARED", "MIG",
}  # fmt: skip
_MEMORY_TOKEN = re.compile(r"^(\d+)GB$")
_CANONICAL = re.compile(r"^(?P<family>[A-Z0-9]+(?:-[A-Z0-9]+)*?)-(?P<gb>\d+)GB$")


class UnknownGpuModel(ValueError):
    """A name that does not say which GPU it is; the message lists what it could have been."""


@dataclass(frozen=True, slots=True)
class GpuModelName:
    family: str
    memory_gb: int

    def __str__(self) -> str:
        return f"{self.family}-{self.memory_gb}GB"


def known_models() -> list[str]:
    """Every canonical name of the catalogue, for help texts and errors."""
    return [f"{family}-{gb}GB" for family, sizes in KNOWN_FAMILIES.items() for gb in sorted(sizes)]


def _tokens(raw: str) -> list[str]:
    text = raw.strip().upper().replace("_", "-").replace(" ", "-")
    return [token for token in text.split("-") if token]


def _family_of(words: Sequence[str]) -> str | None:
    """The longest catalogue family the words start with (so `RTX-A6000` wins over nothing, `A10G` over
    `A10`)."""
    for length in range(min(3, len(words)), 0, -1):
        candidate = "-".join(words[:length])
        if candidate in KNOWN_FAMILIES:
            return candidate
    return None


def parse_gpu_model(raw: str, memory_mib: int | None = None) -> GpuModelName | None:
    """The canonical model of `raw` (a product name, a GFD label, a canonical name or an alias), using the
    device's memory when the name does not say it; None when it cannot tell."""
    tokens = _tokens(raw)
    memory = [int(m[1]) for token in tokens if (m := _MEMORY_TOKEN.match(token))]
    words = [token for token in tokens if token not in _NOISE and not _MEMORY_TOKEN.match(token)]
    if not words:
        return None
    family = _family_of(words)
    if family is None:
        # Not in the catalogue: still canonical when it names its memory (a newer GPU, a simulated one).
        if memory:
            return GpuModelName("-".join(words), memory[0])
        return GpuModelName("-".join(words), round(memory_mib / 1024)) if memory_mib else None
    sizes = KNOWN_FAMILIES[family]
    if memory:
        return GpuModelName(family, memory[0])
    if memory_mib:
        # NVML reports usable memory (an 80 GB A100 shows 81920 MiB, a 141 GB H200 143771 MiB).
        nearest = min(sizes, key=lambda gb: abs(gb * 1000 - memory_mib * 1.048576))
        return GpuModelName(family, nearest)
    if len(sizes) == 1:
        return GpuModelName(family, sizes[0])
    return None


@lru_cache(maxsize=1024)
def canonical_gpu_model(raw: str, memory_mib: int | None = None) -> str:
    """The canonical name for display and comparison; an unreadable name is kept, cleaned, as it is (a
    device must never vanish from the inventory because its name is new to this catalogue)."""
    parsed = parse_gpu_model(raw, memory_mib)
    if parsed is not None:
        return str(parsed)
    return "-".join(token for token in _tokens(raw) if token != "NVIDIA") or raw.strip()


def resolve_requested_model(raw: str, available: Iterable[str]) -> str:
    """A model a user asked for, as the canonical name of a model that exists; raises UnknownGpuModel
    naming the models that exist (and the closest one) otherwise."""
    existing = sorted(set(available))
    parsed = parse_gpu_model(raw)
    if parsed is not None and str(parsed) in existing:
        return str(parsed)
    if parsed is None:
        family = _family_of([t for t in _tokens(raw) if t not in _NOISE])
        matches = [m for m in existing if family and m.startswith(f"{family}-")]
        if len(matches) == 1:
            return matches[0]
    raise UnknownGpuModel(unknown_model_message(raw, existing))


def resolve_model_choice(raw: str, available: Iterable[str]) -> str:
    """`A|B` (any of several) with each name resolved by `resolve_requested_model`."""
    existing = list(available)
    choices = [part.strip() for part in raw.split("|") if part.strip()]
    if not choices:
        raise UnknownGpuModel(
            f"the GPU model {raw!r} names no model; the models that exist: {', '.join(existing)}"
        )
    return "|".join(dict.fromkeys(resolve_requested_model(choice, existing) for choice in choices))


def unknown_model_message(raw: str, existing: Sequence[str]) -> str:
    if not existing:
        return f"no GPU of model {raw!r} here: this platform has no GPUs"
    guess = did_you_mean(raw.upper(), existing)
    return f"no GPU of model {raw!r} here{guess}; the models that exist: {', '.join(existing)}"
