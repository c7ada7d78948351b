"""`astra`: our policy. FGD's fragmentation score, with the ties it leaves broken on purpose.

FGD truncates 100·sigmoid(ΔF/1000) to an integer, so many candidates tie and a random node order decides.
Measured on openb, that coarseness is a feature: ranking by the exact ΔF does markedly worse (it chases
differences of a few milli that say nothing about later pods). `astra` keeps FGD's integer score and spends
the ties where they help:

- a CPU-only pod goes to the node with the least idle GPU (its CPU is worth least to GPU pods there), then
  the fullest node;
- a GPU pod goes to the fullest node (best fit), which keeps large free blocks for multi-GPU pods."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.bestfit import leftover_fraction
from astrago.scheduler.placement.fgd import FragmentationAwarePolicy, sigmoid

# Tie-breaks stay below 1, the step between two integer FGD scores, so they only ever order equals.
TIE_WEIGHT = 0.99


class AstraPolicy(FragmentationAwarePolicy):
    name = "astra"
    description = "FGD's score, ties to the fullest node; CPU-only pods to nodes without idle GPUs (ours)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        fgd = np.floor(100 * sigmoid(self.fragmentation_decrease(cluster, candidates) / 1000))
        leftover = leftover_fraction(cluster, candidates)  # in [0, 1]
        if candidates.shape.kind == "cpu":
            idle_share = self.tracker.idle[candidates.node] / max(1, cluster.gpu_slots * 1000)
            result: FloatArray = fgd - 0.5 * idle_share - 0.01 * leftover
            return result
        result = fgd - TIE_WEIGHT * leftover
        return result
