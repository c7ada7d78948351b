"""Node objects → NodeInventory: allocatable CPU, memory and GPUs, GPU model and memory from the labels
NVIDIA GPU feature discovery (GFD) puts on nodes, MIG slices, time-sliced shares, readiness and taints,
less what pods AstraGo did not create hold there (the kube-scheduler counts their requests too, so
without this AstraGo would place work that the cluster cannot bind)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lightkube.utils.quantity import parse_quantity

from astrago.backends.base import DeviceInventory, NodeInventory
from astrago.backends.kubernetes.manifests import GPU_RESOURCE, MIG_RESOURCE_PREFIX

Manifest = dict[str, Any]

GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_MEMORY = "nvidia.com/gpu.memory"  # MiB per GPU
GFD_COUNT = "nvidia.com/gpu.count"
GFD_MIG_STRATEGY = "nvidia.com/mig.strategy"
_SHARED_SUFFIX = "-SHARED"  # GFD appends it to the product when time-slicing renames the resource


_ENDED_PHASES = ("Succeeded", "Failed")
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Held:
    """Requests of pods AstraGo did not create, summed on one node."""

    cpu_milli: int = 0
    memory_mib: int = 0
    gpus: int = 0

    def __add__(self, other: Held) -> Held:
        return Held(
            self.cpu_milli + other.cpu_milli, self.memory_mib + other.memory_mib, self.gpus + other.gpus
        )


NOTHING_HELD = Held()


def pod_holds(pod: Manifest) -> tuple[str, Held] | None:
    """(node, requests) of a pod bound to a node and not ended; None when it holds nothing.

    Effective requests as the kube-scheduler computes them: the sum over containers, or the largest init
    container when that is more; a GPU limit without a request counts (extended resources default their
    request to the limit)."""
    spec = pod.get("spec") or {}
    node = spec.get("nodeName")
    if not node or (pod.get("status") or {}).get("phase") in _ENDED_PHASES:
        return None
    running = _sum_requests(spec.get("containers") or ())
    init = [_sum_requests([container]) for container in spec.get("initContainers") or ()]
    held = Held(
        max([running.cpu_milli] + [i.cpu_milli for i in init]),
        max([running.memory_mib] + [i.memory_mib for i in init]),
        max([running.gpus] + [i.gpus for i in init]),
    )
    return str(node), held


def _sum_requests(containers: Iterable[Manifest]) -> Held:
    cpu = memory = gpus = Decimal(0)
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        cpu += _quantity(requests.get("cpu", "0"))
        memory += _quantity(requests.get("memory", "0"))
        gpus += _quantity(requests.get(GPU_RESOURCE, limits.get(GPU_RESOURCE, "0")))
    return Held(int(cpu * 1000), math.ceil(memory / _MIB), math.floor(gpus))


def node_inventory(node: Manifest, shared_gpu_resource: str, held: Held = NOTHING_HELD) -> NodeInventory:
    metadata = node.get("metadata") or {}
    labels: dict[str, str] = metadata.get("labels") or {}
    status = node.get("status") or {}
    allocatable: dict[str, str] = status.get("allocatable") or {}
    capacity: dict[str, str] = status.get("capacity") or {}
    ready = _ready(status)
    gpu_resources = tuple(
        sorted(
            (name, _count(value))
            for name, value in allocatable.items()
            if name in (GPU_RESOURCE, shared_gpu_resource) or name.startswith(MIG_RESOURCE_PREFIX)
        )
    )
    devices = _devices(labels, allocatable, capacity, shared_gpu_resource)
    return NodeInventory(
        name=str(metadata.get("name")),
        cpu_milli=max(0, int(_quantity(allocatable.get("cpu", "0")) * 1000) - held.cpu_milli),
        memory_mib=max(0, int(_quantity(allocatable.get("memory", "0")) / _MIB) - held.memory_mib),
        devices=devices,
        schedulable=ready and not (node.get("spec") or {}).get("unschedulable", False),
        labels=tuple(sorted(labels.items())),
        ready=ready,
        taints=tuple(_taint(taint) for taint in (node.get("spec") or {}).get("taints") or ()),
        gpu_resources=gpu_resources,
        gpus_held_by_others=min(held.gpus, sum(1 for device in devices if device.healthy)),
    )


def shared_units_per_gpu(node: NodeInventory, shared_gpu_resource: str) -> int:
    """How many time-sliced shares the device plugin advertises per physical GPU (its `replicas`)."""
    shared = dict(node.gpu_resources).get(shared_gpu_resource, 0)
    if not shared or not node.devices:
        return 1
    return max(1, shared // len(node.devices))


def _devices(
    labels: dict[str, str], allocatable: dict[str, str], capacity: dict[str, str], shared_gpu_resource: str
) -> tuple[DeviceInventory, ...]:
    mig_enabled = labels.get(GFD_MIG_STRATEGY) in ("single", "mixed") and any(
        name.startswith(MIG_RESOURCE_PREFIX) for name in allocatable
    )
    whole = _count(capacity.get(GPU_RESOURCE, allocatable.get(GPU_RESOURCE, "0")))
    # MIG slices or time-sliced shares replace the plain resource; GFD still counts the physical GPUs.
    count = _count(labels.get(GFD_COUNT, "0")) or whole
    if not count and shared_gpu_resource in allocatable:
        count = 1
    if not count:
        return ()
    # The device plugin withdraws unhealthy GPUs from allocatable while capacity still counts them.
    unhealthy = max(0, whole - _count(allocatable.get(GPU_RESOURCE, str(whole)))) if whole else 0
    model = labels.get(GFD_PRODUCT, "unknown")
    if model.endswith(_SHARED_SUFFIX):
        model = model[: -len(_SHARED_SUFFIX)]
    memory = _count(labels.get(GFD_MEMORY, "0"))
    return tuple(
        DeviceInventory(
            index=index,
            model=model,
            memory_mib=memory,
            healthy=index < count - unhealthy,
            mig_enabled=mig_enabled,
        )
        for index in range(count)
    )


def _ready(status: Manifest) -> bool:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _taint(taint: Manifest) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def _quantity(value: str) -> Decimal:
    try:
        return parse_quantity(str(value)) or Decimal(0)
    except ValueError:
        return Decimal(0)


def _count(value: str) -> int:
    return math.floor(_quantity(value))
