"""`dotprod`: Tetris-style packing, the FGD paper's DotProd baseline.

Score = 100 · (1 − ½·⟨free, request⟩) with both vectors [cpu, gpu] normalised by the largest node spec and
the node's GPUs merged into one dimension (the paper's "merge, max" setting): the node whose free resources
align least with the request is the tightest fit. The GPU within the node is the best fit."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy
from astrago.scheduler.placement.bestfit import REFERENCE_MAX_CPU_MILLI, REFERENCE_MAX_GPU_MILLI


class DotProductPolicy(PlacementPolicy):
    name = "dotprod"
    description = "smallest dot product of free resources and request (Tetris)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        shape = candidates.shape
        nodes = candidates.node
        max_cpu = max(REFERENCE_MAX_CPU_MILLI, int(cluster.cpu_capacity.max(initial=0)))
        max_gpu = max(REFERENCE_MAX_GPU_MILLI, cluster.gpu_slots * 1000)
        cpu_term = (cluster.cpu_free[nodes] / max_cpu) * (shape.cpu_milli / max_cpu)
        gpu_term = (cluster.node_gpu_free[nodes] / max_gpu) * (shape.total_gpu_milli / max_gpu)
        return np.floor(100 * (1 - (cpu_term + gpu_term) / 2))
