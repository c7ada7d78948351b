"""MIG (Multi-Instance GPU) profiles and their legal placements.

A MIG-enabled GPU is divided into memory slices; a GPU instance of a profile occupies `size` consecutive
slices starting at one of a fixed set of positions (NVIDIA MIG user guide, "Supported MIG profiles";
`nvidia-smi mig -lgipp` prints the same table). Placements are kept as a bitmask of used slices per GPU,
so checking a profile is one AND per allowed start position."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MigProfile:
    name: str
    size: int  # memory slices the instance occupies
    starts: tuple[int, ...]  # legal first slice indices

    def mask_at(self, start: int) -> int:
        return ((1 << self.size) - 1) << start


@dataclass(frozen=True, slots=True)
class MigFamily:
    """One GPU model's MIG geometry: the number of slices and the profiles it offers."""

    name: str
    slices: int
    profiles: tuple[MigProfile, ...]

    def profile(self, name: str) -> MigProfile | None:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        return None

    @property
    def full_mask(self) -> int:
        return (1 << self.slices) - 1


def _seven_slice_family(name: str, unit_gb: int) -> MigFamily:
    """A100 and H100: 8 memory slices, compute in sevenths; `unit_gb` is the memory of one slice."""
    u = unit_gb
    return MigFamily(
        name=name,
        slices=8,
        profiles=(
            MigProfile(f"1g.{u}gb", 1, (0, 1, 2, 3, 4, 5, 6)),
            MigProfile(f"1g.{u}gb+me", 1, (0, 1, 2, 3, 4, 5, 6)),
            MigProfile(f"1g.{2 * u}gb", 2, (0, 2, 4, 6)),
            MigProfile(f"2g.{2 * u}gb", 2, (0, 2, 4)),
            MigProfile(f"3g.{4 * u}gb", 4, (0, 4)),
            MigProfile(f"4g.{4 * u}gb", 4, (0,)),
            MigProfile(f"7g.{8 * u}gb", 8, (0,)),
        ),
    )


A100_40GB = _seven_slice_family("A100-40GB", 5)
A100_80GB = _seven_slice_family("A100-80GB", 10)
H100_80GB = _seven_slice_family("H100-80GB", 10)
A30_24GB = MigFamily(
    name="A30-24GB",
    slices=4,
    profiles=(
        MigProfile("1g.6gb", 1, (0, 1, 2, 3)),
        MigProfile("1g.6gb+me", 1, (0, 1, 2, 3)),
        MigProfile("2g.12gb", 2, (0, 2)),
        MigProfile("2g.12gb+me", 2, (0, 2)),
        MigProfile("4g.24gb", 4, (0,)),
    ),
)

MIG_FAMILIES: tuple[MigFamily, ...] = (A100_40GB, A100_80GB, H100_80GB, A30_24GB)


def mig_family_for(model: str, memory_mib: int = 0) -> MigFamily | None:
    """The MIG geometry of a GPU model name as drivers and device plugins report it
    ("NVIDIA A100-SXM4-80GB", "A100 80GB PCIe", "H100 80GB HBM3", "A30"); None if it has no MIG."""
    text = model.upper().replace(" ", "-")
    if "A30" in text:
        return A30_24GB
    if "H100" in text:
        return H100_80GB
    if "A100" in text:
        if "80G" in text or memory_mib > 48 * 1024:
            return A100_80GB
        return A100_40GB
    return None


def free_starts(family: MigFamily, profile: MigProfile, used_mask: int) -> list[int]:
    return [start for start in profile.starts if is_legal(family, profile, start, used_mask)]


def remaining_placements(family: MigFamily, used_mask: int) -> int:
    """How many (profile, start) instances could still be created: a measure of what a layout leaves open."""
    return sum(len(free_starts(family, p, used_mask)) for p in family.profiles)


def best_start(family: MigFamily, profile: MigProfile, used_mask: int) -> int | None:
    """The free legal start that leaves the most other placements open (ties: the lowest start), or None.
    A 1g instance at slice 6 blocks only 3g@4 and the full GPU; at slice 0 it would also block 4g and 2g@0."""
    best: tuple[int, int] | None = None
    for start in free_starts(family, profile, used_mask):
        left = remaining_placements(family, used_mask | profile.mask_at(start))
        if best is None or left > best[0]:
            best = (left, start)
    return None if best is None else best[1]


def is_legal(family: MigFamily, profile: MigProfile, start: int, used_mask: int) -> bool:
    return (
        start in profile.starts
        and start + profile.size <= family.slices
        and not used_mask & profile.mask_at(start)
    )


def free_milli(family: MigFamily, used_mask: int) -> int:
    """Free memory slices of a MIG GPU, in thousandths of the GPU (for allocation ratios)."""
    used = bin(used_mask & family.full_mask).count("1")
    return (family.slices - used) * 1000 // family.slices
