"""`bestfit`: the node left with the least free CPU and GPU after the placement (the FGD paper's BestFit).

Score = 100 · (1 − ½·cpu_left/max_cpu − ½·gpu_left/max_gpu), truncated to an integer as the reference
simulator does (its integer scores make ties, which the node order breaks). The GPU within the node is the
one with the least free room that fits."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy

# Normalisers of the reference simulator (the largest node spec it models); a bigger cluster raises them.
REFERENCE_MAX_CPU_MILLI = 128_000
REFERENCE_MAX_GPU_MILLI = 8_000


def leftover_fraction(cluster: ClusterState, candidates: Candidates) -> FloatArray:
    """½·cpu_left/max_cpu + ½·gpu_left/max_gpu after each candidate placement, in [0, 1]."""
    nodes = candidates.node
    max_cpu = max(REFERENCE_MAX_CPU_MILLI, int(cluster.cpu_capacity.max(initial=0)))
    max_gpu = max(REFERENCE_MAX_GPU_MILLI, cluster.gpu_slots * 1000)
    cpu_left = cluster.cpu_free[nodes] - candidates.shape.cpu_milli
    gpu_left = cluster.node_gpu_free[nodes] - candidates.shape.total_gpu_milli
    result: FloatArray = 0.5 * cpu_left / max_cpu + 0.5 * gpu_left / max_gpu
    return result


class BestFitPolicy(PlacementPolicy):
    name = "bestfit"
    description = "least free CPU+GPU left on the node after placement (BestFit)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        return np.floor(100 * (1 - leftover_fraction(cluster, candidates)))
