"""Placement policies on small hand-made clusters whose right answer is known."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.placement import UnknownPolicyError, get_policy, place, policy_names
from astrago.scheduler.types import ReplicaPlacement
from tests.unit.scheduler.placement_factories import cluster, cpu_only, node, share, whole

ALL = policy_names()


def test_registry_lists_the_six_published_policies_and_ours() -> None:
    assert set(ALL) == {"random", "dotprod", "bestfit", "gpupacking", "gpuclustering", "fgd", "astra"}
    with pytest.raises(UnknownPolicyError, match="known: random"):
        get_policy("kube-default")


@pytest.mark.parametrize("name", ALL)
def test_nothing_fits_gives_none(name: str) -> None:
    state = cluster(node("a", gpus=2))
    assert place(state, whole(4), get_policy(name)) is None
    assert place(state, share(500, model="V100"), get_policy(name)) is None


@pytest.mark.parametrize("name", ALL)
def test_model_list_is_honoured(name: str) -> None:
    state = cluster(node("t4", gpus=8, model="T4"), node("v100", gpus=8, model="V100M32"))
    placement = place(state, whole(2, model="P100|V100M32"), get_policy(name))
    assert placement is not None
    assert placement.node == "v100"


@pytest.mark.parametrize("name", ALL)
def test_whole_gpus_are_fully_free_ones(name: str) -> None:
    state = cluster(node("a", gpus=4))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 300))
    placement = place(state, whole(3), get_policy(name))
    assert placement is not None
    assert placement.gpu_indices == (1, 2, 3)
    assert placement.gpu_milli == 1000


@pytest.mark.parametrize("name", ALL)
def test_prefer_nodes_keeps_a_gang_together(name: str) -> None:
    state = cluster(node("a", gpus=8), node("b", gpus=8), node("c", gpus=8))
    placement = place(state, whole(1), get_policy(name), prefer_nodes=["c"])
    assert placement is not None
    assert placement.node == "c"
    state.apply(ReplicaPlacement("c", 0, 0, tuple(range(8)), 1000))
    fallback = place(state, whole(1), get_policy(name), prefer_nodes=["c"])
    assert fallback is not None
    assert fallback.node != "c"  # preferred nodes are full: any other node will do


def test_bestfit_picks_the_node_left_fullest() -> None:
    state = cluster(node("roomy", gpus=8), node("tight", gpus=2))
    placement = place(state, whole(1), get_policy("bestfit"))
    assert placement is not None
    assert placement.node == "tight"


def test_bestfit_share_takes_the_gpu_with_least_room() -> None:
    state = cluster(node("a", gpus=3))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 300))
    state.apply(ReplicaPlacement("a", 0, 0, (2,), 600))
    placement = place(state, share(300), get_policy("bestfit"))
    assert placement is not None
    assert placement.gpu_indices == (2,)


def test_dotprod_prefers_free_resources_that_do_not_align_with_the_request() -> None:
    # Same GPUs free; node "cpu-poor" has little CPU left, so its free vector aligns less with the request.
    state = cluster(node("cpu-rich", gpus=2, cpu=96_000), node("cpu-poor", gpus=2, cpu=16_000))
    placement = place(state, share(500, cpu=8000), get_policy("dotprod"))
    assert placement is not None
    assert placement.node == "cpu-poor"


def test_gpupacking_fills_a_partly_used_gpu_before_opening_one() -> None:
    state = cluster(node("empty", gpus=1), node("used", gpus=4))
    state.apply(ReplicaPlacement("used", 0, 0, (3,), 500))
    placement = place(state, share(400), get_policy("gpupacking"))
    assert placement is not None
    assert (placement.node, placement.gpu_indices) == ("used", (3,))


def test_gpuclustering_puts_a_shape_where_the_same_shape_runs() -> None:
    state = cluster(node("shares", gpus=4), node("wholes", gpus=4))
    state.apply(ReplicaPlacement("shares", 0, 0, (0,), 500))
    state.apply(ReplicaPlacement("wholes", 0, 0, (0,), 1000))
    for request, expected in ((share(200), "shares"), (whole(1), "wholes")):
        placement = place(state, request, get_policy("gpuclustering"))
        assert placement is not None
        assert placement.node == expected


@pytest.mark.parametrize("name", ["fgd", "astra"])
def test_fragmentation_aware_policies_fill_the_hole_a_typical_pod_cannot_use(name: str) -> None:
    # Typical pods ask for 1 GPU or 700 milli. GPU a/0 has 300 free, a fragment for both; a 300 share there
    # removes it, while on a fresh GPU it would turn 1000 usable milli into a 700 that 1-GPU pods cannot use.
    workload = [whole(1)] * 50 + [share(700)] * 50
    state = cluster(node("a", gpus=2), node("b", gpus=2))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 700))
    placement = place(state, share(300), get_policy(name, workload=workload))
    assert placement is not None
    assert (placement.node, placement.gpu_indices) == ("a", (0,))


@pytest.mark.parametrize("name", ["fgd", "astra"])
def test_fragmentation_aware_policies_learn_typical_pods_without_a_workload(name: str) -> None:
    state = cluster(node("a", gpus=2), node("b", gpus=2))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 700))
    policy = get_policy(name)
    placement = place(state, share(300), policy)
    assert placement is not None
    assert (placement.node, placement.gpu_indices) == ("a", (0,))


def test_astra_keeps_whole_gpu_nodes_intact_for_cpu_only_pods() -> None:
    # A CPU-only pod on the GPU node would starve its GPUs of CPU for the typical 1-GPU pod (8 cores).
    workload = [whole(1, cpu=8000)] * 10
    state = cluster(node("gpu", gpus=1, cpu=10_000), node("cpu", gpus=0, cpu=10_000))
    placement = place(state, cpu_only(cpu=4000), get_policy("astra", workload=workload))
    assert placement is not None
    assert placement.node == "cpu"


def test_random_depends_only_on_the_seed() -> None:
    state = cluster(*(node(f"n{i}", gpus=2) for i in range(20)))
    picks = [place(state, whole(1), get_policy("random", seed=7)) for _ in range(2)]
    assert picks[0] == picks[1]
    policy = get_policy("random", seed=7)
    spread = {p.node for _ in range(30) if (p := place(state, whole(1), policy)) is not None}
    assert len(spread) > 5


requests = st.one_of(
    st.builds(share, st.integers(1, 999), st.integers(0, 12_000)),
    st.builds(whole, st.sampled_from([1, 2, 4, 8]), st.integers(0, 12_000)),
    st.builds(cpu_only, st.integers(0, 12_000)),
)


def _run(
    name: str, seed: int, workload: list[ResourceRequest]
) -> tuple[list[ReplicaPlacement | None], ClusterState]:
    state = cluster(node("a", gpus=8), node("b", gpus=4), node("c", gpus=2, model="V100"), node("d"))
    policy = get_policy(name, seed=seed, workload=workload)
    decisions = []
    for request in workload:
        placement = place(state, request, policy)
        if placement is not None:
            state.apply(placement)  # raises if the policy proposed an over-allocation
        decisions.append(placement)
    return decisions, state


@settings(max_examples=15, deadline=None)
@given(st.lists(requests, min_size=1, max_size=40), st.integers(0, 2**16))
def test_no_policy_over_allocates_and_a_seed_repeats_its_decisions(
    workload: list[ResourceRequest], seed: int
) -> None:
    for name in ALL:
        first, state = _run(name, seed, workload)
        second, _ = _run(name, seed, workload)
        assert first == second, name
        assert (state.gpu_free >= 0).all()
        assert (state.gpu_free <= 1000).all()
        assert (state.cpu_free >= 0).all()
        assert (state.memory_free >= 0).all()
        assert (state.node_gpu_free == state.gpu_free.sum(axis=1)).all()
