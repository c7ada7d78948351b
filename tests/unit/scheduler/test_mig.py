"""MIG geometry: the profile table, legal starts, and placement through ClusterState and `place`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrago.scheduler import mig
from astrago.scheduler.placement import get_policy, place
from astrago.scheduler.types import ReplicaPlacement
from tests.unit.scheduler.placement_factories import cluster, mig_node, mig_request


@pytest.mark.parametrize(
    ("model", "memory", "family"),
    [
        ("NVIDIA A100-SXM4-40GB", 0, mig.A100_40GB),
        ("A100-PCIE", 40_960, mig.A100_40GB),
        ("NVIDIA A100 80GB PCIe", 0, mig.A100_80GB),
        ("A100", 81_920, mig.A100_80GB),
        ("NVIDIA H100 80GB HBM3", 0, mig.H100_80GB),
        ("NVIDIA A30", 0, mig.A30_24GB),
        ("Tesla T4", 0, None),
    ],
)
def test_family_from_model_name(model: str, memory: int, family: mig.MigFamily | None) -> None:
    assert mig.mig_family_for(model, memory) is family


@pytest.mark.parametrize(
    ("family", "profile", "size", "starts"),
    [
        (mig.A100_40GB, "1g.5gb", 1, (0, 1, 2, 3, 4, 5, 6)),
        (mig.A100_40GB, "2g.10gb", 2, (0, 2, 4)),
        (mig.A100_40GB, "3g.20gb", 4, (0, 4)),
        (mig.A100_40GB, "4g.20gb", 4, (0,)),
        (mig.A100_40GB, "7g.40gb", 8, (0,)),
        (mig.A100_80GB, "1g.20gb", 2, (0, 2, 4, 6)),
        (mig.H100_80GB, "3g.40gb", 4, (0, 4)),
        (mig.A30_24GB, "2g.12gb", 2, (0, 2)),
        (mig.A30_24GB, "4g.24gb", 4, (0,)),
    ],
)
def test_profile_table(family: mig.MigFamily, profile: str, size: int, starts: tuple[int, ...]) -> None:
    found = family.profile(profile)
    assert found is not None
    assert (found.size, found.starts) == (size, starts)


def test_legality_respects_starts_and_used_slices() -> None:
    three_g = mig.A100_40GB.profile("3g.20gb")
    assert three_g is not None
    assert mig.is_legal(mig.A100_40GB, three_g, 4, 0)
    assert not mig.is_legal(mig.A100_40GB, three_g, 2, 0)  # not an allowed start
    assert not mig.is_legal(mig.A100_40GB, three_g, 4, 0b0100_0000)  # slice 6 is taken


def test_small_profile_goes_where_it_blocks_least() -> None:
    one_g = mig.A100_80GB.profile("1g.10gb")
    assert one_g is not None
    assert mig.best_start(mig.A100_80GB, one_g, 0) == 6  # slice 0 would block 4g and 7g


def test_apply_rejects_illegal_or_overlapping_instances() -> None:
    state = cluster(mig_node("m"))
    state.apply(ReplicaPlacement("m", 0, 0, (0,), 500, mig_profile="3g.40gb", mig_start=0))
    with pytest.raises(ValueError, match="not free or not legal"):
        state.apply(ReplicaPlacement("m", 0, 0, (0,), 250, mig_profile="2g.20gb", mig_start=2))
    with pytest.raises(ValueError, match="not a A100-80GB MIG profile"):
        state.apply(ReplicaPlacement("m", 0, 0, (0,), 0, mig_profile="1g.5gb", mig_start=7))
    with pytest.raises(ValueError, match="MIG mode"):
        state.apply(ReplicaPlacement("m", 0, 0, (0,), 1000))


def test_mig_gpu_fills_up_then_refuses() -> None:
    state = cluster(mig_node("m"))
    policy = get_policy("bestfit")
    placed = []
    while (placement := place(state, mig_request("2g.20gb"), policy)) is not None:
        state.apply(placement)
        placed.append(placement.mig_start)
    assert sorted(placed) == [0, 2, 4]  # 2g.20gb has three legal starts
    assert state.gpu_free[0, 0] == 250  # slices 6 and 7 of 8 are left
    assert "free 2g.20gb" in state.free_summary(mig_request("2g.20gb"))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]), max_size=12)
)
def test_placed_mig_instances_never_overlap(profiles: list[str]) -> None:
    state = cluster(mig_node("m", gpus=2))
    policy = get_policy("astra")
    for name in profiles:
        placement = place(state, mig_request(name), policy)
        if placement is not None:
            state.apply(placement)  # apply re-checks legality and raises on any overlap
    assert (state.gpu_free >= 0).all()
