"""The scheduler's contract: an immutable snapshot in, decisions out.

This module is the interface between the live server (controllers build a Snapshot from the store and
the backend's inventory) and the engine (`astrago.scheduler.engine.schedule`). The simulator drives the
same engine. Everything is plain data: no I/O, no clocks, no randomness — the same snapshot gives the
same decisions. Quantities are integers: CPU in millicores, memory in MiB, GPU in milli-GPUs (1000 = one
whole GPU), so fractional shares and quotas add up exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

from astrago.domain.resources import ResourceRequest


@dataclass(frozen=True, slots=True)
class GpuInfo:
    index: int
    model: str
    memory_mib: int = 0
    uuid: str | None = None
    healthy: bool = True
    mig_enabled: bool = False
    # In use by something AstraGo did not start (e.g. a pod another tool created on a Kubernetes node):
    # it exists, but holds nothing free for AstraGo until that ends.
    held_by_others: bool = False
    # Why it takes no new work though it exists (fenced as unhealthy, or cordoned by an admin), in words
    # that name it: "GPU 2 on node a is fenced: XID 79 (GPU fallen off the bus)". Work already on it stays
    # accounted; nothing new is placed there.
    fenced: str | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: tuple[GpuInfo, ...] = ()
    schedulable: bool = True
    labels: tuple[tuple[str, str], ...] = ()
    cordoned: str | None = None  # why an admin took the node out of new placements, in words that name it


@dataclass(frozen=True, slots=True)
class ReplicaPlacement:
    """Where one replica runs and what it holds there.

    `gpu_indices` are node-local GPU indices. `gpu_milli` is what the replica takes on *each* of those
    GPUs: 1000 for whole GPUs, 1..999 for a share. For MIG, `mig_profile` and `mig_start` name the slice
    on the single GPU in `gpu_indices`."""

    node: str
    cpu_milli: int
    memory_mib: int
    gpu_indices: tuple[int, ...] = ()
    gpu_milli: int = 0
    mig_profile: str | None = None
    mig_start: int | None = None


@dataclass(frozen=True, slots=True)
class WorkloadRequest:
    id: str
    workspace: str
    resources: ResourceRequest
    replicas: int = 1
    priority: int = 0
    submitted_seq: int = 0  # monotonic submission order: FIFO tie-break independent of clocks
    preemptible: bool = True

    @property
    def total_gpu_milli(self) -> int:
        return self.resources.gpu_milli * self.replicas


@dataclass(frozen=True, slots=True)
class RunningWorkload:
    request: WorkloadRequest
    placements: tuple[ReplicaPlacement, ...]
    started_seq: int = 0  # admission order; "youngest" victims have the highest value
    # Already asked to stop (preempted, cancelled) and inside its grace period: it still holds its resources,
    # but it is not chosen as a victim again and a preemptor waiting for it does not pick new victims.
    terminating: bool = False


@dataclass(frozen=True, slots=True)
class Quota:
    """A workspace's share. `None` limit = no limit. Guaranteed capacity is never preempted; usage above
    it is borrowed from idle capacity and may be reclaimed when another workspace needs its guarantee."""

    gpu_guaranteed_milli: int = 0
    gpu_limit_milli: int | None = None
    cpu_guaranteed_milli: int = 0
    cpu_limit_milli: int | None = None
    memory_guaranteed_mib: int = 0
    memory_limit_mib: int | None = None
    # per GPU model: model -> (guaranteed milli, limit milli or None)
    gpu_models: tuple[tuple[str, int, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    nodes: tuple[NodeInfo, ...]
    running: tuple[RunningWorkload, ...] = ()
    pending: tuple[WorkloadRequest, ...] = ()
    quotas: tuple[tuple[str, Quota], ...] = ()  # workspace -> quota; a workspace without one is unlimited

    def quota_of(self, workspace: str) -> Quota | None:
        for name, quota in self.quotas:
            if name == workspace:
                return quota
        return None


@dataclass(frozen=True, slots=True)
class Admission:
    workload_id: str
    placements: tuple[ReplicaPlacement, ...]


@dataclass(frozen=True, slots=True)
class Preemption:
    workload_id: str
    reason: str
    for_workload_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingReason:
    """Why a workload still waits, in words a user understands, and its place in the queue (1 = next)."""

    code: str  # machine-readable: quota_limit | no_fit | no_capacity | reserved | preempting | invalid
    message: str
    position: int


@dataclass(slots=True)
class Decisions:
    admit: list[Admission] = field(default_factory=list)
    preempt: list[Preemption] = field(default_factory=list)
    pending: dict[str, PendingReason] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    policy: str = "bestfit"
    preemption: bool = True
    backfill: bool = True
    # fifo | priority | fairshare (see astrago.scheduler.queueing)
    queue: str = "fairshare"
    # Hold capacity for the first workload that cannot fit, so smaller work cannot starve it. With
    # reservation on, `backfill` lets later work use what the reservation does not need; with backfill off
    # nothing passes the blocked head (strict order). With reservation off, anything that fits goes.
    reservation: bool = True
    seed: int = 0  # the placement policy's tie-break order
