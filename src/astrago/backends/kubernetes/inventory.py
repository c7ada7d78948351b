"""Node objects → NodeInventory: allocatable CPU, memory and GPUs, GPU model and memory from the labels
NVIDIA GPU feature discovery (GFD) puts on nodes, MIG slices, time-sliced shares, readiness and taints."""

from __future__ import annotations

import math
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


def node_inventory(node: Manifest, shared_gpu_resource: str) -> NodeInventory:
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
    return NodeInventory(
        name=str(metadata.get("name")),
        cpu_milli=int(_quantity(allocatable.get("cpu", "0")) * 1000),
        memory_mib=int(_quantity(allocatable.get("memory", "0")) / (1024 * 1024)),
        devices=_devices(labels, allocatable, capacity, shared_gpu_resource),
        schedulable=ready and not (node.get("spec") or {}).get("unschedulable", False),
        labels=tuple(sorted(labels.items())),
        ready=ready,
        taints=tuple(_taint(taint) for taint in (node.get("spec") or {}).get("taints") or ()),
        gpu_resources=gpu_resources,
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
