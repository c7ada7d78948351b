"""One name per GPU model, whatever reported it."""

from __future__ import annotations

import pytest

from astrago.domain.gpu_models import (
    UnknownGpuModel,
    canonical_gpu_model,
    known_models,
    resolve_model_choice,
)


@pytest.mark.parametrize(
    ("raw", "memory_mib", "canonical"),
    [
        ("NVIDIA-A100-SXM4-80GB", None, "A100-80GB"),  # GPU feature discovery's label
        ("NVIDIA-A100-SXM4-80GB-SHARED", None, "A100-80GB"),  # ... under time-slicing
        ("NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"),  # NVML
        ("NVIDIA A100 80GB PCIe", None, "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", None, "H100-80GB"),
        ("NVIDIA H100 PCIe", 81559, "H100-80GB"),  # the name lacks the size; the memory tells
        ("NVIDIA H100 NVL", 95830, "H100-94GB"),
        ("NVIDIA H200", 143771, "H200-141GB"),
        ("NVIDIA-H200", None, "H200-141GB"),  # one size only
        ("Tesla T4", None, "T4-16GB"),
        ("A100-80GB", None, "A100-80GB"),  # canonical stays canonical
        ("a100-80gb", None, "A100-80GB"),
        ("NVIDIA GeForce RTX 4090", 24564, "GEFORCE-RTX-4090-24GB"),  # not in the catalogue: still named
        ("A100", None, "A100"),  # cannot tell 40 from 80 GB: kept, never guessed
    ],
)
def test_every_spelling_has_one_name(raw: str, memory_mib: int | None, canonical: str) -> None:
    assert canonical_gpu_model(raw, memory_mib) == canonical


def test_requests_resolve_against_the_models_that_exist() -> None:
    existing = ["A100-80GB", "H100-80GB"]
    assert resolve_model_choice("nvidia-a100-sxm4-80gb|H100", existing) == "A100-80GB|H100-80GB"
    assert resolve_model_choice("a100", existing) == "A100-80GB"  # the only A100 here
    with pytest.raises(UnknownGpuModel) as refused:
        resolve_model_choice("A100-40GB", existing)
    assert str(refused.value) == (
        "no GPU of model 'A100-40GB' here (did you mean 'A100-80GB'?); "
        "the models that exist: A100-80GB, H100-80GB"
    )


def test_the_catalogue_names_are_canonical() -> None:
    assert all(canonical_gpu_model(name) == name for name in known_models())
