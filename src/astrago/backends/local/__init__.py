"""The local executor: workloads as process groups on this machine (see docs/local-executor.md)."""

from astrago.backends.local.backend import LocalBackend
from astrago.backends.local.simulated import SimulatedGpuSpecError, parse_simulated_gpus

__all__ = ["LocalBackend", "SimulatedGpuSpecError", "parse_simulated_gpus"]
