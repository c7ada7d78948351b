"""`random`: a uniformly random feasible node, and a random GPU on it (the FGD paper's Random baseline)."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates, GpuChoice
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy


class RandomPolicy(PlacementPolicy):
    name = "random"
    description = "a uniformly random feasible node (baseline)"
    gpu_choice = GpuChoice.EACH

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._rng = np.random.default_rng(seed)

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        # One draw per node decides the node, so a node with several distinct GPUs is not favoured; a
        # smaller draw per candidate then picks the GPU within it.
        per_node = self._rng.random(cluster.size)[candidates.node]
        result: FloatArray = per_node + 1e-9 * self._rng.random(len(candidates))
        return result
