"""What a GPU source reports: devices, MIG devices and the processes on them.

Every source (NVML, `nvidia-smi`, recorded outputs) produces the same `SourceReading`; the collector adds
what only the host knows (command lines, containers, pods). A value a source cannot report is `None`,
never 0: on MIG, for example, per-process utilization does not exist, and exporting 0 would be a lie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MIB = 1024 * 1024


class ProcessKind(StrEnum):
    """How a process uses the GPU, spelled as `nvidia-smi` prints it."""

    COMPUTE = "C"
    GRAPHICS = "G"
    COMPUTE_GRAPHICS = "C+G"
    MPS = "M"
    MPS_COMPUTE = "M+C"

    @classmethod
    def combine(cls, kinds: set[str]) -> ProcessKind:
        """A PID found in several NVML lists (compute, graphics, MPS) is one process of a combined kind."""
        if "G" in kinds and ("C" in kinds or "M" in kinds):
            return cls.COMPUTE_GRAPHICS
        if "M" in kinds and "C" in kinds:
            return cls.MPS_COMPUTE
        if "M" in kinds:
            return cls.MPS
        if "G" in kinds:
            return cls.GRAPHICS
        return cls.COMPUTE

    @classmethod
    def parse(cls, text: str) -> ProcessKind:
        try:
            return cls(text.strip())
        except ValueError:
            return cls.combine({part.strip() for part in text.split("+")})


@dataclass(frozen=True, slots=True)
class MigDevice:
    """A MIG device: one (GPU instance, compute instance) pair with its own UUID and profile.

    Memory belongs to the GPU instance, so compute instances sharing a GPU instance report the same memory.
    `uuid` and `profile` are `None` when the source cannot tell (the `-q -x` XML has neither)."""

    index: int
    gpu_instance_id: int
    compute_instance_id: int
    uuid: str | None = None
    profile: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None

    @property
    def memory_total_bytes(self) -> int | None:
        return None if self.memory_total_mib is None else self.memory_total_mib * MIB


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One physical GPU as the driver reports it; `index` is the driver's and CUDA_VISIBLE_DEVICES' index."""

    index: int
    uuid: str | None
    name: str  # the full NVML product name, e.g. "NVIDIA A100-SXM4-80GB"
    memory_total_mib: int
    mig_devices: list[MigDevice] = field(default_factory=list)
    mig_enabled: bool = False
    memory_used_mib: int | None = None
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None  # memory *bandwidth* activity, not memory used
    temperature_celsius: float | None = None
    power_watts: float | None = None
    sm_clock_mhz: float | None = None
    memory_clock_mhz: float | None = None
    healthy: bool = True
    driver_version: str | None = None

    @property
    def model(self) -> str:
        """The product name without the vendor prefix newer drivers add ("A100-SXM4-80GB")."""
        return self.name.removeprefix("NVIDIA ").strip()

    @property
    def memory_total_bytes(self) -> int:
        return self.memory_total_mib * MIB

    def mig_device(self, gpu_instance_id: int, compute_instance_id: int) -> MigDevice | None:
        for mig in self.mig_devices:
            if (mig.gpu_instance_id, mig.compute_instance_id) == (gpu_instance_id, compute_instance_id):
                return mig
        return None


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """One process on one GPU (or one MIG device of it). A process using 8 GPUs appears 8 times.

    `sm_utilization_percent` / `memory_utilization_percent` are `None` where the driver has no per-process
    sample (always on MIG); `used_memory_bytes` is `None` where the driver hides it (Windows WDDM)."""

    pid: int
    gpu_index: int
    kind: ProcessKind
    name: str  # as the driver reports it; the collector prefers /proc/<pid>/cmdline
    used_memory_bytes: int | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    sm_utilization_percent: float | None = None
    memory_utilization_percent: float | None = None

    @property
    def mig_key(self) -> tuple[int, int] | None:
        if self.gpu_instance_id is None or self.compute_instance_id is None:
            return None
        return (self.gpu_instance_id, self.compute_instance_id)


@dataclass(frozen=True, slots=True)
class SourceError:
    """A failure the collector reports without giving up the whole reading (one lost GPU, one failed call)."""

    stage: str  # e.g. "device", "processes", "utilization", "mig", "command"
    message: str
    gpu_index: int | None = None


class Slowdown(StrEnum):
    """Clock slowdowns the driver reports as active ("clocks event/throttle reasons"). Idle, application
    clocks and the software power cap are normal operation and are not listed."""

    HW = "hw"  # hardware slowdown (thermal or power brake, or an external signal)
    HW_THERMAL = "hw_thermal"
    HW_POWER_BRAKE = "hw_power_brake"
    SW_THERMAL = "sw_thermal"


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One Xid error the driver reported for a GPU (NVML's critical-error event set, or a scripted source).
    `at` is when the driver saw it, when the source knows."""

    gpu_index: int
    xid: int
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GpuHealthSignals:
    """What a source can tell about a GPU's health, beyond "it answered". `None` = not reported here
    (a consumer GPU has no ECC, an old driver no row remapping): never read as "fine" by accident, and
    never as "broken" either."""

    gpu_index: int
    lost: bool = False  # NVML_ERROR_GPU_IS_LOST: the GPU fell off the bus or stopped answering
    ecc_uncorrectable: int | None = None  # volatile (since the driver loaded) uncorrectable ECC errors
    retired_pages_pending: bool | None = None  # a page retirement waits for the next reset
    remapped_rows_pending: bool | None = None  # a row remap waits for the next reset
    remapping_failed: bool | None = None  # the GPU ran out of spare rows
    slowdowns: frozenset[Slowdown] = frozenset()


@dataclass(slots=True)
class SourceReading:
    devices: list[GpuDevice] = field(default_factory=list)
    processes: list[GpuProcess] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    # Xid errors since the previous reading (each is reported once), and the health signals per GPU.
    events: list[XidEvent] = field(default_factory=list)
    health: list[GpuHealthSignals] = field(default_factory=list)


def clamp_percent(value: float | None) -> float | None:
    """Drivers occasionally report >100% (sampling across a period boundary); a share is 0..100."""
    if value is None:
        return None
    return min(100.0, max(0.0, float(value)))


def merge_duplicate_processes(processes: list[GpuProcess]) -> list[GpuProcess]:
    """One entry per (pid, GPU, MIG device): a PID listed as compute and graphics is one `C+G` process.

    Memory is the larger report (both lists report the same allocation for the same process)."""
    merged: dict[tuple[int, int, tuple[int, int] | None], GpuProcess] = {}
    for proc in processes:
        key = (proc.pid, proc.gpu_index, proc.mig_key)
        seen = merged.get(key)
        if seen is None:
            merged[key] = proc
            continue
        kinds = set(seen.kind.split("+")) | set(proc.kind.split("+"))
        memories = [m for m in (seen.used_memory_bytes, proc.used_memory_bytes) if m is not None]
        merged[key] = GpuProcess(
            pid=proc.pid,
            gpu_index=proc.gpu_index,
            kind=ProcessKind.combine(kinds),
            name=seen.name or proc.name,
            used_memory_bytes=max(memories) if memories else None,
            gpu_instance_id=proc.gpu_instance_id,
            compute_instance_id=proc.compute_instance_id,
            sm_utilization_percent=_first(seen.sm_utilization_percent, proc.sm_utilization_percent),
            memory_utilization_percent=_first(
                seen.memory_utilization_percent, proc.memory_utilization_percent
            ),
        )
    return list(merged.values())


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b
