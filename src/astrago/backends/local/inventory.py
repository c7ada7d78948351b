"""What this machine offers: one node with its CPUs, memory and GPUs (real from NVML, or simulated)."""

from __future__ import annotations

import os
import socket

import psutil

from astrago.backends.base import BackendError, DeviceInventory, NodeInventory
from astrago.backends.local.simulated import parse_simulated_gpus
from astrago.gpu.inventory import SourceFailed, local_gpus

SIMULATED_LABEL = ("astrago.io/simulated-gpus", "true")
BACKEND_LABEL = ("astrago.io/backend", "local")


def node_name() -> str:
    return socket.gethostname()


def usable_cpu_count() -> int:
    """CPUs this process may run on (honours taskset/cpuset), not every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return psutil.cpu_count(logical=True) or 1


def detect_node(
    simulate_gpus: str | None, name: str | None = None, gpu_source: str = "auto"
) -> NodeInventory:
    """This machine as one node. Simulated GPUs, when declared, replace whatever the driver reports.
    `gpu_source` is the GPU monitor's source (`auto`, `nvml`, `smi`, or `replay:PATH` for recordings)."""
    name = name or node_name()
    if simulate_gpus is not None:
        devices = parse_simulated_gpus(simulate_gpus, name)
    else:
        devices = nvml_devices(gpu_source)
    simulated = simulate_gpus is not None
    return NodeInventory(
        name=name,
        cpu_milli=usable_cpu_count() * 1000,
        memory_mib=psutil.virtual_memory().total // (1024 * 1024),
        devices=devices,
        simulated=simulated,
        labels=(BACKEND_LABEL, SIMULATED_LABEL) if simulated else (BACKEND_LABEL,),
    )


def nvml_devices(gpu_source: str = "auto") -> tuple[DeviceInventory, ...]:
    """The GPUs the driver reports (NVML, else nvidia-smi); none on a machine without an NVIDIA driver."""
    try:
        gpus = local_gpus(gpu_source)
    except SourceFailed as exc:
        raise BackendError(
            f"the NVIDIA driver is installed but failed to list the GPUs: {exc}; fix the driver, "
            "or declare simulated GPUs with --simulate-gpus to run without them"
        ) from exc
    return tuple(
        DeviceInventory(
            index=gpu.index,
            model=gpu.name,
            memory_mib=gpu.memory_total_mib,
            uuid=gpu.uuid,
            mig_enabled=gpu.mig_enabled,
        )
        for gpu in sorted(gpus, key=lambda gpu: gpu.index)
    )
