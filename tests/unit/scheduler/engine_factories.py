"""Small builders for scheduler-engine tests: nodes, workloads, running workloads, snapshots."""

from __future__ import annotations

from collections.abc import Iterable

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.types import (
    GpuInfo,
    NodeInfo,
    Quota,
    ReplicaPlacement,
    RunningWorkload,
    Snapshot,
    WorkloadRequest,
)

GPU = 1000  # milli


def node(name: str, gpus: int = 4, model: str = "A100", cpu: int = 64, memory_gib: int = 256) -> NodeInfo:
    return NodeInfo(
        name,
        cpu_milli=cpu * 1000,
        memory_mib=memory_gib * 1024,
        gpus=tuple(GpuInfo(index, model) for index in range(gpus)),
    )


def nodes(count: int, gpus: int = 4, model: str = "A100", prefix: str = "n") -> tuple[NodeInfo, ...]:
    return tuple(node(f"{prefix}{i}", gpus, model) for i in range(count))


def gpus(count: int, cpu: int = 1000, memory: int = 1024, model: str | None = None) -> ResourceRequest:
    return ResourceRequest(cpu_milli=cpu, memory_mib=memory, gpus=count, gpu_model=model)


def job(
    workload_id: str,
    workspace: str = "ws",
    request: ResourceRequest | None = None,
    *,
    replicas: int = 1,
    priority: int = 0,
    seq: int = 0,
    preemptible: bool = True,
) -> WorkloadRequest:
    return WorkloadRequest(
        id=workload_id,
        workspace=workspace,
        resources=request if request is not None else gpus(1),
        replicas=replicas,
        priority=priority,
        submitted_seq=seq,
        preemptible=preemptible,
    )


def running_on(
    request: WorkloadRequest,
    node_name: str,
    gpu_indices: Iterable[int],
    started: int = 0,
    terminating: bool = False,
) -> RunningWorkload:
    """A single-replica workload holding whole GPUs `gpu_indices` on `node_name`."""
    indices = tuple(gpu_indices)
    resources = request.resources
    placement = ReplicaPlacement(
        node_name, resources.cpu_milli, resources.memory_mib, indices, GPU if indices else 0
    )
    return RunningWorkload(request, (placement,), started_seq=started, terminating=terminating)


def snapshot(
    cluster: Iterable[NodeInfo],
    pending: Iterable[WorkloadRequest] = (),
    running: Iterable[RunningWorkload] = (),
    quotas: dict[str, Quota] | None = None,
) -> Snapshot:
    return Snapshot(
        nodes=tuple(cluster),
        running=tuple(running),
        pending=tuple(pending),
        quotas=tuple((quotas or {}).items()),
    )
