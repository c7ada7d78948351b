"""`random`: any feasible node, uniformly (the FGD paper's Random baseline)."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy


class RandomPolicy(PlacementPolicy):
    name = "random"
    description = "a uniformly random feasible node (baseline)"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._rng = np.random.default_rng(seed)

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        result: FloatArray = self._rng.random(len(candidates))
        return result
