"""LaunchSpecs for every workload kind, shared by the manifest, status and backend tests."""

from __future__ import annotations

from typing import Any

from astrago.backends.base import LaunchSpec, ReplicaLaunch
from astrago.backends.kubernetes.manifests import ManifestOptions
from astrago.domain.enums import WorkloadKind


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
