"""FGD fragmentation: typical pods, the per-node formula, and the incremental tracker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.candidates import GpuChoice, find_candidates
from astrago.scheduler.cluster import RequestShape
from astrago.scheduler.fragmentation import FragmentationTracker, TypicalPod, typical_pods
from astrago.scheduler.types import ReplicaPlacement
from tests.unit.scheduler.placement_factories import cluster, cpu_only, node, share, whole

HALF_WHOLE_HALF_SHARE = [
    TypicalPod(cpu_milli=1000, gpu_milli=1000, gpus=1, models=None, weight=0.5),
    TypicalPod(cpu_milli=1000, gpu_milli=500, gpus=1, models=None, weight=0.5),
]


def test_typical_pods_keep_the_most_frequent_shapes_covering_95_percent() -> None:
    workload = [whole(1)] * 60 + [share(500)] * 36 + [cpu_only()] * 3 + [share(100)]
    pods = typical_pods(workload)
    assert [(p.gpu_milli, p.gpus) for p in pods] == [(1000, 1), (500, 1)]  # 96% covered
    assert sum(p.weight for p in pods) == pytest.approx(1.0)
    assert pods[0].weight == pytest.approx(60 / 96)


def test_node_fragmentation_matches_the_definition() -> None:
    state = cluster(node("a", gpus=2))
    state.apply(ReplicaPlacement("a", 0, 0, (1,), 700))  # GPUs free: [1000, 300]
    tracker = FragmentationTracker(HALF_WHOLE_HALF_SHARE)
    # Both typical pods fit (on GPU 0); GPU 1's 300 milli is a fragment for both.
    assert tracker.total(state) == pytest.approx(300)
    state.apply(ReplicaPlacement("a", 31_500, 0))  # 500m CPU left: neither pod fits, all idle counts
    assert tracker.total(state) == pytest.approx(1300)


def test_cpu_only_and_wrong_model_typical_pods_see_all_idle_gpu_as_fragment() -> None:
    state = cluster(node("a", gpus=2, model="T4"))
    pods = [
        TypicalPod(1000, 0, 0, None, 0.5),
        TypicalPod(1000, 1000, 1, frozenset({"v100"}), 0.5),
    ]
    assert FragmentationTracker(pods).total(state) == pytest.approx(2000)


def test_candidate_after_values_match_a_real_apply() -> None:
    state = cluster(node("a", gpus=4), node("b", gpus=2))
    state.apply(ReplicaPlacement("a", 0, 0, (0,), 600))
    tracker = FragmentationTracker(HALF_WHOLE_HALF_SHARE)
    for request in (share(300), whole(2), cpu_only(cpu=31_500)):
        candidates = find_candidates(state, RequestShape.of(request), GpuChoice.EACH)
        predicted = tracker.after(state, candidates)
        for k in range(len(candidates)):
            trial = state.copy()
            trial.apply(candidates.placement(state, k))
            node_index = int(candidates.node[k])
            exact = FragmentationTracker(HALF_WHOLE_HALF_SHARE)
            exact.sync(trial)
            assert predicted[k] == pytest.approx(exact.frag[node_index])


requests = st.one_of(
    st.builds(share, st.integers(1, 999), st.integers(0, 8000)),
    st.builds(whole, st.integers(1, 4), st.integers(0, 8000)),
    st.builds(cpu_only, st.integers(0, 8000)),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(requests, st.integers(0, 2), st.booleans()), max_size=25))
def test_incremental_tracker_equals_a_full_recomputation(
    steps: list[tuple[ResourceRequest, int, bool]],
) -> None:
    state = cluster(node("a", gpus=4), node("b", gpus=2), node("c", gpus=8, model="V100"))
    tracker = FragmentationTracker(HALF_WHOLE_HALF_SHARE)
    held: list[ReplicaPlacement] = []
    for request, pick, release in steps:
        if release and held:
            state.release(held.pop(0))
        candidates = find_candidates(state, RequestShape.of(request), GpuChoice.BEST_FIT)
        if len(candidates):
            placement = candidates.placement(state, pick % len(candidates))
            state.apply(placement)
            held.append(placement)
        tracker.sync(state)
        fresh = FragmentationTracker(HALF_WHOLE_HALF_SHARE)
        fresh.sync(state)
        assert np.allclose(tracker.frag, fresh.frag)
