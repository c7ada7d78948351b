"""Builders for the local backend's tests: settings in a temp dir, launch specs with sensible defaults."""

from __future__ import annotations

import os
import shutil
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


def job_python() -> str:
    """A Python any account may run: under a root server a job runs as its workspace's unprivileged uid,
    which cannot reach an interpreter inside a private directory (e.g. one under /root)."""
    path = Path(os.path.realpath(sys.executable))
    if all(parent.stat().st_mode & 0o001 for parent in path.parents):
        return sys.executable
    found = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    assert found is not None, "no python3 that an unprivileged account can run"
    return found


def python_command(code: str) -> tuple[str, ...]:
    return (job_python(), "-c", code)


def workdir(settings: Settings, workload_id: str = "wl-1") -> Path:
    """The workload's own working directory: a test and its sandboxed job both see it at this path."""
    return settings.data_dir / "workdirs" / workload_id


def shared_dir(parent: Path) -> Path:
    """A directory a job of any uid may write into (for a working directory the test names itself)."""
    path = parent / "shared"
    path.mkdir(exist_ok=True)
    path.chmod(0o777)
    for ancestor in (parent, *parent.parents):
        if ancestor == Path(ancestor.anchor) or ancestor.stat().st_mode & 0o001:
            break
        ancestor.chmod(ancestor.stat().st_mode | 0o005)
    return path
