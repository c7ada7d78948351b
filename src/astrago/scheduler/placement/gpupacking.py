"""`gpupacking`: fill partly used GPUs first, then partly used nodes, then empty nodes (GpuPacking).

Integer tiers as in the reference simulator: a share on a partly used GPU scores in [50, 100] (less free room
on that GPU is better); a placement that needs fully free GPUs on a partly used node scores in [33, 50]
(fewer such GPUs is better); an empty node scores below 33. CPU-only requests score 0 everywhere."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import WHOLE_GPU_MILLI, ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy


class GpuPackingPolicy(PlacementPolicy):
    name = "gpupacking"
    description = "prefer partly used GPUs, then partly used nodes (GpuPacking)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        shape = candidates.shape
        if shape.kind == "cpu":
            return np.zeros(len(candidates))
        nodes = candidates.node
        present = cluster.gpu_present[nodes]
        fully_free = ((cluster.gpu_free[nodes] == WHOLE_GPU_MILLI) & present).sum(axis=1)
        empty_node = fully_free == present.sum(axis=1)
        if shape.kind == "whole":
            new_gpus = np.full(len(candidates), shape.gpus)
            on_used = np.zeros(len(candidates), np.bool_)
            shared_score = np.zeros(len(candidates))
        else:
            on_used = candidates.gpu_free < WHOLE_GPU_MILLI
            new_gpus = (~on_used).astype(np.int64)
            free_pct = candidates.gpu_free * 100 // WHOLE_GPU_MILLI
            shared_score = np.maximum(100 - free_pct // 10, 50)
        empty_score = np.maximum(100 // 3 - fully_free, fully_free)
        used_node_score = np.maximum(100 // 2 - new_gpus, 100 // 3)
        result: FloatArray = np.where(
            empty_node, empty_score, np.where(on_used, shared_score, used_node_score)
        )
        return result.astype(np.float64)
