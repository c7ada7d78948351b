"""Small hand-made clusters and requests for the placement, cluster, MIG and fragmentation tests."""

from __future__ import annotations

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.types import GpuInfo, NodeInfo


def node(name: str, gpus: int = 0, model: str = "T4", cpu: int = 32_000, memory: int = 131_072) -> NodeInfo:
    return NodeInfo(name, cpu, memory, tuple(GpuInfo(index=i, model=model) for i in range(gpus)))


def mig_node(name: str, model: str = "A100-SXM4-80GB", gpus: int = 1) -> NodeInfo:
    return NodeInfo(
        name, 64_000, 262_144, tuple(GpuInfo(index=i, model=model, mig_enabled=True) for i in range(gpus))
    )


def cluster(*nodes: NodeInfo) -> ClusterState:
    return ClusterState.from_nodes(nodes)


def whole(gpus: int, cpu: int = 1000, memory: int = 1024, model: str | None = None) -> ResourceRequest:
    return ResourceRequest(cpu_milli=cpu, memory_mib=memory, gpus=gpus, gpu_model=model)


def share(milli: int, cpu: int = 1000, memory: int = 1024, model: str | None = None) -> ResourceRequest:
    return ResourceRequest(cpu_milli=cpu, memory_mib=memory, gpu_share_milli=milli, gpu_model=model)


def cpu_only(cpu: int = 1000, memory: int = 1024) -> ResourceRequest:
    return ResourceRequest(cpu_milli=cpu, memory_mib=memory)


def mig_request(profile: str, cpu: int = 1000) -> ResourceRequest:
    return ResourceRequest(cpu_milli=cpu, memory_mib=1024, mig_profile=profile)
