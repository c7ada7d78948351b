"""The placement interface: a policy scores candidates; `astrago.scheduler.placement.place` picks the best.

Ties go to the policy's fixed node order (a seeded permutation), then to the lower GPU index."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from astrago.scheduler.candidates import Candidates, GpuChoice
from astrago.scheduler.cluster import ClusterState, FloatArray, IntArray


class PlacementPolicy(ABC):
    """A scorer. Higher is better; `place` breaks ties by `node_order`, then by the lower GPU index."""

    name: str = ""
    description: str = ""
    gpu_choice: GpuChoice = GpuChoice.BEST_FIT

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._orders: dict[int, IntArray] = {}

    def node_order(self, size: int) -> IntArray:
        """Rank of each node for tie-breaking: a permutation fixed by the seed (the FGD protocol's
        "random fixed tie-break order"), so equal scores do not always favour the first nodes listed."""
        if size not in self._orders:
            rank = np.empty(size, np.int64)
            rank[np.random.default_rng(self.seed).permutation(size)] = np.arange(size)
            self._orders[size] = rank
        return self._orders[size]

    @abstractmethod
    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        """One score per candidate; higher wins."""
