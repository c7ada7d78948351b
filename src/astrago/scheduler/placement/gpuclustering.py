"""`gpuclustering`: keep replicas of the same GPU shape together (GpuClustering).

A node's shapes are the GPU requests it already runs: "share" or "k whole GPUs". Tiers: only this shape
(75–100), this shape among others (50–75), an unused node (25–50), other shapes only (0–25); within a tier,
less free GPU is better. CPU-only requests score 0 everywhere."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy
from astrago.scheduler.placement.bestfit import REFERENCE_MAX_GPU_MILLI


class GpuClusteringPolicy(PlacementPolicy):
    name = "gpuclustering"
    description = "place a GPU shape where the same shape already runs (GpuClustering)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        shape = candidates.shape
        if shape.kind in ("cpu", "mig"):
            return np.zeros(len(candidates))
        nodes = candidates.node
        column = 0 if shape.kind == "share" else min(shape.gpus, cluster.gpu_slots)
        shapes_present = cluster.shape_counts[nodes] > 0
        same = shapes_present[:, column]
        kinds = shapes_present.sum(axis=1)
        max_gpu = max(REFERENCE_MAX_GPU_MILLI, cluster.gpu_slots * 1000)
        free = cluster.node_gpu_free[nodes]
        within = 25 * (max_gpu - free) // max_gpu
        tier = np.where(same, np.where(kinds == 1, 75, 50), np.where(kinds == 0, 25, 0))
        result: FloatArray = (within + tier).astype(np.float64)
        return result
