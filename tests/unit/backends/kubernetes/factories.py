"""LaunchSpecs for every workload kind and Node objects as GPU feature discovery labels them, shared by
the manifest, status, inventory and backend tests."""

from __future__ import annotations

from typing import Any

from astrago.backends.base import LaunchSpec, ReplicaLaunch, VolumeMount
from astrago.backends.kubernetes.manifests import ManifestOptions
from astrago.domain.enums import WorkloadKind

Manifest = dict[str, Any]


def replica(index: int = 0, node: str = "gpu-1", *, gpus: int = 1, **kwargs: Any) -> ReplicaLaunch:
    fields: dict[str, Any] = {"cpu_milli": 4000, "memory_mib": 16384, "gpu_indices": tuple(range(gpus))}
    if gpus:
        fields["gpu_milli"] = 1000
    fields.update(kwargs)
    return ReplicaLaunch(index=index, node=node, **fields)


def launch_spec(
    kind: WorkloadKind = WorkloadKind.JOB,
    *,
    workload_id: str = "wl-1",
    replicas: tuple[ReplicaLaunch, ...] | None = None,
    **kwargs: Any,
) -> LaunchSpec:
    fields: dict[str, Any] = {
        "name": "train-resnet",
        "workspace": "vision",
        "image": "pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime",
        "command": ("python", "train.py"),
    }
    fields.update(kwargs)
    return LaunchSpec(
        workload_id=workload_id,
        kind=kind,
        replicas=replicas if replicas is not None else (replica(),),
        **fields,
    )


def options(**kwargs: Any) -> ManifestOptions:
    fields: dict[str, Any] = {"namespace": "astrago", "storage_class": "astrago-nfs-csi"}
    fields.update(kwargs)
    return ManifestOptions(**fields)


def node_manifest(
    name: str,
    *,
    gpus: int = 4,
    product: str = "NVIDIA-A100-SXM4-80GB",
    memory_mib: int = 81920,
    cpu: str = "64",
    memory: str = "512Gi",
    ready: bool = True,
    unschedulable: bool = False,
    taints: list[Manifest] | None = None,
    extra_allocatable: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> Manifest:
    labels = {"kubernetes.io/hostname": name, **(extra_labels or {})}
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", **(extra_allocatable or {})}
    if gpus:
        labels.update({"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": str(memory_mib)})
        labels["nvidia.com/gpu.count"] = str(gpus)
        allocatable.setdefault("nvidia.com/gpu", str(gpus))
    spec: Manifest = {"unschedulable": unschedulable}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def volume(name: str = "imagenet", mount_path: str = "/data", *, read_only: bool = False) -> VolumeMount:
    """A volume resolved at submission, as the controller hands it to a backend."""
    subpath = f"ws-vision/vol-{name}"
    return VolumeMount(
        name=name,
        slug=name,
        host_path=f"/var/lib/astrago/volumes/{subpath}",
        share_subpath=subpath,
        mount_path=mount_path,
        read_only=read_only,
    )
