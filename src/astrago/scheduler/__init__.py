"""The scheduling engine (pure, deterministic): `schedule(snapshot, config) -> Decisions`.

Contract types live in `astrago.scheduler.types`; placement policies in `astrago.scheduler.placement`."""

from astrago.scheduler.engine import schedule
from astrago.scheduler.types import (
    Admission,
    Decisions,
    GpuInfo,
    NodeInfo,
    PendingReason,
    Preemption,
    Quota,
    ReplicaPlacement,
    RunningWorkload,
    SchedulerConfig,
    Snapshot,
    WorkloadRequest,
)

__all__ = [
    "Admission",
    "Decisions",
    "GpuInfo",
    "NodeInfo",
    "PendingReason",
    "Preemption",
    "Quota",
    "ReplicaPlacement",
    "RunningWorkload",
    "SchedulerConfig",
    "Snapshot",
    "WorkloadRequest",
    "schedule",
]
