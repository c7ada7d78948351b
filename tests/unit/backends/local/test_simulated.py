from __future__ import annotations

import pytest

from astrago.backends.local.simulated import SimulatedGpuSpecError, parse_simulated_gpus


def test_one_group_of_identical_gpus() -> None:
    devices = parse_simulated_gpus("4xA100-80GB", "box")

    assert [d.index for d in devices] == [0, 1, 2, 3]
    assert {d.model for d in devices} == {"A100-80GB"}
    assert {d.memory_mib for d in devices} == {80 * 1024}
    assert all(d.simulated for d in devices)
    assert [d.uuid for d in devices] == [f"GPU-sim-box-{i}" for i in range(4)]


def test_mixed_groups_are_numbered_in_order() -> None:
    devices = parse_simulated_gpus("2xA100-80GB, 1xH100-94gb", "box")

    assert [(d.index, d.model, d.memory_mib) for d in devices] == [
        (0, "A100-80GB", 81920),
        (1, "A100-80GB", 81920),
        (2, "H100-94GB", 94 * 1024),
    ]


def test_a_model_of_one_memory_size_needs_no_size_and_gets_its_canonical_name() -> None:
    assert {d.model for d in parse_simulated_gpus("2xH200", "box")} == {"H200-141GB"}
    assert {d.model for d in parse_simulated_gpus("1xNVIDIA-A100-SXM4-80GB", "box")} == {"A100-80GB"}


def test_uuids_are_stable_across_parses() -> None:
    assert parse_simulated_gpus("2xT4-16GB", "n1") == parse_simulated_gpus("2xT4-16GB", "n1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "is empty"),
        ("A100-80GB", "write <count>x<model>; use e.g. 4xA100-80GB"),
        ("4xA100", "does not say its memory; write <count>x<model>-<memory>GB"),
        ("4xA100", "models: B200-180GB, H200-141GB"),
        ("0xA100-80GB", "count must be ≥ 1"),
        ("2xA100-80GB,,2xH100-80GB", "empty entry between commas"),
        ("4xA100-0GB", "use 1 to 4096 GB"),
        ("300xA100-80GB", "at most 256 per node"),
        ("4x A100 80GB", "cannot read"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, message: str) -> None:
    with pytest.raises(SimulatedGpuSpecError, match="--simulate-gpus") as caught:
        parse_simulated_gpus(spec, "box")
    assert message in str(caught.value)
