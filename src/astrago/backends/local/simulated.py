"""Simulated GPUs for machines without them: `astrago server --simulate-gpus 4xA100-80GB`.

A spec is a comma-separated list of `<count>x<model>` groups, e.g. `4xA100-80GB` or
`2xA100-80GB,2xH100-80GB`; a model is any name `astrago.domain.gpu_models` reads (`H200` alone is
`H200-141GB`, but `A100` is refused: it comes with 40 or 80 GB). Devices are numbered in the order
given; every simulated device carries `simulated=True` and a stable fake UUID `GPU-sim-<node>-<index>`,
so nothing can mistake it for real hardware and the scheduler's state survives restarts (same spec,
same UUIDs)."""

from __future__ import annotations

import re

from astrago.backends.base import DeviceInventory
from astrago.domain.gpu_models import known_models, parse_gpu_model

MAX_SIMULATED_GPUS = 256
_GROUP_RE = re.compile(r"^(?P<count>\d+)\s*[xX×]\s*(?P<model>[A-Za-z0-9][A-Za-z0-9._-]*)$")
_EXAMPLE = "use e.g. 4xA100-80GB or 2xA100-80GB,2xH100-80GB"


class SimulatedGpuSpecError(ValueError):
    """The `--simulate-gpus` value cannot be read; the message says what to write instead."""


def parse_simulated_gpus(spec: str, node: str) -> tuple[DeviceInventory, ...]:
    """The simulated devices declared by `spec` for the node called `node`."""
    if not spec.strip():
        raise SimulatedGpuSpecError(f"--simulate-gpus is empty; {_EXAMPLE}")
    devices: list[DeviceInventory] = []
    for group in spec.split(","):
        count, model, memory_mib = _parse_group(group.strip(), spec)
        for _ in range(count):
            index = len(devices)
            devices.append(
                DeviceInventory(
                    index=index,
                    model=model,
                    memory_mib=memory_mib,
                    uuid=simulated_gpu_uuid(node, index),
                    simulated=True,
                )
            )
    if len(devices) > MAX_SIMULATED_GPUS:
        raise SimulatedGpuSpecError(
            f"--simulate-gpus {spec!r} declares {len(devices)} GPUs; at most {MAX_SIMULATED_GPUS} per node"
        )
    return tuple(devices)


def simulated_gpu_uuid(node: str, index: int) -> str:
    return f"GPU-sim-{node}-{index}"


def _parse_group(group: str, spec: str) -> tuple[int, str, int]:
    if not group:
        raise SimulatedGpuSpecError(f"--simulate-gpus {spec!r} has an empty entry between commas; {_EXAMPLE}")
    match = _GROUP_RE.match(group)
    if match is None:
        raise SimulatedGpuSpecError(
            f"cannot read {group!r} in --simulate-gpus {spec!r}: write <count>x<model>; {_EXAMPLE}; "
            f"models: {', '.join(known_models())}"
        )
    count, raw_model = int(match["count"]), match["model"]
    if count < 1:
        raise SimulatedGpuSpecError(
            f"{group!r} in --simulate-gpus {spec!r} declares no GPUs; count must be ≥ 1"
        )
    model = parse_gpu_model(raw_model)
    if model is None:
        raise SimulatedGpuSpecError(
            f"GPU model {raw_model!r} in --simulate-gpus {spec!r} does not say its memory; write "
            f"<count>x<model>-<memory>GB, {_EXAMPLE}; models: {', '.join(known_models())}"
        )
    if not 1 <= model.memory_gb <= 4096:
        raise SimulatedGpuSpecError(
            f"GPU model {raw_model!r} in --simulate-gpus {spec!r} has {model.memory_gb} GB of memory; "
            "use 1 to 4096 GB"
        )
    return count, str(model), model.memory_gb * 1024
