"""Builders for the local backend's tests: settings in a temp dir, launch specs with sensible defaults."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from astrago.backends.base import LaunchSpec, ReplicaLaunch
from astrago.config import Settings
from astrago.domain.enums import WorkloadKind

NODE = socket.gethostname()


def local_settings(
    data_dir: Path, *, simulate_gpus: str | None = "4xA100-80GB", grace_s: float = 5.0
) -> Settings:
    return Settings(data_dir=data_dir, simulate_gpus=simulate_gpus, stop_grace_s=grace_s)


def replica(index: int = 0, *, gpus: tuple[int, ...] = (), node: str = NODE) -> ReplicaLaunch:
    return ReplicaLaunch(index=index, node=node, cpu_milli=1000, memory_mib=512, gpu_indices=gpus)


def launch_spec(
    *command: str,
    workload_id: str = "wl-1",
    replicas: tuple[ReplicaLaunch, ...] | None = None,
    env: dict[str, str] | None = None,
    working_dir: str | None = None,
    max_runtime_s: int | None = None,
    kind: WorkloadKind = WorkloadKind.JOB,
    ports: tuple[int, ...] = (),
    extra: dict[str, str] | None = None,
) -> LaunchSpec:
    return LaunchSpec(
        workload_id=workload_id,
        name=f"{workload_id}-name",
        workspace="ml-a",
        kind=kind,
        replicas=replicas if replicas is not None else (replica(),),
        command=command,
        env=tuple((env or {}).items()),
        working_dir=working_dir,
        max_runtime_s=max_runtime_s,
        ports=ports,
        extra=extra or {},
    )


def python_command(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)
