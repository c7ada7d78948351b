"""Turns an admitted workload row into the backend's LaunchSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astrago.backends.base import LaunchSpec, ReplicaLaunch, VolumeMount
from astrago.domain.enums import WorkloadKind
from astrago.store.models import Workload


def launch_spec(workload: Workload, volumes_dir: Path) -> LaunchSpec:
    spec = workload.spec
    return LaunchSpec(
        workload_id=workload.id,
        name=workload.name,
        workspace=workload.workspace.name,
        kind=WorkloadKind(workload.kind),
        replicas=tuple(
            ReplicaLaunch(
                index=r.index,
                node=r.node,
                cpu_milli=r.cpu_milli,
                memory_mib=r.memory_mib,
                gpu_indices=tuple(r.gpu_indices),
                gpu_uuids=tuple(r.gpu_uuids),
                gpu_milli=r.gpu_milli,
                mig_profile=r.mig_profile,
            )
            for r in workload.replica_rows
        ),
        command=tuple(spec.get("command") or ()),
        image=spec.get("image"),
        env=tuple(sorted((spec.get("env") or {}).items())),
        working_dir=spec.get("working_dir"),
        code_bundle=spec.get("code"),
        max_runtime_s=spec.get("max_runtime_s"),
        ports=tuple(spec.get("ports") or ()),
        volumes=tuple(_mount(workload, m, volumes_dir) for m in spec.get("volume_mounts") or ()),
        extra=dict(spec.get("options") or {}),
        revision=int(spec.get("revision") or 0),
    )


def _mount(workload: Workload, mount: dict[str, Any], volumes_dir: Path) -> VolumeMount:
    """Volumes resolved at submission (ids, not names: a rename does not break a queued workload)."""
    subpath = f"{workload.workspace_id}/{mount['volume_id']}"
    return VolumeMount(
        name=mount["name"],
        slug=mount["slug"],
        host_path=str(volumes_dir / subpath),
        share_subpath=subpath,
        mount_path=mount["mount_path"],
        read_only=bool(mount["read_only"]),
    )
