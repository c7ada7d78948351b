"""Whether a GPU is fit for work, from what its driver reports: a pure rule.

States:
- **healthy**: nothing wrong is known.
- **degraded**: it works but slower than it should (a thermal or power slowdown is active). It keeps
  taking work; the state is shown so that an admin can look at cooling or power.
- **unhealthy**: it must take no new work (it is *fenced*): it fell off the bus, has uncorrectable memory
  errors or memory repairs waiting for a reset, or the driver reported an Xid error that means the GPU or
  the work on it is broken.

Xid errors are events: the GPU stays fenced after one until an admin clears it (`astrago node uncordon
NODE --gpu INDEX`), because a GPU that raised Xid 79 once is not trusted again without a look. The other
causes are conditions: they clear when the driver stops reporting them (after a GPU reset, for example).

The Xid table follows NVIDIA's "Xid Errors" catalogue (docs.nvidia.com/deploy/xid-errors): the codes
listed as fencing are those whose recommended action is a GPU reset or node reboot, or that mean the
GPU's memory can no longer be trusted; every other code is recorded as information."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class GpuHealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class XidInfo:
    meaning: str
    fences: bool  # True: the GPU takes no new work after it


XID_TABLE: dict[int, XidInfo] = {
    13: XidInfo("graphics engine exception (usually an application fault)", False),
    31: XidInfo("GPU memory page fault (usually an application fault)", False),
    32: XidInfo("invalid or corrupted push buffer stream", False),
    43: XidInfo("GPU stopped processing (an application fault)", False),
    45: XidInfo("preemptive cleanup after a previous error", False),
    48: XidInfo("double-bit ECC error", True),
    61: XidInfo("internal micro-controller breakpoint or warning", False),
    62: XidInfo("internal micro-controller halt", False),
    63: XidInfo("ECC page retirement or row remapping recorded", True),
    64: XidInfo("ECC page retirement or row remapping failed", True),
    68: XidInfo("video processor exception", False),
    69: XidInfo("graphics engine class error", False),
    74: XidInfo("NVLink error", True),
    79: XidInfo("GPU fallen off the bus", True),
    92: XidInfo("high single-bit ECC error rate", False),
    94: XidInfo("contained ECC error (the affected application was stopped)", True),
    95: XidInfo("uncontained ECC error (every application on the GPU is affected)", True),
    119: XidInfo("GSP RPC timeout", True),
    120: XidInfo("GSP error", True),
}


def describe_xid(xid: int) -> str:
    """'XID 79 (GPU fallen off the bus)'; an unlisted code is named as such."""
    info = XID_TABLE.get(xid)
    return f"XID {xid} ({info.meaning if info else 'not in the catalogue this version knows'})"


def xid_fences(xid: int) -> bool:
    info = XID_TABLE.get(xid)
    return info is not None and info.fences


@dataclass(frozen=True, slots=True)
class HealthSignals:
    """The signals of one GPU at one reading (`None` = the GPU or source does not report it)."""

    lost: bool = False
    ecc_uncorrectable: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_pending: bool | None = None
    remapping_failed: bool | None = None
    # From the cluster's GPU exporter, which reports less detail than the driver does on one machine:
    memory_repair_pending: bool | None = None  # a row remap or page retirement (not saying which) waits
    unanswered: bool = False  # the GPU did not answer the exporter's last collection (lost or unreachable)
    slowdowns: tuple[str, ...] = ()  # active slowdown reasons, e.g. ("hw_thermal",)


@dataclass(frozen=True, slots=True)
class GpuHealth:
    state: GpuHealthState
    cause: str | None = None  # in words, e.g. "XID 79 (GPU fallen off the bus)"
    sticky: bool = False  # stays until an admin clears it (an Xid), rather than until the signal clears

    @property
    def fenced(self) -> bool:
        return self.state is GpuHealthState.UNHEALTHY


HEALTHY = GpuHealth(GpuHealthState.HEALTHY)


def condition_health(signals: HealthSignals) -> GpuHealth:
    """The state the current conditions give, worst first."""
    if signals.lost:
        return GpuHealth(GpuHealthState.UNHEALTHY, "GPU is lost (NVML GpuIsLost: it stopped answering)")
    if signals.unanswered:
        return GpuHealth(
            GpuHealthState.UNHEALTHY, "GPU did not answer its node's GPU exporter (lost or unreachable)"
        )
    if signals.remapping_failed:
        return GpuHealth(GpuHealthState.UNHEALTHY, "row remapping failed (no spare memory rows left)")
    if signals.ecc_uncorrectable:
        count = signals.ecc_uncorrectable
        return GpuHealth(
            GpuHealthState.UNHEALTHY,
            f"{count} uncorrectable ECC error{'s' if count != 1 else ''} since the driver loaded",
        )
    if signals.remapped_rows_pending:
        return GpuHealth(GpuHealthState.UNHEALTHY, "memory row remapping pending (needs a GPU reset)")
    if signals.retired_pages_pending:
        return GpuHealth(GpuHealthState.UNHEALTHY, "memory page retirement pending (needs a GPU reset)")
    if signals.memory_repair_pending:
        return GpuHealth(
            GpuHealthState.UNHEALTHY,
            "memory repair pending (a row remap or page retirement needs a reset)",
        )
    if signals.slowdowns:
        reasons = ", ".join(reason.replace("_", " ") for reason in sorted(signals.slowdowns))
        return GpuHealth(GpuHealthState.DEGRADED, f"clocks slowed down ({reasons})")
    return HEALTHY


def next_health(current: GpuHealth, signals: HealthSignals, xids: Sequence[int] = ()) -> GpuHealth:
    """The GPU's state after a reading: `current` is what is recorded, `xids` the Xid errors the reading
    brought. A sticky (Xid) fence survives clean readings; a new fencing Xid replaces any other cause."""
    fencing = [xid for xid in xids if xid_fences(xid)]
    if fencing:
        return GpuHealth(GpuHealthState.UNHEALTHY, describe_xid(fencing[-1]), sticky=True)
    if current.sticky and current.fenced:
        return current
    return condition_health(signals)


@dataclass(frozen=True, slots=True)
class CounterPoint:
    """One sample of a counter, with the start time of the process that counted it (None: not known)."""

    value: float
    started: float | None = None


def counter_increase(previous: CounterPoint | None, points: Sequence[CounterPoint]) -> float:
    """How much a counter rose over `points` (its samples in order) after `previous`, its last sample seen;
    `None` for a series not seen before, which counts from 0 (a Prometheus counter starts there; the GPU
    exporter's Xid series appears with its first error). A reset — the counting process restarted (another
    start time) or the value dropped — means the counter began again from 0: all it holds then is new."""
    total = 0.0
    last = previous or CounterPoint(0.0)
    for point in points:
        restarted = None not in (point.started, last.started) and point.started != last.started
        total += point.value if restarted or point.value < last.value else point.value - last.value
        last = CounterPoint(point.value, point.started if point.started is not None else last.started)
    return total
