"""What a scheduling cycle reads and changes: free resources, usage per workspace, running workloads.

`schedule()` builds one from a Snapshot for every call. The replay simulator keeps one alive across events
and tells it what started and finished, so a cycle never rebuilds thousands of placements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import mig
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.quota import Capacity, QuotaLedger, Usage
from astrago.scheduler.types import (
    NodeInfo,
    Quota,
    ReplicaPlacement,
    RunningWorkload,
    Snapshot,
    WorkloadRequest,
)

ShapeKey = tuple[ResourceRequest, int]  # a request and its replica count


def mig_profile_milli(profile: str) -> int:
    """The GPU fraction (milli) a MIG profile holds, as placement counts it. Profile names are unique to a
    GPU family except for the sizes shared by A100-80GB and H100-80GB, which have the same geometry."""
    sizes = [
        p.size * 1000 // family.slices
        for family in mig.MIG_FAMILIES
        for p in family.profiles
        if p.name == profile
    ]
    return max(sizes, default=0)


def demand_of(request: WorkloadRequest) -> Usage:
    """Everything a pending workload asks for, all replicas together. Its GPU model is not known yet."""
    return _demand(request.resources, request.replicas)


@lru_cache(maxsize=4096)
def _demand(resources: ResourceRequest, replicas: int) -> Usage:
    per_replica_gpu = (
        mig_profile_milli(resources.mig_profile) if resources.mig_profile else resources.gpu_milli
    )
    return Usage(
        gpu_milli=per_replica_gpu * replicas,
        cpu_milli=resources.cpu_milli * replicas,
        memory_mib=resources.memory_mib * replicas,
    )


class SchedulingState:
    """Mutable: `cluster` holds every running replica; `ledger` charges each workspace for its workloads."""

    def __init__(self, nodes: Sequence[NodeInfo], quotas: Iterable[tuple[str, Quota]]) -> None:
        self.nodes = tuple(nodes)
        self.cluster = ClusterState.from_nodes(self.nodes)
        self.empty = self.cluster.copy()  # capacity only: "could this ever fit?"
        self._models = {
            node.name: tuple(gpu.model.strip().lower() for gpu in node.gpus) for node in self.nodes
        }
        capacity = Capacity(
            gpu_milli=self.cluster.gpu_capacity_milli,
            cpu_milli=int(self.cluster.cpu_capacity.sum()),
            memory_mib=int(self.cluster.memory_capacity.sum()),
        )
        self.ledger = QuotaLedger(dict(quotas), capacity)
        self.running: dict[str, RunningWorkload] = {}
        self._usage: dict[str, Usage] = {}
        self.terminating: set[str] = set()  # running workloads already asked to stop
        self.by_workspace: dict[str, dict[str, RunningWorkload]] = {}
        # Memos that outlive a cycle (the simulator runs thousands): what never fits a (request, replicas)
        # shape gets (the empty cluster does not change), and shapes that do not fit the free capacity now,
        # which stays true until something is released.
        self.never_fits: dict[ShapeKey, tuple[str, str] | None] = {}
        self.unfit_now: set[ShapeKey] = set()
        self._next_started_seq = 0

    @property
    def gpu_models(self) -> list[str]:
        return list(self.cluster.models)

    def usage_of(self, placements: Sequence[ReplicaPlacement]) -> Usage:
        """What placed replicas hold, with the GPU model of every GPU they use."""
        cpu = memory = gpu = 0
        by_model: dict[str, int] = {}
        for placement in placements:
            cpu += placement.cpu_milli
            memory += placement.memory_mib
            models = self._models.get(placement.node, ())
            for index in placement.gpu_indices:
                gpu += placement.gpu_milli
                if index < len(models):
                    by_model[models[index]] = by_model.get(models[index], 0) + placement.gpu_milli
        return Usage(gpu, cpu, memory, tuple(sorted(by_model.items())))

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> SchedulingState:
        state = cls(snapshot.nodes, snapshot.quotas)
        for workload in sorted(snapshot.running, key=lambda w: (w.started_seq, w.request.id)):
            if not state.start(workload):
                # The snapshot says more runs on these nodes than they hold (a node shrank, a stale record).
                # Whatever the truth is, placing new work there could over-allocate: keep it off them.
                for placement in workload.placements:
                    if placement.node in state.cluster.node_index:
                        state.cluster.schedulable[state.cluster.node_index[placement.node]] = False
        return state

    def usage(self, workload: RunningWorkload) -> Usage:
        """What a running workload holds (computed once, when it started)."""
        return self._usage[workload.request.id]

    def start(self, workload: RunningWorkload) -> bool:
        """Account for a running workload. Returns False, changing nothing, when its placements do not fit
        what is free (an inconsistent snapshot); the caller then keeps new work off those nodes."""
        applied: list[ReplicaPlacement] = []
        try:
            for placement in workload.placements:
                self.cluster.apply(placement)
                applied.append(placement)
        except ValueError:
            for placement in reversed(applied):
                self.cluster.release(placement)
            return False
        usage = self.usage_of(workload.placements)
        self.ledger.add(workload.request.workspace, usage)
        self.running[workload.request.id] = workload
        self._usage[workload.request.id] = usage
        self.by_workspace.setdefault(workload.request.workspace, {})[workload.request.id] = workload
        if workload.terminating:
            self.terminating.add(workload.request.id)
        self._next_started_seq = max(self._next_started_seq, workload.started_seq + 1)
        return True

    def admit(self, request: WorkloadRequest, placements: tuple[ReplicaPlacement, ...]) -> RunningWorkload:
        workload = RunningWorkload(request, placements, started_seq=self._next_started_seq)
        if not self.start(workload):
            raise ValueError(f"placement of {request.id} does not fit the cluster")  # an engine bug
        return workload

    def finish(self, workload_id: str) -> RunningWorkload:
        workload = self.running.pop(workload_id)
        self.terminating.discard(workload_id)
        del self.by_workspace[workload.request.workspace][workload_id]
        self.unfit_now.clear()
        for placement in workload.placements:
            self.cluster.release(placement)
        self.ledger.remove(workload.request.workspace, self._usage.pop(workload_id))
        return workload

    def mark_terminating(self, workload_id: str) -> None:
        workload = self.running[workload_id]
        self.terminating.add(workload_id)
        if not workload.terminating:
            marked = RunningWorkload(
                workload.request, workload.placements, workload.started_seq, terminating=True
            )
            self.running[workload_id] = marked
            self.by_workspace[workload.request.workspace][workload_id] = marked
