"""What an interactive or service replica adds to a plain one: its ports in the environment, and for an
interactive workload without a command, JupyterLab from the workload's environment behind the gateway."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from astrago.backends.base import BackendError, LaunchSpec
from astrago.backends.local.records import PortBinding, Readiness
from astrago.backends.readiness import readiness_timeout_s
from astrago.domain.endpoints import proxy_path
from astrago.domain.enums import WorkloadKind

JUPYTER_LAB = "jupyter-lab"


def is_default_notebook(spec: LaunchSpec) -> bool:
    return spec.kind is WorkloadKind.INTERACTIVE and not spec.command


def port_env(spec: LaunchSpec, bindings: Sequence[PortBinding]) -> dict[str, str]:
    """`PORT` (the first), `ASTRAGO_PORTS` (all, in `--port` order) and the first port's gateway path."""
    if not bindings:
        return {}
    return {
        "PORT": str(bindings[0].host_port),
        "ASTRAGO_PORTS": ",".join(str(binding.host_port) for binding in bindings),
        "ASTRAGO_BASE_URL": proxy_path(spec.workload_id, bindings[0].port),
    }


def readiness(spec: LaunchSpec) -> Readiness | None:
    """How to tell the replica is ready: `options.readiness_timeout` (seconds), `options.health_path`."""
    if not spec.ports:
        return None
    timeout_s = readiness_timeout_s(spec.extra)
    path = spec.extra.get("health_path")
    if path is not None and not path.startswith("/"):
        raise BackendError(f"health_path must start with '/', not {path!r}")
    interval_s = _number(spec, "health_interval", 5.0, 0.1, 3600)
    threshold = int(_number(spec, "health_threshold", 3, 1, 100))
    return Readiness(
        timeout_s=timeout_s, health_path=path, interval_s=interval_s, failure_threshold=threshold
    )


def _number(spec: LaunchSpec, key: str, default: float, low: float, high: float) -> float:
    raw = spec.extra.get(key)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        raise BackendError(f"{key} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise BackendError(f"{key} must be between {low:g} and {high:g}, not {raw}")
    return value


def new_upstream_token() -> str:
    return secrets.token_urlsafe(32)


def notebook_argv(
    spec: LaunchSpec, env: Mapping[str, str], binding: PortBinding, working_dir: str
) -> tuple[str, ...]:
    """JupyterLab on loopback, under the gateway's path. Its token comes from `JUPYTER_TOKEN` in the
    environment (never argv, which every user of the machine can read); the gateway presents it."""
    # The workload's PATH first; then the server's own environment (a venv the server runs from, as with
    # `make up`, is often not on the PATH of the shell that started it).
    search = os.pathsep.join(p for p in (env.get("PATH", ""), str(Path(sys.executable).parent)) if p)
    jupyter = shutil.which(JUPYTER_LAB, path=search)
    if jupyter is None:
        raise BackendError(
            "an interactive workload without a command starts JupyterLab, but jupyter-lab is not installed "
            f"in the workload's environment (PATH={env.get('PATH', '')}); install it there "
            "(pip install jupyterlab) or give the command to run"
        )
    # Jupyter refuses to run as root unless told; a server run as root (a container) runs its workloads so.
    as_root = ("--allow-root",) if os.geteuid() == 0 else ()
    return (
        jupyter,
        *as_root,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={binding.host_port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={proxy_path(spec.workload_id, binding.port)}",
        # Only the gateway reaches it (loopback + token); requests carry the browser's Host header.
        "--ServerApp.allow_remote_access=True",
        f"--ServerApp.root_dir={working_dir}",
    )


def notebook_env(token: str) -> dict[str, str]:
    return {"JUPYTER_TOKEN": token}
