"""Turns an admitted workload row into the backend's LaunchSpec."""

from __future__ import annotations

from astrago.backends.base import LaunchSpec, ReplicaLaunch
from astrago.domain.enums import WorkloadKind
from astrago.store.models import Workload


def launch_spec(workload: Workload) -> LaunchSpec:
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
        volumes=tuple(_volume(v) for v in spec.get("volumes") or ()),
        extra=dict(spec.get("options") or {}),
        revision=int(spec.get("revision") or 0),
    )


def _volume(text: str) -> tuple[str, str]:
    name, _, path = text.partition(":")
    return name, path
