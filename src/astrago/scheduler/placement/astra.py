"""`astra`: our policy. FGD's fragmentation score; CPU-only pods go where their CPU costs GPU pods least.

FGD truncates 100·sigmoid(ΔF/1000) to an integer, so many candidates tie and the node order decides. For a
CPU-only pod almost every node ties (its CPU rarely changes which typical pod fits), so FGD drops it on an
arbitrary node and spends CPU that a GPU pod on that node may need later. `astra` sends it, among the nodes
FGD scores equally, to the one with the least idle GPU (CPU there is worth least to GPU pods), then to the
fullest node. GPU pods keep FGD's score and tie order: deterministic tie-breaks for them (best fit, packing,
exact ΔF) measured worse on openb; see docs/scheduling-policies.md."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.bestfit import leftover_fraction
from astrago.scheduler.placement.fgd import FragmentationAwarePolicy, sigmoid


class AstraPolicy(FragmentationAwarePolicy):
    name = "astra"
    description = "FGD's score; CPU-only pods to nodes without idle GPUs (ours)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        fgd: FloatArray = np.floor(100 * sigmoid(self.fragmentation_decrease(cluster, candidates) / 1000))
        if candidates.shape.kind != "cpu":
            return fgd
        # Both terms stay below 1, the step between two FGD scores, so they only order FGD's ties.
        idle_share = self.tracker.idle[candidates.node] / max(1, cluster.gpu_slots * 1000)
        result: FloatArray = fgd - 0.5 * idle_share - 0.01 * leftover_fraction(cluster, candidates)
        return result
