"""The node as the local backend reports it, with GPUs from a real recorded `nvidia-smi` capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.backends.local.inventory import detect_node, nvml_devices
from astrago.backends.local.simulated import SimulatedGpuSpecError

H100_CAPTURE = "gpu/utkuozdemir_nvidia_gpu_exporter/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"


def test_real_gpus_come_from_the_gpu_monitor(shared_data: Path) -> None:
    node = detect_node(None, "box", gpu_source=f"replay:{shared_data / H100_CAPTURE}")

    [gpu] = node.devices
    assert (gpu.index, gpu.model, gpu.memory_mib) == (0, "NVIDIA H100 80GB HBM3", 81559)
    assert gpu.uuid == "GPU-00000000-0000-0000-0000-000000000000"
    assert not gpu.simulated
    assert not node.simulated
    assert node.labels == (("astrago.io/backend", "local"),)


def test_simulated_gpus_replace_real_ones(shared_data: Path) -> None:
    node = detect_node("2xA100-80GB", "box", gpu_source=f"replay:{shared_data / H100_CAPTURE}")
    assert [d.uuid for d in node.devices] == ["GPU-sim-box-0", "GPU-sim-box-1"]
    assert node.simulated
    assert ("astrago.io/simulated-gpus", "true") in node.labels


def test_this_machine_has_cpus_and_memory() -> None:
    node = detect_node("1xT4-16GB", "box")
    assert node.name == "box"
    assert node.cpu_milli >= 1000
    assert node.cpu_milli % 1000 == 0
    assert node.memory_mib > 0


def test_a_machine_without_a_driver_has_no_gpus() -> None:
    """Holds on machines without an NVIDIA driver, like CI; skipped where one is installed."""
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    assert nvml_devices() == ()


def test_a_bad_simulate_spec_fails_the_node() -> None:
    with pytest.raises(SimulatedGpuSpecError, match="does not say its memory"):
        detect_node("4xA100", "box")
