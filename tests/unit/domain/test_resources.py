from __future__ import annotations

import pytest

from astrago.domain.resources import ResourceParseError, ResourceRequest, parse_cpu_milli, parse_memory_mib


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("512Mi", 512),
        ("16Gi", 16384),
        ("1Ti", 1048576),
        ("2048", 2048),
        ("1.5Gi", 1536),
        (100, 100),
        ("1G", 954),
    ],
)
def test_memory_sizes(text: str | int, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize(("text", "milli"), [("2", 2000), ("500m", 500), (1.5, 1500), ("0.25", 250)])
def test_cpu_amounts(text: str | float, milli: int) -> None:
    assert parse_cpu_milli(text) == milli


@pytest.mark.parametrize("bad", ["-1Gi", "lots", "12Pb", True])
def test_bad_memory_is_refused_with_a_hint(bad: object) -> None:
    with pytest.raises(ResourceParseError):
        parse_memory_mib(bad)  # type: ignore[arg-type]


def test_one_kind_of_gpu_request_at_a_time() -> None:
    with pytest.raises(ResourceParseError, match="not several"):
        ResourceRequest(gpus=1, gpu_share_milli=500).validate()
    with pytest.raises(ResourceParseError, match="between 1 and 999"):
        ResourceRequest(gpu_share_milli=1000).validate()
    assert ResourceRequest(gpu_share_milli=250).gpu_milli == 250
    assert ResourceRequest(gpus=2).gpu_milli == 2000
