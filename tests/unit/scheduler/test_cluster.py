"""ClusterState: apply/release bookkeeping, validation, and the "could it ever fit" questions."""

from __future__ import annotations

import numpy as np
import pytest

from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.types import GpuInfo, NodeInfo, ReplicaPlacement
from tests.unit.scheduler.placement_factories import cluster, cpu_only, node, share, whole


def test_from_nodes_pads_gpu_slots_and_marks_absent_ones() -> None:
    state = cluster(node("a", gpus=2), node("b", gpus=4), node("c"))
    assert state.node_names == ["a", "b", "c"]
    assert state.gpu_free.shape == (3, 4)
    assert state.gpu_present.sum(axis=1).tolist() == [2, 4, 0]
    assert state.gpu_capacity_milli == 6000


def test_unhealthy_gpu_is_not_capacity() -> None:
    sick = NodeInfo("a", 8000, 8192, (GpuInfo(0, "T4"), GpuInfo(1, "T4", healthy=False)))
    state = ClusterState.from_nodes([sick])
    assert state.gpu_capacity_milli == 1000
    with pytest.raises(ValueError, match="no usable GPU 1"):
        state.apply(ReplicaPlacement("a", 0, 0, (1,), 1000))


def test_apply_then_release_restores_every_array() -> None:
    state = cluster(node("a", gpus=2))
    before = state.copy()
    placement = ReplicaPlacement("a", 4000, 2048, (1,), 300)
    state.apply(placement)
    assert state.gpu_free[0].tolist() == [1000, 700]
    assert state.cpu_free[0] == 28_000
    state.release(placement)
    for name in ("cpu_free", "memory_free", "gpu_free", "shape_counts"):
        assert np.array_equal(getattr(state, name), getattr(before, name)), name


@pytest.mark.parametrize(
    "placement",
    [
        ReplicaPlacement("a", 64_000, 0),  # more CPU than the node has
        ReplicaPlacement("a", 0, 10**9),  # more memory
        ReplicaPlacement("a", 0, 0, (0,), 1001),  # more than a whole GPU
        ReplicaPlacement("a", 0, 0, (0, 0), 1000),  # the same GPU twice
        ReplicaPlacement("a", 0, 0, (5,), 1000),  # no such GPU
        ReplicaPlacement("zzz", 0, 0),  # no such node
    ],
)
def test_apply_rejects_over_allocation_and_changes_nothing(placement: ReplicaPlacement) -> None:
    state = cluster(node("a", gpus=2))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 800))
    before = state.copy()
    with pytest.raises(ValueError, match=r"not enough|milli|twice|no usable|unknown node"):
        state.apply(placement)
    assert np.array_equal(state.gpu_free, before.gpu_free)
    assert np.array_equal(state.cpu_free, before.cpu_free)


def test_second_share_that_overflows_a_gpu_is_rejected() -> None:
    state = cluster(node("a", gpus=1))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 600))
    with pytest.raises(ValueError, match="400 milli free"):
        state.apply(ReplicaPlacement("a", 0, 0, (0,), 500))


def test_release_of_something_never_applied_is_rejected() -> None:
    state = cluster(node("a", gpus=1))
    with pytest.raises(ValueError, match="more CPU or memory"):
        state.release(ReplicaPlacement("a", 1000, 0))
    with pytest.raises(ValueError, match="more of GPU 0"):
        state.release(ReplicaPlacement("a", 0, 0, (0,), 100))


def test_copy_is_independent() -> None:
    state = cluster(node("a", gpus=1))
    other = state.copy()
    other.apply(ReplicaPlacement("a", 1000, 0, (0,), 1000))
    assert state.gpu_free[0, 0] == 1000
    assert other.instance_id != state.instance_id


def test_can_ever_fit_looks_at_capacity_not_current_use() -> None:
    state = cluster(node("a", gpus=4), node("b", gpus=2, model="V100"))
    state.apply(ReplicaPlacement("a", 0, 0, (0, 1, 2, 3), 1000))
    assert state.can_ever_fit(whole(4))
    assert not state.can_ever_fit(whole(8))
    assert state.can_ever_fit(whole(2, model="v100"))
    assert not state.can_ever_fit(whole(3, model="V100"))
    assert not state.can_ever_fit(cpu_only(cpu=64_000))


def test_free_summary_names_the_largest_free_block() -> None:
    state = cluster(node("a", gpus=4), node("b", gpus=8))
    state.apply(ReplicaPlacement("b", 0, 0, tuple(range(8)), 1000))
    assert state.free_summary(whole(8)) == (
        "no node has 8 free GPUs with room for the CPU and memory; the largest free is 4"
    )
    state.apply(ReplicaPlacement("a", 0, 0, (0, 1, 2, 3), 900))
    assert "largest free share is 100 milli" in state.free_summary(share(300))
    assert "64000m CPU" in state.free_summary(cpu_only(cpu=64_000))
