"""What exactly one replica runs: argv, environment, working directory. Pure functions of the spec.

Environment, weakest first: an allow-list of the server's own variables (`PATH`, the locale, `TZ`, `TERM`,
and those the `workload_env_passthrough` setting names; never its settings or secrets), `HOME` and `TMPDIR`,
the workload's env, then the variables AstraGo owns
(`CUDA_VISIBLE_DEVICES`, `ASTRAGO_*`, and the torch.distributed variables of multi-replica jobs), which a
workload cannot override."""

from __future__ import annotations

import hashlib
import re
import shlex
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from astrago.backends.base import BackendError, DeviceInventory, LaunchSpec, ReplicaLaunch

LAUNCH_TOKEN_ENV = "ASTRAGO_LAUNCH_TOKEN"
MASTER_PORT_BASE = 29500  # torch.distributed's customary default
MASTER_PORT_SPAN = 2000
SHELL = "/bin/sh"
# Characters that only mean something to a shell: a single-string command holding one runs under `sh -c`.
# The only variables of the server's environment a workload inherits (besides `workload_env_passthrough`).
ENV_PASSTHROUGH = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM"})
ENV_PASSTHROUGH_PREFIXES = ("LC_",)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_SHELL_SYNTAX = re.compile(r"[\s|&;<>()$`\\\"'*?\[\]#~=%{}]")


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    workload_id: str
    replica_index: int
    replicas: int
    argv: tuple[str, ...]
    env: dict[str, str]
    working_dir: str
    visible_devices: tuple[str, ...]
    simulated_gpus: bool
    max_runtime_s: int | None


def command_argv(command: tuple[str, ...]) -> tuple[str, ...]:
    """The argv to execute: the command as given, or `/bin/sh -c` for one string written in shell syntax.

    `("python", "train.py")` runs python directly; `("python train.py > out.txt",)` runs through the shell;
    `("nvidia-smi",)` runs directly."""
    if not command or not command[0]:
        raise BackendError("the workload has no command to run")
    if len(command) == 1 and _SHELL_SYNTAX.search(command[0]):
        return (SHELL, "-c", command[0])
    return command


def visible_devices(
    replica: ReplicaLaunch, devices: Mapping[int, DeviceInventory]
) -> tuple[tuple[str, ...], bool]:
    """The `CUDA_VISIBLE_DEVICES` entries of a replica (GPU UUIDs when known, else indices) and
    whether they are simulated."""
    for index in replica.gpu_indices:
        if index not in devices:
            known = ", ".join(str(i) for i in sorted(devices)) or "none"
            raise BackendError(f"GPU {index} is not on this node (its GPUs: {known})")
    chosen = [devices[index] for index in replica.gpu_indices]
    simulated = any(device.simulated for device in chosen)
    if simulated:  # a fake UUID would make CUDA see no device at all; indices keep demos working
        return tuple(str(device.index) for device in chosen), True
    if replica.gpu_uuids:
        if len(replica.gpu_uuids) != len(replica.gpu_indices):
            raise BackendError("gpu_uuids must list one UUID per entry of gpu_indices")
        return tuple(replica.gpu_uuids), False
    return tuple(device.uuid or str(device.index) for device in chosen), False


def master_port(workload_id: str, is_free: Callable[[int], bool] | None = None) -> int:
    """A free loopback port chosen deterministically from the workload id (same id, same first choice)."""
    probe = is_free or port_is_free
    first = int(hashlib.sha256(workload_id.encode()).hexdigest(), 16) % MASTER_PORT_SPAN
    for step in range(MASTER_PORT_SPAN):
        port = MASTER_PORT_BASE + (first + step) % MASTER_PORT_SPAN
        if probe(port):
            return port
    raise BackendError(
        f"no free port for MASTER_PORT in {MASTER_PORT_BASE}-{MASTER_PORT_BASE + MASTER_PORT_SPAN - 1}"
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def workload_base_env(
    server_env: Mapping[str, str], passthrough: Collection[str], home: str
) -> dict[str, str]:
    """What a workload inherits from the server: allow-listed variables only (an allow-list, so a secret
    the server holds under any name never reaches a job), plus its HOME (its working directory) and TMPDIR."""
    allowed = ENV_PASSTHROUGH | set(passthrough)
    env = {
        key: value
        for key, value in server_env.items()
        if (key in allowed or key.startswith(ENV_PASSTHROUGH_PREFIXES)) and not key.startswith("ASTRAGO_")
    }
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = home
    env["TMPDIR"] = "/tmp"
    return env


def replica_env(
    spec: LaunchSpec,
    replica: ReplicaLaunch,
    base_env: Mapping[str, str],
    devices: tuple[str, ...],
    simulated: bool,
    port: int | None,
) -> dict[str, str]:
    env = {key: value for key, value in base_env.items() if not key.startswith("ASTRAGO_")}
    env.setdefault("PYTHONUNBUFFERED", "1")  # so `astrago logs -f` shows Python output as it is printed
    env.update(dict(spec.env))
    env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)  # empty for CPU-only replicas: no GPU at all
    env["ASTRAGO_WORKLOAD_ID"] = spec.workload_id
    env["ASTRAGO_WORKLOAD_NAME"] = spec.name
    env["ASTRAGO_WORKSPACE"] = spec.workspace
    env["ASTRAGO_REPLICA_INDEX"] = str(replica.index)
    env["ASTRAGO_REPLICAS"] = str(len(spec.replicas))
    if simulated:
        env["ASTRAGO_SIMULATED_GPUS"] = "1"
    if port is not None:
        env["MASTER_ADDR"] = "127.0.0.1"
        env["MASTER_PORT"] = str(port)
        env["WORLD_SIZE"] = str(len(spec.replicas))
        env["RANK"] = str(replica.index)
    return env


def describe_command(argv: tuple[str, ...]) -> str:
    return shlex.join(argv)
