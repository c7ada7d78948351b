"""`local_gpus()`, the inventory the local executor reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.gpu.inventory import local_gpus


def test_no_driver_means_no_gpus_never_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi; this machine has no libnvidia-ml.so.1 either
    assert local_gpus() == []
    assert local_gpus("nvml") == []
    assert local_gpus("smi") == []


def test_replayed_inventory_has_models_memory_and_mig_devices(gpu_fixtures: Path) -> None:
    devices = local_gpus(f"replay:{gpu_fixtures / 'capture'}")
    assert [(d.index, d.model, d.memory_total_mib) for d in devices] == [(0, "A100-SXM4-80GB", 81920)]
    busy = local_gpus(f"replay:{gpu_fixtures / 'two-gpus-mig.xml'}")
    assert busy[1].uuid == "GPU-22222222-2222-2222-2222-222222222222"
    assert [(m.gpu_instance_id, m.compute_instance_id, m.memory_total_mib) for m in busy[1].mig_devices] == [
        (1, 0, 40192),
        (5, 0, 9728),
    ]


def test_a_bad_source_is_an_error_not_an_empty_inventory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        local_gpus(f"replay:{tmp_path / 'missing.xml'}")
