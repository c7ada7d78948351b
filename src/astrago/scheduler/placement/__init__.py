"""Placement policies behind one interface, and `place`, which picks the best-scoring candidate.

`place` is pure: it reads the cluster and returns a ReplicaPlacement (or None) without applying it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.candidates import Candidates, find_candidates
from astrago.scheduler.cluster import ClusterState, FloatArray, IntArray, RequestShape
from astrago.scheduler.placement.astra import AstraPolicy
from astrago.scheduler.placement.base import PlacementPolicy
from astrago.scheduler.placement.bestfit import BestFitPolicy
from astrago.scheduler.placement.dotprod import DotProductPolicy
from astrago.scheduler.placement.fgd import FgdPolicy
from astrago.scheduler.placement.gpuclustering import GpuClusteringPolicy
from astrago.scheduler.placement.gpupacking import GpuPackingPolicy
from astrago.scheduler.placement.random_policy import RandomPolicy
from astrago.scheduler.types import ReplicaPlacement

__all__ = [
    "DEFAULT_POLICY",
    "PlacementPolicy",
    "UnknownPolicyError",
    "get_policy",
    "place",
    "policy_descriptions",
    "policy_names",
]

DEFAULT_POLICY = "astra"

_SIMPLE: dict[str, Callable[[int], PlacementPolicy]] = {
    "random": RandomPolicy,
    "dotprod": DotProductPolicy,
    "bestfit": BestFitPolicy,
    "gpupacking": GpuPackingPolicy,
    "gpuclustering": GpuClusteringPolicy,
}
_WORKLOAD_AWARE = {"fgd": FgdPolicy, "astra": AstraPolicy}


class UnknownPolicyError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown placement policy {name!r}; known: {', '.join(policy_names())}")
        self.name = name


def policy_names() -> list[str]:
    return [*_SIMPLE, *_WORKLOAD_AWARE]


def policy_descriptions() -> dict[str, str]:
    classes: dict[str, type[PlacementPolicy]] = {
        "random": RandomPolicy,
        "dotprod": DotProductPolicy,
        "bestfit": BestFitPolicy,
        "gpupacking": GpuPackingPolicy,
        "gpuclustering": GpuClusteringPolicy,
        "fgd": FgdPolicy,
        "astra": AstraPolicy,
    }
    return {name: classes[name].description for name in policy_names()}


def get_policy(
    name: str, seed: int = 0, workload: Sequence[ResourceRequest] | None = None
) -> PlacementPolicy:
    """A fresh policy. `seed` fixes the tie-break node order (and `random`'s draws); `workload`, the
    requests expected, gives `fgd` and `astra` their typical pods (without it they learn them online)."""
    if name in _SIMPLE:
        return _SIMPLE[name](seed)
    if name in _WORKLOAD_AWARE:
        return _WORKLOAD_AWARE[name](seed, workload)
    raise UnknownPolicyError(name)


def place(
    cluster: ClusterState,
    request: ResourceRequest,
    policy: PlacementPolicy,
    prefer_nodes: Collection[str] = (),
) -> ReplicaPlacement | None:
    """Where one replica of `request` would go under `policy`, or None if it fits nowhere now.

    With `prefer_nodes`, candidates on those nodes win whenever there is one (a gang stays on the nodes it
    already uses); the policy then only chooses among them."""
    candidates = find_candidates(cluster, RequestShape.of(request), policy.gpu_choice)
    if not len(candidates):
        return None
    if prefer_nodes:
        preferred = [cluster.node_index[name] for name in prefer_nodes if name in cluster.node_index]
        on_preferred = np.isin(candidates.node, preferred)
        if on_preferred.any():
            candidates = candidates.subset(on_preferred)
    best = choose(candidates, policy.scores(cluster, candidates), policy.node_order(cluster.size))
    return candidates.placement(cluster, best)


def choose(candidates: Candidates, scores: FloatArray, node_rank: IntArray) -> int:
    """Index of the highest score; ties to the lower node rank, then the lower GPU index."""
    top = np.flatnonzero(scores == scores.max())
    if len(top) == 1:
        return int(top[0])
    key = node_rank[candidates.node[top]] * (candidates.gpu.max(initial=0) + 2) + candidates.gpu[top]
    return int(top[np.argmin(key)])
