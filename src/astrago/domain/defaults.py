"""CPU and memory for a workload that did not ask for them: its node's share per GPU.

A GPU workload gets, per GPU it asks for, the node's cores and memory divided by the node's GPUs (the
habit of Run:ai and of most GPU clusters: a 1-GPU job on an 8-GPU node with 64 cores gets 8 of them), so
that every GPU of a node can be used at once and none is stranded for lack of CPU. Over several GPU nodes
the smallest share is taken, so the workload fits whichever node holds its model. A CPU-only workload gets
a small default. A workspace may set its own values for either case. Pure: the service passes the nodes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class _Gpu(Protocol):
    @property
    def model(self) -> str: ...


class NodeCapacity(Protocol):
    @property
    def cpu_milli(self) -> int: ...
    @property
    def memory_mib(self) -> int: ...
    @property
    def schedulable(self) -> bool: ...
    @property
    def gpus(self) -> Sequence[_Gpu]: ...


CPU_ONLY_CPU_MILLI = 500
CPU_ONLY_MEMORY_MIB = 1024
MIN_CPU_MILLI = 100
MIN_MEMORY_MIB = 256


@dataclass(frozen=True, slots=True)
class WorkloadDefaults:
    """A workspace's own defaults; None leaves the platform's."""

    cpu_milli: int | None = None  # CPU-only workloads
    memory_mib: int | None = None
    cpu_milli_per_gpu: int | None = None  # GPU workloads, per GPU asked for
    memory_mib_per_gpu: int | None = None


@dataclass(frozen=True, slots=True)
class DefaultedResources:
    cpu_milli: int
    memory_mib: int
    source: str  # what the values come from, for `describe`


def per_gpu_share(nodes: Iterable[NodeCapacity], models: frozenset[str] | None) -> tuple[int, int] | None:
    """The smallest (cores, memory) per GPU over the schedulable nodes with GPUs of an allowed model."""
    shares = []
    for node in nodes:
        gpus = [g for g in node.gpus if models is None or g.model.lower() in models]
        if node.schedulable and gpus:
            shares.append((node.cpu_milli // len(node.gpus), node.memory_mib // len(node.gpus)))
    if not shares:
        return None
    return min(cpu for cpu, _ in shares), min(memory for _, memory in shares)


def default_resources(
    gpu_milli: int,
    models: frozenset[str] | None,
    nodes: Iterable[NodeCapacity],
    workspace: WorkloadDefaults = WorkloadDefaults(),
) -> DefaultedResources:
    """`gpu_milli`: the GPUs asked for per replica in thousandths (2000 for 2 GPUs, 500 for half of one)."""
    if gpu_milli == 0:
        if workspace.cpu_milli is not None or workspace.memory_mib is not None:
            return DefaultedResources(
                workspace.cpu_milli or CPU_ONLY_CPU_MILLI,
                workspace.memory_mib or CPU_ONLY_MEMORY_MIB,
                "the workspace's default for CPU-only workloads",
            )
        return DefaultedResources(
            CPU_ONLY_CPU_MILLI, CPU_ONLY_MEMORY_MIB, "the default for CPU-only workloads"
        )
    share = per_gpu_share(nodes, models)
    cpu_per_gpu = workspace.cpu_milli_per_gpu or (share[0] if share else 1000)
    memory_per_gpu = workspace.memory_mib_per_gpu or (share[1] if share else 4096)
    source = (
        "the workspace's amount per GPU"
        if workspace.cpu_milli_per_gpu or workspace.memory_mib_per_gpu
        else "the node's share per GPU"
    )
    return DefaultedResources(
        max(MIN_CPU_MILLI, cpu_per_gpu * gpu_milli // 1000),
        max(MIN_MEMORY_MIB, memory_per_gpu * gpu_milli // 1000),
        source,
    )
